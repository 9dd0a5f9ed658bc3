import numpy as np
import pandas as pd
import pytest

from cxlab import ConfigError, CxlabError
from cxlab.models import fit_effects

KW = dict(time="visit", arm="arm", subject="subject", control="control", method="aipw")
TRUTH = -1.5  # effect of "exercise" on change from visit 0 to visit 1


def _confounded(n=1500, *, seed=0, strength=1.0):
    """Severity x drives both arm choice and change; true effect of exercise = -1.5."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    sex = rng.choice(["f", "m"], n)
    p = 1 / (1 + np.exp(-strength * (1.2 * x + 0.3 * (sex == "m"))))
    a = rng.random(n) < p
    y0 = 5 + 1.0 * x + rng.normal(0, 1, n)
    y1 = y0 - 0.8 * x + TRUTH * a + 0.4 * (sex == "m") + rng.normal(0, 1, n)
    subj = [f"S{i:04d}" for i in range(n)]
    arm = np.where(a, "exercise", "control")
    df = pd.DataFrame(
        {
            "subject": np.repeat(subj, 2),
            "visit": np.tile([0, 1], n),
            "arm": np.repeat(arm, 2),
            "pain": np.column_stack([y0, y1]).ravel(),
            "severity": np.repeat(x, 2),
            "sex": np.repeat(sex, 2),
        }
    )
    return df


def test_aipw_removes_the_confounding_that_biases_the_naive_estimate():
    df = _confounded()
    fit = fit_effects(df, outcome="pain", covariates=["severity", "sex"], **KW)
    row = fit.table.iloc[0]
    naive = fit.diagnostics["naive_estimate"].iloc[0]
    assert abs(naive - TRUTH) > 0.5  # arm choice on severity biases the naive difference
    assert abs(row["estimate"] - TRUTH) < 3 * row["std_error"]
    assert row["ci_low"] < TRUTH < row["ci_high"]
    assert row["estimand"] == "ate_change" and row["visit"] == "1"
    assert row["n_subjects"] == 1500


def test_gradient_boosting_outcome_model_is_also_unbiased():
    df = _confounded(600, seed=1)
    row = fit_effects(
        df, outcome="pain", covariates=["severity", "sex"], outcome_model="gbm", **KW
    ).table.iloc[0]
    assert abs(row["estimate"] - TRUTH) < 3 * row["std_error"]


def test_estimate_and_influence_se_recomputed_from_the_per_subject_frame():
    df = _confounded(400, seed=2)
    fit = fit_effects(df, outcome="pain", covariates=["severity"], **KW)
    per = fit.results_["pain"]
    a = (per["arm"] == "exercise").to_numpy()
    e = per["propensity"].clip(0.01, 0.99).to_numpy()
    y, m1, m0 = per["change"].to_numpy(), per["mu1"].to_numpy(), per["mu0"].to_numpy()
    psi = m1 - m0 + a * (y - m1) / e - (1 - a) * (y - m0) / (1 - e)
    row = fit.table.iloc[0]
    assert row["estimate"] == pytest.approx(psi.mean(), rel=1e-12)
    assert row["std_error"] == pytest.approx(psi.std(ddof=1) / np.sqrt(len(psi)), rel=1e-12)
    # Naive estimate: the unadjusted difference in mean change, by hand.
    change = df.pivot(index="subject", columns="visit", values="pain").diff(axis=1)[1]
    arm = df.drop_duplicates("subject").set_index("subject")["arm"]
    naive = change[arm == "exercise"].mean() - change[arm == "control"].mean()
    assert fit.diagnostics["naive_estimate"].iloc[0] == pytest.approx(naive, rel=1e-12)


def test_same_seed_same_result_and_seed_changes_the_folds():
    df = _confounded(300, seed=3)
    a = fit_effects(df, outcome="pain", covariates=["severity"], seed=7, **KW)
    b = fit_effects(df, outcome="pain", covariates=["severity"], seed=7, **KW)
    c = fit_effects(df, outcome="pain", covariates=["severity"], seed=8, **KW)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.table["estimate"].iloc[0] != c.table["estimate"].iloc[0]


def test_poor_overlap_is_refused_with_the_numbers():
    df = _confounded(600, seed=4, strength=12.0)
    with pytest.raises(
        CxlabError,
        match=r"poor overlap between 'exercise' and 'control' for "
        r"pain: \d+\.\d% of propensities outside \[0.01, 0.99\]",
    ):
        fit_effects(df, outcome="pain", covariates=["severity"], **KW)


def test_overlap_diagnostics_are_reported():
    df = _confounded(600, seed=5)
    d = fit_effects(df, outcome="pain", covariates=["severity"], **KW).diagnostics.iloc[0]
    assert d["n_treated"] + d["n_control"] == 600
    assert 0 < d["ps_min_treated"] < d["ps_max_treated"] < 1
    assert 0 < d["ess_control"] <= d["n_control"] and 0 < d["ess_treated"] <= d["n_treated"]
    assert d["share_outside"] == d["share_trimmed"] <= 0.1


def test_without_covariates_adjusts_for_the_baseline_outcome_only():
    df = _confounded(400, seed=6)
    fit = fit_effects(df, outcome="pain", **KW)
    assert "baseline pain;" in fit.formula["pain"] or "| baseline pain;" in fit.formula["pain"]
    assert np.isfinite(fit.table["estimate"].iloc[0])


def test_jittered_continuous_time_is_refused_with_a_hint():
    df = _confounded(60, seed=7)
    df["visit"] = df["visit"] * 12 + np.random.default_rng(0).integers(0, 3, len(df)) / 7
    with pytest.raises(
        CxlabError,
        match=r"too few subjects with visit=0\.0 and visit=12\.28"
        r".*use a visit column",
    ):
        fit_effects(df, outcome="pain", **KW)


def test_followup_must_be_a_visit():
    with pytest.raises(ConfigError, match="followup: is not a value of visit"):
        fit_effects(_confounded(60), outcome="pain", followup=3, **KW)


def test_interpretation_says_when_the_interval_includes_no_difference():
    rng = np.random.default_rng(4)
    df = _confounded(300, seed=4)
    y0 = df["pain"].to_numpy()[0::2]
    df.loc[df["visit"] == 1, "pain"] = y0 + rng.normal(0, 1, y0.size)  # no effect at all
    row = fit_effects(df, outcome="pain", covariates=["severity"], **KW).table.iloc[0]
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["interpretation"].endswith("the CI includes no difference")
    row = fit_effects(
        _confounded(300, seed=4), outcome="pain", covariates=["severity"], **KW
    ).table.iloc[0]
    assert row["ci_high"] < 0 and "includes no difference" not in row["interpretation"]


@pytest.mark.parametrize("value", ["constant", "constant_change"])
def test_constant_outcome_or_change_is_refused_not_fitted(value):
    # a constant outcome gave std_error 0 and p_value NaN instead of an error
    df = _confounded(200, seed=5)
    if value == "constant":
        df["pain"] = 3.0
        match = r"pain: has the same value in every observed row.*\(got 3\.0\)"
    else:
        df.loc[df["visit"] == 1, "pain"] = df.loc[df["visit"] == 0, "pain"].to_numpy() + 1.0
        match = r"pain: change from visit=0 to visit=1 is the same for every subject"
    with pytest.raises(ConfigError, match=match):
        fit_effects(df, outcome="pain", covariates=["severity"], **KW)
