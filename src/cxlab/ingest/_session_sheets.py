"""Ingest sessions sheets into the ``sessions`` table (source ``sheet``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Unpack

import pandas as pd

from cxlab.ingest._sheet_ingest import DatedSheetOptions as Dated
from cxlab.ingest._sheet_ingest import Landing, StoreLike, ingest_sheet
from cxlab.ingest._tables import IngestResult, _date
from cxlab.io.sessions import read_sessions

__all__ = ["ingest_sessions"]


def ingest_sessions(
    paths: Iterable[str | os.PathLike[str]], /, *, store: StoreLike, **options: Unpack[Dated]
) -> IngestResult:
    """Ingest sessions sheets (:func:`cxlab.io.sessions.read_sessions`) into ``sessions``.

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files with subject, session and optional date and session_index columns.
    store : Store or path, keyword-only
        Destination store.
    **options : DatedSheetOptions, keyword-only
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
    return ingest_sheet(
        paths, store=store, reader=read_sessions, landings=[_SESSIONS], stage="sessions", **options
    )


_SESSIONS = Landing(
    "sessions",
    ("label", "session"),
    ("date", "session_index"),
    "subject and session given twice with a different date or index",
    lambda d: pd.DataFrame(
        {
            "subject_id": d["subject_id"],
            "session": d["session"],
            "session_index": d["session_index"].astype("Int32"),
            "date": _date(d["date"]),
            "source": "sheet",
        }
    ),
    check_ranges=False,
)
