"""Drop-landing kinetics: peak force, loading rate and time to stabilisation.

The trial starts with the subject on the box (plates unloaded), lands, and ends with
≥ 1 s of quiet standing; body mass comes from that final standing
(:func:`landing_body_mass`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cxlab._check import message
from cxlab.features.events import FeatureError, QuietStanding, _unloaded, quiet_standing
from cxlab.features.signal import nan_runs
from cxlab.units import G

__all__ = [
    "LANDING_METHODS",
    "LANDING_UNITS",
    "LandingMass",
    "landing_body_mass",
    "landing_metrics",
    "touchdown",
]

LANDING_UNITS = {
    "peak_force_n": "N",
    "peak_force_bw": "BW",
    "loading_rate_bw_s": "BW/s",
    "time_to_stabilisation_s": "s",
    "body_mass_kg": "kg",
}
LANDING_METHODS = {
    "peak_force_n": "max vertical GRF after touchdown",
    "peak_force_bw": "peak force / (m g)",
    "loading_rate_bw_s": "peak force (BW) / (t_peak - t_touchdown), average loading rate",
    "time_to_stabilisation_s": "sequential average within 0.25 SD of mean (Colby 1999)",
    "body_mass_kg": "mean force of steadiest 1 s after touchdown / g",
}


def touchdown(
    fz,
    /,
    *,
    rate_hz: float,
    threshold_n: float = 20.0,
    min_unloaded_s: float = 0.05,
    min_contact_s: float = 0.03,
) -> int:
    """First sample at or above ``threshold_n`` after ≥ ``min_unloaded_s`` below it.

    Excursions above the threshold shorter than ``min_contact_s`` (noise spikes while
    on the box) are not contacts.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Vertical force, N.
    rate_hz : float
        Sample rate, Hz.
    threshold_n : float
        Contact threshold, N.
    min_unloaded_s : float
        Minimum unloaded time before the contact, s.
    min_contact_s : float
        Shortest loaded run counted as a contact, s.

    Returns
    -------
    int
        Touchdown sample.

    Raises
    ------
    FeatureError
        If no unloaded → loaded transition exists.
    """
    f = np.asarray(fz, dtype=float)
    runs = nan_runs(
        _unloaded(f, rate_hz=rate_hz, threshold_n=threshold_n, min_contact_s=min_contact_s)
    )
    runs = runs[(runs[:, 1] - runs[:, 0] >= min_unloaded_s * rate_hz) & (runs[:, 1] < f.size)]
    if runs.size == 0:
        raise FeatureError(
            message(
                f"no touchdown found (no unloaded period ending above {threshold_n:g} N)",
                field="landing",
            )
        )
    return int(runs[0, 1])


class LandingMass(NamedTuple):
    """Body mass from standing after a landing (:func:`landing_body_mass`).

    Attributes
    ----------
    body_mass_kg : float
        Body weight / g, kg.
    quiet : QuietStanding
        The standing window it came from (weight, SD in N; sample indices).
    """

    body_mass_kg: float
    quiet: QuietStanding


def landing_body_mass(
    fz, /, *, rate_hz: float, start: int, window_s: float = 1.0, max_sd_frac: float = 0.05
) -> LandingMass:
    """Body mass from the steadiest ``window_s`` of standing after ``start`` (touchdown).

    Returns
    -------
    LandingMass

    Raises
    ------
    FeatureError
        If no window is steady: SD above ``max_sd_frac`` × its mean force.
    """
    qs = quiet_standing(fz, rate_hz=rate_hz, window_s=window_s, start=start)
    if qs.sd_n > max_sd_frac * qs.weight_n:
        raise FeatureError(
            message(
                f"no steady {window_s:g} s of standing after landing",
                field="landing",
                value=f"SD {qs.sd_n:.1f} N",
                fix="record ≥ 1 s of quiet standing at the end",
            )
        )
    return LandingMass(qs.weight_n / G, qs)


def landing_metrics(
    fz,
    /,
    *,
    rate_hz: float,
    body_mass_kg: float,
    threshold_n: float = 20.0,
    tolerance_sd: float = 0.25,
) -> dict[str, float]:
    """Peak force, loading rate and time to stabilisation of one drop landing.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Total vertical ground reaction force, N; the record starts unloaded.
    rate_hz : float
        Sample rate, Hz.
    body_mass_kg : float
        Body mass, kg (``BW = m·g``).
    threshold_n : float
        Touchdown threshold, N.
    tolerance_sd : float
        Stabilisation band in SDs of the post-touchdown force (Colby 1999: 0.25).

    Returns
    -------
    dict of str to float
        ``peak_force_n`` (N), ``peak_force_bw`` (BW), ``loading_rate_bw_s`` (BW/s):
        the *average* loading rate ``peak_BW / (t_peak − t_touchdown)``, and
        ``time_to_stabilisation_s`` (s).

    Raises
    ------
    FeatureError
        No touchdown, or NaN force after touchdown.

    Notes
    -----
    Time to stabilisation by sequential averaging (Colby, Hintermeister, Torry & Steadman
    1999, *J Orthop Sports Phys Ther* 29:444): with ``F`` the force from touchdown to the
    end, ``μ`` and ``σ`` its mean and SD, the sequential average ``S_k = mean(F[0..k])``;
    TTS is the first time after which ``|S_k − μ| ≤ 0.25 σ`` for every later ``k``.

    .. warning:: TTS depends on the length of the record after touchdown (``μ``, ``σ``
       and the end point all move); compare only trials of equal length.
    """
    f = np.asarray(fz, dtype=float)
    td = touchdown(f, rate_hz=rate_hz, threshold_n=threshold_n)
    post = f[td:]
    if not np.isfinite(post).all():
        raise FeatureError(
            message(
                "has missing (NaN) force samples after touchdown",
                field="landing",
                value=int((~np.isfinite(post)).sum()),
                fix="pass a complete force record",
            )
        )
    bw = body_mass_kg * G
    ip = int(np.nanargmax(post))
    peak = float(post[ip])
    seq = np.cumsum(post) / np.arange(1, post.size + 1)
    mu, sd = float(post.mean()), float(post.std())
    outside = np.abs(seq - mu) > tolerance_sd * sd
    last_out = np.flatnonzero(outside)
    k = int(last_out[-1]) + 1 if last_out.size else 0
    return {
        "peak_force_n": peak,
        "peak_force_bw": peak / bw,
        "loading_rate_bw_s": (peak / bw) / max(ip / rate_hz, 1.0 / rate_hz),
        "time_to_stabilisation_s": k / rate_hz,
    }
