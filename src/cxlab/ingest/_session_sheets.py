"""Ingest sessions sheets into the ``sessions`` table (source ``sheet``)."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from cxlab.ingest._tables import IngestResult, _date, _land, _quarantine, _read_all, _write
from cxlab.io import Problems
from cxlab.store import Store

__all__ = ["ingest_sessions"]


def ingest_sessions(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: Store | str | os.PathLike[str],
    subject_column: str | None = None,
    date_format: str | None = None,
    drop_columns: Iterable[str] = (),
) -> IngestResult:
    """Ingest sessions sheets (:func:`cxlab.io.sessions.read_sessions`) into ``sessions``.

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files with subject, session and optional date and session_index columns.
    store : Store or path, keyword-only
        Destination store.
    subject_column, date_format, drop_columns
        As for :func:`cxlab.ingest.ingest_surveys`.

    Returns
    -------
    IngestResult
        Rows written to ``sessions``; quarantine rows (stage ``sessions``).

    Notes
    -----
    A sheet's date and index take precedence over the dates recordings and surveys give
    (see :func:`cxlab.experiments.analysis_table`). A subject × session given twice with
    a different date or index rejects every copy; bad cells reject their row only.
    """
    from cxlab.io.sessions import read_sessions

    store = store if isinstance(store, Store) else Store(store)
    problems = Problems()
    files, shas, frames = _read_all(
        paths,
        lambda p: read_sessions(
            p,
            problems=problems,
            subject_column=subject_column,
            date_format=date_format,
            drop_columns=drop_columns,
        ),
        problems,
    )
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    df = _land(
        df,
        problems,
        ["label", "session"],
        ["date", "session_index"],
        field=None,
        what="subject and session given twice with a different date or index",
    )
    out = pd.DataFrame({"_file": pd.Series(dtype=object)})
    if len(df):
        out = pd.DataFrame(
            {
                "_file": df["file"],
                "subject_id": df["subject_id"],
                "session": df["session"],
                "session_index": df["session_index"].astype("Int32"),
                "date": _date(df["date"]),
                "source": "sheet",
            }
        )
    quarantine = _quarantine(problems, shas, "sessions")
    rows = _write(store, {"sessions": out}, files, shas, "sessions", quarantine)
    return IngestResult(rows=rows, rejected=quarantine, files=len(files))
