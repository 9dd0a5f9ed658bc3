"""Write a generated :class:`~cxlab.synth.signals.Trial` as a C3D file through ezc3d.

The files look like a Vicon-style lab export: positions in millimetres
(``POINT:UNITS = mm``), forces in N and moments in N·mm at the plate's sensor origin,
in each plate's own frame, float storage with ``SCALE = 1`` and ``OFFSET = 0``.

Force plates (TYPE 2, one per foot)
-----------------------------------
Plate frame: x along lab +X, y along lab -Y, z along lab -Z (pointing down, like an
AMTI plate). ``FORCE_PLATFORM:CORNERS`` lists the corners in the lab frame in the
C3D order (+x+y, -x+y, -x-y, +x-y of the plate frame); ``ORIGIN = (0, 0, 40) mm``
is the sensor origin 40 mm below the surface centre (stored with a positive z, as
Vicon writes it; ezc3d flips it to -40). The analog channels hold the ground
reaction force on the body expressed in the plate frame (so ``Fz`` is negative, about
``-m g``, when standing, as in the real Vicon files under ``shared/data/real``) and
its moment about the sensor origin::

    F_plate = R^T F_lab,                R = diag(1, -1, -1)
    M_plate = r x F_plate - F_plate x o,  r = R^T (CoP - centre) (mm), o = (0, 0, -40) mm

so ezc3d's ``extract_forceplat_data=True`` returns ``+m g`` up in quiet standing and
the CoP under the foot. Per-channel white noise: 1 N (Fx, Fy), 1.5 N (Fz), 100 N·mm
(moments) for jumps and landings; 0.5 N and 5 N·mm for the 100 Hz balance trials
(CoP noise ~0.01 mm, so path-length measures are not swamped).
"""

from __future__ import annotations

from pathlib import Path

import ezc3d
import numpy as np

from cxlab.synth.signals import PLATE_SIZE_M, PLATES, Trial

__all__ = ["PLATE_ORIGIN_MM", "plate_corners_mm", "write_trial_c3d"]

PLATE_ORIGIN_MM = 40.0
_R = np.diag([1.0, -1.0, -1.0])  # plate axes as columns, in the lab frame


def plate_corners_mm(plate: int) -> np.ndarray:
    """Corners of plate ``plate`` (0-based) in the lab frame, mm, shape (4, 3), C3D order."""
    a, b = 500.0 * PLATE_SIZE_M[0], 500.0 * PLATE_SIZE_M[1]
    c = 1000.0 * PLATES[plate]
    local = np.array([[a, b, 0.0], [-a, b, 0.0], [-a, -b, 0.0], [a, -b, 0.0]])
    return c + local @ _R.T


def _plate_channels(force, cop, plate, rng, f_sd, m_sd):
    """Six analog channels (n, 6): Fx Fy Fz (N), Mx My Mz (N·mm) in the plate frame."""
    f = force @ _R  # rows: R^T f
    r = (cop - PLATES[plate]) * 1000.0 @ _R
    r[:, 2] = 0.0
    o = np.array([0.0, 0.0, -PLATE_ORIGIN_MM])
    m = np.cross(r, f) - np.cross(f, o)
    n = len(f)
    f = f + rng.normal(0.0, 1.0, (n, 3)) * np.array([f_sd, f_sd, 1.5 * f_sd])
    m = m + rng.normal(0.0, m_sd, (n, 3))
    return np.hstack([f, m])


def write_trial_c3d(
    path: str | Path, trial: Trial, /, *, rng, marker_noise_m=0.0002, low_noise=False
) -> Path:
    """Write ``trial`` to ``path`` (C3D, float storage) and return the path.

    Parameters
    ----------
    path : path
        Destination ``.c3d`` file.
    trial : Trial
        Forces/CoPs in the lab frame (N, m) and markers (m).
    rng : numpy.random.Generator
        Source of the plate and marker noise.
    marker_noise_m : float
        SD of white noise added to every marker coordinate, m.
    low_noise : bool
        Balance-grade plate noise (0.5 N, 5 N·mm) instead of 1 N / 100 N·mm.

    Returns
    -------
    Path
    """
    path = Path(path)
    c = ezc3d.c3d()
    p_rate = trial.point_rate_hz
    a_rate = trial.analog_rate_hz or p_rate
    ratio = round(a_rate / p_rate)
    n_markers = len(trial.marker_labels)
    if trial.forces or trial.emg is not None:
        n_all = len(trial.forces[0]) if trial.forces else len(trial.emg)
        n_an = n_all - n_all % ratio
        n_frames = n_an // ratio
    else:
        n_frames = trial.markers.shape[0]
        n_an = 0
    pts = np.ones((4, n_markers, n_frames))
    if n_markers:
        xyz = trial.markers[:n_frames] * 1000.0
        xyz = xyz + rng.normal(0.0, marker_noise_m * 1000.0, xyz.shape)
        pts[:3] = xyz.transpose(2, 1, 0)
    c["parameters"]["POINT"]["RATE"]["value"] = [p_rate]
    c["parameters"]["POINT"]["LABELS"]["value"] = list(trial.marker_labels)
    c["parameters"]["POINT"]["DESCRIPTIONS"]["value"] = [""] * n_markers
    c.add_parameter("POINT", "UNITS", ["mm"])
    c["data"]["points"] = pts
    if n_markers:
        c["data"]["meta_points"]["residuals"] = np.full((1, n_markers, n_frames), 0.5)
    if trial.forces or trial.emg is not None:
        f_sd, m_sd = (0.5, 5.0) if low_noise else (1.0, 100.0)
        chans = [
            _plate_channels(f[:n_an], cp[:n_an], k, rng, f_sd, m_sd)
            for f, cp, k in zip(trial.forces, trial.cops, trial.plates, strict=True)
        ]
        n_pl = len(chans)
        labels = [
            f"{q}{i}" for i in range(1, n_pl + 1) for q in ("Fx", "Fy", "Fz", "Mx", "My", "Mz")
        ]
        units = ["N", "N", "N", "Nmm", "Nmm", "Nmm"] * n_pl
        descriptions = [f"Force plate {lab[-1]} {lab[:2]}" for lab in labels]
        if trial.emg is not None:  # EMG channels after the plates' (cxlab.synth.emg)
            chans.append(trial.emg[:n_an])
            labels += list(trial.emg_labels)
            units += ["V"] * len(trial.emg_labels)
            descriptions += ["EMG"] * len(trial.emg_labels)
        an = np.hstack(chans).T[None, :, :]
        c["parameters"]["ANALOG"]["RATE"]["value"] = [a_rate]
        c["parameters"]["ANALOG"]["LABELS"]["value"] = labels
        c["parameters"]["ANALOG"]["DESCRIPTIONS"]["value"] = descriptions
        c["parameters"]["ANALOG"]["UNITS"]["value"] = units
        c["parameters"]["ANALOG"]["SCALE"]["value"] = [1.0] * len(labels)
        c["parameters"]["ANALOG"]["OFFSET"]["value"] = [0] * len(labels)
        c["parameters"]["ANALOG"]["GEN_SCALE"]["value"] = [1.0]
        c["data"]["analogs"] = an
    if trial.forces:
        corners = np.stack([plate_corners_mm(k).T for k in trial.plates], axis=2)
        fp = {
            "USED": np.array([n_pl]),
            "TYPE": np.full(n_pl, 2),
            "ZERO": np.array([1, 0]),
            "CORNERS": corners,
            "ORIGIN": np.tile([[0.0], [0.0], [PLATE_ORIGIN_MM]], (1, n_pl)),
            "CHANNEL": np.arange(1, 6 * n_pl + 1).reshape(n_pl, 6).T,
        }
        for name, value in fp.items():
            # ezc3d's add_parameter stores integers as floats; mark them INT again
            c.add_parameter("FORCE_PLATFORM", name, value.astype(float))
            if np.issubdtype(value.dtype, np.integer):
                c["parameters"]["FORCE_PLATFORM"][name]["type"] = ezc3d.ezc3d.INT
                c["parameters"]["FORCE_PLATFORM"][name]["value"] = value
    c.add_parameter("MANUFACTURER", "COMPANY", ["cxlab"])
    c.add_parameter("MANUFACTURER", "SOFTWARE", ["cxlab.synth"])
    path.parent.mkdir(parents=True, exist_ok=True)
    c.write(str(path))
    return path
