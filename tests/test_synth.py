"""The synthetic cohort: truth-model statistics, and files that give the truth back.

Every check recovers the truth by an independent computation written here (per-subject
least-squares slopes, impulse-momentum integration of the force trace, marker
geometry) rather than trusting the generator's own numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxlab._check import ConfigError
from cxlab.synth.truth import ARMS, DEFAULT_EFFECTS, OUTCOMES, simulate_truth


def _subject_slopes(truth, value: str) -> pd.DataFrame:
    """Per-subject least-squares slope of ``value`` on week (closed form), wide by outcome."""
    o = truth.outcomes
    o = o[o[value].notna()]
    g = o.assign(w=o["week"], y=o[value], wy=o["week"] * o[value], ww=o["week"] ** 2)
    s = g.groupby(["label", "arm", "outcome"])[["w", "y", "wy", "ww"]].agg(["sum", "count"])
    n = s[("w", "count")]
    sw, sy, swy, sww = (s[(c, "sum")] for c in ("w", "y", "wy", "ww"))
    slope = (n * swy - sw * sy) / (n * sww - sw**2)
    return slope.rename("slope").reset_index()


def test_truth_is_reproducible_and_seed_dependent():
    a = simulate_truth(30, 4, seed=7)
    b = simulate_truth(30, 4, seed=7)
    c = simulate_truth(30, 4, seed=8)
    pd.testing.assert_frame_equal(a.subjects, b.subjects)
    pd.testing.assert_frame_equal(a.outcomes, b.outcomes)
    assert not a.outcomes["true_value"].equals(c.outcomes["true_value"])


def test_truth_tables_have_declared_shape_and_ranges():
    t = simulate_truth(50, 5, seed=1)
    assert len(t.subjects) == 50 and t.subjects["label"].iloc[0] == "CX001"
    assert len(t.outcomes) == 50 * 5 * len(OUTCOMES)
    assert set(t.outcomes["session"]) == {"1", "2", "3", "4", "5"}
    obs = t.outcomes[t.outcomes["observed"]]
    pain = obs.loc[obs["outcome"] == "pain_nrs", "observed_value"]
    odi = obs.loc[obs["outcome"] == "odi", "observed_value"]
    assert pain.between(0, 10).all() and (pain == pain.round()).all()
    assert odi.between(0, 100).all() and (odi % 2 == 0).all()
    lsi = obs.loc[obs["outcome"].str.endswith("_lsi_pct"), "observed_value"]
    assert (lsi <= 100).all()
    assert t.outcomes.loc[~t.outcomes["observed"], "observed_value"].isna().all()
    # session 1 is the start date (week 0); later sessions are 4 weeks apart +- 3 days
    first = t.outcomes[t.outcomes["session"] == "1"]
    assert (first["week"] == 0).all()
    w3 = t.outcomes.loc[t.outcomes["session"] == "3", "week"]
    assert w3.between(8 - 3 / 7, 8 + 3 / 7).all()


def test_balanced_randomisation_by_default():
    t = simulate_truth(400, 1, seed=3)
    counts = t.subjects["arm"].value_counts()
    assert set(counts.index) == set(ARMS) and (counts == 100).all()


def test_baseline_phenotypes_are_separable_by_screening_cut_offs():
    t = simulate_truth(2000, 1, seed=4)
    flags = ["has_valgus", "has_asymmetry", "has_forward_head"]
    base = t.wide().set_index("label").join(t.subjects.set_index("label")[flags])
    for flag, feature, cut, above in [
        ("has_valgus", "knee_fppa_peak_deg", 10.0, True),
        ("has_asymmetry", "landing_peak_force_lsi_pct", 90.0, False),
        ("has_asymmetry", "cmj_propulsive_impulse_lsi_pct", 90.0, False),
        ("has_forward_head", "posture_cva_deg", 48.5, False),
    ]:
        positive = base[feature] > cut if above else base[feature] < cut
        truth = base[flag]
        sensitivity = (positive & truth).sum() / truth.sum()
        specificity = (~positive & ~truth).sum() / (~truth).sum()
        assert sensitivity >= 0.9 and specificity >= 0.9, (feature, sensitivity, specificity)


def test_true_trajectories_have_the_declared_average_slope_per_arm():
    # noise-free values, no dropout: the mean per-subject slope in each arm minus control
    # equals the declared effect up to the sampling error of the random slopes
    t = simulate_truth(4000, 3, seed=5, dropout=False)
    s = _subject_slopes(t, "true_value")
    mean = s.groupby(["outcome", "arm"])["slope"].mean().unstack()
    sd = s.groupby(["outcome", "arm"])["slope"].std().unstack()
    n_arm = 1000
    for o in OUTCOMES:
        for a in ARMS[1:]:
            diff = mean.loc[o, a] - mean.loc[o, "control"]
            se = np.hypot(sd.loc[o, a], sd.loc[o, "control"]) / np.sqrt(n_arm)
            assert abs(diff - DEFAULT_EFFECTS[o][a]) < 4 * se + 1e-12, (o, a, diff)


def test_observed_values_recover_effects_within_sampling_error():
    t = simulate_truth(4000, 4, seed=6, dropout=False)
    s = _subject_slopes(t, "observed_value")
    mean = s.groupby(["outcome", "arm"])["slope"].mean().unstack()
    sd = s.groupby(["outcome", "arm"])["slope"].std().unstack()
    for o in ("odi", "knee_fppa_peak_deg", "landing_peak_force_lsi_pct", "posture_cva_deg"):
        for a in ARMS[1:]:
            diff = mean.loc[o, a] - mean.loc[o, "control"]
            se = np.hypot(sd.loc[o, a], sd.loc[o, "control"]) / np.sqrt(1000)
            assert abs(diff - DEFAULT_EFFECTS[o][a]) < 4 * se, (o, a, diff, se)


def test_hip_effect_on_lsi_grows_with_baseline_asymmetry():
    t = simulate_truth(4000, 3, seed=9, dropout=False)
    sub = t.subjects[t.subjects["arm"] == "hip_strengthening"]
    a0 = 100 - sub["baseline_landing_peak_force_lsi_pct"]
    slope = sub["slope_landing_peak_force_lsi_pct"]
    fitted = np.polyfit(a0, slope, 1)[0]
    mod = t.moderators["landing_peak_force_lsi_pct"]["hip_strengthening"]
    ctrl = t.control_slopes["landing_peak_force_lsi_pct"]
    expected = mod["per_unit"] * (1 + ctrl / DEFAULT_EFFECTS["landing_peak_force_lsi_pct"][
        "hip_strengthening"])
    assert fitted > 0
    assert fitted == pytest.approx(expected, rel=0.1)


def test_dropout_is_monotone_in_range_and_follows_observed_pain():
    t = simulate_truth(4000, 4, seed=10)
    w = t.wide()
    present = w.pivot(index="label", columns="session", values="observed")
    assert present["1"].all()
    # monotone: once gone, never back
    arr = present[["1", "2", "3", "4"]].to_numpy()
    assert (np.diff(arr.astype(int), axis=1) <= 0).all()
    gone = 1 - arr[:, -1].mean()
    assert 0.10 <= gone <= 0.20
    # MAR: those who left before session 2 had higher observed pain at session 1
    pain1 = w[w["session"] == "1"].set_index("label")["pain_nrs"]
    left = ~present["2"]
    assert pain1[left].mean() > pain1[~left].mean() + 0.5
    assert simulate_truth(200, 4, seed=10, dropout=False).outcomes["observed"].all()


def test_confounded_assignment_depends_on_baseline_pain():
    t = simulate_truth(3000, 1, seed=11, confounded=True)
    w = t.wide().set_index("label")
    sub = t.subjects.set_index("label")
    core = (sub["arm"] == "core_stability").astype(float)
    r = np.corrcoef(w.loc[sub.index, "pain_nrs"], core)[0, 1]
    assert r > 0.15
    assert sub.loc[sub["arm"] == "hip_strengthening", "has_valgus"].mean() > \
        sub.loc[sub["arm"] == "control", "has_valgus"].mean() + 0.1
    # randomised cohorts show no such dependence
    t0 = simulate_truth(3000, 1, seed=11)
    w0, s0 = t0.wide().set_index("label"), t0.subjects.set_index("label")
    r0 = np.corrcoef(w0.loc[s0.index, "pain_nrs"], s0["arm"] == "core_stability")[0, 1]
    assert abs(r0) < 0.06


def test_effect_overrides_and_bad_options():
    null = {o: dict.fromkeys(ARMS[1:], 0.0) for o in OUTCOMES}
    t = simulate_truth(10, 2, seed=1, effects=null)
    assert t.effects["odi"]["core_stability"] == 0.0
    with pytest.raises(ConfigError, match="not a simulated outcome"):
        simulate_truth(10, 2, seed=1, effects={"vo2max": {"core_stability": 1.0}})
    with pytest.raises(ConfigError, match="n_sessions"):
        simulate_truth(10, 0, seed=1)


def test_truth_is_fast_enough_for_calibration_studies():
    import time

    t0 = time.perf_counter()
    simulate_truth(1000, 6, seed=0)
    assert time.perf_counter() - t0 < 1.0
