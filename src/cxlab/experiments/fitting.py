"""Model fits for a run: effects, responders, reliability (thin calls into cxlab.models)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import CxlabError, CxlabWarning, warn
from cxlab.experiments.spec import PREPOST_ARM, ExperimentSpec

__all__ = [
    "Effects",
    "effects_table",
    "participants_table",
    "reliability_table",
    "resolve_mcids",
    "responders_table",
]

EFFECT_COLUMNS = [
    "outcome",
    "arm",
    "estimand",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adj",
    "n_subjects",
    "n_obs",
    "method",
    "converged",
    "warnings",
    "unit",
    "mcid",
    "better",
    "label",
    "followup_weeks",
    "formula",
]


class Effects(NamedTuple):
    """What :func:`effects_table` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        The effects (see :func:`effects_table`).
    methods : str
        The fit's plain-words methods paragraph.
    means : pandas.DataFrame
        Marginal means per outcome × arm × visit (:data:`cxlab.models.emmeans.EMM_COLUMNS`);
        mixed models only.
    pairs : pandas.DataFrame
        Pairwise arm contrasts within each visit (:data:`~cxlab.models.emmeans.PAIR_COLUMNS`).
    variances : pandas.DataFrame
        Random-effect and residual variances per outcome
        (:data:`~cxlab.models.emmeans.VARIANCE_COLUMNS`).
    engines : dict of str to str
        Spec outcome → the code that fitted its mixed model (``"reml"``: cxlab's fast
        profiled REML; ``"statsmodels"``: statsmodels MixedLM); empty for other methods.
    """

    table: pd.DataFrame
    methods: str
    means: pd.DataFrame
    pairs: pd.DataFrame
    variances: pd.DataFrame
    engines: Mapping[str, str] = MappingProxyType({})


def _no_effects(methods: str = "") -> Effects:
    from cxlab.models.emmeans import EMM_COLUMNS, PAIR_COLUMNS, VARIANCE_COLUMNS

    return Effects(
        pd.DataFrame(columns=EFFECT_COLUMNS),
        methods,
        pd.DataFrame(columns=EMM_COLUMNS),
        pd.DataFrame(columns=PAIR_COLUMNS),
        pd.DataFrame(columns=VARIANCE_COLUMNS),
    )


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


def effects_table(analysis: pd.DataFrame, spec: ExperimentSpec, /) -> Effects:
    """Arm-vs-control effects on every outcome, adjusted across the whole family.

    Calls :func:`cxlab.models.fit_effects` once on the wide table (one column
    per outcome; ``time`` = the spec's time variable, ``arm``,
    ``subject = subject_id``); its Holm adjustment covers every arm x outcome
    contrast. An outcome the model refuses on its own (e.g. fewer than 3
    subjects with values in one arm) is left out with a warning naming the
    spec's outcome, and the rest are fitted again, so the adjustment then
    covers the fitted outcomes only (the methods text says so).

    A pre/post design (``design = "prepost"``) fits
    :func:`cxlab.models.prepost.fit_change` instead: change per unit of time
    (``slope``) and mean first-to-last change (``mean_change``), no control.

    Returns
    -------
    Effects
        ``table``: the :class:`~cxlab.models.EffectFit` table columns
        (``outcome`` is the spec's outcome name) plus ``unit``, ``mcid``,
        ``better``, ``label``, ``followup_weeks`` (median time of the subjects'
        last session, in the time variable's unit) and ``formula``; outcomes in
        spec order. ``methods``, and for mixed models the marginal means per
        arm at each session index (or at the first and median last week), the
        arm contrasts and the variance components.
    """
    from cxlab.models import OutcomeNotFitted, check_subjects_per_arm

    if spec.design == "prepost":
        return _prepost_effects(analysis, spec)
    if spec.design == "crossover":
        return _crossover_effects(analysis, spec)

    arms = sorted(analysis["arm"].dropna().astype(str).unique())  # control missing: fit says so
    fit_outcomes, skipped = [], []
    for o in spec.outcomes:
        d = analysis[(analysis["outcome"] == o.name) & analysis["value"].notna()]
        try:  # the models' own rule, applied before fitting so one call fits the rest
            check_subjects_per_arm(
                d.groupby(d["arm"].astype(str))["subject_id"].nunique(),
                arms=arms,
                outcome=o.name,
                what="subject(s) with observed values",
                fix="drop the arm or the outcome, or check for missing values",
            )
        except OutcomeNotFitted as e:
            _not_fitted(e, o.name)
            skipped.append(o.name)
            continue
        fit_outcomes.append(o)
    if not fit_outcomes:
        return _no_effects()
    keys = ["subject_id", "session"]
    ctx = analysis[
        [*keys, "session_index", "week", "arm", "adherence", "age_years"]
    ].drop_duplicates(keys)
    values = (
        analysis.assign(col=analysis["outcome"].map(_column))
        .pivot(index=keys, columns="col", values="value")
        .reset_index()
    )
    values.columns.name = None
    wide = ctx.merge(values, on=keys, how="left").sort_values(["subject_id", "session_index"])
    wide = wide.reset_index(drop=True)
    names = {_column(o.name): o for o in fit_outcomes}
    while True:
        try:
            fit = _fit(wide, list(names), spec)
            break
        except OutcomeNotFitted as e:  # one outcome refused: leave it out, fit the rest
            if e.outcome not in names:
                raise
            o = names.pop(e.outcome)
            skipped.append(o.name)
            _not_fitted(e, o.name, column=e.outcome)
            if not names:
                return _no_effects()
    for w in fit.warnings:  # rows the model left out -> the manifest and the report
        warnings.warn(w, CxlabWarning, stacklevel=2)
    t = fit.table.copy()
    out = []
    means, pairs, variances = [], [], []
    for col, o in names.items():
        if spec.method == "mixed":
            m, pr, v = _means(fit, col, o.name, analysis, spec)
            means.append(m)
            pairs.append(pr)
            variances.append(v)
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
        methods += (
            f" {', '.join(skipped)} could not be fitted (see the warnings) and "
            f"{'is' if len(skipped) == 1 else 'are'} not in that adjustment, which "
            "covers the fitted outcomes and arms only."
        )
    empty = _no_effects()
    engines = getattr(fit, "engine", {})
    return Effects(
        res[[c for c in EFFECT_COLUMNS if c in res.columns] + rest],
        methods,
        pd.concat(means, ignore_index=True) if means else empty.means,
        pd.concat(pairs, ignore_index=True) if pairs else empty.pairs,
        pd.concat(variances, ignore_index=True) if variances else empty.variances,
        {o.name: engines[col] for col, o in names.items() if col in engines},
    )


def _fit(wide: pd.DataFrame, columns: list[str], spec: ExperimentSpec):
    """The spec's fitter on the wide table (mixed models on the fast engine where it applies)."""
    from cxlab.models import fit_aipw, fit_gee, fit_mixed

    common = dict(
        outcome=columns,
        time=spec.time,
        arm=spec.arm,
        subject="subject_id",
        control=spec.control,
        covariates=list(spec.covariates),
        alpha=spec.alpha,
    )
    if spec.method == "aipw":
        return fit_aipw(wide, **common, seed=spec.seed)
    if spec.method == "gee":
        return fit_gee(wide, **common, time_as=spec.time_as)
    return fit_mixed(wide, **common, engine="auto", time_as=spec.time_as)


def _not_fitted(e, name: str, *, column: str | None = None) -> None:
    """Warn that outcome ``name`` (model column ``column``) is left out, and why."""
    reason = e.reason.replace(column, name) if column else e.reason
    fix = "drop the outcome from the spec, or leave the sparse arm out with where"
    warn(
        "not fitted: " + reason,
        field=f"outcomes.{name}",
        value=e.value,
        fix=f"{e.fix}; {fix}" if e.fix else fix,
    )


def _visits(analysis: pd.DataFrame, spec: ExperimentSpec, outcome: str) -> list[float]:
    """Where to evaluate marginal means: every session index, or first and median last week."""
    d = analysis[analysis["outcome"] == outcome].dropna(subset=[spec.time])
    if spec.time_as == "categorical":  # the visit labels the model was fitted on
        return sorted(d[spec.time].unique().tolist())
    if spec.time == "session_index":
        return sorted(float(v) for v in d["session_index"].unique())
    last = d.groupby("subject_id")[spec.time].max()
    return [float(d[spec.time].min()), float(np.round(np.median(last), 1))]


def _means(fit, col: str, name: str, analysis: pd.DataFrame, spec: ExperimentSpec):
    from cxlab.models.emmeans import marginal_means, variance_components

    res, scale = fit.results_[col], fit.time_scale.get(col, 1.0)  # a MixedFit
    mm = marginal_means(
        res,
        outcome=name,
        arm=spec.arm,
        time=spec.time,
        visits=_visits(analysis, spec, name),
        scale=scale,
        alpha=spec.alpha,
    )
    var = variance_components(res, outcome=name, time=spec.time, scale=scale)
    return mm.means, mm.pairs, var


def _crossover_effects(analysis: pd.DataFrame, spec: ExperimentSpec) -> Effects:
    """Each programme vs control within subjects, at the last session of each period."""
    from cxlab.models import p_adjust
    from cxlab.models.crossover import fit_crossover

    out = []
    for o in spec.outcomes:
        d = analysis[analysis["outcome"] == o.name].sort_values(["subject_id", "session_index"])
        d = d.drop_duplicates(["subject_id", "period"], keep="last")
        try:
            t = fit_crossover(
                d,
                outcome="value",
                arm="arm",
                period="period",
                sequence="sequence",
                subject="subject_id",
                control=spec.control,
                covariates=list(spec.covariates),
                alpha=spec.alpha,
            )
        except CxlabError as e:
            warn(
                "not fitted: " + str(e).removeprefix("value: "),
                field=f"outcomes.{o.name}",
                fix="every subject needs a measured session in each programme period",
            )
            continue
        t["outcome"] = o.name
        t["unit"] = d["unit"].iloc[0]
        t["mcid"] = np.nan if o.mcid is None else o.mcid
        t["better"], t["label"] = o.better, o.label
        t["followup_weeks"] = 1.0  # a crossover difference is not a rate
        t["formula"] = t["formula"].str.replace("value ~", "outcome ~", regex=False)
        out.append(t)
    if not out:
        return _no_effects()
    res = pd.concat(out, ignore_index=True)
    res["p_adj"] = p_adjust(res["p_value"].to_numpy(), method="holm")
    level = f"{100 * (1 - spec.alpha):g}%"
    methods = (
        "Crossover design: each programme vs control within subjects, at the last "
        "session of each period, from a linear mixed model (statsmodels MixedLM, REML) "
        "with programme, period and sequence as fixed effects and a random intercept "
        f"per subject (Jones & Kenward 2014); t {level} intervals on Satterthwaite "
        "(1946) degrees of freedom; p-values adjusted with Holm's (1979) procedure. "
        "The model assumes no carry-over between periods."
    )
    return _effects_only(res, methods)


def _effects_only(res: pd.DataFrame, methods: str) -> Effects:
    """Effects of a design without marginal means (crossover, pre/post): the columns of
    :data:`EFFECT_COLUMNS` first, the design's own after them; means, pairs and variances
    empty."""
    rest = [c for c in res.columns if c not in EFFECT_COLUMNS]
    empty = _no_effects()
    return Effects(
        res[[c for c in EFFECT_COLUMNS if c in res.columns] + rest],
        methods,
        empty.means,
        empty.pairs,
        empty.variances,
    )


def _prepost_effects(analysis: pd.DataFrame, spec: ExperimentSpec) -> Effects:
    from cxlab.models.prepost import fit_change

    out = []
    for o in spec.outcomes:
        d = analysis[analysis["outcome"] == o.name]
        try:
            t = fit_change(
                d,
                outcome="value",
                time=spec.time,
                subject="subject_id",
                covariates=list(spec.covariates),
                arm_label=PREPOST_ARM,
                alpha=spec.alpha,
            )
        except CxlabError as e:
            warn(
                "not fitted: " + str(e).removeprefix("value: "),
                field=f"outcomes.{o.name}",
                fix="add subjects with baseline and follow-up values",
            )
            continue
        last = d.groupby("subject_id")[spec.time].max()
        t["outcome"] = o.name
        t["p_adj"] = np.nan
        t["unit"] = d["unit"].iloc[0]
        t["mcid"] = np.nan if o.mcid is None else o.mcid
        t["better"], t["label"] = o.better, o.label
        t["followup_weeks"] = float(np.median(last.dropna())) if last.notna().any() else np.nan
        t["formula"] = t["formula"].str.replace("value ~", "outcome ~", regex=False)
        out.append(t)
    if not out:
        return _no_effects()
    from cxlab.models import p_adjust

    res = pd.concat(out, ignore_index=True)
    slope = res["estimand"] == "slope"
    res.loc[slope, "p_adj"] = p_adjust(res.loc[slope, "p_value"].to_numpy(), method="holm")
    level = f"{100 * (1 - spec.alpha):g}%"
    methods = (
        f"Single-group pre/post design: change per unit of {spec.time} from a linear "
        "mixed model (statsmodels MixedLM, REML) with a random intercept per subject, "
        f"t {level} intervals on Satterthwaite (1946) degrees of freedom; and the mean "
        f"first-to-last change with its paired t {level} interval. P-values of the "
        "slopes were adjusted with Holm's (1979) procedure. There is no control arm, "
        "so a change is not an effect of the programme (regression to the mean, "
        "natural history and learning the test move outcomes too)."
    )
    return _effects_only(res, methods)


def _as_text(w) -> str:
    if w is None or (isinstance(w, float) and np.isnan(w)):
        return ""
    if isinstance(w, (list, tuple, np.ndarray)):
        return "; ".join(map(str, w))
    return str(w)


class MeasurementError(NamedTuple):
    """An outcome's measurement error as the responder rules use it (outcome unit)."""

    sem: float
    mdc95: float
    basis: str


def measurement_errors(reliability: pd.DataFrame, /) -> dict[str, MeasurementError]:
    """Outcome -> SEM and MDC95 of ICC(2,1), between-session basis first, implausible skipped."""
    out: dict[str, MeasurementError] = {}
    if reliability.empty or "type" not in reliability:
        return out
    r = reliability[(reliability["type"] == "ICC(2,1)") & (reliability["flag"] == "")]
    between = r["basis"].astype(str).str.startswith("between-session")
    r = r.assign(_pref=(~between).astype(int)).sort_values(["outcome", "_pref"])
    for row in r.drop_duplicates("outcome").itertuples(index=False):
        if np.isfinite(row.sem) and row.sem > 0:
            out[row.outcome] = MeasurementError(float(row.sem), float(row.mdc95), row.basis)
    return out


def _first_last(analysis: pd.DataFrame, o) -> pd.DataFrame:
    return analysis.loc[
        analysis["outcome"] == o.name, ["subject_id", "arm", "session_index", "value"]
    ]


def responders_table(
    analysis: pd.DataFrame,
    spec: ExperimentSpec,
    /,
    *,
    errors: dict[str, MeasurementError] | None = None,
) -> pd.DataFrame:
    """Responder rates per arm for every outcome with an MCID.

    Calls :func:`cxlab.models.responders` with each subject's first and last
    session (``baseline="first"``, ``followup="last"`` in session order; a
    subject seen once has no follow-up). Criteria: ``mcid`` (improved by at
    least the MCID); with a measurement error for the outcome (``errors``,
    from the run's reliability) ``rci`` (Jacobson & Truax 1991 reliable change
    index beyond 1.96) and ``mcid_mdc`` (improved by at least the larger of the
    MCID and the MDC95, so a change within measurement error never counts).

    Returns
    -------
    pandas.DataFrame
        ``outcome`` then the :class:`~cxlab.models.ResponderResult` ``rates``
        columns (``arm, criterion, n, n_responders, rate, ci_low, ci_high,
        n_missing``) and ``mcid``, ``mdc95``; outcomes in spec order.
    """
    out = []
    for o, res, err in _responder_fits(analysis, spec, errors or {}):
        rates = res.rates.copy()
        rates.insert(0, "outcome", o.name)
        rates["mcid"] = o.mcid
        rates["mdc95"] = err.mdc95 if err else np.nan
        out.append(rates)
    return (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame(
            columns=[
                "outcome",
                "arm",
                "criterion",
                "n",
                "n_responders",
                "rate",
                "ci_low",
                "ci_high",
                "n_missing",
                "mcid",
                "mdc95",
            ]
        )
    )


def _responder_fits(analysis, spec, errors):
    from cxlab.models import responders

    for o in spec.outcomes:
        if o.mcid is None:
            continue
        d = _first_last(analysis, o)
        if not (d.groupby("subject_id")["session_index"].nunique() >= 2).any():
            continue
        err = errors.get(o.name)
        res = responders(
            d,
            outcome="value",
            subject="subject_id",
            time="session_index",
            baseline="first",
            followup="last",
            mcid=o.mcid,
            arm="arm",
            sem=err.sem if err else None,
            mdc=err.mdc95 if err else None,
            lower_is_better=o.better == "lower",
            alpha=spec.alpha,
        )
        yield o, res, err


PARTICIPANT_COLUMNS = [
    "outcome",
    "subject_id",
    "arm",
    "adherence",
    "baseline_value",
    "last_value",
    "change",
    "unit",
    "mcid",
    "mdc95",
    "error_basis",
    "threshold",
    "change_mcid",
    "rci",
    "responder_mcid",
    "responder_rci",
    "responder_mcid_mdc",
    "verdict",
]


def participants_table(
    analysis: pd.DataFrame,
    spec: ExperimentSpec,
    /,
    *,
    errors: dict[str, MeasurementError] | None = None,
) -> pd.DataFrame:
    """One row per participant × outcome: who responded, by how much, beyond measurement error.

    Returns
    -------
    pandas.DataFrame
        :data:`PARTICIPANT_COLUMNS`: ``baseline_value`` (first session), ``last_value``
        (last session), ``change`` (last − first, ``unit``), ``mcid``, ``mdc95`` (NaN
        when no reliability), ``error_basis`` (``between-session`` or ``within-session``),
        ``threshold`` = max(MCID, MDC95) (the MCID alone without an MDC), ``change_mcid``
        (improvement in MCIDs, positive = better), ``rci``, the three responder flags,
        and ``verdict``: ``responder`` (improved by at least the threshold),
        ``worse beyond error`` (worsened by at least the threshold), else
        ``within threshold``. Sorted by outcome (spec order) and subject.
    """
    adherence = analysis.groupby("subject_id")["adherence"].first()
    out = []
    for o, res, err in _responder_fits(analysis, spec, errors or {}):
        s = res.subjects.rename(columns={"subject": "subject_id", "followup_value": "last_value"})
        thr = max(o.mcid, err.mdc95) if err else o.mcid
        unit = analysis.loc[analysis["outcome"] == o.name, "unit"].iloc[0]
        s = s.assign(
            outcome=o.name,
            unit=unit,
            mcid=o.mcid,
            mdc95=err.mdc95 if err else np.nan,
            error_basis=err.basis if err else "",
            threshold=thr,
            adherence=s["subject_id"].map(adherence).astype(float),
        )
        s["verdict"] = np.where(
            s["improvement"] >= thr,
            "responder",
            np.where(-s["improvement"] >= thr, "worse beyond error", "within threshold"),
        )
        out.append(s[PARTICIPANT_COLUMNS])
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=PARTICIPANT_COLUMNS)


BETWEEN = "between-session (repeated sessions before the programme)"
WITHIN = (
    "within-session (trial to trial, first session); it misses day-to-day variation, "
    "so it understates the error of a change between sessions"
)


def reliability_table(
    trials: pd.DataFrame,
    spec: ExperimentSpec,
    /,
    analysis: pd.DataFrame | None = None,
    *,
    retest: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Reliability of each outcome: between-session where the data allow, else trial-to-trial.

    A test–retest sheet (``retest``, the store's table from ``cxlab ingest-retest``) comes
    first: an outcome of the spec with at least 3 pairs there takes its ICC(2,1), SEM and
    MDC95 from them (:func:`cxlab.models.reliability.retest_reliability`), with ``basis``
    "between-session (test-retest sheet, n = …, median interval … d)", and is not assessed
    otherwise.

    Between-session: subjects with two or more sessions dated on or before their
    programme start (``week <= 0``) — repeated baseline sessions — give targets =
    subjects, raters = their first two such sessions (at least 3 subjects).
    Otherwise, for feature outcomes, within-session: targets are subjects, raters
    are trials (``task:trial``) of the first session; only outcomes with at least
    3 subjects that have the same >= 2 trials are assessed.

    Returns
    -------
    pandas.DataFrame
        ``outcome`` then the :func:`cxlab.models.reliability` columns (ICC(2,1) and
        ICC(3,1) rows), ``basis`` (one of the two sentences) and ``flag``
        (:func:`cxlab.models.reliability.icc_flag`): "implausible: ICC ≥ 0.999, repeat
        trials nearly identical; check the data" when the repeats agree that well, else
        ``""`` (a flagged row is not used for MDCs).
    """
    from cxlab.models import reliability
    from cxlab.models.reliability import icc_flag, retest_basis, retest_reliability

    out = []
    done = set()
    names = {o.name for o in spec.outcomes}
    if retest is not None and len(retest):
        rr = retest_reliability(retest[retest["outcome"].isin(names)], alpha=spec.alpha)
        if len(rr):
            rr["basis"] = [
                retest_basis(n, d) for n, d in zip(rr["n_pairs"], rr["interval_days"], strict=True)
            ]
            out.append(rr.drop(columns=["n_pairs", "interval_days"]))
            done |= set(rr["outcome"])
    if analysis is not None and len(analysis):
        pre = analysis[analysis["week"].notna() & (analysis["week"] <= 0)]
        pre = pre.assign(
            rank=pre.groupby(["outcome", "subject_id"])["session_index"].rank(method="first")
        )
        pre = pre[pre["rank"] <= 2]
        for name, d in pre.groupby("outcome", sort=False):
            if name in done:
                continue
            two = d.groupby("subject_id")["rank"].nunique()
            d = d[d["subject_id"].isin(two[two == 2].index)]
            if d["subject_id"].nunique() < 3:
                continue
            r = reliability(
                d.assign(rater=d["rank"].astype(int).astype(str)),
                targets="subject_id",
                raters="rater",
                ratings="value",
            )
            r = r[r["type"].isin(["ICC(2,1)", "ICC(3,1)"])].copy()
            r.insert(0, "outcome", name)
            r["basis"] = BETWEEN
            out.append(r)
            done.add(name)
    for name, d in trials.groupby("outcome", sort=False):
        if name in done:
            continue
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
        r["basis"] = WITHIN
        out.append(r)
    if not out:
        return pd.DataFrame({"outcome": [], "basis": [], "flag": []})
    res = pd.concat(out, ignore_index=True)
    res["flag"] = icc_flag(res["icc"])
    return res
