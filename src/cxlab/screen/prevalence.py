"""Cohort-level prevalence of screening findings per arm, with Wilson intervals."""

from __future__ import annotations

import pandas as pd

from cxlab._check import ConfigError, message

__all__ = ["screen_prevalence"]


def screen_prevalence(
    screened: pd.DataFrame, /, *, arms: pd.DataFrame, level: float = 0.95
) -> pd.DataFrame:
    """Prevalence of each finding per arm at baseline and at follow-up.

    A subject has a finding at a session when the rule flags any of its sides; the
    finding is *assessed* when every side was assessed or a side is flagged (a subject
    with a normal side and an unassessed one is left out of the denominator). Baseline is each
    subject's first session, follow-up its last assessed session after the first
    (sessions in natural order); a subject seen once contributes to baseline only.

    Parameters
    ----------
    screened : pandas.DataFrame
        Output of :func:`cxlab.screen.screen`.
    arms : pandas.DataFrame
        Columns ``subject_id``, ``arm``; subjects without an arm are left out.
    level : float
        Confidence level of the Wilson interval (default 0.95;
        :func:`cxlab.models.wilson_interval`).

    Returns
    -------
    pandas.DataFrame
        arm, rule_id, timepoint (``baseline``/``follow-up``), n_assessed, n_flagged,
        prevalence (n_flagged / n_assessed), ci_low, ci_high; sorted by arm, rule_id,
        timepoint.
    """
    from cxlab.models.responders import wilson_interval
    from cxlab.screen import session_order

    missing = {"subject_id", "arm"} - set(arms.columns)
    if missing:
        raise ConfigError(
            message(
                "lacks columns",
                field="arms",
                value=sorted(missing),
                fix="pass a DataFrame with subject_id and arm",
            )
        )
    s = screened.assign(f=screened["status"] == "flagged", na=screened["status"] == "not assessed")
    per = s.groupby(["subject_id", "session", "rule_id"], as_index=False)[["f", "na"]].max()
    # a normal side with another side unassessed is not "no finding": leave it out
    per = per[per["f"] | ~per["na"]].drop(columns="na")
    per["order"] = session_order(per["session"]) if len(per) else 0
    sess = screened[["subject_id", "session"]].drop_duplicates()
    sess["order"] = session_order(sess["session"]) if len(sess) else 0
    first = sess.groupby("subject_id")["order"].min().rename("first")
    per = per.join(first, on="subject_id")
    base = per[per["order"] == per["first"]].assign(timepoint="baseline")
    later = per[per["order"] > per["first"]]
    fu = later.loc[later.groupby(["subject_id", "rule_id"])["order"].idxmax()]
    x = pd.concat([base, fu.assign(timepoint="follow-up")], ignore_index=True)
    a = arms[["subject_id", "arm"]].dropna().drop_duplicates()
    x = x.astype({"subject_id": str}).merge(a.astype({"subject_id": str}), on="subject_id")
    out = x.groupby(["arm", "rule_id", "timepoint"], as_index=False).agg(
        n_assessed=("f", "size"), n_flagged=("f", "sum")
    )
    out["n_flagged"] = out["n_flagged"].astype(int)
    out["prevalence"] = out["n_flagged"] / out["n_assessed"]
    out["ci_low"], out["ci_high"] = wilson_interval(
        out["n_flagged"], out["n_assessed"], alpha=1 - level
    )
    return out.sort_values(
        ["arm", "rule_id", "timepoint"],
        key=lambda c: c.map({"baseline": 0, "follow-up": 1}) if c.name == "timepoint" else c,
    ).reset_index(drop=True)
