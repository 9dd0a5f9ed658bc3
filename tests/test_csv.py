"""Force-plate CSV reader, on CSV exports written from the real subject01 ground reaction forces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxlab._check import ConfigError, InputFormatError
from cxlab.io.csv import read_forceplate_csv


@pytest.fixture(scope="module")
def grf(real_dir) -> pd.DataFrame:
    """The real two-plate walking GRF (OpenSim axes: y is vertical), 600 Hz."""
    df = pd.read_csv(real_dir / "opensim/subject01_walk_grf.mot", sep="\t", skiprows=6, header=0)
    return df.dropna(axis=1, how="all")


def test_default_mapping_reads_time_left_right(grf, tmp_path):
    path = tmp_path / "dual.csv"
    pd.DataFrame(
        {
            "time": grf["time"],
            "left_fz": grf["ground_force_vy"],
            "right_fz": grf["1_ground_force_vy"],
        }
    ).to_csv(path, index=False)
    rec = read_forceplate_csv(path)
    assert len(rec.platforms) == 2 and rec.analog_rate_hz == 600.0
    np.testing.assert_array_equal(rec.platforms[0].force[:, 2], grf["ground_force_vy"])
    np.testing.assert_array_equal(rec.platforms[1].force[:, 2], grf["1_ground_force_vy"])
    assert np.isnan(rec.platforms[0].force[:, :2]).all()  # shear not exported
    assert np.isnan(rec.platforms[0].cop).all()
    tables = rec.to_tables("0123456789abcdef")
    assert tables["forces"].shape[0] == 2 * len(grf)


def test_mapping_converts_units_signs_and_builds_moments(grf, tmp_path):
    n = len(grf)
    fz = grf["ground_force_vy"].to_numpy()
    fx = grf["ground_force_vx"].to_numpy()
    fy = -grf["ground_force_vz"].to_numpy()
    cx = grf["ground_force_px"].to_numpy()
    cy = -grf["ground_force_pz"].to_numpy()
    tz = grf["ground_torque_y"].to_numpy()
    export = pd.DataFrame(
        {
            "t_ms": np.arange(n) * 1000 / 600,
            "Fx (kN)": fx / 1000,
            "Fy (lbf)": fy / 4.4482216152605,
            "Fz plate (N)": -fz,  # exported as the force on the plate
            "CoPx (mm)": cx * 1000,
            "CoPy (cm)": cy * 100,
            "Tz (N.mm)": tz * 1000,
        }
    )
    path = tmp_path / "plate.csv"
    export.to_csv(path, index=False, sep=";")
    mapping = {
        "time_column": "t_ms",
        "time_unit": "ms",
        "columns": {
            "Fx (kN)": {"plate": 1, "component": "fx", "unit": "kN"},
            "Fy (lbf)": {"plate": 1, "component": "fy", "unit": "lbf"},
            "Fz plate (N)": {"plate": 1, "component": "fz", "unit": "N", "sign": -1},
            "CoPx (mm)": {"plate": 1, "component": "cop_x", "unit": "mm"},
            "CoPy (cm)": {"plate": 1, "component": "cop_y", "unit": "cm"},
            "Tz (N.mm)": {"plate": 1, "component": "tz", "unit": "N.mm"},
        },
    }
    rec = read_forceplate_csv(path, mapping=mapping)
    p = rec.platforms[0]
    assert rec.analog_rate_hz == pytest.approx(600.0, rel=1e-9)
    np.testing.assert_allclose(p.force, np.column_stack([fx, fy, fz]), rtol=1e-12, atol=1e-9)
    loaded = np.abs(fz) >= 20
    np.testing.assert_allclose(p.cop[loaded], np.column_stack([cx, cy, 0 * cx])[loaded], atol=1e-12)
    assert np.isnan(p.cop[~loaded]).all() and np.isnan(p.tz[~loaded]).all()
    # r x F + (0, 0, tz) with r = (cx, cy, 0), written with numpy's cross product
    r = np.column_stack([cx, cy, np.zeros(n)])
    ref = np.cross(r, np.column_stack([fx, fy, fz])) + np.column_stack([0 * tz, 0 * tz, tz])
    np.testing.assert_allclose(p.moment, ref, rtol=1e-9, atol=1e-9)


def test_mapping_from_toml_and_rate_without_time(grf, tmp_path):
    (tmp_path / "map.toml").write_text(
        'rate_hz = 600\n[columns.Fz1]\nplate = 1\ncomponent = "fz"\nunit = "N"\n'
    )
    path = tmp_path / "fz.csv"
    pd.DataFrame({"Fz1": grf["ground_force_vy"]}).to_csv(path, index=False)
    rec = read_forceplate_csv(path, mapping=tmp_path / "map.toml")
    assert rec.analog_rate_hz == 600.0 and len(rec.platforms) == 1
    assert (
        read_forceplate_csv(path, mapping=tmp_path / "map.toml", rate_hz=1000).platforms[0].rate_hz
        == 1000.0
    )


def test_missing_column_error_names_file_column_and_fix(grf, tmp_path):
    path = tmp_path / "export.csv"
    pd.DataFrame({"time": grf["time"], "Fz_L": grf["ground_force_vy"]}).to_csv(path, index=False)
    with pytest.raises(
        InputFormatError,
        match=r"export.csv: left_fz: has no column 'left_fz', "
        r"'right_fz' \(got \['time', 'Fz_L'\]\); pass a "
        r"mapping",
    ):
        read_forceplate_csv(path)


def test_non_numeric_cell_and_decreasing_time_are_located(grf, tmp_path):
    df = pd.DataFrame(
        {
            "time": grf["time"],
            "left_fz": grf["ground_force_vy"].astype(object),
            "right_fz": grf["1_ground_force_vy"],
        }
    )
    df.loc[9, "left_fz"] = "12,3"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False, sep="\t")
    with pytest.raises(
        InputFormatError,
        match=r"bad.csv: left_fz: line 11: is not a number "
        r"\(got '12,3'\)",
    ):
        read_forceplate_csv(path)
    df.loc[9, "left_fz"] = 1.0
    df.loc[5, "time"] = 0.0
    df.to_csv(path, index=False)
    with pytest.raises(InputFormatError, match=r"bad.csv: time: data row 6: time must increase"):
        read_forceplate_csv(path)


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ({"columns": {"a": {"plate": 1, "component": "fz", "unit": "kg"}}}, "unit.*'kg'"),
        ({"columns": {"a": {"plate": 2, "component": "fz", "unit": "N"}}}, "without gaps"),
        ({"columns": {"a": {"plate": 1, "component": "fx", "unit": "N"}}}, "plate 1 has no fz"),
        ({"colums": {}}, r"'mapping.colums' \(did you mean 'mapping.columns'\?\)"),
        ({"columns": {"a": {"plate": 1, "componet": "fz"}}}, r"'mapping.columns.a.componet' "),
    ],
)
def test_invalid_mappings_are_config_errors(grf, tmp_path, mapping, match):
    path = tmp_path / "a.csv"
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=match):
        read_forceplate_csv(path, mapping=mapping, rate_hz=100)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rate_hz", "1kHz"),
        ("rate_hz", True),
        ("cop_threshold_n", "twenty"),
        ("cop_threshold_n", float("nan")),
    ],
)
def test_non_numeric_rate_or_threshold_in_a_mapping_is_a_config_error(tmp_path, key, value):
    from cxlab.io.csv import read_mapping

    path = tmp_path / "a.csv"
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(path, index=False)
    mapping = {"columns": {"a": {"plate": 1, "component": "fz", "unit": "N"}}, key: value}
    if key != "rate_hz":
        mapping["rate_hz"] = 100
    with pytest.raises(ConfigError, match=key):
        read_mapping(mapping)
    with pytest.raises(ConfigError, match=key):
        read_forceplate_csv(path, mapping=mapping)


# -- issue 12 item 3: exports as labs have them ---------------------------------------------
def _z_up(grf):
    """The real walking GRF of plate 1 in cxlab's lab frame (OpenSim: y up; x, y, z -> x, -z, y)."""
    f = np.column_stack([grf["ground_force_vx"], -grf["ground_force_vz"], grf["ground_force_vy"]])
    p = np.column_stack([grf["ground_force_px"], -grf["ground_force_pz"], 0 * grf["time"]])
    return f, p


def _comma(x):
    return f"{x:.6f}".replace(".", ",")


def test_header_below_a_preamble_units_row_decimal_commas_and_txt(grf, tmp_path):
    f, _ = _z_up(grf)
    lines = [
        "Force export by LabSoft 3.1",
        "Trial;CMJ_01",
        "Rate;600 Hz",
        "",
        "Time;Fz left;Fz right",
        "s;N;N",
    ]
    lines += [
        ";".join(_comma(v) for v in row)
        for row in zip(grf["time"], f[:, 2], grf["1_ground_force_vy"], strict=True)
    ]
    path = tmp_path / "export.txt"
    path.write_text("\n".join(lines) + "\n")
    mapping = {
        "time_column": "Time",
        "columns": {
            "Fz left": {"plate": 1, "component": "fz", "unit": "N"},
            "Fz right": {"plate": 2, "component": "fz", "unit": "N"},
        },
    }
    from cxlab.io import format_of, read

    assert format_of(path) == "csv"
    rec = read(path, mapping=mapping)
    assert rec.analog_rate_hz == 600.0
    np.testing.assert_allclose(rec.platforms[0].force[:, 2], f[:, 2], atol=5e-7)
    np.testing.assert_allclose(rec.platforms[1].force[:, 2], grf["1_ground_force_vy"], atol=5e-7)
    # the same with the header row pinned
    pinned = read_forceplate_csv(path, mapping={**mapping, "header_row": 5, "decimal": ","})
    np.testing.assert_array_equal(pinned.platforms[0].force, rec.platforms[0].force)


def test_a_units_row_that_contradicts_the_mapping_is_refused(grf, tmp_path):
    path = tmp_path / "kn.csv"
    body = "\n".join(
        f"{t},{v / 1000}" for t, v in zip(grf["time"], grf["ground_force_vy"], strict=True)
    )
    path.write_text("time,Fz\ns,kN\n" + body + "\n")
    mapping = {"columns": {"Fz": {"plate": 1, "component": "fz", "unit": "N"}}}
    with pytest.raises(
        InputFormatError,
        match=r"kn.csv: Fz: line 2: the units row says 'kN' "
        r"but the mapping says 'N'",
    ):
        read_forceplate_csv(path, mapping=mapping)
    kn = {"columns": {"Fz": {"plate": 1, "component": "fz", "unit": "kN"}}}
    rec = read_forceplate_csv(path, mapping=kn)
    np.testing.assert_allclose(rec.platforms[0].force[:, 2], grf["ground_force_vy"], rtol=1e-12)


def test_time_stamps_repeating_within_a_frame_give_the_sample_rate(grf, tmp_path):
    n = (len(grf) // 6) * 6
    frame_t = np.repeat(np.arange(n // 6) / 100.0, 6)  # camera frames at 100 Hz, plate 600 Hz
    path = tmp_path / "frames.csv"
    pd.DataFrame(
        {
            "time": frame_t,
            "left_fz": grf["ground_force_vy"][:n],
            "right_fz": grf["1_ground_force_vy"][:n],
        }
    ).to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"repeats 6 times .* = 600 Hz"):
        rec = read_forceplate_csv(path)
    assert rec.analog_rate_hz == 600.0


def test_irregular_repeated_time_is_refused(grf, tmp_path):
    t = grf["time"].to_numpy().copy()
    t[10] = t[9]
    path = tmp_path / "rep.csv"
    pd.DataFrame(
        {"time": t, "left_fz": grf["ground_force_vy"], "right_fz": grf["1_ground_force_vy"]}
    ).to_csv(path, index=False)
    with pytest.raises(InputFormatError, match="time must increase"):
        read_forceplate_csv(path)


def test_moment_columns_give_the_centre_of_pressure(grf, tmp_path):
    f, p = _z_up(grf)
    m = np.cross(p, f)  # moment of the reaction about the plate's surface centre, by numpy
    path = tmp_path / "moments.csv"
    pd.DataFrame(
        {
            "t": grf["time"],
            "Fx": f[:, 0],
            "Fy": f[:, 1],
            "Fz": f[:, 2],
            "Mx (N.mm)": m[:, 0] * 1000,
            "My (N.mm)": m[:, 1] * 1000,
        }
    ).to_csv(path, index=False)
    cols = {k: {"plate": 1, "component": k.lower(), "unit": "N"} for k in ("Fx", "Fy", "Fz")}
    cols["Mx (N.mm)"] = {"plate": 1, "component": "mx", "unit": "N.mm"}
    cols["My (N.mm)"] = {"plate": 1, "component": "my", "unit": "N.mm"}
    rec = read_forceplate_csv(path, mapping={"time_column": "t", "columns": cols})
    loaded = np.abs(f[:, 2]) >= 20
    np.testing.assert_allclose(rec.platforms[0].cop[loaded], p[loaded], atol=1e-9)
    assert np.isnan(rec.platforms[0].cop[~loaded]).all()
    np.testing.assert_allclose(rec.platforms[0].moment[:, :2], m[:, :2], atol=1e-9)


def test_a_cop_only_plate_has_nan_force_and_keeps_its_cop(grf, tmp_path):
    _, p = _z_up(grf)
    path = tmp_path / "cop.csv"
    pd.DataFrame({"time": grf["time"], "Ax": p[:, 0], "Ay": p[:, 1]}).to_csv(path, index=False)
    rec = read_forceplate_csv(
        path,
        mapping={
            "columns": {
                "Ax": {"plate": 1, "component": "cop_x", "unit": "m"},
                "Ay": {"plate": 1, "component": "cop_y", "unit": "m"},
            }
        },
    )
    assert np.isnan(rec.platforms[0].force).all()
    np.testing.assert_array_equal(rec.platforms[0].cop, p)


def test_the_mapping_is_a_frozen_dataclass_that_round_trips(tmp_path):
    import dataclasses

    from cxlab.io.csv import DEFAULT_MAPPING, ForcePlateMapping, read_mapping

    spec = read_mapping(
        {
            "rate_hz": 500,
            "columns": {"Fz": {"plate": 1, "component": "fz", "unit": "kN", "sign": -1}},
        }
    )
    assert isinstance(spec, ForcePlateMapping) and spec.rate_hz == 500.0
    assert spec.columns[0].unit == "kN" and spec.columns[0].sign == -1
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.rate_hz = 1.0
    assert read_mapping(spec.to_dict()) == spec and read_mapping(spec) is spec
    assert read_mapping(None) == DEFAULT_MAPPING


def test_an_infinite_or_absurd_force_is_refused_naming_column_and_line(grf, tmp_path):
    df = pd.DataFrame(
        {
            "time": grf["time"],
            "left_fz": grf["ground_force_vy"],
            "right_fz": grf["1_ground_force_vy"],
        }
    )
    path = tmp_path / "huge.csv"
    for bad, match in [
        (1e308, "line 8: is not a finite measurement"),
        (float("inf"), "line 8"),
        (3e5, r"data row 7: 300000 N on plate 2"),
    ]:
        d = df.copy()
        d.loc[6, "right_fz"] = bad
        d.to_csv(path, index=False)
        with pytest.raises(InputFormatError, match=rf"huge.csv: right_fz: {match}"):
            read_forceplate_csv(path)


def test_force_exported_on_the_plate_without_sign_is_a_recording_warning(grf, tmp_path):
    path = tmp_path / "on_plate.csv"
    pd.DataFrame(
        {
            "time": grf["time"],
            "left_fz": -grf["ground_force_vy"],
            "right_fz": grf["1_ground_force_vy"],
        }
    ).to_csv(path, index=False)
    with pytest.warns(
        UserWarning,
        match=r"on_plate.csv: plate 1: vertical force is negative "
        r"where loaded \(median -\d+ N\)",
    ):
        rec = read_forceplate_csv(path)
    assert len(rec.warnings) == 1 and rec.warnings[0].startswith("plate 1:")
