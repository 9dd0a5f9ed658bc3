"""Simulation-based power of a planned parallel-arm trial analysed with a random-slope model.

The planned trial is simulated from pilot estimates (intercept and slope per arm, the
random-effect covariance, the residual variance, the visit times, drop-out), each
simulated trial is fitted with the same random intercept + slope REML model the analysis
uses (:func:`cxlab.models._reml.fit_random_slope`, fast enough for thousands of fits), and
power is the share of trials whose Wald test of each arm's slope difference against
control rejects at ``alpha`` (two-sided, normal reference). Monte-Carlo error is reported
with every power: ``sqrt(p (1 − p) / n_sims)`` (Morris, White & Crowther 2019, *Stat Med*
38:2074).

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

__all__ = ["PowerPlan", "simulate_power"]


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


def simulate_power(
    plan: PowerPlan,
    /,
    *,
    n_per_arm,
    n_sims: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    progress=None,
) -> pd.DataFrame:
    """Power per arm and sample size, with Monte-Carlo error.

    Parameters
    ----------
    plan : PowerPlan
    n_per_arm : int or sequence of int
        Participants per arm to try.
    n_sims : int
        Simulated trials per sample size.
    alpha : float
        Two-sided significance level of each arm's test.
    seed : int
        Seed of the simulation (results are reproducible).
    progress : callable, optional
        Called with no arguments after each simulated trial (e.g. a progress bar's advance).

    Returns
    -------
    pandas.DataFrame
        ``n_per_arm, arm, true_slope_diff, power, mc_se, mean_estimate, coverage,
        n_sims, n_failed`` — ``power`` and ``coverage`` over the fits that converged
        (``n_failed`` counts the others), per unit time of ``plan.times``.
    """
    sizes = [int(n_per_arm)] if np.isscalar(n_per_arm) else [int(v) for v in n_per_arm]
    if min(sizes) < 3:
        raise CxlabError(
            message(
                "needs at least 3 participants per arm",
                field="n_per_arm",
                value=sizes,
                fix="try larger sample sizes",
            )
        )
    z = stats.norm.ppf(1 - alpha / 2)
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        est, se, failed = [], [], 0
        for _ in range(int(n_sims)):
            y, X, ts, g, arms, scale = _simulate(plan, n, rng)
            fit = fit_random_slope(y, X, ts, g)
            if progress is not None:
                progress()
            if not fit.converged:
                failed += 1
                continue
            k = len(arms) - 1
            idx = np.arange(2 + k, 2 + 2 * k)  # the time x arm terms
            est.append(fit.beta[idx] / scale)
            se.append(np.sqrt(np.diag(fit.cov_beta))[idx] / scale)
        est_a, se_a = np.array(est), np.array(se)
        for j, arm in enumerate(arms[1:]):
            truth = plan.slopes[arm] - plan.slopes[plan.control]
            reject = np.abs(est_a[:, j] / se_a[:, j]) > z
            cover = np.abs(est_a[:, j] - truth) <= z * se_a[:, j]
            p = float(reject.mean())
            rows.append(
                {
                    "n_per_arm": n,
                    "arm": arm,
                    "true_slope_diff": truth,
                    "power": p,
                    "mc_se": float(np.sqrt(p * (1 - p) / len(reject))),
                    "mean_estimate": float(est_a[:, j].mean()),
                    "coverage": float(cover.mean()),
                    "n_sims": int(n_sims),
                    "n_failed": failed,
                }
            )
    return pd.DataFrame(rows)
