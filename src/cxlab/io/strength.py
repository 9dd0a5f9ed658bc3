"""Read dynamometer exports: peak torque per subject, session, muscle group and side, in N·m.

The torque unit comes from the header (``peak_torque_nm``, ``Peak torque (ft·lbf)``) or,
per row, from a ``unit`` column; ft·lbf is converted with
:data:`FTLBF_TO_NM` = 0.3048 m × 4.4482216152605 N (exact by definition of the
international foot and pound-force). Headers are listed in ``docs/surveys.md``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cxlab._check import InputFormatError, message
from cxlab.deid import normalise_header
from cxlab.io._sheet import (
    OpenSheet,
    Problems,
    find_column,
    number_column,
    sheet_rows,
    text_column,
)
from cxlab.units import MOMENT, unit_factors

__all__ = ["FTLBF_TO_NM", "read_strength", "torque_unit_factor"]

#: Newton metres per foot pound-force: 0.3048 m × 4.4482216152605 N (:data:`cxlab.units.MOMENT`).
FTLBF_TO_NM = MOMENT["ft.lbf"]
_TORQUE = re.compile(r"peak_torque(?:[_(\[]+(?P<unit>[^)\]]*)[)\]]?)?")
_SIDES = {"left": "left", "l": "left", "right": "right", "r": "right"}


def torque_unit_factor(units: pd.Series, /) -> pd.Series:
    """N·m per unit for torque unit strings (``N.m``, ``N·m``, ``Nm``, ``ft·lbf``, ``ft-lb``...).

    Returns
    -------
    pandas.Series of float
        The factor, NaN for an unknown unit.
    """
    return unit_factors(units, quantity="moment")


def read_strength(sheet: OpenSheet, /, *, problems: Problems) -> pd.DataFrame:
    """Read one dynamometer sheet (the sheet-reader contract of
    :mod:`cxlab.io._sheet`), recording every bad cell in ``problems``.

    Returns
    -------
    pandas.DataFrame
        :func:`~cxlab.io._sheet.sheet_rows` of ``session``, ``muscle_group``
        (lower case, spaces → ``_``), ``side`` (``left``/``right``), ``peak_torque_nm``
        (float, N·m). Rows with problems are included; the caller drops them.

    Raises
    ------
    InputFormatError
        No session, muscle group, side or peak-torque column; a torque header without a
        known unit and no ``unit`` column.
    """
    df, subj, *_, file = sheet
    ses = find_column(df.columns, ["session"], role="session", file=file)
    mg = find_column(
        df.columns, ["muscle_group", "muscle", "movement"], role="muscle group", file=file
    )
    side_col = find_column(df.columns, ["side", "limb"], role="side", file=file)
    tq = [c for c in df.columns if _TORQUE.fullmatch(normalise_header(c))]
    if len(tq) != 1:
        raise InputFormatError(
            message(
                "needs exactly one peak torque column",
                file=file,
                field="header",
                value=tq,
                fix="name it peak_torque_nm, peak_torque_ftlbf, or peak_torque with a unit column",
            )
        )
    tq = tq[0]
    unit_in_header = _TORQUE.fullmatch(normalise_header(tq)).group("unit") or ""
    unit_col = find_column(
        df.columns, ["unit", "torque_unit"], role="unit", file=file, required=False
    )
    if unit_in_header:
        factor = torque_unit_factor(pd.Series(unit_in_header, index=df.index))
        if factor.isna().any():
            raise InputFormatError(
                message(
                    "has an unknown torque unit in its header",
                    file=file,
                    field=tq,
                    value=unit_in_header,
                    fix="use N.m or ft.lbf",
                )
            )
    elif unit_col is None:
        raise InputFormatError(
            message(
                "gives no torque unit",
                file=file,
                field=tq,
                fix="add a unit column (N.m or ft.lbf) or put the "
                "unit in the header, e.g. peak_torque_nm",
            )
        )
    else:
        factor = torque_unit_factor(df[unit_col])
        bad = factor.isna()
        problems.add(
            file,
            df.index[bad],
            unit_col,
            df.loc[bad, unit_col],
            "is not a torque unit (N.m or ft.lbf)",
        )
    label = text_column(df, subj, what="subject label", file=file, problems=problems)
    session = text_column(df, ses, what="session", file=file, problems=problems)
    group = text_column(df, mg, what="muscle group", file=file, problems=problems)
    group = group.str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    side = df[side_col].str.lower().map(_SIDES)
    problems.add(
        file,
        df.index[side.isna()],
        side_col,
        df.loc[side.isna(), side_col],
        "side is not left or right (or L/R)",
    )
    torque = number_column(df, tq, file=file, problems=problems, ge=0, required=True)
    return sheet_rows(
        df,
        label,
        file=file,
        session=session,
        muscle_group=group,
        side=side,
        peak_torque_nm=(torque * factor).astype(np.float64),
    )
