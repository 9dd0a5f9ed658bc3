import numpy as np
import pytest
from scipy import signal as sps

from cxlab._check import ConfigError, InputFormatError
from cxlab.features.signal import fill_gaps, lowpass, nan_runs, residual_analysis


def test_lowpass_equals_scipy_sosfiltfilt_with_the_same_design():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3)).cumsum(axis=0)
    sos = sps.butter(4, 6.0, fs=100.0, output="sos")
    ref = sps.sosfiltfilt(sos, x, axis=0)
    np.testing.assert_allclose(lowpass(x, rate_hz=100.0, cutoff_hz=6.0), ref, rtol=0, atol=1e-12)


def test_lowpass_is_zero_lag_and_minus_6_db_at_cutoff():
    rate, fc = 1000.0, 10.0
    t = np.arange(0, 20, 1 / rate)
    slow = np.sin(2 * np.pi * 1.0 * t)
    at_fc = np.sin(2 * np.pi * fc * t)
    y_slow = lowpass(slow, rate_hz=rate, cutoff_hz=fc)
    y_fc = lowpass(at_fc, rate_hz=rate, cutoff_hz=fc)
    mid = slice(5000, 15000)
    # zero phase: a 1 Hz wave well inside the pass band comes out unshifted
    np.testing.assert_allclose(y_slow[mid], slow[mid], atol=1e-4)
    # forward-backward squares the magnitude: gain 1/2 (-6 dB) at the design cut-off
    assert np.max(np.abs(y_fc[mid])) == pytest.approx(0.5, abs=0.01)


def test_lowpass_rejects_nan_and_bad_cutoff():
    with pytest.raises(InputFormatError, match="fill_gaps"):
        lowpass(np.array([1.0, np.nan, 2.0] * 20), rate_hz=100, cutoff_hz=5)
    with pytest.raises(ConfigError, match="Nyquist"):
        lowpass(np.zeros(100), rate_hz=100, cutoff_hz=60)


def test_residual_analysis_picks_cutoff_above_signal_band_and_estimates_noise():
    rate = 200.0
    t = np.arange(0, 10, 1 / rate)
    clean = np.sin(2 * np.pi * 1.5 * t) + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    noise = np.random.default_rng(0).normal(0, 0.05, t.size)
    r = residual_analysis(clean + noise, rate_hz=rate)
    # signal bandwidth is 3 Hz: the chosen cut-off lies just above it, not in the noise band
    assert 3.0 <= r["cutoff_hz"] <= 8.0
    # the intercept of the noise line estimates the white-noise RMS
    assert r["noise_rms"] == pytest.approx(0.05, rel=0.15)
    assert np.all(np.diff(r["residuals"][r["cutoffs_hz"] > 4]) < 0)


def test_nan_runs_finds_start_and_stop():
    m = np.array([0, 1, 1, 0, 0, 1, 0, 1], bool)
    assert nan_runs(m).tolist() == [[1, 3], [5, 6], [7, 8]]


def test_fill_gaps_fills_short_gaps_exactly_for_a_cubic_and_reports_long_ones():
    rate = 100.0
    t = np.arange(200) / rate
    x = 0.3 * t**3 - t + 2.0
    y = x.copy()
    y[20:25] = np.nan  # 0.05 s: filled
    y[100:150] = np.nan  # 0.5 s: left
    y[:3] = np.nan  # edge: never extrapolated
    res = fill_gaps(np.column_stack([y, y]), rate_hz=rate, max_gap_s=0.1)
    np.testing.assert_allclose(res.filled[20:25, 0], x[20:25], atol=1e-9)
    assert np.isnan(res.filled[100:150]).all() and np.isnan(res.filled[:3]).all()
    assert res.unfilled.tolist() == [[0, 0, 3], [0, 100, 150], [1, 0, 3], [1, 100, 150]]
    lin = fill_gaps(y, rate_hz=rate, max_gap_s=0.1, method="linear").filled
    np.testing.assert_allclose(lin[20:25], np.interp(np.arange(20, 25), [19, 25], y[[19, 25]]))
    assert np.isnan(y[20])  # input untouched


def test_butter_design_is_cached_and_equals_scipys():
    from cxlab.features.signal import butter_sos

    butter_sos.cache_clear()
    want = sps.butter(4, 6.0, btype="low", fs=200.0, output="sos")
    assert np.array_equal(butter_sos(4, 6.0, 200.0), want)
    x = np.random.default_rng(3).normal(size=(400, 3)).cumsum(axis=0)
    for _ in range(5):
        lowpass(x, rate_hz=200.0, cutoff_hz=6.0)
    info = butter_sos.cache_info()
    assert info.misses == 1 and info.hits >= 5
    assert not butter_sos(4, 6.0, 200.0).flags.writeable  # a caller cannot corrupt the cache


def test_emg_band_pass_design_is_cached_and_equals_scipys():
    from cxlab.features.emg import emg_bandpass
    from cxlab.features.signal import bandpass_sos

    bandpass_sos.cache_clear()
    want = sps.butter(4, [20.0, 450.0], btype="bandpass", fs=2000.0, output="sos")
    x = np.random.default_rng(5).normal(size=(2000, 4))
    for _ in range(3):  # the filter as scipy gives it, to the bit, designed once
        got = emg_bandpass(x, rate_hz=2000.0)
        np.testing.assert_array_equal(got, sps.sosfiltfilt(want, x, axis=0))
    assert np.array_equal(bandpass_sos(4, 20.0, 450.0, 2000.0), want)
    info = bandpass_sos.cache_info()
    assert info.misses == 1 and info.hits >= 3
    assert not bandpass_sos(4, 20.0, 450.0, 2000.0).flags.writeable


def test_stacked_channels_filter_to_the_bits_of_one_call_per_channel():
    x = np.random.default_rng(4).normal(size=(700, 12)).cumsum(axis=0)
    together = lowpass(x, rate_hz=100.0, cutoff_hz=6.0)
    alone = np.column_stack([lowpass(x[:, c], rate_hz=100.0, cutoff_hz=6.0) for c in range(12)])
    assert np.array_equal(together, alone)


def test_lowpass_gives_the_bits_of_scipy_sosfiltfilt_with_its_padding():
    """The cached-initial-conditions filter equals scipy.signal.sosfiltfilt (odd padding of
    min(3 (2 n_sections + 1), n - 1) samples) bit for bit: 1-D and stacked channels, odd
    and even orders, signals shorter than the default padding."""
    from cxlab.features.signal import butter_sos

    rng = np.random.default_rng(11)
    for k in range(60):
        n = int(rng.integers(1, 2500))
        x = rng.normal(size=(n,) if k % 3 == 0 else (n, int(rng.integers(1, 6))))
        x *= 10 ** rng.uniform(-4, 4)
        rate = float(rng.uniform(50, 2000))
        fc, order = float(rng.uniform(1, rate / 2.2)), int(rng.integers(1, 7))
        sos = butter_sos(order, fc, rate).copy()
        want = sps.sosfiltfilt(sos, x, axis=0, padlen=min(3 * (2 * len(sos) + 1), n - 1))
        np.testing.assert_array_equal(lowpass(x, rate_hz=rate, cutoff_hz=fc, order=order), want)
