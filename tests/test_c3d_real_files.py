"""Every real C3D file reads with the right numbers or is refused with the true reason.

Oracles: ezc3d where it reads the file correctly; the pure-Python ``c3d`` package where
ezc3d cannot (MIPS) or misreads it (no ANALOG:RATE: frames misaligned).  Physics on top
of the format: a loaded plate pushes the body up and its centre of pressure lies on the
plate, or the recording carries a warning naming the plate.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import c3d as c3d_package
import ezc3d
import numpy as np
import pytest

from conftest import real_data_dir
from cxlab._check import CxlabWarning, InputFormatError
from cxlab.io.c3d import read_c3d

# oracle per file: "ezc3d", "c3d" (the pure-Python package), or the refusal's true reason
REFUSED = {"edge_cases/btk_Empty.c3d": "shorter than a C3D header"}
C3D_PACKAGE = {
    "edge_cases/c3dorg_sgi_int.c3d",
    "c3d/c3dorg_type1.C3D",
    "c3d/c3dorg_BTS_dynamic.C3D",
}
FILES = sorted(
    p.relative_to(real_data_dir()).as_posix()
    for d in ("c3d", "edge_cases")
    for p in (real_data_dir() / d).glob("*")
    if p.suffix.lower() == ".c3d"
)


def _quiet(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        return read_c3d(path, **kw)


def _oracle(path: Path, name: str):
    """(points (n_frames, n_points, 4) in file units, analogs (n_samples, n_ch) or None)."""
    if name in C3D_PACKAGE:
        with path.open("rb") as fh:
            frames = list(c3d_package.Reader(fh).read_frames())
        pts = np.stack([f[1][:, :4] for f in frames])
        return pts, None  # analogs: the package ignores a negative GEN_SCALE sign
    c = ezc3d.c3d(str(path))
    pts = np.concatenate([c["data"]["points"][:3], c["data"]["meta_points"]["residuals"]])
    an = c["data"]["analogs"][0].T if c["data"]["analogs"].size else np.zeros((0, 0))
    return pts.transpose(2, 1, 0), an


def test_the_list_covers_every_real_c3d(real_dir):  # skipped with the real files absent
    assert len(FILES) >= 30 and set(REFUSED) | C3D_PACKAGE <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_real_file_reads_right_or_is_refused_with_the_true_reason(real_dir, name):
    path = real_dir / name
    if name in REFUSED:
        with pytest.raises(InputFormatError, match=REFUSED[name]):
            read_c3d(path)
        return
    rec = _quiet(path, up="z", zero_baseline=False)  # as stored, as the oracles give it
    pts, an = _oracle(path, name)
    assert rec.n_frames == pts.shape[0]
    keep = np.setdiff1d(np.arange(pts.shape[1]), rec.meta["points_other"]["index"])
    unit = {"m": 1.0, "mete": 1.0}.get(rec.meta["units"]["point"], 1e-3)
    ref = pts[:, keep, :3] * unit
    ref[pts[:, keep, 3] < 0] = np.nan
    assert np.array_equal(np.isnan(rec.markers).any(-1), np.isnan(ref).any(-1))
    if np.isfinite(ref).any():
        tol = 1e-5 * np.nanmax(np.abs(ref)) + 1e-9
        assert np.nanmax(np.abs(rec.markers - ref)) <= tol
    if an is not None and an.size:
        assert rec.analogs.shape == an.shape
        assert np.max(np.abs(rec.analogs - an)) <= 1e-5 * max(np.abs(an).max(), 1.0)


@pytest.mark.parametrize("name", [f for f in FILES if f not in REFUSED])
def test_loaded_plates_push_up_with_the_cop_on_the_plate_or_a_warning_says_so(real_dir, name):
    rec = _quiet(real_dir / name)
    for i, p in enumerate(rec.platforms, start=1):
        named = [w for w in rec.warnings if f"plate {i}:" in w]
        fz = p.force[:, 2]
        loaded = np.abs(fz) > 50
        if not loaded.any() or named:
            continue
        assert np.mean(fz[loaded] > 0) > 0.9, f"plate {i} pushes down, silently"
        c = p.corners  # the test's own plate bounds: corners' span in x and y, +- 5 cm
        cop = p.cop[loaded & np.isfinite(p.cop).all(axis=1)]
        inside = (
            (cop[:, 0] >= c[:, 0].min() - 0.05)
            & (cop[:, 0] <= c[:, 0].max() + 0.05)
            & (cop[:, 1] >= c[:, 1].min() - 0.05)
            & (cop[:, 1] <= c[:, 1].max() + 0.05)
        )
        assert inside.mean() > 0.95, f"plate {i}: CoP off the plate, silently"
