"""The one table of physical units: SI factors, unit names, the spellings files use, and g.

Every reader and feature converts through this module, so a unit string means the same thing
in a C3D parameter, an OpenSim header, a force-plate CSV mapping, a vendor export and a
training log. Factors come from :mod:`scipy.constants` (CODATA / NIST SP 811 exact values:
1 lb = 0.45359237 kg, 1 lbf = 4.4482216152605 N, 1 ft = 0.3048 m), never typed by hand.

Each quantity has canonical unit names (the keys of :data:`LENGTH`, :data:`FORCE`,
:data:`MOMENT`, :data:`TIME`, :data:`MASS`; the names a mapping or spec may write) and a set of
spellings seen in files, matched after :func:`unit_key` folds case and drops spaces and the
separators ``. · ⋅ * - _``: ``"N·mm"``, ``"n.mm"`` and ``"Nmm"`` are all ``N.mm``.

>>> unit_factor("Nmm", quantity="moment")
0.001
>>> unit_name("millimetres", quantity="length")
'mm'
>>> unit_factor("furlong", quantity="length") is None
True
"""

from __future__ import annotations

import re
from typing import Literal

import pandas as pd
from scipy import constants as _c

__all__ = [
    "FORCE",
    "LENGTH",
    "MASS",
    "MOMENT",
    "QUANTITIES",
    "TIME",
    "G",
    "Quantity",
    "unit_factor",
    "unit_factors",
    "unit_key",
    "unit_name",
]

#: Standard acceleration of gravity, m/s² (``scipy.constants.g`` = 9.80665, exact by the
#: 3rd CGPM, 1901). The only g in cxlab: body mass is ``BW / G`` everywhere.
G: float = _c.g

Quantity = Literal["length", "force", "moment", "time", "mass"]

#: metres per unit
LENGTH: dict[str, float] = {"m": 1.0, "cm": _c.centi, "mm": _c.milli}
#: newtons per unit
FORCE: dict[str, float] = {"N": 1.0, "kN": _c.kilo, "lbf": _c.pound_force}
#: newton metres per unit
MOMENT: dict[str, float] = {
    "N.m": 1.0,
    "N.cm": _c.centi,
    "N.mm": _c.milli,
    "ft.lbf": _c.foot * _c.pound_force,
}
#: seconds per unit
TIME: dict[str, float] = {"s": 1.0, "ms": _c.milli}
#: kilograms per unit
MASS: dict[str, float] = {"kg": 1.0, "lb": _c.lb}

QUANTITIES: dict[str, dict[str, float]] = {
    "length": LENGTH,
    "force": FORCE,
    "moment": MOMENT,
    "time": TIME,
    "mass": MASS,
}

_LENGTH_WORDS = {
    "mm": ("millimeter", "millimetre"),
    "cm": ("centimeter", "centimetre"),
    "m": ("meter", "metre"),
}
#: unit_key(spelling) -> canonical name, per quantity
_SPELLINGS: dict[str, dict[str, str]] = {
    "length": {
        **{w + s: name for name, ws in _LENGTH_WORDS.items() for w in ws for s in ("", "s")},
        "mete": "m",  # C3D POINT:UNITS cut to 4 characters by some writers
        "metr": "m",
    },
    "force": {"newton": "N", "newtons": "N", "kilonewton": "kN", "kilonewtons": "kN"},
    "moment": {
        "ftlb": "ft.lbf",
        "lbft": "ft.lbf",
        "lbfft": "ft.lbf",
        "ftlbs": "ft.lbf",
        "newtonmeter": "N.m",
        "newtonmetre": "N.m",
    },
    "time": {"sec": "s", "second": "s", "seconds": "s", "msec": "ms", "millisecond": "ms"},
    "mass": {"kgs": "kg", "lbs": "lb", "kilogram": "kg", "kilograms": "kg", "pound": "lb"},
}
_SEPARATORS = re.compile(r"[\s.·⋅*\-_]")


def unit_key(text: str, /) -> str:
    """The matching key of a unit spelling: lower case, no spaces or ``. · ⋅ * - _``."""
    return _SEPARATORS.sub("", str(text).lower())


def _lookup(quantity: str) -> dict[str, str]:
    table = QUANTITIES[quantity]  # a KeyError here is a programming error, not user input
    return {unit_key(n): n for n in table} | _SPELLINGS[quantity]


_NAMES = {q: _lookup(q) for q in QUANTITIES}


def unit_name(text: str, /, *, quantity: Quantity) -> str | None:
    """The canonical name of a unit spelling (``"N·mm"`` → ``"N.mm"``), or None if unknown.

    Parameters
    ----------
    text : str
        A unit as a file writes it; surrounding brackets are not stripped here.
    quantity : {"length", "force", "moment", "time", "mass"}
        Which table to look in: ``"nm"`` is ``N.m`` as a moment and unknown as a length.
    """
    return _NAMES[quantity].get(unit_key(text))


def unit_factor(text: str, /, *, quantity: Quantity) -> float | None:
    """SI units per unit of a spelling (``"mm"`` → 0.001 m), or None if unknown.

    The SI units are m, N, N·m, s and kg for ``length``, ``force``, ``moment``, ``time`` and
    ``mass``.
    """
    name = unit_name(text, quantity=quantity)
    return None if name is None else QUANTITIES[quantity][name]


def unit_factors(texts: pd.Series, /, *, quantity: Quantity) -> pd.Series:
    """:func:`unit_factor` of every entry of a string Series (vectorised); NaN where unknown."""
    keys = texts.astype(str).str.lower().str.replace(_SEPARATORS, "", regex=True)
    table = QUANTITIES[quantity]
    return keys.map(_NAMES[quantity]).map(table).astype(float)
