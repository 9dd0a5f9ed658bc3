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

Forces are expressed in body weights (``fz_bw``: Fz / (m·g), body mass from the trial's own
quiet standing) so that curves of different people can be averaged.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab.features import alignment, landing
from cxlab.features.curves import time_normalise
from cxlab.features.events import (
    FeatureError,
    contacts,
    flights,
    movement_onset,
    quiet_standing,
)
from cxlab.features.tasks import Trial, _header_mass, _leg_markers, _lr_force, _lr_or_single, _plate

__all__ = [
    "CURVE_BUILDERS",
    "Curve",
    "cmj_curves",
    "curves_frame",
    "dj_curves",
    "emg_curves",
    "gait_curves",
    "landing_curves",
    "trial_curves",
]


class Curve(NamedTuple):
    """One time-normalised curve of a trial.

    ``values`` has shape (n_nodes,) in ``unit``; ``start_s``/``end_s`` bound the phase in
    the recording's time; ``method`` names the events and the resampling.
    """

    phase: str
    signal: str
    side: str
    unit: str
    values: np.ndarray
    start_s: float
    end_s: float
    method: str


def _settings(cfg: dict) -> tuple[int, str, float]:
    c = cfg.get("curves", {})
    return (
        int(c.get("nodes", 101)),
        str(c.get("method", "linear")),
        float(c.get("landing_window_s", 0.25)),
    )


def _force_curves(
    phase: str,
    sides: dict[str, np.ndarray],
    bw_n: float,
    start: int,
    stop: int,
    rate: float,
    cfg: dict,
    events_txt: str,
) -> list[Curve]:
    n, method, _ = _settings(cfg)
    t0, t1 = start / rate, stop / rate
    out = []
    for side, f in sides.items():
        seg = f[start : stop + 1] / bw_n
        y = time_normalise(seg, [0.0, (stop - start) / rate], rate_hz=rate, n=n, method=method)
        out.append(
            Curve(phase, "fz_bw", side, "BW", y, t0, t1, f"{events_txt}; {method}, {n} nodes")
        )
    return out


def emg_curves(
    trial: Trial, cfg: dict, /, *, phase: str, start_s: float, end_s: float, events_txt: str
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

    emg_map = cfg.get("emg")
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


def cmj_curves(trial: Trial, cfg: dict) -> list[Curve]:
    """Vertical force (BW) from movement onset to take-off, and of the landing."""
    ev = cfg["events"]
    fz, fl, fr = _lr_force(trial, cfg)
    rate = trial.analog_rate_hz
    fls = flights(fz, rate_hz=rate, threshold_n=ev["threshold_n"])
    if fls.size == 0:
        raise FeatureError(f"{trial.task}: no take-off found for the CMJ curve")
    to, td = (int(v) for v in fls[0])
    qs = quiet_standing(fz, rate_hz=rate, window_s=ev["quiet_window_s"], stop=to)
    onset = movement_onset(
        fz,
        rate_hz=rate,
        weight_n=qs["weight_n"],
        sd_n=qs["sd_n"],
        n_sd=ev["onset_n_sd"],
        start=qs["start"],
        stop=to,
    )
    sides = {"bilateral": fz, "left": fl, "right": fr}
    out = _force_curves(
        "cmj",
        sides,
        qs["weight_n"],
        onset,
        to,
        rate,
        cfg,
        f"onset (BW - {ev['onset_n_sd']:g} SD) to take-off (< {ev['threshold_n']:g} N)",
    )
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
    if stop < fz.size:
        out += _force_curves(
            "cmj_landing",
            sides,
            qs["weight_n"],
            td,
            stop,
            rate,
            cfg,
            f"touchdown to +{window * 1000:g} ms",
        )
    return out


def landing_curves(trial: Trial, cfg: dict) -> list[Curve]:
    """Vertical force (BW) and, with leg markers, knee FPPA from contact to the window's end."""
    ev = cfg["events"]
    fz, fl, fr = _lr_force(trial, cfg)
    rate = trial.analog_rate_hz
    td = landing.touchdown(fz, rate_hz=rate, threshold_n=ev["threshold_n"])
    bm = landing.landing_body_mass(fz, rate_hz=rate, start=td, window_s=ev["quiet_window_s"])
    _, _, window = _settings(cfg)
    stop = td + round(window * rate)
    if stop >= fz.size:
        raise FeatureError(
            f"{trial.task}: the recording ends {(fz.size - 1 - td) / rate:.3f} s "
            f"after contact, before the {window:g} s landing curve"
        )
    txt = f"initial contact (>= {ev['threshold_n']:g} N) to +{window * 1000:g} ms"
    out = _force_curves(
        "landing",
        {"bilateral": fz, "left": fl, "right": fr},
        bm["body_mass_kg"] * landing.G,
        td,
        stop,
        rate,
        cfg,
        txt,
    )
    out += emg_curves(
        trial, cfg, phase="landing", start_s=td / rate, end_s=stop / rate, events_txt=txt
    )
    if trial.markers:
        try:
            mk = _leg_markers(trial, cfg)
        except FeatureError:
            return out  # no leg markers: force curves only
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
    return out


def dj_curves(trial: Trial, cfg: dict) -> list[Curve]:
    """Vertical force (BW) of the drop jump's ground contact: touchdown → take-off.

    Touchdown is the first loaded sample after ≥ 50 ms unloaded on the box
    (:func:`cxlab.features.landing.touchdown`), take-off the first unloaded sample of the
    next flight (:func:`cxlab.features.events.flights`, first sample below
    ``events.threshold_n``); body weight is the header's mass, else the steadiest
    ``events.quiet_window_s`` of standing after the landing (as
    :func:`cxlab.features.battery.dj_metrics`).
    """
    ev = cfg["events"]
    fz, fl, fr = _lr_or_single(trial, cfg)
    rate = trial.analog_rate_hz
    td = landing.touchdown(fz, rate_hz=rate, threshold_n=ev["threshold_n"])
    fls = flights(fz, rate_hz=rate, threshold_n=ev["threshold_n"])
    after = fls[fls[:, 0] > td]
    if after.size == 0:
        raise FeatureError(f"{trial.task}: no take-off after the drop-jump contact")
    to = int(after[0, 0])
    header = _header_mass(trial)
    if header:
        bw = header * landing.G
    else:  # the steadiest standing after the landing's touchdown
        bw = quiet_standing(
            fz, rate_hz=rate, window_s=ev["quiet_window_s"], start=int(after[0, 1])
        )["weight_n"]
    sides = {"bilateral": fz} | ({"left": fl, "right": fr} if fl is not None else {})
    return _force_curves(
        "dj_contact",
        sides,
        bw,
        td,
        to,
        rate,
        cfg,
        f"drop-jump contact: touchdown (>= {ev['threshold_n']:g} N) to take-off",
    )


def gait_curves(trial: Trial, cfg: dict) -> list[Curve]:
    """Vertical force (BW) over the gait cycle of each foot, the trial's cycles averaged.

    A cycle runs from a foot strike to the next strike of the same foot on that foot's
    plate (``[plates] left/right``; strikes are the first samples ≥ ``events.threshold_n``
    of contacts ≥ 100 ms, :func:`cxlab.features.events.contacts`), so stance is followed
    by swing (0 BW). Body weight is the header's mass, else the mean summed vertical force
    over that foot's whole cycles (over whole strides the vertical impulse equals body
    weight × time: impulse–momentum for periodic walking, Winter 2009 §5). A plate struck
    once (overground walkway) has no cycle and gives no curve.

    Returns
    -------
    list of Curve
        Phase ``gait_cycle``, signal ``fz_bw``, one curve per side with ≥ 1 whole cycle;
        ``method`` states the number of cycles averaged.
    """
    ev, p = cfg["events"], cfg["plates"]
    rate = trial.analog_rate_hz
    n, method, _ = _settings(cfg)
    plates = {side: _plate(trial, p[side]) for side in ("left", "right") if p[side] in trial.plates}
    total = np.sum(list(plates.values()), axis=0) if plates else None
    header = _header_mass(trial)
    out = []
    for side, f in plates.items():
        if not np.isfinite(f).all():
            raise FeatureError(f"{trial.task}: force plate {p[side]} has missing fz samples")
        strikes = contacts(f, rate_hz=rate, threshold_n=ev["threshold_n"])[:, 0]
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
                f"foot strike (>= {ev['threshold_n']:g} N on plate {p[side]}) to the next "
                f"strike of the same foot; mean of {k} cycle(s); body weight from "
                + ("the header mass" if header else "the mean force over whole strides")
                + f"; {method}, {n} nodes",
            )
        )
    return out


CURVE_BUILDERS = {
    "cmj": cmj_curves,
    "landing": landing_curves,
    "dj": dj_curves,
    "gait": gait_curves,
}


def trial_curves(trial: Trial, cfg: dict) -> list[Curve]:
    """The curves of every builder that ``[curves.tasks]`` names for the trial's task."""
    names = cfg.get("curves", {}).get("tasks", {}).get(trial.task, [])
    out: list[Curve] = []
    for name in names:
        out += CURVE_BUILDERS[name](trial, cfg)
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
