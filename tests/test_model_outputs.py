"""Model outputs (POINT:ANGLES/FORCES/MOMENTS/POWERS) and ROTATION poses of C3D files.

References: ezc3d's reading of the same points and rotations, the force plates of the same
trial with PROCESSING:Bodymass (per-kg decision), PiG's own NormalisedGRF (= GRF/kg x 100/g),
and simulated outputs with a known unit.
"""

from __future__ import annotations

import struct

import ezc3d
import numpy as np
import pytest

from cxlab._check import InputFormatError
from cxlab.io import read_c3d
from cxlab.io._c3d_outputs import G, per_kg_evidence
from cxlab.io.recording import ModelOutputs, Rotations, split_subject_prefix
from cxlab.schemas import validate

PIG = "c3d/btk_PiG_Motion-FlatFoot-Full.c3d"
ROT = "c3d/ezc3d_C3DRotationExample.c3d"


def _ez_labels(c) -> list[str]:
    pt = c["parameters"]["POINT"]
    out = list(pt["LABELS"]["value"])
    i = 2
    while f"LABELS{i}" in pt:
        out += list(pt[f"LABELS{i}"]["value"])
        i += 1
    return [x.strip() for x in out]


@pytest.mark.parametrize("engine", ["fast", "ezc3d"])
@pytest.mark.parametrize(
    "name",
    [PIG, "c3d/c3dorg_gait-pig.c3d", "c3d/btk_Analysis.c3d", "c3d/btk_PiG_Calibration3_FF_N18.c3d"],
)
def test_model_outputs_equal_ezc3ds_points_in_decided_units(real_dir, name, engine):
    path = real_dir / name
    rec = read_c3d(path, engine=engine)
    mo = rec.model_outputs
    c = ezc3d.c3d(str(path))
    labels = _ez_labels(c)
    pts = np.asarray(c["data"]["points"])[:3].transpose(2, 1, 0)  # (frames, points, 3)
    units = {
        k: c["parameters"]["POINT"][f"{k.upper()}_UNITS"]["value"][0]
        for k in ("angle", "force", "moment", "power")
        if f"{k.upper()}_UNITS" in c["parameters"]["POINT"]
    }
    assert mo is not None and len(mo.labels) > 10
    # the outputs are not markers, and markers + outputs are every point of the file
    assert not set(mo.labels) & set(rec.marker_labels)
    assert len(mo.labels) + len(rec.marker_labels) == len(labels)
    for j, (lab, kind, unit) in enumerate(zip(mo.labels, mo.kinds, mo.units, strict=True)):
        want = pts[:, labels.index(lab)]
        if kind == "moment" and units["moment"].lower() == "nmm":
            want = want / 1000.0  # N·mm(/kg) -> N·m(/kg)
        got = mo.values[:, j]
        ok = np.isfinite(got).all(axis=1)
        assert ok.any(), lab
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=1e-9, err_msg=lab)
        if kind == "angle":
            assert unit == "deg"
    per_kg = {u for k, u in zip(mo.kinds, mo.units, strict=True) if k in ("moment", "power")}
    assert per_kg <= {"N.m/kg", "W/kg"}  # every Plug-in Gait file here is normalised


def test_pig_forces_are_per_kg_by_the_plates_and_body_mass(real_dir):
    rec = read_c3d(real_dir / PIG)
    mo = rec.model_outputs
    mass = rec.meta["body_mass_kg"]
    assert mass == pytest.approx(47.5)
    unit = dict(zip(mo.labels, mo.units, strict=True))
    assert unit["LGroundReactionForce"] == unit["LAnkleForce"] == "N/kg"
    assert unit["LKneeMoment"] == "N.m/kg" and unit["LHipPower"] == "W/kg"
    # physics: the per-kg ground reaction times the body mass is the plate's reaction, frame
    # by frame (plates sampled at the frame instants); left foot on plate 2, right on plate 1
    n_sub = round(rec.analog_rate_hz / rec.point_rate_hz)
    for side, plate in (("L", 1), ("R", 0)):
        g = mo.values[:, mo.labels.index(side + "GroundReactionForce"), 2] * mass
        f = rec.platforms[plate].force[::n_sub, 2][: g.size]
        ok = np.isfinite(g) & (f > 50)
        assert ok.sum() > 40
        assert np.median(f[ok] / g[ok]) == pytest.approx(1.0, abs=0.01)
        assert np.abs(f[ok] - g[ok]).max() < 15  # N, of a 490 N peak
    # Plug-in Gait's NormalisedGRF is the same reaction in percent of body weight (its
    # medio-lateral axis mirrored on the left, so compared in magnitude)
    for side in "LR":
        i = mo.labels.index(side + "NormalisedGRF")
        k = mo.labels.index(side + "GroundReactionForce")
        assert unit[side + "NormalisedGRF"] == "%BW"
        np.testing.assert_allclose(
            np.abs(mo.values[:, i]), np.abs(mo.values[:, k]) * 100 / G, rtol=1e-3, atol=1e-3
        )
    assert "body mass 47.5 kg" in rec.meta["model_outputs_units"]["evidence"]
    assert rec.warnings == []  # decided from strong evidence


def _sim(per_kg: bool, mass: float = 70.0, n: int = 200):
    t = np.linspace(0, 1, n)
    fz = np.where((t > 0.2) & (t < 0.8), 1.2 * G * np.sin(np.pi * (t - 0.2) / 0.6), 0.0)
    grf = np.zeros((n, 3))
    grf[:, 2] = fz * (1 if per_kg else mass)
    moment = np.zeros((n, 3))
    moment[:, 0] = 1.8 * np.sin(2 * np.pi * t) * (1 if per_kg else mass)
    values = np.stack([grf, moment], axis=1)
    return values, ["LGroundReactionForce", "LKneeMoment"], ["force", "moment"], fz.max() * mass


@pytest.mark.parametrize("per_kg", [True, False])
@pytest.mark.parametrize("mass", [35.0, 70.0, 120.0])
def test_per_kg_decision_recovers_the_simulated_unit(per_kg, mass):
    values, labels, kinds, plate_peak = _sim(per_kg, mass)
    for body, plate, strong in [
        (mass, plate_peak, True),
        (None, plate_peak, True),
        (mass, None, True),
        (None, None, False),
    ]:
        d = per_kg_evidence(values, labels, kinds, body_mass_kg=body, plate_peak_n=plate)
        assert d.per_kg is per_kg and d.strong is strong, (body, plate, d)
    moments_only = per_kg_evidence(
        values[:, 1:], labels[1:], kinds[1:], body_mass_kg=mass, plate_peak_n=None
    )
    assert moments_only.per_kg is per_kg
    assert per_kg_evidence(values[:, :0], [], [], body_mass_kg=mass, plate_peak_n=None) is None


def test_magnitude_only_decision_is_a_warning_on_the_recording(real_dir):
    rec = read_c3d(real_dir / "c3d/btk_Analysis.c3d")  # no plates, no PROCESSING:Bodymass
    assert any("per kg from their magnitude only" in w for w in rec.warnings)


def test_model_outputs_to_frame_is_in_store_order_and_validates():
    vals = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    mo = ModelOutputs(
        vals, ["b", "a", "B"], ["angle", "force", "power"], ["deg", "N/kg", "W"], 100.0
    )
    df = mo.to_frame("0123456789abcdef")
    assert list(df["label"]) == ["B", "B", "a", "a", "b", "b"]
    assert list(df["time_s"]) == [0, 0.01] * 3
    np.testing.assert_array_equal(df.loc[df["label"] == "a", ["x", "y", "z"]], vals[:, 1])
    validate(df, "model_outputs")


@pytest.mark.parametrize("engine", ["fast", "ezc3d", "auto"])
def test_rotations_equal_ezc3ds_poses_with_positions_in_metres(real_dir, engine):
    path = real_dir / ROT
    rec = read_c3d(path, engine=engine)
    rot = rec.rotations
    c = ezc3d.c3d(str(path))
    ez = np.asarray(c["data"]["rotations"])  # (4, 4, n_segments, n_frames)
    assert rot.matrices.shape == (340, 21, 3, 3) and rot.rate_hz == 85.0
    np.testing.assert_array_equal(np.isnan(rot.matrices[:, :, 0, 0]), np.isnan(ez[0, 0].T))
    want_r = ez[:3, :3].transpose(3, 2, 0, 1)
    np.testing.assert_allclose(rot.matrices, want_r, rtol=0, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(
        rot.positions, ez[:3, 3].transpose(2, 1, 0) * 1e-3, atol=1e-7, equal_nan=True
    )
    labels = [s.removesuffix("_4X4") for s in c["parameters"]["ROTATION"]["LABELS"]["value"]]
    assert rot.segments == labels and "pelvis" in rot.segments
    # physics: each valid pose is a proper rotation, the pelvis about 1 m above the floor
    ok = np.isfinite(rot.matrices).all(axis=(-2, -1))
    r = rot.matrices[ok]
    np.testing.assert_allclose(
        np.einsum("nki,nkj->nij", r, r), np.broadcast_to(np.eye(3), r.shape), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.det(r), 1, atol=1e-5)
    pelvis_z = rot.positions[:, rot.segments.index("pelvis"), 2]
    assert 0.7 < np.nanmedian(pelvis_z) < 1.3
    if engine != "ezc3d":
        assert rec.meta["engine"] == "fast"  # no fallback needed any more


def test_rotations_to_frame_validates_and_keeps_row_major_elements():
    m = np.arange(2 * 1 * 9, dtype=float).reshape(2, 1, 3, 3)
    rot = Rotations(m, np.zeros((2, 1, 3)), ["pelvis"], 85.0)
    df = rot.to_frame("0123456789abcdef")
    assert df["r12"].tolist() == [1.0, 10.0] and df["r31"].tolist() == [6.0, 15.0]
    validate(df, "rotations")


def _patched(real_dir, tmp_path, name, value):
    """The rotation example with its ROTATION parameter ``name`` (an int16) set to ``value``."""
    buf = bytearray((real_dir / ROT).read_bytes())
    c = ezc3d.c3d(str(real_dir / ROT))
    old = int(c["parameters"]["ROTATION"][name]["value"][0])
    key = name.encode()
    hits = []
    pos = buf.find(key)
    while pos != -1:
        # name, next-offset (2), type 2, 0 dims, int16 value
        if (
            buf[pos + len(key) + 2] == 2
            and buf[pos + len(key) + 3] == 0
            and struct.unpack_from("<h", buf, pos + len(key) + 4)[0] == old
        ):
            hits.append(pos + len(key) + 4)
        pos = buf.find(key, pos + 1)
    assert hits
    struct.pack_into("<h", buf, hits[-1], value)
    out = tmp_path / f"rot_{name}.c3d"
    out.write_bytes(bytes(buf))
    return out


@pytest.mark.parametrize(("name", "value"), [("USED", 30000), ("DATA_START", 32000), ("RATIO", 0)])
def test_inconsistent_rotation_counts_are_refused_naming_the_parameter(
    real_dir, tmp_path, name, value
):
    f = _patched(real_dir, tmp_path, name, value)
    with pytest.raises(InputFormatError, match=f"ROTATION:{name}"):
        read_c3d(f, engine="fast")


@pytest.mark.parametrize(
    ("label", "want"),
    [
        ("Derrick:LASI", ("Derrick", "LASI")),
        ("LASI", ("", "LASI")),
        ("A22:LHipAngles", ("A22", "LHipAngles")),
        (" boite:avant_gauche ", ("boite", "avant_gauche")),
        (":x", ("", ":x")),
    ],
)
def test_subject_prefix_is_split_off(label, want):
    assert split_subject_prefix(label) == want


def test_a_rotation_file_with_a_negative_frame_count_reads_without_ezc3d(real_dir, tmp_path):
    """POINT:FRAMES = -32768 in a ROTATION file aborted the process inside ezc3d (issue #13);
    the fast engine now decodes these files itself, from the header's frame range."""
    buf = bytearray((real_dir / ROT).read_bytes())
    pos = buf.find(b"FRAMES")
    while buf[pos + 8] != 2 or buf[pos + 9] != 0:
        pos = buf.find(b"FRAMES", pos + 1)
    assert struct.unpack_from("<h", buf, pos + 10)[0] == 340
    struct.pack_into("<h", buf, pos + 10, -32768)
    f = tmp_path / "frames.c3d"
    f.write_bytes(bytes(buf))
    rec = read_c3d(f)
    assert rec.meta["engine"] == "fast" and rec.rotations.matrices.shape == (340, 21, 3, 3)
