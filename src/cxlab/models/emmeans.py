"""Estimated marginal means per arm × visit, pairwise arm contrasts, variance components.

What R's ``emmeans`` (Lenth 2024) reports for a mixed model: the model's prediction for
each arm at each visit with numeric covariates at their mean (as emmeans does; a categorical
covariate is held at its first level, where emmeans would average over its levels), its
standard error ``sqrt(l' (X'V̂⁻¹X)⁻¹ l)`` (as lme4), and a t interval on
Satterthwaite degrees of freedom (:mod:`cxlab.models._smallsample`; emmeans'
``lmer.df = "satterthwaite"``). Contrasts are every pair of arms within a visit, not
adjusted for multiplicity (emmeans' ``adjust = "none"``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from patsy import build_design_matrices
from scipy import stats

from cxlab._check import ConfigError, message
from cxlab.models._smallsample import beta_cov, mixed_parts, satterthwaite_df

__all__ = [
    "EMM_COLUMNS",
    "PAIR_COLUMNS",
    "VARIANCE_COLUMNS",
    "MarginalMeans",
    "marginal_means",
    "variance_components",
]

EMM_COLUMNS = ["outcome", "arm", "visit", "emmean", "std_error", "df", "ci_low", "ci_high"]
PAIR_COLUMNS = [
    "outcome",
    "visit",
    "contrast",
    "estimate",
    "std_error",
    "df",
    "ci_low",
    "ci_high",
    "t_ratio",
    "p_value",
]
VARIANCE_COLUMNS = ["outcome", "component", "variance", "sd"]


class MarginalMeans(NamedTuple):
    """Marginal means and contrasts of one outcome.

    Attributes
    ----------
    means : pandas.DataFrame
        :data:`EMM_COLUMNS`: ``emmean`` (outcome unit) per ``arm`` × ``visit`` (the time
        value, in the time variable's unit), ``std_error``, ``df`` (Satterthwaite), ``ci_low``,
        ``ci_high`` (t interval).
    pairs : pandas.DataFrame
        :data:`PAIR_COLUMNS`: ``contrast`` ``"<arm a> - <arm b>"`` (arms in sorted order, as
        emmeans' ``pairs``) within each visit, with t test and interval, unadjusted.
    """

    means: pd.DataFrame
    pairs: pd.DataFrame


def _grid(res, *, arm: str, time: str, arms: list[str], visits: list, scale: float):
    """Reference grid arm × visit; every other column at its mean (numeric) or first level."""
    data = res.model.data.frame
    cells = pd.DataFrame([(a, v) for a in arms for v in visits], columns=[arm, time])
    for c in data.columns:
        if c in (arm, time):
            continue
        s = data[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            cells[c] = float(s.mean())
        else:
            cells[c] = sorted(s.dropna().astype(str).unique())[0]
    fit_cells = cells.assign(**{time: cells[time] / scale}) if scale != 1.0 else cells
    info = res.model.data.orig_exog.design_info
    (X,) = build_design_matrices([info], fit_cells, return_type="matrix")
    return cells, np.asarray(X, dtype=float)


def marginal_means(
    res, /, *, outcome: str, arm: str, time: str, visits, scale: float = 1.0, alpha: float = 0.05
) -> MarginalMeans:
    """Estimated marginal means per arm × visit of a fitted mixed model, and arm contrasts.

    Parameters
    ----------
    res : statsmodels MixedLMResults
        A fit from :func:`cxlab.models.fit_effects` (``EffectFit.results_[outcome]``).
    outcome : str
        Name written in the ``outcome`` column.
    arm, time : str
        The arm and time columns of the model.
    visits : sequence
        Time values at which to evaluate (the visit labels for categorical time; time
        values, e.g. weeks, for continuous time).
    scale : float
        The fit's time divisor (``EffectFit.time_scale[outcome]``); ``visits`` are in the
        original unit.
    alpha : float
        1 − confidence level.

    Returns
    -------
    MarginalMeans

    Raises
    ------
    ConfigError
        ``res`` is not a mixed-model fit (GEE and AIPW have no Satterthwaite df here).
    """
    if not hasattr(res, "cov_re"):
        raise ConfigError(
            message(
                "marginal means need a mixed-model fit",
                field="method",
                value=type(res).__name__,
                fix="fit with method='mixed'",
            )
        )
    data = res.model.data.frame
    arms = sorted(data[arm].astype(str).unique())
    cells, X = _grid(res, arm=arm, time=time, arms=arms, visits=list(visits), scale=scale)
    beta = np.asarray(res.fe_params, dtype=float)
    parts = mixed_parts(res)
    cov = beta_cov(parts)
    z = stats.t
    est = X @ beta
    se = np.sqrt(np.einsum("kp,pr,kr->k", X, cov, X))
    df = satterthwaite_df(parts, X)
    q = z.ppf(1 - alpha / 2, df)
    means = pd.DataFrame(
        {
            "outcome": outcome,
            "arm": cells[arm].astype(str),
            "visit": cells[time].astype(str),
            "emmean": est,
            "std_error": se,
            "df": df,
            "ci_low": est - q * se,
            "ci_high": est + q * se,
        }
    )
    rows, L, keys = [], [], []
    for v in visits:
        idx = {
            a: i for i, (a, vv) in enumerate(zip(cells[arm], cells[time], strict=True)) if vv == v
        }
        for i, a in enumerate(arms):
            for b in arms[i + 1 :]:
                L.append(X[idx[a]] - X[idx[b]])
                keys.append((str(v), f"{a} - {b}"))
    L = np.asarray(L)
    if len(L):
        c_est, c_se = L @ beta, np.sqrt(np.einsum("kp,pr,kr->k", L, cov, L))
        c_df = satterthwaite_df(parts, L)
        qc = z.ppf(1 - alpha / 2, c_df)
        tr = c_est / c_se
        for (v, lab), e, s, d, qq, t in zip(keys, c_est, c_se, c_df, qc, tr, strict=True):
            rows.append(
                {
                    "outcome": outcome,
                    "visit": v,
                    "contrast": lab,
                    "estimate": e,
                    "std_error": s,
                    "df": d,
                    "ci_low": e - qq * s,
                    "ci_high": e + qq * s,
                    "t_ratio": t,
                    "p_value": float(2 * z.sf(abs(t), d)),
                }
            )
    return MarginalMeans(means[EMM_COLUMNS], pd.DataFrame(rows, columns=PAIR_COLUMNS))


def variance_components(
    res, /, *, outcome: str, time: str | None = None, scale: float = 1.0
) -> pd.DataFrame:
    """Random-effect and residual variances of a mixed-model fit (as lme4's ``VarCorr``).

    Parameters
    ----------
    time : str, optional
        The random-slope variable (for the component names).
    scale : float
        The fit's time divisor: slope variance is returned per unit of original time²,
        the intercept-slope covariance per unit of original time.

    Returns
    -------
    pandas.DataFrame
        :data:`VARIANCE_COLUMNS`; ``component`` is ``subject: intercept``, ``subject:
        <time>`` (slope), ``subject: intercept × <time>`` (covariance, ``sd`` = correlation)
        and ``residual``; variances in outcome units squared (per time unit² for a slope).
    """
    g = np.atleast_2d(np.asarray(res.cov_re, dtype=float)).copy()
    if g.shape[0] == 2:
        g[1, 1] /= scale**2
        g[0, 1] = g[1, 0] = g[0, 1] / scale
    names = ["intercept", time or "slope"][: g.shape[0]]
    rows = [
        {
            "outcome": outcome,
            "component": f"subject: {n}",
            "variance": g[i, i],
            "sd": float(np.sqrt(max(g[i, i], 0.0))),
        }
        for i, n in enumerate(names)
    ]
    if g.shape[0] == 2:
        den = np.sqrt(g[0, 0] * g[1, 1])
        rows.append(
            {
                "outcome": outcome,
                "component": f"subject: intercept × {names[1]}",
                "variance": g[0, 1],
                "sd": float(g[0, 1] / den) if den > 0 else np.nan,
            }
        )
    rows.append(
        {
            "outcome": outcome,
            "component": "residual",
            "variance": float(res.scale),
            "sd": float(np.sqrt(res.scale)),
        }
    )
    return pd.DataFrame(rows, columns=VARIANCE_COLUMNS)
