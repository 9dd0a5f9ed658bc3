"""Model fits for a run: effects, responders, reliability (thin calls into cxlab.models)."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd

from cxlab._check import warn
from cxlab.experiments.spec import ExperimentSpec

__all__ = ["effects_table", "reliability_table", "resolve_mcids", "responders_table"]

EFFECT_COLUMNS = ["outcome", "arm", "estimand", "estimate", "std_error", "ci_low", "ci_high",
                  "p_value", "p_adj", "n_subjects", "n_obs", "method", "converged", "warnings",
                  "unit", "mcid", "better", "label", "followup_weeks", "formula"]


def _column(name: str) -> str:
    """A formula-safe column name for an outcome (``knee_fppa@left`` -> ``knee_fppa_at_left``)."""
    return re.sub(r"\W", "_", name.replace("@", "_at_"))


def _wide(analysis: pd.DataFrame, outcome: str) -> pd.DataFrame:
    d = analysis[analysis["outcome"] == outcome].drop(columns=["outcome"])
    return d.rename(columns={"value": _column(outcome)}).reset_index(drop=True)


def resolve_mcids(analysis: pd.DataFrame, spec: ExperimentSpec, /) -> ExperimentSpec:
    """Replace ``mcid = "swc"`` by the smallest worthwhile change of the analysed data.

    ``swc = 0.2 x SD(baseline values)`` (ddof 1) over the subjects' first
    sessions (Hopkins 2000: 0.2 of the between-subject SD).

    Returns
    -------
    ExperimentSpec
        A copy whose outcomes all have numeric (or missing) MCIDs.
    """
    outs = []
    for o in spec.outcomes:
        if o.mcid == "swc":
            d = analysis[(analysis["outcome"] == o.name) & (analysis["session_index"] == 0)]
            sd = float(d["value"].std(ddof=1)) if len(d) > 1 else float("nan")
            o = replace(o, mcid=0.2 * sd if np.isfinite(sd) and sd > 0 else None)
        outs.append(o)
    return replace(spec, outcomes=tuple(outs))


def effects_table(analysis: pd.DataFrame, spec: ExperimentSpec, /) -> tuple[pd.DataFrame, str]:
    """Arm-vs-control effects on every outcome, adjusted across the whole family.

    Calls :func:`cxlab.models.fit_effects` once on the wide table (one column
    per outcome; ``time`` = the spec's time variable, ``arm``,
    ``subject = subject_id``); its Holm adjustment covers every arm x outcome
    contrast.

    Returns
    -------
    table : pandas.DataFrame
        The :class:`~cxlab.models.EffectFit` table columns (``outcome`` is the
        spec's outcome name) plus ``unit``, ``mcid``, ``better``, ``label``,
        ``followup_weeks`` (median time of the subjects' last session, in the
        time variable's unit) and ``formula``; outcomes in spec order.
    methods : str
        The fit's plain-words methods paragraph.
    """
    from cxlab.models import fit_effects

    fit_outcomes = []
    for o in spec.outcomes:
        d = analysis[analysis["outcome"] == o.name]
        if d["subject_id"].nunique() < 4 or d["arm"].nunique() < 2:
            warn("has too few subjects or arms to fit an effect", field=f"outcomes.{o.name}",
                 value=int(d["subject_id"].nunique()), fix="widen the filter or add subjects")
            continue
        fit_outcomes.append(o)
    if not fit_outcomes:
        return pd.DataFrame(columns=EFFECT_COLUMNS), ""
    keys = ["subject_id", "session"]
    ctx = (analysis[[*keys, "session_index", "week", "arm", "adherence", "age_years"]]
           .drop_duplicates(keys))
    values = (analysis.assign(col=analysis["outcome"].map(_column))
              .pivot(index=keys, columns="col", values="value").reset_index())
    values.columns.name = None
    wide = ctx.merge(values, on=keys, how="left").sort_values(["subject_id", "session_index"])
    wide = wide.reset_index(drop=True)
    names = {_column(o.name): o for o in fit_outcomes}
    fit = fit_effects(wide, outcome=list(names), time=spec.time, arm=spec.arm,
                      subject="subject_id", control=spec.control,
                      covariates=list(spec.covariates), method=spec.method, alpha=spec.alpha,
                      seed=spec.seed)
    t = fit.table.copy()
    out = []
    for col, o in names.items():
        r = t[t["outcome"] == col].copy()
        d = analysis[analysis["outcome"] == o.name]
        last = d.groupby("subject_id")[spec.time].max()
        r["outcome"] = o.name
        r["unit"] = d["unit"].iloc[0]
        r["mcid"] = np.nan if o.mcid is None else o.mcid
        r["better"] = o.better
        r["label"] = o.label
        r["followup_weeks"] = float(np.median(last))
        r["formula"] = fit.formula.get(col, "")
        out.append(r)
    res = pd.concat(out, ignore_index=True)
    res["warnings"] = res["warnings"].map(_as_text)
    rest = [c for c in res.columns if c not in EFFECT_COLUMNS]
    return res[[c for c in EFFECT_COLUMNS if c in res.columns] + rest], fit.methods


def _as_text(w) -> str:
    if w is None or (isinstance(w, float) and np.isnan(w)):
        return ""
    if isinstance(w, (list, tuple, np.ndarray)):
        return "; ".join(map(str, w))
    return str(w)


def responders_table(analysis: pd.DataFrame, spec: ExperimentSpec, /) -> pd.DataFrame:
    """Responder rates per arm for every outcome with an MCID.

    Baseline is each subject's first dated session, follow-up their last (a
    subject seen once has no follow-up and is left out). A responder's
    improvement (``followup - baseline``, sign flipped where lower is better)
    is at least the MCID.

    Returns
    -------
    pandas.DataFrame
        ``outcome, arm, n, n_responders, rate, ci_low, ci_high`` (Wilson 1927
        score interval at the spec's confidence level), ``mean_change`` (in the
        outcome's unit, raw sign) and ``mcid``; outcomes in spec order, arms
        sorted.
    """
    from scipy import stats

    z = float(stats.norm.ppf(1 - spec.alpha / 2))
    out = []
    for o in spec.outcomes:
        if o.mcid is None:
            continue
        d = analysis[analysis["outcome"] == o.name].sort_values(["subject_id", "session_index"])
        g = d.groupby("subject_id", sort=True)
        first, last = g.first(), g.last()
        keep = last["session_index"] > first["session_index"]
        change = (last["value"] - first["value"])[keep]
        sign = -1.0 if o.better == "lower" else 1.0
        resp = (sign * change >= o.mcid).rename("responder")
        per = pd.concat([first.loc[keep, "arm"], change.rename("change"), resp], axis=1)
        r = per.groupby("arm", sort=True).agg(n=("responder", "size"),
                                              n_responders=("responder", "sum"),
                                              mean_change=("change", "mean")).reset_index()
        n, k = r["n"].to_numpy(float), r["n_responders"].to_numpy(float)
        p = k / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        r["rate"] = p
        r["ci_low"], r["ci_high"] = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
        r.insert(0, "outcome", o.name)
        r["mcid"] = o.mcid
        out.append(r[["outcome", "arm", "n", "n_responders", "rate", "ci_low", "ci_high",
                      "mean_change", "mcid"]])
    cols = ["outcome", "arm", "n", "n_responders", "rate", "ci_low", "ci_high", "mean_change",
            "mcid"]
    res = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)
    return res.astype({"n": "int64", "n_responders": "int64"})


def reliability_table(trials: pd.DataFrame, spec: ExperimentSpec, /) -> pd.DataFrame:
    """Within-session (trial-to-trial) reliability of each feature outcome at baseline.

    Targets are subjects, raters are trials (``task:trial``); only outcomes
    with at least 3 subjects that have the same >= 2 trials are assessed.

    Returns
    -------
    pandas.DataFrame
        ``outcome`` then the :func:`cxlab.models.reliability` columns, ICC(2,1)
        and ICC(3,1) rows only (absolute agreement and consistency of one trial).
    """
    from cxlab.models import reliability

    out = []
    for name, d in trials.groupby("outcome", sort=False):
        counts = d.groupby("trial")["subject_id"].nunique()
        keep = counts[counts >= 3].index
        d = d[d["trial"].isin(keep)]
        complete = d.groupby("subject_id")["trial"].nunique() == len(keep)
        d = d[d["subject_id"].isin(complete[complete].index)]
        if len(keep) < 2 or d["subject_id"].nunique() < 3:
            continue
        r = reliability(d, targets="subject_id", raters="trial", ratings="value")
        r = r[r["type"].isin(["ICC(2,1)", "ICC(3,1)"])].copy()
        r.insert(0, "outcome", name)
        out.append(r)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame({"outcome": []})
