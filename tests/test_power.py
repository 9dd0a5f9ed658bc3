"""Simulated power against the closed-form power of a balanced random-slope trial."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


# -- the planned two-arm trial reduces to a two-sample t test -------------------------------
# Balanced, complete data with a random intercept and slope: the REML estimate of the slope
# difference is the difference of the arms' mean least-squares slopes and its model-based
# variance is their pooled variance x 2/n (Laird & Ware 1982), so the mixed-model test on
# N - 2 df *is* the two-sample t test on the subjects' slopes, and its power is
# statsmodels' TTestIndPower with d = delta / sqrt(var_slope + sigma2 / Stt).
T4 = np.array([0.0, 1.0, 2.0, 3.0])
G4 = np.array([[1.0, 0.0], [0.0, 0.2]])
S4 = 0.25


def _plan(delta):
    return PowerPlan(
        slopes={"control": 0.0, "prog": delta}, intercept=2.0, cov_re=G4, sigma2=S4, times=T4
    )


def test_one_simulated_trial_is_the_two_sample_t_test_on_subject_slopes():
    from cxlab.models._reml import fit_random_slope
    from cxlab.models.power import _simulate

    y, X, ts, g, _arms, scale = _simulate(_plan(0.4), 8, np.random.default_rng(3))
    fit = fit_random_slope(y, X, ts, g, polish=True)
    assert fit.converged and not fit.boundary
    t_mixed = fit.beta[3] / np.sqrt(fit.cov_beta[3, 3])
    tt = ts * scale
    slopes = np.array([np.polyfit(tt[g == s], y[g == s], 1)[0] for s in range(16)])
    ref = stats.ttest_ind(slopes[8:], slopes[:8], equal_var=True)
    assert t_mixed == pytest.approx(ref.statistic, rel=1e-5)
    assert fit.beta[3] / scale == pytest.approx(slopes[8:].mean() - slopes[:8].mean(), rel=1e-9)


def test_power_matches_statsmodels_two_sample_t_power_within_monte_carlo_error():
    from statsmodels.stats.power import TTestIndPower

    delta, n_sims = 0.5, 120
    res = simulate_power(_plan(delta), n_per_arm=[6, 12], n_sims=n_sims, seed=11)
    sd = np.sqrt(G4[1, 1] + S4 / float(((T4 - T4.mean()) ** 2).sum()))
    for r in res.itertuples():
        want = TTestIndPower().power(effect_size=delta / sd, nobs1=r.n_per_arm, alpha=0.05)
        n_ok = r.n_sims - r.n_failed
        tol = 3.5 * np.sqrt(want * (1 - want) / n_ok)  # binomial Monte-Carlo error
        assert abs(r.power - want) <= tol, (r.n_per_arm, r.power, want, tol)
        assert r.df == 2 * r.n_per_arm - 2
        assert r.power_ci_low <= r.power <= r.power_ci_high  # Wilson, statsmodels
        assert r.n_failed <= 0.05 * n_sims


def test_workers_do_not_change_the_answer():
    from concurrent.futures import ThreadPoolExecutor

    plan = _plan(0.5)
    seen = []
    serial = simulate_power(plan, n_per_arm=[5, 7], n_sims=30, seed=2, progress=seen.append)
    with ThreadPoolExecutor(2) as ex:
        pooled = simulate_power(plan, n_per_arm=[5, 7], n_sims=30, seed=2, executor=ex)
    pd.testing.assert_frame_equal(serial, pooled)
    assert sum(seen) == 60 and max(seen) <= 25  # tasks of 25 trials, all counted


SPEC = """
name = "plan"
store = "no-store-needed"
seed = 3

[model]
time = "week"
control = "control"

[outcomes.pain_nrs]
mcid = 2.0

[power]
n_per_arm = [6]
n_sims = 30
times = [0, 1, 2, 3]

[power.outcomes.pain_nrs]
effects = { prog = 0.5 }
intercept = 2.0
control_slope = 0.0
cov_re = [[1.0, 0.0], [0.0, 0.2]]
sigma2 = 0.25
"""


def test_power_command_prints_and_writes_the_same_table_with_any_jobs(tmp_path):
    from typer.testing import CliRunner

    from cxlab.cli import app

    spec = tmp_path / "plan.toml"
    spec.write_text(SPEC, encoding="utf-8")
    runner = CliRunner()
    outs = []
    for jobs, name in ((1, "a.csv"), (2, "b.csv")):
        r = runner.invoke(app, ["power", str(spec), "--out", str(tmp_path / name), "-j", str(jobs)])
        assert r.exit_code == 0, r.output
        assert "simulated power" in r.output and "prog" in r.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    t = pd.read_csv(tmp_path / "a.csv")
    assert list(t["outcome"]) == ["pain_nrs"] and t["source"].iloc[0] == "spec"
    assert t["n_sims"].iloc[0] == 30 and 0 <= t["power"].iloc[0] <= 1
    r = runner.invoke(app, ["power", str(spec), "--out", str(tmp_path / "p.json"), "-j", "1"])
    doc = __import__("json").loads((tmp_path / "p.json").read_text())
    assert doc["plans"]["pain_nrs"]["slopes"] == {"control": 0.0, "prog": 0.5}
    assert doc["power"][0]["power"] == pytest.approx(t["power"].iloc[0])


def test_power_section_errors_name_the_key_and_the_fix(tmp_path):
    from cxlab.experiments.power import power_analysis

    spec = tmp_path / "plan.toml"
    spec.write_text(SPEC.replace("n_sims = 30", "n_sim = 30"), encoding="utf-8")
    want = r"plan.toml: has unknown key\(s\) 'power.n_sim' \(did you mean 'power.n_sims'\?\)"
    with pytest.raises(CxlabError, match=want):
        power_analysis(spec)
    spec.write_text(SPEC.replace("sigma2 = 0.25\n", ""), encoding="utf-8")
    with pytest.raises(CxlabError, match=r"store: does not exist.*give intercept"):
        power_analysis(spec)
    spec.write_text(SPEC.split("[power]")[0], encoding="utf-8")
    with pytest.raises(CxlabError, match=r"power: has no \[power\] section"):
        power_analysis(spec)


def test_pilot_numbers_left_out_of_the_spec_come_from_a_mixed_fit_of_the_store(tmp_path):
    import warnings

    import statsmodels.formula.api as smf

    from cxlab.experiments import analysis_table, read_spec
    from cxlab.experiments.power import power_analysis
    from cxlab.store import Store
    from truth_store import truth_store

    truth_store(tmp_path / "store", 24, 4, seed=5)
    spec = tmp_path / "plan.toml"
    spec.write_text(
        SPEC.replace('store = "no-store-needed"', 'store = "store"')
        .replace("times = [0, 1, 2, 3]\n", "")
        .split("[power.outcomes.pain_nrs]")[0]
        + "[power.outcomes.pain_nrs]\neffects = { hip_strengthening = -0.1 }\n",
        encoding="utf-8",
    )
    res = power_analysis(spec, jobs=1)
    plan = res.plans["pain_nrs"]
    assert set(res.table["source"]) == {"store"} and list(res.table["arm"]) == ["hip_strengthening"]
    # statsmodels on the same pilot rows: the control slope, variances; time in weeks
    a = analysis_table(Store(tmp_path / "store"), read_spec(spec))
    d = a[(a["outcome"] == "pain_nrs") & a["value"].notna()].sort_values(["subject_id", "week"])
    span = d["week"].max() - d["week"].min()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.mixedlm(
            "value ~ week * C(arm, Treatment('control'))",
            d.assign(week=d["week"] / span),
            groups=d["subject_id"],
            re_formula="~week",
        ).fit(reml=True, method=["lbfgs", "bfgs", "powell"])
    assert plan.slopes["control"] == pytest.approx(ref.fe_params["week"] / span, abs=1e-5)
    assert plan.slopes["hip_strengthening"] - plan.slopes["control"] == pytest.approx(-0.1)
    assert plan.intercept == pytest.approx(ref.fe_params["Intercept"], rel=1e-4)
    assert plan.sigma2 == pytest.approx(ref.scale, rel=1e-3)
    g = np.asarray(ref.cov_re) / np.array([[1, span], [span, span**2]])
    np.testing.assert_allclose(plan.cov_re, g, rtol=1e-2, atol=1e-6)
    np.testing.assert_allclose(plan.times, sorted(d.groupby("session_index")["week"].median()))
