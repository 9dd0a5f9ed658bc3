"""Ingest recording files (C3D, TRC, MOT/STO, force-plate CSV) into a store, in parallel.

For each file (or TRC + force MOT pair, see :func:`cxlab.ingest._paths.discover`):

1. subject, session, task and trial come from its path (default BIDS-like pattern or
   ``pattern=``); the subject label is replaced by :func:`cxlab.pseudo.pseudonymise` before any
   row is built, so the raw label is never stored;
2. ``recording_id`` is the first 16 hex of the file's sha256 (a pair: of the TRC's bytes
   followed by the MOT's); a ``recording_id`` already in ``recordings`` is skipped as
   *unchanged* unless ``force=True``;
3. a worker process reads the file and writes ``markers``, ``analogs``, ``forces`` and
   ``events`` (partition = subject id) and then, last, the ``recordings`` row; on any failure it
   deletes every part it wrote, and the parent records the file in ``quarantine`` (part key =
   that recording id, so re-ingesting replaces it and a later success removes it);
4. when a file's content changed, the recording ingested earlier from the same
   ``source_path`` is deleted once the new one has landed.

Every part depends only on its file's bytes, so the store is byte-identical whatever ``jobs``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from cxlab._check import ConfigError, message
from cxlab._executor import is_worker_crash, make_executor
from cxlab.ingest._paths import Unit, discover, masked_path, path_fields, pattern_regex
from cxlab.ingest._worker import ALL_TABLES, Outcome, Task, quarantine_rows, run_task
from cxlab.io.csv import mapping_columns, read_mapping
from cxlab.pseudo import pseudonymise
from cxlab.store import Store

__all__ = ["IngestReport", "ingest"]


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
    store : pathlib.Path
    """

    outcomes: list[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    store: Path | None = None

    def _with(self, status: str) -> list[Outcome]:
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

    def summary(self) -> str:
        """The closing summary: counts, rows, warnings and one line per failure."""
        lines = [f"ingested {len(self.ingested)}, unchanged {len(self.unchanged)}, failed "
                 f"{len(self.failed)} ({len(self.outcomes)} files, {self.seconds:.2f} s) "
                 f"into {self.store}"]
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
        quarantine with the reason; only files that are not numeric tables (survey sheets
        beside the recordings) are skipped, with one warning line naming them.
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
    report = IngestReport(store=st.path)
    if skipped:
        report.warnings.append(
            f"skipped {len(skipped)} CSV/TXT file(s) that are not recordings (no table of "
            f"numbers, no column {', '.join(mapping_columns(spec))}; pass --mapping for other "
            "exports): "
            + ", ".join(skipped))
    known = st.table("recordings", columns=["recording_id", "source_path"])
    done_ids = set(known["recording_id"])
    tasks: list[Task] = []
    seen: dict[str, str] = {}
    for u in units:
        sha = u.digest()
        rid = sha[:16]
        task, matched = _task(u, st, rx)
        task.options = {"csv": {"mapping": spec}}
        if rid in seen:
            report.warnings.append(f"{u.rel}: same content as {seen[rid]}; skipped as duplicate")
            report.outcomes.append(Outcome(task.rel, sha, "unchanged", shown=u.rel))
            continue
        seen[rid] = u.rel
        if rid in done_ids and not force:
            report.outcomes.append(Outcome(task.rel, sha, "unchanged", shown=u.rel))
            continue
        if not matched:
            report.warnings.append(f"{u.rel}: path matches no file-name pattern; subject, "
                                   "session and task left empty")
        tasks.append(task)
    results = _run(tasks, jobs=jobs, progress=progress, scheduler=scheduler)
    report.outcomes += results
    report.outcomes.sort(key=lambda o: o.shown)
    report.warnings += _settle(st, results, known)
    for o in results:
        report.warnings += [f"{o.shown}: {w}" for w in o.warnings]
    report.seconds = time.perf_counter() - t0
    return report


def _task(u: Unit, st: Store, rx) -> tuple[Task, bool]:
    found = path_fields(u.rel, pattern=rx)
    fields = found or dict.fromkeys(("subject", "session", "task", "trial"))
    label = fields["subject"]
    sid = pseudonymise(label) if label else None
    rel = masked_path(u.rel, label=label, subject_id=sid, pattern=rx) if label else u.rel
    task = Task(store=str(st.path.absolute()), root=str(u.root), files=[str(f) for f in u.files],
                rel=rel, shown=u.rel, sha256=u.sha256, subject_id=sid,
                session=fields["session"],
                task=fields["task"].lower() if fields["task"] else None, trial=fields["trial"],
                label=label)
    return task, found is not None


def _run(tasks: list[Task], *, jobs: int | None, progress: bool,
         scheduler: str | None = None) -> list[Outcome]:
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
    with make_executor(n_jobs, scheduler=scheduler) as pool:
        futures = {pool.submit(run_task, t): i for i, t in enumerate(tasks)}
        with Progress("ingest", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, disable=not show, transient=True) as bar:
            tick = bar.add_task("ingest", total=len(tasks))
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    out[i] = fut.result()
                except Exception as exc:
                    if not is_worker_crash(exc):
                        raise
                    crashed.append(i)
                bar.advance(tick)
    for i in sorted(crashed):  # a reader crashed its process: retry each alone to find it
        out[i] = _isolated(tasks[i])
    return [out[i] for i in range(len(tasks))]


def _isolated(task: Task) -> Outcome:
    try:
        with ProcessPoolExecutor(max_workers=1) as pool:
            return pool.submit(run_task, task).result()
    except BrokenProcessPool:
        st = Store(task.store)
        for name in ALL_TABLES:
            st.delete(name, key=task.recording_id)
        return Outcome(task.rel, task.sha256, "failed", stage="read", shown=task.shown,
                       reason="the reader crashed its process (corrupt file?); check the file "
                              "with another tool or re-export it")


def _settle(st: Store, results: list[Outcome], known) -> list[str]:
    """Parent-side bookkeeping: quarantine failures, clear old quarantine and stale versions."""
    notes = []
    q = st.table("quarantine", columns=["source_path", "source_sha256"])
    for o in sorted(results, key=lambda o: o.rel):
        rid = o.sha256[:16]
        old_q = {s[:16] for s in q.loc[q["source_path"] == o.rel, "source_sha256"].dropna()}
        if o.status == "failed":  # replaces the entry of an earlier (bad) version of the file
            st.write("quarantine", quarantine_rows(o), key=rid)
            for key in sorted(old_q - {rid}):
                st.delete("quarantine", key=key)
            continue
        for key in sorted(old_q | {rid}):
            st.delete("quarantine", key=key)
        stale = set(known.loc[known["source_path"] == o.rel, "recording_id"]) - {rid}
        for old in sorted(stale):
            for name in ALL_TABLES:
                st.delete(name, key=old)
            notes.append(f"{o.shown}: content changed; replaced recording {old} ingested "
                         "earlier from this path")
    return notes

