"""Cost of an ingest run as the store grows: 20 new files into stores of 0, 10,000 and
100,000 recordings, measured in the same run (issue 19: the cost per new file stays flat).

The large stores are written directly by this benchmark (not through ``cxlab ingest``, which
would take hours): a ``recordings`` table of N rows and a ``sessions`` table of N rows, in
the files the store keeps for these small tables (one per hash bucket of the key), a
``forces`` part per recording (real directory entries: hard links to one small part, so the
store holds N files without N writes) and the catalog listing them all (its root and
shards, the index of paths included) and the record of its key, exactly as ingest leaves
them. Then, for each size,
``--batches`` batches of 20 new force-plate CSV files are ingested (``jobs=1``, a batch
per run, so each run lands in a store of about N recordings; the sizes take turns batch
by batch) and the median wall time is printed with its ratio to the empty store's
(target: every ratio within 1.2).

With ``--s3-sql`` it instead measures SQL on a store on S3 (a local moto server, never a
real cloud): ``Store.sql``, which registers each table as a pyarrow dataset read through
fsspec, against DuckDB reading the same files through the fsspec filesystem registered on
its connection (the two ways docs/store.md compares).

Usage::

    .venv/bin/python benchmarks/bench_store.py            # sizes 0, 10000, 100000
    .venv/bin/python benchmarks/bench_store.py --sizes 0 2000
    .venv/bin/python benchmarks/bench_store.py --s3-sql   # needs moto[server] (dev extra)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cxlab import _catalog
from cxlab.ingest import ingest
from cxlab.pseudo import key_check
from cxlab.schemas import validate
from cxlab.store import _PARQUET_OPTS, Store, _bucket_level, _bucket_of, _group_level

RATE_HZ = 1000.0


def _csv(path: Path, seed: int) -> None:
    """A 3 s two-plate force export (quiet standing, ~700 N), unique content per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(3000) / RATE_HZ
    fz = 700.0 + rng.normal(0.0, 2.0, size=(t.size, 2))
    body = np.column_stack([t, fz / 2])
    np.savetxt(path, body, delimiter=",", fmt="%.4f", header="time,left_fz,right_fz", comments="")


def _recordings(n: int, *, task: str = "cmj") -> pd.DataFrame:
    ids = [hashlib.sha256(f"old-{i}".encode()).hexdigest() for i in range(n)]
    subjects = [hashlib.sha256(f"s{i % 1000}".encode()).hexdigest()[:12] for i in range(n)]
    return pd.DataFrame(
        {
            "recording_id": [h[:16] for h in ids],
            "subject_id": subjects,
            "session": [str(1 + i % 4) for i in range(n)],
            "task": task,
            "trial": [str(i) for i in range(n)],
            "source_path": [
                f"old/sub-{i % 1000}_ses-{1 + i % 4}_task-{task}_run-{i}.csv" for i in range(n)
            ],
            "source_sha256": ids,
            "format": "csv",
            "vendor": None,
            "point_rate_hz": np.nan,
            "analog_rate_hz": RATE_HZ,
            "n_frames": 3000,
            "first_frame": 0,
            "warnings": [[] for _ in range(n)],
            "up_axis": "z",
            "body_mass_kg": np.nan,
            "recorded_at": None,
        }
    )


def _compact_files(root: Path, name: str, table: pa.Table, keys: list[str]) -> list[dict]:
    """The files of a compacted table as the store lays them out (rows sorted by key in
    column _part; above 1,024 keys, one file per hash bucket of the key), with their
    catalog rows."""
    table = table.append_column(
        pa.field(_catalog.PART_COLUMN, pa.string(), False), pa.array(keys, pa.string())
    )
    table = table.take(pa.compute.sort_indices(table.column(_catalog.PART_COLUMN)))
    level = _bucket_level(len(keys))
    bucket = np.array(
        [_bucket_of(k, level) for k in table.column(_catalog.PART_COLUMN).to_pylist()]
    )
    rows = []
    for b in sorted(set(bucket.tolist())):
        piece = table.filter(pa.array(bucket == b)).combine_chunks()
        tmp = root / f"{name}.tmp"
        pq.write_table(piece, tmp, **_PARQUET_OPTS)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        rel = f"{name}/part-{f'b{b}-' if level else ''}{digest[:16]}.parquet"
        (root / name).mkdir(parents=True, exist_ok=True)
        os.replace(tmp, root / rel)
        size = (root / rel).stat().st_size
        rows += [
            dict(table=name, key=k, partition=None, file=rel, rows=1, bytes=size)
            for k in piece.column(_catalog.PART_COLUMN).to_pylist()
        ]
    return rows


def build_store(root: Path, n: int, *, task: str = "cmj") -> None:
    """A store of ``n`` recordings of ``task`` written directly (see the module docstring)."""
    root.mkdir(parents=True)
    if n == 0:
        return
    rec = _recordings(n, task=task)
    rids = rec["recording_id"].tolist()
    rows = []
    rows += _compact_files(root, "recordings", validate(rec, "recordings"), rids)
    index = _catalog.index_name("recordings", "source_path")  # the catalog's index of paths
    rows += [
        dict(
            table=index,
            key=f"{_catalog.value_digest(p)}-{r}",
            partition=None,
            file="",
            rows=1,
            bytes=0,
        )
        for p, r in zip(rec["source_path"], rids, strict=True)
    ]
    ses = pd.DataFrame(
        {
            "subject_id": rec["subject_id"],
            "session": rec["session"],
            "session_index": pd.array([None] * n, dtype="Int32"),
            "date": None,
            "source": "path",
        }
    )
    rows += _compact_files(root, "sessions", validate(ses, "sessions"), rids)
    forces = pd.DataFrame(
        {
            "recording_id": rids[0],
            "plate": np.int32(1),
            "sample": np.arange(10),
            "time_s": np.arange(10) / RATE_HZ,
            **{
                c: 1.0
                for c in ("fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz")
            },
        }
    )
    template = root / "template.parquet"
    pq.write_table(validate(forces, "forces"), template, **_PARQUET_OPTS)
    digest = hashlib.sha256(template.read_bytes()).hexdigest()[:12]
    fsize = template.stat().st_size
    for i, (rid, sid) in enumerate(zip(rids, rec["subject_id"], strict=True)):
        if i and i % 50_000 == 0:  # a file system allows ~65,000 links to one file
            fresh = root / "template2.parquet"
            fresh.write_bytes(template.read_bytes())
            os.replace(fresh, template)
        rel = f"forces/subject={sid}/part-{rid}-{digest}.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(template, root / rel)
        rows.append(dict(table="forces", key=rid, partition=sid, file=rel, rows=10, bytes=fsize))
    template.unlink()
    cat = _catalog.ordered(pa.Table.from_pylist(rows, schema=_catalog.SCHEMA))
    _, shards, root_table = _catalog.build(cat, _group_level)  # shards and root, as a commit
    for name, data in shards.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    pq.write_table(root_table, root / _catalog.CATALOG, **_PARQUET_OPTS)
    with warnings.catch_warnings():  # the store holds ids: it warns that none is recorded
        warnings.simplefilter("ignore")
        Store(root).claim_key_check(key_check())  # the record of its key, as ingest leaves it


def bench_s3_sql(n_parts: int = 50, rows: int = 2000, repeat: int = 3) -> None:
    """``Store.sql`` (Arrow datasets) against DuckDB over fsspec, on a moto S3 server."""
    import logging

    import duckdb
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    try:
        fs = s3fs.S3FileSystem()
        fs.call_s3("create_bucket", Bucket="bench")
        url = "s3://bench/store"
        store = Store(url)
        cols = ("fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz")
        with store.transaction() as tx:
            for i in range(n_parts):
                rng = np.random.default_rng(i)
                rid = f"{i:016x}"
                df = pd.DataFrame(
                    {
                        "recording_id": rid,
                        "plate": np.int32(1),
                        "sample": np.arange(rows),
                        "time_s": np.arange(rows) / RATE_HZ,
                        **{c: rng.normal(size=rows) for c in cols},
                    }
                )
                tx.write("forces", df, key=rid, partition=f"s{i % 5}")
        query = "SELECT recording_id, max(fz) AS m FROM forces GROUP BY 1 ORDER BY 1"
        files = ", ".join(
            f"'{url}/{f}'" for f in sorted(set(store.catalog()["file"]))
        )  # the live files, from the catalog
        arrow, view = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            a = Store(url).sql(query)  # a new Store: connection and views made again
            arrow.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with duckdb.connect() as con:
                con.register_filesystem(s3fs.S3FileSystem())
                b = con.execute(
                    f"SELECT recording_id, max(fz) AS m FROM read_parquet([{files}]) "
                    "GROUP BY 1 ORDER BY 1"
                ).df()
            view.append(time.perf_counter() - t0)
        pd.testing.assert_frame_equal(a, b)
        print(
            f"SQL on S3 (moto), {n_parts} forces parts x {rows} rows: Store.sql (Arrow datasets) "
            f"median {statistics.median(arrow):.2f} s, DuckDB over fsspec "
            f"{statistics.median(view):.2f} s "
            f"({statistics.median(view) / statistics.median(arrow):.2f}x)"
        )
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 10_000, 100_000])
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--s3-sql", action="store_true", help="measure SQL on S3 (moto) instead")
    args = ap.parse_args()
    if args.s3_sql:
        bench_s3_sql()
        return
    os.environ.setdefault("CXLAB_KEY", "bench-store-key-not-secret-0123456789abcdef")
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        tmp = Path(tmp)
        times: dict[int, list[float]] = {}
        for n in args.sizes:
            t0 = time.perf_counter()
            build_store(tmp / f"store-{n}", n)
            print(f"store of {n:>7,} recordings built in {time.perf_counter() - t0:5.1f} s")
            assert len(Store(tmp / f"store-{n}").keys("recordings")) == n
            times[n] = []
        # the sizes take turns, batch by batch, so a change in the machine's load (shared,
        # noisy) falls on every size alike rather than on the last one measured
        for b in range(args.batches):
            for n in args.sizes:
                raw = tmp / f"raw-{n}-{b}"
                raw.mkdir()
                for i in range(20):
                    _csv(raw / f"sub-{i:02d}_ses-{b + 1}_task-cmj_run-1.csv", seed=n + 100 * b + i)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    rep = ingest([raw], store=tmp / f"store-{n}", jobs=1, progress=False)
                    times[n].append(time.perf_counter() - t0)
                assert len(rep.ingested) == 20, rep.summary()
        for n in args.sizes:
            assert len(Store(tmp / f"store-{n}").keys("recordings")) == n + 20 * args.batches
            print(
                f"store of {n:>7,} recordings: 20 new files in "
                + ", ".join(f"{t:.2f}" for t in times[n])
                + f" s (median {statistics.median(times[n]):.2f} s)",
                flush=True,
            )
        base = statistics.median(times[args.sizes[0]])
        ratios = {n: statistics.median(t) / base for n, t in times.items()}
        print(
            "ratio to the first size: "
            + ", ".join(f"{n:,}: {r:.2f}x" for n, r in ratios.items())
            + f"  (target: all within 1.20x; {'met' if max(ratios.values()) <= 1.2 else 'NOT met'})"
            + f"; load average {open('/proc/loadavg').read().split()[0]}"
        )


if __name__ == "__main__":
    main()
