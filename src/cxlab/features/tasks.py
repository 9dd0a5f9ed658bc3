"""Per-task adapters: one trial's arrays + configuration → rows of the features table.

Each adapter takes a :class:`Trial` and the :class:`~cxlab.features.config.FeatureConfig`
and returns a list of :class:`~cxlab.features.measure.Measure` (feature, side, value, unit,
method), or raises :class:`~cxlab.features.events.FeatureError` with the reason the trial
cannot be used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cxlab.features import (
    alignment,
    balance,
    battery,
    efficiency,
    isometric,
    jump,
    landing,
    posture,
)
from cxlab.features.asymmetry import symmetry_index, weaker_limb_lsi
from cxlab.features.emg import emg_features
from cxlab.features.events import FeatureError, foot_events
from cxlab.features.measure import Measure, Sided, measures, whole
from cxlab.features.signal import fill_gaps, lowpass, nan_runs

if TYPE_CHECKING:
    from cxlab.features.config import FeatureConfig

__all__ = [
    "FUNCTIONS",
    "SINGLE_LEG_METRICS",
    "SINGLE_LEG_PAIRS",
    "Measure",
    "Trial",
    "capture_warnings",
]


@dataclass
class Trial:
    """One recording's data. ``plates[k]`` = dict of 1-D arrays (``fz``, ``cop_x``, ``cop_y``)."""

    task: str
    plates: dict = field(default_factory=dict)
    analog_rate_hz: float = float("nan")
    markers: dict = field(default_factory=dict)
    point_rate_hz: float = float("nan")
    body_mass_kg: float = float("nan")  # from the export header (recordings), kg
    #: EMG inputs (read only for tasks that run "emg"): label -> samples at analog_rate_hz,
    #: events as (label, context, time_s), and the session's MVC trials as
    #: (task, rate_hz, {label: samples}).
    analogs: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    mvc: list = field(default_factory=list)


def _plate(trial: Trial, number: int, what: str = "fz") -> np.ndarray:
    if number not in trial.plates:
        raise FeatureError(
            f"{trial.task}: force plate {number} is missing "
            f"(plates present: {sorted(trial.plates) or 'none'})"
        )
    return trial.plates[number][what]


def _lr_force(trial: Trial, cfg: FeatureConfig):
    p = cfg.plates
    left, right = _plate(trial, p.left), _plate(trial, p.right)
    for num, f in ((p.left, left), (p.right, right)):
        bad = int((~np.isfinite(f)).sum())
        if bad:  # read as 0 N, a missing signal would look like an unloaded foot
            raise FeatureError(
                f"{trial.task}: force plate {num} has {bad} of {f.size} fz "
                "samples missing (NaN); re-export the trial with that plate "
                "calibrated"
            )
    return left + right, left, right


def cmj(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """CMJ metrics from the two plates (body mass from the initial quiet standing)."""
    ev = cfg.events
    fz, fl, fr = _lr_force(trial, cfg)
    m = jump.cmj_metrics(
        fz,
        rate_hz=trial.analog_rate_hz,
        fz_left=fl,
        fz_right=fr,
        threshold_n=ev.threshold_n,
        n_sd=ev.onset_n_sd,
        window_s=ev.quiet_window_s,
    )
    return measures("cmj", m, jump.CMJ_UNITS, jump.CMJ_METHODS)


def landing_kinetics(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Landing kinetics; body mass from the trial's own final quiet standing."""
    ev = cfg.events
    fz, fl, fr = _lr_force(trial, cfg)
    rate = trial.analog_rate_hz
    td = landing.touchdown(fz, rate_hz=rate, threshold_n=ev.threshold_n)
    bm = landing.landing_body_mass(fz, rate_hz=rate, start=td, window_s=ev.quiet_window_s)
    m = landing.landing_metrics(
        fz, rate_hz=rate, body_mass_kg=bm.body_mass_kg, threshold_n=ev.threshold_n
    )
    left, right = float(np.nanmax(fl[td:])), float(np.nanmax(fr[td:]))
    m |= {
        "peak_force_n": Sided(left, right, m["peak_force_n"]),
        "peak_force_lsi_pct": float(weaker_limb_lsi(left, right)),
        "peak_force_asym_pct": float(symmetry_index(left, right)),
    }
    units = landing.LANDING_UNITS | {"peak_force_lsi_pct": "%", "peak_force_asym_pct": "%"}
    methods = landing.LANDING_METHODS | {
        "peak_force_lsi_pct": "100 min(L,R)/max(L,R)",
        "peak_force_asym_pct": "100 (R-L)/(0.5(R+L)) (Robinson 1987)",
    }
    units.pop("body_mass_kg")
    return measures("landing", m, units, methods)


def _marker(trial: Trial, cfg: FeatureConfig, names) -> np.ndarray:
    """First available marker of ``names``, gap-filled and low-pass filtered."""
    return _markers(trial, cfg, [names])[0]


def _available(trial: Trial, name: str) -> bool:
    return name in trial.markers and bool(np.isfinite(trial.markers[name]).any())


def _markers(trial: Trial, cfg: FeatureConfig, choices) -> list[np.ndarray]:
    """For each list of names in ``choices``, its first available marker, gap-filled and
    low-pass filtered; the filterable ones (finite, > 30 frames) of one length go through
    one ``lowpass`` call (channels filter independently: the same bits as one call each)."""
    out = []
    for names in choices:
        name = next((n for n in names if _available(trial, n)), None)
        if name is None:
            raise FeatureError(f"{trial.task}: marker {' / '.join(names)} is missing")
        out.append(
            fill_gaps(
                trial.markers[name], rate_hz=trial.point_rate_hz, max_gap_s=cfg.filters.max_gap_s
            ).filled
        )
    fc = cfg.filters.marker_cutoff_hz
    if not fc:
        return out
    todo = [i for i, x in enumerate(out) if x.shape[0] > 30 and np.isfinite(x).all()]
    for n in sorted({out[i].shape[0] for i in todo}):
        same = [i for i in todo if out[i].shape[0] == n]
        cols = np.cumsum([0] + [out[i].shape[1] if out[i].ndim == 2 else 1 for i in same])
        flat = np.column_stack([out[i] for i in same])
        filtered = lowpass(flat, rate_hz=trial.point_rate_hz, cutoff_hz=fc)
        for i, a, b in zip(same, cols[:-1], cols[1:], strict=True):
            out[i] = np.ascontiguousarray(filtered[:, a:b]).reshape(out[i].shape)
    return out


def _leg_markers(trial: Trial, cfg: FeatureConfig) -> dict:
    """Hip, knee and ankle joint centres and the ASIS markers of both legs, conditioned
    together (:func:`_markers`); hip centres from the pelvis markers (Bell 1990, see
    :func:`~cxlab.features.alignment.hip_joint_centres`) when the file has none."""
    mk = cfg.markers
    hips = [[n] for n in mk.hip]
    from_pelvis = not all(_available(trial, n) for n in mk.hip)
    if from_pelvis:
        hips = [[n] for n in (*mk.asis, *mk.psis)]
    legs = []
    for i in range(2):
        legs += [[mk.knee[i], mk.knee_fallback[i]], [mk.ankle[i], mk.ankle_fallback[i]]]
    got = _markers(trial, cfg, [*hips, *legs, *([n] for n in mk.asis)])
    h, (lk, la, rk, ra, lasi, rasi) = got[: len(hips)], got[len(hips) :]
    out = {}
    out["LHJC"], out["RHJC"] = alignment.hip_joint_centres(*h) if from_pelvis else h
    out |= {"LKJC": lk, "LAJC": la, "RKJC": rk, "RAJC": ra, "LASI": lasi, "RASI": rasi}
    return out


def landing_kinematics(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Knee FPPA and pelvic drop from touchdown to ``landing_window_s`` after it."""
    ev = cfg.events
    fz, _, _ = _lr_force(trial, cfg)
    td = landing.touchdown(fz, rate_hz=trial.analog_rate_hz, threshold_n=ev.threshold_n)
    start = round(td / trial.analog_rate_hz * trial.point_rate_hz)
    stop = start + round(ev.landing_window_s * trial.point_rate_hz) + 1
    mk = _leg_markers(trial, cfg)
    m = alignment.landing_alignment(mk, start=start, stop=stop)
    return measures("", m, alignment.ALIGNMENT_UNITS, alignment.ALIGNMENT_METHODS)


def balance_sway(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Sway of the longest loaded stretch on the balance plate (side = stance leg)."""
    ev, side = cfg.events, cfg.tasks[trial.task].side or "bilateral"
    num = cfg.plates.balance
    fz = _plate(trial, num)
    cop = np.column_stack([_plate(trial, num, "cop_x"), _plate(trial, num, "cop_y")])
    # a CoP-only export (no force measured: fz all NaN) is loaded wherever it has a CoP;
    # a measured fz of NaN is never read as 0 N
    loaded = fz >= ev.threshold_n if np.isfinite(fz).any() else np.ones(fz.shape, bool)
    ok = loaded & np.isfinite(cop).all(axis=1)
    runs = nan_runs(ok)
    rate = trial.analog_rate_hz
    if runs.size == 0 or (runs[:, 1] - runs[:, 0]).max() < ev.balance_min_s * rate:
        longest = 0 if runs.size == 0 else (runs[:, 1] - runs[:, 0]).max() / rate
        raise FeatureError(
            f"{trial.task}: no loaded stance of ≥ {ev.balance_min_s:g} s "
            f"on plate {num} (longest {longest:.2f} s)"
        )
    s, e = runs[np.argmax(runs[:, 1] - runs[:, 0])]
    c = cop[s:e]
    fc = cfg.filters.cop_cutoff_hz
    if fc:
        c = lowpass(c, rate_hz=rate, cutoff_hz=fc)
    m = balance.cop_metrics(c, rate_hz=rate)
    return measures("balance", m, balance.BALANCE_UNITS, balance.BALANCE_METHODS, side=side)


def posture_static(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Craniovertebral angle, shoulder protraction and pelvic tilt (medians over frames)."""
    m = posture.posture_metrics(trial.markers)
    return measures("posture", m, posture.POSTURE_UNITS, posture.POSTURE_METHODS)


def gait(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Step/stance-time symmetry (Zeni 2008 events) and SPARC of pelvis horizontal speed."""
    mk, rate = cfg.markers, trial.point_rate_hz
    pel = np.mean(_markers(trial, cfg, [[n] for n in (*mk.asis, *mk.psis)]), axis=0)
    ev = {}
    for i, side in enumerate(("left", "right")):
        heel = _marker(trial, cfg, mk.heel[i::2])
        toe = _marker(trial, cfg, mk.toe[i::2])
        ev[side] = foot_events(heel, toe, pel, rate_hz=rate)
    t = efficiency.gait_timing(ev["left"], ev["right"], rate_hz=rate)
    runs = nan_runs(np.isfinite(pel).all(axis=1))
    if runs.size == 0 or (runs[:, 1] - runs[:, 0]).max() < rate:
        raise FeatureError(f"{trial.task}: pelvis markers visible for < 1 s without a gap")
    s, e = runs[np.argmax(runs[:, 1] - runs[:, 0])]  # longest gap-free stretch
    speed = np.linalg.norm(np.gradient(pel[s:e, :2], 1.0 / rate, axis=0), axis=1)
    if cfg.filters.speed_cutoff_hz:
        speed = lowpass(speed, rate_hz=rate, cutoff_hz=cfg.filters.speed_cutoff_hz)
    return [
        Measure(
            "gait_step_time_asym_pct",
            "bilateral",
            t.step_time_asym_pct,
            "%",
            "100 (R-L)/(0.5(R+L)) of mean step time, Zeni 2008 events",
        ),
        Measure(
            "gait_stance_time_asym_pct",
            "bilateral",
            t.stance_time_asym_pct,
            "%",
            "100 (R-L)/(0.5(R+L)) of mean stance time, Zeni 2008 events",
        ),
        Measure(
            "gait_sparc",
            "bilateral",
            efficiency.sparc(speed, rate_hz=rate),
            "1",
            "SPARC of pelvis horizontal speed, longest gap-free stretch (Balasubramanian 2015)",
        ),
    ]


def _header_mass(trial: Trial) -> float | None:
    m = trial.body_mass_kg
    return float(m) if m is not None and np.isfinite(m) and m > 0 else None


def _mass_measures(
    prefix: str, trial: Trial, standing_kg: float, cfg: FeatureConfig
) -> tuple[float, list[Measure]]:
    """Header vs quiet-standing body mass (warns beyond ``events.body_mass_tolerance_pct``)."""
    bm = battery.body_mass_estimate(
        _header_mass(trial),
        standing_kg,
        where=trial.task,
        tolerance_pct=cfg.events.body_mass_tolerance_pct,
    )
    m = {"body_mass_kg": bm.body_mass_kg, "body_mass_standing_kg": bm.standing_kg}
    if bm.source == "header":
        m |= {"body_mass_header_kg": bm.header_kg, "body_mass_difference_pct": bm.difference_pct}
    return bm.body_mass_kg, measures(prefix, m, battery.BATTERY_UNITS, battery.BATTERY_METHODS)


def _standing_kg(fz, rate, cfg, *, stop=None, start=0) -> float:
    from cxlab.features.events import quiet_standing
    from cxlab.units import G

    qs = quiet_standing(
        fz, rate_hz=rate, window_s=cfg.events.quiet_window_s, start=start, stop=stop
    )
    return qs.weight_n / G


def _lr_or_single(trial: Trial, cfg: FeatureConfig):
    """(total, left, right) from both plates when both are present, else (plate, None, None)."""
    p = cfg.plates
    if p.left in trial.plates and p.right in trial.plates:
        return _lr_force(trial, cfg)
    present = sorted(trial.plates)
    if not present:
        raise FeatureError(f"{trial.task}: no force plate in the recording")
    f = _plate(trial, present[0])
    if not np.isfinite(f).all():
        raise FeatureError(f"{trial.task}: force plate {present[0]} has missing fz samples")
    return f, None, None


def _mean(values: list[float] | list[Sided]) -> float | Sided:
    """The mean of one metric over jumps (of each side, for a per-limb metric)."""
    if not isinstance(values[0], Sided):
        return float(np.mean(values))
    left, right, both = zip(*values, strict=True)
    return Sided(
        float(np.mean(left)),
        float(np.mean(right)),
        None if both[0] is None else float(np.mean(both)),
    )


def squat_jump(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Squat jumps (every jump of a multi-jump trial; values are the mean over jumps)."""
    ev, rate = cfg.events, trial.analog_rate_hz
    fz, fl, fr = _lr_or_single(trial, cfg)
    segs = battery.jump_segments(fz, rate_hz=rate, threshold_n=ev.threshold_n)
    if len(segs) == 0:
        raise FeatureError(
            f"{trial.task}: no take-off found (force never below {ev.threshold_n:g} N for ≥ 50 ms)"
        )
    first = fz[: segs[0, 1]]
    mass, rows = _mass_measures(
        "sj", trial, _standing_kg(first, rate, cfg, stop=int(np.argmax(first))), cfg
    )
    jumps, errors = [], []
    for a, b in segs:
        try:
            jumps.append(
                battery.sj_metrics(
                    fz[a:b],
                    rate_hz=rate,
                    body_mass_kg=mass,
                    fz_left=None if fl is None else fl[a:b],
                    fz_right=None if fr is None else fr[a:b],
                    threshold_n=ev.threshold_n,
                    n_sd=ev.onset_n_sd,
                    window_s=ev.quiet_window_s,
                )
            )
        except FeatureError as e:
            errors.append(str(e))
    if not jumps:
        raise FeatureError(f"{trial.task}: {errors[0]}")
    mean = {k: _mean([j[k] for j in jumps]) for k in jumps[0] if k != "body_mass_kg"}
    mean["n_jumps"] = float(len(jumps))
    return rows + measures("sj", mean, battery.BATTERY_UNITS, battery.BATTERY_METHODS)


def drop_jump(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Drop jump from a box onto the plate(s): contact time, RSI, peak forces."""
    ev = cfg.events
    fz, fl, fr = _lr_or_single(trial, cfg)
    m = battery.dj_metrics(
        fz,
        rate_hz=trial.analog_rate_hz,
        fz_left=fl,
        fz_right=fr,
        body_mass_kg=_header_mass(trial),
        threshold_n=ev.threshold_n,
        window_s=ev.quiet_window_s,
    )
    return measures("dj", m, battery.BATTERY_UNITS, battery.BATTERY_METHODS)


def isometric_pull(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """IMTP / isometric squat: peak force, RFD and impulse windows, per-side asymmetry."""
    ev, rate = cfg.events, trial.analog_rate_hz
    fz, fl, fr = _lr_or_single(trial, cfg)
    m = isometric.imtp_metrics(
        fz,
        rate_hz=rate,
        fz_left=fl,
        fz_right=fr,
        n_sd=ev.onset_n_sd,
        window_s=ev.quiet_window_s,
    )
    mass, rows = _mass_measures("imtp", trial, m["body_mass_kg"], cfg)
    for k in ("peak_force_n", "peak_force_net_n"):
        m[f"{k}_kg"] = whole(m[k]) / mass
    m.pop("body_mass_kg")
    return rows + measures("imtp", m, isometric.IMTP_UNITS, isometric.IMTP_METHODS)


def _single_side(trial: Trial, cfg: FeatureConfig) -> tuple[np.ndarray, str]:
    """The stance plate's force and the side: from the task's ``side`` or the loaded plate."""
    side = cfg.tasks[trial.task].side
    p = cfg.plates
    loads = {n: float(np.nansum(np.abs(d["fz"]))) for n, d in trial.plates.items()}
    if not loads:
        raise FeatureError(f"{trial.task}: no force plate in the recording")
    if side is None:
        num = max(loads, key=loads.get)
        side = "left" if num == p.left else "right" if num == p.right else None
        if side is None:
            raise FeatureError(
                f"{trial.task}: the loaded plate {num} is neither the left "
                f"({p.left}) nor the right ({p.right}) plate; name the "
                "side in the task (e.g. cmj_left)"
            )
    fz = np.sum([d["fz"] for d in trial.plates.values()], axis=0)
    if not np.isfinite(fz).all():
        raise FeatureError(f"{trial.task}: missing fz samples on the stance plate")
    return fz, side


def single_leg_cmj(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Single-leg CMJ: the CMJ metrics of the stance leg (rows carry its side)."""
    ev = cfg.events
    fz, side = _single_side(trial, cfg)
    m = jump.cmj_metrics(
        fz,
        rate_hz=trial.analog_rate_hz,
        body_mass_kg=_header_mass(trial),
        threshold_n=ev.threshold_n,
        n_sd=ev.onset_n_sd,
        window_s=ev.quiet_window_s,
    )
    return measures("slcmj", m, jump.CMJ_UNITS, jump.CMJ_METHODS, side=side)


def single_leg_hop(trial: Trial, cfg: FeatureConfig) -> list[Measure]:
    """Single-leg repeated hops: contact time, flight height and RSI of the stance leg."""
    fz, side = _single_side(trial, cfg)
    m = battery.hop_metrics(fz, rate_hz=trial.analog_rate_hz, threshold_n=cfg.events.threshold_n)
    return measures("slhop", m, battery.BATTERY_UNITS, battery.BATTERY_METHODS, side=side)


#: Session-level LSI of single-leg tests: output task -> (left task, right task), features.
#: This is the one declaration of which features may be paired across two SEPARATE
#: single-leg trials (a left-leg trial and a right-leg trial): performance outcomes of
#: unilateral jump tests (jump height, propulsive impulse, peak power, RSI), whose limb
#: symmetry index is by definition formed from separate trials (Bishop, Read, Lake, Chavda &
#: Turner 2018, *Strength Cond J* 40(4):1-6). Anything else a single-leg trial yields (body
#: mass, hop or jump counts, protocol durations, signed values) is never paired: the
#: runner's stored ``*_lsi_pct``/``*_asym_pct``, the report's asymmetry table and the
#: profile page all read this mapping (:mod:`cxlab.features.pairing`).
SINGLE_LEG_PAIRS = {
    "cmj_single_leg": ("cmj_left", "cmj_right"),
    "hop_single_leg": ("hop_left", "hop_right"),
}
SINGLE_LEG_METRICS = {
    "cmj_single_leg": [
        "slcmj_jump_height_impulse_m",
        "slcmj_propulsive_impulse_n_s",
        "slcmj_peak_propulsive_power_w",
    ],
    "hop_single_leg": ["slhop_rsi", "slhop_jump_height_flight_m"],
}


def capture_warnings(fn, trial: Trial, cfg: FeatureConfig) -> tuple[list[Measure], list[str]]:
    """Run one adapter; return its measures and the text of the CxlabWarnings it raised."""
    from cxlab._check import CxlabWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CxlabWarning)
        rows = fn(trial, cfg)
    return rows, [str(w.message) for w in caught if issubclass(w.category, CxlabWarning)]


FUNCTIONS = {
    "sj": squat_jump,
    "dj": drop_jump,
    "imtp": isometric_pull,
    "single_leg_cmj": single_leg_cmj,
    "single_leg_hop": single_leg_hop,
    "cmj": cmj,
    "landing": landing_kinetics,
    "landing_alignment": landing_kinematics,
    "balance": balance_sway,
    "posture": posture_static,
    "gait": gait,
    "emg": emg_features,
}
