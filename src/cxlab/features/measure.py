"""``Measure``: one row of the long ``features`` table, as task functions return it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

__all__ = ["Measure", "Side", "measures"]

Side = Literal["left", "right", "bilateral"]
_SIDES: tuple[Side, Side] = ("left", "right")


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
    metrics: Mapping[str, float],
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
    metrics : mapping of str to float
        A domain function's result (e.g. :func:`cxlab.features.jump.cmj_metrics`). A
        per-side value has the key ``<name>_left`` / ``<name>_right`` for a ``<name>`` of
        ``units``; keys matching neither a name nor a per-side name are not features
        (intermediate values) and are left out.
    units, methods : mapping of str to str
        Unit and method of each feature ``<name>`` (a missing method is ``""``).
    side : {"left", "right", "bilateral"}, optional
        Side of the values without a per-side key (default ``"bilateral"``), e.g. the
        stance leg of a single-leg test.

    Returns
    -------
    list of Measure
        In the order of ``metrics``.
    """
    sided = {f"{name}_{s}": (name, s) for name in units for s in _SIDES}
    out = []
    for key, value in metrics.items():
        if key in sided:
            name, s = sided[key]
        elif key in units:
            name, s = key, side or "bilateral"
        else:
            continue
        feature = f"{prefix}_{name}" if prefix else name
        out.append(Measure(feature, s, float(value), units[name], methods.get(name, "")))
    return out
