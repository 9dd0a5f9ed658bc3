"""Curve outcomes of an experiment: spec validation, SPM in the run, tables, hash and report.

References: ``spm1d`` called directly on arrays built independently from the store's curves
(pandas pivots, not cxlab's pairing code); the truth store's injected landing effect
(``hip_strengthening`` loses 0.25 BW per session at 5–20 % of the phase; every other arm
is null); Šidák's formula worked by hand.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab._check import ConfigError
from cxlab.experiments import read_spec, run_experiment
from cxlab.experiments.curves import run_curve_test
from truth_store import CURVE_EFFECT_PCT, truth_store

BASE = """
name = "curvetrial"
seed = 11
store = "store"

[model]
control = "control"
time = "session_index"

[outcomes.knee_fppa_peak_deg]
mcid = 3.0
"""

CURVES = """
[curves.landing_force]
label = "landing <force> & impact"
signal = "fz_bw"
phase = "landing"
test = "two_sample"
arm = "hip_strengthening"
incomplete = "exclude"     # the truth store has dropouts

[curves.landing_force_control]
signal = "fz_bw"
phase = "landing"
test = "paired"
arm = "control"
incomplete = "exclude"
"""
REFUSE = CURVES.replace('incomplete = "exclude"     # the truth store has dropouts\n', "")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):

    root = tmp_path_factory.mktemp("curverun")
    store, truth = truth_store(root / "store", 24, 3, seed=5, curves=True)
    spec = _write(root / "trial.toml", BASE + CURVES)
    run = run_experiment(spec, out=root / "runs")
    return {"root": root, "store": store, "truth": truth, "spec": spec, "run": run}


# --- spec -------------------------------------------------------------------------------


def test_spec_reads_curve_outcomes_with_defaults(tmp_path):
    s = read_spec(_write(tmp_path / "s.toml", BASE + CURVES))
    assert [c.name for c in s.curves] == ["landing_force", "landing_force_control"]
    c = s.curves[0]
    assert (c.signal, c.phase, c.side, c.test, c.arm) == (
        "fz_bw",
        "landing",
        "bilateral",
        "two_sample",
        "hip_strengthening",
    )
    assert (c.alpha, c.two_tailed, c.inference, c.pre, c.post, c.incomplete) == (
        0.05,
        True,
        "parametric",
        0,
        None,
        "exclude",
    )
    assert read_spec(_write(tmp_path / "r.toml", BASE + REFUSE)).curves[0].incomplete == "refuse"
    assert s.curve_correction == "sidak"
    assert s.canonical()["curves"][1]["arm"] == "control"


def test_spec_without_curves_keeps_its_canonical_form(tmp_path):
    s = read_spec(_write(tmp_path / "s.toml", BASE))
    assert s.curves == ()
    assert "curves" not in s.canonical() and "curve_correction" not in s.canonical()


def test_spec_curve_problems_are_all_reported_with_did_you_mean(tmp_path):
    bad = (
        'curve_correction = "holm"\n'
        + BASE
        + """
[curves.knee]
signal = "knee_fppa"
phase = "landing"
test = "pairde"
arm = "control"
sied = "left"
alpha = 0.7
permutations = 5

[curves.slope]
signal = "fz_bw"
phase = "landing"
test = "regression"

[curves.Bad-Name]
signal = "x"
"""
    )
    with pytest.raises(ConfigError) as e:
        read_spec(_write(tmp_path / "s.toml", bad))
    text = str(e.value)
    assert "curves.knee.test" in text and "did you mean 'paired'?" in text
    assert "curves.knee.sied" in text and "did you mean 'side'?" in text
    assert "curves.knee.alpha" in text and "curves.knee.permutations" in text
    assert "curves.slope.covariate" in text and "is required" in text
    assert "curves.Bad-Name" in text
    assert "curve_correction" in text and "holm" in text


def test_spec_two_sample_needs_an_arm_and_a_control(tmp_path):
    no_arm = BASE + '\n[curves.c]\nsignal = "fz_bw"\nphase = "landing"\ntest = "two_sample"\n'
    with pytest.raises(ConfigError, match=r"curves\.c\.arm.*is required"):
        read_spec(_write(tmp_path / "a.toml", no_arm))
    pp = no_arm.replace('control = "control"', 'design = "prepost"')
    with pytest.raises(ConfigError, match=r"needs a control arm"):
        read_spec(_write(tmp_path / "b.toml", pp))


# --- the run ----------------------------------------------------------------------------


def _independent_curves(store, analysis_sessions: pd.DataFrame) -> dict:
    """Per subject × session_index mean curve (101,), from the raw store table by pandas."""
    c = store.table("curves")
    c = c[(c["phase"] == "landing") & (c["signal"] == "fz_bw") & (c["side"] == "bilateral")]
    c = c.merge(analysis_sessions, on=["subject_id", "session"])
    m = c.groupby(["subject_id", "session_index", "node"])["value"].mean().unstack("node")
    return {k: m.loc[k].to_numpy(float) for k in m.index}


def test_run_reproduces_spm1d_on_independently_built_arrays(cohort):
    import spm1d

    run = cohort["run"]
    spm = pd.read_parquet(run / "spm.parquet").set_index("outcome")
    cl = pd.read_parquet(run / "spm_clusters.parquet")
    zc = pd.read_parquet(run / "spm_curves.parquet")
    ana = pd.read_parquet(run / "analysis.parquet")
    sess = ana[["subject_id", "session", "session_index", "arm"]].drop_duplicates(
        ["subject_id", "session"]
    )
    curves = _independent_curves(cohort["store"], sess[["subject_id", "session", "session_index"]])
    arm = sess.drop_duplicates("subject_id").set_index("subject_id")["arm"]
    last = int(sess["session_index"].max())
    alpha = 1 - (1 - 0.05) ** (1 / 2)  # Šidák over the run's 2 curve tests, by hand

    def change(a):  # participants with both sessions (the dropouts are left out)
        subs = sorted(s for s in arm.index if arm[s] == a and (s, last) in curves)
        return np.array([curves[(s, last)] - curves[(s, 0)] for s in subs])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = spm1d.stats.ttest2(change("hip_strengthening"), change("control"), equal_var=False)
        ri = ref.inference(alpha, two_tailed=True, interp=True)
    row = spm.loc["landing_force"]
    assert row["alpha"] == pytest.approx(alpha, rel=1e-12)
    assert row["n_tests"] == 2 and row["correction"] == "sidak"
    assert row["threshold"] == pytest.approx(ri.zstar, rel=1e-10)
    z = zc[zc["outcome"] == "landing_force"].sort_values("node")["z"].to_numpy()
    np.testing.assert_allclose(z, ri.z, rtol=1e-10)
    mine = cl[cl["outcome"] == "landing_force"].sort_values("cluster")
    assert len(mine) == len(ri.clusters) == row["n_clusters"]
    for (_, c), r in zip(mine.iterrows(), ri.clusters, strict=True):
        s, e = r.endpoints
        assert c["start_pct"] == pytest.approx(s, abs=1e-9)  # 101 nodes: node = %
        assert c["end_pct"] == pytest.approx(e, abs=1e-9)
        assert c["p"] == pytest.approx(r.P, rel=1e-8)


def test_injected_landing_effect_is_found_in_its_window_and_nowhere_else(cohort):
    run = cohort["run"]
    cl = pd.read_parquet(run / "spm_clusters.parquet")
    eff = cl[cl["outcome"] == "landing_force"]
    lo, hi = CURVE_EFFECT_PCT
    assert len(eff) >= 1
    for c in eff.itertuples():  # the programme lowers the impact peak: change below control
        assert c.sign == -1 and lo - 3 <= c.start_pct and c.end_pct <= hi + 3, c
        assert c.p < 0.05
    # the control arm's curves do not change between sessions (null): no cluster
    assert cl[cl["outcome"] == "landing_force_control"].empty


def test_curve_tables_are_in_the_manifest_and_the_curves_in_the_run_hash(cohort, tmp_path):
    run = cohort["run"]
    man = json.loads((run / "manifest.json").read_text())
    for t in ("spm", "spm_clusters", "spm_curves", "curves"):
        assert f"{t}.parquet" in man["outputs"]
    assert man["inputs"]["curves"] and man["spec"]["curves"][0]["name"] == "landing_force"
    # changing one curve part changes the run id
    root = tmp_path / "copy"
    shutil.copytree(cohort["root"] / "store", root / "store")
    spec = _write(root / "trial.toml", BASE + CURVES)
    from cxlab.store import Store

    st = Store(root / "store")
    c = st.table("curves")
    c.loc[c.index[0], "value"] += 0.01
    st.write("curves", c)
    assert run_experiment(spec, out=root / "runs").name != run.name


def test_run_twice_gives_identical_curve_tables(cohort, tmp_path):
    again = run_experiment(cohort["spec"], out=tmp_path / "runs")
    assert again.name == cohort["run"].name
    for t in ("spm", "spm_clusters", "spm_curves", "curves"):
        a = hashlib.sha256((again / f"{t}.parquet").read_bytes()).hexdigest()
        b = hashlib.sha256((cohort["run"] / f"{t}.parquet").read_bytes()).hexdigest()
        assert a == b, t


def _drop_one(cohort, tmp_path):
    """A copy of the store with one hip participant's last-session curves removed."""
    from cxlab.store import Store

    root = tmp_path / "gap"
    shutil.copytree(cohort["root"] / "store", root / "store")
    st = Store(root / "store")
    ana = pd.read_parquet(cohort["run"] / "analysis.parquet")
    last = ana["session_index"].max()
    hip = ana[(ana["arm"] == "hip_strengthening") & (ana["session_index"] == last)]
    sid, ses = sorted(zip(hip["subject_id"], hip["session"], strict=True))[0]
    c = st.table("curves")
    st.write("curves", c[~((c["subject_id"] == sid) & (c["session"] == ses))])
    return root, st, sid, int(last)


def test_missing_participant_session_is_refused_naming_them(cohort, tmp_path):
    root, _, sid, last = _drop_one(cohort, tmp_path)
    spec = _write(root / "trial.toml", BASE + REFUSE)
    with pytest.raises(ConfigError) as e:
        run_experiment(spec, out=root / "runs")
    text = str(e.value)
    assert f"{sid} × session {last}" in text and "curves.landing_force" in text
    assert 'incomplete = "exclude"' in text
    assert not list((root / "runs").glob("*/*/manifest.json"))  # no half-written run


def test_exclude_policy_leaves_them_out_and_says_so(cohort, tmp_path):
    root, _, sid, last = _drop_one(cohort, tmp_path)
    run = run_experiment(_write(root / "trial.toml", BASE + CURVES), out=root / "runs")
    row = pd.read_parquet(run / "spm.parquet").set_index("outcome").loc["landing_force"]
    assert f"{sid} × session {last}" in row["note"]
    used = pd.read_parquet(run / "curves.parquet")
    assert sid not in set(used.loc[used["outcome"] == "landing_force", "subject_id"])
    man = json.loads((run / "manifest.json").read_text())
    assert any(sid in w and "curves.landing_force" in w for w in man["warnings"])


def test_unknown_curve_and_arm_are_config_errors_with_suggestions(cohort, tmp_path):
    from cxlab.experiments.analysis import analysis_table

    spec = read_spec(_write(tmp_path / "t.toml", BASE + CURVES), store=cohort["root"] / "store")
    ana = analysis_table(cohort["store"], spec)
    c = spec.curves[0]
    from dataclasses import replace

    with pytest.raises(ConfigError, match=r"has no curves in the store.*landing/fz_bw/bilateral"):
        run_curve_test(cohort["store"], ana, replace(c, signal="fz_bww"), control="control")
    with pytest.raises(ConfigError, match=r"did you mean 'hip_strengthening'"):
        run_curve_test(cohort["store"], ana, replace(c, arm="hip_strengthenin"), control="control")


def test_paired_anova_regression_and_permutation_agree_with_spm1d(cohort, tmp_path):
    import spm1d

    from cxlab.experiments.analysis import analysis_table

    spec = read_spec(_write(tmp_path / "t.toml", BASE + CURVES), store=cohort["root"] / "store")
    ana = analysis_table(cohort["store"], spec)
    sess = ana[["subject_id", "session", "session_index", "arm", "age_years"]].drop_duplicates(
        ["subject_id", "session"]
    )
    cur = _independent_curves(cohort["store"], sess[["subject_id", "session", "session_index"]])
    first = sess.drop_duplicates("subject_id").set_index("subject_id")

    def arm_with(arm, ks):  # participants of an arm with a curve in each session ks
        subs = first.index if arm is None else first.index[first["arm"] == arm]
        return sorted(x for x in subs if all((x, k) in cur for k in ks))

    from dataclasses import replace

    base = spec.curves[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # paired, session 1 vs 0
        t = run_curve_test(
            cohort["store"], ana, replace(base, test="paired", post=1), control="control"
        )
        hip = arm_with("hip_strengthening", (0, 1))
        a = np.array([cur[(s, 0)] for s in hip])
        b = np.array([cur[(s, 1)] for s in hip])
        ri = spm1d.stats.ttest_paired(b, a).inference(0.05, two_tailed=True, interp=True)
        np.testing.assert_allclose(t.result.z, ri.z, rtol=1e-10)
        assert t.result.threshold == pytest.approx(ri.zstar, rel=1e-10)
        # one-way repeated measures over the three sessions
        t = run_curve_test(cohort["store"], ana, replace(base, test="anova1rm"), control="control")
        hip = arm_with("hip_strengthening", (0, 1, 2))
        y = np.array([cur[(s, k)] for k in (0, 1, 2) for s in hip])
        cond = np.repeat([0, 1, 2], len(hip))
        subj = np.tile(np.arange(len(hip)), 3)
        ri = spm1d.stats.anova1rm(y, cond, subj).inference(0.05)
        np.testing.assert_allclose(t.result.z, ri.z, rtol=1e-10)
        assert t.result.threshold == pytest.approx(ri.zstar, rel=1e-10)
        # regression of the change on adherence, every participant
        t = run_curve_test(
            cohort["store"],
            ana,
            replace(base, test="regression", arm=None, covariate="age_years"),
            control="control",
        )
        subs = arm_with(None, (0, 2))
        dy = np.array([cur[(s, 2)] - cur[(s, 0)] for s in subs])
        ri = spm1d.stats.regress(dy, first.loc[subs, "age_years"].to_numpy(float)).inference(
            0.05, two_tailed=True, interp=True
        )
        np.testing.assert_allclose(t.result.z, ri.z, rtol=1e-10)
        # permutation inference, paired: 2^J sign flips are fewer than asked, so all are used
        t = run_curve_test(
            cohort["store"],
            ana,
            replace(base, test="paired", inference="permutation", permutations=500),
            control="control",
            seed=3,
        )
        hip = arm_with("hip_strengthening", (0, 2))
        a = np.array([cur[(s, 0)] for s in hip])
        b = np.array([cur[(s, 2)] for s in hip])
        ri = spm1d.stats.nonparam.ttest_paired(b, a).inference(0.05, two_tailed=True)
        assert t.result.permutations == 2 ** len(hip) < 500
        assert t.result.threshold == pytest.approx(ri.zstar, rel=1e-10)
        # two-sample: C(J, J_a) exceeds 100, so 100 are drawn, seeded: same draw as spm1d's
        t = run_curve_test(
            cohort["store"],
            ana,
            replace(base, inference="permutation", permutations=100),
            control="control",
            seed=3,
        )
        ctl = arm_with("control", (0, 2))
        da = np.array([cur[(s, 2)] - cur[(s, 0)] for s in hip])
        dc = np.array([cur[(s, 2)] - cur[(s, 0)] for s in ctl])
        np.random.seed(3)  # noqa: NPY002 (spm1d draws from the global generator)
        ri = spm1d.stats.nonparam.ttest2(da, dc).inference(0.05, two_tailed=True, iterations=100)
        assert t.result.permutations == 100 < ri.nPermUnique
        assert t.result.threshold == pytest.approx(ri.zstar, rel=1e-10)
        np.testing.assert_allclose(t.result.z, ri.z, rtol=1e-10)
        assert [c.p for c in t.result.clusters] == pytest.approx([c.P for c in ri.clusters])


# --- the report -------------------------------------------------------------------------


def test_report_shows_ensemble_and_spm_figures_with_escaped_labels(cohort):
    html = (cohort["run"] / "report.html").read_text()
    assert 'href="#curves"' in html and '<section id="curves">' in html
    for o in ("landing_force", "landing_force_control"):
        assert f'id="fig-curve-{o}"' in html and f'id="fig-spm-{o}"' in html
        assert (cohort["run"] / "figures" / f"curve-{o}.svg").exists()
    assert "landing &lt;force&gt; &amp; impact" in html
    assert "<force>" not in html
    sec = html[
        html.index('<section id="curves">') : html.index(
            "</section>", html.index('<section id="curves">')
        )
    ]
    assert "session 0" in sec and "hip strengthening" in sec
    assert "Šidák" in sec or "sidak" in sec
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing loaded from elsewhere
    # a participant left out is named by the report's label, never by identifier
    ana = pd.read_parquet(cohort["run"] / "analysis.parquet")
    assert "left out (incomplete): P" in sec
    assert not any(s in sec for s in ana["subject_id"].unique())


def test_constant_covariate_is_a_config_error_naming_the_curve(cohort, tmp_path):
    from dataclasses import replace

    from cxlab.experiments.analysis import analysis_table

    spec = read_spec(_write(tmp_path / "t.toml", BASE + CURVES), store=cohort["root"] / "store")
    ana = analysis_table(cohort["store"], spec).assign(adherence=0.9)
    c = replace(spec.curves[0], test="regression", covariate="adherence")
    with pytest.raises(ConfigError, match=r"curves\.landing_force\.covariate.*is constant"):
        run_curve_test(cohort["store"], ana, c, control="control")


def test_a_curve_the_store_lacks_is_left_out_with_a_warning_not_the_whole_run(cohort, tmp_path):
    text = BASE + CURVES + '\n[curves.absent]\nsignal = "emg_vl"\nphase = "landing"\n'
    text += 'test = "paired"\narm = "control"\n'
    run = run_experiment(_write(cohort["root"] / "absent.toml", text), out=tmp_path / "runs")
    spm = pd.read_parquet(run / "spm.parquet")
    assert sorted(spm["outcome"]) == ["landing_force", "landing_force_control"]
    man = json.loads((run / "manifest.json").read_text())
    assert any("curves.absent" in w and "has no curves in the store" in w for w in man["warnings"])


def test_report_contents_follow_the_page_order_with_curves(cohort):
    html = (cohort["run"] / "report.html").read_text(encoding="utf-8")
    nav = re.findall(r'href="#([a-z_-]+)"', html.split("<nav>", 1)[1].split("</nav>", 1)[0])
    ids = re.findall(r'<section id="([a-z_-]+)"', html.split("</nav>", 1)[1])
    assert nav == ids and "curves" in ids
    assert ids.index("moderators") < ids.index("curves") < ids.index("responders")
