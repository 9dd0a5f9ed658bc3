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

Forces are expressed in body weights (``fz_bw``: Fz / (m·g), body mass from the trial's own
quiet standing) so that curves of different people can be averaged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab.features import alignment, landing
from cxlab.features.curves import time_normalise
from cxlab.features.events import FeatureError, flights, movement_onset, quiet_standing
from cxlab.features.tasks import Trial, _leg_markers, _lr_force

__all__ = ["CURVE_BUILDERS", "Curve", "curves_frame", "trial_curves"]


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


CURVE_BUILDERS = {"cmj": cmj_curves, "landing": landing_curves}


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
