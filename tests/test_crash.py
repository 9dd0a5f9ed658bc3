"""A kill at any moment leaves the store consistent, and the next run finishes the job.

Each case forks this (already imported) test process, runs one command in the child
(``cxlab ingest``, ``cxlab features`` or ``run_experiment``), kills the child with SIGKILL
after a seeded random delay, checks that its pool workers died with it, reruns the same
command uninterrupted and compares the result with a build that was never interrupted:
every file of the store (parts, quarantine) byte for byte, and the exit code.

The ingest that is killed is the second one of a store: one file's content changed (the
old recording must go), a corrupt file was fixed (its quarantine entry must go), one file
is still corrupt and the rest are unchanged -- the windows where a kill used to leave both
versions, or a stale quarantine entry, forever.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from pathlib import Path

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


def _killed(run, delay: float) -> None:
    """Run ``run()`` in a forked child and SIGKILL it after ``delay`` s (unless it ended
    first); then check that no process of its group (its pool workers) outlives it by 5 s."""
    pid = os.fork()
    if pid == 0:  # the child: its own process group, so the parent can see its workers
        code = 1
        try:
            os.setpgid(0, 0)
            run()
            code = 0
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it already (or is gone)
    end = time.monotonic() + delay
    done = False
    while not done and time.monotonic() < end:
        done = os.waitpid(pid, os.WNOHANG)[0] == pid  # the command may finish first
        time.sleep(0.01)
    if not done:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 5.0
    while True:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            pytest.fail("pool workers outlived their killed parent by more than 5 s")
        time.sleep(0.05)


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
    gone = v1.keys("features") - v2.keys("features")
    assert gone  # the features of the replaced recording went with it, and so did its file
    old = [v1.parts("features")[k].file for k in gone]
    assert old and not [f for f in old if (built["snaps"]["v2f"] / f).exists()]
    assert built["codes"] == {"v1": 3, "v1f": 3, "v2": 3, "v2f": 3}


@pytest.mark.parametrize("jobs", [1, 2])
def test_killed_ingest_then_rerun_equals_the_uninterrupted_build(built, tmp_path, jobs):
    rng = random.Random(SEED + jobs)
    want = _tree(built["snaps"]["v2"])
    for k in range(8):
        store = tmp_path / f"s{k}"
        shutil.copytree(built["snaps"]["v1f"], store)
        args = ["ingest", str(built["raw"]), "--store", str(store), "--jobs", str(jobs)]
        _killed(lambda args=args: _invoke(args), rng.uniform(0.0, 1.2 * built["secs"]["v2"]))
        assert _invoke(args) == built["codes"]["v2"], k
        assert _tree(store) == want, k
        args = ["features", "--store", str(store), "--jobs", str(jobs)]
        assert _invoke(args) == built["codes"]["v2f"], k  # features agree after the rerun too
        assert _tree(store) == _tree(built["snaps"]["v2f"]), k


@pytest.mark.parametrize("jobs", [1, 2])
def test_killed_features_then_rerun_equals_the_uninterrupted_build(built, tmp_path, jobs):
    rng = random.Random(SEED + 10 + jobs)
    want = _tree(built["snaps"]["v2f"])
    for k in range(6):
        store = tmp_path / f"s{k}"
        shutil.copytree(built["snaps"]["v2"], store)
        args = ["features", "--store", str(store), "--jobs", str(jobs)]
        _killed(lambda args=args: _invoke(args), rng.uniform(0.0, 1.2 * built["secs"]["v2f"]))
        assert _invoke(args) == built["codes"]["v2f"], k  # exit 3: the quarantine row is there
        assert _tree(store) == want, k


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

    truth_store(tmp_path / "store", 16, 3, seed=9)
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
        _killed(job, delay)  # the run folder exists: each kill lands while it is rebuilt
        assert _tree(run) == want, k  # whole, old or new (the same bytes), never half
        render_report(run)
        assert run_experiment(tmp_path / "crash.toml", out=tmp_path / "runs") == run
        assert sorted(p.name for p in run.parent.iterdir()) == [run.name], k  # no leftovers
        assert _tree(run) == want, k
