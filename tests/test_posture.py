import numpy as np
import pytest

from cxlab.features.events import FeatureError
from cxlab.features.posture import craniovertebral_angle, posture_metrics


def _static(n=200, seed=0, **override):
    rng = np.random.default_rng(seed)
    base = {
        "C7": [0.00, 0.00, 1.50],
        "LTRAGUS": [0.08, 0.07, 1.58],
        "RTRAGUS": [0.08, -0.07, 1.58],
        "LSHO": [0.05, 0.18, 1.45],
        "RSHO": [0.02, -0.18, 1.45],
        "LASI": [0.10, 0.12, 1.00],
        "RASI": [0.10, -0.12, 1.00],
        "LPSI": [-0.08, 0.05, 1.03],
        "RPSI": [-0.08, -0.05, 1.03],
    } | override
    return {k: np.asarray(v, float) + rng.normal(0, 0.001, (n, 3)) for k, v in base.items()}


def test_cva_hand_worked():
    # tragus 8 cm anterior and 8 cm above C7 -> 45 deg; directly above -> 90 deg
    assert craniovertebral_angle([0, 0, 1.5], [0.08, 0, 1.58]) == pytest.approx(45.0)
    assert craniovertebral_angle([0, 0, 1.5], [0.0, 0, 1.6]) == pytest.approx(90.0)
    # Yip 2008 forward-head range: tragus 10 cm forward, 7 cm up -> atan(7/10) = 34.99 deg
    assert craniovertebral_angle([0, 0, 0], [0.10, 0.0, 0.07]) == pytest.approx(34.992, abs=1e-3)


def test_posture_metrics_are_medians_over_frames():
    mk = _static()
    mk["C7"][:20] += 0.05  # a brief marker glitch does not move the median
    m = posture_metrics(mk)
    assert m["cva_deg"] == pytest.approx(45.0, abs=0.5)
    assert m["shoulder_protraction_m"].left == pytest.approx(0.05, abs=0.002)
    assert m["shoulder_protraction_m"].right == pytest.approx(0.02, abs=0.002)
    # mid-ASIS (0.10, 1.00), mid-PSIS (-0.08, 1.03): ASIS lower -> anterior tilt atan(.03/.18)
    assert m["pelvic_tilt_deg"] == pytest.approx(np.degrees(np.arctan(0.03 / 0.18)), abs=0.5)


def test_posterior_tilt_is_negative_and_missing_marker_is_named():
    m = posture_metrics(_static(LASI=[0.10, 0.12, 1.06], RASI=[0.10, -0.12, 1.06]))
    assert m["pelvic_tilt_deg"] < 0
    mk = _static()
    del mk["LSHO"]
    with pytest.raises(FeatureError, match="LSHO"):
        posture_metrics(mk)


def test_an_all_occluded_tragus_falls_back_to_the_other_one():
    # C3D files keep the label of a marker that was never seen (all NaN); "either" tragus
    mk = _static()
    mk["LTRAGUS"] = np.full_like(mk["LTRAGUS"], np.nan)
    assert posture_metrics(mk)["cva_deg"] == pytest.approx(45.0, abs=0.5)
