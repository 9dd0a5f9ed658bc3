"""Read programme logs: which intervention arm each subject followed, adherence, exercises.

One sheet (CSV/XLSX) may hold both kinds of row: a row whose ``exercise`` cell
is filled is an exercise-log row (date, exercise, sets, reps, load, RPE);
any other row is a programme row (arm, start and end date, sessions prescribed
and attended). Exercise rows may equally come in a file of their own. Headers
are listed in ``docs/surveys.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab.deid import normalise_header
from cxlab.io._sheet import (
    OpenSheet,
    Problems,
    date_column,
    find_column,
    number_column,
    text_column,
)
from cxlab.units import MASS, unit_factors

__all__ = ["ARM_COLUMNS", "LB_TO_KG", "read_programme"]

#: Accepted headers of the programme/arm column.
ARM_COLUMNS = ("arm", "programme", "program", "intervention")
#: Kilograms per avoirdupois pound (exact, international yard and pound agreement, 1959;
#: :data:`cxlab.units.MASS`).
LB_TO_KG = MASS["lb"]


def _name(s: pd.Series) -> pd.Series:
    return s.str.lower().str.replace(r"[\s\-]+", "_", regex=True)


def read_programme(
    sheet: OpenSheet, /, *, problems: Problems, date_format: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one programme log (the sheet-reader contract of
    :mod:`cxlab.io._sheet`), recording every bad cell in ``problems``.

    Returns
    -------
    programmes : pandas.DataFrame
        ``file``, ``row``, ``label`` (raw subject label), ``arm`` (lower case, spaces →
        ``_``), ``start_date``, ``end_date`` (datetime64), ``sessions_prescribed``,
        ``sessions_attended`` (float, NaN if blank), ``adherence`` = attended /
        prescribed (NaN when prescribed is blank or 0).
    exercises : pandas.DataFrame
        ``file``, ``row``, ``label``, ``date``, ``exercise`` (lower case, spaces → ``_``),
        ``sets``, ``reps``, ``load_kg`` (lb converted with :data:`LB_TO_KG`), ``rpe`` (0–10).

    Both include rows with problems; the caller drops them using ``problems``.

    Raises
    ------
    InputFormatError
        Neither an arm nor an exercise column.
    """
    df, subj, *_, file = sheet
    col = {normalise_header(c): c for c in df.columns}
    ex_col = col.get("exercise")
    arm_col = find_column(df.columns, ARM_COLUMNS, role="arm", file=file, required=ex_col is None)
    label = text_column(df, subj, what="subject label", file=file, problems=problems)
    is_ex = (df[ex_col] != "") if ex_col else pd.Series(False, index=df.index)
    prog = _programmes(df, ~is_ex, col, arm_col, file, problems, date_format)
    ex = _exercises(df, is_ex, col, file, problems, date_format)
    for d in (prog, ex):
        d.insert(0, "label", label.reindex(d["row"]).to_numpy())
        d.insert(0, "file", file)
    return prog.reset_index(drop=True), ex.reset_index(drop=True)


def _at(idx: pd.Index, /, **columns: pd.Series) -> pd.DataFrame:
    """``row`` = ``idx`` and each sheet-long column taken at those rows."""
    return pd.DataFrame({"row": idx, **{k: v[idx].to_numpy() for k, v in columns.items()}})


def _programmes(df, rows, col, arm_col, file, problems, date_format) -> pd.DataFrame:
    if arm_col is None:
        rows = rows & False
    idx = df.index[rows]
    arm = _name(df[arm_col]) if arm_col else pd.Series("", index=df.index)
    problems.add(file, df.index[rows & (arm == "")], arm_col, "", "arm is empty")
    kw = dict(file=file, problems=problems, rows=rows)
    start = date_column(df, col.get("start_date"), date_format=date_format, **kw)
    end = date_column(df, col.get("end_date"), date_format=date_format, **kw)
    back = (end < start).fillna(False) & rows
    problems.add(
        file,
        df.index[back],
        col.get("end_date"),
        df.loc[back, col["end_date"]] if back.any() else "",
        "end date is before the start date",
    )
    pres = number_column(df, col.get("sessions_prescribed"), ge=0, integer=True, **kw)
    att = number_column(df, col.get("sessions_attended"), ge=0, integer=True, **kw)
    with np.errstate(divide="ignore", invalid="ignore"):
        adherence = (att / pres).where(pres > 0)
    over = (adherence > 1.5).fillna(False)
    problems.add(
        file,
        df.index[over],
        col.get("sessions_attended"),
        df.loc[over, col["sessions_attended"]] if over.any() else "",
        "sessions attended exceed 1.5 × sessions prescribed",
    )
    return _at(
        idx,
        arm=arm,
        start_date=start,
        end_date=end,
        sessions_prescribed=pres,
        sessions_attended=att,
        adherence=adherence,
    )


def _exercises(df, rows, col, file, problems, date_format) -> pd.DataFrame:
    idx = df.index[rows]
    kw = dict(file=file, problems=problems, rows=rows)
    date = date_column(df, col.get("date"), date_format=date_format, **kw)
    sets = number_column(df, col.get("sets"), ge=0, integer=True, **kw)
    reps = number_column(df, col.get("reps"), ge=0, integer=True, **kw)
    rpe = number_column(df, col.get("rpe"), ge=0, le=10, **kw)
    load = _load_kg(df, rows, col, file, problems)
    ex = _name(df[col["exercise"]]) if "exercise" in col else pd.Series("", index=df.index)
    return _at(idx, date=date, exercise=ex, sets=sets, reps=reps, load_kg=load, rpe=rpe)


def _load_kg(df, rows, col, file, problems) -> pd.Series:
    kw = dict(file=file, problems=problems, ge=0, rows=rows)
    if "load_kg" in col:
        return number_column(df, col["load_kg"], **kw)
    if "load_lb" in col:
        return number_column(df, col["load_lb"], **kw) * LB_TO_KG
    if "load" not in col:
        return pd.Series(np.nan, index=df.index)
    v = number_column(df, col["load"], **kw)
    ucol = col.get("load_unit")
    unit = (df[ucol].str.lower() if ucol else pd.Series("", index=df.index)).where(rows, "")
    factor = unit_factors(unit, quantity="mass")
    bad = rows & v.notna() & factor.isna()
    problems.add(
        file, df.index[bad], ucol or "load_unit", unit[bad], "load unit is missing or not kg or lb"
    )
    return v * factor
