"""experiments.analysis.asymmetry_table: the Robinson index of per-side features without a twin."""

import numpy as np
import pandas as pd
import pytest

from cxlab.experiments.analysis import asymmetry_table
from cxlab.store import Store


def _feats(rows):
    cols = ["subject_id", "session", "task", "trial", "feature", "side", "value", "unit"]
    df = pd.DataFrame(rows, columns=cols)
    return df.assign(recording_id="0123456789abcdef", method="test")[
        ["recording_id", *cols, "method"]
    ]


def test_computed_index_is_robinson_by_hand_and_a_zero_sum_is_left_out(tmp_path):
    st = Store(tmp_path / "st")
    sid = "00000000000a"
    rows = [
        (sid, "1", "hop", 1, "hop_distance_m", "left", 1.0, "m"),
        (sid, "1", "hop", 2, "hop_distance_m", "left", 1.2, "m"),
        (sid, "1", "hop", 1, "hop_distance_m", "right", 1.5, "m"),
        (sid, "1", "hop", 1, "net_moment_n_m", "left", -2.0, "N.m"),  # R + L = 0
        (sid, "1", "hop", 1, "net_moment_n_m", "right", 2.0, "N.m"),
        (sid, "1", "hop", 1, "knee_angle_deg", "left", 10.0, "deg"),  # angles are left out
        (sid, "1", "hop", 1, "knee_angle_deg", "right", 12.0, "deg"),
    ]
    st.write("features", _feats(rows))
    keep = pd.DataFrame({"subject_id": [sid], "session": ["1"], "session_index": [0]})
    got = asymmetry_table(st, keep)
    assert got["measure"].tolist() == ["hop_distance_m"]
    # Robinson et al. (1987): 100 (R - L) / (0.5 (R + L)) with L = mean(1.0, 1.2) = 1.1
    assert got["asym_pct"].item() == pytest.approx(100 * (1.5 - 1.1) / (0.5 * (1.5 + 1.1)))
    assert list(got.columns) == ["subject_id", "session_index", "measure", "asym_pct"]
    assert np.isfinite(got["asym_pct"]).all()


def test_single_leg_trials_signed_features_and_tasks_are_kept_apart(tmp_path):
    st = Store(tmp_path / "st")
    sid = "00000000000a"

    def rows(rec, task, feature, side, value, unit="ms"):
        return (rec, sid, "1", task, 1, feature, side, value, unit)

    data = [
        # single-leg trials: one side a recording, never paired into an "asymmetry"
        rows("a" * 16, "slcmj", "slcmj_body_mass_kg", "left", 70.0, "kg"),
        rows("b" * 16, "slcmj", "slcmj_body_mass_kg", "right", 71.0, "kg"),
        # a signed quantity (negative somewhere): no ratio scale, left out everywhere
        rows("c" * 16, "cmj", "emg_onset_ms", "left", -20.0),
        rows("c" * 16, "cmj", "emg_onset_ms", "right", 30.0),
        # one feature in two tasks: one measure per task
        rows("c" * 16, "cmj", "emg_peak_ms", "left", 100.0),
        rows("c" * 16, "cmj", "emg_peak_ms", "right", 120.0),
        rows("d" * 16, "landing", "emg_peak_ms", "left", 50.0),
        rows("d" * 16, "landing", "emg_peak_ms", "right", 40.0),
    ]
    cols = ["recording_id", "subject_id", "session", "task", "trial", "feature", "side"]
    df = pd.DataFrame(data, columns=[*cols, "value", "unit"]).assign(method="test")
    st.write("features", df)
    keep = pd.DataFrame({"subject_id": [sid], "session": ["1"], "session_index": [0]})
    got = asymmetry_table(st, keep).set_index("measure")["asym_pct"]
    assert sorted(got.index) == ["cmj emg_peak_ms", "landing emg_peak_ms"]
    # Robinson et al. (1987) by hand: 100 (R - L) / (0.5 (R + L))
    assert got["cmj emg_peak_ms"] == pytest.approx(100 * 20 / 110)
    assert got["landing emg_peak_ms"] == pytest.approx(100 * -10 / 45)
