"""Speed of :func:`cxlab.features.kinematics.joint_angles` and
:func:`cxlab.features.kinetics.joint_moments` per trial.

Times both on the real Nexus Plug-in Gait trial (``btk_PiG_Motion-FlatFoot-Full.c3d``,
315 frames at 100 Hz, 2 plates at 1 kHz) and on the same trial tiled to ``--tile`` times
its length, and reports each against a baseline measured in the same run: reading the
file with :func:`cxlab.io.read`. Prints best-of-``--repeat`` wall times.

Usage::

    .venv/bin/python benchmarks/bench_kinematics.py [--tile 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import timeit
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from cxlab import io
from cxlab.features.kinematics import detect_convention, joint_angles
from cxlab.features.kinetics import joint_moments

REAL = Path(
    os.environ.get(
        "CXLAB_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
    )
)


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` single calls, s."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def _tiled(rec, k: int):
    plates = [
        replace(
            p,
            force=np.tile(p.force, (k, 1)),
            moment=np.tile(p.moment, (k, 1)),
            cop=np.tile(p.cop, (k, 1)),
            tz=np.tile(p.tz, k),
        )
        for p in rec.platforms
    ]
    return replace(
        rec,
        markers=np.tile(rec.markers, (k, 1, 1)),
        residuals=np.tile(rec.residuals, (k, 1)),
        platforms=plates,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tile", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    path = REAL / "c3d" / "btk_PiG_Motion-FlatFoot-Full.c3d"
    rec = io.read(path)
    big = _tiled(rec, a.tile)
    base = best_of(lambda: io.read(path), a.repeat)
    rows = [("io.read (baseline)", rec.n_frames, base)]
    # convention="auto" (the default) spends this on reading the file's own evidence
    rows.append(
        ("detect_convention trial", rec.n_frames, best_of(lambda: detect_convention(rec), a.repeat))
    )
    for name, r in (("trial", rec), (f"trial x{a.tile}", big)):
        rows.append(
            (f"joint_angles {name}", r.n_frames, best_of(lambda r=r: joint_angles(r), a.repeat))
        )
        rows.append(
            (f"joint_moments {name}", r.n_frames, best_of(lambda r=r: joint_moments(r), a.repeat))
        )
    for label, n, t in rows:
        print(
            f"{label:28s} {n:7d} frames  {t * 1000:8.1f} ms  {t / base:6.2f} x read  "
            f"{t / n * 1e6:7.1f} us/frame"
        )


if __name__ == "__main__":
    main()
