"""Movement screen: turn features and questionnaire scores into findings a coach can act on.

:func:`screen` applies declared rules (:mod:`cxlab.screen.rules`; shipped defaults in
``rules/default.toml``) to the long ``features`` table and the ``scores`` table, one row
per subject x session x rule (x side). :func:`~cxlab.screen.trends.screen_trends`
follows each finding across sessions against the measure's MDC95 so that noise is not
called progress; :func:`~cxlab.screen.prevalence.screen_prevalence` summarises findings
per arm for the experiment report; :func:`~cxlab.screen.profile.render_profile` writes a
one-page, self-contained HTML profile per client.
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import pandas as pd
import pyarrow as pa

from cxlab._check import ConfigError, message, warn
from cxlab.io.sessions import session_order
from cxlab.schemas import schema_of
from cxlab.screen.rules import SEVERITIES, Rule, read_rules, rules_frame

__all__ = [
    "SCREEN_SCHEMA",
    "read_rules",
    "screen",
    "screen_prevalence",
    "screen_trends",
    "session_order",
]

_S, _F, _B, _I = pa.string(), pa.float64(), pa.bool_(), pa.int32()
SCREEN_SCHEMA = schema_of("screen")  # declared in cxlab.schemas with every other table
_OUT = [c.name for c in SCREEN_SCHEMA.columns]
_SLOTS = {"each": ["left", "right"], "bilateral": ["bilateral"], "worst": ["worst"]}


def _resolve_rules(rules) -> list[Rule]:
    if rules is None:
        return read_rules()
    if isinstance(rules, (str, PathLike)):
        return read_rules(rules)
    rules = list(rules)
    if not all(isinstance(r, Rule) for r in rules):
        raise ConfigError(
            message(
                "must be a rules file path or a list of Rule",
                field="rules",
                value=type(rules[0]).__name__ if rules else rules,
                fix="pass cxlab.screen.read_rules(path)",
            )
        )
    return rules


def _strength_rows(features, strength) -> pd.DataFrame | None:
    """Strength features not already in ``features`` (``cxlab features`` writes them too)."""
    if strength is None or strength.empty:
        return None
    from cxlab.features.strength import strength_features

    sf = strength_features(strength)
    if features is None or features.empty or sf.empty:
        return sf
    key = ["subject_id", "session", "feature", "side"]
    have = features[key].drop_duplicates().assign(_have=True)
    sf = sf.merge(have, on=key, how="left")
    return sf[sf["_have"].isna()].drop(columns="_have")


def _measures(features, scores, strength) -> pd.DataFrame:
    """One long frame: subject_id, session, task, kind, measure, side, value, unit."""
    cols = ["subject_id", "session", "task", "kind", "measure", "side", "value", "unit"]
    parts = []
    feats = [f for f in (features, _strength_rows(features, strength)) if f is not None and len(f)]
    for f in feats:
        missing = {"subject_id", "session", "feature", "side", "value", "unit"} - set(f.columns)
        if missing:
            raise ConfigError(
                message(
                    "lacks columns of the features table",
                    field="features",
                    value=sorted(missing),
                    fix="pass the store's features",
                )
            )
        p = f[[c for c in f.columns if c in {*cols, "feature"} - {"measure"}]]
        p = p.rename(columns={"feature": "measure"}).assign(kind="feature")
        if "task" not in p:
            p["task"] = None
        parts.append(p[cols])
    if scores is not None and len(scores):
        missing = {"subject_id", "session", "instrument", "score", "unit"} - set(scores.columns)
        if missing:
            raise ConfigError(
                message(
                    "lacks columns of the scores table",
                    field="scores",
                    value=sorted(missing),
                    fix="pass the store's scores",
                )
            )
        p = scores[["subject_id", "session", "instrument", "score", "unit"]]
        p = p.rename(columns={"instrument": "measure", "score": "value"})
        parts.append(p.assign(kind="instrument", side="bilateral", task=None)[cols])
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    m = pd.concat([p.astype({"value": float}) for p in parts], ignore_index=True)
    m = m.dropna(subset=["subject_id", "session"])
    m["session"] = m["session"].astype(str)
    return m


def _passes(value: np.ndarray, comparison: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Element-wise ``value <comparison> threshold``; False where value is NaN."""
    v, t = value, threshold
    with np.errstate(invalid="ignore"):
        conds = [comparison == c for c in ("<", "<=", ">", ">=", "abs>", "abs>=")]
        outs = [v < t, v <= t, v > t, v >= t, np.abs(v) > t, np.abs(v) >= t]
    return np.select(conds, outs, False)


def screen(
    features: pd.DataFrame | None,
    scores: pd.DataFrame | None = None,
    /,
    *,
    rules: list[Rule] | str | PathLike[str] | None = None,
    strength: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Apply screening rules to every subject x session.

    Trials of the same subject x session x feature x side (and repeated scores of one
    instrument in a session) are averaged first: the **mean of trials** (NaN trials
    ignored) is compared with the threshold. Side logic: ``each`` judges left and right
    separately (two rows); ``bilateral`` reads the ``bilateral`` row; ``worst`` takes the
    worse of left and right (the smaller value for ``<`` rules, the larger for ``>``, the
    larger magnitude for ``abs`` rules) and reports it in ``worse_side``; with only one
    leg measured, a ``worst`` rule flags if that leg passes and is otherwise ``not
    assessed`` (the other leg could be worse). Severity is the
    most severe of the rule's ``severity`` and its ``grades`` whose threshold is passed.

    A rule whose input is missing for a subject x session (no rows, all NaN, or a
    different unit) is reported as ``not assessed`` with ``flagged`` missing, never as
    ``normal``.

    Parameters
    ----------
    features : pandas.DataFrame or None
        Long ``features`` table (subject_id, session, task, trial, feature, side, value,
        unit, ...).
    scores : pandas.DataFrame, optional
        ``scores`` table (subject_id, session, instrument, score, unit, ...).
    rules : list of Rule or path, optional
        Default: the shipped rules (:func:`read_rules`). A path is read with
        :func:`read_rules` (merged with the defaults).
    strength : pandas.DataFrame, optional
        ``strength`` table; its ``strength_hq_ratio`` and ``strength_*_lsi_pct`` rows
        (:func:`cxlab.features.strength.strength_features`) are added unless
        ``features`` already holds them for that subject x session.

    Returns
    -------
    pandas.DataFrame
        Schema :data:`SCREEN_SCHEMA`: subject_id, session, rule_id, feature, side,
        worse_side, value, unit, n_trials, threshold, comparison, flagged (nullable
        bool), status (``flagged``/``normal``/``not assessed``), severity (missing
        unless flagged), region, focus, source; every subject x session seen in any
        input gets one row per rule (x side). Sorted by subject, session (natural
        order), rule_id, side.
    """
    rules = _resolve_rules(rules)
    R = rules_frame(rules)
    R["kind"] = np.where(R["feature"].notna(), "feature", "instrument")
    R = R.rename(columns={"unit": "rule_unit", "task": "rule_task"})
    m = _measures(features, scores, strength)
    visits = m[["subject_id", "session"]].drop_duplicates()

    x = m.merge(
        R[["rule_id", "kind", "measure", "rule_task", "sides", "rule_unit"]], on=["kind", "measure"]
    )
    keep = x["rule_task"].isna() | (x["task"] == x["rule_task"])
    keep &= np.where(
        x["sides"] == "bilateral", x["side"] == "bilateral", x["side"].isin(["left", "right"])
    )
    x = x[keep]
    bad_unit = x["unit"].astype(str) != x["rule_unit"]
    if bad_unit.any():
        b = x[bad_unit].iloc[0]
        warn(
            f"has unit {b['unit']!r} but rule {b['rule_id']!r} expects {b['rule_unit']!r}; "
            f"{int(bad_unit.sum())} rows ignored (not assessed)",
            field=str(b["measure"]),
            fix="convert the feature or set unit in the rules file",
        )
        x = x[~bad_unit]
    agg = x.groupby(["subject_id", "session", "rule_id", "side"], as_index=False).agg(
        value=("value", "mean"), n_trials=("value", "count")
    )
    agg = _worst(agg, R)

    slots = R[["rule_id", "sides"]].assign(side=R["sides"].map(_SLOTS)).explode("side")
    grid = visits.merge(slots[["rule_id", "side"]], how="cross")
    out = grid.merge(agg, on=["subject_id", "session", "rule_id", "side"], how="left")
    out = out.merge(R, on="rule_id", how="left")
    out["n_trials"] = out["n_trials"].fillna(0).astype("int32")
    v = out["value"].to_numpy(dtype=float)
    assessed = ~np.isnan(v)
    hit = _passes(v, out["comparison"].to_numpy(), out["threshold"].to_numpy(dtype=float))
    out["flagged"] = pd.array(np.where(assessed, hit, False), dtype="boolean")
    out.loc[~assessed, "flagged"] = pd.NA
    out["status"] = np.select([~assessed, hit], ["not assessed", "flagged"], "normal")
    out["severity"] = _severity(out, rules)
    out = out.rename(columns={"measure": "feature_", "rule_unit": "unit"})
    out["feature"] = out.pop("feature_")
    out["order"] = session_order(out["session"]) if len(out) else 0
    out = out.sort_values(["subject_id", "order", "rule_id", "side"], kind="stable")
    return out[_OUT].reset_index(drop=True)


def _worst(agg: pd.DataFrame, R: pd.DataFrame) -> pd.DataFrame:
    """Collapse left/right rows of ``worst`` rules to one row with side='worst'."""
    agg = agg.assign(worse_side=None)
    logic = agg["rule_id"].map(R.set_index("rule_id")["sides"])
    w = agg[(logic == "worst") & agg["value"].notna()].copy()
    if w.empty:
        return agg[logic != "worst"]
    comp = w["rule_id"].map(R.set_index("rule_id")["comparison"])
    v = w["value"].to_numpy(dtype=float)
    w["bad"] = np.where(
        comp.str.startswith("abs"), np.abs(v), np.where(comp.str.startswith("<"), -v, v)
    )
    w = w.sort_values(
        ["subject_id", "session", "rule_id", "bad", "side"],
        ascending=[True, True, True, False, True],
        kind="stable",
    )
    n_sides = w.groupby(["subject_id", "session", "rule_id"])["side"].transform("nunique")
    w = w.drop_duplicates(["subject_id", "session", "rule_id"])
    # one leg measured: its value bounds the worst leg only if it is already flagged;
    # a normal single leg says nothing about the other, so that visit is not assessed
    thr = w["rule_id"].map(R.set_index("rule_id")["threshold"]).to_numpy(dtype=float)
    hit = _passes(w["value"].to_numpy(dtype=float), comp.loc[w.index].to_numpy(), thr)
    w = w[(n_sides.loc[w.index] >= 2).to_numpy() | hit]
    w["worse_side"], w["side"] = w["side"], "worst"
    return pd.concat([agg[logic != "worst"], w.drop(columns="bad")], ignore_index=True)


def _severity(out: pd.DataFrame, rules: list[Rule]) -> pd.Series:
    """Most severe passed grade per row (missing where not flagged)."""
    g = pd.DataFrame(
        [(r.id, SEVERITIES.index(r.severity), r.threshold) for r in rules]
        + [(r.id, SEVERITIES.index(s), t) for r in rules for s, t in r.grades.items()],
        columns=["rule_id", "rank", "g_thr"],
    )
    x = out[["rule_id", "value", "comparison"]].reset_index().merge(g, on="rule_id")
    x = x[
        _passes(
            x["value"].to_numpy(dtype=float),
            x["comparison"].to_numpy(),
            x["g_thr"].to_numpy(dtype=float),
        )
    ]
    rank = x.groupby("index")["rank"].max()
    sev = pd.Series(pd.NA, index=out.index, dtype="str")
    sev.loc[rank.index] = np.asarray(SEVERITIES)[rank.to_numpy()]
    return sev


from cxlab.screen.prevalence import screen_prevalence  # noqa: E402
from cxlab.screen.trends import screen_trends  # noqa: E402
