import itertools

import numpy as np
import pytest
from scipy import integrate

from cxlab.features.efficiency import gait_events, gait_timing, ldlj, sparc
from featuresim import min_jerk_speed


def _sparc_reference(movement, fs, padlevel=4, fc=10.0, amp_th=0.05):
    """Balasubramanian et al. (2015) reference code, full complex FFT (not rfft)."""
    nfft = int(pow(2, np.ceil(np.log2(len(movement))) + padlevel))
    f = np.arange(0, fs, fs / nfft)
    mf = abs(np.fft.fft(movement, nfft))
    mf = mf / max(mf)
    sel = (f <= fc).nonzero()
    f_sel, mf_sel = f[sel], mf[sel]
    inx = (mf_sel >= amp_th).nonzero()[0]
    f_sel, mf_sel = f_sel[inx[0] : inx[-1] + 1], mf_sel[inx[0] : inx[-1] + 1]
    return -sum(np.sqrt(pow(np.diff(f_sel) / (f_sel[-1] - f_sel[0]), 2) + pow(np.diff(mf_sel), 2)))


def test_sparc_of_minimum_jerk_matches_the_reference_and_the_continuous_spectrum():
    rate = 100.0
    t = np.arange(0, 3, 1 / rate)
    v = min_jerk_speed(t, t0=1.0)
    s = sparc(v, rate_hz=rate)
    assert s == pytest.approx(_sparc_reference(v, rate), abs=1e-12)
    # continuous-time check: |V(f)| of the analytic profile by dense trapezoid quadrature
    x = np.linspace(0, 1, 801)
    f = np.linspace(0, 10, 2001)
    kern = np.exp(-2j * np.pi * np.outer(f, x)) * min_jerk_speed(x)
    mag = np.abs(integrate.trapezoid(kern, x, axis=1))
    mag /= mag.max()
    keep = np.flatnonzero(mag >= 0.05)
    f, mag = f[: keep[-1] + 1], mag[: keep[-1] + 1]
    cont = -np.sum(np.sqrt((np.diff(f) / f[-1]) ** 2 + np.diff(mag) ** 2))
    assert s == pytest.approx(cont, abs=0.01)
    assert s == pytest.approx(-1.41, abs=0.01)


def test_sparc_ranks_a_smooth_reach_above_a_multi_peaked_one():
    rate = 100.0
    t = np.arange(0, 4, 1 / rate)
    one = min_jerk_speed(t, t0=1.0, duration=1.5)
    multi = sum(min_jerk_speed(t, t0=1.0 + 0.4 * k, duration=0.5, distance=0.4) for k in range(4))
    assert sparc(one, rate_hz=rate) > sparc(multi, rate_hz=rate)
    assert ldlj(one[100:251], rate_hz=rate) > ldlj(multi[100:321], rate_hz=rate)


def test_ldlj_of_minimum_jerk_is_the_analytic_value_for_any_duration():
    # jerk of min-jerk speed: (D/T^3) 30 (2 - 12 tau + 12 tau^2); int_0^1 (...)^2 = 720;
    # v_peak = 1.875 D/T  ->  LDLJ-V = -ln(720 / 1.875^2) = -5.322
    expected = -np.log(720 / 1.875**2)
    for dur, dist in ((0.8, 0.3), (2.0, 1.5)):
        rate = 2000.0
        t = np.arange(0, dur + 1e-12, 1 / rate)
        v = min_jerk_speed(t, duration=dur, distance=dist)
        assert ldlj(v, rate_hz=rate) == pytest.approx(expected, abs=0.02)
    # LDLJ-A of the acceleration of the same profile is finite and smoother-is-higher too
    t = np.arange(0, 1 + 1e-12, 1 / 1000)
    acc = np.gradient(min_jerk_speed(t), 1e-3)
    assert np.isfinite(ldlj(acc, rate_hz=1000.0, kind="acceleration"))


def test_gait_timing_hand_worked_step_and_stance_symmetry():
    ev = {
        "left": {"strike_s": [0.0, 1.1, 2.2], "off_s": [0.65, 1.75]},
        "right": {"strike_s": [0.5, 1.6], "off_s": [1.2, 2.3]},
    }
    g = gait_timing(ev)
    assert g["step_time_s_left"] == pytest.approx(0.6)  # 1.1-0.5, 2.2-1.6
    assert g["step_time_s_right"] == pytest.approx(0.5)  # 0.5-0.0, 1.6-1.1
    assert g["stance_time_s_left"] == pytest.approx(0.65)
    assert g["stance_time_s_right"] == pytest.approx(0.7)
    assert g["step_time_asym_pct"] == pytest.approx(100 * (0.5 - 0.6) / 0.55)


def test_zeni_events_on_a_real_walking_trial_alternate(real_dir):
    import ezc3d

    c = ezc3d.c3d(str(real_dir / "c3d" / "opensim_walking2.c3d"))
    labels = c["parameters"]["POINT"]["LABELS"]["value"]
    rate = float(c["parameters"]["POINT"]["RATE"]["value"][0])
    p = {n: c["data"]["points"][:3, labels.index(n), :].T / 1000.0 for n in labels}
    pelvis = np.mean([p[n] for n in ("LASI", "RASI", "LPSI", "RPSI")], axis=0)
    ev = {
        s: gait_events(p[f"{s[0].upper()}CAL"], p[f"{s[0].upper()}MT2"], pelvis, rate_hz=rate)
        for s in ("left", "right")
    }
    strikes = sorted(
        [(t, "L") for t in ev["left"]["strike_s"]] + [(t, "R") for t in ev["right"]["strike_s"]]
    )
    sides = [s for _, s in strikes]
    assert len(sides) >= 3 and all(a != b for a, b in itertools.pairwise(sides))
    g = gait_timing(ev)
    for side in ("left", "right"):
        assert 0.4 < g[f"step_time_s_{side}"] < 0.8  # adult walking
        assert 0.5 < g[f"stance_time_s_{side}"] < 1.0
    assert abs(g["step_time_asym_pct"]) < 20
