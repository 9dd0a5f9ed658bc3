"""Shared fixtures: the real public data set beside the checkout, and a key for pseudonyms."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# One BLAS/OpenMP thread per test process (set before NumPy is imported; the xdist workers
# and every child process inherit it). xdist already runs one process per core: a second
# BLAS thread per process only spins. On the loaded 2-core machine it doubled the CPU time
# of a random-slope REML fit (scipy's L-BFGS-B waiting on OpenBLAS threads: 0.125 s vs
# 0.054 s of CPU per simulated trial in ``simulate_power``). ``setdefault``: a user's
# explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

#: Compiled bytecode for this test run and every process it starts, kept between runs.
#: With ``PYTHONDONTWRITEBYTECODE`` set (some shells and containers set it) and an
#: environment installed without byte-compiling (``make``'s ``--no-compile``), no ``.pyc``
#: exists anywhere, so every process compiles every module it imports from source, each
#: time: matplotlib, pandas, scipy and statsmodels cost ~20 s of CPU per process, paid by
#: each xdist worker, notebook kernel, Dask worker and spawned child. The bytecode goes to
#: a mirror tree under ``.pytest_cache`` (``sys.pycache_prefix``), never into the source
#: tree, which is what the variable protects.
PYCACHE = REPO / ".pytest_cache" / "pycache"
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
    sys.dont_write_bytecode = False


def real_data_dir() -> Path:
    """``../shared/data/real`` beside the checkout (or ``CXLAB_REAL_DATA``)."""
    env = os.environ.get("CXLAB_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


REQUIRE_REAL = "CXLAB_REQUIRE_REAL_DATA"
_SKIP_REASON = (
    "real test data not found at {d}: these tests read the public C3D, OpenSim and force-plate "
    "files listed in shared/data/real/SOURCES.md; clone this repository beside ../shared or point "
    "CXLAB_REAL_DATA at that folder"
)


def real_data_available() -> bool:
    return (real_data_dir() / "SOURCES.md").exists()


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The real data folder; skipped when absent, a failure when ``CXLAB_REQUIRE_REAL_DATA=1``.

    CI sets the variable (``.ci/run``), so CI never skips the tests on real files; a user who
    cloned the repository alone gets them skipped with one summary line saying where the files
    come from.
    """
    d = real_data_dir()
    if not (d / "SOURCES.md").exists():
        reason = _SKIP_REASON.format(d=d)
        if os.environ.get(REQUIRE_REAL, "") not in ("", "0"):
            pytest.fail(f"{reason} ({REQUIRE_REAL} is set, so their absence is a failure)")
        pytest.skip(reason)
    return d


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line, not one per test, when the real files are missing."""
    if not real_data_available():
        terminalreporter.write_line(
            "NOTE: "
            + _SKIP_REASON.format(d=real_data_dir())
            + "; the tests that read them were skipped",
            yellow=True,
        )


#: The suite's pseudonymisation key (128 bits of hex, so ``cxlab.pseudo`` accepts it): the one
#: place it is written. Every test, and every module- or session-scoped fixture, runs with it
#: in ``CXLAB_KEY``; a test that needs another key sets its own with ``monkeypatch``.
TEST_KEY = "cxlab-test-key-not-secret-0123456789abcdef"


@pytest.fixture(scope="session", autouse=True)
def _session_pseudonym_key(tmp_path_factory):
    """The key (and a private config folder) before any fixture of any scope is built."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXLAB_KEY", TEST_KEY)
        mp.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))
        yield


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch, tmp_path_factory):
    """Set again for each test, so no test sees a key another test left behind, and none
    touches ~/.config/cxlab/key."""
    monkeypatch.setenv("CXLAB_KEY", TEST_KEY)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))


@pytest.fixture(scope="session")
def synth_cohort(tmp_path_factory):
    """``synth_cohort(n_subjects, n_sessions, seed=..., **options)``: the raw folder of
    :func:`cxlab.synth.write_cohort` with those arguments, written once for the whole run.

    The first test that asks builds it under pytest's base temporary folder, shared by all
    xdist workers, holding a file lock, so the other workers wait for it and reuse it rather
    than write their own (the files do not depend on the worker count: ``write_cohort``
    seeds each subject's signals). The folder is shared: a test that changes it copies it
    first (``shutil.copytree``).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def get(n_subjects: int, n_sessions: int, *, seed: int, **options) -> Path:
        from cxlab.synth.files import write_cohort

        opts = "".join(f"-{k}={v}" for k, v in sorted(options.items()))
        root = shared / f"synth-cohort-{n_subjects}x{n_sessions}-seed{seed}{opts}"
        with open(f"{root}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not (root / "raw" / "ground_truth.json").exists():
                write_cohort(
                    root / "raw",
                    n_subjects=n_subjects,
                    n_sessions=n_sessions,
                    seed=seed,
                    jobs=1,
                    progress=False,
                    **options,
                )
        return root / "raw"

    return get


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Keep the tests that share a costly fixture on one xdist worker, so it is built once.

    A fixture a test module defines for itself with a scope wider than one test (a
    synthetic cohort ingested once, a run directory, a notebook store) is built once per
    worker that runs any of its tests. Under ``--dist loadgroup`` (``make test``), every test
    using such a fixture is put in that module's ``xdist_group``; the other tests of the
    suite are still balanced test by test. Without ``loadgroup`` the mark does nothing.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        module = getattr(item, "module", None)
        if info is None or module is None:
            continue
        where = item.nodeid.split("::", 1)[0]
        shared = [
            name
            for name, defs in info.name2fixturedefs.items()
            if defs and defs[-1].scope != "function" and defs[-1].baseid == where
        ]
        if shared:
            item.add_marker(pytest.mark.xdist_group(where))
