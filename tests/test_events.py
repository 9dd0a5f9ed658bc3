import ezc3d
import numpy as np
import pytest

from cxlab.features.events import (
    FeatureError,
    contacts,
    flights,
    foot_events,
    movement_onset,
    quiet_standing,
)
from ezc3d_oracle import c3d_markers


def _plates(path):
    c = ezc3d.c3d(str(path), extract_forceplat_data=True)
    rate = float(c["parameters"]["ANALOG"]["RATE"]["value"][0])
    out = []
    for pf in c["data"]["platform"]:
        fz = np.asarray(pf["force"][2], float)
        fz = fz * np.sign(fz[np.argmax(np.abs(fz))])  # loaded = positive, whatever the file
        scale = 0.001 if pf["unit_position"] == "mm" else 1.0
        out.append(
            {
                "fz": fz,
                "cop": np.asarray(pf["center_of_pressure"]).T * scale,
                "corners": np.asarray(pf["corners"]).T * scale,
            }
        )
    return rate, out


def test_quiet_standing_finds_the_steadiest_window_and_its_mean():
    rng = np.random.default_rng(3)
    rate = 1000.0
    fz = np.concatenate(
        [
            700 + rng.normal(0, 15, 800),
            736 + rng.normal(0, 2, 1200),
            700 + 200 * np.sin(np.arange(1000) / 50),
        ]
    )
    qs = quiet_standing(fz, rate_hz=rate, window_s=1.0)
    assert 800 <= qs.start <= 1000 and qs.stop - qs.start == 1000
    seg = fz[qs.start : qs.stop]
    assert qs.weight_n == pytest.approx(seg.mean(), abs=1e-9)
    assert qs.sd_n == pytest.approx(seg.std(), rel=1e-9)


def test_quiet_standing_on_a_real_plate_matches_the_signal_mean(real_dir):
    rate, plates = _plates(real_dir / "c3d" / "btk_Res16bits.c3d")
    fz = plates[2]["fz"]  # a foot standing still on plate 3 for the whole 0.1 s
    qs = quiet_standing(fz, rate_hz=rate, window_s=0.05)
    assert qs.weight_n == pytest.approx(fz.mean(), abs=2 * fz.std())
    assert 400 < qs.weight_n < 500


def test_quiet_standing_needs_a_loaded_window():
    with pytest.raises(FeatureError, match="no 1 s window"):
        quiet_standing(np.zeros(3000), rate_hz=1000.0)


def test_movement_onset_is_the_5_sd_crossing_minus_30_ms():
    fz = np.full(3000, 700.0)
    fz[1500:1600] = 700 - np.arange(100) * 2.0  # linear unweighting from sample 1500
    fz[1000:1500:2] += 1.0  # tiny noise, SD 0.5 N
    # first sample below 700 - 5 * 0.5 = 697.5 N is 1502 (696 N)
    assert movement_onset(fz, rate_hz=1000.0, weight_n=700.0, sd_n=0.5, backtrack_s=0) == 1502
    assert movement_onset(fz, rate_hz=1000.0, weight_n=700.0, sd_n=0.5) == 1502 - 30
    assert movement_onset(fz, rate_hz=1000.0, weight_n=700.0, sd_n=0.5, start=1490) == 1490


def test_flights_and_contacts_from_threshold():
    fz = np.r_[
        np.full(100, 700.0), np.zeros(50), np.full(100, 900.0), np.zeros(3), np.full(100, 700.0)
    ]
    assert flights(fz, rate_hz=1000.0).tolist() == [[100, 150]]  # 3-sample dip ignored
    assert contacts(fz, rate_hz=1000.0, min_contact_s=0.05).tolist() == [[150, 250]]


def test_gait_contacts_on_real_plates_alternate_and_cop_stays_on_the_plate(real_dir):
    rate, plates = _plates(real_dir / "c3d" / "opensim_walking2.c3d")
    found = []
    for k, p in enumerate(plates):
        c = contacts(p["fz"], rate_hz=rate, threshold_n=50.0)
        assert len(c) == 1  # one foot strike per plate
        s, e = c[0]
        assert 0.4 < (e - s) / rate < 1.0  # a walking stance lasts ~0.6 s
        found.append((s, e, k))
        load = p["fz"][s:e] > 200  # CoP is reliable once loaded
        cop = p["cop"][s:e][load]
        lo, hi = p["corners"].min(axis=0), p["corners"].max(axis=0)
        inside = ((cop[:, :2] >= lo[:2]) & (cop[:, :2] <= hi[:2])).all(axis=1)
        assert inside.mean() > 0.97  # a heel strike on the plate edge may stray at first
        assert ((cop[:, :2] >= lo[:2] - 0.02) & (cop[:, :2] <= hi[:2] + 0.02)).all()
    found.sort()
    assert [k for *_, k in found] == [1, 0]  # plate 2 struck first, then plate 1
    assert found[0][0] < found[1][0] < found[0][1]  # double support: second strike before off


# ---- gait events from markers (Zeni et al. 2008) -------------------------------------


def _pelvis(m):
    return np.mean([m[n] for n in ("LASI", "RASI", "LPSI", "RPSI")], axis=0)


def test_marker_foot_strikes_match_the_nexus_events_of_a_real_walk(real_dir):
    m, rate, first, events = c3d_markers(real_dir / "c3d" / "btk_PiG_Motion-FlatFoot-Full.c3d")
    pel = _pelvis(m)
    errs = {"Foot Strike": [], "Foot Off": []}
    for side in ("Left", "Right"):
        s = side[0]
        got = foot_events(m[f"{s}HEE"], m[f"{s}TOE"], pel, rate_hz=rate)
        for label, found in (("Foot Strike", got.strikes), ("Foot Off", got.offs)):
            # C3D event time t is capture frame t * rate + 1 (1-based); stored frame 0 is
            # capture frame first + 1
            ref = np.array(
                sorted(round(t * rate) - first for c, lab, t in events if (c, lab) == (side, label))
            )
            inside = ref[(ref > found.min() - 10) & (ref < found.max() + 10)]
            nearest = found[np.abs(found[:, None] - inside[None, :]).argmin(axis=0)]
            assert np.unique(nearest).size == inside.size  # one detection per Nexus event
            errs[label] += (nearest - inside).tolist()
    # measured: strikes 3-7 frames (30-70 ms at 100 Hz) before Nexus's, offs within 1 frame
    assert all(-7 <= e <= 0 for e in errs["Foot Strike"]), errs
    assert np.mean(errs["Foot Strike"]) == pytest.approx(-4.6, abs=0.5)
    assert all(abs(e) <= 1 for e in errs["Foot Off"]), errs
    assert len(errs["Foot Strike"]) == 5 and len(errs["Foot Off"]) == 5


def test_marker_foot_strikes_precede_the_plate_contacts_of_a_real_walk(real_dir):
    # opensim walking2: each plate is struck once; the plate onset (ezc3d forces, 50 N)
    # follows a marker foot strike (measured: by 38 ms and 103 ms; the heel marker is
    # furthest ahead late in the swing, before the heel lands)
    path = real_dir / "c3d" / "opensim_walking2.c3d"
    m, rate, _, _ = c3d_markers(path)
    analog_rate, plates = _plates(path)
    pel = _pelvis(m)
    strikes = np.sort(
        np.concatenate(
            [foot_events(m[f"{s}CAL"], m[f"{s}MT2"], pel, rate_hz=rate).strikes for s in "LR"]
        )
    )
    for p in plates:
        onset = contacts(p["fz"], rate_hz=analog_rate, threshold_n=50.0)[0, 0] / analog_rate
        lead = onset - strikes / rate
        assert np.any((lead >= 0) & (lead <= 0.12)), (onset, strikes / rate)


def _analytic_walk(speed=1.3, stride_s=1.1, rate=100.0, n=500, axis=0, sign=1.0):
    """Pelvis walking at ``speed`` along ``sign`` * lab ``axis``; heel and toe relative
    to it are sines of the stride (heel maxima at t = stride/4 + k stride, toe minima at
    t = 0.6 stride + k stride + 3 stride/4 ... worked below)."""
    t = np.arange(n) / rate
    e = np.zeros(3)
    e[axis] = sign
    pel = np.outer(speed * t, e) + np.array([0.0, 0.0, 0.95])
    w = 2 * np.pi / stride_s
    heel = pel + np.outer(0.3 * np.sin(w * t), e) + np.array([0.0, 0.1, -0.9])
    toe = pel + np.outer(0.3 * np.sin(w * (t - 0.6 * stride_s)) + 0.1, e)
    return t, heel, toe, pel


def test_marker_foot_strikes_of_an_analytic_gait_are_the_sine_maxima():
    rate, stride = 100.0, 1.1
    t, heel, toe, pel = _analytic_walk(rate=rate, stride_s=stride)
    got = foot_events(heel, toe, pel, rate_hz=rate)
    # sin(w t) peaks at t = T/4 + k T; sin(w (t - 0.6 T)) dips at t = 0.6 T + 3 T / 4 + k T
    k = np.arange(5)
    want_hs = (stride / 4 + k * stride) * rate
    want_to = ((0.6 + 0.75 - 1) * stride + k * stride) * rate
    np.testing.assert_allclose(got.strikes, want_hs[want_hs < t.size - 1], atol=0.5)
    np.testing.assert_allclose(got.offs, want_to[want_to < t.size - 1], atol=0.5)
    np.testing.assert_allclose(got.direction, [1.0, 0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("axis", [0, 1])
def test_a_walk_along_minus_x_or_along_y_gives_the_same_events(axis):
    _, heel, toe, pel = _analytic_walk()
    ref = foot_events(heel, toe, pel, rate_hz=100.0)
    _, heel2, toe2, pel2 = _analytic_walk(axis=axis, sign=-1.0)
    got = foot_events(heel2, toe2, pel2, rate_hz=100.0)
    np.testing.assert_array_equal(got.strikes, ref.strikes)
    np.testing.assert_array_equal(got.offs, ref.offs)


def test_a_turn_or_a_treadmill_walk_is_refused_with_the_fix():
    _, heel, toe, pel = _analytic_walk()
    still = np.zeros_like(pel) + pel[0]
    with pytest.raises(FeatureError, match=r"treadmill.*direction="):
        foot_events(heel - pel + still, toe - pel + still, still, rate_hz=100.0)
    # given the direction, the treadmill walk gives the overground events
    got = foot_events(
        heel - pel + still, toe - pel + still, still, rate_hz=100.0, direction=[1, 0, 0]
    )
    np.testing.assert_array_equal(got.strikes, foot_events(heel, toe, pel, rate_hz=100.0).strikes)
    back = pel.copy()
    back[300:, 0] = 2 * back[300, 0] - back[300:, 0]  # walks back after 3 s
    with pytest.raises(FeatureError, match="turn"):
        foot_events(heel, toe, back, rate_hz=100.0)


def test_a_gap_hides_the_strike_inside_it_and_no_other():
    _, heel, toe, pel = _analytic_walk()
    ref = foot_events(heel, toe, pel, rate_hz=100.0).strikes
    heel = heel.copy()
    heel[ref[1] - 3 : ref[1] + 4] = np.nan
    got = foot_events(heel, toe, pel, rate_hz=100.0).strikes
    np.testing.assert_array_equal(got, np.delete(ref, 1))


def test_trajectories_of_other_shapes_are_refused_with_the_field():
    _, heel, toe, pel = _analytic_walk()
    with pytest.raises(FeatureError, match=r"toe.*\(499, 3\)"):
        foot_events(heel, toe[1:], pel, rate_hz=100.0)
    with pytest.raises(FeatureError, match="heel"):
        foot_events(heel[:, :2], toe, pel, rate_hz=100.0)
    # no valid heel frame: no events, no crash
    none = foot_events(np.full_like(heel, np.nan), toe, pel, rate_hz=100.0)
    assert none.strikes.size == 0 and none.offs.size > 0
