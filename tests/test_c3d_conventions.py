"""C3D conventions decided from the data: plate sign, ZERO, moment units, offsets, counts, up.

References: the BioWare text twin of a Kistler C3D (same trial, Fz positive when loaded),
ezc3d, the pure-Python ``c3d`` package, the CoP-on-the-plate physics, and files the tests
write with a known truth.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cxlab._check import CxlabWarning
from cxlab.features.jump import cmj_metrics
from cxlab.io.c3d import read_c3d

G = 9.80665


def _read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        return read_c3d(path, **kw)


def _bioware(path):
    """The BioWare text export: 17 header lines, names, units row, then tab-separated numbers."""
    return pd.read_csv(
        path, sep="\t", skiprows=19, header=None, names=["time_s", "fx", "fy", "fz"]
    ).to_numpy()


def test_kistler_type3_c3d_equals_its_bioware_text_twin_within_1_newton(real_dir):
    twin = _bioware(real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt")
    rec = _read(real_dir / "c3d/biomdp_kistler_CMJ_1plate.c3d")
    (plate,) = rec.platforms
    assert plate.force.shape == (twin.shape[0], 3) and rec.analog_rate_hz == 1000.0
    assert 660 < twin[:1000, 3].mean() < 672  # BioWare: Fz positive, body weight while standing
    np.testing.assert_allclose(plate.force, twin[:, 1:4], atol=1.0)
    conv = rec.meta["plate_conventions"][0]
    assert conv["reaction_sign"] == 1.0 and conv["sign_from"] == "load"
    assert conv["zero"] == "kept raw"  # ZERO = 1, 10 lies in quiet standing


def test_kistler_c3d_gives_a_jump_height(real_dir):
    rec = _read(real_dir / "c3d/biomdp_kistler_CMJ_1plate.c3d")
    fz = rec.platforms[0].force[:, 2]
    twin = _bioware(real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt")[:, 3]
    got = cmj_metrics(fz, rate_hz=rec.analog_rate_hz)
    ref = cmj_metrics(twin, rate_hz=1000.0)
    assert got["jump_height_impulse_m"] == pytest.approx(ref["jump_height_impulse_m"], abs=2e-3)
    # independent of cmj_metrics: flight time from the twin (< 20 N), h = g t^2 / 8
    airborne = np.flatnonzero(twin < 20.0)
    t_flight = (airborne[-1] - airborne[0] + 1) / 1000.0
    assert got["jump_height_flight_m"] == pytest.approx(G * t_flight**2 / 8, abs=0.01)
    assert 0.15 < got["jump_height_impulse_m"] < 0.6
    assert got["body_mass_kg"] == pytest.approx(665.8 / G, rel=0.01)  # BioWare's weight


def test_loaded_zero_window_is_kept_raw_with_a_warning(real_dir):
    with pytest.warns(CxlabWarning, match="ZERO frames carry 6[67][0-9] N"):
        rec = read_c3d(real_dir / "c3d/biomdp_kistler_CMJ_1plate.c3d")
    assert any("ZERO" in w for w in rec.warnings)
    raw = _read(real_dir / "c3d/biomdp_kistler_CMJ_1plate.c3d", zero_baseline=False)
    np.testing.assert_array_equal(rec.platforms[0].force, raw.platforms[0].force)


@pytest.mark.parametrize("name", ["c3d/ezc3d_Kistler.c3d", "c3d/c3dorg_type1.C3D"])
def test_y_up_files_are_rotated_into_the_z_up_lab_frame_consistently(real_dir, name):
    stored = _read(real_dir / name, up="z")
    rec = _read(real_dir / name)  # up="auto"
    assert rec.meta["up_axis"] == "y" and rec.meta["up_axis_from"] == "force-plate normal"
    q = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # (x, y, z) -> (x, -z, y)
    np.testing.assert_allclose(rec.markers, stored.markers @ q.T)
    for a, b in zip(stored.platforms, rec.platforms, strict=True):
        np.testing.assert_allclose(b.force, a.force @ q.T)
        np.testing.assert_allclose(b.corners, a.corners @ q.T)
        np.testing.assert_allclose(b.cop, a.cop @ q.T)
        np.testing.assert_allclose(b.tz, a.tz)
        loaded = b.force[:, 2] > 100
        assert loaded.any() and np.median(np.abs(b.force[loaded, 1])) < 0.2 * np.median(
            b.force[loaded, 2]
        )  # body weight now in fz, not fy
        # physics in the new frame: moment about the origin = cop x F + tz * n (plate normal)
        c1, c2, _, c4 = b.corners
        n = np.cross(c1 - c2, c1 - c4)
        n = n / np.linalg.norm(n) * np.sign(n[2])
        ok = loaded & np.isfinite(b.cop).all(axis=1)
        want = np.cross(b.cop[ok], b.force[ok]) + np.outer(b.tz[ok], n)
        np.testing.assert_allclose(b.moment[ok], want, atol=1e-6 * np.abs(want).max() + 1e-3)
        np.testing.assert_allclose(b.corners[:, 2], b.corners[0, 2], atol=0.01)  # level in z


def test_marker_evidence_decides_up_without_plates(real_dir):
    dance = _read(real_dir / "c3d/c3dorg_Dance1.c3d")
    assert dance.meta["up_axis"] == "x" and dance.meta["up_axis_from"] == "marker floor and height"
    z = dance.markers[..., 2]
    assert -0.1 < np.nanmedian(np.nanmin(z, axis=1)) < 0.3 and np.nanmax(z) > 1.5
    vicon = _read(real_dir / "c3d/btk_PiG_Calibration3_FF_N18.c3d")  # weak evidence: as stored
    assert vicon.meta["up_axis"] == "z" and vicon.meta["up_axis_from"] == "assumed"


def test_both_engines_put_the_same_findings_on_the_recording(real_dir):
    for name in ("c3d/c3dorg_gait-pig.c3d", "c3d/biomdp_vicon_CMJ_kinem_kinet_emg.c3d"):
        fast = _read(real_dir / name, engine="fast")
        ez = _read(real_dir / name, engine="ezc3d")
        assert fast.warnings and [w for w in fast.warnings if "A/D rail" not in w] == ez.warnings
