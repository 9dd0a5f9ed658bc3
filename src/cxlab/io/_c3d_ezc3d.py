"""The ``engine="ezc3d"`` path of :func:`cxlab.io.c3d.read_c3d`.

ezc3d (Michaud & Begon, 2021, *J. Open Source Softw.* 6(58), 2911) is run with
``extract_forceplat_data=True`` and its output is mapped into a
:class:`~cxlab.io.recording.Recording` with the same conventions as the fast
engine.  Mapping of ezc3d's ``data["platform"][i]`` (units of the file:
N, N·<POINT:UNITS>, <POINT:UNITS>; ``L`` = metres per unit; ``s`` = +1 for
TYPE 1, 2, 4 and -1 for TYPE 3; ``c`` = mean of the corners, m;
``n`` = upward plate normal):

* ``force = s * force``
* ``moment = s * moment * L + c × force`` (ezc3d's moment is about the plate
  surface centre; cxlab's is about the lab origin)
* ``cop = center_of_pressure * L``
* ``tz = s * (Tz * L) · n``

Before handing a file to ezc3d the header and parameter section are
validated by cxlab's own parser, so garbage never reaches the C++ code.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import InputFormatError, message, warn
from cxlab.io._c3d_header import Param
from cxlab.io.forceplates import (
    REACTION_SIGN,
    nan_platform,
    plate_frame,
    platform_from_wrench,
    zero_window,
)
from cxlab.io.recording import Platform, Recording

__all__ = ["read_c3d_ezc3d"]


def _params(raw: Any) -> dict[str, dict[str, Param]]:
    out: dict[str, dict[str, Param]] = {}
    for gname in raw.keys():
        group = raw[gname]
        out[gname] = {}
        for pname in group.keys():
            if pname == "__METADATA__":
                continue
            p = group[pname]
            dtype = int(p["type"])
            value = p["value"]
            if dtype == -1:
                value = [str(v) for v in (value if isinstance(value, list) else [value])]
                dims: tuple[int, ...] = (len(value),)
            else:
                value = np.asarray(value)
                dims = value.shape
            out[gname][pname] = Param(dtype, dims, value)
    return out


def _platforms(c: Any, params: dict[str, dict[str, Param]], path: Path, *, length_m: float,
               n_sub: int, n_samples: int, rate_hz: float, cop_threshold_n: float,
               zero_baseline: bool) -> list[Platform]:
    fp = params.get("FORCE_PLATFORM", {})
    types = fp["TYPE"].flat().astype(int) if "TYPE" in fp else np.zeros(0, int)
    out = []
    plates = c["data"]["platform"] if "platform" in c["data"].keys() else []
    for i, q in enumerate(plates):
        t = int(types[i])
        n = q["force"].shape[1]
        if n == 0:
            warn("has no samples in ezc3d's output; its values are NaN", file=path,
                 field=f"FORCE_PLATFORM plate {i + 1}")
            out.append(nan_platform(n_samples, plate_type=t, rate_hz=rate_hz))
            continue
        corners = np.asarray(q["corners"], dtype=float).T * length_m
        rot, centre = plate_frame(corners)
        up = -rot[:, 2]
        sign = REACTION_SIGN[t]
        f_lab = np.asarray(q["force"], dtype=float).T
        m_lab = np.asarray(q["moment"], dtype=float).T * length_m
        origin = np.asarray(q["origin"], dtype=float) * length_m
        window = zero_window(fp, n_sub=n_sub, n_samples=n) if zero_baseline else None
        if window is not None:  # linear in the channels: zero the wrench, recompute CoP
            f_lab = f_lab - f_lab[window].mean(axis=0)
            m_lab = m_lab - m_lab[window].mean(axis=0)
            out.append(platform_from_wrench(
                f_lab @ rot, m_lab @ rot, rot=rot, centre=centre, corners=corners,
                origin=origin, plate_type=t, rate_hz=rate_hz, cop_threshold_n=cop_threshold_n))
            continue
        force = sign * f_lab
        cop = np.asarray(q["center_of_pressure"], dtype=float).T * length_m
        tz = sign * (np.asarray(q["Tz"], dtype=float).T * length_m) @ up
        low = ~(np.abs(force @ up) >= cop_threshold_n)
        cop[low] = np.nan
        tz[low] = np.nan
        out.append(Platform(force=force, moment=sign * m_lab + np.cross(centre, force), cop=cop,
                            tz=tz, corners=corners, origin=origin, type=t,
                            rate_hz=float(rate_hz)))
    return out


# read by ezc3d as valuesAs...()[0] (must hold a number) / as numbers (must not be text)
_EZC3D_SCALAR = {"POINT": ("USED", "SCALE", "RATE", "FRAMES"), "ANALOG": ("USED", "GEN_SCALE"),
                 "FORCE_PLATFORM": ("USED",), "EVENT": ("USED",)}
_EZC3D_NUMERIC = {"POINT": ("DATA_START",), "ANALOG": ("RATE", "SCALE", "OFFSET"),
                  "FORCE_PLATFORM": ("TYPE", "ZERO", "CORNERS", "ORIGIN", "CHANNEL"),
                  "EVENT": ("TIMES",)}


def _ezc3d_safety(own: dict[str, dict[str, Param]], path: Path) -> bool:
    """Reject layouts ezc3d indexes without bounds checks; False = skip its plate extraction.

    ezc3d 1.7 segfaults when ANALOG:SCALE/OFFSET hold fewer values than
    ANALOG:USED (found by the fuzz test), so those are errors here.
    """
    from cxlab.io._c3d_params import _concat, _num

    for group, names in [*_EZC3D_SCALAR.items(), *_EZC3D_NUMERIC.items()]:
        for name in names:
            p = own.get(group, {}).get(name)
            if p is not None and (p.dtype == -1 or (name in _EZC3D_SCALAR.get(group, ())
                                                    and p.flat().size == 0)):
                raise InputFormatError(message(
                    "is not a number, which ezc3d cannot read", file=path,
                    field=f"{group}:{name}", value=p.value, fix="use engine='fast'"))
    for group in ("POINT", "ANALOG", "FORCE_PLATFORM", "EVENT"):
        for name, p in own.get(group, {}).items():
            if p.dtype == -1 and not p.dims:  # ezc3d reads dimension()[0]
                raise InputFormatError(message(
                    "is text without dimensions, which ezc3d cannot read", file=path,
                    field=f"{group}:{name}", value=p.value, fix="use engine='fast'"))
            if name.rstrip("0123456789") in ("LABELS", "DESCRIPTIONS", "UNITS") and p.dtype != -1:
                raise InputFormatError(message(
                    "is not text, which ezc3d cannot read", file=path, field=f"{group}:{name}",
                    value=p.dtype, fix="use engine='fast'"))
    analog, point = own.get("ANALOG", {}), own.get("POINT", {})
    n_ch = int(_num(analog, "USED", 0) or 0) & 0xFFFF
    if n_ch and "SHADOW" not in own:
        for name in ("SCALE", "OFFSET"):
            n = len(_concat(analog, name))
            if n < n_ch:
                raise InputFormatError(message(
                    f"has {n} values for {n_ch} channels, which ezc3d cannot read", file=path,
                    field=f"ANALOG:{name}", value=n, fix="use engine='fast'"))
        if _num(analog, "GEN_SCALE") is None:
            raise InputFormatError(message("is missing, which ezc3d cannot read", file=path,
                                           field="ANALOG:GEN_SCALE", fix="use engine='fast'"))
    for group, used in (("POINT", point), ("ANALOG", analog)):
        n = int(_num(used, "USED", 0) or 0) & 0xFFFF
        n_labels = len(_concat(used, "LABELS"))
        if n and n_labels < n:
            raise InputFormatError(message(
                f"has {n_labels} labels for {n} entries, which ezc3d cannot read", file=path,
                field=f"{group}:LABELS", value=n_labels, fix="use engine='fast'"))
    if int(_num(point, "USED", 0) or 0) and _num(point, "SCALE") is None:
        raise InputFormatError(message("is missing, which ezc3d cannot read", file=path,
                                       field="POINT:SCALE", fix="use engine='fast'"))
    fp = own.get("FORCE_PLATFORM", {})
    used = int(_num(fp, "USED", 0) or 0)
    if used <= 0:
        return True
    try:
        types = fp["TYPE"].flat()
        chan = np.asarray(fp["CHANNEL"].value, dtype=float)
        ok = (types.size >= used and set(types[:used].astype(int)) <= {1, 2, 3, 4}
              and fp["CORNERS"].flat().size >= 12 * used and fp["ORIGIN"].flat().size >= 3 * used
              and chan.ndim == 2 and chan.shape[1] >= used and chan.shape[0] >= 6
              and chan[:, :used].min() >= 1 and chan[:, :used].max() <= n_ch)
    except (KeyError, TypeError, ValueError):
        ok = False
    return bool(ok)


def read_c3d_ezc3d(path: Path, /, *, cop_threshold_n: float, zero_baseline: bool) -> Recording:
    """Read ``path`` with ezc3d and map it into a Recording (see module docstring).

    Raises
    ------
    InputFormatError
        The file fails cxlab's structural checks, is MIPS (ezc3d cannot read
        it), or ezc3d raises.
    """
    import ezc3d

    from cxlab.io._c3d_header import read_header, read_parameters
    from cxlab.io._c3d_params import (
        _concat,
        _labels,
        _str,
        events_from_parameters,
        length_factor,
        split_points,
    )
    from cxlab.io.c3d import C3DUnsupportedError, _read_fast

    buf = path.read_bytes()
    h = read_header(buf, path)
    if h.processor == "mips":
        raise InputFormatError(message("ezc3d cannot read MIPS (big-endian) C3D files",
                                       file=path, field="processor", value="mips",
                                       fix="use engine='fast' or 'auto'"))
    own = read_parameters(buf, path, h, strict=True)
    try:  # full structural validation (data size, scales, rates) before the C++ code runs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _read_fast(buf, path, cop_threshold_n=cop_threshold_n, zero_baseline=False)
    except C3DUnsupportedError:
        pass
    plates_ok = _ezc3d_safety(own, path)
    if not plates_ok:
        warn("force-plate parameters are incomplete or refer to absent channels; plates "
             "skipped with engine='ezc3d'", file=path, field="FORCE_PLATFORM")
    try:
        try:
            c = ezc3d.c3d(str(path), extract_forceplat_data=plates_ok)
        except Exception as exc:  # plate extraction only; retry without it
            c = ezc3d.c3d(str(path))
            warn("ezc3d could not extract the force plates; plates skipped", file=path,
                 field="FORCE_PLATFORM", value=str(exc))
    except Exception as exc:
        raise InputFormatError(message("ezc3d cannot read the file", file=path, value=str(exc),
                                       fix="try engine='fast'")) from None
    params = _params(c["parameters"])
    want = int(own.get("ANALOG", {}).get("USED", Param(2, (), np.array(0))).flat()[0]) & 0xFFFF
    got = np.asarray(c["data"]["analogs"]).shape[1]
    if want != got:  # e.g. ANALOG:RATE missing: ezc3d then misaligns every frame
        raise InputFormatError(message(
            f"ezc3d decodes {got} analog channels but ANALOG:USED is {want}, so its frames "
            "would be misaligned", file=path, field="ANALOG:USED", value=want,
            fix="use engine='fast' or 'auto'"))
    point, analog = params.get("POINT", {}), params.get("ANALOG", {})
    pts = np.asarray(c["data"]["points"], dtype=float)
    n_frames, n_points = pts.shape[2], pts.shape[1]
    units = _str(point, "UNITS", "")
    length_m = length_factor(units, path=path) if n_points or "FORCE_PLATFORM" in params else 1e-3
    xyz = pts[:3].transpose(2, 1, 0) * length_m
    res = np.asarray(c["data"]["meta_points"]["residuals"], dtype=float)[0].T
    invalid = ~(res >= 0) | np.isnan(xyz).any(axis=-1)
    residuals = np.where(invalid, np.nan, res * length_m)
    xyz[invalid] = np.nan
    labels = _labels(_concat(point, "LABELS"), n_points, "point", path)
    is_marker, other = split_points(point, xyz, labels, length_m)

    analogs = np.asarray(c["data"]["analogs"], dtype=float)[0].T
    n_ch = analogs.shape[1]
    analog_labels = _labels(_concat(analog, "LABELS"), n_ch, "analog", path)
    analog_units = ([str(u).strip() for u in _concat(analog, "UNITS")] + [""] * n_ch)[:n_ch]
    point_rate = float(c["header"]["points"]["frame_rate"])
    analog_rate = float(c["header"]["analogs"]["frame_rate"]) if n_ch else 0.0
    n_sub = analogs.shape[0] // n_frames if n_frames else 0
    platforms = _platforms(c, params, path, length_m=length_m, n_sub=n_sub,
                           n_samples=analogs.shape[0], rate_hz=analog_rate,
                           cop_threshold_n=cop_threshold_n, zero_baseline=zero_baseline)
    hev = c["header"]["events"]
    header_events = [(str(lab).strip(), float(t)) for lab, t in
                     zip(hev["events_label"], hev["events_time"], strict=False) if str(lab).strip()]
    meta = {
        "manufacturer": _str(params.get("MANUFACTURER", {}), "COMPANY"),
        "software": _str(params.get("MANUFACTURER", {}), "SOFTWARE"),
        "first_frame": int(c["header"]["points"]["first_frame"]) + 1,
        "units": {"point": units, "analog": sorted(set(analog_units))},
        "processor": h.processor,
        "storage": "float" if h.scale < 0 else "int16",
        "points_other": other,
        "parameters": {g: {k: p.plain() for k, p in grp.items()} for g, grp in params.items()},
        "ezc3d_version": getattr(ezc3d, "__version__", ""),
    }
    return Recording(
        markers=xyz[:, is_marker],
        marker_labels=[lab for lab, m in zip(labels, is_marker, strict=True) if m],
        residuals=residuals[:, is_marker], point_rate_hz=point_rate, analogs=analogs,
        analog_labels=analog_labels, analog_units=analog_units, analog_rate_hz=analog_rate,
        platforms=platforms, events=events_from_parameters(params, header_events), meta=meta)
