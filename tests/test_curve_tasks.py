"""Curves built by `cxlab features`: phases from the task's events, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxlab.features.curve_tasks import cmj_curves, trial_curves
from cxlab.features.curves import curve_matrix
from cxlab.features.runner import extract_features, read_config
from cxlab.features.tasks import Trial
from cxlab.store import Store
from featuresim import G, cmj_force
from test_features_runner import SUBJ, _forces, _rec, _rid


def _trial(fz, share=0.45, rate=1000.0):
    return Trial(
        task="cmj", plates={1: {"fz": share * fz}, 2: {"fz": (1 - share) * fz}}, analog_rate_hz=rate
    )


def test_cmj_curve_integrates_to_the_take_off_velocity():
    # impulse-momentum: the integral of (F/BW - 1) dt from onset to take-off is v_to / g
    fz, truth = cmj_force(v_to=2.4)
    cfg = read_config()
    curves = {(c.phase, c.side): c for c in cmj_curves(_trial(fz), cfg)}
    c = curves[("cmj", "bilateral")]
    assert c.values.shape == (101,) and c.unit == "BW"
    duration = c.end_s - c.start_s
    integral = duration * np.trapezoid(c.values - 1.0, dx=0.01)
    assert integral == pytest.approx(truth["v_to"] / G, rel=0.01)
    assert c.start_s == pytest.approx(truth["onset_s"], abs=0.04)
    assert c.end_s == pytest.approx(truth["takeoff_s"], abs=0.005)
    assert c.values[0] == pytest.approx(1.0, abs=0.05)  # onset: still about body weight
    # sides are the plates' shares of the same force
    np.testing.assert_allclose(curves[("cmj", "left")].values, 0.45 * c.values, rtol=1e-12)
    assert ("cmj_landing", "bilateral") in curves


def test_curves_land_in_the_store_and_come_back_as_a_trials_by_nodes_array(tmp_path):
    st = Store(tmp_path / "s")
    recs = []
    for k, v in enumerate((2.2, 2.4, 2.6)):
        fz, _ = cmj_force(v_to=v, noise_n=0.5, seed=k)
        rec = _rec(f"cmj{k}", "cmj") | {"session": str(k + 1)}
        recs.append(rec)
        st.write(
            "forces",
            _forces(rec["recording_id"], [{"fz": 0.5 * fz}, {"fz": 0.5 * fz}]),
            key=rec["recording_id"],
            partition=SUBJ,
        )
    st.write("recordings", pd.DataFrame(recs), key="all")
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.n_quarantined == 0
    cm = curve_matrix(st.table("curves"), signal="fz_bw", phase="cmj", side="bilateral")
    assert cm.values.shape == (3, 101)
    assert list(cm.labels["session"]) == ["1", "2", "3"]
    assert list(cm.labels["recording_id"]) == [_rid(f"cmj{k}") for k in range(3)]
    # each stored curve still integrates to its own take-off velocity (impulse-momentum)
    c = st.table("curves")
    dur = (
        c[(c["phase"] == "cmj") & (c["side"] == "bilateral")]
        .groupby("recording_id")[["phase_start_s", "phase_end_s"]]
        .first()
        .loc[cm.labels["recording_id"]]
    )
    v = (
        G
        * (dur["phase_end_s"] - dur["phase_start_s"]).to_numpy()
        * np.trapezoid(cm.values - 1.0, dx=0.01, axis=1)
    )
    np.testing.assert_allclose(v, [2.2, 2.4, 2.6], rtol=0.02)
    f1 = {p.name: p.read_bytes() for p in st.files("curves")}
    extract_features(st, jobs=2, force=True, progress=False)
    assert {p.name: p.read_bytes() for p in st.files("curves")} == f1  # deterministic


def test_a_task_without_curve_builders_has_no_curves_and_unknown_builders_are_refused(tmp_path):
    cfg = read_config()
    assert trial_curves(Trial(task="posture"), cfg) == []
    from cxlab._check import ConfigError

    with pytest.raises(ConfigError, match="unknown curve builder"):
        read_config({"curves": {"tasks": {"cmj": ["cmj", "knee_moment"]}}})


def _dj_force(rate=1000.0, bw=700.0, contact_s=0.25, peak_bw=3.0):
    """On the box 0.5 s (0 N), a half-sine contact of ``peak_bw``, 0.4 s flight, landing
    spike, then 1.5 s of quiet standing at body weight."""
    n_box, n_c, n_fl = int(0.5 * rate), int(contact_s * rate), int(0.4 * rate)
    u = (np.arange(n_c) + 0.5) / n_c
    contact = peak_bw * bw * np.sin(np.pi * u)
    land = bw * (1 + 2.0 * np.sin(np.pi * (np.arange(200) + 0.5) / 200))
    stand = np.full(int(1.5 * rate), bw)
    f = np.concatenate([np.zeros(n_box), contact, np.zeros(n_fl), land, stand])
    return f, n_box / rate, (n_box + n_c) / rate


def test_drop_jump_contact_curve_is_the_half_sine_between_touchdown_and_take_off():
    from cxlab.features.curve_tasks import dj_curves

    bw, peak = 700.0, 3.0
    f, t_td, t_to = _dj_force(bw=bw, peak_bw=peak)
    trial = Trial(task="dj", plates={1: {"fz": 0.4 * f}, 2: {"fz": 0.6 * f}}, analog_rate_hz=1000.0)
    curves = {c.side: c for c in dj_curves(trial, read_config())}
    c = curves["bilateral"]
    assert c.phase == "dj_contact" and c.unit == "BW"
    # the events, read off the trace: first sample >= 20 N, then first sample < 20 N
    td = np.flatnonzero(f >= 20.0)[0]
    to = td + np.flatnonzero(f[td:] < 20.0)[0]
    assert c.start_s == pytest.approx(td / 1000) and c.end_s == pytest.approx(to / 1000)
    assert t_td <= c.start_s < t_td + 0.005 and t_to - 0.005 < c.end_s <= t_to
    # body weight from the quiet standing after the landing; the curve is F/BW between them
    tq = np.linspace(td, to, 101) / 1000
    want = np.interp(tq, np.arange(f.size) / 1000, f) / bw
    np.testing.assert_allclose(c.values, want, atol=1e-9)
    p = np.linspace(0, 1, 101)
    np.testing.assert_allclose(c.values[10:-10], peak * np.sin(np.pi * p[10:-10]), atol=0.1)
    # impulse: ∫F dt / BW over the contact ≈ peak · 2T/π (the < 20 N ends left out)
    duration = c.end_s - c.start_s
    assert duration * np.trapezoid(c.values, dx=0.01) == pytest.approx(
        peak * 2 * 0.25 / np.pi, rel=0.01
    )
    np.testing.assert_allclose(curves["left"].values, 0.4 * c.values, rtol=1e-12)


def _treadmill(rate=1000.0, bw=750.0, stance_s=0.62, cycle_s=1.1, n_cycles=7, b=0.35):
    """Split-belt treadmill: each foot's stance force A·sin(πu) + B·sin(3πu) (u ∈ [0, 1] of
    stance), right foot half a cycle after the left; A set so that the mean summed force
    over whole strides equals body weight exactly (impulse-momentum)."""
    # mean over a stride of both feet: 2·Ts·(2A/π + 2B/(3π)) / Tc = BW
    B = b * bw
    A = (bw * cycle_s / (2 * stance_s) - 2 * B / (3 * np.pi)) * np.pi / 2
    n = int((n_cycles + 1) * cycle_s * rate)
    t = np.arange(n) / rate

    def foot(offset):
        ph = ((t - offset) % cycle_s) / stance_s
        on = ph < 1  # periodic from the first sample (a contact cut by the start is dropped)
        return np.where(on, A * np.sin(np.pi * ph) + B * np.sin(3 * np.pi * ph), 0.0)

    lag = np.flatnonzero(foot(0.3)[200:] >= 20.0)[0] / rate - 0.1  # strike: first ≥ 20 N

    def shape(p):  # expected curve (BW) at % p of the cycle from the detected strike
        u = ((lag + p / 100 * cycle_s) % cycle_s) / stance_s
        return np.where(u < 1, (A * np.sin(np.pi * u) + B * np.sin(3 * np.pi * u)) / bw, 0.0)

    return foot(0.3), foot(0.3 + cycle_s / 2), shape


def _fz_cycle(curves):
    return [c for c in curves if (c.phase, c.signal) == ("gait_cycle", "fz_bw")]


def test_gait_cycle_curves_average_whole_strides_with_body_weight_from_the_impulse():
    from cxlab.features.curve_tasks import gait_curves

    left, right, shape = _treadmill()
    trial = Trial(task="gait", plates={1: {"fz": left}, 2: {"fz": right}}, analog_rate_hz=1000.0)
    curves = {c.side: c for c in _fz_cycle(gait_curves(trial, read_config()))}
    assert set(curves) == {"left", "right"}
    pct = np.linspace(0, 100, 101)
    for c in curves.values():
        assert c.phase == "gait_cycle" and c.signal == "fz_bw"
        assert "mean of" in c.method and "whole strides" in c.method
        np.testing.assert_allclose(c.values, shape(pct), atol=0.01)
        # swing: the foot is off its plate, 0 BW, after ~56 % of the cycle
        assert np.all(c.values[60:99] == 0)
        assert c.values.max() == pytest.approx(shape(pct).max(), abs=0.01)
    # with the header's mass the same curve, scaled by the known body weight
    heavy = Trial(
        task="gait",
        plates={1: {"fz": left}, 2: {"fz": right}},
        analog_rate_hz=1000.0,
        body_mass_kg=1.5 * 750.0 / 9.80665,
    )
    c2 = {c.side: c for c in _fz_cycle(gait_curves(heavy, read_config()))}["left"]
    np.testing.assert_allclose(c2.values, curves["left"].values / 1.5, rtol=1e-3, atol=1e-3)
    assert "header mass" in c2.method


def test_a_plate_struck_once_gives_no_gait_cycle():
    from cxlab.features.curve_tasks import gait_curves

    left, right, _ = _treadmill()
    one = np.where(np.arange(left.size) < 1000, left, 0.0)  # only the first stance
    trial = Trial(task="gait", plates={1: {"fz": one}, 2: {"fz": right}}, analog_rate_hz=1000.0)
    assert [c.side for c in _fz_cycle(gait_curves(trial, read_config()))] == ["right"]


def test_drop_jump_curve_on_the_battery_simulator_obeys_impulse_momentum():
    """The simulator's contact turns −√(2 g h_drop) into √(2 g h_jump): the stored curve's
    ∫(F/BW − 1) dt over the contact is (v_to + v_td) / g, and its length is the contact."""
    from cxlab.features.curve_tasks import dj_curves
    from cxlab.synth.battery import dj_trial

    rng = np.random.default_rng(4)
    tr = dj_trial(
        rng,
        mass_kg=72.0,
        drop_height_m=0.30,
        contact_time_s=0.24,
        jump_height_m=0.28,
        lsi_pct=90.0,
        weak_side="left",
    )
    fz = [f[:, 2] if f.ndim == 2 else f for f in tr.forces]
    trial = Trial(
        task="dj", plates={1: {"fz": fz[0]}, 2: {"fz": fz[1]}}, analog_rate_hz=tr.analog_rate_hz
    )
    c = {k.side: k for k in dj_curves(trial, read_config())}
    b = c["bilateral"]
    duration = b.end_s - b.start_s
    assert duration == pytest.approx(tr.truth["contact_time_s"], abs=0.006)
    dv = np.sqrt(2 * G * 0.28) + np.sqrt(2 * G * 0.30)
    assert duration * np.trapezoid(b.values - 1.0, dx=0.01) == pytest.approx(dv / G, rel=0.02)
    assert b.values.max() == pytest.approx(tr.truth["peak_contact_force_bw"], rel=0.02)
    # the weaker left foot takes less of the same contact
    assert np.trapezoid(c["left"].values) < np.trapezoid(c["right"].values)


def test_emg_envelope_curve_recovers_a_known_burst_over_the_cmj_phase():
    """Simulation with a known envelope: white noise × a(t), a Gaussian burst at 60 % of the
    countermovement; the stored curve peaks there and follows a(t) / max a."""
    fz, truth = cmj_force(v_to=2.4)
    rate = 1000.0
    t = np.arange(fz.size) / rate
    t0, t1 = truth["onset_s"], truth["takeoff_s"]
    tb = t0 + 0.6 * (t1 - t0)
    a = 0.02 + np.exp(-0.5 * ((t - tb) / 0.08) ** 2)
    rng = np.random.default_rng(11)
    trial = _trial(fz)
    trial.analogs = {"R_VL": a * rng.normal(size=t.size), "Force.Fz1": 0.45 * fz}
    curves = {(c.phase, c.signal, c.side): c for c in cmj_curves(trial, read_config())}
    c = curves[("cmj", "emg_vl", "right")]
    assert c.unit == "%peak" and "envelope" in c.method
    assert ("cmj", "fz_bw", "bilateral") in curves  # the force curves are still there
    pct = np.linspace(0, 100, 101)
    peak_pct = pct[np.argmax(c.values)]
    assert abs(peak_pct - 60.0) <= 3.0
    known = np.interp(c.start_s + pct / 100 * (c.end_s - c.start_s), t, a)
    known = 100 * known / a.max()
    assert np.corrcoef(known, c.values)[0, 1] > 0.97
    assert c.values.max() == pytest.approx(100.0, abs=15.0)  # the trial's peak is the burst's


# ----------------------------------------------------------------- single-leg squat
SLS_START, SLS_T, SLS_DEPTH = 1.5, 2.0, 0.15  # s, s, m: the pelvis lowers by sin² over 2 s


def _squat_shape(t):
    """0 standing, 1 at the deepest point: sin²(π(t − start)/T) inside the squat."""
    u = np.clip((t - SLS_START) / SLS_T, 0.0, 1.0)
    return np.sin(np.pi * u) ** 2


def _sls_trial(task="single_leg_squat_left", prate=200.0, rate=1000.0, bw=700.0, duration=5.0):
    """Analytic left single-leg squat: the pelvis (ASIS/PSIS) lowers by SLS_DEPTH·s(t), the
    left knee moves medially by 0.04 s(t) m half-way between hip and ankle (FPPA =
    2·atan(2m/h), h = hip-ankle height), and plate 1 carries BW (1 + 0.2 sin(2π(t − start)/T))
    during the squat after 1.5 s of quiet standing."""
    tm = np.arange(int(duration * prate)) / prate
    s = _squat_shape(tm)
    z = 0.95 - SLS_DEPTH * s
    one = np.ones_like(tm)

    def pt(x, y, zz):
        return np.column_stack([x * one, y * one, zz * one])

    mk = {
        "LASI": pt(0.12, 0.12, z + 0.02),
        "RASI": pt(0.12, -0.12, z + 0.02),
        "LPSI": pt(-0.05, 0.05, z + 0.04),
        "RPSI": pt(-0.05, -0.05, z + 0.04),
    }
    zh = z - 0.05
    m = 0.04 * s
    for side, y in (("L", 0.09), ("R", -0.09)):
        medial = -m if side == "L" else 0.0 * m
        mk[f"{side}HJC"] = pt(0.0, y, zh)
        mk[f"{side}KJC"] = pt(0.0, y + medial, (zh + 0.08) / 2)
        mk[f"{side}AJC"] = pt(0.0, y, 0.08)
    ta = np.arange(int(duration * rate)) / rate
    inside = (ta > SLS_START) & (ta < SLS_START + SLS_T)
    fz = bw * (1 + 0.2 * np.sin(2 * np.pi * (ta - SLS_START) / SLS_T) * inside)
    trial = Trial(
        task=task,
        plates={1: {"fz": fz}},
        analog_rate_hz=rate,
        markers=mk,
        point_rate_hz=prate,
    )
    fppa = np.degrees(2 * np.arctan(2 * m / (zh - 0.08)))
    return trial, tm, fppa, fz


def _sls_events_truth():
    """Start/end: the pelvis within 5 % of the depth of standing, s(t) = 0.05."""
    d = SLS_T * np.arcsin(np.sqrt(0.05)) / np.pi
    return SLS_START + d, SLS_START + SLS_T / 2, SLS_START + SLS_T - d


def test_single_leg_squat_phases_and_curves_match_the_analytic_squat():
    from cxlab.features.curve_tasks import sls_curves

    trial, tm, fppa, fz = _sls_trial()
    curves = {(c.phase, c.signal, c.side): c for c in sls_curves(trial, read_config())}
    t0, td, t1 = _sls_events_truth()
    desc, asc = (
        curves[("sls_descent", "knee_fppa", "left")],
        curves[("sls_ascent", "knee_fppa", "left")],
    )
    h = 1 / 200  # one marker frame
    assert desc.start_s == pytest.approx(t0, abs=h) and desc.end_s == pytest.approx(td, abs=h)
    assert asc.start_s == desc.end_s and asc.end_s == pytest.approx(t1, abs=h)
    assert ("sls_descent", "knee_fppa", "right") not in curves  # the stance leg only
    # FPPA over each phase: the analytic angle at the nodes (markers low-passed at 12 Hz)
    for c in (desc, asc):
        tq = c.start_s + np.linspace(0, 1, 101) * (c.end_s - c.start_s)
        np.testing.assert_allclose(c.values, np.interp(tq, tm, fppa), atol=0.05)
        assert c.unit == "deg" and "pelvis height" in c.method
    assert desc.values[-1] == pytest.approx(fppa.max(), abs=0.05)  # deepest = most valgus
    # vertical force in BW over the same phase, body weight from the standing before it
    f = curves[("sls_descent", "fz_bw", "left")]
    a, b = round(f.start_s * 1000), round(f.end_s * 1000)
    want = np.interp(np.linspace(a, b, 101), np.arange(fz.size), fz) / 700.0
    np.testing.assert_allclose(f.values, want, atol=1e-12)
    assert f.start_s == pytest.approx(t0, abs=h) and "quiet standing" in f.method


def test_single_leg_squat_phases_from_knee_flexion_without_pelvis_markers():
    from cxlab.features.curve_signals import JointData
    from cxlab.features.curve_tasks import sls_curves

    trial, tm, _, _ = _sls_trial(task="single_leg_squat")
    for name in ("LASI", "RASI", "LPSI", "RPSI"):
        del trial.markers[name]
    knee = 80.0 * _squat_shape(tm)  # deg, deepest = most flexed
    rows = [
        pd.DataFrame(
            {
                "frame": np.arange(tm.size),
                "time_s": tm,
                "side": side,
                "joint": "knee",
                "flexion_deg": knee,
                "adduction_deg": 0.0,
                "internal_rotation_deg": 0.0,
                "method": "file",
            }
        )
        for side in ("left", "right")
    ]
    jd = JointData(pd.concat(rows, ignore_index=True), None)
    curves = {(c.phase, c.signal, c.side): c for c in sls_curves(trial, read_config(), joints=jd)}
    t0, td, _ = _sls_events_truth()
    c = curves[("sls_descent", "knee_flexion_deg", "left")]
    assert c.start_s == pytest.approx(t0, abs=0.005) and c.end_s == pytest.approx(td, abs=0.005)
    assert "knee flexion (file)" in c.method and "joint_angles method file" in c.method
    tq = c.start_s + np.linspace(0, 1, 101) * (c.end_s - c.start_s)
    bound = (1 / 200) ** 2 * 40 * (2 * np.pi / SLS_T) ** 2 / 8  # h²·max|x''|/8
    np.testing.assert_allclose(c.values, 80.0 * _squat_shape(tq), atol=bound + 1e-9)
    # no side in the task's label: both legs; one plate, summed as bilateral
    assert ("sls_ascent", "knee_flexion_deg", "right") in curves
    assert ("sls_ascent", "fz_bw", "bilateral") in curves


def test_a_recording_without_a_squat_is_refused_with_the_depth_it_found():
    from cxlab.features.curve_tasks import sls_events
    from cxlab.features.events import FeatureError

    flat = 0.95 + 0.001 * np.sin(np.linspace(0, 20, 1000))
    with pytest.raises(FeatureError, match=r"falls 0\.00\d+ below standing.*0\.03 a squat"):
        sls_events(flat, min_depth=0.03)
    cut = 0.95 - 0.15 * np.linspace(0, 1, 500)  # the recording stops at the deepest point
    with pytest.raises(FeatureError, match="cut by the recording"):
        sls_events(cut, min_depth=0.03)


def test_single_leg_squat_curves_through_cxlab_features_are_byte_identical_on_rerun(tmp_path):
    from test_features_runner import _markers

    trial, *_ = _sls_trial()
    st = Store(tmp_path / "s")
    rec = _rec("sls1", "single_leg_squat_left", point=200.0, n_frames=1000)
    rid = rec["recording_id"]
    st.write("forces", _forces(rid, [{"fz": trial.plates[1]["fz"]}]), key=rid, partition=SUBJ)
    st.write("markers", _markers(rid, trial.markers, 200.0), key=rid, partition=SUBJ)
    st.write("recordings", pd.DataFrame([rec]), key="all")
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.n_quarantined == 0 and rep.n_no_functions == 0
    c = st.table("curves")
    assert set(c.phase) == {"sls_descent", "sls_ascent"}
    assert {"knee_fppa", "fz_bw"} <= set(c.signal)
    f1 = {p.name: p.read_bytes() for p in st.files("curves")}
    extract_features(st, jobs=2, force=True, progress=False)
    assert {p.name: p.read_bytes() for p in st.files("curves")} == f1


def _flatfoot_trial(real_dir, *, drop=(), with_events=False):
    """The real Nexus walk as a Trial without plates: markers (m) and, optionally, the
    file's events, read with ezc3d; its PiG knee angles as a ``file`` joint table."""
    import ezc3d

    from cxlab.features.curve_signals import joint_data

    c = ezc3d.c3d(str(real_dir / "c3d" / "btk_PiG_Motion-FlatFoot-Full.c3d"))
    par = c["parameters"]
    labels, pts = par["POINT"]["LABELS"]["value"], c["data"]["points"]
    rate = float(par["POINT"]["RATE"]["value"][0])
    first = int(c["header"]["points"]["first_frame"])
    markers = {}
    for i, name in enumerate(labels):
        xyz = pts[:3, i, :].T / 1000.0
        xyz[pts[3, i, :] < 0] = np.nan
        markers[name] = xyz
    events = []
    if with_events:
        ev = par["EVENT"]
        times = np.asarray(ev["TIMES"]["value"]).T.reshape(-1, 2)[:, 1]
        events = [
            (lab, ctx, t - first / rate)
            for lab, ctx, t in zip(
                ev["LABELS"]["value"], ev["CONTEXTS"]["value"], times, strict=True
            )
        ]
    n = pts.shape[2]
    rows = [
        pd.DataFrame(
            {
                "frame": np.arange(n),
                "time_s": np.arange(n) / rate,
                "side": side,
                "joint": "knee",
                "flexion_deg": markers[f"{side[0].upper()}KneeAngles"][:, 0] * 1000.0,
                "adduction_deg": markers[f"{side[0].upper()}KneeAngles"][:, 1] * 1000.0,
                "internal_rotation_deg": markers[f"{side[0].upper()}KneeAngles"][:, 2] * 1000.0,
                "method": "file",
            }
        )
        for side in ("left", "right")
    ]
    for name in drop:
        markers.pop(name)
    trial = Trial(task="gait", markers=markers, point_rate_hz=rate, events=events)
    return trial, joint_data(rows)


def _knee(curves):
    return {c.side: c for c in curves if (c.phase, c.signal) == ("gait_cycle", "knee_flexion_deg")}


def test_gait_cycles_from_markers_when_a_walk_has_no_events_and_no_plates(real_dir):
    from cxlab.features.curve_tasks import gait_curves

    cfg = read_config()
    trial, jd = _flatfoot_trial(real_dir)
    got = _knee(gait_curves(trial, cfg, joints=jd))
    assert sorted(got) == ["left", "right"]
    assert all("foot strikes from markers (Zeni 2008)" in c.method for c in got.values())
    # the same knee curves from the file's own Foot Strike events (Nexus): the marker
    # strikes come 3-7 frames (3-7 % of a ~1 s cycle) earlier, so the curves nearly agree
    trial_ev, _ = _flatfoot_trial(real_dir, with_events=True)
    ref = _knee(gait_curves(trial_ev, cfg, joints=jd))
    assert all("Foot Strike events" in c.method for c in ref.values())
    # left: both from 2 cycles; measured r = 0.94, RMS 6.0 deg over a 55 deg range (the
    # 3-7 % shift matters most in swing, where knee flexion changes ~5 deg per %)
    a, b = got["left"].values, ref["left"].values
    assert np.corrcoef(a, b)[0, 1] > 0.9
    assert np.sqrt(np.mean((a - b) ** 2)) < 8.0
    # each side's first marker cycle starts 0-80 ms before one of the file's strikes
    for side in ("left", "right"):
        strikes = np.array(
            [t for lab, ctx, t in trial_ev.events if (lab, ctx.lower()) == ("Foot Strike", side)]
        )
        lead = strikes - got[side].start_s
        assert np.any((lead >= 0) & (lead <= 0.08)), (side, got[side].start_s, strikes)


def test_a_walk_without_heel_markers_warns_and_gets_no_marker_gait_cycles(real_dir):
    from cxlab._check import CxlabWarning
    from cxlab.features.curve_tasks import gait_curves

    trial, jd = _flatfoot_trial(real_dir, drop=("LHEE", "RHEE"))
    with pytest.warns(CxlabWarning, match=r"left heel marker \(LHEE / LCAL\) is missing"):
        curves = gait_curves(trial, read_config(), joints=jd)
    assert not _knee(curves)


@pytest.mark.parametrize("heel", [True, False])
def test_cxlab_features_builds_marker_gait_cycles_for_a_walk_without_events(
    real_dir, tmp_path, heel
):
    # the real Nexus walk written again (by ezc3d) without its EVENT group, and without
    # heel markers (renamed) in the second case; its plates are each struck once
    import ezc3d

    from cxlab.ingest import ingest

    c = ezc3d.c3d(str(real_dir / "c3d" / "btk_PiG_Motion-FlatFoot-Full.c3d"))
    del c["parameters"]["EVENT"]
    if not heel:
        labels = c["parameters"]["POINT"]["LABELS"]["value"]
        c["parameters"]["POINT"]["LABELS"]["value"] = [
            {"LHEE": "LXXX", "RHEE": "RXXX"}.get(n, n) for n in labels
        ]
    (tmp_path / "in").mkdir()
    c.write(str(tmp_path / "in" / "sub-BELT_ses-1_task-gait_run-1.c3d"))
    store = Store(tmp_path / "store")
    ingest([tmp_path / "in"], store=store, progress=False)
    extract_features(store, progress=False)
    cv = store.table("curves")
    knee = cv[(cv["phase"] == "gait_cycle") & (cv["signal"] == "knee_flexion_deg")]
    reasons = store.table("quarantine")["reason"].tolist()
    if heel:
        assert sorted(knee["side"].unique()) == ["left", "right"]
        assert knee["method"].str.startswith("foot strikes from markers (Zeni 2008)").all()
        assert not any("curves kept" in r for r in reasons)
    else:  # the gait features need the heels too: one readable reason, no gait curves
        assert knee.empty
        assert any("gait: marker LHEE / LCAL is missing" in r for r in reasons), reasons


def test_a_marker_gait_cycle_failure_is_kept_beside_the_curves(real_dir, tmp_path, monkeypatch):
    # a walk whose pelvis turns back: the gait features and plate curves land, the marker
    # cycles are refused and the reason is a quarantine warning row (in-process run)
    import ezc3d

    from cxlab.features import curve_tasks
    from cxlab.features.events import foot_events
    from cxlab.ingest import ingest

    def turning(heel, toe, pelvis, /, **kw):
        back = np.array(pelvis, float)
        turn = 2 * back.shape[0] // 3
        back[turn:] = 2 * back[turn] - back[turn:]  # walks back for the last third
        return foot_events(heel, toe, back, **kw)

    monkeypatch.setattr(curve_tasks, "foot_events", turning)
    c = ezc3d.c3d(str(real_dir / "c3d" / "btk_PiG_Motion-FlatFoot-Full.c3d"))
    del c["parameters"]["EVENT"]
    (tmp_path / "in").mkdir()
    c.write(str(tmp_path / "in" / "sub-BELT_ses-1_task-gait_run-1.c3d"))
    store = Store(tmp_path / "store")
    ingest([tmp_path / "in"], store=store, progress=False)
    extract_features(store, progress=False, jobs=1)
    cv = store.table("curves")
    assert not ((cv["phase"] == "gait_cycle") & (cv["signal"] == "knee_flexion_deg")).any()
    assert (cv["phase"] == "gait_stance").any()
    reasons = store.table("quarantine")["reason"].tolist()
    assert any("warning, curves kept" in r and "(a turn)" in r for r in reasons), reasons
