"""Shared fixtures: the real public data set beside the checkout, and a key for pseudonyms."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

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
    """One line, not one per test, when the real files are missing (and their tests were
    skipped: under ``CXLAB_REQUIRE_REAL_DATA`` they failed, each saying why)."""
    if not real_data_available() and os.environ.get(REQUIRE_REAL, "") in ("", "0"):
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
    shared = _shared_root(tmp_path_factory)

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


def _shared_root(tmp_path_factory) -> Path:
    """pytest's base temporary folder, shared by all xdist workers of this run."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def built_once(tmp_path_factory, _session_pseudonym_key):
    """``built_once(name, build)``: the folder ``build(folder)`` fills, built once per run.

    The first test (of any xdist worker) that asks runs ``build`` into a folder under the
    shared base temporary folder while holding a file lock; every later caller, in any
    worker, waits for the lock and gets the finished folder. A build that raised leaves no
    marker, so the next caller builds again (and sees the same error). Treat the folder as
    read-only: a test that changes it copies it first (``shutil.copytree``).
    """

    def get(name: str, build) -> Path:
        root = _shared_root(tmp_path_factory) / f"built-{name}"
        done = root / ".built"
        with open(f"{root}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not done.exists():
                if root.exists():
                    shutil.rmtree(root)
                root.mkdir(parents=True)
                build(root)
                done.write_text("ok\n")
        return root

    return get


class DemoBuild(NamedTuple):
    """One ``cxlab demo`` run, as :func:`demo_cohort` left it (read-only)."""

    root: Path  #: parent of the three folders below
    raw: Path  #: the synthetic lab export (with ``ground_truth.json``)
    store: Path  #: the filled store
    runs: Path  #: parent of the run directory (``runs/demo/<hash>``)
    args: list[str]  #: the command line after ``cxlab``
    exit_code: int
    output: str  #: what the command printed


#: The shared demo cohort: 16 subjects (4 per arm, so the EMG test has 4 + 4 subjects in
#: control and hip strengthening) x 2 sessions with EMG, the size every test using it needs.
DEMO_SUBJECTS, DEMO_SESSIONS, DEMO_SEED = 16, 2, 7


def demo_args(root: Path) -> list[str]:
    """``cxlab demo`` arguments writing into ``root`` (raw, store, runs)."""
    return [
        "demo",
        "--raw",
        str(root / "raw"),
        "--store",
        str(root / "store"),
        "--subjects",
        str(DEMO_SUBJECTS),
        "--sessions",
        str(DEMO_SESSIONS),
        "--seed",
        str(DEMO_SEED),
        "--out",
        str(root / "runs"),
        "--jobs",
        "2",
    ]


@pytest.fixture(scope="session")
def demo_cohort(built_once) -> DemoBuild:
    """``cxlab demo`` (synth with EMG -> ingest -> surveys, programmes, strength -> features
    -> run experiments/demo.toml -> report) run once for the whole test run through the CLI,
    in-process; shared by test_demo, test_demo_emg, test_emg, test_screen_profile and
    test_studies instead of each building a cohort of its own. Read-only: copy the store
    before writing to it."""
    from typer.testing import CliRunner

    from cxlab.cli import app

    def build(root: Path) -> None:
        res = CliRunner().invoke(app, demo_args(root))
        (root / "exit_code").write_text(str(res.exit_code))
        (root / "output.txt").write_text(res.output, encoding="utf-8")

    root = built_once("demo", build)
    return DemoBuild(
        root=root,
        raw=root / "raw",
        store=root / "store",
        runs=root / "runs",
        args=demo_args(root),
        exit_code=int((root / "exit_code").read_text()),
        output=(root / "output.txt").read_text(encoding="utf-8"),
    )


#: The costliest modules (seconds of test time summed per module, measured on the idle 2-core
#: machine, docs/testing.md "Where the time goes"), costliest first: scheduled first, so that
#: the small modules fill the two workers' ends instead of one big module running alone at
#: the end while the other worker idles. A hint only: a name that no longer exists is skipped,
#: a module not named here runs after these, in collection order.
HEAVY_MODULES = (
    "test_store_s3.py",
    "test_crash.py",
    "test_experiments.py",
    "test_power.py",
    "test_experiments_curves.py",
    "test_effects.py",
    "test_ingest.py",
    "test_synth.py",
    "test_executor.py",
    "test_report.py",
    "test_notebooks.py",
    "test_c3d.py",
    "test_store.py",
    "test_spm.py",
    "test_athlete.py",
)


def pytest_configure(config):
    """Keep the order :func:`pytest_collection_modifyitems` gives the modules.

    pytest-xdist (3.6 and later) by default re-sorts the modules of ``--dist loadfile`` by
    their number of tests (``--loadscope-reorder``), which put the shared demo build, whose
    modules have few tests, near the end of the run, where one worker built it while the
    other waited on its lock.
    """
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """Build the shared demo cohort first, then the costliest modules, then the rest.

    Under ``--dist loadfile`` each worker takes whole modules, one at a time, in this order
    (:func:`pytest_configure` keeps xdist from re-sorting them). The module that uses
    ``demo_cohort`` from its first test (or else the first that uses it at all) goes first,
    so one worker builds the cohort while the other starts on ``HEAVY_MODULES``
    (costliest first); the other modules that use the cohort come after those (the build
    is done by then, so no worker waits on its lock), and then every other module in
    collection order, the small ones that even out the two workers' ends. The order inside
    each module is kept, and every worker computes the same order.
    """
    users: list[str] = []
    modules: list[str] = []
    first_uses: list[str] = []
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        uses = "demo_cohort" in getattr(item, "fixturenames", ())
        if module not in modules:
            modules.append(module)
            if uses:
                first_uses.append(module)
        if uses and module not in users:
            users.append(module)
    builder = (first_uses or users)[:1]
    heavy = sorted(
        (m for m in modules if m.rsplit("/", 1)[-1] in HEAVY_MODULES and m not in users),
        key=lambda m: HEAVY_MODULES.index(m.rsplit("/", 1)[-1]),
    )
    later = [m for m in users if m not in builder]
    rest = [m for m in modules if m not in builder and m not in heavy and m not in later]
    rank = {m: i for i, m in enumerate([*builder, *heavy, *later, *rest])}
    items.sort(key=lambda it: rank[it.nodeid.split("::", 1)[0]])
