import numpy as np
import pytest

from cxlab.features.events import FeatureError
from cxlab.features.jump import CMJ_UNITS, cmj_metrics
from featuresim import G, cmj_force


@pytest.mark.parametrize(("mass", "v_to"), [(75.0, 2.6), (52.0, 1.9), (98.0, 3.1)])
def test_cmj_jump_height_by_impulse_momentum_within_2_mm(mass, v_to):
    fz, truth = cmj_force(mass_kg=mass, v_to=v_to, noise_n=1.5, seed=int(mass))
    m = cmj_metrics(fz, rate_hz=1000.0)
    assert m["body_mass_kg"] == pytest.approx(mass, abs=0.05)
    assert m["jump_height_impulse_m"] == pytest.approx(truth["h"], abs=0.002)
    assert m["takeoff_velocity_m_s"] == pytest.approx(v_to, abs=0.005)


def test_cmj_flight_height_is_g_t2_over_8_of_the_detected_flight():
    fz, truth = cmj_force()
    m = cmj_metrics(fz, rate_hz=1000.0)
    assert m["flight_time_s"] == pytest.approx(truth["flight_s"], abs=0.002)
    assert m["jump_height_flight_m"] == G * m["flight_time_s"] ** 2 / 8


def test_cmj_phases_match_the_analytic_profile():
    fz, truth = cmj_force(mass_kg=80.0, v_to=2.4, noise_n=1.0)
    m = cmj_metrics(fz, rate_hz=1000.0)
    mass = 80.0
    # depth = A T1^2 / (2 pi), braking impulse = m |v_min|, propulsive = m v_to
    assert m["countermovement_depth_m"] == pytest.approx(truth["depth"], abs=0.002)
    assert m["braking_impulse_n_s"] == pytest.approx(mass * -truth["v_min"], rel=0.01)
    assert m["propulsive_impulse_n_s"] == pytest.approx(mass * 2.4, rel=0.01)
    # Owen (2014) onset = 5 SD crossing - 30 ms: at most 30 ms before the true onset
    true_ct = truth["takeoff_s"] - truth["onset_s"]
    assert true_ct <= m["contraction_time_s"] <= true_ct + 0.031
    assert m["rsi_mod"] == pytest.approx(m["jump_height_impulse_m"] / m["contraction_time_s"])
    assert m["force_at_zero_velocity_n"] == pytest.approx(mass * G, rel=0.05)
    assert m["peak_landing_force_n"] == pytest.approx(truth["landing_peak"], rel=0.01)
    # peak propulsive power = max F v in propulsion, checked against the analytic curve
    dt = 1e-3
    tp = np.arange(0, 0.3, dt)
    b = (2.4 + G * 0.3 / 3) * np.pi / 0.6
    a = b * np.sin(np.pi * tp / 0.3) - G * (tp / 0.3) ** 2
    v = np.concatenate([[0], np.cumsum((a[1:] + a[:-1]) / 2 * dt)])
    assert m["peak_propulsive_power_w"] == pytest.approx((mass * (G + a) * v).max(), rel=0.01)
    assert m["peak_propulsive_force_n"] == pytest.approx((mass * (G + a)).max(), rel=0.01)
    assert set(m) == {k for k in CMJ_UNITS if "_lsi_" not in k and "_asym_" not in k}


def test_cmj_two_plates_give_side_values_and_asymmetry():
    fz, _ = cmj_force(noise_n=1.0)
    m = cmj_metrics(fz, rate_hz=1000.0, fz_left=0.45 * fz, fz_right=0.55 * fz)
    b = m["braking_impulse_n_s"]
    assert b.left + b.right == pytest.approx(b.bilateral, rel=1e-6)
    for q in ("braking_impulse", "propulsive_impulse", "peak_landing_force"):
        assert m[f"{q}_asym_pct"] == pytest.approx(100 * 0.10 / 0.5)  # (R-L)/mean = 20 %
        assert m[f"{q}_lsi_pct"] == pytest.approx(100 * 0.45 / 0.55)


def test_cmj_known_body_mass_overrides_quiet_standing():
    fz, truth = cmj_force(mass_kg=70.0)
    m = cmj_metrics(fz * 1.0, rate_hz=1000.0, body_mass_kg=70.0)
    assert m["body_mass_kg"] == 70.0
    assert m["jump_height_impulse_m"] == pytest.approx(truth["h"], abs=0.002)


def test_cmj_without_takeoff_is_a_feature_error():
    fz = np.full(4000, 700.0)
    with pytest.raises(FeatureError, match="no take-off"):
        cmj_metrics(fz, rate_hz=1000.0)


def test_rsi_mod_carries_the_unit_of_height_over_time():
    # Ebben & Petushek (2010): jump height (m) / time to take-off (s), so m/s, not "1"
    assert CMJ_UNITS["jump_height_impulse_m"] == "m" and CMJ_UNITS["contraction_time_s"] == "s"
    assert CMJ_UNITS["rsi_mod"] == "m/s"


def test_noise_spikes_above_the_threshold_in_flight_do_not_split_the_flight():
    # single-sample spikes of 30-40 N in mid-flight (plate noise) are not landings: a
    # split flight moved take-off into the air and gave a jump height off by decimetres
    fz, truth = cmj_force(noise_n=1.0)
    to = round(truth["takeoff_s"] * 1000)
    for k in (90, 91, 200, 333):
        fz[to + k] = 35.0
    m = cmj_metrics(fz, rate_hz=1000.0)
    assert m["flight_time_s"] == pytest.approx(truth["flight_s"], abs=0.002)
    assert m["jump_height_impulse_m"] == pytest.approx(truth["h"], abs=0.002)
