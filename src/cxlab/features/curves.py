"""Whole curves: a movement phase resampled to a fixed number of nodes.

Biomechanical curves are compared after *time normalisation*: each trial's phase (e.g.
initial contact → take-off) is resampled to ``n`` equally spaced nodes, 0–100 % of the
phase (Winter 2009, *Biomechanics and Motor Control of Human Movement*, 4th ed., §2.4;
Pataky 2010, *J Biomech* 43:1976). With intermediate events (landmarks) the phase is
normalised piecewise, event to event, so that each event lands on a stated node of every
trial (landmark registration; Sadeghi et al. 2003, *Gait Posture* 17:255).

The result of :func:`time_normalise` is a plain NumPy array; :func:`curve_matrix` turns the
long ``curves`` table of a store into the ``(J, Q)`` array (trials × nodes) that
``spm1d`` and :mod:`cxlab.models.spm` take.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline

from cxlab._check import CxlabError, check_option, message

__all__ = ["CurveMatrix", "curve_matrix", "time_normalise"]

Method = Literal["linear", "spline"]


def _time_axis(n_samples: int, rate_hz: float | None, time) -> np.ndarray:
    if time is not None:
        t = np.asarray(time, dtype=float)
        if t.shape != (n_samples,):
            raise CxlabError(
                message(
                    "does not match the signal's length",
                    field="time",
                    value=f"{t.shape[0] if t.ndim else 0} samples",
                    fix=f"pass one time per sample ({n_samples})",
                )
            )
        if not np.all(np.diff(t) > 0):
            raise CxlabError(
                message(
                    "must increase strictly",
                    field="time",
                    fix="sort the samples by time and drop repeats",
                )
            )
        return t
    if rate_hz is None or not np.isfinite(rate_hz) or rate_hz <= 0:
        raise CxlabError(
            message(
                "is needed (a positive sample rate in Hz) when no time array is given",
                field="rate_hz",
                value=rate_hz,
                fix="pass rate_hz= or time=",
            )
        )
    return np.arange(n_samples) / float(rate_hz)


def time_normalise(
    x,
    events: Sequence[float],
    /,
    *,
    rate_hz: float | None = None,
    time=None,
    n: int = 101,
    method: Method = "linear",
    event_pct: Sequence[float] | None = None,
) -> np.ndarray:
    """Resample the phase ``events[0] → events[-1]`` of ``x`` to ``n`` nodes.

    Parameters
    ----------
    x : array_like, shape (n_samples,) or (n_samples, k)
        The signal, any unit (kept); columns are resampled independently.
    events : sequence of float, length ≥ 2
        Event times, s, on the signal's time axis (``time``, or ``sample / rate_hz``,
        so the first sample is at 0 s), strictly increasing. The first and last bound the
        phase; intermediate events are landmarks.
    rate_hz : float, optional
        Sample rate, Hz, when ``time`` is not given.
    time : array_like, shape (n_samples,), optional
        Time of each sample, s, strictly increasing (non-uniform sampling allowed).
    n : int
        Number of nodes, default 101 (0, 1, …, 100 % of the phase).
    method : {"linear", "spline"}
        Linear interpolation between samples, or a not-a-knot cubic spline through the
        samples (:class:`scipy.interpolate.CubicSpline`). Linear never overshoots; the
        spline is exact to O(h⁴) for smooth signals (h = sample interval).
    event_pct : sequence of float, optional
        With intermediate events: the percentage of the phase at which each event is
        placed (one value per intermediate event, strictly increasing in (0, 100)). The
        phase is then resampled piecewise, event to event. Default: no registration —
        each trial keeps its own event timing and the nodes are equally spaced in time.

    Returns
    -------
    ndarray, shape (n,) or (n, k)
        ``x`` at the nodes, in the unit of ``x``. NaN samples propagate to the nodes they
        touch (gaps are never filled silently: fill them first, e.g. with
        :func:`cxlab.features.signal.fill_gaps`).

    Raises
    ------
    CxlabError
        Fewer than 2 events, events not increasing or outside the signal, fewer nodes than
        the events need, bad ``event_pct``.

    Examples
    --------
    >>> t = np.arange(0, 2.0, 0.001)
    >>> y = time_normalise(np.sin(np.pi * t), [0.5, 1.5], rate_hz=1000)
    >>> y.shape
    (101,)
    """
    check_option("method", method, ("linear", "spline"))
    arr = np.asarray(x, dtype=float)
    if arr.ndim not in (1, 2) or arr.shape[0] < 2:
        raise CxlabError(
            message(
                "must be 1-D or 2-D with at least 2 samples",
                field="x",
                value=f"shape {arr.shape}",
                fix="pass (n_samples,) or (n_samples, k)",
            )
        )
    if int(n) != n or n < 2:
        raise CxlabError(message("must be an integer ≥ 2", field="n", value=n, fix="use n=101"))
    n = int(n)
    t = _time_axis(arr.shape[0], rate_hz, time)
    ev = np.asarray(events, dtype=float)
    if ev.ndim != 1 or ev.size < 2 or not np.all(np.isfinite(ev)):
        raise CxlabError(
            message(
                "needs at least 2 finite event times (start and end of the phase)",
                field="events",
                value=list(np.atleast_1d(ev)),
                fix="pass [start_s, ..., end_s]",
            )
        )
    if not np.all(np.diff(ev) > 0):
        raise CxlabError(
            message(
                "must increase strictly",
                field="events",
                value=list(ev),
                fix="order the events in time; a phase of zero length has no curve",
            )
        )
    tol = 1e-9 * max(1.0, abs(t[-1]))
    if ev[0] < t[0] - tol or ev[-1] > t[-1] + tol:
        raise CxlabError(
            message(
                f"fall outside the signal ({t[0]:g} to {t[-1]:g} s)",
                field="events",
                value=list(ev),
                fix="pass event times on the signal's own time axis (the first "
                "sample is at 0 s when only rate_hz is given)",
            )
        )
    ev = np.clip(ev, t[0], t[-1])
    pct = _nodes(n)
    if event_pct is None:
        tq = ev[0] + pct / 100.0 * (ev[-1] - ev[0])
    else:
        ep = np.asarray(event_pct, dtype=float)
        if ep.shape != (ev.size - 2,) or not np.all(np.diff(np.r_[0.0, ep, 100.0]) > 0):
            raise CxlabError(
                message(
                    "needs one strictly increasing percentage in (0, 100) per intermediate event",
                    field="event_pct",
                    value=list(np.atleast_1d(ep)),
                    fix=f"pass {ev.size - 2} value(s), e.g. the mean timing of each event",
                )
            )
        # piecewise-linear map from % of phase to time through (event_pct, event time)
        tq = np.interp(pct, np.r_[0.0, ep, 100.0], ev)
    if method == "linear":
        if arr.ndim == 1:
            return _interp_nan(t, arr, tq)
        return _interp_columns(t, arr, tq)
    finite = np.isfinite(arr) if arr.ndim == 1 else np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise CxlabError(
            message(
                f"has {int((~finite).sum())} missing (NaN) samples; a spline "
                "through them is undefined",
                field="x",
                fix="fill the gaps first or use method='linear'",
            )
        )
    return CubicSpline(t, arr, axis=0, bc_type="not-a-knot")(tq)


@functools.lru_cache(maxsize=16)
def _nodes(n: int) -> np.ndarray:
    """The ``n`` node positions, % of the phase (read-only, shared between calls)."""
    pct = np.linspace(0.0, 100.0, n)
    pct.flags.writeable = False
    return pct


def _interp_columns(t: np.ndarray, y: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """:func:`_interp_nan` of every column of ``y`` (shape (n_samples, k)): one finiteness
    check of the whole array, then ``np.interp`` of each column (contiguous rows), the
    masked path of :func:`_interp_nan` only for a column with a non-finite sample."""
    cols = np.ascontiguousarray(y.T)
    out = np.empty((tq.size, y.shape[1]))
    finite = bool(np.isfinite(cols).all())
    for j, c in enumerate(cols):
        out[:, j] = np.interp(tq, t, c) if finite else _interp_nan(t, c, tq)
    return out


def _interp_nan(t: np.ndarray, y: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """Linear interpolation in which a node between or on NaN samples is NaN."""
    bad = ~np.isfinite(y)
    if not bad.any():  # nothing to mask: the same numbers without nan_to_num's copy
        return np.interp(tq, t, y)
    out = np.interp(tq, t, np.nan_to_num(y, nan=0.0))
    # a node is NaN when either neighbouring sample is NaN
    hi = np.clip(np.searchsorted(t, tq, side="left"), 0, t.size - 1)
    lo = np.clip(hi - 1, 0, t.size - 1)
    exact = np.isclose(t[hi], tq, rtol=0, atol=1e-12)
    nan_node = np.where(exact, bad[hi], bad[hi] | bad[lo])
    out[nan_node] = np.nan
    return out


@dataclass(frozen=True)
class CurveMatrix:
    """Curves of one signal and phase as a trials × nodes array.

    Attributes
    ----------
    values : ndarray, shape (J, Q)
        One row per trial, one column per node, in ``unit``.
    pct : ndarray, shape (Q,)
        Node positions, % of the phase.
    labels : pandas.DataFrame
        One row per trial, in the row order of ``values``: ``recording_id`` and whatever
        label columns the curves table carried (``subject_id``, ``session``, ``side``…).
    signal, phase, unit : str
    """

    values: np.ndarray
    pct: np.ndarray
    labels: pd.DataFrame
    signal: str
    phase: str
    unit: str


def curve_matrix(
    curves: pd.DataFrame, /, *, signal: str, phase: str, side: str | None = None
) -> CurveMatrix:
    """The ``(J, Q)`` array of one signal and phase from a long curves table.

    Parameters
    ----------
    curves : pandas.DataFrame
        Long table with at least ``recording_id, phase, signal, side, node, pct, value,
        unit`` (the store's ``curves`` table; extra label columns such as ``subject_id``
        and ``session`` are carried into :attr:`CurveMatrix.labels`).
    signal, phase : str
        Which curve, e.g. ``signal="fz_bw", phase="landing"``.
    side : str, optional
        Keep one side only (``left``, ``right`` or ``bilateral``).

    Returns
    -------
    CurveMatrix
        Rows sorted by the label columns, then ``recording_id`` (deterministic).

    Raises
    ------
    CxlabError
        No such curve, or trials with different node counts or units.
    """
    sel = (curves["signal"] == signal) & (curves["phase"] == phase)
    if side is not None:
        sel &= curves["side"] == side
    d = curves.loc[sel]
    if d.empty:
        have = sorted(set(zip(curves["phase"], curves["signal"], strict=True)))
        raise CxlabError(
            message(
                "no curves match",
                field="signal/phase",
                value=f"{signal!r} in {phase!r}" + (f", side {side!r}" if side else ""),
                fix="choose one of "
                + (", ".join(f"{p}/{s}" for p, s in have[:12]) or "none: run cxlab features first"),
            )
        )
    units = d["unit"].dropna().unique()
    if len(units) > 1:
        raise CxlabError(
            message(
                "mixes units", field=f"{phase}/{signal}", value=list(units), fix="select one unit"
            )
        )
    label_cols = [
        c
        for c in ("subject_id", "session", "session_index", "task", "trial", "arm")
        if c in d.columns
    ]
    keys = ["recording_id", "side"]
    wide = d.pivot_table(index=keys, columns="node", values="value", aggfunc="first", dropna=False)
    if wide.isna().all(axis=1).any():
        wide = wide.loc[~wide.isna().all(axis=1)]
    labels = (
        d.drop_duplicates(keys)[keys + label_cols].set_index(keys).loc[wide.index].reset_index()
    )
    order = labels.sort_values(label_cols + keys, kind="stable").index.to_numpy()
    pct = d.drop_duplicates("node").sort_values("node")["pct"].to_numpy(float)
    return CurveMatrix(
        values=wide.to_numpy(float)[order],
        pct=pct,
        labels=labels.iloc[order].reset_index(drop=True),
        signal=signal,
        phase=phase,
        unit=str(units[0]) if len(units) else "",
    )
