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
    pd.DataFrame({"time": grf["time"], "left_fz": grf["ground_force_vy"],
                  "right_fz": grf["1_ground_force_vy"]}).to_csv(path, index=False)
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
    export = pd.DataFrame({
        "t_ms": np.arange(n) * 1000 / 600,
        "Fx (kN)": fx / 1000, "Fy (lbf)": fy / 4.4482216152605,
        "Fz plate (N)": -fz,  # exported as the force on the plate
        "CoPx (mm)": cx * 1000, "CoPy (cm)": cy * 100, "Tz (N.mm)": tz * 1000,
    })
    path = tmp_path / "plate.csv"
    export.to_csv(path, index=False, sep=";")
    mapping = {
        "time_column": "t_ms", "time_unit": "ms",
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
    np.testing.assert_allclose(p.cop[loaded], np.column_stack([cx, cy, 0 * cx])[loaded],
                               atol=1e-12)
    assert np.isnan(p.cop[~loaded]).all() and np.isnan(p.tz[~loaded]).all()
    # r x F + (0, 0, tz) with r = (cx, cy, 0), written with numpy's cross product
    r = np.column_stack([cx, cy, np.zeros(n)])
    ref = np.cross(r, np.column_stack([fx, fy, fz])) + np.column_stack([0 * tz, 0 * tz, tz])
    np.testing.assert_allclose(p.moment, ref, rtol=1e-9, atol=1e-9)


def test_mapping_from_toml_and_rate_without_time(grf, tmp_path):
    (tmp_path / "map.toml").write_text(
        'rate_hz = 600\n[columns.Fz1]\nplate = 1\ncomponent = "fz"\nunit = "N"\n')
    path = tmp_path / "fz.csv"
    pd.DataFrame({"Fz1": grf["ground_force_vy"]}).to_csv(path, index=False)
    rec = read_forceplate_csv(path, mapping=tmp_path / "map.toml")
    assert rec.analog_rate_hz == 600.0 and len(rec.platforms) == 1
    assert read_forceplate_csv(path, mapping=tmp_path / "map.toml", rate_hz=1000).platforms[
        0].rate_hz == 1000.0


def test_missing_column_error_names_file_column_and_fix(grf, tmp_path):
    path = tmp_path / "export.csv"
    pd.DataFrame({"time": grf["time"], "Fz_L": grf["ground_force_vy"]}).to_csv(path, index=False)
    with pytest.raises(InputFormatError, match=r"export.csv: left_fz: has no column 'left_fz', "
                                               r"'right_fz' \(got \['time', 'Fz_L'\]\); pass a "
                                               r"mapping"):
        read_forceplate_csv(path)


def test_non_numeric_cell_and_decreasing_time_are_located(grf, tmp_path):
    df = pd.DataFrame({"time": grf["time"], "left_fz": grf["ground_force_vy"].astype(object),
                       "right_fz": grf["1_ground_force_vy"]})
    df.loc[9, "left_fz"] = "12,3"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False, sep="\t")
    with pytest.raises(InputFormatError, match=r"bad.csv: left_fz: line 11: is not a number "
                                               r"\(got '12,3'\)"):
        read_forceplate_csv(path)
    df.loc[9, "left_fz"] = 1.0
    df.loc[5, "time"] = 0.0
    df.to_csv(path, index=False)
    with pytest.raises(InputFormatError, match=r"bad.csv: time: data row 6: time must increase"):
        read_forceplate_csv(path)


@pytest.mark.parametrize(("mapping", "match"), [
    ({"columns": {"a": {"plate": 1, "component": "fz", "unit": "kg"}}}, "unit.*'kg'"),
    ({"columns": {"a": {"plate": 2, "component": "fz", "unit": "N"}}}, "without gaps"),
    ({"columns": {"a": {"plate": 1, "component": "fx", "unit": "N"}}}, "plate 1 has no fz"),
    ({"colums": {}}, "mapping key.*'colums'"),
])
def test_invalid_mappings_are_config_errors(grf, tmp_path, mapping, match):
    path = tmp_path / "a.csv"
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match=match):
        read_forceplate_csv(path, mapping=mapping, rate_hz=100)


@pytest.mark.parametrize(("key", "value"), [("rate_hz", "1kHz"), ("rate_hz", True),
                                            ("cop_threshold_n", "twenty"),
                                            ("cop_threshold_n", float("nan"))])
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
