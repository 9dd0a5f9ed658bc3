"""Model fits for a run: effects, responders, reliability (thin calls into cxlab.models)."""

from __future__ import annotations

import re
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from cxlab._check import CxlabError, CxlabWarning, warn
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
    contrast. An outcome the model refuses on its own (e.g. fewer than 3
    subjects with values in one arm) is left out with a warning naming the
    spec's outcome, and the rest are fitted again, so the adjustment then
    covers the fitted outcomes only (the methods text says so).

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
    skipped = []
    while True:
        try:
            fit = fit_effects(wide, outcome=list(names), time=spec.time, arm=spec.arm,
                              subject="subject_id", control=spec.control,
                              covariates=list(spec.covariates), method=spec.method,
                              alpha=spec.alpha, seed=spec.seed)
            break
        except CxlabError as e:  # an error about one outcome: leave it out, fit the rest
            text = str(e)
            col = next((c for c in names if text.startswith(f"{c}: ")), None)
            if col is None:
                raise
            o = names.pop(col)
            skipped.append(o.name)
            warn("not fitted: " + text[len(col) + 2:].replace(col, o.name),
                 field=f"outcomes.{o.name}",
                 fix="drop the outcome from the spec, or leave the sparse arm out with where")
            if not names:
                return pd.DataFrame(columns=EFFECT_COLUMNS), ""
    for w in fit.warnings:  # rows the model left out -> the manifest and the report
        warnings.warn(w, CxlabWarning, stacklevel=2)
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
    methods = fit.methods
    if skipped:
        methods += (f" {', '.join(skipped)} could not be fitted (see the warnings) and "
                    f"{'is' if len(skipped) == 1 else 'are'} not in that adjustment, which "
                    "covers the fitted outcomes and arms only.")
    return res[[c for c in EFFECT_COLUMNS if c in res.columns] + rest], methods


def _as_text(w) -> str:
    if w is None or (isinstance(w, float) and np.isnan(w)):
        return ""
    if isinstance(w, (list, tuple, np.ndarray)):
        return "; ".join(map(str, w))
    return str(w)


def responders_table(analysis: pd.DataFrame, spec: ExperimentSpec, /, *,
                     sem: dict[str, float] | None = None) -> pd.DataFrame:
    """Responder rates per arm for every outcome with an MCID.

    Calls :func:`cxlab.models.responders` with baseline = each subject's first
    dated session and follow-up = their last (a subject seen once has no
    follow-up). A responder improved by at least the MCID; with a standard
    error of measurement for the outcome (``sem``, from the run's trial-to-trial
    reliability) the reliable change index criterion (Jacobson & Truax 1991) is
    reported too.

    Parameters
    ----------
    sem : dict, optional
        outcome name -> SEM in the outcome's unit.

    Returns
    -------
    pandas.DataFrame
        ``outcome`` then the :class:`~cxlab.models.ResponderResult` ``rates``
        columns (``arm, criterion, n, n_responders, rate, ci_low, ci_high,
        n_missing``) and ``mcid``; outcomes in spec order.
    """
    from cxlab.models import responders

    sem = sem or {}
    out = []
    for o in spec.outcomes:
        if o.mcid is None:
            continue
        d = analysis[analysis["outcome"] == o.name]
        first = d.groupby("subject_id")["session_index"].transform("min")
        last = d.groupby("subject_id")["session_index"].transform("max")
        d = d[(d["session_index"] == first) | (d["session_index"] == last)]
        d = d.assign(visit=np.where(d["session_index"] == first.loc[d.index], "baseline",
                                    "followup"))
        if (d["visit"] == "followup").sum() == 0:
            continue
        s = sem.get(o.name)
        res = responders(d[["subject_id", "arm", "visit", "value"]], outcome="value",
                         subject="subject_id", time="visit", baseline="baseline",
                         followup="followup", mcid=o.mcid, arm="arm",
                         sem=s if s is not None and np.isfinite(s) and s > 0 else None,
                         lower_is_better=o.better == "lower", alpha=spec.alpha)
        rates = res.rates.copy()
        rates.insert(0, "outcome", o.name)
        rates["mcid"] = o.mcid
        out.append(rates)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["outcome", "arm", "criterion", "n", "n_responders", "rate", "ci_low",
                 "ci_high", "n_missing", "mcid"])


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
