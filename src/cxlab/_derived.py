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
difference on the synthetic cohort is 1.5e-8 m for the CoP and 1.4e-6 N·m for ``tz``),
and bit-identical across runs, machines, pandas, Arrow and DuckDB (the SQL expressions do
the same IEEE operations in the same order; a test checks them against NumPy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DERIVED", "decode", "encode", "inputs_for", "sql_select"]

DERIVED: dict[str, tuple[str, ...]] = {"forces": ("cop_x", "cop_y", "tz")}
"""Per table, the columns stored as null where they follow from the others."""

_INPUTS = ("fx", "fy", "fz", "mx", "my", "mz", "cop_z")
_REL_TOL = 2.0**-20  # of the terms' magnitudes: ~8 float32 ulps


def _f64(table: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` of ``table`` as float64 (nulls as NaN)."""
    col = table.column(name)
    if col.null_count:
        col = pc.fill_null(col, np.float32("nan"))
    return col.to_numpy().astype(np.float64)


def _cop(g: dict[str, np.ndarray], /) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The derived ``cop_x``, ``cop_y`` (float64 of the float32 rounding) and each one's
    tolerance, from the float64 views ``g`` of the stored float32 inputs."""
    h, fz = g["cop_z"], g["fz"]
    hx, hy = h * g["fx"], h * g["fy"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = ((hx - g["my"]) / fz).astype(np.float32).astype(np.float64)
        y = ((g["mx"] + hy) / fz).astype(np.float32).astype(np.float64)
        tol_x = _REL_TOL * (np.abs(hx) + np.abs(g["my"])) / np.abs(fz)
        tol_y = _REL_TOL * (np.abs(g["mx"]) + np.abs(hy)) / np.abs(fz)
    return x, y, tol_x, tol_y


def _tz(g: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, /):
    """The derived ``tz`` (float64 of the float32 rounding) and its tolerance, from the
    decoded ``cop_x`` ``x`` and ``cop_y`` ``y`` (float64 views of float32 values)."""
    xfy, yfx = x * g["fy"], y * g["fx"]
    with np.errstate(invalid="ignore", over="ignore"):
        tz = (g["mz"] - xfy + yfx).astype(np.float32).astype(np.float64)
        tol = _REL_TOL * (np.abs(g["mz"]) + np.abs(xfy) + np.abs(yfx))
    return tz, tol


def _agrees(derived: np.ndarray, given: np.ndarray, tol: np.ndarray, /) -> np.ndarray:
    """Rows where ``derived`` stands in for the finite ``given`` (within ``tol``)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(given) & np.isfinite(derived) & (np.abs(derived - given) <= tol)


def _set(table: pa.Table, name: str, values: np.ndarray, null: np.ndarray | None) -> pa.Table:
    """``table`` with float32 column ``name`` replaced by ``values`` (null where ``null``)."""
    i = table.schema.get_field_index(name)
    arr = pa.array(values.astype(np.float32), type=pa.float32(), mask=null)
    return table.set_column(i, table.schema.field(i), arr)


def encode(name: str, table: pa.Table, /) -> pa.Table:
    """``table`` (a validated part of table ``name``) as the store writes it: each
    :data:`DERIVED` column null where its formula gives it back (see the module doc)."""
    if name not in DERIVED or table.num_rows == 0:
        return table
    g = {c: _f64(table, c) for c in _INPUTS}
    cx, cy, ctz = (_f64(table, c) for c in DERIVED[name])
    x, y, tol_x, tol_y = _cop(g)
    null_x, null_y = _agrees(x, cx, tol_x), _agrees(y, cy, tol_y)
    dx, dy = np.where(null_x, x, cx), np.where(null_y, y, cy)  # what a reader gets
    tz, tol_tz = _tz(g, dx, dy)
    null_tz = _agrees(tz, ctz, tol_tz)
    for col, given, null in (("cop_x", cx, null_x), ("cop_y", cy, null_y), ("tz", ctz, null_tz)):
        table = _set(table, col, given, null)
    return table


def inputs_for(name: str, columns: Sequence[str], /) -> list[str]:
    """``columns`` plus what :func:`decode` needs to fill the derived ones among them."""
    wanted = set(columns) & set(DERIVED.get(name, ()))
    if not wanted:
        return list(columns)
    need = [*_INPUTS, "cop_x", "cop_y"] if "tz" in wanted else [*_INPUTS]
    return list(columns) + [c for c in need if c not in columns]


def decode(name: str, table: pa.Table, /, *, columns: Sequence[str] | None = None) -> pa.Table:
    """``table`` as read from ``name``'s files (with :func:`inputs_for` of ``columns``)
    with the derived columns' nulls filled, then only ``columns`` (default: all)."""
    derived = [c for c in DERIVED.get(name, ()) if c in table.column_names]
    if any(table.column(c).null_count for c in derived):
        g = {c: _f64(table, c) for c in _INPUTS}
        x, y, _, _ = _cop(g)
        filled = {}
        for col, d in (("cop_x", x), ("cop_y", y)):
            if col in table.column_names:
                raw = table.column(col)
                filled[col] = np.where(pc.is_null(raw).to_numpy(), d, _f64(table, col))
        if "tz" in derived:
            tz, _ = _tz(g, filled["cop_x"], filled["cop_y"])
            raw = table.column("tz")
            filled["tz"] = np.where(pc.is_null(raw).to_numpy(), tz, _f64(table, "tz"))
        for col, values in filled.items():
            table = _set(table, col, values, None)
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
