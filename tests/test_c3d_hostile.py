"""Hostile C3D files: declared counts, a C++ abort in ezc3d, surrogate labels, absurd values.

Each case is made here from a real file by patching one parameter (the tiny walker below
finds its bytes), so the only defect is the one under test.
"""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

from cxlab._check import CxlabWarning, InputFormatError
from cxlab.io._c3d_ezc3d import _run_child
from cxlab.io._c3d_header import BLOCK
from cxlab.io.c3d import read_c3d


def _param_offset(buf: bytes, group: str, name: str) -> tuple[int, int]:
    """(offset of the data, n_dims) of GROUP:NAME in an Intel C3D's parameter section."""
    pos = (buf[0] - 1) * BLOCK + 4
    groups: dict[int, str] = {}
    while True:
        n = abs(buf[pos] - 256 if buf[pos] > 127 else buf[pos])
        gid = buf[pos + 1] - 256 if buf[pos + 1] > 127 else buf[pos + 1]
        if n == 0:
            raise KeyError(name)
        pname = buf[pos + 2 : pos + 2 + n].decode("latin-1").upper()
        step = int(np.frombuffer(buf, "<i2", 1, pos + 2 + n)[0])
        body = pos + 4 + n
        if gid < 0:
            groups[-gid] = pname
        elif groups.get(gid) == group and pname == name:
            return body + 2 + buf[body + 1], buf[body + 1]
        if step == 0:
            raise KeyError(name)
        pos += 2 + n + step


def _patched(src: Path, dst: Path, group: str, name: str, raw: bytes) -> Path:
    buf = bytearray(src.read_bytes())
    at, _ = _param_offset(bytes(buf), group, name)
    buf[at : at + len(raw)] = raw
    dst.write_bytes(bytes(buf))
    return dst


def _i2(v: int) -> bytes:
    return np.array([v], "<i2").tobytes()


def test_a_force_plate_count_bomb_is_refused_naming_the_parameter_without_allocating(
    real_dir, tmp_path
):
    src = real_dir / "c3d/c3dorg_Eb015pi.c3d"  # 156 KB, 2 plates
    bad = _patched(src, tmp_path / "bomb.c3d", "FORCE_PLATFORM", "USED", _i2(32767))
    tracemalloc.start()
    try:
        with pytest.raises(
            InputFormatError,
            match=r"FORCE_PLATFORM:USED: declares 32767 force "
            r"plates but the plate parameters describe "
            r"at most 2",
        ):
            read_c3d(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * src.stat().st_size  # no 7.5 GB: a few copies of the file at most
    one = _patched(src, tmp_path / "one.c3d", "FORCE_PLATFORM", "USED", _i2(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        assert len(read_c3d(one).platforms) == 1  # a smaller count is still honoured


def test_point_used_beyond_the_file_gives_way_to_header_labels_and_length(real_dir, tmp_path):
    src = real_dir / "c3d/c3dorg_Eb015pi.c3d"
    bad = _patched(src, tmp_path / "n.c3d", "POINT", "USED", _i2(32767))
    with pytest.warns(CxlabWarning, match="POINT:USED says 32767 points but the header says 26"):
        rec = read_c3d(bad)
    np.testing.assert_array_equal(rec.markers, read_c3d(src).markers)
    frames = _patched(src, tmp_path / "f.c3d", "POINT", "FRAMES", _i2(30000))
    with pytest.warns(CxlabWarning, match="POINT:FRAMES says 30000 frames"):
        assert read_c3d(frames).n_frames == 450  # the consistent header wins


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("USED", _i2(32767), r"ANALOG:USED: one frame of 26 points and 32767 analog channels x 4"),
        ("RATE", np.array([2e6], "<f4").tobytes(), r"ANALOG:RATE: one frame .* x 40000 samples"),
        (
            "USED",
            _i2(100),
            r"data: header frame range declares 450 frames .*100 analog channels"
            r" x 4\) from block 11 but the file holds only 150",
        ),
    ],
)
def test_declared_counts_are_checked_against_the_file_length(real_dir, tmp_path, name, raw, match):
    bad = _patched(real_dir / "c3d/c3dorg_Eb015pi.c3d", tmp_path / "n.c3d", "ANALOG", name, raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        with pytest.raises(InputFormatError, match=match):
            read_c3d(bad)


def test_ezc3d_abort_cannot_kill_the_caller(real_dir, tmp_path):
    """ROTATION group + POINT:FRAMES = -32768: ezc3d 1.7 aborts (SIGABRT) on this file."""
    bad = _patched(
        real_dir / "c3d/ezc3d_C3DRotationExample.c3d",
        tmp_path / "rot.c3d",
        "POINT",
        "FRAMES",
        _i2(-32768),
    )
    with pytest.raises(InputFormatError, match=r"crashed \(SIGABRT\)"):
        _run_child(bad)  # the child dies; this process carries on
    with warnings.catch_warnings():  # the checks refuse it before ezc3d, naming the parameter
        warnings.simplefilter("ignore", CxlabWarning)
        with pytest.raises(
            InputFormatError,
            match=r"POINT:FRAMES: is negative .* 340 "
            r"frames; ezc3d aborts",
        ):
            read_c3d(bad, engine="ezc3d")
        # the fast engine decodes ROTATION itself and trusts the consistent header range
        rec = read_c3d(bad, engine="auto")
    assert rec.meta["engine"] == "fast" and rec.n_frames == 340
    assert rec.rotations is not None and rec.rotations.matrices.shape[0] == 340


def test_undecodable_label_bytes_are_read_as_latin1_by_both_engines(real_dir, tmp_path):
    src = real_dir / "c3d/c3dorg_Eb015pi.c3d"
    buf = src.read_bytes()
    at, _ = _param_offset(buf, "POINT", "LABELS")
    raw = bytearray(buf)
    raw[at : at + 4] = b"\xed\xa0\x80X"  # a UTF-8-encoded surrogate: invalid UTF-8
    (tmp_path / "s.c3d").write_bytes(bytes(raw))
    for engine in ("fast", "ezc3d"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CxlabWarning)
            rec = read_c3d(tmp_path / "s.c3d", engine=engine)
        label = rec.marker_labels[0]
        assert label.encode("utf-8") and label.startswith("\xed\xa0\x80X")
        rec.to_tables("0123456789abcdef")  # sorting labels as UTF-8 no longer raises


def test_absurd_point_scale_is_a_warning_on_the_recording(real_dir, tmp_path):
    """POINT:SCALE 1e6 on an int16 file puts markers tens of thousands of km away."""
    bad = _patched(
        real_dir / "c3d/c3dorg_Eb015pi.c3d",
        tmp_path / "scale.c3d",
        "POINT",
        "SCALE",
        np.array([1e6], "<f4").tobytes(),
    )
    with pytest.warns(CxlabWarning, match="disagrees with the header's scale factor"):
        rec = read_c3d(bad)
    assert np.nanmax(np.abs(rec.markers)) > 1e6
    assert any("more than any capture volume" in w for w in rec.warnings)


def test_marker_spike_and_absurd_force_are_warnings(real_dir, tmp_path):
    from cxlab.io.c3d import marker_findings

    rec = read_c3d(real_dir / "c3d/opensim_walking2.c3d")
    m = rec.markers.copy()
    m[600, 3] += [1.0, 0, 0]  # 1 m in one 4 ms frame: 250 m/s
    with pytest.warns(CxlabWarning, match="faster than 30 m/s"):
        found = marker_findings(m, rec.marker_labels, rate_hz=rec.point_rate_hz)
    assert len(found) == 1 and f"'{rec.marker_labels[3]}' at 25" in found[0]
    assert marker_findings(rec.markers, rec.marker_labels, rate_hz=rec.point_rate_hz) == []
    p = rec.platforms[0]
    p.force = p.force * 40  # 38 kN
    assert any("beyond anything a person produces" in g for g in _plate_findings(p))


def _plate_findings(p):
    """plate_findings of opensim_walking2.c3d's plate 1 (0.5 x 0.6 m, plate z down)."""
    from cxlab.io.forceplates import plate_findings

    rot = np.column_stack([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
    centre, up = p.corners.mean(axis=0), np.array([0.0, 0.0, 1.0])
    return plate_findings(p, half=np.array([0.25, 0.3]), rot=rot, centre=centre, up=up)


def test_a_stance_force_pointing_down_and_a_cop_off_the_plate_are_findings(real_dir):
    """README "Never silently wrong": the walk's plate passes both checks as recorded; its
    force negated, or its centre of pressure moved 1 m, is a finding naming the fault."""
    p = read_c3d(real_dir / "c3d/opensim_walking2.c3d").platforms[0]
    assert _plate_findings(p) == []
    force, cop = p.force, p.cop
    p.force = -force
    assert any(g.endswith("stance force points down") for g in _plate_findings(p))
    p.force, p.cop = force, cop + np.array([1.0, 0.0, 0.0])
    (off,) = _plate_findings(p)
    assert off.startswith("centre of pressure is off the plate in 100% of the samples"), off


def test_marker_checks_skip_gaps_infinities_and_markers_never_seen(real_dir):
    """The speed and reach checks ignore (0, 0, 0) gaps, NaN, an infinite coordinate (the
    fast engine never writes one; it must not count as reach) and a marker never seen."""
    from cxlab.io.c3d import marker_findings

    rec = read_c3d(real_dir / "c3d/opensim_walking2.c3d")
    m = rec.markers.copy()
    m[600:610, 3] = 0.0  # a Qualisys-style gap: the steps into and out of it are no speed
    m[:, 5] = np.nan  # a marker never seen
    m[700, 7, 1] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error", CxlabWarning)
        assert marker_findings(m, rec.marker_labels, rate_hz=rec.point_rate_hz) == []
    m[650, 3] = [101.0, 0.0, 0.0]  # a coordinate beyond any capture volume
    with pytest.warns(CxlabWarning, match="1 markers have coordinates up to 101 m"):
        found = marker_findings(m, rec.marker_labels, rate_hz=rec.point_rate_hz)
    assert len(found) == 1 and rec.marker_labels[3] in found[0]
    assert marker_findings(np.full((5, 2, 3), np.nan), ["a", "b"], rate_hz=100.0) == []


def test_plate_cross_product_is_numpys_bit_for_bit(real_dir):
    from cxlab.io.forceplates import _cross

    rec = read_c3d(real_dir / "c3d/opensim_walking2.c3d")
    f, m = rec.platforms[0].force, rec.platforms[0].moment
    assert np.array_equal(_cross(f, m), np.cross(f, m), equal_nan=True)
    assert np.array_equal(_cross(f, m[0]), np.cross(f, m[0]), equal_nan=True)
    assert np.array_equal(_cross(f[0], m[0]), np.cross(f[0], m[0]))


def test_a_frame_larger_than_the_file_is_refused_even_with_no_frames(real_dir, tmp_path):
    src = real_dir / "c3d/c3dorg_Eb015pi.c3d"
    bad = _patched(src, tmp_path / "a.c3d", "ANALOG", "USED", _i2(32767))
    raw = bytearray(bad.read_bytes())
    raw[6:10] = np.array([2, 1], "<u2").tobytes()  # header first frame 2, last 1: no frames
    bad.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        with pytest.raises(
            InputFormatError,
            match=r"ANALOG:USED: one frame of 26 points and "
            r"32767 analog channels x 4 samples",
        ):
            read_c3d(bad)
