"""Quality flags of raw surface-EMG channels: flat, clipped, mains hum, movement artefact."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import signal as sps

from cxlab.features.emg._signal import _rate, _signal

__all__ = ["EmgQuality", "emg_quality"]


class EmgQuality(NamedTuple):
    """Per-channel quality of raw EMG (arrays of shape (n_channels,)).

    Attributes
    ----------
    flat : ndarray of bool
        No usable variation: peak-to-peak 0, or ≥ 99 % of successive samples equal.
    clip_fraction : ndarray of float
        Fraction of samples in runs of ≥ 3 equal samples at the channel's extreme value
        (or beyond ``rail`` when given): a signal held at the ADC rail.
    hum_ratio : ndarray of float
        Power within ±1 Hz of 50 Hz or 60 Hz (the larger), and of their first two
        harmonics, over the power from 10 Hz to min(500 Hz, Nyquist) (Welch PSD).
    hum_hz : ndarray of float
        The mains frequency (50 or 60 Hz) that gave ``hum_ratio``.
    low_ratio : ndarray of float
        Power from 0.5 Hz to 20 Hz over the power from 0.5 Hz to min(500 Hz, Nyquist):
        movement artefact and baseline wander (De Luca et al. 2010).
    flags : tuple of str
        Per channel, the failed checks joined by ``"; "`` (``""`` = usable).
    """

    flat: np.ndarray
    clip_fraction: np.ndarray
    hum_ratio: np.ndarray
    hum_hz: np.ndarray
    low_ratio: np.ndarray
    flags: tuple[str, ...]

    @property
    def ok(self) -> np.ndarray:
        """Channels with no flag, bool (n_channels,)."""
        return np.array([f == "" for f in self.flags], dtype=bool)


def emg_quality(
    x,
    /,
    *,
    rate_hz: float,
    rail: float | None = None,
    max_clip_fraction: float = 0.001,
    max_hum_ratio: float = 0.3,
    max_low_ratio: float = 0.5,
) -> EmgQuality:
    """Flag channels that are flat, clipped, dominated by mains hum or by movement artefact.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, n_channels)
        Raw EMG (not yet filtered), any unit.
    rate_hz : float
        Sample rate, Hz.
    rail : float, optional
        ADC input range in the unit of ``x``: samples with ``|x| >= rail`` are clipped.
        Without it, runs of ≥ 3 identical samples at the channel's own max or min count.
    max_clip_fraction, max_hum_ratio, max_low_ratio : float
        Flag thresholds (fractions).

    Returns
    -------
    EmgQuality

    Notes
    -----
    A clean surface EMG has most of its power between 20 and 250 Hz (De Luca 1997,
    *J Appl Biomech* 13:135); hum shows as narrow peaks at the mains frequency and its
    harmonics, movement artefact and cable motion below 20 Hz (De Luca et al. 2010,
    *J Biomech* 43:1573). The mean is removed before the spectra (DC offset is not an
    artefact). Hum is measured in the raw signal, before any notch filter.
    """
    rate = _rate(rate_hz)
    a = _signal(x)
    a2 = a if a.ndim == 2 else a[:, None]
    n, n_ch = a2.shape
    ptp = np.ptp(a2, axis=0)
    same = (np.diff(a2, axis=0) == 0).mean(axis=0) if n > 1 else np.ones(n_ch)
    flat = (ptp == 0) | (same >= 0.99)
    # clipping: runs of >= 3 equal samples at the extreme (or beyond the rail)
    if rail is not None:
        at = np.abs(a2) >= rail
        clip = at.mean(axis=0)
    else:
        hi, lo = a2.max(axis=0), a2.min(axis=0)
        at = (a2 == hi) | (a2 == lo)
        eq_prev = np.vstack([np.zeros((1, n_ch), bool), a2[1:] == a2[:-1]])
        eq_next = np.vstack([a2[:-1] == a2[1:], np.zeros((1, n_ch), bool)])
        eq_prev2 = (
            np.vstack([np.zeros((2, n_ch), bool), a2[2:] == a2[:-2]])
            if n > 2
            else np.zeros_like(at)
        )
        eq_next2 = (
            np.vstack([a2[:-2] == a2[2:], np.zeros((2, n_ch), bool)])
            if n > 2
            else np.zeros_like(at)
        )
        in_run = (eq_prev & eq_next) | (eq_prev & eq_prev2) | (eq_next & eq_next2)
        clip = (at & in_run).mean(axis=0)
    clip = np.where(flat, 0.0, clip)
    nper = int(min(n, 2 ** int(np.floor(np.log2(max(rate, 4.0))))))  # ~1 s, 1 Hz bins
    f, p = sps.welch(a2 - a2.mean(axis=0), fs=rate, nperseg=nper, axis=0, detrend=False)
    top = min(500.0, rate / 2)
    df = f[1] - f[0] if f.size > 1 else rate

    def power(lo_hz, hi_hz):
        sel = (f >= lo_hz - 1e-9) & (f <= hi_hz + 1e-9)
        return p[sel].sum(axis=0) * df

    with np.errstate(invalid="ignore", divide="ignore"):
        total = power(10.0, top)
        hums = []
        for f0 in (50.0, 60.0):
            h = sum(power(k * f0 - 1.0, k * f0 + 1.0) for k in (1, 2, 3) if k * f0 + 1 <= top)
            hums.append(np.where(total > 0, h / total, 0.0))
        hum = np.maximum(hums[0], hums[1])
        hum_hz = np.where(hums[1] > hums[0], 60.0, 50.0)
        low = np.where(power(0.5, top) > 0, power(0.5, 20.0) / power(0.5, top), 0.0)
    flags = []
    for ch in range(n_ch):
        if flat[ch]:
            flags.append("flat")
            continue
        f_ = []
        if clip[ch] > max_clip_fraction:
            f_.append(f"clipped at the ADC rail ({100 * clip[ch]:.2g}% of samples)")
        if hum[ch] > max_hum_ratio:
            f_.append(f"mains hum ({100 * hum[ch]:.0f}% of power at {hum_hz[ch]:g} Hz)")
        if low[ch] > max_low_ratio:
            f_.append(f"movement artefact ({100 * low[ch]:.0f}% of power below 20 Hz)")
        flags.append("; ".join(f_))
    return EmgQuality(
        flat, clip, np.where(flat, 0.0, hum), hum_hz, np.where(flat, 0.0, low), tuple(flags)
    )
