"""features.pairing.side_pairs: which left/right values may be compared, per task."""

import numpy as np
import pytest

from cxlab.features.battery import single_leg_lsi
from cxlab.features.pairing import (
    PAIR_COLUMNS,
    SAME_RECORDING,
    SAME_SESSION,
    SEPARATE_TRIALS,
    side_pairs,
)
from cxlab.features.tasks import SINGLE_LEG_METRICS, SINGLE_LEG_PAIRS
from featuresim import feature_rows

SID = "00000000000a"


def _feats(rows):
    return feature_rows(rows, subject_id=SID, session="1")


def _single_leg_session():
    h = "slcmj_jump_height_impulse_m"
    return _feats(
        [
            # two left-leg trials, one right-leg trial (each its own recording)
            ("a" * 16, "cmj_left", "1", h, "left", 0.20, "m"),
            ("b" * 16, "cmj_left", "2", h, "left", 0.26, "m"),
            ("c" * 16, "cmj_right", "1", h, "right", 0.18, "m"),
            # what else a single-leg trial yields: never paired across trials
            ("a" * 16, "cmj_left", "1", "slcmj_body_mass_kg", "left", 70.0, "kg"),
            ("c" * 16, "cmj_right", "1", "slcmj_body_mass_kg", "right", 71.0, "kg"),
            ("a" * 16, "cmj_left", "1", "slcmj_n_jumps", "left", 1.0, "1"),
            ("c" * 16, "cmj_right", "1", "slcmj_n_jumps", "right", 1.0, "1"),
            ("a" * 16, "cmj_left", "1", "slcmj_time_to_takeoff_s", "left", 0.5, "s"),
            ("c" * 16, "cmj_right", "1", "slcmj_time_to_takeoff_s", "right", 0.6, "s"),
        ]
    )


def test_single_leg_trials_pair_only_declared_performance_outcomes_by_hand():
    p = side_pairs(_single_leg_session())
    assert list(p.columns) == PAIR_COLUMNS
    assert p["feature"].tolist() == ["slcmj_jump_height_impulse_m"]
    row = p.iloc[0]
    assert (row["task"], row["pairing"]) == ("cmj_single_leg", SEPARATE_TRIALS)
    # left = mean(0.20, 0.26) = 0.23 from 2 trials, right = 0.18 from 1 trial
    assert row["left"] == pytest.approx(0.23)
    assert row["right"] == pytest.approx(0.18)
    assert (row["n_left"], row["n_right"]) == (2, 1)


def test_separate_trial_pairs_are_the_means_of_the_stored_single_leg_lsi():
    f = _single_leg_session()
    p = side_pairs(f).iloc[0]
    stored = single_leg_lsi(f, pairs=SINGLE_LEG_PAIRS, metrics=SINGLE_LEG_METRICS)
    lsi = stored.set_index("feature")["value"]["slcmj_jump_height_impulse_lsi_pct"]
    assert lsi == pytest.approx(100 * min(p["left"], p["right"]) / max(p["left"], p["right"]))


def test_body_mass_and_counts_are_never_paired_even_in_one_recording_of_a_single_leg_task():
    rows = [
        ("a" * 16, "hop_left", "1", "slhop_n_hops", "left", 10.0, "1"),
        ("b" * 16, "hop_right", "1", "slhop_n_hops", "right", 9.0, "1"),
        ("a" * 16, "hop_left", "1", "slhop_body_mass_kg", "left", 70.0, "kg"),
        ("b" * 16, "hop_right", "1", "slhop_body_mass_kg", "right", 70.5, "kg"),
        ("a" * 16, "hop_left", "1", "slhop_rsi", "left", 1.2, "m/s"),
        ("b" * 16, "hop_right", "1", "slhop_rsi", "right", 0.9, "m/s"),
    ]
    p = side_pairs(_feats(rows))
    assert p["feature"].tolist() == ["slhop_rsi"]
    assert p["task"].item() == "hop_single_leg"
    assert (p["left"].item(), p["right"].item()) == (1.2, 0.9)


def test_same_recording_pairs_per_task_and_mean_over_recordings_by_hand():
    rows = [
        ("a" * 16, "cmj", "1", "peak_force_n", "left", 1000.0, "N"),
        ("a" * 16, "cmj", "1", "peak_force_n", "right", 1100.0, "N"),
        ("b" * 16, "cmj", "2", "peak_force_n", "left", 1200.0, "N"),
        ("b" * 16, "cmj", "2", "peak_force_n", "right", 1300.0, "N"),
        ("c" * 16, "cmj", "3", "peak_force_n", "left", 5000.0, "N"),  # one side only
        # the same feature in another task: its own pair, never a mean across tasks
        ("d" * 16, "landing", "1", "peak_force_n", "left", 2000.0, "N"),
        ("d" * 16, "landing", "1", "peak_force_n", "right", 1800.0, "N"),
        # angles and signed quantities are never paired
        ("a" * 16, "cmj", "1", "knee_fppa_deg", "left", 8.0, "deg"),
        ("a" * 16, "cmj", "1", "knee_fppa_deg", "right", 10.0, "deg"),
        ("a" * 16, "cmj", "1", "emg_onset_ms", "left", -20.0, "ms"),
        ("a" * 16, "cmj", "1", "emg_onset_ms", "right", 30.0, "ms"),
        ("b" * 16, "cmj", "2", "emg_onset_ms", "left", 20.0, "ms"),
        ("b" * 16, "cmj", "2", "emg_onset_ms", "right", 30.0, "ms"),
    ]
    p = side_pairs(_feats(rows))
    assert p[["task", "feature"]].values.tolist() == [
        ["cmj", "peak_force_n"],
        ["landing", "peak_force_n"],
    ]
    assert (p["pairing"] == SAME_RECORDING).all()
    # cmj: left mean(1000, 1200) = 1100, right mean(1100, 1300) = 1200, 2 recordings;
    # the left-only recording c is not a pair
    np.testing.assert_allclose(p[["left", "right"]].to_numpy(), [[1100, 1200], [2000, 1800]])
    assert p["n_left"].tolist() == [2, 1] and p["n_right"].tolist() == [2, 1]


def test_rows_without_a_recording_id_are_one_trial_per_trial_label():
    rows = [
        (None, "landing", "1", "landing_peak_force_n", "left", 1500.0, "N"),
        (None, "landing", "1", "landing_peak_force_n", "right", 1200.0, "N"),
        (None, "landing", "2", "landing_peak_force_n", "left", 1520.0, "N"),
        (None, "landing", "2", "landing_peak_force_n", "right", 1180.0, "N"),
    ]
    p = side_pairs(_feats(rows))
    assert (p["left"].item(), p["right"].item()) == (1510.0, 1190.0)
    assert (p["n_left"].item(), p["n_right"].item()) == (2, 2)
    assert p["pairing"].item() == SAME_RECORDING


def test_rows_without_recording_or_trial_pair_within_the_session_and_say_so():
    rows = [  # the strength table: no recording, no trial
        (None, None, None, "strength_hq_ratio", "left", 0.5, "1"),
        (None, None, None, "strength_hq_ratio", "right", 0.64, "1"),
    ]
    p = side_pairs(_feats(rows))
    assert p["pairing"].item() == SAME_SESSION
    assert (p["left"].item(), p["right"].item(), p["n_left"].item()) == (0.5, 0.64, 1)


def test_no_sided_rows_give_an_empty_table_with_its_columns():
    p = side_pairs(_feats([("a" * 16, "posture", "1", "cva_deg", "bilateral", 44.0, "deg")]))
    assert p.empty and list(p.columns) == PAIR_COLUMNS
