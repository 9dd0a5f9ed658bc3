"""The force-plate jump battery beyond the CMJ: squat jump, drop jump, repeated hops, body mass.

Every function takes the vertical ground reaction force on the body, N (positive up,
``docs/conventions.md``), sampled at ``rate_hz``, and returns a dict of metric → value
whose units and definitions are in :data:`BATTERY_UNITS` and :data:`BATTERY_METHODS`.
The building blocks are the CMJ's (:mod:`cxlab.features.events`, :mod:`cxlab.features.jump`):
the same quiet-standing window, the same flight detection refined to the flight's noise
level, the same trapezoidal integration and the same LSI (:mod:`cxlab.features.asymmetry`).

Asymmetry of two values near zero is not computed: :func:`side_asymmetry` returns NaN
when the larger magnitude is below a stated floor, and the features runner then records
the metric by name in ``quarantine`` instead of storing an exploding ratio.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy.integrate import cumulative_trapezoid

from cxlab._check import message, warn
from cxlab.features.asymmetry import symmetry_index, weaker_limb_lsi
from cxlab.features.events import FeatureError, flights, quiet_standing
from cxlab.features.jump import refine_flight
from cxlab.features.measure import Sided
from cxlab.schemas import schema_of
from cxlab.units import G

__all__ = [
    "BATTERY_METHODS",
    "BATTERY_UNITS",
    "BodyMass",
    "body_mass_estimate",
    "dj_metrics",
    "hop_metrics",
    "jump_segments",
    "side_asymmetry",
    "single_leg_lsi",
    "sj_metrics",
]

_LSI = "100 min(L,R)/max(L,R); not computed when max(|L|,|R|) is below the floor"
_SI = "100 (R-L)/(0.5(R+L)) (Robinson 1987); not computed below the floor"

BATTERY_UNITS = {
    # squat jump
    "body_mass_kg": "kg",
    "jump_height_impulse_m": "m",
    "jump_height_flight_m": "m",
    "takeoff_velocity_m_s": "m/s",
    "flight_time_s": "s",
    "time_to_takeoff_s": "s",
    "peak_force_n": "N",
    "peak_force_n_kg": "N/kg",
    "mean_force_n": "N",
    "mean_force_n_kg": "N/kg",
    "peak_power_w": "W",
    "peak_power_w_kg": "W/kg",
    "mean_power_w": "W",
    "mean_power_w_kg": "W/kg",
    "propulsive_impulse_n_s": "N.s",
    "rsi_mod": "m/s",
    "peak_landing_force_n": "N",
    "peak_landing_force_bw": "BW",
    "n_jumps": "1",
    # drop jump / hops
    "contact_time_s": "s",
    "rsi": "m/s",
    "flight_contact_ratio": "1",
    "peak_contact_force_n": "N",
    "peak_contact_force_bw": "BW",
    "contact_impulse_n_s": "N.s",
    "n_hops": "1",
    # body mass comparison
    "body_mass_header_kg": "kg",
    "body_mass_standing_kg": "kg",
    "body_mass_difference_pct": "%",
}
BATTERY_METHODS = {
    "body_mass_kg": "export header weight if given, else mean force of steadiest 1 s / g",
    "jump_height_impulse_m": "v_to^2/(2g), v_to = net impulse onset..take-off / m",
    "jump_height_flight_m": "g t_flight^2 / 8 (Linthorne 2001)",
    "takeoff_velocity_m_s": "net impulse onset..take-off / m (impulse-momentum)",
    "flight_time_s": "touchdown - take-off (< 20 N, ends at mean + 5 SD of flight)",
    "time_to_takeoff_s": "take-off - push onset (last BW + 5 SD crossing before peak - 30 ms)",
    "peak_force_n": "max F onset..take-off",
    "peak_force_n_kg": "peak_force / body mass",
    "mean_force_n": "mean F onset..take-off",
    "mean_force_n_kg": "mean_force / body mass",
    "peak_power_w": "max F v onset..take-off",
    "peak_power_w_kg": "peak_power / body mass",
    "mean_power_w": "mean F v onset..take-off",
    "mean_power_w_kg": "mean_power / body mass",
    "propulsive_impulse_n_s": "net impulse onset..take-off (= m v_to)",
    "rsi_mod": "jump_height_impulse / time_to_takeoff (Ebben & Petushek 2010)",
    "peak_landing_force_n": "max F after touchdown (SJ: within 1 s of it)",
    "peak_landing_force_bw": "max F after touchdown / (m g)",
    "n_jumps": "jumps found in the trial (one flight each)",
    "contact_time_s": "take-off - touchdown of the ground contact (< 20 N refined)",
    "rsi": "jump_height_flight / contact_time (Young 1995; Flanagan & Comyns 2008)",
    "flight_contact_ratio": "flight_time / contact_time (ForceDecks DJ 'RSI')",
    "peak_contact_force_n": "max F during the ground contact",
    "peak_contact_force_bw": "max F during the ground contact / (m g)",
    "contact_impulse_n_s": "gross impulse of F over the ground contact",
    "n_hops": "contacts between two flights",
    "body_mass_header_kg": "export header (ForceDecks Weight (Kg); BioWare normalized force/g)",
    "body_mass_standing_kg": "mean force of steadiest 1 s / g",
    "body_mass_difference_pct": "100 (standing - header) / header",
}
for _q in (
    "propulsive_impulse",
    "peak_force",
    "peak_contact_force",
    "contact_impulse",
    "peak_landing_force",
    "jump_height_impulse",
    "jump_height_flight",
    "rsi",
    "peak_propulsive_power",
):
    BATTERY_UNITS[f"{_q}_lsi_pct"] = "%"
    BATTERY_UNITS[f"{_q}_asym_pct"] = "%"
    BATTERY_METHODS[f"{_q}_lsi_pct"] = _LSI
    BATTERY_METHODS[f"{_q}_asym_pct"] = _SI


def side_asymmetry(name: str, left: float, right: float, /, *, floor: float) -> dict:
    """Per-side values, LSI and Robinson index of one quantity, or NaN indices near zero.

    Parameters
    ----------
    name : str
        Quantity name without unit (``"peak_force"``).
    left, right : float
        The quantity for each limb (same unit).
    floor : float
        Smallest meaningful magnitude (same unit): when ``max(|L|, |R|) < floor`` the
        ratio of two near-zero numbers says nothing and both indices are NaN.

    Returns
    -------
    dict
        ``{name}_lsi_pct`` (``100·min/max``, LSI of the weaker side) and
        ``{name}_asym_pct`` (Robinson 1987, + = right larger).
    """
    if not (max(abs(left), abs(right)) >= floor):
        return {f"{name}_lsi_pct": float("nan"), f"{name}_asym_pct": float("nan")}
    return {
        f"{name}_lsi_pct": float(weaker_limb_lsi(left, right)),
        f"{name}_asym_pct": float(symmetry_index(left, right)),
    }


class BodyMass(NamedTuple):
    """Body mass used for a trial and how the two sources compare."""

    body_mass_kg: float
    source: Literal["header", "quiet standing"]
    header_kg: float
    standing_kg: float
    difference_pct: float
    agrees: bool


def body_mass_estimate(
    header_kg, standing_kg, /, *, tolerance_pct: float = 2.0, where: str = "trial"
) -> BodyMass:
    """Body mass from the export header when the vendor gives one, else quiet standing.

    Parameters
    ----------
    header_kg : float or None
        Mass in the export header, kg (ForceDecks ``Weight (Kg)``; NaN/None if absent).
    standing_kg : float
        ``BW / g`` of the steadiest quiet-standing window, kg.
    tolerance_pct : float
        Largest acceptable ``|standing − header| / header``, % (default 2 %).
    where : str
        Named in the warning (recording or task).

    Returns
    -------
    BodyMass
        ``difference_pct = 100 (standing − header) / header`` (NaN without a header).

    Warns
    -----
    CxlabWarning
        When the two differ by more than ``tolerance_pct``: either the header is stale
        (athlete not re-weighed) or the plate was not zeroed; the header mass is used.
    """
    h = float("nan") if header_kg is None else float(header_kg)
    s = float(standing_kg)
    if not (np.isfinite(h) and h > 0):
        return BodyMass(s, "quiet standing", float("nan"), s, float("nan"), True)
    diff = 100.0 * (s - h) / h
    agrees = bool(abs(diff) <= tolerance_pct)
    if not agrees:
        warn(
            f"body mass from quiet standing {s:.1f} kg differs from the export header "
            f"{h:.1f} kg by {diff:+.1f} % (> {tolerance_pct:g} %)",
            field=where,
            fix="re-weigh the athlete in the vendor software or zero the plate; the header "
            "mass was used",
        )
    return BodyMass(h, "header", h, s, diff, agrees)


def jump_segments(fz, /, *, rate_hz: float, threshold_n: float = 20.0) -> np.ndarray:
    """Split a trial holding several jumps into one segment per jump.

    Each flight (:func:`~cxlab.features.events.flights`) is one jump; segment ``k``
    runs from touchdown ``k−1`` (0 for the first) to take-off ``k+1`` (the end for the
    last), so it holds all the standing between the jumps (for the weighing), the push,
    the flight and the landing of jump ``k``; neighbouring segments overlap over the
    standing between jumps (Kistler BioWare exports several squat jumps in one trial).

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Vertical force, N.
    rate_hz : float
        Sample rate, Hz.
    threshold_n : float
        Flight threshold, N.

    Returns
    -------
    ndarray of int, shape (n_jumps, 2)
        ``[start, stop)`` sample indices; empty when there is no flight.
    """
    f = np.asarray(fz, dtype=float)
    fl = flights(f, rate_hz=rate_hz, threshold_n=threshold_n)
    if fl.size == 0:
        return np.zeros((0, 2), dtype=int)
    return np.column_stack(
        [np.concatenate([[0], fl[:-1, 1]]), np.concatenate([fl[1:, 0], [f.size]])]
    )


def _push_onset(f: np.ndarray, peak: int, level: float, rate_hz: float, backtrack_s: float) -> int:
    """First sample of the final rise above ``level`` before ``peak``, minus ``backtrack_s``."""
    below = np.flatnonzero(f[:peak] <= level)
    cross = int(below[-1]) + 1 if below.size else 0
    return max(0, cross - round(backtrack_s * rate_hz)), cross


def sj_metrics(
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
    backtrack_s: float = 0.03,
    countermovement_window_s: float = 0.3,
    landing_s: float = 1.0,
    push_s: float = 1.0,
) -> dict[str, float | Sided]:
    """Squat-jump metrics (no countermovement) of one jump by impulse–momentum.

    The athlete holds a still squat, then pushes. Push **onset** is the start of the final
    rise above ``BW + n_sd·SD`` before peak force, moved back ``backtrack_s`` (the
    Owen et al. 2014 rule, mirrored for a jump with no unweighting); velocity is 0 there.
    ``v = (1/m)∫(F − BW) dt`` from onset; take-off and touchdown as for the CMJ.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Total vertical force, N; the trial holds ≥ ``window_s`` of still standing or squat
        before the push.
    rate_hz : float
        Sample rate, Hz.
    fz_left, fz_right : array_like, shape (n_samples,), optional
        Force under each foot, N: adds per-side propulsive impulse and peak force with
        their LSI and Robinson asymmetry.
    body_mass_kg : float, optional
        Known mass, kg (export header); default ``BW/g`` of quiet standing.
    threshold_n, n_sd, window_s, backtrack_s : float
        Flight threshold (N), onset threshold (SD), quiet window (s), onset backtrack (s).
    countermovement_window_s : float
        A dip below ``BW − max(n_sd·SD, 1 % BW)`` within this time before the push is a
        countermovement, s.
    landing_s : float
        Peak landing force is searched this long after touchdown, s.
    push_s : float
        The push's peak force is searched this long before take-off, s.

    Returns
    -------
    dict of str to float or Sided
        Keys of :data:`BATTERY_UNITS` (``jump_height_impulse_m``, ``peak_power_w_kg`` …);
        with both plates ``propulsive_impulse_n_s`` (N·s) and ``peak_force_n`` (N) are a
        :class:`~cxlab.features.measure.Sided` (per foot, and the whole-body value).

    Raises
    ------
    FeatureError
        No take-off, no quiet standing, or a countermovement before the push (a squat
        jump with a dip is invalid: the impulse from a moving start is not from rest).

    Notes
    -----
    Sources: jump height ``v_to²/(2g)`` and ``g t_f²/8`` (Linthorne 2001, *Am J Phys*
    69:1198); squat-jump phases and mean/peak force and power (Sole, Mizuguchi, Sato,
    Moir & Stone 2018, *Sports* 6:20 — phase-specific SJ force–time characteristics).
    """
    f = np.asarray(fz, dtype=float)
    dt = 1.0 / rate_hz
    fl = flights(f, rate_hz=rate_hz, threshold_n=threshold_n)
    if fl.size == 0:
        raise FeatureError(
            message(
                f"no take-off found (force never below {threshold_n:g} N "
                "for ≥ 50 ms between contacts)",
                field="squat jump",
            )
        )
    to, td = refine_flight(f, fl[0], threshold_n=threshold_n)
    lo = max(0, to - round(push_s * rate_hz))
    peak = lo + int(np.argmax(f[lo:to]))  # the push's peak, not an earlier landing's
    qs = quiet_standing(f, rate_hz=rate_hz, window_s=window_s, stop=peak)
    bw = body_mass_kg * G if body_mass_kg is not None else qs.weight_n
    m = bw / G
    onset, cross = _push_onset(f, peak, bw + n_sd * qs.sd_n, rate_hz, backtrack_s)
    look = f[max(qs.stop, cross - round(countermovement_window_s * rate_hz)) : cross]
    # a dip counts beyond n_sd SD and at least 1 % of BW (a noise-free hold has SD = 0)
    if look.size and float(look.min()) < bw - max(n_sd * qs.sd_n, 0.01 * bw):
        raise FeatureError(
            message(
                f"countermovement before the push (force fell to {look.min():.0f} N, "
                f"{bw - look.min():.0f} N below body weight {bw:.0f} N)",
                field="squat jump",
                fix="hold the squat still for 2 s before pushing, or label the trial cmj",
            )
        )
    seg = f[onset : to + 1]
    v = cumulative_trapezoid((seg - bw) / m, dx=dt, initial=0.0)
    power = seg * v
    v_to = float(v[-1])
    h_imp = v_to * abs(v_to) / (2 * G)
    t_push = (to - onset) * dt
    t_flight = (td - to) * dt
    nxt = min(fl[1, 0] if len(fl) > 1 else f.size, td + round(landing_s * rate_hz))
    land = float(np.nanmax(f[td:nxt]))
    out = {
        "body_mass_kg": m,
        "jump_height_impulse_m": h_imp,
        "jump_height_flight_m": G * t_flight**2 / 8,
        "takeoff_velocity_m_s": v_to,
        "flight_time_s": t_flight,
        "time_to_takeoff_s": t_push,
        "peak_force_n": float(seg.max()),
        "mean_force_n": float(seg.mean()),
        "peak_power_w": float(power.max()),
        "mean_power_w": float(power.mean()),
        "propulsive_impulse_n_s": m * v_to,
        "rsi_mod": h_imp / t_push,
        "peak_landing_force_n": land,
        "peak_landing_force_bw": land / bw,
    }
    for k in ("peak_force", "mean_force"):
        out[f"{k}_n_kg"] = out[f"{k}_n"] / m
    for k in ("peak_power", "mean_power"):
        out[f"{k}_w_kg"] = out[f"{k}_w"] / m
    if fz_left is not None and fz_right is not None:
        sides = {}
        for side, fs in (("left", fz_left), ("right", fz_right)):
            fs = np.asarray(fs, dtype=float)
            bws = float(fs[qs.start : qs.stop].mean()) * (bw / qs.weight_n)
            ss = fs[onset : to + 1]
            sides[side] = (float(np.trapezoid(ss - bws, dx=dt)), float(ss.max()))
        for i, k in enumerate(("propulsive_impulse_n_s", "peak_force_n")):
            out[k] = Sided(sides["left"][i], sides["right"][i], out[k])
        out |= side_asymmetry(
            "propulsive_impulse",
            sides["left"][0],
            sides["right"][0],
            floor=0.02 * m * max(abs(v_to), 0.0),
        )
        out |= side_asymmetry("peak_force", sides["left"][1], sides["right"][1], floor=0.05 * bw)
    return out


def _contact_start(f: np.ndarray, takeoff: int, threshold_n: float) -> int:
    """First loaded sample of the contact ending at ``takeoff``, refined like a flight end."""
    before = np.flatnonzero(~(f[:takeoff] >= threshold_n))
    if before.size == 0:
        raise FeatureError(
            message(
                "the plate is loaded from the first sample, so the drop has no touchdown",
                field="drop jump",
                fix="start recording with the athlete on the box",
            )
        )
    s0 = int(before[-1]) + 1
    air = f[:s0][np.isfinite(f[:s0])]
    lvl = min(float(air.mean() + 5 * air.std()), threshold_n) if air.size > 10 else threshold_n
    low = np.flatnonzero(f[:s0] <= lvl)
    return int(low[-1]) + 1 if low.size else s0


def dj_metrics(
    fz,
    /,
    *,
    rate_hz: float,
    fz_left=None,
    fz_right=None,
    body_mass_kg: float | None = None,
    drop_height_m: float | None = None,
    threshold_n: float = 20.0,
    window_s: float = 1.0,
) -> dict[str, float | Sided]:
    """Drop-jump metrics: contact time, flight time, height, RSI, peak forces.

    The record starts with the athlete on the box (plate unloaded); the first contact
    runs from touchdown to take-off, the flight from take-off to the landing touchdown.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Total vertical force, N.
    rate_hz : float
        Sample rate, Hz.
    fz_left, fz_right : array_like, optional
        Force under each foot, N: per-side peak contact force, contact impulse and
        peak landing force with LSI and Robinson asymmetry.
    body_mass_kg : float, optional
        Known mass, kg; default from the steadiest ``window_s`` after the landing.
    drop_height_m : float, optional
        Box height, m: adds ``jump_height_impulse_m`` from
        ``v_to = −√(2 g h_drop) + (1/m)∫_contact (F − BW) dt`` (a step-off, not a jump, from
        the box is assumed).
    threshold_n, window_s : float
        Contact threshold (N) and quiet window (s).

    Returns
    -------
    dict of str to float or Sided
        ``contact_time_s``, ``flight_time_s``, ``jump_height_flight_m``, ``rsi``
        (m/s, height / contact time), ``flight_contact_ratio``,
        ``peak_contact_force_n``/``_bw``, ``contact_impulse_n_s``,
        ``peak_landing_force_n``/``_bw``, ``body_mass_kg``; with both plates
        ``peak_contact_force_n``, ``contact_impulse_n_s`` and ``peak_landing_force_n``
        are a :class:`~cxlab.features.measure.Sided` (per foot, and the whole-body value).

    Raises
    ------
    FeatureError
        No flight after the contact, the plate loaded from the first sample, or no quiet
        standing after the landing (and no body mass given).

    Notes
    -----
    RSI = jump height / contact time (Young 1995, *Track Coach* 132:4210; Flanagan &
    Comyns 2008, *Strength Cond J* 30(5):32); height from flight time ``g t²/8``
    (Linthorne 2001). ForceDecks reports flight time / contact time as "RSI" for the
    drop jump; that ratio is ``flight_contact_ratio`` here.
    """
    f = np.asarray(fz, dtype=float)
    dt = 1.0 / rate_hz
    fl = flights(f, rate_hz=rate_hz, threshold_n=threshold_n)
    if fl.size == 0:
        raise FeatureError(
            message(
                "no flight after the ground contact",
                field="drop jump",
                fix="check the task label (a drop landing is 'landing')",
            )
        )
    to, td = refine_flight(f, fl[0], threshold_n=threshold_n)
    c0 = _contact_start(f, to, threshold_n)
    if body_mass_kg is None:
        qs = quiet_standing(f, rate_hz=rate_hz, window_s=window_s, start=td)
        bw = qs.weight_n
    else:
        bw = body_mass_kg * G
    m = bw / G
    ct, t_fl = (to - c0) * dt, (td - to) * dt
    h = G * t_fl**2 / 8
    contact = f[c0 : to + 1]
    nxt = fl[1, 0] if len(fl) > 1 else f.size
    land = float(np.nanmax(f[td:nxt]))
    out = {
        "body_mass_kg": m,
        "contact_time_s": ct,
        "flight_time_s": t_fl,
        "jump_height_flight_m": h,
        "rsi": h / ct,
        "flight_contact_ratio": t_fl / ct,
        "peak_contact_force_n": float(contact.max()),
        "peak_contact_force_bw": float(contact.max()) / bw,
        "contact_impulse_n_s": float(np.trapezoid(contact, dx=dt)),
        "peak_landing_force_n": land,
        "peak_landing_force_bw": land / bw,
    }
    if drop_height_m is not None:
        v_to = -np.sqrt(2 * G * drop_height_m) + np.trapezoid(contact - bw, dx=dt) / m
        out["takeoff_velocity_m_s"] = float(v_to)
        out["jump_height_impulse_m"] = float(v_to * abs(v_to) / (2 * G))
    if fz_left is not None and fz_right is not None:
        vals = {}
        for side, fs in (("left", fz_left), ("right", fz_right)):
            fs = np.asarray(fs, dtype=float)
            vals[side] = (
                float(fs[c0 : to + 1].max()),
                float(np.trapezoid(fs[c0 : to + 1], dx=dt)),
                float(np.nanmax(fs[td:nxt])),
            )
        for i, k in enumerate(
            ("peak_contact_force_n", "contact_impulse_n_s", "peak_landing_force_n")
        ):
            out[k] = Sided(vals["left"][i], vals["right"][i], out[k])
        for i, (q, floor) in enumerate(
            (
                ("peak_contact_force", 0.05 * bw),
                ("contact_impulse", 0.05 * bw * ct),
                ("peak_landing_force", 0.05 * bw),
            )
        ):
            out |= side_asymmetry(q, vals["left"][i], vals["right"][i], floor=floor)
    return out


def hop_metrics(fz, /, *, rate_hz: float, threshold_n: float = 20.0) -> dict[str, float]:
    """Repeated (single-leg) hops: mean contact time, flight time, height and RSI.

    Every contact between two flights is one hop: contact time = take-off − touchdown,
    the following flight gives ``h = g t²/8`` and ``RSI = h / contact time``.

    Parameters
    ----------
    fz : array_like, shape (n_samples,)
        Vertical force on the stance plate, N.
    rate_hz : float
        Sample rate, Hz.
    threshold_n : float
        Contact threshold, N.

    Returns
    -------
    dict of str to float
        ``n_hops``, ``contact_time_s``, ``flight_time_s``, ``jump_height_flight_m``,
        ``rsi`` (means over hops), ``peak_contact_force_n`` (mean of the hops' peaks).

    Raises
    ------
    FeatureError
        Fewer than two flights (no contact between flights).

    Notes
    -----
    Repeated-hop RSI as in the ForceDecks/Hawkin "multi rebound" test; height from flight
    time (Linthorne 2001); RSI as height / contact time (Flanagan & Comyns 2008).
    """
    f = np.asarray(fz, dtype=float)
    dt = 1.0 / rate_hz
    fl = flights(f, rate_hz=rate_hz, threshold_n=threshold_n)
    if len(fl) < 2:
        raise FeatureError(
            message(
                "needs at least two flights (one contact between hops)",
                field="hop",
                value=f"{len(fl)} flight(s)",
            )
        )
    ref = np.array([refine_flight(f, row, threshold_n=threshold_n) for row in fl])
    td, to = ref[:-1, 1], ref[1:, 0]  # contact k: landing of flight k .. take-off of k+1
    ct = (to - td) * dt
    t_fl = (ref[1:, 1] - ref[1:, 0]) * dt
    h = G * t_fl**2 / 8
    peaks = np.array([np.nanmax(f[a:b]) for a, b in zip(td, to, strict=True)])  # per hop
    return {
        "n_hops": float(len(ct)),
        "contact_time_s": float(ct.mean()),
        "flight_time_s": float(t_fl.mean()),
        "jump_height_flight_m": float(h.mean()),
        "rsi": float((h / ct).mean()),
        "peak_contact_force_n": float(np.mean(peaks)),
    }


def single_leg_lsi(
    features: pd.DataFrame, /, *, pairs: dict[str, tuple[str, str]], metrics: dict[str, list[str]]
) -> pd.DataFrame:
    """LSI across the left-leg and right-leg trials of one session.

    Parameters
    ----------
    features : pandas.DataFrame
        Long ``features`` table; single-leg rows carry ``side`` left/right.
    pairs : dict of str to (str, str)
        Output task → (left task, right task), e.g. ``{"cmj_single": ("cmj_left", "cmj_right")}``.
    metrics : dict of str to list of str
        Output task → feature names to compare (``slcmj_jump_height_impulse_m`` …).

    Returns
    -------
    pandas.DataFrame
        ``features`` rows (``recording_id`` empty, ``task`` = the output task, side
        ``bilateral``): ``<feature stem>_lsi_pct`` = ``100·min(L̄, R̄)/max(L̄, R̄)`` of the mean
        of each leg's trials, and ``_asym_pct`` (Robinson 1987). Sessions with one leg only
        give no row; quantities near zero (< 1 % of the larger magnitude in the squad) none.
    """
    cols = schema_of("features").names
    parts = []
    for out_task, (lt, rt) in pairs.items():
        d = features[
            features["task"].isin([lt, rt])
            & features["feature"].isin(metrics[out_task])
            & features["side"].isin(["left", "right"])
        ]
        if d.empty:
            continue
        w = d.pivot_table(
            index=["subject_id", "session", "feature"],
            columns="side",
            values="value",
            aggfunc="mean",
        ).reset_index()
        if not {"left", "right"} <= set(w.columns):
            continue
        w = w.dropna(subset=["left", "right"])
        lv, rv = w["left"].to_numpy(float), w["right"].to_numpy(float)
        big = np.maximum(np.abs(lv), np.abs(rv))
        ok = big > 0
        stem = w["feature"].str.replace(r"_(m|s|n_s|w|w_kg|n|m_s|n_kg)$", "", regex=True)
        for sfx, vals, meth in (
            (
                "_lsi_pct",
                weaker_limb_lsi(lv, rv),
                "100 min(mean L, mean R)/max(...) across single-leg trials",
            ),
            (
                "_asym_pct",
                symmetry_index(lv, rv),
                "100 (R-L)/(0.5(R+L)) of the legs' trial means (Robinson 1987)",
            ),
        ):
            parts.append(
                pd.DataFrame(
                    {
                        "recording_id": None,
                        "subject_id": w["subject_id"],
                        "session": w["session"],
                        "task": out_task,
                        "trial": None,
                        "feature": stem + sfx,
                        "side": "bilateral",
                        "value": np.where(ok, vals, np.nan),
                        "unit": "%",
                        "method": meth,
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out = out[np.isfinite(out["value"].to_numpy(float))]
    return out[cols].sort_values(["subject_id", "session", "feature"]).reset_index(drop=True)
