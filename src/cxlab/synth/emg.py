"""Synthetic surface EMG with known onsets, amplitudes and co-contraction, and MVC trials.

Each channel is white noise band-limited to 20-450 Hz (4th-order Butterworth, forward
only) scaled to a known RMS: a noise floor of ``NOISE_V`` everywhere plus, inside each
activation, ``pct / 100 × mvc_rms_v`` of an independent interference pattern switched on
with a 5 ms linear rise. An envelope of such a signal, normalised to the MVC trial's
envelope, averages ``pct`` %MVC over a stretch of constant activation (the envelope's mean
is ``sqrt(2/π) ×`` RMS for both).

Programme effect (the EMG truth is kept apart from :mod:`cxlab.synth.truth`, so cohorts
written without EMG are unchanged): gluteus medius activation in the first 100 ms of
landing rises by ``GMED_EFFECT_PCT_PER_WEEK[arm]`` %MVC per week of the programme.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal as sps

__all__ = [
    "CHANNELS",
    "GMED_EFFECT_PCT_PER_WEEK",
    "MVC_TASKS",
    "NOISE_V",
    "cmj_emg",
    "emg_plan",
    "landing_emg",
    "mvc_emg",
]

#: (label as a lab would write it, muscle code, side): three label styles on purpose.
CHANNELS = (
    ("L_GMED", "gmed", "left"),
    ("R_GMED", "gmed", "right"),
    ("Left Vastus Lateralis", "vl", "left"),
    ("Right Vastus Lateralis", "vl", "right"),
    ("EMG5 L BF", "bf", "left"),
    ("EMG6 R BF", "bf", "right"),
)
MVC_TASKS = ("mvc_gmed", "mvc_vl", "mvc_bf")
NOISE_V = 3e-6
#: Extra GMED landing activation per week, %MVC, by arm (hip programme targets it).
GMED_EFFECT_PCT_PER_WEEK = {
    "control": 0.0,
    "hip_strengthening": 1.0,
    "core_stability": 0.3,
    "thoracic_mobility": 0.0,
}
#: Pre-activation before touchdown (s, Santello 2005: feed-forward 50-150 ms) and landing
#: activation (%MVC) by muscle.
_LAND_LEAD_S = {"gmed": 0.06, "vl": 0.08, "bf": 0.10}
_LAND_PCT = {"vl": 60.0, "bf": 25.0}
_CMJ_DELAY_S = {"gmed": 0.10, "vl": 0.05, "bf": 0.15}
_CMJ_PCT = {"gmed": 20.0, "vl": 50.0, "bf": 15.0}


@lru_cache(maxsize=8)
def _band_sos(rate_hz: float) -> np.ndarray:
    """Second-order sections of the 4th-order 20-450 Hz Butterworth band-pass (the upper edge
    capped at 0.45 × ``rate_hz``, Hz), designed once per rate: the design is deterministic
    and cost ~6 ms, more than the filtering, on each of a cohort's thousands of patterns.
    Shared between calls: callers use a copy (:func:`_pattern`)."""
    hi = min(450.0, 0.45 * rate_hz)
    return sps.butter(4, [20.0, hi], btype="bandpass", fs=rate_hz, output="sos")


def _pattern(rng, n: int, rate_hz: float) -> np.ndarray:
    """Unit-RMS Gaussian interference pattern, band-limited 20-450 Hz (capped below Nyquist)."""
    sos = _band_sos(float(rate_hz)).copy()
    y = sps.sosfilt(sos, rng.normal(size=n + 2000))[2000:]  # drop the start-up transient
    return y / np.sqrt(np.mean(y * y))


def emg_plan(rng, /) -> dict:
    """Per subject: MVC RMS (V) of each channel and the GMED landing baseline (%MVC)."""
    return {
        "mvc_rms_v": {lab: float(rng.uniform(2e-4, 5e-4)) for lab, _, _ in CHANNELS},
        "gmed_landing_pct": float(rng.uniform(20.0, 35.0)),
    }


def _channels(rng, n, rate_hz, plan, bursts) -> np.ndarray:
    """(n, 6) V: noise floor + each channel's bursts ``(onset_s, offset_s, pct)``."""
    t = np.arange(n) / rate_hz
    out = np.empty((n, len(CHANNELS)))
    for k, (lab, _m, _s) in enumerate(CHANNELS):
        x = NOISE_V * _pattern(rng, n, rate_hz)
        for t0, t1, pct in bursts.get(lab, []):
            gain = np.clip((t - t0) / 0.005, 0.0, 1.0) * (t < t1)
            x += gain * (pct / 100.0 * plan["mvc_rms_v"][lab]) * _pattern(rng, n, rate_hz)
        out[:, k] = x
    return out


def landing_emg(
    rng, /, *, n: int, rate_hz: float, touchdown_s: float, plan: dict, week: float, arm: str
) -> tuple[np.ndarray, dict]:
    """EMG of a drop landing: pre-activation before touchdown, activation for 0.4 s after.

    Returns
    -------
    (ndarray (n, 6) V, dict truth)
        ``truth``: per channel label ``onset_s``, ``onset_rel_ms`` (onset − touchdown),
        ``pct_mvc`` in the landing; ``cci_vl_bf`` and ``overlap_vl_bf_pct`` per side (the
        Rudolph and Falconer & Winter values of the two constant activations).
    """
    gmed = plan["gmed_landing_pct"] + GMED_EFFECT_PCT_PER_WEEK[arm] * week
    pct = {"gmed": gmed, **_LAND_PCT}
    bursts, truth = {}, {"channels": {}}
    for lab, m, _side in CHANNELS:
        t0 = touchdown_s - _LAND_LEAD_S[m]
        bursts[lab] = [(t0, touchdown_s + 0.4, pct[m])]
        truth["channels"][lab] = {
            "onset_s": t0,
            "onset_rel_ms": -1000 * _LAND_LEAD_S[m],
            "pct_mvc": pct[m],
        }
    lo, hi = sorted((_LAND_PCT["vl"], _LAND_PCT["bf"]))
    truth["cci_vl_bf"] = lo / hi * (lo + hi)
    truth["overlap_vl_bf_pct"] = 200.0 * lo / (lo + hi)
    truth["gmed_pct_mvc"] = gmed
    return _channels(rng, n, rate_hz, plan, bursts), truth


def cmj_emg(
    rng, /, *, n: int, rate_hz: float, onset_s: float, takeoff_s: float, plan: dict
) -> tuple[np.ndarray, dict]:
    """EMG of a countermovement jump: each muscle from movement onset + a delay to take-off."""
    bursts, truth = {}, {"channels": {}}
    for lab, m, _side in CHANNELS:
        t0 = onset_s + _CMJ_DELAY_S[m]
        bursts[lab] = [(t0, takeoff_s, _CMJ_PCT[m])]
        truth["channels"][lab] = {
            "onset_s": t0,
            "onset_rel_ms": 1000 * _CMJ_DELAY_S[m],
            "pct_mvc": _CMJ_PCT[m],
        }
    return _channels(rng, n, rate_hz, plan, bursts), truth


def mvc_emg(rng, /, *, task: str, rate_hz: float, plan: dict) -> tuple[np.ndarray, dict]:
    """A 3 s MVC trial: rest 1 s, the target muscle (both sides) at 100 % for 1.5 s, the
    others at 10 %."""
    n = round(3.0 * rate_hz)
    target = task.removeprefix("mvc_")
    bursts = {lab: [(1.0, 2.5, 100.0 if m == target else 10.0)] for lab, m, _ in CHANNELS}
    return _channels(rng, n, rate_hz, plan, bursts), {"target": target}
