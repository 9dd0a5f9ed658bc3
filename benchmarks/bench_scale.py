"""A 10,000-recording store: ingest of 100 new files, features on them, cohort queries.

Issue 19's "Done when": a store of ``--size`` recordings written directly as Parquet by
``bench_store.build_store`` (recordings, sessions and a small ``forces`` part per recording,
and the catalog listing them, exactly as ingest leaves them; the old recordings are
``static`` trials, a task declared without feature functions, so ``cxlab features`` has
nothing to compute for them but still reads the whole ``recordings`` table and decides so
for each), then, each timed:

1. ``ingest`` of ``--new`` new two-plate force CSV files (an analytic CMJ from the tests'
   ``featuresim.cmj_force``, 1 kHz, 4.5 s, unique noise per file), ``--jobs`` workers;
2. ``extract_features`` (what ``cxlab features`` runs), which computes the new files only;
3. three ``Store.sql`` cohort queries on a fresh ``Store`` (as one ``cxlab sql`` call):
   recordings per task over the whole store, the new trials' mean CMJ jump height per
   subject (features joined to recordings), and a scan of every ``forces`` part
   (``count(*)``, ``max(fz)`` over all 10,000 + ``--new`` parts).

The same steps on an empty store are timed in the same run, as the baseline.

Usage::

    .venv/bin/python benchmarks/bench_scale.py                  # 10,000 + 100, 2 jobs
    .venv/bin/python benchmarks/bench_scale.py --size 2000 --new 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import build_store

from cxlab.features.runner import extract_features
from cxlab.ingest import ingest
from cxlab.store import Store
from featuresim import cmj_force

QUERIES = {
    "recordings per task": "SELECT task, count(*) AS n FROM recordings GROUP BY 1 ORDER BY 1",
    "jump height per subject": (
        "SELECT r.subject_id, avg(f.value) AS jump_m, count(*) AS n "
        "FROM features f JOIN recordings r USING (recording_id) "
        "WHERE f.feature = 'cmj_jump_height_impulse_m' GROUP BY 1 ORDER BY 1"
    ),
    "every forces part": "SELECT count(*) AS n, max(fz) AS fz_max FROM forces",
}


def write_new_files(folder: Path, n: int) -> None:
    """``n`` two-plate CMJ force exports (``time,left_fz,right_fz``), unique per file."""
    folder.mkdir(parents=True)
    for i in range(n):
        fz, _ = cmj_force(noise_n=2.0, seed=1000 + i, v_to=2.4 + 0.002 * i)
        t = np.arange(fz.size) / 1000.0
        body = np.column_stack([t, 0.49 * fz, 0.51 * fz])
        name = f"sub-{i // 4:03d}_ses-1_task-cmj_run-{i % 4 + 1}.csv"
        np.savetxt(
            folder / name,
            body,
            delimiter=",",
            fmt="%.4f",
            header="time,left_fz,right_fz",
            comments="",
        )


def run(root: Path, size: int, new: int, jobs: int) -> dict[str, float]:
    """The timed steps on a store of ``size`` old recordings; returns seconds per step."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    build_store(root / "store", size, task="static")
    out["build (direct Parquet)"] = time.perf_counter() - t0
    write_new_files(root / "raw", new)
    store = Store(root / "store")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        rep = ingest([root / "raw"], store=store, jobs=jobs, progress=False)
        out[f"ingest {new} new files"] = time.perf_counter() - t0
        assert len(rep.ingested) == new, rep.summary()
        t0 = time.perf_counter()
        feats = extract_features(store, jobs=jobs, progress=False)
        out[f"features on the {new}"] = time.perf_counter() - t0
    with_features = Store(root / "store").table("features", columns=["recording_id"])
    assert with_features["recording_id"].nunique() == new, feats
    for label, query in QUERIES.items():
        t0 = time.perf_counter()
        df = Store(root / "store").sql(query)
        out[f"query: {label}"] = time.perf_counter() - t0
        if label == "every forces part":
            assert int(df["n"].iloc[0]) > 0
        if label == "recordings per task":
            assert int(df["n"].sum()) == size + new, df
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("CXLAB_KEY", "bench-scale-key-not-secret-0123456789abcdef")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        base = run(Path(tmp) / "empty", 0, args.new, args.jobs)
        big = run(Path(tmp) / "big", args.size, args.new, args.jobs)
    print(f"{'step':<32} {'empty store':>12} {f'{args.size:,} recordings':>20} {'ratio':>7}")
    for step, t in big.items():
        b = base[step]
        ratio = f"{t / b:6.2f}x" if b > 1e-3 else "      -"
        print(f"{step:<32} {b:11.2f}s {t:19.2f}s {ratio}")


if __name__ == "__main__":
    main()
