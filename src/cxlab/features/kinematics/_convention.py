"""Which Vicon convention a file's model outputs follow: Nexus' Plug-in Gait or the older
Vicon Clinical Manager (VCM), decided from the evidence the file carries.

Evidence, strongest first (:func:`convention_from_evidence`):

1. **The stored ankle angles themselves.** A file holding PiG outputs usually also holds
   the model's own segment frames as virtual markers (``LTIO/LTIA/LTIL/LTIP`` for the
   tibia, ``LFO*`` for the foot, ``LTO*`` for the toe segment). Nexus' ``LAnkleAngles``
   are Cardan Y-X'-Z'' of the foot (``FO``) in the tibia; VCM's are Y-Z'-X'' of the toe
   segment (``TO``) in the tibia (pinned in tests/test_kinematics.py). Whichever of the
   two reproduces the stored angles -- to within 1 deg RMS, at least 3 times closer than
   the other -- is the file's convention.
2. ``MANUFACTURER:SOFTWARE`` naming Vicon Nexus: ``"nexus"``.
3. ``SUBJECTS:MARKER_SETS`` naming a VCM marker set (``VCMautolabel``, as Vicon 370 /
   Clinical Manager wrote it): ``"vcm"``.
4. Nothing of the above: ``"nexus"``, the convention of nearly all published PiG data.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cxlab.features.kinematics._subject import _PREFIX, _SIDES

#: ankle angles must be reproduced to this RMS (deg) by the winning decomposition ...
_MATCH_DEG = 1.0
#: ... and the other must be at least this many times further off
_MARGIN = 3.0


class ConventionChoice(NamedTuple):
    """The convention a recording's cxlab-pig angles and moments use, and why.

    Attributes
    ----------
    convention : {"nexus", "vcm"}
    reason : str
        The evidence, in words (for the recording's note and the feature's method text).
    """

    convention: str
    reason: str


def _frame(get, seg: str) -> np.ndarray | None:
    """A segment frame (n, 3, 3; columns X, Y, Z) from its O/A/L/P virtual markers,
    re-orthonormalised by Gram-Schmidt from X and Y (int16 files quantise the points;
    NaN where Vicon wrote none)."""
    o, a, lat, p = (get(seg + k) for k in "OALP")
    if any(v is None for v in (o, a, lat, p)):
        return None
    ok = np.isfinite(o).all(axis=1) & (np.abs(o).sum(axis=1) > 0)
    if not ok.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        x = a - o
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        y = lat - o
        y = y - np.sum(y * x, axis=1, keepdims=True) * x
        y = y / np.linalg.norm(y, axis=1, keepdims=True)
        z = np.cross(x, y)
        z = np.where(np.sum(z * (p - o), axis=1, keepdims=True) < 0, np.nan, z)  # not right-handed
    out = np.stack([x, y, z], axis=-1)
    out[~ok] = np.nan
    return out


def _rms(got: np.ndarray, ref: np.ndarray) -> float:
    if got.shape[0] != ref.shape[0] or ref.ndim != 2 or ref.shape[1] != 3:
        return float("nan")  # outputs not frame-aligned with the markers: no evidence
    ok = np.isfinite(got).all(axis=1) & np.isfinite(ref).all(axis=1) & (np.abs(ref).sum(axis=1) > 0)
    if ok.sum() < 3:
        return float("nan")
    d = (got[ok] - ref[ok] + 180.0) % 360.0 - 180.0
    return float(np.sqrt(np.mean(d**2, axis=0)).max())


def _from_ankle_angles(get, ankle: dict) -> ConventionChoice | None:
    """Rule 1: which decomposition of the file's own segment markers gives its angles."""
    from cxlab.features.kinematics import cardan_angles

    fits: dict[str, list[float]] = {"nexus": [], "vcm": []}
    for side in _SIDES:
        ref = ankle.get(side)
        p = _PREFIX[side]
        tibia, foot, toe = (_frame(get, p + s) for s in ("TI", "FO", "TO"))
        if ref is None or tibia is None:
            continue
        for conv, seg in (("nexus", foot), ("vcm", toe)):
            if seg is not None:
                got = cardan_angles(tibia, seg, joint="ankle", side=side, convention=conv)
                fits[conv].append(_rms(got, np.asarray(ref, dtype=float)))
    worst = {c: max(v) if v and np.isfinite(v).all() else float("inf") for c, v in fits.items()}
    for conv, other in (("nexus", "vcm"), ("vcm", "nexus")):
        if worst[conv] <= _MATCH_DEG and worst[other] >= _MARGIN * max(worst[conv], 0.05):
            order = "Y-X'-Z'' of its foot" if conv == "nexus" else "Y-Z'-X'' of its toe segment"
            return ConventionChoice(
                conv,
                f"the file's stored ankle angles are {order} in its tibia "
                f"(RMS {worst[conv]:.2f} deg, the other convention {worst[other]:.2f} deg)",
            )
    return None


def convention_from_evidence(
    *,
    markers: dict | None = None,
    ankle_angles: dict | None = None,
    software: str | None = None,
    marker_sets: tuple[str, ...] | list[str] = (),
) -> ConventionChoice:
    """The Vicon convention of a recording from what it carries (module docstring).

    Parameters
    ----------
    markers : dict of str to ndarray, shape (n_frames, 3), optional
        Points by label (``Subject:`` prefixes allowed, any length unit), including the
        model's segment virtual markers (``LTIO`` ...) when the file has them.
    ankle_angles : dict of side to ndarray, shape (n_frames, 3), optional
        The stored ``LAnkleAngles`` / ``RAnkleAngles``, deg (0, 0, 0 = no output).
    software : str, optional
        ``MANUFACTURER:SOFTWARE`` (or the store's ``recordings.vendor``).
    marker_sets : sequence of str
        ``SUBJECTS:MARKER_SETS``.

    Returns
    -------
    ConventionChoice
    """
    from cxlab.features.kinematics._frames import _strip

    index = {_strip(str(k)): v for k, v in (markers or {}).items()}

    def get(name: str) -> np.ndarray | None:
        v = index.get(name)
        if v is None:
            return None
        v = np.asarray(v, dtype=float)
        return v if np.isfinite(v).any() else None

    if ankle_angles:
        found = _from_ankle_angles(get, ankle_angles)
        if found is not None:
            return found
    if software and "nexus" in str(software).lower():
        return ConventionChoice("nexus", f"MANUFACTURER:SOFTWARE is {software!r}")
    vcm_sets = [m for m in marker_sets if "vcm" in str(m).lower()]
    if vcm_sets:
        return ConventionChoice(
            "vcm", f"SUBJECTS:MARKER_SETS is {vcm_sets[0]!r} (Vicon Clinical Manager)"
        )
    return ConventionChoice(
        "nexus", "default: nothing in the file points to Vicon Clinical Manager"
    )


def detect_convention(recording, /) -> ConventionChoice:
    """:func:`convention_from_evidence` on a :class:`~cxlab.io.Recording` read from a file:
    its markers, its stored ``<L|R>AnkleAngles`` (``model_outputs``), and the C3D
    ``MANUFACTURER:SOFTWARE`` and ``SUBJECTS:MARKER_SETS`` parameters.

    Returns
    -------
    ConventionChoice
    """
    markers = {lab: recording.markers[:, i] for i, lab in enumerate(recording.marker_labels)}
    ankle = {}
    outputs = recording.model_outputs
    if outputs is not None:
        for side in _SIDES:
            name = _PREFIX[side] + "AnkleAngles"
            hits = [i for i, lab in enumerate(outputs.labels) if lab.rsplit(":", 1)[-1] == name]
            if hits:
                ankle[side] = outputs.values[:, hits[0]]
    params = recording.meta.get("parameters") or {}
    sets = (params.get("SUBJECTS") or {}).get("MARKER_SETS") or ()
    if isinstance(sets, str):
        sets = (sets,)
    return convention_from_evidence(
        markers=markers,
        ankle_angles=ankle,
        software=recording.meta.get("software") or None,
        marker_sets=tuple(str(s) for s in sets),
    )
