"""cxlab.screen: rules, screen(), trends against the MDC, prevalence, and the synthetic truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from cxlab._check import ConfigError, CxlabWarning
from cxlab.pseudo import pseudonymise
from cxlab.schemas import validate
from cxlab.screen import SCREEN_SCHEMA, read_rules, screen, screen_prevalence, screen_trends
from cxlab.screen.trends import feature_mdc

A, B = "aaaaaaaaaaaa", "bbbbbbbbbbbb"
RULES = {r.id: r for r in read_rules()}


def feats(rows):
    """Features rows from (subject, session, feature, side, value, unit[, task, trial])."""
    out = []
    for r in rows:
        subj, ses, feat, side, val, unit, *rest = r
        task = rest[0] if rest else None
        trial = rest[1] if len(rest) > 1 else "1"
        out.append(
            dict(
                recording_id=None,
                subject_id=subj,
                session=ses,
                task=task,
                trial=trial,
                feature=feat,
                side=side,
                value=val,
                unit=unit,
                method="test",
            )
        )
    return pd.DataFrame(out)


def scores(rows):
    return pd.DataFrame(
        [
            dict(
                subject_id=s,
                session=ses,
                date=None,
                instrument=i,
                score=v,
                unit=u,
                n_items_answered=1,
                age_years=30.0,
            )
            for s, ses, i, v, u in rows
        ]
    )


def _boundary_values(rule):
    """(value, expected flag): just outside, exactly at, just inside the threshold."""
    t, eps = rule.threshold, 1e-6 * max(1.0, abs(rule.threshold))
    worse = 1 if rule.higher_is_worse else -1
    at_flags = rule.comparison in ("<=", ">=", "abs>=")
    return [(t + worse * eps, True), (t, at_flags), (t - worse * eps, False)]


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_each_default_rule_flags_just_outside_and_not_just_inside(rule_id):
    rule = RULES[rule_id]
    cases = _boundary_values(rule)
    sides = {"each": ["left", "right"], "bilateral": ["bilateral"], "worst": ["left", "right"]}
    f_rows, s_rows, expect = [], [], []
    for i, (val, flag) in enumerate(cases):
        ses = str(i + 1)
        for side in sides[rule.sides]:
            if rule.instrument:
                s_rows.append((A, ses, rule.instrument, val, rule.unit))
            else:
                f_rows.append((A, ses, rule.feature, side, val, rule.unit, rule.task))
            expect.append((ses, side, flag))
        # subject B: same sessions, rule input missing, something else present
        f_rows.append((B, ses, "cmj_body_mass_kg", "bilateral", 70.0, "kg", "cmj"))
    out = screen(feats(f_rows), scores(s_rows) if s_rows else None)
    got = out[out.rule_id == rule_id].set_index(["subject_id", "session", "side"])
    for ses, side, flag in expect:
        row = got.loc[(A, ses, side)]
        assert bool(row["flagged"]) is flag, (rule_id, ses, side, row["value"])
        assert row["status"] == ("flagged" if flag else "normal")
        assert (row["severity"] == rule.severity) if flag else pd.isna(row["severity"])
    missing = got.loc[B]
    assert (missing["status"] == "not assessed").all()
    assert missing["flagged"].isna().all()
    assert len(missing) == 3 * len(sides[rule.sides] if rule.sides != "worst" else ["worst"])


def test_each_side_is_judged_separately():
    f = feats(
        [
            (A, "1", "knee_fppa_peak_deg", "left", 15.0, "deg", "landing"),
            (A, "1", "knee_fppa_peak_deg", "right", 5.0, "deg", "landing"),
        ]
    )
    out = screen(f, None).query("rule_id == 'knee_valgus_landing'").set_index("side")
    assert out.loc["left", "status"] == "flagged" and out.loc["right", "status"] == "normal"


def test_trials_are_averaged_before_comparison():
    rows = [
        (A, "1", "landing_peak_force_lsi_pct", "bilateral", v, "%", "landing", str(k))
        for k, v in enumerate([85.0, 97.0])
    ]  # mean 91 -> normal
    rows += [
        (B, "1", "landing_peak_force_lsi_pct", "bilateral", v, "%", "landing", str(k))
        for k, v in enumerate([85.0, 93.0, np.nan])
    ]  # mean of non-missing 89 -> flagged
    out = screen(feats(rows), None).query("rule_id == 'landing_force_lsi'")
    out = out.set_index("subject_id")
    assert out.loc[A, "value"] == pytest.approx(91.0) and out.loc[A, "status"] == "normal"
    assert out.loc[B, "value"] == pytest.approx(89.0) and out.loc[B, "status"] == "flagged"
    assert out.loc[A, "n_trials"] == 2 and out.loc[B, "n_trials"] == 2


def test_rule_task_restricts_rows():
    # a knee FPPA from another task must not be judged by the landing rule
    f = feats([(A, "1", "knee_fppa_peak_deg", "left", 25.0, "deg", "gait")])
    out = screen(f, None).query("rule_id == 'knee_valgus_landing'")
    assert (out["status"] == "not assessed").all()


def test_graded_severity_follows_the_strictest_passed_grade():
    s = scores(
        [
            (A, "1", "odi", 30.0, "%"),
            (A, "2", "odi", 40.0, "%"),
            (A, "3", "odi", 42.0, "%"),
            (A, "4", "odi", 20.0, "%"),
        ]
    )
    out = screen(None, s).query("rule_id == 'odi_disability'").set_index("session")
    assert out["severity"].tolist()[:3] == ["moderate", "moderate", "high"]
    assert pd.isna(out.loc["4", "severity"]) and out.loc["4", "status"] == "normal"


def test_unit_mismatch_is_not_assessed_with_a_warning():
    f = feats([(A, "1", "posture_cva_deg", "bilateral", 0.7, "rad", "posture")])
    with pytest.warns(CxlabWarning, match="posture_cva_deg.*'rad'.*'deg'"):
        out = screen(f, None)
    assert out.query("rule_id == 'forward_head_posture'")["status"].item() == "not assessed"


def test_worst_side_logic_picks_the_worse_leg(tmp_path):
    p = tmp_path / "lab.toml"
    p.write_text('[rules.hq_ratio]\nsides = "worst"\n')
    rules = read_rules(p)
    s = pd.DataFrame(
        {
            "subject_id": A,
            "session": "1",
            "side": ["left", "left", "right", "right"],
            "muscle_group": ["knee_flexors", "knee_extensors"] * 2,
            "peak_torque_nm": [60.0, 100.0, 50.0, 100.0],
        }
    )
    out = screen(None, None, rules=rules, strength=s)
    hq = out.query("rule_id == 'hq_ratio'")
    assert hq["side"].tolist() == ["worst"] and hq["worse_side"].item() == "right"
    assert hq["value"].item() == pytest.approx(0.5) and hq["status"].item() == "flagged"
    lsi = out.query("rule_id == 'knee_extensor_lsi'")
    assert lsi["value"].item() == pytest.approx(100.0) and lsi["status"].item() == "normal"


def test_worst_side_with_one_leg_missing_is_not_called_normal(tmp_path):
    # 'worst' = the worse of left and right: with the left leg unmeasured a normal right
    # leg says nothing about the worst leg (not assessed); a flagged right leg still flags.
    p = tmp_path / "lab.toml"
    p.write_text('[rules.knee_valgus_landing]\nsides = "worst"\n')
    rules = read_rules(p)
    f = feats(
        [
            (A, "1", "knee_fppa_peak_deg", "right", 5.0, "deg", "landing"),
            (A, "1", "knee_fppa_peak_deg", "left", np.nan, "deg", "landing"),
            (B, "1", "knee_fppa_peak_deg", "right", 20.0, "deg", "landing"),
        ]
    )
    out = screen(f, None, rules=rules).query("rule_id == 'knee_valgus_landing'")
    out = out.set_index("subject_id")
    assert out.loc[A, "status"] == "not assessed" and pd.isna(out.loc[A, "flagged"])
    assert out.loc[B, "status"] == "flagged" and out.loc[B, "worse_side"] == "right"


def test_output_matches_declared_schema_and_is_deterministic():
    f = feats(
        [
            (A, "10", "posture_cva_deg", "bilateral", 45.0, "deg", "posture"),
            (A, "2", "posture_cva_deg", "bilateral", 55.0, "deg", "posture"),
        ]
    )
    one, two = screen(f, None), screen(f.iloc[::-1], None)
    pd.testing.assert_frame_equal(one, two)
    validate(one, SCREEN_SCHEMA)
    assert one["session"].drop_duplicates().tolist() == ["2", "10"]  # natural order


# --- rules files ------------------------------------------------------------------------

BAD = {
    "unknown comparison": ('comparison = "=="', "rules.r1.comparison", "'=='"),
    "missing threshold": (None, "rules.r1.threshold", "is missing"),
    "unknown key": ("treshold = 3", "rules.r1.treshold", "did you mean 'rules.r1.threshold'?"),
    "wrong type": ('threshold = "high"', "rules.r1.threshold", "must be a number"),
    "bad grade": ("grades = { high = 60.0 }", "rules.r1.grades.high", "stricter"),
    "bad sides": ('sides = "both"', "rules.r1.sides", "'both'"),
}
GOOD = [
    'feature = "posture_cva_deg"',
    'sides = "bilateral"',
    'comparison = "<"',
    'unit = "deg"',
    'severity = "moderate"',
    'region = "neck"',
    'focus = "f"',
    'source = "s"',
]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_rules_file_names_rule_and_field(tmp_path, case):
    line, field, text = BAD[case]
    body = [ln for ln in GOOD if not (line and ln.split(" = ")[0] == line.split(" = ")[0])]
    if case != "missing threshold":
        body.append("threshold = 50.0" if "threshold" not in (line or "") else "")
    if line:
        body.append(line)
    p = tmp_path / "lab.toml"
    p.write_text("[rules.r1]\n" + "\n".join(body) + "\n")
    with pytest.raises(ConfigError) as e:
        read_rules(p)
    msg = str(e.value)
    assert msg.startswith("lab.toml: ") and field in msg and text in msg
    assert "\n" not in msg


def test_lab_rules_override_by_id_extend_disable_and_replace(tmp_path):
    p = tmp_path / "lab.toml"
    new = "\n".join(["[rules.r1]", *GOOD, "threshold = 48.0"])
    p.write_text(
        f"[rules.knee_valgus_landing]\nthreshold = 8.0\n[rules.pain_vas]\nenabled = false\n{new}\n"
    )
    rules = {r.id: r for r in read_rules(p)}
    assert rules["knee_valgus_landing"].threshold == 8.0
    assert rules["knee_valgus_landing"].source == RULES["knee_valgus_landing"].source
    assert "pain_vas" not in rules and rules["r1"].threshold == 48.0
    p.write_text("replace = true\n" + new + "\n")
    assert [r.id for r in read_rules(p)] == ["r1"]


def test_partial_new_rule_is_reported_missing(tmp_path):
    p = tmp_path / "lab.toml"
    p.write_text("[rules.brand_new]\nthreshold = 1.0\n")
    with pytest.raises(ConfigError, match=r"rules\.brand_new\.sides: is missing"):
        read_rules(p)


def test_every_default_rule_cites_a_source_with_a_year():
    for r in RULES.values():
        assert any(str(y) in r.source for y in range(1979, 2026)), r.id
        assert r.note and r.focus and r.region


# --- trends -----------------------------------------------------------------------------


def _cva_series(values):
    rows = [
        (A, str(i + 1), "posture_cva_deg", "bilateral", v, "deg", "posture")
        for i, v in enumerate(values)
    ]
    return screen(feats(rows), None).query("rule_id == 'forward_head_posture'")


MDC = pd.DataFrame({"feature": ["posture_cva_deg"], "side": ["bilateral"], "mdc95": [2.0]})


@pytest.mark.parametrize(
    ("values", "trend", "transition", "change"),
    [
        ([46.0, 53.0], "resolved", "resolved", "improved"),
        ([49.0, 50.5], "resolved (within MDC)", "resolved", "no real change"),
        ([50.5, 49.5], "appeared (within MDC)", "appeared", "no real change"),
        ([55.0, 47.0], "appeared", "appeared", "worsened"),
        ([40.0, 45.0], "persisted, improving", "persisted", "improved"),
        ([45.0, 40.0], "persisted, worsening", "persisted", "worsened"),
        ([45.0, 46.0], "persisted", "persisted", "no real change"),
        ([58.0, 51.0], "normal, worsening", "normal", "worsened"),
        ([55.0, 56.0], "normal", "normal", "no real change"),
    ],
)
def test_trend_classification_against_the_mdc(values, trend, transition, change):
    t = screen_trends(_cva_series(values), mdc=MDC)
    row = t.query("span == 'consecutive'").iloc[0]
    assert (row["trend"], row["transition"], row["change"]) == (trend, transition, change)
    assert row["change_value"] == pytest.approx(values[1] - values[0])


def test_trends_pair_consecutive_and_baseline_to_latest_skipping_unassessed():
    rows = [
        (A, s, "posture_cva_deg", "bilateral", v, "deg", "posture")
        for s, v in (("1", 44.0), ("3", 47.0), ("4", 55.0))
    ]
    rows.append((A, "2", "cmj_body_mass_kg", "bilateral", 70.0, "kg", "cmj"))  # CVA missing
    s = screen(feats(rows), None)
    t = screen_trends(s, mdc=MDC).query("rule_id == 'forward_head_posture'")
    pairs = list(zip(t["span"], t["session_from"], t["session_to"], strict=True))
    assert pairs == [
        ("consecutive", "1", "3"),
        ("consecutive", "3", "4"),
        ("baseline_to_latest", "1", "4"),
    ]
    assert t["trend"].tolist() == ["persisted, improving", "resolved", "resolved"]


def test_trend_uses_rule_mic_when_no_mdc_and_unknown_otherwise():
    s = screen(
        None,
        scores(
            [
                (A, "1", "odi", 30.0, "%"),
                (A, "2", "odi", 18.0, "%"),
                (B, "1", "odi", 30.0, "%"),
                (B, "2", "odi", 22.0, "%"),
            ]
        ),
    )
    t = screen_trends(s).query("rule_id == 'odi_disability' and span == 'consecutive'")
    t = t.set_index("subject_id")
    assert t.loc[A, "mdc95"] == 10.0 and t.loc[A, "trend"] == "resolved"
    assert t.loc[B, "trend"] == "persisted"
    cva = screen_trends(_cva_series([46.0, 53.0]))
    assert cva["change"].unique().tolist() == ["MDC unknown"]
    assert cva["trend"].unique().tolist() == ["resolved (MDC unknown)"]


def test_feature_mdc_matches_the_hand_worked_two_trial_formula():
    rng = np.random.default_rng(3)
    true = rng.normal(50, 5, 30)
    t1, t2 = true + rng.normal(0, 1, 30), true + rng.normal(0, 1, 30) + 0.3
    rows = [
        (f"{i:012x}", "1", "posture_cva_deg", "bilateral", v, "deg", "posture", tr)
        for tr, arr in (("1", t1), ("2", t2))
        for i, v in enumerate(arr)
    ]
    rows.append(("0" * 12, "1", "posture_cva_deg", "bilateral", 50.0, "deg", "posture", "3"))
    m = feature_mdc(feats(rows))  # the lone 3rd trial is beyond the modal k = 2: ignored
    d = t2 - t1
    # one-way within-target mean square for k = 2: MSW = sum(d^2) / (2 n)
    sem = np.sqrt(np.sum(d**2) / (2 * len(d)))
    row = m.set_index("feature").loc["posture_cva_deg"]
    assert row["sem"] == pytest.approx(sem, rel=1e-12)
    assert row["mdc95"] == pytest.approx(1.96 * np.sqrt(2) * sem, rel=1e-12)
    assert row["swc"] == pytest.approx(0.2 * np.std((t1 + t2) / 2, ddof=1), rel=1e-12)
    assert row["n_targets"] == 30 and row["n_trials"] == 2


# --- prevalence ----------------------------------------------------------------------------


def test_prevalence_counts_a_half_assessed_subject_only_when_flagged():
    # knee valgus is judged per leg: one leg normal and the other unmeasured is not
    # "no finding" (the other leg may be in valgus); one leg flagged is a finding
    subs = ["a" * 12, "b" * 12, "c" * 12]
    f = feats(
        [
            (subs[0], "1", "knee_fppa_peak_deg", "left", 5.0, "deg", "landing"),
            (subs[1], "1", "knee_fppa_peak_deg", "left", 20.0, "deg", "landing"),
            (subs[2], "1", "knee_fppa_peak_deg", "left", 5.0, "deg", "landing"),
            (subs[2], "1", "knee_fppa_peak_deg", "right", 6.0, "deg", "landing"),
        ]
    )
    arms = pd.DataFrame({"subject_id": subs, "arm": ["x"] * 3})
    p = screen_prevalence(screen(f, None), arms=arms).query("rule_id == 'knee_valgus_landing'")
    assert (p["n_assessed"].item(), p["n_flagged"].item()) == (2, 1)


def test_prevalence_wilson_interval_matches_statsmodels():
    subs = [f"{i:012x}" for i in range(12)]
    rows = []
    for i, s in enumerate(subs):
        rows.append((s, "1", "posture_cva_deg", "bilateral", 45.0 if i < 7 else 55.0, "deg"))
        if i < 10:
            rows.append((s, "2", "posture_cva_deg", "bilateral", 45.0 if i < 2 else 55.0, "deg"))
    arms = pd.DataFrame({"subject_id": subs, "arm": ["x"] * 12})
    p = screen_prevalence(screen(feats(rows), None), arms=arms)
    p = p.query("rule_id == 'forward_head_posture'").set_index("timepoint")
    for tp, k, n in (("baseline", 7, 12), ("follow-up", 2, 10)):
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert (p.loc[tp, "n_flagged"], p.loc[tp, "n_assessed"]) == (k, n)
        assert p.loc[tp, "ci_low"] == pytest.approx(lo)
        assert p.loc[tp, "ci_high"] == pytest.approx(hi)


# --- synthetic cohort with known truth -------------------------------------------------------

_TASK = {
    "knee_fppa_peak_deg": ("landing", "deg"),
    "landing_peak_force_lsi_pct": ("landing", "%"),
    "cmj_propulsive_impulse_lsi_pct": ("cmj", "%"),
    "posture_cva_deg": ("posture", "deg"),
}


def truth_tables(truth, value="observed_value"):
    """Map simulate_truth outcomes to features/scores rows (one trial per session)."""
    o = truth.outcomes[truth.outcomes["observed"]].merge(
        truth.subjects[["label", "valgus_side_offset_deg"]], on="label"
    )
    ids = {lab: pseudonymise(lab) for lab in o["label"].unique()}
    o["subject_id"] = o["label"].map(ids)
    o["value"] = o[value]
    f = o[o["outcome"].isin(_TASK)].copy()
    f["task"] = f["outcome"].map(lambda x: _TASK[x][0])
    f["unit"] = f["outcome"].map(lambda x: _TASK[x][1])
    f = f.assign(
        feature=f["outcome"], side="bilateral", trial="1", recording_id=None, method="truth"
    )
    k = f["feature"] == "knee_fppa_peak_deg"
    half = f.loc[k, "valgus_side_offset_deg"] / 2
    f = pd.concat(
        [
            f[~k],
            f[k].assign(side="left", value=f.loc[k, "value"] - half),
            f[k].assign(side="right", value=f.loc[k, "value"] + half),
        ]
    )
    s = o[o["outcome"].isin(["pain_nrs", "odi"])]
    s = s.assign(
        instrument=s["outcome"],
        score=s["value"],
        unit=s["outcome"].map({"pain_nrs": "points", "odi": "%"}),
    )
    return f, s


PHENO = {
    "has_valgus": ["knee_valgus_landing"],
    "has_asymmetry": ["landing_force_lsi", "cmj_propulsive_lsi"],
    "has_forward_head": ["forward_head_posture"],
}


@pytest.fixture(scope="module")
def cohort():
    from cxlab.synth import simulate_truth

    truth = simulate_truth(200, 4, seed=11)
    f, s = truth_tables(truth)
    out = screen(f, s)
    subs = truth.subjects.assign(
        subject_id=truth.subjects["label"].map(lambda lab: pseudonymise(lab))
    )
    return truth, subs, out


def _any_flag(out, rule_ids):
    x = out[out["rule_id"].isin(rule_ids)]
    return (
        x.assign(f=x["flagged"].astype("boolean").fillna(False))
        .groupby(["subject_id", "session"])["f"]
        .any()
    )


@pytest.mark.parametrize("phenotype", sorted(PHENO))
def test_synthetic_phenotypes_are_flagged_at_baseline(cohort, phenotype):
    _, subs, out = cohort
    flag = _any_flag(out, PHENO[phenotype]).xs("1", level="session")
    truth_flag = subs.set_index("subject_id")[phenotype].reindex(flag.index)
    sens = (flag & truth_flag).sum() / truth_flag.sum()
    spec = (~flag & ~truth_flag).sum() / (~truth_flag).sum()
    assert sens >= 0.9 and spec >= 0.9, (phenotype, sens, spec)


@pytest.mark.parametrize(
    ("phenotype", "arm"),
    [("has_valgus", "hip_strengthening"), ("has_asymmetry", "hip_strengthening")],
)
def test_synthetic_flags_resolve_in_the_arm_whose_truth_says_so(cohort, phenotype, arm):
    truth, subs, out = cohort
    rule = PHENO[phenotype][0]
    rule_obj = RULES[rule]
    # truth: the true value at the subject's last observed session is past the threshold?
    o = truth.outcomes[truth.outcomes["observed"] & (truth.outcomes["outcome"] == rule_obj.feature)]
    last = o.loc[o.groupby("label")["week"].idxmax()].set_index("label")
    t = subs.set_index("label").join(last[["session", "true_value"]])
    t = t[t[phenotype] & (t["session"] != "1")]
    true_flag = (
        (t["true_value"] > rule_obj.threshold)
        if rule_obj.higher_is_worse
        else (t["true_value"] < rule_obj.threshold)
    )
    tr = screen_trends(out)
    tr = tr[(tr["rule_id"] == rule) & (tr["span"] == "baseline_to_latest")]
    still = tr.groupby("subject_id")["flagged_to"].any()
    obs_flag = still.reindex(t["subject_id"]).to_numpy(dtype=bool)
    assert (obs_flag == true_flag.to_numpy()).mean() >= 0.9
    resolved = pd.Series(~obs_flag, index=t.index)
    in_arm, control = t["arm"] == arm, t["arm"] == "control"
    assert resolved[in_arm].mean() >= 0.5 > resolved[control].mean() + 0.3


def test_strength_rows_already_in_features_are_not_counted_twice():
    s = pd.DataFrame(
        {
            "subject_id": A,
            "session": "1",
            "side": ["left", "left", "right", "right"],
            "muscle_group": ["knee_flexors", "knee_extensors"] * 2,
            "peak_torque_nm": [55.0, 100.0, 65.0, 100.0],
        }
    )
    f = feats(
        [
            (A, "1", "strength_hq_ratio", "left", 0.55, "1", None, None),
            (A, "1", "strength_hq_ratio", "right", 0.65, "1", None, None),
        ]
    )
    hq = screen(f, None, strength=s).query("rule_id == 'hq_ratio'").set_index("side")
    assert hq["n_trials"].tolist() == [1, 1]
    assert hq.loc["left", "status"] == "flagged" and hq.loc["right", "status"] == "normal"
    lsi = screen(f, None, strength=s).query("rule_id == 'knee_extensor_lsi'")
    assert lsi["value"].item() == pytest.approx(100.0)  # added from strength: not in features


def test_docs_examples_run(tmp_path):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "screen.md").read_text()
    toml = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "lab.toml").write_text(toml)
    rules = {r.id: r for r in read_rules(tmp_path / "lab.toml")}
    assert rules["knee_valgus_landing"].threshold == 8.0 and "pain_vas" not in rules
    assert rules["pelvic_drop"].grades == {"moderate": 12.0}
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/screen.md", "exec"), {})


def test_empty_inputs_give_empty_tables_with_their_columns():
    out = screen(None, None)
    assert out.empty and list(out.columns) == SCREEN_SCHEMA.names
    assert screen_trends(out).empty
    p = screen_prevalence(out, arms=pd.DataFrame({"subject_id": [], "arm": []}))
    assert p.empty and "ci_low" in p.columns


def test_the_screen_table_declared_in_schemas_admits_exactly_the_rules_vocabulary():
    from cxlab.schemas import schema_of
    from cxlab.screen.rules import COMPARISONS, SEVERITIES

    table = schema_of("screen")
    assert SCREEN_SCHEMA is table
    assert table.column("severity").isin == SEVERITIES
    assert table.column("comparison").isin == COMPARISONS


# ----------------------------------------------------------------- knee abduction moment rule


def _landing_features(subject, peak_nm_per_kg, body_mass_kg):
    """Features of a synthetic drop landing: plates unloaded until touchdown at 0.30 s; an
    external knee abduction moment pulse (-PiG knee Y) peaking ``peak_nm_per_kg`` at
    0.35 s on both knees, and a 3x larger decoy at 0.55 s, outside the first 100 ms."""
    from cxlab.features import kinematics as kin
    from cxlab.features import kinetics as kt
    from cxlab.features.config import read_config
    from cxlab.features.joints import _peaks
    from cxlab.features.tasks import Trial

    rate, n = 100.0, 100
    t = np.arange(n) / rate
    pulse = peak_nm_per_kg * np.exp(-(((t - 0.35) / 0.02) ** 2))
    pulse += 3 * peak_nm_per_kg * np.exp(-(((t - 0.55) / 0.02) ** 2))

    def table(columns, y):
        parts = []
        for side in ("left", "right"):
            for joint in ("hip", "knee"):
                v = np.zeros((n, 3))
                if joint == "knee":
                    v[:, 1] = y
                parts.append(
                    pd.DataFrame(
                        {
                            "frame": np.arange(n),
                            "time_s": t,
                            "side": side,
                            "joint": joint,
                            **{c: v[:, k] for k, c in enumerate(columns)},
                        }
                    )
                )
        return pd.concat(parts, ignore_index=True)

    fz = np.where(np.arange(1000) >= 300, 700.0, 0.0)  # 1 kHz plate, touchdown 0.30 s
    trial = Trial(task="landing", plates={1: {"fz": fz}}, analog_rate_hz=1000.0)
    rows = _peaks(
        table(kin.ANGLE_COLUMNS, np.zeros(n)),
        table(kt.MOMENT_COLUMNS, -pulse),
        trial,
        read_config(),
        "cxlab-pig",
        {"left": 0.30, "right": 0.30},
        "nexus",
        body_mass_kg,
    )
    return feats([(subject, "1", m.feature, m.side, m.value, m.unit, "landing") for m in rows])


def test_knee_abduction_moment_rule_flags_a_landing_over_25_nm_and_not_one_under():
    """Myer et al. 2011's high-KAM cut-off, > 25.25 N·m (absolute): 0.60 N·m/kg x 50 kg =
    30 N·m is flagged, 0.40 x 50 = 20 N·m is not; the decoy peak after the 100 ms window
    (90 and 60 N·m) is ignored, and without a body mass the rule is not assessed."""
    f = pd.concat(
        [
            _landing_features(A, 0.60, 50.0),
            _landing_features(B, 0.40, 50.0),
            _landing_features("cccccccccccc", 0.60, float("nan")),
        ]
    )
    nm = f[f.feature == "knee_abduction_moment_peak_nm"].set_index(["subject_id", "side"])
    assert nm.loc[(A, "left"), "value"] == pytest.approx(30.0, rel=1e-9)
    assert nm.loc[(B, "right"), "value"] == pytest.approx(20.0, rel=1e-9)
    out = screen(f)
    got = out[out.rule_id == "knee_abduction_moment_landing"].set_index(["subject_id", "side"])
    assert got.loc[(A, "left"), "status"] == got.loc[(A, "right"), "status"] == "flagged"
    assert got.loc[(A, "left"), "severity"] == "high"
    assert got.loc[(B, "left"), "status"] == got.loc[(B, "right"), "status"] == "normal"
    assert (got.loc["cccccccccccc", "status"] == "not assessed").all()


def test_knee_abduction_moment_rule_states_its_unit_source_and_population():
    rule = RULES["knee_abduction_moment_landing"]
    assert rule.unit == "N.m" and rule.threshold == 25.25 and rule.comparison == ">"
    assert "Myer GD" in rule.source and "2011" in rule.source and "Hewett TE" in rule.source
    assert "female" in rule.note and "N.m/kg" in rule.note
