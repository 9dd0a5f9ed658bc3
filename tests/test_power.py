"""Simulated power against the closed-form power of a balanced random-slope trial."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cxlab._check import CxlabError
from cxlab.models.power import PowerPlan, simulate_power

TIMES = np.array([0.0, 4.0, 8.0, 12.0])
COV = np.array([[1.0, 0.01], [0.01, 0.01]])  # intercept SD 1; slope SD 0.1 per week
SIGMA2 = 0.64


def _analytic(delta, n):
    # balanced complete data: each subject's OLS slope has variance s_b^2 + sigma^2 / Stt,
    # and the GLS estimate of an arm's mean slope is their mean (Laird & Ware 1982)
    stt = float(((TIMES - TIMES.mean()) ** 2).sum())
    se = np.sqrt(2 * (COV[1, 1] + SIGMA2 / stt) / n)
    z = stats.norm.ppf(0.975)
    return stats.norm.cdf(delta / se - z) + stats.norm.cdf(-delta / se - z), se


def test_power_matches_the_closed_form_within_monte_carlo_error():
    plan = PowerPlan(
        slopes={"control": 0.0, "prog": -0.08, "null": 0.0},
        intercept=5.0,
        cov_re=COV,
        sigma2=SIGMA2,
        times=TIMES,
    )
    res = simulate_power(plan, n_per_arm=[20, 40], n_sims=200, seed=1)
    for n in (20, 40):
        r = res[(res["n_per_arm"] == n) & (res["arm"] == "prog")].iloc[0]
        want, se = _analytic(0.08, n)
        assert abs(r["power"] - want) <= 3 * r["mc_se"] + 0.02, (n, r["power"], want)
        assert r["mean_estimate"] == pytest.approx(-0.08, abs=3 * se / np.sqrt(200) + 1e-3)
        null = res[(res["n_per_arm"] == n) & (res["arm"] == "null")].iloc[0]
        assert null["power"] <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200) + 0.01  # type-I error
        assert 0.90 <= r["coverage"] <= 0.99
    assert (res["n_failed"] == 0).all()
    # more participants, more power
    p = res[res["arm"] == "prog"].set_index("n_per_arm")["power"]
    assert p[40] > p[20]


def test_same_seed_same_answer_and_dropout_costs_power():
    plan = PowerPlan(
        slopes={"control": 0.0, "prog": -0.08},
        intercept=5.0,
        cov_re=COV,
        sigma2=SIGMA2,
        times=TIMES,
    )
    a = simulate_power(plan, n_per_arm=20, n_sims=60, seed=4)
    b = simulate_power(plan, n_per_arm=20, n_sims=60, seed=4)
    assert a.equals(b)
    lossy = PowerPlan(**{**plan.__dict__, "dropout": 0.4})
    c = simulate_power(lossy, n_per_arm=20, n_sims=60, seed=4)
    assert c["power"].iloc[0] <= a["power"].iloc[0] + 0.05


def test_bad_plans_are_refused_naming_the_field():
    with pytest.raises(CxlabError, match="times"):
        PowerPlan(slopes={"control": 0, "a": 1}, intercept=0, cov_re=COV, sigma2=1, times=[0, 1])
    with pytest.raises(CxlabError, match="control"):
        PowerPlan(slopes={"a": 1}, intercept=0, cov_re=COV, sigma2=1, times=TIMES)
