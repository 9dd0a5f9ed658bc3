"""The ``engine="ezc3d"`` path of :func:`cxlab.io.c3d.read_c3d`, run in a child process.

ezc3d (Michaud & Begon, 2021, *J. Open Source Softw.* 6(58), 2911) decodes the
header, parameters, points and analogs; cxlab maps them into a
:class:`~cxlab.io.recording.Recording` and computes the force platforms from
ezc3d's analogs with the same code and the same data-checked conventions as the
fast engine (:func:`cxlab.io.forceplates.platforms_from_analogs`), so the two
engines differ only in decoding.

Safety: ezc3d is C++ and aborts or segfaults on some damaged files (an uncaught
exception on a ROTATION group with POINT:FRAMES = -32768 kills the process with
SIGABRT).  So (1) the header and parameter section are first validated by
cxlab's own parser and the fast decoder, and the parameters ezc3d indexes
without bounds checks are checked; (2) ezc3d itself runs in a child process
(``python -m cxlab.io._c3d_ezc3d FILE``) that returns plain arrays; a child that
dies is an :class:`~cxlab._check.InputFormatError` naming the signal, never the
death of the caller.
"""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import InputFormatError, message
from cxlab.io._c3d_header import C3DHeader, Param
from cxlab.io.recording import Recording

__all__ = ["read_c3d_ezc3d"]

#: seconds the ezc3d child may take before it is stopped
CHILD_TIMEOUT_S = 600.0


def _plain_params(raw: Any) -> dict[str, dict[str, tuple[int, Any]]]:
    """ezc3d's parameter tree as ``{GROUP: {NAME: (type, value)}}`` of plain values."""
    out: dict[str, dict[str, tuple[int, Any]]] = {}
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
                value = [_clean_text(v) for v in (value if isinstance(value, list) else [value])]
            else:
                value = np.asarray(value)
            out[gname][pname] = (dtype, value)
    return out


def _clean_text(v: Any) -> str:
    """A label as text: bytes ezc3d could not decode (surrogates) are read as Latin-1."""
    text = str(v)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("latin-1")
    return text


def _child_read(path: str) -> dict[str, Any]:
    """What the child sends back: ezc3d's decoded data as plain numpy/Python values."""
    import ezc3d

    c = ezc3d.c3d(path)
    hev = c["header"]["events"]
    return {
        "points": np.asarray(c["data"]["points"], dtype=float),
        "residuals": np.asarray(c["data"]["meta_points"]["residuals"], dtype=float),
        "analogs": np.asarray(c["data"]["analogs"], dtype=float),
        "parameters": _plain_params(c["parameters"]),
        "point_rate": float(c["header"]["points"]["frame_rate"]),
        "first_frame": int(c["header"]["points"]["first_frame"]),
        "analog_rate": float(c["header"]["analogs"]["frame_rate"]),
        "events": [
            (_clean_text(lab).strip(), float(t))
            for lab, t in zip(hev["events_label"], hev["events_time"], strict=False)
        ],
        "version": getattr(ezc3d, "__version__", ""),
    }


def _run_child(path: Path) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cxlab.io._c3d_ezc3d", str(path)],
            capture_output=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InputFormatError(
            message(
                f"ezc3d did not finish within {CHILD_TIMEOUT_S:.0f} s",
                file=path,
                fix="read it with engine='fast'",
            )
        ) from None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise InputFormatError(
            message(
                f"ezc3d crashed ({name}) on this file, which passed cxlab's structural checks; "
                "the file is damaged in a way ezc3d does not report",
                file=path,
                value=name,
                fix="re-export the file, or read it with engine='fast'",
            )
        )
    try:
        out = pickle.loads(done.stdout)
    except Exception:  # anything unreadable from the child is one error
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise InputFormatError(
            message(
                "ezc3d failed on this file",
                file=path,
                value=tail[0] if tail else done.returncode,
                fix="re-export the file",
            )
        ) from None
    if "error" in out:
        raise InputFormatError(
            message(
                "ezc3d cannot read the file",
                file=path,
                value=out["error"],
                fix="re-export the file",
            )
        )
    return out


# read by ezc3d as valuesAs...()[0] (must hold a number) / as numbers (must not be text)
_EZC3D_SCALAR = {
    "POINT": ("USED", "SCALE", "RATE", "FRAMES"),
    "ANALOG": ("USED", "GEN_SCALE"),
    "FORCE_PLATFORM": ("USED",),
    "EVENT": ("USED",),
}
_EZC3D_NUMERIC = {
    "POINT": ("DATA_START",),
    "ANALOG": ("RATE", "SCALE", "OFFSET"),
    "FORCE_PLATFORM": ("TYPE", "ZERO", "CORNERS", "ORIGIN", "CHANNEL"),
    "EVENT": ("TIMES",),
}


def _ezc3d_safety(
    own: dict[str, dict[str, Param]], path: Path, header: C3DHeader, *, fix: str
) -> None:
    """Reject layouts ezc3d indexes without bounds checks, naming the parameter.

    ezc3d 1.7 segfaults when ANALOG:SCALE/OFFSET hold fewer values than
    ANALOG:USED (found by the fuzz test), so those are errors here.  ``fix`` says
    whether the fast engine reads the file (it already tried) or the file is damaged.
    """
    from cxlab.io._c3d_params import _concat, _num

    for group, names in [*_EZC3D_SCALAR.items(), *_EZC3D_NUMERIC.items()]:
        for name in names:
            p = own.get(group, {}).get(name)
            if p is not None and (
                p.dtype == -1 or (name in _EZC3D_SCALAR.get(group, ()) and p.flat().size == 0)
            ):
                raise InputFormatError(
                    message(
                        "is not a number, which ezc3d cannot read",
                        file=path,
                        field=f"{group}:{name}",
                        value=p.value,
                        fix=fix,
                    )
                )
    for group in ("POINT", "ANALOG", "FORCE_PLATFORM", "EVENT"):
        for name, p in own.get(group, {}).items():
            if p.dtype == -1 and not p.dims:  # ezc3d reads dimension()[0]
                raise InputFormatError(
                    message(
                        "is text without dimensions, which ezc3d cannot read",
                        file=path,
                        field=f"{group}:{name}",
                        value=p.value,
                        fix=fix,
                    )
                )
            if name.rstrip("0123456789") in ("LABELS", "DESCRIPTIONS", "UNITS") and p.dtype != -1:
                raise InputFormatError(
                    message(
                        "is not text, which ezc3d cannot read",
                        file=path,
                        field=f"{group}:{name}",
                        value=p.dtype,
                        fix=fix,
                    )
                )
    analog, point = own.get("ANALOG", {}), own.get("POINT", {})
    n_ch = int(_num(analog, "USED", 0) or 0) & 0xFFFF
    if n_ch and "SHADOW" not in own:
        for name in ("SCALE", "OFFSET"):
            n = len(_concat(analog, name))
            if n < n_ch:
                raise InputFormatError(
                    message(
                        f"has {n} values for {n_ch} channels, which ezc3d cannot read",
                        file=path,
                        field=f"ANALOG:{name}",
                        value=n,
                        fix=fix,
                    )
                )
        if _num(analog, "GEN_SCALE") is None:
            raise InputFormatError(
                message(
                    "is missing, which ezc3d cannot read",
                    file=path,
                    field="ANALOG:GEN_SCALE",
                    fix=fix,
                )
            )
    for group, used in (("POINT", point), ("ANALOG", analog)):
        n = int(_num(used, "USED", 0) or 0) & 0xFFFF
        n_labels = len(_concat(used, "LABELS"))
        if n and n_labels < n:
            raise InputFormatError(
                message(
                    f"has {n_labels} labels for {n} entries, which ezc3d cannot read",
                    file=path,
                    field=f"{group}:LABELS",
                    value=n_labels,
                    fix=fix,
                )
            )
    frames = point.get("FRAMES")
    if (
        frames is not None
        and frames.dtype == 2
        and frames.flat().size
        and frames.flat()[0] < 0
        and header.last_frame - header.first_frame + 1 < 32768
    ):
        raise InputFormatError(
            message(
                f"is negative while the header's range gives "
                f"{header.last_frame - header.first_frame + 1} frames; ezc3d aborts on it",
                file=path,
                field="POINT:FRAMES",
                value=int(frames.flat()[0]),
                fix="the file is damaged; re-export it from the capture software",
            )
        )
    if int(_num(point, "USED", 0) or 0) and _num(point, "SCALE") is None:
        raise InputFormatError(
            message("is missing, which ezc3d cannot read", file=path, field="POINT:SCALE", fix=fix)
        )


def read_c3d_ezc3d(
    path: Path, /, *, cop_threshold_n: float, zero_baseline: bool, fast_reads_it: bool
) -> Recording:
    """Read ``path`` with ezc3d (in a child process) into a Recording (see module docstring).

    The caller (:func:`cxlab.io.c3d.read_c3d`) has run the fast decoder's full structural
    validation first (data size, scales, rates): ``fast_reads_it`` says whether that decoder
    reads the file too (it only names the fix of a refusal here), and the caller adds the
    marker plausibility findings to the returned recording's warnings, as for the fast
    engine. This module imports nothing from :mod:`cxlab.io.c3d` (no import cycle).

    Raises
    ------
    InputFormatError
        The file fails cxlab's structural checks, is MIPS (ezc3d cannot read it), ezc3d
        raises, or the ezc3d child dies.
    """
    from cxlab.io._c3d_header import read_header, read_parameters
    from cxlab.io._c3d_params import (
        _concat,
        _labels,
        _str,
        events_from_parameters,
        length_factor,
        split_points,
    )
    from cxlab.io.forceplates import PlateSet, platforms_from_analogs

    buf = path.read_bytes()
    h = read_header(buf, path)
    to_fast = "read it with engine='fast' (the default engine='auto' does)"
    if h.processor == "mips":
        raise InputFormatError(
            message(
                "ezc3d cannot read MIPS (big-endian) C3D files",
                file=path,
                field="processor",
                value="mips",
                fix=to_fast,
            )
        )
    own = read_parameters(buf, path, h, strict=True)
    _ezc3d_safety(
        own,
        path,
        h,
        fix=to_fast
        if fast_reads_it
        else "the file is damaged; re-export it from the capture software",
    )
    d = _run_child(path)
    params = {
        g: {k: Param(t, (len(v),) if t == -1 else tuple(v.shape), v) for k, (t, v) in grp.items()}
        for g, grp in d["parameters"].items()
    }
    want = int(own.get("ANALOG", {}).get("USED", Param(2, (), np.array(0))).flat()[0]) & 0xFFFF
    got = d["analogs"].shape[1]
    if want != got:  # e.g. ANALOG:RATE missing: ezc3d then misaligns every frame
        raise InputFormatError(
            message(
                f"ezc3d decodes {got} analog channels but ANALOG:USED is {want}, so its frames "
                "would be misaligned",
                file=path,
                field="ANALOG:USED",
                value=want,
                fix=to_fast,
            )
        )
    point, analog = params.get("POINT", {}), params.get("ANALOG", {})
    pts = d["points"]
    n_frames, n_points = pts.shape[2], pts.shape[1]
    units = _str(point, "UNITS", "")
    length_m = length_factor(units, path=path) if n_points or "FORCE_PLATFORM" in params else 1e-3
    xyz = pts[:3].transpose(2, 1, 0) * length_m
    res = d["residuals"][0].T
    invalid = ~(res >= 0) | np.isnan(xyz).any(axis=-1)
    residuals = np.where(invalid, np.nan, res * length_m)
    xyz[invalid] = np.nan
    labels = _labels(_concat(point, "LABELS"), n_points, "point", path)
    is_marker, other = split_points(point, xyz, labels, length_m)

    analogs = d["analogs"][0].T
    n_ch = analogs.shape[1]
    analog_labels = _labels(_concat(analog, "LABELS"), n_ch, "analog", path)
    analog_units = ([str(u).strip() for u in _concat(analog, "UNITS")] + [""] * n_ch)[:n_ch]
    analog_rate = d["analog_rate"] if n_ch else 0.0
    n_sub = analogs.shape[0] // n_frames if n_frames else 0
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
    markers = xyz[:, is_marker]
    marker_labels = [lab for lab, m in zip(labels, is_marker, strict=True) if m]
    header_events = [(lab, t) for lab, t in d["events"] if lab]
    meta = {
        "manufacturer": _str(params.get("MANUFACTURER", {}), "COMPANY"),
        "software": _str(params.get("MANUFACTURER", {}), "SOFTWARE"),
        "first_frame": d["first_frame"] + 1,
        "units": {"point": units, "analog": sorted(set(analog_units))},
        "processor": h.processor,
        "storage": "float" if h.scale < 0 else "int16",
        "points_other": other,
        "plate_conventions": [c._asdict() for c in plates.conventions],
        "parameters": {g: {k: p.plain() for k, p in grp.items()} for g, grp in params.items()},
        "ezc3d_version": d["version"],
    }
    return Recording(
        markers=markers,
        marker_labels=marker_labels,
        residuals=residuals[:, is_marker],
        point_rate_hz=d["point_rate"],
        analogs=analogs,
        analog_labels=analog_labels,
        analog_units=analog_units,
        analog_rate_hz=analog_rate,
        platforms=plates.platforms,
        events=events_from_parameters(params, header_events),
        meta=meta,
        warnings=list(plates.warnings),
    )


def _main(argv: list[str]) -> int:
    """Child entry point: read ``argv[0]`` with ezc3d, pickle the result to stdout."""
    try:
        out: dict[str, Any] = _child_read(argv[0])
    except Exception as exc:  # reported to the parent as data
        out = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
