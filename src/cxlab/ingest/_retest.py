"""Ingest test–retest sheets into the ``retest`` table (between-session reliability)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Unpack

import pandas as pd

from cxlab.ingest._sheet_ingest import Landing, StoreLike, ingest_sheet
from cxlab.ingest._sheet_ingest import SheetOptions as Options
from cxlab.ingest._tables import IngestResult
from cxlab.io.retest import read_retest

__all__ = ["ingest_retest"]

_RETEST = Landing(
    "retest",
    ("label", "outcome"),
    ("value_1", "value_2", "interval_days"),
    "subject and outcome given twice with different values",
    lambda d: pd.concat(  # long: one row per test, so the value column's unit is the outcome's
        [
            pd.DataFrame(
                {
                    "_file": d["file"],
                    "subject_id": d["subject_id"],
                    "outcome": d["outcome"],
                    "test": k,
                    "value": d[f"value_{k}"].astype(float),
                    "interval_days": d["interval_days"].astype(float),
                }
            ).astype({"test": "int32"})
            for k in (1, 2)
        ],
        ignore_index=True,
    ),
)


def ingest_retest(
    paths: Iterable[str | os.PathLike[str]], /, *, store: StoreLike, **options: Unpack[Options]
) -> IngestResult:
    """Ingest test–retest sheets (:func:`cxlab.io.retest.read_retest`) into ``retest``.

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files, one row per participant × outcome.
    store : Store or path, keyword-only
        Destination store.
    **options : SheetOptions, keyword-only
        As for :func:`cxlab.ingest.ingest_surveys`.

    Returns
    -------
    IngestResult
        Rows written to ``retest``; quarantine rows (stage ``retest``).

    Notes
    -----
    Runs compute each outcome's ICC(2,1), typical error and MDC95 from these pairs
    (:func:`cxlab.models.reliability.retest_reliability`) and prefer them to the
    within-session estimate. A participant × outcome given twice with different values
    rejects every copy.
    """
    return ingest_sheet(
        paths, store=store, reader=read_retest, landings=[_RETEST], stage="retest", **options
    )
