"""cxlab._executor: ingest and features on a Dask cluster write the store a local run writes.

A real ``dask scheduler`` and ``dask worker`` (two single-threaded processes) are started on
127.0.0.1 for the module and always stopped; the cohort is cxlab.synth's C3D export plus a
real vendor file and a truncated real file (which must land in quarantine the same way).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxlab._check import ConfigError
from cxlab._executor import is_worker_crash, make_executor
from cxlab.cli import app

distributed = pytest.importorskip("distributed", reason="needs the cxlab[dask] extra")

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files(store: Path) -> dict[str, bytes]:
    return {
        p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def raw(tmp_path_factory, real_dir, synth_cohort) -> Path:
    out = tmp_path_factory.mktemp("dask") / "raw"  # a copy: two files are added to it
    shutil.copytree(synth_cohort(2, 1, seed=11), out)
    real = real_dir / "c3d"  # a vendor's CMJ file, and a truncated file for the quarantine
    extra = out / "sub-CX900" / "ses-1"
    extra.mkdir(parents=True)
    shutil.copy(
        real / "biomdp_kistler_CMJ_1plate.c3d", extra / "sub-CX900_ses-1_task-cmj_run-1.c3d"
    )
    cut = (real / "opensim_walking2.c3d").read_bytes()[:5000]
    (extra / "sub-CX900_ses-1_task-cmj_run-2.c3d").write_bytes(cut)
    return out


def _pipeline(raw: Path, store: Path, *options: str, env: dict | None = None) -> list[str]:
    outputs = []
    for args in (["ingest", str(raw), "--store", str(store)], ["features", "--store", str(store)]):
        res = runner.invoke(app, [*args, *options], env=env)
        assert res.exit_code in (0, 3), res.output  # 3: the truncated file was quarantined
        outputs.append(res.output)
    return outputs


_LOCAL: dict[tuple, dict[str, bytes]] = {}


@pytest.fixture
def local_store(raw, tmp_path_factory) -> dict[str, bytes]:
    """The store of a local ``--jobs 1`` run, built once per pseudonym key (conftest sets it)."""
    key = (str(raw), os.environ.get("CXLAB_KEY"))
    if key not in _LOCAL:
        st = tmp_path_factory.mktemp("local") / "store"
        _pipeline(raw, st, "--jobs", "1")
        _LOCAL[key] = _files(st)
    files = _LOCAL[key]
    assert any(k.startswith("features/") for k in files)
    assert any(k.startswith("quarantine/") for k in files) and len(files) > 12
    assert any("~" in k for k in files)  # a batch's recordings share a part: the cut matters
    return files


@contextlib.contextmanager
def _cluster(tmp_path_factory, worker_env: dict | None = None):
    """``dask scheduler`` + ``dask worker --nworkers 2`` on 127.0.0.1 (the workers with
    ``worker_env`` added to their environment, as on another machine), stopped afterwards."""
    logs = tmp_path_factory.mktemp("dask-logs")
    elsewhere = tmp_path_factory.mktemp("worker-cwd")  # workers do not share our cwd
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    dask = [sys.executable, "-m", "dask"]
    commands = [
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        [
            *dask,
            "worker",
            address,
            "--host",
            "127.0.0.1",
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--no-dashboard",
            "--death-timeout",
            "60",
        ],
    ]
    envs = [env, {**env, **(worker_env or {})}]
    procs = []
    try:
        for i, cmd in enumerate(commands):
            log = open(logs / f"{i}.log", "wb")
            procs.append(
                (
                    subprocess.Popen(
                        cmd,
                        cwd=elsewhere,
                        env=envs[i],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: the nanny's workers
                    ),
                    log,
                )
            )
            if i == 0:
                time.sleep(0.5)
        client = distributed.Client(address, timeout=60)
        try:
            client.wait_for_workers(2, timeout=90)
        finally:
            client.close()
        yield address
    except Exception:
        for f in sorted(logs.iterdir()):
            sys.stderr.write(f.read_text(errors="replace")[-3000:])
        raise
    finally:
        # the tests have checked what the cluster wrote: a graceful shutdown of the nannies
        # and their workers (8 s of teardown) buys nothing, so each process group is killed
        for proc, _ in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc, log in reversed(procs):
            proc.wait(timeout=10)
            log.close()


@pytest.fixture
def scheduler(tmp_path_factory):
    with _cluster(tmp_path_factory) as address:
        yield address


def test_a_dask_cluster_writes_the_same_store_bytes_as_a_local_run(
    raw, local_store, scheduler, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a relative --store: workers run in another directory
    out = _pipeline(raw, Path("store"), "--scheduler", scheduler)
    assert _files(tmp_path / "store") == local_store
    n_files = sum(1 for p in raw.rglob("*") if p.is_file() and p.suffix in (".c3d", ".C3D"))
    # failed: the truncated C3D, and the cohort's sheets (quarantined at stage discover)
    n_sheets = sum(1 for p in raw.glob("*.csv"))
    assert n_sheets >= 1
    assert f"ingested {n_files - 1}, unchanged 0, failed {1 + n_sheets}" in out[0]
    assert "processed" in out[1]


def test_scheduler_local_from_the_environment_writes_the_same_bytes(raw, local_store, tmp_path):
    st = tmp_path / "store"
    _pipeline(raw, st, "--jobs", "2", env={"CXLAB_SCHEDULER": "local"})
    assert _files(st) == local_store


def test_a_bad_scheduler_address_is_one_line_naming_option_address_and_fix(raw, tmp_path):
    res = runner.invoke(
        app, ["ingest", str(raw), "--store", str(tmp_path / "s"), "--scheduler", "udp:/nowhere"]
    )
    assert res.exit_code == 1
    line = res.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "--scheduler" in line and "'udp:/nowhere'" in line and "dask scheduler" in line
    assert not _files(tmp_path / "s")  # nothing was written


def test_a_scheduler_that_does_not_answer_is_a_config_error():
    port = _free_port()  # nothing listens there
    with pytest.raises(
        ConfigError,
        match=rf"--scheduler: no Dask scheduler answered within 1 s "
        rf"\(got 'tcp://127.0.0.1:{port}'\); pass the address",
    ):
        with make_executor(1, scheduler=f"tcp://127.0.0.1:{port}", connect_timeout_s=1):
            pass


def test_a_killed_dask_worker_counts_as_a_crashed_reader_like_a_broken_pool():
    from concurrent.futures.process import BrokenProcessPool

    from distributed.scheduler import KilledWorker

    assert is_worker_crash(BrokenProcessPool("x"))
    assert is_worker_crash(KilledWorker("run_task-1", "tcp://127.0.0.1:1", 3))
    assert not is_worker_crash(RuntimeError("a bug"))


def test_workers_holding_another_pseudonym_key_stop_the_run_before_anything_lands(
    raw, tmp_path, tmp_path_factory
):
    """Workers of other machines pseudonymise the labels inside files with their own key:
    with another key they would give those subjects other ids, which no longer join. The
    run stops with one message naming CXLAB_KEY and the fix, and commits nothing."""
    from cxlab.store import Store

    other = {"CXLAB_KEY": "a-worker-key-of-another-machine-0123456789abcdef"}
    with _cluster(tmp_path_factory, worker_env=other) as address:
        store = tmp_path / "store"
        res = runner.invoke(
            app, ["ingest", str(raw), "--store", str(store), "--scheduler", address]
        )
    assert res.exit_code == 1, res.output  # a configuration error, as cxlab's others
    assert res.output.startswith("error: CXLAB_KEY: ")
    assert "not the key the run started with" in res.output
    assert "set CXLAB_KEY on every worker" in res.output
    assert not Store(store).keys("recordings")
