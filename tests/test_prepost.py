"""Single-group pre/post change: the mixed-model slope against lmerTest, the paired change
against the textbook paired-t formula."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cxlab import ConfigError
from cxlab.models.prepost import fit_change

FIX = Path(__file__).parent / "fixtures" / "lmm"


@pytest.fixture(scope="module")
def hip() -> pd.DataFrame:
    d = pd.read_csv(FIX / "lmm_data.csv")
    return d[d["arm"] == "hip"].reset_index(drop=True)


def test_slope_matches_lmertest_with_satterthwaite_df(hip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = fit_change(hip, outcome="y", time="week", subject="subject")
    ref = pd.read_csv(FIX / "prepost_coefs.csv").set_index("term").loc["week"]
    r = t[t["estimand"] == "slope"].iloc[0]
    assert r["estimate"] == pytest.approx(ref["Estimate"], rel=1e-4)
    assert r["std_error"] == pytest.approx(ref["Std. Error"], rel=1e-3)
    assert r["df"] == pytest.approx(ref["df"], rel=1e-3)
    assert r["p_value"] == pytest.approx(ref["Pr(>|t|)"], rel=1e-2)
    assert r["arm"] == "all" and r["ci_low"] < r["estimate"] < r["ci_high"] < 0


def test_mean_change_is_the_paired_t_interval_worked_by_hand(hip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = fit_change(hip, outcome="y", time="week", subject="subject")
    r = t[t["estimand"] == "mean_change"].iloc[0]
    g = hip.sort_values(["subject", "week"]).groupby("subject")["y"]
    diff = (g.last() - g.first())[g.size() >= 2].to_numpy()
    n = len(diff)
    half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / np.sqrt(n)
    assert r["n_subjects"] == n and r["df"] == n - 1
    assert r["estimate"] == pytest.approx(diff.mean(), rel=1e-12)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(
        (diff.mean() - half, diff.mean() + half), rel=1e-10
    )


def test_too_few_subjects_with_two_visits_is_a_readable_error(hip):
    few = hip[hip["subject"].isin(sorted(hip["subject"].unique())[:2])]
    with pytest.raises(ConfigError, match="fewer than 3 subjects with two visits"):
        fit_change(few, outcome="y", time="week", subject="subject")
