"""Arm-vs-control intervention effects on longitudinal outcomes: mixed models, GEE, AIPW.

:func:`fit_effects` is the one entry point; it checks the table, fits one model per
outcome and returns an :class:`EffectFit` whose ``table`` has one row per
outcome × arm (× visit, × moderator), with Holm-adjusted p-values across the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, check_option, message
from cxlab.models import _longitudinal as lg
from cxlab.models._inputs import as_list, design
from cxlab.models._multiplicity import CORRECTIONS, p_adjust

__all__ = ["COLUMNS", "EffectFit", "fit_effects"]

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
]
METHODS = ("mixed", "gee", "aipw")
_PRIMARY = ("slope_diff", "change_diff", "ate_change")


@dataclass
class EffectFit:
    """The result of :func:`fit_effects`.

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
    baseline: Any = None,
    followup: Any = None,
    outcome_model: str = "linear",
    n_folds: int = 5,
    seed: int = 0,
    overlap_bounds: tuple[float, float] = (0.01, 0.99),
    max_outside: float = 0.10,
    min_ess: float = 10.0,
) -> EffectFit:
    """Estimate each arm's effect against a control arm on one or more outcomes.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per subject × time point (missing outcomes allowed).
    outcome : str or list of str
        Numeric outcome column(s), e.g. ``"pain_nrs"`` (points) or a feature value.
    time : str
        Time column: numeric (e.g. weeks since the programme started) for
        ``time_as="continuous"``; any visit label (e.g. session) for ``"categorical"``.
    arm, subject : str
        Columns with each subject's arm (constant within subject) and identifier.
    control : str
        The reference arm; every other arm is compared against it.
    covariates : list of str
        Adjustment terms (numeric as is, others as categorical), e.g. age, baseline score.
    method : {"mixed", "gee", "aipw"}
        ``"mixed"``: linear mixed model ``outcome ~ time * C(arm, Treatment(control)) +
        covariates`` (statsmodels MixedLM, REML) with a random intercept and slope of ``time``
        per subject; if the slope variance is singular or the fit does not converge it
        falls back to a random intercept and says so in ``warnings``. ``"gee"``: the
        population-average model with the same fixed effects (Gaussian GEE, sandwich SEs).
        ``"aipw"``: for non-randomised cohorts, the doubly robust effect on change from
        ``baseline`` to ``followup`` (:func:`cxlab.models.causal.aipw_effects`).
    time_as : {"continuous", "categorical"}
        ``"continuous"``: estimand ``slope_diff``, the arm's minus control's rate of change
        of the outcome per unit of ``time``. ``"categorical"``: estimand ``change_diff``,
        the arm's minus control's change from the first visit at each later visit (arm ×
        visit interaction; mixed model with random intercept, or GEE).
    moderators : list of str
        Numeric baseline subject characteristics (e.g. asymmetry); each adds ``time × arm ×
        moderator`` terms, mean-centred, so ``slope_diff`` is the effect at the average
        moderator and a ``moderation`` row gives the change in ``slope_diff`` per unit of the
        moderator (continuous time, mixed/GEE only).
    correction : {"holm", "fdr_bh", "none"}
        Multiplicity adjustment into ``p_adj``, across all primary rows of the fit
        (outcome × arm × visit); moderation rows form their own family.
    cov_struct : {"exchangeable", "ar1"}
        GEE working correlation (AR(1) over the ranks of the distinct time values).
    cov_type : {"auto", "robust", "bias_reduced"}
        GEE standard errors: robust sandwich, or Mancl & DeRouen (2001) bias-reduced for
        few subjects; ``"auto"`` picks ``bias_reduced`` below 50 subjects.
    alpha : float
        1 − confidence level (Wald z intervals as statsmodels reports them; t on
        Satterthwaite df for a mixed model with fewer than 50 subjects).
    baseline, followup, outcome_model, n_folds, seed, overlap_bounds, max_outside, min_ess
        AIPW options, see :func:`cxlab.models.causal.aipw_effects`.

    Returns
    -------
    EffectFit
        ``table`` columns: ``outcome, arm, estimand`` (``slope_diff`` per unit time,
        ``change_diff`` per visit, ``moderation``, ``ate_change``), ``visit`` (categorical
        time), ``moderator``, ``estimate, std_error, ci_low, ci_high`` (outcome units, per
        unit of time for slopes), ``p_value, p_adj``, ``n_subjects, n_obs`` (arm + control),
        ``method, converged, warnings`` (convergence/boundary messages, never
        swallowed, and rows left out for a missing time, arm or subject),
        ``interpretation`` (plain words), ``df`` and ``df_method`` (``satterthwaite`` for
        a mixed model with fewer than 50 subjects: t intervals and p on Satterthwaite df
        as lmerTest; ``wald_z`` otherwise, df NaN), ``var_intercept``, ``var_slope``,
        ``var_residual`` (mixed model: random-intercept, random-slope (per time unit²)
        and residual variances, outcome units²; NaN for GEE/AIPW).

    Raises
    ------
    ConfigError
        Missing columns, unknown control arm, single time point, an arm with fewer than 3
        subjects, non-numeric outcome, invalid options; for AIPW, poor overlap.

    Warnings
    --------
    The mixed model is unbiased when missingness depends only on observed data (MAR);
    GEE needs missingness unrelated to the outcome (MCAR). Effects in non-randomised
    cohorts are confounded unless ``method="aipw"`` with the right baseline covariates.
    """
    check_option("method", method, METHODS)
    check_option("time_as", time_as, ("continuous", "categorical"))
    check_option("correction", correction, CORRECTIONS)
    check_option("cov_struct", cov_struct, ("exchangeable", "ar1"))
    check_option("cov_type", cov_type, ("auto", "robust", "bias_reduced"))
    if not 0 < alpha < 1:
        raise ConfigError(message("must be between 0 and 1", field="alpha", value=alpha))
    mods = as_list(moderators)
    if mods and (time_as == "categorical" or method == "aipw"):
        raise ConfigError(
            message(
                "moderators need continuous time with method mixed or gee",
                field="moderators",
                value=mods,
                fix="use time_as='continuous' and method='mixed' or 'gee'",
            )
        )
    ds = design(
        data,
        outcomes=as_list(outcome),
        time=time,
        arm=arm,
        subject=subject,
        control=control,
        covariates=as_list(covariates),
        moderators=mods,
        numeric_time=time_as == "continuous" and method != "aipw",
    )
    if method == "aipw":
        from cxlab.models.causal import aipw_effects

        table, formulas, results, diag, methods = aipw_effects(
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
        return EffectFit(
            _finish(table, correction, ds, alpha),
            method,
            formulas,
            results,
            diag,
            methods + _correction_text(correction),
            warnings=list(ds.notes),
        )
    for m in mods:  # centre each moderator at the mean of the subjects' first values
        first = ds.data.groupby(ds.subject, sort=True)[m].first()
        ds.data[m] = ds.data[m] - float(first.mean())
    n_subjects = ds.data[ds.subject].nunique()
    if cov_type == "auto":
        cov_type = "bias_reduced" if n_subjects < 50 else "robust"
    rows, formulas, results, scales = [], {}, {}, {}
    re_used = set()
    for y in ds.outcomes:
        fml = lg.formula(ds, y, time_as=time_as)
        cols = [y, ds.time, *ds.covariates, *ds.moderators]
        d = ds.data.dropna(subset=cols).reset_index(drop=True)
        _check_observed(d, ds, y, time_as=time_as)
        scale = 1.0
        if method == "mixed":
            scale = lg.time_scale(ds, time_as=time_as)
            ds_fit = d.assign(**{ds.time: d[ds.time] / scale}) if scale != 1.0 else d
            res, re, ok, notes = lg.fit_mixed(ds_fit, ds, fml, time_as=time_as)
            re_used.add(re)
        else:
            res, ok, notes = lg.fit_gee(d, ds, fml, cov_struct=cov_struct, cov_type=cov_type)
        rows += lg.rows(
            res,
            ds,
            d,
            y,
            time_as=time_as,
            method=method,
            converged=ok,
            notes=notes,
            alpha=alpha,
            scale=scale,
        )
        scales[y] = scale
        formulas[y], results[y] = fml, res
    table = pd.DataFrame(rows)
    text = _methods_text(ds, method, time_as, cov_struct, cov_type, re_used, alpha)
    return EffectFit(
        _finish(table, correction, ds, alpha),
        method,
        formulas,
        results,
        None,
        text + _correction_text(correction),
        time_scale=scales,
        warnings=list(ds.notes),
    )


def _check_observed(d: pd.DataFrame, ds, y: str, *, time_as: str = "continuous") -> None:
    """Every arm needs 3 subjects with an observed value and 2 distinct time points;
    with categorical time, an observed value at every visit."""
    counts = d.groupby(ds.arm)[ds.subject].nunique().reindex([ds.control, *ds.arms], fill_value=0)
    small = counts[counts < 3]
    if len(small):
        raise ConfigError(
            message(
                f"arm {small.index[0]!r} has {int(small.iloc[0])} subject(s) with observed values "
                f"(and complete covariates), fewer than 3",
                field=y,
                value=small.index[0],
                fix="drop the arm or the outcome, or check for missing values",
            )
        )
    if d[y].nunique() < 2:
        raise ConfigError(
            message(
                "has the same value in every observed row; there is no change to model",
                field=y,
                value=d[y].tolist()[0] if len(d) else None,
                fix="check the outcome's source or drop it",
            )
        )
    if d[ds.time].nunique() < 2:
        raise ConfigError(
            message(
                "is observed at a single time point",
                field=y,
                value=d[ds.time].iloc[0] if len(d) else None,
                fix="effects need baseline and follow-up values",
            )
        )
    if time_as == "categorical":
        seen = set(zip(d[ds.arm], d[ds.time], strict=True))
        for a in [ds.control, *ds.arms]:
            for v in ds.times:
                if (a, v) not in seen:
                    raise ConfigError(
                        message(
                            f"arm {a!r} has no observed value at {ds.time}={v}",
                            field=y,
                            value=v,
                            fix=f"drop that {ds.time} for this outcome or use continuous time",
                        )
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


def _methods_text(ds, method, time_as, cov_struct, cov_type, re_used, alpha) -> str:
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
        text = (
            f"Linear mixed models (statsmodels MixedLM, REML) with {re} per subject "
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
