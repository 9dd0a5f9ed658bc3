"""Surface-EMG signal processing: envelope, moving RMS, TKEO, normalisation, co-contraction.

Every function works along axis 0 (time) of ``x`` with shape ``(n_samples,)`` or
``(n_samples, n_channels)``, is vectorised over channels and never modifies its input.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from scipy import signal as sps

from cxlab._check import ConfigError, InputFormatError, check_option, message, warn
from cxlab.features.signal import bandpass_sos, butter_sos

__all__ = [
    "CoContraction",
    "EmgReference",
    "Normalised",
    "co_contraction",
    "emg_bandpass",
    "emg_envelope",
    "emg_normalise",
    "emg_reference",
    "emg_rms",
    "tkeo",
]

#: Fraction of the Nyquist frequency the band's upper edge is capped at.
NYQUIST_CAP = 0.95


def _signal(x, name: str = "x") -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim not in (1, 2) or a.shape[0] == 0:
        raise InputFormatError(
            message(
                "must have shape (n_samples,) or (n_samples, n_channels)", field=name, value=a.shape
            )
        )
    if not np.isfinite(a).all():
        raise InputFormatError(
            message(
                "contains NaN or inf",
                field=name,
                value=int((~np.isfinite(a)).sum()),
                fix="drop or fill the missing samples before EMG processing",
            )
        )
    return a


def _rate(rate_hz: float) -> float:
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ConfigError(message("must be a positive number", field="rate_hz", value=rate_hz))
    return float(rate_hz)


def _band(band_hz, rate_hz: float) -> tuple[float, float]:
    lo, hi = (float(v) for v in band_hz)
    nyq = rate_hz / 2
    if not 0 < lo < nyq * NYQUIST_CAP:
        raise ConfigError(
            message(
                "lower edge must lie between 0 and the Nyquist frequency",
                field="band_hz",
                value=band_hz,
                fix=f"use a lower edge below {nyq * NYQUIST_CAP:g} Hz",
            )
        )
    if hi >= nyq * NYQUIST_CAP:
        cap = nyq * NYQUIST_CAP
        warn(
            f"upper edge {hi:g} Hz is not below {NYQUIST_CAP:g} x the Nyquist frequency of "
            f"{rate_hz:g} Hz; capped at {cap:g} Hz",
            field="band_hz",
            fix="record EMG at >= 1000 Hz (SENIAM) or pass a lower band",
        )
        hi = cap
    if not lo < hi:
        raise ConfigError(
            message("lower edge must be below the upper edge", field="band_hz", value=band_hz)
        )
    return lo, hi


def _filtfilt(sos: np.ndarray, a: np.ndarray, what: str) -> np.ndarray:
    ntaps = 2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
    if a.shape[0] <= 3 * ntaps:
        raise InputFormatError(
            message(
                f"is too short for the {what} filter",
                field="x",
                value=a.shape[0],
                fix=f"pass more than {3 * ntaps} samples",
            )
        )
    return sps.sosfiltfilt(sos, a, axis=0)


def emg_bandpass(x, /, *, rate_hz: float, band_hz=(20.0, 450.0), order: int = 4) -> np.ndarray:
    """Zero-lag Butterworth band-pass of raw EMG (the first step of :func:`emg_envelope`).

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, n_channels)
        Raw EMG, any unit (V, mV, µV); must be finite.
    rate_hz : float
        Sample rate, Hz.
    band_hz : (float, float)
        Pass band, Hz; default 20–450 Hz (SENIAM, Hermens et al. 2000; De Luca et al. 2010
        for the 20 Hz high-pass against movement artefact). An upper edge at or above
        ``0.95 × rate_hz / 2`` is capped there with a :class:`~cxlab._check.CxlabWarning`.
    order : int
        Order of the single-pass Butterworth design (``scipy.signal.butter(...,
        output="sos")``); forward-backward filtering (``sosfiltfilt``) doubles it.

    Returns
    -------
    ndarray, same shape as ``x``, unit of ``x``
    """
    rate = _rate(rate_hz)
    a = _signal(x)
    lo, hi = _band(band_hz, rate)
    sos = bandpass_sos(order, lo, hi, rate).copy()  # scipy wants a writable array
    return _filtfilt(sos, a, "band-pass")


def _lowpass(a: np.ndarray, rate: float, cutoff_hz: float, order: int) -> np.ndarray:
    if not 0 < cutoff_hz < rate / 2:
        raise ConfigError(
            message(
                "must lie between 0 and the Nyquist frequency",
                field="lowpass_hz",
                value=cutoff_hz,
                fix=f"use a value below {rate / 2:g} Hz",
            )
        )
    sos = butter_sos(order, cutoff_hz, rate).copy()
    return _filtfilt(sos, a, "low-pass")


def emg_envelope(
    x, /, *, rate_hz: float, band_hz=(20.0, 450.0), lowpass_hz: float = 6.0, order: int = 4
) -> np.ndarray:
    """Linear envelope: band-pass, full-wave rectification, low-pass (all zero-lag).

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, n_channels)
        Raw EMG, any unit; must be finite and longer than the filters' padding
        (a few dozen samples).
    rate_hz : float
        Sample rate, Hz.
    band_hz : (float, float)
        Band-pass edges, Hz (see :func:`emg_bandpass`; the upper edge is capped below
        Nyquist with a warning).
    lowpass_hz : float
        Cut-off of the envelope's low-pass, Hz. 6 Hz by default, a common choice for
        the linear envelope of dynamic tasks (Winter 2009, §10.3); use 10–50 Hz for fast
        events.
    order : int
        Order of each single-pass Butterworth design.

    Returns
    -------
    ndarray, same shape as ``x``, unit of ``x``
        ``sosfiltfilt(butter(order, lowpass_hz, "low"), |sosfiltfilt(butter(order, band_hz,
        "bandpass"), x)|)`` with scipy's default padding; this is the reference definition
        (tests hold it to 1e-9 relative). Tiny negative values can occur at sharp bursts
        (filter ringing).
    """
    rate = _rate(rate_hz)
    rect = np.abs(emg_bandpass(x, rate_hz=rate, band_hz=band_hz, order=order))
    return _lowpass(rect, rate, lowpass_hz, order)


def emg_rms(
    x, /, *, rate_hz: float, window_s: float = 0.05, band_hz=(20.0, 450.0), order: int = 4
) -> np.ndarray:
    """Moving root-mean-square amplitude over a centred window (the envelope's alternative).

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, n_channels)
        Raw EMG, any unit.
    rate_hz : float
        Sample rate, Hz.
    window_s : float
        Window length, s (rounded to an odd number of samples, at least 1); 50 ms by
        default (Merletti & Di Torino 1999, *Standards for reporting EMG data*, 25–100 ms).
    band_hz : (float, float) or None
        Band-pass applied first as in :func:`emg_bandpass`; ``None`` uses ``x`` as given.
    order : int
        Band-pass order.

    Returns
    -------
    ndarray, same shape as ``x``, unit of ``x``
        ``sqrt(mean(x[i-h : i+h+1]²))`` with ``h = (w - 1) / 2``; at the edges the window
        is cut to the samples that exist (as ``pandas.rolling(w, center=True,
        min_periods=1)``).
    """
    rate = _rate(rate_hz)
    a = (
        _signal(x)
        if band_hz is None
        else emg_bandpass(x, rate_hz=rate, band_hz=band_hz, order=order)
    )
    if not (np.isfinite(window_s) and window_s > 0):
        raise ConfigError(message("must be a positive number", field="window_s", value=window_s))
    w = max(round(window_s * rate) // 2 * 2 + 1, 1)
    h = w // 2
    n = a.shape[0]
    c = np.concatenate([np.zeros((1, *a.shape[1:])), np.cumsum(a * a, axis=0)])
    i = np.arange(n)
    lo, hi = np.clip(i - h, 0, n), np.clip(i + h + 1, 0, n)
    count = (hi - lo).reshape(-1, *([1] * (a.ndim - 1)))
    return np.sqrt(np.maximum(c[hi] - c[lo], 0.0) / count)


def tkeo(x, /) -> np.ndarray:
    """Teager–Kaiser energy operator ``ψ[n] = x[n]² − x[n−1]·x[n+1]`` (Kaiser 1990).

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, n_channels)

    Returns
    -------
    ndarray, same shape as ``x``, unit of ``x`` squared
        The first and last samples repeat their neighbours' values.
    """
    a = _signal(x)
    if a.shape[0] < 3:
        raise InputFormatError(message("needs at least 3 samples", field="x", value=a.shape[0]))
    psi = np.empty_like(a)
    psi[1:-1] = a[1:-1] ** 2 - a[:-2] * a[2:]
    psi[0], psi[-1] = psi[1], psi[-2]
    return psi


class EmgReference(NamedTuple):
    """The amplitude 100 % stands for in :func:`emg_normalise`.

    Attributes
    ----------
    value : ndarray, shape (n_channels,)
        Reference amplitude per channel, unit of the envelope.
    kind : {"mvc", "task_peak"}
        A maximal voluntary contraction trial, or the peak of a reference task.
    source : str
        Which trial and how (e.g. ``"mvc_gmed, peak 500 ms mean of the 6 Hz envelope"``).
    """

    value: np.ndarray
    kind: Literal["mvc", "task_peak"]
    source: str


def emg_reference(
    envelope,
    /,
    *,
    rate_hz: float,
    kind: Literal["mvc", "task_peak"] = "mvc",
    window_s: float = 0.5,
    source: str = "",
) -> EmgReference:
    """Reference amplitude from a reference trial's envelope: its highest ``window_s`` mean.

    Parameters
    ----------
    envelope : array_like, shape (n_samples,) or (n_samples, n_channels)
        Envelope of the MVC (or reference-task) trial, from :func:`emg_envelope`.
    rate_hz : float
        Sample rate, Hz.
    kind : {"mvc", "task_peak"}
    window_s : float
        Length of the moving mean whose maximum is the reference, s; 0.5 s for an MVC
        (Burden 2010, *J Electromyogr Kinesiol* 20:1023 reviews 0.5–1 s); 0 takes the
        single-sample peak (for a task peak).
    source : str
        Stated in the output (which task and recording).

    Returns
    -------
    EmgReference
    """
    check_option("kind", kind, ("mvc", "task_peak"))
    rate = _rate(rate_hz)
    e = _signal(envelope, "envelope")
    e2 = e if e.ndim == 2 else e[:, None]
    w = round(window_s * rate)
    if w <= 1:
        value = e2.max(axis=0)
        how = "peak sample"
    else:
        if w > e2.shape[0]:
            raise InputFormatError(
                message(
                    "is shorter than the reference window",
                    field="envelope",
                    value=f"{e2.shape[0] / rate:g} s",
                    fix="record a longer MVC or pass a shorter window_s",
                )
            )
        c = np.concatenate([np.zeros((1, e2.shape[1])), np.cumsum(e2, axis=0)])
        value = ((c[w:] - c[:-w]) / w).max(axis=0)
        how = f"peak {1000 * w / rate:g} ms mean"
    text = f"{source}, {how}" if source else how
    return EmgReference(value, kind, text)


class Normalised(NamedTuple):
    """An envelope as a percentage of its reference.

    Attributes
    ----------
    values : ndarray, shape of the envelope, %
    unit : str
        ``"%MVC"`` or ``"%peak"``.
    reference : EmgReference
    """

    values: np.ndarray
    unit: str
    reference: EmgReference


def emg_normalise(envelope, reference: EmgReference, /) -> Normalised:
    """Express ``envelope`` as % of ``reference`` (same channels, same processing).

    Parameters
    ----------
    envelope : array_like, shape (n_samples,) or (n_samples, n_channels)
    reference : EmgReference
        From :func:`emg_reference` on a trial of the **same session and electrode**
        (amplitude depends on electrode placement and skin impedance, so a reference
        from another session is not valid; SENIAM).

    Returns
    -------
    Normalised
        ``100 · envelope / reference.value``; unit ``"%MVC"`` or ``"%peak"``.

    Raises
    ------
    InputFormatError
        A reference value that is not positive, or a channel-count mismatch.
    """
    e = _signal(envelope, "envelope")
    ref = np.asarray(reference.value, dtype=float).reshape(-1)
    n_ch = 1 if e.ndim == 1 else e.shape[1]
    if ref.size != n_ch:
        raise InputFormatError(
            message(
                f"has {ref.size} channel(s) for an envelope of {n_ch}",
                field="reference",
                value=ref.size,
                fix="build the reference from the same channels",
            )
        )
    if not (np.isfinite(ref) & (ref > 0)).all():
        raise InputFormatError(
            message(
                "must be positive",
                field="reference.value",
                value=ref.tolist(),
                fix="check the reference trial's channel is not flat",
            )
        )
    vals = 100.0 * e / (ref if e.ndim == 2 else ref[0])
    return Normalised(vals, "%MVC" if reference.kind == "mvc" else "%peak", reference)


class CoContraction(NamedTuple):
    """Co-contraction of an agonist–antagonist pair over a window.

    Attributes
    ----------
    cci : float
        Rudolph et al. (2000) index: mean over samples of ``(lower / higher) · (lower +
        higher)``, unit of the envelopes (× 1 for %MVC inputs).
    overlap_pct : float
        Falconer & Winter (1985) co-activation: ``200 · Σ min(a, b) / Σ (a + b)``, %
        (100 % = identical curves, 0 % = no overlap).
    """

    cci: float
    overlap_pct: float


def co_contraction(agonist, antagonist, /) -> CoContraction:
    """Co-contraction index and overlap ratio of two normalised envelopes over one window.

    Parameters
    ----------
    agonist, antagonist : array_like, shape (n_samples,)
        Envelopes of the two muscles over the window of interest, normalised to the same
        kind of reference (e.g. %MVC); negative values (filter ringing) count as 0.

    Returns
    -------
    CoContraction

    Notes
    -----
    Rudolph, Axe & Snyder-Mackler (2000), *Knee Surg Sports Traumatol Arthrosc* 8:262;
    Falconer & Winter (1985), *Electromyogr Clin Neurophysiol* 25:135. Both are NaN when
    both muscles are silent over the whole window.
    """
    a = np.clip(_signal(agonist, "agonist"), 0.0, None).reshape(-1)
    b = np.clip(_signal(antagonist, "antagonist"), 0.0, None).reshape(-1)
    if a.shape != b.shape:
        raise InputFormatError(
            message(
                "must have the agonist's length",
                field="antagonist",
                value=b.shape[0],
                fix=f"pass {a.shape[0]} samples",
            )
        )
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(hi > 0, lo / hi, 0.0)
        total = float((a + b).sum())
        cci = float(np.mean(ratio * (lo + hi))) if total > 0 else float("nan")
        overlap = 200.0 * float(lo.sum()) / total if total > 0 else float("nan")
    return CoContraction(cci, overlap)
