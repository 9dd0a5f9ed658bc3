"""read_c3d against ezc3d on every real C3D file, twins, unit files written by ezc3d, errors."""

from __future__ import annotations

import logging

import ezc3d
import numpy as np
import pytest

from cxlab._check import ConfigError, InputFormatError
from cxlab.io.c3d import read_c3d

# every real C3D ezc3d reads correctly (MIPS: ezc3d cannot; type1.C3D: ezc3d misaligns frames)
EZC3D_FILES = [
    "c3d/btk_Res16bits.c3d",
    "c3d/c3dorg_Eb015pi.c3d",
    "c3d/c3dorg_Eb015vr.c3d",
    "c3d/c3dorg_FP1.C3D",
    "c3d/c3dorg_TYPE-2.C3D",
    "c3d/c3dorg_TYPE-4.C3D",
    "c3d/ktk_tennis_serve.c3d",
    "c3d/opensim_walking2.c3d",
    "c3d/pyomeca_markers_analogs.c3d",
    "edge_cases/btk_PiG_Calibration-FlatFoot-One.c3d",
    "edge_cases/c3dorg_pc_int.c3d",
]
PLATE_FILES = [f for f in EZC3D_FILES if "tennis" not in f and "pyomeca" not in f]


def _rel_close(actual, expected, rtol):
    """|a - e| <= rtol * max|e| elementwise, NaN where NaN."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    if expected.size and np.isfinite(expected).any():
        scale = max(np.nanmax(np.abs(expected)), 1e-12)
        assert np.nanmax(np.abs(actual - expected)) <= rtol * scale


@pytest.fixture(scope="module")
def ez_cache():
    return {}


def _ez(real_dir, name, cache):
    if name not in cache:
        cache[name] = ezc3d.c3d(str(real_dir / name), extract_forceplat_data=True)
    return cache[name]


@pytest.mark.parametrize("name", EZC3D_FILES)
def test_fast_engine_matches_ezc3d_markers_and_analogs(real_dir, name, ez_cache):
    rec = read_c3d(real_dir / name, engine="fast", zero_baseline=False)
    c = _ez(real_dir, name, ez_cache)
    rtol = 1e-5 if c["parameters"]["POINT"]["SCALE"]["value"][0] < 0 else 1e-6
    length = {"mm": 1e-3, "m": 1.0, "mete": 1.0}[c["parameters"]["POINT"]["UNITS"]["value"][0]]
    pts = c["data"]["points"][:3].transpose(2, 1, 0) * length
    keep = np.setdiff1d(np.arange(pts.shape[1]), rec.meta["points_other"]["index"])
    _rel_close(rec.markers, pts[:, keep], rtol)
    valid_ez = c["data"]["meta_points"]["residuals"][0].T[:, keep] >= 0
    assert np.array_equal(np.isfinite(rec.residuals), valid_ez)
    labels = c["parameters"]["POINT"]["LABELS"]["value"]
    assert rec.marker_labels == [labels[i] for i in keep]
    if c["data"]["analogs"].size:
        _rel_close(rec.analogs, c["data"]["analogs"][0].T, rtol)
    else:
        assert rec.analogs.size == 0 and rec.analog_labels == []
    assert rec.point_rate_hz == pytest.approx(c["header"]["points"]["frame_rate"])
    assert rec.meta["first_frame"] == c["header"]["points"]["first_frame"] + 1


@pytest.mark.parametrize("name", PLATE_FILES)
def test_fast_engine_matches_ezc3d_platforms_by_documented_mapping(real_dir, name, ez_cache):
    rec = read_c3d(real_dir / name, engine="fast", zero_baseline=False)
    c = _ez(real_dir, name, ez_cache)
    unit = 1e-3 if c["parameters"]["POINT"]["UNITS"]["value"][0] == "mm" else 1.0
    types = np.ravel(c["parameters"]["FORCE_PLATFORM"]["TYPE"]["value"])
    assert len(rec.platforms) == len(c["data"]["platform"]) > 0
    conventions = rec.meta["plate_conventions"]
    for plate, q, t, conv in zip(
        rec.platforms, c["data"]["platform"], types, conventions, strict=True
    ):
        s = conv["reaction_sign"]  # decided from the load for TYPE 3, +1 otherwise
        assert conv["type"] == t and (t == 3 or s == 1.0)
        force = s * q["force"].T
        centre = q["corners"].mean(axis=1) * unit
        _rel_close(plate.force, force, 1e-6)
        _rel_close(plate.moment, s * q["moment"].T * unit + np.cross(centre, force), 1e-6)
        loaded = np.abs(force[:, 2]) > 50
        _rel_close(plate.cop[loaded], q["center_of_pressure"].T[loaded] * unit, 1e-6)
        c1, c2, _, c4 = q["corners"].T
        normal = -np.cross(c1 - c2, c1 - c4)  # C3D plate z points down into the plate
        normal /= np.linalg.norm(normal)
        _rel_close(plate.tz[loaded], s * q["Tz"].T[loaded] @ normal * unit, 1e-6)
        assert plate.rate_hz == pytest.approx(c["header"]["analogs"]["frame_rate"])


@pytest.mark.parametrize("name", EZC3D_FILES)
def test_ezc3d_engine_equals_fast_engine_with_zero_baseline(real_dir, name):
    fast = read_c3d(real_dir / name, engine="fast")
    ez = read_c3d(real_dir / name, engine="ezc3d")
    assert ez.meta["engine"] == "ezc3d" and fast.meta["engine"] == "fast"
    _rel_close(ez.markers, fast.markers, 1e-6)
    assert np.array_equal(np.isnan(ez.residuals), np.isnan(fast.residuals))
    _rel_close(ez.analogs.reshape(fast.analogs.shape), fast.analogs, 1e-6)
    assert ez.marker_labels == fast.marker_labels
    assert ez.meta["first_frame"] == fast.meta["first_frame"]
    assert ez.analog_labels == fast.analog_labels and ez.analog_units == fast.analog_units
    for a, b in zip(fast.platforms, ez.platforms, strict=True):
        _rel_close(b.force, a.force, 1e-6)
        _rel_close(b.moment, a.moment, 1e-6)
        _rel_close(b.cop, a.cop, 1e-6)
        _rel_close(b.tz, a.tz, 1e-6)
    assert [(e.label, e.time_s) for e in ez.events] == [(e.label, e.time_s) for e in fast.events]


def test_mips_file_gives_the_same_data_as_its_intel_twin(real_dir):
    sgi = read_c3d(real_dir / "edge_cases/c3dorg_sgi_int.c3d")
    pc = read_c3d(real_dir / "edge_cases/c3dorg_pc_int.c3d")
    assert sgi.meta["processor"] == "mips" and pc.meta["processor"] == "intel"
    assert sgi.meta["engine"] == "fast"
    np.testing.assert_array_equal(sgi.markers, pc.markers)
    np.testing.assert_array_equal(sgi.residuals, pc.residuals)
    np.testing.assert_array_equal(sgi.analogs, pc.analogs)
    assert sgi.marker_labels == pc.marker_labels and sgi.analog_labels == pc.analog_labels
    for a, b in zip(sgi.platforms, pc.platforms, strict=True):
        np.testing.assert_allclose(a.force, b.force, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.cop, b.cop, rtol=0, atol=1e-12)
    assert [(e.label, e.time_s) for e in sgi.events] == [(e.label, e.time_s) for e in pc.events]


def test_dec_float_and_intel_int_variants_of_one_trial_agree(real_dir):
    """Eb015vr (DEC, VAX floats) and Eb015pi (Intel, int16): same trial, different storage."""
    vr = read_c3d(real_dir / "c3d/c3dorg_Eb015vr.c3d", engine="fast")
    pi = read_c3d(real_dir / "c3d/c3dorg_Eb015pi.c3d", engine="fast")
    assert vr.meta["processor"] == "dec" and vr.meta["storage"] == "float"
    quantum = 0.0833334 * 1e-3  # one int16 step of POINT:SCALE, m
    assert np.nanmax(np.abs(vr.markers - pi.markers)) <= quantum
    np.testing.assert_allclose(vr.analogs, pi.analogs, rtol=1e-6, atol=1e-6)


def test_header_events_match_ezc3d(real_dir):
    c = ezc3d.c3d(str(real_dir / "c3d/c3dorg_Eb015pi.c3d"))
    ev = c["header"]["events"]
    expected = sorted(
        (t, lab.strip())
        for lab, t in zip(ev["events_label"], ev["events_time"], strict=True)
        if lab.strip()
    )
    rec = read_c3d(real_dir / "c3d/c3dorg_Eb015pi.c3d")
    assert [(e.time_s, e.label) for e in rec.events] == expected
    assert len(expected) == 3


def test_event_group_times_are_minutes_times_60_plus_seconds(tmp_path):
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [100]
    c["parameters"]["POINT"]["LABELS"]["value"] = ["A"]
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    c["data"]["points"] = np.ones((4, 1, 50))
    c.add_event([1, 2.5], context="Left", label="Foot Strike")
    c.add_event([0, 0.25], context="Right", label="Foot Off")
    c.add_event([0, 0.1], context="Odd", label="Event")
    c.write(str(tmp_path / "ev.c3d"))
    rec = read_c3d(tmp_path / "ev.c3d")
    got = [(e.label, e.context, e.time_s) for e in rec.events]
    assert got == [
        ("Event", "General", pytest.approx(0.1)),
        ("Foot Off", "Right", 0.25),
        ("Foot Strike", "Left", 62.5),
    ]


def _write_geometry(path, unit, factor, moment_unit=None, moment_factor=1.0):
    rng = np.random.default_rng(7)
    xyz_m = rng.uniform(-1, 2, size=(3, 3, 40))
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [100]
    c["parameters"]["POINT"]["LABELS"]["value"] = ["A", "B", "LKneeMoment"]
    c["parameters"]["POINT"]["UNITS"]["value"] = [unit]
    pts = np.ones((4, 3, 40))
    pts[:3] = xyz_m * factor
    moment_nm = np.array([10.0, -20.0, 30.5])
    pts[:3, 2] = moment_nm[:, None] * moment_factor
    c["data"]["points"] = pts
    if moment_unit:
        c.add_parameter("POINT", "MOMENTS", ["LKneeMoment"])
        c.add_parameter("POINT", "MOMENT_UNITS", [moment_unit])
    c.write(str(path))
    return xyz_m[:, :2].transpose(2, 1, 0), moment_nm


@pytest.mark.parametrize(("unit", "factor"), [("mm", 1000.0), ("cm", 100.0), ("m", 1.0)])
def test_point_units_are_converted_to_metres(tmp_path, unit, factor):
    truth, _ = _write_geometry(tmp_path / "u.c3d", unit, factor, "Nmm", 1000.0)
    rec = read_c3d(tmp_path / "u.c3d")
    np.testing.assert_allclose(rec.markers, truth, rtol=1e-6)
    assert rec.marker_labels == ["A", "B"]


@pytest.mark.parametrize(("moment_unit", "factor"), [("Nmm", 1000.0), ("Nm", 1.0)])
def test_point_moments_are_excluded_from_markers_and_converted_to_newton_metres(
    tmp_path, moment_unit, factor
):
    _, moment = _write_geometry(tmp_path / "m.c3d", "mm", 1000.0, moment_unit, factor)
    for engine in ("fast", "ezc3d"):
        rec = read_c3d(tmp_path / "m.c3d", engine=engine)
        other = rec.meta["points_other"]
        assert other["labels"] == ["LKneeMoment"] and other["kinds"] == ["moment"]
        assert other["units"] == ["N.m"]
        np.testing.assert_allclose(other["values"][:, 0], np.tile(moment, (40, 1)), rtol=1e-6)
        assert "LKneeMoment" not in rec.marker_labels


def test_pig_angles_are_kept_out_of_markers(real_dir):
    rec = read_c3d(real_dir / "edge_cases/btk_PiG_Calibration-FlatFoot-One.c3d")
    other = rec.meta["points_other"]
    assert "LHipAngles" in other["labels"] and "LHipAngles" not in rec.marker_labels
    assert rec.markers.shape[1] + len(other["labels"]) == 138
    assert set(other["kinds"]) <= {"angle", "force", "moment", "power", "scalar"}


@pytest.mark.parametrize(("start", "end"), [((1, 0), (4464, 1)), (None, None)])
def test_more_than_65535_frames_via_trial_fields_or_long_frames(tmp_path, start, end):
    n = 70_000
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [100]
    c["parameters"]["POINT"]["LABELS"]["value"] = ["A"]
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    pts = np.ones((4, 1, n))
    pts[0, 0] = np.arange(n)
    c["data"]["points"] = pts
    if start is None:
        c.add_parameter("POINT", "LONG_FRAMES", [float(n)])
    else:
        c.add_parameter("TRIAL", "ACTUAL_START_FIELD", list(start))
        c.add_parameter("TRIAL", "ACTUAL_END_FIELD", list(end))
    c.write(str(tmp_path / "long.c3d"))
    rec = read_c3d(tmp_path / "long.c3d")
    assert rec.n_frames == n
    np.testing.assert_array_equal(rec.markers[:, 0, 0], np.arange(n) * 1e-3)


def test_type1_file_is_decoded_with_its_six_analog_channels(real_dir):
    """type1.C3D has ANALOG:USED 6 but no ANALOG:RATE; the header's 1 sample/frame applies."""
    path = real_dir / "c3d/c3dorg_type1.C3D"
    rec = read_c3d(path)
    assert rec.analogs.shape == (296, 6) and rec.analog_rate_hz == 100.0
    # frames of 28 points x 16 bytes + 6 x 4 bytes fill the data block exactly
    assert path.stat().st_size - 7 * 512 - 296 * (28 * 16 + 24) < 512
    step = np.nanmax(np.linalg.norm(np.diff(rec.markers, axis=0), axis=-1))
    assert step < 0.15  # continuous trajectories at 100 Hz (misaligned frames jump metres)
    plate = rec.platforms[0]
    up = np.cross(plate.corners[0] - plate.corners[1], plate.corners[0] - plate.corners[3])
    fn = plate.force @ (-up / np.linalg.norm(up))
    k = int(np.argmax(fn))
    assert fn[k] > 300  # body weight-scale load, pushing up on the body
    foot = 0.5 * (
        rec.markers[k, rec.marker_labels.index("RMALL")]
        + rec.markers[k, rec.marker_labels.index("RMET")]
    )
    assert rec.meta["up_axis"] == "y" and fn[k] == pytest.approx(plate.force[k, 2], rel=1e-2)
    assert np.linalg.norm((plate.cop[k] - foot)[[0, 1]]) < 0.1  # CoP under the right foot
    with pytest.raises(InputFormatError, match="misaligned"):
        read_c3d(path, engine="ezc3d")


@pytest.mark.parametrize("name", PLATE_FILES)
def test_vertical_reaction_on_the_body_is_positive_when_loaded(real_dir, name):
    for plate in read_c3d(real_dir / name, zero_baseline=False).platforms:
        loaded = np.abs(plate.force[:, 2]) > 50
        if loaded.any():
            assert np.mean(plate.force[loaded, 2] > 0) > 0.99


def test_quiet_standing_reaction_is_body_weight_up(real_dir):
    rec = read_c3d(real_dir / "edge_cases/btk_PiG_Calibration-FlatFoot-One.c3d")
    total = sum(p.force[:, 2] for p in rec.platforms)
    assert 400 < total.mean() < 1200 and total.std() < 0.05 * total.mean()


def test_cop_is_nan_below_force_threshold(real_dir):
    for thr in (20.0, 100.0):
        rec = read_c3d(real_dir / "c3d/opensim_walking2.c3d", cop_threshold_n=thr)
        for p in rec.platforms:
            below = np.abs(p.force[:, 2]) < thr
            assert below.any() and (~below).any()
            assert np.isnan(p.cop[below]).all() and np.isnan(p.tz[below]).all()
            assert np.isfinite(p.cop[~below]).all() and np.isfinite(p.tz[~below]).all()


def test_zero_baseline_subtracts_the_mean_over_force_platform_zero_frames(real_dir):
    path = real_dir / "c3d/c3dorg_Eb015pi.c3d"  # ZERO = 1, 10; 4 analog samples per frame
    raw = read_c3d(path, zero_baseline=False)
    zeroed = read_c3d(path)
    for a, b in zip(raw.platforms, zeroed.platforms, strict=True):
        np.testing.assert_allclose(b.force, a.force - a.force[:40].mean(axis=0), atol=1e-9)
        assert np.abs(b.force[:40].mean(axis=0)).max() < 1e-9
    vicon = read_c3d(real_dir / "c3d/opensim_walking2.c3d")  # ZERO = 1, 0: nothing to do
    vicon_raw = read_c3d(real_dir / "c3d/opensim_walking2.c3d", zero_baseline=False)
    np.testing.assert_array_equal(vicon.platforms[0].force, vicon_raw.platforms[0].force)


def test_recording_tables_have_the_declared_columns(real_dir):
    from cxlab.schemas import schema_of, validate

    rec = read_c3d(real_dir / "c3d/c3dorg_Eb015pi.c3d")
    for name, df in rec.to_tables("0123456789abcdef").items():
        validate(df, schema_of(name))


def test_parameters_are_exposed_as_nested_plain_values(real_dir):
    rec = read_c3d(real_dir / "c3d/opensim_walking2.c3d")
    params = rec.meta["parameters"]
    assert params["POINT"]["USED"] == 44
    assert params["ANALOG"]["LABELS"][:2] == ["Fx1", "Fy1"]
    assert rec.meta["manufacturer"] == "Vicon" and rec.meta["software"] == "Vicon Nexus"
    assert rec.meta["format"] == "c3d" and rec.meta["source"].endswith("opensim_walking2.c3d")


def test_unknown_engine_is_a_config_error(real_dir):
    with pytest.raises(ConfigError, match="'fast'"):
        read_c3d(real_dir / "c3d/c3dorg_Eb015pi.c3d", engine="turbo")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b[:1100], "parameter section claims"),
        (lambda b: b[:-1000], "header frame range declares 450 frames"),
        (lambda b: b[:1] + b"\x00" + b[2:], "not a C3D file"),
        (lambda b: b"", "shorter than a C3D header"),
        (lambda b: b[:515] + b"\x63" + b[516:], "processor"),
    ],
)
def test_corrupt_files_raise_one_line_input_format_errors(real_dir, tmp_path, mutate, match):
    src = (real_dir / "c3d/c3dorg_Eb015pi.c3d").read_bytes()
    bad = tmp_path / "bad.c3d"
    bad.write_bytes(mutate(src))
    for engine in ("fast", "auto", "ezc3d"):
        with pytest.raises(InputFormatError, match=match) as info:
            read_c3d(bad, engine=engine)
        text = str(info.value)
        assert text.startswith("bad.c3d: ") and "\n" not in text and "; " in text


def test_missing_file_is_an_input_format_error(tmp_path):
    with pytest.raises(InputFormatError, match="cannot be read"):
        read_c3d(tmp_path / "nope.c3d")


def test_auto_falls_back_to_ezc3d_with_a_logged_reason(real_dir, tmp_path, caplog):
    """A non-integer analog/point rate ratio is outside the fast path; auto hands it to ezc3d."""
    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [100]
    c["parameters"]["POINT"]["LABELS"]["value"] = ["A"]
    c["parameters"]["POINT"]["UNITS"]["value"] = ["m"]
    c["data"]["points"] = np.ones((4, 1, 10))
    c["parameters"]["ANALOG"]["LABELS"]["value"] = ["emg"]
    c["parameters"]["ANALOG"]["RATE"]["value"] = [200]
    c["data"]["analogs"] = np.arange(20.0).reshape(1, 1, 20)
    c.write(str(tmp_path / "ok.c3d"))
    data = bytearray((tmp_path / "ok.c3d").read_bytes())
    idx = data.find(b"RATE", data.find(b"ANALOG", 512))
    body = idx + 4 + 2
    assert data[body] == 4  # float parameter: patch 200 Hz -> 250 Hz (ratio 2.5)
    data[body + 2 : body + 6] = np.float32(250.0).tobytes()
    (tmp_path / "odd.c3d").write_bytes(bytes(data))
    with pytest.raises(InputFormatError, match="whole multiple"):
        read_c3d(tmp_path / "odd.c3d", engine="fast")
    with caplog.at_level(logging.INFO, logger="cxlab.io"):
        rec = read_c3d(tmp_path / "odd.c3d", engine="auto")
    assert rec.meta["engine"] == "ezc3d"
    assert any("falling back to ezc3d" in r.getMessage() for r in caplog.records)


def test_reading_is_deterministic(real_dir):
    a = read_c3d(real_dir / "c3d/opensim_walking2.c3d")
    b = read_c3d(real_dir / "c3d/opensim_walking2.c3d")
    for name, df in a.to_tables("0123456789abcdef").items():
        assert df.equals(b.to_tables("0123456789abcdef")[name])


def test_peak_matches_the_nansum_norm_bit_for_bit():
    """_peak (model outputs' per-kg evidence) sums x, y, z as np.nansum does: same float."""
    from cxlab.io._c3d_outputs import _peak

    def reference(v):
        norm = np.sqrt(np.nansum(v**2, axis=-1))
        norm[~np.isfinite(v).any(axis=-1)] = np.nan
        return float(np.nanmax(norm)) if np.isfinite(norm).any() else float("nan")

    rng = np.random.default_rng(7)
    for shape in ((5000, 1, 3), (400, 30, 3)):
        v = rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 6, size=shape)
        v[rng.random(shape) < 0.1] = np.nan
        assert _peak(v) == reference(v)
        v[3, 0] = [np.inf, 1.0, np.nan]
        assert _peak(v) == reference(v) == np.inf
    assert np.isnan(_peak(np.full((4, 2, 3), np.nan)))
    assert np.isnan(_peak(np.array([[[np.inf, np.nan, np.nan]]])))
    assert np.isnan(reference(np.array([[[np.inf, np.nan, np.nan]]])))
