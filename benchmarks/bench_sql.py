"""Store.sql against DuckDB reading the same Parquet files directly (issue 19: within 1.5x).

The query is the README's cohort query (scores joined to interventions, one row per subject
and week). Both sides run in the same process on the same files, warm (each is run once
before timing): ``Store.sql`` on one ``Store`` (its connection and views reused, as in a
notebook or an experiment run), and ``duckdb.sql`` on ``read_parquet([...])`` of the files
the store's catalog lists. A cold ``Store.sql`` (a new ``Store`` per query, as one
``cxlab sql`` call) is printed too, for information. Medians of ``--repeat`` runs.

Usage::

    make demo                                        # builds data/processed/demo
    .venv/bin/python benchmarks/bench_sql.py         # --store data/processed/demo
    .venv/bin/python benchmarks/bench_sql.py --store PATH --repeat 50
    .venv/bin/python benchmarks/bench_sql.py --raw data/raw/demo   # a store of the demo's
        # surveys and interventions only, built in a temporary folder (no C3D ingest)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

from cxlab import Store

COHORT = """
    SELECT s.subject_id, i.arm, date_diff('day', i.start_date, s.date) / 7 AS week,
           max(score) FILTER (instrument = 'pain_nrs') AS pain_nrs,
           max(score) FILTER (instrument = 'odi') AS odi
    FROM {scores} s JOIN {interventions} i USING (subject_id) GROUP BY ALL
    ORDER BY ALL"""


def _direct(store: Store, name: str) -> str:
    files = ", ".join("'" + str(f.resolve()).replace("'", "''") + "'" for f in store.files(name))
    return f"read_parquet([{files}], hive_partitioning=false)"


def _median_s(fn, repeat: int) -> float:
    fn()  # warm: files in the page cache, connection and views made
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path("data/processed/demo"))
    ap.add_argument("--raw", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args(argv)
    if args.raw is not None:
        import os
        import tempfile

        from cxlab.ingest import ingest_interventions, ingest_surveys

        os.environ.setdefault("CXLAB_KEY", "bench-sql-key-not-secret-0123456789abcdef")
        args.store = Path(tempfile.mkdtemp(prefix="bench-sql-")) / "store"
        ingest_surveys([args.raw / "surveys.csv"], store=args.store)
        ingest_interventions([args.raw / "interventions.csv"], store=args.store)
    store = Store(args.store)
    if not store.files("scores") or not store.files("interventions"):
        print(f"{args.store}: no scores or interventions; run `make demo` first", file=sys.stderr)
        return 2
    query = COHORT.format(scores="scores", interventions="interventions")
    direct = COHORT.format(
        scores=_direct(store, "scores"), interventions=_direct(store, "interventions")
    )
    ours, theirs = store.sql(query), duckdb.sql(direct).df()
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)  # the same answer
    n_parts = sum(len(store.keys(t)) for t in store.tables())
    t_duck = _median_s(lambda: duckdb.sql(direct).df(), args.repeat)
    t_store = _median_s(lambda: store.sql(query), args.repeat)
    t_cold = _median_s(lambda: Store(args.store).sql(query), max(3, args.repeat // 5))
    print(f"store {args.store}: {n_parts} parts; cohort query -> {len(ours)} rows")
    print(f"duckdb.sql on read_parquet([...])  {t_duck * 1e3:8.1f} ms")
    for label, t in (("reused Store", t_store), ("new Store per query", t_cold)):
        name = f"Store.sql ({label})"
        print(f"{name:<35}{t * 1e3:8.1f} ms  ratio {t / t_duck:.2f}x")
    print("target (issue 19): Store.sql within 1.5x of DuckDB")
    if args.raw is not None:
        import shutil

        shutil.rmtree(args.store.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
