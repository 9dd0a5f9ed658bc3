"""Read questionnaire files (CSV/XLSX, wide or long layout) into validated item answers.

The layout is detected from the headers: a file with ``instrument``, ``item``
and ``response`` columns is *long* (one row per answer); otherwise it is *wide*
(one row per subject × session, one column per item: ``odi_1`` .. ``odi_10``,
``pain_nrs``). Direct identifiers are dropped on reading
(:mod:`cxlab.deid`); only the date of birth is kept, to compute ages.
See ``docs/surveys.md`` for every accepted header.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab._check import InputFormatError, message, warn
from cxlab.deid import normalise_header
from cxlab.instruments import Instrument
from cxlab.io._sheet import (
    UNCACHED_FORMULA,
    Problems,
    _not_a,
    date_column,
    find_column,
    open_sheet,
    parse_dates,
    parse_numbers,
    read_sheet,
    text_column,
)

__all__ = ["ANSWER_COLUMNS", "read_survey"]

#: Columns of the frame :func:`read_survey` returns.
ANSWER_COLUMNS = [
    "file",
    "row",
    "column",
    "label",
    "session",
    "date",
    "dob",
    "instrument",
    "item",
    "text",
    "response",
]
_LONG = ("instrument", "item", "response")


def read_survey(
    path: str | os.PathLike[str],
    /,
    *,
    instruments: dict[str, Instrument],
    problems: Problems,
    subject_column: str | None = None,
    date_format: str | None = None,
    drop_columns: Iterable[str] = (),
    only: str | None = None,
) -> pd.DataFrame:
    """Read one survey file into one row per answered item, recording every bad cell.

    Parameters
    ----------
    path : path-like
        ``.csv`` or ``.xlsx``; header in row 1.
    instruments : dict of str to Instrument, keyword-only
        The instruments whose items may appear (:mod:`cxlab.instruments`).
    problems : Problems, keyword-only
        Collector; each bad cell is added with its spreadsheet row number.
    subject_column : str, optional
        Header of the subject label column (default: the one accepted header present).
    date_format : str, optional
        ``strptime`` format of the ``date`` and birth-date cells (default ISO ``YYYY-MM-DD``).
    drop_columns : iterable of str
        More identifier headers to drop (beyond :data:`cxlab.deid.IDENTIFIER_COLUMNS`).
    only : str, optional
        Read only this instrument: other instruments' columns (wide) or rows (long) are
        skipped without complaint.

    Returns
    -------
    pandas.DataFrame
        :data:`ANSWER_COLUMNS`: ``file`` (str path), ``row`` (int, spreadsheet row),
        ``column`` (header of the answer cell), ``label`` (raw subject label),
        ``session`` (str), ``date`` and ``dob`` (datetime64, NaT if absent),
        ``instrument``, ``item`` (str), ``text`` (the cell as written), ``response``
        (float). Blank answers are left out.
        Rows with problems are *included*; the caller drops them using ``problems``.

    Raises
    ------
    InputFormatError
        If the whole file is unusable: unreadable, no (or two) subject columns, no
        session column, or (wide) no item column of a known instrument.
    """
    df, subj, dob_text, dob_col, file = open_sheet(
        path, subject_column=subject_column, drop_columns=drop_columns
    )
    ses = find_column(df.columns, ["session"], role="session", file=path)
    date_col = find_column(df.columns, ["date"], role="date", file=path, required=False)
    norm = {c: normalise_header(c) for c in df.columns}
    if all(any(v == k for v in norm.values()) for k in _LONG):
        if only is not None:
            inst_col = next(c for c, v in norm.items() if v == "instrument")
            other = df[inst_col].str.lower().isin([n for n in instruments if n != only])
            df, dob_text = df.loc[~other], dob_text.loc[~other]
        chosen = instruments if only is None else {only: instruments[only]}
        long = _long_answers(df, norm, file, chosen, problems)
    else:
        skip = (
            set()
            if only is None
            else {it for n, i in instruments.items() if n != only for it in i.items}
        )
        used = {subj, ses, date_col, *(c for c in df.columns if norm[c] in skip)}
        chosen = instruments if only is None else {only: instruments[only]}
        long = _wide_answers(df, norm, file, chosen, used=used)
    # row-level fields, checked once per spreadsheet row
    rows = df.index
    label = text_column(df, subj, what="subject label", file=file, problems=problems)
    session = text_column(df, ses, what="session", file=file, problems=problems)
    date = date_column(
        df, date_col, what="date", file=file, problems=problems, date_format=date_format
    )
    fmt = date_format or "YYYY-MM-DD"
    dob, bad_dob = parse_dates(dob_text, date_format=date_format)
    problems.add(
        file, rows[bad_dob], dob_col, None, f"date of birth is not in the form {fmt}", redact=True
    )
    late = (dob > date).fillna(False) | (dob > pd.Timestamp.today()).fillna(False)
    problems.add(
        file, rows[late], dob_col, None, "date of birth is after the session date", redact=True
    )
    old = ((date - dob).dt.days > 130 * 365.25).fillna(False)
    problems.add(
        file, rows[old], dob_col, None, "date of birth gives an age over 130 years", redact=True
    )
    at = long["row"].to_numpy()
    long["label"] = label.reindex(at).to_numpy()
    long["session"] = session.reindex(at).to_numpy()
    long["date"] = date.reindex(at).to_numpy()
    long["dob"] = dob.reindex(at).to_numpy()
    long["file"] = file
    _check_answers(long, instruments, problems)
    return long[ANSWER_COLUMNS].reset_index(drop=True)


def _wide_answers(df, norm, file, instruments, *, used) -> pd.DataFrame:
    item_of = {it: inst.name for inst in instruments.values() for it in inst.items}
    cols = [c for c in df.columns if norm[c] in item_of]
    if not cols:
        known = ", ".join(sorted(instruments))
        raise InputFormatError(
            message(
                "has no item column of a known instrument",
                file=file,
                field="header",
                fix=f"name item columns like odi_1 or pain_nrs "
                f"(instruments: {known}), or use the long layout",
            )
        )
    ignored = [c for c in df.columns if c not in cols and c not in used]
    if ignored:
        warn(
            "columns are not items of a known instrument and are ignored",
            file=file,
            field="header",
            value=ignored,
        )
    m = df[cols].melt(ignore_index=False, var_name="column", value_name="text")
    m = m.loc[m["text"] != ""].reset_index()
    m["item"] = m["column"].map(norm)
    m["instrument"] = m["item"].map(item_of)
    return m.sort_values("row", kind="stable").reset_index(drop=True)


def _long_answers(df, norm, file, instruments, problems) -> pd.DataFrame:
    by = {v: k for k, v in norm.items()}
    inst_col, item_col, resp_col = by["instrument"], by["item"], by["response"]
    m = pd.DataFrame(
        {
            "row": df.index.to_numpy(),
            "column": resp_col,
            "instrument": df[inst_col].str.lower().to_numpy(),
            "item": df[item_col].str.lower().to_numpy(),
            "text": df[resp_col].to_numpy(),
        }
    )
    unknown = ~m["instrument"].isin(list(instruments))
    problems.add(
        file,
        m.loc[unknown, "row"],
        inst_col,
        m.loc[unknown, "instrument"],
        f"is not a known instrument ({', '.join(sorted(instruments))}); declare it with --spec",
    )
    single = {n: i.items[0] for n, i in instruments.items() if len(i.items) == 1}
    numbered = m["item"].str.fullmatch(r"\d+")
    prefix = {n: i.items[0].rsplit("_", 1)[0] for n, i in instruments.items()}
    m["item"] = np.where(
        numbered, m["instrument"].map(prefix).fillna("") + "_" + m["item"], m["item"]
    )
    blank_single = (m["item"] == "") | (m["item"] == "_1")
    m["item"] = np.where(
        blank_single & m["instrument"].isin(list(single)), m["instrument"].map(single), m["item"]
    )
    valid = pd.DataFrame(
        [(n, it) for n, i in instruments.items() for it in i.items], columns=["instrument", "item"]
    ).assign(ok=True)
    ok = m[["instrument", "item"]].merge(valid, how="left")["ok"].fillna(False).to_numpy(bool)
    bad_item = ~ok & ~unknown.to_numpy()
    problems.add(
        file,
        m.loc[bad_item, "row"],
        item_col,
        m.loc[bad_item, "item"],
        "is not an item of this instrument",
    )
    return m.loc[m["text"] != ""].reset_index(drop=True)


def _check_answers(
    long: pd.DataFrame, instruments: dict[str, Instrument], problems: Problems
) -> None:
    """Parse ``long['text']`` into ``long['response']`` and record out-of-rule answers."""
    file = long["file"].iloc[0] if len(long) else ""
    value, bad_num = parse_numbers(long["text"])
    long["response"] = value
    bad = long.loc[bad_num]
    _add_each(problems, file, bad, "answer " + _not_a("a number", bad["text"]))
    params = pd.DataFrame(
        [
            {"instrument": n, "lo": i.min, "hi": i.max, "integer": i.integer}
            for n, i in instruments.items()
        ]
    )
    p = long[["instrument"]].merge(params, how="left")
    v = value.to_numpy()
    known = p["lo"].notna().to_numpy() & ~np.isnan(v)
    out = known & ((v < p["lo"].to_numpy()) | (v > p["hi"].to_numpy()))
    if out.any():
        sel = long.loc[out]
        rule = (
            "answer is outside "
            + p.loc[out, "lo"].map("{:g}".format).to_numpy()
            + " to "
            + p.loc[out, "hi"].map("{:g}".format).to_numpy()
            + " for "
            + sel["instrument"]
        )
        _add_each(problems, file, sel, rule)
    frac = known & ~out & p["integer"].fillna(False).astype(bool).to_numpy() & (v != np.round(v))
    _add_each(problems, file, long.loc[frac], "answer must be a whole number")


def _add_each(problems: Problems, file: str, sel: pd.DataFrame, rule: pd.Series | str) -> None:
    """Add problems whose column (and rule text) differ between rows, one call per group."""
    if not len(sel):
        return
    rule = pd.Series(rule, index=sel.index) if isinstance(rule, str) else rule
    key = sel["column"].astype(str) + "\x00" + rule.astype(str)
    for _k, idx in sel.groupby(key, sort=True).groups.items():
        part = sel.loc[idx]
        problems.add(
            file,
            part["row"],
            str(part["column"].iloc[0]),
            part["text"].astype(str).str.removeprefix(UNCACHED_FORMULA),
            str(rule.loc[idx].iloc[0]),
        )


def layout_of(path: str | os.PathLike[str], /) -> str:
    """``"long"`` if the file's headers hold ``instrument``, ``item`` and ``response``, else
    ``"wide"``."""
    heads = {normalise_header(c) for c in read_sheet(Path(path)).columns}
    return "long" if set(_LONG) <= heads else "wide"
