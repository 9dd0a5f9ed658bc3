import ezc3d
import numpy as np
import pytest
from scipy import signal as sps
from scipy import stats

from cxlab._check import InputFormatError
from cxlab.features.balance import cop_ellipse_area, cop_metrics, welch_psd
from cxlab.features.signal import lowpass
from featuresim import cop_normal


def test_prediction_ellipse_area_matches_the_analytic_value_for_a_known_normal():
    cov = np.array([[4e-5, 1e-5], [1e-5, 2e-5]])
    analytic = 5.991464547 * np.pi * np.sqrt(np.linalg.det(cov))
    areas = [cop_ellipse_area(cop_normal(n=20_000, cov=cov, seed=s)) for s in range(5)]
    # sampling error of sqrt(det S) with n = 20 000 is ~0.7 %; allow 3 %
    assert np.mean(areas) == pytest.approx(analytic, rel=0.03)


def test_prediction_ellipse_covers_95_percent_of_new_samples_even_for_small_n():
    # the defining property of a prediction region, averaged over repeated samples of n = 15
    cover, cover_chi2 = [], []
    for seed in range(400):
        cop = cop_normal(n=15, seed=seed)
        new = cop_normal(n=500, seed=10_000 + seed)
        mu, s = cop.mean(axis=0), np.cov(cop, rowvar=False)
        d2 = np.einsum("ij,jk,ik->i", new - mu, np.linalg.inv(s), new - mu)
        k2 = cop_ellipse_area(cop) / (np.pi * np.sqrt(np.linalg.det(s)))
        cover.append((d2 <= k2).mean())
        cover_chi2.append((d2 <= stats.chi2.ppf(0.95, 2)).mean())
    assert np.mean(cover) == pytest.approx(0.95, abs=0.01)
    assert np.mean(cover_chi2) < 0.92  # the large-n chi-square ellipse under-covers


def test_cop_metrics_of_a_circle_and_a_sinusoid():
    rate = 100.0
    t = np.arange(0, 30, 1 / rate)
    r, f = 0.01, 0.5
    cop = np.column_stack([r * np.cos(2 * np.pi * f * t), r * np.sin(2 * np.pi * f * t)])
    m = cop_metrics(cop, rate_hz=rate)
    n = t.size
    chord = 2 * r * np.sin(np.pi * f / rate)  # exact step length on the circle
    assert m["path_length_m"] == pytest.approx(chord * (n - 1), rel=1e-9)
    assert m["mean_velocity_m_s"] == pytest.approx(chord * rate, rel=1e-9)
    assert m["rms_ap_m"] == pytest.approx(r / np.sqrt(2), rel=1e-3)
    assert m["range_ml_m"] == pytest.approx(2 * r, rel=1e-3)
    # radial distance r(t) oscillating at 1.2 Hz about a slowly turning direction
    rad = 0.01 + 0.003 * np.sin(2 * np.pi * 1.2 * t)
    ang = 2 * np.pi * 0.1 * t
    m2 = cop_metrics(np.column_stack([rad * np.cos(ang), rad * np.sin(ang)]), rate_hz=rate)
    assert m2["mean_power_frequency_hz"] == pytest.approx(1.2, abs=0.1)


def test_cop_metrics_rejects_nan():
    cop = cop_normal(n=100)
    cop[5] = np.nan
    with pytest.raises(InputFormatError, match="NaN"):
        cop_metrics(cop, rate_hz=100.0)


def test_cop_metrics_on_a_real_standing_plate(real_dir):
    c = ezc3d.c3d(str(real_dir / "c3d" / "btk_Res16bits.c3d"), extract_forceplat_data=True)
    pf = c["data"]["platform"][2]
    cop = np.asarray(pf["center_of_pressure"])[:2].T / 1000.0
    corners = np.asarray(pf["corners"])[:2].T / 1000.0
    raw = cop_metrics(cop, rate_hz=1000.0)
    m = cop_metrics(lowpass(cop, rate_hz=1000.0, cutoff_hz=10.0), rate_hz=1000.0)
    assert (cop >= corners.min(axis=0)).all() and (cop <= corners.max(axis=0)).all()
    assert 0 < m["range_ap_m"] < 0.05 and 0 < m["ellipse_area_m2"] < 1e-3
    assert m["mean_velocity_m_s"] < 0.1  # a standing foot, not a step
    # plate noise inflates path length, barely the RMS: filter before comparing velocities
    assert raw["path_length_m"] > 5 * m["path_length_m"]
    assert raw["rms_ml_m"] == pytest.approx(m["rms_ml_m"], rel=0.05)


@pytest.mark.parametrize(
    ("n", "rate", "nperseg"),
    [
        (3000, 100.0, 1000),
        (3001, 100.0, 1000),
        (2999, 100.0, 999),
        (57, 100.0, 57),
        (12345, 1000.0, 2000),
        (700, 120.0, 333),
        (10, 50.0, 10),
        (4000, 100.0, 250),
    ],
)
def test_welch_psd_gives_the_bits_of_scipy_welch(n, rate, nperseg):
    x = np.random.default_rng(n).normal(size=n).cumsum() * 1e-3
    f0, p0 = sps.welch(x, fs=rate, nperseg=nperseg, detrend="constant")
    f, p = welch_psd(x, rate_hz=rate, nperseg=nperseg)
    assert f.dtype == p.dtype == np.float64 and p.shape == p0.shape
    np.testing.assert_array_equal(f, f0)
    np.testing.assert_array_equal(p, p0)  # bit for bit: the features stay the same


@pytest.mark.parametrize("nperseg", [0, 301])
def test_welch_psd_refuses_a_segment_outside_the_signal_naming_it(nperseg):
    with pytest.raises(InputFormatError, match=rf"nperseg.*{nperseg} for 300 samples"):
        welch_psd(np.ones(300), rate_hz=100.0, nperseg=nperseg)
