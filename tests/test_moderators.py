"""Moderators (categorical and baseline severity) against R lme4 + lmerTest + emmeans.

The references in tests/fixtures/lmm/ (``sex_trends.csv``, ``sex_interaction.csv``,
``severity_trends.csv``, ``moderator_coefs.csv``) are R's ``emtrends`` per moderator level,
``trt.vs.ctrl`` contrasts and their interaction contrast, with Satterthwaite df and
unadjusted intervals (section 6 of ``fit.R``, data from ``make_data.py``). R is not needed
to run these tests. Individual responses (Hopkins 2015) are checked by hand.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab import ConfigError
from cxlab.models.moderators import fit_moderation

FIX = Path(__file__).parent / "fixtures" / "lmm"
KW = dict(outcome="y", time="week", arm="arm", subject="subject", control="control")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(FIX / "lmm_data.csv")


def _fit(data, moderator, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_moderation(data, moderator=moderator, **KW, **kw)


def _same(row, ref):
    assert row.estimate == pytest.approx(ref["estimate"], rel=1e-4, abs=1e-6)
    assert row.std_error == pytest.approx(ref["SE"], rel=1e-4)
    assert row.df == pytest.approx(ref["df"], rel=1e-3)
    assert row.ci_low == pytest.approx(ref["lower.CL"], rel=1e-3, abs=1e-5)
    assert row.ci_high == pytest.approx(ref["upper.CL"], rel=1e-3, abs=1e-5)


def test_slope_difference_per_sex_matches_emtrends(data):
    fit = _fit(data, "sex")
    t = fit.table[fit.table["estimand"] == "slope_diff"]
    ref = pd.read_csv(FIX / "sex_trends.csv")
    assert len(t) == len(ref) == 4
    for r in t.itertuples():
        row = ref[(ref["contrast"] == f"{r.arm} - control") & (ref["sex"] == r.level)].iloc[0]
        _same(r, row)
    assert (t["df_method"] == "satterthwaite").all()
    assert "random intercept" in t["warnings"].iloc[0]  # singular slope, as lme4 says


def test_sex_interaction_ci_matches_emmeans_interaction_contrast(data):
    fit = _fit(data, "sex")
    t = fit.table[fit.table["estimand"] == "interaction"]
    ref = pd.read_csv(FIX / "sex_interaction.csv")
    assert len(t) == 2 and set(t["reference"]) == {"F"} and set(t["level"]) == {"M"}
    for r in t.itertuples():
        _same(r, ref[ref["arm_trt.vs.ctrl"] == f"{r.arm} - control"].iloc[0])
        assert r.ci_high < 0  # both programmes work better in M in this seeded data


def test_baseline_severity_per_sd_matches_emtrends_and_lmertest(data):
    fit = _fit(data, "severity")
    first = data.groupby("subject")["severity"].first()
    assert fit.levels["mean"] == pytest.approx(first.mean())
    assert fit.levels["mean+1sd"] - fit.levels["mean"] == pytest.approx(first.std(ddof=1))
    ref = pd.read_csv(FIX / "severity_trends.csv")
    codes = {"mean-1sd": -1, "mean": 0, "mean+1sd": 1}
    t = fit.table[fit.table["estimand"] == "slope_diff"]
    assert len(t) == 6
    for r in t.itertuples():
        sub = ref[ref["contrast"] == f"{r.arm} - control"]
        row = sub.iloc[int(np.argsort(sub["severity_c"].to_numpy())[codes[r.level] + 1])]
        _same(r, row)
    coefs = pd.read_csv(FIX / "moderator_coefs.csv").set_index("term")
    for r in fit.table[fit.table["estimand"] == "interaction"].itertuples():
        c = coefs.loc[f"week:arm{r.arm}:severity_c"]
        assert r.estimate == pytest.approx(c["Estimate"], rel=1e-4)
        assert r.df == pytest.approx(c["df"], rel=1e-3)


def test_reference_level_is_chosen_and_checked(data):
    fit = _fit(data, "sex", reference="M")
    inter = fit.table[fit.table["estimand"] == "interaction"]
    ref = pd.read_csv(FIX / "sex_interaction.csv")
    for r in inter.itertuples():  # F vs M is minus M vs F
        row = ref[ref["arm_trt.vs.ctrl"] == f"{r.arm} - control"].iloc[0]
        assert r.estimate == pytest.approx(-row["estimate"], rel=1e-4)
    with pytest.raises(ConfigError, match=r"reference.*'X'.*use one of F, M"):
        _fit(data, "sex", reference="X")


def test_moderator_that_varies_within_subject_is_rejected(data):
    d = data.assign(sex=np.where(data["week"] > 0, "F", data["sex"]))
    with pytest.raises(ConfigError, match="changes within a subject"):
        _fit(d, "sex")


def test_level_too_rare_in_an_arm_names_arm_and_level(data):
    d = data.copy()
    d.loc[(d["arm"] == "hip") & (d["sex"] == "M"), "sex"] = "F"
    d.loc[d["subject"] == d.loc[d["arm"] == "hip", "subject"].iloc[0], "sex"] = "M"
    with pytest.raises(ConfigError, match=r"arm 'hip' has 1 subject.*sex='M'"):
        _fit(d, "sex")


SPORT = Path(__file__).parent / "fixtures" / "moderators"  # sport.R, make_data.py


def test_three_level_moderator_matches_emtrends_and_interaction_contrasts():
    d = pd.read_csv(SPORT / "sport_data.csv")
    fit = _fit(d, "sport")
    t = fit.table.set_index(["estimand", "level"])
    for ref in pd.read_csv(SPORT / "sport_trends.csv").to_dict("records"):
        _same(t.loc[("slope_diff", ref["sport"])], ref)
    for ref in pd.read_csv(SPORT / "sport_interaction.csv").to_dict("records"):
        level, base = ref["sport_trt.vs.ctrl"].split(" - ")
        row = t.loc[("interaction", level)]
        assert row["reference"] == base == "football"
        _same(row, ref)
    assert (fit.table["df_method"] == "satterthwaite").all()
    assert fit.table["warnings"].eq("").all()  # the random slope is kept, as in lme4


def test_kenward_roger_df_and_se_match_pbkrtest_through_emmeans():
    d = pd.read_csv(SPORT / "sport_data.csv")
    fit = _fit(d, "sport", df_method="kenward-roger")
    t = fit.table.set_index(["estimand", "level"])
    for ref in pd.read_csv(SPORT / "sport_trends_kr.csv").to_dict("records"):
        row = t.loc[("slope_diff", ref["sport"])]
        _same(row, ref)
        assert row["df"] == pytest.approx(ref["df"], rel=1e-5)
        assert row["df_method"] == "kenward-roger"
    with pytest.raises(ConfigError, match="df_method"):
        _fit(d, "sport", df_method="containment")


def test_moderator_with_a_single_level_is_refused(data):
    with pytest.raises(ConfigError, match=r"sex: is constant.*drop it from the covariates/mod"):
        _fit(data.assign(sex="F"), "sex")


def test_minimum_subjects_per_level_is_enforced_with_arm_and_level():
    d = pd.read_csv(SPORT / "sport_data.csv")
    with pytest.raises(ConfigError, match=r"arm 'control' has 6 subject\(s\) with sport="):
        _fit(d, "sport", min_subjects=7)


def test_missing_moderator_column_lists_columns(data):
    with pytest.raises(ConfigError, match=r"moderator.*'sport'.*columns present"):
        _fit(data, "sport")


# -- in a run: the spec's [model] moderators, a simulation with known moderation --------
SPEC = """
name = "mod"
seed = 3
store = "store"

[model]
control = "control"
moderators = ["baseline"]

[outcomes.knee_fppa_peak_deg]
mcid = 3.0
"""


@pytest.fixture(scope="module")
def mod_run(tmp_path_factory):

    from cxlab.experiments import run_experiment
    from truth_store import truth_store

    root = tmp_path_factory.mktemp("mod")
    _store, truth = truth_store(root / "store", 48, 4, seed=21)
    (root / "mod.toml").write_text(SPEC, encoding="utf-8")
    return run_experiment(root / "mod.toml", out=root / "runs"), truth


def test_run_recovers_the_simulated_moderation_by_baseline_valgus(mod_run):
    run, truth = mod_run
    m = pd.read_parquet(run / "moderation.parquet")
    inter = m[m["estimand"] == "interaction"].set_index("arm")
    known = truth.moderators["knee_fppa_peak_deg"]
    for arm, k in known.items():  # slope_i = (c + e_arm) (d0 - 1) / (E[d0] - 1): per deg
        r = inter.loc[arm]
        assert r["ci_low"] <= k["per_unit"] <= r["ci_high"], (arm, r.to_dict(), k)
    hip = inter.loc["hip_strengthening"]
    assert hip["ci_high"] < 0  # the stronger the baseline valgus, the more hip training helps
    lv = m[(m["arm"] == "hip_strengthening") & (m["estimand"] == "slope_diff")]
    assert list(lv["level"]) == ["mean-1sd", "mean", "mean+1sd"]
    assert np.all(np.diff(lv["estimate"].to_numpy()) < 0)
    assert (m["unit"] == "deg").all() and (m["moderator_unit"] == "deg").all()


def test_report_shows_the_moderator_plot_and_hopkins_statement(mod_run):
    run, _ = mod_run
    html = (run / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="moderators">') :]
    section = section[: section.index("</section>")]
    assert "<svg" in section and "interaction" in section
    assert "Hopkins 2015" in section
    assert (run / "figures" / "moderator-knee_fppa_peak_deg-baseline.svg").exists()


def test_spec_moderator_names_are_checked_with_did_you_mean(tmp_path):
    from cxlab.experiments import read_spec

    bad = SPEC.replace('["baseline"]', '["baseline", "basline_x", "shoe_size"]')
    (tmp_path / "s.toml").write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        read_spec(tmp_path / "s.toml")
    text = str(e.value)
    assert "2 problem(s)" in text and "did you mean 'baseline'?" in text
    assert "'shoe_size'" in text and "use any of baseline, age_years, adherence, sex, sport" in text


# -- categorical moderators from the participants sheet, in a run ----------------------
@pytest.fixture(scope="module")
def sex_run(tmp_path_factory):
    from cxlab.experiments import run_experiment
    from cxlab.ingest import ingest_participants
    from truth_store import truth_store

    root = tmp_path_factory.mktemp("modsex")
    store, truth = truth_store(root / "store", 48, 4, seed=21)
    sheet = truth.subjects[["label", "sex", "height_m", "body_mass_kg"]].rename(
        columns={"label": "participant", "body_mass_kg": "mass_kg"}
    )
    sheet.to_csv(root / "participants.csv", index=False)
    assert ingest_participants([root / "participants.csv"], store=store).n_rejected == 0
    (root / "sex.toml").write_text(SPEC.replace('["baseline"]', '["sex"]'), encoding="utf-8")
    return run_experiment(root / "sex.toml", out=root / "runs"), truth


def test_run_takes_sex_levels_from_the_participants_table(sex_run):
    run, truth = sex_run
    m = pd.read_parquet(run / "moderation.parquet")
    assert set(m["moderator"]) == {"sex"} and set(m["kind"]) == {"categorical"}
    lv = m[m["estimand"] == "slope_diff"]
    assert set(lv["level"]) == {"female", "male"}
    n = truth.subjects.groupby(["arm", "sex"]).size()
    for r in lv.itertuples():  # subjects analysed at the level: that arm's and control's
        assert r.n_subjects <= n[(r.arm, r.level)] + n[("control", r.level)]
    inter = m[m["estimand"] == "interaction"]
    assert set(inter["reference"]) == {"female"} and len(inter) == 3
    # the simulation has no moderation by sex: every interaction interval covers 0
    assert ((inter["ci_low"] < 0) & (inter["ci_high"] > 0)).all(), inter


def test_report_plots_each_sex_level_with_its_interval(sex_run):
    run, _ = sex_run
    html = (run / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="moderators">') :]
    section = section[: section.index("</section>")]
    assert "<svg" in section and "female" in section and "male" in section
    assert (run / "figures" / "moderator-knee_fppa_peak_deg-sex.svg").exists()


def test_sex_moderator_without_a_participants_table_is_a_warning_naming_the_command(tmp_path):
    from cxlab.experiments import run_experiment
    from truth_store import truth_store

    truth_store(tmp_path / "store", 24, 3, seed=5)
    (tmp_path / "s.toml").write_text(SPEC.replace('["baseline"]', '["sex"]'), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_experiment(tmp_path / "s.toml", out=tmp_path / "runs")
    found = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["warnings"]
    assert any("sex" in w and "cxlab ingest-participants" in w for w in found), found
    assert (
        not (run / "moderation.parquet").exists()
        or pd.read_parquet(run / "moderation.parquet").empty
    )
