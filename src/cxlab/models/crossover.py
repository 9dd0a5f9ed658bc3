"""Crossover designs: every subject follows each programme in turn.

The model (Jones & Kenward 2014, ch. 2) is the REML linear mixed model
``outcome ~ C(arm, Treatment(control)) + C(period) + C(sequence) + covariates`` with a random
intercept per subject (statsmodels MixedLM): the programme effect is estimated within
subjects, adjusted for the period (learning, season) and the sequence. Intervals and
p-values are t on Satterthwaite df (:mod:`cxlab.models._smallsample`, as lmerTest).

Warnings
--------
The model assumes no carry-over: a programme's effect must have washed out before the next
period starts. The sequence term absorbs a carry-over that is the same for everyone in a
sequence, but in a two-period design it is confounded with the sequence-by-period
interaction and cannot be tested with useful power.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cxlab._check import ConfigError, message
from cxlab.models._inputs import covariate_terms, quoted
from cxlab.models._smallsample import beta_cov, fit_reml_intercept, satterthwaite_df
from cxlab.models.prepost import CHANGE_COLUMNS

__all__ = ["CROSSOVER_COLUMNS", "fit_crossover"]

#: the same columns as the pre/post change rows, so both designs stack in one effects table
CROSSOVER_COLUMNS = CHANGE_COLUMNS


def fit_crossover(
    data: pd.DataFrame,
    /,
    *,
    outcome: str | Sequence[str],
    arm: str,
    period: str,
    sequence: str,
    subject: str,
    control: str,
    covariates: Sequence[str] = (),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Programme effects in a crossover study.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject × period (measurement at the end of each period).
    outcome : str or list of str
        Numeric outcome column(s).
    arm, period, sequence, subject : str
        The programme followed in that period, the period number, the subject's order of
        programmes (e.g. ``"control-hip"``), the subject identifier.
    control : str
        The reference programme.
    covariates : list of str
        Adjustment columns.
    alpha : float
        1 − confidence level.

    Returns
    -------
    pandas.DataFrame
        :data:`CROSSOVER_COLUMNS`; one ``crossover_diff`` row per non-control programme and
        outcome: the programme's minus the control's mean outcome within subjects (outcome
        unit), Satterthwaite t interval.

    Raises
    ------
    ConfigError
        Missing columns, an unknown control, or fewer than 3 subjects who followed both a
        programme and the control.
    """
    outs = [outcome] if isinstance(outcome, str) else list(outcome)
    need = [*outs, arm, period, sequence, subject, *covariates]
    missing = [c for c in dict.fromkeys(need) if c not in data.columns]
    if missing:
        raise ConfigError(
            message(
                "column(s) not found in the table",
                field=", ".join(missing),
                fix=f"columns present: {', '.join(map(str, data.columns))}",
            )
        )
    arms = sorted(data[arm].dropna().astype(str).unique())
    if control not in arms:
        raise ConfigError(
            message(
                "is not a programme in the table",
                field="control",
                value=control,
                fix=f"use one of {', '.join(arms)}",
            )
        )
    term = f"C({quoted(arm)}, Treatment({control!r}))"
    rows = []
    for y in outs:
        d = data.dropna(subset=[y, arm, period, sequence, subject, *covariates]).copy()
        d[arm], d[subject] = d[arm].astype(str), d[subject].astype(str)
        d[period], d[sequence] = d[period].astype(str), d[sequence].astype(str)
        d = d.sort_values([subject, period], kind="stable").reset_index(drop=True)
        rhs = [
            term,
            f"C({quoted(period)})",
            f"C({quoted(sequence)})",
            *covariate_terms(d, list(covariates)),
        ]
        fml = f"{quoted(y)} ~ " + " + ".join(rhs)
        res, notes, parts, names = fit_reml_intercept(fml, d, groups=d[subject])
        cov = beta_cov(parts)
        g = np.atleast_2d(np.asarray(res.cov_re, dtype=float))
        for a in arms:
            if a == control:
                continue
            both = d.groupby(subject)[arm].agg(lambda s, a=a: {a, control} <= set(s))
            if both.sum() < 3:
                raise ConfigError(
                    message(
                        f"has {int(both.sum())} subject(s) who followed both {a!r} and "
                        f"{control!r}, fewer than 3",
                        field=y,
                        value=a,
                        fix="a crossover effect needs subjects measured under both programmes",
                    )
                )
            name = f"{term}[T.{a}]"
            L = np.zeros((1, len(names)))
            L[0, names.index(name)] = 1.0
            df = float(satterthwaite_df(parts, L)[0])
            dfq = df if np.isfinite(df) else np.inf
            est = float(res.fe_params[name])
            se = float(np.sqrt(cov[names.index(name), names.index(name)]))
            q = stats.t.ppf(1 - alpha / 2, dfq)
            rows.append(
                {
                    "outcome": y,
                    "arm": a,
                    "estimand": "crossover_diff",
                    "estimate": est,
                    "std_error": se,
                    "df": df,
                    "ci_low": est - q * se,
                    "ci_high": est + q * se,
                    "p_value": float(2 * stats.t.sf(abs(est / se), dfq)),
                    "n_subjects": int(both.sum()),
                    "n_obs": len(d),
                    "method": "mixed",
                    "converged": bool(res.converged),
                    "warnings": "; ".join(notes),
                    "var_intercept": float(g[0, 0]),
                    "var_residual": float(res.scale),
                    "formula": fml,
                }
            )
    return pd.DataFrame(rows, columns=CROSSOVER_COLUMNS)
