"""Read a test–retest sheet: each participant measured twice, for between-session reliability.

Columns (header in row 1, any case; ``docs/ingest.md``): a subject label column (as for the
other sheets), ``outcome`` (the experiment outcome name the values measure, in that
outcome's unit), ``value_1`` and ``value_2`` (also ``test``/``retest``, ``trial_1``/
``trial_2``, ``session_1``/``session_2``) and optionally ``interval_days`` (days between
the two tests, >= 0).
"""

from __future__ import annotations

import pandas as pd

from cxlab.io._sheet import (
    OpenSheet,
    Problems,
    find_column,
    number_column,
    sheet_rows,
    text_column,
)

__all__ = ["read_retest"]


def read_retest(sheet: OpenSheet, /, *, problems: Problems) -> pd.DataFrame:
    """Read one test–retest sheet (the sheet-reader contract of
    :mod:`cxlab.io._sheet`), recording every bad cell in ``problems``.

    Returns
    -------
    pandas.DataFrame
        :func:`~cxlab.io._sheet.sheet_rows` of ``outcome``, ``value_1``,
        ``value_2`` (float, the outcome's unit), ``interval_days`` (float, d; NaN when blank
        or absent). Rows with problems are included; the caller drops them.

    Raises
    ------
    InputFormatError
        No outcome, first or second value column.
    """
    df, subj, *_, file = sheet
    out_c = find_column(df.columns, ["outcome", "measure", "variable"], role="outcome", file=file)
    v1 = find_column(
        df.columns,
        ["value_1", "test", "test_1", "trial_1", "session_1", "day_1"],
        role="first test value",
        file=file,
    )
    v2 = find_column(
        df.columns,
        ["value_2", "retest", "test_2", "trial_2", "session_2", "day_2"],
        role="retest value",
        file=file,
    )
    iv = find_column(
        df.columns,
        ["interval_days", "interval", "days"],
        role="interval",
        file=file,
        required=False,
    )
    label = text_column(df, subj, what="subject label", file=file, problems=problems)
    outcome = text_column(df, out_c, what="outcome", file=file, problems=problems)
    opts = dict(file=file, problems=problems)
    return sheet_rows(
        df,
        label,
        file=file,
        outcome=outcome,
        value_1=number_column(df, v1, required=True, **opts),
        value_2=number_column(df, v2, required=True, **opts),
        interval_days=number_column(df, iv, ge=0, le=3650, **opts),
    )
