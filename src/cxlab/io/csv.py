"""Force-plate CSV exports, read through a small declared *mapping*.

A mapping says which column is which plate component, in which unit, and how time is given.
As a dict (or the same keys in a TOML file)::

    {
        "time_column": "time",          # or "rate_hz": 1000 (no time column)
        "time_unit": "s",               # s or ms
        "columns": {
            "left_fz":  {"plate": 1, "component": "fz", "unit": "N"},
            "right_fz": {"plate": 2, "component": "fz", "unit": "N", "sign": 1},
        },
    }

Components: ``fx fy fz`` (units ``N``, ``kN``, ``lbf``), ``cop_x cop_y`` (``m``, ``cm``,
``mm``) and ``tz`` (free moment, ``N.m``, ``N.mm``). ``sign: -1`` flips a column exported as
the force *on the plate* into the force *on the body* (cxlab's convention, vertical positive
up). Plates are numbered 1..K without gaps; each needs ``fz``.

The built-in mapping (:data:`DEFAULT_MAPPING`) reads a plain dual-plate export with columns
``time, left_fz, right_fz`` (seconds, newtons): left = plate 1, right = plate 2, as in
``docs/conventions.md``.

The plate surface is the plane z = 0 of the lab frame, so the centre of pressure is
``(cop_x, cop_y, 0)`` and the moment about the lab origin is ``r × F + (0, 0, tz)``::

    mx = cop_y · fz,   my = −cop_x · fz,   mz = cop_x · fy − cop_y · fx + tz

Components absent from the file are NaN (so are the moments that need them).
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import ConfigError, InputFormatError, check_option, message
from cxlab.io._text import cells, head_lines, numeric_block, rate_from_time
from cxlab.io.recording import Platform, Recording

__all__ = ["DEFAULT_MAPPING", "mapping_columns", "read_forceplate_csv", "read_mapping"]

DEFAULT_MAPPING: dict[str, Any] = {
    "time_column": "time",
    "time_unit": "s",
    "columns": {
        "left_fz": {"plate": 1, "component": "fz", "unit": "N"},
        "right_fz": {"plate": 2, "component": "fz", "unit": "N"},
    },
}
COMPONENTS = ("fx", "fy", "fz", "cop_x", "cop_y", "tz")
UNITS = {
    "fx": {"N": 1.0, "kN": 1e3, "lbf": 4.4482216152605},
    "cop_x": {"m": 1.0, "cm": 1e-2, "mm": 1e-3},
    "tz": {"N.m": 1.0, "N.mm": 1e-3},
}
UNITS["fy"] = UNITS["fz"] = UNITS["fx"]
UNITS["cop_y"] = UNITS["cop_x"]
TIME_UNITS = {"s": 1.0, "ms": 1e-3}
_TOP_KEYS = ("time_column", "time_unit", "rate_hz", "columns", "cop_threshold_n")
_COL_KEYS = ("plate", "component", "unit", "sign")


def read_mapping(mapping: dict | str | os.PathLike[str] | None, /) -> dict[str, Any]:
    """Load (TOML path) and validate a force-plate CSV mapping; ``None`` gives the default.

    Raises
    ------
    ConfigError
        Naming the bad key, component, unit, sign or plate numbering.
    """
    if mapping is None:
        return copy.deepcopy(DEFAULT_MAPPING)
    if isinstance(mapping, (str, os.PathLike)):
        try:
            with open(mapping, "rb") as fh:
                mapping = tomllib.load(fh)
        except OSError as e:
            raise ConfigError(message(f"cannot be read ({e.strerror})", file=mapping,
                                      fix="check the mapping file path")) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(message(f"is not valid TOML ({e})", file=mapping,
                                      fix="see docs/ingest.md for the mapping format")) from None
    if not isinstance(mapping, dict):
        raise ConfigError(message("must be a dict or a TOML file", field="mapping",
                                  value=type(mapping).__name__))
    for k in mapping:
        check_option("mapping key", k, _TOP_KEYS)
    cols = mapping.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise ConfigError(message("must map at least one column name to a plate component",
                                  field="mapping.columns", value=cols,
                                  fix='e.g. {"Fz1": {"plate": 1, "component": "fz", "unit": "N"}}'))
    plates: dict[int, set[str]] = {}
    for name, spec in cols.items():
        where = f"mapping.columns.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(message("must be a table of plate, component, unit", field=where,
                                      value=spec))
        for k in spec:
            check_option(f"key of {where}", k, _COL_KEYS)
        comp = check_option(f"{where}.component", spec.get("component"), COMPONENTS)
        check_option(f"{where}.unit", spec.get("unit"), UNITS[comp])
        check_option(f"{where}.sign", spec.get("sign", 1), (1, -1))
        plate = spec.get("plate")
        if not isinstance(plate, int) or isinstance(plate, bool) or plate < 1:
            raise ConfigError(message("must be a plate number 1, 2, ...", field=f"{where}.plate",
                                      value=plate))
        if comp in plates.setdefault(plate, set()):
            raise ConfigError(message(f"gives plate {plate} {comp} a second time", field=where,
                                      fix="map each plate component once"))
        plates[plate].add(comp)
    if sorted(plates) != list(range(1, len(plates) + 1)):
        raise ConfigError(message("plate numbers must run 1..K without gaps",
                                  field="mapping.columns", value=sorted(plates)))
    for plate, comps in plates.items():
        if "fz" not in comps:
            raise ConfigError(message(f"plate {plate} has no fz column", field="mapping.columns",
                                      fix="map the vertical force of every plate"))
    check_option("mapping.time_unit", mapping.get("time_unit", "s"), TIME_UNITS)
    for key, low in (("rate_hz", "positive"), ("cop_threshold_n", "non-negative")):
        v = mapping.get(key)
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)
                              or not np.isfinite(v) or v < 0 or (low == "positive" and v == 0)):
            raise ConfigError(message(f"must be a {low} number", field=f"mapping.{key}",
                                      value=v, fix=f"e.g. {key} = 1000" if key == "rate_hz"
                                      else f"e.g. {key} = 20"))
    return mapping


def mapping_columns(spec: dict[str, Any], /) -> list[str]:
    """The column names a validated mapping needs in a file's header row."""
    time_col = [] if spec.get("rate_hz") is not None else [spec.get("time_column")]
    return [c for c in [*time_col, *spec["columns"]] if c]


def read_forceplate_csv(
    path: str | os.PathLike[str],
    /,
    *,
    mapping: dict | str | os.PathLike[str] | None = None,
    rate_hz: float | None = None,
    cop_threshold_n: float = 20.0,
) -> Recording:
    """Read a force-plate CSV export into a :class:`Recording` with one Platform per plate.

    Parameters
    ----------
    path : path-like
        A delimited text file (comma, semicolon or tab) with one header row of column names.
    mapping : dict or path-like, optional
        Column mapping (see the module docstring) or a TOML file holding it; default
        :data:`DEFAULT_MAPPING` (``time, left_fz, right_fz`` in s and N).
    rate_hz : float, optional
        Sample rate, Hz; overrides the mapping's ``rate_hz`` and its time column.
    cop_threshold_n : float
        Centre of pressure and free moment are NaN where |fz| is below this, N (the mapping's
        ``cop_threshold_n`` wins when given).

    Returns
    -------
    Recording
        No markers or analogs; ``platforms[k]`` is plate k + 1 with ``force`` (n, 3) in N on
        the body, ``cop`` (n, 3) in m on z = 0, ``moment`` (n, 3) in N·m about the lab origin,
        ``tz`` (n,) in N·m, ``rate_hz`` from ``rate_hz``, the mapping or the time column
        ((n − 1) / time span). ``meta["time_offset_s"]`` is the first time value.

    Raises
    ------
    InputFormatError
        A mapped column is missing from the file, a cell is not a number, or the time column is
        not increasing; the message names the file, the column and the fix.
    ConfigError
        The mapping is invalid.
    """
    path = Path(path)
    spec = read_mapping(mapping)
    threshold = float(spec.get("cop_threshold_n", cop_threshold_n))
    head = head_lines(path, 1)
    if not head or not head[0].strip():
        raise InputFormatError(message("is empty (no header row)", file=path,
                                       fix="export the force-plate data with column names"))
    line = head[0].lstrip("\ufeff")
    sep = "\t" if "\t" in line else ";" if line.count(";") > line.count(",") else ","
    names = cells(line, sep)
    index = {n: i for i, n in enumerate(names) if n}
    wanted = list(spec["columns"])
    time_col = spec.get("time_column")
    rate = rate_hz if rate_hz is not None else spec.get("rate_hz")
    if rate is None:
        if not time_col:
            raise ConfigError(message("gives neither rate_hz nor time_column", field="mapping",
                                      fix="pass rate_hz= or name the time column"))
        wanted = [time_col, *wanted]
    missing = [c for c in wanted if c not in index]
    if missing:
        raise InputFormatError(message("has no column " + ", ".join(map(repr, missing)),
                                       file=path, field=missing[0], value=[n for n in names if n],
                                       fix="pass a mapping that names this export's columns "
                                           "(see docs/ingest.md)"))
    data = numeric_block(path, skiprows=1, sep=sep, names_line=1)
    if data.shape[0] == 0:
        raise InputFormatError(message("has no data rows", file=path, fix="re-export the file"))
    col = {c: data[:, index[c]] if index[c] < data.shape[1] else np.full(len(data), np.nan)
           for c in wanted}
    offset = 0.0
    if rate is None:
        t = col[time_col] * TIME_UNITS[spec.get("time_unit", "s")]
        ok = np.isfinite(t)
        ok[1:] &= np.diff(t) > 0
        if not ok.all():
            bad = int(np.argmin(ok))
            raise InputFormatError(message(f"data row {bad + 1}: time must increase and have no "
                                           "empty cells", file=path, field=time_col,
                                           value=float(t[bad]),
                                           fix="fix the time column or pass rate_hz="))
        rate = rate_from_time(t, path, time_col)
        offset = float(t[0])
    rate = float(rate)
    if not rate > 0:
        raise ConfigError(message("must be positive", field="rate_hz", value=rate))
    platforms = _platforms(spec["columns"], col, len(data), rate, threshold)
    return Recording(
        markers=np.empty((0, 0, 3)), marker_labels=[], residuals=np.empty((0, 0)),
        point_rate_hz=float("nan"), analogs=np.empty((len(data), 0)), analog_labels=[],
        analog_units=[], analog_rate_hz=rate, platforms=platforms,
        meta={"format": "csv", "engine": "cxlab", "source": str(path), "manufacturer": None,
              "software": None, "first_frame": 0, "units": None, "time_offset_s": offset,
              "parameters": {"mapping": spec}},
    )


def _platforms(columns: dict, col: dict, n: int, rate: float, threshold: float) -> list[Platform]:
    per: dict[int, dict[str, np.ndarray]] = {}
    for name, s in columns.items():
        scale = UNITS[s["component"]][s["unit"]] * s.get("sign", 1)
        per.setdefault(s["plate"], {})[s["component"]] = col[name] * scale
    nan = np.full(n, np.nan)
    out = []
    for plate in sorted(per):
        c = per[plate]
        fx, fy, fz = (c.get(k, nan) for k in ("fx", "fy", "fz"))
        rx, ry, tz = (c.get(k, nan) for k in ("cop_x", "cop_y", "tz"))
        low = ~(np.abs(fz) >= threshold)
        cop = np.column_stack([rx, ry, np.where(np.isnan(rx), np.nan, 0.0)])
        cop[low] = np.nan
        moment = np.column_stack([ry * fz, -rx * fz, rx * fy - ry * fx + tz])
        out.append(Platform(force=np.column_stack([fx, fy, fz]), moment=moment, cop=cop,
                            tz=np.where(low, np.nan, tz), corners=np.full((4, 3), np.nan),
                            origin=np.full(3, np.nan), type=0, rate_hz=rate))
    return out
