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
* Sign: TYPE 1, 2 and 4 channels (AMTI, Bertec, Vicon exports) hold the
  reaction on the body (a loaded plate reads F_z < 0 along its downward z
  axis, so ``F_lab`` points up).  TYPE 3 (Kistler) channels come out either
  way, depending on the exporting software and on the corner order (BioWare
  writes corners giving a plate z axis *up*, c3d.org/Peak writes it down with
  channels holding the load): the sign of a TYPE-3 plate is decided from its
  data, so that the vertical reaction is positive where the plate is loaded
  (see :func:`platforms_from_analogs`).  Result: ``fz > 0`` when someone stands
  on any plate; a plate that still reads a negative stance force is a warning.
* "Up" is the lab axis closest to the plate normal, positive direction (a
  level plate in a Z-up lab: +z; in a Y-up lab: +y); the surface normal ``n``
  is the plate z axis oriented towards it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from cxlab._check import InputFormatError, message, warn
from cxlab.io._c3d_header import Param
from cxlab.io.recording import Platform
from cxlab.units import MOMENT, unit_factor

__all__ = [
    "N_CHANNELS",
    "PlateConvention",
    "PlateSet",
    "lab_up",
    "nan_platform",
    "plate_frame",
    "platform_from_wrench",
    "platforms_from_analogs",
]

N_CHANNELS = {1: 6, 2: 6, 3: 8, 4: 6}
#: N·m per unit -> display name, for the metric moment units a plate channel may be in
_METRIC_MOMENT = {MOMENT[n]: n.replace(".", "·") for n in ("N.m", "N.cm", "N.mm")}
#: sign applied to the channels when the data cannot decide it (an unloaded TYPE-3 plate)
REACTION_SIGN = {1: 1.0, 2: 1.0, 3: -1.0, 4: 1.0}
#: |vertical force| above which a plate counts as loaded, N (guards, sign and unit decisions)
LOADED_N = 50.0
#: how far off the plate's edge a centre of pressure may fall before it is a warning, m
COP_MARGIN_M = 0.05
#: a force no human produces on a plate (about 25 x body weight of an 80 kg athlete), N
ABSURD_FORCE_N = 20_000.0
#: a steady load with no change that no person standing still produces, N
ABSURD_STEADY_N = 2_500.0


class PlateConvention(NamedTuple):
    """How one plate's numbers were decided (``Recording.meta["plate_conventions"]``)."""

    plate: int
    type: int
    reaction_sign: float
    sign_from: Literal["load", "type default", "other plate"]
    zero: Literal["none", "subtracted", "kept raw"]
    moment_unit_nm: float
    moment_unit_from: str
    up: str


class PlateSet(NamedTuple):
    """What :func:`platforms_from_analogs` returns: plates, decisions and quality findings."""

    platforms: list[Platform]
    conventions: list[PlateConvention]
    warnings: list[str]


def nan_platform(n: int, /, *, plate_type: int, rate_hz: float) -> Platform:
    """An all-NaN plate of ``n`` samples, standing in for a plate that cannot be computed.

    Keeps the 1-based plate numbering of the file (plate 1 = left foot in cxlab's
    tasks) when an earlier plate is skipped.
    """
    nan3 = np.full((n, 3), np.nan)
    return Platform(
        force=nan3,
        moment=nan3.copy(),
        cop=nan3.copy(),
        tz=np.full(n, np.nan),
        corners=np.full((4, 3), np.nan),
        origin=np.full(3, np.nan),
        type=int(plate_type),
        rate_hz=float(rate_hz),
    )


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of 3-vectors along the last axis (broadcast), with the same arithmetic
    (``a1 b2 - a2 b1``, ...) but without its per-call axis juggling (~20 µs a call)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
    out[..., 0] = a1 * b2 - a2 * b1
    out[..., 1] = a2 * b0 - a0 * b2
    out[..., 2] = a0 * b1 - a1 * b0
    return out


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
    (x0, x1, x2), (y0, y1, y2) = x.tolist(), (corners[0] - corners[3]).tolist()
    # the two cross products of 3-vectors in Python floats: the same IEEE-754 products and
    # differences as _cross (a1 b2 - a2 b1, ...), without ~10 us of NumPy calls each
    z0, z1, z2 = x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0
    rot = np.array(
        [[x0, z1 * x2 - z2 * x1, z0], [x1, z2 * x0 - z0 * x2, z1], [x2, z0 * x1 - z1 * x0, z2]]
    )
    # each column over its np.linalg.norm (sqrt of the column's dot product with itself)
    for k in range(3):
        v = rot[:, k].copy()
        rot[:, k] = v / np.sqrt(v.dot(v))
    return rot, corners.mean(axis=0)


def platform_from_wrench(
    force_p: np.ndarray,
    moment_c_p: np.ndarray,
    /,
    *,
    rot: np.ndarray,
    centre: np.ndarray,
    corners: np.ndarray,
    origin: np.ndarray,
    plate_type: int,
    rate_hz: float,
    cop_threshold_n: float,
    cop_poly: np.ndarray | None = None,
    length_m: float = 1.0,
    sign: float | None = None,
    up: np.ndarray | None = None,
) -> Platform:
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
        C3D TYPE; gives the sign when ``sign`` is None (see module docstring).
    cop_threshold_n : float
        CoP and tz are NaN where |fz| < this, N.
    cop_poly : ndarray, shape (12,), optional
        Kistler FPCOPPOLY CoP correction (TYPE 3), as ezc3d applies it, with
        coefficients for CoP in the file's length unit (``length_m`` metres).
    sign : float, optional
        +1 or -1 applied to the channels' force and moment (default: by TYPE).
    up : ndarray, shape (3,), optional
        The lab's upward unit vector (default: :func:`lab_up` of ``rot``).
    """
    sign = REACTION_SIGN[plate_type] if sign is None else sign
    up = lab_up(rot) if up is None else up
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        px = -moment_c_p[:, 1] / force_p[:, 2]
        py = moment_c_p[:, 0] / force_p[:, 2]
        if cop_poly is not None and np.any(cop_poly):
            k = cop_poly
            px, py = px / length_m, py / length_m
            x_off = (k[0] * py**4 + k[1] * py**2 + k[2]) * px**3 + (
                k[3] * py**4 + k[4] * py**2 + k[5]
            ) * px
            y_off = (k[6] * px**4 + k[7] * px**2 + k[8]) * py**3 + (
                k[9] * px**4 + k[10] * px**2 + k[11]
            ) * py
            px, py = (px - x_off) * length_m, (py - y_off) * length_m
        cop_p = np.empty((px.size, 3))  # np.column_stack's array without its dispatch
        cop_p[:, 0], cop_p[:, 1], cop_p[:, 2] = px, py, 0.0
        del px, py
        # each (n, 3) result computed in place and each temporary dropped when used, so
        # one plate's loads cost about their own size (the same arithmetic, in the same
        # order: x *= s is s * x)
        cop = cop_p @ rot.T
        cop += centre
        free_p = _cross(force_p, cop_p)
        del cop_p
        free_p += moment_c_p
        normal = _normal(rot, up)
        tz = free_p @ rot.T
        del free_p
        tz *= sign
        tz = tz @ normal
        force = force_p @ rot.T
        force *= sign
        moment = moment_c_p @ rot.T
        moment *= sign
        moment += _cross(centre, force)
        low = ~(np.abs(force @ normal) >= cop_threshold_n)
        np.copyto(cop, np.nan, where=low[:, None])
        np.copyto(tz, np.nan, where=low)
        return Platform(
            force=force,
            moment=moment,
            cop=cop,
            tz=tz,
            corners=corners,
            origin=origin,
            type=int(plate_type),
            rate_hz=float(rate_hz),
        )


def lab_up(rot: np.ndarray, /) -> np.ndarray:
    """The lab's upward unit vector for a plate: the lab axis nearest its normal, positive.

    Parameters
    ----------
    rot : ndarray, shape (3, 3)
        Plate-to-lab rotation (columns: plate axes), from :func:`plate_frame`.
    """
    up = np.zeros(3)
    up[int(np.argmax(np.abs(rot[:, 2])))] = 1.0
    return up


def _normal(rot: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The plate's surface normal (its z axis, either way) pointing towards ``up``."""
    z = rot[:, 2]
    return z if float(z @ up) > 0 else -z


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
        raise InputFormatError(
            message(
                "is missing or not numeric",
                file=path,
                field=f"FORCE_PLATFORM:{name}",
                fix="re-export the trial with its force plates defined",
            )
        )
    return np.asarray(p.value, dtype=np.float64)


def moment_unit(unit: str, /) -> float | None:
    """N·m per unit of a moment unit string (``Nmm``, ``N.mm``, ``N*m``, ``Ncm``...), or None.

    The metric units of :data:`cxlab.units.MOMENT` (a plate never reports ft·lbf).
    """
    k = unit_factor(unit, quantity="moment")
    return k if k in _METRIC_MOMENT else None


def _moment_scale(units: list[str], /) -> float | None:
    """N·m per unit of the moment channels when all three declare the same known unit."""
    scales = {moment_unit(u) for u in units}
    return scales.pop() if len(scales) == 1 else None


def _used_plates(fp: dict[str, Param], path: Path) -> int:
    """FORCE_PLATFORM:USED, checked against every per-plate parameter before anything is built."""
    used_p = fp.get("USED")
    used_v = used_p.flat() if used_p is not None and used_p.dtype != -1 else np.zeros(0)
    if not used_v.size or not np.isfinite(used_v[0]) or used_v[0] == 0:
        return 0
    used = int(used_v[0])
    sizes = {}
    for name, per in (("TYPE", 1), ("CORNERS", 12), ("ORIGIN", 3)):
        p = fp.get(name)
        sizes[name] = 0 if p is None or p.dtype == -1 else p.flat().size // per
    chan = fp.get("CHANNEL")
    sizes["CHANNEL"] = (
        0
        if chan is None or chan.dtype == -1
        else (chan.dims[1] if len(chan.dims) >= 2 else int(chan.flat().size > 0))
    )
    if used < 0 or used > min(sizes.values()):
        have = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise InputFormatError(
            message(
                f"declares {used} force plates but the plate parameters describe at most "
                f"{min(sizes.values())} ({have})",
                file=path,
                field="FORCE_PLATFORM:USED",
                value=used,
                fix="the file is damaged; re-export it from the capture software",
            )
        )
    return used


class _Wrench(NamedTuple):
    """A plate's channels as a plate-frame wrench about the surface centre (N, N·m)."""

    force: np.ndarray
    moment: np.ndarray
    rot: np.ndarray
    centre: np.ndarray
    corners: np.ndarray
    origin: np.ndarray
    half: np.ndarray  # half extents along plate x, y, m
    moment_unit_nm: float
    moment_unit_from: str


_NO_LOAD = np.empty((0, 3))  # a _Wrench's loads once its plate is built


def _half_extents(corners: np.ndarray, rot: np.ndarray, centre: np.ndarray) -> np.ndarray:
    local = (corners - centre) @ rot
    return np.abs(local[:, :2]).max(axis=0)


def _on_plate(px: np.ndarray, py: np.ndarray, half: np.ndarray) -> np.ndarray:
    """True where a plate-frame CoP lies on the plate (within :data:`COP_MARGIN_M`)."""
    return (np.abs(px) <= half[0] + COP_MARGIN_M) & (np.abs(py) <= half[1] + COP_MARGIN_M)


def _choose_moment_unit(
    force: np.ndarray,
    m_ch: np.ndarray,
    r: np.ndarray,
    half: np.ndarray,
    candidates: list[tuple[float, str]],
) -> tuple[float, str, str | None]:
    """The moment-channel unit under which the CoP falls on the plate, checked on the data.

    ``candidates`` are (N·m per unit, where it was declared) in order of preference.  The
    first whose CoP lies on the plate in >= 90 % of loaded samples wins; when the declared
    units all fail, N·m, N·cm and N·mm are tried.  Returns (factor, source, finding).
    """
    loaded = np.abs(force[:, 2]) >= LOADED_N
    if not loaded.any():
        return candidates[0][0], candidates[0][1], None
    f, m = np.compress(loaded, force, axis=0), np.compress(loaded, m_ch, axis=0)
    shift = _cross(f, r)

    def fraction(k: float) -> float:
        mc = m * k + shift
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = _on_plate(-mc[:, 1] / f[:, 2], mc[:, 0] / f[:, 2], half)
        return float(ok.mean())

    tried = list(dict.fromkeys(candidates))
    for k, src in tried:
        if fraction(k) >= 0.9:
            if (k, src) == tried[0]:
                return k, src, None
            return (
                k,
                src,
                (
                    f"moment channels read in {tried[0][1]} put the centre of pressure "
                    f"off the plate; read as {_unit_name(k)} ({src}), which puts it on the plate"
                ),
            )
    for k in _METRIC_MOMENT:
        if all(k != c for c, _ in tried) and fraction(k) >= 0.9:
            return (
                k,
                "centre of pressure on the plate",
                (
                    f"no declared moment unit ({', '.join(s for _, s in tried)}) puts the centre "
                    f"of pressure on the plate; read as {_unit_name(k)}, the only unit that does"
                ),
            )
    return candidates[0][0], candidates[0][1], None


def _unit_name(k: float) -> str:
    return _METRIC_MOMENT.get(k, f"{k:g} N·m")


class _PlateInputs(NamedTuple):
    """What the per-TYPE load functions need beside the plate's channels."""

    i: int  # 0-based plate index
    fp: dict[str, Param]
    r: np.ndarray  # (3,) FORCE_PLATFORM:ORIGIN with z <= 0, m (plate frame)
    half: np.ndarray  # (2,) half extents of the surface, m
    length_m: float
    idx: np.ndarray  # 0-based analog channel indices of the plate
    analog_units: list[str] | None
    moment_units: str
    where: dict[str, Any]
    findings: list[str]


#: force (n, 3) N and moment about the surface centre (n, 3) N·m in the plate frame, the
#: moment unit (N·m per channel unit) and where that unit came from
_Loads = tuple[np.ndarray, np.ndarray, float, str]


def _type1_loads(ch: np.ndarray, p: _PlateInputs) -> _Loads:
    """TYPE 1: Fx, Fy, Fz, CoPx, CoPy (POINT:UNITS), Tz (N x POINT:UNITS)."""
    force = ch[:, 0:3]
    cop = np.column_stack([ch[:, 3:5] * p.length_m, np.zeros(ch.shape[0])])
    m_c = _cross(cop, force)
    m_c[:, 2] += ch[:, 5] * p.length_m
    return force, m_c, p.length_m, "N x POINT:UNITS"


def _type3_loads(ch: np.ndarray, p: _PlateInputs) -> _Loads:
    """TYPE 3 (Kistler): fx12, fx34, fy14, fy23, fz1..fz4 from sensors at (+-a, +-b)."""
    force = np.column_stack([ch[:, 0] + ch[:, 1], ch[:, 2] + ch[:, 3], ch[:, 4:8].sum(axis=1)])
    a, b = p.r[0], p.r[1]
    m_c = np.column_stack(
        [
            b * (ch[:, 4] + ch[:, 5] - ch[:, 6] - ch[:, 7]),
            a * (ch[:, 5] + ch[:, 6] - ch[:, 4] - ch[:, 7]),
            b * (ch[:, 1] - ch[:, 0]) + a * (ch[:, 2] - ch[:, 3]),
        ]
    ) + _cross(force, np.array([0.0, 0.0, p.r[2]]))
    return force, m_c, p.length_m, "Kistler channels in N"


def _six_loads(six: np.ndarray, p: _PlateInputs, *, channel_units: bool) -> _Loads:
    """Fx, Fy, Fz, Mx, My, Mz about the transducer origin; the moment unit is the candidate
    (ANALOG:UNITS of the moment channels when ``channel_units``, POINT:MOMENT_UNITS,
    N x POINT:UNITS) that keeps the CoP on the plate (:func:`_choose_moment_unit`)."""
    force = six[:, 0:3]
    candidates: list[tuple[float, str]] = []
    if channel_units and p.analog_units is not None:
        k = _moment_scale([p.analog_units[j] for j in p.idx[3:6]])
        if k is not None:
            candidates.append((k, f"ANALOG:UNITS '{p.analog_units[p.idx[3]]}'"))
    if (k := moment_unit(p.moment_units)) is not None:
        candidates.append((k, f"POINT:MOMENT_UNITS '{p.moment_units}'"))
    candidates.append((p.length_m, "N x POINT:UNITS"))
    unit_k, unit_from, finding = _choose_moment_unit(force, six[:, 3:6], p.r, p.half, candidates)
    if finding:
        p.findings.append(message(finding, **p.where))
    return force, six[:, 3:6] * unit_k + _cross(force, p.r), unit_k, unit_from


def _type2_loads(ch: np.ndarray, p: _PlateInputs) -> _Loads:
    """TYPE 2: the six channels are the forces and moments (ANALOG:UNITS apply)."""
    return _six_loads(ch, p, channel_units=True)


def _type4_loads(ch: np.ndarray, p: _PlateInputs) -> _Loads:
    """TYPE 4: TYPE 2 after the plate's 6 x 6 CAL_MATRIX (channel units no longer apply)."""
    cal = p.fp.get("CAL_MATRIX")
    if (
        cal is None
        or cal.dtype == -1
        or len(cal.dims) < 3
        or cal.dims[2] <= p.i
        or cal.dims[0] < 6
        or cal.dims[1] < 6
    ):
        raise InputFormatError(
            message(
                "TYPE 4 needs a 6 x 6 CAL_MATRIX per plate",
                value=cal.dims if cal else None,
                fix="re-export with the calibration matrix",
                **p.where,
            )
        )
    six = ch @ np.asarray(cal.value, dtype=float)[:6, :6, p.i].T
    return _six_loads(six, p, channel_units=False)


#: C3D FORCE_PLATFORM:TYPE -> its channels as loads (Motion Lab Systems, C3D User Guide,
#: "The FORCE_PLATFORM group"); keys are those of :data:`N_CHANNELS`.
_LOADS_BY_TYPE = {1: _type1_loads, 2: _type2_loads, 3: _type3_loads, 4: _type4_loads}


def _wrench(
    ch: np.ndarray,
    t: int,
    i: int,
    *,
    fp: dict[str, Param],
    corners_all,
    origin_all,
    length_m: float,
    idx: np.ndarray,
    analog_units: list[str] | None,
    moment_units: str,
    path: Path,
    where: dict[str, Any],
    findings: list[str],
) -> _Wrench:
    corners = corners_all[12 * i : 12 * (i + 1)].reshape(4, 3) * length_m
    origin = origin_all[3 * i : 3 * (i + 1)] * length_m
    r = -origin if origin[2] > 0 else origin
    with np.errstate(invalid="ignore", divide="ignore"):
        rot, centre = plate_frame(corners)
    if not (np.isfinite(rot).all() and np.isfinite(centre).all()):
        raise InputFormatError(
            message(
                "CORNERS do not span a plate (degenerate or not finite)",
                value=corners.tolist(),
                fix="re-export with the plate geometry",
                **where,
            )
        )
    half = _half_extents(corners, rot, centre)
    inputs = _PlateInputs(
        i, fp, r, half, length_m, idx, analog_units, moment_units, where, findings
    )
    force, m_c, unit_k, unit_from = _LOADS_BY_TYPE[t](ch, inputs)
    return _Wrench(force, m_c, rot, centre, corners, origin, half, unit_k, unit_from)


def _load_sign(vn: np.ndarray) -> float | None:
    """+1/-1 making the vertical force positive where the plate is loaded; None if never."""
    a = np.abs(vn)
    peak = float(np.nanmax(a)) if a.size and np.isfinite(a).any() else 0.0
    if peak < LOADED_N:
        return None
    loaded = a >= max(LOADED_N, 0.5 * peak)
    return 1.0 if float(_median(vn[loaded])) > 0 else -1.0  # loaded excludes NaN


def _median(v: np.ndarray) -> np.floating:
    """``np.median`` of a non-empty 1-D float array without NaN, without its dispatch (~60 µs
    a call on a few thousand samples): the same partition (the same ``kth``, so the same
    element of tied values such as -0.0 and 0.0) and the same mean of the middle two."""
    n = v.size
    h = n // 2
    if n % 2:  # np.mean of the middle element(s): add.reduce (-0.0 sums to 0.0), / count
        return np.add.reduce(np.partition(v, [h, -1])[h : h + 1]) / 1
    return np.add.reduce(np.partition(v, [h - 1, h, -1])[h - 1 : h + 1]) / 2


def _percentile(kept: np.ndarray, q: float | list[float]) -> Any:
    """``np.percentile(kept, q)`` (method "linear") of a non-empty 1-D float array without
    NaN, in NumPy's own steps without its dispatch and validation (~140 µs a call): virtual
    index (n - 1) q / 100, the same partition (the same ``kth``: the sorted unique indices
    0, -1 and those either side of each virtual index), NumPy's two-sided interpolation
    (``numpy.lib._function_base_impl._lerp``), each step in Python floats: the same IEEE-754
    operations as NumPy's float64 arrays, without ~20 µs of NumPy calls on 1- or 2-element
    arrays.  ``q`` a number (a NumPy float returned) or a list (an array)."""
    n = kept.size
    sides = []
    for quantile in [x / 100 for x in q] if isinstance(q, list) else [q / 100]:
        virtual = (n - 1) * quantile
        prev = -1 if virtual >= n - 1 else math.floor(virtual)
        nxt = -1 if virtual >= n - 1 else prev + 1
        sides.append((virtual - prev, prev, nxt))
    part = np.partition(kept, sorted({0, -1, *(i for _, *ij in sides for i in ij)}))
    out = []
    for gamma, prev, nxt in sides:
        a, b = float(part[prev]), float(part[nxt])
        diff = b - a
        out.append(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)
    return np.array(out) if isinstance(q, list) else np.float64(out[0])


def _nanpercentile(v: np.ndarray, q: Any) -> Any:
    """``np.nanpercentile`` of a 1-D array with at least one non-NaN value, without its
    masked-array machinery: the same order statistics of the same values (NaN dropped)."""
    kept = v[~np.isnan(v)]
    return _percentile(kept, q) if kept.size else np.nanpercentile(v, q)


def _zero_is_unloaded(vn: np.ndarray, window: slice) -> tuple[bool, float, float]:
    """Whether the ZERO window is plausibly empty: (ok, window level N, plate's lowest N).

    Loaded when the window's mean vertical force is more than :data:`LOADED_N` above the
    plate's own lowest level (1st percentile over the trial: flight, or the plate empty)
    or above 4 x LOADED_N outright (someone stood on it the whole trial).
    """
    level = vn[window]
    # np.nanmean's numbers (NaN as 0 summed by add.reduce, over the count of the others)
    # without its masked copies when the window holds no NaN: add.reduce over the size
    w = float(np.nanmean(level) if np.isnan(level).any() else np.add.reduce(level) / level.size)
    low = float(_nanpercentile(vn, 1))
    return not (w - low > LOADED_N or w > 4 * LOADED_N), w, low


def plate_findings(
    plate: Platform, /, *, half: np.ndarray, rot: np.ndarray, centre: np.ndarray, up: np.ndarray
) -> list[str]:
    """Physical checks no format rule catches, one sentence each (empty when all pass).

    * stance force up: among loaded samples (|vertical| >= max(50 N, 20 % of the peak))
      fewer than 10 % may be negative;
    * centre of pressure on the plate (± :data:`COP_MARGIN_M`) in >= 95 % of the samples
      where |vertical| > 50 N;
    * no negative level below -50 N (a plate cannot pull the body down); no steady load
      above :data:`ABSURD_STEADY_N` with less than 100 N of change (an empty plate whose
      offset is wrong);
    * no force above :data:`ABSURD_FORCE_N`.
    """
    out: list[str] = []
    normal = _normal(rot, up)
    vn = plate.force @ normal
    if not np.isfinite(vn).any():
        return out
    mag = np.abs(vn)
    peak = float(np.fmax.reduce(mag))  # np.nanmax's reduction (not all NaN: tested above)
    if peak >= LOADED_N:
        loaded = mag >= max(LOADED_N, 0.2 * peak)
        # np.mean of the booleans: their count (exact) over the number loaded (>= 1: the peak)
        neg = np.count_nonzero(vn[loaded] < 0) / np.count_nonzero(loaded)
        if neg > 0.1:
            out.append(
                f"vertical reaction is negative in {neg:.0%} of the loaded samples "
                f"(down to {np.nanmin(vn):.0f} N): stance force points down"
            )
        cop = plate.cop.compress(mag > LOADED_N, axis=0)
        ok = np.isfinite(cop[:, 0]) & np.isfinite(cop[:, 1]) & np.isfinite(cop[:, 2])
        if ok.any():
            local = (cop.compress(ok, axis=0) - centre) @ rot
            off = ~_on_plate(local[:, 0], local[:, 1], half)
            if np.count_nonzero(off) / off.size > 0.05:  # off.mean(), as in the sentence
                dist = np.max(np.maximum(np.abs(local[:, :2]) - half, 0.0).max(axis=1))
                out.append(
                    f"centre of pressure is off the plate in {off.mean():.0%} of the "
                    f"samples above {LOADED_N:.0f} N (up to {dist:.2f} m outside)"
                )
    p1, p99 = _nanpercentile(vn, [1, 99])
    if p1 < -LOADED_N:
        out.append(
            f"vertical force sits at {p1:.0f} N or below in 1 % of the samples: a plate "
            "cannot pull the body down (offset or sign wrong)"
        )
    if p99 - p1 < 2 * LOADED_N and abs(med := _median(vn[~np.isnan(vn)])) > ABSURD_STEADY_N:
        out.append(
            f"plate reads a steady {med:.0f} N with no load change, "
            "more than a person standing still: analog offset wrong?"
        )
    # max |F| = sqrt of the largest squared norm (sqrt is monotonic), summed in the order
    # np.linalg.norm(axis=1) sums, without its per-call overhead and (n, 3) temporary
    f = plate.force
    fmax = float(np.sqrt(np.nanmax(f[:, 0] * f[:, 0] + f[:, 1] * f[:, 1] + f[:, 2] * f[:, 2])))
    if fmax > ABSURD_FORCE_N:
        out.append(
            f"force reaches {fmax:.0f} N, beyond anything a person produces "
            f"(> {ABSURD_FORCE_N:.0f} N)"
        )
    return out


def platforms_from_analogs(
    analogs: np.ndarray,
    fp: dict[str, Param],
    /,
    *,
    path: Path,
    rate_hz: float,
    n_sub: int,
    length_m: float,
    cop_threshold_n: float,
    zero_baseline: bool,
    analog_units: list[str] | None = None,
    moment_units: str = "",
) -> PlateSet:
    """Compute every used force platform from calibrated analog channels.

    Parameters
    ----------
    analogs : ndarray, shape (n_samples, n_channels)
        Calibrated analogs (force channels in N, moment channels in N·unit).
    fp : dict
        The FORCE_PLATFORM group.
    length_m : float
        Metres per POINT:UNITS unit (corners, origin, TYPE-1 CoP, default moment unit).
    zero_baseline : bool
        Subtract the mean of each plate channel over FORCE_PLATFORM:ZERO, when that window
        is plausibly unloaded (otherwise raw values are kept, with a warning).
    analog_units : list of str, optional
        ANALOG:UNITS per channel.
    moment_units : str
        POINT:MOMENT_UNITS (evidence for the moment channels' unit).

    Decisions, each checked against the data (see ``docs/io-c3d.md``)
    -------------------------------------------------------------------
    * Sign of a TYPE-3 plate: the one making the vertical force positive where the plate is
      loaded (|F| >= half its peak); an unloaded TYPE-3 plate takes the sign of the file's
      loaded TYPE-3 plates, else -1.  TYPE 1, 2, 4 keep +1 and are checked.
    * Moment unit of TYPE 2/4 plates: ANALOG:UNITS of the moment channels, then
      POINT:MOMENT_UNITS, then N x POINT:UNITS; the first under which the CoP falls on the
      plate is used (a mislabelled unit is a warning).
    * ZERO: subtracted only when the window is plausibly unloaded.

    Returns
    -------
    PlateSet
        ``platforms`` (one per used plate, file order; an unsupported TYPE or absent
        channels give an all-NaN plate with a warning), ``conventions`` and ``warnings``
        (quality findings, already emitted as :class:`~cxlab._check.CxlabWarning`).

    Raises
    ------
    InputFormatError
        USED larger than the plate parameters describe; CORNERS/ORIGIN/CHANNEL/CAL_MATRIX
        too short or degenerate.
    """
    used = _used_plates(fp, path)
    if used <= 0:
        return PlateSet([], [], [])
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
    poly = fp.get("FPCOPPOLY")
    n_samples, n_ch = analogs.shape
    window = _zero_window(fp.get("ZERO"), n_sub, n_samples) if zero_baseline else None
    findings: list[str] = []
    built: list[
        tuple[int, dict[str, Any], _Wrench, np.ndarray, float | None, np.ndarray, Any] | None
    ] = []
    for i in range(used):
        where: dict[str, Any] = {"file": path, "field": f"FORCE_PLATFORM plate {i + 1}"}
        t = int(types[i])
        if t not in N_CHANNELS:
            warn(
                "has an unsupported TYPE; its values are NaN (cxlab reads TYPE 1-4)",
                value=t,
                **where,
            )
            built.append(None)
            continue
        k = N_CHANNELS[t]
        if chan.shape[0] < k or chan.shape[1] <= i:
            raise InputFormatError(
                message(
                    f"CHANNEL lists too few channels (TYPE {t} needs {k})",
                    value=chan.shape,
                    fix="re-export with complete plate channels",
                    **where,
                )
            )
        idx = chan[:k, i].astype(int) - 1
        if np.any(idx < 0) or np.any(idx >= n_ch):
            warn(
                f"CHANNEL refers to analog channels the file does not have ({n_ch} stored); "
                "its values are NaN",
                value=(idx + 1).tolist(),
                **where,
            )
            built.append(None)
            continue
        w = _wrench(
            analogs[:, idx],
            t,
            i,
            fp=fp,
            corners_all=corners_all,
            origin_all=origin_all,
            length_m=length_m,
            idx=idx,
            analog_units=analog_units,
            moment_units=moment_units,
            path=path,
            where=where,
            findings=findings,
        )
        up = lab_up(w.rot)
        # the channels' vertical force (before the sign): a TYPE-3 plate's sign comes from
        # it, and the ZERO check below reuses it (times the sign: exact)
        vn = (w.force @ w.rot.T) @ _normal(w.rot, up) if t == 3 or window is not None else None
        built.append((t, where, w, up, _load_sign(vn) if t == 3 else 1.0, idx, vn))
    type3_signs = {b[4] for b in built if b is not None and b[0] == 3 and b[4] is not None}
    out: list[Platform] = []
    conventions: list[PlateConvention] = []
    for i in range(len(built)):
        b, built[i] = built[i], None  # a plate's channels and wrench go once it is built
        if b is None:
            t = int(types[i])
            out.append(
                nan_platform(n_samples, plate_type=t if t in N_CHANNELS else 0, rate_hz=rate_hz)
            )
            continue
        t, where, w, up, sign, idx, vn = b
        sign_from: Literal["load", "type default", "other plate"] = "load"
        if sign is None and len(type3_signs) == 1:
            sign, sign_from = next(iter(type3_signs)), "other plate"
        elif sign is None:
            sign, sign_from = REACTION_SIGN[t], "type default"
        force_p, m_c = w.force, w.moment
        w = w._replace(force=_NO_LOAD, moment=_NO_LOAD)  # the geometry stays
        del b
        zero: Literal["none", "subtracted", "kept raw"] = "none"
        if window is not None:
            vn = vn if sign == 1.0 else sign * vn
            ok, level, low = _zero_is_unloaded(vn, window)
            if ok:
                force_p = force_p - force_p[window].mean(axis=0)
                m_c = m_c - m_c[window].mean(axis=0)
                zero = "subtracted"
            else:
                zero = "kept raw"
                findings.append(
                    message(
                        f"FORCE_PLATFORM:ZERO frames carry {level:.0f} N while the plate's lowest "
                        f"level is {low:.0f} N, so the plate was loaded there; baseline not "
                        "subtracted, raw values kept",
                        **where,
                    )
                )
        cop_poly = None
        if t == 3 and poly is not None and poly.dtype != -1 and poly.flat().size >= 12 * (i + 1):
            cop_poly = poly.flat()[12 * i : 12 * (i + 1)]
        plate = platform_from_wrench(
            force_p,
            m_c,
            rot=w.rot,
            centre=w.centre,
            corners=w.corners,
            origin=w.origin,
            plate_type=t,
            rate_hz=rate_hz,
            cop_threshold_n=cop_threshold_n,
            cop_poly=cop_poly,
            length_m=length_m,
            sign=sign,
            up=up,
        )
        del force_p, m_c  # the Platform holds its own arrays
        plate.channels = tuple(int(j) for j in idx)
        for f in plate_findings(plate, half=w.half, rot=w.rot, centre=w.centre, up=up):
            findings.append(message(f, **where))
        out.append(plate)
        conventions.append(
            PlateConvention(
                plate=i + 1,
                type=t,
                reaction_sign=float(sign),
                sign_from=sign_from,
                zero=zero,
                moment_unit_nm=float(w.moment_unit_nm),
                moment_unit_from=w.moment_unit_from,
                up="+" + "xyz"[int(np.argmax(up))],
            )
        )
    for f in findings:
        warn(f)
    return PlateSet(out, conventions, findings)
