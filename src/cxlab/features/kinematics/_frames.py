"""PiG segment frames and joint centres from markers (Davis 1991; PiG reference guide)."""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from cxlab._check import check_option, message, warn
from cxlab.features.events import FeatureError
from cxlab.features.kinematics._subject import _PREFIX, _SIDES, PigSubject, Side
from cxlab.io.recording import Recording

# Davis et al. (1991) hip-centre regression constants (PiG reference guide).
_DAVIS_THETA_RAD = 0.5
_DAVIS_BETA_RAD = 0.314


class SegmentFrames(NamedTuple):
    """Segment poses, each an (n_frames, 3, 3) array whose columns are the X, Y, Z axes.

    ``pelvis``, ``progression`` (lab-fixed, X along the direction of progression, Z up)
    and per-side dicts ``thigh``, ``tibia``, ``foot`` (the offset-corrected foot) keyed
    by side; ``centres`` maps ``"hip"/"knee"/"ankle"`` and side to (n_frames, 3) joint
    centres in mm.
    """

    pelvis: np.ndarray
    progression: np.ndarray
    thigh: dict[Side, np.ndarray]
    tibia: dict[Side, np.ndarray]
    foot: dict[Side, np.ndarray]
    centres: dict[tuple[str, Side], np.ndarray]


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _frame_from(z: np.ndarray, y_hint: np.ndarray) -> np.ndarray:
    """Right-handed frame with Z along ``z`` and Y as close to ``y_hint`` as possible."""
    z = _unit(z)
    x = _unit(np.cross(y_hint, z))
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def _rotate_about(v: np.ndarray, axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues rotation of vectors ``v`` (n, 3) about unit ``axis`` (n, 3)."""
    if angle_rad == 0:
        return v
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    dot = np.sum(axis * v, axis=-1, keepdims=True)
    return v * c + np.cross(axis, v) * s + axis * dot * (1 - c)


def _chord(
    offset_mm: float,
    marker: np.ndarray,
    wand: np.ndarray,
    centre: np.ndarray,
    *,
    rotation_deg: float = 0.0,
) -> np.ndarray:
    """PiG chord function, solved in closed form on all frames.

    Returns ``J`` (n, 3) with ``|J - marker| = offset_mm``, angle ``centre-J-marker`` =
    90°, ``J`` in the plane (marker, wand, centre) on the side away from the wand,
    the plane turned by ``rotation_deg`` about the marker→centre line.

    In the right triangle marker–J–centre, the angle at the marker has cosine
    ``offset / |centre - marker|`` (Thales), which fixes J without iteration.
    """
    u = _unit(centre - marker)
    d = np.linalg.norm(centre - marker, axis=-1, keepdims=True)
    w = wand - marker
    v = _unit(w - np.sum(w * u, axis=-1, keepdims=True) * u)
    v = _rotate_about(-v, u, np.radians(rotation_deg))
    with np.errstate(invalid="ignore"):
        cos_a = offset_mm / d
        sin_a = np.sqrt(1.0 - cos_a**2)
    return marker + offset_mm * (cos_a * u + sin_a * v)


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _strip(label: str) -> str:
    return label.rsplit(":", 1)[-1].strip().upper()


def _marker_getter(recording: Recording):
    """Function label -> (n_frames, 3) mm, or None; labels may carry ``Subject:``."""
    index: dict[str, int] = {}
    for i, lab in enumerate(recording.marker_labels):
        index.setdefault(_strip(lab), i)

    def get(name: str) -> np.ndarray | None:
        i = index.get(name.upper())
        if i is None:
            return None
        pts = np.asarray(recording.markers[:, i, :], dtype=float) * 1000.0
        return pts if np.isfinite(pts).any() else None

    return get


def _progression_frame(pelvis: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Lab-fixed frame whose X is the direction of progression (±lab X or ±lab Y).

    The lab horizontal axis along which the pelvis travelled most between its first and
    last valid frames, signed by the travel (PiG reference guide, "Progression
    direction"). When it travelled less than ``_STILL_MM`` (a static trial, a squat, a
    jump) the lab frame itself: that is what Nexus stored for the single-frame static
    ``btk_PiG_Calibration-FlatFoot-One.c3d``, whose subject faces lab −Y but whose
    pelvis rotation Nexus reports as 90°.
    """
    ok = np.isfinite(origin).all(axis=1)
    direction = np.array([1.0, 0.0])
    if ok.sum() >= 2:
        idx = np.flatnonzero(ok)
        travel = (origin[idx[-1]] - origin[idx[0]])[:2]
        if np.hypot(*travel) >= _STILL_MM:
            direction = travel
    k = int(np.argmax(np.abs(direction)))
    x = np.zeros(3)
    x[k] = np.sign(direction[k])
    z = np.array([0.0, 0.0, 1.0])
    frame = np.stack([x, np.cross(z, x), z], axis=-1)
    return np.broadcast_to(frame, pelvis.shape)


_STILL_MM = 500.0


FootFrame = Literal["corrected", "uncorrected", "static"]


def pig_segment_frames(
    recording: Recording,
    /,
    *,
    subject: PigSubject,
    foot: FootFrame = "corrected",
    flat_foot: bool = True,
) -> SegmentFrames:
    """PiG segment frames and joint centres from the recording's markers.

    Parameters
    ----------
    recording : Recording
        Needs LASI, RASI and SACR or both PSIS; per leg THI, KNE, TIB, ANK, TOE. A leg
        missing one of them gets all-NaN frames.
    subject : PigSubject
    foot : {"corrected", "uncorrected", "static"}
        Which foot frame: the uncorrected foot (Z from TOE to AJC, Y from the tibia)
        turned by the subject's static offsets (a motion trial); the uncorrected foot
        itself; or the static-trial foot (Z from TOE to HEE, Y from the tibia), which
        is what Nexus reports for a static trial.
    flat_foot : bool
        For ``foot="static"``: the heel taken at the toe's height (Nexus "foot flat").

    Returns
    -------
    SegmentFrames

    Raises
    ------
    FeatureError
        If the pelvis markers are absent.
    """
    check_option("foot", foot, ("corrected", "uncorrected", "static"))
    get = _marker_getter(recording)
    src = recording.meta.get("source", "recording")
    lasi, rasi = get("LASI"), get("RASI")
    sacr = get("SACR")
    lpsi, rpsi = get("LPSI"), get("RPSI")
    if sacr is None and lpsi is not None and rpsi is not None:
        sacr = (lpsi + rpsi) / 2
    if lasi is None or rasi is None or sacr is None:
        raise FeatureError(
            message(
                "no Plug-in Gait pelvis markers with data",
                file=str(src),
                field="POINT:LABELS",
                value=[
                    m for m, v in (("LASI", lasi), ("RASI", rasi), ("SACR/PSIS", sacr)) if v is None
                ],
                fix="label the pelvis markers LASI, RASI and SACR or LPSI/RPSI",
            )
        )
    n = recording.n_frames
    origin = (lasi + rasi) / 2
    y = _unit(lasi - rasi)
    x = origin - sacr
    x = _unit(x - np.sum(x * y, axis=-1, keepdims=True) * y)
    pelvis = np.stack([x, y, np.cross(x, y)], axis=-1)

    # Davis et al. (1991): hip centre in the pelvis frame.
    inter_asis = subject.inter_asis_mm or float(np.nanmean(np.linalg.norm(lasi - rasi, axis=1)))
    mean_leg = (subject.left.leg_length_mm + subject.right.leg_length_mm) / 2
    c = 0.115 * mean_leg - 15.3
    r = subject.marker_diameter_mm / 2
    th, be = _DAVIS_THETA_RAD, _DAVIS_BETA_RAD
    nan = np.full((n, 3, 3), np.nan)
    thigh, tibia, feet, centres = {}, {}, {}, {}
    for side in _SIDES:
        leg = subject.leg(side)
        sgn = 1.0 if side == "left" else -1.0
        at = leg.asis_trochanter_mm or (0.1288 * leg.leg_length_mm - 48.56)
        local = np.array(
            [
                c * np.cos(th) * np.sin(be) - (at + r) * np.cos(be),
                sgn * (inter_asis / 2 - c * np.sin(th)),
                -c * np.cos(th) * np.cos(be) - (at + r) * np.sin(be),
            ]
        )
        hjc = origin + np.einsum("fij,j->fi", pelvis, local)
        centres["hip", side] = hjc
        p = _PREFIX[side]
        thi, kne, tib, ank, toe = (get(p + m) for m in ("THI", "KNE", "TIB", "ANK", "TOE"))
        if any(m is None for m in (thi, kne, tib, ank, toe)):
            thigh[side] = tibia[side] = feet[side] = nan
            centres["knee", side] = centres["ankle", side] = np.full((n, 3), np.nan)
            continue
        for name, value in (
            ("ThighRotation", leg.thigh_rotation_deg),
            ("ShankRotation", leg.shank_rotation_deg),
            ("TibialTorsion", leg.tibial_torsion_deg),
        ):
            if value:
                warn(
                    f"{side} {name} {value:.2f} deg applied; only 0 was validated "
                    "against Vicon output",
                    file=str(src),
                    field=f"PROCESSING:{p}{name}",
                )
        kjc = _chord(
            (leg.knee_width_mm + subject.marker_diameter_mm) / 2,
            kne,
            thi,
            hjc,
            rotation_deg=sgn * leg.thigh_rotation_deg,
        )
        ajc = _chord(
            (leg.ankle_width_mm + subject.marker_diameter_mm) / 2,
            ank,
            tib,
            kjc,
            rotation_deg=sgn * leg.shank_rotation_deg,
        )
        centres["knee", side], centres["ankle", side] = kjc, ajc
        thigh[side] = _frame_from(hjc - kjc, sgn * (kne - kjc))
        tib_frame = _frame_from(kjc - ajc, sgn * (ank - ajc))
        if leg.tibial_torsion_deg:
            tib_frame = tib_frame @ _rot_z_deg(-sgn * leg.tibial_torsion_deg)
        tibia[side] = tib_frame
        if foot == "static":
            hee = get(p + "HEE")
            if hee is None:
                raise FeatureError(
                    message(
                        "static trial lacks the heel marker",
                        file=str(src),
                        field=f"{p}HEE",
                        fix="label the heel markers LHEE/RHEE",
                    )
                )
            if flat_foot:
                hee = hee.copy()
                hee[:, 2] = toe[:, 2]
            feet[side] = _frame_from(hee - toe, tib_frame[..., 1])
            continue
        unc = _frame_from(ajc - toe, tib_frame[..., 1])
        if foot == "uncorrected":
            feet[side] = unc
            continue
        pf = leg.static_plantar_flexion_deg or 0.0
        ro = leg.static_rotation_offset_deg or 0.0
        feet[side] = unc @ (_rot_y(-np.radians(pf)) @ _rot_x(-sgn * np.radians(ro)))
    return SegmentFrames(
        pelvis=pelvis,
        progression=_progression_frame(pelvis, origin),
        thigh=thigh,
        tibia=tibia,
        foot=feet,
        centres=centres,
    )


def _rot_z_deg(a_deg: float) -> np.ndarray:
    a = np.radians(a_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


_PIG_PELVIS = ("LASI", "RASI")
_PIG_LEG = ("THI", "KNE", "TIB", "ANK", "TOE")


def has_pig_markers(labels, /) -> bool:
    """Whether ``labels`` (``Subject:`` prefixes allowed) hold a PiG lower-body set for at
    least one leg: LASI, RASI, SACR or both PSIS, and THI, KNE, TIB, ANK, TOE."""
    names = {_strip(str(lab)) for lab in labels}
    pelvis = set(_PIG_PELVIS) <= names and ("SACR" in names or {"LPSI", "RPSI"} <= names)
    return pelvis and any({p + m for m in _PIG_LEG} <= names for p in ("L", "R"))


def recording_from_markers(markers: dict, /, *, rate_hz: float) -> Recording:
    """A markers-only :class:`Recording` from ``{label: (n_frames, 3) array in m}``."""
    labels = sorted(markers)
    n = max((np.asarray(markers[k]).shape[0] for k in labels), default=0)
    pts = np.full((n, len(labels), 3), np.nan)
    for i, k in enumerate(labels):
        a = np.asarray(markers[k], dtype=float)
        pts[: a.shape[0], i] = a
    return Recording(
        markers=pts,
        marker_labels=labels,
        residuals=np.full((n, len(labels)), np.nan),
        point_rate_hz=float(rate_hz),
        analogs=np.zeros((0, 0)),
        analog_labels=[],
        analog_units=[],
        analog_rate_hz=float("nan"),
    )
