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
import warnings
from pathlib import Path
from typing import Any, NamedTuple

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
from cxlab.io._c3d_outputs import attach_outputs
from cxlab.io._c3d_params import (
    _concat,
    _labels,
    _num,
    _str,
    events_from_parameters,
    length_factor,
    split_points,
)
from cxlab.io.forceplates import PlateSet, _median, plate_frame, platforms_from_analogs
from cxlab.io.recording import Recording

__all__ = ["C3DUnsupportedError", "length_factor", "marker_findings", "read_c3d", "up_axis_of"]

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


def _n_frames(
    h: C3DHeader,
    params: dict[str, dict[str, Param]],
    *,
    avail: int | None,
    path: Path,
    quiet: bool = False,
) -> tuple[int, int, str]:
    """(first_frame, n_frames, where the count came from), honouring > 65,535 frames.

    The header's range is used when it is consistent (not saturated at 65,535, every frame
    present in the file): POINT:FRAMES does not override it (PhoeniX writes the *last frame
    number* there: c3dorg_Dance1.c3d, header 2..499, FRAMES 499).  POINT:FRAMES,
    POINT:LONG_FRAMES (float) and TRIAL:ACTUAL_*_FIELD extend a saturated header.  ``avail``
    is the number of whole frames the file holds (None when frames are empty).
    """
    point = params.get("POINT", {})
    first = h.first_frame
    n_hdr = h.last_frame - h.first_frame + 1 if h.last_frame >= h.first_frame else 0
    n, source = n_hdr, "header frame range"
    header_ok = 0 < n_hdr and h.last_frame < 65535 and (avail is None or n_hdr <= avail)
    frames = point.get("FRAMES")
    if (
        frames is not None
        and frames.dtype != -1
        and frames.flat().size
        and np.isfinite(frames.flat()[0])
    ):
        v = frames.flat()[0]
        v = int(v) & 0xFFFF if frames.dtype == 2 else int(v)
        if v > 0 and v != n_hdr:
            if header_ok:
                if v != h.last_frame and not quiet:
                    warn(
                        f"POINT:FRAMES says {v} frames but the header's range "
                        f"{h.first_frame}..{h.last_frame} gives {n_hdr}, all present in the "
                        "file; the header is used",
                        file=path,
                        field="POINT:FRAMES",
                        value=v,
                    )
            else:
                n, source = v, "POINT:FRAMES"
    long_frames = _num(point, "LONG_FRAMES")
    if long_frames is not None and long_frames > n:
        n, source = int(long_frames), "POINT:LONG_FRAMES"
    trial = params.get("TRIAL", {})
    start = _frames_field(trial, "ACTUAL_START_FIELD")
    end = _frames_field(trial, "ACTUAL_END_FIELD")
    if start is not None and end is not None and end >= start and end - start + 1 > n:
        first, n, source = start, end - start + 1, "TRIAL:ACTUAL_START/END_FIELD"
    return first, n, source


def _n_points(
    h: C3DHeader,
    point: dict[str, Param],
    *,
    data_bytes: int,
    n_frames: int,
    other_bytes: int,
    word: int,
    path: Path,
) -> int:
    """POINT:USED cross-checked against the header, POINT:LABELS and the file length.

    When POINT:USED and the header disagree, the count that fits the file's data and matches
    the labels wins (a file with USED = 12, header 11 and 11 labels decodes cleanly with 11),
    with a warning; a count nothing supports is left for the length check to refuse.
    """
    used = _num(point, "USED")
    n_used = int(used) & 0xFFFF if used is not None else h.n_points
    if n_used == h.n_points:
        return n_used
    n_labels = len(_concat(point, "LABELS"))

    def fits(n: int) -> bool:
        return n_frames * (4 * n * word + other_bytes) <= data_bytes

    pick = n_used
    if not fits(n_used) and fits(h.n_points):
        pick = h.n_points
    elif fits(n_used) and fits(h.n_points) and n_labels == h.n_points != n_used:
        pick = h.n_points
    if pick != n_used:
        warn(
            f"POINT:USED says {n_used} points but the header says {h.n_points}, POINT:LABELS "
            f"has {n_labels} and the file's length fits {h.n_points}; {pick} points are read",
            file=path,
            field="POINT:USED",
            value=n_used,
        )
    return pick


def _per_channel(values: list[Any], n: int, name: str, path: Path, default: float) -> np.ndarray:
    if not values:
        return np.full(n, default)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except ValueError:
        raise InputFormatError(
            message(
                "must be numbers",
                file=path,
                field=f"ANALOG:{name}",
                value=values[:3],
                fix="re-export the file",
            )
        ) from None
    if arr.size == 1:
        return np.full(n, arr[0])
    if arr.size < n:
        raise InputFormatError(
            message(
                f"has {arr.size} values for {n} analog channels",
                file=path,
                field=f"ANALOG:{name}",
                value=arr.size,
                fix="re-export the trial with per-channel calibration",
            )
        )
    return arr[:n]


class _Layout(NamedTuple):
    """The data block's layout as the header and parameters declare it."""

    n_points: int
    n_ch: int
    #: analog samples per point frame
    n_sub: int
    n_frames: int
    #: what gave ``n_frames``, as the messages name it ("header frame range", ...)
    frames_from: str
    #: 4 (float) or 2 (integer)
    word: int

    @property
    def frame_bytes(self) -> int:
        return (4 * self.n_points + self.n_sub * self.n_ch) * self.word


def _check_data_size(buf: bytes, path: Path, h: C3DHeader, layout: _Layout) -> None:
    """Refuse, before anything is allocated, a declared data block longer than the file.

    Also a frame larger than the whole file, even when no frame is declared (no real frame
    is: 65,535 channels x 65,535 samples per frame cannot describe a recording).
    """
    n_points, n_ch, n_sub, n_frames, frames_from, _ = layout
    frame_bytes = layout.frame_bytes
    offset = (h.data_start - 1) * BLOCK
    if frame_bytes > max(len(buf) - offset, 0) and frame_bytes > 4 * BLOCK:
        raise InputFormatError(
            message(
                f"one frame of {n_points} points and {n_ch} analog channels x {n_sub} samples "
                f"would take {frame_bytes} bytes, more than the whole file",
                file=path,
                field=(
                    "POINT:USED"
                    if 4 * n_points >= n_sub * n_ch
                    else "ANALOG:RATE"
                    if n_sub > n_ch
                    else "ANALOG:USED"
                ),
                value=f"{len(buf)} bytes",
                fix="the file is damaged; re-export it from the capture software",
            )
        )
    if (n_frames and h.data_start < 2) or offset + n_frames * frame_bytes > len(buf):
        have = max(len(buf) - offset, 0) // frame_bytes if frame_bytes else 0
        raise InputFormatError(
            message(
                f"{frames_from} declares {n_frames} frames of {frame_bytes} bytes "
                f"({n_points} points, {n_ch} analog channels x {n_sub}) from block "
                f"{h.data_start} but the file holds only {have}",
                file=path,
                field="data",
                value=f"{len(buf)} bytes",
                fix="the file is truncated or a count is wrong; re-export it",
            )
        )


def _decode(
    buf: bytes, path: Path, h: C3DHeader, layout: _Layout, *, unsigned: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The data block: points (n_frames, n_points, 4) as stored, analogs (n_samples, n_ch) f8."""
    _check_data_size(buf, path, h, layout)
    n_points, n_ch, n_sub, n_frames, _, size = layout
    is_float = size == 4
    e = h.endian
    if is_float:
        word = "<u4" if h.processor == "dec" else e + "f4"
        aword = word
    else:
        word = e + "i2"
        aword = e + ("u2" if unsigned else "i2")
    dt = np.dtype([("p", word, (n_points, 4)), ("a", aword, (n_sub, n_ch))])
    offset = (h.data_start - 1) * BLOCK
    rec = np.frombuffer(buf, dtype=dt, count=n_frames, offset=offset)
    pts, ana = rec["p"], rec["a"]
    if h.processor == "dec" and is_float:
        pts, ana = dec_to_float32(pts), dec_to_float32(ana)
    # one conversion straight from the strided field (reshaping the field first would copy
    # it); points stay a view of the file, converted per use
    return pts, ana.astype(np.float64).reshape(n_frames * n_sub, n_ch)


#: a marker moving faster than this between two frames is a spike or a swap, m/s
MAX_MARKER_SPEED_M_S = 30.0
#: no motion-capture volume is larger than this; a coordinate beyond it is a scale error, m
MAX_COORDINATE_M = 100.0


def _unsigned_offsets(raw: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ANALOG:OFFSET as unsigned 16-bit where a float file holds raw 0..65,535 counts.

    Some writers store 16-bit A/D counts as floats and the offset (e.g. 32768) in a signed
    int16 parameter, where it reads -32768: subtracting that puts a quiet channel 65,536
    counts high.  Per channel, when the stored values are whole numbers within 0..65,535
    and ``offset + 65536`` lies nearer their median than ``offset`` does, the unsigned
    offset is used (as ezc3d does).  Returns (offsets, which channels hold counts).
    """
    lo, hi = raw.min(axis=0), raw.max(axis=0)
    counts = (lo >= 0) & (hi <= 65535)
    cand = np.flatnonzero(counts)
    # whole numbers, tested 8 candidate channels at a time (a copy of at most 8 columns,
    # and not one set of NumPy calls per channel)
    for k in range(0, cand.size, 8):
        cols = raw[:, cand[k : k + 8]]
        counts[cand[k : k + 8]] = (cols == np.floor(cols)).all(axis=0)
    out = offset.copy()
    neg = np.flatnonzero(counts & (offset < 0))
    if neg.size:
        med = np.median(raw[:, neg], axis=0)
        flip = np.abs(med - (offset[neg] + 65536)) < np.abs(med - offset[neg])
        out[neg[flip]] += 65536
    return out, counts


def _rail_findings(
    raw: np.ndarray, counts: np.ndarray, labels: list[str], *, unsigned: bool, path: Path
) -> list[str]:
    """Analog channels pinned at an A/D rail (saturated) in >= 0.5 % of their samples."""
    out = []
    if not raw.size:
        return out
    rails = (0.0, 65535.0) if unsigned else (-32768.0, 32767.0)
    # only channels holding counts can be flagged: the others (a float file's calibrated
    # channels, most of its data) are not scanned
    cand = np.flatnonzero(counts)
    at = np.zeros(raw.shape[1], dtype=np.int64)
    if cand.size:
        sub = raw if cand.size == raw.shape[1] else raw[:, cand]
        at[cand] = ((sub == rails[0]) | (sub == rails[1])).sum(axis=0)
        del sub
    bad = counts & (at >= max(3, 0.005 * raw.shape[0]))
    if unsigned and bad.any():  # offset-binary counts sit mid-scale: near 0 is not a rail
        cand = np.flatnonzero(bad)  # the median only of channels that could be flagged
        bad[cand] = np.median(raw[:, cand], axis=0) > 1000
    for j in np.flatnonzero(bad):
        out.append(
            message(
                f"sits at an A/D rail value ({rails[0]:g} or {rails[1]:g} counts) in "
                f"{at[j]} of {raw.shape[0]} samples: the channel is saturated or "
                "disconnected",
                file=path,
                field=f"analog channel '{labels[j]}'",
            )
        )
    for f in out:
        warn(f)
    return out


def marker_findings(
    markers: np.ndarray, labels: list[str], /, *, rate_hz: float, path: Path | None = None
) -> list[str]:
    """Marker values no person produces: speed > 30 m/s between frames, coordinates > 100 m.

    Parameters
    ----------
    markers : ndarray, shape (n_frames, n_markers, 3)
        Positions, m, NaN where invalid.
    rate_hz : float
        Point rate, Hz.

    Returns
    -------
    list of str
        One sentence per finding (also emitted as :class:`~cxlab._check.CxlabWarning`).
    """
    out: list[str] = []
    if not markers.size:
        return out
    # whole-array extremes first (~10 us): NaN everywhere means no valid coordinate, and
    # within +-100 m no marker is far, so the per-marker reductions over frames are skipped
    top, bottom = np.fmax.reduce(markers, axis=None), np.fmin.reduce(markers, axis=None)
    if np.isnan(top):
        return out
    far = np.zeros(0, dtype=np.intp)
    if max(top, -bottom) > MAX_COORDINATE_M:
        # the largest |coordinate| per marker, 0 where it has none: fmax skips NaN without
        # the mask and masked copy (an infinite value, never written by the fast engine,
        # takes the masked formula: it must not count); over frames first (contiguous
        # rows), then x, y, z: max is exact in any order; |x| at its largest is the larger
        # of max(x) and -min(x): no full-size |markers| copy
        span = np.fmax(np.fmax.reduce(markers, axis=0), -np.fmin.reduce(markers, axis=0))
        reach = np.fmax.reduce(span, axis=-1)
        if np.isinf(reach).any():
            if not np.isfinite(markers).any():
                return out
            reach = np.where(np.isfinite(markers), np.abs(markers), 0.0).max(axis=(0, 2))
        else:
            reach = np.nan_to_num(reach, nan=0.0)
        far = np.flatnonzero(reach > MAX_COORDINATE_M)
    if far.size:
        out.append(
            message(
                f"{far.size} markers have coordinates up to {reach.max():.3g} m, more than any "
                f"capture volume ({MAX_COORDINATE_M:g} m): POINT:SCALE or POINT:UNITS is wrong",
                file=path,
                field="POINT",
                value=[labels[i] for i in far[:3]],
            )
        )
    elif markers.shape[0] > 1 and rate_hz > 0:
        # Qualisys writes a gap as exactly (0, 0, 0) with a valid residual: not a position,
        # so a step from or to one has no speed
        zero = markers == 0  # then the three strided views of booleans, not of floats
        gap = zero[..., 0] & zero[..., 1] & zero[..., 2]
        del zero
        step = np.diff(markers, axis=0)
        speed2 = np.einsum("fmk,fmk->fm", step, step)  # squared step, (unit/frame)^2
        del step  # the one full-size temporary, dropped before the speed is finished
        np.copyto(speed2, np.nan, where=gap[1:] | gap[:-1])
        # each marker's top speed is sqrt(max step^2) * rate: sqrt and * rate are correctly
        # rounded and non-decreasing, so the max of the speeds is that number exactly, with
        # one sqrt per marker instead of one per sample
        top2 = np.fmax.reduce(speed2, axis=0)  # NaN skipped; -1 where a marker has no speed
        if np.isinf(top2).any():
            speed = np.sqrt(speed2) * rate_hz
            top = np.where(np.isfinite(speed), speed, -1.0).max(axis=0)
        else:
            top = np.nan_to_num(np.sqrt(top2) * rate_hz, nan=-1.0)
        fast = np.flatnonzero(top > MAX_MARKER_SPEED_M_S)
        if fast.size:
            worst = fast[np.argmax(top[fast])]
            out.append(
                message(
                    f"{fast.size} markers move faster than {MAX_MARKER_SPEED_M_S:g} m/s "
                    f"between two frames (fastest '{labels[worst]}' at {top[worst]:.0f} m/s): "
                    "a spike, a label swap or a wrong POINT:RATE",
                    file=path,
                    field="POINT",
                    value=[labels[i] for i in fast[:3]],
                )
            )
    for f in out:
        warn(f)
    return out


def _read_fast(buf: bytes, path: Path, *, cop_threshold_n: float, zero_baseline: bool) -> Recording:
    h = read_header(buf, path)
    params = read_parameters(buf, path, h)
    point, analog = params.get("POINT", {}), params.get("ANALOG", {})
    rotation = (_num(params.get("ROTATION", {}), "USED", 0) or 0) > 0
    n_used = int(_num(point, "USED", h.n_points)) & 0xFFFF
    n_ch = int(_num(analog, "USED", 0)) & 0xFFFF
    scale = _num(point, "SCALE", h.scale)
    point_rate = _num(point, "RATE", h.rate_hz) or h.rate_hz
    if (
        not np.isfinite(scale)
        or not np.isfinite(point_rate)
        or point_rate < 0
        or (n_used and point_rate == 0)
    ):
        raise InputFormatError(
            message(
                "POINT:SCALE must be finite and POINT:RATE positive",
                file=path,
                field="POINT",
                value=(scale, point_rate),
                fix="the file is corrupt; re-export it",
            )
        )
    differ = abs(scale - h.scale) > 1e-6 * max(abs(scale), abs(h.scale))
    # float storage only uses the scale for residuals: a differing magnitude there is harmless
    if differ and (scale > 0 or h.scale > 0):
        warn(
            f"POINT:SCALE disagrees with the header's scale factor {h.scale:g}; POINT:SCALE "
            "is used (check marker magnitudes)",
            file=path,
            field="POINT:SCALE",
            value=scale,
        )
    is_float = scale < 0 if n_used else h.scale < 0
    if not is_float and scale == 0 and n_used:
        raise InputFormatError(
            message(
                "integer storage with a zero scale factor",
                file=path,
                field="POINT:SCALE",
                value=scale,
                fix="re-export the file",
            )
        )
    n_sub = 0
    analog_rate = 0.0
    if n_ch:
        analog_rate = _num(analog, "RATE", 0.0) or 0.0
        if point_rate > 0 and analog_rate > 0:
            ratio = analog_rate / point_rate
            n_sub = round(ratio)
            if n_sub < 1 or abs(ratio - n_sub) > 1e-6 * ratio:
                raise C3DUnsupportedError(
                    message(
                        "ANALOG:RATE is not a whole multiple of POINT:RATE",
                        file=path,
                        field="ANALOG:RATE",
                        value=(analog_rate, point_rate),
                        fix="use engine='ezc3d'",
                    )
                )
        else:
            n_sub = h.analog_per_frame
            analog_rate = point_rate * n_sub
        if not (np.isfinite(analog_rate) and analog_rate > 0 and 0 < n_sub <= 65535):
            raise InputFormatError(
                message(
                    "analog rate must be a positive number",
                    file=path,
                    field="ANALOG:RATE",
                    value=analog_rate,
                    fix="the file is corrupt; re-export it",
                )
            )
    word = 4 if is_float else 2
    data_bytes = max(len(buf) - (h.data_start - 1) * BLOCK, 0)
    _, n_prov, _ = _n_frames(h, params, avail=None, path=path, quiet=True)
    n_points = _n_points(
        h,
        point,
        data_bytes=data_bytes,
        n_frames=n_prov,
        other_bytes=n_sub * n_ch * word,
        word=word,
        path=path,
    )
    frame_bytes = (4 * n_points + n_sub * n_ch) * word
    avail = data_bytes // frame_bytes if frame_bytes else None
    first_frame, n_frames, frames_from = _n_frames(h, params, avail=avail, path=path)
    spare = data_bytes - n_frames * frame_bytes
    if n_frames == 65535 and frame_bytes and spare >= BLOCK + frame_bytes:
        warn(
            f"frame count is saturated at 65535 but the file holds about "
            f"{spare // frame_bytes} more frames; only the first 65535 are read",
            file=path,
            field="POINT:FRAMES",
            value=n_frames,
            fix="write TRIAL:ACTUAL_END_FIELD or POINT:LONG_FRAMES when exporting",
        )
    if not n_points and not n_ch and not rotation:  # ROTATION poses keep the frame count
        n_frames = 0
    unsigned = _str(analog, "FORMAT").strip().upper() == "UNSIGNED"
    layout = _Layout(n_points, n_ch, n_sub, n_frames, frames_from, word)
    raw_pts, raw_an = _decode(buf, path, h, layout, unsigned=unsigned)
    # the caller handed the bytes over: once the points are converted below (raw_pts, a view
    # of them, deleted), the file's copy in memory is freed before the plates are computed
    del buf
    findings: list[str] = []
    units = _str(point, "UNITS", "")
    length_m = length_factor(units, path=path) if n_points or "FORCE_PLATFORM" in params else 1e-3
    word4 = raw_pts[..., 3].astype(np.float64)  # (n_frames, n_points): small beside xyz
    xyz = raw_pts[..., :3].astype(np.float64)  # the one full-size copy of the points
    invalid = np.signbit(word4)
    if is_float:  # int16 * a finite scale is always finite
        invalid |= ~np.isfinite(word4)
        # a non-finite coordinate makes the sum non-finite; float32 values cannot overflow it
        with np.errstate(invalid="ignore"):  # inf + -inf: NaN, as wanted
            invalid |= ~np.isfinite(xyz[..., 0] + xyz[..., 1] + xyz[..., 2])
    else:
        xyz *= scale
    # a valid word 4 is finite and >= +0, so clipping it is a minimum; invalid ones read 0
    res_int = np.minimum(word4, 65535.0, out=np.zeros_like(word4), where=~invalid)
    # 0..65,535 truncated to uint16 exactly as to int64 (a quarter of the bytes); the low byte
    # times a Python float is float64, the same products
    residuals = (res_int.astype(np.uint16) & 0xFF) * abs(scale) * length_m
    np.copyto(residuals, np.nan, where=invalid)
    del word4, res_int, raw_pts
    xyz *= length_m
    np.copyto(xyz, np.nan, where=invalid[..., None])

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
            raise InputFormatError(
                message(
                    "analog scales and offsets must be finite",
                    file=path,
                    field="ANALOG:SCALE",
                    fix="re-export the file",
                )
            )
        if is_float:
            offset, counts = _unsigned_offsets(raw_an, offset)
        else:
            counts = np.ones(n_ch, dtype=bool)
        findings += _rail_findings(
            raw_an, counts, analog_labels, unsigned=unsigned or is_float, path=path
        )
        analogs = raw_an  # calibrated in place: no second copy of the largest array
        analogs -= offset
        analogs *= factor
    else:
        analogs = np.zeros((0, 0))

    every = bool(is_marker.all())
    # compress, not xyz[:, is_marker]: NumPy's boolean index over a middle axis returns an
    # array laid out marker-major (strides (24, n_frames*24, 8)), which made every later
    # reduction over frames 3-4x slower (PiG_Motion-FlatFoot-Full: 0.6 ms per fmax.reduce)
    markers = xyz if every else xyz.compress(is_marker, axis=1)
    marker_labels = [lab for lab, m in zip(labels, is_marker, strict=True) if m]
    findings += marker_findings(markers, marker_labels, rate_hz=float(point_rate), path=path)
    plates = PlateSet([], [], [])
    if n_ch and "FORCE_PLATFORM" in params:
        plates = platforms_from_analogs(
            analogs,
            params["FORCE_PLATFORM"],
            path=path,
            rate_hz=analog_rate,
            n_sub=n_sub,
            length_m=length_m,
            cop_threshold_n=cop_threshold_n,
            zero_baseline=zero_baseline,
            analog_units=analog_units,
            moment_units=_str(point, "MOMENT_UNITS", ""),
        )
    elif _num(params.get("FORCE_PLATFORM", {}), "USED", 0):
        warn(
            "declares force plates but the file has no analog channels; plates skipped",
            file=path,
            field="FORCE_PLATFORM:USED",
            value=int(_num(params["FORCE_PLATFORM"], "USED")),
        )
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
        markers=markers,
        marker_labels=marker_labels,
        residuals=residuals if every else residuals.compress(is_marker, axis=1),
        point_rate_hz=float(point_rate),
        analogs=analogs,
        analog_labels=analog_labels,
        analog_units=analog_units,
        analog_rate_hz=float(analog_rate),
        platforms=plates.platforms,
        events=events_from_parameters(params, h.events),
        meta=meta,
        warnings=findings + list(plates.warnings),
    )


#: rotation taking a file's frame with the given vertical axis into cxlab's Z-up lab frame
#: (new = Q @ old, det +1): Y up as OpenSim -> (x, -z, y); X up -> (y, z, x)
TO_Z_UP = {
    "z": np.eye(3),
    "y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
    "x": np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
}
UP_OPTIONS = ("auto", "z", "y", "x")


def _marker_up(markers: np.ndarray) -> str | None:
    """The vertical axis from marker data, or None when the evidence is weak.

    Gravity keeps a person's feet on the floor: the vertical axis is the one along which
    the markers' per-frame extent (median over frames of max - min) is largest, at least
    1.3 x each other axis and 0.5 m, with the per-frame lowest marker near the floor
    (median -0.1 to 0.3 m).  Exact (0, 0, 0) points (gaps, Qualisys) are ignored.
    """
    if markers.ndim != 3 or not markers.shape[0] or not markers.shape[1]:
        return None
    # frames x axes x markers, contiguous: the per-frame extremes over the markers are then
    # reductions over the last, contiguous axis; this copy of a transpose is ~6x cheaper
    # than a markers-first one (whose 3-wide rows NumPy copies slowly: 0.35 ms against
    # 0.05 ms for 315 frames x 113 markers).  fmin/fmax skip NaN as nanmin/nanmax do (which
    # call them); only the sign of a zero extreme can depend on the order, and no decision
    # below does
    m = markers[:: max(1, markers.shape[0] // 500)].transpose(0, 2, 1).copy()  # 500 frames
    zero = m == 0
    gap = zero[:, 0] & zero[:, 1] & zero[:, 2]
    del zero
    np.copyto(m, np.nan, where=gap[:, None, :])
    seen = np.isfinite(m[:, 0]) & np.isfinite(m[:, 1]) & np.isfinite(m[:, 2])
    ok = seen.any(axis=1)  # frames with a marker seen
    if not ok.any():
        return None
    if not ok.all():
        m = m.compress(ok, axis=0)
    lo, hi = np.fmin.reduce(m, axis=2), np.fmax.reduce(m, axis=2)  # finite: a marker a frame
    if np.isnan(lo).any() or np.isnan(hi).any():
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low = np.nanmedian(lo, axis=0)
            extent = np.nanmedian(hi, axis=0) - low
    else:  # no NaN: per axis, the plates' 1-D median (np.median's numbers, less overhead)
        low = np.array([_median(c) for c in lo.T])
        extent = np.array([_median(c) for c in hi.T]) - low
    k = int(np.argmax(extent))
    others = np.delete(extent, k)
    if extent[k] >= 0.5 and np.all(extent[k] >= 1.3 * others) and -0.1 <= low[k] <= 0.3:
        return "xyz"[k]
    return None


def up_axis_of(rec: Recording, /) -> tuple[str, str]:
    """The file's vertical axis and the evidence for it: ``(axis, evidence)``.

    1. Force plates: the lab axis along which every plate's normal (from its corners)
       points, within 25°.  A conclusive marker estimate that disagrees is a warning.
    2. No plates: :func:`_marker_up` (gravity: the floor and a person's height).
    3. Neither: ``"z"`` as stored (the C3D convention), evidence ``"assumed"``.
    """
    normals = []
    for p in rec.platforms:
        if np.isfinite(p.corners).all():
            with np.errstate(invalid="ignore", divide="ignore"):
                rot, _ = plate_frame(p.corners)
            if np.isfinite(rot).all():
                normals.append(np.abs(rot[:, 2]))
    from_markers = _marker_up(rec.markers)
    if normals:
        axes = {int(np.argmax(n)) for n in normals}
        if len(axes) == 1 and all(n.max() > np.cos(np.deg2rad(25)) for n in normals):
            axis = "xyz"[axes.pop()]
            if from_markers is not None and from_markers != axis:
                warn(
                    f"force plates lie in a plane normal to {axis} but the markers suggest "
                    f"{from_markers} is vertical; the plates are trusted",
                    file=rec.meta.get("source"),
                    field="FORCE_PLATFORM:CORNERS",
                )
            return axis, "force-plate normal"
    if from_markers is not None:
        return from_markers, "marker floor and height"
    return "z", "assumed"


def _to_z_up(rec: Recording, axis: str) -> None:
    """Rotate markers and plates (force, moment, CoP, corners) in place; tz is a scalar."""
    q = TO_Z_UP[axis]
    if axis == "z":
        return
    rec.markers = rec.markers @ q.T
    for p in rec.platforms:
        p.force, p.moment, p.cop = p.force @ q.T, p.moment @ q.T, p.cop @ q.T
        p.corners = p.corners @ q.T


def read_c3d(
    path: str | os.PathLike[str],
    /,
    *,
    engine: str = "auto",
    up: str = "auto",
    cop_threshold_n: float = 20.0,
    zero_baseline: bool = True,
) -> Recording:
    """Read a C3D file into a :class:`~cxlab.io.recording.Recording` (SI units, lab frame).

    Parameters
    ----------
    path : path-like
        The ``.c3d`` file.
    engine : {"auto", "fast", "ezc3d"}
        ``"fast"``: cxlab's vectorised decoder; ``"ezc3d"``: the ezc3d library;
        ``"auto"``: fast, falling back to ezc3d (reason logged on ``cxlab.io``)
        for layouts fast does not support.
    up : {"auto", "z", "y", "x"}
        The file's vertical axis.  Markers and plates are rotated into cxlab's Z-up lab
        frame (:data:`TO_Z_UP`); ``"auto"`` decides from the plates' normals, else from
        the markers (floor and height), else keeps the file as stored
        (:func:`up_axis_of`).  ``meta["up_axis"]`` is the original vertical axis and
        ``meta["up_axis_from"]`` the evidence (``"option"`` when given).
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
    check_option("up", up, UP_OPTIONS)
    path = Path(path)
    used = engine
    if engine == "ezc3d":
        rec = _ezc3d(path, cop_threshold_n, zero_baseline)
    else:
        try:
            # the bytes are handed over, not kept here: _read_fast drops them once decoded
            rec = _read_fast(
                _file_bytes(path),
                path,
                cop_threshold_n=cop_threshold_n,
                zero_baseline=zero_baseline,
            )
            used = "fast"
        except C3DUnsupportedError as exc:
            if engine == "fast":
                raise
            log.info("read_c3d: %s; falling back to ezc3d", exc)
            rec = _ezc3d(path, cop_threshold_n, zero_baseline)
            used = "ezc3d"
    rec.meta.update(source=str(path), format="c3d", engine=used)
    attach_outputs(rec, path)  # model outputs and ROTATION poses (io/_c3d_outputs.py)
    axis, evidence = up_axis_of(rec) if up == "auto" else (up, "option")
    _to_z_up(rec, axis)
    rec.meta.update(up_axis=axis, up_axis_from=evidence)
    return rec


def _file_bytes(path: Path) -> bytes:
    """The file's bytes, or the error naming the file and the fix."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputFormatError(
            message(
                "cannot be read", file=path, value=str(exc), fix="check the path and permissions"
            )
        ) from None


def _ezc3d(path: Path, cop_threshold_n: float, zero_baseline: bool) -> Recording:
    """The ezc3d engine, behind the fast decoder's structural validation (a damaged file
    never reaches the C++ code unchecked), with the same marker findings as the fast engine.
    """
    from cxlab.io._c3d_ezc3d import read_c3d_ezc3d

    fast_reads_it = True
    try:  # full structural validation (data size, scales, rates) before the C++ code runs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _read_fast(
                _file_bytes(path), path, cop_threshold_n=cop_threshold_n, zero_baseline=False
            )
    except C3DUnsupportedError:
        fast_reads_it = False
    rec = read_c3d_ezc3d(
        path,
        cop_threshold_n=cop_threshold_n,
        zero_baseline=zero_baseline,
        fast_reads_it=fast_reads_it,
    )
    findings = marker_findings(rec.markers, rec.marker_labels, rate_hz=rec.point_rate_hz, path=path)
    rec.warnings[:0] = findings  # first, as the fast engine lists them
    return rec
