"""Static posture from a standing trial: craniovertebral angle, shoulder protraction, pelvic tilt.

Each marker is reduced to its median position over the trial's frames (robust to brief
noise), then the angles are computed in the sagittal plane (lab x anterior, z up).
"""

from __future__ import annotations

import numpy as np

from cxlab.features.events import FeatureError
from cxlab.features.measure import Sided

__all__ = ["POSTURE_METHODS", "POSTURE_UNITS", "craniovertebral_angle", "posture_metrics"]

POSTURE_UNITS = {"cva_deg": "deg", "shoulder_protraction_m": "m", "pelvic_tilt_deg": "deg"}
POSTURE_METHODS = {
    "cva_deg": "angle at C7 between horizontal and C7->tragus, sagittal (Yip 2008)",
    "shoulder_protraction_m": "acromion x - C7 x (anterior positive), median over frames",
    "pelvic_tilt_deg": "atan2(z_PSIS - z_ASIS, x_ASIS - x_PSIS), mid-points, + anterior",
}


def _median(markers: dict, name: str) -> np.ndarray:
    if name not in markers:
        raise FeatureError(
            f"posture: marker {name!r} is missing; available: {', '.join(sorted(markers))}"
        )
    p = np.nanmedian(np.asarray(markers[name], float).reshape(-1, 3), axis=0)
    if not np.isfinite(p).all():
        raise FeatureError(f"posture: marker {name!r} has no valid frame")
    return p


def craniovertebral_angle(
    c7, tragus, /, *, anterior_axis: int = 0, vertical_axis: int = 2
) -> np.ndarray:
    """Craniovertebral angle, degrees: ``atan2(z_tragus − z_C7, x_tragus − x_C7)``.

    The angle at C7 between the horizontal (pointing anterior) and the line from C7 to
    the tragus, in the sagittal plane (Yip, Chiu & Poon 2008, *Man Ther* 13:148). Lower
    values mean a more forward head; 90° = tragus directly above C7.

    Parameters
    ----------
    c7, tragus : array_like, shape (..., 3)
        Positions, m.

    Returns
    -------
    ndarray or float
    """
    c, t = np.asarray(c7, float), np.asarray(tragus, float)
    return np.degrees(
        np.arctan2(
            t[..., vertical_axis] - c[..., vertical_axis],
            t[..., anterior_axis] - c[..., anterior_axis],
        )
    )


def posture_metrics(markers: dict, /) -> dict[str, float | Sided]:
    """Posture measures of a static standing trial.

    Parameters
    ----------
    markers : dict of str to ndarray, shape (n_frames, 3)
        Needs ``C7``, ``LTRAGUS``/``RTRAGUS`` (either; their mid-point if both),
        ``LSHO``, ``RSHO``, ``LASI``, ``RASI``, ``LPSI``, ``RPSI``; m, lab frame.

    Returns
    -------
    dict of str to float or Sided
        ``cva_deg`` (deg); ``shoulder_protraction_m``: a
        :class:`~cxlab.features.measure.Sided` of each acromion's position anterior to C7
        (m, + anterior); ``pelvic_tilt_deg``: angle of the mid-PSIS → mid-ASIS line
        below horizontal, + anterior tilt (ASIS lower than PSIS), deg.

    Raises
    ------
    FeatureError
        If a required marker is missing.
    """
    c7 = _median(markers, "C7")
    trag = [
        _median(markers, n)
        for n in ("LTRAGUS", "RTRAGUS")
        if n in markers and np.isfinite(np.asarray(markers[n], float)).any()
    ]
    if not trag:
        raise FeatureError("posture: no tragus marker with a valid frame (LTRAGUS or RTRAGUS)")
    out = {"cva_deg": float(craniovertebral_angle(c7, np.mean(trag, axis=0)))}
    out["shoulder_protraction_m"] = Sided(
        *(float(_median(markers, name)[0] - c7[0]) for name in ("LSHO", "RSHO"))
    )
    asis = (_median(markers, "LASI") + _median(markers, "RASI")) / 2
    psis = (_median(markers, "LPSI") + _median(markers, "RPSI")) / 2
    out["pelvic_tilt_deg"] = float(np.degrees(np.arctan2(psis[2] - asis[2], asis[0] - psis[0])))
    return out
