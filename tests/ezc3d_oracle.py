"""Markers and events of a C3D file read with ezc3d: an oracle independent of cxlab's reader."""

from __future__ import annotations

import ezc3d
import numpy as np


def c3d_markers(path) -> tuple[dict[str, np.ndarray], float, int, list[tuple[str, str, float]]]:
    """Markers (m, NaN where the residual marks them invalid), marker rate (Hz), first frame
    (0-based) and the file's events as (context, label, time_s), read with ezc3d."""
    c = ezc3d.c3d(str(path))
    par = c["parameters"]
    labels = par["POINT"]["LABELS"]["value"]
    rate = float(par["POINT"]["RATE"]["value"][0])
    pts = c["data"]["points"]
    m = {}
    for i, name in enumerate(labels):
        xyz = pts[:3, i, :].T / 1000.0
        xyz[pts[3, i, :] < 0] = np.nan  # residual -1: invalid
        m[name] = xyz
    ev = par.get("EVENT", {})
    times = np.asarray(ev["TIMES"]["value"]).T.reshape(-1, 2)[:, 1] if ev else []
    ev = ev or {"CONTEXTS": {"value": []}, "LABELS": {"value": []}}
    events = list(zip(ev["CONTEXTS"]["value"], ev["LABELS"]["value"], times, strict=True))
    return m, rate, int(c["header"]["points"]["first_frame"]), events
