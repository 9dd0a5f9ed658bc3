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

Files from the Vicon Clinical Manager (VCM) era report ankle and foot progression in an
older convention (``convention="vcm"``, :data:`VCM_SIGNS`): the Cardan sequence
Y-Z'-X'' instead of Y-X'-Z'', and a foot frame turned by the static plantar-flexion
offset only (no rotation offset). Pinned on the toe-segment virtual markers
(``LTOO/LTOA/LTOL/LTOP``) and angles stored in ``c3dorg_gait-pig.c3d`` (Vicon 370/VCM):
that segment is cxlab's uncorrected foot turned by a constant plantar flexion (std
0.04 deg over the trial), and Y-Z'-X'' of it reproduces the stored ankle and foot
progression to the file's int16 resolution (std 0.05-0.07 deg).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import check_option, message, warn
from cxlab.features.events import FeatureError
from cxlab.features.kinematics._convention import (
    ConventionChoice,
    convention_from_evidence,
    detect_convention,
)
from cxlab.features.kinematics._frames import (
    FootFrame,
    SegmentFrames,
    _marker_getter,
    _strip,
    has_pig_markers,
    pig_segment_frames,
    recording_from_markers,
)
from cxlab.features.kinematics._subject import (
    _PREFIX,
    _SIDES,
    LegMeasurements,
    PigSubject,
    Side,
    pig_subject,
    read_pig_measurements,
)
from cxlab.io.recording import Recording

__all__ = [
    "ANGLE_COLUMNS",
    "CONVENTIONS",
    "CONVENTION_OPTIONS",
    "JOINTS",
    "PIG_SIGNS",
    "VCM_SIGNS",
    "ConventionChoice",
    "LegMeasurements",
    "PigSubject",
    "SegmentFrames",
    "cardan_angles",
    "convention_from_evidence",
    "detect_convention",
    "has_pig_markers",
    "joint_angles",
    "pig_segment_frames",
    "pig_subject",
    "read_pig_measurements",
    "recording_from_markers",
    "resolve_convention",
    "static_foot_offsets",
]

Joint = Literal["pelvis", "hip", "knee", "ankle", "foot_progression"]
#: Which Vicon convention the angles follow: Nexus' Plug-in Gait, or the older Vicon
#: Clinical Manager (ankle and foot progression differ, see the module docstring).
Convention = Literal["nexus", "vcm"]
CONVENTIONS: tuple[Convention, ...] = ("nexus", "vcm")
#: ``convention=`` of :func:`joint_angles` and ``joint_moments``: a convention, or
#: ``"auto"`` = decided from the recording (:func:`detect_convention`).
ConventionOption = Literal["auto", "nexus", "vcm"]
CONVENTION_OPTIONS: tuple[ConventionOption, ...] = ("auto", "nexus", "vcm")
JOINTS: tuple[Joint, ...] = ("pelvis", "hip", "knee", "ankle", "foot_progression")
ANGLE_COLUMNS = ("flexion_deg", "adduction_deg", "internal_rotation_deg")

# Used inside cxlab.features only (kinetics shares the label lookup).
_PACKAGE_PRIVATE = (_marker_getter, _strip)


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


# VCM-era ankle and foot progression: component k = sign * cardan_YZX[euler] + offset,
# with cardan_YZX = (about Y, about Z', about X''). Pinned on c3dorg_gait-pig.c3d
# (tests/test_kinematics.py::test_vcm_ankle_is_the_plantar_flexed_foot_in_y_z_x).
VCM_SIGNS: dict[tuple[Joint, Side], tuple[_Component, _Component, _Component]] = {
    ("ankle", "left"): (_Component(0, -1, -90), _Component(1, 1, 0), _Component(2, -1, 0)),
    ("ankle", "right"): (_Component(0, -1, -90), _Component(1, -1, 0), _Component(2, 1, 0)),
    ("foot_progression", "left"): (
        _Component(0, 1, 90),
        _Component(1, -1, 0),
        _Component(2, -1, 0),
    ),
    ("foot_progression", "right"): (_Component(0, 1, 90), _Component(1, 1, 0), _Component(2, 1, 0)),
}


def cardan_angles(
    proximal: np.ndarray,
    distal: np.ndarray,
    /,
    *,
    joint: Joint,
    side: Side,
    convention: Convention = "nexus",
) -> np.ndarray:
    """PiG joint angles of ``distal`` relative to ``proximal``.

    Parameters
    ----------
    proximal, distal : ndarray, shape (n_frames, 3, 3)
        Segment frames, columns = X (anterior), Y (left), Z (proximal/up) axes in the lab.
    joint : {"pelvis", "hip", "knee", "ankle", "foot_progression"}
    side : {"left", "right"}
    convention : {"nexus", "vcm"}
        ``"vcm"`` decomposes ankle and foot progression Y-Z'-X'' (:data:`VCM_SIGNS`), as
        Vicon Clinical Manager did; the other joints are the same in both.

    Returns
    -------
    ndarray, shape (n_frames, 3)
        Flexion (dorsiflexion, anterior tilt), adduction (varus, obliquity up) and
        internal rotation, deg, as in PiG's ``<L|R><Joint>Angles``: the Cardan
        Y-X'-Z'' decomposition of ``proximal.T @ distal`` mapped by :data:`PIG_SIGNS`.
    """
    check_option("joint", joint, JOINTS)
    check_option("side", side, _SIDES)
    check_option("convention", convention, CONVENTIONS)
    rel = np.einsum("fji,fjk->fik", proximal, distal)
    table = PIG_SIGNS[joint, side]
    if convention == "vcm" and (joint, side) in VCM_SIGNS:
        # R = Ry(a) Rz(b) Rx(c)
        a = np.arctan2(-rel[:, 2, 0], rel[:, 0, 0])  # about Y
        b = np.arcsin(np.clip(rel[:, 1, 0], -1.0, 1.0))  # about Z'
        c = np.arctan2(-rel[:, 1, 2], rel[:, 1, 1])  # about X''
        table = VCM_SIGNS[joint, side]
    else:
        # R = Ry(a) Rx(b) Rz(c)
        a = np.arctan2(rel[:, 0, 2], rel[:, 2, 2])  # about Y
        b = np.arcsin(np.clip(-rel[:, 1, 2], -1.0, 1.0))  # about X'
        c = np.arctan2(rel[:, 1, 0], rel[:, 1, 1])  # about Z''
    euler = np.degrees(np.stack([a, b, c], axis=1))
    out = np.empty_like(euler)
    for k, comp in enumerate(table):
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


def resolve_convention(recording: Recording, convention: str, /) -> Convention:
    """``convention`` itself, or for ``"auto"`` the one :func:`detect_convention` finds
    in the recording -- with a :class:`~cxlab._check.CxlabWarning` naming the evidence
    when that is ``"vcm"`` (not what a Nexus user expects by default)."""
    check_option("convention", convention, CONVENTION_OPTIONS)
    if convention != "auto":
        return convention  # type: ignore[return-value]
    choice = detect_convention(recording)
    if choice.convention == "vcm":
        warn(
            f"Vicon Clinical Manager convention used: {choice.reason}",
            file=str(recording.meta.get("source", "recording")),
            field="convention",
            value="vcm",
            fix="pass convention='nexus' to override",
        )
    return choice.convention  # type: ignore[return-value]


def joint_angles(
    recording: Recording,
    /,
    *,
    model: str = "pig",
    static: Recording | None = None,
    subject: PigSubject | None = None,
    convention: ConventionOption = "auto",
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
    convention : {"auto", "nexus", "vcm"}
        ``"vcm"`` gives ankle and foot progression as Vicon Clinical Manager reported
        them (files of the Vicon 370 / Workstation era): Cardan Y-Z'-X'' of a foot
        turned by the static plantar-flexion offset only (the rotation offset is not
        applied). Pelvis, hip and knee are the same in both. ``"auto"`` (default): the
        one the file's own evidence names (:func:`detect_convention`; ``"nexus"``
        without any), with a warning when that is ``"vcm"``.

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
    convention = resolve_convention(recording, convention)
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
    if convention == "vcm":  # VCM's ankle foot carries the plantar-flexion offset only
        legs = {s: replace(subject.leg(s), static_rotation_offset_deg=0.0) for s in _SIDES}
        subject = replace(subject, left=legs["left"], right=legs["right"])
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
            blocks.append(cardan_angles(prox, dist, joint=joint, side=side, convention=convention))
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
