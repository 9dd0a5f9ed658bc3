"""Per-task curve builders: one trial → its time-normalised phase curves.

Each builder takes a :class:`~cxlab.features.tasks.Trial` and the feature configuration
and returns :class:`Curve` rows; :func:`trial_curves` runs the builders a task declares in
``[curves.tasks]`` of ``features.toml``, and ``cxlab features`` writes the result as the
``curves`` table. Phases use the same events as the scalar features (docs/features.md):

* ``cmj``: movement onset (body weight − 5 SD of quiet standing, Owen et al. 2014) →
  take-off (force below the contact threshold); ``cmj_landing``: touchdown →
  ``landing_window_s`` after it.
* ``landing``: initial contact (touchdown after ≥ 50 ms unloaded) → ``landing_window_s``
  after it; vertical force and, with leg markers, knee FPPA (Willson & Davis 2008).
* with EMG channels, ``cmj`` and ``landing`` also give each muscle's linear envelope over the
  phase (``emg_<muscle>``, % of the trial's peak envelope).
* ``dj``: the drop jump's ground contact, touchdown from the box → take-off.
* ``gait``: the gait cycle, foot strike → next strike of the same foot on that foot's
  plate (instrumented treadmill or a plate hit twice); the cycles of a trial are averaged.
  Joint curves take the file's ``Foot Strike`` events, else the plate strikes, else foot
  strikes from markers (Zeni et al. 2008, :func:`cxlab.features.events.foot_events`).

Forces are expressed in body weights (``fz_bw``: Fz / (m·g), body mass from the trial's own
quiet standing) so that curves of different people can be averaged.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import warn
from cxlab.features import alignment, landing
from cxlab.features.curve_signals import NO_JOINTS, Curve, JointData, joint_curves, plate_curves
from cxlab.features.curves import time_normalise
from cxlab.features.events import (
    FeatureError,
    contacts,
    flights,
    foot_events,
    movement_onset,
    quiet_standing,
)
from cxlab.features.tasks import (
    Trial,
    _available,
    _header_mass,
    _leg_markers,
    _lr_force,
    _lr_or_single,
    _marker,
    _markers,
    _plate,
)

if TYPE_CHECKING:
    from cxlab.features.config import FeatureConfig

__all__ = [
    "CURVE_BUILDERS",
    "Curve",
    "JointData",
    "SquatEvents",
    "cmj_curves",
    "curves_frame",
    "dj_curves",
    "emg_curves",
    "gait_curves",
    "landing_curves",
    "sls_curves",
    "sls_events",
    "trial_curves",
]


def _settings(cfg: FeatureConfig) -> tuple[int, str, float]:
    """``[curves]``: (nodes per phase, resampling method, landing window in s)."""
    c = cfg.curves
    return c.nodes, c.method, c.landing_window_s


def _force_curves(
    phase: str,
    sides: dict[str, np.ndarray],
    bw_n: float,
    start: int,
    stop: int,
    rate: float,
    cfg: FeatureConfig,
    events_txt: str,
) -> list[Curve]:
    n, method, _ = _settings(cfg)
    t0, t1 = start / rate, stop / rate
    segs = np.column_stack([f[start : stop + 1] / bw_n for f in sides.values()])
    # one call for the sides (columns resample independently: the numbers of one call each)
    ys = time_normalise(segs, [0.0, (stop - start) / rate], rate_hz=rate, n=n, method=method)
    txt = f"{events_txt}; {method}, {n} nodes"
    return [
        Curve(phase, "fz_bw", side, "BW", np.ascontiguousarray(ys[:, j]), t0, t1, txt)
        for j, side in enumerate(sides)
    ]


def _plate_sides(trial: Trial, cfg: FeatureConfig) -> dict:
    """Side -> plate dict(s) for :func:`plate_curves`: both feet's plates (``bilateral``
    summed) when both are present, else the one plate as ``bilateral``."""
    p = cfg.plates
    if p.left in trial.plates and p.right in trial.plates:
        left, right = trial.plates[p.left], trial.plates[p.right]
        return {"bilateral": [left, right], "left": left, "right": right}
    present = sorted(trial.plates)
    return {"bilateral": trial.plates[present[0]]} if present else {}


def _phase_extras(
    trial: Trial,
    cfg: FeatureConfig,
    joints: JointData,
    *,
    phase: str,
    bw_n: float,
    start: int,
    stop: int,
    events_txt: str,
) -> list[Curve]:
    """Shear and CoP (each plate) and both legs' joint curves over a bilateral force phase
    ``start → stop`` (analog samples, inclusive)."""
    n, method, _ = _settings(cfg)
    rate = trial.analog_rate_hz
    out = plate_curves(
        _plate_sides(trial, cfg),
        phase=phase,
        bw_n=bw_n,
        windows=[(start, stop)],
        rate_hz=rate,
        n=n,
        method=method,
        events_txt=events_txt,
    )
    win = [(start / rate, stop / rate)]
    return out + joint_curves(
        joints,
        phase=phase,
        windows={"left": win, "right": win},
        n=n,
        method=method,
        events_txt=events_txt,
    )


def emg_curves(
    trial: Trial,
    cfg: FeatureConfig,
    /,
    *,
    phase: str,
    start_s: float,
    end_s: float,
    events_txt: str,
) -> list[Curve]:
    """EMG linear envelopes over a phase, in % of each channel's peak envelope in the trial.

    The channels are those ``emg.toml`` maps to a muscle
    (:func:`cxlab.features.emg.emg_channels`) that pass the quality checks
    (:func:`~cxlab.features.emg.emg_quality`); each envelope is band-pass, full-wave
    rectification and low-pass with the ``[emg]`` filter settings
    (:func:`~cxlab.features.emg.emg_envelope`; Winter 2009 §10.3), divided by its peak over
    the whole trial (peak dynamic normalisation; Burden 2010, *J Electromyogr Kinesiol*
    20:1023) so curves of different people share a scale, then time-normalised over the
    phase. Signal ``emg_<muscle>``, unit ``%peak``; none without EMG channels.

    .. warning::
       Peak normalisation compares the *shape* of activation, not its level: a programme
       that raises activation everywhere is invisible in these curves.
    """
    from cxlab.features.emg import emg_channels, emg_envelope, emg_quality

    emg_map = cfg.emg
    if not trial.analogs or emg_map is None:
        return []
    rate = trial.analog_rate_hz
    f, q = emg_map.settings["filters"], emg_map.settings["quality"]
    good = []
    for c in emg_channels(list(trial.analogs), emg_map):
        x = np.asarray(trial.analogs[c.label], dtype=float)
        if np.isfinite(x).all() and not emg_quality(x, rate_hz=rate, **q).flags[0]:
            good.append(c)
    if not good:
        return []
    x = np.column_stack([np.asarray(trial.analogs[c.label], dtype=float) for c in good])
    env = emg_envelope(
        x, rate_hz=rate, band_hz=f["band_hz"], lowpass_hz=f["lowpass_hz"], order=f["order"]
    )
    peak = env.max(axis=0)
    n, method, _ = _settings(cfg)
    y = time_normalise(100.0 * env / peak, [start_s, end_s], rate_hz=rate, n=n, method=method)
    return [
        Curve(
            phase,
            f"emg_{c.muscle}",
            c.side,
            "%peak",
            y[:, j],
            start_s,
            end_s,
            f"{events_txt}; EMG envelope ({f['band_hz'][0]:g}-{f['band_hz'][1]:g} Hz band-pass, "
            f"rectified, {f['lowpass_hz']:g} Hz low-pass) / trial peak, channel {c.label}; "
            f"{method}, {n} nodes",
        )
        for j, c in enumerate(good)
    ]


def cmj_curves(
    trial: Trial, cfg: FeatureConfig, /, *, joints: JointData = NO_JOINTS
) -> list[Curve]:
    """Vertical force (BW) from movement onset to take-off, and of the landing.

    Both phases also get shear and CoP curves from the plates and, with ``joints``, each
    leg's joint-angle and joint-moment curves (:func:`_phase_extras`).
    """
    ev = cfg.events
    fz, fl, fr = _lr_force(trial, cfg)
    rate = trial.analog_rate_hz
    fls = flights(fz, rate_hz=rate, threshold_n=ev.threshold_n)
    if fls.size == 0:
        raise FeatureError(f"{trial.task}: no take-off found for the CMJ curve")
    to, td = (int(v) for v in fls[0])
    qs = quiet_standing(fz, rate_hz=rate, window_s=ev.quiet_window_s, stop=to)
    onset = movement_onset(
        fz,
        rate_hz=rate,
        weight_n=qs.weight_n,
        sd_n=qs.sd_n,
        n_sd=ev.onset_n_sd,
        start=qs.start,
        stop=to,
    )
    sides = {"bilateral": fz, "left": fl, "right": fr}
    cmj_txt = f"onset (BW - {ev.onset_n_sd:g} SD) to take-off (< {ev.threshold_n:g} N)"
    out = _force_curves("cmj", sides, qs.weight_n, onset, to, rate, cfg, cmj_txt)
    out += emg_curves(
        trial,
        cfg,
        phase="cmj",
        start_s=onset / rate,
        end_s=to / rate,
        events_txt="movement onset to take-off",
    )
    _, _, window = _settings(cfg)
    stop = td + round(window * rate)
    land_txt = f"touchdown to +{window * 1000:g} ms"
    if stop < fz.size:
        out += _force_curves("cmj_landing", sides, qs.weight_n, td, stop, rate, cfg, land_txt)
    extra = dict(bw_n=qs.weight_n)
    out += _phase_extras(
        trial, cfg, joints, phase="cmj", start=onset, stop=to, events_txt=cmj_txt, **extra
    )
    if stop < fz.size:
        out += _phase_extras(
            trial,
            cfg,
            joints,
            phase="cmj_landing",
            start=td,
            stop=stop,
            events_txt=land_txt,
            **extra,
        )
    return out


def landing_curves(
    trial: Trial, cfg: FeatureConfig, /, *, joints: JointData = NO_JOINTS
) -> list[Curve]:
    """Vertical force (BW) and, with leg markers, knee FPPA from contact to the window's end;
    then shear, CoP and (with ``joints``) joint curves over the same phase."""
    ev = cfg.events
    fz, fl, fr = _lr_force(trial, cfg)
    rate = trial.analog_rate_hz
    td = landing.touchdown(fz, rate_hz=rate, threshold_n=ev.threshold_n)
    bm = landing.landing_body_mass(fz, rate_hz=rate, start=td, window_s=ev.quiet_window_s)
    _, _, window = _settings(cfg)
    stop = td + round(window * rate)
    if stop >= fz.size:
        raise FeatureError(
            f"{trial.task}: the recording ends {(fz.size - 1 - td) / rate:.3f} s "
            f"after contact, before the {window:g} s landing curve"
        )
    txt = f"initial contact (>= {ev.threshold_n:g} N) to +{window * 1000:g} ms"
    out = _force_curves(
        "landing",
        {"bilateral": fz, "left": fl, "right": fr},
        bm.body_mass_kg * landing.G,
        td,
        stop,
        rate,
        cfg,
        txt,
    )
    out += emg_curves(
        trial, cfg, phase="landing", start_s=td / rate, end_s=stop / rate, events_txt=txt
    )
    extras = _phase_extras(
        trial,
        cfg,
        joints,
        phase="landing",
        bw_n=bm.body_mass_kg * landing.G,
        start=td,
        stop=stop,
        events_txt=txt,
    )
    if trial.markers:
        try:
            mk = _leg_markers(trial, cfg)
        except FeatureError:
            return out + extras  # no leg markers: force curves only
        n, method, _ = _settings(cfg)
        prate = trial.point_rate_hz
        t_td, t_end = td / rate, stop / rate
        for side, s in (("left", "L"), ("right", "R")):
            ang = alignment.knee_fppa(mk[f"{s}HJC"], mk[f"{s}KJC"], mk[f"{s}AJC"], side=side)
            if t_end > (ang.size - 1) / prate:
                continue
            y = time_normalise(ang, [t_td, t_end], rate_hz=prate, n=n, method=method)
            out.append(
                Curve(
                    "landing",
                    "knee_fppa",
                    side,
                    "deg",
                    y,
                    t_td,
                    t_end,
                    f"{txt}; markers at {prate:g} Hz; {method}, {n} nodes",
                )
            )
    return out + extras


def dj_curves(trial: Trial, cfg: FeatureConfig, /, *, joints: JointData = NO_JOINTS) -> list[Curve]:
    """Vertical force (BW) of the drop jump's ground contact: touchdown → take-off.

    Touchdown is the first loaded sample after ≥ 50 ms unloaded on the box
    (:func:`cxlab.features.landing.touchdown`), take-off the first unloaded sample of the
    next flight (:func:`cxlab.features.events.flights`, first sample below
    ``events.threshold_n``); body weight is the header's mass, else the steadiest
    ``events.quiet_window_s`` of standing after the landing (as
    :func:`cxlab.features.battery.dj_metrics`).
    """
    ev = cfg.events
    fz, fl, fr = _lr_or_single(trial, cfg)
    rate = trial.analog_rate_hz
    td = landing.touchdown(fz, rate_hz=rate, threshold_n=ev.threshold_n)
    fls = flights(fz, rate_hz=rate, threshold_n=ev.threshold_n)
    after = fls[fls[:, 0] > td]
    if after.size == 0:
        raise FeatureError(f"{trial.task}: no take-off after the drop-jump contact")
    to = int(after[0, 0])
    header = _header_mass(trial)
    if header:
        bw = header * landing.G
    else:  # the steadiest standing after the landing's touchdown
        after_td = int(after[0, 1])
        bw = quiet_standing(fz, rate_hz=rate, window_s=ev.quiet_window_s, start=after_td).weight_n
    sides = {"bilateral": fz} | ({"left": fl, "right": fr} if fl is not None else {})
    txt = f"drop-jump contact: touchdown (>= {ev.threshold_n:g} N) to take-off"
    out = _force_curves("dj_contact", sides, bw, td, to, rate, cfg, txt)
    return out + _phase_extras(
        trial, cfg, joints, phase="dj_contact", bw_n=bw, start=td, stop=to, events_txt=txt
    )


def gait_curves(
    trial: Trial, cfg: FeatureConfig, /, *, joints: JointData = NO_JOINTS
) -> list[Curve]:
    """Vertical force (BW) over the gait cycle of each foot, the trial's cycles averaged.

    A cycle runs from a foot strike to the next strike of the same foot on that foot's
    plate (``[plates] left/right``; strikes are the first samples ≥ ``events.threshold_n``
    of contacts ≥ 100 ms, :func:`cxlab.features.events.contacts`), so stance is followed
    by swing (0 BW). Body weight is the header's mass, else the mean summed vertical force
    over that foot's whole cycles (over whole strides the vertical impulse equals body
    weight × time: impulse–momentum for periodic walking, Winter 2009 §5). A plate struck
    once (overground walkway) has no cycle and gives no force curve over the cycle.

    Also built, after those:

    * ``gait_cycle`` shear (:func:`~cxlab.features.curve_signals.plate_curves`; no CoP,
      the swing has none) over the same plate cycles;
    * ``gait_stance``: each contact on the foot's plate, foot strike → foot off (first
      sample below the threshold): ``fz_bw``, shear and CoP, the contacts averaged (BW
      curves only with a body weight: the header's, or from whole strides);
    * with ``joints``, each leg's joint-angle and joint-moment curves over its gait
      cycles, from the file's ``Foot Strike`` events of that side (context ``Left`` /
      ``Right``) when it has two or more, else from the plate strikes, else from the
      foot's heel and toe markers (:func:`cxlab.features.events.foot_events`, Zeni et
      al. 2008; a trial without heel or pelvis markers, or with a turn, gets a warning
      and no joint curves from markers).

    Returns
    -------
    list of Curve
        Phase ``gait_cycle``, signal ``fz_bw``, one curve per side with ≥ 1 whole cycle;
        ``method`` states the number of cycles averaged; then the curves above.
    """
    ev, p = cfg.events, cfg.plates
    rate = trial.analog_rate_hz
    n, method, _ = _settings(cfg)
    plates = {
        side: _plate(trial, p.of(side)) for side in ("left", "right") if p.of(side) in trial.plates
    }
    total = np.sum(list(plates.values()), axis=0) if plates else None
    header = _header_mass(trial)
    out = []
    extras: list[Curve] = []
    plate_cycles: dict[str, list[tuple[float, float]]] = {}
    stances: dict[str, list[list[Curve]]] = {}
    plate_txt = "foot strike (>= {thr:g} N on plate {plate}) to the next strike of the same foot"
    for side, f in plates.items():
        if not np.isfinite(f).all():
            raise FeatureError(f"{trial.task}: force plate {p.of(side)} has missing fz samples")
        on_off = contacts(f, rate_hz=rate, threshold_n=ev.threshold_n)
        strikes = on_off[:, 0]
        for foot, occ in _stance_curves(trial, cfg, side, on_off, header, total).items():
            stances.setdefault(foot, []).extend(occ)
        if strikes.size < 2:
            continue
        first, last = int(strikes[0]), int(strikes[-1])
        bw = header * landing.G if header else float(np.mean(total[first:last]))
        t = np.arange(f.size) / rate
        cyc = np.stack(
            [
                time_normalise(f / bw, [a / rate, b / rate], time=t, n=n, method=method)
                for a, b in itertools.pairwise(strikes)
            ]
        )
        k = cyc.shape[0]
        out.append(
            Curve(
                "gait_cycle",
                "fz_bw",
                side,
                "BW",
                cyc.mean(axis=0),
                first / rate,
                last / rate,
                f"foot strike (>= {ev.threshold_n:g} N on plate {p.of(side)}) to the next "
                f"strike of the same foot; mean of {k} cycle(s); body weight from "
                + ("the header mass" if header else "the mean force over whole strides")
                + f"; {method}, {n} nodes",
            )
        )
        cycles = [(int(a), int(b)) for a, b in itertools.pairwise(strikes)]
        plate_cycles[side] = [(a / rate, b / rate) for a, b in cycles]
        extras += plate_curves(
            {side: trial.plates[p.of(side)]},
            phase="gait_cycle",
            bw_n=bw,
            windows=cycles,
            rate_hz=rate,
            n=n,
            method=method,
            events_txt=plate_txt.format(thr=ev.threshold_n, plate=p.of(side)),
            cop=False,
        )
    out += extras
    out += [c for foot in sorted(stances) for c in _mean_of(stances[foot])]
    marker_cycles: dict[str, list[tuple[float, float]]] | str | None = None
    for side in ("left", "right"):
        strikes_s = sorted(
            t for label, ctx, t in trial.events if label == "Foot Strike" and ctx.lower() == side
        )
        if len(strikes_s) >= 2:
            wins = list(itertools.pairwise(strikes_s))
            txt = f"the file's {side.capitalize()} Foot Strike events, strike to next strike"
        elif side in plate_cycles:
            wins = plate_cycles[side]
            txt = plate_txt.format(thr=ev.threshold_n, plate=p.of(side))
        elif joints.angles is not None or joints.moments is not None:
            if marker_cycles is None:
                marker_cycles = _marker_gait_cycles(trial, cfg)
            if isinstance(marker_cycles, str):
                warn(marker_cycles, field="markers")
                marker_cycles = {}
            if len(marker_cycles.get(side, ())) < 1:
                continue
            wins = marker_cycles[side]
            txt = (
                f"foot strikes from markers (Zeni 2008): maxima of the {side} heel ahead of "
                "the pelvis along the walking direction, strike to next strike"
            )
        else:
            continue
        out += joint_curves(
            joints, phase="gait_cycle", windows={side: wins}, n=n, method=method, events_txt=txt
        )
    return out


def _marker_gait_cycles(
    trial: Trial, cfg: FeatureConfig
) -> dict[str, list[tuple[float, float]]] | str:
    """Each foot's gait cycles (start_s, end_s) on the marker time axis from its heel and
    toe markers (:func:`cxlab.features.events.foot_events`, Zeni et al. 2008), the
    pelvis centre being the mean of the ASIS and PSIS markers, else ``SACR``; or the
    reason there are none (no heel marker, no pelvis, a turn or a treadmill)."""
    mk, rate = cfg.markers, trial.point_rate_hz
    pelvis_sets = [[*mk.asis, *mk.psis], ["SACR"]]
    names = next((ns for ns in pelvis_sets if all(_available(trial, n) for n in ns)), None)
    if names is None:
        return (
            f"{trial.task}: no gait cycles from markers: pelvis markers "
            f"{' / '.join(pelvis_sets[0])} or SACR are missing"
        )
    out = {}
    for i, side in enumerate(("left", "right")):
        heel, toe = list(mk.heel[i::2]), list(mk.toe[i::2])
        if not any(_available(trial, n) for n in heel):
            return (
                f"{trial.task}: no gait cycles from markers: the {side} heel marker "
                f"({' / '.join(heel)}) is missing; label it or give the file Foot Strike events"
            )
        if not any(_available(trial, n) for n in toe):
            return f"{trial.task}: no gait cycles from markers: the {side} toe marker is missing"
        try:
            got = _markers(trial, cfg, [heel, toe, *([n] for n in names)])
            ev = foot_events(got[0], got[1], np.mean(got[2:], axis=0), rate_hz=rate)
        except FeatureError as e:
            return f"{trial.task}: no gait cycles from markers: {e}"
        out[side] = [(a / rate, b / rate) for a, b in itertools.pairwise(ev.strikes.tolist())]
    return out


def _stance_curves(
    trial: Trial,
    cfg: FeatureConfig,
    plate_side: str,
    on_off: np.ndarray,
    header: float | None,
    total: np.ndarray,
) -> dict[str, list[list[Curve]]]:
    """``gait_stance`` curves of each contact on one foot's plate, strike → foot off, by
    foot (averaged over every plate's contacts by :func:`_mean_of`).

    The foot is the one whose ``Foot Strike`` event in the file lies within 50 ms of
    the contact's strike (an overground walkway is stepped on by either foot), else the
    plate's ``[plates]`` side. The contacts of one foot are averaged node by node.
    """
    if not on_off.size:
        return {}
    ev, p = cfg.events, cfg.plates
    n, method, _ = _settings(cfg)
    rate = trial.analog_rate_hz
    strikes = on_off[:, 0]
    if header:
        bw, how = header * landing.G, "the header mass"
    elif strikes.size >= 2:
        bw, how = float(np.mean(total[strikes[0] : strikes[-1]])), "whole strides"
    else:
        bw, how = float("nan"), ""
    fs = [
        (t, str(ctx).lower())
        for label, ctx, t in trial.events
        if label == "Foot Strike" and str(ctx).lower() in ("left", "right")
    ]
    thr = ev.threshold_n
    plate = trial.plates[p.of(plate_side)]
    by_foot: dict[str, list[list[Curve]]] = {}
    for a, b in on_off:
        a, b = int(a), int(b)
        near = [s for t, s in fs if abs(t - a / rate) <= 0.05]
        foot = near[0] if len(set(near)) == 1 else plate_side
        who = "the file's Foot Strike event" if len(set(near)) == 1 else "[plates]"
        txt = (
            f"stance on plate {p.of(plate_side)} ({foot} foot from {who}): foot strike "
            f"(>= {thr:g} N) to foot off (first sample < {thr:g} N)"
        )
        one = []
        if np.isfinite(bw):
            y = time_normalise(
                plate["fz"][a : b + 1] / bw, [0.0, (b - a) / rate], rate_hz=rate, n=n, method=method
            )
            one.append(
                Curve(
                    "gait_stance",
                    "fz_bw",
                    foot,
                    "BW",
                    y,
                    a / rate,
                    b / rate,
                    f"{txt}; body weight from {how}; {method}, {n} nodes",
                )
            )
        one += plate_curves(
            {foot: plate},
            phase="gait_stance",
            bw_n=bw,
            windows=[(a, b)],
            rate_hz=rate,
            n=n,
            method=method,
            events_txt=txt,
        )
        by_foot.setdefault(foot, []).append(one)
    return by_foot


def _mean_of(occurrences: list[list[Curve]]) -> list[Curve]:
    """The node-by-node mean of several occurrences' curves (matched by signal)."""
    if len(occurrences) == 1:
        return occurrences[0]
    out = []
    for first in occurrences[0]:
        same = [c for occ in occurrences for c in occ if c.signal == first.signal]
        out.append(
            first._replace(
                values=np.mean([c.values for c in same], axis=0),
                start_s=min(c.start_s for c in same),
                end_s=max(c.end_s for c in same),
                method=f"{first.method}; mean of {len(same)} contact(s)",
            )
        )
    return out


class SquatEvents(NamedTuple):
    """A single-leg squat's events, samples of the depth signal."""

    start: int
    deepest: int
    end: int


def sls_events(height, /, *, fraction: float = 0.05, min_depth: float) -> SquatEvents:
    """Start, deepest point and end of a squat from a height-like signal.

    Parameters
    ----------
    height : array_like, shape (n_samples,)
        Pelvis (or hip-centre) height, m, or any signal that falls during the descent
        (e.g. −knee flexion, deg); NaN samples are ignored.
    fraction : float
        The squat starts at the last sample before the deepest point within
        ``fraction`` × depth of the highest point before it, and ends at the first sample
        after it within ``fraction`` × depth of the highest point after it (depth = that
        highest point − the lowest point). Default 5 %.
    min_depth : float
        Smallest depth accepted, in the signal's unit.

    Returns
    -------
    SquatEvents

    Raises
    ------
    FeatureError
        No finite sample, a depth below ``min_depth``, or a squat cut by the start or end
        of the recording.
    """
    h = np.asarray(height, dtype=float)
    if not np.isfinite(h).any():
        raise FeatureError("single-leg squat: the depth signal has no finite sample")
    deep = int(np.nanargmin(h))
    before, after = h[: deep + 1], h[deep:]
    top_b, top_a = float(np.nanmax(before)), float(np.nanmax(after))
    depth = min(top_b, top_a) - h[deep]
    if not depth >= min_depth:
        raise FeatureError(
            f"single-leg squat: the depth signal falls {depth:.3g} below standing (before "
            f"and after the deepest point), less than the {min_depth:g} a squat needs, or "
            "the squat is cut by the recording's start or end; record the whole squat"
        )
    up_b = np.flatnonzero(before >= top_b - fraction * (top_b - h[deep]))
    up_a = np.flatnonzero(after >= top_a - fraction * (top_a - h[deep]))
    return SquatEvents(int(up_b[-1]), deep, deep + int(up_a[0]))


def sls_curves(
    trial: Trial, cfg: FeatureConfig, /, *, joints: JointData = NO_JOINTS
) -> list[Curve]:
    """Single-leg squat phases: ``sls_descent`` (start → deepest) and ``sls_ascent``
    (deepest → end).

    The depth signal is the pelvis height, the mean vertical position of the ASIS and
    PSIS markers (``[markers] asis / psis``, gap-filled and low-pass filtered as for the
    alignment features) when at least two are present, else minus the stance knee's
    flexion from ``joints``; :func:`sls_events` (5 % of the depth) finds the events. The
    stance leg is the task's ``side`` (``[tasks.<task>] side``), else the leg the task's
    label ends with (``single_leg_squat_left``); without one, both legs' curves are built.

    Returns
    -------
    list of Curve
        Over each phase: ``knee_fppa`` per leg (deg, positive = valgus; Willson & Davis
        2008) with leg markers; the joint-angle/moment curves of ``joints``; with a force
        plate (the stance leg's ``[plates]`` plate, else the sum of every plate),
        ``fz_bw`` (body weight from the header mass, else the steadiest
        ``events.quiet_window_s`` of standing before the descent) and the shear and CoP
        curves of :func:`~cxlab.features.curve_signals.plate_curves`.
    """
    n, method, _ = _settings(cfg)
    spec = cfg.tasks.get(trial.task)
    stance = spec.side if spec is not None and spec.side in ("left", "right") else None
    if spec is None:  # a curves-only task: the leg its label names (single_leg_squat_left)
        stance = next((s for s in ("left", "right") if trial.task.endswith(f"_{s}")), None)
    legs = [stance] if stance else ["left", "right"]
    mk = cfg.markers
    pelvis = []
    for name in (*mk.asis, *mk.psis):
        try:
            pelvis.append(_marker(trial, cfg, [name]))
        except FeatureError:
            pass
    if len(pelvis) >= 2:
        rate = trial.point_rate_hz
        height = np.mean([m[:, 2] for m in pelvis], axis=0)
        ev = sls_events(height, min_depth=0.03)
        source = "pelvis height (mean of the ASIS/PSIS markers)"
    elif joints.angles is not None and len(joints.angles):
        leg = stance or "left"
        g = joints.angles[(joints.angles["side"] == leg) & (joints.angles["joint"] == "knee")]
        g = g.sort_values("frame")
        t = g["time_s"].to_numpy(float)
        if t.size < 3:
            raise FeatureError(f"{trial.task}: no pelvis markers and no {leg} knee angles")
        rate = 1.0 / float(np.median(np.diff(t)))
        ev = sls_events(-g["flexion_deg"].to_numpy(float), min_depth=10.0)
        ev = SquatEvents(*(round(t[i] * rate) for i in ev))
        source = f"{leg} knee flexion ({joints.angles['method'].iloc[0]})"
    else:
        raise FeatureError(
            f"{trial.task}: a single-leg squat needs pelvis markers ({', '.join(mk.asis)}, "
            f"{', '.join(mk.psis)}) or knee angles to find its descent and ascent"
        )
    t0, t_deep, t1 = (i / rate for i in ev)
    if not t0 < t_deep < t1:
        raise FeatureError(f"{trial.task}: the squat has no descent or no ascent")
    phases = (
        ("sls_descent", t0, t_deep, f"descent: squat start to the deepest point of the {source}"),
        ("sls_ascent", t_deep, t1, f"ascent: the deepest point to squat end of the {source}"),
    )
    txt_events = "; start/end within 5 % of the depth of standing"
    out: list[Curve] = []
    fppa = {}
    if trial.markers:
        try:
            lm = _leg_markers(trial, cfg)
            for leg in legs:
                s = leg[0].upper()
                fppa[leg] = alignment.knee_fppa(
                    lm[f"{s}HJC"], lm[f"{s}KJC"], lm[f"{s}AJC"], side=leg
                )
        except FeatureError:
            fppa = {}  # no leg markers: no FPPA curve
    plate = _sls_plate(trial, cfg, stance)
    bw = float("nan")
    if plate is not None:
        arate = trial.analog_rate_hz
        header = _header_mass(trial)
        if header:
            bw, how = header * landing.G, "the header mass"
        else:
            try:
                bw = quiet_standing(
                    plate[1]["fz"],
                    rate_hz=arate,
                    window_s=cfg.events.quiet_window_s,
                    stop=round(t0 * arate),
                ).weight_n
                how = "quiet standing before the descent"
            except (FeatureError, ValueError):
                bw = float("nan")
    for phase, a, b, txt in phases:
        txt = txt + txt_events
        for leg, ang in fppa.items():
            prate = trial.point_rate_hz
            if b > (ang.size - 1) / prate:
                continue
            y = time_normalise(ang, [a, b], rate_hz=prate, n=n, method=method)
            out.append(
                Curve(
                    phase,
                    "knee_fppa",
                    leg,
                    "deg",
                    y,
                    a,
                    b,
                    f"{txt}; markers at {prate:g} Hz; {method}, {n} nodes",
                )
            )
        out += joint_curves(
            joints,
            phase=phase,
            windows={leg: [(a, b)] for leg in legs},
            n=n,
            method=method,
            events_txt=txt,
        )
        if plate is None:
            continue
        side, p = plate
        arate = trial.analog_rate_hz
        i0, i1 = round(a * arate), round(b * arate)
        if i1 >= p["fz"].size or i1 <= i0:
            continue
        ptxt = f"{txt}; force plate {side}"
        if np.isfinite(bw):
            y = time_normalise(
                p["fz"][i0 : i1 + 1] / bw,
                [0.0, (i1 - i0) / arate],
                rate_hz=arate,
                n=n,
                method=method,
            )
            out.append(
                Curve(
                    phase,
                    "fz_bw",
                    side,
                    "BW",
                    y,
                    i0 / arate,
                    i1 / arate,
                    f"{ptxt}; body weight from {how}; {method}, {n} nodes",
                )
            )
        out += plate_curves(
            {side: p},
            phase=phase,
            bw_n=bw,
            windows=[(i0, i1)],
            rate_hz=arate,
            n=n,
            method=method,
            events_txt=ptxt,
        )
    return out


def _sls_plate(trial: Trial, cfg: FeatureConfig, stance: str | None) -> tuple[str, dict] | None:
    """(side label, plate arrays) of a single-leg squat: the stance leg's plate, else the
    sum of every plate (``bilateral``); None without plates."""
    if not trial.plates:
        return None
    p = cfg.plates
    if stance and p.of(stance) in trial.plates:
        return stance, trial.plates[p.of(stance)]
    keys = sorted(trial.plates)
    if len(keys) == 1:
        return (stance or "bilateral"), trial.plates[keys[0]]
    summed = {
        c: np.sum([np.asarray(trial.plates[k][c], dtype=float) for k in keys], axis=0)
        for c in ("fz", "fx", "fy")
        if all(c in trial.plates[k] for k in keys)
    }
    return "bilateral", summed


CURVE_BUILDERS = {
    "cmj": cmj_curves,
    "landing": landing_curves,
    "dj": dj_curves,
    "gait": gait_curves,
    "sls": sls_curves,
}


def trial_curves(
    trial: Trial, cfg: FeatureConfig, /, *, joints: JointData = NO_JOINTS
) -> list[Curve]:
    """The curves of every builder that ``[curves.tasks]`` names for the trial's task.

    ``joints`` are the recording's joint tables, one method each
    (:func:`cxlab.features.curve_signals.joint_data`); without them no joint curves.
    """
    names = cfg.curves.tasks.get(trial.task, ())
    out: list[Curve] = []
    for name in names:
        out += CURVE_BUILDERS[name](trial, cfg, joints=joints)
    return out


def curves_frame(curves: list[Curve], /) -> pd.DataFrame:
    """Curves as long rows (``phase, signal, side, node, pct, value, unit, phase_start_s,
    phase_end_s, method``), without the recording's label columns."""
    cols = [
        "phase",
        "signal",
        "side",
        "node",
        "pct",
        "value",
        "unit",
        "phase_start_s",
        "phase_end_s",
        "method",
    ]
    if not curves:
        return pd.DataFrame(columns=cols)
    n = np.array([c.values.size for c in curves])
    node = np.concatenate([np.arange(k, dtype=np.int32) for k in n])
    return pd.DataFrame(
        {
            "phase": np.repeat([c.phase for c in curves], n),
            "signal": np.repeat([c.signal for c in curves], n),
            "side": np.repeat([c.side for c in curves], n),
            "node": node,
            "pct": np.concatenate([np.linspace(0.0, 100.0, k) for k in n]),
            "value": np.concatenate([c.values for c in curves]),
            "unit": np.repeat([c.unit for c in curves], n),
            "phase_start_s": np.repeat([c.start_s for c in curves], n),
            "phase_end_s": np.repeat([c.end_s for c in curves], n),
            "method": np.repeat([c.method for c in curves], n),
        },
        columns=cols,
    )
