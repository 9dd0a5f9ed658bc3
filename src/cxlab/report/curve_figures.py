"""Ensemble figures of time-normalised curves, with SPM clusters shaded.

Same conventions as :mod:`cxlab.report.figures`: matplotlib (Agg) to deterministic SVG
text, one fixed colour per group (the control arm grey).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from cxlab.models.spm import SpmResult
from cxlab.report.figures import _RC, _svg, arm_palette

__all__ = ["ensemble_plot", "spm_plot"]


def ensemble_plot(
    groups: dict[str, np.ndarray],
    /,
    *,
    pct=None,
    label: str,
    unit: str,
    band: str = "sd",
    control: str = "control",
    individual: bool = True,
    clusters: Sequence[tuple[float, float]] = (),
    title: str | None = None,
    colours: dict[str, tuple] | None = None,
    dashed: Sequence[str] = (),
) -> str:
    """Mean ± SD (or 95 % CI) band of each group's curves, individual curves faint behind.

    Parameters
    ----------
    groups : dict of str to ndarray, each shape (J_g, Q)
        Curves per group (e.g. ``"hip_strengthening · post"``, ``"left"``), same Q.
    pct : array_like, shape (Q,), optional
        Node positions, % of the phase (default 0–100).
    label, unit : str
        What the curves are, for the y axis.
    band : {"sd", "ci"}
        ± 1 SD of the curves, or the pointwise 95 % CI of the mean (t quantile).
    control : str
        The group drawn grey.
    individual : bool
        Draw each curve thinly behind the bands.
    clusters : sequence of (start_pct, end_pct)
        Supra-threshold SPM clusters to shade.
    colours : dict of str to colour, optional
        A colour per group (e.g. the arm's colour for each of its sessions); default one
        colour per group from :func:`~cxlab.report.figures.arm_palette`.
    dashed : sequence of str
        Groups whose mean is drawn dashed (e.g. the baseline sessions).

    Returns
    -------
    str
        SVG text.
    """
    from scipy import stats

    if band not in ("sd", "ci"):
        raise ValueError(f"band must be 'sd' or 'ci', not {band!r}")
    q = next(iter(groups.values())).shape[1]
    x = np.linspace(0, 100, q) if pct is None else np.asarray(pct, dtype=float)
    pal = colours if colours is not None else arm_palette(list(groups), control=control)
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        for s, e in clusters:
            ax.axvspan(s, e, color="0.85", zorder=0, lw=0)
        for name, y in groups.items():
            y = np.asarray(y, dtype=float)
            col = pal[name]
            if individual:
                ax.plot(x, y.T, color=col, lw=0.4, alpha=0.18, zorder=1)
            m = np.nanmean(y, axis=0)
            sd = np.nanstd(y, axis=0, ddof=1) if y.shape[0] > 1 else np.zeros(q)
            half = (
                sd
                if band == "sd"
                else (stats.t.ppf(0.975, max(y.shape[0] - 1, 1)) * sd / np.sqrt(y.shape[0]))
            )
            ax.fill_between(x, m - half, m + half, color=col, alpha=0.25, lw=0, zorder=2)
            ls = "--" if name in dashed else "-"
            ax.plot(x, m, color=col, lw=1.8, ls=ls, zorder=3, label=f"{name} (n = {y.shape[0]})")
        ax.set_xlim(x[0], x[-1])
        ax.set_xlabel("% of phase")
        ax.set_ylabel(f"{label} ({unit})" if unit else label)
        band_txt = "± 1 SD" if band == "sd" else "95 % CI of the mean"
        ax.set_title(
            title
            or f"{label}: mean {band_txt}" + (", SPM clusters shaded" if len(clusters) else ""),
            fontsize=9,
            loc="left",
        )
        ax.legend(frameon=False, fontsize=8, loc="best")
        return _svg(fig)


def spm_plot(result: SpmResult, /, *, label: str) -> str:
    """The SPM{t}/{F} curve with its critical threshold(s) and clusters shaded.

    Returns
    -------
    str
        SVG text.
    """
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.4, 2.4))
        for c in result.clusters:
            ax.axvspan(c.start_pct, c.end_pct, color="0.85", zorder=0, lw=0)
        ax.plot(result.pct, result.z, color="k", lw=1.4)
        ax.axhline(result.threshold, color="#c0392b", ls="--", lw=1)
        if result.statistic == "t" and result.two_tailed:
            ax.axhline(-result.threshold, color="#c0392b", ls="--", lw=1)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xlim(result.pct[0], result.pct[-1])
        ax.set_xlabel("% of phase")
        ax.set_ylabel(f"SPM{{{result.statistic}}}")
        tails = "two-tailed" if result.two_tailed else "one-tailed"
        corr = f", Šidák over {result.n_tests} curves" if result.n_tests > 1 else ""
        ax.set_title(
            f"{label}: {result.test} {result.inference}, α = {result.alpha:.4g} "
            f"({tails}{corr}); threshold {result.threshold:.2f}",
            fontsize=9,
            loc="left",
        )
        return _svg(fig)
