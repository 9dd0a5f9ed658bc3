"""Force-plate CSV/TXT exports, read through a small declared *mapping*.

A mapping says which column is which plate component, in which unit, and how time is given.
As a dict (or the same keys in a TOML file)::

    {
        "time_column": "time",          # or "rate_hz": 1000 (no time column)
        "time_unit": "s",               # s or ms
        "header_row": 12,               # optional: 1-based line of the column names
        "decimal": ",",                 # optional: "." or ","; default detected
        "columns": {
            "left_fz":  {"plate": 1, "component": "fz", "unit": "N"},
            "right_fz": {"plate": 2, "component": "fz", "unit": "N", "sign": 1},
        },
    }

:func:`read_mapping` turns it into a frozen :class:`ForcePlateMapping` (a ``ForcePlateMapping``
is accepted wherever a mapping is).

Components: ``fx fy fz`` (units ``N``, ``kN``, ``lbf``), ``cop_x cop_y`` (``m``, ``cm``,
``mm``), ``mx my`` (moments about the plate's surface centre, ``N.m``, ``N.cm``, ``N.mm``,
``ft.lbf``) and ``tz`` (free moment, same units); the factors are :mod:`cxlab.units`.
``sign: -1`` flips a column exported as the force *on the plate* into the force *on the
body* (cxlab's convention, vertical positive up); give moment columns the same sign as the
forces. Plates are numbered 1..K without gaps; each needs ``fz``, or ``cop_x`` and ``cop_y``
(or ``mx`` and ``my``) for a CoP-only plate, whose force is NaN (not measured), never 0.

Where the file gives moments but no CoP, the CoP follows from the moment of the reaction
about the plate's surface centre (origin on the surface, so z = 0)::

    cop_x = −my / fz,   cop_y = mx / fz

The header row is found automatically: the first of the file's first 200 lines holding every
mapped column name (``header_row`` pins it). A row right below it without numbers is a units
row; a unit written there that contradicts the mapping is refused. Delimiter (tab, ``;``,
``,``) and decimal mark are detected; ``.txt`` exports read the same. Time stamps that repeat
within a frame (written at the camera rate while the plate samples faster) give the sample
rate from the repeat count, with a warning.

The built-in mapping (:data:`DEFAULT_MAPPING`) reads a plain dual-plate export with columns
``time, left_fz, right_fz`` (seconds, newtons): left = plate 1, right = plate 2, as in
``docs/conventions.md``.

The plate surface is the plane z = 0 of the lab frame, so the centre of pressure is
``(cop_x, cop_y, 0)`` and the moment about the lab origin is ``r × F + (0, 0, tz)``::

    mx = cop_y · fz,   my = −cop_x · fz,   mz = cop_x · fy − cop_y · fx + tz

Components absent from the file are NaN (so are the moments that need them).
"""

from __future__ import annotations

import csv as _csv
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import ConfigError, InputFormatError, check_keys, check_option, message, warn
from cxlab.io._text import (
    NUMBER,
    decimal_mark,
    delimiter,
    head_lines,
    numeric_block,
    plate_recording,
    rate_from_time,
)
from cxlab.io.recording import Platform, Recording
from cxlab.units import QUANTITIES, TIME, Quantity, unit_name

__all__ = [
    "DEFAULT_MAPPING",
    "ColumnMap",
    "ForcePlateMapping",
    "find_header",
    "mapping_columns",
    "read_forceplate_csv",
    "read_mapping",
]

COMPONENTS = ("fx", "fy", "fz", "cop_x", "cop_y", "mx", "my", "tz")
#: the quantity of each component; its units are those of :mod:`cxlab.units`
QUANTITY: dict[str, Quantity] = {
    **dict.fromkeys(("fx", "fy", "fz"), "force"),
    **dict.fromkeys(("cop_x", "cop_y"), "length"),
    **dict.fromkeys(("mx", "my", "tz"), "moment"),
}
UNITS = {c: QUANTITIES[q] for c, q in QUANTITY.items()}
TIME_UNITS = TIME
_TOP_KEYS = (
    "time_column",
    "time_unit",
    "rate_hz",
    "columns",
    "cop_threshold_n",
    "header_row",
    "decimal",
)
_COL_KEYS = ("plate", "component", "unit", "sign")
_HEADER_SEARCH = 200
#: unit spellings of a units row -> the mapping's unit names


@dataclass(frozen=True)
class ColumnMap:
    """One mapped column: file column ``name`` is ``component`` of ``plate`` in ``unit``."""

    name: str
    plate: int
    component: str
    unit: str
    sign: int = 1


@dataclass(frozen=True)
class ForcePlateMapping:
    """A validated force-plate export mapping (see the module docstring); build it with
    :func:`read_mapping`."""

    columns: tuple[ColumnMap, ...]
    time_column: str | None = "time"
    time_unit: str = "s"
    rate_hz: float | None = None
    cop_threshold_n: float | None = None
    header_row: int | None = None
    decimal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The mapping as the dict/TOML form it was written in."""
        out: dict[str, Any] = {"time_column": self.time_column, "time_unit": self.time_unit}
        for key in ("rate_hz", "cop_threshold_n", "header_row", "decimal"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["columns"] = {
            c.name: {"plate": c.plate, "component": c.component, "unit": c.unit, "sign": c.sign}
            for c in self.columns
        }
        return out


DEFAULT_MAPPING = ForcePlateMapping(
    columns=(
        ColumnMap("left_fz", 1, "fz", "N"),
        ColumnMap("right_fz", 2, "fz", "N"),
    )
)


def read_mapping(
    mapping: ForcePlateMapping | dict | str | os.PathLike[str] | None, /
) -> ForcePlateMapping:
    """Load (TOML path) and validate a force-plate mapping; ``None`` gives the default.

    Raises
    ------
    ConfigError
        Naming the bad key, component, unit, sign or plate numbering.
    """
    if mapping is None:
        return DEFAULT_MAPPING
    if isinstance(mapping, ForcePlateMapping):
        return mapping
    file = None
    if isinstance(mapping, (str, os.PathLike)):
        file = mapping
        try:
            with open(mapping, "rb") as fh:
                mapping = tomllib.load(fh)
        except OSError as e:
            raise ConfigError(
                message(
                    f"cannot be read ({e.strerror})",
                    file=mapping,
                    fix="check the mapping file path",
                )
            ) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(
                message(
                    f"is not valid TOML ({e})",
                    file=mapping,
                    fix="see docs/ingest.md for the mapping format",
                )
            ) from None
    if not isinstance(mapping, dict):
        raise ConfigError(
            message("must be a dict or a TOML file", field="mapping", value=type(mapping).__name__)
        )
    check_keys(mapping, _TOP_KEYS, where="mapping", file=file, fix="see docs/ingest.md")
    cols = mapping.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise ConfigError(
            message(
                "must map at least one column name to a plate component",
                field="mapping.columns",
                value=cols,
                fix='e.g. {"Fz1": {"plate": 1, "component": "fz", "unit": "N"}}',
            )
        )
    plates: dict[int, set[str]] = {}
    out_cols = []
    for name, spec in cols.items():
        where = f"mapping.columns.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(
                message("must be a table of plate, component, unit", field=where, value=spec)
            )
        check_keys(spec, _COL_KEYS, where=where, file=file, fix="see docs/ingest.md")
        comp = check_option(f"{where}.component", spec.get("component"), COMPONENTS)
        unit = check_option(f"{where}.unit", spec.get("unit"), UNITS[comp])
        sign = check_option(f"{where}.sign", spec.get("sign", 1), (1, -1))
        plate = spec.get("plate")
        if not isinstance(plate, int) or isinstance(plate, bool) or plate < 1:
            raise ConfigError(
                message("must be a plate number 1, 2, ...", field=f"{where}.plate", value=plate)
            )
        if comp in plates.setdefault(plate, set()):
            raise ConfigError(
                message(
                    f"gives plate {plate} {comp} a second time",
                    field=where,
                    fix="map each plate component once",
                )
            )
        plates[plate].add(comp)
        out_cols.append(ColumnMap(str(name), plate, comp, unit, int(sign)))
    if sorted(plates) != list(range(1, len(plates) + 1)):
        raise ConfigError(
            message(
                "plate numbers must run 1..K without gaps",
                field="mapping.columns",
                value=sorted(plates),
            )
        )
    for plate, comps in plates.items():
        cop = {"cop_x", "cop_y"} <= comps or {"mx", "my"} <= comps
        if "fz" not in comps and not cop:
            raise ConfigError(
                message(
                    f"plate {plate} has no fz column (nor cop_x and cop_y for a CoP-only plate)",
                    field="mapping.columns",
                    fix="map the vertical force of every plate",
                )
            )
        if "fz" not in comps and {"mx", "my"} <= comps and not {"cop_x", "cop_y"} <= comps:
            raise ConfigError(
                message(
                    f"plate {plate} maps mx and my without fz; the CoP needs the vertical force",
                    field="mapping.columns",
                    fix="map fz, or map cop_x and cop_y",
                )
            )
    time_unit = check_option("mapping.time_unit", mapping.get("time_unit", "s"), TIME_UNITS)
    for key, low in (("rate_hz", "positive"), ("cop_threshold_n", "non-negative")):
        v = mapping.get(key)
        if v is not None and (
            not isinstance(v, (int, float))
            or isinstance(v, bool)
            or not np.isfinite(v)
            or v < 0
            or (low == "positive" and v == 0)
        ):
            raise ConfigError(
                message(
                    f"must be a {low} number",
                    field=f"mapping.{key}",
                    value=v,
                    fix=f"e.g. {key} = 1000" if key == "rate_hz" else f"e.g. {key} = 20",
                )
            )
    row = mapping.get("header_row")
    if row is not None and (not isinstance(row, int) or isinstance(row, bool) or row < 1):
        raise ConfigError(
            message(
                "must be a line number 1, 2, ...",
                field="mapping.header_row",
                value=row,
                fix="give the 1-based line of the column names",
            )
        )
    decimal = mapping.get("decimal")
    if decimal is not None:
        check_option("mapping.decimal", decimal, (".", ","))
    time_col = mapping.get("time_column", "time")
    if time_col is not None and not isinstance(time_col, str):
        raise ConfigError(
            message("must be a column name", field="mapping.time_column", value=time_col)
        )
    rate = mapping.get("rate_hz")
    thr = mapping.get("cop_threshold_n")
    return ForcePlateMapping(
        columns=tuple(out_cols),
        time_column=time_col or None,
        time_unit=time_unit,
        rate_hz=None if rate is None else float(rate),
        cop_threshold_n=None if thr is None else float(thr),
        header_row=row,
        decimal=decimal,
    )


def mapping_columns(spec: ForcePlateMapping | dict, /) -> list[str]:
    """The column names a validated mapping needs in a file's header row."""
    spec = read_mapping(spec) if not isinstance(spec, ForcePlateMapping) else spec
    time_col = [] if spec.rate_hz is not None else [spec.time_column]
    return [c for c in [*time_col, *(m.name for m in spec.columns)] if c]


def _split(line: str, sep: str) -> list[str]:
    return [c.strip() for c in next(_csv.reader([line], delimiter=sep))] if line else []


def find_header(
    path: str | os.PathLike[str], columns: list[str], /, *, header_row: int | None = None
) -> tuple[int, str, list[str]] | None:
    """The header row of a delimited export: ``(line index (0-based), delimiter, names)``.

    The first of the first 200 lines that holds every name in ``columns`` (or line
    ``header_row``, 1-based); ``None`` when no line does.
    """
    lines = head_lines(Path(path), _HEADER_SEARCH if header_row is None else header_row)
    candidates = [header_row - 1] if header_row is not None else range(len(lines))
    for i in candidates:
        if i >= len(lines):
            return None
        line = lines[i].lstrip("\ufeff")
        if not line.strip():
            continue
        sep = delimiter(line)
        names = _split(line, sep)
        if header_row is not None or all(c in names for c in columns):
            return i, sep, names
    return None


_NUMBER = NUMBER


def read_forceplate_csv(
    path: str | os.PathLike[str],
    /,
    *,
    mapping: ForcePlateMapping | dict | str | os.PathLike[str] | None = None,
    rate_hz: float | None = None,
    cop_threshold_n: float = 20.0,
) -> Recording:
    """Read a force-plate CSV/TXT export into a :class:`Recording` with one Platform per plate.

    Parameters
    ----------
    path : path-like
        A delimited text file (comma, semicolon or tab; decimal point or comma) with a header
        row of column names (anywhere in the first 200 lines), optionally a units row under it.
    mapping : ForcePlateMapping, dict or path-like, optional
        Column mapping (see the module docstring) or a TOML file holding it; default
        :data:`DEFAULT_MAPPING` (``time, left_fz, right_fz`` in s and N).
    rate_hz : float, optional
        Sample rate, Hz; overrides the mapping's ``rate_hz`` and its time column.
    cop_threshold_n : float
        Centre of pressure and free moment are NaN where a measured |fz| is below this, N (the
        mapping's ``cop_threshold_n`` wins when given).

    Returns
    -------
    Recording
        No markers or analogs; ``platforms[k]`` is plate k + 1 with ``force`` (n, 3) in N on
        the body (NaN where not exported), ``cop`` (n, 3) in m on z = 0 (from ``cop_x``,
        ``cop_y`` or from ``mx``, ``my`` and ``fz``), ``moment`` (n, 3) in N·m about the lab
        origin, ``tz`` (n,) in N·m, ``rate_hz`` from ``rate_hz``, the mapping or the time
        column ((n − 1) / time span; k / step when each time stamp repeats k times).
        ``meta["time_offset_s"]`` is the first time value, ``meta["parameters"]["mapping"]``
        the mapping as a dict.

    Raises
    ------
    InputFormatError
        A mapped column is missing from the file, a units row contradicts the mapping, a cell
        is not a number (or is infinite, or a force beyond 100 kN), or the time column is not
        increasing; the message names the file, the column and the fix.
    ConfigError
        The mapping is invalid.
    """
    path = Path(path)
    spec = read_mapping(mapping)
    threshold = float(spec.cop_threshold_n if spec.cop_threshold_n is not None else cop_threshold_n)
    head = head_lines(path, 1)
    if not head or not head[0].strip():
        raise InputFormatError(
            message(
                "is empty (no header row)",
                file=path,
                fix="export the force-plate data with column names",
            )
        )
    wanted = [c.name for c in spec.columns]
    time_col = spec.time_column
    rate = rate_hz if rate_hz is not None else spec.rate_hz
    if rate is None:
        if not time_col:
            raise ConfigError(
                message(
                    "gives neither rate_hz nor time_column",
                    field="mapping",
                    fix="pass rate_hz= or name the time column",
                )
            )
        wanted = [time_col, *wanted]
    found = find_header(path, wanted, header_row=spec.header_row)
    if found is None:
        line = head[0].lstrip("\ufeff")
        raise _no_column(path, wanted, _split(line, delimiter(line)))
    row, sep, names = found
    index = {}
    for i, n in enumerate(names):
        index.setdefault(n, i)  # a repeated name: the first column, as the mapping can say
    if any(c not in index for c in wanted):
        raise _no_column(path, wanted, names)
    below = head_lines(path, row + 40)[row + 1 :]
    skip = row + 1
    if below and not any(_NUMBER.match(c) for c in _split(below[0], sep) if c):
        _check_units_row(_split(below[0], sep), index, spec, path, row + 2)
        skip += 1
        below = below[1:]
    decimal = spec.decimal or decimal_mark(below, sep)
    data = numeric_block(path, skiprows=skip, sep=sep, names=names, decimal=decimal)
    if data.shape[0] == 0:
        raise InputFormatError(message("has no data rows", file=path, fix="re-export the file"))
    col = {
        c: data[:, index[c]] if index[c] < data.shape[1] else np.full(len(data), np.nan)
        for c in wanted
    }
    offset = 0.0
    if rate is None:
        t = col[time_col] * TIME_UNITS[spec.time_unit]
        rate, offset = _rate_from_stamps(t, path, time_col, skip + 1)
    rate = float(rate)
    if not rate > 0:
        raise ConfigError(message("must be positive", field="rate_hz", value=rate))
    platforms = _platforms(spec.columns, col, len(data), rate, threshold, path, skip + 1)
    return plate_recording(
        path,
        platforms,
        fmt="csv",
        rate_hz=rate,
        meta={
            "manufacturer": None,
            "software": None,
            "first_frame": 0,
            "units": None,
            "time_offset_s": offset,
            "parameters": {"mapping": spec.to_dict()},
        },
        analogs=np.empty((len(data), 0)),
    )


def _check_units_row(
    units: list[str], index: dict, spec: ForcePlateMapping, path: Path, line: int
) -> None:
    for c in spec.columns:
        i = index[c.name]
        text = units[i].strip("()[] ").lower() if i < len(units) else ""
        unit = unit_name(text, quantity=QUANTITY[c.component])
        if unit and unit != c.unit:
            raise InputFormatError(
                message(
                    f"line {line}: the units row says {units[i]!r} but the mapping says {c.unit!r}",
                    file=path,
                    field=c.name,
                    fix="correct the unit in the mapping",
                )
            )
    if spec.time_column and spec.time_column in index and spec.rate_hz is None:
        i = index[spec.time_column]
        unit = unit_name(units[i].strip("()[] ") if i < len(units) else "", quantity="time")
        if unit and unit != spec.time_unit:
            raise InputFormatError(
                message(
                    f"line {line}: the units row says {units[i]!r} but "
                    f"the mapping says time_unit {spec.time_unit!r}",
                    file=path,
                    field=spec.time_column,
                    fix="correct time_unit in the mapping",
                )
            )


def _no_column(path: Path, wanted: list[str], names: list[str]) -> InputFormatError:
    """The error of a header ``names`` lacking some of the ``wanted`` columns."""
    missing = [c for c in wanted if c not in names]
    return InputFormatError(
        message(
            "has no column " + ", ".join(map(repr, missing)),
            file=path,
            field=missing[0],
            value=[n for n in names if n],
            fix="pass a mapping that names this export's columns (see docs/ingest.md)",
        )
    )


def _rate_from_stamps(t: np.ndarray, path: Path, field: str, first: int) -> tuple[float, float]:
    """Rate (Hz) and offset (s) from a time column; stamps may repeat k times per frame."""
    ok = np.isfinite(t)
    if ok.all():
        step = np.diff(t)
        if (step > 0).all():
            return rate_from_time(t, path, field), float(t[0])
        if (step >= 0).all() and step.size:
            # stamps at a frame rate, k samples per frame: runs of equal values
            starts = np.flatnonzero(np.concatenate([[True], step > 0]))
            runs = np.diff(np.append(starts, t.size))
            k = int(runs[0])
            frames = t[starts]
            regular = (runs[:-1] == k).all() and runs[-1] <= k and frames.size >= 2
            if regular:
                dt = np.diff(frames)
                regular = bool(np.allclose(dt, dt.mean(), rtol=1e-3, atol=1e-9))
            if regular:
                rate = float(f"{k / float(np.diff(frames).mean()):.9g}")
                warn(
                    f"each time stamp repeats {k} times (stamps at the frame rate); the sample "
                    f"rate is {k} per {np.diff(frames).mean():g} s = {rate:g} Hz",
                    file=path,
                    field=field,
                )
                return rate, float(t[0])
        bad = int(np.argmax(~(step > 0))) + 1
    else:
        bad = int(np.argmin(ok))
    raise InputFormatError(
        message(
            f"data row {bad + 1}: time must increase and have no empty cells",
            file=path,
            field=field,
            value=float(t[bad]),
            fix="fix the time column or pass rate_hz=",
        )
    )


def _platforms(
    columns: tuple[ColumnMap, ...],
    col: dict,
    n: int,
    rate: float,
    threshold: float,
    path: Path,
    first: int,
) -> list[Platform]:
    per: dict[int, dict[str, np.ndarray]] = {}
    names = {(c.plate, c.component): c.name for c in columns}
    for c in columns:
        scale = UNITS[c.component][c.unit] * c.sign
        per.setdefault(c.plate, {})[c.component] = col[c.name] * scale
    nan = np.full(n, np.nan)
    out = []
    for plate in sorted(per):
        c = per[plate]
        fx, fy, fz = (c.get(k, nan) for k in ("fx", "fy", "fz"))
        forces = np.column_stack([fx, fy, fz])
        big = np.abs(np.nan_to_num(forces)) > 1e5
        if big.any():
            r, k = np.argwhere(big)[0]
            raise InputFormatError(
                message(
                    f"data row {int(r) + 1}: {forces[r, k]:.6g} N on plate "
                    f"{plate} is beyond any ground reaction force "
                    "(> 100000 N)",
                    file=path,
                    field=names[(plate, ("fx", "fy", "fz")[k])],
                    fix="the file is corrupt there; re-export it",
                )
            )
        rx, ry, tz = (c.get(k, nan) for k in ("cop_x", "cop_y", "tz"))
        if "cop_x" not in c and "mx" in c and "my" in c:
            with np.errstate(divide="ignore", invalid="ignore"):
                rx, ry = -c["my"] / fz, c["mx"] / fz
        low = np.abs(fz) < threshold  # False where fz is NaN (not measured)
        cop = np.column_stack([rx, ry, np.where(np.isnan(rx), np.nan, 0.0)])
        cop[low] = np.nan
        moment = np.column_stack([ry * fz, -rx * fz, rx * fy - ry * fx + tz])
        if "mx" in c and "my" in c and "cop_x" not in c:
            moment[:, 0], moment[:, 1] = c["mx"], c["my"]
        out.append(
            Platform(
                force=forces,
                moment=moment,
                cop=cop,
                tz=np.where(low, np.nan, tz),
                corners=np.full((4, 3), np.nan),
                origin=np.full(3, np.nan),
                type=0,
                rate_hz=rate,
            )
        )
    return out
