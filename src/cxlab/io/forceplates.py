"""Force platforms from C3D analog channels: TYPE 1-4, lab frame, SI, vectorised.

Conventions (see ``docs/io-c3d.md``)
------------------------------------
* Plate axes from FORCE_PLATFORM:CORNERS (lab coordinates, corner 1 in the
  plate's +x+y quadrant, C3D User Guide 2008 ch. 6): ``x = c1 - c2``,
  ``y = c1 - c4``, ``z = x × y``, ``y = z × x``, normalised; ``R`` (3 x 3)
  has these as columns and maps plate to lab.  The plate centre ``c`` is the
  mean of the corners.
* FORCE_PLATFORM:ORIGIN ``r`` is the transducer origin relative to the
  surface centre in plate axes; as in ezc3d it is negated when its z is
  positive.  The moment about the surface centre is ``Mc = Mo + F × r``
  (TYPE 3: ``r = (0, 0, az0)`` after the Kistler channel sums).
* Plate-frame CoP ``p = (-Mc_y / F_z, Mc_x / F_z, 0)``; free moment vector
  ``T = Mc + F × p`` (its x, y are ~0).  Lab values: ``F_lab = R F``,
  ``cop = R p + c``, ``M_lab = R Mc + c × F_lab`` (moment about the lab
  origin), ``tz = (R T)·n`` with ``n = -R[:, 2]`` the upward surface normal
  (the lab z axis for a level plate in a Z-up lab; files whose lab is Y-up
  keep their frame and still get the free moment about the plate normal).
  CoP and tz are NaN where the normal force ``|F_lab·n|`` is below the
  threshold.
* Sign: TYPE 1, 2 and 4 channels (AMTI, Bertec, Vicon exports) already hold
  the reaction on the body (a loaded plate reads F_z < 0 with a downward plate
  z axis, so ``F_lab`` points up); TYPE 3 (Kistler) channels hold the load on
  the plate, so force, moment and tz are negated.  Result: ``fz > 0`` when
  someone stands on any plate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import InputFormatError, message, warn
from cxlab.io._c3d_header import Param
from cxlab.io.recording import Platform

__all__ = ["N_CHANNELS", "nan_platform", "plate_frame", "platform_from_wrench",
           "platforms_from_analogs"]

N_CHANNELS = {1: 6, 2: 6, 3: 8, 4: 6}
REACTION_SIGN = {1: 1.0, 2: 1.0, 3: -1.0, 4: 1.0}


def nan_platform(n: int, /, *, plate_type: int, rate_hz: float) -> Platform:
    """An all-NaN plate of ``n`` samples, standing in for a plate that cannot be computed.

    Keeps the 1-based plate numbering of the file (plate 1 = left foot in cxlab's
    tasks) when an earlier plate is skipped.
    """
    nan3 = np.full((n, 3), np.nan)
    return Platform(force=nan3, moment=nan3.copy(), cop=nan3.copy(), tz=np.full(n, np.nan),
                    corners=np.full((4, 3), np.nan), origin=np.full(3, np.nan),
                    type=int(plate_type), rate_hz=float(rate_hz))


def plate_frame(corners: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
    """Plate-to-lab rotation and plate centre from the four corners.

    Parameters
    ----------
    corners : ndarray, shape (4, 3)
        Corners 1-4 in lab coordinates (any length unit).

    Returns
    -------
    R : ndarray, shape (3, 3)
        Columns are the plate x, y, z axes in the lab frame.
    centre : ndarray, shape (3,)
        Mean of the corners, same unit as ``corners``.
    """
    x = corners[0] - corners[1]
    y = corners[0] - corners[3]
    z = np.cross(x, y)
    y = np.cross(z, x)
    axes = [v / np.linalg.norm(v) for v in (x, y, z)]
    return np.column_stack(axes), corners.mean(axis=0)


def platform_from_wrench(force_p: np.ndarray, moment_c_p: np.ndarray, /, *, rot: np.ndarray,
                         centre: np.ndarray, corners: np.ndarray, origin: np.ndarray,
                         plate_type: int, rate_hz: float, cop_threshold_n: float,
                         cop_poly: np.ndarray | None = None, length_m: float = 1.0) -> Platform:
    """Build a :class:`Platform` from the plate-frame wrench about the surface centre.

    Parameters
    ----------
    force_p : ndarray, shape (n, 3)
        Force in plate axes, N, as stored in the file (sign of the channels).
    moment_c_p : ndarray, shape (n, 3)
        Moment about the plate surface centre, plate axes, N·m.
    rot, centre : plate-to-lab rotation (3, 3) and surface centre (3,), m.
    corners, origin : stored for reference, m.
    plate_type : int
        C3D TYPE; fixes the sign convention (see module docstring).
    cop_threshold_n : float
        CoP and tz are NaN where |fz| < this, N.
    cop_poly : ndarray, shape (12,), optional
        Kistler FPCOPPOLY CoP correction (TYPE 3), as ezc3d applies it, with
        coefficients for CoP in the file's length unit (``length_m`` metres).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _platform(force_p, moment_c_p, rot, centre, corners, origin, plate_type,
                         rate_hz, cop_threshold_n, cop_poly, length_m)


def _platform(force_p, moment_c_p, rot, centre, corners, origin, plate_type, rate_hz,
              cop_threshold_n, cop_poly, length_m) -> Platform:
    px = -moment_c_p[:, 1] / force_p[:, 2]
    py = moment_c_p[:, 0] / force_p[:, 2]
    if cop_poly is not None and np.any(cop_poly):
        k = cop_poly
        px, py = px / length_m, py / length_m
        x_off = ((k[0] * py**4 + k[1] * py**2 + k[2]) * px**3
                 + (k[3] * py**4 + k[4] * py**2 + k[5]) * px)
        y_off = ((k[6] * px**4 + k[7] * px**2 + k[8]) * py**3
                 + (k[9] * px**4 + k[10] * px**2 + k[11]) * py)
        px, py = (px - x_off) * length_m, (py - y_off) * length_m
    cop_p = np.column_stack([px, py, np.zeros_like(px)])
    free_p = moment_c_p + np.cross(force_p, cop_p)
    sign = REACTION_SIGN[plate_type]
    force = sign * (force_p @ rot.T)
    moment = sign * (moment_c_p @ rot.T) + np.cross(centre, force)
    cop = cop_p @ rot.T + centre
    up = -rot[:, 2]  # C3D plate z points into the plate; the surface normal is -z
    tz = sign * (free_p @ rot.T) @ up
    low = ~(np.abs(force @ up) >= cop_threshold_n)
    cop[low] = np.nan
    tz[low] = np.nan
    return Platform(force=force, moment=moment, cop=cop, tz=tz, corners=corners,
                    origin=origin, type=int(plate_type), rate_hz=float(rate_hz))


def _zero_window(zero: Param | None, n_sub: int, n_samples: int) -> slice | None:
    if zero is None or zero.dtype == -1:
        return None
    vals = zero.flat()
    if vals.size < 2 or not np.isfinite(vals[:2]).all() or vals[0] < 1 or vals[1] < vals[0]:
        return None  # (0, 0), (1, 0): no zeroing requested
    lo, hi = int(vals[0] - 1) * n_sub, min(int(vals[1]) * n_sub, n_samples)
    return slice(lo, hi) if hi > lo else None


def zero_window(fp: dict[str, Param], /, *, n_sub: int, n_samples: int) -> slice | None:
    """Analog samples covered by FORCE_PLATFORM:ZERO (1-based frames of the stored data).

    Returns None when ZERO is absent, ``(0, 0)`` or has its end before its start.
    """
    return _zero_window(fp.get("ZERO"), n_sub, n_samples)


def _fp_array(fp: dict[str, Param], name: str, path: Path) -> np.ndarray:
    p = fp.get(name)
    if p is None or p.dtype == -1:
        raise InputFormatError(message("is missing or not numeric", file=path,
                                       field=f"FORCE_PLATFORM:{name}",
                                       fix="re-export the trial with its force plates defined"))
    return np.asarray(p.value, dtype=np.float64)


_MOMENT_UNITS = {"nmm": 1e-3, "ncm": 1e-2, "nm": 1.0}


def _moment_scale(units: list[str], /, *, default: float) -> float:
    """N·m per unit of the moment channels when all three declare the same known unit."""
    keys = {u.lower().replace(".", "").replace("*", "").replace("·", "").replace(" ", "")
            for u in units}
    if len(keys) == 1 and (key := keys.pop()) in _MOMENT_UNITS:
        return _MOMENT_UNITS[key]
    return default


def platforms_from_analogs(analogs: np.ndarray, fp: dict[str, Param], /, *, path: Path,
                           rate_hz: float, n_sub: int, length_m: float,
                           cop_threshold_n: float, zero_baseline: bool,
                           analog_units: list[str] | None = None) -> list[Platform]:
    """Compute every used force platform from calibrated analog channels.

    Parameters
    ----------
    analogs : ndarray, shape (n_samples, n_channels)
        Calibrated analogs (force channels in N, moment channels in N·unit).
    fp : dict
        The FORCE_PLATFORM group.
    length_m : float
        Metres per POINT:UNITS unit (corners, origin, moments, TYPE-1 CoP).
    zero_baseline : bool
        Subtract the mean of each plate channel over FORCE_PLATFORM:ZERO.
    analog_units : list of str, optional
        ANALOG:UNITS per channel. A TYPE-2 plate whose three moment channels all
        declare a force × length unit (``Nmm``, ``Nm``, ``N.cm`` ...) is scaled by
        that unit; otherwise moments are taken in N × POINT:UNITS, as ezc3d does.

    Returns
    -------
    list of Platform
        One per used plate, in file order.  A plate whose type is unsupported or
        whose channels are absent is all NaN, with a :class:`~cxlab._check.CxlabWarning`.
    """
    used_p = fp.get("USED")
    used_v = used_p.flat() if used_p is not None and used_p.dtype != -1 else np.zeros(0)
    used = int(used_v[0]) if used_v.size and np.isfinite(used_v[0]) else 0
    if used <= 0:
        return []
    types = _fp_array(fp, "TYPE", path).ravel(order="F").astype(int)
    corners_all = _fp_array(fp, "CORNERS", path).reshape(-1, order="F")
    origin_all = _fp_array(fp, "ORIGIN", path).reshape(-1, order="F")
    chan = _fp_array(fp, "CHANNEL", path)
    if chan.ndim == 0:
        chan = chan.reshape(1, 1)
    elif chan.size == 0 or chan.shape[0] == 0:
        chan = np.zeros((0, 0))
    else:
        chan = chan.reshape(chan.shape[0], -1, order="F")
    cal = fp.get("CAL_MATRIX")
    poly = fp.get("FPCOPPOLY")
    n_samples, n_ch = analogs.shape
    window = _zero_window(fp.get("ZERO"), n_sub, n_samples) if zero_baseline else None
    out: list[Platform] = []
    for i in range(used):
        where: dict[str, Any] = {"file": path, "field": f"FORCE_PLATFORM plate {i + 1}"}
        if i >= types.size or types[i] not in N_CHANNELS:
            warn("has an unsupported TYPE; its values are NaN (cxlab reads TYPE 1-4)",
                 value=int(types[i]) if i < types.size else None, **where)
            out.append(nan_platform(n_samples, plate_type=0, rate_hz=rate_hz))
            continue
        t = int(types[i])
        k = N_CHANNELS[t]
        if corners_all.size < 12 * (i + 1) or origin_all.size < 3 * (i + 1):
            raise InputFormatError(message("CORNERS or ORIGIN has too few values for USED plates",
                                           value=used, fix="re-export with complete plate "
                                           "geometry", **where))
        if chan.shape[0] < k or chan.shape[1] <= i:
            raise InputFormatError(message(f"CHANNEL lists too few channels (TYPE {t} needs "
                                           f"{k})", value=chan.shape, fix="re-export with "
                                           "complete plate channels", **where))
        idx = chan[:k, i].astype(int) - 1
        if np.any(idx < 0) or np.any(idx >= n_ch):
            warn(f"CHANNEL refers to analog channels the file does not have ({n_ch} stored); "
                 "its values are NaN", value=(idx + 1).tolist(), **where)
            out.append(nan_platform(n_samples, plate_type=t, rate_hz=rate_hz))
            continue
        ch = analogs[:, idx]
        if window is not None:
            ch = ch - ch[window].mean(axis=0)
        corners = corners_all[12 * i:12 * (i + 1)].reshape(4, 3) * length_m
        origin = origin_all[3 * i:3 * (i + 1)] * length_m
        r = -origin if origin[2] > 0 else origin
        with np.errstate(invalid="ignore", divide="ignore"):
            rot, centre = plate_frame(corners)
        if not (np.isfinite(rot).all() and np.isfinite(centre).all()):
            raise InputFormatError(message("CORNERS do not span a plate (degenerate or not "
                                           "finite)", value=corners.tolist(),
                                           fix="re-export with the plate geometry", **where))
        if t == 1:
            force = ch[:, 0:3]
            cop = np.column_stack([ch[:, 3:5] * length_m, np.zeros(n_samples)])
            m_c = np.cross(cop, force)
            m_c[:, 2] += ch[:, 5] * length_m
        elif t == 3:
            force = np.column_stack([ch[:, 0] + ch[:, 1], ch[:, 2] + ch[:, 3],
                                     ch[:, 4:8].sum(axis=1)])
            a, b = r[0], r[1]
            m_c = np.column_stack([
                b * (ch[:, 4] + ch[:, 5] - ch[:, 6] - ch[:, 7]),
                a * (ch[:, 5] + ch[:, 6] - ch[:, 4] - ch[:, 7]),
                b * (ch[:, 1] - ch[:, 0]) + a * (ch[:, 2] - ch[:, 3]),
            ]) + np.cross(force, np.array([0.0, 0.0, r[2]]))
        else:
            six = ch
            if t == 4:
                if cal is None or cal.dtype == -1 or len(cal.dims) < 3 or cal.dims[2] <= i \
                        or cal.dims[0] < 6 or cal.dims[1] < 6:
                    raise InputFormatError(message("TYPE 4 needs a 6 x 6 CAL_MATRIX per plate",
                                                   value=cal.dims if cal else None,
                                                   fix="re-export with the calibration matrix",
                                                   **where))
                six = ch @ np.asarray(cal.value, dtype=float)[:6, :6, i].T
            force = six[:, 0:3]
            m_scale = length_m
            if t == 2 and analog_units is not None:
                m_scale = _moment_scale([analog_units[j] for j in idx[3:6]], default=length_m)
            m_c = six[:, 3:6] * m_scale + np.cross(force, r)
        cop_poly = None
        if t == 3 and poly is not None and poly.dtype != -1 and poly.flat().size >= 12 * (i + 1):
            cop_poly = poly.flat()[12 * i:12 * (i + 1)]
        out.append(platform_from_wrench(
            force, m_c, rot=rot, centre=centre, corners=corners, origin=origin, plate_type=t,
            rate_hz=rate_hz, cop_threshold_n=cop_threshold_n, cop_poly=cop_poly,
            length_m=length_m))
    return out
