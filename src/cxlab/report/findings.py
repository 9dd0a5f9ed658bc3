"""Plain-language findings from an effects table, worded honestly about uncertainty."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["findings", "last_visit"]

FINDING_COLUMNS = [
    "outcome",
    "arm",
    "verdict",
    "worthwhile",
    "estimate",
    "ci_low",
    "ci_high",
    "p_adj",
    "sentence",
]


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    a = abs(x)
    digits = 2 if a >= 0.1 or a == 0 else (3 if a >= 0.01 else 4)
    return f"{x:.{digits}f}".replace("-", "−")


def last_visit(effects: pd.DataFrame, /) -> pd.DataFrame:
    """The ``change_diff`` rows (categorical time) at each outcome's last visit, per arm.

    Visits are ordered as numbers when they all are (``"2"`` before ``"10"``), else as text.
    """
    e = effects[effects["estimand"] == "change_diff"] if "estimand" in effects else effects
    if e.empty:
        return e
    vis = pd.to_numeric(e["visit"], errors="coerce")
    key = vis if vis.notna().all() else e["visit"].astype(str)
    order = e.assign(_k=key).sort_values("_k", kind="stable")
    return order.groupby(["outcome", "arm"], sort=False).tail(1).drop(columns="_k").sort_index()


def findings(
    effects: pd.DataFrame,
    /,
    *,
    control: str = "control",
    time_unit: str = "week",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One plain-language finding per arm x outcome slope contrast (or, for a per-visit
    fit without slope rows, per arm x outcome contrast at the last visit, :func:`last_visit`).

    Parameters
    ----------
    effects : pandas.DataFrame
        The run's effects table (``slope_diff`` rows are used): ``outcome``,
        ``label``, ``arm``, ``estimate``, ``ci_low``, ``ci_high`` (outcome
        units per time unit), ``p_adj``, ``unit``, ``mcid``, ``better``,
        ``followup_weeks``.
    control : str
        Name of the comparison arm, for the wording.
    time_unit : str
        ``week`` or ``session_index``.

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``arm``, ``verdict`` (``better``: the ``1 - alpha`` CI of the slope
        difference excludes zero on the improving side and the multiplicity-
        adjusted ``p_adj < alpha``; ``worse``: the same on the other side;
        ``suggestive``: the CI excludes zero but ``p_adj >= alpha``, so the
        finding may be one of the false positives expected among many
        comparisons; ``unclear``: the CI includes zero), ``worthwhile``
        (``likely`` when the CI of the difference at follow-up lies beyond the
        MCID, ``possibly`` when only part of it does, ``unlikely`` otherwise,
        ``unknown`` without an MCID), the numbers, and ``sentence``.
        Sorted by outcome order, then arm.
    """
    e = effects
    if "estimand" in effects:
        e = effects[effects["estimand"] == "slope_diff"]
        if e.empty:  # per-visit (categorical time) fit: the contrast at the last visit
            e = last_visit(effects)
    per = "week" if time_unit == "week" else "session"
    level = f"{100 * (1 - alpha):g} %"
    rows = []
    for r in e.itertuples(index=False):
        good = -1.0 if r.better == "lower" else 1.0
        lo, hi = sorted((r.ci_low * good, r.ci_high * good))
        verdict = "better" if lo > 0 else ("worse" if hi < 0 else "unclear")
        adjusted_ok = bool(np.isfinite(r.p_adj) and r.p_adj < alpha)
        if verdict != "unclear" and not adjusted_ok:
            verdict = "suggestive"
        visit = getattr(r, "estimand", "slope_diff") == "change_diff"
        fw, mcid = (1.0 if visit else float(r.followup_weeks)), float(r.mcid)
        unit = "%-points" if r.unit == "%" else r.unit
        arm = r.arm.replace("_", " ")
        ctrl = control.replace("_", " ")
        direction = "reduced" if r.estimate < 0 else "increased"
        ci = f"{level} CI {_fmt(r.ci_low)} to {_fmt(r.ci_high)}"
        p = "" if not np.isfinite(r.p_adj) else f", Holm-adjusted p = {r.p_adj:.3g}"
        rate = f"{unit} more than {ctrl} by visit {r.visit}" if visit else f"{unit}/{per} more"
        head = (
            f"{arm.capitalize()} {direction} {r.label} by {_fmt(abs(r.estimate))} {rate}"
            + ("" if visit else f" than {ctrl}")
            + f" ({ci}{p})"
        )
        if np.isfinite(mcid):
            worthwhile = (
                "likely" if lo * fw >= mcid else "possibly" if hi * fw >= mcid else "unlikely"
            )
            at = (
                f"that is {_fmt(r.estimate)} {unit} against an MCID of {_fmt(mcid)} {unit}"
                if visit
                else f"over about {fw:.0f} {per}s that is {_fmt(r.estimate * fw)} {unit} "
                f"against an MCID of {_fmt(mcid)} {unit}"
            )
        else:
            worthwhile, at = "unknown", "no MCID was given"
        if verdict == "better":
            tail = {
                "likely": "an improvement beyond the smallest worthwhile change.",
                "possibly": "a real improvement, but it may be smaller than the smallest "
                "worthwhile change.",
                "unlikely": "a real but small improvement, below the smallest worthwhile change.",
                "unknown": "a real improvement.",
            }[worthwhile]
            text = f"{head}; {at}: {tail}"
        elif verdict == "suggestive":
            text = (
                f"{head}; {at}. The {level} interval excludes zero but the finding does not "
                f"survive adjustment for the number of comparisons, so treat it as a "
                f"hypothesis to confirm, not an established effect."
            )
        elif verdict == "worse":
            text = f"{head}; {at}: worse than {ctrl}, and the interval excludes no difference."
        else:
            text = (
                f"{arm.capitalize()} showed no clear difference from {ctrl} in {r.label}: "
                f"{_fmt(r.estimate)} {f'{unit} at visit {r.visit}' if visit else f'{unit}/{per}'}"
                f" ({ci}{p}). The interval includes zero, so "
                f"the data are compatible with benefit, no effect or harm; {at}."
            )
        rows.append(
            {
                "outcome": r.outcome,
                "arm": r.arm,
                "verdict": verdict,
                "worthwhile": worthwhile,
                "estimate": r.estimate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "p_adj": r.p_adj,
                "sentence": text,
            }
        )
    return pd.DataFrame(rows, columns=FINDING_COLUMNS)
