"""Columns the store keeps as *null where they follow from others* (used by ``store.py``).

A force plate's centre of pressure and free moment follow from its force and its moment
about the lab origin. On a horizontal plate whose surface is at height ``h = cop_z`` (the
body is acted on at ``r = (x, y, h)`` by the force ``F`` and a free moment ``(0, 0, tz)``,
so ``M = r × F + (0, 0, tz)``)::

    cop_x = (h·fx − my) / fz
    cop_y = (mx + h·fy) / fz
    tz    = mz − cop_x·fy + cop_y·fx

(e.g. Winter 2009, *Biomechanics and Motor Control of Human Movement*, 4th ed., §5.1.3.)
Storing them again costs three float32 columns of noise-like samples: 7.5 of the synthetic
cohort's 30.5 MB. So a staged ``forces`` part holds them as **null** on every row where
the formulas, evaluated in float64 from the float32 values stored beside them and rounded
to float32, agree with the value computed at ingest to within the float32 rounding of
their terms (``2**-20`` times the sum of the terms' magnitudes, about 8 float32 ulps);
every reader of the store (:meth:`Store.table`, :meth:`Store.read_arrow_parts`, the SQL
views) fills the nulls back with the same arithmetic. Where they do not agree — a tilted
plate, a CoP-only export without ``fz``, a vendor's own CoP, a CoP that is NaN under the
plate's force threshold — the value is stored as it is. A null or NaN on input reads back
as NaN.

What a reader gets is therefore the CoP and free moment that the stored float32 force and
moment imply: within a few float32 ulps of the ingest's float64 values (the largest
difference on the synthetic cohort is 1.5e-8 m for the CoP and 2.0e-6 N·m for ``tz``, on
the real C3D files 3.6e-7 m and 6.8e-5 N·m), and bit-identical across runs, machines,
pandas, Arrow and DuckDB (the SQL expressions do the same IEEE operations in the same
order; a test checks them against NumPy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DERIVED", "decode", "encode", "inputs_for", "sql_select"]

DERIVED: dict[str, tuple[str, ...]] = {"forces": ("cop_x", "cop_y", "tz")}
"""Per table, the columns stored as null where they follow from the others."""

_LOADS = ("fx", "fy", "fz", "mx", "my", "mz", "cop_z")  # what the formulas read, CoP aside
_NEEDS = {  # what each derived column's formula reads
    "cop_x": ("fx", "fz", "my", "cop_z"),
    "cop_y": ("fy", "fz", "mx", "cop_z"),
    "tz": (*_LOADS, "cop_x", "cop_y"),
}
_REL_TOL = 2.0**-20  # of the terms' magnitudes: ~8 float32 ulps
_F64 = np.float64


def _np(table: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` of ``table`` as its float32 NumPy array (nulls as NaN)."""
    col = table.column(name)
    if col.null_count:
        col = pc.fill_null(col, np.float32("nan"))
    return col.to_numpy()


def _x(g: dict[str, np.ndarray], /) -> np.ndarray:
    """``cop_x = (cop_z·fx − my) / fz`` in float64 from the float32 columns ``g``, rounded
    to float32 (ufuncs with ``dtype=float64``: the same IEEE operations as widening first)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = np.multiply(g["cop_z"], g["fx"], dtype=_F64)
        np.subtract(a, g["my"], out=a, dtype=_F64)
        np.divide(a, g["fz"], out=a, dtype=_F64)
    return a.astype(np.float32)


def _y(g: dict[str, np.ndarray], /) -> np.ndarray:
    """``cop_y = (mx + cop_z·fy) / fz``, as :func:`_x`."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = np.multiply(g["cop_z"], g["fy"], dtype=_F64)
        np.add(g["mx"], a, out=a, dtype=_F64)
        np.divide(a, g["fz"], out=a, dtype=_F64)
    return a.astype(np.float32)


def _tz(g: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, /) -> np.ndarray:
    """``tz = mz − cop_x·fy + cop_y·fx`` from the float32 CoP ``x``, ``y`` a reader gets,
    as :func:`_x`."""
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.multiply(x, g["fy"], dtype=_F64)
        np.subtract(g["mz"], a, out=a, dtype=_F64)
        a += np.multiply(y, g["fx"], dtype=_F64)
    return a.astype(np.float32)


def _within(derived: np.ndarray, given: np.ndarray, tol: np.ndarray, /) -> np.ndarray:
    """Rows where the float32 ``derived`` stands in for the finite ``given`` (within
    ``tol``, float64)."""
    with np.errstate(invalid="ignore"):
        d = np.subtract(derived, given, dtype=_F64)
        return np.isfinite(given) & np.isfinite(derived) & (np.abs(d) <= tol)


def _cop_tolerances(g: dict[str, np.ndarray], /) -> tuple[np.ndarray, np.ndarray]:
    """The float32 rounding of the CoP formulas' terms: ``2**-20`` times the sum of their
    magnitudes, divided by ``|fz|`` (float64)."""
    f = {k: g[k].astype(_F64) for k in ("fx", "fy", "fz", "mx", "my", "cop_z")}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tol_x = _REL_TOL * (np.abs(f["cop_z"] * f["fx"]) + np.abs(f["my"])) / np.abs(f["fz"])
        tol_y = _REL_TOL * (np.abs(f["mx"]) + np.abs(f["cop_z"] * f["fy"])) / np.abs(f["fz"])
    return tol_x, tol_y


def _tz_tolerance(g: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, /) -> np.ndarray:
    """The float32 rounding of the free-moment formula's terms (as :func:`_cop_tolerances`)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return _REL_TOL * (
            np.abs(g["mz"].astype(_F64))
            + np.abs(np.multiply(x, g["fy"], dtype=_F64))
            + np.abs(np.multiply(y, g["fx"], dtype=_F64))
        )


def _set(table: pa.Table, name: str, values: np.ndarray, null: np.ndarray | None) -> pa.Table:
    """``table`` with float32 column ``name`` replaced by ``values`` (null where ``null``)."""
    i = table.schema.get_field_index(name)
    arr = pa.array(values.astype(np.float32, copy=False), type=pa.float32(), mask=null)
    return table.set_column(i, table.schema.field(i), arr)


def encode(name: str, table: pa.Table, /) -> pa.Table:
    """``table`` (a validated part of table ``name``) as the store writes it: each
    :data:`DERIVED` column null where its formula gives it back (see the module doc)."""
    if name not in DERIVED or table.num_rows == 0:
        return table
    g = {c: _np(table, c) for c in _NEEDS["tz"]}
    x, y = _x(g), _y(g)
    tol_x, tol_y = _cop_tolerances(g)
    null_x, null_y = _within(x, g["cop_x"], tol_x), _within(y, g["cop_y"], tol_y)
    dx, dy = np.where(null_x, x, g["cop_x"]), np.where(null_y, y, g["cop_y"])  # as read
    tz, given_tz = _tz(g, dx, dy), _np(table, "tz")
    null_tz = _within(tz, given_tz, _tz_tolerance(g, dx, dy))
    for col, given, null in (("cop_x", g["cop_x"], null_x), ("cop_y", g["cop_y"], null_y)):
        table = _set(table, col, given, null)
    return _set(table, "tz", given_tz, null_tz)


def inputs_for(name: str, columns: Sequence[str], /) -> list[str]:
    """``columns`` plus what :func:`decode` needs to fill the derived ones among them."""
    need: list[str] = []
    for c in DERIVED.get(name, ()):
        if c in columns:
            need += [n for n in _NEEDS[c] if n not in columns and n not in need]
    return [*columns, *need]


def decode(name: str, table: pa.Table, /, *, columns: Sequence[str] | None = None) -> pa.Table:
    """``table`` as read from ``name``'s files (with :func:`inputs_for` of ``columns``)
    with the derived columns' nulls filled, then only ``columns`` (default: all)."""
    derived = [c for c in DERIVED.get(name, ()) if c in table.column_names]
    holes = [c for c in derived if table.column(c).null_count]
    if holes:
        have = set(table.column_names)
        g = {c: _np(table, c) for c in _LOADS if c in have}
        filled: dict[str, pa.ChunkedArray] = {}
        for c, formula in (("cop_x", _x), ("cop_y", _y)):
            if c in holes or ("tz" in holes and c in derived):
                col = table.column(c)
                filled[c] = pc.coalesce(col, pa.array(formula(g))) if col.null_count else col
        if "tz" in holes:
            xy = (pc.fill_null(filled[c], np.float32("nan")).to_numpy() for c in ("cop_x", "cop_y"))
            filled["tz"] = pc.coalesce(table.column("tz"), pa.array(_tz(g, *xy)))
        for c in holes:
            i = table.schema.get_field_index(c)
            table = table.set_column(i, table.schema.field(i), filled[c])
    return table if columns is None else table.select(list(columns))


def sql_select(name: str, columns: Sequence[str], /) -> str:
    """The DuckDB select list of ``columns`` of table ``name`` read from its files: each
    derived column as ``coalesce(stored, formula)``, the formula doing :func:`decode`'s
    IEEE operations in the same order (float64, rounded to float32)."""

    def d(c: str) -> str:
        return f'CAST("{c}" AS DOUBLE)'

    x = f'coalesce("cop_x", CAST(({d("cop_z")} * {d("fx")} - {d("my")}) / {d("fz")} AS FLOAT))'
    y = f'coalesce("cop_y", CAST(({d("mx")} + {d("cop_z")} * {d("fy")}) / {d("fz")} AS FLOAT))'
    tz = (
        f'coalesce("tz", CAST({d("mz")} - CAST({x} AS DOUBLE) * {d("fy")} '
        f"+ CAST({y} AS DOUBLE) * {d('fx')} AS FLOAT))"
    )
    exprs = {"cop_x": x, "cop_y": y, "tz": tz} if name in DERIVED else {}
    return ", ".join(f'{exprs[c]} AS "{c}"' if c in exprs else f'"{c}"' for c in columns)
