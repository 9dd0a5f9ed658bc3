import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.genmod import cov_struct as sm_cov
from statsmodels.stats.multitest import multipletests

from cxlab import ConfigError
from cxlab.models import fit_effects, p_adjust
from cxlab.synth.truth import simulate_truth

ARM = "C(arm, Treatment('control'))"
REPO = Path(__file__).resolve().parents[1]
KW = dict(time="week", arm="arm", subject="label", control="control")


@pytest.fixture(scope="module")
def cohort():
    c = simulate_truth(60, 4, seed=1)
    return c.wide(), c


def _sorted(w, y):
    return w.dropna(subset=[y]).sort_values(["label", "week"], kind="stable").reset_index(drop=True)


def _fit_sm_mixed(d, fml, re="~week"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm(fml, d, groups=d["label"], re_formula=re).fit(
            reml=True, method=["lbfgs", "bfgs", "powell"]
        )


def test_mixed_model_matches_statsmodels_on_rescaled_time(cohort):
    w, _ = cohort
    fit = fit_effects(w, outcome="odi", **KW)
    t = fit.table
    assert fit.formula["odi"] == f"odi ~ week * {ARM}"
    assert t["converged"].all() and (t["warnings"] == "").all()
    d = _sorted(w, "odi")
    span = d["week"].max() - d["week"].min()
    assert fit.time_scale["odi"] == span
    ref = _fit_sm_mixed(d.assign(week=d["week"] / span), f"odi ~ week * {ARM}")
    for r in t.itertuples():
        term = f"week:{ARM}[T.{r.arm}]"
        assert r.estimate == pytest.approx(ref.params[term] / span, rel=1e-12)
        assert r.std_error == pytest.approx(ref.bse[term] / span, rel=1e-12)
        assert r.p_value == pytest.approx(ref.pvalues[term], rel=1e-10)
        lo, hi = ref.conf_int().loc[term] / span
        assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), rel=1e-10)
        assert r.n_obs == d["arm"].isin([r.arm, "control"]).sum()
    # REML is invariant to the time scale: the unscaled statsmodels fit agrees.
    raw = _fit_sm_mixed(d, f"odi ~ week * {ARM}")
    terms = [f"week:{ARM}[T.{a}]" for a in t["arm"]]
    np.testing.assert_allclose(t["estimate"], raw.params[terms], rtol=1e-3)
    np.testing.assert_allclose(t["std_error"], raw.bse[terms], rtol=1e-2)


def test_gee_matches_statsmodels_exchangeable_ar1_and_bias_reduced(cohort):
    w, _ = cohort
    d = _sorted(w, "pain_nrs")
    fml = f"pain_nrs ~ week * {ARM} + age"
    w = w.merge(cohort[1].subjects[["label", "age_years"]].rename(columns={"age_years": "age"}))
    rank = {v: i for i, v in enumerate(sorted(d["week"].unique()))}
    d = _sorted(w, "pain_nrs")
    for cs, cov_type, struct in [
        ("exchangeable", "robust", sm_cov.Exchangeable()),
        ("exchangeable", "bias_reduced", sm_cov.Exchangeable()),
        ("ar1", "robust", sm_cov.Autoregressive(grid=True)),
    ]:
        t = fit_effects(
            w,
            outcome="pain_nrs",
            covariates=["age"],
            method="gee",
            cov_struct=cs,
            cov_type=cov_type,
            **KW,
        ).table
        ref = smf.gee(
            fml,
            groups=d["label"],
            data=d,
            cov_struct=struct,
            time=d["week"].map(rank).to_numpy(float)[:, None],
        ).fit(cov_type=cov_type)
        terms = [f"week:{ARM}[T.{a}]" for a in t["arm"]]
        np.testing.assert_allclose(t["estimate"], ref.params[terms], rtol=1e-12)
        np.testing.assert_allclose(t["std_error"], ref.bse[terms], rtol=1e-12)
        np.testing.assert_allclose(t["p_value"], ref.pvalues[terms], rtol=1e-9)
        assert (t["method"] == "gee").all()


def test_categorical_time_gives_change_from_baseline_per_visit(cohort):
    w, _ = cohort
    w = w.assign(visit=w["session"].astype(int))
    fit = fit_effects(
        w,
        outcome="odi",
        time="visit",
        arm="arm",
        subject="label",
        control="control",
        time_as="categorical",
    )
    t = fit.table
    assert len(t) == 3 * 3 and set(t["estimand"]) == {"change_diff"}
    assert sorted(set(t["visit"])) == ["2", "3", "4"]
    d = w.dropna(subset=["odi"]).sort_values(["label", "visit"]).reset_index(drop=True)
    fml = f"odi ~ {ARM} * C(visit, Treatment(1))"
    assert fit.formula["odi"] == fml
    ref = _fit_sm_mixed(d, fml, re=None)
    for r in t.itertuples():
        term = f"{ARM}[T.{r.arm}]:C(visit, Treatment(1))[T.{r.visit}]"
        assert r.estimate == pytest.approx(ref.params[term], rel=1e-10)
        assert r.std_error == pytest.approx(ref.bse[term], rel=1e-10)


def test_moderator_recovers_the_simulated_effect_heterogeneity():
    c = simulate_truth(400, 4, seed=5, dropout=False)
    y = "landing_peak_force_lsi_pct"
    w = c.wide().merge(c.subjects[["label", f"baseline_{y}"]])
    w["asym0"] = 100 - w[f"baseline_{y}"]
    fit = fit_effects(w, outcome=y, moderators=["asym0"], **KW)
    mod = fit.table.set_index(["arm", "estimand"])
    truth = c.moderators[y]["hip_strengthening"]["per_unit"]
    row = mod.loc[("hip_strengthening", "moderation")]
    assert row["ci_low"] < truth < row["ci_high"]
    assert (
        row["ci_low"] > 0 and "more positive in subjects with higher asym0" in row["interpretation"]
    )
    # At the mean moderator the slope difference is the population-average effect.
    main = mod.loc[("hip_strengthening", "slope_diff")]
    assert main["ci_low"] < c.effects[y]["hip_strengthening"] < main["ci_high"]
    assert mod.loc[("thoracic_mobility", "moderation"), "interpretation"].startswith(
        "no clear moderation"
    )


def test_unidentifiable_slope_variance_falls_back_to_random_intercept_and_says_so():
    # Two visits per subject (pre/post) cannot separate slope variance from residual.
    rng = np.random.default_rng(3)
    n, k = 45, 2
    sub = np.repeat(np.arange(n), k)
    week = np.tile(np.arange(k) * 12.0, n)
    arm = np.array(["control", "a", "b"])[np.arange(n) % 3][sub]
    y = 5 + rng.normal(0, 1, n)[sub] - 0.1 * week * (arm == "a") + rng.normal(0, 0.5, n * k)
    df = pd.DataFrame({"label": sub.astype(str), "week": week, "arm": arm, "y": y})
    fit = fit_effects(df, outcome="y", **KW)
    assert fit.table["warnings"].str.contains("needs subjects with 3 or more visits").all()
    assert np.asarray(fit.results_["y"].cov_re).shape == (1, 1)
    assert "with a random intercept per subject" in fit.methods
    d = df.sort_values(["label", "week"], kind="stable").reset_index(drop=True)
    ref = _fit_sm_mixed(d.assign(week=d["week"] / 12.0), f"y ~ week * {ARM}", re=None)
    np.testing.assert_allclose(
        fit.table["estimate"], ref.params[[f"week:{ARM}[T.a]", f"week:{ARM}[T.b]"]] / 12, rtol=1e-10
    )


def test_boundary_random_slope_fit_falls_back_and_reports_it():
    # In this simulated cohort (seed 2) the pain slope variance is estimated on the boundary.
    w = simulate_truth(60, 4, seed=2).wide()
    fit = fit_effects(w, outcome="pain_nrs", **KW)
    t = fit.table
    assert t["warnings"].str.contains("boundary").all()
    assert t["warnings"].str.contains("fell back to a random intercept").all()
    assert t["converged"].all()
    d = _sorted(w, "pain_nrs")
    span = fit.time_scale["pain_nrs"]
    ref = _fit_sm_mixed(d.assign(week=d["week"] / span), f"pain_nrs ~ week * {ARM}", re=None)
    terms = [f"week:{ARM}[T.{a}]" for a in t["arm"]]
    np.testing.assert_allclose(t["estimate"], ref.params[terms] / span, rtol=1e-10)


def test_optimiser_that_raises_is_skipped_and_reported_not_a_traceback():
    # With this cohort L-BFGS raises LinAlgError("Singular matrix") on the random-intercept
    # model; BFGS converges. The fit must go on to the next optimiser and say so.
    rng = np.random.default_rng(0)
    rows = []
    for s in range(30):
        arm = ["control", "a", "b"][s % 3]
        u = rng.normal()
        for t in (0.0, 2.0, 4.0, 6.0):
            rows.append(
                {
                    "label": f"s{s}",
                    "arm": arm,
                    "visit": str(int(t / 2) + 1),
                    "y": u + (-0.5 * t if arm == "a" else 0) + rng.normal(),
                }
            )
    df = pd.DataFrame(rows)
    fit = fit_effects(
        df,
        outcome="y",
        time="visit",
        arm="arm",
        subject="label",
        control="control",
        time_as="categorical",
    )
    t = fit.table
    assert t["converged"].all()
    assert t["warnings"].str.contains("lbfgs").all()
    d = df.sort_values(["label", "visit"], kind="stable").reset_index(drop=True)
    fml = f"y ~ {ARM} * C(visit, Treatment('1'))"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.mixedlm(fml, d, groups=d["label"]).fit(reml=True, method="bfgs")
    for r in t.itertuples():
        term = f"{ARM}[T.{r.arm}]:C(visit, Treatment('1'))[T.{r.visit}]"
        assert r.estimate == pytest.approx(ref.params[term], rel=1e-6)


@pytest.mark.parametrize("method", ["mixed", "gee"])
def test_categorical_visit_unobserved_in_an_arm_is_refused_with_its_name(cohort, method):
    # the arm x visit cell would be an all-zero column: GEE reported a 0 +- 0 "effect" and the
    # mixed model hit a singular matrix
    w, _ = cohort
    w = w.assign(visit=w["session"].astype(int))
    w = w[~((w["arm"] == "core_stability") & (w["visit"] == 4))]
    with pytest.raises(
        ConfigError,
        match=r"odi: arm 'core_stability' has no observed value at "
        r"visit=4",
    ):
        fit_effects(
            w,
            outcome="odi",
            time="visit",
            arm="arm",
            subject="label",
            control="control",
            time_as="categorical",
            method=method,
        )


def test_interpretation_names_the_confidence_level_of_alpha(cohort):
    w, _ = cohort
    t = fit_effects(w, outcome="odi", method="gee", alpha=0.1, **KW).table
    assert t["interpretation"].str.contains("90% CI").all()
    assert not t["interpretation"].str.contains("95%").any()


def test_collinear_covariates_in_a_mixed_model_are_a_clear_error(cohort):
    w, _ = cohort
    parity = (np.arange(len(w)) % 2).astype(float)
    with pytest.raises(ConfigError, match=r"odi: .*could not be fitted.*collinear covariates"):
        fit_effects(w.assign(c1=parity, c2=parity), outcome="odi", covariates=["c1", "c2"], **KW)


@pytest.mark.parametrize("method", ["mixed", "gee"])
def test_constant_outcome_is_refused_not_fitted(cohort, method):
    # the mixed model gave 2e-17 +- 1e-17 "points/week", p = 0.03; GEE a raw ValueError
    w, _ = cohort
    with pytest.raises(ConfigError, match=r"flat: has the same value .*\(got 3\.0\)"):
        fit_effects(w.assign(flat=3.0), outcome="flat", method=method, **KW)


def test_gee_that_statsmodels_cannot_estimate_is_a_clear_error(cohort, monkeypatch):
    # statsmodels' GEE.fit warns and returns None when it cannot estimate the parameters
    from statsmodels.genmod.generalized_estimating_equations import GEE

    def fit(self, *a, **k):
        warnings.warn("Unable to estimate GEE parameters.", UserWarning, stacklevel=2)

    monkeypatch.setattr(GEE, "fit", fit)
    w, _ = cohort
    with pytest.raises(ConfigError, match=r"odi: GEE could not be fitted \(Unable to estimate"):
        fit_effects(w, outcome="odi", method="gee", **KW)


def test_holm_and_bh_match_multipletests():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001, np.nan, 0.04])
    ok = ~np.isnan(p)
    for method in ("holm", "fdr_bh"):
        adj = p_adjust(p, method=method)
        np.testing.assert_allclose(adj[ok], multipletests(p[ok], method=method)[1], rtol=1e-14)
        assert np.isnan(adj[5])
    with pytest.raises(ConfigError, match="correction"):
        p_adjust(p, method="bonferroni-ish")


def test_p_adj_is_holm_across_outcomes_and_arms(cohort):
    w, _ = cohort
    t = fit_effects(w, outcome=["pain_nrs", "odi"], method="gee", **KW).table
    assert len(t) == 6
    np.testing.assert_allclose(t["p_adj"], multipletests(t["p_value"], method="holm")[1])


def test_fit_is_deterministic_and_documents_its_method(cohort):
    w, _ = cohort
    a = fit_effects(w, outcome=["pain_nrs"], **KW)
    b = fit_effects(w.sample(frac=1.0, random_state=0), outcome=["pain_nrs"], **KW)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert "MixedLM" in a.methods and "Holm" in a.methods


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(outcome="nope"), r"nope: column\(s\) not found"),
        (dict(control="placebo"), r"control: is not an arm.*'placebo'.*control, core_stability"),
        (dict(outcome="arm"), "arm: must be numeric"),
        (dict(method="bayes"), "method: is not a valid method"),
        (dict(moderators=["age"], time_as="categorical"), "moderators need continuous time"),
        (dict(covariates=["age"]), r"age: is constant.*\(got 30\.0\)"),
        (dict(moderators=["age"]), r"age: is constant"),
    ],
)
def test_bad_options_name_the_problem(cohort, change, match):
    w, _ = cohort
    kw = {**KW, "outcome": "odi", **change}
    with pytest.raises(ConfigError, match=match):
        fit_effects(w.assign(age=30.0), **kw)


def test_single_time_point_and_tiny_arm_are_refused(cohort):
    w, _ = cohort
    with pytest.raises(ConfigError, match="single time point"):
        fit_effects(w[w["session"] == "1"], outcome="odi", **KW)
    few = w[
        w["label"].isin(w.loc[w["arm"] != "core_stability", "label"])
        | w["label"].isin(w.loc[w["arm"] == "core_stability", "label"].unique()[:2])
    ]
    with pytest.raises(ConfigError, match="arm 'core_stability' has 2 subject"):
        fit_effects(few, outcome="odi", **KW)


def test_outcome_unobserved_in_an_arm_is_refused_with_its_name(cohort):
    w, _ = cohort
    w = w.assign(odi=w["odi"].where(w["arm"] != "hip_strengthening"))
    with pytest.raises(ConfigError, match="odi: arm 'hip_strengthening' has 0 subject"):
        fit_effects(w, outcome=["pain_nrs", "odi"], **KW)


def _calibration_module():
    path = REPO / "benchmarks" / "calibrate_effects.py"
    spec = importlib.util.spec_from_file_location("calibrate_effects", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_calibration_20_reps_mixed_is_unbiased_under_mar_and_aipw_removes_confounding():
    """20 seeded replications (the 500-rep figures of the README are
    ``benchmarks/calibrate_effects.py --reps 500``): limits at 3 Monte-Carlo SE of 20 reps."""
    cal = _calibration_module()
    reps = 20  # ~1.5 s of CPU per rep; its speed is benchmarks/calibrate_effects.py's business
    s = cal.calibrate(reps, n_subjects=80, n_confounded=400, methods=("mixed", "aipw", "naive"))
    s = s.set_index(["scenario", "method", "arm"])
    # Monte-Carlo error at 20 reps: coverage SE = sqrt(.95 * .05 / 20) = 0.049, so a
    # well-calibrated interval covers >= 0.80 (3 SE below 0.95); type-I SE 0.049, so <= 0.20.
    mcse = np.sqrt(0.95 * 0.05 / reps)
    min_coverage, max_type1 = 0.95 - 3 * mcse, 0.05 + 3 * mcse
    assert (round(min_coverage, 2), round(max_type1, 2)) == (0.80, 0.20)
    for arm in ("hip_strengthening", "core_stability", "thoracic_mobility"):
        for key in (("randomised_mar", "mixed", arm), ("confounded", "aipw", arm)):
            r = s.loc[key]
            assert r["coverage"] >= min_coverage, (key, r.to_dict())
            assert abs(r["bias"]) < 0.1 * abs(r["truth"]) + 3.5 * r["bias_mcse"], (key, r.to_dict())
    assert s.loc[("randomised_mar", "mixed", "thoracic_mobility"), "reject_rate"] <= max_type1
    assert s.loc[("confounded", "aipw", "thoracic_mobility"), "reject_rate"] <= max_type1
    # Selection on observed baseline pain biases the naive change difference (regression to
    # the mean); AIPW removes it.
    naive = s.loc[("confounded", "naive", "core_stability")]
    aipw = s.loc[("confounded", "aipw", "core_stability")]
    assert abs(naive["bias"]) > 3 * naive["bias_mcse"]
    assert abs(aipw["bias"]) < abs(naive["bias"])


def test_cli_effects_writes_deterministic_csv_and_parquet(tmp_path, cohort):
    from typer.testing import CliRunner

    from cxlab.cli import app

    w, _ = cohort
    src = tmp_path / "cohort.csv"
    w.to_csv(src, index=False)
    args = [
        "effects",
        "--table",
        str(src),
        "--outcome",
        "odi",
        "--outcome",
        "pain_nrs",
        "--time",
        "week",
        "--arm",
        "arm",
        "--subject",
        "label",
        "--control",
        "control",
        "--method",
        "gee",
    ]
    runner = CliRunner()
    r1 = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    r2 = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output
    assert "effects vs control (gee)" in r1.output and "effects.parquet" in r1.output
    for name in ("effects.csv", "effects.parquet", "methods.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    got = pd.read_parquet(tmp_path / "a" / "effects.parquet")
    ref = fit_effects(pd.read_csv(src), outcome=["odi", "pain_nrs"], method="gee", **KW).table
    assert list(got.columns) == list(ref.columns)
    np.testing.assert_allclose(got["estimate"], ref["estimate"], rtol=1e-12)
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "a" / "effects.csv")["p_adj"], ref["p_adj"], rtol=1e-12
    )


def test_cli_effects_reads_a_store_query_and_reports_errors_in_one_line(tmp_path, cohort):
    from typer.testing import CliRunner

    from cxlab.cli import app

    runner = CliRunner()
    base = [
        "effects",
        "--outcome",
        "odi",
        "--time",
        "week",
        "--arm",
        "arm",
        "--subject",
        "label",
        "--out",
        str(tmp_path / "o"),
    ]
    r = runner.invoke(
        app,
        [
            *base,
            "--store",
            str(tmp_path / "empty"),
            "--query",
            "SELECT * FROM nope",
            "--control",
            "control",
        ],
    )
    assert r.exit_code == 1 and "SQL failed" in r.output and "Traceback" not in r.output
    w, _ = cohort
    src = tmp_path / "c.parquet"
    w.to_parquet(src)
    r = runner.invoke(app, [*base, "--table", str(src), "--control", "placebo"])
    assert r.exit_code == 1
    assert "control: is not an arm in the table (got 'placebo')" in r.output
    assert not (tmp_path / "o").exists()  # nothing half-written


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "no input table; pass --table FILE or --store DIR --query SQL"),
        (
            ["--table", "x.csv", "--store", "s", "--query", "SELECT 1"],
            "both --table and --store given; pass --table FILE or --store DIR --query SQL",
        ),
        (
            ["--store", "s"],
            "--store needs --query SQL; pass --table FILE or --store DIR --query SQL",
        ),
        (
            ["--query", "SELECT 1"],
            "--query needs --store DIR; pass --table FILE or --store DIR --query SQL",
        ),
    ],
)
def test_cli_effects_without_a_usable_input_says_which_options_to_pass(tmp_path, args, expected):
    # it printed the raw option dict: "(got {'table': None, 'store': None, 'query': None})"
    from typer.testing import CliRunner

    from cxlab.cli import app

    r = CliRunner().invoke(
        app,
        [
            "effects",
            *args,
            "--outcome",
            "odi",
            "--time",
            "week",
            "--arm",
            "arm",
            "--subject",
            "label",
            "--control",
            "control",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert expected in r.output and "got {" not in r.output
    assert len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("method", ["gee", "aipw"])
def test_rows_without_time_arm_or_subject_are_left_out_with_a_counted_warning(cohort, method):
    # they were dropped silently
    w, _ = cohort
    w = w.copy()
    time = "session" if method == "aipw" else "week"
    w.loc[[0, 5], time] = np.nan
    w.loc[9, "arm"] = None
    kw = {**KW, "time": time}
    if method == "aipw":
        w["session"] = w["session"].astype(float)
    fit = fit_effects(w, outcome="odi", method=method, **kw)
    want = [
        f"{time}: 2 row(s) with a missing value left out",
        "arm: 1 row(s) with a missing value left out",
    ]
    assert fit.warnings == want
    for note in want:
        assert fit.table["warnings"].str.contains(note, regex=False).all()
    full = fit_effects(cohort[0], outcome="odi", method="gee", **KW)
    assert full.warnings == [] and not full.table["warnings"].str.contains("left out").any()


# -- the three fitters, the fast engine, typed failures -------------------------------------
LMM = REPO / "tests" / "fixtures" / "lmm"
LMM_KW = dict(outcome="y", time="week", arm="arm", subject="subject", control="control")


def test_fast_engine_gives_the_estimates_ses_and_df_of_statsmodels_and_lmertest():
    # 24 subjects (< 50): t intervals on Satterthwaite df from (X'V^-1 X)^-1, both engines
    from cxlab.models import fit_mixed

    d = pd.read_csv(LMM / "lmm_data.csv")
    fast = fit_mixed(d, **LMM_KW)
    slow = fit_mixed(d, **LMM_KW, engine="statsmodels")
    assert fast.engine == {"y": "reml"} and slow.engine == {"y": "statsmodels"}
    assert (fast.table["engine"] == "reml").all() and (slow.table["engine"] == "statsmodels").all()
    assert "cxlab's profiled REML" in fast.methods and "statsmodels MixedLM" in slow.methods
    a, b = fast.table, slow.table
    assert (a["df_method"] == "satterthwaite").all() and (b["df_method"] == "satterthwaite").all()
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-5)
    np.testing.assert_allclose(a["std_error"], b["std_error"], rtol=1e-5)
    np.testing.assert_allclose(a["df"], b["df"], rtol=1e-4)
    np.testing.assert_allclose(a["p_value"], b["p_value"], rtol=1e-3)
    # R: lmer(y ~ week * arm + (week | subject), REML = TRUE) with lmerTest (fit.R)
    r = pd.read_csv(LMM / "slope_coefs.csv").set_index("term")
    want = r.loc[[f"week:arm{x}" for x in a["arm"]]]
    np.testing.assert_allclose(a["estimate"], want["Estimate"], rtol=1e-6)
    np.testing.assert_allclose(a["std_error"], want["Std. Error"], rtol=1e-5)
    np.testing.assert_allclose(a["df"], want["df"], rtol=1e-3)
    np.testing.assert_allclose(a["p_value"], want["Pr(>|t|)"], rtol=1e-3)
    vc = pd.read_csv(LMM / "slope_varcorr.csv")
    row = a.iloc[0]
    assert row["var_intercept"] == pytest.approx(vc["vcov"].iloc[0], rel=1e-4)
    assert row["var_slope"] == pytest.approx(vc["vcov"].iloc[1], rel=1e-4)
    assert row["var_residual"] == pytest.approx(vc["vcov"].iloc[3], rel=1e-5)


def test_fast_engine_with_many_subjects_agrees_with_statsmodels(cohort):
    # 60 subjects: Wald z; the engine's SE is lme4's (X'V^-1 X)^-1, statsmodels' comes from
    # its joint Hessian: they differ by well under 1 %
    from cxlab.models import fit_mixed

    w, _ = cohort
    fast = fit_mixed(w, outcome="odi", **KW)
    ref = fit_effects(w, outcome="odi", **KW)  # statsmodels, checked above at 1e-12
    assert fast.engine == {"odi": "reml"}
    assert (fast.table["df_method"] == "wald_z").all()
    np.testing.assert_allclose(fast.table["estimate"], ref.table["estimate"], rtol=1e-4)
    np.testing.assert_allclose(fast.table["std_error"], ref.table["std_error"], rtol=1e-2)


def test_engine_falls_back_to_statsmodels_outside_its_shape(cohort):
    from cxlab.models import fit_mixed

    w, _ = cohort
    visits = fit_mixed(
        w.assign(visit=w["session"].astype(int)),
        **{**KW, "time": "visit"},
        outcome="odi",
        time_as="categorical",
    )
    assert visits.engine == {"odi": "statsmodels"}
    # no slope dispersion (seed 5 puts the REML slope variance on 0): random intercept, said so
    rng = np.random.default_rng(5)
    n, k = 45, 4
    sub = np.repeat(np.arange(n), k)
    week = np.tile(np.arange(k) * 4.0, n)
    arm = np.array(["control", "a", "b"])[np.arange(n) % 3][sub]
    y = 5 + rng.normal(0, 1, n)[sub] - 0.1 * week * (arm == "a") + rng.normal(0, 0.5, n * k)
    df = pd.DataFrame({"label": sub.astype(str), "week": week, "arm": arm, "y": y})
    fit = fit_mixed(df, outcome="y", **KW)
    assert fit.engine["y"] == "statsmodels"
    assert np.asarray(fit.results_["y"].cov_re).shape == (1, 1)
    assert (
        fit.table["warnings"].str.contains("on the boundary (fast REML engine)", regex=False).all()
    )
    assert fit.table["warnings"].str.contains("fell back to a random intercept").all()
    # the fallback is statsmodels' random-intercept model (lme4 would call the slope fit
    # singular too: its relative Cholesky factor ends at 2e-6, below isSingular's 1e-4)
    d = df.sort_values(["label", "week"], kind="stable").reset_index(drop=True)
    ref = _fit_sm_mixed(d.assign(week=d["week"] / 12.0), f"y ~ week * {ARM}", re=None)
    np.testing.assert_allclose(
        fit.table["estimate"], ref.params[[f"week:{ARM}[T.a]", f"week:{ARM}[T.b]"]] / 12, rtol=1e-10
    )
    # a rank-deficient fixed-effects design is outside the engine's shape
    dup = w.assign(age2=lambda d: d["week"] * 2.0 + 1.0, age1=lambda d: d["week"] + 0.5)
    try:
        rd = fit_mixed(dup, outcome="odi", covariates=["age1", "age2"], **KW)
    except ConfigError:
        pass  # statsmodels may refuse it outright; the engine must not have fitted it
    else:
        assert rd.engine["odi"] == "statsmodels"
        assert rd.table["warnings"].str.contains("rank deficient").all()


def test_the_three_fitters_give_the_dispatcher_numbers(cohort):
    from cxlab.models import AipwFit, GeeFit, MixedFit, fit_aipw, fit_gee, fit_mixed

    w, _ = cohort
    m = fit_mixed(w, outcome="odi", engine="statsmodels", **KW)
    g = fit_gee(w, outcome="odi", **KW)
    assert isinstance(m, MixedFit) and isinstance(g, GeeFit)
    pd.testing.assert_frame_equal(m.table, fit_effects(w, outcome="odi", **KW).table)
    pd.testing.assert_frame_equal(g.table, fit_effects(w, outcome="odi", method="gee", **KW).table)
    w2 = w.assign(visit=w["session"].astype(int))
    a = fit_aipw(w2, outcome="odi", **{**KW, "time": "visit"})
    assert isinstance(a, AipwFit) and set(a.diagnostics["outcome"]) == {"odi"}
    old = fit_effects(w2, outcome="odi", method="aipw", **{**KW, "time": "visit"})
    pd.testing.assert_frame_equal(a.table, old.table)
    assert old.diagnostics.equals(a.diagnostics)
    with pytest.raises(AttributeError):  # frozen: a result is not edited after the fit
        m.methods = ""
    with pytest.raises(ConfigError, match="overlap_bound: is not an option"):
        fit_effects(w, outcome="odi", overlap_bound=(0.1, 0.9), **KW)


def test_one_outcome_failure_is_a_typed_error_naming_the_outcome(cohort):
    import pickle

    from cxlab.models import OutcomeNotFitted, fit_gee, fit_mixed

    w, _ = cohort
    sparse = w.assign(odi=w["odi"].where(w["arm"] != "hip_strengthening"))
    for fitter in (fit_mixed, fit_gee):
        with pytest.raises(OutcomeNotFitted) as e:
            fitter(sparse, outcome=["pain_nrs", "odi"], **KW)
        assert e.value.outcome == "odi"
        assert e.value.reason.startswith("arm 'hip_strengthening' has 0 subject(s)")
        back = pickle.loads(pickle.dumps(e.value))
        assert (back.outcome, str(back)) == ("odi", str(e.value))
    with pytest.raises(OutcomeNotFitted) as e:
        fit_mixed(w.assign(flat=2.0), outcome=["odi", "flat"], **KW)
    assert e.value.outcome == "flat" and "same value in every observed row" in e.value.reason


@pytest.mark.parametrize("n_small", [2, 3])
def test_three_subjects_per_arm_is_the_one_minimum_everywhere(cohort, n_small):
    # the documented rule: each arm needs 3 subjects, in the design check, per outcome,
    # in AIPW and in the power simulation
    from cxlab.models import OutcomeNotFitted, fit_aipw, fit_mixed
    from cxlab.models.power import PowerPlan, simulate_power

    w, _ = cohort
    hip = w.loc[w["arm"] == "hip_strengthening", "label"].unique()
    few = w[(w["arm"] != "hip_strengthening") | w["label"].isin(hip[:n_small])]
    thin = w.assign(odi=w["odi"].where(~w["label"].isin(hip[n_small:])))
    plan = PowerPlan(
        slopes={"control": 0.0, "a": 0.1},
        intercept=0.0,
        cov_re=np.eye(2) * 0.01,
        sigma2=1.0,
        times=[0, 1, 2],
    )
    if n_small < 3:
        with pytest.raises(ConfigError, match="arm 'hip_strengthening' has 2 subject"):
            fit_mixed(few, outcome="odi", **KW)
        with pytest.raises(OutcomeNotFitted, match="has 2 subject"):
            fit_mixed(thin, outcome="odi", **KW)
        with pytest.raises(OutcomeNotFitted, match="at least 3 each"):
            fit_aipw(
                thin.assign(visit=thin["session"].astype(int)),
                outcome="odi",
                **{**KW, "time": "visit"},
                min_ess=0.0,
                max_outside=1.0,
            )
        with pytest.raises(Exception, match="at least 3 participants per arm"):
            simulate_power(plan, n_per_arm=2, n_sims=1)
    else:
        assert len(fit_mixed(few, outcome="odi", **KW).table) == 3
        assert len(fit_mixed(thin, outcome="odi", **KW).table) == 3
        assert len(simulate_power(plan, n_per_arm=3, n_sims=2)) == 1
