"""One unit of ingest work, run in a worker process: read, convert, write, or clean up.

The ``recordings`` row is written last, so a recording is visible as ingested only once all its
tables are written; any failure deletes every part the unit wrote.
"""

from __future__ import annotations

import math
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxlab._check import CxlabError, SchemaError
from cxlab.io import Recording, format_of, read, read_mot, read_trc
from cxlab.schemas import validate
from cxlab.store import Store

__all__ = ["Outcome", "Task", "run_task"]

SIGNAL_TABLES = ("markers", "analogs", "forces", "events")
ALL_TABLES = (*SIGNAL_TABLES, "recordings")


@dataclass
class Task:
    """Everything a worker needs; built by the parent (pseudonyms are made there)."""

    store: str
    root: str
    files: list[str]
    rel: str  # stored source_path (subject label pseudonymised)
    shown: str  # the real relative path, for messages
    sha256: str
    subject_id: str | None
    session: str | None
    task: str | None
    trial: str | None
    options: dict = field(default_factory=dict)  # reader options by format, e.g. {"csv": {...}}
    label: str | None = None  # the raw subject label, only to mask it in messages (never stored)

    @property
    def recording_id(self) -> str:
        return self.sha256[:16]


@dataclass
class Outcome:
    """What happened to one unit."""

    rel: str
    sha256: str
    status: str  # "ingested" | "failed"
    format: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    stage: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    shown: str = ""  # the real relative path, for the summary (never stored)
    masks: list[tuple[str, str]] = field(default_factory=list)  # raw -> pseudonymised names


def _read_unit(files: list[Path], options: dict) -> Recording:
    if len(files) == 1:
        return read(files[0], **options.get(format_of(files[0]), {}))
    trc_path, mot_path = files
    forces = read_mot(mot_path)
    rec = read_trc(trc_path, up=forces.meta["up"] or "z")
    rec.platforms = forces.platforms
    if forces.analogs.shape[1]:
        rec.analogs, rec.analog_labels = forces.analogs, forces.analog_labels
        rec.analog_units = forces.analog_units
    rec.analog_rate_hz = forces.analog_rate_hz
    rec.meta["companions"] = [str(mot_path)]
    dt = forces.meta["time_offset_s"] - rec.meta["time_offset_s"]
    if abs(dt) > 0.5 / forces.analog_rate_hz:
        warnings.warn(f"{mot_path.name}: forces start {dt:+.4f} s after the markers of "
                      f"{trc_path.name}; both are stored from sample 0", stacklevel=2)
    return rec


def recording_row(rec: Recording, task: Task, fmt: str) -> pd.DataFrame:
    """The one ``recordings`` row of a unit."""
    n_markers = rec.markers.shape[1] if rec.markers.ndim == 3 else 0
    n_frames = rec.markers.shape[0] if n_markers else max(
        [rec.analogs.shape[0], *(p.force.shape[0] for p in rec.platforms)])
    vendor = " / ".join(str(v) for v in (rec.meta.get("manufacturer"), rec.meta.get("software"))
                        if v) or None
    rate = rec.point_rate_hz if n_markers else math.nan
    arate = rec.analog_rate_hz if (rec.analogs.size or rec.platforms) else math.nan
    return pd.DataFrame({
        "recording_id": [task.recording_id], "subject_id": [task.subject_id],
        "session": [task.session], "task": [task.task], "trial": [task.trial],
        "source_path": [task.rel], "source_sha256": [task.sha256], "format": [fmt],
        "vendor": [vendor], "point_rate_hz": [float(rate)], "analog_rate_hz": [float(arate)],
        "n_frames": [int(n_frames)], "first_frame": [max(int(rec.first_frame), 0)],
    })


def run_task(task: Task, /) -> Outcome:
    """Read the unit's file(s), write its tables (``recordings`` last); on failure, clean up."""
    store = Store(task.store)
    files = [Path(f) for f in task.files]
    rid = task.recording_id
    out = Outcome(task.rel, task.sha256, "failed", shown=task.shown)
    stage = "read"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fmt = format_of(files[0])
            out.format = fmt
            rec = _read_unit(files, task.options)
            stage = "convert"
            tables = rec.to_tables(rid)
            row = recording_row(rec, task, fmt or "")
        out.warnings = list(dict.fromkeys(_short_warning(w, files) for w in caught))
        # Validate every table before writing any, so a bad table cannot leave the
        # recording half-replaced (with --force, earlier good rows stay untouched).
        stage = "validate"
        valid = {name: validate(tables[name], name) for name in SIGNAL_TABLES
                 if len(tables[name])}
        valid["recordings"] = validate(row, "recordings")
        stage = "write"
        for name in SIGNAL_TABLES:
            if name in valid:
                store.write(name, valid[name], key=rid, partition=task.subject_id)
            else:
                store.delete(name, key=rid)
            out.rows[name] = len(tables[name])
        store.write("recordings", valid["recordings"], key=rid)
        out.rows["recordings"] = 1
        out.status = "ingested"
    except BaseException as e:
        if stage == "write":  # a write failed midway: leave no partial recording
            for name in ALL_TABLES:
                try:
                    store.delete(name, key=rid)
                except OSError:
                    pass
        if isinstance(e, KeyboardInterrupt):
            raise
        out.stage = "validate" if isinstance(e, SchemaError) else stage
        out.reason = _reason(e, stage)
        out.masks = _masks(task)
        out.rows = {}
    return out


def _short_warning(w: warnings.WarningMessage, files: list[Path]) -> str:
    text = str(w.message)
    if text.startswith(f"{files[0].name}: "):  # the summary already names the file
        text = text.removeprefix(f"{files[0].name}: ")
    return text


def _reason(e: BaseException, stage: str = "read") -> str:
    if isinstance(e, CxlabError):
        return " ".join(str(e).split())
    if stage == "write" and isinstance(e, OSError) and e.errno is not None:  # disk full
        return (f"could not be written to the store: {e.strerror} (errno {e.errno}); free "
                "space or fix the store's permissions and run the ingest again")
    last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"unexpected {type(e).__name__}{where}: {text}"[:500]


def _masks(task: Task) -> list[tuple[str, str]]:
    """(raw, pseudonymised) for every path, then file name, of the unit: a
    companion ``.mot`` is named in its own errors and carries the raw label too."""
    if not task.label or not task.subject_id:
        return []
    raw = [r for f in task.files for r in (str(f), Path(f).name) if task.label in r]
    return [(r, r.replace(task.label, task.subject_id)) for r in raw]


def quarantine_rows(out: Outcome, /) -> pd.DataFrame:
    """The ``quarantine`` row of a failed unit."""
    reason = out.reason or ""
    if out.shown and out.shown != out.rel:  # keep the raw subject label out of the store
        reason = reason.replace(out.shown, out.rel)
        reason = reason.replace(Path(out.shown).name, Path(out.rel).name)
    for raw, masked in out.masks:
        reason = reason.replace(raw, masked)
    return pd.DataFrame({
        "source_path": [out.rel], "source_sha256": [out.sha256 or None], "stage": [out.stage],
        "row": pd.array([None], dtype="Int64"), "field": [None], "value": [None],
        "reason": [reason],
    })

