"""Countermovement-jump metrics from vertical ground reaction force (impulse–momentum).

Phases (McMahon, Suchomel, Lake & Comfort 2018, "Understanding the key phases of the
countermovement jump force–time curve", *Strength Cond J* 40(4):96–106):

- **weighing**: quiet standing before the movement; body weight ``BW`` = mean force of the
  steadiest 1 s window (:func:`cxlab.features.events.quiet_standing`), mass ``m = BW/g``;
- **onset**: first force below ``BW − 5 SD`` (Owen et al. 2014), minus 30 ms;
- **unweighting**: onset → peak negative centre-of-mass velocity (net force negative);
- **braking** (eccentric deceleration): peak negative velocity → zero velocity (lowest
  centre-of-mass position);
- **propulsion**: zero velocity → take-off;
- **take-off / touchdown**: a flight is found where force stays below 20 N, then its ends
  are refined to the flight's noise level (mean + 5 SD of its middle half);
- **flight**: take-off → touchdown; **landing**: touchdown onwards.

Centre-of-mass acceleration ``a = (F − BW)/m``; velocity and displacement are its first
and second time integrals from onset (trapezoidal rule, ``v = s = 0`` at onset).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import cumulative_trapezoid

from cxlab._check import message
from cxlab.features.asymmetry import symmetry_index, weaker_limb_lsi
from cxlab.features.events import FeatureError, flights, movement_onset, quiet_standing
from cxlab.features.measure import Sided
from cxlab.units import G

__all__ = ["CMJ_METHODS", "CMJ_UNITS", "cmj_metrics", "refine_flight"]

CMJ_UNITS = {
    "body_mass_kg": "kg",
    "jump_height_impulse_m": "m",
    "jump_height_flight_m": "m",
    "takeoff_velocity_m_s": "m/s",
    "flight_time_s": "s",
    "contraction_time_s": "s",
    "rsi_mod": "m/s",
    "countermovement_depth_m": "m",
    "braking_impulse_n_s": "N.s",
    "propulsive_impulse_n_s": "N.s",
    "eccentric_braking_rfd_n_s": "N/s",
    "peak_propulsive_force_n": "N",
    "peak_propulsive_power_w": "W",
    "force_at_zero_velocity_n": "N",
    "peak_landing_force_n": "N",
    "braking_impulse_lsi_pct": "%",
    "propulsive_impulse_lsi_pct": "%",
    "peak_landing_force_lsi_pct": "%",
    "braking_impulse_asym_pct": "%",
    "propulsive_impulse_asym_pct": "%",
    "peak_landing_force_asym_pct": "%",
}
CMJ_METHODS = {
    "body_mass_kg": "mean force of steadiest 1 s before take-off / g",
    "jump_height_impulse_m": "v_to^2/(2g), v_to from net impulse/m (impulse-momentum)",
    "jump_height_flight_m": "g t_flight^2 / 8 (flight: < 20 N, ends at mean+5SD of flight)",
    "takeoff_velocity_m_s": "net impulse onset..take-off / m",
    "flight_time_s": "touchdown - take-off (< 20 N, ends at mean + 5 SD of flight)",
    "contraction_time_s": "take-off - onset (BW - 5 SD minus 30 ms, Owen 2014)",
    "rsi_mod": "jump_height_impulse / contraction_time (Ebben & Petushek 2010)",
    "countermovement_depth_m": "-min CoM displacement (double integration)",
    "braking_impulse_n_s": "net impulse, peak negative velocity..zero velocity (McMahon 2018)",
    "propulsive_impulse_n_s": "net impulse, zero velocity..take-off (McMahon 2018)",
    "eccentric_braking_rfd_n_s": "(F(v=0) - F(v_min)) / duration of braking phase",
    "peak_propulsive_force_n": "max F in propulsion phase",
    "peak_propulsive_power_w": "max F*v in propulsion phase",
    "force_at_zero_velocity_n": "F at the lowest CoM position (v = 0)",
    "peak_landing_force_n": "max F after touchdown",
}
for _q in ("braking_impulse", "propulsive_impulse", "peak_landing_force"):
    CMJ_METHODS[f"{_q}_lsi_pct"] = "100 min(L,R)/max(L,R)"
    CMJ_METHODS[f"{_q}_asym_pct"] = "100 (R-L)/(0.5(R+L)) (Robinson 1987)"


def refine_flight(f: np.ndarray, flight, /, *, threshold_n: float) -> tuple[int, int]:
    """Take-off and touchdown of one flight refined to the flight's own noise level.

    The ends move to the first and last samples at or below mean + 5 SD of the middle
    half of the flight (capped at ``threshold_n``; Owen et al. 2014): the force can take
    several ms to decay from 20 N to zero, and ``a ≈ −g`` during that tail.

    Parameters
    ----------
    f : ndarray, shape (n_samples,)
        Vertical force, N.
    flight : (int, int)
        ``(takeoff, touchdown)`` sample indices from :func:`~cxlab.features.events.flights`.
    threshold_n : float
        The threshold that found the flight, N.

    Returns
    -------
    (int, int)
        Refined take-off (first unloaded sample) and touchdown (first loaded sample).
    """
    to, td = int(flight[0]), int(flight[1])
    quarter = (td - to) // 4
    mid = f[to + quarter : td - quarter]
    if mid.size == 0:
        return to, td
    lvl = min(float(np.nanmean(mid) + 5 * np.nanstd(mid)), threshold_n)
    below = np.flatnonzero(f[to:td] <= lvl)
    if below.size:
        to, td = to + int(below[0]), to + int(below[-1]) + 1
    return to, td


def cmj_metrics(
    fz,
    /,
    *,
    rate_hz: float,
    fz_left=None,
    fz_right=None,
    body_mass_kg: float | None = None,
    threshold_n: float = 20.0,
    n_sd: float = 5.0,
    window_s: float = 1.0,
) -> dict[str, float | Sided]:
    """Countermovement-jump metrics from the total vertical force of one trial.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Total vertical ground reaction force on the body, N, sampled at ``rate_hz``;
        the trial must begin with ≥ ``window_s`` of quiet standing.
    rate_hz : float
        Sample rate, Hz (≥ 500 Hz recommended).
    fz_left, fz_right : array_like, shape (n_samples,), optional
        Vertical force under each foot (two plates), N; adds per-side values and
        asymmetries of braking impulse, propulsive impulse and peak landing force.
    body_mass_kg : float, optional
        Known body mass, kg; default from quiet standing (``BW / g``, g = 9.80665 m/s²).
    threshold_n : float
        Take-off/touchdown threshold, N.
    n_sd : float
        Onset threshold in quiet-standing SDs below body weight.
    window_s : float
        Quiet-standing window, s.

    Returns
    -------
    dict of str to float or Sided
        Keys of :data:`CMJ_UNITS` (units there). With both plates, braking impulse,
        propulsive impulse and peak landing force are a
        :class:`~cxlab.features.measure.Sided` (``out["braking_impulse_n_s"].left``, N·s,
        beside the whole-body ``.bilateral``); side ``s`` uses its own quiet-standing
        force ``BW_s`` so ``∫(F_s − BW_s) dt`` is that foot's net impulse.
        ``countermovement_depth_m`` is positive (metres below standing height).
        ``_lsi_pct = 100·min(L,R)/max(L,R)``; ``_asym_pct = 100·(R−L)/(0.5·(R+L))``.

    Raises
    ------
    FeatureError
        No take-off, no quiet standing, no countermovement, or no zero-velocity instant.

    Notes
    -----
    ``h_impulse = v_to² / (2g)`` with ``v_to = (1/m)∫_onset^take-off (F − BW) dt``;
    ``h_flight = g·t_f² / 8`` (Linthorne 2001, *Am J Phys* 69:1198). Flight-time height
    over-estimates when the landing posture differs from take-off.
    """
    f = np.asarray(fz, dtype=float)
    dt = 1.0 / rate_hz
    fl = flights(f, rate_hz=rate_hz, threshold_n=threshold_n)
    if fl.size == 0:
        raise FeatureError(
            message(
                f"no take-off found (force never below {threshold_n:g} N "
                "for ≥ 50 ms between contacts)",
                field="cmj",
            )
        )
    to, td = refine_flight(f, fl[0], threshold_n=threshold_n)
    qs = quiet_standing(f, rate_hz=rate_hz, window_s=window_s, stop=to)
    bw = body_mass_kg * G if body_mass_kg is not None else qs.weight_n
    m = bw / G
    onset = movement_onset(
        f, rate_hz=rate_hz, weight_n=bw, sd_n=qs.sd_n, n_sd=n_sd, start=qs.start, stop=to
    )
    seg = f[onset : to + 1]
    v = cumulative_trapezoid((seg - bw) / m, dx=dt, initial=0.0)
    s = cumulative_trapezoid(v, dx=dt, initial=0.0)
    i_min = int(np.argmin(v))
    if v[i_min] >= 0:
        raise FeatureError(message("no countermovement (velocity never negative)", field="cmj"))
    up = np.flatnonzero(v[i_min:] >= 0)
    if up.size == 0:
        raise FeatureError(message("no zero-velocity instant before take-off", field="cmj"))
    i0 = i_min + int(up[0])
    v_to = float(v[-1])
    t_flight = (td - to) * dt
    nxt = fl[1, 0] if len(fl) > 1 else f.size
    h_imp = v_to * abs(v_to) / (2 * G)
    t_con = (to - onset) * dt
    out = {
        "body_mass_kg": m,
        "jump_height_impulse_m": h_imp,
        "jump_height_flight_m": G * t_flight**2 / 8,
        "takeoff_velocity_m_s": v_to,
        "flight_time_s": t_flight,
        "contraction_time_s": t_con,
        "rsi_mod": h_imp / t_con,
        "countermovement_depth_m": float(-s.min()),
        "braking_impulse_n_s": m * float(v[i0] - v[i_min]),
        "propulsive_impulse_n_s": m * float(v[-1] - v[i0]),
        "eccentric_braking_rfd_n_s": float(seg[i0] - seg[i_min]) / max((i0 - i_min) * dt, dt),
        "peak_propulsive_force_n": float(seg[i0:].max()),
        "peak_propulsive_power_w": float((seg[i0:] * v[i0:]).max()),
        "force_at_zero_velocity_n": float(seg[i0]),
        "peak_landing_force_n": float(np.nanmax(f[td:nxt])),
    }
    if fz_left is not None and fz_right is not None:
        sides = {}
        for side, fs in (("left", fz_left), ("right", fz_right)):
            fs = np.asarray(fs, dtype=float)
            bws = float(fs[qs.start : qs.stop].mean()) * (bw / qs.weight_n)
            ss = fs[onset : to + 1] - bws
            sides[side] = {
                "braking_impulse": float(np.trapezoid(ss[i_min : i0 + 1], dx=dt)),
                "propulsive_impulse": float(np.trapezoid(ss[i0:], dx=dt)),
                "peak_landing_force": float(np.nanmax(fs[td:nxt])),
            }
        for q, unit in (
            ("braking_impulse", "_n_s"),
            ("propulsive_impulse", "_n_s"),
            ("peak_landing_force", "_n"),
        ):
            left, right = sides["left"][q], sides["right"][q]
            out[f"{q}{unit}"] = Sided(left, right, out[f"{q}{unit}"])
            out[f"{q}_lsi_pct"] = float(weaker_limb_lsi(left, right))
            out[f"{q}_asym_pct"] = float(symmetry_index(left, right))
    return out
