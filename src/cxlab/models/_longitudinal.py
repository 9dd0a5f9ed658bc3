"""Linear mixed models and GEE for one outcome: formulas, fitting, contrast rows.

Two engines fit the random intercept + slope model: cxlab's profiled REML
(:mod:`cxlab.models._reml`, vectorised over subjects) and statsmodels' ``MixedLM``. With
``engine="auto"`` the first is used whenever the design has its shape (one random intercept
and one random slope per subject, a full-rank fixed-effects design) and it converges to an
interior optimum; statsmodels fits everything else (random-intercept models, categorical
time, rank-deficient designs, an engine that does not converge).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.genmod import cov_struct as sm_cov

from cxlab.models._inputs import Design, OutcomeNotFitted, covariate_terms, quoted
from cxlab.models._reml import fit_random_slope

#: which code fitted a mixed model: cxlab's profiled REML or statsmodels' MixedLM
Engine = Literal["reml", "statsmodels"]
#: what a caller asks for: the fast engine where it applies, or statsmodels always
EngineChoice = Literal["auto", "statsmodels"]
ENGINES = ("auto", "statsmodels")

# Messages that mean the random-slope fit sits on the boundary of the parameter space.
_BOUNDARY = ("boundary", "singular", "hessian")
_OPTIMIZERS = ["lbfgs", "bfgs", "powell"]
#: below this many subjects, mixed-model intervals use t on Satterthwaite df (Wald z above)
SMALL_SAMPLE_SUBJECTS = 50


def arm_term(ds: Design) -> str:
    """Patsy term of the arm factor with the control arm as reference."""
    return f"C({quoted(ds.arm)}, Treatment({ds.control!r}))"


def visit_term(ds: Design) -> str:
    """Patsy term of the categorical time factor with the first visit as reference."""
    return f"C({quoted(ds.time)}, Treatment({ds.times[0]!r}))"


def formula(ds: Design, outcome: str, *, time_as: str) -> str:
    """The fixed-effects formula, e.g. ``pain ~ week * C(arm, Treatment('control'))``."""
    if time_as == "categorical":
        rhs = f"{arm_term(ds)} * {visit_term(ds)}"
    else:
        base = f"{quoted(ds.time)} * {arm_term(ds)}"
        rhs = "".join([base, *(f" + {base} * {quoted(m)}" for m in ds.moderators)])
    covs = covariate_terms(ds.data, ds.covariates)
    return " + ".join([f"{quoted(outcome)} ~ {rhs}", *covs])


def contrasts(ds: Design, *, time_as: str) -> list[dict]:
    """The coefficients reported: one dict per arm (× visit | × moderator)."""
    out = []
    t, a = quoted(ds.time), arm_term(ds)
    for arm in ds.arms:
        lvl = f"{a}[T.{arm}]"
        if time_as == "categorical":
            for v in ds.times[1:]:
                out.append(
                    {
                        "arm": arm,
                        "estimand": "change_diff",
                        "visit": str(v),
                        "moderator": None,
                        "term": f"{lvl}:{visit_term(ds)}[T.{v}]",
                    }
                )
        else:
            out.append(
                {
                    "arm": arm,
                    "estimand": "slope_diff",
                    "visit": None,
                    "moderator": None,
                    "term": f"{t}:{lvl}",
                }
            )
            for m in ds.moderators:
                out.append(
                    {
                        "arm": arm,
                        "estimand": "moderation",
                        "visit": None,
                        "moderator": m,
                        "term": f"{t}:{lvl}:{quoted(m)}",
                    }
                )
    return out


def _caught(record) -> list[str]:
    msgs = []
    for w in record:
        text = " ".join(str(w.message).split())
        if text not in msgs:
            msgs.append(text)
    return msgs


def time_scale(ds: Design, *, time_as: str) -> float:
    """Divisor applied to a continuous time before a mixed-model fit (its range, or 1).

    REML estimates are invariant to rescaling time, but the optimiser converges far more
    often when the random-slope variance is on the scale of the intercept variance.
    """
    if time_as != "continuous":
        return 1.0
    span = float(ds.times[-1]) - float(ds.times[0])
    return span if span > 0 else 1.0


@dataclass(frozen=True)
class RemlResults:
    """A fit of the fast REML engine, readable where a statsmodels ``MixedLMResults`` is.

    :func:`rows`, :mod:`cxlab.models.emmeans` and :mod:`cxlab.models._smallsample` read
    ``model`` (the unfitted statsmodels ``MixedLM``: per-subject designs and the patsy
    design info), ``fe_params``, ``params``, ``bse``, ``cov_re`` and ``scale``.

    Attributes
    ----------
    model : statsmodels MixedLM
        The model as built from the formula (not fitted by statsmodels).
    fe_params, params : pandas.Series
        Fixed effects, named as statsmodels names them (``params`` is the same series).
    bse : pandas.Series
        Model-based standard errors ``sqrt(diag(σ² (Xᵀ V⁻¹ X)⁻¹))`` — lme4's, which for
        50 or more subjects differ from statsmodels' joint-Hessian ones by well under 1 %.
    cov_re : pandas.DataFrame, shape (2, 2)
        Random intercept and slope covariance (outcome units², on the fitted time scale).
    scale : float
        Residual variance (outcome units²).
    converged : bool
    reml_loglik : float
        Restricted log-likelihood at the optimum.
    engine : {"reml"}
    """

    model: Any
    fe_params: pd.Series
    params: pd.Series
    bse: pd.Series
    cov_re: pd.DataFrame
    scale: float
    converged: bool
    reml_loglik: float
    engine: Engine = "reml"


class MixedOutcome(NamedTuple):
    """One outcome's mixed-model fit, as :func:`fit_mixed` returns it."""

    results: Any  # statsmodels MixedLMResults or RemlResults
    re_formula: str  # "~<time>" (random slope) or "~1"
    converged: bool
    notes: list[str]
    engine: Engine


def _engine_fit(model) -> tuple[RemlResults | None, str]:
    """The fast engine on a random-slope ``MixedLM``'s arrays, or None and why not."""
    X = np.asarray(model.exog, dtype=float)
    Z = np.asarray(model.exog_re, dtype=float)
    if Z.shape[1] != 2 or not np.allclose(Z[:, 0], 1.0):
        return None, "the random effects are not one intercept and one slope"
    if np.linalg.matrix_rank(X) < X.shape[1]:
        return None, "the fixed-effects design is rank deficient"
    fit = fit_random_slope(
        np.asarray(model.endog, float), X, Z[:, 1], np.asarray(model.groups), polish=True
    )
    if not fit.converged:
        return None, "the fast REML engine did not converge"
    if fit.boundary:
        return None, "boundary"
    names = list(model.exog_names)
    re_names = list(model.data.exog_re_names)
    beta = pd.Series(fit.beta, index=names)
    return (
        RemlResults(
            model=model,
            fe_params=beta,
            params=beta,
            bse=pd.Series(np.sqrt(np.diag(fit.cov_beta)), index=names),
            cov_re=pd.DataFrame(fit.cov_re, index=re_names, columns=re_names),
            scale=float(fit.sigma2),
            converged=True,
            reml_loglik=float(fit.reml_loglik),
        ),
        "",
    )


def _singular(g: np.ndarray) -> bool:
    """A random-effect covariance on the boundary: an eigenvalue ~0, or random effects
    perfectly correlated (|r| = 1, as lme4 reports a singular fit), whatever time's scale."""
    d = np.diag(g)
    if np.linalg.eigvalsh(g)[0] <= 1e-8 * max(1.0, float(d.max())):
        return True
    if (d <= 0).any():
        return True
    r = g / np.sqrt(np.outer(d, d))  # the correlation matrix is invariant to rescaling time
    return bool(np.linalg.eigvalsh(r)[0] <= 1e-6)


def fit_mixed(
    d: pd.DataFrame, ds: Design, fml: str, *, time_as: str, engine: EngineChoice = "statsmodels"
) -> MixedOutcome:
    """REML linear mixed model; random intercept + slope, else random intercept.

    ``d`` must already carry the rescaled time (see :func:`time_scale`). With
    ``engine="auto"`` the random-slope model is fitted by the fast REML engine when it
    applies (see the module docstring) and by statsmodels otherwise; a slope variance on
    the boundary falls back to a random intercept (statsmodels) in both cases.
    """
    notes: list[str] = []
    visits = d.groupby(ds.subject, sort=False)[ds.time].nunique()
    if time_as == "continuous" and (visits < 3).all():
        notes.append(
            "a random slope needs subjects with 3 or more visits (all have at most 2); "
            "fitted a random intercept"
        )
    elif time_as == "continuous":
        re = f"~{quoted(ds.time)}"
        fast_failed = ""
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                model = smf.mixedlm(fml, d, groups=d[ds.subject], re_formula=re)
                err = None
            except (np.linalg.LinAlgError, ValueError) as e:
                model, err = None, f"{type(e).__name__}: {e}"
            res = None
            if model is not None and engine == "auto":
                fast, fast_failed = _engine_fit(model)
                if fast is not None:
                    return MixedOutcome(fast, re, True, [], "reml")
            if model is not None and fast_failed != "boundary":
                try:
                    res = model.fit(reml=True, method=_OPTIMIZERS)
                except (np.linalg.LinAlgError, ValueError) as e:
                    res, err = None, f"{type(e).__name__}: {e}"
        msgs = _caught(rec) + ([err] if err else [])
        if fast_failed == "boundary":
            msgs = ["random-slope variance is on the boundary (fast REML engine)"]
        elif fast_failed:
            msgs.insert(0, f"{fast_failed}; statsmodels used")
        singular = res is not None and _singular(np.asarray(res.cov_re, dtype=float))
        bad = (
            res is None
            or not res.converged
            or singular
            or any(k.lower() in m.lower() for m in msgs for k in _BOUNDARY)
        )
        if not bad:
            return MixedOutcome(res, re, True, msgs, "statsmodels")
        why = "; ".join(msgs) if msgs else "random-slope variance is singular"
        notes.append(
            f"random intercept + slope model failed ({why}); fell back to a random intercept"
        )
    model = smf.mixedlm(fml, d, groups=d[ds.subject])
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for i, opt in enumerate(_OPTIMIZERS):  # an optimiser that raises: try the next ones
            try:
                res = model.fit(reml=True, method=_OPTIMIZERS[i:])
                break
            except (np.linalg.LinAlgError, ValueError) as e:
                notes.append(f"optimiser {opt} failed ({type(e).__name__}: {e})")
        else:
            raise OutcomeNotFitted(
                outcome=_outcome_of(fml),
                reason="the random-intercept mixed model could not be fitted by any optimiser ("
                + "; ".join(notes)
                + ")",
                fix="look for collinear covariates or extreme outcome values, or use method='gee'",
            )
    return MixedOutcome(res, "~1", bool(res.converged), notes + _caught(rec), "statsmodels")


def _outcome_of(fml: str) -> str:
    """The outcome column of a formula (``Q('a b') ~ ...`` -> ``a b``)."""
    lhs = fml.split("~", 1)[0].strip()
    if lhs.startswith("Q(") and lhs.endswith(")"):
        import ast

        return str(ast.literal_eval(lhs[2:-1]))
    return lhs


def fit_gee(d: pd.DataFrame, ds: Design, fml: str, *, cov_struct: str, cov_type: str):
    """GEE (Gaussian, identity link) with exchangeable or AR(1) working correlation.

    AR(1) distances are the ranks of the distinct time values, so a missed visit
    counts as two steps.
    """
    rank = {v: i for i, v in enumerate(ds.times)}
    tindex = d[ds.time].map(rank).to_numpy(dtype=float)[:, None]
    cs = sm_cov.Exchangeable() if cov_struct == "exchangeable" else sm_cov.Autoregressive(grid=True)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model = smf.gee(fml, groups=d[ds.subject], data=d, cov_struct=cs, time=tindex)
        try:
            res = model.fit(cov_type=cov_type)
        except (np.linalg.LinAlgError, ValueError) as e:
            res, err = None, f"{type(e).__name__}: {' '.join(str(e).split())}"
        else:
            err = None
    msgs = _caught(rec)
    if res is None:  # statsmodels warns and returns None when it cannot estimate
        raise OutcomeNotFitted(
            outcome=_outcome_of(fml),
            reason="GEE could not be fitted (" + "; ".join(msgs + ([err] if err else [])) + ")",
            fix="look for a constant outcome or collinear covariates, or use method='mixed'",
        )
    converged = not any("converge" in m.lower() or "iteration" in m.lower() for m in msgs)
    return res, converged, msgs


def rows(
    res,
    ds: Design,
    d: pd.DataFrame,
    outcome: str,
    *,
    time_as: str,
    method: str,
    converged: bool,
    notes: list[str],
    alpha: float,
    scale: float = 1.0,
) -> list[dict]:
    """One result row per contrast.

    Intervals and p-values are Wald z (as statsmodels reports them) for GEE and for mixed
    models with at least :data:`SMALL_SAMPLE_SUBJECTS` subjects; with fewer, a mixed model's
    are t on Satterthwaite (1946) df as lmerTest computes them (``df_method``). Slope terms of
    a fit on ``time / scale`` are divided by ``scale`` (per unit of time).
    """
    params, bse = res.params, res.bse
    cs = contrasts(ds, time_as=time_as)
    for c in cs:
        if c["term"] not in params.index:
            raise KeyError(f"term {c['term']!r} not in model ({list(params.index)})")
    small = method == "mixed" and d[ds.subject].nunique() < SMALL_SAMPLE_SUBJECTS
    # small samples: lme4's fixed-effect covariance (X'V^-1 X)^-1 with Satterthwaite df
    dfs = np.full(len(cs), np.inf)
    notes = list(notes)
    if small:
        from cxlab.models._smallsample import beta_cov, mixed_parts, satterthwaite_df

        names = list(res.fe_params.index)
        L = np.zeros((len(cs), len(names)))
        for i, c in enumerate(cs):
            L[i, names.index(c["term"])] = 1.0
        parts = mixed_parts(res)
        dfs = satterthwaite_df(parts, L)
        bse = pd.Series(np.sqrt(np.diag(beta_cov(parts))), index=names)
        if np.isnan(dfs).any():
            notes.append(
                "Satterthwaite df not available (variance estimate on the boundary); "
                "Wald z interval used"
            )
            dfs = np.where(np.isnan(dfs), np.inf, dfs)
    var = variance_terms(res, scale=scale) if method == "mixed" else {}
    out = []
    for c, df in zip(cs, dfs, strict=True):
        est, se = float(params[c["term"]]) / scale, float(bse[c["term"]]) / scale
        q = stats.t.ppf(1 - alpha / 2, df) if np.isfinite(df) else stats.norm.ppf(1 - alpha / 2)
        tail = (
            stats.t.sf(abs(est / se), df)
            if np.isfinite(df) and se > 0
            else (stats.norm.sf(abs(est / se)) if se > 0 else float("nan"))
        )
        keep = d[ds.arm].isin([c["arm"], ds.control])
        out.append(
            {
                "outcome": outcome,
                "arm": c["arm"],
                "estimand": c["estimand"],
                "visit": c["visit"],
                "moderator": c["moderator"],
                "estimate": est,
                "std_error": se,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "p_value": float(2 * tail),
                "n_subjects": int(d.loc[keep, ds.subject].nunique()),
                "n_obs": int(keep.sum()),
                "method": method,
                "converged": bool(converged),
                "warnings": "; ".join(notes),
                "df": float(df) if np.isfinite(df) else float("nan"),
                "df_method": "satterthwaite" if np.isfinite(df) else "wald_z",
                **var,
            }
        )
    return out


def variance_terms(res, *, scale: float = 1.0) -> dict[str, float]:
    """``var_intercept``, ``var_slope`` (per unit of time², NaN without a random slope) and
    ``var_residual`` of a MixedLM fit, in outcome units squared."""
    g = np.atleast_2d(np.asarray(res.cov_re, dtype=float))
    return {
        "var_intercept": float(g[0, 0]),
        "var_slope": float(g[1, 1]) / scale**2 if g.shape[0] > 1 else float("nan"),
        "var_residual": float(res.scale),
    }
