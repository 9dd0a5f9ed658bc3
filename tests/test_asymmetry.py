import numpy as np
import pandas as pd
import pytest

from cxlab.features.asymmetry import (
    asymmetry_table,
    limb_symmetry_index,
    symmetry_angle,
    symmetry_index,
    weaker_limb_lsi,
)


def test_limb_symmetry_index_hand_worked_and_near_zero():
    assert limb_symmetry_index(90.0, 100.0) == pytest.approx(90.0)
    np.testing.assert_allclose(limb_symmetry_index([45, 120], [50, 100]), [90.0, 120.0])
    assert np.isnan(limb_symmetry_index(5.0, 0.0))  # division by zero
    assert np.isnan(limb_symmetry_index(-5.0, 10.0))  # opposite signs: meaningless
    assert limb_symmetry_index(-5.0, -10.0) == pytest.approx(50.0)


def test_robinson_symmetry_index_hand_worked_sign_and_zero():
    # (R - L) / (0.5 (R + L)): L = 90, R = 110 -> 20 / 100 = 20 %
    assert symmetry_index(90.0, 110.0) == pytest.approx(20.0)
    assert symmetry_index(110.0, 90.0) == pytest.approx(-20.0)  # left larger -> negative
    assert symmetry_index(0.0, 5.0) == pytest.approx(200.0)  # bound for one sign
    assert np.isnan(symmetry_index(-1.0, 1.0))  # R + L = 0
    assert abs(symmetry_index(-1.0, 3.0)) > 200  # opposite signs blow past 200
    np.testing.assert_allclose(symmetry_index([1, 2], [1, 4]), [0.0, 200 / 3])


def test_symmetry_angle_hand_worked_against_zifchock_2008():
    # (45 - atan(L/R)) / 90 * 100; L = R -> 0; L = 90, R = 110 -> (45 - 39.2894) / 90
    assert symmetry_angle(1.0, 1.0) == pytest.approx(0.0)
    expected = (45 - np.degrees(np.arctan(90 / 110))) / 90 * 100
    assert symmetry_angle(90.0, 110.0) == pytest.approx(expected)
    assert expected == pytest.approx(6.345, abs=1e-3)
    assert symmetry_angle(1.0, 0.0) == pytest.approx(-50.0)  # R = 0 is finite
    assert symmetry_angle(0.0, 1.0) == pytest.approx(50.0)
    assert symmetry_angle(-1.0, 1.0) == pytest.approx(100.0)  # equal size, opposite sign
    assert np.isnan(symmetry_angle(0.0, 0.0))
    v = symmetry_angle(np.array([-3.0, 2.0, 5.0]), np.array([1.0, -7.0, 5.0]))
    assert np.all(np.abs(v) <= 100)


def test_asymmetry_table_pairs_sides_and_names_the_dominant_one():
    df = pd.DataFrame(
        {
            "recording_id": ["a"] * 5 + ["b"] * 2,
            "feature": ["x", "x", "y", "y", "z", "x", "x"],
            "side": ["left", "right", "left", "right", "bilateral", "left", "right"],
            "value": [90.0, 110.0, 5.0, 4.0, 1.0, 3.0, 3.0],
        }
    )
    t = asymmetry_table(df)
    assert list(t["feature"]) == ["x", "y", "x"]
    np.testing.assert_allclose(t["asym_pct"], [20.0, 100 * -1 / 4.5, 0.0])
    np.testing.assert_allclose(t["asym_abs_pct"], np.abs(t["asym_pct"]))
    np.testing.assert_allclose(t["lsi_pct"], [100 * 90 / 110, 80.0, 100.0])
    assert list(t["dominant_side"]) == ["right", "left", "none"]
    inv = asymmetry_table(df, involved_side="left", features=["x"])
    np.testing.assert_allclose(inv["lsi_pct"], [100 * 90 / 110, 100.0])


def test_default_lsi_is_weaker_over_stronger_magnitude_for_negative_pairs():
    # 100 min/max of two negatives put the larger magnitude on top: 200 %, not 50 %
    df = pd.DataFrame(
        {
            "recording_id": ["a", "a"],
            "feature": ["x", "x"],
            "side": ["left", "right"],
            "value": [-4.0, -8.0],
        }
    )
    assert asymmetry_table(df)["lsi_pct"].item() == pytest.approx(50.0)


def test_weaker_limb_lsi_is_min_over_max_of_magnitudes():
    np.testing.assert_allclose(weaker_limb_lsi([90, 100, -6], [100, 90, -3]), [90, 90, 50])
    assert np.isnan(weaker_limb_lsi(0.0, 0.0))  # nothing to compare
    assert np.isnan(weaker_limb_lsi(-5.0, 10.0))  # opposite signs
    assert weaker_limb_lsi(7.0, 7.0) == pytest.approx(100.0)
