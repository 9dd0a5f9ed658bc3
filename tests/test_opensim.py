"""OpenSim readers against independent parses of the real files (ezc3d, pandas, csv module)."""

from __future__ import annotations

import csv
import warnings

import ezc3d
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
    ref = np.array([[float(x) if x else np.nan for x in r[2 : 2 + 3 * len(names)]] for r in body])
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
        np.testing.assert_allclose(plate.force, v @ rot.T, rtol=1e-15, atol=0)
        assert plate.force[:, 2].max() > 600  # vertical, on the body, positive up
        loaded = v[:, 1] >= 20.0
        np.testing.assert_array_equal(np.isnan(plate.cop[:, 0]), ~loaded)
        np.testing.assert_allclose(plate.cop[loaded], (p @ rot.T)[loaded], rtol=1e-15, atol=0)
        # moment about the origin, written out component by component in OpenSim axes
        m_os = np.column_stack(
            [
                p[:, 1] * v[:, 2] - p[:, 2] * v[:, 1] + t[:, 0],
                p[:, 2] * v[:, 0] - p[:, 0] * v[:, 2] + t[:, 1],
                p[:, 0] * v[:, 1] - p[:, 1] * v[:, 0] + t[:, 2],
            ]
        )
        np.testing.assert_allclose(plate.moment, m_os @ rot.T, atol=1e-9)
        np.testing.assert_allclose(plate.tz[loaded], t[loaded, 1], rtol=1e-15, atol=0)
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
    with pytest.raises(
        InputFormatError,
        match=r"bad.mot: ground_force_vz: line 21: is not a "
        r"number \(got 'oops'\)",
    ):
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
        columns=["1_ground_force_pz"]
    )
    path = tmp_path / "x.mot"
    path.write_text("x\nendheader\n" + df.to_csv(sep="\t", index=False))
    with pytest.raises(
        InputFormatError,
        match=r"1_ground_force: ground reaction force group is "
        r"incomplete \(got \['1_ground_force_pz'\]\)",
    ):
        read_mot(path)


def test_bad_up_option_names_allowed_values(real_dir):
    with pytest.raises(ConfigError, match=r"up: is not a valid up.*use one of 'z', 'y'"):
        read_trc(real_dir / "opensim/pyomeca_markers.trc", up="x")


def test_whitespace_delimited_mot_equals_the_tab_original(real_dir, tmp_path):
    src = real_dir / "opensim/subject01_walk_grf.mot"
    spaced = tmp_path / "spaced.mot"
    spaced.write_text(
        "\n".join(
            "   ".join(c for c in line.split("\t") if c) for line in src.read_text().splitlines()
        )
        + "\n"
    )
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
    bad.write_text("".join(text[: end + 1]))
    with pytest.raises(InputFormatError):
        _quiet(read_mot, bad)


# -- issue 12/13: OpenSim text files as OpenSim itself reads them ---------------------------
def _csv_rows(path, sep="\t"):
    with open(path, newline="") as fh:
        return list(csv.reader(fh, delimiter=sep))


def test_nan_in_any_letter_case_is_a_missing_coordinate(real_dir):
    path = real_dir / "opensim/osc_exampleFormat.trc"
    rec = read_trc(path)
    rows = [r for r in _csv_rows(path)[5:] if any(r)]
    # Python's float() reads 'Nan', 'nan', 'NAN' (any case) as NaN: an independent parse
    ref = np.array([[float(x) if x.strip() else np.nan for x in r[2:11]] for r in rows])
    assert rec.marker_labels == ["marker1", "marker2", "marker3"]
    np.testing.assert_array_equal(rec.markers.reshape(5, 9), ref)
    assert np.isnan(rec.markers[2, 1]).all() and np.isnan(rec.markers[0, 0]).all()


def test_trc_rows_with_unnamed_extra_markers_keep_them_numbered(real_dir):
    path = real_dir / "opensim/btk_UpperLimbStatic.trc"
    with pytest.warns(
        CxlabWarning,
        match=r"rows carry 2 marker\(s\) beyond the 34 named; "
        r"kept as M35, M36",
    ):
        rec = read_trc(path)
    rows = [r for r in _csv_rows(path)[5:] if any(c.strip() for c in r)]
    names = [c for c in _csv_rows(path)[3][2:] if c]
    assert len(names) == 34 and rec.marker_labels == [*names, "M35", "M36"]
    width = 2 + 3 * 36
    ref = (
        np.array(
            [[float(x) if x.strip() else np.nan for x in (r + [""] * width)[2:width]] for r in rows]
        )
        / 1000.0
    )
    assert rec.markers.shape == (146, 36, 3)
    np.testing.assert_allclose(rec.markers.reshape(146, -1), ref, rtol=1e-15, atol=0)
    assert np.isfinite(rec.markers[:, :34]).all()  # the named markers are complete
    # M35 is in 9 rows; the one row with 36 triples leaves M35 empty and fills M36
    assert np.isfinite(rec.markers[:, 34]).sum() == 3 * 9
    assert np.isfinite(rec.markers[:, 35]).sum() == 3


def test_header_value_tab_runs_and_a_wrong_num_markers_are_read(real_dir, tmp_path):
    lines = (real_dir / "opensim/osc_exampleFormat.trc").read_text().splitlines()
    lines[2] = "100\t\t100\t\t5\t\t\t7\tm\t100\t1\t5"  # tab runs, NumMarkers 7 for 3 names
    path = tmp_path / "runs.trc"
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(CxlabWarning, match="NumMarkers: header says 7 but the file has 3"):
        rec = read_trc(path)
    assert rec.point_rate_hz == 100.0 and rec.meta["units"] == "m"
    assert rec.markers.shape == (5, 3, 3)


def test_moco_grf_infix_names_give_sides_and_plate_1_is_left(real_dir):
    path = real_dir / "opensim/osc_moco_referenceGRF.sto"
    rec = read_mot(path, up="z")
    ref = _mot_frame(path, 5)
    assert rec.meta["plate_sides"] == ["left", "right"]
    for plate, side in zip(rec.platforms, "lr", strict=True):
        np.testing.assert_array_equal(
            plate.force, ref[[f"ground_force_{side}_v{a}" for a in "xyz"]].to_numpy()
        )
        loaded = np.isfinite(plate.tz)
        np.testing.assert_array_equal(
            plate.tz[loaded], ref[f"ground_torque_{side}_z"].to_numpy()[loaded]
        )


def test_unprefixed_group_beside_l_group_is_the_right_foot(real_dir):
    path = real_dir / "opensim/osc_subject01_walk1_grf_CMC.mot"
    rec = read_mot(path, up="z")
    ref = _mot_frame(path, 5)
    ref.columns = [c.strip() for c in ref.columns]
    assert rec.meta["plate_sides"] == ["left", "right"]
    np.testing.assert_array_equal(rec.platforms[0].force[:, 1], ref["l_ground_force_vy"])
    np.testing.assert_array_equal(rec.platforms[1].force[:, 1], ref["ground_force_vy"])


def test_ambiguous_plate_sides_are_unknown_with_a_warning(real_dir):
    with pytest.warns(CxlabWarning, match="do not say which foot"):
        rec = read_mot(real_dir / "opensim/subject01_walk_grf.mot")
    assert rec.meta["plate_sides"] == [None, None]


def test_repeated_column_names_never_overwrite(real_dir, tmp_path):
    df = _mot_frame(real_dir / "opensim/subject01_walk_grf.mot", 6)
    one = [c for c in df.columns if c.startswith("ground_")]
    body = pd.concat([df[["time"]], df[one], df[[f"1_{c}" for c in one]]], axis=1)
    body.columns = ["time", *one, *one]  # the second plate exported under the same names
    body["hip"] = 1.0
    body["hip2"] = 2.0
    path = tmp_path / "dup.mot"
    path.write_text(
        "dup\nendheader\n" + body.to_csv(sep="\t", index=False).replace("hip2", "hip", 1)
    )
    with pytest.warns(CxlabWarning) as rec_w:
        rec = read_mot(path, up="z")
    assert any("each repeat is read as a further plate" in str(w.message) for w in rec_w)
    assert len(rec.platforms) == 2
    np.testing.assert_array_equal(rec.platforms[0].force[:, 1], df["ground_force_vy"])
    np.testing.assert_array_equal(rec.platforms[1].force[:, 1], df["1_ground_force_vy"])
    assert rec.analog_labels == ["hip", "hip#2"]
    np.testing.assert_array_equal(rec.analogs[0], [1.0, 2.0])


def test_quaternion_storage_reads_as_orientations(real_dir):
    path = real_dir / "opensim/osc_imuOrientations.sto"
    rec = read_mot(path)
    rows = _csv_rows(path)
    end = next(i for i, r in enumerate(rows) if r and r[0] == "endheader")
    names = rows[end + 1][1:]
    assert rec.meta["orientations"] == names and len(names) == 8
    ref = np.array(
        [[float(v) for cell in r[1:] for v in cell.split(",")] for r in rows[end + 2 :] if r]
    )
    assert rec.analog_labels[:4] == ["torso_imu_qw", "torso_imu_qx", "torso_imu_qy", "torso_imu_qz"]
    np.testing.assert_array_equal(rec.analogs, ref)
    assert set(rec.analog_units) == {"1"}
    q = rec.analogs.reshape(len(rec.analogs), -1, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=2), 1.0, atol=1e-9)


def test_a_csv_that_is_a_mot_by_content_is_read_as_one(real_dir, tmp_path):
    from cxlab.io import format_of, read

    src = real_dir / "opensim/pyomeca_inverse_kin.mot"
    path = tmp_path / "ik_export.csv"
    path.write_bytes(src.read_bytes())
    assert format_of(path) == "mot"
    a, b = _quiet(read, path), _quiet(read_mot, src)
    np.testing.assert_array_equal(a.analogs, b.analogs)
    assert a.analog_units == b.analog_units and a.meta["format"] == "mot"


def test_a_zero_byte_trc_is_refused_as_empty(real_dir):
    from cxlab.io import read

    for fn in (read, read_trc):
        with pytest.raises(InputFormatError, match=r"btk_Empty.trc: is empty \(0 bytes\)"):
            fn(real_dir / "edge_cases/btk_Empty.trc")


def _swap_rows(lines, a, b):
    lines = list(lines)
    lines[a], lines[b] = lines[b], lines[a]
    return lines


def test_swapped_mot_rows_are_sorted_with_a_warning(real_dir, tmp_path):
    src = real_dir / "opensim/subject01_walk_grf.mot"
    lines = src.read_text().splitlines()
    path = tmp_path / "swapped.mot"
    path.write_text("\n".join(_swap_rows(lines, 20, 21)) + "\n")
    with pytest.warns(CxlabWarning, match=r"time: line 22: time .* comes after .* sorted"):
        rec = read_mot(path)
    ref = _quiet(read_mot, src)
    np.testing.assert_array_equal(rec.platforms[0].force, ref.platforms[0].force)


def test_a_repeated_time_is_refused_naming_both_lines(real_dir, tmp_path):
    lines = (real_dir / "opensim/subject01_walk_grf.mot").read_text().splitlines()
    lines[21] = lines[20]
    path = tmp_path / "dup_time.mot"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputFormatError,
        match=r"dup_time.mot: time: line 22: time .* repeats "
        r"line 21",
    ):
        _quiet(read_mot, path)


def test_swapped_trc_rows_are_sorted_with_a_warning(real_dir, tmp_path):
    src = real_dir / "opensim/subject01_walk_marker_trajectories.trc"
    lines = src.read_text().splitlines()
    path = tmp_path / "swapped.trc"
    path.write_text("\n".join(_swap_rows(lines, 9, 10)) + "\n")
    with pytest.warns(CxlabWarning, match="sorted by time"):
        rec = read_trc(path)
    np.testing.assert_array_equal(rec.markers, read_trc(src).markers)


@pytest.mark.parametrize("bad", ["1e308", "inf", "-Infinity", "1e400"])
def test_infinite_or_absurd_values_are_refused_naming_column_and_row(real_dir, tmp_path, bad):
    lines = (real_dir / "opensim/subject01_walk_grf.mot").read_text().splitlines()
    cells = lines[20].split("\t")
    cells[2] = bad  # ground_force_vy, data row 14
    lines[20] = "\t".join(cells)
    path = tmp_path / "huge.mot"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"huge.mot: ground_force_vy: .*(row 14|line 21)"):
        _quiet(read_mot, path)
    trc_lines = (real_dir / "opensim/osc_exampleFormat.trc").read_text().splitlines()
    trc_cells = trc_lines[6].split("\t")
    trc_cells[6] = bad
    trc_lines[6] = "\t".join(trc_cells)
    trc = tmp_path / "huge.trc"
    trc.write_text("\n".join(trc_lines) + "\n")
    with pytest.raises(InputFormatError, match=r"huge.trc: marker2.Y: .*(row 2|line 7)"):
        read_trc(trc)


def test_a_marker_a_kilometre_away_is_refused(real_dir, tmp_path):
    lines = (real_dir / "opensim/osc_exampleFormat.trc").read_text().splitlines()
    lines[6] = lines[6].replace("-0.273", "-27300", 1)  # metres
    path = tmp_path / "far.trc"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"far.trc: marker1.X: line 7: -27300 m is beyond"):
        read_trc(path)


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "2.5"])
def test_a_non_count_num_frames_is_a_clean_error(real_dir, tmp_path, value):
    lines = (real_dir / "opensim/osc_exampleFormat.trc").read_text().splitlines()
    lines[2] = f"100\t100\t{value}\t3\tm\t100\t1\t5"
    path = tmp_path / "inf.trc"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputFormatError,
        match=rf"inf.trc: NumFrames: is not a count \(got "
        rf"'{value}'\)",
    ):
        read_trc(path)
