"""One unit of ingest work, run in a worker process: read, convert, validate, stage.

The worker stages the unit's parts (:meth:`cxlab.store.Store.stage`: written, not yet
visible) and returns them in its :class:`Outcome`; the parent commits them, with the
unit's bookkeeping, in one atomic commit. On any failure the unit's staged parts are
removed, so nothing of a failed unit ever becomes visible.
"""

from __future__ import annotations

import math
import os
import traceback
import warnings
from dataclasses import dataclass, field, replace
from itertools import accumulate
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlab._check import CxlabError, SchemaError
from cxlab._workers import release_arrow_memory
from cxlab.deid import event_label, redact_text, vendor_text
from cxlab.ingest._paths import mask_label
from cxlab.io import Recording, format_of, read, read_mot, read_trc
from cxlab.io.recording import ARROW_TABLES, strip_subject_prefixes
from cxlab.pseudo import pseudonymise, require_key
from cxlab.schemas import schema_of, validate
from cxlab.store import COMPACT_TABLES, Staged, Store, recording_runs

__all__ = ["Outcome", "Task", "batches", "masks_of", "run_batch", "run_task"]

SIGNAL_TABLES = ARROW_TABLES  # a recording's tables, validated and staged in this order
ALL_TABLES = (*SIGNAL_TABLES, "recordings")
_CHECK_ORDER = ("recordings", *SIGNAL_TABLES)  # what a recording ingested alone checks first


@dataclass
class Task:
    """Everything a worker needs; built by the parent (the path's pseudonyms are made
    there; the worker makes those of labels inside the file, with the key whose
    :func:`cxlab.pseudo.key_check` is ``key_check``: the parent's)."""

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
    owner: int | None = None  # pid of the process that commits the staged parts
    size: int = 0  # bytes of ``files`` (what a batch holds: :func:`batches`)
    key_check: str | None = None  # the parent's key's check; None: not checked

    @property
    def recording_id(self) -> str:
        return self.sha256[:16]


#: What :func:`cxlab.ingest.ingest` did with one file (or pair): stored it, found it already
#: stored with the same bytes, or quarantined it (``Outcome.stage`` and ``.reason`` say why).
IngestStatus = Literal["ingested", "unchanged", "failed"]


@dataclass
class Outcome:
    """What happened to one unit."""

    rel: str
    sha256: str
    status: IngestStatus
    format: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    stage: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    shown: str = ""  # the real relative path, for the summary (never stored)
    masks: list[tuple[str, str]] = field(default_factory=list)  # raw -> pseudonymised names
    staged: list[Staged] = field(default_factory=list)  # the parts to commit (ingested only)
    recorded_at: str | None = None  # the date the file states (recordings.recorded_at)


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
        warnings.warn(
            f"{mot_path.name}: forces start {dt:+.4f} s after the markers of "
            f"{trc_path.name}; both are stored from sample 0",
            stacklevel=2,
        )
    return rec


def _private(rec: Recording, task: Task) -> tuple[Recording, Task]:
    """What of a recording's free text may be stored: subject prefixes split off labels
    (a prefix is a subject label: it becomes the subject when the path gave none; so does
    an export header's athlete identifier, ``meta["subject_label"]``), event
    labels from the standard vocabulary only (:func:`cxlab.deid.event_label`).

    The vendor text is reduced in :func:`recording_row`. Returns new objects; the inputs are
    not modified.
    """
    rec, subjects = strip_subject_prefixes(rec, pseudonym=pseudonymise)
    rec.events = [replace(e, label=event_label(e.label)) for e in rec.events]
    # an export header's athlete identifier (ForceDecks AthleteId, BioWare ID) is a subject
    # label: never kept raw; the subject when the path gave none
    header_label = rec.meta.pop("subject_label", None)
    if header_label and not subjects:
        subjects = [str(header_label).strip()]
    if task.subject_id is None and len(subjects) == 1:
        sid = pseudonymise(subjects[0])
        task = replace(
            task,
            subject_id=sid,
            label=subjects[0],
            rel=mask_label(task.rel, label=subjects[0], subject_id=sid),
        )
    return rec, task


def _meta_float(rec: Recording, key: str) -> float:
    try:
        v = float(rec.meta.get(key))
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _meta_text(rec: Recording, key: str) -> str | None:
    v = rec.meta.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def recording_row(rec: Recording, task: Task, fmt: str) -> pa.Table:
    """The one ``recordings`` row of a unit, as an Arrow table (missing numbers as null,
    as pandas' conversion makes NaN) for :func:`cxlab.schemas.validate`.

    ``warnings`` are the reader's :attr:`~cxlab.io.Recording.warnings` with the unit's file
    names and subject label masked as in ``source_path``; ``vendor`` keeps only vendor names
    and versions (:func:`cxlab.deid.vendor_text`).
    """
    n_markers = rec.markers.shape[1] if rec.markers.ndim == 3 else 0
    n_frames = (
        rec.markers.shape[0]
        if n_markers
        else max(
            [
                rec.analogs.shape[0],
                *(p.force.shape[0] for p in rec.platforms),
                *([rec.rotations.matrices.shape[0]] if rec.rotations is not None else []),
            ]
        )
    )
    vendor = (
        " / ".join(
            t
            for v in (rec.meta.get("manufacturer"), rec.meta.get("software"))
            if v and (t := vendor_text(str(v)))
        )
        or None
    )
    notes = [_mask_names(w, task) for w in rec.warnings]
    up = str(rec.meta.get("up_axis") or "").strip().lower().lstrip("+-") or None
    if up not in (None, "x", "y", "z"):
        notes.append(f"up axis {rec.meta.get('up_axis')!r} is not x, y or z; not stored")
        up = None
    mass = _meta_float(rec, "body_mass_kg")
    if not (math.isnan(mass) or 0 < mass <= 500):
        notes.append(f"stated body mass {mass:g} kg is not a person's; not stored")
        mass = math.nan
    rate = rec.point_rate_hz if n_markers else math.nan
    arate = rec.analog_rate_hz if (rec.analogs.size or rec.platforms) else math.nan
    row = {
        "recording_id": task.recording_id,
        "subject_id": task.subject_id,
        "session": task.session,
        "task": task.task,
        "trial": task.trial,
        "source_path": task.rel,
        "source_sha256": task.sha256,
        "format": fmt,
        "vendor": vendor,
        "point_rate_hz": float(rate),
        "analog_rate_hz": float(arate),
        "n_frames": int(n_frames),
        "first_frame": max(int(rec.first_frame), 0),
        "warnings": notes,
        "up_axis": up,
        "body_mass_kg": mass,
        "recorded_at": _meta_text(rec, "recorded_at"),
    }
    types = schema_of("recordings").arrow_schema()  # the types are the schema's, not restated
    return pa.table(
        {k: pa.array([v], types.field(k).type, from_pandas=True) for k, v in row.items()}
    )


def _mask_names(text: str, task: Task) -> str:
    """A message with the unit's raw paths and file names shown masked (as stored)."""
    for raw, masked in _masks(task):
        text = text.replace(raw, masked)
    if task.shown and task.shown != task.rel:
        text = text.replace(task.shown, task.rel)
    return redact_text(mask_label(text, label=task.label, subject_id=task.subject_id))


def run_task(task: Task, /) -> Outcome:
    """Read the unit's file(s) and stage its tables; on failure, remove what was staged
    (:func:`run_batch` of one task)."""
    return run_batch([task])[0]


_Held = dict[tuple[str, str | None], list[tuple[str, pa.Table, int]]]
"""A batch's tables awaiting their one check: (table, subject) -> [(recording id, its
table, not yet validated, how many warnings the recording had once it was built)];
``recordings`` rows included."""


def run_batch(tasks: list[Task], /) -> list[Outcome]:
    """Ingest ``tasks`` (one subject's files of a run, :func:`batches`) in this process:
    each read and converted on its own (a bad one fails alone, into quarantine), then
    each table validated once for all of the batch's recordings of a subject
    (:func:`_validated`: one check a table and batch, not one a recording; the
    ``recordings`` rows too), each long signal table staged as ONE part for them
    (:meth:`cxlab.store.Store.stage_many`: one file a table and batch) and each small
    table's rows a part a recording, sliced from the checked table. A batch of one
    validates and stages each table as it is built (one long table in memory at a time:
    a large file travels alone, :data:`BATCH_BYTES`).

    A part of a table the file does not fill (no forces, say) is not staged: the parent's
    commit removes the table's earlier part of the same key (``--force``). If staging the
    shared parts fails (disk full), every recording of the batch fails at ``write``."""
    release_arrow_memory()  # also on a Dask worker, which no pool initializer starts
    if tasks[0].key_check is not None:  # a worker of another machine: the run's key or none
        require_key(tasks[0].key_check)
    store = Store(tasks[0].store)
    held: _Held = {}
    outs = [_convert(t, store, held if len(tasks) > 1 else None) for t in tasks]
    if not held:
        return outs
    by_rid = {o.sha256[:16]: o for o in outs}
    tables, bad = _validated(held)
    for rid, (e, n_warnings) in bad.items():  # as if its table had failed in _convert
        o = by_rid[rid]
        o.status, o.stage, o.reason, o.rows, o.staged = (
            "failed",
            "validate",
            _reason(e, "validate"),
            {},
            [],
        )
        o.recorded_at = None  # as alone: set only on success
        del o.warnings[n_warnings:]  # alone, tables after the failing one are never built
    staged: list[Staged] = []
    owner = _owner(tasks[0])
    try:
        for (name, subject), table in tables.items():
            if not _shared(name):  # a small table: a part a recording, from the one check
                for rid, piece in _by_recording(table):
                    part = store.stage(name, piece, key=rid, partition=subject, owner=owner)
                    staged.append(part)
                    by_rid[rid].staged.append(part)
                continue
            part = store.stage_many(name, table, partition=subject, owner=owner)
            del table
            staged.append(part)
            for rid in part.keys or (part.key,):
                by_rid[rid].staged.append(part)
    except BaseException as e:
        for o in outs:
            if o.status == "ingested":
                _unstage(o.staged)
                o.status, o.stage, o.reason, o.rows, o.staged = (
                    "failed",
                    "write",
                    _reason(e, "write"),
                    {},
                    [],
                )
        _unstage(staged)
        if isinstance(e, KeyboardInterrupt):
            raise
    return outs


def _validated(held: _Held, /) -> tuple[dict[tuple[str, str | None], pa.Table], dict]:
    """Each held group (a table's rows of a subject's recordings) validated as ONE table
    (one check of each column for the batch, not one a recording); where that fails, its
    recordings one by one. A recording with a bad table fails with the first failure in
    table order, as :func:`_convert` would have raised it, and leaves every group.
    Returns the validated tables by (table, subject), in table order, and the failures by
    recording id (the exception, and the recording's warnings count when that table was
    built)."""
    order = sorted(held, key=lambda k: (_CHECK_ORDER.index(k[0]), k[1] or ""))
    whole: dict[tuple[str, str | None], pa.Table] = {}
    alone: dict[tuple[str, str | None], list[tuple[str, pa.Table]]] = {}
    bad: dict[str, tuple[Exception, int]] = {}
    for key in order:
        items = sorted(held.pop(key), key=lambda it: it[0])
        try:
            whole[key] = validate(pa.concat_tables([t for _, t, _ in items]), key[0])
            continue
        except Exception:  # which recording: each checked alone, as alone
            pass
        alone[key] = []
        for rid, t, n_warnings in items:
            try:
                alone[key].append((rid, validate(t, key[0])))
            except Exception as e:  # alone, this fails the one file
                bad.setdefault(rid, (e, n_warnings))
    out: dict[tuple[str, str | None], pa.Table] = {}
    drop = pa.array(sorted(bad), pa.string())
    for key in order:
        if key in whole:
            t = whole.pop(key)
            if len(drop):
                t = t.filter(pc.invert(pc.is_in(t.column("recording_id"), value_set=drop)))
        else:
            kept = [t for rid, t in alone.pop(key) if rid not in bad]
            t = pa.concat_tables(kept) if kept else None
        if t is not None and t.num_rows:
            out[key] = t
    return out, bad


def _by_recording(table: pa.Table, /) -> list[tuple[str, pa.Table]]:
    """The rows of validated ``table`` by recording id, ids ascending, each recording's rows
    in the table's order: what validating that recording's rows alone returns (the sort is
    stable and on the same keys)."""
    keys, rows = recording_runs(table)
    if keys:  # sorted by id first: slices
        starts = accumulate(rows[:-1], initial=0)
        return [(k, table.slice(a, n)) for k, a, n in zip(keys, starts, rows, strict=True)]
    col = table.column("recording_id")
    return [(rid, table.filter(pc.equal(col, rid))) for rid in sorted(set(col.to_pylist()))]


def _failure(table: pa.Table, name: str, /) -> Exception | None:
    """What validating ``table`` as table ``name`` raises (a schema failure, or any
    error the check itself meets), or None."""
    try:
        validate(table, name)
    except Exception as e:  # alone, this fails the one file at validate
        return e
    return None


def _owner(task: Task) -> int:
    return task.owner if task.owner is not None else os.getpid()


def _unstage(staged: list[Staged], /) -> None:
    """Remove the staged files of ``staged`` (a part kept in memory has none)."""
    for s in staged:
        if s.temp:
            Path(s.temp).unlink(missing_ok=True)


def _shared(name: str, /) -> bool:
    """Whether table ``name``'s rows of a batch go into one part (:meth:`Store.stage_many`)."""
    schema = schema_of(name)
    return (
        schema.partition_by is not None
        and name not in COMPACT_TABLES
        and schema.sort_by[:1] == ("recording_id",)
    )


def _convert(task: Task, store: Store, held: _Held | None) -> Outcome:
    """One unit: read, convert, validate, stage (``held`` None: each table as it is built;
    small tables in memory), or read and convert with its tables and ``recordings`` row
    added to ``held`` for the batch's one check (:func:`run_batch`). On failure nothing
    of the unit stays staged or held."""
    staged: list[Staged] = []
    mine: list[tuple[str, pa.Table, int]] = []  # held: (table, rows, warnings once built)
    owner = _owner(task)
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
            rec, task = _private(rec, task)
            out.rel = task.rel
            row = recording_row(rec, task, fmt or "")
            tables = rec.take_arrow_tables(rid)  # the plate-channel fits and plates, now
        # a reader both warns and keeps the finding on the recording: show it once
        found = [*(str(w.message) for w in caught), *rec.warnings]
        out.warnings = list(dict.fromkeys(_short(t, files) for t in found))
        del rec  # the tables take its arrays, one table at a time
        # One table at a time: built, validated, staged (invisible until the parent
        # commits) or held for the batch, so one long table of a large file is in memory
        # with what of the recording is not yet converted. A bad table fails the unit at
        # its first failing table, and the except clause removes what was staged, so the
        # recording is never half-replaced (with --force, earlier rows stay).
        stage = "validate"
        if held is None:
            valid_row = validate(row, "recordings")
        else:  # validated with the batch's rows, first of the recording's tables
            mine.append(("recordings", row, len(out.warnings)))
        recorded_at = row.column("recorded_at")[0].as_py()
        while True:
            stage = "convert"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                item = next(tables, None)  # built now: the recording's arrays go with it
            if caught:  # building a long table is reshaping: not expected to warn
                found += [str(w.message) for w in caught]
                out.warnings = list(dict.fromkeys(_short(t, files) for t in found))
            if item is None:
                break
            name, table = item
            del item
            out.rows[name] = table.num_rows
            if not table.num_rows:
                continue
            if held is not None:  # validated with the batch's others, staged with them
                mine.append((name, table, len(out.warnings)))
            else:
                stage = "validate"
                table = validate(table, name)
                stage = "write"
                staged.append(
                    store.stage(name, table, key=rid, partition=task.subject_id, owner=owner)
                )
            del table
        del tables
        stage = "write"
        if held is None:
            staged.append(store.stage("recordings", valid_row, key=rid, owner=owner))
        out.rows["recordings"] = 1
        out.recorded_at = recorded_at
        out.staged = staged
        out.status = "ingested"
        for name, table, n_warnings in mine:
            held.setdefault((name, task.subject_id), []).append((rid, table, n_warnings))
    except BaseException as e:
        _unstage(staged)  # a write failed midway: nothing of the unit is kept
        if isinstance(e, KeyboardInterrupt):
            raise
        # alone, the tables held so far would have been checked before this failure: the
        # first of them that fails is the reason (a later table's failure, or one building
        # it, comes after)
        first = next(((f, n) for name, t, n in mine if (f := _failure(t, name))), None)
        if first is not None:
            (e, n_warnings), stage = first, "validate"
            del out.warnings[n_warnings:]  # the tables after it are not built alone
        elif isinstance(e, SchemaError):
            stage = "validate"
        out.stage = stage
        out.reason = _reason(e, stage)
        out.rows = {}
        if stage in ("read", "convert"):  # as when every table was built before any check
            out.warnings = []
    out.masks = masks_of(task)
    return out


BATCH_FILES = 32
"""At most this many files in one ingest batch (:func:`batches`)."""
MIN_BATCHES = 16
"""A run of at least this many files is cut into at least this many batches (smaller ones,
down to one file), so that up to 16 workers have work even when all its files are one
subject's: a batch is worked on by one process."""
BATCH_BYTES = 32 << 20
"""At most this many bytes of files in one batch, unless one file is larger (it goes
alone): a worker holds a batch's validated signal tables until it stages their parts."""


def batches(tasks: list[Task], /) -> list[list[int]]:
    """The indices of ``tasks`` cut into ingest batches: ordered by the subject the path
    gives and the recording id, each batch one subject's (or all path-less ones') next
    files up to ``ceil(len(tasks) / MIN_BATCHES)`` (at most :data:`BATCH_FILES`) files and
    :data:`BATCH_BYTES` bytes.

    A function of the tasks alone (not of ``--jobs`` or the scheduler), so the parts it
    makes, and the store's bytes, are the same however the run is spread."""
    order = sorted(range(len(tasks)), key=lambda i: (tasks[i].subject_id or "", tasks[i].sha256))
    most = min(BATCH_FILES, max(1, -(-len(tasks) // MIN_BATCHES)))
    out: list[list[int]] = []
    size = 0
    for i in order:
        t = tasks[i]
        if (
            not out
            or tasks[out[-1][0]].subject_id != t.subject_id
            or len(out[-1]) >= most
            or size + t.size > BATCH_BYTES
        ):
            out.append([])
            size = 0
        out[-1].append(i)
        size += t.size
    return out


def _short(text: str, files: list[Path]) -> str:
    """A warning without its leading file name (the summary already names the file)."""
    for f in files:
        text = text.removeprefix(f"{f.name}: ").removeprefix(f"{f}: ")
    return text


def _reason(e: BaseException, stage: str = "read") -> str:
    if isinstance(e, CxlabError):
        return " ".join(str(e).split())
    if stage == "write" and isinstance(e, OSError) and e.errno is not None:  # disk full
        return (
            f"could not be written to the store: {e.strerror} (errno {e.errno}); free "
            "space or fix the store's permissions and run the ingest again"
        )
    last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"unexpected {type(e).__name__}{where}: {text}"[:500]


def masks_of(task: Task, /) -> list[tuple[str, str]]:
    """(raw, as stored) pairs that make a message about ``task`` show only stored names:
    :func:`_masks` and the subject label itself (when 3 characters or more: a shorter one
    would also match inside numbers)."""
    out = _masks(task)
    if task.label and task.subject_id and len(task.label) >= 3:  # shorter: paths cover it
        out.append((task.label, task.subject_id))
    return out


def _masks(task: Task) -> list[tuple[str, str]]:
    """(raw, as stored) for every path, then file name, of the unit, longest first.

    The primary file is shown as its stored ``source_path`` (name: its last part); a
    companion ``.mot`` (named in its own errors) with the subject label masked, or, when the
    path matched no pattern, as the stored hash with its own extension.
    """
    stored = Path(task.rel)
    out = []
    for i, f in enumerate(Path(x) for x in task.files):
        if i == 0:
            name = stored.name
        elif task.label and task.subject_id:
            name = mask_label(f.name, label=task.label, subject_id=task.subject_id)
        else:
            name = stored.stem + f.suffix
        out += [(str(f), name), (f.name, name)]
    return sorted({p for p in out if p[0] != p[1]}, key=lambda p: (-len(p[0]), p))


def quarantine_rows(out: Outcome, /) -> pd.DataFrame:
    """The ``quarantine`` row of a failed unit."""
    reason = out.reason or ""
    if out.shown and out.shown != out.rel:  # keep the raw subject label out of the store
        reason = reason.replace(out.shown, out.rel)
    for raw, masked in out.masks:  # absolute paths, then file names, as stored
        reason = reason.replace(raw, masked)
    reason = redact_text(reason)  # an e-mail or phone number quoted from the file
    return pd.DataFrame(
        {
            "source_path": [out.rel],
            "source_sha256": [out.sha256 or None],
            "stage": [out.stage],
            "row": pd.array([None], dtype="Int64"),
            "field": [None],
            "value": [None],
            "reason": [reason],
        }
    )
