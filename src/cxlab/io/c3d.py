"""Read C3D motion-capture files into a :class:`~cxlab.io.recording.Recording`.

Two engines, chosen like pandas' ``engine=``:

* ``"fast"`` -- cxlab's own decoder: header and parameters parsed in
  :mod:`cxlab.io._c3d_header`, the whole data block decoded by one
  :func:`numpy.frombuffer` call with a structured dtype (no loop over frames or
  samples); int16 and float32 storage; Intel, DEC (VAX F-float) and MIPS
  (big-endian) files; force plates from :mod:`cxlab.io.forceplates`.
* ``"ezc3d"`` -- the ezc3d library, mapped into the same Recording
  (:mod:`cxlab.io._c3d_ezc3d`).
* ``"auto"`` -- fast; falls back to ezc3d, logging the reason on the
  ``cxlab.io`` logger, for a layout the fast path does not support.

See ``docs/io-c3d.md`` for the conventions and the measured speed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import InputFormatError, check_option, message, warn
from cxlab.io._c3d_header import (
    BLOCK,
    C3DHeader,
    Param,
    dec_to_float32,
    read_header,
    read_parameters,
)
from cxlab.io._c3d_params import (
    _concat,
    _labels,
    _num,
    _str,
    events_from_parameters,
    length_factor,
    split_points,
)
from cxlab.io.forceplates import PlateSet, platforms_from_analogs
from cxlab.io.recording import Recording

__all__ = ["C3DUnsupportedError", "length_factor", "read_c3d"]

log = logging.getLogger("cxlab.io")

ENGINES = ("auto", "fast", "ezc3d")


class C3DUnsupportedError(InputFormatError):
    """A valid C3D layout the fast engine does not decode (``auto`` falls back to ezc3d)."""


def _frames_field(group: dict[str, Param], name: str) -> int | None:
    """A 32-bit frame number stored as two unsigned 16-bit words (TRIAL:ACTUAL_*_FIELD)."""
    p = group.get(name)
    if p is None or p.dtype == -1 or p.flat().size < 2:
        return None
    if not np.isfinite(p.flat()[:2]).all():
        return None
    lo, hi = (int(v) & 0xFFFF for v in p.flat()[:2])
    return lo + 65536 * hi


def _n_frames(h: C3DHeader, params: dict[str, dict[str, Param]]) -> tuple[int, int]:
    """(first_frame, n_frames), honouring > 65,535 frames (TRIAL, LONG_FRAMES, float FRAMES)."""
    point = params.get("POINT", {})
    first = h.first_frame
    n = h.last_frame - h.first_frame + 1 if h.last_frame >= h.first_frame else 0
    frames = point.get("FRAMES")
    if frames is not None and frames.dtype != -1 and frames.flat().size \
            and np.isfinite(frames.flat()[0]):
        v = frames.flat()[0]
        v = int(v) & 0xFFFF if frames.dtype == 2 else int(v)
        if v > 0:
            n = v
    long_frames = _num(point, "LONG_FRAMES")
    if long_frames is not None and long_frames > n:
        n = int(long_frames)
    trial = params.get("TRIAL", {})
    start = _frames_field(trial, "ACTUAL_START_FIELD")
    end = _frames_field(trial, "ACTUAL_END_FIELD")
    if start is not None and end is not None and end >= start and end - start + 1 > n:
        first, n = start, end - start + 1
    return first, n


def _per_channel(values: list[Any], n: int, name: str, path: Path, default: float) -> np.ndarray:
    if not values:
        return np.full(n, default)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except ValueError:
        raise InputFormatError(message("must be numbers", file=path, field=f"ANALOG:{name}",
                                       value=values[:3], fix="re-export the file")) from None
    if arr.size == 1:
        return np.full(n, arr[0])
    if arr.size < n:
        raise InputFormatError(message(f"has {arr.size} values for {n} analog channels",
                                       file=path, field=f"ANALOG:{name}", value=arr.size,
                                       fix="re-export the trial with per-channel calibration"))
    return arr[:n]


def _decode(buf: bytes, path: Path, h: C3DHeader, *, n_points: int, n_ch: int, n_sub: int,
            n_frames: int, is_float: bool, unsigned: bool) -> tuple[np.ndarray, np.ndarray]:
    """The data block as (points (n_frames, n_points, 4), analogs (n_frames*n_sub, n_ch)) floats."""
    e = h.endian
    if is_float:
        word = "<u4" if h.processor == "dec" else e + "f4"
        aword = word
    else:
        word = e + "i2"
        aword = e + ("u2" if unsigned else "i2")
    dt = np.dtype([("p", word, (n_points, 4)), ("a", aword, (n_sub, n_ch))])
    offset = (h.data_start - 1) * BLOCK
    need = offset + n_frames * dt.itemsize
    if h.data_start < 2 or need > len(buf):
        have = max(len(buf) - offset, 0) // dt.itemsize if dt.itemsize else 0
        raise InputFormatError(message(
            f"data block needs {n_frames} frames of {dt.itemsize} bytes from block "
            f"{h.data_start} but the file holds only {have}", file=path,
            field="data", value=f"{len(buf)} bytes", fix="the file is truncated; re-export it"))
    rec = np.frombuffer(buf, dtype=dt, count=n_frames, offset=offset)
    pts, ana = rec["p"], rec["a"].reshape(n_frames * n_sub, n_ch)
    if h.processor == "dec" and is_float:
        return dec_to_float32(pts).astype(np.float64), dec_to_float32(ana).astype(np.float64)
    return pts.astype(np.float64), ana.astype(np.float64)


def _read_fast(buf: bytes, path: Path, *, cop_threshold_n: float,
               zero_baseline: bool) -> Recording:
    h = read_header(buf, path)
    params = read_parameters(buf, path, h)
    point, analog = params.get("POINT", {}), params.get("ANALOG", {})
    if (_num(params.get("ROTATION", {}), "USED", 0) or 0) > 0:
        raise C3DUnsupportedError(message("has a ROTATION section the fast engine does not decode",
                                     file=path, field="ROTATION", fix="use engine='ezc3d'"))
    n_points = int(_num(point, "USED", h.n_points)) & 0xFFFF
    n_ch = int(_num(analog, "USED", 0)) & 0xFFFF
    scale = _num(point, "SCALE", h.scale)
    point_rate = _num(point, "RATE", h.rate_hz) or h.rate_hz
    if not np.isfinite(scale) or not np.isfinite(point_rate) or point_rate < 0 \
            or (n_points and point_rate == 0):
        raise InputFormatError(message("POINT:SCALE must be finite and POINT:RATE positive",
                                       file=path, field="POINT", value=(scale, point_rate),
                                       fix="the file is corrupt; re-export it"))
    is_float = scale < 0 if n_points else h.scale < 0
    if not is_float and scale == 0 and n_points:
        raise InputFormatError(message("integer storage with a zero scale factor", file=path,
                                       field="POINT:SCALE", value=scale, fix="re-export the file"))
    n_sub = 0
    analog_rate = 0.0
    if n_ch:
        analog_rate = _num(analog, "RATE", 0.0) or 0.0
        if point_rate > 0 and analog_rate > 0:
            ratio = analog_rate / point_rate
            n_sub = round(ratio)
            if n_sub < 1 or abs(ratio - n_sub) > 1e-6 * ratio:
                raise C3DUnsupportedError(message(
                    "ANALOG:RATE is not a whole multiple of POINT:RATE", file=path,
                    field="ANALOG:RATE", value=(analog_rate, point_rate), fix="use engine='ezc3d'"))
        else:
            n_sub = h.analog_per_frame
            analog_rate = point_rate * n_sub
        if not (np.isfinite(analog_rate) and analog_rate > 0 and 0 < n_sub <= 65535):
            raise InputFormatError(message("analog rate must be a positive number", file=path,
                                           field="ANALOG:RATE", value=analog_rate,
                                           fix="the file is corrupt; re-export it"))
    first_frame, n_frames = _n_frames(h, params)
    frame_bytes = (4 * n_points + n_sub * n_ch) * (4 if is_float else 2)
    spare = len(buf) - (h.data_start - 1) * BLOCK - n_frames * frame_bytes
    if n_frames == 65535 and frame_bytes and spare >= BLOCK + frame_bytes:
        warn(f"frame count is saturated at 65535 but the file holds about "
             f"{spare // frame_bytes} more frames; only the first 65535 are read", file=path,
             field="POINT:FRAMES", value=n_frames,
             fix="write TRIAL:ACTUAL_END_FIELD or POINT:LONG_FRAMES when exporting")
    if not n_points and not n_ch:
        n_frames = 0
    unsigned = _str(analog, "FORMAT").strip().upper() == "UNSIGNED"
    raw_pts, raw_an = _decode(buf, path, h, n_points=n_points, n_ch=n_ch, n_sub=n_sub,
                              n_frames=n_frames, is_float=is_float, unsigned=unsigned)

    units = _str(point, "UNITS", "")
    length_m = length_factor(units, path=path) if n_points or "FORCE_PLATFORM" in params else 1e-3
    word4 = raw_pts[..., 3]
    xyz = raw_pts[..., :3] if is_float else raw_pts[..., :3] * scale
    invalid = (np.signbit(word4) | ~np.isfinite(word4) | ~np.isfinite(xyz).all(axis=-1))
    res_int = np.where(invalid, 0, np.clip(np.nan_to_num(word4), 0, 65535)).astype(np.int64)
    residuals = (res_int & 0xFF) * abs(scale) * length_m
    residuals[invalid] = np.nan
    xyz = xyz * length_m
    xyz[invalid] = np.nan

    labels = _labels(_concat(point, "LABELS"), n_points, "point", path)
    is_marker, other = split_points(point, xyz, labels, length_m)

    analog_labels = _labels(_concat(analog, "LABELS"), n_ch, "analog", path)
    analog_units = ([str(u).strip() for u in _concat(analog, "UNITS")] + [""] * n_ch)[:n_ch]
    if n_ch:
        gen = _num(analog, "GEN_SCALE", 1.0)
        ch_scale = _per_channel(_concat(analog, "SCALE"), n_ch, "SCALE", path, 1.0)
        offset = _per_channel(_concat(analog, "OFFSET"), n_ch, "OFFSET", path, 0.0)
        if unsigned and not is_float:
            offset = offset.astype(np.int64) & 0xFFFF
        factor = ch_scale * gen
        if not (np.isfinite(factor).all() and np.isfinite(offset).all()):
            raise InputFormatError(message("analog scales and offsets must be finite",
                                           file=path, field="ANALOG:SCALE",
                                           fix="re-export the file"))
        analogs = (raw_an - offset) * factor
    else:
        analogs = np.zeros((0, 0))

    plates = PlateSet([], [], [])
    if n_ch and "FORCE_PLATFORM" in params:
        plates = platforms_from_analogs(
            analogs, params["FORCE_PLATFORM"], path=path, rate_hz=analog_rate, n_sub=n_sub,
            length_m=length_m, cop_threshold_n=cop_threshold_n, zero_baseline=zero_baseline,
            analog_units=analog_units, moment_units=_str(point, "MOMENT_UNITS", ""))
    elif _num(params.get("FORCE_PLATFORM", {}), "USED", 0):
        warn("declares force plates but the file has no analog channels; plates skipped",
             file=path, field="FORCE_PLATFORM:USED", value=int(_num(params["FORCE_PLATFORM"],
                                                                  "USED")))
    meta = {
        "manufacturer": _str(params.get("MANUFACTURER", {}), "COMPANY"),
        "software": _str(params.get("MANUFACTURER", {}), "SOFTWARE"),
        "first_frame": int(first_frame),
        "units": {"point": units, "analog": sorted(set(analog_units))},
        "processor": h.processor,
        "storage": "float" if is_float else "int16",
        "points_other": other,
        "plate_conventions": [c._asdict() for c in plates.conventions],
        "parameters": {g: {k: p.plain() for k, p in grp.items()} for g, grp in params.items()},
    }
    return Recording(
        markers=xyz[:, is_marker], marker_labels=[lab for lab, m in zip(labels, is_marker,
                                                                         strict=True) if m],
        residuals=residuals[:, is_marker], point_rate_hz=float(point_rate), analogs=analogs,
        analog_labels=analog_labels, analog_units=analog_units, analog_rate_hz=float(analog_rate),
        platforms=plates.platforms, events=events_from_parameters(params, h.events), meta=meta,
        warnings=list(plates.warnings))


def read_c3d(path: str | os.PathLike[str], /, *, engine: str = "auto",
             cop_threshold_n: float = 20.0, zero_baseline: bool = True) -> Recording:
    """Read a C3D file into a :class:`~cxlab.io.recording.Recording` (SI units, lab frame).

    Parameters
    ----------
    path : path-like
        The ``.c3d`` file.
    engine : {"auto", "fast", "ezc3d"}
        ``"fast"``: cxlab's vectorised decoder; ``"ezc3d"``: the ezc3d library;
        ``"auto"``: fast, falling back to ezc3d (reason logged on ``cxlab.io``)
        for layouts fast does not support.
    cop_threshold_n : float
        Centre of pressure and free moment are NaN where |Fz| < this, N.
    zero_baseline : bool
        Subtract each plate channel's mean over the frames in
        FORCE_PLATFORM:ZERO (1-based, when not ``0, 0``).  ezc3d does not;
        pass False to reproduce its numbers.

    Returns
    -------
    Recording
        ``markers`` (n_frames, n_markers, 3) m, NaN where invalid; ``residuals``
        (n_frames, n_markers) m; ``analogs`` (n_samples, n_channels) calibrated,
        units as found; ``platforms`` (reaction on the body, N, N·m, m);
        ``events``; ``meta`` with ``parameters``, ``points_other``, ``engine``.

    Raises
    ------
    InputFormatError
        Truncated, corrupt or unsupported file (one line: file, field, value, fix).
    """
    check_option("engine", engine, ENGINES)
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise InputFormatError(message("cannot be read", file=path, value=str(exc),
                                       fix="check the path and permissions")) from None
    used = engine
    if engine == "ezc3d":
        rec = _ezc3d(path, cop_threshold_n, zero_baseline)
    else:
        try:
            rec = _read_fast(buf, path, cop_threshold_n=cop_threshold_n,
                             zero_baseline=zero_baseline)
            used = "fast"
        except C3DUnsupportedError as exc:
            if engine == "fast":
                raise
            log.info("read_c3d: %s; falling back to ezc3d", exc)
            rec = _ezc3d(path, cop_threshold_n, zero_baseline)
            used = "ezc3d"
    rec.meta.update(source=str(path), format="c3d", engine=used)
    return rec


def _ezc3d(path: Path, cop_threshold_n: float, zero_baseline: bool) -> Recording:
    from cxlab.io._c3d_ezc3d import read_c3d_ezc3d

    return read_c3d_ezc3d(path, cop_threshold_n=cop_threshold_n, zero_baseline=zero_baseline)
