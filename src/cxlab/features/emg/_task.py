"""One recording's EMG -> rows of the features table (the ``emg`` function of features.toml).

Rows are :class:`~cxlab.features.measure.Measure` as every task adapter returns. A channel
that fails a quality check gives one NaN row ``emg_<muscle>_quality`` whose method starts
with ``"not analysed: "`` and the reason, so the runner quarantines it by name; its other
features are not computed.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.integrate import cumulative_trapezoid

from cxlab.features.asymmetry import weaker_limb_lsi
from cxlab.features.emg._channels import Channel, EmgMap, looks_like_emg, muscle_of
from cxlab.features.emg._onsets import emg_onsets
from cxlab.features.emg._quality import emg_quality
from cxlab.features.emg._signal import (
    EmgReference,
    co_contraction,
    emg_envelope,
    emg_normalise,
    emg_reference,
)
from cxlab.features.events import FeatureError, flights, movement_onset, quiet_standing
from cxlab.features.measure import Measure
from cxlab.units import G

if TYPE_CHECKING:
    from cxlab.features.config import FeatureConfig

__all__ = ["ONSET_LEAD_S", "Phase", "emg_channels", "emg_features", "task_phases"]

#: Onsets are searched from this long before the task's event to the end of its phases, s
#: (landing pre-activation starts ~100 ms before touchdown; Santello 2005).
ONSET_LEAD_S = 0.5


class Phase(NamedTuple):
    """A window of a trial: ``name``, sample range, the side it belongs to (``None`` = both)
    and the reference event's sample (onsets are reported relative to it)."""

    name: str
    start: int
    stop: int
    side: str | None
    event: int | None
    event_name: str


def emg_channels(labels, emg_map: EmgMap, /) -> list[Channel]:
    """The EMG channels among ``labels``, first of each (muscle, side) kept, in label order."""
    out, seen = [], set()
    for label in labels:
        c = muscle_of(label, emg_map)
        if c is not None and (c.muscle, c.side) not in seen:
            seen.add((c.muscle, c.side))
            out.append(c)
    return out


def _total_fz(trial, cfg: FeatureConfig) -> np.ndarray:
    p = cfg.plates
    have = [trial.plates[k]["fz"] for k in (p.left, p.right) if k in trial.plates]
    if not have:
        raise FeatureError(
            f"{trial.task}: EMG phases need force plates {p.left} and "
            f"{p.right} (plates present: {sorted(trial.plates) or 'none'})"
        )
    fz = np.sum(have, axis=0)
    if not np.isfinite(fz).all():
        raise FeatureError(
            f"{trial.task}: force plate fz has missing samples; EMG phases cannot be placed"
        )
    return fz


def _cmj_phases(trial, cfg: FeatureConfig) -> list[Phase]:
    """Braking and propulsion from the summed vertical force (McMahon et al. 2018 phases,
    with the same building blocks and defaults as :func:`cxlab.features.jump.cmj_metrics`)."""
    ev, rate = cfg.events, trial.analog_rate_hz
    f = _total_fz(trial, cfg)
    fl = flights(f, rate_hz=rate, threshold_n=ev.threshold_n)
    if fl.size == 0:
        raise FeatureError(f"{trial.task}: no take-off found for the EMG phases")
    to = int(fl[0, 0])
    qs = quiet_standing(f, rate_hz=rate, window_s=ev.quiet_window_s, stop=to)
    onset = movement_onset(
        f,
        rate_hz=rate,
        weight_n=qs.weight_n,
        sd_n=qs.sd_n,
        n_sd=ev.onset_n_sd,
        start=qs.start,
        stop=to,
    )
    a = (f[onset : to + 1] - qs.weight_n) / (qs.weight_n / G)
    v = cumulative_trapezoid(a, dx=1.0 / rate, initial=0.0)
    i_min = int(np.argmin(v))
    up = np.flatnonzero(v[i_min:] >= 0)
    if v[i_min] >= 0 or up.size == 0:
        raise FeatureError(f"{trial.task}: no countermovement for the EMG phases")
    i0 = onset + i_min + int(up[0])
    return [
        Phase("braking", onset + i_min, i0, None, onset, "movement onset"),
        Phase("propulsion", i0, to, None, onset, "movement onset"),
    ]


def _landing_phases(trial, cfg: FeatureConfig, emg_map) -> list[Phase]:
    from cxlab.features.landing import touchdown

    rate = trial.analog_rate_hz
    td = touchdown(_total_fz(trial, cfg), rate_hz=rate, threshold_n=cfg.events.threshold_n)
    w = round(emg_map.settings["phases"]["landing_window_s"] * rate)
    ms = round(1000 * emg_map.settings["phases"]["landing_window_s"])
    return [Phase(f"landing_{ms}ms", td, td + w, None, td, "touchdown")]


def _event_phases(trial, emg_map, n: int) -> list[Phase]:
    rate, out = trial.analog_rate_hz, []
    for name, (start_label, end_label) in emg_map.event_phases.items():
        for context, side in (("Left", "left"), ("Right", "right"), ("General", None)):
            ts = sorted(t for lab, ctx, t in trial.events if lab == start_label and ctx == context)
            te = sorted(t for lab, ctx, t in trial.events if lab == end_label and ctx == context)
            for t0 in ts:
                after = [t for t in te if t > t0]
                if not after:
                    continue
                i0, i1 = round(t0 * rate), round(after[0] * rate)
                if 0 <= i0 < i1 <= n:
                    out.append(Phase(name, i0, i1, side, i0, start_label))
    return out


def task_phases(trial, cfg: FeatureConfig, n: int) -> list[Phase]:
    """The phases of ``trial`` as its task's kind in ``emg.toml [tasks]`` says."""
    emg_map: EmgMap = cfg.emg
    kind = emg_map.tasks.get(trial.task)
    if kind is None:
        kind = "events" if trial.events else "trial"
    if kind == "cmj":
        return _cmj_phases(trial, cfg)
    if kind == "landing":
        return _landing_phases(trial, cfg, emg_map)
    if kind == "events":
        phases = _event_phases(trial, emg_map, n)
        if phases:
            return phases
    return [Phase("trial", 0, n, None, None, "")]


_MVC_CACHE_SIZE = 4096
_MVC_REFERENCES: dict[tuple, tuple[float, str] | None] = {}
"""Each MVC channel's reference by the digest of its samples and the settings: every
trial of a session refers to the session's MVC trials, whose channels were checked,
filtered and enveloped again for each one (a quarter of the demo's EMG time)."""


def _mvc_reference(x: np.ndarray, task: str, rate: float, f: dict, q: dict, win: float):
    """(value, source) of MVC channel ``x`` (None: not usable: non-finite samples or a
    flag of the quality check with settings ``q``, the ``[emg.quality]`` the trial's own
    channels are checked with), computed once per distinct samples and settings in this
    process."""
    digest = hashlib.blake2b(np.ascontiguousarray(x).data, digest_size=16).digest()
    key = (
        digest,
        x.size,
        task,
        float(rate),
        tuple(f["band_hz"]),
        f["lowpass_hz"],
        f["order"],
        tuple(sorted(q.items())),
        win,
    )
    if key in _MVC_REFERENCES:
        return _MVC_REFERENCES[key]
    out = None
    if np.isfinite(x).all() and not emg_quality(x, rate_hz=rate, **q).flags[0]:
        e = emg_envelope(
            x, rate_hz=rate, band_hz=f["band_hz"], lowpass_hz=f["lowpass_hz"], order=f["order"]
        )
        r = emg_reference(e, rate_hz=rate, window_s=win, source=task)
        out = (float(r.value[0]), r.source)
    if len(_MVC_REFERENCES) >= _MVC_CACHE_SIZE:  # a long-running worker: keep it bounded
        _MVC_REFERENCES.clear()
    _MVC_REFERENCES[key] = out
    return out


def _references(trial, chans, emg_map, env, rate) -> list[EmgReference]:
    """Per channel: the highest MVC reference of the session's MVC trials whose channel
    passes the same quality check as the trial's, else the peak of this trial's own
    envelope."""
    f, prefix = emg_map.settings["filters"], emg_map.settings["mvc"]["task_prefix"]
    q = emg_map.settings["quality"]
    win = f["reference_window_s"]
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for task, mvc_rate, analogs in trial.mvc:
        target = task.removeprefix(prefix)
        for c in emg_channels(list(analogs), emg_map):
            if target not in (c.muscle, "all"):
                continue
            x = np.asarray(analogs[c.label], dtype=float)
            got = _mvc_reference(x, task, mvc_rate, f, q, win)
            if got is None:
                continue
            v, source = got
            if v > best.get((c.muscle, c.side), (0.0, ""))[0]:
                best[(c.muscle, c.side)] = (v, source)
    refs = []
    for k, c in enumerate(chans):
        if (c.muscle, c.side) in best:
            v, src = best[(c.muscle, c.side)]
            refs.append(EmgReference(np.array([v]), "mvc", src))
        else:
            refs.append(
                emg_reference(
                    env[:, k],
                    rate_hz=rate,
                    kind="task_peak",
                    window_s=0,
                    source=f"{trial.task} itself",
                )
            )
    return refs


def emg_features(trial, cfg: FeatureConfig) -> list[Measure]:
    """EMG features of one trial (see docs/emg.md for every row)."""
    emg_map: EmgMap = cfg.emg
    chans = emg_channels(list(trial.analogs), emg_map)
    mapped = {c.label for c in chans}
    unmapped = [lab for lab in trial.analogs if looks_like_emg(lab) and lab not in mapped]
    rows = []
    if unmapped:  # EMG the lab recorded but no label says which muscle: say so, once
        shown = ", ".join(repr(lab) for lab in unmapped[:6]) + (" ..." if len(unmapped) > 6 else "")
        rows.append(
            Measure(
                "emg_unmapped_channels",
                "bilateral",
                float("nan"),
                "1",
                f"not analysed: {len(unmapped)} EMG channel(s) name no muscle ({shown}); "
                'map them in [emg.channels], e.g. "EMG1.v" = "vl right" (docs/emg.md)',
            )
        )
    if not chans:
        return rows
    rate = trial.analog_rate_hz
    f, o, qcfg = (emg_map.settings[k] for k in ("filters", "onsets", "quality"))
    good = []
    for c in chans:
        x = np.asarray(trial.analogs[c.label], dtype=float)
        if not np.isfinite(x).all():
            why = f"{int((~np.isfinite(x)).sum())} of {x.size} samples missing"
        else:
            why = emg_quality(x, rate_hz=rate, **qcfg).flags[0]
        if why:
            rows.append(
                Measure(
                    f"emg_{c.muscle}_quality",
                    c.side,
                    float("nan"),
                    "1",
                    f"not analysed: channel {c.label!r}: {why}",
                )
            )
        else:
            good.append(c)
    if not good:
        return rows
    x = np.column_stack([np.asarray(trial.analogs[c.label], dtype=float) for c in good])
    env = emg_envelope(
        x, rate_hz=rate, band_hz=f["band_hz"], lowpass_hz=f["lowpass_hz"], order=f["order"]
    )
    refs = _references(trial, good, emg_map, env, rate)
    norm = np.column_stack([emg_normalise(env[:, k], r).values for k, r in enumerate(refs)])
    unit = ["%MVC" if r.kind == "mvc" else "%peak" for r in refs]
    sfx = ["pct_mvc" if r.kind == "mvc" else "pct_peak" for r in refs]
    phases = task_phases(trial, cfg, x.shape[0])
    band = f"{f['band_hz'][0]:g}-{f['band_hz'][1]:g} Hz band-pass, {f['lowpass_hz']:g} Hz envelope"
    by_name: dict[str, list[Phase]] = {}
    for p in phases:
        by_name.setdefault(p.name, []).append(p)
    summary: dict[tuple[str, int], tuple[float, float]] = {}  # (phase, channel) -> mean, peak
    for name, ps in by_name.items():
        for k, c in enumerate(good):
            mine = [p for p in ps if p.side in (None, c.side) and p.stop > p.start]
            if not mine:
                continue
            means = [float(norm[p.start : p.stop, k].mean()) for p in mine]
            peaks = [float(norm[p.start : p.stop, k].max()) for p in mine]
            summary[(name, k)] = (float(np.mean(means)), float(np.max(peaks)))
            ref = f"ref: {refs[k].source}"
            n_cyc = f", mean of {len(mine)}" if len(mine) > 1 else ""
            rows.append(
                Measure(
                    f"emg_{c.muscle}_{name}_mean_{sfx[k]}",
                    c.side,
                    summary[(name, k)][0],
                    unit[k],
                    f"mean envelope in {name}{n_cyc} ({band}; {ref})",
                )
            )
            rows.append(
                Measure(
                    f"emg_{c.muscle}_{name}_peak_{sfx[k]}",
                    c.side,
                    summary[(name, k)][1],
                    unit[k],
                    f"peak envelope in {name} ({band}; {ref})",
                )
            )
    # LSI of activation between sides (only for %MVC: a task-peak reference is 100 % each side)
    idx = {(c.muscle, c.side): k for k, c in enumerate(good)}
    for name in by_name:
        for c in good:
            kl, kr = idx.get((c.muscle, "left")), idx.get((c.muscle, "right"))
            if c.side != "left" or kr is None or unit[kl] != "%MVC" or unit[kr] != "%MVC":
                continue
            if (name, kl) in summary and (name, kr) in summary:
                left, right = summary[(name, kl)][0], summary[(name, kr)][0]
                rows.append(
                    Measure(
                        f"emg_{c.muscle}_{name}_mean_lsi_pct",
                        "bilateral",
                        float(weaker_limb_lsi(left, right)),
                        "%",
                        "100 min(L,R)/max(L,R) of mean %MVC",
                    )
                )
    # co-contraction of declared pairs, per side and phase
    for pair, (ag, an) in emg_map.pairs.items():
        for side in ("left", "right", "bilateral"):
            ka, kb = idx.get((ag, side)), idx.get((an, side))
            if ka is None or kb is None or unit[ka] != unit[kb]:
                continue
            for name, ps in by_name.items():
                mine = [p for p in ps if p.side in (None, side) and p.stop > p.start]
                if not mine:
                    continue
                cc = [
                    co_contraction(norm[p.start : p.stop, ka], norm[p.start : p.stop, kb])
                    for p in mine
                ]
                rows.append(
                    Measure(
                        f"emg_{pair}_{name}_cci",
                        side,
                        float(np.mean([v.cci for v in cc])),
                        unit[ka],
                        "mean (low/high)(low+high), Rudolph et al. 2000",
                    )
                )
                rows.append(
                    Measure(
                        f"emg_{pair}_{name}_overlap_pct",
                        side,
                        float(np.mean([v.overlap_pct for v in cc])),
                        "%",
                        "200 sum min(a,b) / sum(a+b), Falconer & Winter 1985",
                    )
                )
    # onsets relative to the task's event
    events = [p for p in phases if p.event is not None]
    if events:
        on = emg_onsets(
            x,
            rate_hz=rate,
            n_sd=o["n_sd"],
            min_duration_s=o["min_duration_s"],
            method=o["method"],
            band_hz=o["band_hz"],
            smooth_hz=o["smooth_hz"],
            baseline_s=o["baseline_s"],
            max_dip_s=o["max_dip_s"],
            order=f["order"],
        )
        first: dict[int, float] = {}
        for k, c in enumerate(good):
            ev = [p for p in events if p.side in (None, c.side)]
            if not ev:
                continue
            e0 = ev[0].event / rate
            t = on.of(k)
            end = max(p.stop for p in ev) / rate
            cand = t[(t >= e0 - ONSET_LEAD_S) & (t < end)]
            if cand.size == 0:
                continue
            first[k] = float(cand[0])
            rows.append(
                Measure(
                    f"emg_{c.muscle}_onset_ms",
                    c.side,
                    1000.0 * (first[k] - e0),
                    "ms",
                    f"first {on.method.upper()} onset (mean + {o['n_sd']:g} SD held "
                    f"{1000 * o['min_duration_s']:g} ms, Hodges & Bui 1996) - "
                    f"{ev[0].event_name}",
                )
            )
        for name, (m1, m2) in emg_map.onset_differences.items():
            for side in ("left", "right", "bilateral"):
                k1, k2 = idx.get((m1, side)), idx.get((m2, side))
                if k1 in first and k2 in first:
                    rows.append(
                        Measure(
                            f"emg_{name}_onset_diff_ms",
                            side,
                            1000.0 * (first[k1] - first[k2]),
                            "ms",
                            f"onset {m1} - onset {m2} (same side)",
                        )
                    )
    return rows
