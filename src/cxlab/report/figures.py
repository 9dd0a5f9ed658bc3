"""The report's figures: matplotlib/seaborn (Agg), written as deterministic SVG text.

Every function takes run tables and returns an SVG string; the same tables
give the same bytes (``svg.hashsalt`` fixed, no date or creator metadata,
text kept as text so no font is embedded or fetched).
"""

from __future__ import annotations

import io
import re
import textwrap
import warnings
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.collections import LineCollection
from scipy import stats

__all__ = [
    "ASYMMETRY_COLUMNS",
    "ASYMMETRY_MARK_PCT",
    "AsymmetryView",
    "asymmetry_heatmap",
    "asymmetry_view",
    "forest_plot",
    "moderator_plot",
    "responder_plot",
    "trajectory_plot",
]

_RC = {
    "svg.hashsalt": "cxlab",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.parse_math": False,
}  # a "$" in a label from the data is text, not mathtext


def arm_palette(arms, /, *, control: str = "control") -> dict[str, tuple]:
    """A fixed colour per arm: the control arm (whatever its name) grey, the others
    from the colour-blind palette in name order, the same in every figure."""
    arms = sorted({*arms, control}, key=lambda a: (a != control, a))
    cols = sns.color_palette("colorblind", len(arms))
    return {a: ((0.45, 0.45, 0.45) if a == control else c) for a, c in zip(arms, cols, strict=True)}


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF block, unneeded
    return text[text.index("<svg") :]  # drop the XML prolog and doctype for inlining


def trajectory_plot(
    data: pd.DataFrame, /, *, label: str, unit: str, time: str, control: str = "control"
) -> str:
    """Individual trajectories and each arm's mean with its 95 % CI.

    Parameters
    ----------
    data : pandas.DataFrame
        One outcome's rows of the analysis table (``subject_id``, ``arm``,
        ``session_index``, ``value`` and the ``time`` column).
    label, unit : str
        Axis label and unit.
    time : str
        Time column (``week`` or ``session_index``).
    control : str
        The control arm, drawn grey.

    Notes
    -----
    The mean at each session index is drawn at the arm's mean time of that
    session, with a t-based 95 % CI: ``mean ± t(0.975, n-1) · SD / √n``. Rows whose
    ``time`` is missing (a session with no date) are not drawn, as the model leaves them out.
    """
    data = data[np.isfinite(data[time].to_numpy(dtype=float))]  # undated rows: not modelled
    with plt.rc_context(_RC):
        pal = arm_palette(data["arm"].unique(), control=control)
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        lines: dict[str, list[np.ndarray]] = {}
        for (arm, _), d in data.sort_values([time]).groupby(["arm", "subject_id"], sort=True):
            lines.setdefault(arm, []).append(d[[time, "value"]].to_numpy(dtype=float))
        for arm, segments in lines.items():  # one collection an arm: one SVG path group
            ax.add_collection(LineCollection(segments, colors=[pal[arm]], alpha=0.18, lw=0.8))
        ax.autoscale_view()
        g = data.groupby(["arm", "session_index"], sort=True)
        summ = g.agg(
            t=(time, "mean"), m=("value", "mean"), s=("value", "std"), n=("value", "size")
        ).reset_index()
        half = stats.t.ppf(0.975, np.maximum(summ["n"] - 1, 1)) * summ["s"] / np.sqrt(summ["n"])
        summ["half"] = np.where(summ["n"] > 1, half, np.nan)
        span = float(np.ptp(data[time])) if len(data) else 1.0
        arms = sorted(summ["arm"].unique())
        for j, (arm, d) in enumerate(summ.groupby("arm", sort=True)):
            dodge = (j - (len(arms) - 1) / 2) * 0.012 * span  # keep the CIs apart
            ax.errorbar(
                d["t"] + dodge,
                d["m"],
                yerr=d["half"],
                color=pal[arm],
                lw=2,
                capsize=3,
                marker="o",
                ms=4,
                label=f"{arm.replace('_', ' ')} (n={d['n'].iloc[0]})",
            )
        ax.set_xlabel("weeks since programme start" if time == "week" else "session (0 = first)")
        ax.set_ylabel(textwrap.fill(f"{label} ({unit})", 40))
        ax.legend(frameon=False, fontsize=7, loc="best")
        fig.tight_layout()
        return _svg(fig)


def forest_plot(effects: pd.DataFrame, /, *, control: str = "control") -> str:
    """Effect of each arm vs control on each outcome at follow-up, in MCIDs.

    Parameters
    ----------
    effects : pandas.DataFrame
        ``slope_diff`` rows of the run's effects table (``estimate``, ``ci_low``,
        ``ci_high`` per unit of time, ``followup_weeks`` (median follow-up in the
        same time unit), ``mcid``, ``better``).
    control : str
        The control arm (its colour is kept out of the arms' colours).

    Notes
    -----
    Each slope difference (per unit of the run's time variable) and its CI are
    multiplied by the median follow-up time and divided by the outcome's MCID, and
    the sign is flipped for outcomes where lower is better, so every row reads on one axis:
    0 = same as control, +1 = one MCID better than control at follow-up. The
    dashed lines mark ±1 MCID (the smallest worthwhile change).
    """
    e = effects[np.isfinite(effects["mcid"].astype(float))].copy()
    sign = np.where(e["better"] == "lower", -1.0, 1.0)
    scale = sign * e["followup_weeks"].to_numpy(float) / e["mcid"].to_numpy(float)
    e["x"] = e["estimate"] * scale
    lo, hi = e["ci_low"] * scale, e["ci_high"] * scale
    e["lo"], e["hi"] = np.minimum(lo, hi), np.maximum(lo, hi)
    with plt.rc_context(_RC):
        pal = arm_palette(e["arm"].unique(), control=control)
        fig, ax = plt.subplots(figsize=(8.0, 0.3 * max(len(e), 3) + 1.0))
        y = np.arange(len(e))[::-1]
        for arm in sorted(e["arm"].unique()):
            m = (e["arm"] == arm).to_numpy()
            err = np.clip([e["x"][m] - e["lo"][m], e["hi"][m] - e["x"][m]], 0, None)
            ax.errorbar(
                e["x"][m],
                y[m],
                xerr=err,
                fmt="o",
                color=pal[arm],
                capsize=2,
                label=arm.replace("_", " "),
            )
        ax.axvline(0, color="black", lw=0.8)
        for v in (-1, 1):
            ax.axvline(v, color="black", lw=0.8, ls="--")
        ax.set_yticks(
            y,
            [
                f"{lab}: {arm.replace('_', ' ')}"
                for lab, arm in zip(e["label"], e["arm"], strict=True)
            ],
        )
        ax.set_xlabel(
            f"difference from {control.replace('_', ' ')} at follow-up, in MCIDs "
            "(positive = better)"
        )
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout()
        return _svg(fig)


def moderator_plot(moderation: pd.DataFrame, /, *, time_unit: str, control: str = "control") -> str:
    """Each arm's effect vs control at each level of a moderator, with its CI.

    Parameters
    ----------
    moderation : pandas.DataFrame
        ``slope_diff`` rows of one outcome × moderator from the run's moderation table
        (``arm``, ``level``, ``level_value``, ``estimate``, ``ci_low``, ``ci_high`` in
        ``unit`` per ``time_unit``, ``label``, ``moderator``, ``moderator_unit``).
    time_unit : str
        ``"week"`` or ``"session"``, for the axis label.
    control : str
        The control arm (the zero line: no difference from it).

    Notes
    -----
    One row per level (categorical levels in sorted order; a numeric moderator at its mean
    − 1 SD, mean and mean + 1 SD, labelled with the value), one marker per arm, dodged.
    Whether the effect differs between levels is the interaction's CI (in the table), not
    whether the per-level intervals overlap.
    """
    m = moderation.reset_index(drop=True)
    levels = list(dict.fromkeys(m["level"]))
    first = m.iloc[0]

    def name(lv):
        v = m.loc[m["level"] == lv, "level_value"].astype(float).iloc[0]
        if np.isfinite(v):
            tag = {"mean-1sd": "mean − 1 SD", "mean": "mean", "mean+1sd": "mean + 1 SD"}
            return f"{tag.get(lv, lv)} ({v:.3g} {first['moderator_unit']})".strip()
        return str(lv)

    arms = sorted(m["arm"].unique())
    with plt.rc_context(_RC):
        pal = arm_palette(arms, control=control)
        fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(levels) * max(len(arms), 1) + 1.2))
        y0 = np.arange(len(levels))[::-1].astype(float)
        step = 0.6 / max(len(arms), 1)
        for i, arm in enumerate(arms):
            g = m[m["arm"] == arm].set_index("level").reindex(levels)
            y = y0 + 0.3 - (i + 0.5) * step
            x = g["estimate"].to_numpy(float)
            lo, hi = g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float)
            err = np.clip([x - lo, hi - x], 0, None)
            ax.errorbar(
                x, y, xerr=err, fmt="o", color=pal[arm], capsize=2, label=arm.replace("_", " ")
            )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y0, [name(lv) for lv in levels])
        ax.set_ylabel(str(first["moderator"]).replace("_", " "))
        ax.set_xlabel(
            f"{first['label']}: difference from {control.replace('_', ' ')} in rate of change "
            f"({first['unit']}/{time_unit})"
        )
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout()
        return _svg(fig)


def responder_plot(
    rates: pd.DataFrame, /, *, labels: dict[str, str] | None = None, control: str = "control"
) -> str:
    """Responder proportion per arm and outcome with its CI.

    Parameters
    ----------
    rates : pandas.DataFrame
        ``outcome``, ``arm``, ``rate``, ``ci_low``, ``ci_high`` (proportions).
    labels : dict, optional
        outcome -> plain-language label for the axis.
    control : str
        The control arm, drawn first and grey.
    """
    labels = labels or {}
    with plt.rc_context(_RC):
        outcomes = list(dict.fromkeys(rates["outcome"]))
        arms = sorted(rates["arm"].unique(), key=lambda a: (a != control, a))
        pal = arm_palette(arms, control=control)
        fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(outcomes) * max(len(arms), 1) / 2 + 1.2))
        width = 0.8 / max(len(arms), 1)
        for j, arm in enumerate(arms):
            d = rates[rates["arm"] == arm].set_index("outcome").reindex(outcomes)
            y = np.arange(len(outcomes)) + j * width
            ax.barh(y, 100 * d["rate"], height=width, color=pal[arm], label=arm.replace("_", " "))
            err = np.clip(
                [100 * (d["rate"] - d["ci_low"]), 100 * (d["ci_high"] - d["rate"])], 0, None
            )  # a Wilson bound at rate 0 or 1 can be off by 1e-17
            ax.errorbar(100 * d["rate"], y, xerr=err, fmt="none", color="black", lw=0.8, capsize=2)
        ax.set_yticks(
            np.arange(len(outcomes)) + 0.4 - width / 2,
            [textwrap.fill(labels.get(o, o.replace("_", " ")), 32) for o in outcomes],
        )
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("responders (%): improvement ≥ MCID from first to last session")
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout()
        return _svg(fig)


ASYMMETRY_COLUMNS = 20
"""Measures in the asymmetry heat map: those with the largest median |index| at the first
session, each shown at the first and the last session (at most 40 columns on screen)."""

ASYMMETRY_MARK_PCT = 10.0
"""|Asymmetry| (%) marked on the heat map's colour bar: the low end of the 10–15 % often
used to flag an inter-limb asymmetry (a guide: see the report's caption)."""


class AsymmetryView(NamedTuple):
    """What :func:`asymmetry_heatmap` shows: the measures picked, of how many, and when."""

    measures: list[str]
    n_measures: int
    sessions: list[int]


def asymmetry_view(asym: pd.DataFrame, /, *, n: int = ASYMMETRY_COLUMNS) -> AsymmetryView:
    """The ``n`` measures with the largest median |asymmetry| over participants at the
    first session (ties by name), and the first and last session indices."""
    sessions = sorted({int(asym["session_index"].min()), int(asym["session_index"].max())})
    first = asym[asym["session_index"] == sessions[0]]
    size = first.assign(a=first["asym_pct"].abs()).groupby("measure")["a"].median()
    order = sorted(size.index, key=lambda m: (-size[m], m))[:n]
    return AsymmetryView(order, int(asym["measure"].nunique()), sessions)


def asymmetry_heatmap(
    asym: pd.DataFrame, /, *, labels: dict[str, str], view: AsymmetryView | None = None
) -> str:
    """Side-to-side asymmetry per subject (rows) for the measures of :func:`asymmetry_view`
    (columns: each measure at the first and the last session, largest first).

    Parameters
    ----------
    asym : pandas.DataFrame
        ``subject_id``, ``session_index``, ``measure``, ``asym_pct`` (Robinson
        symmetry index, %, positive = right larger).
    labels : dict
        ``subject_id`` -> display label (e.g. ``P01``); no identifiers are shown.
    view : AsymmetryView, optional
        What to show; default :func:`asymmetry_view` of ``asym``.
    """
    view = asymmetry_view(asym) if view is None else view
    w = asym[asym["measure"].isin(view.measures) & asym["session_index"].isin(view.sessions)]
    w = w.pivot_table(
        index="subject_id", columns=["measure", "session_index"], values="asym_pct", aggfunc="mean"
    )
    cols = [(m, s) for m in view.measures for s in view.sessions if (m, s) in w.columns]
    w = w[cols]
    first = view.sessions[0]
    w.columns = [f"{m.replace('_', ' ')} · {'first' if s == first else 'last'}" for m, s in cols]
    w = w.loc[sorted(w.index, key=lambda s: labels.get(s, s))]
    w.index = [labels.get(s, "?") for s in w.index]
    lim = float(np.nanpercentile(np.abs(w.to_numpy()), 98)) if w.size else 1.0
    lim = max(lim, 1.5 * ASYMMETRY_MARK_PCT)  # the marks always on the colour bar
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(
            figsize=(min(2.0 + 0.32 * w.shape[1], 14), min(2.6 + 0.2 * w.shape[0], 14))
        )
        with warnings.catch_warnings():  # seaborn 0.13 calls Colormap.set_bad (pending removal)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(
                w,
                ax=ax,
                cmap="vlag",
                center=0,
                vmin=-lim,
                vmax=lim,
                cbar_kws={
                    "label": f"asymmetry (%), + = right larger; ±{ASYMMETRY_MARK_PCT:g} % marked"
                },
                rasterized=True,
            )
        cbar = ax.collections[0].colorbar
        for v in (-ASYMMETRY_MARK_PCT, ASYMMETRY_MARK_PCT):
            cbar.ax.axhline(v, color="black", lw=0.8)
        ax.set_xlabel("measure · session (largest median asymmetry at the first session first)")
        ax.set_ylabel("participant")
        fig.tight_layout()
        return _svg(fig)
