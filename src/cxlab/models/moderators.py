"""Who benefits more: the arm-vs-control slope difference per level of a moderator.

A pre-declared moderator ``m`` (a subject characteristic fixed at baseline: sex, sport,
baseline severity) enters a linear mixed model as the three-way interaction

    y ~ time * arm * m + covariates,  random intercept (+ slope of time) per subject,

and :func:`fit_moderation` reports, for each non-control arm,

- ``slope_diff`` at each level of ``m`` (a categorical moderator's levels; a numeric
  moderator at its mean − 1 SD, mean and mean + 1 SD over subjects): the arm's minus
  control's rate of change per unit of time within that level, as R's
  ``emtrends(fit, ~ arm | m, var = "time")`` followed by ``trt.vs.ctrl`` contrasts gives;
- ``interaction``: how much that slope difference differs between a level and the
  reference level (categorical), or changes per unit of ``m`` (numeric), i.e. the
  ``time:arm:m`` coefficient with its CI. This is the test of moderation; a CI of the
  interaction that includes 0 means the data do not show the effect differs by ``m``,
  whatever the per-level intervals look like.

Intervals are t on Satterthwaite (1946) df (as lmerTest/emmeans) below 50 subjects, else
Wald z, with the fixed-effect covariance ``(X'V̂⁻¹X)⁻¹`` (:mod:`cxlab.models._smallsample`).

Whether individuals respond differently at all is a separate question: Hopkins' (2015) SD
of change in the arm against the control arm (:func:`cxlab.report.sections.individual_response`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from cxlab._check import ConfigError, check_option, message
from cxlab.models import _longitudinal as lg
from cxlab.models._inputs import as_list, covariate_terms, design, quoted

__all__ = [
    "MODERATION_COLUMNS",
    "Moderation",
    "ModerationRow",
    "fit_moderation",
]

Estimand = Literal["slope_diff", "interaction"]
#: small-sample df of the t intervals (below 50 subjects): Satterthwaite (1946) as lmerTest,
#: or Kenward & Roger (1997) as pbkrtest, which also inflates the covariance of β̂
DfMethod = Literal["satterthwaite", "kenward-roger"]

MODERATION_COLUMNS = [
    "outcome",
    "arm",
    "moderator",
    "kind",
    "level",
    "reference",
    "estimand",
    "estimate",
    "std_error",
    "df",
    "df_method",
    "ci_low",
    "ci_high",
    "p_value",
    "n_subjects",
    "converged",
    "warnings",
]


class ModerationRow(NamedTuple):
    """One row of :attr:`Moderation.table` (columns :data:`MODERATION_COLUMNS`).

    ``kind`` is ``"categorical"`` or ``"numeric"``; ``level`` the moderator level (a numeric
    moderator: ``"mean-1sd"``, ``"mean"``, ``"mean+1sd"`` for slope rows, ``"per unit"`` for
    the interaction); ``reference`` the level an interaction is against (categorical).
    ``estimate`` etc. in outcome units per unit of time (interaction of a numeric moderator:
    per unit of time per unit of the moderator).
    """

    outcome: str
    arm: str
    moderator: str
    kind: str
    level: str
    reference: str | None
    estimand: Estimand
    estimate: float
    std_error: float
    df: float
    df_method: str
    ci_low: float
    ci_high: float
    p_value: float
    n_subjects: int
    converged: bool
    warnings: str


@dataclass(frozen=True)
class Moderation:
    """The result of :func:`fit_moderation`.

    Attributes
    ----------
    table : pandas.DataFrame
        :class:`ModerationRow` rows, one per outcome × arm × moderator level and estimand.
    formula : dict of str to str
        Outcome → fitted formula (patsy).
    levels : dict of str to float
        A numeric moderator's values at ``mean-1sd``, ``mean``, ``mean+1sd`` (its unit);
        empty for a categorical moderator.
    methods : str
        A plain-words methods paragraph.
    """

    table: pd.DataFrame
    formula: dict[str, str]
    levels: dict[str, float] = field(default_factory=dict)
    methods: str = ""


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def fit_moderation(
    data: pd.DataFrame,
    /,
    *,
    outcome: str | Sequence[str],
    time: str,
    arm: str,
    subject: str,
    control: str,
    moderator: str,
    covariates: Sequence[str] = (),
    reference: str | None = None,
    alpha: float = 0.05,
    min_subjects: int = 2,
    df_method: DfMethod = "satterthwaite",
) -> Moderation:
    """Arm-vs-control slope differences per moderator level, and the interaction's CI.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per subject × time point.
    outcome : str or list of str
        Numeric outcome column(s).
    time : str
        Numeric time column (e.g. weeks since the programme started).
    arm, subject : str
        Arm (constant within subject) and subject identifier columns.
    control : str
        The reference arm.
    moderator : str
        A subject characteristic constant within subject. Numeric (e.g. baseline valgus,
        deg): entered mean-centred at the subjects' mean; text/categorical (e.g. sex,
        sport): treatment-coded against ``reference``.
    covariates : list of str
        Adjustment terms, as :func:`cxlab.models.fit_effects`.
    reference : str, optional
        The categorical moderator's reference level (default: the first in sorted order).
    alpha : float
        1 − confidence level.
    min_subjects : int
        Fewest subjects an arm may have at a categorical level (at least 2: a slope
        difference needs two subjects per cell to have an error term).
    df_method : {"satterthwaite", "kenward-roger"}
        Small-sample df below 50 subjects: Satterthwaite (lmerTest's default), or
        Kenward–Roger (``pbkrtest``; its adjusted covariance also widens the SE a little).

    Returns
    -------
    Moderation

    Raises
    ------
    ConfigError
        The moderator is missing, varies within a subject, has one level, or a level has
        fewer than ``min_subjects`` subjects in an arm (its slope difference is not
        estimable); and every check of :func:`cxlab.models.fit_effects`.

    Warnings
    --------
    Moderator analyses have far less power than the main effect (roughly a quarter of the
    precision for a two-level moderator split in half); declare them before looking at the
    data, and read per-level intervals only together with the interaction's interval.
    """
    if not 0 < alpha < 1:
        raise ConfigError(message("must be between 0 and 1", field="alpha", value=alpha))
    check_option("df_method", df_method, ["satterthwaite", "kenward-roger"])
    if not isinstance(data, pd.DataFrame) or moderator not in data.columns:
        present = ", ".join(map(str, getattr(data, "columns", [])))
        raise ConfigError(
            message(
                "column not found in the table",
                field="moderator",
                value=moderator,
                fix=f"columns present: {present}",
            )
        )
    numeric = _is_numeric(data[moderator])
    d0 = data.copy()
    if not numeric:
        d0[moderator] = d0[moderator].astype("string").astype(object)
        d0.loc[data[moderator].isna(), moderator] = None
    ds = design(
        d0,
        outcomes=as_list(outcome),
        time=time,
        arm=arm,
        subject=subject,
        control=control,
        covariates=[*as_list(covariates), moderator],
        moderators=[],
        numeric_time=True,
    )
    per_subject = ds.data.groupby(ds.subject)[moderator].nunique()
    if (per_subject > 1).any():
        bad = per_subject.index[per_subject > 1][0]
        raise ConfigError(
            message(
                "changes within a subject; a moderator is a baseline characteristic",
                field=moderator,
                value=bad,
                fix="use the subject's baseline value on every row",
            )
        )
    covs = [c for c in ds.covariates if c != moderator]
    first = ds.data.groupby(ds.subject, sort=True)[moderator].first()
    levels: dict[str, float] = {}
    if numeric:
        centre, sd = float(first.mean()), float(first.std(ddof=1))
        ds.data[moderator] = ds.data[moderator] - centre
        levels = {"mean-1sd": centre - sd, "mean": centre, "mean+1sd": centre + sd}
        ref = None
        mod_term = quoted(moderator)
    else:
        names = sorted(first.dropna().unique())
        ref = names[0] if reference is None else str(reference)
        if ref not in names:
            raise ConfigError(
                message(
                    "is not a level of the moderator",
                    field="reference",
                    value=ref,
                    fix=f"use one of {', '.join(names)}",
                )
            )
        mod_term = f"C({quoted(moderator)}, Treatment({ref!r}))"
    rows, formulas = [], {}
    for y in ds.outcomes:
        d = ds.data.dropna(subset=[y, ds.time, moderator, *covs]).reset_index(drop=True)
        if not numeric:
            _check_cells(d, ds, y, moderator, max(2, int(min_subjects)))
        rhs = f"{quoted(ds.time)} * {lg.arm_term(ds)} * {mod_term}"
        fml = " + ".join([f"{quoted(y)} ~ {rhs}", *covariate_terms(d, covs)])
        scale = lg.time_scale(ds, time_as="continuous")
        fit_d = d.assign(**{ds.time: d[ds.time] / scale})
        fit = lg.fit_mixed(fit_d, ds, fml, time_as="continuous")
        res, ok, notes = fit.results, fit.converged, fit.notes
        formulas[y] = fml
        rows += _rows(
            res, ds, d, y, moderator, mod_term, ref, levels, scale, ok, notes, alpha, df_method
        )
    table = pd.DataFrame([r._asdict() for r in rows], columns=MODERATION_COLUMNS)
    kind = "numeric (mean-centred)" if numeric else f"categorical (reference {ref})"
    text = (
        f"Moderation by {moderator} ({kind}): linear mixed models with {ds.time} × arm × "
        f"{moderator} interactions; arm-vs-{ds.control} slope differences per level of "
        f"{moderator} (as emmeans' emtrends) and the interaction with its "
        f"{100 * (1 - alpha):g}% CI, which is the test of moderation."
    )
    return Moderation(table, formulas, levels, text)


def _check_cells(d: pd.DataFrame, ds, y: str, moderator: str, least: int) -> None:
    """Every arm × level needs ``least`` subjects for a slope difference there."""
    n = d.groupby([ds.arm, moderator])[ds.subject].nunique()
    for a in [ds.control, *ds.arms]:
        for lv in sorted(d[moderator].unique()):
            k = int(n.get((a, lv), 0))
            if k < least:
                raise ConfigError(
                    message(
                        f"arm {a!r} has {k} subject(s) with {moderator}={lv!r}, fewer than "
                        f"{least}; the slope difference at that level is not estimated",
                        field=y,
                        value=lv,
                        fix=f"merge rare levels of {moderator} or drop it as a moderator",
                    )
                )


def _rows(res, ds, d, y, moderator, mod_term, ref, levels, scale, ok, notes, alpha, df_method):
    from cxlab.models._smallsample import (
        beta_cov,
        kenward_roger,
        mixed_parts,
        satterthwaite_df,
    )

    names = list(res.fe_params.index)
    t = quoted(ds.time)
    specs = []  # (arm, level, reference, estimand, {term: weight})
    numeric = ref is None
    lv_names = [] if numeric else sorted(d[moderator].unique())
    for arm in ds.arms:
        base = f"{t}:{lg.arm_term(ds)}[T.{arm}]"
        if numeric:
            inter = f"{base}:{mod_term}"
            for lv, value in levels.items():
                c = value - levels["mean"]
                specs.append((arm, lv, None, "slope_diff", {base: 1.0, inter: c}))
            specs.append((arm, "per unit", None, "interaction", {inter: 1.0}))
        else:
            for lv in lv_names:
                w = {base: 1.0}
                if lv != ref:
                    w[f"{base}:{mod_term}[T.{lv}]"] = 1.0
                specs.append((arm, lv, None, "slope_diff", w))
            for lv in lv_names:
                if lv != ref:
                    specs.append((arm, lv, ref, "interaction", {f"{base}:{mod_term}[T.{lv}]": 1.0}))
    L = np.zeros((len(specs), len(names)))
    for i, s in enumerate(specs):
        for term, w in s[4].items():
            if term not in names:
                raise KeyError(f"term {term!r} not in model ({names})")
            L[i, names.index(term)] = w
    beta = np.asarray(res.fe_params, dtype=float)
    n_subj = d[ds.subject].nunique()
    notes = list(notes)
    if n_subj < lg.SMALL_SAMPLE_SUBJECTS:
        parts = mixed_parts(res)
        if df_method == "kenward-roger":
            dfs, cov = kenward_roger(parts, L)
        else:
            cov = beta_cov(parts)
            dfs = satterthwaite_df(parts, L)
        if np.isnan(dfs).any():
            notes.append(f"{df_method} df not available; Wald z interval used")
            dfs = np.where(np.isnan(dfs), np.inf, dfs)
    else:
        cov = np.asarray(res.cov_params().loc[names, names], dtype=float)
        dfs = np.full(len(specs), np.inf)
    est = L @ beta / scale
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, cov, L)) / scale
    out = []
    for i, (arm, lv, refl, estimand, _w) in enumerate(specs):
        df = float(dfs[i])
        fin = np.isfinite(df)
        q = stats.t.ppf(1 - alpha / 2, df) if fin else stats.norm.ppf(1 - alpha / 2)
        z = abs(est[i] / se[i]) if se[i] > 0 else np.nan
        p = 2 * (stats.t.sf(z, df) if fin else stats.norm.sf(z))
        keep = d[ds.arm].isin([arm, ds.control])
        if not numeric and estimand == "slope_diff":
            keep &= d[moderator] == lv
        out.append(
            ModerationRow(
                y,
                arm,
                moderator,
                "numeric" if numeric else "categorical",
                lv,
                refl,
                estimand,
                float(est[i]),
                float(se[i]),
                df if fin else float("nan"),
                df_method if fin else "wald_z",
                float(est[i] - q * se[i]),
                float(est[i] + q * se[i]),
                float(p),
                int(d.loc[keep, ds.subject].nunique()),
                bool(ok),
                "; ".join(notes),
            )
        )
    return out
