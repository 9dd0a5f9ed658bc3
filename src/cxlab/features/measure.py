"""``Measure``: one row of the long ``features`` table, as task functions return it.

A domain function (:func:`cxlab.features.jump.cmj_metrics` …) returns a flat mapping of
feature name to value; a value measured per limb is a :class:`Sided`, never a pair of
keys with a ``_left`` / ``_right`` suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

__all__ = ["Measure", "Side", "Sided", "measures", "whole"]

Side = Literal["left", "right", "bilateral"]


class Sided(NamedTuple):
    """One feature's per-limb values (and, when the trial has one, its whole-body value).

    Attributes
    ----------
    left, right : float
        The value of each limb, in the feature's unit (the domain module's units table,
        e.g. :data:`cxlab.features.jump.CMJ_UNITS`: ``braking_impulse_n_s`` in N·s from
        that foot's plate). NaN means "could not be computed".
    bilateral : float or None
        The whole-body value of the same feature (from the summed force of both plates,
        same unit), when the function computes one; ``None`` when the feature exists only
        per limb (``pelvic_drop_peak_deg``).
    """

    left: float
    right: float
    bilateral: float | None = None


def whole(value: float | Sided, /) -> float:
    """The whole-body value of a metric: ``value`` itself, or a :class:`Sided`'s ``bilateral``.

    Raises
    ------
    ValueError
        If ``value`` is a :class:`Sided` without a whole-body value.
    """
    if not isinstance(value, Sided):
        return float(value)
    if value.bilateral is None:
        raise ValueError(
            f"{value!r} has only per-limb values; read .left / .right, not a whole-body value"
        )
    return float(value.bilateral)


class Measure(NamedTuple):
    """One feature value of one trial (a row of ``features`` without the recording keys).

    Attributes
    ----------
    feature : str
        Feature name (``cmj_jump_height_impulse_m``); carries its unit in the name.
    side : {"left", "right", "bilateral"}
        The limb the value belongs to.
    value : float
        The value, in ``unit``; NaN means "could not be computed" (the runner quarantines
        it by name and keeps the trial's other values).
    unit : str
        Unit of ``value`` (``"m"``, ``"N"``, ``"%"``, ``"1"`` for dimensionless).
    method : str
        How the value was computed (formula, source); for a NaN value beginning
        ``"not analysed"``, why.
    """

    feature: str
    side: Side
    value: float
    unit: str
    method: str


def measures(
    prefix: str,
    metrics: Mapping[str, float | Sided],
    units: Mapping[str, str],
    methods: Mapping[str, str],
    /,
    *,
    side: Side | None = None,
) -> list[Measure]:
    """The :class:`Measure` rows of a domain function's metrics.

    Parameters
    ----------
    prefix : str
        Prepended to every feature name with ``_`` (``"cmj"``); ``""`` for none.
    metrics : mapping of str to float or Sided
        A domain function's result (e.g. :func:`cxlab.features.jump.cmj_metrics`). Keys
        of ``units`` are features; other keys are intermediate values and are left out.
        The side of a value is its type, never its key: a :class:`Sided` gives its
        ``bilateral`` row (when not ``None``), then its ``left`` and ``right`` rows; a
        float gives one row of side ``side``. A key that ends in ``_left`` is no side: a
        float under ``foo_left`` is the feature ``foo_left`` if ``units`` names it, and
        is left out like any other unnamed key if not.
    units, methods : mapping of str to str
        Unit and method of each feature name (a missing method is ``""``).
    side : {"left", "right", "bilateral"}, optional
        Side of the float values (default ``"bilateral"``), e.g. the stance leg of a
        single-leg test.

    Returns
    -------
    list of Measure
        In the order of ``metrics``.
    """
    out = []
    for name, value in metrics.items():
        if name not in units:
            continue
        feature = f"{prefix}_{name}" if prefix else name
        unit, method = units[name], methods.get(name, "")
        if isinstance(value, Sided):
            rows = [("left", value.left), ("right", value.right)]
            if value.bilateral is not None:
                rows.insert(0, ("bilateral", value.bilateral))
        else:
            rows = [(side or "bilateral", value)]
        out += [Measure(feature, s, float(v), unit, method) for s, v in rows]
    return out
