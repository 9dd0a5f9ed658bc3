"""Linear mixed models and GEE for one outcome: formulas, fitting, contrast rows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.genmod import cov_struct as sm_cov

from cxlab._check import ConfigError, message
from cxlab.models._inputs import Design, covariate_terms, quoted

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


def fit_mixed(d: pd.DataFrame, ds: Design, fml: str, *, time_as: str):
    """REML linear mixed model; random intercept + slope, else random intercept.

    ``d`` must already carry the rescaled time (see :func:`time_scale`).

    Returns
    -------
    (results, re_formula, converged, warning messages)
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
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                res = smf.mixedlm(fml, d, groups=d[ds.subject], re_formula=re).fit(
                    reml=True, method=_OPTIMIZERS
                )
                err = None
            except (np.linalg.LinAlgError, ValueError) as e:
                res, err = None, f"{type(e).__name__}: {e}"
        msgs = _caught(rec) + ([err] if err else [])
        singular = res is not None and _singular(np.asarray(res.cov_re, dtype=float))
        bad = (
            res is None
            or not res.converged
            or singular
            or any(k.lower() in m.lower() for m in msgs for k in _BOUNDARY)
        )
        if not bad:
            return res, re, True, msgs
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
            raise ConfigError(
                message(
                    "the random-intercept mixed model could not be fitted by any optimiser ("
                    + "; ".join(notes)
                    + ")",
                    field=fml.split("~", 1)[0].strip(),
                    fix="look for collinear covariates or extreme outcome values, "
                    "or use method='gee'",
                )
            )
    return res, "~1", bool(res.converged), notes + _caught(rec)


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
        raise ConfigError(
            message(
                "GEE could not be fitted (" + "; ".join(msgs + ([err] if err else [])) + ")",
                field=fml.split("~", 1)[0].strip(),
                fix="look for a constant outcome or collinear covariates, or use method='mixed'",
            )
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
