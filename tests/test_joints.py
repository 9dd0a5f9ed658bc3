"""The store's joint tables: ``plates`` at ingest, ``joint_angles`` / ``joint_moments`` with
both methods from ``cxlab features``, and the Hewett knee abduction moment feature.

Oracles, read with ezc3d independently of cxlab's reader: the plate geometry the C3D states
(``FORCE_PLATFORM:CORNERS/ORIGIN/TYPE``), the Plug-in Gait angles and moments Vicon Nexus
stored in the file (moments per kg although the file says N·mm: divided by 1000 here), and
Nexus' own foot-strike events.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import ezc3d
import numpy as np
import pandas as pd
import pytest

from cxlab import io
from cxlab._check import ConfigError, CxlabWarning
from cxlab.features import joints
from cxlab.features import kinematics as kin
from cxlab.features import kinetics as kt
from cxlab.features.runner import extract_features
from cxlab.ingest import ingest
from cxlab.io.recording import as_stored
from cxlab.store import Store

MOTION = "c3d/btk_PiG_Motion-FlatFoot-Full.c3d"
NAME = "sub-BELT_ses-1_task-landing_run-1.c3d"
P = {"left": "L", "right": "R"}
ANGLES = {
    "pelvis": "PelvisAngles",
    "hip": "HipAngles",
    "knee": "KneeAngles",
    "ankle": "AnkleAngles",
    "foot_progression": "FootProgressAngles",
}
_CACHE: dict = {}


def _csv(path, label, subject, *, body_mass=True):
    cols = "subject,side,leg_length_mm,knee_width_mm,ankle_width_mm,asis_trochanter_mm,"
    cols += "static_plantar_flexion_deg,static_rotation_offset_deg"
    rows = [cols + (",body_mass_kg" if body_mass else "")]
    for side in ("left", "right"):
        leg = subject.leg(side)
        rows.append(
            f"{label},{side},{leg.leg_length_mm},{leg.knee_width_mm},{leg.ankle_width_mm},"
            f"{leg.asis_trochanter_mm},{leg.static_plantar_flexion_deg!r},"
            f"{leg.static_rotation_offset_deg!r}"
            + (f",{subject.body_mass_kg}" if body_mass else "")
        )
    path.write_text("\n".join(rows) + "\n")
    return path


def _ingested(real_dir, tmp_path_factory, *, measurements: bool = True):
    """The real PiG motion trial ingested (as a landing) and through ``cxlab features``."""
    key = measurements
    if key not in _CACHE:
        root = tmp_path_factory.mktemp("joints")
        (root / "in").mkdir()
        (root / "in" / NAME).symlink_to(real_dir / MOTION)
        st = Store(root / "st")
        ingest([root / "in"], store=st, jobs=1, progress=False)
        rec = io.read(real_dir / MOTION)
        config = {}
        if measurements:
            csv = _csv(root / "pig.csv", "BELT", kin.pig_subject(rec))
            config = {"kinematics": {"measurements": str(csv)}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CxlabWarning)
            report = extract_features(st, config=config, jobs=1, progress=False)
        _CACHE[key] = (st, rec, report)
    return _CACHE[key]


def _nexus(path) -> tuple[dict[str, np.ndarray], ezc3d.c3d]:
    c = ezc3d.c3d(str(path))
    labels = [lab.split(":")[-1] for lab in c["parameters"]["POINT"]["LABELS"]["value"]]
    pts = c["data"]["points"][:3].transpose(2, 1, 0).astype(float)
    return {lab: pts[:, i] for i, lab in enumerate(labels)}, c


def _wide(df, side, joint, cols):
    rows = df[(df.side == side) & (df.joint == joint)].sort_values("frame")
    return rows[list(cols)].to_numpy(dtype=float)


def _wrapped(a):
    return (a + 180.0) % 360.0 - 180.0


# ----------------------------------------------------------------- plates at ingest


def test_plates_table_holds_the_corners_origin_and_type_the_file_states(real_dir, tmp_path_factory):
    st, _, _ = _ingested(real_dir, tmp_path_factory)
    plates = st.table("plates").sort_values(["plate", "corner"])
    _, c = _nexus(real_dir / MOTION)
    fp = c["parameters"]["FORCE_PLATFORM"]
    corners = fp["CORNERS"]["value"]  # (3, 4, n_plates), mm
    assert sorted(set(plates.plate)) == [1, 2]
    for k in (1, 2):
        got = plates[plates.plate == k]
        np.testing.assert_allclose(got[["x", "y", "z"]].to_numpy(), corners[:, :, k - 1].T / 1000)
        origin = got[["origin_x", "origin_y", "origin_z"]].to_numpy()
        np.testing.assert_allclose(origin, np.tile(fp["ORIGIN"]["value"][:, k - 1] / 1000, (4, 1)))
        assert set(got.plate_type) == {int(fp["TYPE"]["value"][k - 1])}


def test_a_recording_without_plates_has_no_plates_rows(real_dir):
    rec = io.read(real_dir / MOTION)
    rec.platforms = []
    assert len(rec.to_tables("0123456789abcdef")["plates"]) == 0


# ----------------------------------------------------------------- both methods


def test_both_methods_land_and_agree_within_the_issue_tolerances(real_dir, tmp_path_factory):
    """cxlab-pig (markers, plates, 14 mm default markers) against file (Nexus) in the
    store: angles RMS <= 1 deg flexion/adduction, <= 3 deg rotation; knee moment RMS
    <= 0.06 N.m/kg (pyCGM2's tolerance against Nexus)."""
    st, _, _ = _ingested(real_dir, tmp_path_factory)
    angles, moments = st.table("joint_angles"), st.table("joint_moments")
    assert set(angles.method) == {"cxlab-pig", "file"} == set(moments.method)
    a = {m: g for m, g in angles.groupby("method")}
    m = {k: g for k, g in moments.groupby("method")}
    for side in ("left", "right"):
        for joint in ANGLES:
            ours = _wide(a["cxlab-pig"], side, joint, kin.ANGLE_COLUMNS)
            file = _wide(a["file"], side, joint, kin.ANGLE_COLUMNS)
            ok = np.isfinite(ours).all(1) & np.isfinite(file).all(1)
            assert ok.sum() > 100, (side, joint)
            rms = np.sqrt(np.mean(_wrapped(ours[ok] - file[ok]) ** 2, axis=0))
            assert rms[0] <= 1.0 and rms[1] <= 1.0 and rms[2] <= 3.0, (side, joint, rms)
        ours = _wide(m["cxlab-pig"], side, "knee", kt.MOMENT_COLUMNS)
        file = _wide(m["file"], side, "knee", kt.MOMENT_COLUMNS)
        ok = np.isfinite(ours).all(1) & np.isfinite(file).all(1)
        assert ok.sum() > 150
        rms = np.sqrt(np.mean((ours[ok] - file[ok]) ** 2, axis=0))
        assert (rms <= 0.06).all(), (side, rms)


def test_file_rows_are_the_values_nexus_stored(real_dir, tmp_path_factory):
    """file angles = the stored PiG angles, file moments = the stored N·mm/kg / 1000,
    file power = the Z of the stored power; frames Nexus left at 0, 0, 0 are NaN."""
    st, _, _ = _ingested(real_dir, tmp_path_factory)
    d, _ = _nexus(real_dir / MOTION)
    angles = st.table("joint_angles", filters=[("method", "==", "file")])
    moments = st.table("joint_moments", filters=[("method", "==", "file")])
    for side in ("left", "right"):
        ref = d[P[side] + "KneeAngles"]
        got = _wide(angles, side, "knee", kin.ANGLE_COLUMNS)
        empty = (ref == 0).all(axis=1)
        np.testing.assert_allclose(got[~empty], ref[~empty], rtol=1e-6, atol=1e-9)
        assert np.isnan(got[empty]).all()
        for joint in ("ankle", "knee", "hip"):
            ref = d[P[side] + joint.capitalize() + "Moment"] / 1000.0
            got = _wide(moments, side, joint, kt.MOMENT_COLUMNS)
            ok = ~(ref == 0).all(axis=1)
            np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-6, atol=1e-9)
            power = _wide(moments, side, joint, ["power_w_per_kg"])[:, 0]
            ref_p = d[P[side] + joint.capitalize() + "Power"]
            okp = ~(ref_p == 0).all(axis=1)
            np.testing.assert_allclose(power[okp], ref_p[okp, 2], rtol=1e-6, atol=1e-9)


def test_store_moments_are_the_library_moments_of_the_file(real_dir, tmp_path_factory):
    """What the hook rebuilt from the store (forces, plates, markers) is what
    joint_moments gives on the file itself with the same measurements."""
    from cxlab.pseudo import pseudonymise

    st, rec, _ = _ingested(real_dir, tmp_path_factory)
    got = st.table("joint_moments", filters=[("method", "==", "cxlab-pig")])
    csv = st.path.parent / "pig.csv"
    # the file's samples as the store keeps them (float32 markers and loads)
    ref = kt.joint_moments(
        as_stored(rec), subject=kin.read_pig_measurements(csv)[pseudonymise("BELT")]
    )
    cols = [*kt.MOMENT_COLUMNS, "power_w_per_kg"]
    for side in ("left", "right"):
        for joint in ("ankle", "knee", "hip"):
            np.testing.assert_allclose(
                _wide(got, side, joint, cols),
                _wide(ref, side, joint, cols),
                rtol=1e-7,
                atol=1e-9,
                equal_nan=True,
            )


# ----------------------------------------------------------------- Hewett's measure


def test_knee_abduction_moment_feature_is_the_peak_in_100_ms_after_each_foot_strike(
    real_dir, tmp_path_factory
):
    """Each side's window opens at its first plate contact, which is a foot strike Nexus
    marked for that side (within 3 frames); the feature is the largest external knee
    abduction moment (-PiG knee Y) in the next 0.1 s; on the window frames Nexus filled,
    its values and their peak match Nexus' own to 0.06 N.m/kg (RMS, peak)."""
    st, rec, _ = _ingested(real_dir, tmp_path_factory)
    d, c3d = _nexus(real_dir / MOTION)
    feats = st.table("features").set_index(["feature", "side"])
    ours = st.table("joint_moments", filters=[("method", "==", "cxlab-pig")])
    t0 = (rec.first_frame - 1) / rec.point_rate_hz  # C3D events count from frame 1
    strikes = {
        s: [e.time_s - t0 for e in rec.events if e.label == "Foot Strike" and e.context == c]
        for s, c in (("left", "Left"), ("right", "Right"))
    }
    contacts = kt.plate_contacts(rec, subject=kin.pig_subject(rec))
    assert {c.side for c in contacts} == {"left", "right"}
    for side in ("left", "right"):
        row = feats.loc[("knee_abduction_moment_peak_nm_per_kg", side)]
        assert row["unit"] == "N.m/kg" and "Hewett" in row["method"]
        start = min(c.start for c in contacts if c.side == side) / rec.point_rate_hz
        assert min(abs(np.array(strikes[side]) - start)) <= 3 / rec.point_rate_hz
        frames = np.arange(rec.n_frames) / rec.point_rate_hz
        window = (frames >= start) & (frames <= start + 0.1)
        external = -_wide(ours, side, "knee", ["adduction_nm_per_kg"])[window, 0]
        assert row["value"] == pytest.approx(np.nanmax(external), abs=1e-12)
        nexus = -d[P[side] + "KneeMoment"][window, 1] / 1000.0
        ok = np.isfinite(nexus)
        assert ok.sum() >= 4
        rms = np.sqrt(np.mean((external[ok] - nexus[ok]) ** 2))
        peak_error = abs(np.nanmax(external[ok]) - np.nanmax(nexus))
        print(f"{side}: window RMS {rms:.3f}, peak error {peak_error:.3f} N.m/kg")
        assert rms <= 0.06 and peak_error <= 0.06
        # the screen rule's absolute form: times the body mass the file states (47.5 kg)
        mass = float(c3d["parameters"]["PROCESSING"]["Bodymass"]["value"][0])
        absolute = feats.loc[("knee_abduction_moment_peak_nm", side)]
        assert absolute["unit"] == "N.m" and "Myer 2011" in absolute["method"]
        assert absolute["value"] == pytest.approx(row["value"] * mass, rel=1e-12)


# ----------------------------------------------------------------- without measurements


def test_file_outputs_land_without_measurements_and_feed_the_peaks(real_dir, tmp_path_factory):
    """No measurement CSV: only the file's PiG outputs land, the 3-D peaks come from them
    and say so, and the missing measurements are named in quarantine."""
    st, _, report = _ingested(real_dir, tmp_path_factory, measurements=False)
    assert set(st.table("joint_angles").method) == {"file"}
    assert set(st.table("joint_moments").method) == {"file"}
    assert "measurements" in " ".join(report.quarantine.reason)
    feats = st.table("features")
    peaks = feats[feats.feature.str.contains("3d_peak")]
    assert len(peaks) and peaks.method.str.contains("method file").all()
    d, _ = _nexus(real_dir / MOTION)
    knee = d["RKneeAngles"]
    got = peaks.set_index(["feature", "side"]).loc[("knee_abduction_3d_peak_deg", "right")]
    # the window starts at the touchdown; its peak can exceed no stored frame's value
    assert got["value"] <= np.max(-knee[~(knee == 0).all(1), 1]) + 1e-9


def _fresh(real_dir, tmp_path):
    """The motion trial ingested into a new store, and its measurement CSV."""
    st = Store(tmp_path / "st")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / NAME).symlink_to(real_dir / MOTION)
    ingest([tmp_path / "in"], store=st, jobs=1, progress=False)
    rec = st.table("recordings").iloc[0]
    csv = _csv(tmp_path / "pig.csv", "BELT", kin.pig_subject(io.read(real_dir / MOTION)))
    return st, rec.recording_id, rec.subject_id, {"kinematics": {"measurements": str(csv)}}


def _features(st, config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        return extract_features(st, config=config, jobs=1, progress=False, force=True)


def test_a_store_ingested_before_the_plates_table_is_told_to_reingest(real_dir, tmp_path):
    """Forces without outlines: no moments, a quarantine row with the fix; angles land."""
    st, rid, _, config = _fresh(real_dir, tmp_path)
    st.delete("plates", key=rid)
    reasons = " ".join(_features(st, config).quarantine.reason)
    assert "plates" in reasons and "--force" in reasons
    assert set(st.table("joint_moments").method) == {"file"}
    assert "cxlab-pig" in set(st.table("joint_angles").method)


def test_a_plate_without_corners_gives_no_moments_and_says_why(real_dir, tmp_path):
    """Unknown corners (forces from a .mot file): no foot can be assigned, so moments that
    would lack the measured load are not written."""
    st, rid, sid, config = _fresh(real_dir, tmp_path)
    plates = st.table("plates")
    plates.loc[plates.plate == 2, ["x", "y", "z"]] = np.nan
    st.write("plates", plates, key=rid, partition=sid)
    reasons = " ".join(_features(st, config).quarantine.reason)
    assert "[2] have no outline" in reasons
    assert set(st.table("joint_moments").method) == {"file"}
    st.write("plates", plates[plates.plate == 1], key=rid, partition=sid)  # no rows at all
    reasons = " ".join(_features(st, config).quarantine.reason)
    assert "[2] have no outline" in reasons
    plates.loc[plates.plate == 2, ["x", "y", "z"]] = 0.0  # a hostile file: all corners at 0
    st.write("plates", plates, key=rid, partition=sid)
    reasons = " ".join(_features(st, config).quarantine.reason)
    assert "[2] have no outline" in reasons


def test_plate_outline_area_is_the_shoelace_area_in_any_corner_order():
    square = np.array([[0, 0, 0], [0.6, 0, 0], [0.6, 0.4, 0], [0, 0.4, 0]], dtype=float)
    assert joints._outline_area_m2(square) == pytest.approx(0.24)
    assert joints._outline_area_m2(square[[0, 2, 1, 3]]) == pytest.approx(0.24)
    assert np.isnan(joints._outline_area_m2(np.full((4, 3), np.nan)))


def test_a_foot_off_a_shrunken_plate_is_a_warning_and_the_moments_land(real_dir, tmp_path):
    """Plate 2 shrunk to a 10 cm square at its centre: the left foot now overhangs it, its
    stance is given to no foot, and the recording says which frames lack that load."""
    st, rid, sid, config = _fresh(real_dir, tmp_path)
    plates = st.table("plates")
    two = plates.plate == 2
    centre = plates.loc[two, ["x", "y"]].mean()
    plates.loc[two, ["x", "y"]] = centre.to_numpy() + 0.05 * np.sign(
        plates.loc[two, ["x", "y"]].to_numpy() - centre.to_numpy()
    )
    st.write("plates", plates, key=rid, partition=sid)
    q = _features(st, config).quarantine
    warned = q[q.reason.str.contains("force plate 2 carried a load in frames 159-218")]
    assert len(warned) == 1 and warned.reason.str.contains("warning, values kept").all()
    assert set(st.table("joint_moments").method) == {"cxlab-pig", "file"}


# ----------------------------------------------------------------- units of file outputs


def _outputs(label, kind, unit, xyz):
    xyz = np.asarray(xyz, dtype=float)
    return pd.DataFrame(
        {
            "frame": np.arange(len(xyz), dtype=np.int32),
            "time_s": np.arange(len(xyz)) / 100.0,
            "label": label,
            "kind": kind,
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "unit": unit,
        }
    )


def test_absolute_file_moments_are_divided_by_body_mass_or_left_out():
    """An exporter that stored N.m (and W): 80 N.m at 80 kg is 1 N.m/kg; without a body
    mass nothing per kg can be said, so no row; 0, 0, 0 is 'no output'."""
    out = pd.concat(
        [
            _outputs("LKneeMoment", "moment", "N.m", [[80.0, -40.0, 8.0], [0, 0, 0]]),
            _outputs("LKneePower", "power", "W", [[0, 0, 160.0], [0, 0, 0]]),
            _outputs("RKneeMoment", "moment", "N.m/kg", [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        ]
    )
    got = joints.file_joint_moments(out, body_mass_kg=80.0)
    left = _wide(got, "left", "knee", [*kt.MOMENT_COLUMNS, "power_w_per_kg"])
    np.testing.assert_allclose(left[0], [1.0, -0.5, 0.1, 2.0])
    assert np.isnan(left[1]).all()
    right = _wide(got, "right", "knee", kt.MOMENT_COLUMNS)
    np.testing.assert_array_equal(right, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    no_mass = joints.file_joint_moments(out)
    assert set(zip(no_mass.side, no_mass.joint, strict=True)) == {("right", "knee")}
    assert set(got.method) == {"file"}


def test_file_angles_keep_pig_components_and_ignore_other_outputs():
    out = pd.concat(
        [
            _outputs("RHipAngles", "angle", "deg", [[10.0, -2.0, 5.0]]),
            _outputs("RHipForce", "force", "N/kg", [[1.0, 1.0, 1.0]]),
            _outputs("LThoraxAngles", "angle", "deg", [[1.0, 1.0, 1.0]]),
        ]
    )
    got = joints.file_joint_angles(out)
    assert list(zip(got.side, got.joint, strict=True)) == [("right", "hip")]
    np.testing.assert_array_equal(_wide(got, "right", "hip", kin.ANGLE_COLUMNS), [[10, -2, 5]])
    assert len(joints.file_joint_angles(out.iloc[0:0])) == 0


def test_a_non_pig_marker_set_gets_no_joint_rows_and_no_joint_quarantine(real_dir, tmp_path):
    """biomdp_vicon_CMJ_kinem_kinet_emg.c3d: Vicon, plates, a cluster marker set (no THI,
    TIB, TOE) and no PiG outputs (its USERMO* points are not angles)."""
    (tmp_path / "in").mkdir()
    name = "sub-CMJ_ses-1_task-cmj_run-1.c3d"
    (tmp_path / "in" / name).symlink_to(real_dir / "c3d/biomdp_vicon_CMJ_kinem_kinet_emg.c3d")
    st = Store(tmp_path / "st")
    ingest([tmp_path / "in"], store=st, jobs=1, progress=False)
    assert len(st.table("plates")) == 4 * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        report = extract_features(st, jobs=1, progress=False)
    assert not report.quarantine.field.str.contains("joint_").any()
    for name in ("joint_angles", "joint_moments"):
        assert name not in st.tables() or not len(st.table(name))


def test_the_vcm_convention_is_a_kinematics_setting(real_dir, tmp_path):
    """[kinematics] convention = "vcm" gives the store the library's VCM angles."""
    from cxlab.pseudo import pseudonymise

    st, _, _, config = _fresh(real_dir, tmp_path)
    config["kinematics"]["convention"] = "vcm"
    _features(st, config)
    got = st.table("joint_angles", filters=[("method", "==", "cxlab-pig")])
    subject = kin.read_pig_measurements(config["kinematics"]["measurements"])[pseudonymise("BELT")]
    ref = kin.joint_angles(as_stored(io.read(real_dir / MOTION)), subject=subject, convention="vcm")
    for side in ("left", "right"):
        for joint in ("knee", "ankle", "foot_progression"):
            np.testing.assert_allclose(
                _wide(got, side, joint, kin.ANGLE_COLUMNS),
                _wide(ref, side, joint, kin.ANGLE_COLUMNS),
                atol=1e-9,
            )
    config["kinematics"]["convention"] = "workstation"
    # a bad setting is one configuration error before any recording runs, not a
    # quarantine row per recording
    with pytest.raises(ConfigError, match=r"kinematics\.convention.*'workstation'.*'nexus'"):
        _features(st, config)


def test_joint_parts_of_a_recording_no_longer_in_the_store_are_removed(real_dir, tmp_path_factory):
    """A file replaced by a new version leaves no joint rows of the old recording."""
    st, _, _ = _ingested(real_dir, tmp_path_factory)
    old = st.table("joint_moments")
    old["recording_id"] = "ffffffffffffffff"
    st.write("joint_moments", old, key="ffffffffffffffff", partition="abcdefabcdef")
    assert "ffffffffffffffff" in st.keys("joint_moments")
    extract_features(st, jobs=1, progress=False)
    assert "ffffffffffffffff" not in st.keys("joint_moments")


# ----------------------------------------------------------------- VCM convention in the store

GAIT_VCM = "c3d/c3dorg_gait-pig.c3d"


def _vcm_store(real_dir, tmp_path, convention=None):
    """c3dorg_gait-pig.c3d ingested as a gait trial and through ``cxlab features`` with its
    measurements (recovered from its outputs) and the body mass recovered from the file."""
    from test_kinematics import _stored, _vcm_subject
    from test_kinetics import _vcm_body_mass

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sub-A22_ses-1_task-gait_run-1.c3d").symlink_to(real_dir / GAIT_VCM)
    st = Store(tmp_path / "st")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        ingest([tmp_path / "in"], store=st, jobs=1, progress=False)
    rec, d = io.read(real_dir / GAIT_VCM), _stored(real_dir / GAIT_VCM)
    subject = _vcm_subject(rec, d)
    subject = replace(subject, body_mass_kg=_vcm_body_mass(real_dir / GAIT_VCM))
    config = {"kinematics": {"measurements": str(_csv(tmp_path / "pig.csv", "A22", subject))}}
    if convention:
        config["kinematics"]["convention"] = convention
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        report = extract_features(st, config=config, jobs=1, progress=False)
    return st, rec, subject, d, report


def test_a_vcm_file_gets_the_vcm_convention_in_the_store_with_a_note(real_dir, tmp_path):
    """Default [kinematics] convention = "auto": the cxlab-pig angles and moments of the
    VCM file are the library's VCM ones -- knee moments within the issue's 0.06 N·m/kg of
    what VCM stored -- and the recording's quarantine note says which and why."""
    st, rec, subject, d, report = _vcm_store(real_dir, tmp_path)
    got = st.table("joint_angles", filters=[("method", "==", "cxlab-pig")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        ref = kin.joint_angles(as_stored(rec), subject=subject, convention="vcm")
    for side in ("left", "right"):
        np.testing.assert_allclose(
            _wide(got, side, "ankle", kin.ANGLE_COLUMNS),
            _wide(ref, side, "ankle", kin.ANGLE_COLUMNS),
            atol=1e-6,
        )
    moments = st.table("joint_moments", filters=[("method", "==", "cxlab-pig")])
    for side in ("left", "right"):
        ours = _wide(moments, side, "knee", kt.MOMENT_COLUMNS)
        stored = d[P[side] + "KneeMoment"] / 1000.0
        ok = (np.abs(stored).sum(axis=1) > 0) & np.isfinite(ours).all(axis=1)
        assert ok.sum() >= 110
        assert np.sqrt(np.mean((ours[ok] - stored[ok]) ** 2, axis=0)).max() <= 0.06, side
    notes = report.quarantine[report.quarantine.reason.str.contains("Clinical Manager")]
    assert len(notes) == 1 and "warning, values kept" in notes.reason.iloc[0]
    assert "toe segment" in notes.reason.iloc[0]


def test_an_explicit_convention_wins_over_the_file_with_a_note(real_dir, tmp_path):
    st, rec, subject, _, report = _vcm_store(real_dir, tmp_path, convention="nexus")
    got = st.table("joint_angles", filters=[("method", "==", "cxlab-pig")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        ref = kin.joint_angles(as_stored(rec), subject=subject, convention="nexus")
    np.testing.assert_allclose(
        _wide(got, "left", "ankle", kin.ANGLE_COLUMNS),
        _wide(ref, "left", "ankle", kin.ANGLE_COLUMNS),
        atol=1e-6,
    )
    assert report.quarantine.reason.str.contains("convention = 'nexus' used although").any()


def test_measurements_under_another_key_than_the_stores_are_refused(
    real_dir, tmp_path, monkeypatch
):
    """The measurements sheet's labels become ids with this machine's key: under another
    key than the store's none would match its subjects (silently no 3-D model), so
    ``cxlab features`` refuses before computing anything."""
    st, _, _, config = _fresh(real_dir, tmp_path)
    monkeypatch.setenv("CXLAB_KEY", "the-key-of-another-laptop-0123456789abcdef")
    with pytest.raises(ConfigError, match=r"^CXLAB_KEY: the store .* another pseudonymisation"):
        _features(st, config)
    assert not st.keys("features")
    monkeypatch.undo()
    assert _features(st, config) is not None and st.keys("features")
