"""Errors and warnings: the only place where cxlab's error wording is built.

Every message says *what* is wrong, *where* (file, field, row or trial), the
offending *value*, and *how to fix it*, in one line, e.g.::

    S03_cmj_2.c3d: FORCE_PLATFORM:CAL_MATRIX has 4 rows (got 4, expected 6); re-export the
    trial with calibrated plates.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal, NamedTuple

__all__ = [
    "ANY",
    "ConfigError",
    "CxlabError",
    "CxlabWarning",
    "InputFormatError",
    "SchemaError",
    "UnknownKey",
    "UnknownKeysError",
    "check_keys",
    "check_option",
    "message",
    "nearest",
    "unknown_keys",
    "warn",
]


class CxlabError(Exception):
    """Base class of every error cxlab raises on purpose.

    The CLI turns it into one line and a non-zero exit code.
    """


class InputFormatError(CxlabError):
    """A file cannot be read: corrupt, truncated, unsupported or inconsistent."""


class SchemaError(CxlabError):
    """A table does not match its declared schema.

    Attributes
    ----------
    failures : list of dict
        One entry per failed check with keys ``table``, ``column``, ``check``,
        ``value`` and ``n_rows``; all failures are collected before raising.
    """

    def __init__(self, msg: str, failures: Sequence[dict[str, Any]] = ()):
        super().__init__(msg)
        self.failures = list(failures)


class ConfigError(CxlabError):
    """An option, configuration file or command-line argument is invalid."""


class UnknownKey(NamedTuple):
    """One key of a configuration table that :func:`check_keys` refuses.

    Attributes
    ----------
    key : str
        Dotted path of the key (``"filters.marker_cutof_hz"``).
    problem : {"unknown", "not_a_table"}
        The key is not allowed there, or it names a table but holds a value.
    near : str or None
        The nearest allowed key of the same table (difflib), bare (``"marker_cutoff_hz"``).
    allowed : tuple of str
        The keys allowed in that table (``"<name>"`` where any name is allowed).
    """

    key: str
    problem: Literal["unknown", "not_a_table"]
    near: str | None
    allowed: tuple[str, ...]

    @property
    def section(self) -> str:
        """The table the key sits in (``"filters"``; ``""`` at top level)."""
        return self.key.rpartition(".")[0]

    def phrase(self) -> str:
        """``'plate' (did you mean 'plates'?)`` or ``'plates' (must be a table)``."""
        if self.problem == "not_a_table":
            return f"{self.key!r} (must be a table)"
        if self.near is None:
            return repr(self.key)
        near = f"{self.section}.{self.near}" if self.section else self.near
        return f"{self.key!r} (did you mean {near!r}?)"

    def __str__(self) -> str:
        """One line: ``model.tme: is not a known key; did you mean 'time'?``."""
        if self.problem == "not_a_table":
            return message("must be a table", field=self.key, fix="write it as [name] with keys")
        fix = (
            f"did you mean {self.near!r}?"
            if self.near
            else f"allowed keys: {', '.join(self.allowed)}"
        )
        return message("is not a known key", field=self.key, fix=fix)


class UnknownKeysError(ConfigError):
    """A configuration table has keys its schema does not allow.

    Attributes
    ----------
    unknown : tuple of UnknownKey
        Every refused key, in the order met.
    """

    def __init__(self, msg: str, unknown: Sequence[UnknownKey] = ()):
        super().__init__(msg)
        self.unknown = tuple(unknown)


class CxlabWarning(UserWarning):
    """A recoverable oddity in the data; also recorded in a run's manifest."""


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def message(
    problem: str,
    *,
    file: str | PathLike[str] | None = None,
    field: str | None = None,
    value: Any = ...,
    fix: str | None = None,
) -> str:
    """Build the one-line message every cxlab error uses.

    Parameters
    ----------
    problem : str
        What is wrong, in plain words.
    file : path, optional
        The file concerned; only its name is shown.
    field : str, optional
        The parameter, column or channel concerned.
    value : any, optional
        The offending value (shown with ``repr``).
    fix : str, optional
        What the user can do about it.

    Returns
    -------
    str
        ``"<file>: <field>: <problem> (got <value>); <fix>"`` with absent parts left out.
    """
    parts = []
    if file is not None:
        parts.append(Path(file).name)
    if field:
        parts.append(field)
    text = ": ".join([*parts, problem])
    if value is not ...:
        text += f" (got {_short(value)})"
    if fix:
        text += f"; {fix}"
    return text


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise :class:`ConfigError`.

    The message names the option, the bad value and every allowed value, so
    every invalid-option message in cxlab reads the same.
    """
    allowed = list(allowed)
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ConfigError(
            message(f"is not a valid {name}", field=name, value=value, fix=f"use one of {choices}")
        )
    return value


def nearest(value: Any, allowed: Iterable[Any], /) -> str | None:
    """The allowed name closest to ``value`` (difflib ratio >= 0.6), or None.

    The one did-you-mean of cxlab: :func:`check_keys` and value checks (a muscle code, a
    covariate) both use it.
    """
    near = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return near[0] if near else None


#: In an ``allowed`` mapping of :func:`check_keys`, the entry matching any key name.
ANY = "*"


def unknown_keys(
    mapping: Mapping[str, Any], allowed: Iterable[str] | Mapping[str, Any], /, *, where: str = ""
) -> list[UnknownKey]:
    """Every key of ``mapping`` that ``allowed`` does not allow, nested tables included.

    Parameters
    ----------
    mapping : mapping
        A parsed TOML table.
    allowed : iterable of str or mapping
        The allowed keys. A mapping is a schema: a value that is itself a mapping is the
        schema of that key's table (checked recursively, and the key must hold a table);
        any other value is a leaf. The key ``"*"`` (:data:`ANY`) allows any name and gives
        the schema of those entries (e.g. ``{"tasks": {"*": {"functions": 0, "side": 0}}}``
        allows any task label, each a table of ``functions`` and ``side``).
    where : str
        Dotted path of ``mapping`` itself (``"emg"``), prefixed to every reported key.

    Returns
    -------
    list of UnknownKey
        In the order of ``mapping``; empty when every key is allowed.
    """
    schema = allowed if isinstance(allowed, Mapping) else dict.fromkeys(allowed)
    names = tuple(k for k in schema if k != ANY)
    shown = names + (("<name>",) if ANY in schema else ())
    out: list[UnknownKey] = []
    for key, value in mapping.items():
        path = f"{where}.{key}" if where else str(key)
        if key in schema:
            sub = schema[key]
        elif ANY in schema:
            sub = schema[ANY]
        else:
            out.append(UnknownKey(path, "unknown", nearest(key, names), shown))
            continue
        if isinstance(sub, Mapping):
            if not isinstance(value, Mapping):
                out.append(UnknownKey(path, "not_a_table", None, shown))
            else:
                out += unknown_keys(value, sub, where=path)
    return out


def check_keys(
    mapping: Mapping[str, Any],
    allowed: Iterable[str] | Mapping[str, Any],
    /,
    *,
    where: str = "",
    file: str | PathLike[str] | None = None,
    fix: str | None = None,
) -> None:
    """Raise :class:`UnknownKeysError` naming every key of ``mapping`` that is not allowed.

    The one configuration-key checker of cxlab (features.toml, emg.toml, instrument
    specs, experiment specs, screen rules).

    Parameters
    ----------
    mapping, allowed, where
        As in :func:`unknown_keys`.
    file : path, optional
        The file the table came from (only its name is shown); without it the message
        names ``where`` (or ``config``) as the field.
    fix : str, optional
        Appended to the message after the allowed keys (e.g. where the keys are documented).

    Raises
    ------
    UnknownKeysError
        ``lab.toml: has unknown key(s) 'plate' (did you mean 'plates'?), 'filters.x';
        allowed keys: [top level] tasks, plates, ...; [filters] cop_cutoff_hz, ...; <fix>``.
        Every refused key is named at once, with the nearest allowed key of its table,
        and the allowed keys of each table concerned.
    """
    bad = unknown_keys(mapping, allowed, where=where)
    if not bad:
        return
    tables: dict[str, tuple[str, ...]] = {}
    for b in bad:
        if b.problem == "unknown":
            tables.setdefault(b.section, b.allowed)
    problem = "has unknown key(s)" if tables else "has key(s) that must be tables"
    listing = "; ".join(f"[{s or 'top level'}] {', '.join(a)}" for s, a in tables.items())
    hint = "; ".join(p for p in (f"allowed keys: {listing}" if listing else "", fix) if p)
    field = None if file is not None else "config"
    raise UnknownKeysError(
        message(
            f"{problem} {', '.join(b.phrase() for b in bad)}",
            file=file,
            field=field,
            fix=hint or None,
        ),
        bad,
    )


def warn(problem: str, **where: Any) -> None:
    """Emit a :class:`CxlabWarning` worded like an error message."""
    warnings.warn(message(problem, **where), CxlabWarning, stacklevel=2)
