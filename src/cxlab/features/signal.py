"""Signal conditioning: zero-lag Butterworth low-pass, residual analysis, short-gap filling.

All functions work along axis 0 (time) of an array of shape ``(n_samples,)`` or
``(n_samples, n_channels)`` and never modify their input.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy import interpolate
from scipy import signal as sps

from cxlab._check import ConfigError, InputFormatError, message

__all__ = ["GapFill", "butter_sos", "fill_gaps", "lowpass", "nan_runs", "residual_analysis"]


def _rate_cutoff(rate_hz: float, cutoff_hz: float) -> None:
    if not rate_hz > 0:
        raise ConfigError(message("must be positive", field="rate_hz", value=rate_hz))
    if not 0 < cutoff_hz < rate_hz / 2:
        raise ConfigError(
            message(
                "must lie between 0 and the Nyquist frequency",
                field="cutoff_hz",
                value=cutoff_hz,
                fix=f"use a value below {rate_hz / 2:g} Hz",
            )
        )


@functools.lru_cache(maxsize=256)
def butter_sos(order: int, cutoff_hz: float, rate_hz: float, /) -> np.ndarray:
    """Second-order sections of a low-pass Butterworth design, computed once per
    ``(order, cutoff_hz, rate_hz)`` (``scipy.signal.butter(..., output="sos")``).

    Parameters
    ----------
    order : int
        Order of the single-pass design.
    cutoff_hz, rate_hz : float
        Cut-off frequency and sample rate, Hz (checked by :func:`lowpass`).

    Returns
    -------
    ndarray, shape (n_sections, 6)
        Read-only (shared between calls).
    """
    sos = sps.butter(int(order), float(cutoff_hz), btype="low", fs=float(rate_hz), output="sos")
    sos.flags.writeable = False
    return sos


@functools.lru_cache(maxsize=256)
def bandpass_sos(order: int, low_hz: float, high_hz: float, rate_hz: float, /) -> np.ndarray:
    """Second-order sections of a band-pass Butterworth design, computed once per
    ``(order, low_hz, high_hz, rate_hz)`` (``scipy.signal.butter(..., btype="bandpass",
    output="sos")``): an EMG trial's channels and a cohort's trials share one design.

    Parameters
    ----------
    order : int
        Order of the single-pass design.
    low_hz, high_hz, rate_hz : float
        Pass-band edges and sample rate, Hz (checked by the caller).

    Returns
    -------
    ndarray, shape (n_sections, 6)
        Read-only (shared between calls).
    """
    band = [float(low_hz), float(high_hz)]
    sos = sps.butter(int(order), band, btype="bandpass", fs=float(rate_hz), output="sos")
    sos.flags.writeable = False
    return sos


def lowpass(x, /, *, rate_hz: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-lag Butterworth low-pass filter (forward-backward, ``scipy.signal.sosfiltfilt``).

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, n_channels)
        Signal sampled at ``rate_hz``; must be finite (fill gaps first, see :func:`fill_gaps`).
    rate_hz : float
        Sample rate, Hz.
    cutoff_hz : float
        Cut-off frequency of the single-pass design, Hz (0 < cutoff < rate/2).
    order : int
        Order of the single-pass design. Filtering forward then backward squares the
        magnitude response, so the **effective order doubles** (order 4 → 8th-order
        roll-off, 2 × 4 × 6 = 48 dB/octave) and the gain at ``cutoff_hz`` is −6 dB
        instead of −3 dB; the phase lag is zero (Winter 2009, *Biomechanics and Motor
        Control of Human Movement*, 4th ed., §3.4.4).

    Returns
    -------
    ndarray, same shape as ``x``
        The filtered signal, float64.

    Notes
    -----
    Channels are filtered independently, so filtering a recording's channels stacked as
    columns in one call gives the same bits as one call per channel, and is faster (one
    pass of ``sosfiltfilt`` over all columns). The design is cached (:func:`butter_sos`).
    """
    _rate_cutoff(rate_hz, cutoff_hz)
    a = np.asarray(x, dtype=float)
    if not np.isfinite(a).all():
        raise InputFormatError(
            message(
                "contains NaN or inf",
                field="x",
                value=int((~np.isfinite(a)).sum()),
                fix="fill short gaps with fill_gaps() before filtering",
            )
        )
    sos = butter_sos(order, cutoff_hz, rate_hz).copy()  # scipy's Cython wants it writable
    n = a.shape[0]
    edge = min(3 * (2 * len(sos) + 1), n - 1)  # sosfiltfilt's padlen
    # scipy.signal.sosfiltfilt's steps (odd extension of `edge` samples, forward then
    # backward sosfilt from the steady-state conditions scaled by the first sample), with
    # those conditions computed once per design instead of on every call: the same bits
    if edge > 0:
        ext = np.concatenate((2 * a[:1] - a[edge:0:-1], a, 2 * a[-1:] - a[-2 : -(edge + 2) : -1]))
    else:
        ext = a
    zi = _sos_zi(order, cutoff_hz, rate_hz).reshape((len(sos), 2) + (1,) * (a.ndim - 1))
    y, _ = sps.sosfilt(sos, ext, axis=0, zi=zi * ext[:1])
    y, _ = sps.sosfilt(sos, y[::-1], axis=0, zi=zi * y[-1:])
    y = y[::-1]
    return y[edge:-edge] if edge > 0 else y


@functools.lru_cache(maxsize=256)
def _sos_zi(order: int, cutoff_hz: float, rate_hz: float, /) -> np.ndarray:
    """``scipy.signal.sosfilt_zi`` of :func:`butter_sos`'s design, shape (n_sections, 2),
    computed once per design (read-only)."""
    zi = sps.sosfilt_zi(butter_sos(order, cutoff_hz, rate_hz).copy())
    zi.flags.writeable = False
    return zi


def residual_analysis(
    x, /, *, rate_hz: float, cutoffs_hz=None, order: int = 4, noise_from_hz: float | None = None
) -> dict:
    """Choose a low-pass cut-off by residual analysis (Winter 2009, §3.4.4.3).

    The residual ``R(fc) = sqrt(mean((x - lowpass(x, fc))²))`` is computed for a range of
    cut-offs. Above the signal's bandwidth ``R`` is pure noise and falls on a straight line
    in ``fc``; that line's intercept at ``fc = 0`` estimates the noise RMS ``a``. The chosen
    cut-off is the lowest ``fc`` whose residual does not exceed ``a`` (signal distortion
    and passed noise balance there).

    Parameters
    ----------
    x : array_like, shape (n_samples,)
        Finite signal.
    rate_hz : float
        Sample rate, Hz.
    cutoffs_hz : array_like, optional
        Candidate cut-offs, Hz; default 0.5 Hz steps from 0.5 Hz to 0.4 × rate.
    order : int
        Single-pass Butterworth order (see :func:`lowpass`).
    noise_from_hz : float, optional
        Fit the noise line on cut-offs at or above this frequency; default the upper
        half of ``cutoffs_hz``.

    Returns
    -------
    dict
        ``cutoff_hz`` (float, Hz), ``cutoffs_hz`` (ndarray), ``residuals`` (ndarray, unit
        of ``x``), ``noise_rms`` (float, intercept ``a``).
    """
    a = np.asarray(x, dtype=float)
    fcs = (
        np.arange(0.5, 0.4 * rate_hz + 1e-9, 0.5)
        if cutoffs_hz is None
        else np.asarray(cutoffs_hz, dtype=float)
    )
    res = np.array(
        [
            np.sqrt(np.mean((a - lowpass(a, rate_hz=rate_hz, cutoff_hz=fc, order=order)) ** 2))
            for fc in fcs
        ]
    )
    tail = fcs >= (noise_from_hz if noise_from_hz is not None else np.median(fcs))
    _slope, intercept = np.polyfit(fcs[tail], res[tail], 1)
    below = np.flatnonzero(res <= intercept)
    cutoff = float(fcs[below[0]]) if below.size else float(fcs[-1])
    return {"cutoff_hz": cutoff, "cutoffs_hz": fcs, "residuals": res, "noise_rms": float(intercept)}


def nan_runs(mask, /) -> np.ndarray:
    """Start (inclusive) and stop (exclusive) indices of the runs of ``True`` in ``mask``.

    Parameters
    ----------
    mask : array_like of bool, shape (n,)

    Returns
    -------
    ndarray of int, shape (n_runs, 2)
    """
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.column_stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)])


class GapFill(NamedTuple):
    """Result of :func:`fill_gaps`.

    Attributes
    ----------
    filled : ndarray
        The signal with short interior gaps interpolated; longer gaps (and gaps at
        either end) remain NaN.
    unfilled : ndarray of int, shape (n_gaps, 3)
        ``(channel, start, stop)`` of every gap left as NaN (samples ``start:stop``).
    """

    filled: np.ndarray
    unfilled: np.ndarray


def fill_gaps(x, /, *, rate_hz: float, max_gap_s: float, method: str = "cubic") -> GapFill:
    """Interpolate gaps (NaN runs) no longer than ``max_gap_s``; leave longer ones as NaN.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, n_channels)
        Signal with NaN where missing (e.g. an occluded marker coordinate, m).
    rate_hz : float
        Sample rate, Hz.
    max_gap_s : float
        Longest gap that is filled, s (a gap of k samples lasts k / rate_hz).
        Typical marker practice: ≤ 0.1 s.
    method : {"cubic", "linear"}
        Not-a-knot cubic spline through all valid samples of the channel
        (``scipy.interpolate.CubicSpline``), or linear interpolation.

    Returns
    -------
    GapFill
        ``filled`` (same shape as ``x``) and the ``unfilled`` gaps. Gaps touching the
        first or last sample are never filled (extrapolation).
    """
    if method not in ("cubic", "linear"):
        raise ConfigError(
            message(
                "is not a valid method", field="method", value=method, fix="use 'cubic' or 'linear'"
            )
        )
    a = np.array(x, dtype=float)
    two_d = a.ndim == 2
    a2 = a if two_d else a[:, None]
    n = a2.shape[0]
    t = np.arange(n)
    unfilled = []
    for ch in range(a2.shape[1]):
        col = a2[:, ch]
        missing = ~np.isfinite(col)
        if not missing.any():
            continue
        runs = nan_runs(missing)
        ok = ~missing
        short = (
            ((runs[:, 1] - runs[:, 0]) / rate_hz <= max_gap_s) & (runs[:, 0] > 0) & (runs[:, 1] < n)
        )
        if short.any() and ok.sum() >= 4:
            idx = np.concatenate([np.arange(s, e) for s, e in runs[short]])
            if method == "cubic":
                col[idx] = interpolate.CubicSpline(t[ok], col[ok])(idx)
            else:
                col[idx] = np.interp(idx, t[ok], col[ok])
        else:
            short[:] = False
        unfilled.extend((ch, s, e) for s, e in runs[~short])
    out = a2 if two_d else a2[:, 0]
    return GapFill(out, np.array(unfilled, dtype=int).reshape(-1, 3))
