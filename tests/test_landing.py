import numpy as np
import pytest
from scipy.constants import g as G  # noqa: N812 (the physics symbol)

from cxlab.features.events import FeatureError
from cxlab.features.landing import landing_body_mass, landing_metrics, touchdown


def _landing(mass=70.0, rate=1000.0, peak_bw=4.0, t_peak=0.05, settle_tau=0.15, noise=1.0):
    """Box → unloaded 0.3 s → linear rise to peak in t_peak → exponential settle to BW."""
    rng = np.random.default_rng(7)
    bw = mass * G
    pre = np.zeros(int(0.3 * rate))
    n_rise = int(t_peak * rate)
    rise = bw * peak_bw * np.arange(1, n_rise + 1) / n_rise
    t = np.arange(1, int(3.0 * rate) + 1) / rate
    settle = bw + (peak_bw - 1) * bw * np.exp(-t / settle_tau)
    fz = np.concatenate([pre, rise, settle]) + rng.normal(0, noise, pre.size + n_rise + t.size)
    return fz, {"td": pre.size, "peak": bw * peak_bw, "bw": bw}


def test_landing_peak_force_and_average_loading_rate():
    fz, truth = _landing(peak_bw=4.0, t_peak=0.05)
    assert touchdown(fz, rate_hz=1000.0) == truth["td"]
    m = landing_metrics(fz, rate_hz=1000.0, body_mass_kg=70.0)
    assert m["peak_force_n"] == pytest.approx(truth["peak"], abs=5)
    assert m["peak_force_bw"] == pytest.approx(4.0, abs=0.01)
    # touchdown sample has F = peak/50, peak 49 samples later: 4 BW / 0.049 s
    assert m["loading_rate_bw_s"] == pytest.approx(4.0 / 0.049, rel=0.02)


def test_time_to_stabilisation_by_sequential_average_matches_a_direct_computation():
    fz, truth = _landing(settle_tau=0.1)
    m = landing_metrics(fz, rate_hz=1000.0, body_mass_kg=70.0)
    post = fz[truth["td"] :]
    # independent evaluation: explicit loop over sequential averages (Colby 1999, 0.25 SD)
    mu, sd = post.mean(), post.std()
    last = max(k for k in range(post.size) if abs(post[: k + 1].mean() - mu) > 0.25 * sd)
    assert m["time_to_stabilisation_s"] == pytest.approx((last + 1) / 1000.0)
    # a slower settle takes longer to stabilise
    slow = landing_metrics(_landing(settle_tau=0.3)[0], rate_hz=1000.0, body_mass_kg=70.0)
    assert slow["time_to_stabilisation_s"] > m["time_to_stabilisation_s"]


def test_landing_body_mass_from_final_quiet_standing():
    fz, truth = _landing(mass=63.0)
    bm = landing_body_mass(fz, rate_hz=1000.0, start=truth["td"])
    assert bm.body_mass_kg == pytest.approx(63.0, abs=0.05)
    assert bm.quiet.start > truth["td"] + 1000  # a window long after the impact


def test_landing_without_steady_end_or_touchdown_is_a_feature_error():
    fz, truth = _landing(settle_tau=5.0)  # still settling at the end
    with pytest.raises(FeatureError, match="no steady"):
        landing_body_mass(fz, rate_hz=1000.0, start=truth["td"], max_sd_frac=0.01)
    with pytest.raises(FeatureError, match="no touchdown"):
        touchdown(np.full(2000, 700.0), rate_hz=1000.0)


def test_missing_force_after_touchdown_is_an_error_not_instant_stabilisation():
    # one NaN made the mean and SD NaN, so no sequential average was "outside": TTS = 0 s
    fz, truth = _landing()
    fz[truth["td"] + 1700] = np.nan
    with pytest.raises(FeatureError, match="NaN"):
        landing_metrics(fz, rate_hz=1000.0, body_mass_kg=70.0)


def test_a_noise_spike_while_on_the_box_is_not_the_touchdown():
    fz, truth = _landing()
    fz[truth["td"] - 150 : truth["td"] - 148] = 30.0  # 2 ms above 20 N, 150 ms before landing
    assert touchdown(fz, rate_hz=1000.0) == truth["td"]
