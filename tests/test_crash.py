"""A kill at any moment leaves the store consistent, and the next run finishes the job.

Each case forks this (already imported) test process, runs one command in the child
(``cxlab ingest``, ``cxlab features`` or ``run_experiment``), kills the child with SIGKILL
at a chosen point of its work, checks that its pool workers died with it, reruns the same
command uninterrupted and compares the result with a build that was never interrupted:
every file of the store (parts, quarantine) byte for byte, and the exit code.

The ingest that is killed is the second one of a store: one file's content changed (the
old recording must go), a corrupt file was fixed (its quarantine entry must go), one file
is still corrupt and the rest are unchanged -- the windows where a kill used to leave both
versions, or a stale quarantine entry, forever.

Why these kill points and not random delays (the suite used to fire 30 seeded random
kills): a writer can only be interrupted in one of the states its commit protocol passes
through (``cxlab.store``: parts staged under ``_staging``, then a journal ``_commit.json``
naming the files the commit adds or drops, then the parts moved to their final names, then
the catalog replaced by one rename, then the replaced files and the journal removed; and
the next run's recovery, which itself can be cut short). A random delay lands in one of
those states or in reading/computing, where nothing is on disk yet; most of the 30 landed
in the same two or three states. Here each state is hit on purpose, by a trap the child
sets on the call that enters or leaves it (the trap sends SIGKILL to the command's
process from whichever process -- the command or one of its pool workers -- reaches it),
and each case checks that the child really died by that SIGKILL, so a trap that is never
reached (a renamed function, a changed protocol) fails the test instead of passing
silently:

=========================  ===================================================================
point                      state left on disk
=========================  ===================================================================
``staged``                 a worker staged one part of the first file; nothing committed
``before-commit``          every file read and staged; the commit not begun
``journal``                the journal written; no part moved
``part-moved``             the first new part at its final name; the old catalog still live
``catalog-swapped``        the new catalog live; replaced files and the journal not removed
``recovery``               after ``part-moved``, the rerun killed as its recovery starts
``recovery-journal``       after ``part-moved``, the rerun killed inside the journal's
                           clean-up (losers removed, the journal not yet)
=========================  ===================================================================

``cxlab features`` stages each batch of recordings in a pool worker and commits the batch
from the command's process, so its staging point is taken in a worker (``@worker`` in a
case's name) and its commit points in the command: the first commit (the recovery that drops
the replaced recording's parts), then the first batch's commit (``committed`` is after it,
before the next batch). The features cases run with batches of two recordings
(``runner._BATCH``; the default 64 would put this small store in one batch, run without a
pool), so there is a pool and more than one batch commit to cut between. Staging runs with
``--jobs 1`` and ``2`` (ingest stages in pool workers either way; features with one job
stages in the command's own process); the commit points with ``--jobs 2``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pytest
from typer.testing import CliRunner

from cxlab.cli import app
from featuresim import cmj_force

SEED = 20261201
RATE = 500.0


def _csv(path: Path, fz: np.ndarray) -> None:
    t = np.arange(fz.size) / RATE
    body = "".join(f"{a:.4f},{b / 2:.3f},{b / 2:.3f}\n" for a, b in zip(t, fz, strict=True))
    path.write_text("time,left_fz,right_fz\n" + body, encoding="utf-8")


def _jump(i: int, v_to: float) -> np.ndarray:
    fz, _ = cmj_force(
        mass_kg=60 + 5 * i, v_to=v_to, rate_hz=RATE, quiet_s=1.0, after_s=0.5, noise_n=2.0, seed=i
    )
    return fz


def _raw(root: Path, version: int) -> Path:
    """Version 1, then version 2: sub-01 re-exported (new content), sub-05 fixed."""
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for i in (1, 2, 3):
        _csv(
            raw / f"sub-0{i}_ses-1_task-cmj_run-1.csv",
            _jump(i, 2.4 + 0.1 * i + (0.15 if i == 1 and version == 2 else 0.0)),
        )
    _csv(raw / "sub-04_ses-1_task-cmj_run-1.csv", np.full(1000, 700.0))  # no flight
    bad = raw / "sub-05_ses-1_task-cmj_run-1.csv"
    if version == 1:
        bad.write_text("time,left_fz,right_fz\n0,1,2\nnot,a,number\n", encoding="utf-8")
    else:
        _csv(bad, _jump(5, 2.5))
    (raw / "sub-06_ses-1_task-cmj_run-1.csv").write_text(
        "time,left_fz,right_fz\n0,1\n", encoding="utf-8"
    )  # corrupt in both versions
    return raw


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "run.log"
    }


def _invoke(args: list[str]) -> int:
    return CliRunner().invoke(app, args, catch_exceptions=False).exit_code


class Trap(NamedTuple):
    """Kill the command at the ``nth`` call of ``target`` (``module.attr`` or
    ``module.Class.attr``) whose arguments ``match``, ``when`` before or after it runs."""

    target: str
    when: Literal["before", "after"]
    match: Callable[..., bool] | None = None
    nth: int = 1
    in_worker: bool = False  # only in a pool worker (a process other than the command's)


def _named(name: str) -> Callable[..., bool]:
    return lambda src, dst, *a, **k: Path(dst).name == name


def _part(src, dst, *a, **k) -> bool:  # a part moved to its final name (not into _staging)
    return Path(dst).name.startswith("part-") and Path(dst).parent.name != "_staging"


def _traps(store: Path) -> dict[str, Trap]:
    from cxlab import _catalog

    journal = store / _catalog.JOURNAL
    return {
        "staged": Trap("cxlab.store.Store.stage", "after"),
        "before-commit": Trap("cxlab.store.Store.commit", "before"),
        "committed": Trap("cxlab.store.Store.commit", "after"),
        "journal": Trap("os.replace", "after", _named(_catalog.JOURNAL)),
        "part-moved": Trap("os.replace", "after", _part),
        "shard-written": Trap(  # a catalog shard renamed in place, before the root swap
            "os.replace", "after", lambda src, dst, *a, **k: Path(dst).parent.name == "_catalog"
        ),
        "catalog-swapped": Trap("os.replace", "after", _named(_catalog.CATALOG)),
        "recovery": Trap("cxlab.store.Store.recover", "before"),
        "recovery-journal": Trap(
            "os.unlink",
            "after",
            lambda path, *a, **k: Path(path).name.startswith("part-") and journal.exists(),
        ),
    }


def _set_trap(trap: Trap, commander: int) -> None:
    """In the forked child: replace ``trap.target`` by a wrapper that SIGKILLs process
    ``commander`` (and the process it runs in, a pool worker forked from it) at the trap."""
    import importlib

    parts = trap.target.split(".")
    for i in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:-1]:
            owner = getattr(owner, attr)
        break
    original = getattr(owner, parts[-1])
    seen = [0]

    def fire(args, kwargs) -> None:
        if trap.in_worker and os.getpid() == commander:
            return
        if trap.match is None or trap.match(*args, **kwargs):
            seen[0] += 1
            if seen[0] == trap.nth:
                os.kill(commander, signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)

    def wrapper(*args, **kwargs):
        if trap.when == "before":
            fire(args, kwargs)
        out = original(*args, **kwargs)
        if trap.when == "after":
            fire(args, kwargs)
        return out

    setattr(owner, parts[-1], wrapper)


def _killed(run, *, trap: Trap | None = None, delay: float = 120.0) -> int:
    """Run ``run()`` in a forked child and SIGKILL it at ``trap`` (or after ``delay`` s);
    check that no process of its group (its pool workers) outlives it by 5 s. Returns the
    child's wait status (``os.waitpid``)."""
    pid = os.fork()
    if pid == 0:  # the child: its own process group, so the parent can see its workers
        code = 1
        try:
            os.setpgid(0, 0)
            if trap is not None:
                _set_trap(trap, os.getpid())
            run()
            code = 0
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it already (or is gone)
    end = time.monotonic() + delay
    status = None
    while status is None and time.monotonic() < end:
        got, st = os.waitpid(pid, os.WNOHANG)  # the command may finish first
        status = st if got == pid else None
        time.sleep(0.01)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    deadline = time.monotonic() + 5.0
    while True:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return status
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            pytest.fail("pool workers outlived their killed parent by more than 5 s")
        time.sleep(0.05)


def _killed_at(point: str, args: list[str], store: Path) -> None:
    """Run the CLI command ``args`` killed at kill point ``point``; fail unless the trap
    fired (the child died by SIGKILL, not by finishing or by an error first)."""
    name, _, where = point.partition("@")
    trap = _traps(store)[name]._replace(in_worker=where == "worker")
    status = _killed(lambda: _invoke(args), trap=trap)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"kill point {point!r} was never reached by {args[0]} (wait status {status}): "
        "the commit protocol changed; choose the call that now enters that state"
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The uninterrupted build: ingest v1, features, ingest v2, features (snapshots of each)."""
    return _build(tmp_path_factory.mktemp("crash"))


def _build(root: Path) -> dict:
    store = root / "store"
    raw = _raw(root, 1)
    snaps, codes, secs = {}, {}, {}
    steps = [
        ("v1", ["ingest", str(raw), "--store", str(store), "--jobs", "2"]),
        ("v1f", ["features", "--store", str(store), "--jobs", "2"]),
    ]
    for name, args in steps:
        codes[name] = _invoke(args)
        snaps[name] = root / f"snap-{name}"
        shutil.copytree(store, snaps[name])
    _raw(root, 2)
    for name, args in [
        ("v2", ["ingest", str(raw), "--store", str(store), "--jobs", "2"]),
        ("v2f", ["features", "--store", str(store), "--jobs", "2"]),
    ]:
        t0 = time.perf_counter()
        codes[name] = _invoke(args)
        secs[name] = time.perf_counter() - t0
        snaps[name] = root / f"snap-{name}"
        shutil.copytree(store, snaps[name])
    return {"root": root, "raw": raw, "snaps": snaps, "codes": codes, "secs": secs}


def test_the_uninterrupted_build_has_the_windows_the_kills_aim_at(built):
    from cxlab.store import Store

    v1, v2 = Store(built["snaps"]["v1f"]), Store(built["snaps"]["v2f"])
    q1, q2 = v1.keys("quarantine"), v2.keys("quarantine")
    rec1, rec2 = v1.keys("recordings"), v2.keys("recordings")
    assert len(q1) == 3 and len(q2) == 2  # sub-05 fixed: its entry went, sub-06 and no-flight stay
    assert len(rec1) == 4 and len(rec2) == 5 and rec1 - rec2  # old sub-01 replaced
    ids1, ids2 = (set(v.table("features")["recording_id"].dropna()) for v in (v1, v2))
    gone = ids1 - ids2
    assert gone  # the features of the replaced recording went with it, and so did the file
    old = [  # of its subject's part (rewritten without them)
        p.file
        for p in v1.parts("features").values()
        if gone & set(v1.read_parts([p], table="features", columns=["recording_id"]).iloc[:, 0])
    ]
    assert old and not [f for f in old if (built["snaps"]["v2f"] / f).exists()]
    assert built["codes"] == {"v1": 3, "v1f": 3, "v2": 3, "v2f": 3}


#: (kill points, --jobs): each case kills the command at its points in turn, then reruns it
INGEST_CASES = [
    (["staged"], 1),
    (["staged"], 2),
    (["before-commit"], 2),
    (["journal"], 2),
    (["part-moved"], 2),
    (["shard-written"], 2),
    (["catalog-swapped"], 2),
    (["part-moved", "recovery"], 2),
    (["part-moved", "recovery-journal"], 2),
]
FEATURES_CASES = [
    (["staged"], 1),
    (["staged@worker"], 2),
    (["catalog-swapped"], 2),  # the first commit: recovery drops the replaced recording's parts
    (["committed"], 2),  # after the first commit, before the batches' commits
    (["journal"], 2),
    (["part-moved"], 2),
    (["shard-written"], 2),
    (["part-moved", "recovery-journal"], 1),
]


def _case_id(case) -> str:
    points, jobs = case
    return "+".join(points).replace("@", "-in-") + f"-jobs{jobs}"


@pytest.mark.parametrize("case", INGEST_CASES, ids=_case_id)
def test_killed_ingest_then_rerun_equals_the_uninterrupted_build(built, tmp_path, case):
    points, jobs = case
    store = tmp_path / "s"
    shutil.copytree(built["snaps"]["v1f"], store)
    args = ["ingest", str(built["raw"]), "--store", str(store), "--jobs", str(jobs)]
    for point in points:
        _killed_at(point, args, store)
    assert _invoke(args) == built["codes"]["v2"]
    assert _tree(store) == _tree(built["snaps"]["v2"])
    args = ["features", "--store", str(store), "--jobs", str(jobs)]
    assert _invoke(args) == built["codes"]["v2f"]  # features agree after the rerun too
    assert _tree(store) == _tree(built["snaps"]["v2f"])


@pytest.mark.parametrize("case", FEATURES_CASES, ids=_case_id)
def test_killed_features_then_rerun_equals_the_uninterrupted_build(
    built, tmp_path, case, monkeypatch
):
    from cxlab.features import runner

    monkeypatch.setattr(runner, "_BATCH", 2)  # a pool and several batch commits (docstring)
    points, jobs = case
    store = tmp_path / "s"
    shutil.copytree(built["snaps"]["v2"], store)
    args = ["features", "--store", str(store), "--jobs", str(jobs)]
    for point in points:
        _killed_at(point, args, store)
    assert _invoke(args) == built["codes"]["v2f"]  # exit 3: the quarantine row is there
    assert _tree(store) == _tree(built["snaps"]["v2f"])


SPEC = """
name = "crash"
title = "Crash test"
seed = 1
store = "store"
[model]
control = "control"
[outcomes.pain_nrs]
mcid = 2.0
"""


def test_killed_run_experiment_leaves_the_old_run_or_the_new_one_never_half(tmp_path):
    from cxlab.experiments import run_experiment
    from cxlab.report import render_report
    from truth_store import truth_store

    # 8 subjects (2 an arm) x 2 sessions: the claim is about the run folder's files, not
    # the estimates; the run's own time sets the random kill's delay
    truth_store(tmp_path / "store", 8, 2, seed=9)
    (tmp_path / "crash.toml").write_text(SPEC, encoding="utf-8")
    t0 = time.perf_counter()
    run = run_experiment(tmp_path / "crash.toml", out=tmp_path / "runs")
    secs = time.perf_counter() - t0
    want = _tree(run)
    rng = random.Random(SEED + 20)

    def die_while_deleting_the_old_copy(path, *a, **k):  # the moment that left half a run
        victim = next(p for p in Path(path).rglob("*.parquet"))
        victim.unlink()
        os._exit(9)

    def chosen():
        import cxlab.experiments.run as mod

        mod.shutil.rmtree = die_while_deleting_the_old_copy
        run_experiment(tmp_path / "crash.toml", out=tmp_path / "runs")

    plain = lambda: run_experiment(tmp_path / "crash.toml", out=tmp_path / "runs")  # noqa: E731
    for k, (job, delay) in enumerate(
        [(plain, rng.uniform(0.5 * secs, 1.1 * secs)), (chosen, 120.0)]
    ):
        _killed(job, delay=delay)  # the run folder exists: each kill lands while it is rebuilt
        assert _tree(run) == want, k  # whole, old or new (the same bytes), never half
        render_report(run)
        assert run_experiment(tmp_path / "crash.toml", out=tmp_path / "runs") == run
        assert sorted(p.name for p in run.parent.iterdir()) == [run.name], k  # no leftovers
        assert _tree(run) == want, k
