"""Ingest programme logs (``interventions``, ``exercise_log``) and dynamometer sheets
(``strength``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Unpack

import pandas as pd

from cxlab.ingest._sheet_ingest import DatedSheetOptions as Dated
from cxlab.ingest._sheet_ingest import Landing, StoreLike, ingest_sheet
from cxlab.ingest._sheet_ingest import SheetOptions as Options
from cxlab.ingest._tables import IngestResult, _date
from cxlab.io.programme import read_programme
from cxlab.io.strength import read_strength

__all__ = ["ingest_interventions", "ingest_strength"]


def ingest_interventions(
    paths: Iterable[str | os.PathLike[str]], /, *, store: StoreLike, **options: Unpack[Dated]
) -> IngestResult:
    """Ingest programme logs into ``interventions`` and ``exercise_log``.

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX programme logs (``docs/surveys.md``); exercise rows may be in the same
        file or in separate files.
    store : Store or path, keyword-only
        Destination store.
    **options : DatedSheetOptions, keyword-only
        As for :func:`ingest_surveys`.

    Returns
    -------
    IngestResult
        Rows written to ``interventions`` and ``exercise_log``; quarantine rows.

    Notes
    -----
    ``adherence = sessions_attended / sessions_prescribed`` (NaN when prescribed is 0
    or blank). A subject × arm given twice with different values rejects both rows;
    likewise a subject × date × exercise.
    """
    return ingest_sheet(
        paths,
        store=store,
        reader=read_programme,
        landings=[_PROGRAMME, _EXERCISES],
        stage="interventions",
        **options,
    )


_PROGRAMME = Landing(
    "interventions",
    ("label", "arm"),
    ("start_date", "end_date", "sessions_prescribed", "sessions_attended"),
    "subject and arm given twice with different dates or sessions",
    lambda d: pd.DataFrame(
        {
            "subject_id": d["subject_id"],
            "arm": d["arm"],
            "start_date": _date(d["start_date"]),
            "end_date": _date(d["end_date"]),
            "sessions_prescribed": d["sessions_prescribed"].astype("Int32"),
            "sessions_attended": d["sessions_attended"].astype("Int32"),
            "adherence": d["adherence"].astype(float),
        }
    ),
)
_EXERCISES = Landing(
    "exercise_log",
    ("label", "date", "exercise"),
    ("sets", "reps", "load_kg", "rpe"),
    "subject, date and exercise given twice with different values",
    lambda d: pd.DataFrame(
        {
            "subject_id": d["subject_id"],
            "date": _date(d["date"]),
            "exercise": d["exercise"],
            "sets": d["sets"].astype("Int32"),
            "reps": d["reps"].astype("Int32"),
            "load_kg": d["load_kg"].astype(float),
            "rpe": d["rpe"].astype(float),
        }
    ),
)
_STRENGTH = Landing(
    "strength",
    ("label", "session", "muscle_group", "side"),
    ("peak_torque_nm",),
    "subject, session, muscle group and side given twice with different torques",
    lambda d: pd.DataFrame(
        {
            "subject_id": d["subject_id"],
            "session": d["session"],
            "muscle_group": d["muscle_group"],
            "side": d["side"],
            "peak_torque_nm": d["peak_torque_nm"].astype(float),
        }
    ),
)


def ingest_strength(
    paths: Iterable[str | os.PathLike[str]], /, *, store: StoreLike, **options: Unpack[Options]
) -> IngestResult:
    """Ingest dynamometer sheets into ``strength`` (peak torque in N·m).

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files (``docs/surveys.md``).
    store : Store or path, keyword-only
        Destination store.
    **options : SheetOptions, keyword-only
        As for :func:`ingest_surveys`.

    Returns
    -------
    IngestResult
        Rows written to ``strength``; quarantine rows.

    Notes
    -----
    One peak torque per subject × session × muscle group × side: a repeat with a
    different torque rejects every copy (export the session's peak, not each trial).
    """
    return ingest_sheet(
        paths, store=store, reader=read_strength, landings=[_STRENGTH], stage="strength", **options
    )
