"""Signals resampled over a phase: joint angles and moments, shear force and CoP.

The phase builders of :mod:`cxlab.features.curve_tasks` find a phase's events; the
functions here turn the signals a recording holds into :class:`Curve` rows over those
events:

* :func:`joint_curves`: the 3-D joint angles and moments of the ``joint_angles`` /
  ``joint_moments`` tables (docs/kinematics.md), one method per table and curve
  (``cxlab-pig`` when it was computed, else the vendor's ``file`` outputs; the curve's
  ``method`` names it, two methods are never averaged into one curve).
* :func:`plate_curves`: the horizontal (shear) ground reaction force, N and body weights,
  and the centre of pressure relative to its position at the phase start, m, in the lab
  frame (docs/conventions.md: +X anterior, +Y to the subject's left; real files keep
  their own lab frame).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab.features.curves import time_normalise

__all__ = [
    "ANGLE_SIGNALS",
    "MOMENT_SIGNALS",
    "NO_JOINTS",
    "Curve",
    "JointData",
    "joint_curves",
    "joint_data",
    "plate_curves",
]


class Curve(NamedTuple):
    """One time-normalised curve of a trial.

    ``values`` has shape (n_nodes,) in ``unit``; ``start_s``/``end_s`` bound the phase in
    the recording's time; ``method`` names the events and the resampling.
    """

    phase: str
    signal: str
    side: str
    unit: str
    values: np.ndarray
    start_s: float
    end_s: float
    method: str


class JointData(NamedTuple):
    """One recording's joint tables, one method each (see :func:`joint_data`).

    ``angles``: ``joint_angles`` rows (``frame, time_s, side, joint, flexion_deg,
    adduction_deg, internal_rotation_deg, method``); ``moments``: ``joint_moments`` rows
    (``..., flexion_nm_per_kg, adduction_nm_per_kg, internal_rotation_nm_per_kg,
    method``). Times in s on the recording's marker time axis (first frame at 0 s).
    """

    angles: pd.DataFrame | None = None
    moments: pd.DataFrame | None = None


#: No joint tables (the default of the phase builders).
NO_JOINTS = JointData()

#: signal -> (joint, joint_angles column, sign); PiG signs (docs/kinematics.md):
#: flexion, adduction (knee: varus) and internal rotation positive.
ANGLE_SIGNALS: dict[str, tuple[str, str, float]] = {
    "hip_flexion_deg": ("hip", "flexion_deg", 1.0),
    "hip_adduction_deg": ("hip", "adduction_deg", 1.0),
    "hip_internal_rotation_deg": ("hip", "internal_rotation_deg", 1.0),
    "knee_flexion_deg": ("knee", "flexion_deg", 1.0),
    "knee_adduction_deg": ("knee", "adduction_deg", 1.0),
    "knee_internal_rotation_deg": ("knee", "internal_rotation_deg", 1.0),
    "ankle_dorsiflexion_deg": ("ankle", "flexion_deg", 1.0),
}
#: signal -> (joint, joint_moments column, sign). The knee abduction moment is the
#: external abduction moment, −PiG knee Y (Hewett et al. 2005, as
#: :func:`cxlab.features.kinetics.landing_3d_peaks`).
MOMENT_SIGNALS: dict[str, tuple[str, str, float]] = {
    "hip_flexion_moment_nm_per_kg": ("hip", "flexion_nm_per_kg", 1.0),
    "hip_adduction_moment_nm_per_kg": ("hip", "adduction_nm_per_kg", 1.0),
    "knee_flexion_moment_nm_per_kg": ("knee", "flexion_nm_per_kg", 1.0),
    "knee_abduction_moment_nm_per_kg": ("knee", "adduction_nm_per_kg", -1.0),
    "ankle_flexion_moment_nm_per_kg": ("ankle", "flexion_nm_per_kg", 1.0),
}
_PREFERENCE = ("cxlab-pig", "file")


def joint_data(
    angles: Sequence[pd.DataFrame | None] = (), moments: Sequence[pd.DataFrame | None] = (), /
) -> JointData:
    """Pick one method per joint table: ``cxlab-pig`` when it has rows, else ``file``.

    Parameters
    ----------
    angles, moments : sequence of DataFrame or None
        The ``joint_angles`` / ``joint_moments`` frames of one recording, any methods
        (each frame's ``method`` column).

    Returns
    -------
    JointData
        Each table restricted to the preferred method present (None when absent), so a
        curve never mixes methods.
    """

    def pick(frames):
        frames = [f for f in frames if f is not None and len(f)]
        if not frames:
            return None
        df = pd.concat(frames, ignore_index=True)
        for m in _PREFERENCE:
            if (df["method"] == m).any():
                return df[df["method"] == m].reset_index(drop=True)
        return None

    return JointData(pick(angles), pick(moments))


def _series(df: pd.DataFrame, side: str, joint: str, col: str) -> tuple[np.ndarray, np.ndarray]:
    g = df[(df["side"] == side) & (df["joint"] == joint)].sort_values("frame")
    return g["time_s"].to_numpy(dtype=float), g[col].to_numpy(dtype=float)


def _cycles_mean(
    t: np.ndarray, y: np.ndarray, windows: Sequence[tuple[float, float]], n: int, method: str
) -> tuple[np.ndarray | None, int]:
    """Mean over the windows inside ``t`` of ``y`` resampled window by window (NaN nodes
    stay NaN); None when no window lies inside the samples."""
    tol = 1e-9 * max(1.0, abs(t[-1])) if t.size else 0.0
    inside = [(a, b) for a, b in windows if t.size >= 2 and a >= t[0] - tol and b <= t[-1] + tol]
    if not inside:
        return None, 0
    m = "linear" if method.startswith("linear") else method
    ys = np.stack([time_normalise(y, [a, b], time=t, n=n, method=m) for a, b in inside])
    return ys.mean(axis=0), len(inside)


def joint_curves(
    joints: JointData,
    /,
    *,
    phase: str,
    windows: Mapping[str, Sequence[tuple[float, float]]],
    n: int,
    method: str,
    events_txt: str,
) -> list[Curve]:
    """Joint-angle and joint-moment curves of each leg over a phase.

    Parameters
    ----------
    joints : JointData
        One method per table (:func:`joint_data`).
    phase : str
        Phase name written in ``curves.phase``.
    windows : mapping of side to list of (start_s, end_s)
        Each leg's occurrences of the phase, s on the marker time axis (a gait cycle of
        the left foot for ``"left"``); several are averaged node by node.
    n, method : int, str
        Nodes and resampling (:func:`cxlab.features.curves.time_normalise`).
    events_txt : str
        How the events were found, for ``curves.method``.

    Returns
    -------
    list of Curve
        Signals :data:`ANGLE_SIGNALS` (``deg``) and :data:`MOMENT_SIGNALS` (``N.m/kg``)
        per side that has them; ``method`` names the joint table's method and the number
        of occurrences averaged. A node next to a frame without output (Nexus writes
        none outside the model's frames) is NaN; a curve without any finite node is
        left out.
    """
    out = []
    tables = (
        (joints.angles, ANGLE_SIGNALS, "deg", "joint_angles"),
        (joints.moments, MOMENT_SIGNALS, "N.m/kg", "joint_moments"),
    )
    for df, signals, unit, table in tables:
        if df is None or not len(df):
            continue
        source = str(df["method"].iloc[0])
        for side, wins in windows.items():
            if not wins:
                continue
            for signal, (joint, col, sign) in signals.items():
                t, y = _series(df, side, joint, col)
                if t.size < 2:
                    continue
                m = _method([y], method)
                mean, k = _cycles_mean(t, sign * y, wins, n, m)
                if mean is None or not np.isfinite(mean).any():
                    continue
                out.append(
                    Curve(
                        phase,
                        signal,
                        side,
                        unit,
                        mean,
                        float(min(a for a, _ in wins)),
                        float(max(b for _, b in wins)),
                        f"{events_txt}; {table} method {source}"
                        + (f"; mean of {k} occurrence(s)" if k > 1 else "")
                        + f"; {m}, {n} nodes",
                    )
                )
    return out


def plate_curves(
    plates: Mapping[str, Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]]],
    /,
    *,
    phase: str,
    bw_n: float,
    windows: Sequence[tuple[int, int]],
    rate_hz: float,
    n: int,
    method: str,
    events_txt: str,
    cop: bool = True,
) -> list[Curve]:
    """Shear force (N, BW) and CoP (m) curves over a force phase.

    Parameters
    ----------
    plates : mapping of side to plate, or to a sequence of plates
        Each side's plate(s) as arrays ``fx``, ``fy`` (force on the body, N) and
        ``cop_x``, ``cop_y`` (m), shape (n_samples,), lab frame. A sequence is summed
        (``"bilateral"`` over both plates) and gets no CoP.
    phase : str
        Phase name.
    bw_n : float
        Body weight, N (the phase's ``fz_bw`` divisor); NaN = no BW curves.
    windows : sequence of (start, stop) samples
        Occurrences of the phase, inclusive bounds; several are averaged node by node.
    rate_hz : float
        Analog sample rate, Hz.
    n, method, events_txt
        Nodes, resampling and event text (see :func:`joint_curves`).
    cop : bool
        Whether to build the CoP curves (False over a gait cycle, whose swing has none).

    Returns
    -------
    list of Curve
        ``shear_ap_n``, ``shear_ml_n`` (N), ``shear_ap_bw``, ``shear_ml_bw`` (BW):
        lab +X (anterior) and +Y (the subject's left) components of the ground reaction
        force on the body; ``cop_ap_m``, ``cop_ml_m`` (m): the plate's CoP minus its
        first finite value in the occurrence (CoP is NaN below the plate's threshold;
        a node touching a NaN sample is NaN). A component a plate does not export, or a
        curve without any finite node, gives no curve.
    """
    # first the segments of every curve, then one resampling of all of them (one 2-D call
    # per segment length instead of one call per signal and occurrence), then the curves
    todo: list[tuple[str, str, str, list[np.ndarray], str]] = []  # side, kind, axis, segs, m
    for side, plate in plates.items():
        group = list(plate) if isinstance(plate, (list, tuple)) else [plate]
        for axis in ("x", "y"):
            if any(f"f{axis}" not in p for p in group):
                continue
            cols = [np.asarray(p[f"f{axis}"], dtype=float) for p in group]
            # each occurrence's samples summed over the plates in order: the bits of
            # np.sum over the plates (one row after the other), without summing the trial
            segs = [functools.reduce(np.add, [c[a : b + 1] for c in cols]) for a, b in windows]
            if all(not np.isfinite(s).any() for s in segs):
                continue
            todo.append((side, "shear", axis, segs, _method(segs, method)))
        if not cop or len(group) != 1 or "cop_x" not in group[0]:
            continue
        for axis in ("x", "y"):
            c = np.asarray(group[0][f"cop_{axis}"], dtype=float)
            segs = []
            for a, b in windows:
                s = c[a : b + 1]
                ok = np.flatnonzero(np.isfinite(s))
                if ok.size >= 2:
                    segs.append(s - s[ok[0]])
            if segs:
                todo.append((side, "cop", axis, segs, _method(segs, method)))
    flat = [(s, m) for *_, segs, m in todo for s in segs]
    resampled = iter(_normalise_all([s for s, _ in flat], [m for _, m in flat], rate_hz, n))
    out: list[Curve] = []
    t0, t1 = windows[0][0] / rate_hz, windows[-1][1] / rate_hz
    for side, kind, axis, segs, m in todo:
        k = len(segs)
        y = next(resampled) if k == 1 else np.stack([next(resampled) for _ in segs]).mean(axis=0)
        name = "ap" if axis == "x" else "ml"
        if kind == "shear":
            txt = f"{events_txt}" + (f"; mean of {k} occurrence(s)" if k > 1 else "")
            lab = f"lab {'+X (anterior)' if axis == 'x' else '+Y (subject left)'}"
            for unit, scale in (("N", 1.0), ("BW", bw_n))[: 2 if np.isfinite(bw_n) else 1]:
                out.append(
                    Curve(
                        phase,
                        f"shear_{name}_{unit.lower()}",
                        side,
                        unit,
                        y / scale,
                        t0,
                        t1,
                        f"{txt}; ground reaction force on the body, {lab}"
                        + (f", / body weight {bw_n:.1f} N" if unit == "BW" else "")
                        + f"; {m}, {n} nodes",
                    )
                )
            continue
        if not np.isfinite(y).any():
            continue
        out.append(
            Curve(
                phase,
                f"cop_{name}_m",
                side,
                "m",
                y,
                t0,
                t1,
                f"{events_txt}"
                + (f"; mean of {k} occurrence(s)" if k > 1 else "")
                + f"; centre of pressure along lab {'+X' if axis == 'x' else '+Y'} "
                "relative to its first finite sample in the phase (NaN below the "
                f"plate's threshold); {m}, {n} nodes",
            )
        )
    return out


def _method(segs: Sequence[np.ndarray], method: str) -> str:
    """``method``, or linear when a spline would have to pass through missing samples
    (the curve's ``method`` text says which was used)."""
    if method == "spline" and not all(np.isfinite(s).all() for s in segs):
        return "linear (spline impossible across missing samples)"
    return method


def _normalise(seg: np.ndarray, rate_hz: float, n: int, method: str) -> np.ndarray:
    method = "linear" if method.startswith("linear") else method
    end = (seg.shape[0] - 1) / rate_hz
    return time_normalise(seg, [0.0, end], rate_hz=rate_hz, n=n, method=method)


def _normalise_all(
    segs: Sequence[np.ndarray], methods: Sequence[str], rate_hz: float, n: int
) -> list[np.ndarray]:
    """:func:`_normalise` of each segment (shape (n_samples,)); the linear ones of one
    length go through one 2-D call (columns resample independently: the same numbers)."""
    out: list[np.ndarray | None] = [None] * len(segs)
    same: dict[int, list[int]] = {}
    for i, (s, m) in enumerate(zip(segs, methods, strict=True)):
        if m.startswith("linear") and s.shape[0] >= 2:
            same.setdefault(s.shape[0], []).append(i)
        else:
            out[i] = _normalise(s, rate_hz, n, m)
    for idx in same.values():
        y = _normalise(np.column_stack([segs[i] for i in idx]), rate_hz, n, "linear")
        for j, i in enumerate(idx):
            out[i] = np.ascontiguousarray(y[:, j])
    return out
