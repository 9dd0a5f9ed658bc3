"""The read() dispatch: format by content then extension, options checked, clear errors."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

import cxlab.io as cio
from cxlab._check import ConfigError, CxlabWarning, InputFormatError


def test_format_of_every_real_file(real_dir):
    found = {
        p.relative_to(real_dir).as_posix(): cio.format_of(p)
        for p in sorted(real_dir.rglob("*"))
        if p.is_file()
    }
    assert all(v == "c3d" for k, v in found.items() if k.lower().endswith(".c3d"))
    assert found["opensim/pyomeca_markers.trc"] == "trc"
    assert found["opensim/subject01_walk_grf.mot"] == "mot"
    assert found["opensim/pyomeca_inverse_dyn.sto"] == "sto"
    assert found["SOURCES.md"] is None


def test_c3d_is_recognised_by_key_byte_whatever_the_extension(real_dir, tmp_path):
    renamed = tmp_path / "trial.csv"
    shutil.copy(real_dir / "c3d/c3dorg_TYPE-2.C3D", renamed)
    assert cio.format_of(renamed) == "c3d"
    noext = tmp_path / "trial"
    shutil.copy(real_dir / "c3d/c3dorg_TYPE-2.C3D", noext)
    assert cio.format_of(noext) == "c3d"


def test_text_formats_are_recognised_by_content_without_extension(real_dir, tmp_path):
    for src, fmt in [
        ("opensim/pyomeca_markers.trc", "trc"),
        ("opensim/subject01_walk_grf.mot", "mot"),
    ]:
        dst = tmp_path / f"export_{fmt}.txt"
        shutil.copy(real_dir / src, dst)
        assert cio.format_of(dst) == fmt


def test_csv_header_starting_with_p_is_not_mistaken_for_c3d(tmp_path):
    path = tmp_path / "fp.csv"
    path.write_text("APtime,left_fz\n")  # 'P' at offset 1, printable, .csv
    assert cio.format_of(path) == "csv"


def test_read_dispatches_and_matches_the_direct_reader(real_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        a = cio.read(real_dir / "opensim/subject01_walk_grf.mot")
        b = cio.read_mot(real_dir / "opensim/subject01_walk_grf.mot")
        c = cio.read(real_dir / "opensim/subject01_walk_marker_trajectories.trc", up="y")
    np.testing.assert_array_equal(a.platforms[1].force, b.platforms[1].force)
    assert c.meta["format"] == "trc" and c.meta["up"] == "y"
    assert isinstance(a, cio.Recording)


def test_unknown_format_names_file_and_supported_formats(real_dir):
    with pytest.raises(
        InputFormatError,
        match=r"SOURCES.md: is not a supported recording format "
        r"\(got '.md'\); supported: C3D \(.c3d\), TRC",
    ):
        cio.read(real_dir / "SOURCES.md")


def test_c3d_named_file_that_is_not_c3d_says_its_content_is_not_c3d(tmp_path):
    fake = tmp_path / "trial.c3d"
    fake.write_text("time,fz\n0,1\n")
    with pytest.raises(InputFormatError) as e:
        cio.read(fake)
    text = str(e.value)
    assert "not a supported recording format" not in text
    assert "trial.c3d: is not a C3D file" in text
    assert "0x50" in text and "offset 1" in text
    assert "re-export" in text


def test_unknown_option_lists_the_readers_options(real_dir):
    with pytest.raises(ConfigError, match="mapping: is not an option of read_trc; use one of up"):
        cio.read(real_dir / "opensim/pyomeca_markers.trc", mapping={})


def test_missing_file_is_an_input_format_error(tmp_path):
    with pytest.raises(InputFormatError, match=r"nope.trc: cannot be read"):
        cio.read(tmp_path / "nope.trc")


def test_read_c3d_is_exported_lazily_and_read_dispatches_to_it(real_dir, tmp_path):
    assert "read_c3d" in cio.__all__
    renamed = tmp_path / "trial.dat"
    shutil.copy(real_dir / "c3d/c3dorg_TYPE-2.C3D", renamed)
    a = cio.read(renamed)
    b = cio.read_c3d(real_dir / "c3d/c3dorg_TYPE-2.C3D")
    assert a.meta["format"] == "c3d"
    np.testing.assert_array_equal(a.markers, b.markers)
    np.testing.assert_array_equal(a.platforms[0].force, b.platforms[0].force)


def test_broken_c3d_is_an_input_format_error(real_dir, tmp_path):
    cut = tmp_path / "cut.c3d"
    cut.write_bytes((real_dir / "c3d/c3dorg_TYPE-2.C3D").read_bytes()[:3000])
    with pytest.raises(InputFormatError, match=r"cut\.c3d"):
        cio.read(cut)
