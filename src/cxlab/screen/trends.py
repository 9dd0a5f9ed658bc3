"""Findings over time: did a flag resolve, and was the change larger than measurement noise?

A flag that "resolves" because the value moved by less than the measure's minimal
detectable change (MDC95) has not shown real progress: it crossed the threshold by
noise. :func:`screen_trends` therefore reports two things for every pair of sessions,
the flag **transition** and whether the **change** exceeds the MDC95, and combines them
in one ``trend`` label. :func:`feature_mdc` estimates the MDC95 of every feature from
repeated trials within a session with :func:`cxlab.models.reliability`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, message
from cxlab.screen.rules import Rule, read_rules

__all__ = ["TREND_LABELS", "feature_mdc", "screen_trends"]

TREND_LABELS = (
    "resolved",
    "resolved (within MDC)",
    "resolved (MDC unknown)",
    "appeared",
    "appeared (within MDC)",
    "appeared (MDC unknown)",
    "persisted",
    "persisted, improving",
    "persisted, worsening",
    "normal",
    "normal, worsening",
)
_KEY = ["subject_id", "rule_id", "side"]
_COLS = [
    "subject_id",
    "rule_id",
    "feature",
    "side",
    "span",
    "session_from",
    "session_to",
    "value_from",
    "value_to",
    "change_value",
    "mdc95",
    "flagged_from",
    "flagged_to",
    "transition",
    "change",
    "trend",
]


def screen_trends(
    screened: pd.DataFrame,
    /,
    *,
    mdc: pd.DataFrame | None = None,
    rules: list[Rule] | None = None,
) -> pd.DataFrame:
    """Classify each finding between consecutive sessions and from baseline to latest.

    Only assessed sessions take part: "consecutive" pairs successive *assessed*
    sessions of a subject x rule x side, "baseline_to_latest" pairs its first and last
    assessed sessions (sessions in natural order, :func:`cxlab.screen.session_order`).

    * ``transition``: ``resolved`` (flagged → normal), ``persisted`` (flagged →
      flagged), ``appeared`` (normal → flagged) or ``normal`` (normal → normal).
    * ``change``: the change in the rule's good direction (up for ``<`` rules, down for
      ``>`` rules, towards zero for ``abs`` rules) compared with the MDC95:
      ``improved`` if it exceeds +MDC95, ``worsened`` if below -MDC95, else
      ``no real change``; ``MDC unknown`` when no MDC is available.
    * ``trend`` combines both: ``resolved`` only when the change is also ``improved``,
      else ``resolved (within MDC)``; ``appeared`` only when ``worsened``, else
      ``appeared (within MDC)``; ``persisted, improving`` / ``persisted, worsening``
      for real change within a persisting flag; ``normal, worsening`` when a normal
      value worsened by more than the MDC (an early warning). See :data:`TREND_LABELS`.

    Parameters
    ----------
    screened : pandas.DataFrame
        Output of :func:`cxlab.screen.screen`.
    mdc : pandas.DataFrame, optional
        Columns ``feature``, ``side``, ``mdc95`` in the feature's unit (e.g. from
        :func:`feature_mdc`). For ``worst`` rules the larger of the left and right MDC
        is used. Features without an MDC row fall back to the rule's ``mic`` (minimal
        important change, e.g. 10 points for the ODI), then to ``MDC unknown``.
    rules : list of Rule, optional
        The rules used for ``screened`` (for ``mic`` and the good direction); default
        the shipped rules.

    Returns
    -------
    pandas.DataFrame
        subject_id, rule_id, feature, side, span (``consecutive`` /
        ``baseline_to_latest``), session_from, session_to, value_from, value_to,
        change_value (to - from, feature unit), mdc95, flagged_from, flagged_to,
        transition, change, trend. Subjects with fewer than two assessed sessions of a
        rule have no rows.
    """
    from cxlab.screen import session_order

    rules = read_rules() if rules is None else rules
    info = pd.DataFrame(
        [(r.id, r.comparison, r.mic) for r in rules], columns=["rule_id", "comparison", "mic"]
    )
    s = screened[screened["status"] != "not assessed"].copy()
    s["order"] = session_order(s["session"]) if len(s) else 0
    s = s.sort_values([*_KEY, "order"], kind="stable")
    g = s.groupby(_KEY, sort=False)
    prev = g[["session", "value", "flagged"]].shift(1)
    cons = s.assign(
        session_from=prev["session"],
        value_from=prev["value"],
        flagged_from=prev["flagged"],
        span="consecutive",
    )
    cons = cons[cons["session_from"].notna()]
    first = g[["session", "value", "flagged"]].transform("first")
    last_idx = g["order"].idxmax()
    base = s.loc[last_idx].assign(
        session_from=first.loc[last_idx, "session"].to_numpy(),
        value_from=first.loc[last_idx, "value"].to_numpy(),
        flagged_from=first.loc[last_idx, "flagged"].to_numpy(),
        span="baseline_to_latest",
    )
    base = base[base["session_from"] != base["session"]]
    t = pd.concat([cons, base], ignore_index=True).rename(
        columns={"session": "session_to", "value": "value_to", "flagged": "flagged_to"}
    )
    t = t.drop(columns=["comparison"]).merge(info, on="rule_id", how="left")
    unknown = t["comparison"].isna()
    if unknown.any():
        raise ConfigError(
            message(
                "has no rule in the rules given",
                field="rule_id",
                value=t.loc[unknown, "rule_id"].iloc[0],
                fix="pass rules= the rules used for screen()",
            )
        )
    t["mdc95"] = _mdc_lookup(t, mdc).fillna(t["mic"])
    return _classify(t)[_COLS].reset_index(drop=True)


def _mdc_lookup(t: pd.DataFrame, mdc: pd.DataFrame | None) -> pd.Series:
    if mdc is None or mdc.empty:
        return pd.Series(np.nan, index=t.index)
    m = mdc[["feature", "side", "mdc95"]].dropna()
    worst = (
        m[m["side"].isin(["left", "right"])]
        .groupby("feature", as_index=False)["mdc95"]
        .max()
        .assign(side="worst")
    )
    m = pd.concat([m, worst], ignore_index=True).drop_duplicates(["feature", "side"])
    return (
        t[["feature", "side"]]
        .merge(m, on=["feature", "side"], how="left")["mdc95"]
        .set_axis(t.index)
    )


def _classify(t: pd.DataFrame) -> pd.DataFrame:
    t = t.copy()
    vf, vt = t["value_from"].to_numpy(float), t["value_to"].to_numpy(float)
    comp = t["comparison"].astype(str)
    t["change_value"] = vt - vf
    gain = np.where(
        comp.str.startswith("abs"),
        np.abs(vf) - np.abs(vt),
        np.where(comp.str.startswith("<"), vt - vf, vf - vt),
    )
    mdc = t["mdc95"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        change = np.select(
            [np.isnan(mdc), gain > mdc, gain < -mdc],
            ["MDC unknown", "improved", "worsened"],
            "no real change",
        )
    t["change"] = change
    ff = t["flagged_from"].astype(bool).to_numpy()
    ft = t["flagged_to"].astype(bool).to_numpy()
    t["transition"] = np.select(
        [ff & ~ft, ff & ft, ~ff & ft], ["resolved", "persisted", "appeared"], "normal"
    )
    tr, ch = t["transition"].to_numpy(), change
    unknown = ch == "MDC unknown"
    t["trend"] = np.select(
        [
            (tr == "resolved") & (ch == "improved"),
            (tr == "resolved") & unknown,
            tr == "resolved",
            (tr == "appeared") & (ch == "worsened"),
            (tr == "appeared") & unknown,
            tr == "appeared",
            (tr == "persisted") & (ch == "improved"),
            (tr == "persisted") & (ch == "worsened"),
            tr == "persisted",
            (tr == "normal") & (ch == "worsened"),
        ],
        [
            "resolved",
            "resolved (MDC unknown)",
            "resolved (within MDC)",
            "appeared",
            "appeared (MDC unknown)",
            "appeared (within MDC)",
            "persisted, improving",
            "persisted, worsening",
            "persisted",
            "normal, worsening",
        ],
        "normal",
    )
    return t


def feature_mdc(features: pd.DataFrame, /) -> pd.DataFrame:
    """MDC95 and smallest worthwhile change of every feature from repeated trials.

    For each feature x side, the trials of one subject x session are the repeated
    ratings of one target: ``targets`` = subject x session, ``raters`` = the trial's
    order within that session (1st, 2nd, ...), passed to
    :func:`cxlab.models.reliability`. Sessions with fewer trials than the feature's
    most common trial count ``k`` are left out and sessions with more keep their
    first ``k`` trials, so the targets x trials table is complete. Features with
    ``k < 2`` or fewer than 2 such sessions are skipped.

    Parameters
    ----------
    features : pandas.DataFrame
        Long ``features`` table (subject_id, session, trial, feature, side, value).

    Returns
    -------
    pandas.DataFrame
        feature, side, icc (ICC(2,1): single trial, absolute agreement, Shrout & Fleiss
        1979), sem (sqrt of the within-session mean square), mdc95 (1.96 sqrt(2) SEM,
        Weir 2005), swc (0.2 x between-subject SD, Hopkins 2000), n_targets, n_trials;
        all in the feature's unit.

    Warnings
    --------
    This is *within-session* (trial-to-trial) error. Between-session error also
    contains day-to-day biological variation and is usually larger, so the MDC95 here
    is a lower bound: changes between sessions that only just exceed it are
    uncertain.
    """
    from cxlab.models import reliability

    cols = ["feature", "side", "icc", "sem", "mdc95", "swc", "n_targets", "n_trials"]
    f = features.dropna(subset=["value", "subject_id", "session"])
    f = f[["subject_id", "session", "trial", "feature", "side", "value"]].copy()
    f["target"] = f["subject_id"].astype(str) + "|" + f["session"].astype(str)
    f = f.sort_values(["feature", "side", "target", "trial"], kind="stable")
    f["rater"] = f.groupby(["feature", "side", "target"]).cumcount() + 1
    n_per = f.groupby(["feature", "side", "target"])["rater"].transform("max")
    k = (
        n_per.groupby([f["feature"], f["side"]])
        .agg(lambda s: s.mode().max())
        .rename("k")
        .reset_index()
    )
    f = f.merge(k, on=["feature", "side"])
    f = f[(f["k"] >= 2) & (f["rater"] <= f["k"])]
    f = f[f.groupby(["feature", "side", "target"])["rater"].transform("max") == f["k"]]
    n_t = f.groupby(["feature", "side"])["target"].transform("nunique")
    f = f[n_t >= 2]
    if f.empty:
        return pd.DataFrame(columns=cols)
    r = reliability(f, targets="target", raters="rater", ratings="value", by=["feature", "side"])
    r = r[r["type"] == "ICC(2,1)"].rename(columns={"n_raters": "n_trials"})
    return r[cols].reset_index(drop=True)
