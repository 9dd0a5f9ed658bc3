"""Force-plate exports as vendors write them, read by content with no mapping.

=================  ==============================================  =========================
format             recognised by (first line)                      reader
=================  ==============================================  =========================
VALD ForceDecks    ``ForceDecks Raw Data Export,<version>``        :func:`read_forcedecks`
Kistler BioWare    ``BioWare Version <x> Export``                  :func:`read_bioware`
=================  ==============================================  =========================

Both return a :class:`~cxlab.io.recording.Recording` with one :class:`Platform` per plate, in
cxlab's convention (``docs/conventions.md``): force on the body in N with the vertical
positive up, centre of pressure in m, plate 1 = left.

A quantity a file does not export is NaN, never 0: a ForceDecks plate has only ``fz``
(``fx``, ``fy``, CoP and moments NaN); a BioWare centre-of-pressure-only export has CoP and
NaN force. Identifiers in the headers (ForceDecks ``AthleteId``, BioWare ``ID``) are exposed
only as ``meta["subject_label"]`` for ingest to pseudonymise; the BioWare ``Name`` and free
text fields are not kept.
"""

from __future__ import annotations

import csv
import math
import os
import re
from datetime import datetime
from pathlib import Path

import numpy as np

from cxlab._check import InputFormatError, message, warn
from cxlab.io._text import (
    check_empty,
    decimal_mark,
    delimiter,
    head_line,
    head_lines,
    numeric_block,
    plate_recording,
    rate_from_time,
    time_order,
)
from cxlab.io.recording import Platform, Recording
from cxlab.units import MASS, QUANTITIES, unit_factor

__all__ = ["read_bioware", "read_forcedecks", "vendor_format"]

_FORCEDECKS = re.compile(r'^\ufeff?"?forcedecks raw data export"?\s*[,;]', re.IGNORECASE)
_BIOWARE = re.compile(r"^\ufeff?bioware version .* export\s*$", re.IGNORECASE)
#: no body weight a plate reports is outside this range, kg
_MASS_RANGE_KG = (10.0, 400.0)
#: no ground reaction force on a person reaches this, N
MAX_FORCE_N = 1e5


def vendor_format(first_line: str, /) -> str | None:
    """``"forcedecks"``, ``"bioware"`` or ``None`` from a file's first line."""
    line = first_line.strip("\r\n")
    if _FORCEDECKS.match(line):
        return "forcedecks"
    if _BIOWARE.match(line.strip()):
        return "bioware"
    return None


def _number(text: str) -> float:
    """A header number written with a decimal point or a decimal comma (``"88,77"``)."""
    t = text.strip().strip('"').strip()
    if "," in t and "." not in t:
        t = t.replace(",", ".")
    return float(t)


def _platform(fx, fy, fz, cx, cy, tz, rate: float, threshold: float) -> Platform:
    """A Platform from per-component arrays (N, m, N·m); absent components are NaN arrays.

    CoP is masked below ``threshold`` only where fz was measured: a CoP-only export keeps its
    CoP (its force is NaN, not 0).
    """
    low = np.abs(fz) < threshold  # False where fz is NaN
    cop = np.column_stack([cx, cy, np.where(np.isnan(cx) & np.isnan(cy), np.nan, 0.0)])
    cop[low] = np.nan
    moment = np.column_stack([cy * fz, -cx * fz, cx * fy - cy * fx + tz])
    return Platform(
        force=np.column_stack([fx, fy, fz]),
        moment=moment,
        cop=cop,
        tz=np.where(low, np.nan, tz),
        corners=np.full((4, 3), np.nan),
        origin=np.full(3, np.nan),
        type=0,
        rate_hz=rate,
    )


def _export_head(path: Path, fmt: str, n: int, *, what: str, fix: str) -> list[str]:
    """The first ``n`` lines of a ``fmt`` export; an empty file or another format is refused
    (``what`` is wrong, showing line 1, with ``fix``)."""
    check_empty(path)
    head = head_lines(path, n)
    if not head or vendor_format(head[0]) != fmt:
        raise InputFormatError(
            message(what, file=path, value=head[0][:40] if head else "", fix=fix)
        )
    return head


def _recording(
    platforms: list[Platform], rate: float, n: int, path: Path, fmt: str, meta: dict
) -> Recording:
    return plate_recording(
        path,
        platforms,
        fmt=fmt,
        rate_hz=rate,
        meta={"first_frame": 0, "units": None, **meta},
        analogs=np.empty((n, 0)),
    )


def _check_force(values: np.ndarray, path: Path, names: list[str], first_line: int) -> None:
    bad = np.abs(np.nan_to_num(values)) > MAX_FORCE_N
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputFormatError(
            message(
                f"line {first_line + int(r)}: {values[r, c]:.6g} N is "
                f"beyond any ground reaction force (> {MAX_FORCE_N:g} N)",
                file=path,
                field=names[c],
                fix="the file is corrupt there; re-export it",
            )
        )


def _time(t: np.ndarray, path: Path, field: str, first_line: int) -> np.ndarray | None:
    return time_order(t, path, field, first_line=first_line)


# -- VALD ForceDecks ----------------------------------------------------------------------
def read_forcedecks(path: str | os.PathLike[str], /, *, cop_threshold_n: float = 20.0) -> Recording:
    """Read a VALD ForceDecks raw data export (v1, v2 and the iOS "1.0" variant).

    Parameters
    ----------
    path : path-like
        The export as written: metadata lines (``ForceDecks Raw Data Export,<version>``,
        ``Weight (Kg)`` or ``Weight``, ``Frequency``, ``Recording Date``, ``Data Source``,
        ``Analysis Date``, ``AthleteId``, ``Tare,<left>,<right>`` (v1) or ``Z Tare,<z>`` (v2)),
        an empty line, the column row ``Time,Left,Right`` and the data; CRLF or LF, comma or
        semicolon delimited, decimal point or decimal comma (then cells are quoted, as the iOS
        app writes them). Columns after the first empty column name are the app's own
        post-analysis (acceleration, velocity, ...) and are not read.
    cop_threshold_n : float
        Unused (ForceDecks exports no CoP); accepted for a uniform reader signature, N.

    Returns
    -------
    Recording
        Plate 1 = ``Left``, plate 2 = ``Right``: ``force[:, 2]`` the vertical force in N (on
        the body, positive up), ``force[:, :2]``, CoP, moments and ``tz`` NaN (not exported).
        ``analog_rate_hz`` from ``Frequency`` (a ``Time`` column disagreeing by more than
        0.5 % is a warning and wins). ``meta``: ``format="forcedecks"``, ``manufacturer``
        ``"VALD"``, ``software`` (export name and version), ``export_version``,
        ``body_mass_kg`` (header weight, when within 10–400 kg), ``recorded_at`` and
        ``analysed_at`` (ISO 8601), ``tare`` (dict of the tare values as written, N or raw
        counts), ``device`` (``Data Source``), ``subject_label`` (``AthleteId``, for ingest to
        pseudonymise; never stored raw), ``time_offset_s``.

    Raises
    ------
    InputFormatError
        Not a ForceDecks export, no ``Time``/``Left``/``Right`` columns, a non-numeric,
        infinite or absurd (> 100 kN) cell, a repeated time value.
    """
    path = Path(path)
    head = _export_head(
        path,
        "forcedecks",
        40,
        what="is not a ForceDecks raw data export (line 1 must start 'ForceDecks Raw Data Export')",
        fix="export the trial from ForceDecks as raw data",
    )
    sep = delimiter(head[0])
    col_line = next(
        (i for i, line in enumerate(head) if re.match(r'^\s*"?time"?\s*[,;]', line, re.IGNORECASE)),
        None,
    )
    if col_line is None:
        raise InputFormatError(
            message(
                "has no 'Time,Left,Right' column row in its first 40 lines",
                file=path,
                fix="re-export the raw data",
            )
        )
    rows = list(csv.reader(head[:col_line], delimiter=sep))
    info = {
        r[0].strip().lstrip("\ufeff"): [c.strip() for c in r[1:] if c.strip()]
        for r in rows
        if r and r[0].strip()
    }
    names = [c.strip() for c in next(csv.reader([head[col_line]], delimiter=sep))]
    if "" in names:
        names = names[: names.index("")]
    low = [n.lower() for n in names]
    for need in ("time", "left", "right"):
        if need not in low:
            raise InputFormatError(
                message(
                    f"has no '{need.title()}' column",
                    file=path,
                    field=f"line {col_line + 1}",
                    value=names,
                    fix="export the raw Left/Right force data",
                )
            )
    version = (info.get("ForceDecks Raw Data Export") or [""])[0]
    # the iOS app writes decimal commas inside quoted cells; a re-saved export may use ";"
    decimal = decimal_mark(head[col_line + 1 :], sep)
    data = numeric_block(path, skiprows=col_line + 1, sep=sep, names=names, decimal=decimal)
    if data.size == 0:
        raise InputFormatError(message("has no data rows", file=path, fix="re-export the file"))
    first = col_line + 2
    it, il, ir = low.index("time"), low.index("left"), low.index("right")
    order = _time(data[:, it], path, names[it], first)
    if order is not None:
        data = data[order]
    _check_force(data[:, [il, ir]], path, [names[il], names[ir]], first)
    t = data[:, it]
    rate, t_scale = _forcedecks_rate(info, t, path)
    meta = _forcedecks_meta(info, version, path)
    nan = np.full(len(data), np.nan)
    platforms = [
        _platform(nan, nan, data[:, k], nan, nan, nan, rate, cop_threshold_n) for k in (il, ir)
    ]
    meta["time_offset_s"] = float(t[0] * t_scale)
    meta["plate_sides"] = ["left", "right"]
    return _recording(platforms, rate, len(data), path, "forcedecks", meta)


def _forcedecks_rate(info: dict, t: np.ndarray, path: Path) -> tuple[float, float]:
    """Rate (Hz) and the Time column's scale to seconds (1, or 1e-3 for milliseconds)."""
    stated = None
    if info.get("Frequency"):
        try:
            stated = _number(info["Frequency"][0])
        except ValueError:
            stated = None
        if stated is not None and not (math.isfinite(stated) and stated > 0):
            stated = None
        if stated is None:
            warn(
                "is not a positive number; the rate is taken from the Time column",
                file=path,
                field="Frequency",
                value=info["Frequency"][0],
            )
    if t.size < 2:
        if stated is None:
            raise InputFormatError(
                message(
                    "has neither a Frequency nor two time values",
                    file=path,
                    fix="re-export the raw data",
                )
            )
        return stated, 1.0
    measured = rate_from_time(t, path, "Time")
    if stated is not None and math.isclose(measured, stated, rel_tol=5e-3):
        return stated, 1.0
    if stated is not None and math.isclose(measured * 1e3, stated, rel_tol=5e-3):
        return stated, 1e-3  # the Time column is in milliseconds
    if stated is not None:
        warn(
            f"Frequency says {stated:g} Hz but the Time column steps at {measured:g} Hz; "
            "using the Time column",
            file=path,
            field="Frequency",
        )
    return measured, 1.0


def _iso(text: str, path: Path, field: str) -> str | None:
    try:
        return datetime.fromisoformat(text.strip()).isoformat()
    except ValueError:
        pass
    for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%b %d, %Y %H:%M:%S", "%d.%m.%Y %H:%M:%S"):
        try:
            return datetime.strptime(" ".join(text.split()), fmt).isoformat()
        except ValueError:
            continue
    warn("is not a date-time cxlab can read; not stored", file=path, field=field, value=text)
    return None


def _forcedecks_meta(info: dict, version: str, path: Path) -> dict:
    meta: dict = {
        "manufacturer": "VALD",
        "export_version": version,
        "software": f"ForceDecks Raw Data Export {version}".strip(),
    }
    weight_key = next((k for k in info if k.lower().startswith("weight")), None)
    if weight_key and info[weight_key]:
        try:
            mass = _number(info[weight_key][0])
        except ValueError:
            mass = math.nan
        if "lb" in weight_key.lower():
            mass *= MASS["lb"]
        if _MASS_RANGE_KG[0] <= mass <= _MASS_RANGE_KG[1]:
            meta["body_mass_kg"] = float(mass)
        else:
            warn(
                f"is not a body mass between {_MASS_RANGE_KG[0]:g} and "
                f"{_MASS_RANGE_KG[1]:g} kg; not used",
                file=path,
                field=weight_key,
                value=info[weight_key][0],
            )
    for key, out in (("Recording Date", "recorded_at"), ("Analysis Date", "analysed_at")):
        if info.get(key):
            value = _iso(info[key][0], path, key)
            if value:
                meta[out] = value
    tare: dict = {}
    for key, vals in info.items():
        if key.lower().endswith("tare"):
            sides = (
                ("left", "right")
                if len(vals) == 2
                else tuple(
                    f"{key.split()[0].lower() if ' ' in key else 'value'}{i or ''}"
                    for i in range(len(vals))
                )
            )
            for side, v in zip(sides, vals, strict=False):
                try:
                    tare[side] = _number(v)
                except ValueError:
                    warn("is not a number", file=path, field=key, value=v)
    if tare:
        meta["tare"] = tare
    if info.get("Data Source"):
        meta["device"] = ",".join(info["Data Source"])
    if info.get("AthleteId"):
        meta["subject_label"] = info["AthleteId"][0]
    return meta


# -- Kistler BioWare ----------------------------------------------------------------------
#: BioWare column name -> cxlab component. The free moment (``Mz``/``Tz``) is not read: no
#: twin file shows its sign convention, and a wrongly signed moment would be silent.
_BIOWARE_COMPONENTS = {"fx": "fx", "fy": "fy", "fz": "fz", "ax": "cop_x", "ay": "cop_y"}
#: BioWare's text gives the reaction with Fz up but in the plate's x, y axes (Kistler's plate
#: frame has z down), a left-handed triple; cxlab's lab frame takes x = x_plate, y = -y_plate
#: (180° about x), so ``Fy`` and ``Ay`` change sign. Evidence: the C3D twin of
#: biomdp_kistler_CMJ_1plate.txt, whose raw channels give Fx = -(Fx12 + Fx34),
#: Fy = -(Fy14 + Fy23), Fz = Fz1 + ... + Fz4 in the text (tests/test_vendor.py).
_BIOWARE_SIGN = {"fx": 1.0, "fy": -1.0, "fz": 1.0, "cop_x": 1.0, "cop_y": -1.0}


def read_bioware(path: str | os.PathLike[str], /, *, cop_threshold_n: float = 20.0) -> Recording:
    """Read a Kistler BioWare text export (``.txt``, tab-delimited).

    Parameters
    ----------
    path : path-like
        Line 1 ``BioWare Version <x> Export``; header lines ``key:<tab>value per column``
        (``Rate (Hz):``, ``Normalized force (N):``, ...) and ``File Information`` lines
        (``Date``, ``Name``, ``ID``, ...); the column row (``abs time (s)`` then the
        components, the same names once per plate: ``Fx Fy Fz |Ft| Fx Fy Fz |Ft|``); a units
        row; the data.
    cop_threshold_n : float
        Centre of pressure and free moment are NaN where a measured |Fz| is below this, N.

    Returns
    -------
    Recording
        One Platform per plate, a plate starting wherever a component name repeats (by
        position). ``Fx Fy Fz`` as exported (BioWare writes Fz positive when loaded, the
        reaction on the body in cxlab's convention), ``Ax Ay`` the CoP in m (units row),
        in cxlab's right-handed lab frame (``Fy`` and ``Ay`` negated, see
        ``_BIOWARE_SIGN``); ``|Ft|``, the free moment and raw channels are not read (``tz``
        NaN). A plate without
        ``Fz`` (a CoP-only export) has NaN force and its CoP unmasked. ``analog_rate_hz``
        from ``Rate (Hz):`` (the time column wins, with a warning, if it disagrees).
        ``meta``: ``format="bioware"``, ``manufacturer="Kistler"``, ``software`` (line 1),
        ``device``, ``normalized_force_n``, ``recorded_at`` (ISO 8601 from ``Date``),
        ``subject_label`` (``ID``, when filled, for ingest to pseudonymise), ``plate_sides``
        (unknown: ``None``), ``time_offset_s``.

    Raises
    ------
    InputFormatError
        Not a BioWare export, no column row, an unknown unit, a non-numeric, infinite or
        absurd cell, a repeated time value.
    """
    path = Path(path)
    head = _export_head(
        path,
        "bioware",
        60,
        what="is not a Kistler BioWare export (line 1 must be 'BioWare Version ... Export')",
        fix="export the trial from BioWare as text",
    )
    col_line = head_line(
        head,
        lambda line: line.strip().lower().startswith(("abs time", "time")),
        path=path,
        what="has no 'abs time (s)' column row followed by a units row",
        fix="re-export the trial as text",
    )
    info = {}
    for line in head[1:col_line]:
        parts = line.split("\t")
        info[parts[0].strip().rstrip(":")] = [p.strip() for p in parts[1:]]
    names = [c.strip() for c in head[col_line].split("\t")]
    units = [c.strip() for c in head[col_line + 1].split("\t")]
    units_row = not any(re.fullmatch(r"-?\d+(\.\d+)?", u) for u in units if u)
    skip = col_line + (2 if units_row else 1)
    while names and not names[-1]:
        names.pop()
    data = numeric_block(path, skiprows=skip, sep="\t", names=names)
    if data.size == 0:
        raise InputFormatError(message("has no data rows", file=path, fix="re-export the file"))
    data = (
        data[:, : len(names)]
        if data.shape[1] >= len(names)
        else np.pad(data, ((0, 0), (0, len(names) - data.shape[1])), constant_values=np.nan)
    )
    first = skip + 1
    t_unit = re.search(r"\((m?s)\)", names[0])
    t = data[:, 0] * (1e-3 if t_unit and t_unit.group(1) == "ms" else 1.0)
    order = _time(t, path, names[0], first)
    if order is not None:
        data, t = data[order], t[order]
    plates = _bioware_plates(names, units if units_row else [], path)
    force_cols = [i for p in plates for c, i in p.items() if c in ("fx", "fy", "fz")]
    _check_force(
        data[:, force_cols] if force_cols else np.empty((len(data), 0)),
        path,
        [names[i] for i in force_cols],
        first,
    )
    rate = _bioware_rate(info, t, path)
    nan = np.full(len(data), np.nan)
    platforms = []
    for p in plates:
        comp = {
            c: data[:, i] * p["_scale"][c] * _BIOWARE_SIGN[c]
            for c, i in p.items()
            if not c.startswith("_")
        }
        platforms.append(
            _platform(
                *(comp.get(c, nan) for c in ("fx", "fy", "fz", "cop_x", "cop_y", "tz")),
                rate,
                cop_threshold_n,
            )
        )
    meta = {
        "manufacturer": "Kistler",
        "software": head[0].strip(),
        "time_offset_s": float(t[0]),
        "plate_sides": [None] * len(platforms),
    }
    device = [d for d in info.get("Device", []) if d]
    if device:
        meta["device"] = device[0]
    try:
        meta["normalized_force_n"] = _number(info.get("Normalized force (N)", [""])[0])
    except ValueError:
        pass
    if info.get("Date") and info["Date"][0]:
        when = _iso(info["Date"][0], path, "Date")
        if when:
            meta["recorded_at"] = when
    if info.get("ID") and info["ID"][0]:
        meta["subject_label"] = info["ID"][0]
    if not any(np.isfinite(p.force[:, 2]).any() for p in platforms):
        meta["cop_only"] = True
    return _recording(platforms, rate, len(data), path, "bioware", meta)


def _bioware_plates(names: list[str], units: list[str], path: Path) -> list[dict]:
    plates: list[dict] = []
    current: dict = {"_scale": {}}
    for i, name in enumerate(names[1:], start=1):
        comp = _BIOWARE_COMPONENTS.get(name.lower())
        if comp is None:
            continue  # |Ft| (resultant) and raw channels are derived or uncalibrated
        if comp in current:
            plates.append(current)
            current = {"_scale": {}}
        unit = (units[i] if i < len(units) else "").strip()
        quantity = "force" if comp.startswith("f") else "length"
        scale = unit_factor(unit or ("N" if quantity == "force" else "m"), quantity=quantity)
        if scale is None:
            raise InputFormatError(
                message(
                    "has a unit cxlab cannot convert",
                    file=path,
                    field=f"{name} (column {i + 1})",
                    value=units[i],
                    fix=f"export it in {', '.join(QUANTITIES[quantity])}",
                )
            )
        current[comp] = i
        current["_scale"][comp] = scale
    if len(current) > 1:
        plates.append(current)
    if not plates:
        raise InputFormatError(
            message(
                "has no force or centre-of-pressure column",
                file=path,
                value=names,
                fix="export Fx, Fy, Fz (and Ax, Ay) columns",
            )
        )
    return plates


def _bioware_rate(info: dict, t: np.ndarray, path: Path) -> float:
    stated = None
    for v in info.get("Rate (Hz)", []):
        try:
            stated = _number(v)
            break
        except ValueError:
            continue
    if stated is not None and not (math.isfinite(stated) and stated > 0):
        stated = None
    if t.size < 2:
        if stated is None:
            raise InputFormatError(
                message(
                    "has neither a rate nor two time values",
                    file=path,
                    field="Rate (Hz)",
                    fix="re-export the trial",
                )
            )
        return stated
    measured = rate_from_time(t, path, "abs time (s)")
    if stated is not None and math.isclose(measured, stated, rel_tol=5e-3):
        return stated
    if stated is not None:
        warn(
            f"Rate (Hz) says {stated:g} Hz but the time column steps at {measured:g} Hz; "
            "using the time column",
            file=path,
            field="Rate (Hz)",
        )
    return measured
