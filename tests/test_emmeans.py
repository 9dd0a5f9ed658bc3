"""Marginal means, pairwise contrasts, Satterthwaite df and variance components against R.

The reference values in tests/fixtures/lmm/ were computed by R lme4 + lmerTest + emmeans
(``fit.R``, versions in ``versions.txt``) on ``lmm_data.csv`` (made by ``make_data.py``);
R is not needed to run these tests. Tolerances: statsmodels and lme4 stop their REML
optimisers at slightly different points (variances agree to ~1e-5), so estimates and SEs
are compared to 1e-4 and degrees of freedom to 1e-3 (relative).
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cxlab import ConfigError
from cxlab.models import fit_effects
from cxlab.models.emmeans import marginal_means, variance_components

FIX = Path(__file__).parent / "fixtures" / "lmm"
KW = dict(arm="arm", subject="subject", control="control")


def _r(name: str) -> pd.DataFrame:
    return pd.read_csv(FIX / name)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "lmm_data.csv")


@pytest.fixture(scope="module")
def visit_fit(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_effects(data, outcome="y", time="visit", time_as="categorical", **KW)


@pytest.fixture(scope="module")
def slope_fit(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_effects(data, outcome="y", time="week", **KW)


def test_change_per_visit_uses_satterthwaite_df_as_lmertest(visit_fit):
    ref = _r("visit_coefs.csv").set_index("term")
    t = visit_fit.table
    assert (t["df_method"] == "satterthwaite").all()
    for r in t.itertuples():
        row = ref.loc[f"arm{r.arm}:visit{r.visit}"]
        assert r.estimate == pytest.approx(row["Estimate"], rel=1e-4)
        assert r.std_error == pytest.approx(row["Std. Error"], rel=1e-4)
        assert r.df == pytest.approx(row["df"], rel=1e-3)
        assert r.p_value == pytest.approx(row["Pr(>|t|)"], rel=1e-2)
        q = stats.t.ppf(0.975, row["df"])
        assert r.ci_low == pytest.approx(row["Estimate"] - q * row["Std. Error"], rel=1e-3)
    assert "Satterthwaite" in visit_fit.methods


def test_slope_difference_df_and_variances_match_lmertest(slope_fit):
    coefs = _r("slope_coefs.csv").set_index("term")
    t = slope_fit.table
    assert (t["warnings"] == "").all()  # random intercept + slope, as in R
    for r in t.itertuples():
        row = coefs.loc[f"week:arm{r.arm}"]
        assert r.estimate == pytest.approx(row["Estimate"], rel=1e-4)
        assert r.std_error == pytest.approx(row["Std. Error"], rel=1e-3)
        assert r.df == pytest.approx(row["df"], rel=1e-3)
    vc = _r("slope_varcorr.csv")
    got = variance_components(
        slope_fit.results_["y"], outcome="y", time="week", scale=slope_fit.time_scale["y"]
    ).set_index("component")
    intercept = vc[(vc["var1"] == "(Intercept)") & vc["var2"].isna()]["vcov"].item()
    slope = vc[(vc["var1"] == "week") & vc["var2"].isna()]["vcov"].item()
    cov = vc[vc["var2"] == "week"]["vcov"].item()
    resid = vc[vc["grp"] == "Residual"]["vcov"].item()
    assert got.loc["subject: intercept", "variance"] == pytest.approx(intercept, rel=1e-4)
    assert got.loc["subject: week", "variance"] == pytest.approx(slope, rel=1e-3)
    assert got.loc["subject: intercept × week", "variance"] == pytest.approx(cov, rel=1e-3)
    assert got.loc["residual", "variance"] == pytest.approx(resid, rel=1e-4)
    assert t["var_slope"].iloc[0] == pytest.approx(slope, rel=1e-3)
    assert t["var_residual"].iloc[0] == pytest.approx(resid, rel=1e-4)


def _merged(got: pd.DataFrame, ref: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    ref = ref.rename(columns={c: f"r_{c}" for c in ref.columns if c not in on})
    return got.merge(ref, on=on, validate="1:1")


def test_marginal_means_per_arm_and_visit_match_emmeans(visit_fit):
    mm = marginal_means(
        visit_fit.results_["y"], outcome="y", arm="arm", time="visit", visits=["w00", "w06", "w12"]
    )
    got = _merged(mm.means, _r("visit_emmeans.csv"), ["arm", "visit"])
    assert len(got) == 9
    np.testing.assert_allclose(got["emmean"], got["r_emmean"], rtol=1e-4)
    np.testing.assert_allclose(got["std_error"], got["r_SE"], rtol=1e-4)
    np.testing.assert_allclose(got["df"], got["r_df"], rtol=1e-3)
    np.testing.assert_allclose(got["ci_low"], got["r_lower.CL"], rtol=1e-3)
    np.testing.assert_allclose(got["ci_high"], got["r_upper.CL"], rtol=1e-3)


def test_pairwise_arm_contrasts_within_visit_match_emmeans_pairs(visit_fit):
    mm = marginal_means(
        visit_fit.results_["y"], outcome="y", arm="arm", time="visit", visits=["w00", "w06", "w12"]
    )
    got = _merged(mm.pairs, _r("visit_pairs.csv"), ["contrast", "visit"])
    assert len(got) == 9
    np.testing.assert_allclose(got["estimate"], got["r_estimate"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["std_error"], got["r_SE"], rtol=1e-4)
    np.testing.assert_allclose(got["df"], got["r_df"], rtol=1e-3)
    np.testing.assert_allclose(got["ci_low"], got["r_lower.CL"], rtol=1e-3, atol=1e-5)


def test_marginal_means_on_continuous_time_match_emmeans_at(slope_fit):
    mm = marginal_means(
        slope_fit.results_["y"],
        outcome="y",
        arm="arm",
        time="week",
        visits=[0.0, 12.0],
        scale=slope_fit.time_scale["y"],
    )
    ref = _r("slope_emmeans.csv")
    ref["visit"] = ref.pop("week").astype(float).astype(str)
    got = _merged(mm.means, ref, ["arm", "visit"])
    assert len(got) == 6
    np.testing.assert_allclose(got["emmean"], got["r_emmean"], rtol=1e-4)
    np.testing.assert_allclose(got["std_error"], got["r_SE"], rtol=1e-3)
    np.testing.assert_allclose(got["df"], got["r_df"], rtol=1e-3)


def test_moderator_interaction_matches_lmertest(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_effects(data, outcome="y", time="week", moderators=["severity"], **KW)
    t = fit.table
    # the random slope is singular on these data: cxlab says so and fits an intercept, as R
    assert t["warnings"].str.contains("fell back to a random intercept").all()
    ref = _r("moderator_coefs.csv").set_index("term")
    for r in t[t["estimand"] == "moderation"].itertuples():
        row = ref.loc[f"week:arm{r.arm}:severity_c"]
        assert r.estimate == pytest.approx(row["Estimate"], rel=1e-4)
        assert r.std_error == pytest.approx(row["Std. Error"], rel=1e-3)
        assert r.df == pytest.approx(row["df"], rel=1e-3)
        assert r.ci_low < r.estimate < r.ci_high


def test_marginal_means_refuse_a_gee_fit(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_effects(data, outcome="y", time="week", method="gee", **KW)
    with pytest.raises(ConfigError, match="mixed-model fit"):
        marginal_means(fit.results_["y"], outcome="y", arm="arm", time="week", visits=[0])
