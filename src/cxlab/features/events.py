"""Events in force-plate signals: quiet standing, movement onset, take-off, touchdown, contacts.

All indices are 0-based sample numbers of the input array; times are ``index / rate_hz``.
Vertical force ``fz`` is the ground reaction on the body, N, positive up (conventions).
"""

from __future__ import annotations

import numpy as np

from cxlab._check import CxlabError, message
from cxlab.features.signal import nan_runs

__all__ = ["FeatureError", "contacts", "flights", "movement_onset", "quiet_standing"]


class FeatureError(CxlabError):
    """A feature cannot be computed from this trial (no take-off, no quiet standing, ...).

    The runner records the message in the ``quarantine`` table (stage ``features``).
    """


def _rolling_mean_sd(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population SD of every length-``w`` window (window ``i`` = ``x[i:i+w]``)."""
    xc = x - x.mean()  # centring keeps the cumulative sums well conditioned
    c1 = np.concatenate([[0.0], np.cumsum(xc)])
    c2 = np.concatenate([[0.0], np.cumsum(xc * xc)])
    s1 = c1[w:] - c1[:-w]
    s2 = c2[w:] - c2[:-w]
    mean = s1 / w
    var = np.maximum(s2 / w - mean * mean, 0.0)
    return mean + x.mean(), np.sqrt(var)


def quiet_standing(
    fz,
    /,
    *,
    rate_hz: float,
    window_s: float = 1.0,
    start: int = 0,
    stop: int | None = None,
    min_force_n: float = 100.0,
) -> dict:
    """The steadiest ``window_s`` window of loaded standing in ``fz[start:stop]``.

    The window of lowest standard deviation (vectorised rolling SD by cumulative sums)
    among windows whose every sample exceeds ``min_force_n`` gives the body weight as its
    mean (e.g. McMahon et al. 2018, *Strength Cond J* 40:96, "weighing phase").

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Vertical ground reaction force, N.
    rate_hz : float
        Sample rate, Hz.
    window_s : float
        Window length, s (default 1 s).
    start, stop : int
        Sample range searched.
    min_force_n : float
        Windows with any sample below this force (unloaded plate) are ignored, N.

    Returns
    -------
    dict
        ``weight_n`` (mean force, N), ``sd_n`` (SD in the window, N), ``start`` and
        ``stop`` (sample indices of the window).

    Raises
    ------
    FeatureError
        If the range is shorter than one window or never loaded for a whole window.
    """
    f = np.asarray(fz, dtype=float)[start:stop]
    w = round(window_s * rate_hz)
    if w < 2 or f.size < w:
        raise FeatureError(
            message(
                f"needs at least {window_s:g} s of standing",
                field="quiet standing",
                value=f"{f.size / rate_hz:.3g} s",
            )
        )
    mean, sd = _rolling_mean_sd(np.nan_to_num(f, nan=0.0), w)
    low = np.concatenate([[0], np.cumsum(~(f > min_force_n))])
    valid = (low[w:] - low[:-w]) == 0
    if not valid.any():
        raise FeatureError(
            message(
                f"no {window_s:g} s window with the plate loaded above {min_force_n:g} N",
                field="quiet standing",
                value=f"max {np.nanmax(f):.1f} N",
            )
        )
    i = int(np.argmin(np.where(valid, sd, np.inf)))
    return {
        "weight_n": float(mean[i]),
        "sd_n": float(sd[i]),
        "start": start + i,
        "stop": start + i + w,
    }


def movement_onset(
    fz,
    /,
    *,
    rate_hz: float,
    weight_n: float,
    sd_n: float,
    n_sd: float = 5.0,
    start: int = 0,
    stop: int | None = None,
    backtrack_s: float = 0.03,
) -> int:
    """Movement onset: first force below ``weight_n − n_sd·sd_n``, minus ``backtrack_s``.

    Owen, Watkins, Kilduff, Bevan & Bennett (2014), *J Strength Cond Res* 28:1552: the
    threshold is body weight minus 5 SD of quiet standing, and onset is placed 30 ms
    before the crossing so the start of unweighting is included. (Moving back to the
    last body-weight crossing instead is biased when quiet standing drifts: the slightly
    negative net force before the movement is then integrated.)

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Vertical force, N.
    rate_hz : float
        Sample rate, Hz.
    weight_n, sd_n : float
        Body weight and its quiet-standing SD, N.
    n_sd : float
        Threshold in SDs below body weight.
    start, stop : int
        Sample range searched.
    backtrack_s : float
        Time moved back from the crossing, s (not before ``start``).

    Returns
    -------
    int
        Onset sample index.

    Raises
    ------
    FeatureError
        If force never falls below the threshold.
    """
    f = np.asarray(fz, dtype=float)
    below = np.flatnonzero(f[start:stop] < weight_n - n_sd * sd_n)
    if below.size == 0:
        raise FeatureError(
            message(
                f"force never falls {n_sd:g} SD below body weight",
                field="movement onset",
                value=f"BW {weight_n:.1f} N",
            )
        )
    return max(start, start + int(below[0]) - round(backtrack_s * rate_hz))


def _unloaded(
    f: np.ndarray, *, rate_hz: float, threshold_n: float, min_contact_s: float
) -> np.ndarray:
    """``f < threshold_n`` (NaN unloaded), with interior loaded runs shorter than
    ``min_contact_s`` (noise spikes, no foot contact is that brief) counted as unloaded."""
    mask = ~(f >= threshold_n)
    loaded = nan_runs(~mask)
    blip = (
        ((loaded[:, 1] - loaded[:, 0]) < min_contact_s * rate_hz)
        & (loaded[:, 0] > 0)
        & (loaded[:, 1] < f.size)
    )
    for s, e in loaded[blip]:
        mask[s:e] = True
    return mask


def flights(
    fz,
    /,
    *,
    rate_hz: float,
    threshold_n: float = 20.0,
    min_flight_s: float = 0.05,
    min_contact_s: float = 0.03,
):
    """Take-off and touchdown samples of every flight (``fz < threshold_n``).

    Take-off is the first sample below the threshold, touchdown the first sample at or
    above it again; flight time is ``(touchdown − takeoff) / rate_hz``. Runs shorter
    than ``min_flight_s`` (noise) and runs touching the ends of the record are ignored;
    excursions above the threshold shorter than ``min_contact_s`` (noise spikes in
    flight) do not end a flight.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Vertical force, N (NaN counts as unloaded).
    rate_hz : float
        Sample rate, Hz.
    threshold_n : float
        Contact threshold, N (default 20 N).
    min_flight_s : float
        Shortest flight kept, s.
    min_contact_s : float
        Shortest contact that ends a flight, s.

    Returns
    -------
    ndarray of int, shape (n_flights, 2)
        ``(takeoff, touchdown)`` sample indices.
    """
    f = np.asarray(fz, dtype=float)
    runs = nan_runs(
        _unloaded(f, rate_hz=rate_hz, threshold_n=threshold_n, min_contact_s=min_contact_s)
    )
    keep = (
        ((runs[:, 1] - runs[:, 0]) >= min_flight_s * rate_hz)
        & (runs[:, 0] > 0)
        & (runs[:, 1] < f.size)
    )
    return runs[keep]


def contacts(fz, /, *, rate_hz: float, threshold_n: float = 20.0, min_contact_s: float = 0.1):
    """Foot contacts on one plate: ``(strike, off)`` samples of runs with ``fz ≥ threshold_n``.

    Used for gait: a foot strike is the first loaded sample, a foot off the first
    unloaded sample after it. Contacts touching the start or end of the record are
    incomplete and dropped.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Vertical force on one plate, N.
    rate_hz : float
        Sample rate, Hz.
    threshold_n : float
        Contact threshold, N.
    min_contact_s : float
        Shortest contact kept, s.

    Returns
    -------
    ndarray of int, shape (n_contacts, 2)
    """
    f = np.asarray(fz, dtype=float)
    runs = nan_runs(f >= threshold_n)
    keep = (
        ((runs[:, 1] - runs[:, 0]) >= min_contact_s * rate_hz)
        & (runs[:, 0] > 0)
        & (runs[:, 1] < f.size)
    )
    return runs[keep]
