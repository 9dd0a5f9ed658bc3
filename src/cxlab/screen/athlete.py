"""Per-athlete pages and a squad index for the force-plate battery (offline HTML).

One page per athlete: every key metric over **dates** with the athlete's typical error
and the squad's smallest worthwhile change (Hopkins 2000), the programme and adherence on
the same time axis, the latest force–time curve over the baseline curve (and left vs
right; the CMJ's stored time-normalised curve from the ``curves`` table, else the raw
forces), and the latest session's left/right pairs of
:func:`cxlab.features.pairing.side_pairs` (per task, with pairing and trials per side) with
the weaker side named. One squad index: a row per
athlete with latest values, change since baseline (flagged beyond the typical error), open
flags and a link. Pages load nothing from elsewhere; a Content-Security-Policy allows only
the page's own inline style and script (by hash) and ``data:`` images; every text is
autoescaped by Jinja. Only the pseudonymised ``subject_id`` appears.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from importlib import resources
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import CxlabError, warn
from cxlab.features.asymmetry import weaker_limb_lsi
from cxlab.features.pairing import side_pairs
from cxlab.screen import _svg
from cxlab.store import Store, write_text

__all__ = [
    "KEY_METRICS",
    "SQUAD_METRICS",
    "Metric",
    "change_direction",
    "session_dates",
    "write_athlete_pages",
]

_L, _R, _BASE, _LATEST = "#4C72B0", "#DD8452", "#999999", "#222222"


class Metric(NamedTuple):
    """A key metric of the athlete view: feature, side, plain name and direction of better."""

    feature: str
    side: str
    title: str
    better: Literal["higher", "lower"]


KEY_METRICS = (
    Metric("cmj_jump_height_impulse_m", "bilateral", "Countermovement jump height", "higher"),
    Metric("cmj_rsi_mod", "bilateral", "CMJ reactive strength (RSI-modified)", "higher"),
    Metric("cmj_propulsive_impulse_lsi_pct", "bilateral", "CMJ push-off symmetry", "higher"),
    Metric("sj_jump_height_impulse_m", "bilateral", "Squat jump height", "higher"),
    Metric("sj_peak_power_w_kg", "bilateral", "Squat jump peak power per kg", "higher"),
    Metric("dj_rsi", "bilateral", "Drop jump reactive strength (RSI)", "higher"),
    Metric("dj_contact_time_s", "bilateral", "Drop jump ground contact time", "lower"),
    Metric("imtp_peak_force_n_kg", "bilateral", "Mid-thigh pull peak force per kg", "higher"),
    Metric(
        "imtp_rfd_0_100_n_s", "bilateral", "Mid-thigh pull early force (RFD 0-100 ms)", "higher"
    ),
    Metric("landing_peak_force_lsi_pct", "bilateral", "Landing force symmetry", "higher"),
    Metric("knee_fppa_peak_deg", "left", "Knee valgus on landing (left)", "lower"),
    Metric("knee_fppa_peak_deg", "right", "Knee valgus on landing (right)", "lower"),
    Metric("balance_mean_velocity_m_s", "left", "Single-leg balance sway, left leg", "lower"),
    Metric("balance_mean_velocity_m_s", "right", "Single-leg balance sway, right leg", "lower"),
    Metric("slcmj_jump_height_impulse_lsi_pct", "bilateral", "Single-leg jump symmetry", "higher"),
)
#: Columns of the squad index (features of KEY_METRICS).
SQUAD_METRICS = (
    "cmj_jump_height_impulse_m",
    "cmj_rsi_mod",
    "sj_jump_height_impulse_m",
    "dj_rsi",
    "imtp_peak_force_n_kg",
    "cmj_propulsive_impulse_lsi_pct",
)
#: Names of the left/right measures the page shows, for the measures whose pairs are
#: shown at all: feature -> plain name. Which left and right values are compared (same
#: recording, or separate single-leg trials) and per which task is
#: :func:`cxlab.features.pairing.side_pairs`'s rule, not this list's.
_SIDE_TITLES = {
    "cmj_propulsive_impulse_n_s": "CMJ push-off impulse",
    "cmj_braking_impulse_n_s": "CMJ braking impulse",
    "sj_propulsive_impulse_n_s": "Squat jump push-off impulse",
    "dj_peak_contact_force_n": "Drop jump contact force",
    "imtp_peak_force_net_n": "Mid-thigh pull peak force",
    "landing_peak_force_n": "Landing peak force (load taken)",
    "slcmj_jump_height_impulse_m": "Single-leg jump height",
    "slcmj_propulsive_impulse_n_s": "Single-leg jump push-off impulse",
    "slcmj_peak_propulsive_power_w": "Single-leg jump peak power",
    "slhop_rsi": "Single-leg hop reactive strength (RSI)",
    "slhop_jump_height_flight_m": "Single-leg hop height",
}
#: Left/right measures of the page: feature -> (plain name, better). The direction is
#: ``"higher"`` for every one: :func:`~cxlab.features.pairing.side_pairs` pairs only
#: ratio-scale values > 0, never angles, and the measures named here are forces, impulses,
#: power and jump outcomes (the single-leg ones are
#: :data:`cxlab.features.tasks.SINGLE_LEG_METRICS`, declared there as performance outcomes),
#: so the side that produces less is the weaker one. Sway and valgus, where lower is
#: better, are shown per leg in :data:`KEY_METRICS` and never paired (separate balance
#: trials; angles).
SIDE_PAIRS: dict[str, tuple[str, Literal["higher", "lower"]]] = {
    f: (title, "higher") for f, title in _SIDE_TITLES.items()
}
#: Plain-language names of the shipped screening rules.
RULE_TITLES = {
    "cmj_propulsive_lsi": "Push-off asymmetry in the countermovement jump",
    "cmj_braking_lsi": "Braking asymmetry in the countermovement jump",
    "landing_force_lsi": "Landing force asymmetry",
    "knee_extensor_lsi": "Quadriceps strength asymmetry",
    "hq_ratio": "Low hamstring-to-quadriceps strength ratio",
    "knee_valgus_landing": "Knee valgus on landing",
    "forward_head_posture": "Forward head posture",
    "single_leg_balance": "Poor single-leg balance",
    "odi_disability": "Back-pain disability (ODI)",
    "pain_nrs": "Pain score (NRS)",
    "pain_vas": "Pain score (VAS)",
}


def _rule_title(rule_id: str) -> str:
    return RULE_TITLES.get(rule_id, rule_id.replace("_", " ").capitalize())


def session_dates(store: Store, /) -> pd.DataFrame:
    """Date of every subject × session: the one place the athlete view gets its time axis.

    Sources, first found wins per subject × session: a ``sessions`` table (``subject_id``,
    ``session``, ``date``) when the store has one; the earliest ``scores`` date; the
    programme ``start_date`` for the first session. Sessions without a date keep their
    label order (:func:`cxlab.screen.session_order`).

    Returns
    -------
    pandas.DataFrame
        ``subject_id``, ``session``, ``date`` (datetime64, NaT if unknown), ``order`` (int).
    """
    from cxlab.screen import session_order

    parts = [store.table("features", columns=["subject_id", "session"])]
    sources = []
    if "sessions" in store.tables():
        s = store.table("sessions")
        if {"subject_id", "session", "date"} <= set(s.columns):
            sources.append(s[["subject_id", "session", "date"]])
    sc = store.table("scores")
    if len(sc) and "date" in sc:
        sources.append(sc.groupby(["subject_id", "session"], as_index=False)["date"].min())
    out = pd.concat(parts, ignore_index=True).dropna().drop_duplicates().reset_index(drop=True)
    out["date"] = pd.NaT
    for src in sources:
        src = src.dropna().assign(date=lambda d: pd.to_datetime(d["date"]))
        src = src.drop_duplicates(["subject_id", "session"])
        m = out.merge(src, on=["subject_id", "session"], how="left", suffixes=("", "_src"))
        out["date"] = pd.to_datetime(out["date"]).fillna(m["date_src"]).to_numpy()
    out["date"] = pd.to_datetime(out["date"])
    out["order"] = session_order(out["session"]).to_numpy()
    return out.sort_values(["subject_id", "order"]).reset_index(drop=True)


def _noise(features: pd.DataFrame, metric: Metric) -> tuple[float, float]:
    """(typical error, smallest worthwhile change) of one metric in the squad (Hopkins 2000).

    With ≥ 2 trials per session, the trial-to-trial typical error of the first two trials;
    otherwise between the first two sessions of each athlete. SWC = 0.2 × between-athlete SD.
    """
    from cxlab.models.reliability import reliability

    d = features[(features["feature"] == metric.feature) & (features["side"] == metric.side)]
    d = d.dropna(subset=["value"])
    if d.empty:
        return np.nan, np.nan
    d = d.assign(rank=d.groupby(["subject_id", "session"]).cumcount())
    two = d[d["rank"] < 2]
    if (two.groupby(["subject_id", "session"]).size() == 2).sum() >= 3:
        two = two.assign(target=two["subject_id"] + "|" + two["session"].astype(str))
        data, t, r = two, "target", "rank"
    else:
        m = d.groupby(["subject_id", "session"], as_index=False)["value"].mean()
        m["srank"] = m.groupby("subject_id").cumcount()
        data, t, r = m[m["srank"] < 2], "subject_id", "srank"
        if (data.groupby("subject_id").size() == 2).sum() < 3:
            return np.nan, np.nan
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = reliability(data, targets=t, raters=r, ratings="value")
    return float(res["typical_error"].iloc[0]), float(res["swc"].iloc[0])


def _trend_svg(rows, metric: Metric, te: float, swc: float, programme: pd.DataFrame):
    """One metric over dates (days since the first session) or session order."""
    dated = bool(rows["date"].notna().all())
    labels = [
        s if pd.isna(d) else f"{s}\n{pd.Timestamp(d):%Y-%m-%d}"
        for s, d in zip(rows["session"].astype(str), rows["date"], strict=True)
    ]
    spans = []
    if dated:
        t0 = pd.Timestamp(rows["date"].iloc[0])
        x = ((pd.to_datetime(rows["date"]) - t0).dt.days).to_numpy(float)
        for p in programme.itertuples():
            if pd.notna(p.start_date) and pd.notna(p.end_date):
                spans.append(
                    ((pd.Timestamp(p.start_date) - t0).days, (pd.Timestamp(p.end_date) - t0).days)
                )
    else:
        x = rows["order"].to_numpy(float)
    return _svg.trend_svg(
        x,
        labels,
        rows["value"].to_numpy(float),
        te=te,
        swc=swc,
        unit=str(rows["unit"].iloc[0]),
        spans=spans,
        title=f"{metric.title} over time",
    ), dated


#: the stored curve the athlete page draws: the CMJ from movement onset to take-off
CURVE_PHASE, CURVE_SIGNAL = "cmj", "fz_bw"


def _stored_curves(curves: pd.DataFrame, sid: str, order: dict):
    """Latest vs baseline CMJ force curve (BW, onset → take-off) from the ``curves`` table.

    Each session's curve is the node-by-node mean of its trials; with left and right
    plates, the latest session's two sides are drawn too. ``("", "")`` when the athlete has
    no stored CMJ curve (the page then falls back to the raw forces, :func:`_curves`).
    """
    d = curves[curves["subject_id"] == sid]
    if d.empty:
        return "", ""
    d = d.assign(order=d["session"].map(order)).dropna(subset=["order"])
    if d.empty:
        return "", ""
    mean = d.groupby(["order", "session", "side", "node"], as_index=False, sort=True).agg(
        pct=("pct", "first"),
        value=("value", "mean"),
        n=("recording_id", "nunique"),
    )
    orders = sorted(mean["order"].unique())
    picks = [("baseline", orders[0])] if len(orders) > 1 else []
    picks.append(("latest", orders[-1]))
    out = []
    for name, o in picks:
        m = mean[mean["order"] == o]
        b = m[m["side"] == "bilateral"]
        if b.empty:
            continue
        ses, n = b["session"].iloc[0], int(b["n"].iloc[0])
        trials = f"{n} trials" if n > 1 else "1 trial"
        out.append(
            (
                f"{name} (session {ses}, {trials})",
                b["pct"].to_numpy(float),
                b["value"].to_numpy(float),
                _LATEST if name == "latest" else _BASE,
                False,
            )
        )
        if name == "latest":
            for side, colour in (("left", _L), ("right", _R)):
                sd = m[m["side"] == side]
                if len(sd):
                    out.append(
                        (
                            f"latest {side}",
                            sd["pct"].to_numpy(float),
                            sd["value"].to_numpy(float),
                            colour,
                            True,
                        )
                    )
    if not out:
        return "", ""
    svg = _svg.curves_svg(
        out,
        title="CMJ vertical force, movement onset to take-off",
        xlabel="% of the countermovement (movement onset to take-off)",
    )
    return svg, "CMJ (time-normalised, mean of each session's trials)"


def _curves(store: Store, recs: pd.DataFrame, sid: str, order: dict):
    """Latest vs baseline force–time curve (in BW, aligned at take-off) and left vs right,
    from the raw forces: for tasks without stored curves (SJ, DJ, IMTP)."""
    from cxlab.features.events import flights

    for task in ("cmj", "sj", "dj", "imtp"):
        r = recs[(recs["subject_id"] == sid) & (recs["task"] == task)].copy()
        if len(r) == 0:
            continue
        r["order"] = r["session"].map(order)
        r = r.sort_values(["order", "trial"])
        pick = {"baseline": r.iloc[0]} if r["order"].nunique() > 1 else {}
        pick["latest"] = r.iloc[-1]
        curves = []
        for name, rec in pick.items():
            f = store.table(
                "forces",
                columns=["plate", "sample", "fz"],
                filters=[("recording_id", "==", rec["recording_id"])],
            )
            if f.empty:
                continue
            w = f.pivot_table(index="sample", columns="plate", values="fz").sort_index()
            rate = float(rec["analog_rate_hz"])
            tot = w.sum(axis=1).to_numpy(float)
            loaded = tot[tot > 100]
            bw = float(np.median(loaded)) if loaded.size else 1.0
            fl = flights(tot, rate_hz=rate) if task != "imtp" else np.zeros((0, 2), int)
            t = (np.arange(tot.size) - (fl[0, 0] if len(fl) else 0)) / rate
            keep = (t > -1.5) & (t < 1.0) if len(fl) else slice(None)
            label = f"{name} (session {rec['session']})"
            curves.append(
                (label, t[keep], tot[keep] / bw, _LATEST if name == "latest" else _BASE, False)
            )
            if name == "latest" and w.shape[1] == 2:
                for col, c, side in zip(w.columns, (_L, _R), ("left", "right"), strict=True):
                    curves.append(
                        (f"latest {side}", t[keep], w[col].to_numpy(float)[keep] / bw, c, True)
                    )
        if curves:
            return _svg.curves_svg(
                curves,
                title=f"{task.upper()} force-time curve",
                xlabel="time from take-off, s" if task != "imtp" else "time, s",
            ), task.upper()
    return "", ""


def change_direction(
    change: float, /, *, te: float, swc: float, better: Literal["higher", "lower"]
) -> str:
    """Plain words for a change since baseline (Hopkins 2000 typical error and SWC).

    ``"within noise"`` when ``|change| ≤ TE`` (or TE unknown); ``"trivial"`` when beyond
    the TE but below the smallest worthwhile change; else ``"better"`` or ``"worse"`` by
    the metric's direction.
    """
    if not (np.isfinite(change) and np.isfinite(te)) or abs(change) <= te:
        return "within noise"
    if np.isfinite(swc) and abs(change) < swc:
        return "trivial"
    return "better" if (change > 0) == (better == "higher") else "worse"


def _asymmetries(pairs: pd.DataFrame, /) -> list[dict]:
    """Left vs right rows of one athlete's latest session, weaker side named by direction.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Rows of :func:`cxlab.features.pairing.side_pairs` (one subject x session): one row
        per task x feature, ``left`` / ``right`` the trial means (in ``unit``, > 0) with
        their ``pairing`` and ``n_left`` / ``n_right``.

    Returns
    -------
    list of dict
        One per pair of a :data:`SIDE_PAIRS` feature, in task then :data:`SIDE_PAIRS`
        order: ``title``, ``task``, ``feature``, ``unit``, ``left``, ``right``, ``pairing``,
        ``n_left``, ``n_right``, ``better``, ``lsi`` (weaker-limb LSI, %) and ``weaker``
        (``"left"``, ``"right"`` or ``"equal"``; the side on the worse side of ``better``).
    """
    rank = {f: i for i, f in enumerate(SIDE_PAIRS)}
    d = pairs[pairs["feature"].isin(list(SIDE_PAIRS))]
    d = d.assign(_rank=d["feature"].map(rank)).sort_values(["task", "_rank"], kind="stable")
    lv, rv = d["left"].to_numpy(float), d["right"].to_numpy(float)
    better = d["feature"].map(lambda f: SIDE_PAIRS[f][1]).to_numpy(str)
    left_worse = np.where(better == "higher", lv < rv, lv > rv)
    weaker = np.where(lv == rv, "equal", np.where(left_worse, "left", "right"))
    out = d.assign(
        title=d["feature"].map(lambda f: SIDE_PAIRS[f][0]),
        better=better,
        lsi=weaker_limb_lsi(lv, rv),
        weaker=weaker,
    )
    cols = ["title", "task", "feature", "unit", "left", "right", "pairing", "n_left", "n_right"]
    return out[[*cols, "better", "lsi", "weaker"]].to_dict("records")


def _hashes(html: str) -> str:
    """CSP source list: the sha256 of each inline <style> and <script> block of ``html``."""
    out = []
    for kind in ("style", "script"):
        for body in re.findall(rf"<{kind}>(.*?)</{kind}>", html, flags=re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            out.append((kind, f"'sha256-{digest}'"))
    style = " ".join(h for k, h in out if k == "style") or "'none'"
    script = " ".join(h for k, h in out if k == "script") or "'none'"
    return (
        f"default-src 'none'; img-src data:; style-src {style}; script-src {script}; "
        "base-uri 'none'; form-action 'none'"
    )


def _render(name: str, **ctx) -> str:
    import jinja2

    tpl = (resources.files("cxlab.screen") / "templates" / name).read_text("utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = _svg._num
    html = env.from_string(tpl).render(csp="__CSP__", **ctx)
    return html.replace("__CSP__", _hashes(html), 1)


def _flags(store: Store) -> pd.DataFrame:
    """Latest-session flagged findings per subject (plain names), from the screening rules."""
    from cxlab.screen import screen, session_order

    feats = store.table("features")
    scores = store.table("scores")
    try:
        s = screen(feats if len(feats) else None, scores if len(scores) else None)
    except CxlabError as e:  # a bad lab rules file: the pages still show the metrics
        warn(f"screening rules could not be applied ({e}); no flags shown", field="flags")
        return pd.DataFrame(columns=["subject_id", "title", "side"])
    s = s.assign(order=session_order(s["session"]))
    last = s.groupby("subject_id")["order"].transform("max")
    f = s[(s["order"] == last) & (s["status"] == "flagged")].copy()
    f["title"] = f["rule_id"].map(_rule_title)
    return f[["subject_id", "title", "side"]]


def write_athlete_pages(
    store, out_dir: str | os.PathLike[str], /, *, metrics=KEY_METRICS
) -> list[Path]:
    """Write ``athlete-<subject_id>.html`` per athlete and ``index.html`` (the squad).

    Parameters
    ----------
    store : Store or path-like
        Store with ``features`` (and optionally ``recordings``/``forces`` for the curves,
        ``interventions`` for the programme, ``scores``/``sessions`` for the dates).
    out_dir : path-like
        Output folder (created).
    metrics : sequence of Metric
        Key metrics shown (default :data:`KEY_METRICS`).

    Returns
    -------
    list of pathlib.Path
        The pages written (athletes in subject order, then the index).
    """
    st = store if isinstance(store, Store) else Store(store)
    feats = st.table("features")
    if feats.empty:
        from cxlab._check import ConfigError, message

        raise ConfigError(
            message(
                "has no features",
                field="--store",
                value=str(st.path),
                fix="run cxlab features first",
            )
        )
    dates = session_dates(st)
    feats = feats.merge(dates, on=["subject_id", "session"], how="left")
    recs = st.table("recordings")
    prog = st.table("interventions")
    flags = _flags(st)
    noise = {m: _noise(feats, m) for m in metrics}
    pairs = side_pairs(feats)  # the whole table: a signed feature is paired for no one
    stored = (
        st.table(
            "curves",
            columns=["subject_id", "session", "recording_id", "side", "node", "pct", "value"],
            filters=[("phase", "==", CURVE_PHASE), ("signal", "==", CURVE_SIGNAL)],
        )
        if "curves" in st.tables()
        else pd.DataFrame(columns=["subject_id"])
    )
    pages, squad = {}, []
    for sid in sorted(feats["subject_id"].dropna().unique()):
        fs = feats[feats["subject_id"] == sid]
        order = dict(
            zip(
                dates.loc[dates["subject_id"] == sid, "session"],
                dates.loc[dates["subject_id"] == sid, "order"],
                strict=True,
            )
        )
        programme = prog[prog["subject_id"] == sid] if "subject_id" in prog else prog.iloc[:0]
        panels, row = [], {"subject_id": sid, "cells": []}
        for m in metrics:
            d = fs[(fs["feature"] == m.feature) & (fs["side"] == m.side)]
            per = (
                d.groupby(["session", "order", "date", "unit"], dropna=False, as_index=False)[
                    "value"
                ]
                .mean()
                .sort_values("order")
            )
            if per.empty:
                row["cells"].append(None)
                continue
            te, swc = noise[m]
            change = float(per["value"].iloc[-1] - per["value"].iloc[0])
            cell = {
                "latest": float(per["value"].iloc[-1]),
                "unit": per["unit"].iloc[0],
                "change": change if len(per) > 1 else None,
                "direction": change_direction(change, te=te, swc=swc, better=m.better),
            }
            row["cells"].append(cell)
            svg, dated = _trend_svg(per, m, te, swc, programme)
            panels.append({"metric": m, "svg": svg, "dated": dated, "te": te, "swc": swc, **cell})
        last = fs[fs["order"] == fs["order"].max()]
        curve, curve_task = _stored_curves(stored, sid, order)
        caption = (
            "Total vertical force in body weights over the countermovement, movement onset "
            "(0 %) to take-off (100 %), each session the mean of its trials; dashed: left and "
            "right plates of the latest session."
        )
        if not curve and len(recs):
            curve, curve_task = _curves(st, recs, sid, order)
            caption = (
                "Total vertical force in body weights, aligned at take-off; dashed: left and "
                "right plates of the latest trial."
            )
        fl = flags[flags["subject_id"] == sid]
        open_flags = [
            f"{r.title}" + (f" ({r.side})" if r.side in ("left", "right") else "")
            for r in fl.itertuples()
        ]
        sessions = dates[dates["subject_id"] == sid]
        pages[sid] = _render(
            "athlete.html",
            subject_id=sid,
            panels=panels,
            curve=curve,
            curve_task=curve_task,
            curve_caption=caption,
            asym=_asymmetries(
                pairs[(pairs["subject_id"] == sid) & (pairs["session"] == last["session"].iloc[0])]
            ),
            flags=open_flags,
            programme=programme.astype(object).where(programme.notna(), None).to_dict("records"),
            sessions=[
                {"session": s, "date": None if pd.isna(d) else d.date().isoformat()}
                for s, d in zip(sessions["session"], sessions["date"], strict=True)
            ],
        )
        row["flags"] = open_flags
        row["latest_session"] = str(last["session"].iloc[0])
        squad.append(row)
    keep = [
        i
        for i, m in enumerate(metrics)
        if m.feature in SQUAD_METRICS and any(r["cells"][i] for r in squad)
    ]
    for r in squad:
        r["cells"] = [r["cells"][i] for i in keep]
    index = _render("squad.html", metrics=[metrics[i] for i in keep], rows=squad)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_text(html, out / f"athlete-{sid}.html") for sid, html in pages.items()]
    written.append(write_text(index, out / "index.html"))
    return written
