"""C3D parameter helpers shared by both engines: labels, units, point kinds, events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import warn
from cxlab.io._c3d_header import Param
from cxlab.io.recording import Event
from cxlab.units import unit_factor

__all__ = ["events_from_parameters", "length_factor", "split_points"]

OTHER_POINT_KINDS = {
    "ANGLES": "angle",
    "FORCES": "force",
    "MOMENTS": "moment",
    "POWERS": "power",
    "SCALARS": "scalar",
}


def length_factor(unit: str, /, *, path: Path | None = None) -> float:
    """Metres per POINT:UNITS unit (``mm`` → 0.001, ``cm`` → 0.01, ``m`` → 1).

    An empty or unknown unit is taken as millimetres (the C3D default) with a
    :class:`~cxlab._check.CxlabWarning`.
    """
    factor = unit_factor(unit, quantity="length")
    if factor is not None:
        return factor
    warn("unknown length unit; assuming millimetres", file=path, field="POINT:UNITS", value=unit)
    return 1e-3


def _concat(group: dict[str, Param], name: str) -> list[Any]:
    """NAME, NAME2, NAME3 ... joined (the C3D way of holding > 255 entries)."""
    out: list[Any] = []
    i = 1
    while (p := group.get(name if i == 1 else f"{name}{i}")) is not None:
        out.extend(p.strings() if p.dtype == -1 else p.flat().tolist())
        i += 1
    return out


def _num(group: dict[str, Param], name: str, default: float | None = None) -> float | None:
    p = group.get(name)
    if p is None or p.dtype == -1 or p.flat().size == 0 or not np.isfinite(p.flat()[0]):
        return default  # absent, text or not finite: as if missing
    return float(p.flat()[0])


def _str(group: dict[str, Param], name: str, default: str = "") -> str:
    p = group.get(name)
    if p is None:
        return default
    vals = p.strings()
    return vals[0] if vals else default


def _labels(values: list[str], n: int, what: str, path: Path) -> list[str]:
    labels = [str(v).strip() for v in values[:n]]
    if len(labels) < n:
        warn(
            f"has {len(labels)} labels for {n} {what}; the rest are numbered",
            file=path,
            field=f"{what.upper()}:LABELS",
            value=len(labels),
        )
        labels += [f"{what}_{i + 1}" for i in range(len(labels), n)]
    return labels


def split_points(
    point: dict[str, Param], xyz_m: np.ndarray, labels: list[str], length_m: float, /
) -> tuple[np.ndarray, dict[str, Any]]:
    """Which points are markers, and the others (POINT:ANGLES/FORCES/MOMENTS/POWERS/SCALARS).

    Returns
    -------
    is_marker : ndarray of bool, shape (n_points,)
    other : dict
        ``index`` (positions in the file's point list), ``labels``, ``kinds``
        (angle, force, moment, power, scalar), ``units`` (after conversion) and
        ``values`` (n_frames, n_other, 3): moments N·mm/N·cm → N·m; angles,
        forces, powers and scalars as stored (unit from POINT:<KIND>_UNITS).
    """
    kinds: dict[str, str] = {}
    for pname, kind in OTHER_POINT_KINDS.items():
        for lab in _concat(point, pname):
            kinds.setdefault(str(lab).strip(), kind)
    is_marker = np.array([kinds.get(lab) is None for lab in labels], dtype=bool)
    return is_marker, _other_points(point, xyz_m, labels, kinds, is_marker, length_m)


def _other_points(
    point: dict[str, Param],
    xyz_m: np.ndarray,
    labels: list[str],
    kinds: dict[str, str],
    is_marker: np.ndarray,
    length_m: float,
) -> dict[str, Any]:
    """Non-marker points (angles, forces, moments, powers, scalars) in SI where known."""
    idx = np.flatnonzero(~is_marker)
    values = xyz_m.take(idx, axis=1)  # C order (xyz_m[:, idx] is not), stored units below
    values /= length_m
    out_units = []
    for j, i in enumerate(idx):
        kind = kinds[labels[i]]
        unit = _str(point, f"{kind.upper()}_UNITS", "")
        f = unit_factor(unit, quantity="moment") if kind == "moment" else None
        if f is not None:
            values[:, j] *= f
            unit = "N.m"
        out_units.append(unit)
    return {
        "index": idx.tolist(),
        "labels": [labels[i] for i in idx],
        "kinds": [kinds[labels[i]] for i in idx],
        "units": out_units,
        "values": values,
    }


def _context(raw: str) -> str:
    low = raw.strip().lower()
    return low.capitalize() if low in ("left", "right") else "General"


def events_from_parameters(
    params: dict[str, dict[str, Param]], header_events: list[tuple[str, float]], /
) -> list[Event]:
    """Events from the EVENT group (TIMES = minutes, seconds), else from the header.

    Contexts other than Left/Right become General.  Sorted by time.
    """
    ev = params.get("EVENT", {})
    used = int(_num(ev, "USED", 0) or 0)
    events: list[Event] = []
    if used > 0 and "TIMES" in ev:
        flat = ev["TIMES"].flat() if ev["TIMES"].dtype != -1 else np.zeros(0)
        times = flat[: flat.size // 2 * 2].reshape(2, -1, order="F")
        labels = _concat(ev, "LABELS")
        contexts = _concat(ev, "CONTEXTS")
        n = min(used, times.shape[1])
        for i in range(n):
            events.append(
                Event(
                    label=str(labels[i]).strip() if i < len(labels) else f"event_{i + 1}",
                    context=_context(str(contexts[i]) if i < len(contexts) else ""),
                    time_s=float(times[0, i] * 60.0 + times[1, i]),
                )
            )
    else:
        events = [Event(label=lab, context="General", time_s=t) for lab, t in header_events]
    return sorted(events, key=lambda e: (e.time_s, e.label))
