"""Single-group pre/post designs: change over time with its CI, no control arm.

Two estimands per outcome:

- ``slope``: the change per unit of time from a REML linear mixed model
  ``outcome ~ time + covariates`` with a random intercept per subject (statsmodels MixedLM),
  with a t interval on Satterthwaite df (:mod:`cxlab.models._smallsample`, as lmerTest);
- ``mean_change``: the mean of each subject's last minus first value (subjects seen at both),
  with the paired t interval (Student 1908; ``scipy.stats.ttest_rel``).

Warnings
--------
Without a control arm a change is not an effect of the programme: regression to the mean,
natural history, learning the test and seasonal change all move the outcome too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cxlab._check import ConfigError, message
from cxlab.models._inputs import covariate_terms, quoted
from cxlab.models._smallsample import beta_cov, fit_reml_intercept, satterthwaite_df

__all__ = ["CHANGE_COLUMNS", "fit_change"]

CHANGE_COLUMNS = [
    "outcome",
    "arm",
    "estimand",
    "estimate",
    "std_error",
    "df",
    "ci_low",
    "ci_high",
    "p_value",
    "n_subjects",
    "n_obs",
    "method",
    "converged",
    "warnings",
    "var_intercept",
    "var_residual",
    "formula",
]


def fit_change(
    data: pd.DataFrame,
    /,
    *,
    outcome: str | Sequence[str],
    time: str,
    subject: str,
    covariates: Sequence[str] = (),
    arm_label: str = "all",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Change over time in one group.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per subject × time point.
    outcome : str or list of str
        Numeric outcome column(s).
    time : str
        Numeric time column (weeks since the start, or session index).
    subject : str
        Subject identifier column.
    covariates : list of str
        Numeric adjustment columns.
    arm_label : str
        Written in the ``arm`` column.
    alpha : float
        1 − confidence level.

    Returns
    -------
    pandas.DataFrame
        :data:`CHANGE_COLUMNS`; per outcome a ``slope`` row (outcome unit per time unit)
        and a ``mean_change`` row (outcome unit, first to last visit).

    Raises
    ------
    ConfigError
        Missing columns, or fewer than 3 subjects with two visits for an outcome.
    """
    outs = [outcome] if isinstance(outcome, str) else list(outcome)
    need = [*outs, time, subject, *covariates]
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise ConfigError(
            message(
                "column(s) not found in the table",
                field=", ".join(missing),
                fix=f"columns present: {', '.join(map(str, data.columns))}",
            )
        )
    rows = []
    for y in outs:
        d = (
            data.dropna(subset=[y, time, subject, *covariates])
            .sort_values([subject, time], kind="stable")
            .reset_index(drop=True)
        )
        d[subject] = d[subject].astype(str)
        n_visits = d.groupby(subject)[time].nunique()
        if (n_visits >= 2).sum() < 3:
            raise ConfigError(
                message(
                    "has fewer than 3 subjects with two visits",
                    field=y,
                    value=int((n_visits >= 2).sum()),
                    fix="a pre/post change needs baseline and follow-up "
                    "values for at least 3 subjects",
                )
            )
        fml = " + ".join([f"{quoted(y)} ~ {quoted(time)}", *covariate_terms(d, list(covariates))])
        res, notes, parts, names = fit_reml_intercept(fml, d, groups=d[subject])
        L = np.zeros((1, len(names)))
        L[0, names.index(quoted(time))] = 1.0
        df = float(satterthwaite_df(parts, L)[0])
        se = float(np.sqrt(beta_cov(parts)[names.index(quoted(time))] @ L[0]))
        est = float(res.fe_params[quoted(time)])
        dfq = df if np.isfinite(df) else np.inf
        q = stats.t.ppf(1 - alpha / 2, dfq)
        g = np.atleast_2d(np.asarray(res.cov_re, dtype=float))
        common = {
            "outcome": y,
            "arm": arm_label,
            "method": "mixed",
            "converged": bool(res.converged),
            "warnings": "; ".join(notes),
            "var_intercept": float(g[0, 0]),
            "var_residual": float(res.scale),
            "formula": fml,
        }
        rows.append(
            {
                **common,
                "estimand": "slope",
                "estimate": est,
                "std_error": se,
                "df": df,
                "ci_low": est - q * se,
                "ci_high": est + q * se,
                "p_value": float(2 * stats.t.sf(abs(est / se), dfq)),
                "n_subjects": int(d[subject].nunique()),
                "n_obs": len(d),
            }
        )
        g_ = d.groupby(subject, sort=True)
        first, last = g_[y].first(), g_[y].last()
        both = n_visits[n_visits >= 2].index
        t = stats.ttest_rel(last.loc[both], first.loc[both])
        ci = t.confidence_interval(1 - alpha)
        change = float((last.loc[both] - first.loc[both]).mean())
        rows.append(
            {
                **common,
                "estimand": "mean_change",
                "estimate": change,
                "std_error": float(change / t.statistic) if t.statistic else np.nan,
                "df": float(t.df),
                "ci_low": float(ci.low),
                "ci_high": float(ci.high),
                "p_value": float(t.pvalue),
                "n_subjects": len(both),
                "n_obs": 2 * len(both),
                "method": "paired_t",
                "warnings": "",
                "var_intercept": np.nan,
                "var_residual": np.nan,
            }
        )
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)
