"""The ``sessions`` rows an ingest of recordings contributes: one part per recording.

A recording says which subject and session it belongs to (its path) and, sometimes, when it
was made: a ``{date}`` token of the path pattern (source ``path``) or the date the file itself
states (``recorded_at`` in the ``recordings`` table when a reader fills it; source
``recording``). The part is keyed by the recording id, like the recording's other tables, so
re-ingesting a changed file replaces it and a stale recording takes its row with it.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pyarrow as pa

from cxlab._check import message
from cxlab.schemas import schema_of, validate
from cxlab.store import Store

__all__ = ["parse_date", "record_sessions"]


def parse_date(text: str | None, /) -> dt.date | None:
    """``2024-03-05`` or ``20240305`` -> a date; ``None`` for no text.

    Raises
    ------
    ValueError
        Not a real calendar date (``2024-13-40``).
    """
    if not text:
        return None
    digits = str(text).replace("-", "")
    return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


def _recorded_at(st: Store, results) -> dict[str, dt.date]:
    """recording_id -> date stated by the file: from this run's outcomes, else (a file
    ingested earlier) from the ``recordings`` table."""
    if "recorded_at" not in schema_of("recordings").names or not results:
        return {}
    now = {o.sha256[:16]: o.recorded_at for o in results if o.status == "ingested"}
    earlier = [o.sha256[:16] for o in results if o.status == "unchanged"]
    if earlier:
        rec = st.table(
            "recordings",
            columns=["recording_id", "recorded_at"],
            filters=[("recording_id", "in", earlier)],
        )
        now |= dict(zip(rec["recording_id"], rec["recorded_at"], strict=True))
    ids = sorted(r for r, v in now.items() if v is not None and not pd.isna(v))
    when = pd.to_datetime(
        pd.Series([str(now[r]) for r in ids], dtype=object),
        errors="coerce",
        utc=True,
        format="ISO8601",
    )
    return {r: d.date() for r, d in zip(ids, when, strict=True) if pd.notna(d)}


def record_sessions(
    st: Store,
    tx,
    results,
    /,
    *,
    tasks,
    dates: dict[str, str | None],
    known: pd.DataFrame,
    sweep: bool = True,
) -> list[str]:
    """Write the ``sessions`` part of every recording ingested, into the store transaction
    ``tx`` (:meth:`cxlab.store.Store.transaction`); return warning lines.

    Parameters
    ----------
    results : list of Outcome
        The ingest's outcomes (``ingested`` ones, and ``unchanged`` ones whose part a killed
        run never wrote; only those with a subject and session write rows). Parts of
        recordings no longer in the store are removed, so a kill at any moment is finished
        by the next run.
    tasks : list of Task
        The tasks ingested (stored path, pseudonymised ``subject_id``, ``session``).
    dates : dict
        Stored source path -> the ``{date}`` text its path gave (or ``None``).
    known : pandas.DataFrame
        ``recordings`` (``recording_id``, ``source_path``) before this ingest: parts of
        recordings replaced by a new version of the same path are deleted.
    sweep : bool
        Also remove parts of recordings no longer in the store that an older cxlab left
        (reads every key of both tables: only for a store of an older layout,
        :meth:`cxlab.store.Store.older_layout`).
    """
    notes: list[str] = []
    done = [o for o in results if o.status in ("ingested", "unchanged")]
    stated = _recorded_at(st, done)
    by_path = {t.rel: t for t in tasks}
    paths = {o.rel for o in done}
    mine = known[known["source_path"].isin(paths)]
    earlier = mine.groupby("source_path")["recording_id"].agg(set)
    for o in sorted(done, key=lambda o: o.rel):
        rid = o.sha256[:16]
        for old in sorted(earlier.get(o.rel, set()) - {rid}):
            tx.delete("sessions", key=old)
        t = by_path.get(o.rel)
        if t is None or not t.subject_id or not t.session:
            continue
        sid, session = t.subject_id, t.session
        rows = []
        try:
            day = parse_date(dates.get(o.rel))
        except ValueError:
            notes.append(
                message(
                    "is not a calendar date; the session is left undated",
                    file=o.shown,
                    field="{date}",
                    value=dates.get(o.rel),
                    fix="name the file with an ISO date such as 2024-03-05",
                )
            )
            day = None
        if day is not None:
            rows.append({"source": "path", "date": day})
        if rid in stated:
            rows.append({"source": "recording", "date": stated[rid]})
        if not rows:
            rows.append({"source": "path", "date": None})
        rows.sort(key=lambda r: r["source"])  # one row per source
        n = len(rows)
        part = pa.table(  # built in Arrow: one small part per recording, no pandas frame
            {
                "subject_id": pa.array([sid] * n, pa.string()),
                "session": pa.array([session] * n, pa.string()),
                "session_index": pa.nulls(n, pa.int32()),
                "date": pa.array([r["date"] for r in rows], pa.date32()),
                "source": pa.array([r["source"] for r in rows], pa.string()),
            }
        )
        tx.write("sessions", validate(part, "sessions"), key=rid)
    if not sweep:
        return notes
    recordings = st.keys("recordings")
    for key in sorted(st.keys("sessions") - recordings):  # left by an older cxlab
        if re.fullmatch(r"[0-9a-f]{16}", key):
            tx.delete("sessions", key=key)
    return notes
