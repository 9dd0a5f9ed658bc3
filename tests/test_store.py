import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cxlab._check import ConfigError, CxlabWarning, SchemaError
from cxlab.store import Store, write_parquet

RID = "0123456789abcdef"


def _forces(n=50, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        rng.normal(size=(n, 10)),
        columns=["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"],
    )
    df.insert(0, "time_s", np.arange(n) / 1000)
    df.insert(0, "sample", np.arange(n))
    df.insert(0, "plate", 1)
    df.insert(0, "recording_id", RID)
    return df


def _catalog_files(store):
    """The catalog's files (root and shards) of a local store: name -> bytes."""
    files = [store.path / "_catalog.parquet", *sorted((store.path / "_catalog").glob("*"))]
    return {f.relative_to(store.path).as_posix(): f.read_bytes() for f in files}


def _with_a_single_file_catalog(store: Store) -> Store:
    """``store`` rewritten with an older cxlab's catalog (one ``_catalog.parquet``, no
    shards) and opened again."""
    from cxlab import _catalog
    from cxlab.store import _PARQUET_OPTS

    old = _catalog.ordered(pa.Table.from_pandas(store.catalog(), preserve_index=False))
    for f in (store.path / "_catalog").glob("*"):
        f.unlink()
    pq.write_table(old.cast(_catalog.SCHEMA), store.path / "_catalog.parquet", **_PARQUET_OPTS)
    return Store(store.path)


def _recording(rid=RID, task="cmj"):
    return pd.DataFrame(
        {
            "recording_id": [rid],
            "subject_id": ["abcdefabcdef"],
            "session": ["1"],
            "task": [task],
            "trial": ["1"],
            "source_path": [f"{rid}.c3d"],
            "source_sha256": [rid * 4],
            "format": ["c3d"],
            "vendor": ["Vicon"],
            "point_rate_hz": [200.0],
            "analog_rate_hz": [1000.0],
            "n_frames": [10],
            "first_frame": [1],
            "warnings": [[]],
            "up_axis": [None],
            "body_mass_kg": [float("nan")],
            "recorded_at": [None],
        }
    )


def test_rewriting_same_rows_gives_identical_bytes_whatever_the_input_order(tmp_path):
    s = Store(tmp_path)
    df = _forces()
    [p1] = s.write("forces", df, key=RID, partition="abcdefabcdef")
    b1 = p1.read_bytes()
    [p2] = s.write("forces", df.sample(frac=1, random_state=3), key=RID, partition="abcdefabcdef")
    assert p1 == p2 and p2.read_bytes() == b1
    assert p1.parent.name == "subject=abcdefabcdef"


def test_failed_write_leaves_previous_table_intact(tmp_path, monkeypatch):
    s = Store(tmp_path)
    [path] = s.write("forces", _forces(), key=RID)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        s.write("forces", _forces(seed=1), key=RID)
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_invalid_rows_write_nothing(tmp_path):
    s = Store(tmp_path)
    bad = _forces().drop(columns="fz")
    with pytest.raises(SchemaError, match="'fz'"):
        s.write("forces", bad, key=RID)
    assert s.tables() == []


def test_write_parquet_is_atomic_under_crash(tmp_path):
    import pyarrow as pa

    target = tmp_path / "t.parquet"
    write_parquet(pa.table({"a": [1]}), target)

    with pytest.raises(AttributeError):
        write_parquet("not a table", target)
    assert pq.read_table(target).column("a").to_pylist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_table_reads_parts_with_filters_and_columns(tmp_path):
    s = Store(tmp_path)
    rid2 = "fedcba9876543210"
    s.write("recordings", _recording(), key=RID)
    s.write("recordings", _recording(rid2, task="landing"), key=rid2)
    assert len(s.table("recordings")) == 2
    got = s.table("recordings", filters=[("task", "==", "landing")], columns=["recording_id"])
    assert got["recording_id"].tolist() == [rid2]
    assert s.keys("recordings") == {RID, rid2}
    with pytest.raises(ConfigError, match="unknown column"):
        s.table("recordings", filters=[("tsk", "==", "x")])


@pytest.mark.parametrize(
    ("filters", "query"),
    [
        ([("task", "in", ["landing", "cmj"])], "task in ['landing', 'cmj']"),
        ([("task", "not in", {"cmj"})], "task not in ['cmj']"),
        (
            [("task", "!=", "cmj"), ("recording_id", ">=", "a")],
            "task != 'cmj' & recording_id >= 'a'",
        ),
        ([("task", "=", "cmj")], "task == 'cmj'"),
    ],
)
def test_table_filters_select_what_pandas_query_selects(tmp_path, filters, query):
    s = Store(tmp_path)
    for rid, task in (("fedcba9876543210", "landing"), ("0123456789abcdef", "cmj")):
        s.write("recordings", _recording(rid, task=task), key=rid)
    s.write("recordings", _recording("aaaabbbbccccdddd", task="balance"), key="aaaabbbbccccdddd")
    everything = s.table("recordings")
    want = sorted(everything.query(query)["recording_id"])
    assert sorted(s.table("recordings", filters=filters)["recording_id"]) == want
    with pytest.raises(ConfigError, match="unknown operator"):
        s.table("recordings", filters=[("task", "like", "c%")])


def test_unwritten_table_reads_empty_with_declared_columns(tmp_path):
    df = Store(tmp_path).table("features")
    assert df.empty and "feature" in df.columns


def test_sql_joins_tables_through_duckdb_views(tmp_path):
    s = Store(tmp_path)
    s.write("recordings", _recording(), key=RID)
    s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    out = s.sql(
        "SELECT r.task, count(*) AS n, avg(f.fz) AS fz FROM forces f "
        "JOIN recordings r USING (recording_id) GROUP BY r.task"
    )
    assert out["n"].tolist() == [50]
    assert out["fz"].iloc[0] == pytest.approx(_forces()["fz"].mean())
    assert s.sql("SELECT count(*) AS n FROM scores")["n"].tolist() == [0]


def test_replacing_a_part_removes_its_old_partition(tmp_path):
    s = Store(tmp_path)
    s.write("forces", _forces(), key=RID, partition="aaaaaaaaaaaa")
    s.write("forces", _forces(), key=RID, partition="bbbbbbbbbbbb")
    assert [p.parent.name for p in s.files("forces")] == ["subject=bbbbbbbbbbbb"]
    assert s.delete("forces", key=RID) == 1 and s.tables() == []


def test_info_counts_rows_subjects_and_size(tmp_path):
    s = Store(tmp_path)
    s.write("recordings", _recording(), key=RID)
    s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    info = s.info().set_index("table")
    assert info.loc["forces", "rows"] == 50
    assert info.loc["recordings", "subjects"] == 1
    assert info.loc["forces", "size_bytes"] == os.path.getsize(s.files("forces")[0])


def test_bad_part_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="key"):
        Store(tmp_path).write("recordings", _recording(), key="../escape")


def test_write_takes_a_validated_arrow_table_and_refuses_an_unvalidated_one(tmp_path):
    import pyarrow as pa

    from cxlab.schemas import validate

    s = Store(tmp_path)
    [p] = s.write("forces", validate(_forces(), "forces"), key=RID)
    assert p.read_bytes() == s.write("forces", _forces(), key=RID)[0].read_bytes()
    with pytest.raises(ConfigError, match="validate"):
        s.write("forces", pa.Table.from_pandas(_forces()), key=RID)


def test_atomic_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    import stat

    from cxlab.store import write_text

    umask = os.umask(0o022)
    os.umask(umask)
    p = write_text("x", tmp_path / "a.txt")
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    assert p.read_text() == "x"


def test_a_fresh_temporary_is_written_in_place_whole_or_removed(tmp_path):
    """atomic_file(fresh=True), how staged parts and merged bucket files are written: in
    place (no second temporary, no rename), the usual mode, never over an existing file,
    and removed when the write fails (a full disk), its folder made if missing."""
    import stat

    from cxlab.store import atomic_file

    umask = os.umask(0o022)
    os.umask(umask)
    p = tmp_path / "staging" / ".tmp-1-a.parquet"
    with atomic_file(p, durable=False, fresh=True) as fh:
        fh.write(b"abc")
        assert p.exists()  # in place: the file is its own temporary
    assert p.read_bytes() == b"abc" and stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    assert sorted(x.name for x in p.parent.iterdir()) == [p.name]
    with pytest.raises(FileExistsError):
        with atomic_file(p, fresh=True) as fh:
            fh.write(b"x")
    assert p.read_bytes() == b"abc"
    q = p.with_name(".tmp-1-b.parquet")
    with pytest.raises(OSError, match="full"):
        with atomic_file(q, fresh=True) as fh:
            fh.write(b"half")
            raise OSError(28, "disk full")
    assert not q.exists()


def _sql_store(tmp_path):
    s = Store(tmp_path / "store")
    s.write("recordings", _recording(), key=RID)
    s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    return s


def _tree(root):
    return sorted(
        (str(p.relative_to(root)), p.read_bytes() if p.is_file() else b"") for p in root.rglob("*")
    )


@pytest.mark.parametrize(
    "query",
    [
        "COPY (SELECT 1 AS a) TO '{store}/recordings/part-0123456789abcdef.parquet'",
        "COPY (SELECT 1 AS a) TO '{out}/leak.csv'",
        "COPY recordings TO '{out}/leak.parquet' (FORMAT parquet)",
        "ATTACH '{out}/x.duckdb' AS x",
        "CREATE TABLE t AS SELECT 1",
        "CREATE VIEW v AS SELECT 1",
        "INSERT INTO recordings SELECT * FROM recordings",
        "DELETE FROM recordings",
        "DROP VIEW recordings",
        "PRAGMA version",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CALL pragma_version()",
        "EXPORT DATABASE '{out}/db'",
        "SELECT 1; COPY (SELECT 1) TO '{out}/two.csv'",
        "SELECT 1; SELECT 2",
    ],
)
def test_sql_refuses_every_statement_that_is_not_one_select(tmp_path, query):
    s = _sql_store(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    before = _tree(tmp_path)
    with pytest.raises(ConfigError, match=r"statement"):
        s.sql(query.format(store=s.path, out=out))
    assert _tree(tmp_path) == before  # nothing written, in the store or beside it


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('{out}/../elsewhere.parquet')",
        "SELECT * FROM read_text('{store}/../secret.txt')",
    ],
)
def test_sql_cannot_read_a_file_outside_the_store(tmp_path, query):
    import duckdb

    s = _sql_store(tmp_path)
    (tmp_path / "secret.txt").write_text("CX-Jane-Doe")
    (tmp_path / "out").mkdir()
    write_parquet(pa.table({"a": [1]}), tmp_path / "elsewhere.parquet")
    with pytest.raises(duckdb.Error, match="Permission"):
        s.sql(query.format(store=s.path, out=tmp_path / "out"))


def test_sql_refuses_a_part_that_is_a_symlink_out_of_the_store(tmp_path):
    import duckdb

    s = _sql_store(tmp_path)
    part = s.files("forces")[0]
    outside = tmp_path / "outside.parquet"
    write_parquet(pa.table({"secret": ["CX-Jane-Doe"]}), outside)
    part.unlink()
    part.symlink_to(outside)
    with pytest.raises(duckdb.Error, match="Permission"):
        Store(s.path).sql("SELECT * FROM forces")


@pytest.mark.parametrize("name", ["../outside.parquet", "/etc/x.parquet", "forces/../../x"])
def test_a_catalog_file_name_outside_the_store_is_refused_naming_it(tmp_path, name):
    from cxlab._check import CxlabError
    from cxlab._sql import names_inside

    names_inside(["forces/ok.parquet"], table="forces", store=tmp_path)
    want = r"^file: .*forces part outside the store \(got '" + re.escape(name)
    with pytest.raises(CxlabError, match=want):
        names_inside(["forces/ok.parquet", name], table="forces", store=tmp_path)


def test_sql_still_reads_every_table_and_the_cli_says_why_it_refused(tmp_path):
    s = _sql_store(tmp_path)
    assert s.sql("WITH f AS (SELECT * FROM forces) SELECT count(*) AS n FROM f")["n"][0] == 50
    assert s.sql("DESCRIBE recordings")["column_name"].iloc[0] == "recording_id"
    assert s.sql("FROM scores")["subject_id"].tolist() == []
    from typer.testing import CliRunner

    from cxlab.cli import app

    r = CliRunner().invoke(app, ["sql", str(s.path), f"COPY recordings TO '{tmp_path}/x.csv'"])
    assert r.exit_code == 1 and "COPY statement" in r.output and "read-only" in r.output
    assert not (tmp_path / "x.csv").exists()
    r = CliRunner().invoke(app, ["sql", str(s.path), "SELECT * FROM read_text('/etc/passwd')"])
    assert r.exit_code == 1 and "Permission" in r.output and "root:" not in r.output


def test_info_survives_a_part_overwritten_by_something_else(tmp_path):
    s = _sql_store(tmp_path)
    s.write("recordings", _recording("fedcba9876543210"), key="fedcba9876543210")
    # recordings keep all their parts in one file: overwriting it makes both unreadable
    write_parquet(pa.table({"a": [1, 2]}), s.files("recordings")[0])  # no subject_id column
    s.files("forces")[0].write_bytes(b"not parquet at all")
    info = s.info().set_index("table")
    assert info.loc["recordings", ["rows", "parts", "subjects", "unreadable_parts"]].tolist() == [
        0,
        0,
        0,
        2,
    ]
    assert info.loc["forces", "unreadable_parts"] == 1 and info.loc["forces", "rows"] == 0
    from typer.testing import CliRunner

    from cxlab.cli import app

    r = CliRunner().invoke(app, ["store", "info", str(s.path)])
    assert r.exit_code == 0, r.output


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import subprocess

    from cxlab.store import remove_stale_temporaries

    dead = subprocess.Popen(["true"])
    dead.wait()
    d = tmp_path / "forces" / "subject=x"
    d.mkdir(parents=True)
    (d / f".tmp-{dead.pid}-abc.parquet").write_bytes(b"half")
    (d / ".tmp-nopid.parquet").write_bytes(b"old cxlab")
    (d / f".tmp-{os.getpid()}-live.parquet").write_bytes(b"being written")
    (tmp_path / f".old-{dead.pid}-run").mkdir()
    assert remove_stale_temporaries(tmp_path) == 3
    assert sorted(p.name for p in d.iterdir()) == [f".tmp-{os.getpid()}-live.parquet"]


# -- units and the lab frame travel in the files; the catalog commits atomically ---------------
def test_a_written_part_carries_units_and_lab_frame_in_the_file(tmp_path):
    import duckdb

    s = Store(tmp_path)
    [part] = s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    schema = pq.read_schema(part)  # the file itself, not the in-memory table
    assert schema.field("fz").metadata[b"unit"] == b"N"
    assert schema.field("cop_x").metadata[b"unit"] == b"m"
    assert schema.field("mz").metadata[b"unit"] == b"N.m"
    assert schema.field("time_s").metadata[b"unit"] == b"s"
    kv = duckdb.sql(
        f"SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('{part}')"
    ).df()
    kv = dict(zip(kv["k"], kv["v"], strict=True))
    assert kv["cxlab_table"] == "forces" and kv["cxlab_schema_version"] == "2"
    assert "Z up" in kv["cxlab_lab_frame"] and "+X" in kv["cxlab_lab_frame"]
    units = json.loads(kv["cxlab_units"])  # the units readable from DuckDB alone
    assert units["fz"] == "N" and units["cop_x"] == "m" and units["mz"] == "N.m"
    assert units == {f.name: f.metadata[b"unit"].decode() for f in schema if f.metadata[b"unit"]}
    again = Store(tmp_path / "again").write("forces", _forces(), key=RID, partition="abcdefabcdef")
    assert again[0].read_bytes() == part.read_bytes()  # metadata adds no timestamp


def test_a_compacted_table_holds_every_key_in_one_file_and_reads_by_key(tmp_path):
    s = Store(tmp_path)
    rid2 = "fedcba9876543210"
    s.write("recordings", _recording(rid2, task="landing"), key=rid2)
    s.write("recordings", _recording(), key=RID)
    assert len(s.files("recordings")) == 1 and s.keys("recordings") == {RID, rid2}
    assert s.read_part("recordings", rid2)["task"].tolist() == ["landing"]
    assert list(s.table("recordings").columns) == list(_recording().columns)  # no _part column
    assert "_part" not in s.sql("SELECT * FROM recordings").columns
    other = Store(tmp_path / "other")  # the same parts written in the other order
    other.write("recordings", _recording(), key=RID)
    other.write("recordings", _recording(rid2, task="landing"), key=rid2)
    assert other.files("recordings")[0].read_bytes() == s.files("recordings")[0].read_bytes()
    assert _catalog_files(other) == _catalog_files(s)  # root and shards: the same bytes


def test_a_compacted_part_is_staged_in_memory_and_commits_after_a_pickle_round_trip(tmp_path):
    """A small table's staged part carries its rows (no file in the staging folder), so a
    worker's part reaches the committing process by pickle alone, with the bytes a direct
    write gives."""
    s = Store(tmp_path / "staged")
    staged = s.stage("recordings", _recording(), key=RID)
    assert staged.temp == "" and staged.data and staged.rows == 1
    staging = tmp_path / "staged" / "_staging"
    assert not staging.exists() or not any(staging.iterdir())
    s.commit([pickle.loads(pickle.dumps(staged))])
    direct = Store(tmp_path / "direct")
    direct.write("recordings", _recording(), key=RID)
    assert s.files("recordings")[0].read_bytes() == direct.files("recordings")[0].read_bytes()
    assert s.read_part("recordings", RID)["task"].tolist() == ["cmj"]


def test_read_parts_reads_handles_without_the_catalog(tmp_path):
    s = Store(tmp_path)
    s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    handles = s.parts("forces")
    assert set(handles) == {RID} and handles[RID].partition == "abcdefabcdef"
    (tmp_path / "_catalog.parquet").unlink()  # a worker holding handles needs no catalog
    got = Store(tmp_path).read_parts([handles[RID]], table="forces", columns=["sample", "fz"])
    # forces are stored as float32 (cxlab.schemas.F32) and read back widened, exactly
    np.testing.assert_array_equal(got["fz"], _forces()["fz"].astype(np.float32))
    assert got["fz"].dtype == np.float64


def test_read_arrow_parts_gives_one_table_a_part_as_stored(tmp_path):
    s = Store(tmp_path)
    rid2 = "b" * 16
    s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    s.write("forces", _forces(20).assign(recording_id=rid2), key=rid2, partition="abcdefabcdef")
    parts = s.parts("forces")
    got = s.read_arrow_parts([parts[rid2], parts[RID]], table="forces", columns=["sample", "fz"])
    assert [t.num_rows for t in got] == [20, 50] and got[1].column_names == ["sample", "fz"]
    assert got[0].schema.field("fz").type == pa.float32()  # not widened: no pandas frame
    np.testing.assert_array_equal(got[1]["fz"].to_numpy(), _forces()["fz"].astype(np.float32))
    assert s.read_arrow_parts([], table="forces") == []


def test_parts_of_a_compacted_table_read_each_file_once_in_the_order_given(tmp_path, monkeypatch):
    import hashlib

    import cxlab.store as store_mod

    monkeypatch.setattr(store_mod, "_BUCKET_ROWS", 4)  # several bucket files
    s = Store(tmp_path / "s")
    rids = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(30)]
    with s.transaction() as tx:
        for i, r in enumerate(rids):
            tx.write("recordings", _recording(r, task=f"t{i}"), key=r)
    parts = s.parts("recordings")
    assert len({p.file for p in parts.values()}) > 1
    want = [rids[7], rids[2], rids[29], rids[2]]  # any order, a key twice
    reads = []
    real = pq.read_table
    monkeypatch.setattr(
        store_mod.pq, "read_table", lambda *a, **k: reads.append(a[0]) or real(*a, **k)
    )
    got = s.read_arrow_parts([parts[k] for k in want], table="recordings", columns=["task"])
    assert [t.column("task").to_pylist() for t in got] == [["t7"], ["t2"], ["t29"], ["t2"]]
    assert len(reads) == len({parts[k].file for k in want})  # each file once
    # a part the file does not hold (a handle from before a rewrite) reads as empty
    gone = parts[rids[0]]._replace(key="0" * 16)
    (none,) = s.read_arrow_parts([gone], table="recordings", columns=["task"])
    assert none.num_rows == 0 and none.column_names == ["task"]


def test_a_compacted_file_out_of_key_order_still_reads_each_part_whole(tmp_path):
    s = Store(tmp_path / "s")
    rids = ["a" * 16, "b" * 16]
    with s.transaction() as tx:
        for r in rids:
            tx.write("recordings", pd.concat([_recording(r)] * 2), key=r)
    (f,) = s.files("recordings")
    t = pq.read_table(f)
    write_parquet(t.take([0, 2, 1, 3]), f)  # an older writer: a, b, a, b
    parts = s.parts("recordings")
    got = s.read_arrow_parts([parts[r] for r in rids], table="recordings")
    assert [g.num_rows for g in got] == [2, 2]
    assert [set(g.column("recording_id").to_pylist()) for g in got] == [{rids[0]}, {rids[1]}]


def test_read_arrow_parts_reads_a_small_part_whole_and_a_large_one_by_column(tmp_path, monkeypatch):
    import cxlab.store as store_mod

    s = Store(tmp_path)
    f = _forces()
    g = f[["fx", "fz", "my", "cop_z"]].astype(np.float32).astype(np.float64)
    f["cop_x"] = (g["cop_z"] * g["fx"] - g["my"]) / g["fz"]  # what the loads give: stored null
    s.write("forces", f, key=RID, partition="abcdefabcdef")
    (part,) = s.parts("forces").values()
    assert pq.read_table(tmp_path / part.file, columns=["cop_x"])["cop_x"].null_count > 0
    cols = ["plate", "fz", "fx"]  # stored as they are read (no derived column)
    derived = ["fz", "cop_x", "tz"]  # filled from force and moment where stored as null
    reference = pq.read_table(tmp_path / part.file, columns=cols)  # pyarrow's own reader
    (whole,) = s.read_arrow_parts([part], table="forces", columns=cols)
    (whole_derived,) = s.read_arrow_parts([part], table="forces", columns=derived)
    monkeypatch.setattr(store_mod, "_WHOLE_READ_BYTES", part.bytes - 1)  # now "large"
    (by_column,) = s.read_arrow_parts([part], table="forces", columns=cols)
    (by_column_derived,) = s.read_arrow_parts([part], table="forces", columns=derived)
    assert whole.equals(reference) and by_column.equals(reference)
    assert whole_derived.equals(by_column_derived) and whole_derived.column_names == derived
    assert whole_derived.column("cop_x").null_count == 0  # filled


def test_readers_see_only_what_the_catalog_lists(tmp_path):
    s = Store(tmp_path)
    s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    stray = tmp_path / "forces" / "subject=abcdefabcdef" / "part-ffffffffffffffff.parquet"
    write_parquet(pa.table({"x": [1]}), stray)  # e.g. left by hand: not a live part
    assert s.keys("forces") == {RID} and len(s.table("forces")) == 50
    assert s.sql("SELECT count(*) AS n FROM forces")["n"].tolist() == [50]


_COMMITTING = """
import sys
from pathlib import Path
import numpy as np, pandas as pd
from cxlab.store import Store
root, stop = Path(sys.argv[1]), Path(sys.argv[2])
st, i = Store(root), 0
cols = ["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"]
while not stop.exists():
    rid = f"{i:016x}"
    df = pd.DataFrame(np.random.default_rng(i).normal(size=(10, 10)), columns=cols)
    df.insert(0, "time_s", np.arange(10) / 1000)
    df.insert(0, "sample", np.arange(10))
    df.insert(0, "plate", 1)
    df.insert(0, "recording_id", rid)
    st.write("forces", df, key=rid)
    i += 1
"""
_BUSY = "import sys, pathlib\nwhile not pathlib.Path(sys.argv[1]).exists(): sum(range(10_000))"


def test_a_reader_sees_whole_catalog_roots_while_another_process_commits(tmp_path, monkeypatch):
    """A process reading the catalog while another commits (features workers while the
    parent commits their batches) reads each root whole, from ONE open handle: never the
    footer of one root and the pages of the next, which ``pq.read_table(path)`` (a path
    opened twice) gave now and then on a loaded machine ("Page was smaller than
    expected", 79 of 25,000 reads in 20 s; a demo run stopped by it). The committing and
    the busy process are fresh interpreters (a fork of a test worker's threads can
    crash)."""
    import subprocess
    import sys
    import time

    from cxlab import _catalog

    given = []
    real_read_table = _catalog.pq.read_table

    def read_table(source, *args, **kwargs):
        given.append(type(source).__name__)
        return real_read_table(source, *args, **kwargs)

    monkeypatch.setattr(_catalog.pq, "read_table", read_table)
    root, stop = tmp_path / "store", tmp_path / "stop"
    Store(root).write("forces", _forces(), key=RID)
    writer = subprocess.Popen([sys.executable, "-c", _COMMITTING, str(root), str(stop)])
    hog = subprocess.Popen([sys.executable, "-c", _BUSY, str(stop)])  # contention
    reads, seen, t0 = 0, set(), time.monotonic()
    try:
        while time.monotonic() - t0 < 1.5 or len(seen) < 10:
            state = _catalog.Cache(root).state()  # a new cache: the root read each time
            seen.add(tuple(sh.file for sh in state.shards))
            reads += 1
            assert writer.poll() is None, f"the writer ended: {writer.returncode}"
            assert time.monotonic() - t0 < 60, "the writer made no progress"
    finally:
        stop.touch()
        for p in (writer, hog):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    assert writer.returncode == 0 and reads > 100 and len(seen) >= 10
    assert set(given) == {"BufferReader"}  # the bytes of one open, never a path


def test_a_commit_killed_before_the_catalog_swap_changes_nothing_and_is_cleaned(
    tmp_path, monkeypatch
):
    import cxlab.store as store_mod

    s = Store(tmp_path)
    s.write("recordings", _recording(), key=RID)
    s.write("forces", _forces(), key=RID, partition="abcdefabcdef")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}
    real = store_mod.atomic_file

    def dies_at_the_swap(path, **kw):
        if Path(path).name == "_catalog.parquet":
            raise OSError("killed")  # as if the process died just before the rename
        return real(path, **kw)

    monkeypatch.setattr(store_mod, "atomic_file", dies_at_the_swap)
    rid2 = "fedcba9876543210"
    with pytest.raises(OSError, match="killed"):
        with s.transaction() as tx:  # a changed file: new version in, old version out
            tx.write("recordings", _recording(rid2), key=rid2)
            tx.write("forces", _forces(seed=2), key=rid2, partition="abcdefabcdef")
            tx.delete("recordings", key=RID)
            tx.delete("forces", key=RID)
    monkeypatch.setattr(store_mod, "atomic_file", real)
    fresh = Store(tmp_path)
    assert fresh.keys("recordings") == {RID} and fresh.keys("forces") == {RID}  # all old
    assert fresh.table("recordings")["recording_id"].tolist() == [RID]
    assert (tmp_path / "_commit.json").exists()  # the journal of the cut commit
    fresh.recover()
    after = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}
    assert after == before  # the moved-in files of the lost commit are gone
    assert not (tmp_path / "_commit.json").exists()


def test_a_store_written_before_the_catalog_is_adopted(tmp_path):
    from cxlab.schemas import validate

    write_parquet(
        validate(_recording(), "recordings"), tmp_path / "recordings" / f"part-{RID}.parquet"
    )
    write_parquet(
        validate(_forces(), "forces"),
        tmp_path / "forces" / "subject=abcdefabcdef" / f"part-{RID}.parquet",
    )
    s = Store(tmp_path)
    assert s.keys("recordings") == {RID} and s.keys("forces") == {RID}
    assert len(s.table("forces")) == 50 and s.parts("forces")[RID].partition == "abcdefabcdef"
    assert not (tmp_path / "recordings" / f"part-{RID}.parquet").exists()  # merged
    assert len(s.table("recordings")) == 1


def test_recover_removes_a_dead_writers_temporary_catalog_or_journal(tmp_path):
    # test_crash found it: a features worker killed between writing the journal's temporary
    # and renaming it left `.tmp-<pid>-*.json` in the store's root for ever
    import subprocess
    import sys

    st = Store(tmp_path / "st")
    st.write("recordings", _recording(), key=RID)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = st.path / f".tmp-{dead}-wmvorapd.json"
    mine = st.path / f".tmp-{os.getpid()}-live.json"
    stale.write_text("{}")
    mine.write_text("{}")
    assert st.recover() >= 1
    assert not stale.exists() and mine.exists()


def test_sql_reads_only_the_tables_a_query_names(tmp_path):
    s = _sql_store(tmp_path)
    s.files("forces")[0].write_bytes(b"not parquet at all")  # a view over it would fail
    assert s.sql("SELECT count(*) AS n FROM recordings")["n"][0] == 1
    import duckdb

    with pytest.raises(duckdb.Error):
        s.sql("SELECT count(*) FROM forces")


def test_sql_reuses_its_connection_until_a_commit_changes_the_catalog(tmp_path):
    s = _sql_store(tmp_path)
    assert s.sql("SELECT count(*) AS n FROM recordings")["n"][0] == 1
    con = s._sql_con
    assert s.sql("SELECT count(*) AS n FROM forces")["n"][0] == 50
    assert s._sql_con is con  # same connection, one more view
    s.write("recordings", _recording("fedcba9876543210"), key="fedcba9876543210")
    assert s.sql("SELECT count(*) AS n FROM recordings")["n"][0] == 2  # the commit is seen
    with pytest.raises(ConfigError, match="COPY"):
        s.sql(f"COPY recordings TO '{tmp_path}/x.csv'")
    assert not (tmp_path / "x.csv").exists()


def test_sql_reads_parts_of_different_schema_versions_by_name(tmp_path):
    s = _sql_store(tmp_path)
    other = _forces(seed=1).assign(recording_id="fedcba9876543210")
    s.write("forces", other, key="fedcba9876543210", partition="abcdefabcdef")
    f1, f2 = s.files("forces")
    # an older cxlab wrote the first part without the last declared column (tz)
    old = pq.read_table(f1).to_pandas()
    write_parquet(pq.read_table(f1).drop_columns(["tz"]), f1)
    got = s.sql("SELECT recording_id, tz FROM forces ORDER BY recording_id, sample")
    expect = pd.concat([old, pq.read_table(f2).to_pandas()])
    expect = expect.sort_values(["recording_id", "sample"]).reset_index(drop=True)
    # the old part's rows have no stored tz: each gets the free moment its own row's force,
    # moment and CoP imply (mz - x fy + y fx, float64 rounded to float32), not a shifted one
    o = old.sort_values("sample")
    g = {c: o[c].to_numpy("float64") for c in ("mz", "fx", "fy", "cop_x", "cop_y")}
    tz_old = (g["mz"] - g["cop_x"] * g["fy"] + g["cop_y"] * g["fx"]).astype(np.float32)
    is_old = (got["recording_id"] == o["recording_id"].iloc[0]).to_numpy()
    assert is_old.sum() == 50
    np.testing.assert_array_equal(got["tz"].to_numpy()[is_old], tz_old)
    np.testing.assert_array_equal(got["tz"][~is_old], expect["tz"][~is_old])


def test_a_large_compacted_table_is_bucketed_and_a_commit_rewrites_only_its_buckets(
    tmp_path, monkeypatch
):
    import hashlib

    import cxlab.store as store_mod

    monkeypatch.setattr(store_mod, "_BUCKET_ROWS", 4)  # 4 keys a file: buckets from 5 keys
    s = Store(tmp_path / "s")
    rids = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(40)]
    with s.transaction() as tx:
        for r in rids[:30]:
            tx.write("recordings", _recording(r), key=r)
    files = {f.name for f in s.files("recordings")}
    # 30 keys > 4 * 16**0 -> level 1: each file holds the keys of one hex bucket of sha256(key)
    for f in s.files("recordings"):
        keys = set(pq.read_table(f).column("_part").to_pylist())
        tags = {hashlib.sha256(k.encode()).hexdigest()[:1] for k in keys}
        assert tags == {f.name.split("-")[1][1:]}, f.name
    s.write("recordings", _recording(rids[30]), key=rids[30])
    after = {f.name for f in s.files("recordings")}
    assert len(after - files) == 1 and len(files - after) <= 1  # one bucket rewritten
    assert sorted(s.table("recordings")["recording_id"]) == sorted(rids[:31])
    assert sorted(s.keys("recordings")) == sorted(rids[:31])
    # the layout depends on the live keys only: the same keys in another order, same bytes
    other = Store(tmp_path / "o")
    for r in reversed(rids[:31]):
        other.write("recordings", _recording(r), key=r)
    assert sorted(f.read_bytes() for f in other.files("recordings")) == sorted(
        f.read_bytes() for f in s.files("recordings")
    )
    assert _catalog_files(other) == _catalog_files(s)  # root and shards: the same bytes
    # shrinking below a level folds the buckets back into one file
    with s.transaction() as tx:
        for r in rids[1:31]:
            tx.delete("recordings", key=r)
    assert len(s.files("recordings")) == 1 and s.keys("recordings") == {rids[0]}


def test_a_bucket_read_from_a_file_name_is_the_shard_its_key_hashes_to(tmp_path, monkeypatch):
    """The commit reads the bucket of a rewritten file's rows from the file's name instead
    of hashing each key: the same prefixes as sha256 of the keys, for bucket files of the
    commit's level, files of another level, level-0 files and removals (no file)."""
    import hashlib

    import pyarrow.compute as pc

    import cxlab.store as store_mod
    from cxlab import _catalog

    monkeypatch.setattr(store_mod, "_BUCKET_ROWS", 4)
    s = Store(tmp_path / "s")
    rids = _rids(70, "bucket")
    with s.transaction() as tx:
        for r in rids:
            tx.write("recordings", _recording(r), key=r)
    cat = pa.Table.from_pandas(s.catalog(), preserve_index=False)
    rows = cat.filter(pc.equal(cat.column("table"), "recordings")).select(_catalog.SCHEMA.names)
    assert {store_mod._level_of_file(f) for f in rows.column("file").to_pylist()} == {2}
    removal = pa.table(  # a removal row names no file: its key is hashed
        {"table": ["recordings"], "key": ["gone-key"], "partition": [None], "file": [None]},
        schema=_catalog.CHANGE_SCHEMA.remove(5).remove(4),
    )
    rows = pa.concat_tables(
        [
            rows.cast(_catalog.CHANGE_SCHEMA).select(["table", "key", "partition", "file"]),
            removal,
        ]
    )
    keys = rows.column("key").to_pylist()
    for level in (0, 1, 2, 3):  # 2 = the files' own level; the others are hashed
        want = [hashlib.sha256(k.encode()).hexdigest()[:level] for k in keys]
        assert store_mod._bucket_prefixes("recordings", rows, level).to_pylist() == want


# -- the sharded catalog (issue 19: a commit's cost stays flat as the store grows) --------
def _rids(n, salt=""):
    import hashlib

    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest()[:16] for i in range(n)]


def _shard_files(store):
    return sorted(p.name for p in (store.path / "_catalog").glob("shard-*"))


def test_a_commit_rewrites_only_the_catalog_shards_its_keys_fall_in(tmp_path, monkeypatch):
    import hashlib

    from cxlab import _catalog

    monkeypatch.setattr(_catalog, "SHARD_ROWS", 2)  # 2 rows a shard: level 1 from 3 rows
    s = Store(tmp_path / "s")
    rids = _rids(20)
    with s.transaction() as tx:
        for r in rids:
            tx.write("forces", _forces(5), key=r, partition="abcdefabcdef")
    before = _shard_files(s)
    assert len(before) == len({hashlib.sha256(r.encode()).hexdigest()[:1] for r in rids})
    new = _rids(1, salt="new")[0]
    # 21 rows: still level 1 (2 < 21 <= 2 * 16), so only the new key's shard changes
    s.write("forces", _forces(5), key=new, partition="abcdefabcdef")
    after = _shard_files(s)
    tag = hashlib.sha256(new.encode()).hexdigest()[:1]
    assert [f for f in after if f not in before] == [
        f for f in after if f.startswith(f"shard-{tag}-")
    ]
    assert len(set(before) - set(after)) <= 1  # the replaced shard (if the key's was not new)
    # every shard holds exactly the parts whose key hashes to its prefix, sorted
    for f in after:
        t = _catalog.read_shard((s.path / "_catalog" / f).read_bytes())
        prefix = f.split("-")[1]
        assert {hashlib.sha256(k.encode()).hexdigest()[:1] for k in t["key"].to_pylist()} == {
            prefix
        }
        assert t["key"].to_pylist() == sorted(t["key"].to_pylist())
    assert Store(s.path).keys("forces") == {*rids, new}


def test_the_catalog_files_depend_only_on_the_live_parts(tmp_path, monkeypatch):
    """Same parts, made by different commits (one transaction, one commit per part in
    another order, and a store that grew past a shard level and shrank back): the root and
    every shard byte-identical, and a fresh reader sees what the committing process saw."""
    from cxlab import _catalog

    monkeypatch.setattr(_catalog, "SHARD_ROWS", 4)
    rids = _rids(12)
    one = Store(tmp_path / "one")
    with one.transaction() as tx:
        for r in rids:
            tx.write("forces", _forces(5), key=r, partition="abcdefabcdef")
            tx.write("recordings", _recording(r), key=r)
    many = Store(tmp_path / "many")
    for r in reversed(rids):
        many.write("recordings", _recording(r), key=r)
        many.write("forces", _forces(5), key=r, partition="abcdefabcdef")
    grown = Store(tmp_path / "grown")
    extra = _rids(60, salt="x")
    with grown.transaction() as tx:
        for r in rids + extra:  # 72 forces rows: level 2 (4 * 16 < 72); recordings apart
            tx.write("forces", _forces(5), key=r, partition="abcdefabcdef")
            tx.write("recordings", _recording(r), key=r)
    level_2 = _shard_files(grown)
    with grown.transaction() as tx:  # back to 12 forces rows: level 1
        for r in extra:
            tx.delete("forces", key=r)
            tx.delete("recordings", key=r)
    assert len(level_2) > 16 >= len(_shard_files(grown))
    for other in (many, grown):
        assert _catalog_files(other) == _catalog_files(one)
    for s in (one, many, grown):  # the committer's cached catalog == a fresh read of it
        pd.testing.assert_frame_equal(s.catalog(), Store(s.path).catalog())
    # a reader that saw an older root reads only the shards that changed, and agrees
    reader = Store(one.path)
    reader.keys("forces")
    one.write("forces", _forces(7), key=rids[0], partition="abcdefabcdef")
    pd.testing.assert_frame_equal(reader.catalog(), Store(one.path).catalog())
    assert reader.parts("forces")[rids[0]].rows == 7


def test_touched_shards_updated_together_equal_each_updated_alone():
    """A commit updates the ~20 shards of a group its keys fall in in one pass: each
    shard's rows and bytes are those of updating it alone (removals, rewrites and new
    keys; a pair removed only from its own prefix's shard), over random catalogs."""
    import hashlib
    import random

    import pyarrow.compute as pc

    from cxlab import _catalog as c

    rng = random.Random(7)

    def rows(n, salt):
        out = []
        for i in range(n):
            table = rng.choice(["forces", "markers"])
            key = hashlib.sha256(f"{salt}{i}-{rng.random()}".encode()).hexdigest()[:16]
            part = None if rng.random() < 0.3 else "abcdefabcdef"
            out.append(
                dict(
                    table=table,
                    key=key,
                    partition=part,
                    file=f"{table}/{key}.parquet",
                    rows=rng.randint(1, 9),
                    bytes=rng.randint(1, 99),
                )
            )
        return out

    checked = 0
    for _ in range(120):
        level = rng.randint(0, 2)
        live = rows(rng.randint(0, 200), "old")
        change = [
            {**r, "file": None if rng.random() < 0.5 else r["file"] + "2", "rows": 3}
            for r in rng.sample(live, min(len(live), rng.randint(0, 15)))
        ] + rows(rng.randint(0, 15), "new")
        if not change:
            continue
        live = pa.Table.from_pylist(live, schema=c.SCHEMA)
        change = pa.Table.from_pylist(change, schema=c.CHANGE_SCHEMA)
        live_prefix = c.shard_of(live.column("key").to_pylist(), level)
        prefix = c.shard_of(change.column("key").to_pylist(), level)
        values = sorted(set(prefix.to_pylist()))
        bases = [c.ordered(live.filter(pc.equal(live_prefix, p))) for p in values]
        alone = [
            c.ordered(c._apply(b, change.filter(pc.equal(prefix, p))))
            for b, p in zip(bases, values, strict=True)
        ]
        together = c._apply_each(bases, change, prefix)
        assert len(together) == len(alone)
        for a, t in zip(alone, together, strict=True):
            assert t.equals(a, check_metadata=True)
            assert c.shard_bytes(t) == c.shard_bytes(a)
            checked += 1
    assert checked > 500
    # a pair named by another prefix's change stays in its own shard, as alone
    one, extra = (pa.Table.from_pylist(rows(1, s), schema=c.SCHEMA) for s in "xy")
    gone = one.cast(c.CHANGE_SCHEMA).set_column(3, "file", pa.nulls(1, pa.string()))
    change = pa.concat_tables([gone, extra.cast(c.CHANGE_SCHEMA)])
    kept = c._apply_each([one, c.empty()], change, pa.array(["b", "a"], pa.string()))
    assert kept[0].num_rows == 2 and kept[1].num_rows == 0


def test_a_commit_killed_while_writing_catalog_shards_leaves_the_old_store(tmp_path, monkeypatch):
    import cxlab.store as store_mod
    from cxlab import _catalog

    monkeypatch.setattr(_catalog, "SHARD_ROWS", 2)
    s = Store(tmp_path)
    rids = _rids(10)
    with s.transaction() as tx:
        for r in rids:
            tx.write("forces", _forces(5), key=r, partition="abcdefabcdef")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "_lock"}
    real = store_mod.atomic_file
    shards = [0]

    def dies_at_the_second_shard(path, **kw):
        if Path(path).parent.name == "_catalog":
            shards[0] += 1
            if shards[0] == 2:
                raise OSError("killed")  # one shard written, the second not
        return real(path, **kw)

    monkeypatch.setattr(store_mod, "atomic_file", dies_at_the_second_shard)
    new = _rids(3, salt="new")
    with pytest.raises(OSError, match="killed"):
        with s.transaction() as tx:
            for r in new:
                tx.write("forces", _forces(6), key=r, partition="abcdefabcdef")
            tx.delete("forces", key=rids[0])
    monkeypatch.setattr(store_mod, "atomic_file", real)
    assert shards[0] == 2
    fresh = Store(tmp_path)
    assert fresh.keys("forces") == set(rids)  # the old store, whole
    fresh.recover()
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "_lock"}
    assert after == before  # the lost commit's parts and shard are gone


def test_a_commit_makes_its_files_durable_at_once_not_one_fsync_each(tmp_path, monkeypatch):
    import cxlab.store as store_mod

    s = Store(tmp_path)
    synced, fsyncs = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(store_mod, "_sync_store", lambda root, files: synced.append(list(files)))
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    rids = _rids(10)
    with s.transaction() as tx:
        for r in rids:
            tx.write("forces", _forces(5), key=r, partition="abcdefabcdef")
            tx.write("recordings", _recording(r), key=r)
    assert len(fsyncs) == 2  # the root and its folder; the 10 parts, the merged
    # recordings file and the catalog shard in one call:
    assert len(synced) == 1
    assert {f for f in synced[0]} == {
        *(p.file for p in s.parts("forces").values()),
        *(p.file for p in s.parts("recordings").values()),
        *(f"_catalog/{f}" for f in _shard_files(s)),
    }


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads fds in /proc")
def test_without_syncfs_a_commit_fsyncs_each_file_and_each_folder_holding_one(
    tmp_path, monkeypatch
):
    import cxlab.store as store_mod

    monkeypatch.setattr(store_mod, "_SYNCFS", [None])  # a system without syncfs(2)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os,
        "fsync",
        lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))[1],
    )
    s = Store(tmp_path)
    with s.transaction() as tx:
        for r in _rids(3):
            tx.write("forces", _forces(5), key=r, partition="abcdefabcdef")
    files = {str(tmp_path / p.file) for p in s.parts("forces").values()}
    files |= {str(tmp_path / "_catalog" / f) for f in _shard_files(s)}
    folders = {str(Path(f).parent) for f in files}
    assert files | folders <= set(synced)  # every new file and every folder it is in
    assert str(tmp_path) in synced  # the root's folder, after the root's rename


def test_a_catalog_of_one_file_is_read_and_sharded_by_the_next_commit(tmp_path):
    """A store written by the cxlab before shards (one _catalog.parquet of every part)."""
    s = Store(tmp_path / "s")
    s.write("forces", _forces(5), key=RID, partition="abcdefabcdef")
    s.write("recordings", _recording(), key=RID)
    legacy = _with_a_single_file_catalog(s)
    assert legacy.keys("forces") == {RID} and len(legacy.table("forces")) == 5
    rid2 = "fedcba9876543210"
    legacy.write("recordings", _recording(rid2), key=rid2)
    fresh = Store(tmp_path / "fresh")
    fresh.write("forces", _forces(5), key=RID, partition="abcdefabcdef")
    fresh.write("recordings", _recording(), key=RID)
    fresh.write("recordings", _recording(rid2), key=rid2)
    assert _catalog_files(Store(s.path)) == _catalog_files(fresh)


# -- keyed lookups (issue 19: per-run work follows the files given, not the store) --------
def _counting_shard_reads(monkeypatch):
    from cxlab import _catalog

    read = []
    real = _catalog.read_shard
    monkeypatch.setattr(_catalog, "read_shard", lambda data: (read.append(1), real(data))[1])
    return read


def _grown(tmp_path, monkeypatch, n=40):
    """A store of ``n`` recordings (forces, recordings) at shard and bucket level 1."""
    import cxlab.store as store_mod
    from cxlab import _catalog

    monkeypatch.setattr(_catalog, "SHARD_ROWS", 4)
    monkeypatch.setattr(store_mod, "_BUCKET_ROWS", 4)
    s = Store(tmp_path / "s")
    rids = _rids(n)
    with s.transaction() as tx:
        for r in rids:
            tx.write("forces", _forces(5), key=r, partition="abcdefabcdef")
            tx.write("recordings", _recording(r), key=r)
    return s, rids


def test_a_lookup_reads_only_the_catalog_shards_of_its_keys(tmp_path, monkeypatch):
    s, rids = _grown(tmp_path, monkeypatch)
    n_shards = len(_shard_files(s))
    assert n_shards > 16  # key shards (forces), recordings' own shards and the path index
    read = _counting_shard_reads(monkeypatch)
    fresh = Store(s.path)
    found = fresh.lookup("recordings", [rids[3]])
    assert list(found) == [rids[3]] and found[rids[3]] == s.parts("recordings")[rids[3]]
    assert len(read) == 1  # the one shard of that key in the recordings group
    assert fresh.lookup("forces", [rids[5]])[rids[5]].partition == "abcdefabcdef"
    assert len(read) == 2
    assert fresh.lookup("recordings", ["0000000000000000"]) == {}  # absent: one shard at most
    assert len(read) <= 3
    assert fresh.keys("recordings") == set(rids)  # the recordings group only, not forces'
    assert len(read) < n_shards / 2


def test_a_commit_reads_only_the_shards_its_keys_fall_in(tmp_path, monkeypatch):
    s, rids = _grown(tmp_path, monkeypatch)
    read = _counting_shard_reads(monkeypatch)
    fresh = Store(s.path)
    new = _rids(1, salt="new")[0]
    with fresh.transaction() as tx:
        tx.write("forces", _forces(5), key=new, partition="abcdefabcdef")
        tx.write("recordings", _recording(new), key=new)
    # its forces shard, its recordings bucket's shard, the path index shard of its path
    assert len(read) <= 3
    assert Store(s.path).keys("recordings") == {*rids, new}
    assert Store(s.path).catalog().equals(fresh.catalog())


def test_find_by_source_path_follows_the_index_through_replacements(tmp_path, monkeypatch):
    s, rids = _grown(tmp_path, monkeypatch)
    paths = [f"{r}.c3d" for r in rids]
    got = s.find("recordings", "source_path", paths[:3], columns=["recording_id", "source_path"])
    assert sorted(got["recording_id"]) == sorted(rids[:3])
    read = _counting_shard_reads(monkeypatch)
    one = Store(s.path).find("recordings", "source_path", [paths[7]])
    assert list(one["recording_id"]) == [rids[7]] and len(read) <= 2  # index shard, bucket's
    new = _rids(1, salt="v2")[0]
    row = _recording(new).assign(source_path=paths[7])  # a new version of the same file
    with s.transaction() as tx:
        tx.delete("recordings", key=rids[7])
        tx.write("recordings", row, key=new)
    again = Store(s.path).find("recordings", "source_path", [paths[7], "absent.c3d"])
    assert list(again["recording_id"]) == [new]
    s.delete("recordings", key=new)
    assert Store(s.path).find("recordings", "source_path", [paths[7]]).empty
    # the index says what a filtered read of the whole table says, for every path
    every = Store(s.path).find("recordings", "source_path", [*paths, "x.c3d"])
    full = s.table("recordings", filters=[("source_path", "in", [*paths, "x.c3d"])])
    assert sorted(every["recording_id"]) == sorted(full["recording_id"])
    assert len(every) == len(rids) - 1


def test_find_refuses_none_as_a_value_naming_the_fix(tmp_path):
    s = Store(tmp_path / "s")
    s.write("recordings", _recording(), key=RID)
    with pytest.raises(ConfigError, match=r"^values: .*None is no value.*Store.table"):
        s.find("recordings", "source_path", [f"{RID}.c3d", None])


def test_an_older_catalog_gets_its_index_from_its_next_commit(tmp_path):
    from cxlab import _catalog

    s = Store(tmp_path / "s")
    s.write("recordings", _recording(), key=RID)
    legacy = _with_a_single_file_catalog(s)
    assert legacy.older_layout()
    assert list(legacy.find("recordings", "source_path", [f"{RID}.c3d"])["recording_id"]) == [RID]
    rid2 = "fedcba9876543210"
    legacy.write("recordings", _recording(rid2), key=rid2)
    fresh = Store(s.path)
    assert not fresh.older_layout()
    index = _catalog.index_name("recordings", "source_path")
    assert sorted(fresh._cache.state().table(index, alone=True)["key"].to_pylist()) == sorted(
        f"{_catalog.value_digest(f'{r}.c3d')}-{r}" for r in (RID, rid2)
    )
    assert list(fresh.find("recordings", "source_path", [f"{RID}.c3d"])["recording_id"]) == [RID]
    assert set(fresh.catalog()["table"]) == {"recordings"}  # the index is not a table


def test_a_store_at_a_relative_path_commits_staged_parts(tmp_path, monkeypatch):
    """Staged parts of a store given by a relative path (``--store store``) are read where
    they were written: a merge of a compacted table once looked under store/store/."""
    monkeypatch.chdir(tmp_path)
    rel = Store("store")
    rid2 = "fedcba9876543210"
    staged = [
        rel.stage("recordings", _recording(), key=RID, owner=1),
        rel.stage("recordings", _recording(rid2, task="landing"), key=rid2, owner=1),
        rel.stage("forces", _forces(), key=RID, partition="abcdefabcdef", owner=1),
    ]
    rel.commit(staged)
    absolute = Store(tmp_path / "elsewhere")
    absolute.write("recordings", _recording(), key=RID)
    absolute.write("recordings", _recording(rid2, task="landing"), key=rid2)
    assert rel.keys("recordings") == {RID, rid2} and rel.keys("forces") == {RID}
    assert rel.files("recordings")[0].read_bytes() == absolute.files("recordings")[0].read_bytes()
    assert not list((tmp_path / "store" / "_staging").glob("*.parquet"))


# --- parts of several recordings sharing a file (Store.stage_many) ---------------------

SUBJECT = "abcdefabcdef"
RIDS = [f"{i:016x}" for i in (3, 7, 11, 19)]


def _forces_of(rids, n=40):
    """Validated ``forces`` rows of ``rids`` (n rows each, distinct values each)."""
    from cxlab.schemas import validate

    frames = []
    for rid in rids:
        f = _forces(n, seed=int(rid, 16))  # a recording's rows whatever batch it is in
        f["recording_id"] = rid
        frames.append(f)
    return validate(pd.concat(frames, ignore_index=True), "forces")


def _one_each(store, rids):
    """The rows each recording reads back, by recording id (pandas)."""
    handles = store.parts("forces")
    return {r: store.read_parts([handles[r]], table="forces") for r in rids}


def _assert_every_file_holds_only_its_listed_keys(store):
    cat = store.catalog()
    for file, group in cat[cat["table"] == "forces"].groupby("file"):
        held = set(pq.read_table(store.path / file, columns=["recording_id"]).column(0).to_pylist())
        assert held == set(group["key"]), file  # no row the catalog does not list


def test_stage_many_puts_recordings_in_one_file_and_reads_each_as_its_own_part(tmp_path):
    s = Store(tmp_path / "many")
    s.commit([s.stage_many("forces", _forces_of(RIDS), partition=SUBJECT)])
    assert len(s.files("forces")) == 1 and s.keys("forces") == set(RIDS)
    assert "~4-" in s.files("forces")[0].name  # the name says: 4 keys share it
    handles = s.parts("forces")
    assert [handles[r].rows for r in RIDS] == [40] * 4
    one = Store(tmp_path / "one")  # the same recordings, a part each
    one.commit([one.stage("forces", _forces_of([r]), key=r, partition=SUBJECT) for r in RIDS])
    for r in RIDS:  # each recording's rows exactly as from a part of its own
        pd.testing.assert_frame_equal(s.read_part("forces", r), one.read_part("forces", r))
    both = [handles[RIDS[2]], handles[RIDS[0]]]  # any order, one read of the file
    got = s.read_arrow_parts(both, table="forces", columns=["recording_id", "fz"])
    assert [t.column("recording_id")[0].as_py() for t in got] == [RIDS[2], RIDS[0]]
    pd.testing.assert_frame_equal(s.table("forces"), one.table("forces"))
    assert s.sql("SELECT count(*) AS n FROM forces")["n"][0] == 160


def test_stage_many_of_one_recording_is_the_part_stage_writes(tmp_path):
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    a.commit([a.stage_many("forces", _forces_of(RIDS[:1]), partition=SUBJECT)])
    b.commit([b.stage("forces", _forces_of(RIDS[:1]), key=RIDS[0], partition=SUBJECT)])
    assert _tree(a.path) == _tree(b.path)


def test_deleting_a_key_of_a_shared_file_cuts_its_rows_out(tmp_path):
    """The file is rewritten without the key (the bytes a batch of the others gives); down
    to one key it is the one-key part; no file ever holds a row no catalog row lists."""
    s = Store(tmp_path / "cut")
    s.commit([s.stage_many("forces", _forces_of(RIDS), partition=SUBJECT)])
    before = _one_each(s, RIDS)
    old = s.files("forces")[0]
    s.commit(delete=[("forces", RIDS[1])])
    assert not old.exists() and s.keys("forces") == {RIDS[0], RIDS[2], RIDS[3]}
    _assert_every_file_holds_only_its_listed_keys(s)
    ref = Store(tmp_path / "ref")
    ref.commit([ref.stage_many("forces", _forces_of([RIDS[0], *RIDS[2:]]), partition=SUBJECT)])
    assert _tree(s.path) == _tree(ref.path)
    fresh = Store(s.path)
    for r in (RIDS[0], *RIDS[2:]):
        pd.testing.assert_frame_equal(fresh.read_part("forces", r), before[r])
    s.commit(delete=[("forces", RIDS[0]), ("forces", RIDS[2])])
    single = Store(tmp_path / "single")
    single.commit([single.stage("forces", _forces_of(RIDS[3:]), key=RIDS[3], partition=SUBJECT)])
    assert _tree(s.path) == _tree(single.path)
    s.commit(delete=[("forces", RIDS[3])])
    assert not s.files("forces") and s.table("forces").empty


def test_replacing_some_keys_of_a_shared_file_keeps_the_others(tmp_path):
    """As ``--force`` on some files of a batch: their keys deleted and staged anew in one
    commit, the others cut out of the old file into a file of their own."""
    s = Store(tmp_path / "force")
    s.commit([s.stage_many("forces", _forces_of(RIDS), partition=SUBJECT)])
    before = _one_each(s, RIDS)
    again = s.stage_many("forces", _forces_of(RIDS[:2]), partition=SUBJECT)
    s.commit([again, again], delete=[("forces", r) for r in RIDS[:2]])  # named twice: once
    assert len(s.files("forces")) == 2 and s.keys("forces") == set(RIDS)
    _assert_every_file_holds_only_its_listed_keys(s)
    for r in RIDS[2:]:
        pd.testing.assert_frame_equal(Store(s.path).read_part("forces", r), before[r])


def test_a_shared_file_is_cut_whole_when_its_keys_sit_in_other_catalog_shards(
    tmp_path, monkeypatch
):
    """The catalog of a large store is sharded by key: the other keys of a cut file are
    read from their own shards, so none is left pointing at the removed file."""
    from cxlab import _catalog

    monkeypatch.setattr(_catalog, "SHARD_ROWS", 2)
    s = Store(tmp_path / "sharded")
    rids = [f"{i:016x}" for i in range(1, 40)]
    s.commit([s.stage_many("forces", _forces_of(rids, n=5), partition=SUBJECT)])
    assert len(list((s.path / "_catalog").glob("shard-*"))) > 4
    s.commit(delete=[("forces", rids[5])])
    fresh = Store(s.path)
    assert fresh.keys("forces") == set(rids) - {rids[5]}
    assert {p.file for p in fresh.parts("forces").values()} == {
        f.relative_to(s.path).as_posix() for f in fresh.files("forces")
    }
    _assert_every_file_holds_only_its_listed_keys(fresh)
    assert len(fresh.table("forces")) == 5 * 38


def test_stage_many_refuses_what_cannot_share_a_file(tmp_path):
    s = Store(tmp_path / "bad")
    with pytest.raises(ConfigError, match="no per-recording parts"):
        s.stage_many("recordings", pa.Table.from_pandas(_recording()))
    t = _forces_of(RIDS[:2])
    with pytest.raises(ConfigError, match="sorted by recording_id"):
        s.stage_many("forces", t.take(pa.array([t.num_rows - 1, *range(t.num_rows - 1)])))
    with pytest.raises(ConfigError, match="validate"):
        s.stage_many("forces", pa.Table.from_pandas(_forces()))
    a = s.stage_many("forces", t, partition=SUBJECT)
    b = s.stage("forces", _forces_of(RIDS[:1]), key=RIDS[0], partition=SUBJECT)
    with pytest.raises(ConfigError, match="staged twice"):
        s.commit([a, b])


def test_a_shared_file_of_several_row_groups_splits_where_the_ids_change(tmp_path, monkeypatch):
    """Row groups of a shared file hold whole recordings (here groups of at most 7 rows:
    a recording of 10 rows is 7 + 3, two of 3 rows share one), so one recording is read
    from its row groups alone; each part reads back whole, its id column included."""
    from cxlab import store as store_mod

    monkeypatch.setitem(store_mod._PARQUET_OPTS, "row_group_size", 7)
    s = Store(tmp_path / "groups")
    s.commit([s.stage_many("forces", _forces_of(RIDS, n=10), partition=SUBJECT)])
    meta = pq.ParquetFile(s.files("forces")[0]).metadata
    assert meta.num_row_groups == 8
    for g in range(8):  # one recording a row group
        st = meta.row_group(g).column(0).statistics
        assert st.min == st.max == RIDS[g // 2]
    handles = s.parts("forces")
    got = s.read_arrow_parts([handles[r] for r in RIDS], table="forces")
    for r, t in zip(RIDS, got, strict=True):
        assert t.num_rows == 10 and set(t.column("recording_id").to_pylist()) == {r}
        assert t.column("sample").to_pylist() == list(range(10))
        assert t.schema.field("recording_id").type == pa.string()
    from cxlab.store import _packed, _read_keys

    assert _packed([3, 3, 3, 10, 2], 7) == [(0, 6), (6, 3), (9, 10), (19, 2)]
    assert _packed([4, 4], 100) == [(0, 8)]  # a small shared file: one row group
    assert _packed([3, 4, 1], 7) == [(0, 7), (7, 1)]  # a group filled exactly closes
    assert _packed([7, 7], 7) == [(0, 7), (7, 7)] and _packed([], 7) == []

    f = pq.ParquetFile(s.files("forces")[0])
    one = _read_keys(f, {RIDS[2]}, ["recording_id", "sample"])  # its two row groups only
    assert one.column("recording_id").to_pylist() == [RIDS[2]] * 10
    (alone,) = s.read_arrow_parts([handles[RIDS[2]]], table="forces", columns=["sample"])
    assert alone.column("sample").to_pylist() == list(range(10))


def test_shared_row_groups_pack_recordings_up_to_65536_rows(tmp_path):
    """At the store's own row-group size (1 M rows), recordings of a shared file are still
    packed only up to 65,536 rows a group: one trial's read (features read each trial's
    analogs alone) decodes at most that much beyond its own rows."""
    from cxlab.store import _SHARED_GROUP_ROWS

    assert _SHARED_GROUP_ROWS == 65_536
    s = Store(tmp_path)
    s.commit([s.stage_many("forces", _forces_of(RIDS, n=20_000), partition=SUBJECT)])
    meta = pq.ParquetFile(s.files("forces")[0]).metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert len(RIDS) == 4 and sizes == [60_000, 20_000]  # 3 x 20,000 fit, the 4th starts
    got = s.read_arrow_parts([s.parts("forces")[RIDS[3]]], table="forces", columns=["sample"])
    assert got[0].column("sample").to_pylist() == list(range(20_000))


def test_a_damaged_shared_file_does_not_block_deletes_and_stays_for_its_other_keys(
    tmp_path, monkeypatch
):
    """Garbage over a shared file (Store.info counts it unreadable): deleting some of its
    keys commits and leaves the file listed for the others (their rows are in it, unread);
    deleting the rest removes it. Its keys may sit in shards the commit did not read."""
    from cxlab import _catalog

    monkeypatch.setattr(_catalog, "SHARD_ROWS", 2)
    s = Store(tmp_path / "damaged")
    rids = [f"{i:016x}" for i in range(1, 20)]
    s.commit([s.stage_many("forces", _forces_of(rids, n=5), partition=SUBJECT)])
    (f,) = s.files("forces")
    f.write_bytes(b"not parquet")
    s.commit(delete=[("forces", rids[0]), ("forces", rids[1])])
    fresh = Store(s.path)
    assert fresh.keys("forces") == set(rids[2:]) and f.exists()
    assert {p.file for p in fresh.parts("forces").values()} == {f.relative_to(s.path).as_posix()}
    fresh.commit(delete=[("forces", r) for r in rids[2:]])
    assert not Store(s.path).keys("forces") and not f.exists()


def test_shared_and_one_key_parts_read_together(tmp_path):
    """A call mixing parts of a shared file with a part of its own (any key, here "batch")
    gives each its rows."""
    s = Store(tmp_path / "mixed")
    s.commit([s.stage_many("forces", _forces_of(RIDS[:2]), partition=SUBJECT)])
    s.write("forces", _forces_of(RIDS[2:3]), key="batch", partition=SUBJECT)
    handles = s.parts("forces")
    got = s.read_arrow_parts([handles["batch"], handles[RIDS[1]]], table="forces")
    assert [t.num_rows for t in got] == [40, 40]
    assert set(got[0].column("recording_id").to_pylist()) == {RIDS[2]}
    assert got[0].schema == got[1].schema  # one schema, so they concatenate
    mixed = s.read_parts([handles["batch"], handles[RIDS[1]], handles[RIDS[0]]], table="forces")
    assert len(mixed) == 120


def test_the_key_check_survives_recover_and_a_bad_copy_is_refused(tmp_path):
    """The record is never swept (a remote store's sweep keeps only what it knows); a
    record that is not a key check (a bad copy) is an error naming the file, never a store
    that accepts every key."""
    from cxlab import store as store_mod

    remote = Store("memory://cxlab-test-keycheck/store")
    remote.write("recordings", _recording(), key=RID)
    with pytest.warns(CxlabWarning, match="no record of the key that made them"):
        assert remote.claim_key_check("0123456789abcdef") == "0123456789abcdef"
    remote.recover(older_than_s=0)  # every unknown object older than now would go
    assert Store("memory://cxlab-test-keycheck/store").key_check() == "0123456789abcdef"
    local = Store(tmp_path / "st")
    local.write("recordings", _recording(), key=RID)
    with pytest.warns(CxlabWarning, match="no record of the key that made them"):
        assert local.claim_key_check("0123456789abcdef") == "0123456789abcdef"
    local.recover(older_than_s=0)
    assert local.key_check() == "0123456789abcdef"
    (tmp_path / "st" / store_mod._KEY_CHECK).write_text("")  # truncated by a bad copy
    with pytest.raises(
        ConfigError, match=r"^_key_check: is not a key check .*in the store .*st.*copy _key_check"
    ):
        local.require_key_check("0123456789abcdef")
