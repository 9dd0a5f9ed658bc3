"""IMTP / isometric squat against an exponential force rise with closed-form RFD and impulse."""

import numpy as np
import pytest

from cxlab.features.events import FeatureError
from cxlab.features.isometric import IMTP_UNITS, imtp_metrics
from featuresim import G, imtp_force


def test_imtp_peak_force_gross_net_and_per_kg():
    fz, t = imtp_force(mass_kg=80.0, delta_n=2200.0)
    m = imtp_metrics(fz, rate_hz=1000.0)
    assert m["peak_force_n"] == pytest.approx(t["peak"], rel=1e-9)
    assert m["peak_force_net_n"] == pytest.approx(t["peak"] - 80.0 * G, rel=1e-9)
    assert m["peak_force_n_kg"] == pytest.approx(t["peak"] / 80.0, rel=1e-6)
    assert m["body_mass_kg"] == pytest.approx(80.0)
    assert m["time_to_peak_force_s"] == pytest.approx(t["peak_s"] - t["onset_s"] - 0.001)
    assert set(m) <= set(IMTP_UNITS)


def test_imtp_rfd_and_impulse_windows_match_the_closed_form_from_the_onset():
    fz, t = imtp_force(tau_s=0.10)
    m = imtp_metrics(fz, rate_hz=1000.0)
    # noise-free weighing: SD = 0, so onset is the first sample above BW, 1 ms after t0
    t1 = 0.001
    for w in (50, 100, 200):
        assert m[f"rfd_0_{w}_n_s"] == pytest.approx(t["rfd"](t1, w / 1000), rel=1e-9)
        assert m[f"impulse_0_{w}_n_s"] == pytest.approx(t["impulse"](t1, w / 1000), rel=2e-3)


def test_imtp_onset_with_noise_stays_within_a_few_ms_and_rfd_within_3_pct():
    fz, t = imtp_force(tau_s=0.15, noise_n=3.0, seed=4)
    m = imtp_metrics(fz, rate_hz=1000.0)
    for w in (100, 200):
        assert m[f"rfd_0_{w}_n_s"] == pytest.approx(t["rfd"](0.0, w / 1000), rel=0.03)


def test_imtp_per_side_asymmetry_names_each_window_and_skips_near_zero():
    fz, _ = imtp_force()
    m = imtp_metrics(fz, rate_hz=1000.0, fz_left=0.45 * fz, fz_right=0.55 * fz)
    for q in ("peak_force_net", "rfd_0_100", "rfd_0_200", "impulse_0_100", "impulse_0_200"):
        assert m[f"{q}_lsi_pct"] == pytest.approx(100 * 0.45 / 0.55, rel=1e-6)
        assert m[f"{q}_asym_pct"] == pytest.approx(20.0, rel=1e-6)
    # one foot does all the pulling: the other's net force is ~0 but the max is large
    bw = 80.0 * G
    left = np.full(fz.size, bw / 2)
    m = imtp_metrics(fz, rate_hz=1000.0, fz_left=left, fz_right=fz - left)
    assert m["peak_force_net_lsi_pct"] == pytest.approx(0.0, abs=1e-6)


def test_imtp_window_past_the_record_is_nan_and_no_rise_is_an_error():
    fz, _ = imtp_force()
    cut = fz[: 1500 + 120]
    m = imtp_metrics(cut, rate_hz=1000.0)
    assert np.isfinite(m["rfd_0_100_n_s"]) and np.isnan(m["rfd_0_200_n_s"])
    with pytest.raises(FeatureError, match="never rises above body weight"):
        imtp_metrics(np.full(3000, 700.0), rate_hz=1000.0)
