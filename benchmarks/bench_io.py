"""Speed of the C3D reader against ezc3d, measured in the same run.

Writes (with ezc3d) a realistic large C3D into a temporary directory: 60 markers
at 200 Hz for 30 s (with gaps), 24 analog channels at 2 kHz of which 12 are two
TYPE-2 force plates carrying a walking-like load, float storage (> 10 MB).  Then
prints the best-of-N time of

* ``read_c3d(path, engine="fast")``;
* ``ezc3d.c3d(path, extract_forceplat_data=True)`` (the baseline);
* ingest = ``read_c3d`` + ``Recording.to_tables`` + ``Store.write`` of the
  markers, analogs, forces and events tables, with each stage timed;

and the ratios (targets: fast >= 5x faster than ezc3d; ingest <= 1.0 x ezc3d); the same
speed-up on every real C3D file with force plates under ``--real`` (default
``../shared/data/real`` beside the checkout, or ``CXLAB_REAL_DATA``; target >= 20x; medians of
alternated calls, with the time 20x needs and the floor no reader goes below: reading the
bytes and decoding header and parameters; ``--real-only`` stops there); then the
peak memory of one ``read_c3d`` in a fresh subprocess, as a multiple of the file size
(the ``tracemalloc`` peak, which counts NumPy's buffers, and the growth of the RSS
high-water mark ``VmHWM`` over the RSS after the imports, Linux), and the peak RSS growth of a
whole ``cxlab.ingest.ingest`` of the file (worker included; target <= 5x the file).

Usage::

    .venv/bin/python benchmarks/bench_io.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import ezc3d
import numpy as np

from cxlab.io._c3d_header import read_header, read_parameters
from cxlab.io.c3d import read_c3d
from cxlab.store import Store

N_MARKERS, RATE, SECONDS, N_CH, N_SUB = 60, 200, 30, 24, 10


def write_trial(path: Path, *, seed: int = 0) -> None:
    """A 30 s, 60-marker, 24-channel, two-plate trial written by ezc3d."""
    rng = np.random.default_rng(seed)
    n = RATE * SECONDS
    t = np.arange(n) / RATE
    base = rng.uniform(-500, 1500, size=(3, N_MARKERS, 1))
    wobble = 30 * np.sin(2 * np.pi * rng.uniform(0.5, 2, size=(3, N_MARKERS, 1)) * t)
    pts = np.ones((4, N_MARKERS, n))
    pts[:3] = base + wobble + rng.normal(0, 0.2, size=(3, N_MARKERS, n))
    residuals = np.abs(rng.normal(0.8, 0.2, size=(1, N_MARKERS, n)))
    gaps = rng.random((N_MARKERS, n)) < 0.01
    residuals[0, gaps] = -1.0
    na = n * N_SUB
    ta = np.arange(na) / (RATE * N_SUB)
    analogs = rng.normal(0, 0.01, size=(N_CH, na))
    for k in range(2):  # plate k: channels 6k..6k+5 (Fx Fy Fz Mx My Mz), stance every ~1.1 s
        phase = (ta + 0.55 * k) % 1.1
        load = np.where(phase < 0.65, np.sin(np.pi * phase / 0.65), 0.0)
        analogs[6 * k + 2] = -750 * load  # AMTI-style: loaded plate reads Fz < 0
        analogs[6 * k + 0] = 60 * load * np.cos(2 * np.pi * phase)
        analogs[6 * k + 1] = 20 * load
        analogs[6 * k + 3] = 750 * load * 50 * np.sin(ta)
        analogs[6 * k + 4] = -750 * load * (120 * phase - 40)
        analogs[6 * k + 5] = 2000 * load
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [RATE]
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    c["parameters"]["POINT"]["LABELS"]["value"] = [f"M{i:02d}" for i in range(N_MARKERS)]
    c["data"]["points"] = pts
    c["data"]["meta_points"]["residuals"] = residuals
    c["parameters"]["ANALOG"]["RATE"]["value"] = [RATE * N_SUB]
    c["parameters"]["ANALOG"]["LABELS"]["value"] = [f"A{i:02d}" for i in range(N_CH)]
    c["parameters"]["ANALOG"]["UNITS"]["value"] = ["N", "N", "N", "Nmm", "Nmm", "Nmm"] * 2 + [
        "V"
    ] * (N_CH - 12)
    c["data"]["analogs"] = analogs[None]
    fp = c["parameters"]["FORCE_PLATFORM"]
    fp["USED"]["value"] = [2]
    fp["TYPE"]["value"] = [2, 2]
    fp["ZERO"]["value"] = [0, 0]
    corners = np.array(
        [
            [[500, 0, 0], [0, 0, 0], [0, 400, 0], [500, 400, 0]],
            [[1100, 0, 0], [600, 0, 0], [600, 400, 0], [1100, 400, 0]],
        ],
        float,
    )
    fp["CORNERS"]["value"] = corners.transpose(2, 1, 0)
    fp["ORIGIN"]["value"] = np.array([[0.0, 0.0, -40.0], [0.0, 0.0, -40.0]]).T
    fp["CHANNEL"]["value"] = np.arange(1, 13).reshape(2, 6).T
    c.write(str(path))


def best(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` single calls, s."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def ingest(path: Path, store: Store, timings: dict[str, float]) -> None:
    t0 = time.perf_counter()
    rec = read_c3d(path, engine="fast")
    t1 = time.perf_counter()
    tables = rec.to_tables("0123456789abcdef")
    t2 = time.perf_counter()
    for name, df in tables.items():
        part = "S01" if name != "events" else None
        store.write(name, df, key="0123456789abcdef", partition=part)
    t3 = time.perf_counter()
    for k, v in (("read", t1 - t0), ("to_tables", t2 - t1), ("store_write", t3 - t2)):
        timings[k] = min(timings.get(k, np.inf), v)


_MEMORY_PROBE = """
import sys, tracemalloc, warnings
from cxlab.io._c3d_header import read_header, read_parameters
from cxlab.io.c3d import read_c3d
warnings.simplefilter("ignore")
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark after the imports
base = status("VmRSS:")
tracemalloc.start()
rec = read_c3d(sys.argv[1], engine="fast")
peak = tracemalloc.get_traced_memory()[1]
print(peak, status("VmHWM:") - base)
"""


_INGEST_PROBE = """
import resource, sys
from cxlab.ingest import ingest
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
base = status("VmRSS:")
rep = ingest([sys.argv[1]], store=sys.argv[2], jobs=1, progress=False)
assert len(rep.ingested) == 1, rep.summary()
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the worker, forked
print(max(child, status("VmHWM:")) - base)
"""


def ingest_memory(path: Path, store: Path) -> float:
    """Peak RSS growth of a whole ``cxlab.ingest.ingest`` of one file (the forked worker's
    high-water mark, or the parent's, over the parent's RSS before the ingest), bytes."""
    out = subprocess.run(
        [sys.executable, "-c", _INGEST_PROBE, str(path), str(store)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[-1])


def read_memory(path: Path) -> tuple[float, float]:
    """(tracemalloc peak, RSS high-water growth) of one read_c3d in a fresh process, bytes."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path)], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def real_files(folder: Path) -> list[Path]:
    """The C3D files under ``folder`` that ezc3d reads and that have force plates."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() != ".c3d":
            continue
        try:
            c = ezc3d.c3d(str(p), extract_forceplat_data=True)
        except Exception:
            continue  # ezc3d cannot read it (MIPS, empty): no baseline
        if c["data"].get("platform"):
            out.append(p)
    return out


def floor(path: Path) -> None:
    """What any reader of the file does before its data: read the bytes and decode the
    header and the parameter section (cxlab's parser, one Python object per parameter)."""
    buf = path.read_bytes()
    read_parameters(buf, path, read_header(buf, path))


def real_ratios(folder: Path, repeat: int) -> None:
    """Median of ``repeat`` alternated calls of read_c3d and of ezc3d on each real file with
    plates (one warm-up call each first)."""
    import warnings

    files = real_files(folder)
    if not files:
        print(f"no real C3D files with force plates under {folder}")
        return
    worst, t_all, e_all = np.inf, 0.0, 0.0
    print(f"real C3D files with force plates ({folder}):")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in files:
            read_c3d(p, engine="fast")  # warm-up: page cache, first-call imports
            ezc3d.c3d(str(p), extract_forceplat_data=True)
            # alternated call by call, medians: on a shared machine a burst of load then
            # slows both contenders alike instead of whichever ran during it
            ts, es, fs, bs = [], [], [], []
            for _ in range(repeat):
                ts.append(best(lambda p=p: read_c3d(p, engine="fast"), 1))
                es.append(best(lambda p=p: ezc3d.c3d(str(p), extract_forceplat_data=True), 1))
                fs.append(best(lambda p=p: floor(p), 1))
                bs.append(best(p.read_bytes, 1))
            t, e, f, b = (float(np.median(x)) for x in (ts, es, fs, bs))
            worst, t_all, e_all = min(worst, e / t), t_all + t, e_all + e
            print(
                f"  {p.name:<40} {p.stat().st_size / 1e3:5.0f} kB {t * 1e3:7.2f} ms vs ezc3d "
                f"{e * 1e3:7.2f} ms = {e / t:5.1f} x  (20 x needs {e / 20 * 1e3:6.3f} ms; "
                f"bytes {b * 1e3:5.3f} ms, + header and parameters {f * 1e3:5.3f} ms)"
            )
    print(
        f"  worst {worst:.1f} x, summed {e_all / t_all:.1f} x over {len(files)} files "
        f"(target >= 20; medians of {repeat} alternated calls, load average "
        f"{os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    default_real = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    ap.add_argument(
        "--real",
        type=Path,
        default=Path(os.environ.get("CXLAB_REAL_DATA", default_real)),
        help="folder of real C3D files (default ../shared/data/real or CXLAB_REAL_DATA)",
    )
    ap.add_argument(
        "--real-only", action="store_true", help="only the real files, not the 11.5 MB trial"
    )
    args = ap.parse_args()
    real_ratios(args.real, args.repeat)
    if args.real_only:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.c3d"
        write_trial(path)
        size_mb = path.stat().st_size / 1e6
        rec = read_c3d(path, engine="fast")
        print(
            f"file: {size_mb:.1f} MB, {rec.n_frames} frames x {rec.markers.shape[1]} markers "
            f"@ {rec.point_rate_hz:g} Hz, {rec.analogs.shape[1]} analogs @ "
            f"{rec.analog_rate_hz:g} Hz, {len(rec.platforms)} plates"
        )
        # interleaved, so a busy machine slows every contender alike; best of N each
        t_fast = t_ez = t_ingest = np.inf
        timings: dict[str, float] = {}
        for i in range(args.repeat):
            t_fast = min(t_fast, best(lambda: read_c3d(path, engine="fast"), 1))
            t_ez = min(t_ez, best(lambda: ezc3d.c3d(str(path), extract_forceplat_data=True), 1))
            t_ingest = min(
                t_ingest, best(lambda i=i: ingest(path, Store(Path(tmp) / f"store{i}"), timings), 1)
            )
        rows = {k: len(v) for k, v in rec.to_tables("0123456789abcdef").items()}
        peak, rss = read_memory(path)
        ingest_rss = ingest_memory(path, Path(tmp) / "store-memory")
        size = path.stat().st_size
    print(f"read_c3d(engine='fast'):                      {t_fast * 1e3:8.1f} ms")
    print(f"ezc3d.c3d(extract_forceplat_data=True):       {t_ez * 1e3:8.1f} ms")
    print(f"speed-up fast vs ezc3d:                       {t_ez / t_fast:8.1f} x  (target >= 5)")
    print(
        f"ingest (read + to_tables + Store.write):      {t_ingest * 1e3:8.1f} ms  "
        f"= {t_ingest / t_ez:.2f} x ezc3d read  (target <= 1.0)"
    )
    print(
        "  stages (best of each): " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in timings.items())
    )
    print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    print(
        f"peak memory of read_c3d: tracemalloc {peak / 1e6:.0f} MB = {peak / size:.1f} x file, "
        f"max RSS growth {rss / 1e6:.0f} MB = {rss / size:.1f} x file"
    )
    print(
        f"peak memory of a whole ingest of the file: RSS growth {ingest_rss / 1e6:.0f} MB = "
        f"{ingest_rss / size:.1f} x file  (target <= 5)"
    )


if __name__ == "__main__":
    main()
