"""Read a sessions sheet: when each subject's sessions took place.

Columns (header in row 1, any case; ``docs/store.md``): a subject label column (as for the
other sheets), ``session`` (the label used in the recording paths and surveys), and
optionally ``date`` (``YYYY-MM-DD`` or ``--date-format``) and ``session_index`` (0-based
order of the subject's sessions, whole number >= 0).
"""

from __future__ import annotations

import re

import pandas as pd

from cxlab.io._sheet import (
    OpenSheet,
    Problems,
    date_column,
    find_column,
    number_column,
    sheet_rows,
    text_column,
)

__all__ = ["read_sessions", "session_order"]

_RUNS = re.compile(r"(\d+)")


def _natural_key(label: str) -> tuple:
    runs = _RUNS.split(label)
    return (
        tuple((0, int(r)) if i % 2 else (1, r.casefold()) for i, r in enumerate(runs) if r),
        label,
    )


def session_order(sessions: pd.Series, /) -> pd.Series:
    """Rank session labels in natural order: the one session sort of cxlab.

    Labels that are all numbers sort by value (``"2" < "10"``, ``"1.5" < "2"``); otherwise
    by natural order, digit runs compared as integers and text case-insensitively
    (``"s2" < "s10"``, ``"visit 9" < "Visit 10"``, ``"post" < "pre"``), ties broken by the
    exact label.

    Parameters
    ----------
    sessions : pandas.Series
        Session labels (any dtype; compared as text unless all are numbers).

    Returns
    -------
    pandas.Series of int
        Dense rank (0 = first), aligned with ``sessions``.
    """
    s = sessions.astype(str)
    num = pd.to_numeric(s, errors="coerce")
    if len(s) and num.notna().all():
        return (num.rank(method="dense") - 1).astype(int)
    labels = sorted(s.unique(), key=_natural_key)
    return s.map({u: i for i, u in enumerate(labels)}).astype(int)


def read_sessions(
    sheet: OpenSheet, /, *, problems: Problems, date_format: str | None = None
) -> pd.DataFrame:
    """Read one sessions sheet (the sheet-reader contract of
    :mod:`cxlab.io._sheet`), recording every bad cell in ``problems``.

    Returns
    -------
    pandas.DataFrame
        :func:`~cxlab.io._sheet.sheet_rows` of ``session``, ``date``
        (datetime64, NaT when blank), ``session_index`` (float, NaN when blank). Rows with
        problems are included; the caller drops them.

    Raises
    ------
    InputFormatError
        No session column.
    """
    df, subj, *_, file = sheet
    ses = find_column(df.columns, ["session", "visit"], role="session", file=file)
    date_col = find_column(
        df.columns, ["date", "session_date", "visit_date"], role="date", file=file, required=False
    )
    idx_col = find_column(
        df.columns,
        ["session_index", "visit_index"],
        role="session index",
        file=file,
        required=False,
    )
    label = text_column(df, subj, what="subject label", file=file, problems=problems)
    session = text_column(df, ses, what="session", file=file, problems=problems)
    date = date_column(df, date_col, file=file, problems=problems, date_format=date_format)
    index = number_column(df, idx_col, file=file, problems=problems, ge=0, integer=True)
    return sheet_rows(df, label, file=file, session=session, date=date, session_index=index)
