"""Errors and warnings: the only place where cxlab's error wording is built.

Every message says *what* is wrong, *where* (file, field, row or trial), the
offending *value*, and *how to fix it*, in one line, e.g.::

    S03_cmj_2.c3d: FORCE_PLATFORM:CAL_MATRIX has 4 rows (got 4, expected 6); re-export the
    trial with calibrated plates.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "CxlabError",
    "CxlabWarning",
    "InputFormatError",
    "SchemaError",
    "check_option",
    "message",
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


def warn(problem: str, **where: Any) -> None:
    """Emit a :class:`CxlabWarning` worded like an error message."""
    warnings.warn(message(problem, **where), CxlabWarning, stacklevel=2)
