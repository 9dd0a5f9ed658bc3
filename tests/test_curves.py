"""time_normalise and curve_matrix: exact on analytic curves, events preserved."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxlab._check import CxlabError
from cxlab.features.curves import curve_matrix, time_normalise

RATE = 1000.0


def _t(duration_s=2.0):
    return np.arange(int(duration_s * RATE)) / RATE


def test_a_sine_over_a_phase_comes_back_as_the_sine_at_101_nodes():
    t = _t()
    t0, t1 = 0.3137, 1.5021  # not on samples
    x = np.sin(2 * np.pi * (t - t0) / (t1 - t0))
    want = np.sin(2 * np.pi * np.linspace(0, 1, 101))
    # linear: error ≤ h² max|x''| / 8 with h = 1 ms
    bound = (1 / RATE) ** 2 * (2 * np.pi / (t1 - t0)) ** 2 / 8
    got = time_normalise(x, [t0, t1], rate_hz=RATE)
    assert got.shape == (101,)
    assert np.max(np.abs(got - want)) <= bound * 1.0001
    spline = time_normalise(x, [t0, t1], rate_hz=RATE, method="spline")
    assert np.max(np.abs(spline - want)) < 1e-9


def test_nodes_on_samples_are_exact_and_columns_are_independent():
    t = _t()
    x = np.column_stack([t**2, -3 * t])
    got = time_normalise(x, [0.2, 1.2], rate_hz=RATE)  # nodes every 10 ms = on samples
    np.testing.assert_allclose(got[:, 0], np.linspace(0.2, 1.2, 101) ** 2, rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], -3 * np.linspace(0.2, 1.2, 101), rtol=1e-12)


def test_event_to_event_resampling_puts_each_event_on_its_node():
    t = _t()
    events = [0.1, 0.45, 1.7]  # the middle event at 21.9 % of the phase
    x = t.copy()  # x = time, so the value at a node is the time it was sampled at
    got = time_normalise(x, events, rate_hz=RATE, event_pct=[40.0])
    assert got[0] == pytest.approx(0.1)
    assert got[40] == pytest.approx(0.45)
    assert got[100] == pytest.approx(1.7)
    # each sub-phase is equally spaced in time
    np.testing.assert_allclose(np.diff(got[:41]), (0.45 - 0.1) / 40)
    np.testing.assert_allclose(np.diff(got[40:]), (1.7 - 0.45) / 60)


def test_non_uniform_time_axis():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 2, 4000))
    got = time_normalise(np.cos(t), [0.5, 1.5], time=t, method="spline")
    np.testing.assert_allclose(got, np.cos(np.linspace(0.5, 1.5, 101)), atol=1e-8)


def test_nan_samples_reach_only_the_nodes_they_touch():
    x = _t().copy()
    x[500] = np.nan
    got = time_normalise(x, [0.0, 1.0], rate_hz=RATE)
    assert np.isnan(got[50]) and np.isfinite(np.delete(got, 50)).all()
    with pytest.raises(CxlabError, match="NaN"):
        time_normalise(x, [0.0, 1.0], rate_hz=RATE, method="spline")


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([0.5], "at least 2"),
        ([0.5, 0.5], "increase strictly"),
        ([0.5, 3.0], "outside the signal"),
        ([np.nan, 1.0], "at least 2 finite"),
    ],
)
def test_bad_events_are_refused_naming_them(events, match):
    with pytest.raises(CxlabError, match=match):
        time_normalise(_t(), events, rate_hz=RATE)


def test_bad_event_pct_and_missing_rate_are_refused():
    with pytest.raises(CxlabError, match="event_pct"):
        time_normalise(_t(), [0.1, 0.5, 1.0], rate_hz=RATE, event_pct=[120.0])
    with pytest.raises(CxlabError, match="rate_hz"):
        time_normalise(_t(), [0.1, 1.0])


def test_curve_matrix_is_the_trials_by_nodes_array_with_its_labels():
    rows = []
    for rid, sub, ses, off in [
        ("b" * 16, "s2", "pre", 2.0),
        ("a" * 16, "s1", "pre", 1.0),
        ("c" * 16, "s1", "post", 3.0),
    ]:
        for node in range(5):
            rows.append(
                {
                    "recording_id": rid,
                    "subject_id": sub,
                    "session": ses,
                    "phase": "landing",
                    "signal": "fz_bw",
                    "side": "bilateral",
                    "node": node,
                    "pct": node * 25.0,
                    "value": off + node,
                    "unit": "BW",
                }
            )
    rows.append({**rows[0], "signal": "other"})
    cm = curve_matrix(pd.DataFrame(rows), signal="fz_bw", phase="landing")
    assert cm.values.shape == (3, 5)
    assert list(cm.labels["subject_id"]) == ["s1", "s1", "s2"]
    assert list(cm.labels["session"]) == ["post", "pre", "pre"]
    np.testing.assert_allclose(cm.values[:, 0], [3.0, 1.0, 2.0])
    np.testing.assert_allclose(cm.pct, [0, 25, 50, 75, 100])
    assert cm.unit == "BW"
    with pytest.raises(CxlabError, match="no curves match"):
        curve_matrix(pd.DataFrame(rows), signal="knee", phase="landing")


def test_columns_resample_to_the_numbers_of_one_call_each():
    """A (n_samples, k) signal gives, column by column, the bits of k 1-D calls (linear,
    with NaN gaps, and the spline), so curve builders may resample their signals together."""
    rng = np.random.default_rng(7)
    for _ in range(40):
        m = int(rng.integers(5, 2500))
        x = rng.normal(size=(m, 4)) * rng.uniform(1, 1e3)
        rate = float(rng.uniform(50, 2000))
        a, b = rng.uniform(0, (m - 1) / rate / 3), (m - 1) / rate
        gappy = x.copy()
        gappy[rng.integers(0, m, 3), 1] = np.nan
        for sig, method in ((x, "linear"), (gappy, "linear"), (x, "spline")):
            both = time_normalise(sig, [a, b], rate_hz=rate, n=101, method=method)
            for j in range(4):
                one = time_normalise(sig[:, j].copy(), [a, b], rate_hz=rate, n=101, method=method)
                np.testing.assert_array_equal(both[:, j], one)


def test_columns_match_np_interp_bit_for_bit_on_any_time_axis():
    """The 2-D linear path gathers all columns at once; it must return the bytes of
    ``np.interp`` per column, also on a non-uniform axis, with nodes on samples and at
    both ends; a column with an infinite sample gets the bytes of its own 1-D call
    (nodes touching it are NaN)."""
    rng = np.random.default_rng(11)
    for k in range(60):
        m = int(rng.integers(2, 300))
        t = np.cumsum(rng.uniform(0.5, 1.5, m)) / RATE if k % 2 else np.arange(m) / RATE
        x = rng.normal(size=(m, 3)) * 10.0 ** rng.integers(-3, 4)
        if k % 5 == 0:
            x[rng.integers(0, m), 2] = np.inf
        n = int(rng.integers(2, 150))
        got = time_normalise(x, [t[0], t[-1]], time=t, n=n)
        tq = t[0] + np.linspace(0.0, 100.0, n) / 100.0 * (t[-1] - t[0])
        one = [time_normalise(c.copy(), [t[0], t[-1]], time=t, n=n) for c in x.T]
        assert got.tobytes() == np.column_stack(one).tobytes()
        for j in range(2):
            assert got[:, j].tobytes() == np.interp(tq, t, x[:, j]).tobytes()
