"""Read a test–retest sheet: each participant measured twice, for between-session reliability.

Columns (header in row 1, any case; ``docs/ingest.md``): a subject label column (as for the
other sheets), ``outcome`` (the experiment outcome name the values measure, in that
outcome's unit), ``value_1`` and ``value_2`` (also ``test``/``retest``, ``trial_1``/
``trial_2``, ``session_1``/``session_2``) and optionally ``interval_days`` (days between
the two tests, >= 0).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from cxlab.io._sheet import (
    Problems,
    find_column,
    number_column,
    open_sheet,
    text_column,
)

__all__ = ["read_retest"]


def read_retest(
    path: str | os.PathLike[str],
    /,
    *,
    problems: Problems,
    subject_column: str | None = None,
    drop_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """Read one test–retest sheet, recording every bad cell in ``problems``.

    Parameters
    ----------
    path : path-like
        ``.csv`` or ``.xlsx``; header in row 1.
    problems : Problems, keyword-only
        Collector of bad cells (spreadsheet row numbers, header = 1).
    subject_column, drop_columns
        As for :func:`cxlab.io.surveys.read_survey`.

    Returns
    -------
    pandas.DataFrame
        ``file``, ``row``, ``label`` (raw subject label), ``outcome``, ``value_1``,
        ``value_2`` (float, the outcome's unit), ``interval_days`` (float, d; NaN when blank
        or absent). Rows with problems are included; the caller drops them.

    Raises
    ------
    InputFormatError
        Unreadable file; no subject, outcome, first or second value column.
    """
    df, subj, *_, file = open_sheet(path, subject_column=subject_column, drop_columns=drop_columns)
    out_c = find_column(df.columns, ["outcome", "measure", "variable"], role="outcome", file=path)
    v1 = find_column(
        df.columns,
        ["value_1", "test", "test_1", "trial_1", "session_1", "day_1"],
        role="first test value",
        file=path,
    )
    v2 = find_column(
        df.columns,
        ["value_2", "retest", "test_2", "trial_2", "session_2", "day_2"],
        role="retest value",
        file=path,
    )
    iv = find_column(
        df.columns,
        ["interval_days", "interval", "days"],
        role="interval",
        file=path,
        required=False,
    )
    label = text_column(df, subj, what="subject label", file=file, problems=problems)
    outcome = text_column(df, out_c, what="outcome", file=file, problems=problems)
    opts = dict(file=file, problems=problems)
    return pd.DataFrame(
        {
            "file": file,
            "row": df.index.astype("int64"),
            "label": label,
            "outcome": outcome,
            "value_1": number_column(df, v1, required=True, **opts),
            "value_2": number_column(df, v2, required=True, **opts),
            "interval_days": number_column(df, iv, ge=0, le=3650, **opts),
        }
    ).reset_index(drop=True)
