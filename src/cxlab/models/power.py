"""Simulation-based power of a planned parallel-arm trial analysed with a random-slope model.

The planned trial is simulated from pilot estimates (intercept and slope per arm, the
random-effect covariance, the residual variance, the visit times, drop-out), each
simulated trial is fitted with the same random intercept + slope REML model the analysis
uses (:func:`cxlab.models._reml.fit_random_slope`, fast enough for thousands of fits), and
power is the share of trials whose test of each arm's slope difference against control
rejects at ``alpha`` (two-sided; t on ``N − k`` df below 50 subjects, as the analysis uses
small-sample t there, normal reference from 50). Monte-Carlo error is reported with every
power: ``sqrt(p (1 − p) / n_sims)`` (Morris, White & Crowther 2019, *Stat Med* 38:2074) and
a Wilson interval (statsmodels ``proportion_confint``).

.. warning::
   Power from pilot estimates inherits their uncertainty: a pilot slope difference is
   usually an over-estimate (winner's curse). Plan on the smallest effect worth detecting
   (the MCID per unit time), not on the pilot's estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cxlab._check import CxlabError, message
from cxlab.models._reml import fit_random_slope

__all__ = ["POWER_COLUMNS", "PowerPlan", "reference_df", "simulate_power"]


@dataclass(frozen=True)
class PowerPlan:
    """What to simulate.

    Attributes
    ----------
    slopes : dict of str to float
        Mean slope of the outcome per unit time in each arm (outcome unit / time unit),
        including ``control``.
    intercept : float
        Mean baseline value (the same in every arm: randomised).
    cov_re : array_like, shape (2, 2)
        Covariance of the subjects' random intercept and slope (outcome unit², …).
    sigma2 : float
        Residual variance (outcome unit²).
    times : array_like, shape (n_visits,)
        Planned visit times, in the time unit of ``slopes`` (e.g. weeks 0, 4, 8, 12).
    dropout : float
        Probability of missing each visit after the first, independently (MCAR), in [0, 1).
    control : str
        The reference arm.
    """

    slopes: dict[str, float]
    intercept: float
    cov_re: np.ndarray
    sigma2: float
    times: np.ndarray
    dropout: float = 0.0
    control: str = "control"

    def __post_init__(self):
        if self.control not in self.slopes or len(self.slopes) < 2:
            raise CxlabError(
                message(
                    "needs the control arm and at least one other arm",
                    field="slopes",
                    value=sorted(self.slopes),
                    fix=f"include {self.control!r} and the programmes",
                )
            )
        cov = np.asarray(self.cov_re, dtype=float)
        if cov.shape != (2, 2) or np.linalg.eigvalsh(cov)[0] < -1e-12:
            raise CxlabError(
                message(
                    "must be a 2 x 2 positive semi-definite matrix",
                    field="cov_re",
                    value=cov.tolist(),
                    fix="pass the pilot's random-effect covariance",
                )
            )
        t = np.asarray(self.times, dtype=float)
        if t.ndim != 1 or t.size < 3 or np.any(np.diff(t) <= 0):
            raise CxlabError(
                message(
                    "needs 3 or more increasing visit times (a random slope needs 3 visits)",
                    field="times",
                    value=t.tolist(),
                    fix="e.g. times=[0, 4, 8, 12]",
                )
            )
        if not self.sigma2 > 0 or not 0 <= self.dropout < 1:
            raise CxlabError(
                message(
                    "sigma2 must be > 0 and dropout in [0, 1)",
                    field="sigma2/dropout",
                    value=(self.sigma2, self.dropout),
                    fix="pass the pilot's residual variance",
                )
            )


def _simulate(plan: PowerPlan, n_per_arm: int, rng: np.random.Generator):
    arms = [plan.control, *sorted(a for a in plan.slopes if a != plan.control)]
    t = np.asarray(plan.times, dtype=float)
    n_sub = n_per_arm * len(arms)
    arm_of = np.repeat(np.arange(len(arms)), n_per_arm)
    b = rng.multivariate_normal(
        np.zeros(2),
        np.asarray(plan.cov_re, float),
        size=n_sub,
        method="cholesky" if np.linalg.eigvalsh(np.asarray(plan.cov_re, float))[0] > 0 else "eigh",
    )
    slope = np.array([plan.slopes[a] for a in arms])[arm_of]
    g = np.repeat(np.arange(n_sub), t.size)
    tt = np.tile(t, n_sub)
    y = (
        plan.intercept
        + b[g, 0]
        + (slope[g] + b[g, 1]) * tt
        + rng.normal(0.0, np.sqrt(plan.sigma2), g.size)
    )
    keep = np.ones(g.size, bool)
    if plan.dropout:
        keep = (tt == t[0]) | (rng.random(g.size) >= plan.dropout)
    g, tt, y = g[keep], tt[keep], y[keep]
    a = arm_of[g]
    scale = t[-1] - t[0]
    ts = tt / scale
    X = [np.ones(g.size), ts]
    X += [(a == k).astype(float) for k in range(1, len(arms))]
    X += [ts * (a == k) for k in range(1, len(arms))]
    return y, np.column_stack(X), ts, g, arms, scale


#: simulated trials per task; the seeds are per task, so results do not depend on the workers
CHUNK = 25

POWER_COLUMNS = [
    "n_per_arm",
    "arm",
    "true_slope_diff",
    "power",
    "mc_se",
    "power_ci_low",
    "power_ci_high",
    "mean_estimate",
    "coverage",
    "df",
    "n_sims",
    "n_failed",
]


def _chunk(plan: PowerPlan, n: int, n_sims: int, entropy: tuple[int, ...]):
    """Simulate and fit ``n_sims`` trials of ``n`` per arm: estimates, SEs, failures.

    BLAS is held to one thread: the engine's products are small, and threads spinning on
    busy cores made each fit 2-3 times slower (measured on a loaded 2-core machine).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _chunk_fits(plan, n, n_sims, entropy)


def _chunk_fits(plan: PowerPlan, n: int, n_sims: int, entropy: tuple[int, ...]):
    rng = np.random.default_rng(np.random.SeedSequence(list(entropy)))
    est, se, failed = [], [], 0
    for _ in range(n_sims):
        y, X, ts, g, arms, scale = _simulate(plan, n, rng)
        fit = fit_random_slope(y, X, ts, g)
        if not fit.converged:
            failed += 1
            continue
        k = len(arms) - 1
        idx = np.arange(2 + k, 2 + 2 * k)  # the time x arm terms
        est.append(fit.beta[idx] / scale)
        se.append(np.sqrt(np.diag(fit.cov_beta))[idx] / scale)
    width = len(plan.slopes) - 1
    return (
        np.asarray(est, float).reshape(-1, width),
        np.asarray(se, float).reshape(-1, width),
        failed,
        n_sims,
    )


def reference_df(n_subjects: int, n_arms: int, /) -> float:
    """Degrees of freedom of the simulated test: ``n_subjects − n_arms`` below
    :data:`~cxlab.models._longitudinal.SMALL_SAMPLE_SUBJECTS` subjects, else infinite (z).

    The analysis (:func:`cxlab.models.fit_mixed`) uses Satterthwaite t below 50 subjects and
    Wald z above; for a balanced trial with complete data the Satterthwaite df of a slope
    difference is exactly the between-subject ``N − k`` (each subject's least-squares slope is
    a sufficient summary: the test is a two-sample t test on them), so the simulation uses
    that instead of a finite-difference Hessian per simulated trial.
    """
    from cxlab.models._longitudinal import SMALL_SAMPLE_SUBJECTS

    return float(n_subjects - n_arms) if n_subjects < SMALL_SAMPLE_SUBJECTS else float("inf")


def simulate_power(
    plan: PowerPlan,
    /,
    *,
    n_per_arm,
    n_sims: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    progress=None,
    executor=None,
) -> pd.DataFrame:
    """Power per arm and sample size, with Monte-Carlo error.

    Parameters
    ----------
    plan : PowerPlan
    n_per_arm : int or sequence of int
        Participants per arm to try (at least
        :data:`cxlab.models.MIN_SUBJECTS_PER_ARM`).
    n_sims : int
        Simulated trials per sample size.
    alpha : float
        Two-sided significance level of each arm's test.
    seed : int
        Seed of the simulation. Trials are simulated in tasks of :data:`CHUNK`, each seeded
        from ``(seed, size index, task index)``, so the result is the same with any executor
        and any number of workers.
    progress : callable, optional
        Called with the number of trials just finished, after each task.
    executor : concurrent.futures.Executor, optional
        Runs the tasks (e.g. :func:`cxlab._executor.make_executor`); default in this process.

    Returns
    -------
    pandas.DataFrame
        :data:`POWER_COLUMNS`: ``n_per_arm, arm, true_slope_diff`` (per unit time of
        ``plan.times``), ``power`` (share of converged fits whose test of the arm's slope
        difference rejects at ``alpha``: t on :func:`reference_df` df, z from 50 subjects),
        ``mc_se`` = ``sqrt(p (1 − p) / n)`` (Morris et al. 2019), ``power_ci_low,
        power_ci_high`` (Wilson 95 % interval of the Monte-Carlo estimate), ``mean_estimate``,
        ``coverage`` (of the 1 − alpha interval), ``df``, ``n_sims``, ``n_failed`` (fits that
        did not converge, left out of power and coverage).
    """
    from statsmodels.stats.proportion import proportion_confint

    from cxlab.models._inputs import MIN_SUBJECTS_PER_ARM

    sizes = [int(n_per_arm)] if np.isscalar(n_per_arm) else [int(v) for v in n_per_arm]
    if not sizes or min(sizes) < MIN_SUBJECTS_PER_ARM:
        raise CxlabError(
            message(
                f"needs at least {MIN_SUBJECTS_PER_ARM} participants per arm",
                field="n_per_arm",
                value=sizes,
                fix="try larger sample sizes",
            )
        )
    if int(n_sims) < 1 or not 0 < alpha < 1:
        raise CxlabError(
            message(
                "n_sims must be >= 1 and alpha in (0, 1)",
                field="n_sims/alpha",
                value=(n_sims, alpha),
                fix="e.g. n_sims=500, alpha=0.05",
            )
        )
    n_sims = int(n_sims)
    tasks = [
        (plan, n, min(CHUNK, n_sims - start), (int(seed), i, start // CHUNK))
        for i, n in enumerate(sizes)
        for start in range(0, n_sims, CHUNK)
    ]
    if executor is None:
        done = map(lambda t: _chunk(*t), tasks)
    else:
        done = executor.map(_chunk, *zip(*tasks, strict=True))
    parts = []
    for part in done:
        parts.append(part)
        if progress is not None:
            progress(part[3])
    arms = [plan.control, *sorted(a for a in plan.slopes if a != plan.control)]
    rows = []
    for i, n in enumerate(sizes):
        mine = [p for (_, m, _, (_, j, _)), p in zip(tasks, parts, strict=True) if j == i]
        est_a = np.concatenate([p[0] for p in mine])
        se_a = np.concatenate([p[1] for p in mine])
        failed = sum(p[2] for p in mine)
        df = reference_df(n * len(arms), len(arms))
        q = stats.t.ppf(1 - alpha / 2, df) if np.isfinite(df) else stats.norm.ppf(1 - alpha / 2)
        for j, arm in enumerate(arms[1:]):
            truth = plan.slopes[arm] - plan.slopes[plan.control]
            ok = len(est_a)
            reject = np.abs(est_a[:, j] / se_a[:, j]) > q
            cover = np.abs(est_a[:, j] - truth) <= q * se_a[:, j]
            p = float(reject.mean()) if ok else float("nan")
            lo, hi = (
                proportion_confint(int(reject.sum()), ok, alpha=0.05, method="wilson")
                if ok
                else (float("nan"), float("nan"))
            )
            rows.append(
                {
                    "n_per_arm": n,
                    "arm": arm,
                    "true_slope_diff": truth,
                    "power": p,
                    "mc_se": float(np.sqrt(p * (1 - p) / ok)) if ok else float("nan"),
                    "power_ci_low": float(lo),
                    "power_ci_high": float(hi),
                    "mean_estimate": float(est_a[:, j].mean()) if ok else float("nan"),
                    "coverage": float(cover.mean()) if ok else float("nan"),
                    "df": df,
                    "n_sims": n_sims,
                    "n_failed": failed,
                }
            )
    return pd.DataFrame(rows, columns=POWER_COLUMNS)
