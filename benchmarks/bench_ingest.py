"""Ingest speed against pyarrow writing the same rows, and the store's size against the raw
files, measured in the same run.

Synthesises a cohort (:func:`cxlab.synth.files.write_cohort`, as ``cxlab demo`` does; smaller
by default), then

* ingests it with ``cxlab.ingest.ingest(..., jobs=1)`` (one worker process: one core);
* reads every signal table back from the store (Arrow) and times pyarrow writing the same
  rows (``pyarrow.parquet.write_table``, zstd, its default encodings) two ways: one file per
  table and subject (the fewest files the store's partitioning allows), and one file per
  table and recording (the store's parts); and a third, one file per table and subject with
  the store's own options (:func:`cxlab.store.parquet_options`: the encodings the store's
  bytes need; faster than pyarrow's defaults, which try dictionaries on every float
  column), the strictest baseline;
* prints the ratios (target: ingest <= 2x pyarrow), of wall time and of CPU time (this
  process and its reaped children: on a shared machine the CPU ratio moves less with the
  load, but it leaves out the time the store waits for its fsyncs), and the store/raw size
  ratio (target <= 1; raw = every file the cohort wrote, store = every file under the
  store).

Usage::

    .venv/bin/python benchmarks/bench_ingest.py --subjects 6 --sessions 2
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cxlab.ingest import ingest
from cxlab.ingest._worker import SIGNAL_TABLES
from cxlab.schemas import schema_of
from cxlab.store import Store, parquet_options
from cxlab.synth.files import write_cohort


def folder_bytes(path: Path) -> int:
    """Bytes of every regular file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the ingest's pool workers), s."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pyarrow_write(
    tables: dict[str, pa.Table], subject_of: dict[str, str], out: Path
) -> tuple[dict, dict]:
    """Wall and CPU seconds pyarrow takes to write ``tables`` (one file per table and subject;
    one per table and recording; one per table and subject with the store's own Parquet
    options: zstd level 3 and its encodings by column type, the work an encoder must do
    for the store's bytes)."""
    times, cpu = {}, {}
    for layout in ("per_subject", "per_recording", "per_subject_store_options"):
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        for name, t in tables.items():
            rid = t.column("recording_id")
            by = pa.array([subject_of.get(r, "none") for r in rid.unique().to_pylist()])
            keys = (
                rid.unique() if layout == "per_recording" else pa.array(sorted(set(by.to_pylist())))
            )
            for i, k in enumerate(keys.to_pylist()):
                if layout == "per_recording":
                    mask = pc.equal(rid, k)
                else:
                    mine = [r for r, s in subject_of.items() if s == k]
                    mask = pc.is_in(rid, value_set=pa.array(mine, pa.string()))
                part = t.filter(mask)
                d = out / layout / name
                d.mkdir(parents=True, exist_ok=True)
                if layout == "per_subject_store_options":
                    pq.write_table(part, d / f"part-{i}.parquet", **parquet_options(part.schema))
                else:
                    pq.write_table(part, d / f"part-{i}.parquet", compression="zstd")
        times[layout] = time.perf_counter() - t0
        cpu[layout] = cpu_seconds() - c0
    return times, cpu


def real_size_ratio(folder: Path, tmp: Path) -> None:
    """Store/raw size of every C3D file under ``folder`` (the real files) ingested at once."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".c3d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = ingest(files, store=tmp / "real-store", jobs=1, progress=False)
    landed = {o.sha256 for o in rep.ingested}
    raw_b = sum(p.stat().st_size for p in files if _sha256(p) in landed)
    store_b = folder_bytes(tmp / "real-store")
    print(
        f"real C3D files ({folder}): {len(rep.ingested)} of {len(files)} ingested, store "
        f"{store_b / 1e6:.1f} MB / raw {raw_b / 1e6:.1f} MB = {store_b / raw_b:.2f} x"
    )


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=6, help="cohort size (default 6)")
    ap.add_argument("--sessions", type=int, default=2, help="sessions each (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    default_real = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    ap.add_argument(
        "--real",
        type=Path,
        default=Path(os.environ.get("CXLAB_REAL_DATA", default_real)),
        help="folder of real C3D files for the store/raw size on real data",
    )
    args = ap.parse_args()
    if args.real.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            real_size_ratio(args.real, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        raw, store_dir = Path(tmp) / "raw", Path(tmp) / "store"
        write_cohort(
            raw, n_subjects=args.subjects, n_sessions=args.sessions, seed=args.seed,
            jobs=1, progress=False,
        )  # fmt: skip
        n_files = sum(1 for p in raw.rglob("*") if p.is_file())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c0 = cpu_seconds()
            t0 = time.perf_counter()
            rep = ingest([raw], store=store_dir, jobs=1, progress=False)
            t_ingest = time.perf_counter() - t0
            c_ingest = cpu_seconds() - c0  # the worker is reaped when its pool closes
        store = Store(store_dir)
        rec = store.table("recordings", columns=["recording_id", "subject_id"])
        subject_of = dict(zip(rec["recording_id"], rec["subject_id"].fillna("none"), strict=True))
        tables = {}  # read back through the store (it alone knows the files)
        for name in SIGNAL_TABLES:
            parts = sorted(store.parts(name).values())
            if parts:
                df = store.read_parts(parts, table=name)  # float32 samples come back widened
                schema = schema_of(name).arrow_schema()  # pyarrow writes them as stored
                tables[name] = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
        rows = {k: v.num_rows for k, v in tables.items()}
        times, cpu = pyarrow_write(tables, subject_of, Path(tmp) / "pyarrow")
        raw_b, store_b = folder_bytes(raw), folder_bytes(store_dir)
        by_table = {n: folder_bytes(store_dir / n) for n in store.tables()}
    print(
        f"cohort: {args.subjects} subjects x {args.sessions} sessions, {n_files} files, "
        f"{len(rep.ingested)} recordings ingested, {sum(rows.values()):,} signal rows "
        f"({', '.join(f'{k} {v:,}' for k, v in rows.items())}); {os.cpu_count()} cores"
    )
    print(
        f"cxlab ingest --jobs 1:                         {t_ingest:8.2f} s  "
        f"(CPU {c_ingest:.2f} s, worker and parent; load {os.getloadavg()[0]:.1f})"
    )
    for layout, t in times.items():
        what = layout[4:].replace("_store_options", ", store's options")
        print(
            f"pyarrow write, one file per table and {what:<9}: {t:8.2f} s   "
            f"ingest = {t_ingest / t:5.2f} x  (target <= 2); CPU {cpu[layout]:.2f} s, "
            f"ingest = {c_ingest / cpu[layout]:5.2f} x"
        )
    print(
        f"store {store_b / 1e6:.1f} MB / raw {raw_b / 1e6:.1f} MB = {store_b / raw_b:.2f} x  "
        "(target <= 1); by table: "
        + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(by_table.items()) if v > 1e5)
    )


if __name__ == "__main__":
    main()
