"""Lower-limb frontal-plane alignment from marker trajectories: knee FPPA and pelvic drop.

Lab frame (docs/conventions.md): x anterior, y to the subject's left, z up. Marker
trajectories are arrays of shape ``(n_frames, 3)`` in metres.
"""

from __future__ import annotations

import numpy as np

from cxlab._check import check_option
from cxlab.features.measure import Sided

__all__ = [
    "ALIGNMENT_METHODS",
    "ALIGNMENT_UNITS",
    "hip_joint_centres",
    "knee_flexion",
    "knee_fppa",
    "landing_alignment",
    "pelvic_obliquity",
]

ALIGNMENT_UNITS = {
    "knee_fppa_peak_deg": "deg",
    "knee_fppa_at_peak_flexion_deg": "deg",
    "pelvic_drop_peak_deg": "deg",
}
ALIGNMENT_METHODS = {
    "knee_fppa_peak_deg": "FPPA of largest |value| (180 - hip-knee-ankle angle in y-z, + valgus)",
    "knee_fppa_at_peak_flexion_deg": "FPPA at the frame of peak 3-D knee flexion",
    "pelvic_drop_peak_deg": "max drop of this side's ASIS below the other (frontal plane)",
}


def _plane(p: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
    return np.asarray(p, dtype=float)[..., list(axes)]


def knee_fppa(
    hip,
    knee,
    ankle,
    /,
    *,
    side: str,
    vertical_axis: int = 2,
    ml_axis: int = 1,
    left_is_positive: bool = True,
) -> np.ndarray:
    """Knee frontal-plane projection angle per frame, degrees, positive = valgus.

    The hip, knee and ankle centres are projected on the frontal plane (the
    ``ml_axis``–``vertical_axis`` plane); FPPA = 180° − the angle between the thigh
    (knee→hip) and shank (knee→ankle) vectors (Willson & Davis 2008, *J Orthop Sports
    Phys Ther* 38:606). Its sign is positive (valgus) when the knee lies **medial** to the
    hip–ankle line at the knee's height, negative (varus) when lateral. Medial is −y for
    the left leg and +y for the right leg when +y points to the subject's left.

    Parameters
    ----------
    hip, knee, ankle : array_like, shape (n_frames, 3)
        Joint centres (or HJC/KNE/ANK fallbacks), m.
    side : {"left", "right"}
        The leg.
    vertical_axis, ml_axis : int
        Column of the vertical and medio-lateral axis (conventions: 2 and 1).
    left_is_positive : bool
        Whether + ``ml_axis`` points to the subject's left (conventions: True).

    Returns
    -------
    ndarray, shape (n_frames,)
        FPPA, degrees; NaN where a marker is missing.
    """
    check_option("side", side, ("left", "right"))
    ax = (ml_axis, vertical_axis)
    h, k, a = _plane(hip, ax), _plane(knee, ax), _plane(ankle, ax)
    u, w = h - k, a - k
    cosang = (u * w).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1))
    mag = 180.0 - np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0)))
    frac = (k[..., 1] - h[..., 1]) / (a[..., 1] - h[..., 1])
    offset = k[..., 0] - (h[..., 0] + frac * (a[..., 0] - h[..., 0]))
    medial = (-1.0 if side == "left" else 1.0) * (1.0 if left_is_positive else -1.0)
    return np.where(offset * medial >= 0, mag, -mag)


def knee_flexion(hip, knee, ankle, /) -> np.ndarray:
    """3-D knee flexion per frame: 180° − angle(knee→hip, knee→ankle), degrees."""
    u = np.asarray(hip, float) - np.asarray(knee, float)
    w = np.asarray(ankle, float) - np.asarray(knee, float)
    c = (u * w).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1))
    return 180.0 - np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def pelvic_obliquity(lasi, rasi, /, *, vertical_axis: int = 2, ml_axis: int = 1) -> np.ndarray:
    """Pelvic obliquity per frame, degrees, positive when the **left** ASIS is higher.

    ``atan2(z_LASI − z_RASI, |y_LASI − y_RASI|)`` in the frontal plane.

    Parameters
    ----------
    lasi, rasi : array_like, shape (n_frames, 3)
        Anterior superior iliac spine markers, m.

    Returns
    -------
    ndarray, shape (n_frames,)
    """
    lv, rv = np.asarray(lasi, float), np.asarray(rasi, float)
    dz = lv[..., vertical_axis] - rv[..., vertical_axis]
    dy = np.abs(lv[..., ml_axis] - rv[..., ml_axis])
    return np.degrees(np.arctan2(dz, dy))


def landing_alignment(
    markers: dict,
    /,
    *,
    start: int = 0,
    stop: int | None = None,
    hip=("LHJC", "RHJC"),
    knee=("LKJC", "RKJC"),
    ankle=("LAJC", "RAJC"),
    asis=("LASI", "RASI"),
) -> dict[str, Sided]:
    """Peak knee FPPA, FPPA at peak knee flexion and peak pelvic drop of one landing.

    Parameters
    ----------
    markers : dict of str to ndarray, shape (n_frames, 3)
        Trajectories in m, lab frame; needs the named hip, knee and ankle markers
        (left, right) and the two ASIS markers.
    start, stop : int
        Frame range of the landing (touchdown to end of the landing phase).
    hip, knee, ankle, asis : (str, str)
        Left and right marker names.

    Returns
    -------
    dict of str to Sided
        Each value per limb (:class:`~cxlab.features.measure.Sided`, ``.left`` /
        ``.right``): ``knee_fppa_peak_deg``: the FPPA of largest magnitude in the window,
        signed (deg, + valgus; a varus knee has a negative peak),
        ``knee_fppa_at_peak_flexion_deg`` (deg) and
        ``pelvic_drop_peak_deg``: the largest angle by which that side's ASIS
        falls below the other (``−obliquity`` for left, ``+obliquity`` for right; deg;
        negative if it never drops). All NaN-aware over the window.
    """
    sl = slice(start, stop)
    peak, at_flexion = [], []
    for i, side in enumerate(("left", "right")):
        h, k, a = (markers[n[i]][sl] for n in (hip, knee, ankle))
        fppa = knee_fppa(h, k, a, side=side)
        flex = knee_flexion(h, k, a)
        peak.append(float(fppa[np.nanargmax(np.abs(fppa))]))
        at_flexion.append(float(fppa[np.nanargmax(flex)]))
    obl = pelvic_obliquity(markers[asis[0]][sl], markers[asis[1]][sl])
    return {
        "knee_fppa_peak_deg": Sided(*peak),
        "knee_fppa_at_peak_flexion_deg": Sided(*at_flexion),
        "pelvic_drop_peak_deg": Sided(float(np.nanmax(-obl)), float(np.nanmax(obl))),
    }


def hip_joint_centres(lasi, rasi, lpsi, rpsi, /) -> tuple[np.ndarray, np.ndarray]:
    """Left and right hip joint centres from pelvic markers (Harrington et al. 2007).

    Harrington, Zavatsky, Lawson, Yuan & Theologis (2007), *J Biomech* 40:595, regression
    on pelvic width ``PW = |LASI − RASI|`` and depth ``PD = |mid-ASIS − mid-PSIS|`` (m) in
    the pelvis frame (origin mid-ASIS, x anterior, y left, z up):
    ``x = −0.24 PD − 0.0099``, ``y = ±(0.33 PW + 0.0073)`` (+ left), ``z = −0.30 PW − 0.0109``.

    Parameters
    ----------
    lasi, rasi, lpsi, rpsi : array_like, shape (n_frames, 3)
        Pelvic markers, m, lab frame.

    Returns
    -------
    (ndarray, ndarray), each shape (n_frames, 3)
        Left and right hip joint centres, m.
    """
    la, ra, lp, rp = (np.asarray(m, float) for m in (lasi, rasi, lpsi, rpsi))
    mid_a, mid_p = (la + ra) / 2, (lp + rp) / 2
    y = la - ra
    pw = np.linalg.norm(y, axis=-1, keepdims=True)
    y = y / pw
    x = mid_a - mid_p
    pd_ = np.linalg.norm(x, axis=-1, keepdims=True)
    x = x - (x * y).sum(-1, keepdims=True) * y
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    z = np.cross(x, y)
    base = mid_a + (-0.24 * pd_ - 0.0099) * x + (-0.30 * pw - 0.0109) * z
    lat = (0.33 * pw + 0.0073) * y
    return base + lat, base - lat
