import numpy as np
import pandas as pd
import pytest

from cxlab.features.strength import strength_features


def test_strength_ratios_and_lsi_hand_worked():
    rows = [("abcdefabcdef", "1", g, s, v) for g, s, v in [
        ("knee_flexors", "left", 60.0), ("knee_flexors", "right", 80.0),
        ("knee_extensors", "left", 120.0), ("knee_extensors", "right", 160.0),
        ("shoulder_er", "left", 20.0), ("shoulder_ir", "left", 30.0),
        ("shoulder_er", "right", np.nan), ("shoulder_ir", "right", 28.0)]]
    df = pd.DataFrame(rows, columns=["subject_id", "session", "muscle_group", "side",
                                     "peak_torque_nm"])
    f = strength_features(df).set_index(["feature", "side"])["value"]
    assert f[("strength_hq_ratio", "left")] == pytest.approx(0.5)
    assert f[("strength_hq_ratio", "right")] == pytest.approx(0.5)
    assert f[("strength_er_ir_ratio", "left")] == pytest.approx(20 / 30)
    assert ("strength_er_ir_ratio", "right") not in f.index  # missing ER torque: no row
    assert f[("strength_knee_flexors_lsi_pct", "bilateral")] == pytest.approx(75.0)
    assert f[("strength_knee_extensors_lsi_pct", "bilateral")] == pytest.approx(75.0)
    assert ("strength_shoulder_er_lsi_pct", "bilateral") not in f.index
    assert f[("strength_shoulder_ir_lsi_pct", "bilateral")] == pytest.approx(100 * 28 / 30)
