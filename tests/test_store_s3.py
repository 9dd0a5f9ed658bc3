"""The store on object storage: the whole pipeline on ``s3://`` against a local S3 server.

The server is moto's (``moto.server.ThreadedMotoServer`` on 127.0.0.1, a free port, started
by this module; never a real cloud). Every check compares the store written to
``s3://cxlab-test/...`` with a local store built from the same inputs: the same catalog
bytes, the same part files byte for byte, the same tables, the same SQL answers and the
same experiment run (its id hashes every input file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxlab import _catalog
from cxlab._check import ConfigError
from cxlab.cli import app
from cxlab.schemas import TABLES
from cxlab.store import Store, StoreConflictError

BUCKET = "cxlab-test"
REAL = [  # a handful of real files of the formats ingest reads, from /work/shared/data/real
    "c3d/biomdp_kistler_CMJ_1plate.c3d",
    "c3d/c3dorg_gait-pig.c3d",
    "c3d/ezc3d_FP_Type3.c3d",
    "forceplate/biomdp_kistler_CMJ_1plate.txt",
]
SPEC = """
name = "s3"
title = "Store on S3"
seed = 1
store = "unused"
[model]
control = "control"
[outcomes.pain_nrs]
mcid = 2.0
[outcomes.knee_fppa_peak_deg]
task = "landing"
mcid = "swc"
"""


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server for this module, its endpoint in the standard AWS variables."""
    import moto.server as moto_server  # here, not at collection: ~1 s of every worker's start
    import s3fs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        mp.delenv("CXLAB_STORAGE_OPTIONS", raising=False)
        fs = s3fs.S3FileSystem()
        fs.call_s3("create_bucket", Bucket=BUCKET)
        yield fs
    server.stop()


def _objects(fs, url: str) -> dict[str, bytes]:
    root = url.removeprefix("s3://")
    return {p.removeprefix(root + "/"): fs.cat_file(p) for p in sorted(fs.find(root))}


def _shards(store: Store) -> set[str]:
    """The catalog shards the store's root lists."""
    return {s.file for s in store._cache.state().shards}


def _live_bytes_equal(local: Store, remote: Store, fs) -> None:
    """Same catalog bytes (root and shards), and every live file of every table
    byte-identical."""
    root = remote.url.removeprefix("s3://")
    assert fs.cat_file(f"{root}/{_catalog.CATALOG}") == (local.path / _catalog.CATALOG).read_bytes()
    pd.testing.assert_frame_equal(remote.catalog(), local.catalog())
    assert _shards(remote) == _shards(local) and _shards(local)
    for f in sorted(set(local.catalog()["file"]) | _shards(local)):
        assert fs.cat_file(f"{root}/{f}") == (local.path / f).read_bytes(), f


def _build(store, raw: Path, real_dir: Path) -> None:
    from cxlab.features.runner import extract_features
    from cxlab.ingest import ingest, ingest_interventions, ingest_surveys

    files = [real_dir / r for r in REAL]
    ingest([*sorted(raw.glob("sub-*")), *files], store=store, jobs=1, progress=False)
    ingest_surveys([raw / "surveys.csv"], store=store)
    ingest_interventions([raw / "interventions.csv"], store=store)
    extract_features(store, jobs=1, progress=False)


def _build_cli(url: str, raw: Path, real_dir: Path) -> None:
    """As :func:`_build`, through the commands, with two pool workers staging to S3."""
    files = [str(real_dir / r) for r in REAL]
    subjects = [str(p) for p in sorted(raw.glob("sub-*"))]
    for args in (
        ["ingest", *subjects, *files, "--store", url, "--jobs", "2"],
        ["ingest-survey", str(raw / "surveys.csv"), "--store", url],
        ["ingest-interventions", str(raw / "interventions.csv"), "--store", url],
        ["features", "--store", url, "--jobs", "2"],
    ):
        res = CliRunner().invoke(app, args)
        assert res.exit_code in (0, 3), (args, res.output)  # 3: a real file quarantined


@pytest.fixture(scope="module")
def pair(s3, synth_cohort, real_dir, tmp_path_factory):
    """(local store built by the library, the same inputs on s3://cxlab-test/pipeline
    built by the commands)."""
    raw = synth_cohort(2, 1, seed=11)  # the cohort test_executor ingests
    local = Store(tmp_path_factory.mktemp("local") / "store")
    _build(local, raw, real_dir)
    _build_cli(f"s3://{BUCKET}/pipeline", raw, real_dir)
    return local, Store(f"s3://{BUCKET}/pipeline")


def test_pipeline_on_s3_gives_the_local_store_byte_for_byte(pair, s3):
    local, remote = pair
    assert remote.is_remote and not local.is_remote
    assert {"recordings", "forces", "markers", "features", "interventions"} <= set(local.tables())
    assert remote.tables() == local.tables()
    _live_bytes_equal(local, remote, s3)
    for name in TABLES:
        pd.testing.assert_frame_equal(remote.table(name), local.table(name), check_dtype=True)
    # nothing but the catalog (root, shards), the key check and the live files is left (no
    # staged parts, no shard a commit replaced)
    from cxlab.pseudo import key_check
    from cxlab.store import _KEY_CHECK

    assert remote.key_check() == local.key_check() == key_check()  # claimed on S3 too
    left = set(_objects(s3, remote.url)) - {_catalog.CATALOG, _KEY_CHECK}
    assert left == set(local.catalog()["file"]) | _shards(remote)


def test_reading_parts_of_a_remote_store(pair):
    local, remote = pair
    rid = sorted(local.keys("forces"))[0]
    pd.testing.assert_frame_equal(remote.read_part("forces", rid), local.read_part("forces", rid))
    pd.testing.assert_frame_equal(
        remote.read_part("recordings", rid), local.read_part("recordings", rid)
    )
    filt = [("task", "==", "cmj")]
    pd.testing.assert_frame_equal(
        remote.table("recordings", filters=filt), local.table("recordings", filters=filt)
    )
    assert remote.file_digests("forces") == local.file_digests("forces")
    pd.testing.assert_frame_equal(remote.info(), local.info())


def test_sql_on_s3_answers_as_on_the_local_store(pair):
    local, remote = pair
    q = (
        "SELECT r.task, f.feature, count(*) AS n, round(avg(f.value), 9) AS mean "
        "FROM features f JOIN recordings r USING (recording_id) "
        "GROUP BY ALL ORDER BY ALL"
    )
    got, want = remote.sql(q), local.sql(q)
    assert len(want) > 5
    pd.testing.assert_frame_equal(got, want)
    empty = "SELECT count(*) AS n FROM strength"  # a table never written: empty, not an error
    assert remote.sql(empty)["n"].tolist() == [0]


def test_sql_on_s3_reads_nothing_but_the_store(pair):
    import duckdb

    _, remote = pair
    with pytest.raises(duckdb.PermissionException):
        remote.sql("SELECT * FROM read_text('/etc/passwd')")
    with pytest.raises(ConfigError, match="COPY"):
        remote.sql("COPY recordings TO '/tmp/x.csv'")


def test_cli_takes_an_s3_url_for_sql_and_store_info(pair):
    local, remote = pair
    res = CliRunner().invoke(
        app, ["sql", remote.url, "SELECT count(*) AS n FROM recordings", "--csv"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1] == str(len(local.table("recordings")))
    res = CliRunner().invoke(app, ["store", "info", remote.url, "--csv"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["sql", f"s3://{BUCKET}/nothing-here", "SELECT 1"])
    assert res.exit_code == 1
    assert "holds no store" in res.output and "nothing-here" in res.output


def test_experiment_run_on_s3_is_the_local_run(s3, tmp_path):
    from cxlab.experiments import run_experiment
    from truth_store import truth_store

    truth_store(tmp_path / "store", 16, 3, seed=9)
    truth_store(f"s3://{BUCKET}/truth", 16, 3, seed=9)
    spec = tmp_path / "s3.toml"
    spec.write_text(SPEC, encoding="utf-8")
    a = Path(run_experiment(spec, out=tmp_path / "runs-local", store=tmp_path / "store"))
    url = f"s3://{BUCKET}/truth"
    res = CliRunner().invoke(app, ["run", str(spec), "--out", str(tmp_path / "s3"), "--store", url])
    assert res.exit_code == 0, res.output
    b = tmp_path / "s3" / "s3" / a.name  # the run id hashes every input file's name and sha256
    for name in ("effects.parquet", "analysis.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    man = json.loads((b / "manifest.json").read_text(encoding="utf-8"))
    assert man["store"] == url
    query = (  # cxlab effects on a SQL query over the store, local and on S3
        "SELECT s.subject_id, i.arm, s.score AS pain, "
        "date_diff('day', i.start_date, s.date) / 7.0 AS week "
        "FROM scores s JOIN interventions i USING (subject_id) "
        "WHERE s.instrument = 'pain_nrs' ORDER BY ALL"
    )
    for where, out in ((str(tmp_path / "store"), "fx-local"), (url, "fx-s3")):
        args = ["effects", "--outcome", "pain", "--time", "week", "--arm", "arm"]
        args += ["--subject", "subject_id", "--control", "control", "--method", "gee"]
        res = CliRunner().invoke(
            app, [*args, "--out", str(tmp_path / out), "--store", where, "--query", query]
        )
        assert res.exit_code == 0, res.output
    got, want = (pd.read_csv(tmp_path / d / "effects.csv") for d in ("fx-s3", "fx-local"))
    assert len(want) >= 1
    pd.testing.assert_frame_equal(got, want)


def _one_row(rid: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recording_id": [rid] * 3,
            "plate": [1, 1, 1],
            "sample": [0, 1, 2],
            "time_s": [0.0, 0.001, 0.002],
            **{c: [1.0, 2.0, 3.0] for c in ("fx", "fy", "fz", "mx", "my", "mz")},
            **{c: [0.1, 0.2, 0.3] for c in ("cop_x", "cop_y", "cop_z", "tz")},
        }
    )


def _recording(rid: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recording_id": [rid],
            **{c: [None] for c in ("subject_id", "session", "task", "trial", "vendor")},
            "point_rate_hz": [None],
            "analog_rate_hz": [1000.0],
            "source_path": [f"{rid}.csv"],
            "source_sha256": [rid * 4],
            "format": ["csv"],
            "n_frames": [3],
            "first_frame": [0],
            "warnings": [[]],
        }
    )


def test_a_commit_failing_before_the_catalog_put_leaves_the_old_store(s3, monkeypatch):
    from cxlab import _fs

    url = f"s3://{BUCKET}/failing"
    store = Store(url)
    with store.transaction() as tx:
        tx.write("recordings", _recording("a" * 16), key="a" * 16)
        tx.write("forces", _one_row("a" * 16), key="a" * 16, partition="s1")
    before = _objects(s3, url)

    def boom(self, rel, data, *, version):
        raise OSError("connection reset before the catalog PUT")

    monkeypatch.setattr(_fs.Remote, "write_if", boom)
    with pytest.raises(OSError, match="connection reset"), store.transaction() as tx:
        tx.write("recordings", _recording("b" * 16), key="b" * 16)
        tx.write("forces", _one_row("b" * 16), key="b" * 16, partition="s2")
        tx.delete("forces", key="a" * 16)
    monkeypatch.undo()
    fresh = Store(url)
    assert fresh.keys("forces") == {"a" * 16}
    assert fresh.table("recordings")["recording_id"].tolist() == ["a" * 16]
    assert _objects(s3, url) == before  # what the failed commit wrote is gone


def test_parts_of_a_killed_writer_are_invisible_and_recover_removes_them(s3):
    url = f"s3://{BUCKET}/killed"
    store = Store(url)
    store.write("forces", _one_row("a" * 16), key="a" * 16, partition="s1")
    before = _objects(s3, url)
    # a writer killed after staging (its parts at their final keys, no catalog PUT)
    store.stage("forces", _one_row("c" * 16), key="c" * 16, partition="s3")
    row = store.stage("recordings", _recording("c" * 16), key="c" * 16)
    assert row.temp == "" and row.data  # a small table's part: its rows, no object
    assert len(_objects(s3, url)) == len(before) + 1
    assert Store(url).keys("forces") == {"a" * 16}
    assert Store(url).recover() == 0  # younger than a day: perhaps a writer still staging
    assert Store(url).recover(older_than_s=0) == 1
    assert _objects(s3, url) == before


def test_a_shared_part_on_s3_reads_per_recording_and_is_cut_as_on_a_local_store(s3, tmp_path):
    """Recordings staged as one file (Store.stage_many) on S3: read back per recording, a
    deleted one cut out of the file, and the objects byte for byte the local store's."""
    from cxlab.schemas import validate

    rids = ["a" * 16, "b" * 16, "c" * 16]
    rows = validate(pd.concat([_one_row(r) for r in rids], ignore_index=True), "forces")
    url = f"s3://{BUCKET}/shared"
    remote, local = Store(url), Store(tmp_path / "local")
    for st in (remote, local):
        st.commit([st.stage_many("forces", rows, partition="s1")])
        assert st.read_part("forces", "b" * 16)["recording_id"].tolist() == ["b" * 16] * 3
        st.commit(delete=[("forces", "b" * 16)])
    assert Store(url).keys("forces") == {"a" * 16, "c" * 16}
    assert len(Store(url).table("forces")) == 6
    objects = _objects(s3, url)
    files = {f.relative_to(local.path).as_posix(): f.read_bytes() for f in local.files("forces")}
    assert files and all(objects[k] == v for k, v in files.items())
    assert not [k for k in objects if k.startswith("forces/") and k not in files]  # old one gone


def test_a_second_writer_racing_on_the_catalog_is_refused(s3):
    url = f"s3://{BUCKET}/race"
    first, second = Store(url), Store(url)
    first.write("forces", _one_row("a" * 16), key="a" * 16, partition="s1")
    assert second.keys("forces") == {"a" * 16}  # second has read this catalog
    staged = second.stage("forces", _one_row("b" * 16), key="b" * 16, partition="s2")
    first.write("forces", _one_row("c" * 16), key="c" * 16, partition="s3")  # wins the race
    real_state = second._cache.state
    second._cache.state = lambda: second._cache._state  # as if read before first's commit
    with pytest.raises(StoreConflictError, match="another writer committed first") as err:
        second.commit([staged])
    second._cache.state = real_state
    assert err.value.store == url
    assert "run the command again" in str(err.value)
    assert Store(url).keys("forces") == {"a" * 16, "c" * 16}  # the winner's commit stands
    second.commit([second.stage("forces", _one_row("b" * 16), key="b" * 16, partition="s2")])
    assert Store(url).keys("forces") == {"a" * 16, "b" * 16, "c" * 16}


def test_racing_writers_on_a_sharded_catalog_one_is_refused_and_leaves_no_shard(s3, monkeypatch):
    """Two writers whose commits rewrite catalog shards (16 of them: 2 rows a shard): the
    loser's root PUT is refused, the shards it wrote are removed, the winner's stand, and
    a reader sees exactly the winner's parts."""
    monkeypatch.setattr(_catalog, "SHARD_ROWS", 2)
    url = f"s3://{BUCKET}/race-shards"
    first, second = Store(url), Store(url)
    keys = [f"{i:x}" * 16 for i in range(1, 10)]
    with first.transaction() as tx:
        for k in keys[:6]:
            tx.write("forces", _one_row(k), key=k, partition="s1")
    assert len(_shards(first)) > 1  # level 1: more than one shard
    assert second.keys("forces") == set(keys[:6])  # second read this root
    staged = [second.stage("forces", _one_row(k), key=k, partition="s2") for k in keys[6:]]
    first.write("forces", _one_row(keys[0]).assign(fz=9.0), key=keys[0], partition="s1")
    mine = {st.temp for st in staged}  # the loser's parts, at their final keys already
    winner = {k: v for k, v in _objects(s3, url).items() if k not in mine}
    second._cache.state = lambda: second._cache._state  # as if read before first's commit
    with pytest.raises(StoreConflictError):
        second.commit(staged)
    del second._cache.state
    # nothing of the loser is left: no part, no shard (every object is the winner's)
    assert _objects(s3, url) == winner
    reader = Store(url)
    assert reader.keys("forces") == set(keys[:6])
    assert reader.read_part("forces", keys[0])["fz"].tolist() == [9.0] * 3
    assert _shards(reader) == _shards(first)
    second.commit([second.stage("forces", _one_row(k), key=k, partition="s2") for k in keys[6:]])
    assert Store(url).keys("forces") == set(keys)
    assert set(_objects(s3, url)) == {_catalog.CATALOG} | set(
        Store(url).catalog()["file"]
    ) | _shards(Store(url))


def test_two_first_commits_racing_one_is_refused(s3):
    url = f"s3://{BUCKET}/first"
    a, b = Store(url), Store(url)
    sa = a.stage("forces", _one_row("a" * 16), key="a" * 16, partition="s1")
    sb = b.stage("forces", _one_row("b" * 16), key="b" * 16, partition="s2")
    assert a.keys("forces") == set() and b.keys("forces") == set()
    a.commit([sa])
    b._cache.state = lambda: b._cache._state  # b still believes the store is empty
    with pytest.raises(StoreConflictError):
        b.commit([sb])
    assert Store(url).keys("forces") == {"a" * 16}


def test_a_remote_store_has_no_path_and_hides_credentials(s3, monkeypatch):
    store = Store("s3://user:secret@cxlab-test/creds")
    assert "secret" not in repr(store) and "secret" not in store.url
    with pytest.raises(ConfigError, match="object-storage URL"):
        _ = store.path
    assert Store(Path("relative/dir")).absolute().path.is_absolute()
    monkeypatch.setenv("CXLAB_STORAGE_OPTIONS", '{"key": "AKIA-not-json')
    with pytest.raises(ConfigError, match="CXLAB_STORAGE_OPTIONS") as err:
        Store(f"s3://{BUCKET}/x")
    assert "AKIA" not in str(err.value)


def test_storage_options_from_the_environment_reach_the_filesystem(s3, monkeypatch):
    monkeypatch.setenv("CXLAB_STORAGE_OPTIONS", json.dumps({"default_block_size": 1 << 21}))
    store = Store(f"s3://{BUCKET}/opts")
    assert store._remote.fs.default_block_size == 1 << 21
    store.write("forces", _one_row("a" * 16), key="a" * 16, partition="s1")
    assert Store(f"s3://{BUCKET}/opts").keys("forces") == {"a" * 16}


def test_a_store_under_another_fsspec_url_sees_each_commit():
    """memory:// has no ETag and no conditional write (one writer per store): a reader
    still sees a commit that leaves the catalog the same size."""
    url = "memory://cxlab-test/mem"
    reader, writer = Store(url), Store(url)
    writer.write("forces", _one_row("a" * 16), key="a" * 16, partition="s1")
    assert reader.read_part("forces", "a" * 16)["fz"].tolist() == [1.0, 2.0, 3.0]
    changed = _one_row("a" * 16).assign(fz=[7.0, 8.0, 9.0])
    writer.write("forces", changed, key="a" * 16, partition="s1")
    assert reader.read_part("forces", "a" * 16)["fz"].tolist() == [7.0, 8.0, 9.0]
    assert reader.sql("SELECT sum(fz) AS s FROM forces")["s"].tolist() == [24.0]
    # the commit removed the replaced part and catalog shard: only the catalog (root and
    # its one shard) and the live part are left
    assert [e.name for e in writer._remote.entries()] == sorted(
        [_catalog.CATALOG, *_shards(writer), *writer.catalog()["file"]]
    )
    assert len(_shards(writer)) == 1
    assert reader.recover(older_than_s=0) == 0


def test_screen_and_athlete_on_an_s3_store_write_what_a_local_store_gives(pair, s3, tmp_path):
    """cxlab screen and cxlab athlete take an s3:// store: the same screen table bytes and
    the same athlete pages as from the local store (screen's own pages are drawn from the
    screened table, checked equal here)."""
    local, remote = pair
    for store in (local, remote):  # the findings go into each store's screen table
        res = CliRunner().invoke(app, ["screen", "--store", str(store.location)])
        assert res.exit_code == 0, (store.location, res.output)
    assert len(local.table("screen")) > 0
    pd.testing.assert_frame_equal(remote.table("screen"), local.table("screen"))
    assert remote.file_digests("screen") == local.file_digests("screen")
    pages = []
    for name, store in (("local", local), ("remote", remote)):
        out = tmp_path / f"athlete-{name}"
        res = CliRunner().invoke(
            app, ["athlete", "--store", str(store.location), "--out", str(out)]
        )
        assert res.exit_code == 0, (name, res.output)
        pages.append(sorted(out.iterdir()))
    a, b = pages
    assert [p.name for p in a] == [p.name for p in b] and a
    for p, q in zip(a, b, strict=True):
        assert p.read_bytes() == q.read_bytes(), p.name
    _live_bytes_equal(local, remote, s3)


def test_demo_refuses_an_object_storage_url():
    for opt in ("--store", "--raw"):
        res = CliRunner().invoke(app, ["demo", opt, f"s3://{BUCKET}/demo"])
        assert res.exit_code == 2
        assert "local folders only" in res.output and "--store URL" in res.output
