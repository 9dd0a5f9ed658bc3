from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab import ConfigError, CxlabWarning
from cxlab.models import reliability

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SF = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
# Reference values from pingouin 0.7.0 `intraclass_corr(df, 't', 'j', 'v')` on SF, run once in
# a throwaway venv (pingouin is not a dependency). ICC, F, p at full precision; pingouin
# rounds its CI95 to 2 decimals.
PG_ICC = [
    0.1657417684054755,
    0.28976377952755916,
    0.7148407148407154,
    0.44279713367926876,
    0.6200505475989893,
    0.9093155423770697,
]
PG_F = [
    1.7946784922394683,
    11.027247956403299,
    11.027247956403299,
    1.7946784922394683,
    11.027247956403299,
    11.027247956403299,
]
PG_P = [
    0.16476880834463953,
    0.000134566516484335,
    0.000134566516484335,
    0.16476880834463953,
    0.000134566516484335,
    0.000134566516484335,
]
PG_DF2 = [18, 15, 15, 18, 15, 15]
PG_CI = [(-0.13, 0.72), (0.02, 0.76), (0.34, 0.95), (-0.88, 0.91), (0.07, 0.93), (0.68, 0.99)]


def _long(x):
    return pd.DataFrame(
        [(f"t{t}", f"j{j}", float(v)) for t, row in enumerate(x) for j, v in enumerate(row)],
        columns=["target", "judge", "rating"],
    )


def test_icc_matches_shrout_fleiss_table_2():
    out = reliability(_long(SF), targets="target", raters="judge", ratings="rating")
    assert out["type"].tolist() == [
        "ICC(1,1)",
        "ICC(2,1)",
        "ICC(3,1)",
        "ICC(1,k)",
        "ICC(2,k)",
        "ICC(3,k)",
    ]
    # Published two-decimal values (Shrout & Fleiss 1979, Table 2).
    assert out["icc"].round(2).tolist() == [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]


def test_icc_f_p_and_ci_match_pingouin():
    out = reliability(_long(SF), targets="target", raters="judge", ratings="rating")
    np.testing.assert_allclose(out["icc"], PG_ICC, rtol=1e-12)
    np.testing.assert_allclose(out["f"], PG_F, rtol=1e-12)
    np.testing.assert_allclose(out["p_value"], PG_P, rtol=1e-9)
    assert out["df1"].tolist() == [5.0] * 6 and out["df2"].tolist() == PG_DF2
    np.testing.assert_allclose(out[["ci_low", "ci_high"]].round(2).to_numpy(), PG_CI, atol=1e-12)


def test_typical_error_is_sd_of_differences_over_root_two_for_two_trials():
    rng = np.random.default_rng(1)
    true = rng.normal(50, 8, 20)
    t1, t2 = true + rng.normal(0, 2, 20), true + 1.5 + rng.normal(0, 2, 20)
    df = pd.DataFrame(
        {
            "s": np.repeat(np.arange(20), 2),
            "trial": np.tile([1, 2], 20),
            "v": np.column_stack([t1, t2]).ravel(),
        }
    )
    out = reliability(df, targets="s", raters="trial", ratings="v").iloc[0]
    assert out["typical_error"] == pytest.approx(np.std(t2 - t1, ddof=1) / np.sqrt(2), rel=1e-12)
    # SEM from the one-way within-subject mean square keeps the 1.5-unit learning effect:
    # MSW = sum((x - subject mean)^2) / (n (k - 1)) = sum(d^2) / (2 n) for two trials.
    d = t2 - t1
    assert out["sem"] == pytest.approx(np.sqrt(np.sum(d**2) / (2 * 20)), rel=1e-12)
    assert out["mdc95"] == pytest.approx(1.96 * np.sqrt(2) * out["sem"], rel=1e-12)
    assert out["swc"] == pytest.approx(0.2 * np.std((t1 + t2) / 2, ddof=1), rel=1e-12)


def _two_trials(trial_sd, *, n=40, between_sd=6.0, seed=3):
    rng = np.random.default_rng(seed)
    true = rng.normal(10.0, between_sd, n)
    x = true[:, None] + rng.normal(0.0, trial_sd, (n, 2))
    return pd.DataFrame(
        {"s": np.repeat(np.arange(n), 2), "trial": np.tile([1, 2], n), "v": x.ravel()}
    )


def test_nearly_identical_repeats_are_flagged_not_only_exact_copies():
    from cxlab.models.reliability import icc_flag

    # trial SD 0.05 deg against a between-subject SD of 6 deg: ICC = 36 / 36.0025 > 0.999
    near = reliability(_two_trials(0.05), targets="s", raters="trial", ratings="v")
    # trial SD 2.8 deg (Munro et al. 2012's SEM for FPPA): ICC ~ 36 / 43.8 = 0.82
    real = reliability(_two_trials(2.8), targets="s", raters="trial", ratings="v")
    assert (near["icc"].iloc[:3] > 0.999).all() and (near["icc"].iloc[:3] < 1).all()
    flags = icc_flag(near["icc"].iloc[:3])
    assert all("repeat trials nearly identical; check the data" in f for f in flags)
    assert 0.7 < real["icc"].iloc[1] < 0.9
    assert list(icc_flag(real["icc"])) == [""] * len(real)
    assert list(icc_flag([1.0, 0.9989, np.nan])) == [flags[0], "", ""]


def test_by_groups_give_one_block_per_feature():
    a, b = _long(SF).assign(feature="a"), _long(SF).assign(feature="b")
    b["rating"] *= 2.0
    out = reliability(
        pd.concat([b, a]), targets="target", raters="judge", ratings="rating", by="feature"
    )
    assert out["feature"].tolist() == ["a"] * 6 + ["b"] * 6
    np.testing.assert_allclose(out["icc"].iloc[:6], out["icc"].iloc[6:], rtol=1e-12)
    np.testing.assert_allclose(out["sem"].iloc[6:], 2 * out["sem"].iloc[:6].to_numpy())


def test_incomplete_target_is_dropped_with_a_warning():
    df = _long([*SF, [5, 5, 5, 5]])
    df = df[~((df["target"] == "t6") & (df["judge"] == "j2"))]
    with pytest.warns(CxlabWarning, match="dropped 1 target"):
        out = reliability(df, targets="target", raters="judge", ratings="rating")
    np.testing.assert_allclose(out["icc"], PG_ICC, rtol=1e-12)


def test_bad_input_names_the_column():
    with pytest.raises(ConfigError, match="score"):
        reliability(_long(SF), targets="target", raters="judge", ratings="score")
    df = _long(SF).assign(rating=lambda d: d["rating"].astype(str))
    with pytest.raises(ConfigError, match="rating: must be numeric"):
        reliability(df, targets="target", raters="judge", ratings="rating")
    with pytest.raises(ConfigError, match="at least 2 complete targets"):
        reliability(_long(SF[:1]), targets="target", raters="judge", ratings="rating")


# -- test-retest sheet: between-session reliability against R lme4 variance components -----
RETEST = Path(__file__).parent / "fixtures" / "retest"  # make_data.py, icc.R


def _pairs() -> pd.DataFrame:
    return pd.read_csv(RETEST / "retest.csv").rename(
        columns={"participant": "subject_id", "test": "value_1", "retest": "value_2"}
    )


def test_retest_icc_sem_and_mdc_match_lme4_variance_components():
    from cxlab.models import retest_reliability

    r = retest_reliability(_pairs()).set_index("outcome")
    ref = pd.read_csv(RETEST / "icc_varcomp.csv").set_index("outcome")
    for o, v in ref.iterrows():
        total = v["var_participant"] + v["var_session"] + v["var_residual"]
        assert r.loc[o, "icc"] == pytest.approx(v["var_participant"] / total, rel=1e-4)
        assert r.loc[o, "sem"] == pytest.approx(np.sqrt(v["var_within_oneway"]), rel=1e-4)
        assert r.loc[o, "typical_error"] == pytest.approx(np.sqrt(v["var_residual"]), rel=1e-4)
        assert r.loc[o, "mdc95"] == pytest.approx(1.96 * np.sqrt(2) * r.loc[o, "sem"])
        assert r.loc[o, "n_pairs"] == v["n"]


def test_retest_typical_error_is_sd_of_differences_over_root_two_by_hand():
    from cxlab.models import retest_reliability

    p = _pairs()
    r = retest_reliability(p).set_index("outcome")
    for o, g in p.groupby("outcome"):  # Hopkins (2000): TE = SD(retest - test) / sqrt(2)
        te = np.std(g["value_2"] - g["value_1"], ddof=1) / np.sqrt(2)
        assert r.loc[o, "typical_error"] == pytest.approx(te, rel=1e-9)
        assert r.loc[o, "interval_days"] == np.median(g["interval_days"])


def test_retest_long_store_table_gives_the_same_rows_as_the_wide_pairs():
    from cxlab.models import retest_reliability

    p = _pairs()
    long = p.melt(
        id_vars=["subject_id", "outcome", "interval_days"],
        value_vars=["value_1", "value_2"],
        var_name="test",
        value_name="value",
    ).assign(test=lambda d: d["test"].str[-1].astype(int))
    pd.testing.assert_frame_equal(retest_reliability(long), retest_reliability(p))


def test_retest_outcome_with_two_pairs_is_left_out_with_a_warning():
    from cxlab.models import retest_reliability

    p = _pairs().groupby("outcome").head(2)
    with pytest.warns(CxlabWarning, match="2 test-retest pair"):
        assert retest_reliability(p).empty


def test_ingested_retest_sheet_sets_the_run_mdc_and_names_its_source(tmp_path):
    from cxlab.experiments import run_experiment
    from cxlab.ingest import ingest_retest
    from truth_store import truth_store

    st, _ = truth_store(tmp_path / "store", 24, 3, seed=8)
    assert ingest_retest([RETEST / "retest.csv"], store=st).n_rejected == 0
    stored = st.table("retest")
    assert len(stored) == 2 * len(_pairs()) and set(stored["test"]) == {1, 2}
    (tmp_path / "s.toml").write_text(
        'name = "rt"\nseed = 1\nstore = "store"\n[model]\ncontrol = "control"\n'
        "[outcomes.knee_fppa_peak_deg]\nmcid = 1.0\n",
        encoding="utf-8",
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_experiment(tmp_path / "s.toml", out=tmp_path / "runs")
    rel = pd.read_parquet(run / "reliability.parquet")
    row = rel[(rel["outcome"] == "knee_fppa_peak_deg") & (rel["type"] == "ICC(2,1)")]
    (basis,) = row["basis"]
    p = _pairs()
    g = p[p["outcome"] == "knee_fppa_peak_deg"]
    days = np.median(g["interval_days"])
    assert basis == f"between-session (test-retest sheet, n = 30, median interval {days:g} d)"
    w = pd.concat([g["value_1"], g["value_2"]], axis=1).to_numpy()  # SEM = sqrt(MSW), by hand
    msw = ((w - w.mean(axis=1, keepdims=True)) ** 2).sum() / len(w)
    mdc = 1.96 * np.sqrt(2) * np.sqrt(msw)
    parts = pd.read_parquet(run / "participants.parquet")
    parts = parts[parts["outcome"] == "knee_fppa_peak_deg"]
    assert parts["mdc95"].iloc[0] == pytest.approx(mdc)
    assert (parts["error_basis"] == basis).all()
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "test-retest sheet, n = 30" in html
