"""Crossover designs: programme effect adjusted for period and sequence, against lmerTest."""

import warnings
from pathlib import Path

import pandas as pd
import pytest

from cxlab import ConfigError
from cxlab.models.crossover import fit_crossover

FIX = Path(__file__).parent / "fixtures" / "lmm"
KW = dict(arm="arm", period="period", sequence="sequence", subject="subject", control="control")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "crossover_data.csv")


def test_programme_effect_matches_lmertest_with_period_and_sequence(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = fit_crossover(data, outcome="y", **KW)
    ref = pd.read_csv(FIX / "crossover_coefs.csv").set_index("term").loc["armhip"]
    r = t.iloc[0]
    assert r["arm"] == "hip" and r["estimand"] == "crossover_diff" and r["n_subjects"] == 16
    assert r["estimate"] == pytest.approx(ref["Estimate"], rel=1e-4)
    assert r["std_error"] == pytest.approx(ref["Std. Error"], rel=1e-3)
    assert r["df"] == pytest.approx(ref["df"], rel=1e-3)
    assert r["p_value"] == pytest.approx(ref["Pr(>|t|)"], rel=1e-2)
    vc = pd.read_csv(FIX / "crossover_varcorr.csv").set_index("grp")["vcov"]
    assert r["var_intercept"] == pytest.approx(vc["subject"], rel=1e-3)
    assert r["var_residual"] == pytest.approx(vc["Residual"], rel=1e-3)
    assert "period" in r["formula"] and "sequence" in r["formula"]


def test_the_simulated_effect_is_inside_the_interval(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_crossover(data, outcome="y", **KW).iloc[0]
    assert r["ci_low"] < -1.5 < r["ci_high"]  # make_data.py: hip effect -1.5


def test_unknown_control_names_the_programmes(data):
    with pytest.raises(ConfigError, match="use one of control, hip"):
        fit_crossover(data, outcome="y", **{**KW, "control": "ctrl"})
