"""Speed of the feature library, as ratios against a baseline measured in the same run.

1. Per-trial time of ``cmj_metrics`` (two plates, 1000 Hz), ``cop_metrics`` (30 s at
   100 Hz) and the battery (``sj_metrics``, a four-jump trial split by ``jump_segments``,
   ``dj_metrics``, ``imtp_metrics``; two plates, 1000 Hz) against one ``numpy.cumsum``
   pass over the same array.
2. ``cxlab features`` throughput (``extract_features``, what the command runs) on a
   synthetic store of ``--trials`` recordings (half CMJ, half single-leg balance) built
   from the analytic generators of the tests (``tests/featuresim.py``), with ``--jobs 1``
   (trials/s per core) and with ``--jobs`` workers, against the feature functions alone
   (the same ``features.toml`` functions called on the same trials held in memory, in
   the same run), and with the curve builders ``[curves.tasks]`` runs for these tasks
   (the CMJ's force, shear and CoP curves): the ratio is the runner's overhead (reading,
   building tables, validating, writing parts); a second ``--jobs 1`` run prints where
   its CPU time goes (reading, functions, curves, tables, validation, parts, commits);
   that run replaces the subject parts the first one wrote.

Usage::

    .venv/bin/python benchmarks/bench_features.py --trials 1000 --jobs 2
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from cxlab.features import runner
from cxlab.features.balance import cop_metrics
from cxlab.features.battery import dj_metrics, jump_segments, sj_metrics
from cxlab.features.config import read_config
from cxlab.features.curve_tasks import trial_curves
from cxlab.features.isometric import imtp_metrics
from cxlab.features.jump import cmj_metrics
from cxlab.features.runner import extract_features
from cxlab.features.tasks import FUNCTIONS, Trial
from cxlab.ingest._worker import BATCH_FILES
from cxlab.schemas import validate
from cxlab.store import Store, parquet_options
from featuresim import cmj_force, cop_normal, dj_force, imtp_force, sj_force

COLS = ["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"]
_PLATE_SIGNALS = ("fx", "fy", "fz", "cop_x", "cop_y")  # what the runner hands a trial


def best_of(fn, *, repeat=7, number=20) -> float:
    """Best mean time of one call, s."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def per_trial() -> None:
    fz, _ = cmj_force(noise_n=1.0)
    left, right = 0.48 * fz, 0.52 * fz
    cop = cop_normal(n=3000, seed=1)
    t_cmj = best_of(lambda: cmj_metrics(fz, rate_hz=1000.0, fz_left=left, fz_right=right))
    t_cmj0 = best_of(lambda: np.cumsum(fz))
    t_cop = best_of(lambda: cop_metrics(cop, rate_hz=100.0))
    t_cop0 = best_of(lambda: np.cumsum(cop, axis=0))
    print(
        f"cmj_metrics: {t_cmj * 1e3:.3f} ms/trial ({fz.size} samples x 2 plates); "
        f"{t_cmj / t_cmj0:.0f} x one numpy.cumsum of fz ({t_cmj0 * 1e6:.1f} us)"
    )
    print(
        f"cop_metrics: {t_cop * 1e3:.3f} ms/trial ({cop.shape[0]} samples); "
        f"{t_cop / t_cop0:.0f} x one numpy.cumsum of the CoP ({t_cop0 * 1e6:.1f} us)"
    )
    print(f"cmj + balance metrics of one trial: {(t_cmj + t_cop) * 1e3:.2f} ms")
    battery()


def battery() -> None:
    """Per-trial time of the battery's metric functions (two plates, 1000 Hz)."""
    sj, _ = sj_force(noise_n=1.0)
    four = np.concatenate(
        [
            sj_force(v_to=v, after_s=0.5, noise_n=1.0, seed=k)[0]
            for k, v in enumerate((2.0, 2.2, 2.4, 2.1))
        ]
    )
    dj, _ = dj_force(noise_n=1.0)
    im, _ = imtp_force(noise_n=1.0)

    def sj4():
        for a, b in jump_segments(four, rate_hz=1000.0):
            sj_metrics(four[a:b], rate_hz=1000.0)

    cases = [
        (
            "sj_metrics",
            sj,
            lambda: sj_metrics(sj, rate_hz=1000.0, fz_left=0.48 * sj, fz_right=0.52 * sj),
        ),
        ("jump_segments + 4 x sj_metrics", four, sj4),
        (
            "dj_metrics",
            dj,
            lambda: dj_metrics(dj, rate_hz=1000.0, fz_left=0.48 * dj, fz_right=0.52 * dj),
        ),
        (
            "imtp_metrics",
            im,
            lambda: imtp_metrics(im, rate_hz=1000.0, fz_left=0.48 * im, fz_right=0.52 * im),
        ),
    ]
    for name, f, fn in cases:
        t = best_of(fn)
        t0 = best_of(lambda f=f: np.cumsum(f))
        print(
            f"{name}: {t * 1e3:.3f} ms/trial ({f.size} samples); {t / t0:.0f} x one "
            f"numpy.cumsum of fz ({t0 * 1e6:.1f} us)"
        )


def simulate_trials(n: int) -> list[tuple[dict, dict]]:
    """``n`` recordings: (``recordings`` row, plate number -> columns of ``forces``)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        name = f"trial{i}"
        rid = hashlib.sha256(name.encode()).hexdigest()[:16]
        task = "cmj" if i % 2 == 0 else "balance_left"
        if task == "cmj":
            fz, _ = cmj_force(
                mass_kg=rng.uniform(55, 95), v_to=rng.uniform(1.8, 3.0), noise_n=1.0, seed=i
            )
            plates = {1: {"fz": 0.5 * fz}, 2: {"fz": 0.5 * fz}}
            rate = 1000.0
        else:
            cop = cop_normal(n=3000, seed=i)
            plates = {1: {"fz": np.full(3000, 700.0), "cop_x": cop[:, 0], "cop_y": cop[:, 1]}}
            rate = 100.0
        plates = {k: {c: d.get(c, np.zeros(d["fz"].size)) for c in COLS} for k, d in plates.items()}
        rec = {
            "recording_id": rid,
            "subject_id": hashlib.sha256(f"s{i % 50}".encode()).hexdigest()[:12],
            "session": "1",
            "task": task,
            "trial": str(i),
            "source_path": f"{name}.c3d",
            "source_sha256": hashlib.sha256(name.encode()).hexdigest(),
            "format": "c3d",
            "vendor": None,
            "point_rate_hz": np.nan,
            "analog_rate_hz": rate,
            "n_frames": 0,
            "first_frame": 1,
        }
        out.append((rec, plates))
    return out


def build_store(
    path: Path, trials: list[tuple[dict, dict]], *, per_recording: bool = False
) -> Store:
    """The trials as a store, committed in one transaction: each subject's ``forces`` in
    shared parts of up to :data:`cxlab.ingest._worker.BATCH_FILES` recordings, as one
    ingest run of the files writes them (``per_recording``: one part a recording, as
    ingest wrote them before batches, or as runs of one file each do)."""
    st = Store(path)
    by_subject: dict[str, list[pa.Table]] = {}
    with st.transaction() as tx:
        for rec, plates in trials:
            frames = []
            for k, d in plates.items():
                m = d["fz"].size
                df = pd.DataFrame(d)
                df.insert(0, "time_s", np.arange(m) / rec["analog_rate_hz"])
                df.insert(0, "sample", np.arange(m, dtype=np.int64))
                df.insert(0, "plate", np.int32(k))
                df.insert(0, "recording_id", rec["recording_id"])
                frames.append(df)
            forces = pd.concat(frames, ignore_index=True)
            if per_recording:
                tx.write("forces", forces, key=rec["recording_id"], partition=rec["subject_id"])
            else:
                by_subject.setdefault(rec["subject_id"], []).append(validate(forces, "forces"))
        for subject, tables in sorted(by_subject.items()):
            tables.sort(key=lambda t: t.column("recording_id")[0].as_py())
            for i in range(0, len(tables), BATCH_FILES):
                batch = pa.concat_tables(tables[i : i + BATCH_FILES])
                tx.add([st.stage_many("forces", batch, partition=subject)])
        tx.write("recordings", pd.DataFrame([rec for rec, _ in trials]), key="all")
    return st


def functions_alone(trials: list[tuple[dict, dict]]) -> tuple[float, float, int]:
    """CPU seconds to run the configured feature functions, then the configured curve
    builders (``[curves.tasks]``: the CMJ's force, shear and CoP curves), on every trial
    held in memory (the arrays the runner hands them), and the number of values the
    functions return."""
    cfg = read_config(None)
    held = []
    for rec, plates in trials:
        t = Trial(task=rec["task"], analog_rate_hz=rec["analog_rate_hz"])
        t.plates = {k: {c: d[c] for c in _PLATE_SIGNALS} for k, d in plates.items()}
        held.append(t)
    n = 0
    with np.errstate(all="ignore"):
        t0 = time.process_time()
        for t in held:
            for fn in cfg.functions(t.task):
                n += len(FUNCTIONS[fn](t, cfg))
        t1 = time.process_time()
        for t in held:
            trial_curves(t, cfg)
        t2 = time.process_time()
    return t1 - t0, t2 - t1, n


class Split:
    """CPU time spent inside named steps of the runner (``--jobs 1``: this process), by
    wrapping them for the duration of one run; steps nest (``curves`` is inside
    ``compute``)."""

    STEPS = (
        ("read forces (one scan a batch)", runner, "_scan"),
        ("feature functions + curves + joint tables", runner, "_compute"),
        ("  of which curve builders", runner, "trial_curves"),
        ("build Arrow tables", runner, "_curve_columns"),
        ("build Arrow tables", runner, "_features_table"),
        ("list standing subject parts' recordings", runner, "_held_parts"),
        ("validate (schemas.validate)", runner, "validate"),
        ("stage parts (Store.stage)", Store, "stage"),
        ("commit (Store.commit)", Store, "commit"),
    )

    def __init__(self):
        self.cpu: dict[str, float] = {}

    def __enter__(self):
        self._saved = []
        for label, owner, name in self.STEPS:
            fn = getattr(owner, name)
            self._saved.append((owner, name, fn))
            setattr(owner, name, self._timed(label, fn))
        return self

    def _timed(self, label, fn):
        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - t

        return wrapper

    def __exit__(self, *exc):
        for owner, name, fn in reversed(self._saved):
            setattr(owner, name, fn)


def throughput(n: int, jobs: int, *, per_recording: bool = False) -> None:
    trials = simulate_trials(n)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        st = build_store(Path(tmp) / "store", trials, per_recording=per_recording)
        print(f"built a store of {n} trials in {time.perf_counter() - t:.1f} s")
        t_fn, t_curves, n_values = functions_alone(trials)
        both = t_fn + t_curves
        print(
            f"feature functions alone: {n / t_fn:.0f} trials/s per core ({t_fn:.2f} CPU s, "
            f"{t_fn / n * 1e3:.2f} ms/trial, {n_values} values); with the curve builders: "
            f"{n / both:.0f} trials/s per core ({both:.2f} CPU s, {both / n * 1e3:.2f} ms/trial)"
        )
        # --jobs 1 runs in this process: its CPU time is the cost per core even on a
        # machine shared with other work (wall time is printed beside it)
        c0 = time.process_time()
        r = extract_features(st, jobs=1, force=True, progress=False)
        cpu = time.process_time() - c0
        assert r.n_quarantined == 0 and r.n_rows == n_values, r.quarantine
        print(
            f"cxlab features --jobs 1: {n / cpu:.0f} trials/s per core ({cpu:.2f} CPU s, "
            f"{r.elapsed_s:.2f} s wall, {r.n_rows} rows); {cpu / both:.1f} x the functions "
            f"and curve builders alone (runner overhead {(cpu - both) / n * 1e3:.2f} ms/trial)"
        )
        with Split() as split:
            c0 = time.process_time()
            extract_features(st, jobs=1, force=True, progress=False)
            cpu = time.process_time() - c0
        print(f"where --jobs 1 spends its CPU time (a second run, {cpu:.2f} CPU s):")
        for label in dict.fromkeys(label for label, _, _ in Split.STEPS):
            t = split.cpu.get(label, 0.0)
            print(f"  {label:45s} {t:6.2f} s  {t / cpu:6.1%}  {t / n * 1e3:.2f} ms/trial")
        floors(st, n)
        if jobs > 1:
            r = extract_features(st, jobs=jobs, force=True, progress=False)
            print(
                f"cxlab features --jobs {jobs}: {n / r.elapsed_s:.0f} trials/s wall "
                f"({r.elapsed_s:.2f} s, {r.n_rows} rows)"
            )


def _median_cpu(fn, *, repeat: int = 5) -> float:
    """Median CPU seconds of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return float(np.median(times))


def floors(st: Store, n: int) -> None:
    """What the runner's reading and writing cost as the store lays the tables out, and
    what the alternatives would cost, on the parts the run just wrote (CPU s / ``n``
    trials; variants alternate, medians of 5): the forces parts read by the store, and
    decoded from bytes already in memory (the floor without file I/O, one read a
    file); the curves' label columns built from one value a curve, by an Arrow
    ``take`` of repeated indices and by the run-end decode the runner uses (the same
    arrays); the features and curves parts written as :meth:`Store.stage` writes them
    (one subject a part), as one part a batch of ~64 recordings (fewer, larger writes),
    and with their label columns dictionary-encoded (what a store accepting dictionary
    columns would write: other bytes)."""
    forces = list(st.parts("forces").values())
    cols = ["plate", *_PLATE_SIGNALS]
    blobs = [(st.path / f).read_bytes() for f in sorted({p.file for p in forces})]

    def store_read():
        st.read_arrow_parts(forces, table="forces", columns=cols)

    def decode_only():
        for b in blobs:
            pq.ParquetFile(pa.BufferReader(b)).read(columns=cols, use_threads=False)

    subject = {
        name: [
            pq.read_table(st.path / p.file)
            for k, p in st.parts(name).items()
            if k.startswith("subject")
        ]
        for name in ("features", "curves")
    }
    per_batch = max(1, round(runner._BATCH * len(subject["features"]) / n))  # subjects
    batched = {
        name: [
            pa.concat_tables(ts[i : i + per_batch]).combine_chunks()
            for i in range(0, len(ts), per_batch)
        ]
        for name, ts in subject.items()
    }
    labelled = {
        name: [
            pa.table(
                [pc.dictionary_encode(c) if pa.types.is_string(c.type) else c for c in t.columns],
                names=t.column_names,
            ).combine_chunks()
            for t in ts
        ]
        for name, ts in subject.items()
    }

    # the curves' label columns as the runner builds them from one value a curve: an
    # Arrow take of np.repeat-ed indices (main before 2026-12-03 evening) against the
    # run-end decode of runner._repeated
    labels = []
    for t in subject["curves"]:
        starts = np.flatnonzero(t.column("node").to_numpy() == 0)  # a curve's first node
        per_curve = np.diff(starts, append=t.num_rows)
        for name in t.column_names:
            if pa.types.is_string(t.schema.field(name).type):
                labels.append((t.column(name).take(starts).to_pylist(), per_curve))

    def label_take():
        for values, k in labels:
            idx = np.repeat(np.arange(len(values), dtype=np.int64), k)
            pa.array(values, pa.string()).take(idx)

    def label_runs():
        for values, k in labels:
            runner._repeated(values, k)

    def writes(tables):
        def run():
            for t in tables["features"] + tables["curves"]:
                pq.write_table(t, io.BytesIO(), **parquet_options(t.schema))

        return run

    variants = {
        "read forces: Store.read_arrow_parts": store_read,
        "read forces: decode from memory (no file I/O)": decode_only,
        "curve label columns: Arrow take of indices": label_take,
        "curve label columns: run-end decode (runner)": label_runs,
        "write parts: one a subject (as stored)": writes(subject),
        f"write parts: one a batch ({per_batch} subjects)": writes(batched),
        "write parts: labels dictionary-encoded": writes(labelled),
    }
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(5):  # alternate the variants, medians below
        for label, fn in variants.items():
            cpu[label].append(_median_cpu(fn, repeat=1))
    rows = sum(t.num_rows for t in subject["curves"])
    print(
        f"floors (medians of 5, alternated; {rows} curve rows, {len(forces)} forces parts "
        f"in {len(blobs)} files):"
    )
    for label, ts in cpu.items():
        t = float(np.median(ts))
        print(f"  {label:48s} {t / n * 1e3:.3f} ms/trial")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--per-trial-only", action="store_true", help="Skip the throughput run.")
    ap.add_argument(
        "--per-recording",
        action="store_true",
        help="Store each recording's forces as a part of its own (the layout before batches).",
    )
    a = ap.parse_args()
    per_trial()
    if not a.per_trial_only:
        throughput(a.trials, a.jobs, per_recording=a.per_recording)


if __name__ == "__main__":
    main()
