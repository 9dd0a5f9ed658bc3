"""Force plates TYPE 1-4 against a known wrench: files written by ezc3d from a simulated load.

The truth is physical: a reaction force on the body ``F`` (lab, N), a centre of
pressure ``p`` on the plate surface (lab, m) and a free moment ``tz`` (N·m).
Each plate TYPE's channels are built from it by inverting that TYPE's C3D
model by hand (rotated, mm-unit plate with a transducer offset), written with
ezc3d, and read back; ezc3d's own plate extraction is checked on the same files.
"""

from __future__ import annotations

import warnings

import ezc3d
import numpy as np
import pytest

from cxlab._check import CxlabWarning
from cxlab.io.c3d import read_c3d
from cxlab.io.forceplates import plate_frame

N_FRAMES, N_SUB = 30, 10
THETA = np.deg2rad(25.0)
ROT = np.array(
    [[np.cos(THETA), np.sin(THETA), 0.0], [np.sin(THETA), -np.cos(THETA), 0.0], [0.0, 0.0, -1.0]]
)  # columns: plate x, y, z (z down) in the lab
CENTRE = np.array([0.40, 0.90, 0.0])  # m
HALF = np.array([0.25, 0.20])  # m


def _truth(n: int):
    t = np.linspace(0.0, 1.0, n)
    force = np.column_stack([40 * np.sin(6 * t), -25 * np.cos(4 * t), 800 * np.sin(np.pi * t)])
    local = np.column_stack([0.15 * np.cos(3 * t), 0.1 * np.sin(5 * t), np.zeros(n)])
    cop = local @ np.diag([1, 1, 0]) @ ROT.T + CENTRE
    cop[:, 2] = 0.0
    tz = 3.0 * np.sin(7 * t)
    return force, cop, tz


def _write(path, plate_type: int):
    n = N_FRAMES * N_SUB
    force, cop, tz = _truth(n)
    up = np.array([0.0, 0.0, 1.0])
    s = -1.0 if plate_type == 3 else 1.0  # Kistler channels hold the load on the plate
    m_centre = np.cross(cop - CENTRE, force) + tz[:, None] * up  # about the surface centre, lab
    f_ch = s * force @ ROT  # plate axes (R^T f, row-wise)
    m_ch = s * m_centre @ ROT * 1000.0  # N·mm
    p_plate = (cop - CENTRE) @ ROT * 1000.0  # mm, z = 0
    origin_mm = np.array([3.0, -2.0, -40.0])  # transducer below the surface (z < 0 kept)
    if plate_type in (2, 4):
        m_o = m_ch - np.cross(f_ch, origin_mm)
        channels = np.column_stack([f_ch, m_o])
        labels = ["Fx", "Fy", "Fz", "Mx", "My", "Mz"]
    elif plate_type == 1:
        tz_ch = m_ch[:, 2] - np.cross(p_plate, f_ch)[:, 2]
        channels = np.column_stack([f_ch, p_plate[:, :2], tz_ch])
        labels = ["Fx", "Fy", "Fz", "Px", "Py", "Tz"]
    else:
        a, b, az0 = 120.0, 200.0, -45.0
        origin_mm = np.array([a, b, az0])
        mp = m_ch - np.cross(f_ch, np.array([0.0, 0.0, az0]))
        # fz1..fz4 from Fz, Mx = b(fz1+fz2-fz3-fz4), My = a(fz2+fz3-fz1-fz4), fz1-fz2+fz3-fz4 = 0
        system = np.array([[1, 1, 1, 1], [b, b, -b, -b], [-a, a, a, -a], [1, -1, 1, -1]], float)
        fz = np.linalg.solve(
            system, np.column_stack([f_ch[:, 2], mp[:, 0], mp[:, 1], np.zeros(n)]).T
        ).T
        fy14 = fy23 = f_ch[:, 1] / 2
        diff = mp[:, 2] / b  # Mz = b (fx34 - fx12) + a (fy14 - fy23)
        fx12, fx34 = (f_ch[:, 0] - diff) / 2, (f_ch[:, 0] + diff) / 2
        channels = np.column_stack([fx12, fx34, fy14, fy23, fz])
        labels = ["Fx12", "Fx34", "Fy14", "Fy23", "Fz1", "Fz2", "Fz3", "Fz4"]
    raw = channels
    cal = np.eye(6)
    if plate_type == 4:
        cal = np.eye(6) + 0.05 * np.random.default_rng(3).standard_normal((6, 6))
        raw = channels @ np.linalg.inv(cal).T
    corners = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * HALF
    corners = (np.column_stack([corners, np.zeros(4)]) @ ROT.T + CENTRE) * 1000.0

    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [100]
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    c["parameters"]["POINT"]["LABELS"]["value"] = ["HEEL"]
    c["data"]["points"] = np.ones((4, 1, N_FRAMES))
    c["parameters"]["ANALOG"]["RATE"]["value"] = [100 * N_SUB]
    c["parameters"]["ANALOG"]["LABELS"]["value"] = labels
    c["parameters"]["ANALOG"]["UNITS"]["value"] = ["N"] * len(labels)
    c["data"]["analogs"] = raw.T[None]
    fp = c["parameters"]["FORCE_PLATFORM"]
    fp["USED"]["value"] = [1]
    fp["TYPE"]["value"] = [plate_type]
    fp["ZERO"]["value"] = [0, 0]
    fp["CORNERS"]["value"] = corners.T.reshape(3, 4, 1)
    fp["ORIGIN"]["value"] = origin_mm.reshape(3, 1)
    fp["CHANNEL"]["value"] = np.arange(1, len(labels) + 1).reshape(-1, 1)
    if plate_type == 4:
        fp["CAL_MATRIX"]["value"] = cal.reshape(6, 6, 1)
    c.write(str(path))
    return force, cop, tz


@pytest.mark.parametrize("plate_type", [1, 2, 3, 4])
def test_plate_recovers_the_simulated_wrench(tmp_path, plate_type):
    force, cop, tz = _write(tmp_path / "p.c3d", plate_type)
    rec = read_c3d(tmp_path / "p.c3d", engine="fast")
    (plate,) = rec.platforms
    assert plate.type == plate_type and plate.rate_hz == 1000.0
    atol_f = 1e-3 * np.abs(force).max()  # float32 storage
    np.testing.assert_allclose(plate.force, force, atol=atol_f)
    loaded = force[:, 2] >= 20.0
    np.testing.assert_allclose(plate.cop[loaded], cop[loaded], atol=1e-4)
    np.testing.assert_allclose(plate.tz[loaded], tz[loaded], atol=5e-3)
    moment = np.cross(cop, force) + tz[:, None] * np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(plate.moment, moment, atol=5e-3 * np.abs(moment).max())
    assert np.isnan(plate.cop[~loaded]).all() and np.isnan(plate.tz[~loaded]).all()


@pytest.mark.parametrize("plate_type", [1, 2, 3, 4])
def test_plate_matches_ezc3d_on_the_simulated_file(tmp_path, plate_type):
    _write(tmp_path / "p.c3d", plate_type)
    (plate,) = read_c3d(tmp_path / "p.c3d", engine="fast").platforms
    (q,) = ezc3d.c3d(str(tmp_path / "p.c3d"), extract_forceplat_data=True)["data"]["platform"]
    s = -1.0 if plate_type == 3 else 1.0
    np.testing.assert_allclose(plate.force, s * q["force"].T, rtol=1e-9, atol=1e-9)
    loaded = np.abs(plate.force[:, 2]) > 50
    np.testing.assert_allclose(
        plate.cop[loaded], q["center_of_pressure"].T[loaded] / 1000, rtol=1e-9, atol=1e-12
    )
    if plate_type != 1:  # ezc3d's TYPE-1 moment is (F x CoP - Tz): not a moment about a point
        centre = q["corners"].mean(axis=1) / 1000
        np.testing.assert_allclose(
            plate.moment,
            s * q["moment"].T / 1000 + np.cross(centre, plate.force),
            rtol=1e-9,
            atol=1e-9,
        )
        ez = read_c3d(tmp_path / "p.c3d", engine="ezc3d").platforms[0]
        np.testing.assert_allclose(ez.tz, plate.tz, rtol=1e-9, atol=1e-12)


def test_plate_frame_is_np_cross_and_norm_bit_for_bit():
    """plate_frame's Python-float cross products give np.cross's and np.linalg.norm's axes."""
    rng = np.random.default_rng(5)
    for _ in range(500):
        corners = rng.normal(size=(4, 3)) * rng.choice([1e-3, 1.0, 1e3])
        x, y = corners[0] - corners[1], corners[0] - corners[3]
        z = np.cross(x, y)
        y = np.cross(z, x)
        want = np.column_stack([v / np.linalg.norm(v) for v in (x, y, z)])
        rot, centre = plate_frame(corners)
        assert rot.tobytes() == want.tobytes()
        assert centre.tobytes() == corners.mean(axis=0).tobytes()


def test_plate_frame_axes_follow_the_c3d_corner_order():
    corners = (
        np.column_stack([np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * HALF, np.zeros(4)])
        @ ROT.T
        + CENTRE
    )
    rot, centre = plate_frame(corners)
    np.testing.assert_allclose(rot, ROT, atol=1e-12)
    np.testing.assert_allclose(centre, CENTRE, atol=1e-12)


def test_unsupported_plate_is_nan_and_keeps_the_plate_numbering(tmp_path):
    _write(tmp_path / "one.c3d", 2)
    (good,) = read_c3d(tmp_path / "one.c3d", engine="fast").platforms
    c = ezc3d.c3d(str(tmp_path / "one.c3d"))
    fp = c["parameters"]["FORCE_PLATFORM"]
    fp["USED"]["value"] = [2]
    fp["TYPE"]["value"] = [5, 2]  # TYPE 5 is not supported: plate 1 must stay plate 1
    for name in ("CORNERS", "ORIGIN", "CHANNEL"):
        fp[name]["value"] = np.concatenate([fp[name]["value"]] * 2, axis=-1)
    c.write(str(tmp_path / "two.c3d"))
    with pytest.warns(CxlabWarning, match="unsupported TYPE"):
        rec = read_c3d(tmp_path / "two.c3d", engine="fast")
    plates = rec.platforms
    assert len(plates) == 2 and np.isnan(plates[0].force).all() and plates[1].type == 2
    np.testing.assert_array_equal(plates[1].force, good.force)
    forces = rec.to_tables("0123456789abcdef")["forces"]
    assert sorted(set(forces["plate"])) == [1, 2]


def test_type2_moments_follow_their_own_channel_units_not_point_units(real_dir, tmp_path):
    """walking2 stores markers in mm and moment channels in Nmm. Rewritten with markers,
    corners and origin in metres but moments still in Nmm, the plates must not change."""
    src = real_dir / "c3d/opensim_walking2.c3d"
    c = ezc3d.c3d(str(src))
    assert [u.strip() for u in c["parameters"]["ANALOG"]["UNITS"]["value"]][3:6] == ["Nmm"] * 3
    c["parameters"]["POINT"]["UNITS"]["value"] = ["m"]
    c["data"]["points"][:3] /= 1000.0
    for name in ("CORNERS", "ORIGIN"):
        p = c["parameters"]["FORCE_PLATFORM"][name]
        p["value"] = np.asarray(p["value"]) / 1000.0
    c.write(str(tmp_path / "metres.c3d"))
    ref = read_c3d(src, engine="fast")
    got = read_c3d(tmp_path / "metres.c3d", engine="fast")
    for a, b in zip(ref.platforms, got.platforms, strict=True):
        np.testing.assert_allclose(b.force, a.force, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(b.moment, a.moment, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(b.cop, a.cop, rtol=1e-5, atol=1e-6)


def test_type3_sign_comes_from_the_load_whichever_way_the_channels_read(tmp_path):
    """Kistler channels as the load on the plate (c3d.org) or as the reaction (BioWare,
    Qualisys): both files must give the same simulated reaction on the body."""
    force, cop, _ = _write(tmp_path / "load.c3d", 3)
    c = ezc3d.c3d(str(tmp_path / "load.c3d"))
    c["data"]["analogs"] = -c["data"]["analogs"]
    c.write(str(tmp_path / "reaction.c3d"))
    for name, sign in (("load.c3d", -1.0), ("reaction.c3d", 1.0)):
        rec = read_c3d(tmp_path / name, engine="fast")
        (plate,) = rec.platforms
        np.testing.assert_allclose(plate.force, force, atol=1e-3 * np.abs(force).max())
        loaded = force[:, 2] >= 20.0
        np.testing.assert_allclose(plate.cop[loaded], cop[loaded], atol=1e-4)
        conv = rec.meta["plate_conventions"][0]
        assert conv["reaction_sign"] == sign and conv["sign_from"] == "load"
        assert rec.warnings == []


def test_mislabelled_moment_unit_is_caught_by_the_cop_on_the_plate(tmp_path):
    """Moment channels in N·mm labelled 'Nm' (as c3dorg_gait-pig.c3d): read as N·mm."""
    force, cop, _ = _write(tmp_path / "p.c3d", 2)
    c = ezc3d.c3d(str(tmp_path / "p.c3d"))
    c["parameters"]["ANALOG"]["UNITS"]["value"] = ["N", "N", "N", "Nm", "Nm", "Nm"]
    c.write(str(tmp_path / "nm.c3d"))
    with pytest.warns(
        CxlabWarning,
        match="read in ANALOG:UNITS 'Nm' put the centre of pressure off the plate; read as N·mm",
    ):
        rec = read_c3d(tmp_path / "nm.c3d", engine="fast")
    loaded = force[:, 2] >= 20.0
    np.testing.assert_allclose(rec.platforms[0].cop[loaded], cop[loaded], atol=1e-4)
    assert rec.meta["plate_conventions"][0]["moment_unit_nm"] == 1e-3
    c["parameters"]["ANALOG"]["UNITS"]["value"] = ["N", "N", "N", "Nmm", "Nmm", "Nmm"]
    c.write(str(tmp_path / "nmm.c3d"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CxlabWarning)  # a right label needs no warning
        good = read_c3d(tmp_path / "nmm.c3d", engine="fast")
    np.testing.assert_allclose(good.platforms[0].cop[loaded], cop[loaded], atol=1e-4)


def test_each_supported_plate_type_has_one_loads_function():
    from cxlab.io import forceplates

    # the dispatch table replaces the if/elif over TYPE; a TYPE with a channel count but no
    # loads function (or the reverse) would read as a KeyError instead of a warning
    assert sorted(forceplates._LOADS_BY_TYPE) == sorted(forceplates.N_CHANNELS) == [1, 2, 3, 4]


def test_percentile_and_median_are_numpys_bit_for_bit():
    """The plates' order statistics (_percentile, _median) give np.percentile's and
    np.median's numbers and types, tied zeros of either sign, infinities, ties included."""
    from cxlab.io.forceplates import _median, _percentile

    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf in both
        for trial in range(1000):
            n = int(rng.integers(1, 300)) if trial % 10 else int(rng.integers(1, 20000))
            if trial % 4 == 0:
                v = rng.normal(size=n) * 1000
            elif trial % 4 == 1:  # ties and signed zeros
                v = rng.integers(-3, 3, size=n).astype(float)
                v[rng.random(n) < 0.3] = -0.0
            elif trial % 4 == 2:
                v = np.round(rng.normal(size=n), 1)
                v[rng.random(n) < 0.05] = np.inf
                v[rng.random(n) < 0.05] = -np.inf
            else:  # subnormal
                v = rng.exponential(size=n) * 1e-300
            for q in ([1, 99], 1, [0, 50, 100], 99.9):
                got, want = _percentile(v, q), np.percentile(v, q)
                assert type(got) is type(want)
                assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (n, q)
            got, want = _median(v), np.median(v)
            assert type(got) is type(want)
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), n
