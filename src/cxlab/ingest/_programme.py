"""Ingest programme logs (``interventions``, ``exercise_log``) and dynamometer sheets
(``strength``)."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pandas as pd

from cxlab.ingest._tables import IngestResult, _date, _land, _quarantine, _read_all, _write
from cxlab.io import Problems
from cxlab.store import Store

__all__ = ["ingest_interventions", "ingest_strength"]


def ingest_interventions(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: Store | str | os.PathLike[str],
    subject_column: str | None = None,
    date_format: str | None = None,
    drop_columns: Iterable[str] = (),
) -> IngestResult:
    """Ingest programme logs into ``interventions`` and ``exercise_log``.

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX programme logs (``docs/surveys.md``); exercise rows may be in the same
        file or in separate files.
    store : Store or path, keyword-only
        Destination store.
    subject_column, date_format, drop_columns
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
    from cxlab.io.programme import read_programme

    store = store if isinstance(store, Store) else Store(store)
    problems = Problems()
    files, shas, frames = _read_all(
        paths,
        lambda p: read_programme(
            p,
            problems=problems,
            subject_column=subject_column,
            date_format=date_format,
            drop_columns=drop_columns,
        ),
        problems,
    )
    prog = pd.concat([f[0] for f in frames], ignore_index=True) if frames else pd.DataFrame()
    ex = pd.concat([f[1] for f in frames], ignore_index=True) if frames else pd.DataFrame()
    pv = ["start_date", "end_date", "sessions_prescribed", "sessions_attended"]
    prog = _land(
        prog,
        problems,
        ["label", "arm"],
        pv,
        field=None,
        table="interventions",
        what="subject and arm given twice with different dates or sessions",
    )
    ev = ["sets", "reps", "load_kg", "rpe"]
    ex = _land(
        ex,
        problems,
        ["label", "date", "exercise"],
        ev,
        field=None,
        table="exercise_log",
        what="subject, date and exercise given twice with different values",
    )
    frames_out = {"interventions": pd.DataFrame(), "exercise_log": pd.DataFrame()}
    if len(prog):
        frames_out["interventions"] = pd.DataFrame(
            {
                "_file": prog["file"],
                "subject_id": prog["subject_id"],
                "arm": prog["arm"],
                "start_date": _date(prog["start_date"]),
                "end_date": _date(prog["end_date"]),
                "sessions_prescribed": prog["sessions_prescribed"].astype("Int32"),
                "sessions_attended": prog["sessions_attended"].astype("Int32"),
                "adherence": prog["adherence"].astype(float),
            }
        )
    if len(ex):
        frames_out["exercise_log"] = pd.DataFrame(
            {
                "_file": ex["file"],
                "subject_id": ex["subject_id"],
                "date": _date(ex["date"]),
                "exercise": ex["exercise"],
                "sets": ex["sets"].astype("Int32"),
                "reps": ex["reps"].astype("Int32"),
                "load_kg": ex["load_kg"].astype(float),
                "rpe": ex["rpe"].astype(float),
            }
        )
    for k, v in frames_out.items():
        if v.empty:
            frames_out[k] = pd.DataFrame({"_file": pd.Series(dtype=object)})
    quarantine = _quarantine(problems, shas, "interventions")
    rows = _write(store, frames_out, files, shas, "interventions", quarantine)
    return IngestResult(rows=rows, rejected=quarantine, files=len(files))


def ingest_strength(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: Store | str | os.PathLike[str],
    subject_column: str | None = None,
    drop_columns: Iterable[str] = (),
) -> IngestResult:
    """Ingest dynamometer sheets into ``strength`` (peak torque in N·m).

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files (``docs/surveys.md``).
    store : Store or path, keyword-only
        Destination store.
    subject_column, drop_columns
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
    from cxlab.io.strength import read_strength

    store = store if isinstance(store, Store) else Store(store)
    problems = Problems()
    files, shas, frames = _read_all(
        paths,
        lambda p: read_strength(
            p, problems=problems, subject_column=subject_column, drop_columns=drop_columns
        ),
        problems,
    )
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    df = _land(
        df,
        problems,
        ["label", "session", "muscle_group", "side"],
        ["peak_torque_nm"],
        field=None,
        table="strength",
        what="subject, session, muscle group and side given twice with different torques",
    )
    out = pd.DataFrame({"_file": pd.Series(dtype=object)})
    if len(df):
        out = pd.DataFrame(
            {
                "_file": df["file"],
                "subject_id": df["subject_id"],
                "session": df["session"],
                "muscle_group": df["muscle_group"],
                "side": df["side"],
                "peak_torque_nm": df["peak_torque_nm"].astype(float),
            }
        )
    quarantine = _quarantine(problems, shas, "strength")
    rows = _write(store, {"strength": out}, files, shas, "strength", quarantine)
    return IngestResult(rows=rows, rejected=quarantine, files=len(files))
