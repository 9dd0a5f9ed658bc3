"""Joint-angle, joint-moment, shear and CoP curves: the real PiG file and analytic trials."""

from __future__ import annotations

import itertools
import warnings

import ezc3d
import numpy as np
import pandas as pd
import pytest

from cxlab._check import CxlabWarning
from cxlab.features.curve_signals import NO_JOINTS, JointData, joint_data
from cxlab.features.curve_tasks import cmj_curves, landing_curves
from cxlab.features.runner import extract_features, read_config
from cxlab.features.tasks import Trial
from cxlab.ingest import ingest
from cxlab.store import Store
from featuresim import cmj_force

MOTION = "c3d/btk_PiG_Motion-FlatFoot-Full.c3d"
_CACHE: dict = {}


def _gait_store(real_dir, tmp_path_factory):
    """The real Nexus PiG walking trial ingested as a gait task and through `cxlab features`
    without PiG measurements: its joint tables hold the vendor's outputs (method file)."""
    if "st" not in _CACHE:
        root = tmp_path_factory.mktemp("curves-gait")
        (root / "in").mkdir()
        (root / "in" / "sub-BELT_ses-1_task-gait_run-1.c3d").symlink_to(real_dir / MOTION)
        st = Store(root / "st")
        ingest([root / "in"], store=st, jobs=1, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CxlabWarning)
            rep = extract_features(st, jobs=1, progress=False)
        _CACHE["st"] = (st, rep)
    return _CACHE["st"]


def _nexus(path):
    """Points (frames × 3 per label), the file's events and its first frame, by ezc3d."""
    c = ezc3d.c3d(str(path))
    labels = [lab.split(":")[-1] for lab in c["parameters"]["POINT"]["LABELS"]["value"]]
    pts = c["data"]["points"][:3].transpose(2, 1, 0).astype(float)
    ev = c["parameters"]["EVENT"]
    mins_secs = np.asarray(ev["TIMES"]["value"], dtype=float).reshape(-1, 2)  # per event
    times = 60.0 * mins_secs[:, 0] + mins_secs[:, 1]
    rate = float(c["parameters"]["POINT"]["RATE"]["value"][0])
    first = int(c["header"]["points"]["first_frame"])  # 0-based: frame 1 = 0 s of capture
    events = list(zip(ev["LABELS"]["value"], ev["CONTEXTS"]["value"], times, strict=True))
    return {lab: pts[:, i] for i, lab in enumerate(labels)}, events, rate, first


def _curve(curves, phase, signal, side):
    c = curves[(curves.phase == phase) & (curves.signal == signal) & (curves.side == side)]
    return c.sort_values("node")


@pytest.mark.parametrize("side", ["left", "right"])
def test_gait_cycle_knee_curves_are_the_stored_pig_outputs_between_the_files_foot_strikes(
    real_dir, tmp_path_factory, side
):
    """Oracle: Nexus' own LKneeAngles / LKneeMoment in the C3D (read by ezc3d), resampled
    here with numpy.interp between consecutive Foot Strike events of the same side (event
    times − the first frame's time), the cycles averaged."""
    st, _ = _gait_store(real_dir, tmp_path_factory)
    curves = st.table("curves")
    pts, events, rate, first = _nexus(real_dir / MOTION)
    t = np.arange(pts["LKneeAngles"].shape[0]) / rate
    strikes = sorted(
        tm - first / rate for lab, ctx, tm in events if lab == "Foot Strike" and ctx == side.title()
    )
    assert len(strikes) >= 3 if side == "right" else len(strikes) == 3
    letter = side[0].upper()
    pct = np.linspace(0, 1, 101)
    for signal, label, comp, scale in (
        ("knee_flexion_deg", "KneeAngles", 0, 1.0),
        ("knee_adduction_deg", "KneeAngles", 1, 1.0),
        ("hip_internal_rotation_deg", "HipAngles", 2, 1.0),
        ("knee_abduction_moment_nm_per_kg", "KneeMoment", 1, -1e-3),  # N.mm/kg, external
    ):
        ref = pts[letter + label][:, comp] * scale
        want = np.mean(
            [np.interp(a + pct * (b - a), t, ref) for a, b in itertools.pairwise(strikes)], axis=0
        )
        got = _curve(curves, "gait_cycle", signal, side)
        assert len(got) == 101, signal
        np.testing.assert_allclose(got["value"].to_numpy(), want, rtol=1e-6, atol=1e-6)
        assert got["phase_start_s"].iloc[0] == pytest.approx(strikes[0], abs=1e-6)
        assert got["phase_end_s"].iloc[0] == pytest.approx(strikes[-1], abs=1e-6)
        method = got["method"].iloc[0]
        assert "method file" in method and "Foot Strike" in method
        assert f"mean of {len(strikes) - 1}" in method


def test_gait_stance_shear_and_cop_are_the_forces_table_resampled(real_dir, tmp_path_factory):
    """Each plate's contact, first sample ≥ 20 N to first sample < 20 N, read off the
    store's forces table here; the stance's foot is the one whose Foot Strike event the
    file places at the contact (plate 1 takes the right foot in this walk)."""
    st, _ = _gait_store(real_dir, tmp_path_factory)
    curves = st.table("curves")
    forces = st.table("forces").sort_values(["plate", "sample"])
    rec = st.table("recordings").iloc[0]
    rate, bw = float(rec["analog_rate_hz"]), float(rec["body_mass_kg"]) * 9.80665
    _, events, prate, first = _nexus(real_dir / MOTION)
    pct = np.linspace(0, 1, 101)
    for _, g in forces.groupby("plate"):
        fz = g["fz"].to_numpy()
        a = int(np.flatnonzero(fz >= 20)[0])
        b = a + int(np.flatnonzero(fz[a:] < 20)[0])
        near = [
            ctx.lower()
            for lab, ctx, tm in events
            if lab == "Foot Strike" and abs(tm - first / prate - a / rate) < 0.05
        ]
        assert len(near) == 1
        foot = near[0]
        t = np.arange(fz.size) / rate
        tq = (a + pct * (b - a)) / rate
        for signal, col, div in (
            ("shear_ap_n", "fx", 1.0),
            ("shear_ml_bw", "fy", bw),
            ("fz_bw", "fz", bw),
        ):
            got = _curve(curves, "gait_stance", signal, foot)
            want = np.interp(tq, t, g[col].to_numpy()) / div
            np.testing.assert_allclose(got["value"].to_numpy(), want, rtol=1e-9, atol=1e-9)
        cop = g["cop_x"].to_numpy()
        seg = cop[a : b + 1]
        ref = seg[np.isfinite(seg)][0]
        got = _curve(curves, "gait_stance", "cop_ap_m", foot)["value"].to_numpy()
        want = np.interp(tq, t, cop) - ref
        ok = np.isfinite(got)
        assert ok.sum() > 95
        np.testing.assert_allclose(got[ok], want[ok], atol=1e-9)
    assert {"left", "right"} <= set(curves[curves.phase == "gait_stance"].side)


def test_joint_curves_never_mix_methods_and_prefer_cxlab_pig():
    t = np.arange(50) / 100.0

    def table(method, offset):
        return pd.DataFrame(
            {
                "frame": np.arange(50),
                "time_s": t,
                "side": "left",
                "joint": "knee",
                "flexion_deg": 10.0 * t + offset,
                "adduction_deg": 0.0,
                "internal_rotation_deg": 0.0,
                "method": method,
            }
        )

    jd = joint_data([table("cxlab-pig", 0.0), table("file", 5.0)])
    assert set(jd.angles["method"]) == {"cxlab-pig"} and jd.moments is None
    assert set(joint_data([None, table("file", 5.0)]).angles["method"]) == {"file"}
    assert joint_data([]) == NO_JOINTS


def _landing_trial(rate=1000.0, prate=200.0, bw=700.0):
    """0.4 s in the air, then a landing on two plates with known analytic forces and CoP:
    fz = BW(1 + 2 sin(πτ/0.3)) for τ < 0.3 s then BW; fx = 0.2 BW sin(2πτ), fy = ±30 N τ;
    CoP x = 0.1 + 0.05 τ, y = ±0.1 (m). Markers are not needed: the joint tables are given."""
    n = int(2.2 * rate)
    t = np.arange(n) / rate
    tau = t - 0.4
    on = tau >= 0
    fz = np.where(on, bw * (1 + 2 * np.sin(np.pi * np.clip(tau, 0, 0.3) / 0.3)), 0.0)
    fz = np.where(tau > 0.3, bw, fz)
    plates = {}
    for k, sgn in ((1, 1.0), (2, -1.0)):
        plates[k] = {
            "fz": 0.5 * fz,
            "fx": np.where(on, 0.1 * bw * np.sin(2 * np.pi * tau), 0.0),
            "fy": np.where(on, sgn * 30.0 * tau, 0.0),
            "cop_x": np.where(on, 0.1 + 0.05 * tau, np.nan),
            "cop_y": np.where(on, sgn * 0.1, np.nan),
        }
    return Trial(task="landing", plates=plates, analog_rate_hz=rate), t, tau, on


def _angles(prate, duration, knee):
    tm = np.arange(int(duration * prate)) / prate
    rows = []
    for side in ("left", "right"):
        for joint in ("hip", "knee", "ankle"):
            rows.append(
                pd.DataFrame(
                    {
                        "frame": np.arange(tm.size),
                        "time_s": tm,
                        "side": side,
                        "joint": joint,
                        "flexion_deg": knee(tm) if joint == "knee" else 0.0 * tm,
                        "adduction_deg": 0.5 * knee(tm) if joint == "hip" else 0.0 * tm,
                        "internal_rotation_deg": 0.0 * tm,
                        "method": "cxlab-pig",
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_landing_curves_gain_analytic_joint_shear_and_cop_curves():
    trial, *_ = _landing_trial()
    td = np.flatnonzero(trial.plates[1]["fz"] + trial.plates[2]["fz"] >= 20)[0]

    def knee(tm):  # deg: flexes 60 deg over the first 0.25 s after touchdown
        return 10.0 + 60.0 * np.sin(np.pi / 2 * np.clip((tm - 0.4) / 0.25, 0, 1)) ** 2

    jd = JointData(_angles(200.0, 2.2, knee), None)
    cfg = read_config()
    curves = {(c.signal, c.side): c for c in landing_curves(trial, cfg, joints=jd)}
    plain = {(c.signal, c.side): c for c in landing_curves(trial, cfg)}
    # the force and FPPA curves are unchanged by the new signals
    for key, c in plain.items():
        np.testing.assert_array_equal(curves[key].values, c.values)
    t0, t1 = td / 1000, td / 1000 + 0.25
    tq = t0 + np.linspace(0, 1, 101) * (t1 - t0)
    c = curves[("knee_flexion_deg", "left")]
    assert c.unit == "deg" and "joint_angles method cxlab-pig" in c.method
    # linear interpolation of 200 Hz samples: error <= h²·max|x''|/8, max|x''| = 30 (π/0.25)²
    bound = (1 / 200) ** 2 * 30 * (np.pi / 0.25) ** 2 / 8
    np.testing.assert_allclose(c.values, knee(tq), atol=bound + 1e-9)
    assert np.abs(c.values - knee(tq)).max() > 0.2 * bound  # nodes between samples
    np.testing.assert_allclose(
        curves[("hip_adduction_deg", "right")].values, 0.5 * knee(tq), atol=0.1
    )
    # shear: sum of both plates for bilateral, in N and BW (BW from the landing's standing)
    bw = curves[("shear_ap_n", "bilateral")].values / curves[("shear_ap_bw", "bilateral")].values
    np.testing.assert_allclose(bw[5:], 700.0, rtol=1e-3)
    np.testing.assert_allclose(
        curves[("shear_ap_n", "bilateral")].values,
        0.2 * 700 * np.sin(2 * np.pi * (tq - 0.4)),
        atol=0.5,
    )
    np.testing.assert_allclose(curves[("shear_ml_n", "left")].values, 30 * (tq - 0.4), atol=0.05)
    np.testing.assert_allclose(curves[("shear_ml_n", "right")].values, -30 * (tq - 0.4), atol=0.05)
    assert ("shear_ml_n", "bilateral") in curves
    # CoP relative to the phase start: 0.05 m/s × time since the first finite CoP sample
    np.testing.assert_allclose(curves[("cop_ap_m", "left")].values, 0.05 * (tq - t0), atol=1e-9)
    np.testing.assert_allclose(curves[("cop_ml_m", "right")].values, 0.0, atol=1e-12)
    assert ("cop_ap_m", "bilateral") not in curves  # two plates: no summed CoP
    assert curves[("cop_ap_m", "left")].unit == "m"
    assert "relative to its first finite sample" in curves[("cop_ap_m", "left")].method


def test_cmj_shear_curve_is_the_analytic_horizontal_force():
    fz, _ = cmj_force(v_to=2.4)
    rate = 1000.0
    t = np.arange(fz.size) / rate
    fx = 25.0 * np.sin(2 * np.pi * 0.7 * t)
    plates = {
        1: {"fz": 0.5 * fz, "fx": 0.4 * fx, "fy": np.full(fz.size, np.nan)},
        2: {"fz": 0.5 * fz, "fx": 0.6 * fx, "fy": np.full(fz.size, np.nan)},
    }
    trial = Trial(task="cmj", plates=plates, analog_rate_hz=rate)
    curves = {(c.phase, c.signal, c.side): c for c in cmj_curves(trial, read_config())}
    c = curves[("cmj", "shear_ap_n", "bilateral")]
    tq = c.start_s + np.linspace(0, 1, 101) * (c.end_s - c.start_s)
    np.testing.assert_allclose(c.values, 25.0 * np.sin(2 * np.pi * 0.7 * tq), atol=1e-3)
    np.testing.assert_allclose(curves[("cmj", "shear_ap_n", "left")].values, 0.4 * c.values)
    bw = curves[("cmj", "fz_bw", "bilateral")]
    assert bw.start_s == c.start_s and bw.end_s == c.end_s
    # a component the plates do not export (NaN) gives no curve, never 0 N
    assert not any(k[1].startswith("shear_ml") for k in curves)
    assert ("cmj_landing", "shear_ap_bw", "right") in curves


def test_with_pig_measurements_the_curves_are_cxlab_pig_only(real_dir, tmp_path):
    """Both methods in the joint tables: the curves take cxlab-pig, say so, and equal the
    store's cxlab-pig rows resampled here between the file's foot strikes."""
    from cxlab import io
    from cxlab.features import kinematics as kin
    from test_joints import _csv

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sub-BELT_ses-1_task-gait_run-1.c3d").symlink_to(real_dir / MOTION)
    st = Store(tmp_path / "st")
    ingest([tmp_path / "in"], store=st, jobs=1, progress=False)
    csv = _csv(tmp_path / "pig.csv", "BELT", kin.pig_subject(io.read(real_dir / MOTION)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        extract_features(st, config={"kinematics": {"measurements": str(csv)}}, progress=False)
    angles = st.table("joint_angles")
    assert set(angles.method) == {"cxlab-pig", "file"}
    curves = st.table("curves")
    joint = curves[curves.signal.str.endswith(("_deg", "_nm_per_kg"))]
    assert joint["method"].str.contains("method cxlab-pig").all()
    assert not joint["method"].str.contains("method file").any()
    pts, events, rate, first = _nexus(real_dir / MOTION)
    strikes = sorted(
        tm - first / rate for lab, ctx, tm in events if lab == "Foot Strike" and ctx == "Left"
    )
    ours = angles[
        (angles.method == "cxlab-pig") & (angles.side == "left") & (angles.joint == "knee")
    ]
    ours = ours.sort_values("frame")
    pct = np.linspace(0, 1, 101)
    want = np.mean(
        [
            np.interp(a + pct * (b - a), ours["time_s"], ours["flexion_deg"])
            for a, b in itertools.pairwise(strikes)
        ],
        axis=0,
    )
    got = _curve(curves, "gait_cycle", "knee_flexion_deg", "left")["value"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # and within 1 deg RMS of Nexus' own curve (the two methods agree: test_joints)
    t = np.arange(pts["LKneeAngles"].shape[0]) / rate
    nexus = np.mean(
        [
            np.interp(a + pct * (b - a), t, pts["LKneeAngles"][:, 0])
            for a, b in itertools.pairwise(strikes)
        ],
        axis=0,
    )
    assert 0.0 < np.sqrt(np.mean((got - nexus) ** 2)) < 1.0


def test_real_cmj_shear_and_cop_curves_are_the_forces_table_resampled(real_dir, tmp_path):
    """A Vicon Nexus CMJ on two plates: over the stored CMJ phase, the bilateral shear is
    the sum of both plates' fx / fy in the forces table and each plate's CoP is its own,
    minus the value at the phase start, all resampled here with numpy.interp."""
    (tmp_path / "in").mkdir()
    name = "sub-JV01_ses-1_task-cmj_run-1.c3d"
    (tmp_path / "in" / name).symlink_to(real_dir / "c3d" / "biomdp_vicon_CMJ_kinem_kinet_emg.c3d")
    st = Store(tmp_path / "st")
    ingest([tmp_path / "in"], store=st, jobs=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        extract_features(st, progress=False)
    curves = st.table("curves")
    forces = st.table("forces").sort_values(["plate", "sample"])
    rate = float(st.table("recordings")["analog_rate_hz"].iloc[0])
    fz = _curve(curves, "cmj", "fz_bw", "bilateral")
    assert len(fz) == 101
    t0, t1 = fz["phase_start_s"].iloc[0], fz["phase_end_s"].iloc[0]
    tq = t0 + np.linspace(0, 1, 101) * (t1 - t0)
    plates = {k: g for k, g in forces.groupby("plate")}
    t = np.arange(len(plates[1])) / rate
    for col, signal in (("fx", "shear_ap_n"), ("fy", "shear_ml_n")):
        want = sum(np.interp(tq, t, plates[k][col].to_numpy()) for k in (1, 2))
        got = _curve(curves, "cmj", signal, "bilateral")["value"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        assert np.abs(want).max() > 5.0  # a real horizontal force, not zeros
    # each plate's CoP minus its first finite value in the phase; NaN (below the plate's
    # threshold: plate 2 is nearly unloaded in this jump) stays NaN at the nodes it touches
    a, b = round(t0 * rate), round(t1 * rate)
    for k, side in ((1, "left"), (2, "right")):
        cop = plates[k]["cop_x"].to_numpy()
        seg = cop[a : b + 1]
        ref = seg[np.isfinite(seg)][0]
        got = _curve(curves, "cmj", "cop_ap_m", side)["value"].to_numpy()
        want = np.interp(tq, t, cop) - ref
        if not np.isfinite(want).any():  # no finite node: no curve, never zeros
            assert got.size == 0
            continue
        np.testing.assert_allclose(got, want, atol=1e-9, equal_nan=True)
    left = _curve(curves, "cmj", "cop_ap_m", "left")["value"].to_numpy()
    assert np.isfinite(left[:-1]).all() and np.isnan(left[-1])  # take-off: plate unloaded
