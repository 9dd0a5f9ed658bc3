"""Arm-vs-control intervention effects on longitudinal outcomes: mixed models, GEE, AIPW.

Three fitters share one design step (:func:`_design_step`: option checks, then
:func:`cxlab.models._inputs.design`: column checks,
arm and subject rules) and each returns its own frozen result:

- :func:`fit_mixed` → :class:`MixedFit` (linear mixed model, REML; fast engine or statsmodels),
- :func:`fit_gee` → :class:`GeeFit` (population-average model, sandwich SEs),
- :func:`fit_aipw` → :class:`AipwFit` (doubly robust change from baseline to follow-up).

Every ``table`` has one row per outcome × arm (× visit, × moderator), columns
:data:`COLUMNS`, with p-values adjusted across the fit. :func:`fit_effects` is the older
single entry point, kept as a dispatcher that returns an :class:`EffectFit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, check_option, message
from cxlab.models import _longitudinal as lg
from cxlab.models._inputs import (
    MIN_SUBJECTS_PER_ARM,
    Design,
    OutcomeNotFitted,
    as_list,
    check_subjects_per_arm,
    design,
)
from cxlab.models._longitudinal import ENGINES, Engine, EngineChoice
from cxlab.models._multiplicity import CORRECTIONS, p_adjust

__all__ = [
    "COLUMNS",
    "MIN_SUBJECTS_PER_ARM",
    "AipwFit",
    "EffectFit",
    "Engine",
    "GeeFit",
    "MixedFit",
    "OutcomeNotFitted",
    "fit_aipw",
    "fit_effects",
    "fit_gee",
    "fit_mixed",
]

COLUMNS = [
    "outcome",
    "arm",
    "estimand",
    "visit",
    "moderator",
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
    "interpretation",
    "df",
    "df_method",
    "var_intercept",
    "var_slope",
    "var_residual",
    "engine",
]
METHODS = ("mixed", "gee", "aipw")
_PRIMARY = ("slope_diff", "change_diff", "ate_change")
TimeAs = Literal["continuous", "categorical"]


@dataclass(frozen=True, kw_only=True)
class _Fit:
    """The attributes every fitter's result has (see each result type for their meaning).

    Attributes
    ----------
    table : pandas.DataFrame
        :data:`COLUMNS`, p-values adjusted over the primary contrasts.
    formula : dict of str to str
        Outcome → the model as fitted.
    methods : str
        A plain-words methods paragraph, ending with the multiplicity correction.
    warnings : tuple of str
        Warnings about the whole fit; each is also in every row's ``table["warnings"]``.
    """

    table: pd.DataFrame
    formula: dict[str, str]
    methods: str
    warnings: tuple[str, ...] = ()


def _fit_common(table: pd.DataFrame, methods: str, ds: Design, *, correction: str, alpha: float):
    """The ``table``, ``methods`` and ``warnings`` of a result: the finished table
    (:func:`_finish`), the methods text with its correction, the design's notes."""
    return {
        "table": _finish(table, correction, ds, alpha),
        "methods": methods + _correction_text(correction),
        "warnings": tuple(ds.notes),
    }


@dataclass(frozen=True, kw_only=True)
class MixedFit(_Fit):
    """The result of :func:`fit_mixed`.

    Attributes
    ----------
    table : pandas.DataFrame
        :data:`COLUMNS`; ``method`` is ``"mixed"``, ``engine`` says which code fitted the
        row's outcome (``"reml"`` or ``"statsmodels"``), ``var_*`` hold the variance
        components.
    formula : dict of str to str
        Outcome → fixed-effects formula (patsy syntax) as fitted.
    results_ : dict of str to object
        Outcome → the fit (statsmodels ``MixedLMResults`` or
        :class:`cxlab.models._longitudinal.RemlResults`; both carry ``model``,
        ``fe_params``, ``bse``, ``cov_re`` and ``scale`` as :mod:`cxlab.models.emmeans`
        reads them).
    time_scale : dict of str to float
        Outcome → divisor of ``time`` in the fitted model (the time range for continuous
        time, else 1): ``results_`` were fitted on ``time / time_scale`` (REML is invariant
        to it; the optimiser converges far more often) and slope rows are divided back.
    engine : dict of str to {"reml", "statsmodels"}
        Outcome → the engine that fitted it.
    methods : str
        A plain-words methods paragraph.
    warnings : tuple of str
        Warnings about the whole fit (rows left out for a missing time, arm or subject);
        each is also in every row's ``table["warnings"]``.
    """

    results_: dict[str, Any] = field(repr=False)
    time_scale: dict[str, float]
    engine: dict[str, Engine]
    method: Literal["mixed"] = "mixed"


@dataclass(frozen=True, kw_only=True)
class GeeFit(_Fit):
    """The result of :func:`fit_gee`.

    Attributes
    ----------
    table : pandas.DataFrame
        :data:`COLUMNS`; ``method`` is ``"gee"``, ``df`` and ``var_*`` are NaN.
    formula : dict of str to str
        Outcome → formula as fitted.
    results_ : dict of str to statsmodels GEEResults
    methods : str
    warnings : tuple of str
    """

    results_: dict[str, Any] = field(repr=False)
    method: Literal["gee"] = "gee"


@dataclass(frozen=True, kw_only=True)
class AipwFit(_Fit):
    """The result of :func:`fit_aipw`.

    Attributes
    ----------
    table : pandas.DataFrame
        :data:`COLUMNS`; ``estimand`` is ``"ate_change"`` (change from baseline to
        follow-up, outcome units), ``visit`` the follow-up.
    formula : dict of str to str
        Outcome → a description of the change, propensity and outcome models.
    subjects : dict of str to pandas.DataFrame
        Outcome → per subject × contrast: ``subject, contrast, arm, change, propensity,
        mu1, mu0, psi`` (cross-fitted propensity and outcome predictions, influence value).
    diagnostics : pandas.DataFrame
        Overlap diagnostics per outcome × arm
        (:data:`cxlab.models.causal.DIAGNOSTIC_COLUMNS`).
    methods : str
    warnings : tuple of str
    """

    subjects: dict[str, pd.DataFrame] = field(repr=False)
    diagnostics: pd.DataFrame
    method: Literal["aipw"] = "aipw"


@dataclass
class EffectFit:
    """The result of :func:`fit_effects` (the dispatcher; new code uses the three fitters).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per outcome × arm (× visit for categorical time, × moderator term);
        columns :data:`COLUMNS` (see :func:`fit_effects`).
    method : str
        ``"mixed"``, ``"gee"`` or ``"aipw"``.
    formula : dict of str to str
        Outcome → model formula (patsy syntax) as fitted, for a report's methods section.
    results_ : dict of str to object
        Outcome → fitted statsmodels results (mixed/GEE) or, for AIPW, the per-subject
        frame with cross-fitted propensities and influence values.
    diagnostics : pandas.DataFrame or None
        AIPW overlap diagnostics, one row per outcome × arm (see :mod:`cxlab.models.causal`).
    methods : str
        A plain-words methods paragraph describing the fit.
    time_scale : dict of str to float
        Outcome → divisor of ``time`` in the fitted mixed model (the time range): the
        model in ``results_`` was fitted on ``time / time_scale`` (REML is invariant to
        this; the optimiser converges far more often), and slope rows are divided back
        to per unit of ``time``. 1 for GEE and categorical time.
    warnings : list of str
        Warnings about the whole fit (rows left out for a missing time, arm or subject,
        counted per column); each is also in every row's ``table["warnings"]``.
    """

    table: pd.DataFrame
    method: str
    formula: dict[str, str]
    results_: dict[str, Any] = field(repr=False)
    diagnostics: pd.DataFrame | None = None
    methods: str = ""
    time_scale: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _Columns(NamedTuple):
    """The columns every fitter is given: outcome(s), time, arm, subject, the control arm's
    name and the covariates (as the fitters' parameters of those names)."""

    outcome: str | Sequence[str]
    time: str
    arm: str
    subject: str
    control: str
    covariates: Sequence[str]


def _design_step(
    data: pd.DataFrame,
    cols: _Columns,
    *,
    correction: str,
    alpha: float,
    time_as: str | None,
    moderators=(),
) -> Design:
    """The design step every fitter shares: option checks, then the validated table.

    ``time_as=None`` (AIPW): time may be any label, no moderators. ``"continuous"`` or
    ``"categorical"`` (mixed, GEE): numeric time when continuous; moderators checked
    (continuous time only) and centred."""
    mods = as_list(moderators)
    if time_as is not None:
        _check_moderators(mods, time_as)
    check_option("correction", correction, CORRECTIONS)
    if not 0 < alpha < 1:
        raise ConfigError(message("must be between 0 and 1", field="alpha", value=alpha))
    ds = design(
        data,
        outcomes=as_list(cols.outcome),
        time=cols.time,
        arm=cols.arm,
        subject=cols.subject,
        control=cols.control,
        covariates=as_list(cols.covariates),
        moderators=mods,
        numeric_time=time_as == "continuous",
    )
    _centre_moderators(ds)
    return ds


def _check_moderators(mods: list[str], time_as: str) -> None:
    if mods and time_as == "categorical":
        raise ConfigError(
            message(
                "moderators need continuous time with method mixed or gee",
                field="moderators",
                value=mods,
                fix="use time_as='continuous' and method='mixed' or 'gee'",
            )
        )


def _centre_moderators(ds: Design) -> None:
    """Centre each moderator at the mean of the subjects' first values (in place on the copy)."""
    for m in ds.moderators:
        first = ds.data.groupby(ds.subject, sort=True)[m].first()
        ds.data[m] = ds.data[m] - float(first.mean())


def _outcome_rows(ds: Design, y: str, *, time_as: str) -> tuple[str, pd.DataFrame]:
    """The outcome's formula and its complete rows, checked (:class:`OutcomeNotFitted`)."""
    fml = lg.formula(ds, y, time_as=time_as)
    cols = [y, ds.time, *ds.covariates, *ds.moderators]
    d = ds.data.dropna(subset=cols).reset_index(drop=True)
    _check_observed(d, ds, y, time_as=time_as)
    return fml, d


def fit_mixed(
    data: pd.DataFrame,
    /,
    *,
    outcome: str | Sequence[str],
    time: str,
    arm: str,
    subject: str,
    control: str,
    covariates: Sequence[str] = (),
    time_as: TimeAs = "continuous",
    moderators: Sequence[str] = (),
    correction: str = "holm",
    alpha: float = 0.05,
    engine: EngineChoice = "auto",
) -> MixedFit:
    """Each arm's effect against control from a linear mixed model (REML), per outcome.

    The model is ``outcome ~ time * C(arm, Treatment(control)) + covariates`` with a random
    intercept and slope of ``time`` per subject (continuous time), or ``outcome ~ arm *
    visit`` with a random intercept (categorical time). A singular slope variance, or a
    fit that does not converge, falls back to a random intercept and says so in
    ``warnings``.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per subject × time point (missing outcomes allowed).
    outcome : str or list of str
        Numeric outcome column(s), e.g. ``"pain_nrs"`` (points) or a feature value.
    time : str
        Time column: numeric (e.g. weeks since the programme started) for
        ``time_as="continuous"``; any visit label for ``"categorical"``.
    arm, subject : str
        Columns with each subject's arm (constant within subject) and identifier.
    control : str
        The reference arm; every other arm is compared against it.
    covariates : list of str
        Adjustment terms (numeric as is, others as categorical).
    time_as : {"continuous", "categorical"}
        ``"continuous"``: estimand ``slope_diff``, the arm's minus control's rate of change
        per unit of ``time``. ``"categorical"``: estimand ``change_diff``, the arm's minus
        control's change from the first visit at each later visit.
    moderators : list of str
        Numeric baseline characteristics; each adds ``time × arm × moderator`` terms,
        mean-centred, giving ``moderation`` rows (continuous time only).
    correction : {"holm", "fdr_bh", "none"}
        Multiplicity adjustment into ``p_adj`` across the primary rows; moderation rows
        form their own family.
    alpha : float
        1 − confidence level: Wald z intervals with 50 or more subjects; with fewer, t
        intervals on Satterthwaite (1946) df from ``(Xᵀ V̂⁻¹ X)⁻¹`` as lmerTest computes them
        (:data:`cxlab.models._longitudinal.SMALL_SAMPLE_SUBJECTS`).
    engine : {"auto", "statsmodels"}
        ``"auto"``: the random-slope model is fitted by cxlab's profiled REML
        (:mod:`cxlab.models._reml`, same optimum as lme4 and statsmodels to 1e-6, many
        times faster) when the design has its shape, statsmodels otherwise;
        ``"statsmodels"``: statsmodels ``MixedLM`` always (the numbers of
        :func:`fit_effects`). Which engine fitted each outcome is in ``engine`` and in the
        table's ``engine`` column.

    Returns
    -------
    MixedFit

    Raises
    ------
    ConfigError
        Missing columns, unknown control, single time point, an arm with fewer than
        :data:`MIN_SUBJECTS_PER_ARM` subjects, non-numeric outcome, invalid options.
    OutcomeNotFitted
        A problem with one outcome (too few observed subjects in an arm, constant
        outcome, one observed time point, no optimiser converged); ``outcome`` names it.

    Warnings
    --------
    The mixed model is unbiased when missingness depends only on observed data (MAR).
    Effects in non-randomised cohorts are confounded: use :func:`fit_aipw` there.
    """
    check_option("time_as", time_as, ("continuous", "categorical"))
    check_option("engine", engine, ENGINES)
    cols = _Columns(outcome, time, arm, subject, control, covariates)
    ds = _design_step(
        data, cols, correction=correction, alpha=alpha, time_as=time_as, moderators=moderators
    )
    rows, formulas, results, scales, engines = [], {}, {}, {}, {}
    re_used = set()
    for y in ds.outcomes:
        fml, d = _outcome_rows(ds, y, time_as=time_as)
        scale = lg.time_scale(ds, time_as=time_as)
        ds_fit = d.assign(**{ds.time: d[ds.time] / scale}) if scale != 1.0 else d
        fit = lg.fit_mixed(ds_fit, ds, fml, time_as=time_as, engine=engine)
        re_used.add(fit.re_formula)
        out = lg.rows(
            fit.results,
            ds,
            d,
            y,
            time_as=time_as,
            method="mixed",
            converged=fit.converged,
            notes=fit.notes,
            alpha=alpha,
            scale=scale,
        )
        rows += [{**r, "engine": fit.engine} for r in out]
        scales[y], engines[y] = scale, fit.engine
        formulas[y], results[y] = fml, fit.results
    text = _methods_text(ds, "mixed", time_as, "", "", re_used, alpha, set(engines.values()))
    return MixedFit(
        **_fit_common(pd.DataFrame(rows), text, ds, correction=correction, alpha=alpha),
        formula=formulas,
        results_=results,
        time_scale=scales,
        engine=engines,
    )


def fit_gee(
    data: pd.DataFrame,
    /,
    *,
    outcome: str | Sequence[str],
    time: str,
    arm: str,
    subject: str,
    control: str,
    covariates: Sequence[str] = (),
    time_as: TimeAs = "continuous",
    moderators: Sequence[str] = (),
    correction: str = "holm",
    cov_struct: Literal["exchangeable", "ar1"] = "exchangeable",
    cov_type: Literal["auto", "robust", "bias_reduced"] = "auto",
    alpha: float = 0.05,
) -> GeeFit:
    """Each arm's effect against control from a Gaussian GEE, per outcome.

    The population-average model with the fixed effects of :func:`fit_mixed`; Wald z
    intervals from sandwich standard errors.

    Parameters
    ----------
    data, outcome, time, arm, subject, control, covariates, time_as, moderators, correction
        As :func:`fit_mixed`.
    cov_struct : {"exchangeable", "ar1"}
        Working correlation within subject (AR(1) over the ranks of the distinct time
        values, so a missed visit counts as two steps).
    cov_type : {"auto", "robust", "bias_reduced"}
        Robust sandwich (Liang & Zeger 1986) or Mancl & DeRouen (2001) bias-reduced for
        few subjects; ``"auto"`` picks ``bias_reduced`` below 50 subjects.
    alpha : float
        1 − confidence level.

    Returns
    -------
    GeeFit

    Raises
    ------
    ConfigError, OutcomeNotFitted
        As :func:`fit_mixed`.

    Warnings
    --------
    GEE needs missingness unrelated to the outcome (MCAR).
    """
    check_option("time_as", time_as, ("continuous", "categorical"))
    check_option("cov_struct", cov_struct, ("exchangeable", "ar1"))
    check_option("cov_type", cov_type, ("auto", "robust", "bias_reduced"))
    cols = _Columns(outcome, time, arm, subject, control, covariates)
    ds = _design_step(
        data, cols, correction=correction, alpha=alpha, time_as=time_as, moderators=moderators
    )
    if cov_type == "auto":
        cov_type = "bias_reduced" if ds.data[ds.subject].nunique() < 50 else "robust"
    rows, formulas, results = [], {}, {}
    for y in ds.outcomes:
        fml, d = _outcome_rows(ds, y, time_as=time_as)
        res, ok, notes = lg.fit_gee(d, ds, fml, cov_struct=cov_struct, cov_type=cov_type)
        rows += lg.rows(
            res,
            ds,
            d,
            y,
            time_as=time_as,
            method="gee",
            converged=ok,
            notes=notes,
            alpha=alpha,
        )
        formulas[y], results[y] = fml, res
    text = _methods_text(ds, "gee", time_as, cov_struct, cov_type, set(), alpha, set())
    return GeeFit(
        **_fit_common(pd.DataFrame(rows), text, ds, correction=correction, alpha=alpha),
        formula=formulas,
        results_=results,
    )


def fit_aipw(
    data: pd.DataFrame,
    /,
    *,
    outcome: str | Sequence[str],
    time: str,
    arm: str,
    subject: str,
    control: str,
    covariates: Sequence[str] = (),
    correction: str = "holm",
    alpha: float = 0.05,
    baseline: Any = None,
    followup: Any = None,
    outcome_model: str = "linear",
    n_folds: int = 5,
    seed: int = 0,
    overlap_bounds: tuple[float, float] = (0.01, 0.99),
    max_outside: float = 0.10,
    min_ess: float = 10.0,
) -> AipwFit:
    """Doubly robust (cross-fitted AIPW) effect on change from ``baseline`` to ``followup``.

    For non-randomised cohorts; see :func:`cxlab.models.causal.aipw_effects` for the
    estimator (Robins, Rotnitzky & Zhao 1994; Chernozhukov et al. 2018).

    Parameters
    ----------
    data, outcome, time, arm, subject, control, covariates, correction, alpha
        As :func:`fit_mixed` (``time`` may be any visit label).
    baseline, followup : time values, optional
        Visits between which change is measured; default the first and the last.
    outcome_model : {"linear", "ridge", "gbm"}
    n_folds : int
        Cross-fitting folds (stratified by arm, shuffled with ``seed``).
    seed : int
    overlap_bounds : (float, float)
        Propensities outside are clipped and count as poor overlap.
    max_outside : float
        Refuse an outcome × arm whose share outside ``overlap_bounds`` is larger.
    min_ess : float
        Refuse when Kish's effective sample size of the weights falls below this.

    Returns
    -------
    AipwFit

    Raises
    ------
    ConfigError
        As :func:`fit_mixed`; invalid AIPW options.
    OutcomeNotFitted
        Too few subjects with both visits, constant change, or poor overlap for one outcome.

    Warnings
    --------
    Causal only when every confounder of arm choice and change is among the covariates.
    """
    from cxlab.models.causal import aipw_effects

    cols = _Columns(outcome, time, arm, subject, control, covariates)
    ds = _design_step(data, cols, correction=correction, alpha=alpha, time_as=None)
    res = aipw_effects(
        ds,
        baseline=baseline,
        followup=followup,
        outcome_model=outcome_model,
        n_folds=n_folds,
        seed=seed,
        overlap_bounds=overlap_bounds,
        max_outside=max_outside,
        min_ess=min_ess,
        alpha=alpha,
    )
    table = res.table.assign(engine=None)
    return AipwFit(
        **_fit_common(table, res.methods, ds, correction=correction, alpha=alpha),
        formula=res.formula,
        subjects=res.subjects,
        diagnostics=res.diagnostics,
    )


def fit_effects(
    data: pd.DataFrame,
    /,
    *,
    outcome: str | Sequence[str],
    time: str,
    arm: str,
    subject: str,
    control: str,
    covariates: Sequence[str] = (),
    method: str = "mixed",
    time_as: str = "continuous",
    moderators: Sequence[str] = (),
    correction: str = "holm",
    cov_struct: str = "exchangeable",
    cov_type: str = "auto",
    alpha: float = 0.05,
    engine: EngineChoice = "statsmodels",
    **aipw: Any,
) -> EffectFit:
    """Dispatch to :func:`fit_mixed`, :func:`fit_gee` or :func:`fit_aipw` by ``method``.

    Kept for existing callers; new code calls the three fitters, whose results have
    attributes of one meaning each. ``engine`` defaults to ``"statsmodels"`` here, so
    the numbers are those of earlier cxlab versions; :func:`fit_mixed` defaults to the
    fast engine.

    Parameters
    ----------
    method : {"mixed", "gee", "aipw"}
    aipw : keyword arguments
        ``baseline, followup, outcome_model, n_folds, seed, overlap_bounds, max_outside,
        min_ess`` for ``method="aipw"`` (see :func:`fit_aipw`); ignored otherwise except
        ``seed``, which only AIPW uses.
    others
        As the fitter ``method`` names.

    Returns
    -------
    EffectFit
        The fitter's table, formulas, results, methods text and warnings in one shape:
        ``results_`` holds AIPW's per-subject frames, ``diagnostics`` its overlap table
        (None otherwise), ``time_scale`` is 1 except for continuous-time mixed models.
    """
    check_option("method", method, METHODS)
    check_option("engine", engine, ENGINES)
    common = dict(
        outcome=outcome,
        time=time,
        arm=arm,
        subject=subject,
        control=control,
        covariates=covariates,
        correction=correction,
        alpha=alpha,
    )
    unknown = sorted(set(aipw) - set(_AIPW_OPTIONS))
    if unknown:
        raise ConfigError(
            message(
                "is not an option of fit_effects",
                field=unknown[0],
                fix=f"use one of {', '.join(_AIPW_OPTIONS)} (AIPW) or the documented options",
            )
        )
    if method == "aipw":
        if as_list(moderators):
            raise ConfigError(
                message(
                    "moderators need continuous time with method mixed or gee",
                    field="moderators",
                    value=as_list(moderators),
                    fix="use time_as='continuous' and method='mixed' or 'gee'",
                )
            )
        check_option("time_as", time_as, ("continuous", "categorical"))
        a = fit_aipw(data, **common, **aipw)
        return EffectFit(
            a.table, "aipw", a.formula, a.subjects, a.diagnostics, a.methods, {}, list(a.warnings)
        )
    if method == "gee":
        g = fit_gee(
            data,
            **common,
            time_as=time_as,
            moderators=moderators,
            cov_struct=cov_struct,
            cov_type=cov_type,
        )
        scales = dict.fromkeys(g.formula, 1.0)
        return EffectFit(
            g.table, "gee", g.formula, g.results_, None, g.methods, scales, list(g.warnings)
        )
    m = fit_mixed(data, **common, time_as=time_as, moderators=moderators, engine=engine)
    return EffectFit(
        m.table, "mixed", m.formula, m.results_, None, m.methods, m.time_scale, list(m.warnings)
    )


_AIPW_OPTIONS = (
    "baseline",
    "followup",
    "outcome_model",
    "n_folds",
    "seed",
    "overlap_bounds",
    "max_outside",
    "min_ess",
)


def _check_observed(d: pd.DataFrame, ds, y: str, *, time_as: str = "continuous") -> None:
    """Every arm needs :data:`MIN_SUBJECTS_PER_ARM` subjects with an observed value and 2
    distinct time points; with categorical time, an observed value at every visit.

    Raises :class:`OutcomeNotFitted` naming ``y``.
    """
    check_subjects_per_arm(
        d.groupby(ds.arm)[ds.subject].nunique(),
        arms=[ds.control, *ds.arms],
        outcome=y,
        what="subject(s) with observed values (and complete covariates)",
        fix="drop the arm or the outcome, or check for missing values",
    )
    if d[y].nunique() < 2:
        raise OutcomeNotFitted(
            outcome=y,
            reason="has the same value in every observed row; there is no change to model",
            value=d[y].tolist()[0] if len(d) else None,
            fix="check the outcome's source or drop it",
        )
    if d[ds.time].nunique() < 2:
        raise OutcomeNotFitted(
            outcome=y,
            reason="is observed at a single time point",
            value=d[ds.time].iloc[0] if len(d) else None,
            fix="effects need baseline and follow-up values",
        )
    if time_as == "categorical":
        seen = set(zip(d[ds.arm], d[ds.time], strict=True))
        for a in [ds.control, *ds.arms]:
            for v in ds.times:
                if (a, v) not in seen:
                    raise OutcomeNotFitted(
                        outcome=y,
                        reason=f"arm {a!r} has no observed value at {ds.time}={v}",
                        value=v,
                        fix=f"drop that {ds.time} for this outcome or use continuous time",
                    )


def _finish(table: pd.DataFrame, correction: str, ds, alpha: float) -> pd.DataFrame:
    """Adjust p-values per family, add interpretations, fix column order and dtypes."""
    table = table.copy()
    table["p_adj"] = np.nan
    primary = table["estimand"].isin(_PRIMARY).to_numpy()
    for mask in (primary, ~primary):
        if mask.any():
            table.loc[mask, "p_adj"] = p_adjust(
                table.loc[mask, "p_value"].to_numpy(), method=correction
            )
    table["interpretation"] = [_interpret(r, ds, alpha) for r in table.itertuples(index=False)]
    if ds.notes:  # rows left out before fitting concern every row of the fit
        table["warnings"] = [
            "; ".join([*ds.notes, *([w] if isinstance(w, str) and w else [])])
            for w in table["warnings"]
        ]
    for c in ("df", "var_intercept", "var_slope", "var_residual"):
        if c not in table:
            table[c] = np.nan
    if "engine" not in table:
        table["engine"] = None
    if "df_method" not in table:
        table["df_method"] = "wald_z"
    for c in (
        "estimate",
        "std_error",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adj",
        "df",
        "var_intercept",
        "var_slope",
        "var_residual",
    ):
        table[c] = table[c].astype(float)
    for c in ("n_subjects", "n_obs"):
        table[c] = table[c].astype("int64")
    table["converged"] = table["converged"].astype(bool)
    for c in (
        "outcome",
        "arm",
        "estimand",
        "visit",
        "moderator",
        "method",
        "warnings",
        "df_method",
        "engine",
    ):
        table[c] = table[c].astype(object).where(table[c].notna(), None)
    return table[COLUMNS].reset_index(drop=True)


def _ci(r, alpha: float) -> str:
    return f"{r.estimate:+.3g} ({100 * (1 - alpha):g}% CI {r.ci_low:.3g} to {r.ci_high:.3g})"


def _interpret(r, ds, alpha: float) -> str:
    excl = r.ci_low > 0 or r.ci_high < 0
    if r.estimand == "slope_diff":
        return (
            f"{r.outcome} changes by {_ci(r, alpha)} per unit of {ds.time} more in {r.arm} "
            f"than in {ds.control}" + ("" if excl else "; the CI includes no difference")
        )
    if r.estimand == "change_diff":
        return (
            f"at {ds.time}={r.visit}, change from baseline in {r.outcome} differs between "
            f"{r.arm} and {ds.control} by {_ci(r, alpha)}"
            + ("" if excl else "; the CI includes no difference")
        )
    if r.estimand == "ate_change":
        return (
            f"change in {r.outcome} from baseline to follow-up is {_ci(r, alpha)} in {r.arm} "
            f"vs {ds.control} after doubly robust adjustment"
            + ("" if excl else "; the CI includes no difference")
        )
    if not excl:
        return (
            f"no clear moderation: per unit of {r.moderator}, {r.arm}'s slope difference vs "
            f"{ds.control} changes by {_ci(r, alpha)}; the CI includes 0"
        )
    sign = "more negative" if r.estimate < 0 else "more positive"
    return (
        f"{r.arm}'s slope difference vs {ds.control} in {r.outcome} is {sign} in subjects "
        f"with higher {r.moderator}: {_ci(r, alpha)} per unit of {r.moderator}"
    )


def _methods_text(ds, method, time_as, cov_struct, cov_type, re_used, alpha, engines) -> str:
    level = f"{100 * (1 - alpha):g}%"
    if method == "mixed":
        re = (
            "a random intercept and a random slope of " + ds.time
            if "~1" not in re_used
            else "a random intercept (random slope fell back where singular)"
            if len(re_used) > 1
            else "a random intercept"
        )
        n = ds.data[ds.subject].nunique()
        ci = (
            f"t {level} intervals and p-values on Satterthwaite (1946) degrees of freedom, "
            f"as lmerTest computes them, because there are fewer than "
            f"{lg.SMALL_SAMPLE_SUBJECTS} subjects ({n})"
            if n < lg.SMALL_SAMPLE_SUBJECTS
            else f"Wald {level} intervals ({n} subjects)"
        )
        fitter = (
            "cxlab's profiled REML, the lme4 parameterisation of Bates et al. 2015"
            if engines == {"reml"}
            else "statsmodels MixedLM"
            if engines <= {"statsmodels"}
            else "cxlab's profiled REML (Bates et al. 2015) or statsmodels MixedLM where "
            "the design is outside that engine's shape"
        )
        text = (
            f"Linear mixed models ({fitter}, REML) with {re} per subject "
            f"({ds.subject}); model-based standard errors and {ci}. "
        )
    else:
        text = (
            f"Gaussian GEE (statsmodels) with {cov_struct} working correlation within "
            f"{ds.subject} and {cov_type.replace('_', '-')} sandwich standard errors "
            f"({'Mancl & DeRouen 2001' if cov_type == 'bias_reduced' else 'Liang & Zeger 1986'}"
            f"); Wald {level} intervals. "
        )
    what = (
        "the difference from control in rate of change per unit of " + ds.time
        if time_as == "continuous"
        else "the difference from control in change from "
        f"{ds.time}={ds.times[0]} at each later visit"
    )
    text += f"Arms ({', '.join(ds.arms)}) were compared with {ds.control}; the estimand is {what}."
    if ds.moderators:
        text += (
            f" Moderators ({', '.join(ds.moderators)}, mean-centred) entered as "
            f"{ds.time} × arm × moderator interactions."
        )
    return text


def _correction_text(correction: str) -> str:
    name = {
        "holm": "Holm's (1979) step-down procedure",
        "fdr_bh": "the Benjamini–Hochberg (1995) false-discovery-rate procedure",
        "none": "no multiplicity adjustment",
    }[correction]
    return f" P-values across outcomes and arms were adjusted with {name}."
