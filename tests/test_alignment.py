import ezc3d
import numpy as np
import pytest

from cxlab.features.alignment import (
    hip_joint_centres,
    knee_flexion,
    knee_fppa,
    landing_alignment,
    pelvic_obliquity,
)


def _p(*xyz):
    return np.array([xyz], float)


def test_fppa_left_leg_valgus_hand_worked():
    # left leg at y = +0.10 (subject's left); knee 5 cm toward the midline (-y): valgus.
    # thigh and shank each lean atan(0.05/0.4) = 7.125 deg -> FPPA = 2 * 7.125 = 14.25 deg
    f = knee_fppa(_p(0, 0.10, 0.9), _p(0, 0.05, 0.5), _p(0, 0.10, 0.1), side="left")
    assert f[0] == pytest.approx(2 * np.degrees(np.arctan(0.05 / 0.4)))
    assert f[0] == pytest.approx(14.25, abs=0.01)


def test_fppa_sign_flips_for_varus_and_for_the_right_leg():
    hip, knee_med, ankle = _p(0, -0.10, 0.9), _p(0, -0.05, 0.5), _p(0, -0.10, 0.1)
    # right leg at y = -0.10: knee at -0.05 is toward the midline (+y): valgus
    assert knee_fppa(hip, knee_med, ankle, side="right")[0] == pytest.approx(14.25, abs=0.01)
    knee_lat = _p(0, -0.13, 0.5)  # knee 3 cm lateral: varus, atan(0.03/0.4) * 2
    assert knee_fppa(hip, knee_lat, ankle, side="right")[0] == pytest.approx(
        -2 * np.degrees(np.arctan(0.03 / 0.4))
    )
    # the same left-leg geometry with the knee lateral (+y) is varus
    f = knee_fppa(_p(0, 0.1, 0.9), _p(0, 0.13, 0.5), _p(0, 0.1, 0.1), side="left")
    assert f[0] < 0


def test_fppa_ignores_the_sagittal_plane_and_handles_asymmetric_segments():
    # hip-ankle line slanted: hip (0.2, 0.9), ankle (0.1, 0.0); knee (0.1, 0.45) [y, z]
    # line at z = 0.45 is at y = 0.15 -> knee 5 cm toward -y (medial for left): valgus.
    # angle = 180 - angle((0.1, 0.45), (0, -0.45)) = atan(0.1 / 0.45) = 12.529 deg
    hip, knee, ankle = _p(0.3, 0.2, 0.9), _p(0.5, 0.1, 0.45), _p(-0.1, 0.1, 0.0)
    assert knee_fppa(hip, knee, ankle, side="left")[0] == pytest.approx(
        np.degrees(np.arctan(0.1 / 0.45))
    )
    # sagittal knee flexion is 3-D and nonzero here; a straight leg has zero flexion
    assert knee_flexion(_p(0, 0, 1), _p(0, 0, 0.5), _p(0, 0, 0))[0] == pytest.approx(0.0)
    assert knee_flexion(_p(0, 0, 1), _p(0.5, 0, 0.5), _p(0, 0, 0))[0] == pytest.approx(90.0)


def test_pelvic_obliquity_and_landing_alignment_per_side():
    n = 51  # odd: t = 0.5 is sampled
    t = np.linspace(0, 1, n)
    lasi = np.column_stack([np.zeros(n), np.full(n, 0.12), 1.0 - 0.02 * np.sin(np.pi * t)])
    rasi = np.column_stack([np.zeros(n), np.full(n, -0.12), np.full(n, 1.0)])
    obl = pelvic_obliquity(lasi, rasi)
    # left ASIS 2 cm below right over 24 cm: atan(0.02 / 0.24) = 4.764 deg drop on the left
    assert obl.min() == pytest.approx(-np.degrees(np.arctan(0.02 / 0.24)), abs=1e-3)
    knee_y = 0.10 - 0.05 * np.sin(np.pi * t)  # left knee moves medially, then back
    mk = {
        "LHJC": np.tile([0, 0.1, 0.9], (n, 1)),
        "LAJC": np.tile([0, 0.1, 0.1], (n, 1)),
        "LKJC": np.column_stack([0.3 * np.sin(np.pi * t), knee_y, np.full(n, 0.5)]),
        "RHJC": np.tile([0, -0.1, 0.9], (n, 1)),
        "RAJC": np.tile([0, -0.1, 0.1], (n, 1)),
        "RKJC": np.tile([0.1, -0.1, 0.5], (n, 1)),
        "LASI": lasi,
        "RASI": rasi,
    }
    m = landing_alignment(mk)
    assert m["knee_fppa_peak_deg"].left == pytest.approx(14.25, abs=0.05)
    # peak flexion (largest forward knee) coincides with peak valgus at mid-landing
    assert m["knee_fppa_at_peak_flexion_deg"].left == pytest.approx(
        m["knee_fppa_peak_deg"].left, abs=0.2
    )
    assert m["knee_fppa_peak_deg"].right == pytest.approx(0.0, abs=1e-9)
    # a varus knee's peak is its most negative FPPA, not the near-zero maximum
    mk["RKJC"] = np.column_stack([np.zeros(n), -0.10 - 0.03 * np.sin(np.pi * t), np.full(n, 0.5)])
    m = landing_alignment(mk)
    assert m["knee_fppa_peak_deg"].right == pytest.approx(
        -2 * np.degrees(np.arctan(0.03 / 0.4)), abs=1e-6
    )
    assert m["pelvic_drop_peak_deg"].left == pytest.approx(4.764, abs=1e-3)
    assert m["pelvic_drop_peak_deg"].right == pytest.approx(0.0, abs=1e-9)


def test_harrington_hip_centres_on_a_real_static_trial(real_dir):
    c = ezc3d.c3d(str(real_dir / "edge_cases" / "btk_PiG_Calibration-FlatFoot-One.c3d"))
    labels = c["parameters"]["POINT"]["LABELS"]["value"]
    pts = c["data"]["points"][:3, :, 0].T / 1000.0
    m = {
        n: pts[labels.index(n)][None]
        for n in ("LASI", "RASI", "LPSI", "RPSI", "LKNE", "RKNE", "LANK", "RANK")
    }
    lh, rh = hip_joint_centres(m["LASI"], m["RASI"], m["LPSI"], m["RPSI"])
    pw = np.linalg.norm(m["LASI"] - m["RASI"])
    # hip centres: between the ASIS (narrower), below them, and symmetric about mid-ASIS
    assert 0.5 * pw < np.linalg.norm(lh - rh) < pw
    assert lh[0, 2] < m["LASI"][0, 2] and rh[0, 2] < m["RASI"][0, 2]
    mid = (m["LASI"] + m["RASI"]) / 2
    assert np.linalg.norm(lh - mid) == pytest.approx(np.linalg.norm(rh - mid), rel=1e-9)
    # a standing subject: knee FPPA within a few degrees of straight on both legs;
    # the lab frame of this file is its own, so only the magnitude is checked
    for side, h, k, a in (("left", lh, m["LKNE"], m["LANK"]), ("right", rh, m["RKNE"], m["RANK"])):
        assert abs(knee_fppa(h, k, a, side=side, ml_axis=0)[0]) < 15
