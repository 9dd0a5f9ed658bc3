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
from cxlab.io._text import (
    WHITESPACE,
    cells,
    check_empty,
    delimiter,
    head_line,
    head_lines,
    is_endheader,
    numeric_block,
    plate_recording,
    rate_from_time,
    time_order,
)
from cxlab.io.recording import Platform, Recording
from cxlab.units import unit_factor

__all__ = ["read_mot", "read_trc"]

_R_YUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: an OpenSim ground-reaction column: ``[prefix]ground_force_v[xyz]``/``p[xyz]``/``torque_[xyz]``
#: ``[prefix]ground_force[infix]_v[xyz]``, e.g. ``l_ground_force_vx``, ``ground_force_r_vx``,
#: ``ground_force1_vx`` (the infix is a side or a plate number)
GRF_COLUMN = _GRF = re.compile(
    r"^(?P<prefix>.*?)ground_(?P<kind>force|torque)(?P<infix>_?(?:[lr]|left|right|\d+))?"
    r"_(?P<comp>v[xyz]|p[xyz]|[xyz])$",
    re.IGNORECASE,
)
_TRANSLATION = re.compile(r"(_t[xyz]$)|(trans)", re.IGNORECASE)
_MAX_HEADER_LINES = 1000
#: no marker of a lab recording is farther than this from the origin, m
MAX_MARKER_M = 1e3
#: no ground reaction force on a person reaches this, N (a 20 m drop landing is ~30 kN)
MAX_FORCE_N = 1e5


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
        tab-, comma- or white-space-delimited (runs of tabs in the header values row are
        tolerated). Empty cells and ``NaN`` in any letter case are missing coordinates.
    up : {"z", "y"}
        The file's vertical axis; ``"y"`` rotates OpenSim's Y-up frame into cxlab's Z-up frame
        (see the module docstring), ``"z"`` keeps the file's axes.

    Returns
    -------
    Recording
        ``markers`` shape (n_frames, n_markers, 3) in metres (header ``Units`` mm, cm or m),
        NaN where missing; ``residuals`` all NaN (TRC has none); ``point_rate_hz`` from the
        ``Time`` column when it disagrees with ``DataRate`` (with a warning), else
        ``DataRate``; no analogs or platforms. Rows carrying more coordinates than the names
        row names (Motion Analysis writes unnamed markers) keep them as markers ``M<k>``
        (k = their 1-based column triple), with a warning; a named marker absent from every
        row is all NaN, with a warning. Rows out of time order are sorted, with a warning.
        ``meta`` holds ``format="trc"``, ``first_frame`` (first ``Frame#``), ``units``,
        ``time_offset_s`` (first ``Time``), ``up`` and ``parameters`` (the header keys and
        values).

    Raises
    ------
    InputFormatError
        An empty file, missing header keys, unknown units, a non-numeric, infinite or absurd
        (> 1 km) cell, a non-finite header count, a partial coordinate triple, or a repeated
        time value.

    Warns
    -----
    CxlabWarning
        When ``NumFrames`` or ``NumMarkers`` disagree with the data (the data is trusted).
    """
    path = Path(path)
    check_option("up", up, ("z", "y"))
    check_empty(path)
    head = head_lines(path, 5)
    if len(head) < 5 or not head[0].strip().lower().startswith("pathfiletype"):
        raise InputFormatError(
            message(
                "is not a TRC file (expected 'PathFileType' on line 1 and a 5-line header)",
                file=path,
                value=head[0][:40] if head else "",
                fix="export marker data as TRC or use the matching reader",
            )
        )
    sep = delimiter(head[1], default=WHITESPACE)
    keys = [k for k in cells(head[1], sep) if k]
    vals = cells(head[2], sep)
    filled = [v for v in vals if v]
    # a values row written with runs of tabs has empty cells between the values
    vals = filled if len(filled) == len(keys) else vals[: len(keys)]
    header = dict(zip(keys, vals, strict=False))
    for k in ("DataRate", "NumMarkers", "Units"):
        if not header.get(k):
            raise InputFormatError(
                message(
                    "is missing from the TRC header (line 2-3)",
                    file=path,
                    field=k,
                    fix="re-export the TRC with a full header",
                )
            )
    units = header["Units"].strip()
    length_m = unit_factor(units, quantity="length")
    if length_m is None:
        raise InputFormatError(
            message(
                "is not a supported length unit",
                file=path,
                field="Units",
                value=units,
                fix="use mm, cm or m",
            )
        )
    rate = _header_number(header, "DataRate", path)
    labels = [c for c in cells(head[3], sep)[2:] if c]
    n_coord = sum(bool(re.fullmatch(r"[XYZ]\d+", c)) for c in cells(head[4], sep))
    n_named = len(labels)
    col_names = ["Frame#", "Time", *(f"{m}.{a}" for m in labels for a in "XYZ")]
    data = numeric_block(path, skiprows=5, sep=sep, names=col_names)
    width = 2 + 3 * n_named
    if data.size == 0:
        data = np.empty((0, width))
    finite_cols = np.flatnonzero(np.isfinite(data).any(axis=0))
    used = int(finite_cols[-1]) + 1 if finite_cols.size else 0
    n_data = -(-(used - 2) // 3) if used > 2 else 0
    if used > width and (used - 2) % 3:
        raise InputFormatError(
            message(
                f"data rows have {used} columns: not Frame#, Time and whole x, y, z triples",
                file=path,
                value=f"{used - 2} coordinate columns",
                fix="check the marker names row and re-export the TRC",
            )
        )
    n = max(n_named, n_data)
    if n_coord and n_coord != 3 * n_named:
        warn(
            f"the coordinate row names {n_coord // 3} markers but the names row {n_named}",
            file=path,
            field="line 5",
        )
    if n > n_named:
        taken = set(labels)
        extra = []
        for k in range(n_named + 1, n + 1):
            name = f"M{k}"
            while name in taken:
                name += "_"
            extra.append(name)
            taken.add(name)
        warn(
            f"rows carry {n - n_named} marker(s) beyond the {n_named} named; kept as "
            f"{', '.join(extra)}",
            file=path,
            field="marker names row",
        )
        labels = labels + extra
    elif 0 < used < width and data.shape[0]:
        missing = labels[max(0, (used - 2) // 3) :]
        warn(
            f"no row has coordinates for {len(missing)} named marker(s); stored as missing "
            f"(NaN): {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}",
            file=path,
            field="marker names row",
        )
    labels = _unique(labels, path, "marker names row")
    width = 2 + 3 * n
    if data.shape[1] < width:
        data = np.pad(data, ((0, 0), (0, width - data.shape[1])), constant_values=np.nan)
    data = data[:, :width]
    _check_count(header, "NumFrames", data.shape[0], path, "data rows")
    _check_count(header, "NumMarkers", n, path, "markers")
    time = data[:, 1]
    if np.isfinite(time).all():
        order = time_order(time, path, "Time", first_line=6)
        if order is not None:
            data = data[order]
            time = data[:, 1]
    if data.shape[0] >= 2 and np.isfinite(time).sum() >= 2:
        span = rate_from_time(time, path, "Time")
        t_rate = rate_from_time(time, path, "Time", robust=True)
        if not any(math.isclose(r, rate, rel_tol=5e-3) for r in (span, t_rate)):
            warn(
                f"DataRate says {rate:g} Hz but the Time column steps at {t_rate:g} Hz; "
                "using the Time column",
                file=path,
                field="DataRate",
            )
            rate = t_rate
    markers = data[:, 2:].reshape(data.shape[0], n, 3) * length_m
    _check_magnitude(
        markers.reshape(len(markers), -1),
        MAX_MARKER_M,
        path,
        [f"{m}.{a}" for m in labels for a in "XYZ"],
        "m",
        first_line=6,
    )
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
        meta={
            "format": "trc",
            "engine": "cxlab",
            "source": str(path),
            "manufacturer": None,
            "software": None,
            "first_frame": max(int(first), 0),
            "units": units,
            "time_offset_s": float(time[0]) if time.size else 0.0,
            "up": up,
            "parameters": {"TRC": header},
        },
    )


def _header_number(header: dict, key: str, path: Path) -> float:
    try:
        value = float(header[key])
    except ValueError:
        raise InputFormatError(
            message("is not a number", file=path, field=key, value=header[key])
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise InputFormatError(
            message(
                "must be a positive finite number",
                file=path,
                field=key,
                value=header[key],
                fix="fix the header value",
            )
        )
    return value


def _unique(labels: list[str], path: Path, field: str) -> list[str]:
    """Labels with repeats made distinct (``name``, ``name#2``, ...), with a warning."""
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}#{seen[lab]}")
    dup = [lab for lab, k in seen.items() if k > 1]
    if dup:
        warn(
            f"repeats the name(s) {', '.join(dup)}; later ones kept as {dup[0]}#2, ...",
            file=path,
            field=field,
        )
    return out


def _check_magnitude(
    values: np.ndarray, limit: float, path: Path, names: list[str], unit: str, *, first_line: int
) -> None:
    bad = np.abs(np.nan_to_num(values)) > limit
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputFormatError(
            message(
                f"line {first_line + int(r)}: {values[r, c]:.6g} {unit} "
                f"is beyond any plausible measurement (|value| > "
                f"{limit:g} {unit})",
                file=path,
                field=names[c] if c < len(names) else f"column {c + 1}",
                fix="the file is corrupt there; re-export it",
            )
        )


def _check_count(header: dict, key: str, actual: int, path: Path, what: str) -> None:
    text = str(header.get(key, "")).strip()
    try:
        stated = float(text)
    except ValueError:
        return
    if not (math.isfinite(stated) and stated >= 0 and stated == int(stated)):
        raise InputFormatError(
            message(
                "is not a count",
                file=path,
                field=key,
                value=text,
                fix=f"set it to the number of {what} ({actual}) or re-export the file",
            )
        )
    if int(stated) != actual:
        warn(
            f"header says {int(stated)} but the file has {actual} {what}; trusting the data",
            file=path,
            field=key,
        )


# -- MOT / STO ----------------------------------------------------------------------------
def read_mot(
    path: str | os.PathLike[str], /, *, up: str = "auto", cop_threshold_n: float = 20.0
) -> Recording:
    """Read an OpenSim motion (``.mot``) or storage (``.sto``) file, whatever its extension.

    Parameters
    ----------
    path : path-like
        Header lines up to ``endheader`` (``nRows=``, ``nColumns=``, ``inDegrees=``,
        ``DataType=``), a row of column names starting with ``time``, then numbers; tab-,
        comma- or white-space-delimited (a ``.csv`` holding a MOT reads the same).
    up : {"auto", "y", "z"}
        Vertical axis of the ground-reaction-force columns (see the module docstring).
    cop_threshold_n : float
        Centre of pressure (and free moment) are NaN where |vertical force| is below this, N.

    Returns
    -------
    Recording
        No markers. Ground reaction force groups become :class:`Platform` objects. A group is
        the columns ``<prefix>ground_force<infix>_v[xyz]`` / ``_p[xyz]`` and
        ``<prefix>ground_torque<infix>_[xyz]`` (``ground_force_vx``, ``l_ground_force_vx``,
        ``1_ground_force_vx``, ``ground_force_r_vx``, ``ground_force1_vx``); a column name
        repeated in a file starts a further group by position (with a warning), never
        overwriting the first. The side comes from the name (``l``/``left``/``r``/``right``
        as the last prefix token or the infix, any case); an unprefixed group beside one
        group of a stated side is the other side (OpenSim's own setup files pair unprefixed
        columns with the right foot when ``l_`` columns are the left); otherwise the side is
        unknown (``None``) and a warning says so. ``meta["plate_sides"]`` lists each plate's
        side. Order: left, right, then unknown sides (unprefixed, numbered ascending, other
        names alphabetically), so plate 1 is the left foot when sides are known
        (``docs/conventions.md``). Per group: ``ground_force_v[xyz]`` force on the body, N;
        ``ground_force_p[xyz]`` point of application = CoP, m; ``ground_torque_[xyz]`` torque
        at that point, N·m (zero if absent, with a warning); ``moment = p × F + T`` about the
        lab origin; ``tz`` = vertical torque component.

        A ``DataType=Quaternion`` storage (OpenSense IMU orientations, each cell ``w,x,y,z``)
        gives four analog channels per column, ``<name>_qw``, ``_qx``, ``_qy``, ``_qz``
        (unit ``1``), and ``meta["orientations"]`` lists the columns; a quaternion whose norm
        is not 1 ± 1e-3 is a warning.

        Every other column lands in ``analogs`` (repeated names made distinct, with a warning)
        with a unit by this rule: name ending ``_moment`` or ``_torque`` → ``N.m``; ending
        ``_force`` → ``N``; a translational coordinate (``_tx``/``_ty``/``_tz`` or containing
        ``trans``) → ``m``; any other column of a ``.mot`` file or of a file titled
        ``Coordinates`` → ``deg`` if ``inDegrees=yes`` else ``rad``; else ``""`` (unknown).
        ``analog_rate_hz`` = (n_rows − 1) / (t_last − t_first). Rows out of time order are
        sorted (with a warning). ``meta["time_offset_s"]`` is the first time value,
        ``meta["up"]`` the vertical axis used (``None`` without force columns).

    Raises
    ------
    InputFormatError
        An empty file, no ``endheader``, no ``time`` column, a non-numeric, infinite or absurd
        cell (a force beyond 100 kN), a repeated time value, or an incomplete force group.

    Warns
    -----
    CxlabWarning
        When ``nRows``/``nColumns`` disagree with the data (the data is trusted).
    """
    path = Path(path)
    check_option("up", up, ("auto", "y", "z"))
    check_empty(path)
    head = head_lines(path, _MAX_HEADER_LINES + 1)
    end = head_line(
        head,
        is_endheader,
        path=path,
        what="has no 'endheader' line followed by column names",
        fix="check that it is an OpenSim .mot/.sto file",
    )
    info = {}
    for line in head[:end]:
        first = cells(line, delimiter(line, default=WHITESPACE))[0] if line.strip() else ""
        if "=" in first:
            k, _, v = first.partition("=")
            info[k.strip()] = v.strip()
    quaternion = info.get("DataType", "").lower() == "quaternion"
    sep = (
        "\t"
        if quaternion and "\t" in head[end + 1]
        else delimiter(head[end + 1], default=WHITESPACE)
    )
    title = cells(head[0], delimiter(head[0], default=WHITESPACE))[0] if head else ""
    names = cells(head[end + 1], sep)
    while names and not names[-1]:
        names.pop()
    if not names or names[0].lower() != "time":
        raise InputFormatError(
            message(
                "first column must be 'time'",
                file=path,
                field=f"line {end + 2}",
                value=names[0] if names else "",
                fix="export with a time column",
            )
        )
    text = None
    if quaternion:  # each cell is "w,x,y,z": one column per component
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            text = fh.read().replace(",", "\t")
        names = [names[0], *(f"{c}_q{a}" for c in names[1:] for a in "wxyz")]
    data = numeric_block(path, skiprows=end + 2, sep=sep, names=names, text=text)
    if data.size == 0:
        raise InputFormatError(
            message("has no data rows after the header", file=path, fix="re-export the file")
        )
    if data.shape[1] < len(names):
        raise InputFormatError(
            message(
                f"data rows have {data.shape[1]} columns but the header names {len(names)}",
                file=path,
                fix="re-export the file",
            )
        )
    if data.shape[1] > len(names) and not np.isnan(data[:, len(names) :]).all():
        raise InputFormatError(
            message(
                f"data rows have {data.shape[1]} columns but only {len(names)} names",
                file=path,
                fix="re-export the file",
            )
        )
    data = data[:, : len(names)]
    if np.isnan(data).any() and quaternion:
        raise InputFormatError(
            message(
                "has a quaternion cell without 4 components",
                file=path,
                fix="re-export the orientations",
            )
        )
    order = time_order(data[:, 0], path, names[0], first_line=end + 3)
    if order is not None:
        data = data[order]
    _check_count(info, "nRows", data.shape[0], path, "data rows")
    if not quaternion:
        _check_count(info, "nColumns", len(names), path, "columns")
    rate = rate_from_time(data[:, 0], path, names[0])
    groups, other = _grf_groups(names, path)
    in_deg = info.get("inDegrees", "").lower() in {"yes", "true", "1"}
    angles = path.suffix.lower() == ".mot" or "coordinate" in title.lower()
    labels = _unique([names[i] for i in other], path, "column names")
    units = ["1" if quaternion else _analog_unit(c, in_deg, angles) for c in labels]
    meta_extra: dict = {}
    if quaternion:
        q = data[:, 1:].reshape(len(data), -1, 4)
        norm = np.linalg.norm(q, axis=2)
        if (np.abs(norm - 1) > 1e-3).any():
            r, c = np.argwhere(np.abs(norm - 1) > 1e-3)[0]
            warn(
                f"data row {int(r) + 1}: quaternion norm {norm[r, c]:.4g} is not 1",
                file=path,
                field=names[1 + 4 * int(c)].removesuffix("_qw"),
            )
        meta_extra["orientations"] = [n.removesuffix("_qw") for n in names[1::4]]
    platforms: list[Platform] = []
    vertical = None
    if groups:
        cols = [data[:, i] for i in range(data.shape[1])]
        _check_magnitude(
            data[:, [g[k] for g in groups for k in ("vx", "vy", "vz")]],
            MAX_FORCE_N,
            path,
            [names[g[k]] for g in groups for k in ("vx", "vy", "vz")],
            "N",
            first_line=end + 3,
        )
        vertical = _vertical_axis(groups, cols, cop_threshold_n) if up == "auto" else up
        platforms = [_platform(g, cols, vertical, rate, cop_threshold_n) for g in groups]
        meta_extra["plate_sides"] = [g["side"] for g in groups]
    return plate_recording(
        path,
        platforms,
        fmt="sto" if path.suffix.lower() == ".sto" else "mot",
        rate_hz=rate,
        meta={
            "manufacturer": None,
            "software": None,
            "first_frame": 0,
            "units": info.get("inDegrees"),
            "time_offset_s": float(data[0, 0]),
            "up": vertical,
            "title": title,
            "parameters": {"header": info},
            **meta_extra,
        },
        analogs=data[:, other] if other else np.empty((len(data), 0)),
        analog_labels=labels,
        analog_units=units,
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


_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}


def _side_of(prefix: str, infix: str) -> str | None:
    for part in (infix.strip("_"), (prefix.strip("_").split("_") or [""])[-1]):
        if part.lower() in _SIDES:
            return _SIDES[part.lower()]
    return None


def _group_order(g: dict) -> tuple:
    side = {"left": 0, "right": 1}.get(g["side"], 2)
    tag = (g["prefix"] + g["infix"]).strip("_").lower()
    if tag == "":
        return (side, 0, 0, "", g["copy"])
    if tag.isdigit():
        return (side, 1, int(tag), "", g["copy"])
    return (side, 2, 0, tag, g["copy"])


def _grf_groups(names: list[str], path: Path) -> tuple[list[dict], list[int]]:
    """GRF groups (column index per component, side, label) and the other columns' indices."""
    groups: dict[tuple, dict] = {}
    other: list[int] = []
    repeats: list[str] = []
    for i, name in enumerate(names[1:], start=1):
        m = _GRF.match(name)
        if m is None:
            other.append(i)
            continue
        prefix, infix = m["prefix"], m["infix"] or ""
        key = ("t" if m["kind"].lower() == "torque" else "") + m["comp"].lower()
        base = (prefix.lower(), infix.lower())
        copy = 0
        while key in groups.get((*base, copy), {}):
            copy += 1  # a repeated name is a further plate, never an overwrite
        if copy and name not in repeats:
            repeats.append(name)
        g = groups.setdefault(
            (*base, copy),
            {
                "prefix": prefix,
                "infix": infix,
                "copy": copy,
                "label": f"{prefix}ground_force{infix}" + (f" (copy {copy + 1})" if copy else ""),
            },
        )
        g[key] = i
    if repeats:
        warn(
            f"repeats GRF column name(s) {', '.join(repeats[:3])}; each repeat is read as a "
            "further plate in column order",
            file=path,
            field="column names",
        )
    out = list(groups.values())
    for g in out:
        need = [f"{k}{a}" for k in ("v", "p") for a in "xyz"]
        missing = [f"{g['prefix']}ground_force{g['infix']}_{k}" for k in need if k not in g]
        if missing:
            raise InputFormatError(
                message(
                    "ground reaction force group is incomplete",
                    file=path,
                    field=g["label"],
                    value=missing,
                    fix="export all of v[xyz] and p[xyz] for each plate",
                )
            )
        if not all(f"t{a}" in g for a in "xyz"):
            warn(
                "has no ground_torque_[xyz] columns; free moment taken as zero",
                file=path,
                field=g["label"],
            )
        g["side"] = _side_of(g["prefix"], g["infix"])
    bare = [g for g in out if not (g["prefix"] + g["infix"]).strip("_")]
    stated = [g for g in out if g["side"]]
    if len(out) == 2 and len(bare) == 1 and len(stated) == 1:
        bare[0]["side"] = "right" if stated[0]["side"] == "left" else "left"
    out.sort(key=_group_order)
    unknown = [g["label"] for g in out if g["side"] is None]
    if unknown and len(out) > 1:
        warn(
            f"the column names do not say which foot {', '.join(unknown)} "
            f"{'is' if len(unknown) == 1 else 'are'} under; plates numbered in column order "
            "(" + ", ".join(f"plate {k} = {g['label']}" for k, g in enumerate(out, 1)) + ")",
            file=path,
            field="plate sides",
        )
    return out, other


def _vec(g: dict, cols: list, kind: str, n: int) -> np.ndarray:
    keys = [f"{kind}{a}" for a in "xyz"]
    if not all(k in g for k in keys):
        return np.zeros((n, 3))
    return np.column_stack([cols[g[k]] for k in keys])


def _vertical_axis(groups: list[dict], cols: list, threshold: float) -> str:
    n = len(cols[0])
    f = np.concatenate([_vec(g, cols, "v", n) for g in groups])
    loaded = np.linalg.norm(f, axis=1) >= threshold
    sample = np.abs(f[loaded] if loaded.any() else f)
    med = np.nanmedian(sample, axis=0) if len(sample) else np.zeros(3)
    axis = "xyz"[int(np.argmax(med))]
    return "y" if axis == "y" else "z"


def _platform(g: dict, cols: list, up: str, rate: float, threshold: float) -> Platform:
    n = len(cols[0])
    force = _rotate(_vec(g, cols, "v", n), up)
    point = _rotate(_vec(g, cols, "p", n), up)
    torque = _rotate(_vec(g, cols, "t", n), up)
    moment = np.cross(point, force) + torque
    low = ~(np.abs(force[:, 2]) >= threshold)
    cop = point.copy()
    cop[low] = np.nan
    tz = torque[:, 2].copy()
    tz[low] = np.nan
    return Platform(
        force=force,
        moment=moment,
        cop=cop,
        tz=tz,
        corners=np.full((4, 3), np.nan),
        origin=np.full(3, np.nan),
        type=0,
        rate_hz=rate,
    )
