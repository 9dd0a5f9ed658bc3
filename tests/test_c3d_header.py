"""The fast decoder on C3D files built byte by byte from the C3D User Guide layout.

ezc3d only writes Intel float files, so int16 storage with ``ANALOG:FORMAT
"UNSIGNED"``, per-channel ``SCALE2``/``LABELS2`` continuations, big-endian
(MIPS) words and a float ``POINT:FRAMES`` are checked here against values
chosen by the test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cxlab._check import CxlabWarning, InputFormatError
from cxlab.io._c3d_header import dec_to_float32
from cxlab.io.c3d import read_c3d

N_FRAMES, N_SUB = 12, 3


def _param(order, gid, name, dtype, dims, values) -> bytes:
    if dtype == -1:
        data = b"".join(v.ljust(dims[0]).encode() for v in values)
    else:
        code = {1: "u1", 2: "i2", 4: "f4"}[dtype]
        data = np.asarray(values).astype(order + code).tobytes()
    body = bytes([dtype & 0xFF, len(dims), *dims]) + data + b"\x00"
    return (
        bytes([len(name), gid])
        + name.encode()
        + np.array([2 + len(body)], order + "i2").tobytes()
        + body
    )


def _group(order, gid, name) -> bytes:
    offset = np.array([3], order + "i2").tobytes()
    return bytes([len(name), (-gid) & 0xFF]) + name.encode() + offset + b"\x00"


def c3d_bytes(*, order, points, analogs, frames_param=None, storage="int", offset_a=None) -> bytes:
    """A C3D: header, parameters (blocks 2-3), data from block 4; int16 or float32 words.

    Float files: POINT:SCALE = -0.1, the 4th word a float, analog FORMAT signed.
    ``offset_a``: channel A's ANALOG:OFFSET (default -32768 for int16 words, 7 for float).
    """
    scale = 0.1 if storage == "int" else -0.1
    offset_a = (-32768 if storage == "int" else 7) if offset_a is None else offset_a
    proc = {"<": 84, ">": 86}[order]
    n_pts, n_ch = points.shape[1], analogs.shape[1]
    header = np.zeros(256, order + "u2")
    header[1], header[2], header[3], header[4] = n_pts, n_ch * N_SUB, 1, N_FRAMES
    header[8], header[9] = 4, N_SUB
    hb = bytearray(header.tobytes())
    hb[0], hb[1] = 2, 0x50
    hb[12:16] = np.array([scale], order + "f4").tobytes()
    hb[20:24] = np.array([50.0], order + "f4").tobytes()
    frames = frames_param or (2, (), [N_FRAMES])
    recs = [
        _group(order, 1, "POINT"),
        _param(order, 1, "USED", 2, (), [n_pts]),
        _param(order, 1, "SCALE", 4, (), [scale]),
        _param(order, 1, "RATE", 4, (), [50.0]),
        _param(order, 1, "FRAMES", *frames),
        _param(order, 1, "UNITS", -1, (2,), ["mm"]),
        _param(order, 1, "LABELS", -1, (4, n_pts), [f"M{i}" for i in range(n_pts)]),
        _group(order, 2, "ANALOG"),
        _param(order, 2, "USED", 2, (), [n_ch]),
        _param(order, 2, "RATE", 4, (), [150.0]),
        _param(order, 2, "GEN_SCALE", 4, (), [2.0]),
        _param(order, 2, "FORMAT", -1, (8,), ["UNSIGNED" if storage == "int" else "SIGNED"]),
        _param(order, 2, "LABELS", -1, (2, 2), ["A", "B"]),
        _param(order, 2, "LABELS2", -1, (2, 1), ["C"]),
        _param(order, 2, "UNITS", -1, (1, 3), ["V", "V", "N"]),
        _param(order, 2, "SCALE", 4, (2,), [0.5, 0.25]),
        _param(order, 2, "SCALE2", 4, (1,), [0.125]),
        _param(order, 2, "OFFSET", 2, (2,), [offset_a, 100]),
        _param(order, 2, "OFFSET2", 2, (1,), [0]),
    ]
    params = bytes([1, 0x50, 2, proc]) + b"".join(recs)
    assert len(params) < 1024
    params = params.ljust(1024, b"\x00")
    word, aword = (order + "i2", order + "u2") if storage == "int" else (order + "f4",) * 2
    frame = np.dtype([("p", word, (n_pts, 4)), ("a", aword, (N_SUB, n_ch))])
    data = np.zeros(N_FRAMES, frame)
    data["p"] = points.reshape(N_FRAMES, n_pts, 4)
    data["a"] = analogs.reshape(N_FRAMES, N_SUB, n_ch)
    return bytes(hb) + params + data.tobytes()


def _truth():
    rng = np.random.default_rng(5)
    pts = rng.integers(-20000, 20000, size=(N_FRAMES, 2, 4)).astype(np.int16)
    pts[..., 3] = (3 << 8) | 7  # camera mask 3, residual 7 x 0.1 mm
    pts[4, 1, 3] = -1  # invalid
    analogs = rng.integers(0, 65536, size=(N_FRAMES * N_SUB, 3)).astype(np.uint16)
    return pts, analogs


@pytest.mark.parametrize("order", ["<", ">"])
def test_int16_unsigned_analogs_and_continued_parameters(tmp_path, order):
    pts, analogs = _truth()
    path = tmp_path / "x.c3d"
    path.write_bytes(c3d_bytes(order=order, points=pts, analogs=analogs))
    rec = read_c3d(path, engine="fast")
    assert rec.meta["processor"] == {"<": "intel", ">": "mips"}[order]
    expected = pts[..., :3] * 0.1 * 1e-3
    expected[4, 1] = np.nan
    np.testing.assert_allclose(rec.markers, expected, rtol=1e-6)
    res = np.full((N_FRAMES, 2), 7 * 0.1 * 1e-3)
    res[4, 1] = np.nan
    np.testing.assert_allclose(rec.residuals, res, rtol=1e-6)
    assert rec.analog_labels == ["A", "B", "C"] and rec.analog_units == ["V", "V", "N"]
    offset = np.array([32768.0, 100.0, 0.0])
    scale = np.array([0.5, 0.25, 0.125]) * 2.0
    np.testing.assert_allclose(rec.analogs, (analogs - offset) * scale, rtol=1e-7)
    assert rec.analog_rate_hz == 150.0 and rec.point_rate_hz == 50.0


def test_point_frames_stored_as_float_is_honoured(tmp_path):
    pts, analogs = _truth()
    path = tmp_path / "f.c3d"
    path.write_bytes(
        c3d_bytes(order="<", points=pts, analogs=analogs, frames_param=(4, (), [float(N_FRAMES)]))
    )
    assert read_c3d(path, engine="fast").n_frames == N_FRAMES


def test_point_frames_beyond_a_consistent_header_range_is_a_warning_not_a_refusal(tmp_path):
    pts, analogs = _truth()
    path = tmp_path / "t.c3d"
    path.write_bytes(
        c3d_bytes(order="<", points=pts, analogs=analogs, frames_param=(2, (), [N_FRAMES + 5]))
    )
    with pytest.warns(CxlabWarning, match=f"POINT:FRAMES says {N_FRAMES + 5} frames"):
        rec = read_c3d(path, engine="fast")
    np.testing.assert_allclose(rec.markers, read_c3d(tmp_path / "t.c3d").markers)
    assert rec.n_frames == N_FRAMES


def test_more_frames_claimed_than_stored_is_a_refusal_naming_the_count(tmp_path):
    pts, analogs = _truth()
    path = tmp_path / "t.c3d"
    path.write_bytes(c3d_bytes(order="<", points=pts, analogs=analogs)[:-10])
    with pytest.raises(
        InputFormatError,
        match=r"t\.c3d: data: header frame range declares "
        f"{N_FRAMES} frames",
    ):
        read_c3d(path, engine="fast")


def test_vax_f_floating_conversion_matches_hand_worked_values():
    # VAX F words (hex, first word holds sign/exponent): 1.0 = 0x4080 0x0000,
    # -2.5 = 0xC120 0x0000, 0.1 ~ 0x3ECC 0xCCCD; zero exponent = 0.
    words = np.array(
        [[0x4080, 0x0000], [0xC120, 0x0000], [0x3ECC, 0xCCCD], [0x0000, 0x1234]], dtype="<u2"
    )
    raw = np.frombuffer(words.tobytes(), dtype="<u4")
    out = dec_to_float32(raw)
    np.testing.assert_allclose(out, [1.0, -2.5, 0.1, 0.0], rtol=1e-7)


@pytest.mark.parametrize("order", ["<", ">"])
def test_float_storage_in_both_byte_orders(tmp_path, order):
    """Float words are positions in mm as stored; the 4th float encodes mask * 256 + residual."""
    rng = np.random.default_rng(9)
    pts = rng.uniform(-2000, 2000, size=(N_FRAMES, 2, 4)).astype(np.float32)
    pts[..., 3] = 3 * 256 + 7
    pts[2, 0, 3] = -1.0
    analogs = rng.normal(0, 100, size=(N_FRAMES * N_SUB, 3)).astype(np.float32)
    path = tmp_path / "f.c3d"
    path.write_bytes(c3d_bytes(order=order, points=pts, analogs=analogs, storage="float"))
    rec = read_c3d(path, engine="fast")
    assert rec.meta["storage"] == "float"
    expected = pts[..., :3].astype(float) * 1e-3
    expected[2, 0] = np.nan
    np.testing.assert_array_equal(rec.markers, expected)
    res = np.full((N_FRAMES, 2), 7 * 0.1 * 1e-3)
    res[2, 0] = np.nan
    np.testing.assert_allclose(rec.residuals, res, rtol=1e-6)
    offset = np.array([7.0, 100.0, 0.0])
    scale = np.array([0.5, 0.25, 0.125]) * 2.0
    np.testing.assert_allclose(rec.analogs, (analogs - offset) * scale, rtol=1e-12)


def test_a_channel_at_its_a_d_rail_is_a_warning_naming_it(tmp_path):
    """README "Never silently wrong": a channel pinned at 65,535 counts in 4 of its 36
    samples (saturated or disconnected) is a warning on the recording naming the channel;
    the same file without the pinned samples has none (its random markers' speed warnings
    aside)."""
    pts, analogs = _truth()

    def rail_warnings(name):
        path = tmp_path / name
        path.write_bytes(c3d_bytes(order="<", points=pts, analogs=analogs))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", CxlabWarning)
            rec = read_c3d(path, engine="fast")
        assert [str(w.message) for w in seen if "A/D rail" in str(w.message)] == [
            w for w in rec.warnings if "A/D rail" in w
        ]  # warned and kept on the recording
        return [w for w in rec.warnings if "A/D rail" in w]

    assert rail_warnings("clean.c3d") == []
    analogs[10:14, 1] = 65535
    (w,) = rail_warnings("rail.c3d")
    assert "analog channel 'B'" in w and "in 4 of 36 samples" in w, w


def test_a_16_bit_offset_in_a_float_file_is_read_unsigned_as_ezc3d_does(tmp_path):
    """README "Every real C3D": float words holding raw 0..65,535 counts with OFFSET 32768
    stored in a signed int16 parameter (-32768) are offset by +32768, not -32768 (which
    would put a quiet channel 65,536 counts high)."""
    rng = np.random.default_rng(3)
    pts = rng.uniform(-2000, 2000, size=(N_FRAMES, 2, 4)).astype(np.float32)
    pts[..., 3] = 3 * 256 + 7
    analogs = rng.integers(32000, 33500, size=(N_FRAMES * N_SUB, 3)).astype(np.float32)
    path = tmp_path / "counts.c3d"
    path.write_bytes(
        c3d_bytes(order="<", points=pts, analogs=analogs, storage="float", offset_a=-32768)
    )
    rec = read_c3d(path, engine="fast")
    offset = np.array([32768.0, 100.0, 0.0])
    scale = np.array([0.5, 0.25, 0.125]) * 2.0
    np.testing.assert_allclose(rec.analogs, (analogs - offset) * scale, rtol=1e-12)
    assert np.abs(rec.analogs[:, 0]).max() < 1000  # quiet around zero, not 65,536 counts up
