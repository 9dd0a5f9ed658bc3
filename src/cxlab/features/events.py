"""Events in force-plate signals (quiet standing, movement onset, take-off, touchdown,
contacts) and gait events from markers (:func:`foot_events`, Zeni et al. 2008).

All indices are 0-based sample numbers of the input array; times are ``index / rate_hz``.
Vertical force ``fz`` is the ground reaction on the body, N, positive up (conventions).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.signal import find_peaks

from cxlab._check import CxlabError, message
from cxlab.features.signal import nan_runs

__all__ = [
    "FeatureError",
    "FootEvents",
    "QuietStanding",
    "contacts",
    "flights",
    "foot_events",
    "movement_onset",
    "quiet_standing",
]


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


class QuietStanding(NamedTuple):
    """The steadiest window of loaded standing (:func:`quiet_standing`).

    Attributes
    ----------
    weight_n : float
        Mean vertical force in the window (body weight), N.
    sd_n : float
        Its standard deviation, N.
    start, stop : int
        Sample indices of the window (``stop`` exclusive).
    """

    weight_n: float
    sd_n: float
    start: int
    stop: int


def quiet_standing(
    fz,
    /,
    *,
    rate_hz: float,
    window_s: float = 1.0,
    start: int = 0,
    stop: int | None = None,
    min_force_n: float = 100.0,
) -> QuietStanding:
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
    QuietStanding

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
    return QuietStanding(float(mean[i]), float(sd[i]), start + i, start + i + w)


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


class FootEvents(NamedTuple):
    """One foot's gait events from markers: 0-based frame indices of the marker arrays
    (ascending, int64), and the unit direction of progression used (lab frame)."""

    strikes: np.ndarray
    offs: np.ndarray
    direction: np.ndarray


def _interior_maxima(x: np.ndarray, *, distance: int, prominence: float) -> np.ndarray:
    """Maxima of ``x`` whose neighbours are both valid (a gap or record edge is no event)."""
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return np.zeros(0, np.int64)
    low = float(np.min(x[ok]))
    pk, _ = find_peaks(np.where(ok, x, low), distance=distance, prominence=prominence)
    pk = pk[(pk > 0) & (pk < x.size - 1)]
    return pk[ok[pk - 1] & ok[pk + 1]].astype(np.int64)


def foot_events(
    heel,
    toe,
    pelvis,
    /,
    *,
    rate_hz: float,
    min_stride_s: float = 0.6,
    min_prominence_m: float = 0.1,
    direction=None,
    min_travel_m: float = 0.5,
    max_backtrack_m: float = 0.25,
) -> FootEvents:
    """Foot strikes and foot offs of one foot from its heel and toe markers.

    Zeni, Richards & Higginson (2008), *Gait Posture* 27:710-714, "coordinate-based"
    method: with ``d`` the unit direction of progression, a foot strike is a maximum of
    ``(heel - pelvis) · d`` (the heel furthest ahead of the pelvis centre) and a foot off
    a minimum of ``(toe - pelvis) · d`` (the toe furthest behind). ``d`` is the pelvis
    displacement from its first to its last valid frame, so the method works along any
    lab axis and in either direction (the vertical part of that displacement is
    negligible over a walk). Peaks are found with :func:`scipy.signal.find_peaks`, at
    least ``min_stride_s`` apart and standing ``min_prominence_m`` out of the signal;
    a peak next to a gap or at the record's edge is no event.

    Parameters
    ----------
    heel, toe, pelvis : array_like, shape (n_frames, 3)
        Heel marker (``LHEE``/``LCAL``), toe marker (``LTOE``/``LMT2``) and pelvis
        centre (mean of ASIS and PSIS markers, or the sacrum), m, lab frame; NaN where
        missing (fill short gaps first: a strike inside a gap is lost).
    rate_hz : float
        Marker rate, Hz.
    min_stride_s : float
        Shortest stride (strike to next strike of the same foot), s; 0.6 s admits walking
        up to ~100 strides/min (adult self-selected ~1.0-1.2 s).
    min_prominence_m : float
        Least prominence of a peak, m (the heel's excursion relative to the pelvis is
        ~0.5-0.7 m peak to peak in adult walking).
    direction : array_like, shape (3,), optional
        Direction of progression (lab frame); needed when the pelvis does not travel
        (treadmill).
    min_travel_m : float
        Least pelvis displacement for the direction to be found from it, m.
    max_backtrack_m : float
        Largest movement of the pelvis back against the progression before the trial is
        treated as containing a turn, m.

    Returns
    -------
    FootEvents
        ``strikes`` and ``offs`` as frame indices, and the ``direction`` used.

    Raises
    ------
    FeatureError
        When the pelvis travels less than ``min_travel_m`` and no ``direction`` is given
        (a treadmill or standing trial), or when the pelvis turns back more than
        ``max_backtrack_m`` (a turn: the method assumes straight-line walking).

    Notes
    -----
    Zeni et al. validated the method against force-plate events for treadmill and
    overground walking. On the real Vicon Nexus walk ``btk_PiG_Motion-FlatFoot-Full.c3d``
    the strikes fall 3-7 frames (30-70 ms) before the file's own ``Foot Strike`` events and
    the foot offs within 1 frame (docs/curves.md): the heel is furthest ahead just before
    it lands. Limits: a treadmill trial needs ``direction`` (opposite to the belt's
    motion); turns, shuffling, running and gait without heel contact (toe walking) break
    the maxima-as-strikes premise.
    """
    h, t, p = (np.asarray(a, dtype=float) for a in (heel, toe, pelvis))
    for name, a in (("heel", h), ("toe", t), ("pelvis", p)):
        if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] != p.shape[0]:
            raise FeatureError(
                message(
                    f"expected an (n_frames, 3) trajectory like the pelvis's {p.shape}",
                    field=name,
                    value=a.shape,
                    fix="pass x, y, z per frame, all markers over the same frames",
                )
            )
    valid = np.flatnonzero(np.isfinite(p).all(axis=1))
    if valid.size < 2:
        raise FeatureError(
            message(
                "the pelvis markers have fewer than 2 valid frames",
                field="pelvis",
                value=int(valid.size),
                fix="label the ASIS/PSIS or SACR markers",
            )
        )
    if direction is None:
        disp = p[valid[-1]] - p[valid[0]]
        travel = float(np.linalg.norm(disp))
        if travel < min_travel_m:
            raise FeatureError(
                message(
                    f"the pelvis travels {travel:.2f} m (< {min_travel_m:g} m), "
                    "so the direction of walking is unknown (a treadmill trial?)",
                    field="pelvis",
                    value=round(travel, 3),
                    fix="pass direction= (the opposite of the belt's motion)",
                )
            )
        d = disp / travel
    else:
        d = np.asarray(direction, dtype=float)
        d = d / np.linalg.norm(d)
    prog = (p - p[valid[0]]) @ d
    ok = np.isfinite(prog)
    if ok.any():
        back = float(np.max(np.maximum.accumulate(prog[ok]) - prog[ok]))
        if back > max_backtrack_m:
            raise FeatureError(
                message(
                    f"the pelvis moves {back:.2f} m back against the direction of "
                    "walking (a turn); marker gait events assume straight walking",
                    field="pelvis",
                    value=round(back, 3),
                    fix="cut the trial at the turn, or give it Foot Strike events",
                )
            )
    dist = max(int(min_stride_s * rate_hz), 1)
    return FootEvents(
        _interior_maxima((h - p) @ d, distance=dist, prominence=min_prominence_m),
        _interior_maxima(-((t - p) @ d), distance=dist, prominence=min_prominence_m),
        d,
    )
