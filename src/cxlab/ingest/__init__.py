"""Ingest files into a store: recordings (C3D, TRC, MOT/STO, force-plate CSV) in parallel
with :func:`ingest`; questionnaires, programme logs, dynamometer sheets and session sheets
with :func:`ingest_surveys`, :func:`ingest_interventions`, :func:`ingest_strength` and
:func:`ingest_sessions`.

The sheet ingests read their files, de-identify them (:mod:`cxlab.deid`), check every cell
and write, per source file, one part keyed by the file's sha256 (``survey-<sha16>``, ...), so
that re-ingesting a file replaces exactly its rows. Rows with a problem do not land: they are
returned and written to the ``quarantine`` table; the good rows land. All frames are
validated against :mod:`cxlab.schemas` before the store is touched, and every part and
quarantine entry of one call is one commit.

Recordings:

For each file (or TRC + force MOT pair, see :func:`cxlab.ingest._paths.discover`):

1. subject, session, task and trial come from its path (default BIDS-like pattern or
   ``pattern=``); the subject label is replaced by :func:`cxlab.pseudo.pseudonymise` before any
   row is built, so the raw label is never stored;
2. ``recording_id`` is the first 16 hex of the file's sha256 (a pair: of the TRC's bytes
   followed by the MOT's); a ``recording_id`` already in ``recordings`` is skipped as
   *unchanged* unless ``force=True``;
3. a worker process reads the file and stages (:meth:`cxlab.store.Store.stage`) its
   ``markers``, ``analogs``, ``forces``, ``events`` (partition = subject id) and ``recordings``
   parts; a failing file stages nothing and the parent records it in ``quarantine`` (part
   key = that recording id, so re-ingesting replaces it and a later success removes it).
   Files go to workers in **batches** (:func:`cxlab.ingest._worker.batches`: a subject's
   files of the run, up to 32 files and 32 MB, smaller in a run of few files so that it
   still makes 16 batches), and a batch's long signal tables are
   staged as one part a table and subject (:meth:`cxlab.store.Store.stage_many`): one
   file for the batch's recordings instead of one each, each recording still a key of its
   own (read, replaced and deleted alone);
4. when a file's content changed, the recording ingested earlier from the same
   ``source_path`` is deleted in the same commit that makes the new one visible.

The run ends with **one commit** (:meth:`cxlab.store.Store.transaction`): every staged part,
the quarantine entries added and cleared, the older versions removed and the ``sessions``
rows become visible together, by one rename of the store's catalog. A crash (``kill -9``,
power loss) at any moment therefore leaves the store as it was before the run or as it is
after it -- never both versions of a changed file, never a stale quarantine entry -- and the
next run removes the staged parts of the dead run and does the work again. Workers die with
the parent (:func:`cxlab._workers.worker_pool`). A file that cannot be written (disk full)
is reported as failed with the reason; the others are still reported.

The cost of a run depends on the files given, not on the size of the store: which files
are stored already, their stored labels and the earlier version of a changed file come
from keyed lookups (:meth:`cxlab.store.Store.lookup`, :meth:`cxlab.store.Store.find`: the
catalog shards and bucket files of this run's recording ids and paths), never from a
directory walk nor a read of the whole ``recordings`` table or catalog. What still grows
is the commit's rewrite of the small tables' buckets its keys fall in (docs/store.md).

Every part depends only on the run's files (their bytes and the batches they form), so the
store is byte-identical whatever ``jobs`` or scheduler. Which files share a part depends on
the runs that brought them: the same files ingested in one run or in two give the same
rows, in files cut differently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cxlab._check import ConfigError, message
from cxlab._executor import is_worker_crash, make_executor
from cxlab._workers import worker_pool
from cxlab.ingest._participants import ingest_participants
from cxlab.ingest._paths import Unit, discover, mask_label, path_fields, pattern_regex, stored_path
from cxlab.ingest._programme import ingest_interventions, ingest_strength
from cxlab.ingest._retest import ingest_retest
from cxlab.ingest._session_sheets import ingest_sessions
from cxlab.ingest._sessions import record_sessions
from cxlab.ingest._surveys import ingest_surveys
from cxlab.ingest._tables import IngestResult
from cxlab.ingest._worker import (
    ALL_TABLES,
    SIGNAL_TABLES,
    IngestStatus,
    Outcome,
    Task,
    batches,
    masks_of,
    quarantine_rows,
    run_batch,
    run_task,
)
from cxlab.io.csv import mapping_columns, read_mapping
from cxlab.pseudo import key_check, pseudonymise
from cxlab.store import Store

__all__ = [
    "IngestReport",
    "IngestResult",
    "IngestStatus",
    "Outcome",
    "ingest",
    "ingest_interventions",
    "ingest_participants",
    "ingest_retest",
    "ingest_sessions",
    "ingest_strength",
    "ingest_surveys",
]


@dataclass
class IngestReport:
    """What :func:`ingest` did.

    Attributes
    ----------
    outcomes : list of Outcome
        One per file (or pair) processed, sorted by ``source_path``; ``status`` is
        ``"ingested"``, ``"unchanged"`` or ``"failed"`` (with ``stage`` and ``reason``).
    warnings : list of str
        One line per oddity: paths matching no pattern, duplicates, reader warnings.
    seconds : float
        Wall-clock time, s.
    store : pathlib.Path or str
        The store's directory, or its URL.
    """

    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    store: Path | str | None = None

    def _with(self, status: IngestStatus) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ingested(self) -> list[Outcome]:
        return self._with("ingested")

    @property
    def unchanged(self) -> list[Outcome]:
        return self._with("unchanged")

    @property
    def failed(self) -> list[Outcome]:
        return self._with("failed")

    @property
    def rows(self) -> dict[str, int]:
        """Rows written per table in this run."""
        out = dict.fromkeys(ALL_TABLES[::-1], 0)
        for o in self.outcomes:
            for k, v in o.rows.items():
                out[k] += v
        return out

    def summary(self, *, show_paths: bool = False) -> str:
        """The closing summary: counts, rows, warnings and one line per failure.

        Files are named as stored (``source_path``: subject labels pseudonymised, a path
        matching no pattern as its keyed hash), so the summary can be logged or shared;
        ``show_paths=True`` (``cxlab ingest --show-paths``) names them as found on disk.
        """
        text = self._summary()
        if show_paths:
            return text
        pairs = {}
        for o in self.outcomes:
            for raw, masked in [(o.shown, o.rel), *o.masks]:
                if raw and raw != masked:
                    pairs.setdefault(raw, masked)
        for raw in sorted(pairs, key=len, reverse=True):
            text = text.replace(raw, pairs[raw])
        return text

    def _summary(self) -> str:
        lines = [
            f"ingested {len(self.ingested)}, unchanged {len(self.unchanged)}, failed "
            f"{len(self.failed)} ({len(self.outcomes)} files, {self.seconds:.2f} s) "
            f"into {self.store}"
        ]
        lines.append("rows written: " + ", ".join(f"{k} {v:,}" for k, v in self.rows.items()))
        if self.warnings:
            lines.append(f"warnings ({len(self.warnings)}):")
            lines += [f"  {w}" for w in self.warnings]
        if self.failed:
            lines.append(f"failed ({len(self.failed)}, listed in the quarantine table):")
            lines += [f"  {o.shown} [{o.stage}]: {o.reason}" for o in self.failed]
        return "\n".join(lines)


def ingest(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: str | os.PathLike[str] | Store,
    pattern: str | None = None,
    jobs: int | None = None,
    force: bool = False,
    mapping: dict | str | os.PathLike[str] | None = None,
    progress: bool = True,
    scheduler: str | None = None,
) -> IngestReport:
    """Ingest recording files and folders into ``store``.

    Parameters
    ----------
    paths : iterable of path-like
        Files and/or folders (walked recursively for ``.c3d .trc .mot .sto .csv .txt``).
    store : path-like or Store
        The target store.
    pattern : str, optional
        Path pattern such as ``"{subject}/{session}/{task}_{trial}.*"``; default: BIDS-like
        entities (``sub-01_ses-1_task-cmj_run-2.c3d``), see :mod:`cxlab.ingest._paths`.
    jobs : int, optional
        Worker processes; default all cores. Results do not depend on it.
    force : bool
        Re-ingest files whose content is already in the store.
    mapping : dict or path-like, optional
        Force-plate CSV mapping (:func:`cxlab.io.csv.read_mapping`); default ``time, left_fz,
        right_fz``. Vendor exports (ForceDecks, BioWare) need none: ``.csv``/``.txt`` files are
        picked by content. A numeric table the mapping does not fit is ingested and fails into
        quarantine with the reason; a file that is no numeric table (a survey sheet beside
        the recordings) is not read and is recorded as failed (stage ``discover``) with the
        command that ingests it.
    progress : bool
        Show a progress bar (only when stderr is a terminal).
    scheduler : str, optional
        Run the per-file work on a Dask cluster: ``"local"`` or a scheduler address
        (:func:`cxlab._executor.make_executor`); the store must be on a filesystem its workers
        share. Results do not depend on it.

    Returns
    -------
    IngestReport

    Raises
    ------
    ConfigError
        A path does not exist, ``jobs`` < 1 or the pattern is invalid. Bad *files* never
        raise: they are reported, quarantined and the run goes on.
    """
    t0 = time.perf_counter()
    st = store if isinstance(store, Store) else Store(store)
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(message("must be a positive integer", field="jobs", value=jobs))
    rx = pattern_regex(pattern) if pattern else None
    spec = read_mapping(mapping)
    units, skipped = discover([Path(p) for p in paths], csv_columns=mapping_columns(spec))
    report = IngestReport(store=st.location)
    check = key_check()
    st.require_key_check(check, claim=False)  # ids made with the store's key, if it has one
    older = st.older_layout()
    _recover(st, sweep=older)
    # what the store holds of these files: keyed lookups (the catalog shards and bucket
    # files of their recording ids), never the whole recordings table
    rids = sorted({u.digest()[:16] for u in units})
    found = st.lookup("recordings", rids)
    done_ids = set(found)
    cols = ["recording_id", "source_path", *_LABELS]
    stored = st.read_parts(list(found.values()), table="recordings", columns=cols)
    stored = stored.set_index("recording_id", drop=False)
    relabel: list[str] = []
    unmatched: list[str] = []
    tasks: list[Task] = []
    landed: list[Outcome] = []  # files already in the store: settled again (idempotent)
    landed_tasks: list[Task] = []
    seen: dict[str, str] = {}
    dates: dict[str, str | None] = {}  # stored path -> {date} of the pattern (sessions table)
    for u in units:
        sha = u.sha256
        rid = sha[:16]
        task, matched = _task(u, st, rx)
        task.options = {"csv": {"mapping": spec}}
        task.key_check = check  # its worker's key must be this one
        dates[task.rel] = (path_fields(u.rel, pattern=rx) or {}).get("date")
        if rid in seen:
            report.warnings.append(f"{u.rel}: same content as {seen[rid]}; skipped as duplicate")
            report.outcomes.append(
                Outcome(task.rel, sha, "unchanged", shown=u.rel, masks=masks_of(task))
            )
            continue
        seen[rid] = u.rel
        if rid in done_ids and not force:
            report.outcomes.append(
                Outcome(task.rel, sha, "unchanged", shown=u.rel, masks=masks_of(task))
            )
            if _relabelled(stored.loc[rid].to_dict(), task):
                relabel.append(u.rel)
            landed.append(report.outcomes[-1])
            landed_tasks.append(task)
            continue
        if not matched:
            unmatched.append(u.rel)
        tasks.append(task)
    if unmatched:  # one line, not one per file: a folder without a pattern has hundreds
        report.warnings.append(
            f"{len(unmatched)} path(s) match no file-name pattern (stored as keyed hashes); "
            "session and task left empty, subject too unless the file's point labels name "
            "exactly one (Name:LASI); pass --pattern (docs/ingest.md): " + ", ".join(unmatched)
        )
    if relabel:
        report.warnings.append(
            f"{len(relabel)} unchanged file(s) give other subject, session, task or trial "
            f"labels with this pattern than when they were ingested (e.g. {relabel[0]}); their "
            "stored labels are kept: re-run with --force to re-derive them"
        )
    for t in tasks:
        t.owner = os.getpid()  # the staged parts are this process's until it commits them
    results = _run(tasks, jobs=jobs, progress=progress, scheduler=scheduler)
    results += [_not_a_recording(u, st, rx, spec) for u in skipped]
    report.outcomes += results
    report.outcomes.sort(key=lambda o: o.shown)
    # files already in the store whose sessions part is missing (an older cxlab) get it now
    have = st.lookup("sessions", [o.sha256[:16] for o in landed])
    redo = [o for o in landed if o.sha256[:16] not in have]
    known = _by_path(st, {o.rel for o in [*results, *landed]})
    try:
        # ids about to land (new recordings, or sessions rows of files stored before the
        # sessions table): the store's key, recorded now if none is (another writer's wins)
        if redo or any(o.status == "ingested" for o in results):
            try:
                st.require_key_check(check)
            except ConfigError:
                st.discard_staged(owner=os.getpid())
                raise
        with st.transaction() as tx:
            for o in results:
                if o.status == "ingested":  # tables the file no longer fills (--force) go
                    for name in ALL_TABLES:
                        tx.delete(name, key=o.sha256[:16])
                    tx.add(o.staged)
            notes = _settle(st, tx, results, landed, known=known)
            notes += record_sessions(
                st,
                tx,
                [*results, *redo],
                tasks=[*tasks, *landed_tasks],
                dates=dates,
                known=known,
                sweep=older,
            )
        report.warnings += notes
    except OSError as e:  # disk full, read-only store: nothing of this run landed
        why = _os_reason(e)
        for o in results:
            if o.status == "ingested":
                o.status, o.stage, o.rows = "failed", "write", {}
                o.reason = (
                    f"could not be committed to the store: {why}; free space or fix the "
                    "store's permissions and run the ingest again"
                )
            elif o.status == "failed":
                o.reason = f"{o.reason}; its quarantine entry could not be written either"
        report.warnings.append(
            f"the store's commit failed ({why}): nothing of this run landed; free space and "
            "run the same ingest again"
        )
    finally:
        st.discard_staged(owner=os.getpid())  # a worker that crashed left its parts
    for o in results:
        report.warnings += [f"{o.shown}: {w}" for w in o.warnings]
    report.seconds = time.perf_counter() - t0
    return report


_LABELS = ("subject_id", "session", "task", "trial")


def _by_path(st: Store, paths: set[str], /):
    """The stored recordings (``recording_id``, ``source_path``) of ``paths``: an earlier
    version of a changed file is the recording of the same path under another id (found
    through the catalog's index of paths, :meth:`cxlab.store.Store.find`)."""
    return st.find("recordings", "source_path", paths, columns=["recording_id", "source_path"])


def _relabelled(row: dict, task: Task) -> bool:
    """Whether a stored recording's labels differ from what its path gives now.

    A subject taken from the file's point prefixes (no subject in the path) is not a change.
    """

    def norm(v):
        return None if v is None or (isinstance(v, float) and v != v) else str(v)

    now = {
        "subject_id": task.subject_id,
        "session": task.session,
        "task": task.task,
        "trial": task.trial,
    }
    if now["subject_id"] is None and task.rel == row["source_path"]:
        now["subject_id"] = row["subject_id"]
    return (
        any(norm(row.get(k)) != norm(now[k]) for k in _LABELS)
        or norm(row.get("source_path")) != task.rel
    )


def _task(u: Unit, st: Store, rx) -> tuple[Task, bool]:
    found = path_fields(u.rel, pattern=rx)
    fields = found or dict.fromkeys(("subject", "session", "task", "trial"))
    label = fields["subject"]
    sid = pseudonymise(label) if label else None
    rel = stored_path(u.rel, fields=found, subject_id=sid, token=pseudonymise, pattern=rx)

    def masked(v: str | None) -> str | None:  # "John Smith follow-up" -> "<id> follow-up"
        return mask_label(v, label=label, subject_id=sid) if v else v

    task = Task(
        store=st.absolute().url,
        root=str(u.root),
        files=[str(f) for f in u.files],
        rel=rel,
        shown=u.rel,
        sha256=u.sha256,
        subject_id=sid,
        session=masked(fields["session"]),
        task=masked(fields["task"].lower()) if fields["task"] else None,
        trial=masked(fields["trial"]),
        label=label,
        size=sum(f.stat().st_size for f in u.files),
    )
    return task, found is not None


def _not_a_recording(u: Unit, st: Store, rx, spec) -> Outcome:
    """A CSV/TXT file in a recording folder that is no table of numbers: recorded as failed
    (quarantine, exit 3), never dropped without trace."""
    u.digest()
    task, _ = _task(u, st, rx)
    return Outcome(
        task.rel,
        u.sha256,
        "failed",
        stage="discover",
        shown=u.rel,
        masks=masks_of(task),
        reason=(
            "is not a recording: no table of numbers and no columns "
            f"{', '.join(mapping_columns(spec))}; pass --mapping for another force-plate export, "
            "ingest a survey or programme sheet with its own command (cxlab ingest-survey, "
            "ingest-interventions, ingest-strength, ingest-sessions), or move the file out of "
            "the recording folders"
        ),
    )


def _run(
    tasks: list[Task], *, jobs: int | None, progress: bool, scheduler: str | None = None
) -> list[Outcome]:
    if not tasks:
        return []
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    show = progress and console.is_terminal
    n_jobs = min(jobs or os.cpu_count() or 1, len(tasks))
    out: dict[int, Outcome] = {}
    crashed: list[int] = []
    # workers are forked at the first submit, before rich starts its refresh thread
    groups = batches(tasks)
    n_jobs = min(n_jobs, len(groups))
    with make_executor(n_jobs, scheduler=scheduler) as pool:
        futures = {pool.submit(run_batch, [tasks[i] for i in g]): g for g in groups}
        with Progress(
            "ingest",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not show,
            transient=True,
        ) as bar:
            tick = bar.add_task("ingest", total=len(tasks))
            for fut in as_completed(futures):
                group = futures[fut]
                try:
                    out.update(zip(group, fut.result(), strict=True))
                except Exception as exc:
                    if not is_worker_crash(exc):
                        raise
                    crashed += group
                bar.advance(tick, len(group))
    for i in sorted(crashed):  # a reader crashed its process: retry its batch one by one
        out[i] = _isolated(tasks[i])
    return [out[i] for i in range(len(tasks))]


def _isolated(task: Task) -> Outcome:
    try:
        with worker_pool(1) as pool:
            return pool.submit(run_task, task).result()
    except BrokenProcessPool:  # its staged parts are discarded after the commit
        return Outcome(
            task.rel,
            task.sha256,
            "failed",
            stage="read",
            shown=task.shown,
            reason="the reader crashed its process (corrupt file?); check the file "
            "with another tool or re-export it",
        )


def _recover(st: Store, *, sweep: bool) -> None:
    """Undo what a killed run left half-made: staged parts of dead writers and a commit cut
    short (:meth:`cxlab.store.Store.recover`, which costs what was left, not the store's
    size), and, with ``sweep`` (a store written by an older cxlab, which wrote parts one by
    one: :meth:`cxlab.store.Store.older_layout`), signal parts of a recording without a
    ``recordings`` row. A store of atomic commits never has those, so its run does not read
    the whole catalog to look for them."""
    st.recover()
    if not sweep:
        return
    cat = st.catalog()  # one vectorised pass, not a set per table
    landed = pa.array(cat.loc[cat["table"] == "recordings", "key"], pa.string())
    # Arrow's hash lookup: pandas' isin on Arrow strings loops in Python (5 s at 100,000)
    has_row = pc.is_in(pa.array(cat["key"], pa.string()), value_set=landed).to_numpy(False)
    signal = cat[cat["table"].isin(SIGNAL_TABLES) & ~has_row]
    if len(signal):
        st.commit(delete=sorted(zip(signal["table"], signal["key"], strict=True)))


def _settle(st: Store, tx, results: list[Outcome], landed: list[Outcome], *, known) -> list[str]:
    """Parent-side bookkeeping, into transaction ``tx``: quarantine failures, clear old
    quarantine entries and older versions of changed files.

    Runs over this run's results *and* the files found already ingested (idempotent), so
    that an entry an earlier cxlab left behind is settled too. Only the rows of the paths
    given are looked at, so the cost does not grow with the store.
    """
    notes = []
    outcomes = sorted([*results, *landed], key=lambda o: (o.rel, o.sha256))
    paths = {o.rel for o in outcomes}
    q = st.table("quarantine", columns=["source_path", "source_sha256"]).dropna()
    q = q[q["source_path"].isin(paths)]
    q_by_path = q.groupby("source_path")["source_sha256"].agg(lambda s: {v[:16] for v in s})
    now = known[known["source_path"].isin(paths)]
    rids_by_path = now.groupby("source_path")["recording_id"].agg(set)
    for o in outcomes:
        rid = o.sha256[:16]
        old_q = q_by_path.get(o.rel, set())
        if o.status == "failed":  # replaces the entry of an earlier (bad) version
            tx.write("quarantine", quarantine_rows(o), key=rid)
            for key in sorted(old_q - {rid}):
                tx.delete("quarantine", key=key)
            continue
        for key in sorted(old_q | {rid}):
            tx.delete("quarantine", key=key)
        stale = rids_by_path.get(o.rel, set()) - {rid}
        for old in sorted(stale):
            for name in ("recordings", *SIGNAL_TABLES):
                tx.delete(name, key=old)
            notes.append(
                f"{o.shown}: content changed; replaced recording {old} ingested "
                "earlier from this path"
            )
    return notes


def _os_reason(e: OSError) -> str:
    return f"{e.strerror or e} (errno {e.errno})" if e.errno else str(e)
