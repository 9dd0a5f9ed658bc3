"""OpenSim text formats: marker trajectories (``.trc``), motions and storages (``.mot``, ``.sto``).

Both readers return a :class:`~cxlab.io.recording.Recording` in SI units.

Lab frame (the ``up`` option)
-----------------------------
OpenSim's ground frame is **Y up** (X forward, Z to the subject's right), cxlab's lab frame is
**Z up** (X forward, Y to the left). ``up="y"`` converts a file from OpenSim's frame with the
proper rotation of +90° about X::

    R = [[1, 0, 0],          (x, y, z)_cxlab = (x, -z, y)_opensim
         [0, 0, -1],
         [0, 1, 0]]

applied to positions, forces, centres of pressure and torques alike (det R = +1, so
``r × F`` rotates with them). ``up="z"`` keeps the file's own axes. Defaults:

* :func:`read_mot` uses ``up="auto"``: the vertical axis of a ground-reaction-force file is the
  axis carrying the largest median |force| over the samples where a plate is loaded (body
  weight dominates the shear forces in standing, walking, running and jumping); a Y-up file is
  rotated, a Z-up file kept.
* :func:`read_trc` uses ``up="z"``: marker files are stored as found (``docs/conventions.md``),
  because TRC files are written in many lab frames (``opensim_std_walking2_markers.trc`` is Z up,
  ``subject01_walk_marker_trajectories.trc`` is Y up). ``cxlab ingest`` reads a TRC paired with
  a force ``.mot`` in the frame detected for the forces, so the pair stays consistent.

Parsing is vectorised: the header is read line by line, the numeric block with one
:func:`pandas.read_csv` call.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from cxlab._check import InputFormatError, check_option, message, warn
from cxlab.io._text import cells, delimiter, head_lines, numeric_block, rate_from_time
from cxlab.io.recording import Platform, Recording

__all__ = ["read_mot", "read_trc"]

UNIT_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0, "meters": 1.0, "millimeters": 1e-3}
_R_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: an OpenSim ground-reaction column: ``[prefix]ground_force_v[xyz]``/``p[xyz]``/``torque_[xyz]``
GRF_COLUMN = _GRF = re.compile(
    r"^(?P<prefix>.*?)ground_(?P<kind>force|torque)_(?P<comp>v[xyz]|p[xyz]|[xyz])$", re.IGNORECASE)
_TRANSLATION = re.compile(r"(_t[xyz]$)|(trans)", re.IGNORECASE)
_MAX_HEADER_LINES = 1000


def _rotate(v: np.ndarray, up: str) -> np.ndarray:
    return v @ _R_YUP.T if up == "y" else v


# -- TRC ----------------------------------------------------------------------------------
def read_trc(path: str | os.PathLike[str], /, *, up: str = "z") -> Recording:
    """Read an OpenSim/Vicon/Motion Analysis TRC marker file.

    Parameters
    ----------
    path : path-like
        The ``.trc`` file: header (``PathFileType``; ``DataRate CameraRate NumFrames
        NumMarkers Units OrigDataRate OrigDataStartFrame OrigNumFrames`` keys and values),
        marker names row, ``X1 Y1 Z1 ...`` row, data rows ``Frame# Time x y z ...``;
        tab-, comma- or white-space-delimited. Empty or ``NaN`` cells are missing coordinates.
    up : {"z", "y"}
        The file's vertical axis; ``"y"`` rotates OpenSim's Y-up frame into cxlab's Z-up frame
        (see the module docstring), ``"z"`` keeps the file's axes.

    Returns
    -------
    Recording
        ``markers`` shape (n_frames, n_markers, 3) in metres (header ``Units`` mm, cm or m),
        NaN where missing; ``residuals`` all NaN (TRC has none); ``point_rate_hz`` from the
        ``Time`` column when it disagrees with ``DataRate`` (with a warning), else
        ``DataRate``; no analogs or platforms. ``meta`` holds ``format="trc"``,
        ``first_frame`` (first ``Frame#``), ``units``, ``time_offset_s`` (first ``Time``),
        ``up`` and ``parameters`` (the header keys and values).

    Raises
    ------
    InputFormatError
        Missing header keys, unknown units, a non-numeric cell, or a data block whose width
        does not match the markers.

    Warns
    -----
    CxlabWarning
        When ``NumFrames`` or ``NumMarkers`` disagree with the data (the data is trusted).
    """
    path = Path(path)
    check_option("up", up, ("z", "y"))
    head = head_lines(path, 5)
    if len(head) < 5 or not head[0].strip().lower().startswith("pathfiletype"):
        raise InputFormatError(message("is not a TRC file (expected 'PathFileType' on line 1 "
                                       "and a 5-line header)", file=path,
                                       value=head[0][:40] if head else "",
                                       fix="export marker data as TRC or use the matching reader"))
    sep = delimiter(head[1])
    keys = [k for k in cells(head[1], sep) if k]
    vals = cells(head[2], sep)[: len(keys)]
    header = dict(zip(keys, vals, strict=False))
    for k in ("DataRate", "NumMarkers", "Units"):
        if not header.get(k):
            raise InputFormatError(message("is missing from the TRC header (line 2-3)", file=path,
                                           field=k, fix="re-export the TRC with a full header"))
    units = header["Units"].strip()
    if units.lower() not in UNIT_SCALE:
        raise InputFormatError(message("is not a supported length unit", file=path, field="Units",
                                       value=units, fix="use mm, cm or m"))
    try:
        rate = float(header["DataRate"])
    except ValueError:
        raise InputFormatError(message("is not a number", file=path, field="DataRate",
                                       value=header["DataRate"])) from None
    labels = [c for c in cells(head[3], sep)[2:] if c]
    n_coord = sum(bool(re.fullmatch(r"[XYZ]\d+", c)) for c in cells(head[4], sep))
    if n_coord != 3 * len(labels):
        raise InputFormatError(message(f"has {len(labels)} marker names but {n_coord} coordinate "
                                       "headers (expected 3 per marker)", file=path,
                                       field="line 5", fix="check the header rows 4 and 5"))
    n = len(labels)
    data = numeric_block(path, skiprows=5, sep=sep, names_line=0)
    width = 2 + 3 * n
    if data.shape[0] and data.shape[1] < width:
        raise InputFormatError(message(f"data rows have {data.shape[1]} columns, expected "
                                       f"{width} (Frame#, Time, 3 x {n} markers)", file=path,
                                       fix="re-export the TRC"))
    if data.shape[1] > width and not np.isnan(data[:, width:]).all():
        raise InputFormatError(message(f"data rows have {data.shape[1]} columns but the header "
                                       f"names {n} markers ({width} columns)", file=path,
                                       fix="check the marker names row"))
    data = data[:, :width] if data.size else np.empty((0, width))
    _check_count(header, "NumFrames", data.shape[0], path, "data rows")
    _check_count(header, "NumMarkers", n, path, "marker names")
    time = data[:, 1]
    if data.shape[0] >= 2 and np.isfinite(time).sum() >= 2:
        span = rate_from_time(time, path, "Time")
        t_rate = rate_from_time(time, path, "Time", robust=True)
        if not any(math.isclose(r, rate, rel_tol=5e-3) for r in (span, t_rate)):
            warn(f"DataRate says {rate:g} Hz but the Time column steps at {t_rate:g} Hz; "
                 "using the Time column", file=path, field="DataRate")
            rate = t_rate
    markers = data[:, 2:].reshape(data.shape[0], n, 3) * UNIT_SCALE[units.lower()]
    first = data[0, 0] if data.shape[0] and np.isfinite(data[0, 0]) else 1
    return Recording(
        markers=_rotate(markers, up),
        marker_labels=labels,
        residuals=np.full(markers.shape[:2], np.nan),
        point_rate_hz=rate,
        analogs=np.empty((0, 0)),
        analog_labels=[],
        analog_units=[],
        analog_rate_hz=float("nan"),
        meta={"format": "trc", "engine": "cxlab", "source": str(path), "manufacturer": None,
              "software": None, "first_frame": max(int(first), 0), "units": units,
              "time_offset_s": float(time[0]) if time.size else 0.0, "up": up,
              "parameters": {"TRC": header}},
    )


def _check_count(header: dict, key: str, actual: int, path: Path, what: str) -> None:
    try:
        stated = int(float(header.get(key, "")))
    except ValueError:
        return
    if stated != actual:
        warn(f"header says {stated} but the file has {actual} {what}; trusting the data",
             file=path, field=key)


# -- MOT / STO ----------------------------------------------------------------------------
def read_mot(path: str | os.PathLike[str], /, *, up: str = "auto",
             cop_threshold_n: float = 20.0) -> Recording:
    """Read an OpenSim motion (``.mot``) or storage (``.sto``) file.

    Parameters
    ----------
    path : path-like
        Header lines up to ``endheader`` (``nRows=``, ``nColumns=``, ``inDegrees=``), a row of
        column names starting with ``time``, then numbers; tab-, comma- or white-space-delimited.
    up : {"auto", "y", "z"}
        Vertical axis of the ground-reaction-force columns (see the module docstring).
    cop_threshold_n : float
        Centre of pressure (and free moment) are NaN where |vertical force| is below this, N.

    Returns
    -------
    Recording
        No markers. Ground reaction force groups become :class:`Platform` objects, one per
        column prefix, ordered: no prefix, then numeric prefixes (``1_``, ``2_``, ...), then
        ``l_``, ``r_``, then any other prefix alphabetically. Per group: ``ground_force_v[xyz]``
        force on the body, N; ``ground_force_p[xyz]`` point of application = CoP, m;
        ``ground_torque_[xyz]`` torque at that point, N·m (zero if absent, with a warning);
        ``moment = p × F + T`` about the lab origin; ``tz`` = vertical torque component.
        Every other column lands in ``analogs`` with a unit by this rule: name ending
        ``_moment`` or ``_torque`` → ``N.m``; ending ``_force`` → ``N``; a translational
        coordinate (``_tx``/``_ty``/``_tz`` or containing ``trans``) → ``m``; any other column
        of a ``.mot`` file or of a file titled ``Coordinates`` → ``deg`` if ``inDegrees=yes``
        else ``rad``; else ``""`` (unknown). ``analog_rate_hz`` = (n_rows − 1) / (t_last −
        t_first). ``meta["time_offset_s"]`` is the first time value, ``meta["up"]`` the
        vertical axis used (``None`` without force columns).

    Raises
    ------
    InputFormatError
        No ``endheader``, no ``time`` column, a non-numeric cell, or an incomplete force group.

    Warns
    -----
    CxlabWarning
        When ``nRows``/``nColumns`` disagree with the data (the data is trusted).
    """
    path = Path(path)
    check_option("up", up, ("auto", "y", "z"))
    head = head_lines(path, _MAX_HEADER_LINES + 1)
    end = next((i for i, line in enumerate(head)
                if re.split(r"[\t, ]", line.strip(), maxsplit=1)[0].lower() == "endheader"), None)
    if end is None or end + 1 >= len(head):
        raise InputFormatError(message("has no 'endheader' line followed by column names",
                                       file=path, fix="check that it is an OpenSim .mot/.sto file"))
    sep = delimiter(head[end + 1])
    info = {}
    for line in head[:end]:
        first = cells(line, delimiter(line))[0] if line.strip() else ""
        if "=" in first:
            k, _, v = first.partition("=")
            info[k.strip()] = v.strip()
    title = cells(head[0], delimiter(head[0]))[0] if head else ""
    names = cells(head[end + 1], sep)
    while names and not names[-1]:
        names.pop()
    if not names or names[0].lower() != "time":
        raise InputFormatError(message("first column must be 'time'", file=path, field="line "
                                       f"{end + 2}", value=names[0] if names else "",
                                       fix="export with a time column"))
    data = numeric_block(path, skiprows=end + 2, sep=sep, names_line=end + 2)
    if data.size == 0:
        raise InputFormatError(message("has no data rows after the header", file=path,
                                       fix="re-export the file"))
    if data.shape[1] < len(names):
        raise InputFormatError(message(f"data rows have {data.shape[1]} columns but the header "
                                       f"names {len(names)}", file=path, fix="re-export the file"))
    if data.shape[1] > len(names) and not np.isnan(data[:, len(names):]).all():
        raise InputFormatError(message(f"data rows have {data.shape[1]} columns but only "
                                       f"{len(names)} names", file=path, fix="re-export the file"))
    data = data[:, : len(names)]
    _check_count(info, "nRows", data.shape[0], path, "data rows")
    _check_count(info, "nColumns", len(names), path, "columns")
    rate = rate_from_time(data[:, 0], path, names[0])
    groups, other = _grf_groups(names[1:], path)
    cols = {name: data[:, i] for i, name in enumerate(names)}
    in_deg = info.get("inDegrees", "").lower() in {"yes", "true", "1"}
    angles = path.suffix.lower() == ".mot" or "coordinate" in title.lower()
    units = [_analog_unit(c, in_deg, angles) for c in other]
    platforms: list[Platform] = []
    vertical = None
    if groups:
        vertical = _vertical_axis(groups, cols, cop_threshold_n) if up == "auto" else up
        platforms = [_platform(g, cols, vertical, rate, cop_threshold_n, path) for g in groups]
    return Recording(
        markers=np.empty((0, 0, 3)),
        marker_labels=[],
        residuals=np.empty((0, 0)),
        point_rate_hz=float("nan"),
        analogs=np.column_stack([cols[c] for c in other]) if other else np.empty((len(data), 0)),
        analog_labels=list(other),
        analog_units=units,
        analog_rate_hz=rate,
        platforms=platforms,
        meta={"format": path.suffix.lower().lstrip(".") or "mot", "engine": "cxlab",
              "source": str(path), "manufacturer": None, "software": None, "first_frame": 0,
              "units": info.get("inDegrees"), "time_offset_s": float(data[0, 0]), "up": vertical,
              "title": title, "parameters": {"header": info}},
    )


def _analog_unit(name: str, in_deg: bool, angles: bool) -> str:
    low = name.lower()
    if low.endswith(("_moment", "_torque")):
        return "N.m"
    if low.endswith("_force"):
        return "N"
    if _TRANSLATION.search(name):
        return "m"
    if angles:
        return "deg" if in_deg else "rad"
    return ""


def _prefix_order(prefix: str) -> tuple:
    p = prefix.rstrip("_").lower()
    if p == "":
        return (0, 0, "")
    if p.isdigit():
        return (1, int(p), "")
    if p in ("l", "r"):
        return (2, "lr".index(p), "")
    return (3, 0, p)


def _grf_groups(names: list[str], path: Path) -> tuple[list[dict], list[str]]:
    groups: dict[str, dict[str, str]] = {}
    other = []
    for name in names:
        m = _GRF.match(name)
        if m is None:
            other.append(name)
            continue
        key = ("t" if m["kind"].lower() == "torque" else "") + m["comp"].lower()
        groups.setdefault(m["prefix"], {})[key] = name
    out = []
    for prefix in sorted(groups, key=_prefix_order):
        g = groups[prefix]
        need = [f"{k}{a}" for k in ("v", "p") for a in "xyz"]
        missing = [f"{prefix}ground_force_{k}" for k in need if k not in g]
        if missing:
            raise InputFormatError(message("ground reaction force group is incomplete", file=path,
                                           field=f"{prefix}ground_force", value=missing,
                                           fix="export all of v[xyz] and p[xyz] for each plate"))
        if not all(f"t{a}" in g for a in "xyz"):
            warn("has no ground_torque_[xyz] columns; free moment taken as zero", file=path,
                 field=f"{prefix}ground_force")
        out.append({"prefix": prefix, **g})
    return out, other


def _vec(g: dict, cols: dict, kind: str, n: int) -> np.ndarray:
    keys = [f"{kind}{a}" for a in "xyz"]
    if not all(k in g for k in keys):
        return np.zeros((n, 3))
    return np.column_stack([cols[g[k]] for k in keys])


def _vertical_axis(groups: list[dict], cols: dict, threshold: float) -> str:
    n = len(next(iter(cols.values())))
    f = np.concatenate([_vec(g, cols, "v", n) for g in groups])
    loaded = np.linalg.norm(f, axis=1) >= threshold
    sample = np.abs(f[loaded] if loaded.any() else f)
    med = np.nanmedian(sample, axis=0) if len(sample) else np.zeros(3)
    axis = "xyz"[int(np.argmax(med))]
    return "y" if axis == "y" else "z"


def _platform(g: dict, cols: dict, up: str, rate: float, threshold: float,
              path: Path) -> Platform:
    n = len(cols[g["vx"]])
    force = _rotate(_vec(g, cols, "v", n), up)
    point = _rotate(_vec(g, cols, "p", n), up)
    torque = _rotate(_vec(g, cols, "t", n), up)
    moment = np.cross(point, force) + torque
    low = ~(np.abs(force[:, 2]) >= threshold)
    cop = point.copy()
    cop[low] = np.nan
    tz = torque[:, 2].copy()
    tz[low] = np.nan
    return Platform(force=force, moment=moment, cop=cop, tz=tz,
                    corners=np.full((4, 3), np.nan), origin=np.full(3, np.nan), type=0,
                    rate_hz=rate)
