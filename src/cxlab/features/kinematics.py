"""3-D lower-limb joint angles compatible with Vicon's Plug-in Gait (PiG).

The model follows the Conventional Gait Model as Vicon implements it (Davis et al.
1991; Kadaba et al. 1990; Vicon, *Plug-in Gait Reference Guide*, 2016/2023), as
re-implemented in the open-source pyCGM2 (Leboeuf et al. 2019). Every step below was
checked against the segment-frame virtual markers (``PELO/PELA/PELL/PELP``,
``LFEO...``, ``LTIO...``, ``LFOO...``) that Vicon Nexus stores in its own output files,
so the frames, joint centres and sign tables are Vicon's, not a guess.

Pipeline (all in mm and in the lab frame, vectorised over frames):

1. Pelvis: origin mid-ASIS, Y from RASI to LASI, X forward in the ASIS–sacrum plane
   (sacrum = SACR or mid-PSIS), Z = X × Y (up).
2. Hip joint centres in the pelvis frame by the Davis et al. (1991) regression from the
   mean leg length, the inter-ASIS distance and the ASIS–trochanter distance
   (regressed from leg length, 0.1288 L − 48.56 mm, when not measured).
3. Knee and ankle joint centres by PiG's *chord function*: the centre ``J`` lies in the
   plane of the proximal joint centre, the wand marker and the lateral marker, at
   ``(width + marker diameter) / 2`` from the lateral marker, with the angle
   proximal-centre – ``J`` – marker a right angle (Vicon reference guide, "Chord function").
4. Thigh (origin KJC, Z to HJC, Y toward KNE on the left / away on the right),
   tibia (origin AJC, Z to KJC, Y from ANK), uncorrected foot (Z from TOE to AJC, Y from
   the tibia's Y), then the foot rotated by the static plantar-flexion and rotation
   offsets (``StaticPlantFlex`` about Y, then ``StaticRotOff`` about X).
5. Angles: Cardan Y-X-Z (flexion, adduction, rotation) of the distal segment in the
   proximal one (hip, knee, ankle), of the pelvis in the progression frame, and of the
   foot in the progression frame (foot progression), with the component order and signs
   of PiG's ``LHipAngles``, ``LKneeAngles``, ... (:data:`PIG_SIGNS`).

The ISB convention (Wu et al. 2002) uses the same Y-X-Z idea with different segment
frames and is not implemented; ``model`` accepts only ``"pig"``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, InputFormatError, check_option, message, warn
from cxlab.features.events import FeatureError
from cxlab.io.recording import Recording

__all__ = [
    "ANGLE_COLUMNS",
    "JOINTS",
    "PIG_SIGNS",
    "LegMeasurements",
    "PigSubject",
    "SegmentFrames",
    "cardan_angles",
    "has_pig_markers",
    "joint_angles",
    "pig_segment_frames",
    "pig_subject",
    "read_pig_measurements",
    "recording_from_markers",
    "static_foot_offsets",
]

Side = Literal["left", "right"]
Joint = Literal["pelvis", "hip", "knee", "ankle", "foot_progression"]
JOINTS: tuple[Joint, ...] = ("pelvis", "hip", "knee", "ankle", "foot_progression")
ANGLE_COLUMNS = ("flexion_deg", "adduction_deg", "internal_rotation_deg")

# Davis et al. (1991) hip-centre regression constants (PiG reference guide).
_DAVIS_THETA_RAD = 0.5
_DAVIS_BETA_RAD = 0.314


class _Component(NamedTuple):
    euler: int  # index into the Y-X-Z Cardan angles (0 = about Y, 1 = X', 2 = Z'')
    sign: int
    offset_deg: float


# PiG output component k (x = flexion, y = adduction, z = rotation) as
# sign * cardan_YXZ[euler] + offset, per joint and side. Pinned against the angles and
# segment-frame virtual markers Vicon Nexus stored in btk_PiG_Motion-FlatFoot-Full.c3d
# (agreement 2e-5 deg; tests/test_kinematics.py::test_cardan_table_reproduces_pig_angles).
PIG_SIGNS: dict[tuple[Joint, Side], tuple[_Component, _Component, _Component]] = {
    ("hip", "left"): (_Component(0, -1, 0), _Component(1, -1, 0), _Component(2, -1, 0)),
    ("hip", "right"): (_Component(0, -1, 0), _Component(1, 1, 0), _Component(2, 1, 0)),
    ("knee", "left"): (_Component(0, 1, 0), _Component(1, -1, 0), _Component(2, -1, 0)),
    ("knee", "right"): (_Component(0, 1, 0), _Component(1, 1, 0), _Component(2, 1, 0)),
    ("ankle", "left"): (_Component(0, -1, -90), _Component(2, -1, 0), _Component(1, -1, 0)),
    ("ankle", "right"): (_Component(0, -1, -90), _Component(2, 1, 0), _Component(1, 1, 0)),
    ("pelvis", "left"): (_Component(0, 1, 0), _Component(1, 1, 0), _Component(2, -1, 0)),
    ("pelvis", "right"): (_Component(0, 1, 0), _Component(1, -1, 0), _Component(2, 1, 0)),
    ("foot_progression", "left"): (_Component(0, 1, 0), _Component(2, 1, 0), _Component(1, -1, 0)),
    ("foot_progression", "right"): (_Component(0, 1, 0), _Component(2, -1, 0), _Component(1, 1, 0)),
}
_SIDES: tuple[Side, ...] = ("left", "right")
_PREFIX = {"left": "L", "right": "R"}


@dataclass(frozen=True)
class LegMeasurements:
    """One leg's PiG subject measurements (the Nexus subject-parameter names in brackets).

    Attributes
    ----------
    leg_length_mm : float
        ASIS to medial malleolus through the knee [``LegLength``], mm.
    knee_width_mm, ankle_width_mm : float
        Medio-lateral widths across the femoral epicondyles and the malleoli
        [``KneeWidth``, ``AnkleWidth``], mm.
    asis_trochanter_mm : float or None
        [``AsisTrocanterDistance``], mm; None or 0 uses Davis' regression
        ``0.1288 * leg_length_mm - 48.56``.
    thigh_rotation_deg, shank_rotation_deg, tibial_torsion_deg : float
        [``ThighRotation``, ``ShankRotation``, ``TibialTorsion``], deg. Only 0 was
        validated against Vicon output; a non-zero value is applied and warned about.
    static_plantar_flexion_deg, static_rotation_offset_deg : float or None
        Foot offsets from the static trial [``StaticPlantFlex``, ``StaticRotOff``, stored
        by Nexus in radians], deg; None when unknown (then pass ``static=`` to
        :func:`joint_angles`).
    """

    leg_length_mm: float
    knee_width_mm: float
    ankle_width_mm: float
    asis_trochanter_mm: float | None = None
    thigh_rotation_deg: float = 0.0
    shank_rotation_deg: float = 0.0
    tibial_torsion_deg: float = 0.0
    static_plantar_flexion_deg: float | None = None
    static_rotation_offset_deg: float | None = None


@dataclass(frozen=True)
class PigSubject:
    """A subject's PiG measurements.

    Attributes
    ----------
    left, right : LegMeasurements
    body_mass_kg : float or None
        [``Bodymass``], kg.
    height_mm : float or None
        [``Height``], mm.
    inter_asis_mm : float or None
        [``InterAsisDistance``], mm; None or 0 measures it from the ASIS markers
        (mean over frames), as PiG does.
    marker_diameter_mm : float
        Marker diameter, mm (Nexus default 14 mm; not stored in C3D files).
    """

    left: LegMeasurements
    right: LegMeasurements
    body_mass_kg: float | None = None
    height_mm: float | None = None
    inter_asis_mm: float | None = None
    marker_diameter_mm: float = 14.0

    def leg(self, side: Side) -> LegMeasurements:
        return self.left if side == "left" else self.right


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


# --------------------------------------------------------------------------- subject


def _processing_value(group: dict, key: str) -> float | None:
    for k, v in group.items():
        if k.upper() == key.upper():
            arr = np.atleast_1d(np.asarray(v, dtype=float))
            return float(arr[0]) if arr.size else None
    return None


def pig_subject(recording: Recording, /, *, marker_diameter_mm: float = 14.0) -> PigSubject | None:
    """The PiG measurements stored in the recording's C3D ``PROCESSING`` group.

    Parameters
    ----------
    recording : Recording
    marker_diameter_mm : float
        Marker diameter, mm (not stored by Nexus in the C3D).

    Returns
    -------
    PigSubject or None
        None when the file has no ``PROCESSING`` group or no positive leg length and
        knee and ankle widths for both legs (e.g. a static trial saved before the
        model ran).
    """
    group = (recording.meta.get("parameters") or {}).get("PROCESSING")
    if not group:
        return None

    def get(key: str) -> float | None:
        return _processing_value(group, key)

    legs = {}
    for side in _SIDES:
        p = _PREFIX[side]
        need = [get(p + k) for k in ("LegLength", "KneeWidth", "AnkleWidth")]
        if any(v is None or not np.isfinite(v) or v <= 0 for v in need):
            return None
        pf, ro = get(p + "StaticPlantFlex"), get(p + "StaticRotOff")
        legs[side] = LegMeasurements(
            leg_length_mm=need[0],
            knee_width_mm=need[1],
            ankle_width_mm=need[2],
            asis_trochanter_mm=get(p + "AsisTrocanterDistance") or None,
            thigh_rotation_deg=get(p + "ThighRotation") or 0.0,
            shank_rotation_deg=get(p + "ShankRotation") or 0.0,
            tibial_torsion_deg=get(p + "TibialTorsion") or 0.0,
            static_plantar_flexion_deg=None if pf is None else float(np.degrees(pf)),
            static_rotation_offset_deg=None if ro is None else float(np.degrees(ro)),
        )
    return PigSubject(
        left=legs["left"],
        right=legs["right"],
        body_mass_kg=get("Bodymass") or None,
        height_mm=get("Height") or None,
        inter_asis_mm=get("InterAsisDistance") or None,
        marker_diameter_mm=marker_diameter_mm,
    )


# --------------------------------------------------------------------------- geometry


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
                "no Plug-in Gait pelvis markers",
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


# --------------------------------------------------------------------------- angles


def cardan_angles(
    proximal: np.ndarray, distal: np.ndarray, /, *, joint: Joint, side: Side
) -> np.ndarray:
    """PiG joint angles of ``distal`` relative to ``proximal``.

    Parameters
    ----------
    proximal, distal : ndarray, shape (n_frames, 3, 3)
        Segment frames, columns = X (anterior), Y (left), Z (proximal/up) axes in the lab.
    joint : {"pelvis", "hip", "knee", "ankle", "foot_progression"}
    side : {"left", "right"}

    Returns
    -------
    ndarray, shape (n_frames, 3)
        Flexion (dorsiflexion, anterior tilt), adduction (varus, obliquity up) and
        internal rotation, deg, as in PiG's ``<L|R><Joint>Angles``: the Cardan
        Y-X'-Z'' decomposition of ``proximal.T @ distal`` mapped by :data:`PIG_SIGNS`.
    """
    check_option("joint", joint, JOINTS)
    check_option("side", side, _SIDES)
    rel = np.einsum("fji,fjk->fik", proximal, distal)
    a = np.arctan2(rel[:, 0, 2], rel[:, 2, 2])  # about Y
    b = np.arcsin(np.clip(-rel[:, 1, 2], -1.0, 1.0))  # about X'
    c = np.arctan2(rel[:, 1, 0], rel[:, 1, 1])  # about Z''
    euler = np.degrees(np.stack([a, b, c], axis=1))
    out = np.empty_like(euler)
    for k, comp in enumerate(PIG_SIGNS[joint, side]):
        out[:, k] = (comp.sign * euler[:, comp.euler] + comp.offset_deg + 180.0) % 360.0 - 180.0
    return out


def static_foot_offsets(
    static: Recording, /, *, subject: PigSubject, flat_foot: bool = True
) -> PigSubject:
    """``subject`` with each leg's static foot offsets measured on a static trial.

    PiG's static calibration compares the uncorrected foot (Z from TOE to AJC) with the
    foot defined by the HEE→TOE line: the plantar-flexion offset is the rotation about
    the foot's Y axis and the rotation offset the rotation about its X axis between them
    (Vicon PiG reference guide, "Static foot offsets"); with ``flat_foot`` the heel is
    taken at the toe's height, as Nexus's "foot flat" option does.

    Parameters
    ----------
    static : Recording
        A static standing trial with the PiG lower-limb markers and HEE.
    subject : PigSubject
    flat_foot : bool

    Returns
    -------
    PigSubject
        A copy with ``static_plantar_flexion_deg`` and ``static_rotation_offset_deg`` set
        (mean over the static frames), deg.
    """
    unc = pig_segment_frames(static, subject=subject, foot="uncorrected").foot
    stat = pig_segment_frames(static, subject=subject, foot="static", flat_foot=flat_foot).foot
    legs = {}
    for side in _SIDES:
        if not np.isfinite(stat[side]).any():
            raise FeatureError(
                message(
                    f"static trial has no usable {side} foot",
                    field=f"{_PREFIX[side]}HEE/TOE",
                    file=str(static.meta.get("source", "static")),
                    fix="pass a static trial with THI, KNE, TIB, ANK, HEE and TOE markers",
                )
            )
        z_local = np.einsum("fji,fj->fi", unc[side], stat[side][..., 2])
        z_mean = np.nanmean(z_local, axis=0)
        # The corrected foot is unc @ Ry(-pf) @ Rx(-s ro) (pig_segment_frames), so its Z
        # axis in the uncorrected foot is [-sin pf cos ro, s sin ro, cos pf cos ro].
        sgn = 1.0 if side == "left" else -1.0
        z_mean = z_mean / np.linalg.norm(z_mean)
        ro = sgn * np.degrees(np.arcsin(np.clip(z_mean[1], -1, 1)))
        pf = -np.degrees(np.arctan2(z_mean[0], z_mean[2]))
        legs[side] = replace(
            subject.leg(side),
            static_plantar_flexion_deg=float(pf),
            static_rotation_offset_deg=float(ro),
        )
    return replace(subject, left=legs["left"], right=legs["right"])


def joint_angles(
    recording: Recording,
    /,
    *,
    model: str = "pig",
    static: Recording | None = None,
    subject: PigSubject | None = None,
) -> pd.DataFrame:
    """PiG-compatible 3-D joint angles from markers.

    Parameters
    ----------
    recording : Recording
        Plug-in Gait lower-body markers (labels may carry a ``Subject:`` prefix).
        Model outputs stored in the file are never used.
    model : {"pig"}
    static : Recording, optional
        Static trial of the same subject; when given, the foot offsets are measured on
        it (:func:`static_foot_offsets`) instead of read from the subject. Pass the
        recording itself (``joint_angles(st, static=st)``) to process a static trial as
        Nexus does (foot frame from the heel–toe line).
    subject : PigSubject, optional
        Measurements; default read from the recording's ``PROCESSING`` group
        (:func:`pig_subject`).

    Returns
    -------
    DataFrame
        ``frame`` (0-based, int), ``time_s`` (s), ``side`` ("left"/"right"), ``joint``
        (:data:`JOINTS`), ``flexion_deg``, ``adduction_deg``, ``internal_rotation_deg``;
        one row per frame, side and joint, NaN where a marker is missing. Ankle angles
        are dorsiflexion +; pelvis and foot progression are in the progression frame.

    Raises
    ------
    FeatureError
        No subject measurements, or no pelvis markers.
    """
    check_option("model", model, ("pig",))
    src = str(recording.meta.get("source", "recording"))
    if subject is None:
        subject = pig_subject(recording)
    if subject is None:
        raise FeatureError(
            message(
                "no Plug-in Gait subject measurements",
                file=src,
                field="PROCESSING",
                fix="pass subject=PigSubject(...) with leg lengths and knee/ankle widths",
            )
        )
    foot: FootFrame = "corrected"
    if static is recording:
        foot = "static"
    elif static is not None:
        subject = static_foot_offsets(static, subject=subject)
    elif any(subject.leg(s).static_plantar_flexion_deg is None for s in _SIDES):
        warn(
            "no static foot offsets; ankle and foot-progression angles use the uncorrected foot",
            file=src,
            field="PROCESSING:StaticPlantFlex",
            fix="pass static= a static trial",
        )
    frames = pig_segment_frames(recording, subject=subject, foot=foot)
    n = recording.n_frames
    blocks, keys = [], []
    for side in _SIDES:
        pairs = {
            "pelvis": (frames.progression, frames.pelvis),
            "hip": (frames.pelvis, frames.thigh[side]),
            "knee": (frames.thigh[side], frames.tibia[side]),
            "ankle": (frames.tibia[side], frames.foot[side]),
            "foot_progression": (frames.progression, frames.foot[side]),
        }
        for joint in JOINTS:
            prox, dist = pairs[joint]
            blocks.append(cardan_angles(prox, dist, joint=joint, side=side))
            keys.append((side, joint))
    values = np.concatenate(blocks, axis=0)
    frame = np.tile(np.arange(n, dtype=np.int64), len(keys))
    rate = recording.point_rate_hz or np.nan
    return pd.DataFrame(
        {
            "frame": frame,
            "time_s": frame / rate,
            "side": np.repeat([k[0] for k in keys], n),
            "joint": np.repeat([k[1] for k in keys], n),
            "flexion_deg": values[:, 0],
            "adduction_deg": values[:, 1],
            "internal_rotation_deg": values[:, 2],
        }
    )


# --------------------------------------------------------------------------- store helpers

_PIG_PELVIS = ("LASI", "RASI")
_PIG_LEG = ("THI", "KNE", "TIB", "ANK", "TOE")
_MEASUREMENT_COLUMNS = {
    "leg_length_mm",
    "knee_width_mm",
    "ankle_width_mm",
    "asis_trochanter_mm",
    "thigh_rotation_deg",
    "shank_rotation_deg",
    "tibial_torsion_deg",
    "static_plantar_flexion_deg",
    "static_rotation_offset_deg",
}
_SUBJECT_COLUMNS = {"body_mass_kg", "height_mm", "inter_asis_mm", "marker_diameter_mm"}


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


def read_pig_measurements(path, /, *, key: bytes | None = None) -> dict[str, PigSubject]:
    """PiG subject measurements from a lab CSV, keyed by the subjects' pseudonyms.

    One row per subject and side: ``subject`` (the raw label, pseudonymised here with
    :func:`cxlab.pseudo.pseudonymise`, so the store never sees it), ``side``
    (left/right), ``leg_length_mm``, ``knee_width_mm``, ``ankle_width_mm`` and optionally
    ``asis_trochanter_mm``, ``thigh_rotation_deg``, ``shank_rotation_deg``,
    ``tibial_torsion_deg``, ``static_plantar_flexion_deg``, ``static_rotation_offset_deg``
    (per leg) and ``body_mass_kg``, ``height_mm``, ``inter_asis_mm``,
    ``marker_diameter_mm`` (per subject, same on both rows).

    Raises
    ------
    InputFormatError
        Unknown or missing columns, a side other than left/right, a subject without both
        legs, or a required measurement that is not a positive number; every problem is
        named with its row.
    """
    from cxlab.pseudo import pseudonymise

    try:
        df = pd.read_csv(path, dtype={"subject": str, "side": str})
    except (OSError, ValueError) as e:
        raise ConfigError(
            message(
                f"cannot be read as CSV ({e})",
                file=str(path),
                fix="check the path of [kinematics] measurements",
            )
        ) from None
    allowed = {"subject", "side"} | _MEASUREMENT_COLUMNS | _SUBJECT_COLUMNS
    unknown = sorted(set(df.columns) - allowed)
    missing = sorted(
        {"subject", "side", "leg_length_mm", "knee_width_mm", "ankle_width_mm"} - set(df.columns)
    )
    problems = []
    if unknown:
        problems.append(f"unknown column(s) {unknown}")
    if missing:
        problems.append(f"missing column(s) {missing}")
    if not problems:
        for i, row in df.iterrows():
            if row["side"] not in _SIDES:
                problems.append(f"row {i + 2}: side {row['side']!r} is not left/right")
            for c in ("leg_length_mm", "knee_width_mm", "ankle_width_mm"):
                v = pd.to_numeric(row[c], errors="coerce")
                if not (np.isfinite(v) and v > 0):
                    problems.append(f"row {i + 2}: {c} {row[c]!r} is not a positive number")
    if problems:
        raise InputFormatError(
            message(
                "; ".join(problems), file=str(path), fix="see docs/kinematics.md for the columns"
            )
        )
    out = {}
    for label, g in df.groupby("subject", sort=True):
        sides = dict(zip(g["side"], g.to_dict("records"), strict=False))
        if set(sides) != set(_SIDES) or len(g) != 2:
            raise InputFormatError(
                message(
                    "needs exactly one left and one right row per subject",
                    file=str(path),
                    field="side",
                    value=f"subject row(s) {sorted(g.index + 2)}",
                    fix="add the missing leg",
                )
            )

        def num(row, c):
            v = row.get(c)
            return None if v is None or pd.isna(v) else float(v)

        legs = {
            side: LegMeasurements(
                **{c: num(row, c) for c in _MEASUREMENT_COLUMNS if num(row, c) is not None}
            )
            for side, row in sides.items()
        }
        first = sides["left"]
        extra = {c: num(first, c) for c in _SUBJECT_COLUMNS if num(first, c) is not None}
        out[pseudonymise(str(label), key=key)] = PigSubject(
            left=legs["left"], right=legs["right"], **extra
        )
    return out
