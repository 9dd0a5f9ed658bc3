"""Calibrate the effect models against simulated cohorts with known truth.

Two scenarios, each replicated ``--reps`` times with cohorts from
:func:`cxlab.synth.truth.simulate_truth` (4 arms, sessions every 4 weeks; outcome
``pain_nrs``; the thoracic-mobility arm's pain effect is set to 0 as the null arm):

``randomised_mar``
    Block-randomised arms, monotone dropout that depends on the previously *observed*
    pain (missing at random). Methods: ``mixed`` (the default model) and ``gee``
    (exchangeable, robust SEs; GEE needs MCAR, so some bias is expected). Estimand:
    difference in weekly slope vs control; truth = ``CohortTruth.effects``.
``confounded``
    Arms chosen from observed baseline covariates (pain, ODI, phenotypes), no dropout.
    Methods: ``aipw`` (baseline pain, ODI and phenotype flags as covariates) and
    ``naive`` (unadjusted difference in mean change). Estimand: difference in change from
    session 1 to the last session; truth = effect × 4 × (n_sessions − 1) weeks.

Reported per scenario × method × arm: mean estimate, bias, bias as % of the effect,
RMSE, 95 % CI coverage, rejection rate at α = 0.05 (type-I error for the null arm, power
otherwise) and Monte-Carlo SEs.

Usage::

    .venv/bin/python benchmarks/calibrate_effects.py --reps 500 --jobs 2
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from cxlab import CxlabError
from cxlab.models import fit_effects
from cxlab.synth.truth import simulate_truth

OUTCOME = "pain_nrs"
NULL_ARM = "thoracic_mobility"
COVARIATES = ["odi", "has_valgus", "has_asymmetry", "has_forward_head"]


def cohort(n_subjects: int, n_sessions: int, *, seed: int, confounded: bool):
    """A simulated cohort as a wide table plus its truth (pain effect of the null arm = 0)."""
    truth = simulate_truth(
        n_subjects,
        n_sessions,
        seed=seed,
        confounded=confounded,
        effects={OUTCOME: {NULL_ARM: 0.0}},
        dropout=not confounded,
    )
    wide = truth.wide()
    wide["session"] = wide["session"].astype(int)
    subjects = truth.subjects.set_index("label")
    for flag in ("has_valgus", "has_asymmetry", "has_forward_head"):
        wide[flag] = wide["label"].map(subjects[flag]).astype(float)
    wide = wide[wide["observed"]].reset_index(drop=True)
    return wide, truth


def one_rep(
    seed: int,
    *,
    n_subjects: int,
    n_sessions: int,
    n_confounded: int,
    methods=("mixed", "gee", "aipw", "naive"),
) -> list[dict]:
    """Fit every requested method on one randomised and one confounded cohort."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are recorded in the fit's table
        if {"mixed", "gee"} & set(methods):
            wide, truth = cohort(n_subjects, n_sessions, seed=seed, confounded=False)
            for method in ("mixed", "gee"):
                if method not in methods:
                    continue
                t = fit_effects(
                    wide,
                    outcome=OUTCOME,
                    time="week",
                    arm="arm",
                    subject="label",
                    control="control",
                    method=method,
                    cov_type="robust",
                ).table
                for r in t.itertuples(index=False):
                    out.append(
                        _row("randomised_mar", method, r, truth.effects[OUTCOME][r.arm], seed)
                    )
        if {"aipw", "naive"} & set(methods):
            wide, truth = cohort(n_confounded, n_sessions, seed=seed + 1, confounded=True)
            try:
                fit = fit_effects(
                    wide,
                    outcome=OUTCOME,
                    time="session",
                    arm="arm",
                    subject="label",
                    control="control",
                    method="aipw",
                    covariates=COVARIATES,
                    seed=seed,
                )
            except CxlabError:  # refused for poor overlap: counted, not hidden
                return [
                    *out,
                    {
                        "scenario": "confounded",
                        "method": "aipw",
                        "arm": "(refused)",
                        "seed": seed,
                        "truth": np.nan,
                        "estimate": np.nan,
                        "ci_low": np.nan,
                        "ci_high": np.nan,
                        "p_value": np.nan,
                        "converged": False,
                    },
                ]
            weeks = 4.0 * (n_sessions - 1)
            for r in fit.table.itertuples(index=False):
                out.append(
                    _row("confounded", "aipw", r, truth.effects[OUTCOME][r.arm] * weeks, seed)
                )
            if "naive" in methods:
                naive = _naive(fit)
                for r in naive.itertuples(index=False):
                    out.append(
                        _row("confounded", "naive", r, truth.effects[OUTCOME][r.arm] * weeks, seed)
                    )
    return out


def _naive(fit) -> pd.DataFrame:
    """Unadjusted difference in mean change with a Welch SE, from the AIPW per-subject frame."""
    rows = []
    per = fit.results_[OUTCOME]
    for arm, g in per.groupby("contrast", sort=True):
        t, c = g.loc[g["arm"] == arm, "change"], g.loc[g["arm"] != arm, "change"]
        est = t.mean() - c.mean()
        se = np.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))
        p = 2 * (1 - _ncdf(abs(est / se)))
        rows.append(
            {
                "arm": arm,
                "estimate": est,
                "ci_low": est - 1.96 * se,
                "ci_high": est + 1.96 * se,
                "p_value": p,
                "converged": True,
            }
        )
    return pd.DataFrame(rows)


def _ncdf(x):
    from scipy.stats import norm

    return norm.cdf(x)


def _row(scenario, method, r, truth, seed) -> dict:
    return {
        "scenario": scenario,
        "method": method,
        "arm": r.arm,
        "seed": seed,
        "truth": truth,
        "estimate": r.estimate,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "p_value": r.p_value,
        "converged": bool(r.converged),
    }


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE, coverage and rejection rate per scenario × method × arm."""

    def agg(g):
        truth = g["truth"].iloc[0]
        err = g["estimate"] - truth
        cover = ((g["ci_low"] <= truth) & (truth <= g["ci_high"])).mean()
        reject = (g["p_value"] < 0.05).mean()
        n = len(g)
        return pd.Series(
            {
                "truth": truth,
                "mean_estimate": g["estimate"].mean(),
                "bias": err.mean(),
                "bias_pct": 100 * err.mean() / truth if truth != 0 else np.nan,
                "bias_mcse": err.std(ddof=1) / np.sqrt(n),
                "rmse": np.sqrt(np.mean(err**2)),
                "coverage": cover,
                "coverage_mcse": np.sqrt(cover * (1 - cover) / n),
                "reject_rate": reject,
                "reps": n,
                "converged": g["converged"].mean(),
            }
        )

    keys = ["scenario", "method", "arm"]
    return (
        raw.groupby(keys, sort=True)[
            ["truth", "estimate", "ci_low", "ci_high", "p_value", "converged"]
        ]
        .apply(agg)
        .reset_index()
    )


def calibrate(
    reps: int,
    *,
    n_subjects: int = 200,
    n_sessions: int = 4,
    n_confounded: int = 400,
    seed: int = 2026,
    jobs: int = 1,
    methods=("mixed", "gee", "aipw", "naive"),
) -> pd.DataFrame:
    """Run ``reps`` seeded replications (in ``jobs`` processes) and summarise them."""
    seeds = [int(s.generate_state(1)[0] % 2**31) for s in np.random.SeedSequence(seed).spawn(reps)]
    kw = dict(
        n_subjects=n_subjects,
        n_sessions=n_sessions,
        n_confounded=n_confounded,
        methods=tuple(methods),
    )
    if jobs == 1:
        results = [one_rep(s, **kw) for s in seeds]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs)(delayed(one_rep)(s, **kw) for s in seeds)
    raw = pd.DataFrame([r for rep in results for r in rep])
    return summarise(raw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--n-subjects", type=int, default=200)
    ap.add_argument("--n-sessions", type=int, default=4)
    ap.add_argument(
        "--n-confounded",
        type=int,
        default=400,
        help="subjects in the confounded cohort (its control arm is small)",
    )
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", help="optional CSV of the summary")
    a = ap.parse_args()
    t0 = time.perf_counter()
    summary = calibrate(
        a.reps,
        n_subjects=a.n_subjects,
        n_sessions=a.n_sessions,
        n_confounded=a.n_confounded,
        seed=a.seed,
        jobs=a.jobs,
    )
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(summary.round(4).to_string(index=False))
    print(
        f"{a.reps} reps x {a.n_subjects} (confounded: {a.n_confounded}) subjects x "
        f"{a.n_sessions} sessions in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    if a.out:
        summary.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
