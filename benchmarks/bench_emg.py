"""Speed of the EMG envelope and onsets on a realistic recording, as ratios to a baseline.

16 channels x 60 s x 2 kHz (1.92 M samples), float64. Baseline: one
``scipy.signal.sosfiltfilt`` of a 4th-order low-pass over the same array, measured in the
same run, so the ratio says how many filter passes' worth of work each function costs.

Usage::

    .venv/bin/python benchmarks/bench_emg.py
"""

from __future__ import annotations

import timeit

import numpy as np
from scipy import signal as sps

from cxlab.features.emg import emg_envelope, emg_onsets, emg_quality, emg_rms

RATE, SECONDS, CHANNELS = 2000.0, 60.0, 16


def best_of(fn, *, repeat=5, number=1) -> float:
    """Best time of one call, s."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1e-5, (int(RATE * SECONDS), CHANNELS))
    sos = sps.butter(4, 6.0, btype="low", fs=RATE, output="sos")
    base = best_of(lambda: sps.sosfiltfilt(sos, x, axis=0))
    print(f"{CHANNELS} ch x {SECONDS:g} s x {RATE:g} Hz; baseline sosfiltfilt {base * 1e3:.0f} ms")
    for name, fn in (
        ("emg_envelope", lambda: emg_envelope(x, rate_hz=RATE)),
        ("emg_rms (50 ms)", lambda: emg_rms(x, rate_hz=RATE)),
        ("emg_onsets (tkeo)", lambda: emg_onsets(x, rate_hz=RATE)),
        ("emg_quality", lambda: emg_quality(x, rate_hz=RATE)),
    ):
        t = best_of(fn)
        print(
            f"{name:20s} {t * 1e3:7.0f} ms  {t / base:5.1f} x baseline  "
            f"{x.size / t / 1e6:6.1f} M samples/s"
        )


if __name__ == "__main__":
    main()
