"""``extract_features``: every recording in a store → the long ``features`` table.

Each recording's ``task`` selects the functions to run (``features.toml``, overridable);
the recording's forces and markers are read from its own Parquet part, the functions run
in worker processes on batches of whole subjects, and the results land as one
``features`` and one ``curves`` part per subject (key :func:`part_key`: ``subject=<id>``;
its rows are those of the subject's recordings, so a rerun on one new recording rewrites
that subject's parts only) plus one part ``strength`` for the strength table and one
``single_leg`` for the session-level LSI. A function that cannot
run on a recording (missing plate or marker, no take-off, ...) leaves one row in
``quarantine`` (stage ``features``) instead of a NaN feature.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlab._check import CxlabError, SchemaError, nearest
from cxlab._executor import make_executor
from cxlab.features.config import FeatureConfig, read_config
from cxlab.features.curve_signals import Curve, joint_data
from cxlab.features.curve_tasks import trial_curves
from cxlab.features.emg import emg_channels
from cxlab.features.joints import store_joint_tables
from cxlab.features.measure import Measure
from cxlab.features.tasks import (
    FUNCTIONS,
    SINGLE_LEG_METRICS,
    SINGLE_LEG_PAIRS,
    Trial,
    capture_warnings,
)
from cxlab.schemas import schema_of, validate
from cxlab.store import Part, Staged, Store

__all__ = ["FeatureConfig", "FeaturesReport", "extract_features", "read_config"]

FEATURE_COLUMNS = schema_of("features").names  # the table's columns, declared once
_HEX16 = re.compile(r"[0-9a-f]{16}")
_Q_COLUMNS = ["source_path", "source_sha256", "stage", "row", "field", "value", "reason"]


@dataclass
class FeaturesReport:
    """What :func:`extract_features` did.

    Attributes
    ----------
    n_recordings : int
        Recordings in the store.
    n_processed : int
        Recordings whose features were (re)computed in this run.
    n_up_to_date : int
        Recordings skipped because they already have a features part.
    n_no_functions : int
        Recordings whose task has no functions configured.
    n_rows : int
        Feature rows written in this run (including strength features).
    quarantine : pandas.DataFrame
        The ``features`` quarantine rows of every recording in scope (columns of that
        table): written in this run, or standing from the run that computed an up-to-date
        recording, so a rerun (also after a kill) reports and exits like the first run.
    elapsed_s : float
        Wall-clock time, s.
    """

    n_recordings: int = 0
    n_processed: int = 0
    n_up_to_date: int = 0
    n_no_functions: int = 0
    n_rows: int = 0
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_Q_COLUMNS))
    elapsed_s: float = 0.0

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantine)


def _parts(store: Store, name: str) -> dict[str, list[Part]]:
    """Recording id -> the handles of its part of ``name`` (read by the store in a worker)."""
    return {k: [p] for k, p in store.parts(name).items()}


_Rows = dict[str, dict[str, np.ndarray]]
"""One table's rows for a batch of recordings: recording id -> its columns as NumPy arrays
(in the table's sort order; a recording without rows is absent)."""


def _numpy(column: pa.ChunkedArray, /) -> np.ndarray:
    """``column`` as one NumPy array (a view of a single chunk; nulls as NaN / None)."""
    if column.num_chunks == 1:
        return column.chunk(0).to_numpy(zero_copy_only=False)
    return column.to_numpy()


def _scan(store: Store, jobs: list[dict], name: str, columns: list[str]) -> _Rows:
    """Read table ``name`` for every recording of ``jobs`` in one pass.

    Parts keyed by recording id (the ingest layout) are read as Arrow tables (one a part,
    float32 samples as stored: no pandas frame) and checked against the row counts the
    catalog holds; a recording's one part is stored in the table's sort order, so its
    sample counter (:data:`_COUNTER`) is not read (0.03 ms a part). Otherwise (or when a
    count disagrees) the rows are read with their ``recording_id`` and counter and split
    by a stable sort on the id."""
    keyed = [j for j in jobs if j[f"{name}_keyed"] and len(j[name]) <= 1]
    rows: _Rows = {}
    if keyed:
        parts = [p for j in keyed for p in j[name]]
        stored = [c for c in columns if c != _COUNTER[name]]
        tables = store.read_arrow_parts(parts, table=name, columns=stored)
        if all(t.num_rows == p.rows for t, p in zip(tables, parts, strict=True)):
            it = iter(tables)
            for j in keyed:
                own = [next(it) for _ in j[name]]
                if sum(t.num_rows for t in own) == 0:
                    continue
                rows[j["rec"]["recording_id"]] = {c: _numpy(own[0].column(c)) for c in stored}
        else:  # a part shared by several recordings: split on the column itself
            keyed = []
    done = {id(j) for j in keyed}
    rest = [j["rec"]["recording_id"] for j in jobs if id(j) not in done]
    if rest:
        df = store.table(
            name, columns=["recording_id", *columns], filters=[("recording_id", "in", rest)]
        )
        rid = df["recording_id"].to_numpy(dtype=object)
        order = np.argsort(rid, kind="stable")
        rid = rid[order]
        cols = {c: df[c].to_numpy()[order] for c in columns}
        if len(rid):
            for a, b in zip(*_groups(rid), strict=True):
                rows[str(rid[a])] = {c: v[a:b] for c, v in cols.items()}
    return rows


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop of the runs of equal values in ``keys`` (shape (n,), n ≥ 1)."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, np.r_[starts[1:], len(keys)]


def _rate(rate, times) -> float:
    """The header's rate, Hz, else 1 / the median sample interval of ``times()`` (s)."""
    if _usable(rate):
        return float(rate)
    return 1.0 / float(np.median(np.diff(times())))


def _trial(rec: dict, forces: _Rows, markers: _Rows) -> Trial:
    """One recording's :class:`Trial` from the batch's forces and markers (float32
    samples widened to float64)."""
    rid = rec["recording_id"]
    trial = Trial(task=rec["task"])
    mass = rec.get("body_mass_kg")  # export header (ForceDecks Weight (Kg)), if ingested
    if mass is not None and np.isfinite(mass):
        trial.body_mass_kg = float(mass)
    if rid in forces:
        c = forces[rid]
        plate = c["plate"].astype(np.int64)
        if "sample" in c and not _sorted_by(plate, c["sample"]):  # else: a part's order
            order = np.lexsort((c["sample"], plate))
            c = {k: v[order] for k, v in c.items()}
            plate = plate[order]
        starts, stops = _groups(plate)
        for s, e in zip(starts, stops, strict=True):
            trial.plates[int(plate[s])] = {
                k: c[k][s:e].astype(float, copy=False) for k in _PLATE_SIGNALS
            }
        trial.analog_rate_hz = _rate(
            rec.get("analog_rate_hz"), lambda: c["time_s"][starts[0] : stops[0]]
        )
    if rid in markers:
        c = markers[rid]
        names = c["marker"].astype(object)
        if "frame" in c and not (np.all(names[1:] >= names[:-1]) and _sorted_by(names, c["frame"])):
            order = np.lexsort((c["frame"], names))
            c = {k: v[order] for k, v in c.items()}
            names = names[order]
        xyz = np.column_stack([c["x"], c["y"], c["z"]]).astype(float, copy=False)
        starts, stops = _groups(names)
        for s, e in zip(starts, stops, strict=True):
            trial.markers[str(names[s])] = xyz[s:e]
        trial.point_rate_hz = _rate(rec.get("point_rate_hz"), lambda: np.unique(c["time_s"]))
    return trial


def _events(rec: dict, events: dict[str, pd.DataFrame]) -> list[tuple[str, str, float]]:
    """The recording's events (``events``: the batch's, by recording id) as
    (label, context, time_s) on its samples' time axis."""
    ev = events.get(rec["recording_id"], _NO_EVENTS)
    # C3D event times count from frame 1 of the capture; samples from the first stored frame
    first, prate = rec.get("first_frame") or 0, rec.get("point_rate_hz")
    t0 = (first - 1) / prate if first and prate and np.isfinite(prate) else 0.0
    return [(str(r.label), str(r.context), float(r.time_s) - t0) for r in ev.itertuples()]


def _sorted_by(group: np.ndarray, within: np.ndarray) -> bool:
    """Whether rows run in ``group`` order and, inside each group, in ``within`` order."""
    if len(group) < 2:
        return True
    same = group[1:] == group[:-1]
    return bool(np.all(same | (group[1:] > group[:-1])) and np.all(np.diff(within)[same] > 0))


def _emg_inputs(job: dict, trial: Trial, events: dict[str, pd.DataFrame], cache: dict) -> None:
    """The recording's EMG channels (by label, emg.toml), its events (``events``: the
    batch's, by recording id) and the session's MVC trials (read once per batch: ``cache``,
    by their parts)."""
    parts = job["analogs"]
    if not parts:
        return
    store = Store(job["store"])
    chans = _channel_values(store, parts)
    # the labels as the rows hold them (emg_channels keeps the first of a muscle and side)
    keep = {c.label for c in emg_channels(chans.first_seen, job["cfg"].emg)}
    if not keep:
        return

    def kept(channels: _Channels) -> dict[str, np.ndarray]:
        return {c: v for c, v in channels.values.items() if c in keep}

    trial.analogs = kept(chans)
    trial.events = _events(job["rec"], events)
    rec = job["rec"]
    if not np.isfinite(trial.analog_rate_hz):
        trial.analog_rate_hz = float(rec.get("analog_rate_hz") or np.nan)
    for task, rate, paths in job["mvc"]:
        key = tuple((p.file, p.key) for p in paths)  # files can be shared
        if key not in cache:
            cache[key] = _channel_values(store, paths)
        trial.mvc.append((task, float(rate), kept(cache[key])))


class _Channels(NamedTuple):
    """A recording's analog channels: ``values`` label -> samples (float64, writable, in
    sample order; labels in byte order, as a sort of the rows gives them) and the labels
    in the order the rows first hold them (``first_seen``)."""

    values: dict[str, np.ndarray]
    first_seen: list[str]


def _channel_values(store: Store, parts: list[Part], /) -> _Channels:
    """One recording's analog channels from its ``analogs`` parts (:class:`_Channels`).

    One Arrow read of the three columns, split where the channel changes: a part holds
    its rows sorted by channel, then sample (the table's sort order); rows in another
    order are sorted (stably, by label bytes then sample) first."""
    tables = store.read_arrow_parts(parts, table="analogs", columns=["channel", "sample", "value"])
    t = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    if not t.num_rows:
        return _Channels({}, [])
    enc = pc.dictionary_encode(t.column("channel")).combine_chunks()
    labels = enc.dictionary.to_pylist()  # in order of first appearance
    # label order; signed, so that the differences below can be negative (rank is uint64)
    rank = pc.rank(enc.dictionary, sort_keys="ascending").to_numpy().astype(np.int64) - 1
    code = rank[enc.indices.to_numpy()]
    sample = _numpy(t.column("sample"))
    value = np.array(_numpy(t.column("value")), dtype=np.float64)  # a copy of its own
    step_c, step_s = np.diff(code), np.diff(sample)
    if ((step_c < 0) | ((step_c == 0) & (step_s < 0))).any():  # not in the table's order
        order = np.lexsort((sample, code))  # stable
        code, value = code[order], value[order]
    starts, stops = _groups(code)
    by_rank = {int(r): lab for r, lab in zip(rank, labels, strict=True)}
    values = {by_rank[int(code[a])]: value[a:b] for a, b in zip(starts, stops, strict=True)}
    return _Channels(values, labels)


class _BatchResult(NamedTuple):
    """What a worker returns for a batch: parts staged for the parent to commit in one
    commit, parts to delete in it, feature rows written and quarantine rows."""

    staged: list[Staged]
    deleted: list[tuple[str, str]]
    n_processed: int
    n_rows: int
    quarantine: list[pd.DataFrame]


def _run_batch(jobs: list[dict]) -> _BatchResult:
    """Worker: compute a batch of recordings (whole subjects; one scan of each input table
    per :data:`_BATCH` recordings) and stage their quarantine parts and one features and
    one curves part per subject (committed by the parent)."""
    store, owner = Store(jobs[0]["store"]), jobs[0]["owner"]
    events, mvc_cache = _batch_events(store, jobs), {}
    feats: list[tuple[dict, list[Measure]]] = []  # (recording, its finite values)
    curves: list[tuple[dict, list[Curve]]] = []
    quarantine, deleted = [], []
    for i in range(0, len(jobs), _BATCH):
        chunk = jobs[i : i + _BATCH]
        inputs = _inputs(chunk)
        try:
            batch = [_scan(store, chunk, n, c) for n, c in inputs.items()]
        except (OSError, ValueError, CxlabError):  # one unreadable part: read one at a time
            batch = None
        for job in chunk:
            rec = job["rec"]
            try:
                f, m = batch or [_scan(store, [job], n, c) for n, c in inputs.items()]
                trial = _trial(rec, f, m)
                if "analogs" in job:  # the task runs "emg": its analog channels, events, MVCs
                    _emg_inputs(job, trial, events, mvc_cache)
                elif job.get("events"):  # gait curves: the file's foot strikes
                    trial.events = _events(rec, events)
            except (OSError, ValueError, CxlabError) as e:
                trial, err = None, e
            out = _compute(store, job, trial, None if trial is not None else err)
            rid = rec["recording_id"]
            q = out.quarantine
            if len(q):
                quarantine.append((rid, q))
            elif job["had_quarantine"]:
                deleted.append(("quarantine", f"features-{rid}"))
            if out.curves:
                curves.append((rec, out.curves))
            if out.features:
                feats.append((rec, out.features))
    staged = [store.stage("quarantine", q, key=f"features-{r}", owner=owner) for r, q in quarantine]
    n_rows = sum(len(m) for _, m in feats)
    subjects = _batch_subjects(jobs)
    for name, rows in (("curves", curves), ("features", feats)):
        new = _validated_by_subject(name, rows)
        s, d = _subject_parts(store, name, subjects, new, owner=owner)
        staged += s
        deleted += d
    return _BatchResult(staged, deleted, len(jobs), n_rows, [q for _, q in quarantine])


def part_key(subject_id, /) -> str:
    """The key of a subject's ``features`` and ``curves`` part: ``subject=<id>`` when the id
    is a valid part name, else a digest of it (a missing subject: ``subject-none``)."""
    if subject_id is None:
        return "subject-none"
    text = str(subject_id)
    if re.fullmatch(r"[A-Za-z0-9_.=-]+", text):
        return f"subject={text}"
    return "subject-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _validated_by_subject(name: str, rows: list[tuple[dict, list]], /) -> dict[str, pa.Table]:
    """The batch's new rows of ``name`` (``features``: :func:`_features_table` validated;
    ``curves``: :func:`_checked_curves`), checked once over the whole batch and sliced by
    subject part key; a batch that fails validation is validated recording by recording,
    so the error names the recording's own rows."""
    if not rows:
        return {}
    schema = schema_of(name)
    build = _features_table if name == "features" else _curves_table
    try:
        checked = validate(build(rows), schema) if name == "features" else _checked_curves(rows)
    except SchemaError:
        table = build(rows)
        ids = table.column("recording_id")
        for rec, _ in rows:
            validate(table.filter(pc.equal(ids, rec["recording_id"])), schema)
        raise
    if checked.num_rows == 0:
        return {}
    # the subject runs from the column's run-end encoding (adjacent values compared, no
    # hashing and no Python string per row: 2.6 instead of 5.1 ms a batch of 276,000
    # curve rows of 6 subjects, as the dictionary encoding took)
    runs = pc.run_end_encode(checked.column("subject_id").combine_chunks())
    stops = runs.run_ends.to_numpy().astype(np.int64)
    starts = np.r_[0, stops[:-1]]
    out: dict[str, pa.Table] = {}
    for a, b, name in zip(starts, stops, runs.values.to_pylist(), strict=True):
        key = part_key(name)
        if key in out:  # two subject ids with one key cannot happen (the key is the id)
            raise AssertionError(f"subject rows of part {key} are not contiguous")
        out[key] = checked.slice(a, b - a)
    return out


class _SubjectPart(NamedTuple):
    """A subject's ``features`` / ``curves`` part: its key, the standing parts by table
    (absent: None), the ids of the subject's recordings in the store and of those the
    standing parts hold rows of."""

    key: str
    held: dict[str, Part | None]
    recordings: frozenset[str]
    held_ids: dict[str, frozenset[str]]  # recordings with rows in the standing parts


def _subject_parts(
    store: Store,
    name: str,
    subjects: list[tuple[_SubjectPart, set[str]]],
    new: dict[str, pa.Table],
    /,
    *,
    owner: int,
) -> tuple[list[Staged], list[tuple[str, str]]]:
    """Stage each subject's part of ``name`` (``features`` or ``curves``): the new rows of
    the recordings computed here (``subjects``: each part with those recordings' ids;
    ``new``: their rows by part key) and the rows its standing part holds for its other,
    up-to-date recordings still in the store; delete the part when nothing is left.

    The part's rows are the stable sort of its recordings' rows by the table's key, so its
    bytes depend only on the rows, not on which run (or batch size, or job count)
    computed which recording."""
    staged, deleted = [], []
    schema = schema_of(name)
    for sp, computed in subjects:
        held = sp.held.get(name)
        fresh = new.get(sp.key)
        tables = [] if fresh is None else [fresh]
        ids = sp.held_ids.get(name)  # None: not listed (curves), known once the part is read
        others = sp.recordings - computed
        kept = others if ids is None else ids & others
        if held is not None and fresh is None and ids is not None and kept == ids:
            continue  # the part stands as it is
        if held is not None and kept:  # read the part only for rows it may keep
            old = store.read_parts([held], table=name)
            keep = old["recording_id"].isin(kept).to_numpy()
            if fresh is None and keep.all():
                continue  # the part stands as it is
            if keep.any():
                tables.insert(0, validate(old[keep].reset_index(drop=True), schema))
        if not tables:
            if held is not None:
                deleted.append((name, sp.key))
            continue
        table = tables[0] if len(tables) == 1 else validate(pa.concat_tables(tables), schema)
        staged.append(store.stage(name, table, key=sp.key, owner=owner))
    return staged, deleted


def _batch_subjects(jobs: list[dict], /) -> list[tuple[_SubjectPart, set[str]]]:
    """The subject parts of a batch (whole subjects) with the ids of its recordings."""
    out: dict[str, tuple[_SubjectPart, set[str]]] = {}
    for j in jobs:
        sp = j["subject_part"]
        out.setdefault(sp.key, (sp, set()))[1].add(j["rec"]["recording_id"])
    return [out[k] for k in sorted(out)]


def _held_parts(
    store: Store, recs: pd.DataFrame, /
) -> tuple[dict[str, _SubjectPart], set[str], list[_SubjectPart]]:
    """The subject parts of ``features`` and ``curves``: every subject of ``recs`` by key,
    the recordings that have features (rows in their own subject's part), and the parts
    holding features rows of recordings no longer in it (or no longer of that subject), or
    held by a subject without recordings.

    Only the features parts are read (their ``recording_id``, ~35 rows a recording); a
    curves part (~100 times more rows) is read when its subject's parts are rewritten,
    which drops the rows of recordings gone from the store as well."""
    recordings: dict[str, set[str]] = {}
    for rid, sub in zip(recs["recording_id"], recs["subject_id"], strict=True):
        sub = None if isinstance(sub, float) and np.isnan(sub) else sub
        recordings.setdefault(part_key(sub), set()).add(str(rid))
    held: dict[str, dict[str, Part | None]] = {}
    present: dict[str, dict[str, set[str]]] = {}
    for name in ("features", "curves"):
        for key, part in store.parts(name).items():
            if key.startswith("subject"):
                held.setdefault(key, {})[name] = part
                if name == "features":  # ~35 rows a recording; curves have ~100 times more
                    (t,) = store.read_arrow_parts([part], table=name, columns=["recording_id"])
                    ids = pc.unique(t.column("recording_id").drop_null()).to_pylist()
                    present.setdefault(key, {})[name] = set(ids)
    subjects = {
        k: _SubjectPart(
            k,
            held.get(k, {}),
            frozenset(recordings.get(k, ())),
            {n: frozenset(ids) for n, ids in present.get(k, {}).items()},
        )
        for k in sorted(recordings.keys() | held.keys())
    }
    done = {  # rows in the part of the recording's own subject
        r
        for k, sp in subjects.items()
        for r in present.get(k, {}).get("features", set())
        if r in sp.recordings
    }
    dirty = [  # curves are not listed: their rows go with the features of the recording
        sp
        for k, sp in subjects.items()
        if any(ids - sp.recordings for ids in present.get(k, {}).values())
        or (sp.held and not sp.recordings)
    ]
    return subjects, done, dirty


def _sort_key(value) -> tuple[bool, str]:
    """A label's place in the table's sort order: by code point (as Arrow sorts UTF-8
    bytes), missing last (Arrow's ``at_end``)."""
    return (value is None, "" if value is None else str(value))


def _labels(values: list, /) -> pa.Array:
    """One string column from per-row labels (``None`` = missing)."""
    return pa.array(values, pa.string())


def _floats(x: np.ndarray, /) -> pa.Array:
    """A float64 column with NaN stored as missing (as ``pa.array(from_pandas=True)``)."""
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    return pa.array(x, mask=nan) if nan.any() else pa.array(x)


def _repeated(values: list, n: np.ndarray, /) -> pa.Array:
    """One string column holding ``values[i]`` (``None`` = missing) ``n[i]`` times: the
    values as the runs of a run-end-encoded array, decoded by Arrow (each run's bytes
    copied in C++ with no index array: 0.35 instead of 0.67 ms for 146,000 rows of short
    labels, 0.9 instead of 1.1-1.9 ms of 117-byte ``method`` text, as an Arrow ``take`` of
    ``np.repeat``-ed indices took; joining repeated Python bytes took 50-80 ms a batch)."""
    n = np.asarray(n, dtype=np.int64)
    if len(values) == 0 or not n.all():  # a run end repeated is not allowed: drop empty runs
        values = [v for v, k in zip(values, n.tolist(), strict=True) if k]
        n = n[n > 0]
    if len(values) == 0:
        return pa.array([], pa.string())
    ends = np.cumsum(n)
    ends = pa.array(ends.astype(np.int32 if ends[-1] < 2**31 else np.int64))
    return pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(ends, pa.array(values, pa.string())))


def _id_arrays(recs: list[dict], n: np.ndarray) -> dict[str, pa.Array]:
    """The recording label columns: each recording's value repeated ``n`` times."""
    return {c: _repeated([r[c] for r in recs], n) for c in _ID_COLUMNS}


def _assemble(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """The columns in the schema's order; an optional column not built is missing."""
    schema = schema_of(name)
    n = len(next(iter(columns.values())))
    arrays = [columns[c.name] if c.name in columns else pa.nulls(n, c.type) for c in schema.columns]
    return pa.table(arrays, names=schema.names)


def _features_table(feats: list[tuple[dict, list[Measure]]], /) -> pa.Table:
    """The batch's ``features`` rows as Arrow columns, in the table's sort order (rows of
    equal key keep their order: the stable sort :func:`cxlab.schemas.validate` does)."""
    order = sorted(
        range(len(feats)),
        key=lambda i: tuple(_sort_key(feats[i][0][c]) for c in _FEATURE_SORT_IDS),
    )
    recs, rows = [], []
    for i in order:
        rec, ms = feats[i]
        recs.append(rec)
        rows.append(sorted(ms, key=attrgetter(*_MEASURE_SORT)))
    n = np.array([len(r) for r in rows])
    flat = [m for r in rows for m in r]
    feature, side, value, unit, method = zip(*flat, strict=True)
    return _assemble(
        "features",
        _id_arrays(recs, n)
        | {
            "feature": _labels(list(feature)),
            "side": _labels(list(side)),
            "value": _floats(np.array(value, dtype=np.float64)),
            "unit": _labels(list(unit)),
            "method": _labels(list(method)),
        },
    )


def _curve_items(curves: list[tuple[dict, list[Curve]]], /) -> tuple[list, bool]:
    """The batch's (recording, curve) pairs in the table's sort order, and whether that
    order is certain (no two curves of a recording share phase, signal and side; else
    they are left in their order for :func:`cxlab.schemas.validate` to sort the rows)."""
    items, keys = [], []
    by_curve = attrgetter(*_CURVE_SORT[:-1])  # a curve's rows are its nodes, in order
    for rec, cs in curves:
        head = tuple(_sort_key(rec[k]) for k in _FEATURE_SORT_IDS)  # once a recording
        items += [(rec, c) for c in cs]
        keys += [(*head, *by_curve(c)) for c in cs]
    unique = len(set(keys)) == len(keys)
    if unique:
        order = sorted(range(len(items)), key=keys.__getitem__)
        items = [items[i] for i in order]
    return items, unique


def _curve_columns(items: list, /, *, nodes: bool = True) -> dict[str, pa.Array]:
    """The ``curves`` columns of ``items``: one entry per curve repeated over its nodes,
    or (``nodes=False``) one row per curve, at its node 0."""
    n = np.array([c.values.size if nodes else 1 for _, c in items])
    grid = {k: (np.arange(k, dtype=np.int32), np.linspace(0.0, 100.0, k)) for k in set(n.tolist())}

    def per_curve(values):
        return _repeated(values, n)

    start = np.repeat(np.array([c.start_s for _, c in items], dtype=np.float64), n)
    end = np.repeat(np.array([c.end_s for _, c in items], dtype=np.float64), n)
    values = [c.values if nodes else c.values[:1] for _, c in items]
    return _id_arrays([rec for rec, _ in items], n) | {
        "phase": per_curve([c.phase for _, c in items]),
        "signal": per_curve([c.signal for _, c in items]),
        "side": per_curve([c.side for _, c in items]),
        "node": pa.array(np.concatenate([grid[k][0] for k in n.tolist()])),
        "pct": _floats(np.concatenate([grid[k][1] for k in n.tolist()])),
        "value": _floats(np.concatenate(values)),
        "unit": per_curve([c.unit for _, c in items]),
        "phase_start_s": _floats(start),
        "phase_end_s": _floats(end),
        "method": per_curve([c.method for _, c in items]),
    }


def _curves_table(curves: list[tuple[dict, list[Curve]]], /) -> pa.Table:
    """The batch's ``curves`` rows as Arrow columns: one entry per curve repeated over its
    nodes, curves in the table's sort order (when no two curves of a recording share
    phase, signal and side; else :func:`cxlab.schemas.validate` sorts the rows)."""
    return _assemble("curves", _curve_columns(_curve_items(curves)[0]))


def _checked_curves(curves: list[tuple[dict, list[Curve]]], /) -> pa.Table:
    """The batch's ``curves`` table as :func:`cxlab.schemas.validate` returns it, checked
    once per curve instead of once per node (a CMJ has 40 curves, 3,838 rows).

    Every column but ``node``, ``pct`` and ``value`` is constant over a curve's nodes, so
    validating one row per curve (its node 0) checks every value they hold and their
    order; ``node`` (0, 1, ...) and ``pct`` (0 to 100 %) come from the node grid and
    ``value`` is an unbounded, nullable float: their checks are the grid's bounds.
    Curves whose order is not certain (:func:`_curve_items`), or whose one-row-per-curve
    table the validation would reorder, are validated row by row."""
    schema = schema_of("curves")
    items, unique = _curve_items(curves)

    def row_by_row() -> pa.Table:
        return validate(_curves_table(curves), schema)

    if not unique:
        return row_by_row()
    head = _assemble("curves", _curve_columns(items, nodes=False))
    checked = validate(head, schema)
    if not all(checked.column(c).equals(head.column(c)) for c in schema.sort_by):
        return row_by_row()
    columns = _curve_columns(items)
    node, pct = columns["node"].to_numpy(), columns["pct"].to_numpy(zero_copy_only=False)
    if len(node) and (node.min() < 0 or not (0.0 <= np.nanmin(pct) <= np.nanmax(pct) <= 100.0)):
        return row_by_row()  # cannot happen: the grid's bounds
    return pa.Table.from_arrays(
        [columns[c.name] for c in schema.columns], schema=schema.arrow_schema()
    )


def _recording_sort(name: str, /) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Table ``name``'s declared sort order split after ``recording_id``: (the recording's
    columns, the columns that order a recording's rows)."""
    order = schema_of(name).sort_by
    cut = order.index("recording_id") + 1
    return order[:cut], order[cut:]


#: the features and curves tables' declared sort orders (cxlab.schemas), which the
#: batch's rows are built in so that validation finds them sorted
_FEATURE_SORT_IDS, _MEASURE_SORT = _recording_sort("features")
_CURVE_SORT_IDS, _CURVE_SORT = _recording_sort("curves")
assert _CURVE_SORT_IDS == _FEATURE_SORT_IDS and _CURVE_SORT[-1] == "node", "schemas changed"
_EMPTY_Q = pd.DataFrame(columns=_Q_COLUMNS)
_ID_COLUMNS = ("recording_id", "subject_id", "session", "task", "trial")
_NO_EVENTS = pd.DataFrame(columns=["recording_id", "label", "context", "time_s"])


#: the sample counter of each input table: the last column of its declared sort order
_COUNTER = {t: schema_of(t).sort_by[-1] for t in ("forces", "markers")}

#: the plate signals a trial carries (fx, fy: the shear curves)
_PLATE_SIGNALS = ("fx", "fy", "fz", "cop_x", "cop_y")


def _inputs(jobs: list[dict]) -> dict[str, list[str]]:
    """Columns to read of each input table; ``time_s`` only when a recording of the batch
    has no usable rate in its header (the rate then comes from the sample times)."""

    def rate_missing(key):
        return any(not _usable(j["rec"].get(key)) for j in jobs)

    return {
        "forces": ["plate", "sample", *_PLATE_SIGNALS]
        + (["time_s"] if rate_missing("analog_rate_hz") else []),
        "markers": ["marker", "frame", "x", "y", "z"]
        + (["time_s"] if rate_missing("point_rate_hz") else []),
    }


def _usable(rate) -> bool:
    return bool(rate and np.isfinite(rate) and rate > 0)


def _batch_events(store: Store, jobs: list[dict]) -> dict[str, pd.DataFrame]:
    """The ``events`` rows of the batch's recordings that run "emg" or gait curves (one
    read), by id."""
    rids = [j["rec"]["recording_id"] for j in jobs if j.get("analogs") or j.get("events")]
    if not rids:
        return {}
    ev = store.table(
        "events",
        columns=["recording_id", "label", "context", "time_s"],
        filters=[("recording_id", "in", rids)],
    )
    return {str(k): g for k, g in ev.groupby("recording_id", sort=False)}


class _Computed(NamedTuple):
    features: list[Measure]  # the finite values that land
    curves: list[Curve]
    quarantine: pd.DataFrame  # _Q_COLUMNS


def _compute(
    store: Store, job: dict, trial: Trial | None, read_error: Exception | None
) -> _Computed:
    """One recording's features, curves and quarantine rows (joint tables are written by
    :func:`~cxlab.features.joints.store_joint_tables` itself)."""
    rec, cfg = job["rec"], job["cfg"]
    rid, task = rec["recording_id"], rec["task"]
    rows, qrows = [], []
    failed = False  # a feature function raised: its curves would repeat the reason
    if trial is None:
        qrows.append(("read", f"cannot read the recording's data ({read_error})"))
    for fn in [] if trial is None else cfg.functions(task):
        try:
            with np.errstate(all="ignore"):
                out, warned = capture_warnings(FUNCTIONS[fn], trial, cfg)
            # A physical check that failed but left usable values (body mass header vs
            # quiet standing): the values land and the warning is kept beside them.
            qrows.extend((fn, f"warning, values kept: {w}") for w in warned)
            # A value that cannot be computed (e.g. an LSI of opposite-sign impulses) is
            # quarantined by name; the function's other values still land.
            rows.extend(m for m in out if np.isfinite(m.value))
            bad = [
                f"{m.feature} ({m.side})"
                + (f" {m.method}" if m.method.startswith("not analysed") else "")
                for m in out
                if not np.isfinite(m.value)
            ]
            if bad:
                qrows.append(
                    (
                        fn,
                        f"{fn}: non-finite result for {', '.join(bad)}; its other "
                        f"{len(out) - len(bad)} value(s) were kept",
                    )
                )
        except (CxlabError, KeyError, ValueError, IndexError) as e:
            failed = True
            qrows.append((fn, str(e) if isinstance(e, CxlabError) else f"{fn}: {e!r}"))
    # A recording a feature function could not process is not reported twice by its
    # curves; a non-finite value (values kept) or a joint-table row does not stop them.
    joints = None
    if trial is not None:
        joints = store_joint_tables(
            store,  # the batch's (a Store per recording cost 0.26 ms)
            rec,
            trial,
            cfg=cfg,
            subject=job["pig_subject"],
            had=job["had_joints"],
            has_outputs=job["has_outputs"],
        )
        qrows.extend(joints.quarantine)
        rows.extend(joints.features)
    curves: list[Curve] = []
    if trial is not None and not failed and cfg.curves.tasks.get(task):
        try:
            jd = joint_data(joints.angles, joints.moments)
            with np.errstate(all="ignore"):
                curves, warned = capture_warnings(
                    lambda t, c: trial_curves(t, c, joints=jd), trial, cfg
                )
            # a builder's recoverable oddity (marker gait cycles refused): the curves land
            # and the reason is kept beside them, once (a feature function may have said it)
            said = {r for _, r in qrows}
            for text in warned:
                if not any(text in r for r in said):
                    qrows.append(("curves", f"warning, curves kept: {text}"))
                    said.add(text)
        except (CxlabError, KeyError, ValueError, IndexError) as e:
            qrows.append(("curves", str(e) if isinstance(e, CxlabError) else f"curves: {e!r}"))
    q = _EMPTY_Q
    if qrows:
        q = pd.DataFrame(
            {
                "source_path": rec["source_path"],
                "source_sha256": rec["source_sha256"],
                "stage": "features",
                "row": pd.array([None] * len(qrows), dtype="Int64"),
                "field": [f"{task}:{fn}" for fn, _ in qrows],
                "value": rid,
                "reason": [f"recording {rid} (task {task}): {why}" for _, why in qrows],
            },
            columns=_Q_COLUMNS,
        )
    return _Computed(rows, curves, q)


def extract_features(
    store,
    /,
    *,
    config=None,
    jobs: int | None = None,
    force: bool = False,
    progress: bool = True,
    scheduler: str | None = None,
) -> FeaturesReport:
    """Compute the features of every recording in ``store`` and write the ``features`` table.

    Parameters
    ----------
    store : Store or path-like
        The store (needs ``recordings`` and ``forces``/``markers``).
    config : path-like, dict or FeatureConfig, optional
        Overrides of the shipped ``features.toml`` (see :func:`read_config`), or a
        configuration already built.
    jobs : int, optional
        Worker processes; default ``os.cpu_count()``; 1 runs in this process.
    force : bool
        Recompute recordings that already have a features part.
    progress : bool
        Show a rich progress bar on stderr.
    scheduler : str, optional
        Run the recordings on a Dask cluster: ``"local"`` or a scheduler address
        (:func:`cxlab._executor.make_executor`); the store must be on a filesystem its workers
        share.

    Returns
    -------
    FeaturesReport

    Notes
    -----
    Incremental: only recordings without ``features`` rows in their subject's part are
    processed; the subject's ``features`` and ``curves`` parts are then rewritten with the
    rows of its other recordings kept. A recording where every function failed writes no
    rows and is retried on the next run; its quarantine part (key
    ``features-<recording_id>``) is replaced each time and removed once it succeeds.
    Output bytes depend only on the inputs and the configuration, not on ``jobs``, the
    batch size or which run computed which recording.
    """
    t0 = time.perf_counter()
    store = store if isinstance(store, Store) else Store(store)
    store = store.absolute()  # workers (a Dask cluster) may run in another directory
    cfg = read_config(config)
    recs = store.table("recordings")
    report = FeaturesReport(n_recordings=len(recs))
    _recover(store, set(recs["recording_id"]))
    subject_parts, done, dirty = _held_parts(store, recs)
    jobs_list = []
    forces, markers = _parts(store, "forces"), _parts(store, "markers")
    analogs = _parts(store, "analogs")
    mvc_prefix = cfg.emg.settings["mvc"]["task_prefix"]
    mvc: dict[tuple, list] = {}  # (subject, session) -> MVC recordings' analog parts
    is_mvc = [str(t).startswith(mvc_prefix) for t in recs["task"].to_numpy(dtype=object)]
    for r in recs[np.array(is_mvc, dtype=bool)].sort_values("recording_id").itertuples():
        if analogs.get(r.recording_id):
            mvc.setdefault((r.subject_id, r.session), []).append(
                (str(r.task), float(r.analog_rate_hz), analogs[r.recording_id])
            )
    keyed = {
        n: any(_HEX16.fullmatch(k) for k in parts) or not parts
        for n, parts in (("forces", forces), ("markers", markers))
    }
    quarantined = store.keys("quarantine")
    had_angles = store.keys("joint_angles")
    had_moments = store.keys("joint_moments")
    with_outputs = store.keys("model_outputs")
    pig_subjects = {}
    if cfg.kinematics.measurements:
        from cxlab.features.kinematics import read_pig_measurements
        from cxlab.pseudo import key_check

        # the sheet's labels become ids with this machine's key: the store's, or none match
        store.require_key_check(key_check(), claim=False)
        pig_subjects = read_pig_measurements(cfg.kinematics.measurements)
    standing: list[str] = []  # up to date: their quarantine rows still stand
    qparts = []
    order = recs.sort_values("recording_id")
    had_joints = had_angles | had_moments
    no_functions_of: dict = {}  # task -> whether it computes nothing (a few tasks)
    todo: list[int] = []  # positions in ``order`` of the recordings to compute
    # the decision reads three columns: a store of 10,000s of recordings that are not this
    # run's work is not turned into 10,000s of row dicts (0.42 s at 10,000: 30 % of a run
    # on 100 new files)
    light = zip(
        *(order[k].to_numpy(dtype=object) for k in ("recording_id", "task", "subject_id")),
        strict=True,
    )
    for i, (rid, task, subject) in enumerate(light):
        task, subject = _cleaned("task", task), _cleaned("subject_id", subject)
        if task not in no_functions_of:
            # A task only [curves.tasks] names (a single-leg squat) runs for its curves; one
            # declared with `functions = []` stays without features and curves.
            curves_only = task not in cfg.tasks and bool(cfg.curves.tasks.get(task))
            no_functions_of[task] = not cfg.functions(task) and not curves_only
        no_functions = no_functions_of[task]
        # Joint tables fill whatever the task: for subjects with PiG measurements, and
        # from the PiG outputs stored in a file.
        if no_functions and subject not in pig_subjects and rid not in with_outputs:
            report.n_no_functions += 1
            if task not in cfg.tasks and not str(task).startswith(mvc_prefix):
                qparts.append(_unknown_task(store, _records(order, [i])[0], sorted(cfg.tasks)))
            elif f"features-{rid}" in quarantined:  # declared since
                store.delete("quarantine", key=f"features-{rid}")
            continue
        if not force and (rid in done or (no_functions and rid in had_joints)):
            report.n_up_to_date += 1
            standing.append(rid)
            continue
        todo.append(i)
    for rec in _records(order, todo):
        rid = rec["recording_id"]
        jobs_list.append(
            {
                "store": store.url,
                "owner": os.getpid(),  # staged parts outlive the worker until committed
                "rec": rec,
                "cfg": cfg,
                "forces": forces.get(rid, []),
                "markers": markers.get(rid, []),
                "forces_keyed": keyed["forces"],
                "markers_keyed": keyed["markers"],
                "subject_part": subject_parts[part_key(rec["subject_id"])],
                "had_quarantine": f"features-{rid}" in quarantined,
                "had_joints": frozenset(
                    n
                    for n, keys in (("joint_angles", had_angles), ("joint_moments", had_moments))
                    if rid in keys
                ),
                "has_outputs": rid in with_outputs,
                "pig_subject": pig_subjects.get(rec["subject_id"]),
            }
        )
        jobs_list[-1]["events"] = "gait" in cfg.curves.tasks.get(rec["task"], ())
        if "emg" in cfg.functions(rec["task"]):
            jobs_list[-1] |= {
                "analogs": analogs.get(rid, []),
                "analogs_keyed": True,
                "mvc": mvc.get((rec["subject_id"], rec["session"]), []),
            }
    batches = _batches(jobs_list)
    _drop_stale_rows(store, dirty, batches)
    n_workers = min(jobs or os.cpu_count() or 1, max(len(batches), 1))
    with _Progress(progress, len(jobs_list)) as bar:
        if n_workers > 1 or (scheduler and batches):
            with make_executor(n_workers, scheduler=scheduler) as ex:
                for batch, result in zip(batches, ex.map(_run_batch, batches), strict=True):
                    _land(store, result, report, qparts)
                    bar.advance(len(batch))
        else:
            for batch in batches:
                _land(store, _run_batch(batch), report, qparts)
                bar.advance(len(batch))
    store.discard_staged(owner=os.getpid())  # what a worker that died left staged
    strength = store.table("strength")
    if len(strength):
        from cxlab.features.strength import strength_features

        sf = strength_features(strength)
        store.write("features", sf, key="strength")
        report.n_rows += len(sf)
    if standing:  # the same exit status as the run that computed them (and after a kill)
        old = store.table(
            "quarantine", filters=[("stage", "==", "features"), ("value", "in", standing)]
        )
        qparts.append(old[_Q_COLUMNS])
    _single_leg(store, report, tasks=set(recs["task"].dropna()))
    qparts = [q for q in qparts if len(q)]
    if qparts:
        report.quarantine = (
            pd.concat(qparts, ignore_index=True)
            .sort_values(["source_path", "value", "field"], kind="stable")
            .reset_index(drop=True)
        )
    report.elapsed_s = time.perf_counter() - t0
    return report


def _cleaned(column: str, value):
    """A value of a ``recordings`` row as a job holds it: NaN in a column the features
    table shares (subject, session, task...) becomes None, as does ``pd.NA`` (which
    Arrow-backed columns give where pandas' row dicts give None)."""
    if value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value) and column in FEATURE_COLUMNS:
        return None
    return value


def _records(rows: pd.DataFrame, positions: list[int], /) -> list[dict]:
    """The rows at ``positions`` as dicts, each value :func:`_cleaned`."""
    return [
        {k: _cleaned(k, v) for k, v in r.items()} for r in rows.iloc[positions].to_dict("records")
    ]


_BATCH = 64
"""Recordings per worker task: one scan of each input table and one commit per batch."""


def _batches(jobs: list[dict]) -> list[list[dict]]:
    """The jobs ordered by subject (partition) and cut into batches of whole subjects of at
    least :data:`_BATCH` recordings (the last may be smaller), so a batch reads from one or
    a few partition folders and writes each subject's features and curves part once; a
    small cohort per subject (a few dozen trials) still fills whole batches (one validation
    and one commit each)."""
    ordered = sorted(jobs, key=lambda j: (j["subject_part"].key, j["rec"]["recording_id"]))
    batches: list[list[dict]] = []
    for i, j in enumerate(ordered):
        new_subject = i == 0 or j["subject_part"] is not ordered[i - 1]["subject_part"]
        if not batches or (new_subject and len(batches[-1]) >= _BATCH):
            batches.append([])
        batches[-1].append(j)
    return batches


def _drop_stale_rows(store: Store, dirty: list[_SubjectPart], batches: list[list[dict]]) -> None:
    """Rewrite, in one commit, the subject parts holding rows of recordings no longer in
    the store (or no longer of that subject) that no batch of this run rewrites."""
    rewritten = {j["subject_part"].key for b in batches for j in b}
    todo = [(sp, set()) for sp in dirty if sp.key not in rewritten]
    if not todo:
        return
    staged, deleted = [], []
    for name in ("curves", "features"):
        s, d = _subject_parts(store, name, todo, {}, owner=os.getpid())
        staged += s
        deleted += d
    store.commit(staged, delete=deleted)


def _land(store: Store, result: _BatchResult, report: FeaturesReport, qparts: list) -> None:
    """Commit one batch's parts and deletions together and count them in ``report``."""
    store.commit(result.staged, delete=result.deleted)
    report.n_processed += result.n_processed
    report.n_rows += result.n_rows
    qparts.extend(result.quarantine)


def _unknown_task(store: Store, rec: dict, known: list[str]) -> pd.DataFrame:
    """Quarantine a recording whose task no configuration names (empty or unknown), so it is
    listed with the fix and the command exits 3, rather than counted and forgotten.

    A task the configuration declares with ``functions = []`` (a static or calibration trial)
    is left alone: the user said it has no features.
    """
    rid, task = rec["recording_id"], rec["task"]
    what = f"task {task!r}" if task else "no task (the file name gave none)"
    near = nearest(task or "", known)
    hint = f"did you mean {near!r}? " if near else ""
    q = pd.DataFrame(
        {
            "source_path": [rec["source_path"]],
            "source_sha256": [rec["source_sha256"]],
            "stage": ["features"],
            "row": pd.array([None], dtype="Int64"),
            "field": ["task"],
            "value": [rid],
            "reason": [
                f"recording {rid} ({what}): no feature functions for it; {hint}name tasks at "
                "ingest (--pattern with {task}), or declare it in a --config ([tasks.NAME] "
                "functions = [...], or functions = [] for a trial without features; "
                f"docs/features.md); known tasks: {', '.join(known)}"
            ],
        },
        columns=_Q_COLUMNS,
    )
    store.append_quarantine(q, key=f"features-{rid}")
    return q


def _single_leg(store: Store, report: FeaturesReport, /, *, tasks: set[str]) -> None:
    """Rewrite the session-level LSI of single-leg tests (part ``single_leg``) from the
    left- and right-leg trials now in ``features`` (``tasks``: those of the store's
    recordings; without a single-leg one, ``features`` is not read)."""
    from cxlab.features.battery import single_leg_lsi

    legs = [t for pair in SINGLE_LEG_PAIRS.values() for t in pair]
    if tasks.isdisjoint(legs):
        feats = pd.DataFrame(columns=FEATURE_COLUMNS)
    else:
        feats = store.table("features", filters=[("task", "in", legs)])
    lsi = (
        single_leg_lsi(feats, pairs=SINGLE_LEG_PAIRS, metrics=SINGLE_LEG_METRICS)
        if len(feats)
        else feats
    )
    if len(lsi):
        store.write("features", lsi[FEATURE_COLUMNS], key="single_leg")
        report.n_rows += len(lsi)
    elif "single_leg" in store.keys("features"):
        store.delete("features", key="single_leg")


def _recover(store: Store, recordings: set[str]) -> None:
    """Clear what a killed or superseded run left: temporaries of dead writers, the
    joint-table and quarantine parts of recordings no longer in the store (a file whose new
    version replaced the old one; their features and curves rows go when their subject's
    part is rewritten, :func:`_drop_stale_rows`), and per-recording features and curves
    parts of the layout before subject parts."""
    store.recover()
    for name in ("joint_angles", "joint_moments"):
        for key in sorted(store.keys(name)):
            if _HEX16.fullmatch(key) and key not in recordings:
                store.delete(name, key=key)
    # features and curves parts of one recording each (the layout before subject parts):
    # removed, so their recordings are computed again into their subject's part
    legacy = [(n, k) for n in ("features", "curves") for k in store.keys(n) if _HEX16.fullmatch(k)]
    if legacy:
        store.commit(delete=sorted(legacy))
    for key in sorted(store.keys("quarantine")):
        rid = key.removeprefix("features-")
        if key.startswith("features-") and _HEX16.fullmatch(rid) and rid not in recordings:
            store.delete("quarantine", key=key)


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self._p = enabled and total > 0, total, None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._p = Progress(
                "features",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._p.start()
            self._task = self._p.add_task("features", total=self.total)
        return self

    def advance(self, n: int = 1):
        if self._p is not None:
            self._p.advance(self._task, n)

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.stop()
