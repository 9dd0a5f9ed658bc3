"""Experiments: spec validation, the SQL analysis table, hashed and reproducible run directories."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab._check import ConfigError
from cxlab.experiments import analysis_table, read_spec, run_experiment
from cxlab.experiments.analysis import asymmetry_table, redact
from truth_store import truth_store

SPEC = """
name = "trial"
title = "Test cohort"
seed = 11
store = "store"

[model]
control = "control"
covariates = ["age_years"]

[outcomes.pain_nrs]
mcid = 2.0

[outcomes."knee_fppa_peak_deg@left"]
mcid = 3.0

[outcomes.knee_fppa_peak_deg]
mcid = 3.0

[outcomes.landing_peak_force_lsi_pct]
mcid = 5.0
better = "higher"
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    store, truth = truth_store(root / "store", 24, 3, seed=5)
    spec = _write(root / "trial.toml", SPEC)
    run = run_experiment(spec, out=root / "runs")
    return {"root": root, "store": store, "truth": truth, "spec": spec, "run": run}


# -- spec ---------------------------------------------------------------------------------
def test_spec_reports_every_bad_key_at_once_with_fixes(tmp_path):
    bad = _write(
        tmp_path / "bad.toml",
        """
name = "x y"
seed = -1
store = "s"
titel = "typo"
[model]
control = "control"
method = "bayes"
covariates = ["agee"]
[outcomes.pain_nrs]
mcid = -2
beter = "lower"
""",
    )
    with pytest.raises(ConfigError) as e:
        read_spec(bad)
    text = str(e.value)
    assert text.startswith("bad.toml: 7 problem(s)")
    for part in [
        "name: is not a valid run name (got 'x y')",
        "seed: is out of range (got -1)",
        "titel: is not a known key; did you mean 'title'?",
        "model.method: is not a valid method (got 'bayes'); use one of mixed, gee",
        "model.covariates: is not an available covariate (got 'agee'); did you mean 'age_years'?",
        'outcomes.pain_nrs.mcid: must be positive or "swc" (got -2)',
        "outcomes.pain_nrs.beter: is not a known key; did you mean 'better'?",
    ]:
        assert part in text, part


def test_spec_requires_name_seed_control_and_outcomes(tmp_path):
    with pytest.raises(ConfigError) as e:
        read_spec(_write(tmp_path / "empty.toml", 'store = "s"\n'))
    for key in (
        "name: is required",
        "seed: is required",
        "model.control: is required",
        "outcomes: is required",
    ):
        assert key in str(e.value)


def test_spec_store_is_relative_to_the_spec_file_and_can_be_overridden(tmp_path):
    sub = tmp_path / "experiments"
    sub.mkdir()
    spec = _write(sub / "s.toml", SPEC.replace('store = "store"', 'store = "../data/st"'))
    assert read_spec(spec).store == sub / "../data/st"
    assert read_spec(spec, store="elsewhere").store == Path("elsewhere")


def test_spec_side_suffix_and_source_are_resolved(tmp_path):
    spec = read_spec(_write(tmp_path / "s.toml", SPEC))
    o = {x.name: x for x in spec.outcomes}
    assert (o["pain_nrs"].source, o["pain_nrs"].side) == ("scores", None)
    left = o["knee_fppa_peak_deg@left"]
    assert (left.source, left.feature, left.side) == ("features", "knee_fppa_peak_deg", "left")
    assert left.label == "knee fppa peak deg (left)"


def test_invalid_toml_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"broken.toml: is not valid TOML"):
        read_spec(_write(tmp_path / "broken.toml", "name = \n"))


# -- analysis table -----------------------------------------------------------------------
def _truth_obs(truth, outcome):
    from cxlab.pseudo import pseudonymise

    o = truth.outcomes[(truth.outcomes["outcome"] == outcome) & truth.outcomes["observed"]]
    o = o.assign(subject_id=o["label"].map(pseudonymise))
    return o.set_index(["subject_id", "session"])


def test_analysis_values_equal_the_simulated_observations(cohort):
    spec = read_spec(cohort["spec"])
    a = analysis_table(cohort["store"], spec).set_index(["subject_id", "session"])
    truth = cohort["truth"]
    subj = truth.subjects.assign(
        subject_id=lambda d: d["label"].map(__import__("cxlab.pseudo", fromlist=["x"]).pseudonymise)
    ).set_index("subject_id")
    for name, feature in [
        ("pain_nrs", "pain_nrs"),
        ("knee_fppa_peak_deg", "knee_fppa_peak_deg"),
        ("landing_peak_force_lsi_pct", "landing_peak_force_lsi_pct"),
    ]:
        got = a[a["outcome"] == name]["value"]
        want = _truth_obs(truth, feature)["observed_value"].reindex(got.index)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    # a side suffix takes that side only: observed - offset / 2 on the left
    left = a[a["outcome"] == "knee_fppa_peak_deg@left"]["value"]
    obs = _truth_obs(truth, "knee_fppa_peak_deg")["observed_value"].reindex(left.index)
    off = subj.loc[left.index.get_level_values(0), "valgus_side_offset_deg"].to_numpy()
    np.testing.assert_allclose(left, obs - off / 2, atol=1e-9)


def test_week_is_days_since_programme_start_over_seven(cohort):
    a = analysis_table(cohort["store"], read_spec(cohort["spec"]))
    p = a[a["outcome"] == "pain_nrs"].set_index(["subject_id", "session"])
    want = _truth_obs(cohort["truth"], "pain_nrs")["week"].reindex(p.index)
    np.testing.assert_allclose(p["week"], want, atol=1e-12)
    first = p.groupby("subject_id")["session_index"].min()
    assert (first == 0).all()


def test_where_filter_restricts_rows_and_bad_filter_names_the_key(cohort, tmp_path):
    where = "where = \"arm <> 'core_stability'\""
    spec = _write(
        tmp_path / "f.toml",
        SPEC.replace('store = "store"', f'store = "{cohort["store"].path}"\n{where}'),
    )
    a = analysis_table(cohort["store"], read_spec(spec))
    assert len(a) and "core_stability" not in set(a["arm"])
    spec = _write(
        tmp_path / "g.toml",
        SPEC.replace(
            'store = "store"', f'store = "{cohort["store"].path}"\nwhere = "no_such_column > 1"'
        ),
    )
    with pytest.raises(ConfigError, match=r"g.toml: where: is not a valid filter"):
        analysis_table(cohort["store"], read_spec(spec))


def test_asymmetry_uses_stored_index_and_skips_its_per_side_twin(cohort):
    a = analysis_table(cohort["store"], read_spec(cohort["spec"]))
    keep = a[["subject_id", "session", "session_index"]].drop_duplicates()
    asym = asymmetry_table(cohort["store"], keep)
    # stored landing_peak_force_asym_pct; landing_peak_force_n (its per-side twin) and the
    # angle (deg) are not recomputed
    assert set(asym["measure"]) == {"landing_peak_force"}
    # Robinson et al. 1987 per trial from the per-side forces, then the mean over trials
    f = cohort["store"].table("features", filters=[("feature", "==", "landing_peak_force_n")])
    w = f.pivot(index=["subject_id", "session", "trial"], columns="side", values="value")
    robinson = 100 * (w["right"] - w["left"]) / (0.5 * (w["right"] + w["left"]))
    robinson = robinson.groupby(level=["subject_id", "session"]).mean()
    got = asym.merge(keep, on=["subject_id", "session_index"]).set_index(["subject_id", "session"])[
        "asym_pct"
    ]
    np.testing.assert_allclose(got, robinson.reindex(got.index), rtol=1e-9)


def test_redact_removes_labels_and_pseudonyms():
    text = "sub-CX001_ses-1.c3d: subject 'CX001' (0123456789ab) has no date"
    assert redact(text, "CX001") == "sub-…_ses-1.c3d: subject '…' (…) has no date"


# -- runs ---------------------------------------------------------------------------------
def test_run_directory_holds_tables_manifest_and_report(cohort):
    run = cohort["run"]
    assert run.parent.name == "trial" and len(run.name) == 12
    for f in [
        "manifest.json",
        "effects.parquet",
        "responders.parquet",
        "reliability.parquet",
        "analysis.parquet",
        "report.html",
        "run.log",
        "figures/forest.svg",
    ]:
        assert (run / f).is_file(), f
    assert not list(run.parent.glob(".tmp-*"))


def test_manifest_records_input_digests_versions_and_seed(cohort):
    man = json.loads((cohort["run"] / "manifest.json").read_text())
    store = cohort["store"]
    for table in ("scores", "features", "interventions", "quarantine"):
        parts = man["inputs"][table]
        assert [p["part"] for p in parts] == [
            f.relative_to(store.path).as_posix() for f in store.files(table)
        ]
        for p in parts:
            assert p["sha256"] == hashlib.sha256((store.path / p["part"]).read_bytes()).hexdigest()
    assert man["seed"] == 11 and man["spec"]["seed"] == 11
    assert set(man["cxlab"]) >= {"version", "commit", "dirty"}
    assert man["packages"]["statsmodels"] and man["python"].count(".") == 2
    eff = cohort["run"] / "effects.parquet"
    assert man["outputs"]["effects.parquet"] == hashlib.sha256(eff.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def second_run(cohort, tmp_path_factory):
    """A second run of the module's spec (the fixture's run is the first), through ``cxlab
    run``: (its run directory, what the command printed). One run serves both the
    byte-identity test and the CLI test, which each ran the same spec again before.

    The git state is the first run's, read back from its manifest: colleagues editing src/
    between the two runs would flip the manifest's "dirty" flag, which is right for the
    manifest but not what the byte-identity test checks."""
    from typer.testing import CliRunner

    import cxlab.experiments.run as run_mod
    from cxlab.cli import app

    one = Path(cohort["run"])
    recorded = json.loads((one / "manifest.json").read_text(encoding="utf-8"))["cxlab"]
    git = {k: v for k, v in recorded.items() if k != "version"}
    out = tmp_path_factory.mktemp("second") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_mod, "_git_info", lambda: dict(git))
        res = CliRunner().invoke(app, ["run", str(cohort["spec"]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out / "trial" / one.name, res.output


def test_run_twice_gives_byte_identical_outputs(cohort, second_run):
    """The second run (``cxlab run``, fixture ``second_run``) writes the same run directory
    name and the same bytes in every file but the log."""
    one, two = Path(cohort["run"]), second_run[0]
    assert two.is_dir(), sorted(two.parent.iterdir())
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert len(files) > 10
    for f in files:
        if f.name != "run.log":
            assert (one / f).read_bytes() == (two / f).read_bytes(), f


def test_run_hash_follows_input_content(cohort, tmp_path):
    st = tmp_path / "store"
    shutil.copytree(cohort["store"].path, st)
    spec = _write(tmp_path / "trial.toml", SPEC)
    scores = pd.read_parquet(next((st / "scores").glob("*.parquet")))
    scores.loc[0, "score"] = scores.loc[0, "score"] + 1
    from cxlab.store import Store

    Store(st).write("scores", scores)
    changed = run_experiment(spec, out=tmp_path / "runs")
    assert changed.name != cohort["run"].name


def test_run_hash_and_manifest_cover_the_strength_table_the_screening_reads(cohort, tmp_path):
    # screening.parquet is built from the strength table too: new strength data must give a
    # new run id and be listed with its digest among the manifest's inputs
    st = tmp_path / "store"
    shutil.copytree(cohort["store"].path, st)
    spec = _write(tmp_path / "trial.toml", SPEC)
    subs = pd.read_parquet(cohort["run"] / "analysis.parquet")["subject_id"].unique()[:3]
    from cxlab.store import Store

    Store(st).write(
        "strength",
        pd.DataFrame(
            [
                {
                    "subject_id": s,
                    "session": "1",
                    "muscle_group": g,
                    "side": side,
                    "peak_torque_nm": t,
                }
                for s in subs
                for g, t in (("knee_flexors", 60.0), ("knee_extensors", 150.0))
                for side in ("left", "right")
            ]
        ),
    )
    changed = run_experiment(spec, out=tmp_path / "runs")
    assert changed.name != cohort["run"].name
    man = json.loads((changed / "manifest.json").read_text())
    assert [p["part"] for p in man["inputs"]["strength"]] == [
        f.relative_to(st).as_posix() for f in Store(st).files("strength")
    ]


def test_effects_recover_the_simulated_hip_effect_on_knee_valgus(cohort):
    e = pd.read_parquet(cohort["run"] / "effects.parquet")
    e = e[e["estimand"] == "slope_diff"].set_index(["outcome", "arm"])
    truth = cohort["truth"].effects["knee_fppa_peak_deg"]["hip_strengthening"]
    row = e.loc[("knee_fppa_peak_deg", "hip_strengthening")]
    assert row["ci_low"] <= truth <= row["ci_high"]
    assert row["ci_high"] < 0  # detected: valgus fell faster than in control
    assert set(e.index.get_level_values("arm")) == {
        "hip_strengthening",
        "core_stability",
        "thoracic_mobility",
    }
    assert (e["mcid"].loc["pain_nrs"] == 2.0).all()


def test_reliability_is_assessed_for_feature_outcomes_with_repeated_trials(cohort):
    r = pd.read_parquet(cohort["run"] / "reliability.parquet")
    assert set(r["outcome"]) == {
        "knee_fppa_peak_deg@left",
        "knee_fppa_peak_deg",
        "landing_peak_force_lsi_pct",
    }
    assert (r["n_raters"] == 3).all() and (r["n_targets"] == 24).all()
    assert set(r["type"]) == {"ICC(2,1)", "ICC(3,1)"}
    # the fixture's trials differ from their session mean by the same -/0/+ offsets for
    # every subject: a pure trial effect, which ICC(3,1) (consistency) removes to give 1.
    # Such rows are flagged and left out of the MDCs; ICC(2,1) counts the offsets as error
    three = r["type"] == "ICC(3,1)"
    assert (r.loc[three, "icc"] > 0.999).all()
    assert r.loc[three, "flag"].str.contains("repeat trials nearly identical").all()
    assert (r.loc[~three, "icc"] < 0.999).all() and (r.loc[~three, "flag"] == "").all()


def test_missing_store_and_empty_selection_are_config_errors(tmp_path, cohort):
    spec = _write(tmp_path / "s.toml", SPEC.replace('"store"', '"nowhere"'))
    with pytest.raises(ConfigError, match=r"s.toml: store: does not exist"):
        run_experiment(spec, out=tmp_path / "runs")
    spec = _write(
        tmp_path / "w.toml",
        SPEC.replace(
            'store = "store"', f'store = "{cohort["store"].path}"\nwhere = "arm = \'nobody\'"'
        ),
    )
    with pytest.raises(ConfigError, match=r"w.toml: where: selects no rows"):
        run_experiment(spec, out=tmp_path / "runs")
    assert not list((tmp_path / "runs").rglob("manifest.json"))


def test_responder_rates_match_a_hand_count_and_statsmodels_wilson(cohort):
    from statsmodels.stats.proportion import proportion_confint

    r = pd.read_parquet(cohort["run"] / "responders.parquet")
    a = pd.read_parquet(cohort["run"] / "analysis.parquet")
    p = a[a["outcome"] == "pain_nrs"].sort_values("session_index")
    first = p.groupby("subject_id").first()
    last = p.groupby("subject_id").last()
    ok = last["session_index"] > 0
    improved = (first["value"] - last["value"])[ok] >= 2.0  # lower is better, MCID 2
    by_arm = improved.groupby(first.loc[ok, "arm"]).agg(["size", "sum"])
    got = r[(r["outcome"] == "pain_nrs") & (r["criterion"] == "mcid")].set_index("arm")
    assert got["n"].to_dict() == by_arm["size"].to_dict()
    assert got["n_responders"].to_dict() == by_arm["sum"].astype(int).to_dict()
    lo, hi = proportion_confint(by_arm["sum"], by_arm["size"], alpha=0.05, method="wilson")
    np.testing.assert_allclose(got["ci_low"], lo, atol=1e-12)
    np.testing.assert_allclose(got["ci_high"], hi, atol=1e-12)


# -- CLI ----------------------------------------------------------------------------------
def test_run_and_report_commands(second_run, tmp_path):
    from typer.testing import CliRunner

    from cxlab.cli import app

    runner = CliRunner()
    run, output = second_run  # `cxlab run` of the module's spec into a new folder
    assert f"report: {run / 'report.html'}" in output
    shutil.copytree(run, tmp_path / "run")  # the report command rewrites the report
    again = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert again.exit_code == 0 and str(tmp_path / "run" / "report.html") in again.output
    bad = _write(tmp_path / "bad.toml", SPEC.replace("[model]", "[modle]"))
    out = runner.invoke(app, ["run", str(bad)])
    assert out.exit_code == 1 and "Traceback" not in out.output
    assert "modle: is not a known key; did you mean 'model'?" in out.output


def test_feature_responders_also_use_the_reliable_change_index(cohort):
    r = pd.read_parquet(cohort["run"] / "responders.parquet")
    rel = pd.read_parquet(cohort["run"] / "reliability.parquet")
    knee = r[r["outcome"] == "knee_fppa_peak_deg"]
    # SEM and MDC95 from the trial-to-trial ICC(2,1)
    assert set(knee["criterion"]) == {"mcid", "rci", "mcid_mdc"}
    assert set(r.loc[r["outcome"] == "pain_nrs", "criterion"]) <= {"mcid", "rci", "mcid_mdc"}
    assert (
        rel.loc[(rel["outcome"] == "knee_fppa_peak_deg") & (rel["type"] == "ICC(2,1)"), "sem"].iloc[
            0
        ]
        > 0
    )


def test_movement_rows_stay_when_their_survey_is_missing_and_the_undated_week_is_warned(
    cohort, tmp_path
):
    from cxlab.store import Store

    st = Store(tmp_path / "store")
    shutil.copytree(cohort["store"].path, st.path)
    scores = st.table("scores")
    first = scores.iloc[0]
    drop = (scores["subject_id"] == first["subject_id"]) & (scores["session"] == first["session"])
    st.write("scores", scores[~drop])
    run = run_experiment(_write(tmp_path / "trial.toml", SPEC), out=tmp_path / "runs")
    man = json.loads((run / "manifest.json").read_text())
    n = sum(1 for w in man["warnings"] if "have no date" in w and "1 of" in w)
    assert n == 3  # the three feature outcomes; pain_nrs simply has no row there
    a = pd.read_parquet(run / "analysis.parquet")
    kept = a[(a["subject_id"] == first["subject_id"]) & (a["session"] == first["session"])]
    assert len(kept) == 3 and kept["week"].isna().all() and kept["date"].isna().all()
    assert "have no date" in (run / "report.html").read_text()


def test_missing_store_error_says_what_the_path_is_relative_to(tmp_path, monkeypatch):
    # `--store nostore` is relative to the current directory, but the error said
    # "(relative to the spec file)"
    spec = _write(tmp_path / "s.toml", SPEC.replace('"store"', '"nowhere"'))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"s.toml: store: does not exist") as e:
        run_experiment(spec, out=tmp_path / "runs")
    assert "relative to the spec file" in str(e.value)
    with pytest.raises(ConfigError, match=r"--store: does not exist \(got 'nostore'\)") as e:
        run_experiment(spec, out=tmp_path / "runs", store="nostore")
    assert "relative to the current directory" in str(e.value)
    assert "spec file" not in str(e.value)


def test_rows_left_out_by_the_effect_model_reach_the_warnings(cohort):
    # rows with a missing time were dropped by the model without a word
    import warnings

    from cxlab._check import CxlabWarning
    from cxlab.experiments.fitting import effects_table

    a = pd.read_parquet(cohort["run"] / "analysis.parquet")
    spec = read_spec(cohort["spec"])
    first = a[["subject_id", "session"]].drop_duplicates().iloc[0]
    a.loc[(a["subject_id"] == first["subject_id"]) & (a["session"] == first["session"]), "week"] = (
        np.nan
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eff = effects_table(a, spec).table
    note = "week: 1 row(s) with a missing value left out"
    assert [
        str(w.message)
        for w in caught
        if issubclass(w.category, CxlabWarning) and "left out" in str(w.message)
    ] == [note]
    assert eff["warnings"].str.contains(note, regex=False).all()


def test_outcome_too_sparse_in_one_arm_is_left_out_not_the_whole_run(cohort):
    # one fit_effects call covered every outcome, so one sparse outcome aborted the run with
    # an error naming the internal column knee_fppa_peak_deg_at_left
    import warnings

    from statsmodels.stats.multitest import multipletests

    from cxlab._check import CxlabWarning
    from cxlab.experiments.fitting import effects_table

    a = pd.read_parquet(cohort["run"] / "analysis.parquet")
    spec = read_spec(cohort["spec"])
    name = "knee_fppa_peak_deg@left"
    hip = sorted(a.loc[a["arm"] == "hip_strengthening", "subject_id"].unique())
    a = a[~((a["outcome"] == name) & a["subject_id"].isin(hip[2:]))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eff, methods = effects_table(a, spec)[:2]
    msgs = [str(w.message) for w in caught if issubclass(w.category, CxlabWarning)]
    mine = [m for m in msgs if name in m]
    assert len(mine) == 1 and "knee_fppa_peak_deg_at_left" not in mine[0]
    assert mine[0].startswith(f"outcomes.{name}: not fitted: arm 'hip_strengthening' has 2")
    assert "drop the outcome from the spec" in mine[0]
    assert name not in set(eff["outcome"])
    assert set(eff["outcome"]) == {"pain_nrs", "knee_fppa_peak_deg", "landing_peak_force_lsi_pct"}
    assert len(eff) == 9
    holm = multipletests(eff["p_value"], method="holm")[1]
    np.testing.assert_allclose(eff["p_adj"], holm, rtol=1e-12)
    assert f"{name} could not be fitted" in methods and "fitted outcomes" in methods


@pytest.mark.parametrize(
    "where",
    [
        "1=1) SELECT 1; COPY (SELECT 1) TO '{out}/leak.csv'; SELECT (1",
        "arm IN (SELECT content FROM read_text('/etc/passwd'))",
        "arm IN (SELECT content FROM read_text('{out}/../secret.txt'))",
    ],
)
def test_where_filter_cannot_write_or_read_files(cohort, tmp_path, where):
    (tmp_path / "secret.txt").write_text("CX-Jane-Doe")
    out = tmp_path / "out"
    out.mkdir()
    text = where.format(out=out)
    spec = _write(
        tmp_path / "w.toml",
        SPEC.replace(
            'store = "store"', f"store = \"{cohort['store'].path}\"\nwhere = '''{text}'''"
        ),
    )
    with pytest.raises(Exception, match=r"statement|Permission|one SQL boolean") as e:
        analysis_table(cohort["store"], read_spec(spec))
    assert "CX-Jane-Doe" not in str(e.value) and list(out.iterdir()) == []


def test_participant_table_holds_each_change_against_the_larger_of_mcid_and_mdc(cohort):
    p = pd.read_parquet(cohort["run"] / "participants.parquet")
    a = pd.read_parquet(cohort["run"] / "analysis.parquet")
    rel = pd.read_parquet(cohort["run"] / "reliability.parquet")
    knee = p[p["outcome"] == "knee_fppa_peak_deg"].set_index("subject_id")
    d = a[a["outcome"] == "knee_fppa_peak_deg"].sort_values("session_index")
    g = d.groupby("subject_id")["value"]
    two = d.groupby("subject_id")["session_index"].nunique() >= 2
    assert set(knee.index) == set(two[two].index)
    np.testing.assert_allclose(knee["baseline_value"], g.first().loc[knee.index])
    np.testing.assert_allclose(knee["change"], (g.last() - g.first()).loc[knee.index])
    mdc = rel.loc[
        (rel["outcome"] == "knee_fppa_peak_deg") & (rel["type"] == "ICC(2,1)"), "mdc95"
    ].iloc[0]
    assert (knee["mdc95"] == mdc).all() and (knee["threshold"] == max(3.0, mdc)).all()
    assert knee["error_basis"].str.startswith("within-session").all()
    improvement = -knee["change"]  # lower is better
    np.testing.assert_allclose(knee["change_mcid"], improvement / 3.0)
    assert ((knee["verdict"] == "responder") == (improvement >= max(3.0, mdc))).all()
    assert knee["arm"].notna().all() and knee["adherence"].between(0, 1.5).all()


def test_run_experiment_returns_a_run_with_its_effects_engines_and_warnings(cohort):
    from cxlab.experiments import Run

    run = cohort["run"]
    assert isinstance(run, Run) and run.path.is_dir()
    assert (run.run_id, run.experiment) == (run.path.name, "trial")
    assert os.fspath(run) == str(run.path) and (run / "report.html").is_file()
    written = pd.read_parquet(run.path / "effects.parquet")
    np.testing.assert_array_equal(run.effects["estimate"], written["estimate"])
    man = json.loads((run.path / "manifest.json").read_text(encoding="utf-8"))
    assert man["warnings"] == list(run.warnings)
    # every mixed-model outcome says which engine fitted it, in the run and the table
    assert set(run.engines) == set(written["outcome"]) and man["engines"] == run.engines
    assert set(run.engines.values()) <= {"reml", "statsmodels"}
    for o, e in run.engines.items():
        assert set(written.loc[written["outcome"] == o, "engine"]) == {e}
