"""One contract every reader keeps, checked on real files of every format behind ``io.read``.

Like mne's ``_test_raw_reader``: whatever the format, a :class:`Recording` has consistent shapes,
SI units in the lab frame (Z up, stance force up), NaN only where the format says "no value",
never an infinity, the store's declared columns, and the same bytes when read in another
process.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab import io
from cxlab.schemas import schema_of
from test_vendor import simulated_cmj, write_forcedecks

# one file per system and format, so a reader change is caught on every kind of input
C3D = [
    "c3d/btk_PiG_Motion-FlatFoot-Full.c3d",  # Vicon, float, plates + EMG + PiG outputs
    "c3d/c3dorg_gait-pig.c3d",  # Vicon, N.mm moments labelled Nm
    "c3d/c3dorg_qualisys_Capture0002.c3d",  # Qualisys
    "c3d/c3dorg_BTS_dynamic.C3D",  # BTS
    "c3d/c3dorg_TYPE-2.C3D",  # TYPE-2 plates
    "c3d/c3dorg_TYPE-4.C3D",  # TYPE-4 calibration matrix
    "c3d/ezc3d_FP_Type3.c3d",  # Kistler TYPE-3
    "c3d/biomdp_kistler_CMJ_1plate.c3d",  # Kistler CMJ on one plate
    "c3d/c3dorg_Eb015vr.c3d",  # DEC (VAX) float
    "c3d/btk_Res16bits.c3d",  # 16-bit analogs
    "c3d/opensim_walking2.c3d",  # Y-up file rotated to Z-up
]
TEXT = [
    "opensim/subject01_walk_marker_trajectories.trc",
    "opensim/pyomeca_markers.trc",
    "opensim/subject01_walk_grf.mot",
    "opensim/osc_moco_referenceGRF.sto",
    "forceplate/biomdp_kistler_CMJ_1plate.txt",  # BioWare
    "forceplate/biomdp_kistler_COP.txt",  # BioWare CoP-only
]


def _written(kind: str, tmp: Path, real: Path) -> Path:
    """Vendor files the repository may not hold: written here in their exact layouts."""
    if kind == "forcedecks":
        path = tmp / "athlete_cmj.csv"
        write_forcedecks(path, simulated_cmj()[0])
        return path
    grf = pd.read_csv(real / "opensim/subject01_walk_grf.mot", sep="\t", skiprows=6)
    path = tmp / "dual.csv"
    pd.DataFrame(
        {
            "time": grf["time"],
            "left_fz": grf["ground_force_vy"],
            "right_fz": grf["1_ground_force_vy"],
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(real_dir, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("readers")
    out = {name: real_dir / name for name in C3D + TEXT}
    out["written/forcedecks.csv"] = _written("forcedecks", tmp, real_dir)
    out["written/plate.csv"] = _written("csv", tmp, real_dir)
    return out


ALL = C3D + TEXT + ["written/forcedecks.csv", "written/plate.csv"]


def digest(rec: io.Recording) -> str:
    """SHA-256 over every array and label a reader returns (NaN bit patterns included)."""
    h = hashlib.sha256()

    def add(x) -> None:
        a = np.ascontiguousarray(np.asarray(x))
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())

    for a in (rec.markers, rec.residuals, rec.analogs, rec.marker_labels, rec.analog_labels):
        add(a)
    add(rec.analog_units)
    add([rec.point_rate_hz, rec.analog_rate_hz])
    for p in rec.platforms:
        for a in (p.force, p.moment, p.cop, p.tz, p.corners, p.origin, [p.type, p.rate_hz]):
            add(a)
    add([(e.label, e.context, e.time_s) for e in rec.events])
    add(sorted(rec.warnings))
    if rec.model_outputs is not None:
        add(rec.model_outputs.values)
        add(rec.model_outputs.labels)
    return h.hexdigest()


def _digest_in_child(path: str) -> str:
    return digest(io.read(path))


@pytest.fixture(scope="module")
def child_digests(files) -> dict[str, str]:
    """Each file read once in a freshly spawned interpreter (no state shared with the test)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        names = list(files)
        digests = pool.map(_digest_in_child, [str(files[n]) for n in names])
        return dict(zip(names, digests, strict=True))


def _finite_or_nan(name: str, a: np.ndarray) -> None:
    a = np.asarray(a, dtype=float)
    assert not np.isinf(a).any(), f"{name}: an infinity where the contract allows only NaN"


@pytest.mark.parametrize("name", ALL)
def test_reader_contract(name, files, child_digests):
    path = files[name]
    rec = io.read(path)
    assert isinstance(rec, io.Recording)
    assert rec.meta["format"] == io.format_of(path)

    # shapes agree with the labels
    n_frames, n_markers = rec.markers.shape[:2]
    assert rec.markers.ndim == 3 and rec.markers.shape[2] == 3
    assert rec.markers.dtype == np.float64
    assert len(rec.marker_labels) == n_markers
    assert rec.residuals.shape == (n_frames, n_markers)
    n_channels = rec.analogs.shape[1]
    assert len(rec.analog_labels) == len(rec.analog_units) == n_channels
    assert n_markers == 0 or rec.point_rate_hz > 0
    assert n_channels == 0 or rec.analog_rate_hz > 0
    assert n_markers + n_channels + len(rec.platforms) > 0, "a recording with nothing in it"

    # SI units: markers of a lab fit in a 100 m box (mm read as m would not)
    _finite_or_nan("markers", rec.markers)
    _finite_or_nan("analogs", rec.analogs)
    if n_markers:
        assert np.nanmax(np.abs(rec.markers), initial=0.0) < 100.0

    for i, p in enumerate(rec.platforms, start=1):
        n = p.force.shape[0]
        assert p.force.shape == p.moment.shape == p.cop.shape == (n, 3)
        assert p.tz.shape == (n,) and p.corners.shape == (4, 3) and p.origin.shape == (3,)
        assert p.rate_hz > 0
        for arr, what in ((p.force, "force"), (p.moment, "moment"), (p.cop, "cop"), (p.tz, "tz")):
            _finite_or_nan(f"plate {i} {what}", arr)
        # NaN rule: the free moment exists exactly where the centre of pressure does
        cop_ok = ~np.isnan(p.cop).any(axis=1)
        tz_ok = ~np.isnan(p.tz)
        assert (tz_ok <= cop_ok).all(), f"plate {i}: a free moment without a centre of pressure"
        fz = p.force[:, 2]
        loaded = np.abs(fz) > 100.0
        if loaded.sum() > 50:
            # lab frame, Z up, reaction on the body: stance force points up
            assert np.median(fz[loaded]) > 0, f"plate {i}: stance force points down"
            assert np.nanmax(np.abs(p.force)) < 1e5  # N, not N·mm or raw counts
            if cop_ok[loaded].any():
                # CoP (m) lies on the plate surface, give or take 5 cm
                lo = p.corners.min(axis=0)[:2] - 0.05
                hi = p.corners.max(axis=0)[:2] + 0.05
                if np.isfinite(p.corners).all() and (hi - lo > 0.1).all():
                    cop = p.cop[loaded & cop_ok, :2]
                    inside = ((cop >= lo) & (cop <= hi)).all(axis=1)
                    assert inside.mean() > 0.95 or rec.warnings, f"plate {i}: CoP off the plate"

    # the store accepts what the reader returned, with the declared columns
    tables = rec.to_tables("0123456789abcdef")
    for table, df in tables.items():
        declared = [c.name for c in schema_of(table).columns]
        assert set(df.columns) <= set(declared), f"{table}: undeclared columns"
        required = [c.name for c in schema_of(table).columns if not c.optional]
        assert set(required) <= set(df.columns), f"{table}: missing declared columns"

    # the same bytes in another process, and on a second read in this one
    assert digest(rec) == digest(io.read(path)) == child_digests[name]
