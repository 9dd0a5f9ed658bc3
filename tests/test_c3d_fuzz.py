"""Truncated and bit-flipped real C3D files give a Recording or a CxlabError, nothing else.

Seeded (216 cases).  The fuzz runs on ``engine="fast"`` and, for subsets,
``engine="auto"`` and ``engine="ezc3d"``: both hand a file to ezc3d only after
cxlab's own parser has validated its structure, and ezc3d runs in a child
process, so even a crash in its C++ code is a CxlabError here, never the end of
the test process.  The ROTATION file goes to ezc3d under ``auto``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cxlab._check import CxlabError
from cxlab.io.c3d import read_c3d
from cxlab.io.recording import Recording

FILES = [
    "c3d/c3dorg_Eb015pi.c3d",  # Intel int16, 2 TYPE-2 plates
    "c3d/c3dorg_TYPE-4.C3D",  # DEC int16, TYPE-4 with CAL_MATRIX
    "c3d/c3dorg_FP1.C3D",  # Intel float, Kistler TYPE-3
    "edge_cases/btk_PiG_Calibration-FlatFoot-One.c3d",  # Vicon float, angles, events group
    "edge_cases/c3dorg_sgi_int.c3d",  # MIPS big-endian
    "c3d/ezc3d_C3DRotationExample.c3d",  # ROTATION group: auto defers to ezc3d
]


def _cases(data: bytes, rng: np.random.Generator, n: int) -> list[bytes]:
    out = []
    param_end = min(len(data), 512 * (data[0] + data[512 * (data[0] - 1) + 2]))
    names = [
        b"USED",
        b"SCALE",
        b"RATE",
        b"FRAMES",
        b"OFFSET",
        b"TIMES",
        b"ZERO",
        b"TYPE",
        b"CHANNEL",
        b"ORIGIN",
        b"LABELS",
        b"UNITS",
        b"GEN_SCALE",
        b"CORNERS",
    ]
    for k in range(n):
        kind = k % 5
        if kind == 4:  # a parameter's type byte set to another type (-1, 1, 2 or 4)
            b = bytearray(data)
            name = names[int(rng.integers(0, len(names)))]
            at = data.find(name, 512 * (data[0] - 1), param_end)
            if at >= 0:
                b[at + len(name) + 2] = int(rng.choice([0xFF, 1, 2, 4]))
            out.append(bytes(b))
            continue
        if kind == 0:  # truncation anywhere
            out.append(data[: int(rng.integers(0, len(data)))])
        elif kind == 1:  # flips in the header and parameter section (the fragile part)
            b = bytearray(data)
            for pos in rng.integers(0, param_end, size=int(rng.integers(1, 6))):
                b[pos] ^= int(rng.integers(1, 256))
            out.append(bytes(b))
        elif kind == 2:  # a random byte set to an extreme value in the parameter section
            b = bytearray(data)
            b[int(rng.integers(0, param_end))] = int(rng.choice([0, 0x7F, 0x80, 0xFF]))
            out.append(bytes(b))
        elif kind == 3:  # flips anywhere, including the data block
            b = bytearray(data)
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 20))):
                b[pos] ^= int(rng.integers(1, 256))
            out.append(bytes(b))
    return out


def _check(path, engine):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rec = read_c3d(path, engine=engine)
        except CxlabError as exc:
            text = str(exc)
            assert "\n" not in text and text.startswith(path.name)
            return "error"
    assert isinstance(rec, Recording)
    assert rec.markers.ndim == 3 and rec.markers.shape[2] == 3
    assert rec.residuals.shape == rec.markers.shape[:2]
    assert rec.analogs.ndim == 2 and rec.analogs.shape[1] == len(rec.analog_labels)
    for p in rec.platforms:
        assert p.force.shape == p.cop.shape == (rec.analogs.shape[0], 3)
    return "ok"


@pytest.mark.parametrize("name", FILES)
def test_damaged_files_never_raise_anything_but_cxlab_errors(real_dir, tmp_path, name):
    data = (real_dir / name).read_bytes()
    rng = np.random.default_rng(20260 + FILES.index(name))
    outcomes = []
    for i, case in enumerate(_cases(data, rng, 36)):
        path = tmp_path / f"case{i}.c3d"
        path.write_bytes(case)
        engine = (
            "fast"
            if "sgi" in name
            else "auto"
            if i % 6 == 5
            else "ezc3d"
            if i % 18 == 4
            else "fast"
        )
        outcomes.append(_check(path, engine))
    # the fuzz must exercise both outcomes, or it proves nothing
    assert "error" in outcomes and "ok" in outcomes
