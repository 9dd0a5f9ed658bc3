"""One-page, self-contained HTML profile per client (Jinja2 template, inline PNG figures).

The page holds: a body-region summary of the latest findings, the asymmetry profile
(left vs right of every feature that may be paired, as % of the stronger side, per task,
with the pairing of :func:`cxlab.features.pairing.side_pairs` and its n of trials), the trends of
every measure that was ever flagged across sessions with its MDC95 band, and the
suggested corrective focus. Figures are drawn with matplotlib's Agg canvas and inlined
as base64 PNG; the page loads no script, font, style sheet or image from anywhere else.
Only the pseudonymised ``subject_id`` appears: raw labels never reach the store.
"""

from __future__ import annotations

import base64
import io
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, message
from cxlab._html import html_environment
from cxlab.features.pairing import PAIR_COLUMNS, SEPARATE_TRIALS, side_pairs
from cxlab.store import write_text

__all__ = ["render_profile", "write_profiles"]

_SEV_RANK = {"high": 0, "moderate": 1, "low": 2}
_L, _R, _FLAG, _OK = "#4C72B0", "#DD8452", "#C44E52", "#55A868"


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as dicts with missing values as None (so templates can test them)."""
    return df.astype(object).where(df.notna(), None).to_dict("records")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)
    return fig


def _pair_note(row) -> str:
    """How a bar's two sides were paired and on how many trials."""
    if row.pairing != SEPARATE_TRIALS:
        return f"{row.pairing}, n = {row.n_left}"
    return f"separate trials, n = {row.n_left} L / {row.n_right} R"


def _asymmetry_png(pairs: pd.DataFrame, /) -> str | None:
    """Left vs right bars (mean of trials) as % of the larger side (``pct_left``,
    ``pct_right``), one row per task x feature of :func:`cxlab.features.pairing.side_pairs`,
    with its pairing and n."""
    if pairs.empty:
        return None
    lr = pairs[["left", "right"]].to_numpy(float)
    pct = pairs[["pct_left", "pct_right"]].to_numpy(float)
    names = [
        f"{t if isinstance(t, str) else '—'} · {f} ({u})"
        for t, f, u in zip(pairs["task"], pairs["feature"], pairs["unit"], strict=True)
    ]
    separate = (pairs["pairing"] == SEPARATE_TRIALS).to_numpy()
    y = np.arange(len(pairs))
    fig = _figure(8.0, 0.3 * len(pairs) + 1.0)
    ax = fig.add_subplot()
    hatch = np.where(separate, "//", "")
    for dy, col, side, vals in ((-0.2, _L, "left", pct[:, 0]), (0.2, _R, "right", pct[:, 1])):
        bars = ax.barh(y + dy, vals, 0.4, color=col, label=side)
        for bar, h in zip(bars, hatch, strict=True):
            bar.set_hatch(h)
    for i, ((lv, rv), note) in enumerate(zip(lr, map(_pair_note, pairs.itertuples()), strict=True)):
        ax.text(101, i - 0.2, f"{lv:.3g}", va="center", fontsize=7)
        ax.text(101, i + 0.2, f"{rv:.3g}", va="center", fontsize=7)
        ax.text(111, i, note, va="center", fontsize=7, color="dimgrey")
    ax.axvline(90, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 108)
    ax.set_ylim(len(pairs) - 0.5, -0.5)  # first pair on top, no empty rows
    ax.set_xlabel("% of the larger side (dashed: 90 %; hatched: separate single-leg trials)")
    ax.legend(ncols=2, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=7, frameon=False)
    return _png(fig)


def _trends_png(panels: list[dict]) -> str:
    """One figure, one small panel per measure: value across sessions, threshold line,
    MDC95 band around the baseline value, flagged sessions in red."""
    ncol = min(3, len(panels))
    nrow = -(-len(panels) // ncol)
    fig = _figure(3.3 * ncol, 2.3 * nrow)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, p in zip(axes, panels, strict=False):
        rows = p["rows"]
        x = np.arange(len(rows))
        v = rows["value"].to_numpy(float)
        flagged = rows["flagged"].astype("boolean").fillna(False).to_numpy(bool)
        if np.isfinite(p["mdc95"]):
            ax.axhspan(
                v[0] - p["mdc95"],
                v[0] + p["mdc95"],
                color="grey",
                alpha=0.18,
                lw=0,
                label="baseline ± MDC95",
            )
        ax.axhline(rows["threshold"].iloc[0], color=_FLAG, lw=1, ls="--", label="threshold")
        ax.plot(x, v, color="black", lw=1)
        ax.scatter(x, v, c=np.where(flagged, _FLAG, _OK), zorder=3, s=22)
        ax.set_xticks(x, rows["session"].astype(str))
        ax.set_xlabel("session", fontsize=8)
        ax.set_ylabel(rows["unit"].iloc[0], fontsize=8)
        ax.set_title(p["title"], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best")
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.tight_layout()
    return _png(fig)


def render_profile(
    screened: pd.DataFrame,
    trends: pd.DataFrame,
    /,
    *,
    subject_id: str,
    features: pd.DataFrame | None = None,
    mdc: pd.DataFrame | None = None,
    pairs: pd.DataFrame | None = None,
) -> str:
    """Render one client's profile as a self-contained HTML string.

    Parameters
    ----------
    screened : pandas.DataFrame
        :func:`cxlab.screen.screen` output (any number of subjects).
    trends : pandas.DataFrame
        :func:`cxlab.screen.screen_trends` output.
    subject_id : str
        The client's pseudonym.
    features : pandas.DataFrame, optional
        Long ``features`` table, for the asymmetry profile (its left/right pairs are
        :func:`cxlab.features.pairing.side_pairs` of the whole table: a feature with a
        value <= 0 for any subject is not paired for anyone).
    mdc : pandas.DataFrame, optional
        feature, side, mdc95 (:func:`cxlab.screen.trends.feature_mdc`) for the bands;
        when missing, the MDC95 used by ``trends`` is shown.
    pairs : pandas.DataFrame, optional
        ``side_pairs(features)`` when already computed (:func:`write_profiles` does so
        once for all pages); ``features`` is then not read.

    Returns
    -------
    str
        The HTML page (no external URL, script or font).
    """
    from cxlab.screen import session_order

    s = screened[screened["subject_id"] == subject_id].copy()
    if s.empty:
        raise ConfigError(
            message(
                "has no screening rows",
                field="subject_id",
                value=subject_id,
                fix="pick a subject_id present in the screen output",
            )
        )
    s["order"] = session_order(s["session"])
    s = s.sort_values(["order", "rule_id", "side"], kind="stable")
    sessions = s["session"].drop_duplicates().tolist()
    latest = s[s["session"] == sessions[-1]]
    tr = trends[(trends["subject_id"] == subject_id) & (trends["span"] == "baseline_to_latest")]
    tmap = tr.set_index(["rule_id", "side"])["trend"].to_dict()
    mdc_used = tr.set_index(["rule_id", "side"])["mdc95"].to_dict()

    assessed = latest[latest["status"] != "not assessed"].copy()
    assessed["trend"] = [
        tmap.get(k, "") for k in zip(assessed["rule_id"], assessed["side"], strict=True)
    ]
    assessed["rank"] = assessed["severity"].map(_SEV_RANK).fillna(9)
    regions = []
    for region, g in assessed.sort_values(["rank", "rule_id"]).groupby("region", sort=True):
        regions.append(
            {
                "name": region,
                "n_flagged": int((g["status"] == "flagged").sum()),
                "worst": g["severity"].dropna().iloc[0] if g["severity"].notna().any() else "",
                "rows": _records(g),
            }
        )
    regions.sort(key=lambda r: (-r["n_flagged"], r["name"]))
    not_assessed = sorted(latest.loc[latest["status"] == "not assessed", "rule_id"].unique())

    ever = s[s["status"] == "flagged"][["rule_id", "side"]].drop_duplicates()
    trend_figs = []
    for rule_id, side in ever.itertuples(index=False):
        rows = s[(s["rule_id"] == rule_id) & (s["side"] == side) & (s["status"] != "not assessed")]
        band = mdc_used.get((rule_id, side), np.nan)
        if mdc is not None and not mdc.empty:
            hit = mdc[(mdc["feature"] == rows["feature"].iloc[0]) & (mdc["side"] == side)]
            band = float(hit["mdc95"].iloc[0]) if len(hit) else band
        trend_figs.append(
            {
                "title": f"{rule_id} ({side})",
                "rows": rows,
                "trend": tmap.get((rule_id, side), "single session"),
                "mdc95": float(band) if band is not None else np.nan,
            }
        )
    focus = (
        latest[latest["status"] == "flagged"]
        .assign(rank=lambda d: d["severity"].map(_SEV_RANK).fillna(9))
        .sort_values(["rank", "rule_id"])
        .drop_duplicates("focus")
    )
    sources = latest[["rule_id", "source"]].drop_duplicates().sort_values("rule_id")
    if pairs is None:
        pairs = side_pairs(features) if features is not None else pd.DataFrame(columns=PAIR_COLUMNS)
    pairs = pairs[(pairs["subject_id"] == subject_id) & (pairs["session"] == sessions[-1])]
    lr = pairs[["left", "right"]].to_numpy(float)
    pct = lr / lr.max(axis=1, initial=0.0)[:, None] * 100  # side_pairs' values are > 0
    pairs = pairs.assign(pct_left=pct[:, 0], pct_right=pct[:, 1])
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):  # "$" in a label is text
        asym_png = _asymmetry_png(pairs)
        trends_png = _trends_png(trend_figs) if trend_figs else None
    tpl = (resources.files("cxlab.screen") / "templates" / "profile.html").read_text("utf-8")
    env = html_environment(strict=True)
    return env.from_string(tpl).render(
        subject_id=subject_id,
        sessions=sessions,
        latest=sessions[-1],
        regions=regions,
        not_assessed=not_assessed,
        asymmetry=asym_png,
        asym_rows=_records(pairs),
        trend_figs=trend_figs,
        trends_png=trends_png,
        focus=_records(focus),
        sources=sources.to_dict("records"),
        n_flagged=int((latest["status"] == "flagged").sum()),
    )


def write_profiles(
    screened: pd.DataFrame,
    trends: pd.DataFrame,
    out_dir: str | os.PathLike[str],
    /,
    *,
    features: pd.DataFrame | None = None,
    mdc: pd.DataFrame | None = None,
) -> list[Path]:
    """Write ``profile-<subject_id>.html`` for every subject in ``screened``.

    All pages are rendered before any is written; each is written to a temporary file
    and renamed, so a failure never leaves a half-written page.

    Returns
    -------
    list of pathlib.Path
        The pages written, in subject order.
    """
    out = Path(out_dir)
    pairs = side_pairs(features) if features is not None else None
    pages = {
        sid: render_profile(screened, trends, subject_id=sid, mdc=mdc, pairs=pairs)
        for sid in sorted(screened["subject_id"].unique())
    }
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for sid, html in pages.items():
        target = out / f"profile-{sid}.html"
        written.append(write_text(html, target))
    return written
