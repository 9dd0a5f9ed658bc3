"""Doubly robust (AIPW) arm-vs-control effects for non-randomised cohorts.

For each arm ``a`` against the control arm, among subjects observed at both the
baseline and the follow-up visit, with change ``Y = y(followup) - y(baseline)``,
treatment ``A = 1[arm = a]`` and baseline covariates ``X`` (the baseline outcome plus
the user's covariates), the augmented inverse-probability-weighted estimator
(Robins, Rotnitzky & Zhao 1994; cross-fitted as in Chernozhukov et al. 2018) is::

    psi_i = mu1(X_i) - mu0(X_i) + A_i (Y_i - mu1(X_i)) / e(X_i)
            - (1 - A_i) (Y_i - mu0(X_i)) / (1 - e(X_i))
    ATE   = mean(psi),    SE = sd(psi) / sqrt(n)     (influence-function variance)

with ``e`` a logistic-regression propensity and ``mu1``/``mu0`` outcome regressions fitted
on the other folds (K-fold cross-fitting, seeded). It is consistent if either the
propensity or the outcome model is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cxlab._check import ConfigError, CxlabError, check_option, message
from cxlab.models._inputs import MIN_SUBJECTS_PER_ARM, OutcomeNotFitted

__all__ = ["OUTCOME_MODELS", "AipwResult", "aipw_effects"]

OUTCOME_MODELS = ("linear", "ridge", "gbm")
DIAGNOSTIC_COLUMNS = [
    "outcome",
    "arm",
    "n_treated",
    "n_control",
    "ps_min_treated",
    "ps_max_treated",
    "ps_min_control",
    "ps_max_control",
    "share_outside",
    "share_trimmed",
    "ess_treated",
    "ess_control",
    "naive_estimate",
    "n_excluded",
]


@dataclass(frozen=True)
class AipwResult:
    """What :func:`aipw_effects` returns (before multiplicity adjustment).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per outcome × arm: ``outcome, arm, estimand`` (``ate_change``), ``visit``
        (the follow-up), ``moderator`` (None), ``estimate, std_error, ci_low, ci_high``
        (outcome units), ``p_value, n_subjects, n_obs, method, converged, warnings``.
    formula : dict of str to str
        Outcome → description of the change, propensity and outcome models.
    subjects : dict of str to pandas.DataFrame
        Outcome → per subject × contrast: ``subject, contrast, arm, change, propensity,
        mu1, mu0, psi``.
    diagnostics : pandas.DataFrame
        :data:`DIAGNOSTIC_COLUMNS`, one row per outcome × arm.
    methods : str
        The methods paragraph.
    """

    table: pd.DataFrame
    formula: dict[str, str]
    subjects: dict[str, pd.DataFrame]
    diagnostics: pd.DataFrame
    methods: str


def _outcome_regressor(kind: str, seed: int):
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, RidgeCV

    if kind == "linear":
        return LinearRegression()
    if kind == "ridge":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    return GradientBoostingRegressor(
        n_estimators=150, max_depth=2, learning_rate=0.05, subsample=0.8, random_state=seed
    )


def _propensity_model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=10.0, solver="newton-cholesky", max_iter=200)
    )


def _baseline_frame(ds, y, baseline, followup):
    """Per subject: arm, change in ``y`` and the baseline covariate matrix."""
    d = ds.data
    b = d[d[ds.time] == baseline].drop_duplicates(ds.subject).set_index(ds.subject)
    f = d[d[ds.time] == followup].drop_duplicates(ds.subject).set_index(ds.subject)
    both = b.index.intersection(f.index).sort_values()
    b, f = b.loc[both], f.loc[both]
    parts = [b[[y]].rename(columns={y: f"baseline_{y}"})]
    if ds.covariates:
        parts.append(pd.get_dummies(b[ds.covariates], drop_first=True, dtype=float))
    x = pd.concat(parts, axis=1).astype(float)
    frame = pd.DataFrame({"arm": b[ds.arm], "change": f[y] - b[y]}, index=both)
    ok = frame["change"].notna() & x.notna().all(axis=1)
    n_all = d[ds.subject].nunique()
    return frame[ok], x[ok], n_all - int(ok.sum())


def _cross_fit(x, a, yv, *, n_folds, seed, outcome_model):
    from sklearn.model_selection import StratifiedKFold

    n = len(a)
    e, mu1, mu0 = np.empty(n), np.empty(n), np.empty(n)
    k = int(min(n_folds, np.bincount(a).min()))
    if k < 2:
        raise CxlabError("AIPW needs at least 2 subjects per group for cross-fitting")
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, a)
    for train, test in folds:
        xt, at, yt = x[train], a[train], yv[train]
        e[test] = _propensity_model().fit(xt, at).predict_proba(x[test])[:, 1]
        mu1[test] = (
            _outcome_regressor(outcome_model, seed).fit(xt[at == 1], yt[at == 1]).predict(x[test])
        )
        mu0[test] = (
            _outcome_regressor(outcome_model, seed).fit(xt[at == 0], yt[at == 0]).predict(x[test])
        )
    return e, mu1, mu0


def _ess(w: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    return float(w.sum() ** 2 / np.sum(w**2)) if w.size else 0.0


def aipw_effects(
    ds,
    *,
    baseline=None,
    followup=None,
    outcome_model="linear",
    n_folds=5,
    seed=0,
    overlap_bounds=(0.01, 0.99),
    max_outside=0.10,
    min_ess=10.0,
    alpha=0.05,
):
    """Cross-fitted AIPW effects on change from ``baseline`` to ``followup``, per arm.

    Called by :func:`cxlab.models.fit_aipw`.

    Parameters
    ----------
    ds : cxlab.models._inputs.Design
        The validated table.
    baseline, followup : time values, optional
        Visits (values of the time column) between which change is measured; default the
        first and the last.
    outcome_model : {"linear", "ridge", "gbm"}
        Outcome regressions mu0, mu1 (separately per group): OLS, ridge with
        generalised-cross-validated penalty, or gradient boosting (150 depth-2 trees).
    n_folds : int
        Cross-fitting folds (stratified by arm, shuffled with ``seed``).
    seed : int
        Seed of the fold split and the boosting; same seed, same result.
    overlap_bounds : (float, float)
        Propensities outside these bounds count as poor overlap and are clipped to them
        (``share_trimmed``).
    max_outside : float
        Refuse (``CxlabError``) when a larger share of an arm-vs-control comparison has
        propensities outside ``overlap_bounds``.
    min_ess : float
        Refuse when Kish's effective sample size of the inverse-propensity weights,
        ``(Σw)² / Σw²``, falls below this in the arm or in control.
    alpha : float
        1 − confidence level.

    Returns
    -------
    AipwResult
        ``diagnostics`` has one row per outcome × arm with the propensity range per group,
        ``share_outside`` = ``share_trimmed`` (share clipped to ``overlap_bounds``), the
        weights' effective sample sizes, the unadjusted ``naive_estimate`` (difference in
        mean change) and ``n_excluded`` subjects (no baseline/follow-up value).

    Warnings
    --------
    Subjects without both visits are left out (complete cases): valid only if follow-up is
    missing at random *given the baseline covariates*. The estimate is causal only when
    every confounder of arm choice and change is among the covariates.
    """
    check_option("outcome_model", outcome_model, OUTCOME_MODELS)
    lo, hi = map(float, overlap_bounds)
    if not 0 < lo < hi < 1:
        raise ConfigError(
            message(
                "must be two numbers 0 < low < high < 1",
                field="overlap_bounds",
                value=overlap_bounds,
            )
        )
    if not isinstance(n_folds, int) or n_folds < 2:
        raise ConfigError(message("must be an integer >= 2", field="n_folds", value=n_folds))
    times = ds.times
    baseline = times[0] if baseline is None else baseline
    followup = times[-1] if followup is None else followup
    for name, v in (("baseline", baseline), ("followup", followup)):
        if v not in times:
            raise ConfigError(
                message(
                    f"is not a value of {ds.time}",
                    field=name,
                    value=v,
                    fix=f"use one of {', '.join(map(str, times))}",
                )
            )
    z = stats.norm.ppf(1 - alpha / 2)
    rows, diags, results, formulas = [], [], {}, {}
    for y in ds.outcomes:
        observed = ds.data[y].dropna()
        if observed.nunique() < 2:
            raise OutcomeNotFitted(
                outcome=y,
                reason="has the same value in every observed row; there is no change to model",
                value=observed.tolist()[0] if len(observed) else None,
                fix="check the outcome's source or drop it",
            )
        frame, xdf, n_excl = _baseline_frame(ds, y, baseline, followup)
        ch = frame["change"].to_numpy(dtype=float)
        if ch.size > 1 and np.ptp(ch) <= 1e-9 * (1.0 + np.abs(ch).max()):  # rounding only
            raise OutcomeNotFitted(
                outcome=y,
                reason=f"change from {ds.time}={baseline} to {ds.time}={followup} is the same "
                f"for every subject, so AIPW has no variance to estimate",
                value=float(ch[0]),
                fix="check the outcome's source or drop it",
            )
        per_subject = []
        for arm in ds.arms:
            keep = frame["arm"].isin([arm, ds.control]).to_numpy()
            a = (frame["arm"].to_numpy()[keep] == arm).astype(int)
            yv = frame["change"].to_numpy(dtype=float)[keep]
            x = xdf.to_numpy()[keep]
            counts = np.bincount(a, minlength=2)
            if counts.min() < MIN_SUBJECTS_PER_ARM:
                raise OutcomeNotFitted(
                    outcome=y,
                    reason=f"too few subjects with {ds.time}={baseline} and {ds.time}={followup} "
                    f"values for AIPW ({counts[1]} in {arm!r}, {counts[0]} in {ds.control!r}; "
                    f"at least {MIN_SUBJECTS_PER_ARM} each)",
                    value=arm,
                    fix="AIPW compares two visits that subjects share: use a visit column "
                    "(e.g. session) as time, or pass baseline= and followup=",
                )
            e, mu1, mu0 = _cross_fit(
                x, a, yv, n_folds=n_folds, seed=seed, outcome_model=outcome_model
            )
            outside = (e < lo) | (e > hi)
            ec = np.clip(e, lo, hi)
            ess_t, ess_c = _ess(1 / ec[a == 1]), _ess(1 / (1 - ec[a == 0]))
            d = {
                "outcome": y,
                "arm": arm,
                "n_treated": int(counts[1]),
                "n_control": int(counts[0]),
                "ps_min_treated": float(e[a == 1].min()),
                "ps_max_treated": float(e[a == 1].max()),
                "ps_min_control": float(e[a == 0].min()),
                "ps_max_control": float(e[a == 0].max()),
                "share_outside": float(outside.mean()),
                "share_trimmed": float(outside.mean()),
                "ess_treated": ess_t,
                "ess_control": ess_c,
                "naive_estimate": float(yv[a == 1].mean() - yv[a == 0].mean()),
                "n_excluded": int(n_excl),
            }
            if outside.mean() > max_outside or min(ess_t, ess_c) < min_ess:
                raise OutcomeNotFitted(
                    outcome=y,
                    reason=f"poor overlap between {arm!r} and {ds.control!r} for {y}: "
                    f"{100 * outside.mean():.1f}% of propensities outside [{lo:g}, {hi:g}] "
                    f"(limit {100 * max_outside:g}%), effective sample size "
                    f"{ess_t:.1f} in {arm!r} and {ess_c:.1f} in {ds.control!r} "
                    f"(floor {min_ess:g}); propensity range {arm!r} "
                    f"{d['ps_min_treated']:.3f}-{d['ps_max_treated']:.3f}, {ds.control!r} "
                    f"{d['ps_min_control']:.3f}-{d['ps_max_control']:.3f}",
                    value=arm,
                    fix="the arms are not comparable on these covariates; restrict "
                    "the cohort to a region of overlap or report descriptively",
                )
            psi = mu1 - mu0 + a * (yv - mu1) / ec - (1 - a) * (yv - mu0) / (1 - ec)
            est = float(psi.mean())
            se = float(psi.std(ddof=1) / np.sqrt(psi.size))
            notes = []
            if n_excl:
                notes.append(
                    f"{n_excl} subject(s) without {ds.time}={baseline} and "
                    f"{ds.time}={followup} values left out (complete cases)"
                )
            if outside.any():
                notes.append(f"{int(outside.sum())} propensities clipped to [{lo:g}, {hi:g}]")
            rows.append(
                {
                    "outcome": y,
                    "arm": arm,
                    "estimand": "ate_change",
                    "visit": str(followup),
                    "moderator": None,
                    "estimate": est,
                    "std_error": se,
                    "ci_low": est - z * se,
                    "ci_high": est + z * se,
                    "p_value": float(2 * stats.norm.sf(abs(est / se))),
                    "n_subjects": int(keep.sum()),
                    "n_obs": int(2 * keep.sum()),
                    "method": "aipw",
                    "converged": True,
                    "warnings": "; ".join(notes),
                }
            )
            diags.append(d)
            per_subject.append(
                pd.DataFrame(
                    {
                        "subject": frame.index[keep],
                        "contrast": arm,
                        "arm": frame["arm"][keep].values,
                        "change": yv,
                        "propensity": e,
                        "mu1": mu1,
                        "mu0": mu0,
                        "psi": psi,
                    }
                )
            )
        results[y] = pd.concat(per_subject, ignore_index=True)
        covs = " + ".join([f"baseline {y}", *ds.covariates])
        formulas[y] = (
            f"change in {y} from {ds.time}={baseline} to {followup} ~ arm | {covs}; "
            f"propensity: logistic regression; outcome: {outcome_model}; "
            f"{n_folds}-fold cross-fitting (seed {seed})"
        )
    methods = (
        f"Arm effects on change from {ds.time}={baseline} to {ds.time}={followup} were "
        f"estimated with cross-fitted augmented inverse probability weighting (AIPW; "
        f"Robins et al. 1994; {n_folds} folds, seed {seed}) with a logistic propensity "
        f"model and {outcome_model} outcome models on baseline {', '.join(ds.outcomes)}"
        f"{' and ' + ', '.join(ds.covariates) if ds.covariates else ''}; standard "
        f"errors from the influence function. Propensities were clipped to "
        f"[{lo:g}, {hi:g}]; fits were refused when more than {100 * max_outside:g}% fell "
        f"outside or the weights' effective sample size was below {min_ess:g}."
    )
    return AipwResult(
        pd.DataFrame(rows),
        formulas,
        results,
        pd.DataFrame(diags, columns=DIAGNOSTIC_COLUMNS),
        methods,
    )
