"""Questionnaire instruments declared as data (TOML) and their published scoring.

Every instrument, built-in or lab-made, is a ``[[instrument]]`` table in a TOML
file; the ones shipped with cxlab sit beside this module (``builtin.toml``:
``pain_nrs``, ``pain_vas``, ``odi``; ``tsk17.toml``). A lab adds its own with
``cxlab ingest-survey --spec lab.toml`` and no code.

Keys of an ``[[instrument]]`` table
-----------------------------------
``name`` (str)
    Instrument name stored in ``scores.instrument``: lower case, ``[a-z][a-z0-9_]*``.
``items`` (int or list of str)
    Item names, or their number ``n`` (names ``<item_prefix>_1`` .. ``<item_prefix>_n``).
``item_prefix`` (str, default ``name``)
    Prefix of numbered item names (wide-layout column headers).
``min``, ``max`` (number)
    Inclusive range of an answer.
``integer`` (bool, default true)
    Whether answers must be whole numbers.
``reverse`` (list of int or str, default none)
    Reverse-scored items (number or name): scored ``min + max - answer``.
``score`` (``"sum"``, ``"mean"`` or ``"percent"``)
    ``sum``: total of the (reverse-scored) answers; when items may be missing
    (``min_items`` < number of items) the total is prorated, mean × number of items.
    ``mean``: mean of the answered items.
    ``percent``: ``100 × Σ(answer − min) / ((max − min) × items answered)``
    (the Oswestry Disability Index, Fairbank & Pynsent 2000: total / (5 × sections
    answered) × 100).
``min_items`` (int, default all items)
    Fewest items answered for a score; with fewer, the score is missing (NaN).
``unit`` (str)
    Unit written to ``scores.unit`` (``points``, ``mm``, ``%`` ...).
``title``, ``source`` (str, optional)
    What the instrument is and where its scoring is published.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, check_keys, message

__all__ = [
    "Instrument",
    "builtin_instruments",
    "instrument_scores",
    "read_instruments",
    "read_spec",
]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_METHODS = ("sum", "mean", "percent")
_KEYS = (
    "name",
    "title",
    "source",
    "items",
    "item_prefix",
    "min",
    "max",
    "integer",
    "reverse",
    "score",
    "min_items",
    "unit",
)
#: top-level keys of a survey --spec TOML file
_SPEC_KEYS = ("drop_columns", "instrument")


@dataclass(frozen=True)
class Instrument:
    """One questionnaire: its items, answer range, reverse-scored items and scoring rule.

    See the module docstring for the meaning of each field.
    """

    name: str
    items: tuple[str, ...]
    min: float
    max: float
    score: str
    unit: str
    integer: bool = True
    reverse: tuple[str, ...] = ()
    min_items: int = 0
    title: str = ""
    source: str = ""

    @property
    def score_range(self) -> tuple[float, float]:
        """Lowest and highest possible score."""
        if self.score == "sum":
            return self.min * len(self.items), self.max * len(self.items)
        if self.score == "mean":
            return self.min, self.max
        return 0.0, 100.0


def _fail(path, field, problem, value=...):
    raise ConfigError(
        message(
            problem,
            file=path,
            field=field,
            value=value,
            fix="see 'Declaring an instrument' in docs/surveys.md",
        )
    )


def _instrument(entry: dict, path: Path) -> Instrument:
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        _fail(path, "instrument.name", "must be lower case letters, digits and '_'", name)
    where = f"instrument {name!r}"
    check_keys(
        entry,
        _KEYS,
        where=f"instrument.{name}",
        file=path,
        fix="see 'Declaring an instrument' in docs/surveys.md",
    )
    for key in ("items", "min", "max", "score", "unit"):
        if key not in entry:
            _fail(path, f"{where}.{key}", "is missing")
    items = entry["items"]
    prefix = entry.get("item_prefix", name)
    if isinstance(items, int) and not isinstance(items, bool) and items > 0:
        names = tuple(f"{prefix}_{i}" for i in range(1, items + 1))
    elif isinstance(items, list) and items and all(isinstance(i, str) for i in items):
        names = tuple(i.strip().lower() for i in items)
    else:
        _fail(path, f"{where}.items", "must be a positive count or a list of item names", items)
    if len(set(names)) != len(names):
        _fail(path, f"{where}.items", "has repeated item names", list(names))
    lo, hi = entry["min"], entry["max"]
    if (
        not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi))
        or not lo < hi
    ):
        _fail(path, f"{where}.min/max", "must be numbers with min < max", [lo, hi])
    if entry["score"] not in _METHODS:
        _fail(path, f"{where}.score", f"must be one of {', '.join(_METHODS)}", entry["score"])
    rev = []
    for r in entry.get("reverse", []):
        if isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= len(names):
            rev.append(names[r - 1])
        elif isinstance(r, str) and r.strip().lower() in names:
            rev.append(r.strip().lower())
        else:
            _fail(path, f"{where}.reverse", "names an item the instrument does not have", r)
    min_items = entry.get("min_items", len(names))
    if not isinstance(min_items, int) or not 1 <= min_items <= len(names):
        _fail(path, f"{where}.min_items", f"must be an integer from 1 to {len(names)}", min_items)
    integer = entry.get("integer", True)
    if not isinstance(integer, bool):
        _fail(path, f"{where}.integer", "must be true or false", integer)
    return Instrument(
        name=name,
        items=names,
        min=float(lo),
        max=float(hi),
        score=entry["score"],
        unit=str(entry["unit"]),
        integer=integer,
        reverse=tuple(rev),
        min_items=min_items,
        title=entry.get("title", ""),
        source=entry.get("source", ""),
    )


def read_instruments(path: str | os.PathLike[str], /) -> dict[str, Instrument]:
    """Read the ``[[instrument]]`` tables of a TOML file.

    Returns
    -------
    dict of str to Instrument
        By instrument name, in file order.

    Raises
    ------
    ConfigError
        Unreadable TOML, a missing or invalid key, or a repeated instrument name; the
        message names the file, the instrument and the key.
    """
    path = Path(path)
    return _instruments(_toml(path), path)


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            message("does not exist", file=path, fix="check the --spec path")
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(message(f"is not valid TOML ({e})", file=path)) from None


def _instruments(doc: dict, path: Path) -> dict[str, Instrument]:
    entries = doc.get("instrument", [])
    if not isinstance(entries, list):
        _fail(path, "instrument", "must be an array of tables, written [[instrument]]")
    out: dict[str, Instrument] = {}
    for entry in entries:
        inst = _instrument(entry, path)
        if inst.name in out:
            _fail(path, "instrument.name", "is declared twice", inst.name)
        out[inst.name] = inst
    return out


def read_spec(path: str | os.PathLike[str] | None, /) -> tuple[dict[str, Instrument], list[str]]:
    """Instruments and extra identifier headers from a ``--spec`` TOML file.

    The file may hold ``[[instrument]]`` tables (see :mod:`cxlab.instruments`) and a
    top-level ``drop_columns = ["..."]`` list of more identifier headers to drop.

    Raises
    ------
    ConfigError
        As :func:`read_instruments`, or for any other top-level key (all of them are named
        at once, each with the nearest allowed key).
    """
    if path is None:
        return {}, []
    path = Path(path)
    doc = _toml(path)
    check_keys(
        doc,
        _SPEC_KEYS,
        file=path,
        fix="the allowed keys are drop_columns and [[instrument]] tables; see 'Declaring an "
        "instrument' in docs/surveys.md",
    )
    inst = _instruments(doc, path)
    drop = doc.get("drop_columns", [])
    if not isinstance(drop, list) or not all(isinstance(d, str) for d in drop):
        raise ConfigError(
            message("must be a list of header names", file=path, field="drop_columns", value=drop)
        )
    return inst, drop


def builtin_instruments() -> dict[str, Instrument]:
    """The instruments shipped with cxlab (``pain_nrs``, ``pain_vas``, ``odi``, ``tsk17``)."""
    out: dict[str, Instrument] = {}
    folder = resources.files(__name__)
    for name in ("builtin.toml", "tsk17.toml"):
        with resources.as_file(folder / name) as p:
            out.update(read_instruments(p))
    return out


def instrument_scores(
    answers: pd.DataFrame,
    instruments: dict[str, Instrument],
    /,
    *,
    by: tuple[str, ...] = ("subject_id", "session"),
) -> pd.DataFrame:
    """Score each instrument per group of answers.

    Parameters
    ----------
    answers : pandas.DataFrame
        Columns ``by`` + ``instrument``, ``item``, ``response`` (float; NaN = unanswered).
        Answers must already be validated (in range, known items, no duplicates).
    instruments : dict of str to Instrument
        Definitions of every instrument that appears in ``answers``.
    by : tuple of str, keyword-only
        Grouping columns (one score per group and instrument).

    Returns
    -------
    pandas.DataFrame
        Columns ``by`` + ``instrument``, ``score`` (float, NaN when fewer than
        ``min_items`` were answered), ``unit``, ``n_items_answered`` (int). Groups with
        no answered item give no row.

    Notes
    -----
    Reverse-scored items count ``min + max − answer``. ``sum`` with missing items is
    prorated: mean × number of items. ``percent``: ``100 Σ(a − min) / ((max − min) n)``
    (Fairbank & Pynsent 2000 for the ODI: 16 points over 10 sections → 32 %, over 9
    answered sections → 16 / 45 = 35.6 %).
    """
    keys = [*by, "instrument"]
    a = answers.loc[answers["response"].notna(), [*keys, "item", "response"]]
    params = pd.DataFrame(
        [
            {
                "instrument": i.name,
                "lo": i.min,
                "hi": i.max,
                "n_all": len(i.items),
                "min_items": i.min_items,
                "method": i.score,
                "unit": i.unit,
            }
            for i in instruments.values()
        ]
    )
    rev = pd.DataFrame(
        [(i.name, r) for i in instruments.values() for r in i.reverse],
        columns=["instrument", "item"],
    ).assign(rev=True)
    a = a.merge(params[["instrument", "lo", "hi"]], on="instrument", how="left")
    a = a.merge(rev, on=["instrument", "item"], how="left")
    is_rev = a["rev"].fillna(False).astype(bool).to_numpy()
    r = a["response"].to_numpy(float)
    a["scored"] = np.where(is_rev, a["lo"] + a["hi"] - r, r)
    g = a.groupby(keys, sort=True, dropna=False)["scored"].agg(["sum", "mean", "count"])
    g = g.reset_index().merge(params, on="instrument", how="left")
    n = g["count"].to_numpy(float)
    full = n == g["n_all"].to_numpy(float)
    total = np.where(full, g["sum"], g["mean"] * g["n_all"])
    percent = 100 * (g["sum"] - n * g["lo"]) / ((g["hi"] - g["lo"]) * n)
    score = np.select(
        [g["method"] == "sum", g["method"] == "mean"], [total, g["mean"]], default=percent
    )
    score = np.where(n >= g["min_items"].to_numpy(float), score, np.nan)
    return pd.DataFrame(
        {
            **{k: g[k] for k in keys},
            "score": score.astype(float),
            "unit": g["unit"].astype(str),
            "n_items_answered": g["count"].astype("int32"),
        }
    )
