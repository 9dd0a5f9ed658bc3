"""OpenSim readers against independent parses of the real files (ezc3d, pandas, csv module)."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pandas as pd
import pytest

from cxlab._check import ConfigError, CxlabWarning, InputFormatError
from cxlab.io.opensim import read_mot, read_trc


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        return fn(*a, **k)


def test_trc_matches_the_c3d_it_was_exported_from(real_dir):
    ezc3d = pytest.importorskip("ezc3d")
    trc = _quiet(read_trc, real_dir / "opensim/opensim_std_walking2_markers.trc")
    c = ezc3d.c3d(str(real_dir / "c3d/opensim_walking2.c3d"))
    pts = c["data"]["points"][:3].transpose(2, 1, 0) / 1000.0  # (frames, markers, 3), mm -> m
    labels = c["parameters"]["POINT"]["LABELS"]["value"]
    rate = c["parameters"]["POINT"]["RATE"]["value"][0]
    # the TRC keeps every 10th C3D frame; its Time column says which (frame = time x 250 Hz)
    time = trc.meta["time_offset_s"] + np.arange(trc.n_frames) / trc.point_rate_hz
    time[-1] = 4.992  # the exported last row is the C3D's last frame (a 0.032 s step)
    idx = np.rint(time * rate).astype(int)
    assert trc.point_rate_hz == 25.0
    ref = pts[idx][:, [labels.index(m) for m in trc.marker_labels]]
    both = np.isfinite(ref) & np.isfinite(trc.markers)
    assert both.sum() > 8_000
    assert (np.isnan(trc.markers) == np.isnan(ref)).mean() > 0.99
    # TRC values are written with 5 significant digits: |error| < 0.05 mm for |x| < 10 m
    np.testing.assert_allclose(trc.markers[both], ref[both], atol=6e-5, rtol=0)
    # and cxlab's own C3D reader gives the same frames
    from cxlab.io import read_c3d

    c3d = read_c3d(real_dir / "c3d/opensim_walking2.c3d")
    ours = c3d.markers[idx][:, [c3d.marker_labels.index(m) for m in trc.marker_labels]]
    np.testing.assert_allclose(trc.markers[both], ours[both], atol=6e-5, rtol=0)


def test_trc_time_column_beats_a_wrong_data_rate_with_a_warning(real_dir):
    with pytest.warns(CxlabWarning, match="DataRate says 250 Hz but the Time column steps at 25"):
        rec = read_trc(real_dir / "opensim/opensim_std_walking2_markers.trc")
    assert rec.point_rate_hz == 25.0 and rec.first_frame == 1


def test_comma_delimited_trc_equals_csv_module_parse_and_warns_on_numframes(real_dir):
    path = real_dir / "opensim/pyomeca_markers.trc"
    with pytest.warns(CxlabWarning, match="header says 652 but the file has 93 data rows"):
        rec = read_trc(path)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    names = [c for c in rows[3][2:] if c]
    body = [r for r in rows[5:] if any(x.strip() for x in r)]
    ref = np.array([[float(x) if x else np.nan for x in r[2:2 + 3 * len(names)]] for r in body])
    assert rec.marker_labels == names and len(names) == 51
    assert rec.markers.shape == (93, 51, 3)
    np.testing.assert_allclose(rec.markers.reshape(93, -1), ref / 1000.0, rtol=1e-12)
    assert rec.point_rate_hz == 100.0


def test_tab_trc_with_trailing_tab_and_y_up_rotation(real_dir):
    path = real_dir / "opensim/subject01_walk_marker_trajectories.trc"
    raw = read_trc(path)
    assert raw.markers.shape == (151, 41, 3) and raw.point_rate_hz == 60.0
    assert raw.marker_labels[:3] == ["R.ASIS", "L.ASIS", "V.Sacral"]
    np.testing.assert_allclose(raw.markers[0, 0], [0.61724762, 1.05527502, 0.17078198])
    z_up = read_trc(path, up="y")
    # (x, y, z)_cxlab = (x, -z, y)_opensim: the pelvis is ~1 m above the floor either way
    np.testing.assert_array_equal(z_up.markers[..., 0], raw.markers[..., 0])
    np.testing.assert_array_equal(z_up.markers[..., 1], -raw.markers[..., 2])
    np.testing.assert_array_equal(z_up.markers[..., 2], raw.markers[..., 1])
    assert 0.9 < np.nanmean(z_up.markers[:, 0, 2]) < 1.2
    assert z_up.meta["up"] == "y" and raw.meta["up"] == "z"


def _mot_frame(path, skip):
    return pd.read_csv(path, sep="\t", skiprows=skip, header=0).dropna(axis=1, how="all")


def test_grf_mot_platforms_against_pandas_parse(real_dir):
    path = real_dir / "opensim/subject01_walk_grf.mot"
    rec = read_mot(path)
    ref = _mot_frame(path, 6)
    assert rec.meta["up"] == "y" and len(rec.platforms) == 2 and rec.analogs.shape == (1501, 0)
    assert rec.analog_rate_hz == 600.0
    for plate, pre in zip(rec.platforms, ["", "1_"], strict=True):
        v = ref[[f"{pre}ground_force_v{a}" for a in "xyz"]].to_numpy()
        p = ref[[f"{pre}ground_force_p{a}" for a in "xyz"]].to_numpy()
        t = ref[[f"{pre}ground_torque_{a}" for a in "xyz"]].to_numpy()
        rot = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
        np.testing.assert_allclose(plate.force, v @ rot.T)
        assert plate.force[:, 2].max() > 600  # vertical, on the body, positive up
        loaded = v[:, 1] >= 20.0
        np.testing.assert_array_equal(np.isnan(plate.cop[:, 0]), ~loaded)
        np.testing.assert_allclose(plate.cop[loaded], (p @ rot.T)[loaded])
        # moment about the origin, written out component by component in OpenSim axes
        m_os = np.column_stack([p[:, 1] * v[:, 2] - p[:, 2] * v[:, 1] + t[:, 0],
                                p[:, 2] * v[:, 0] - p[:, 0] * v[:, 2] + t[:, 1],
                                p[:, 0] * v[:, 1] - p[:, 1] * v[:, 0] + t[:, 2]])
        np.testing.assert_allclose(plate.moment, m_os @ rot.T, atol=1e-9)
        np.testing.assert_allclose(plate.tz[loaded], t[loaded, 1])
        assert plate.rate_hz == 600.0


def test_mot_up_z_keeps_the_file_axes(real_dir):
    rec = read_mot(real_dir / "opensim/subject01_walk_grf.mot", up="z")
    ref = _mot_frame(real_dir / "opensim/subject01_walk_grf.mot", 6)
    np.testing.assert_allclose(rec.platforms[0].force[:, 1], ref["ground_force_vy"])


def test_comma_ik_mot_trusts_data_over_nrows_and_labels_units(real_dir):
    path = real_dir / "opensim/pyomeca_inverse_kin.mot"
    with pytest.warns(CxlabWarning, match="nRows: header says 250 but the file has 88"):
        rec = read_mot(path)
    ref = pd.read_csv(path, skiprows=10, header=0)
    assert rec.analog_labels == list(ref.columns[1:])
    np.testing.assert_array_equal(rec.analogs, ref.iloc[:, 1:].to_numpy())
    units = dict(zip(rec.analog_labels, rec.analog_units, strict=True))
    assert units["thorax_tilt"] == "deg" and units["thorax_tx"] == "m"
    assert units["box_transX"] == "m" and units["elbow_flexion"] == "deg"
    assert rec.analog_rate_hz == 100.0 and rec.meta["time_offset_s"] == 1.56
    assert rec.platforms == [] and rec.meta["up"] is None


def test_sto_inverse_dynamics_units(real_dir):
    rec = _quiet(read_mot, real_dir / "opensim/pyomeca_inverse_dyn.sto")
    units = dict(zip(rec.analog_labels, rec.analog_units, strict=True))
    assert units["thorax_tilt_moment"] == "N.m" and units["thorax_tx_force"] == "N"
    assert rec.meta["format"] == "sto" and rec.analogs.shape == (92, 25)


def test_non_numeric_cell_names_line_and_column(real_dir, tmp_path):
    lines = (real_dir / "opensim/subject01_walk_grf.mot").read_text().splitlines()
    cells = lines[20].split("\t")
    cells[3] = "oops"
    lines[20] = "\t".join(cells)
    bad = tmp_path / "bad.mot"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"bad.mot: ground_force_vz: line 21: is not a "
                                               r"number \(got 'oops'\)"):
        read_mot(bad)


def test_truncated_files_raise_input_format_errors(real_dir, tmp_path):
    src = (real_dir / "opensim/subject01_walk_grf.mot").read_bytes()
    cut = tmp_path / "cut.mot"
    cut.write_bytes(src[:150])  # header only, no endheader
    with pytest.raises(InputFormatError, match=r"cut.mot: has no 'endheader'"):
        read_mot(cut)
    trc = tmp_path / "cut.trc"
    trc.write_bytes((real_dir / "opensim/pyomeca_markers.trc").read_bytes()[:300])
    with pytest.raises(InputFormatError, match=r"cut.trc"):
        read_trc(trc)


def test_incomplete_grf_group_is_rejected(real_dir, tmp_path):
    df = _mot_frame(real_dir / "opensim/subject01_walk_grf.mot", 6).drop(
        columns=["1_ground_force_pz"])
    path = tmp_path / "x.mot"
    path.write_text("x\nendheader\n" + df.to_csv(sep="\t", index=False))
    with pytest.raises(InputFormatError, match=r"1_ground_force: ground reaction force group is "
                                               r"incomplete \(got \['1_ground_force_pz'\]\)"):
        read_mot(path)


def test_bad_up_option_names_allowed_values(real_dir):
    with pytest.raises(ConfigError, match=r"up: is not a valid up.*use one of 'z', 'y'"):
        read_trc(real_dir / "opensim/pyomeca_markers.trc", up="x")


def test_whitespace_delimited_mot_equals_the_tab_original(real_dir, tmp_path):
    src = real_dir / "opensim/subject01_walk_grf.mot"
    spaced = tmp_path / "spaced.mot"
    spaced.write_text("\n".join("   ".join(c for c in line.split("\t") if c)
                                for line in src.read_text().splitlines()) + "\n")
    a, b = read_mot(src), read_mot(spaced)
    for pa, pb in zip(a.platforms, b.platforms, strict=True):
        np.testing.assert_array_equal(pa.force, pb.force)
        np.testing.assert_array_equal(pa.moment, pb.moment)
    assert b.analog_rate_hz == 600.0


def test_a_corrupt_non_utf8_byte_in_the_data_is_an_input_format_error(real_dir, tmp_path):
    lines = (real_dir / "opensim/pyomeca_markers.trc").read_bytes().split(b"\n")
    lines[9] = lines[9][:30] + b"\xca" + lines[9][31:]
    bad = tmp_path / "corrupt.trc"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(InputFormatError, match="line 10"):
        _quiet(read_trc, bad)


def test_a_row_with_an_extra_column_is_an_input_format_error(real_dir, tmp_path):
    lines = (real_dir / "opensim/pyomeca_markers.trc").read_text().splitlines(keepends=True)
    sep = "\t" if "\t" in lines[7] else ","
    lines[7] = lines[7].rstrip("\r\n") + f"{sep}1.0{sep}2.0\n"
    bad = tmp_path / "ragged.trc"
    bad.write_text("".join(lines))
    with pytest.raises(InputFormatError, match="columns"):
        _quiet(read_trc, bad)


def test_a_mot_with_a_header_but_no_rows_is_an_input_format_error(real_dir, tmp_path):
    text = (real_dir / "opensim/subject01_walk_grf.mot").read_text().splitlines(keepends=True)
    end = next(i for i, line in enumerate(text) if line.strip().lower() == "endheader")
    bad = tmp_path / "empty.mot"
    bad.write_text("".join(text[:end + 1]))
    with pytest.raises(InputFormatError):
        _quiet(read_mot, bad)
