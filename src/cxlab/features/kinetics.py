"""Inverse-dynamics joint moments compatible with Vicon's Plug-in Gait (PiG).

Newton–Euler, distal to proximal (Winter 2009, *Biomechanics and Motor Control of Human
Movement*, 4th ed., ch. 5): the ground reaction on each foot, then the foot, shank and
thigh, each with its mass, centre of mass and moments of inertia from Dempster's
cadaver data (Winter 2009, table 4.1) in the way PiG applies them (:data:`SEGMENTS`). Segment
frames and joint centres are those of :func:`cxlab.features.kinematics.pig_segment_frames`.

The moment is the *internal* moment the proximal segment exerts on the distal one at the
joint, expressed in the distal segment's frame and mapped to PiG's component order and
signs (:data:`PIG_MOMENT_SIGNS`), per kg of body mass. Nexus stores moments in N·mm/kg
although the C3D says N·mm (and forces in N/kg, powers in W/kg): divide its values by
1000 to compare.

Files of the older Vicon Clinical Manager (``convention="vcm"``) differ in two ways, both
identified on the moments VCM stored in ``c3dorg_gait-pig.c3d`` (docs/kinematics.md,
"Vicon Clinical Manager moments"): each moment is expressed in the *proximal* segment's
frame (ankle in the tibia, knee in the thigh, hip in the pelvis; :data:`VCM_MOMENT_SIGNS`),
and the segment parameters are Dempster's as Winter tabulates them, read literally
(:data:`VCM_SEGMENTS`: centres of mass 43.3 % from the proximal joint, radii of gyration
about the centre of mass 47.5 / 30.2 / 32.3 %).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import check_option, message
from cxlab.features.events import FeatureError
from cxlab.features.kinematics import (
    ConventionOption,
    PigSubject,
    Side,
    pig_segment_frames,
    pig_subject,
    resolve_convention,
)
from cxlab.features.signal import lowpass, nan_runs
from cxlab.io.recording import Recording
from cxlab.units import G

__all__ = [
    "MOMENT_COLUMNS",
    "PIG_MOMENT_SIGNS",
    "SEGMENTS",
    "VCM_MOMENT_SIGNS",
    "VCM_SEGMENTS",
    "FootContact",
    "Landing3DPeaks",
    "PlateLoad",
    "Segment",
    "foot_contacts",
    "joint_moments",
    "landing_3d_peaks",
    "plate_contacts",
    "unassigned_loads",
]

MOMENT_COLUMNS = ("flexion_nm_per_kg", "adduction_nm_per_kg", "internal_rotation_nm_per_kg")
#: gravitational acceleration in the lab frame (z up), m/s²
GRAVITY = np.array([0.0, 0.0, -G])


class Segment(NamedTuple):
    """Dempster's segment parameters as Plug-in Gait applies them."""

    mass_fraction: float  # of body mass
    com_from_proximal: float  # of segment length, from the proximal joint
    gyration_about_com: float  # transverse radius of gyration / segment length


# Dempster (1955) via Winter (2009, table 4.1) -- masses 1.45, 4.65, 10.0 % -- in PiG's
# usage (as tabulated by pyCGM2's Dempster table, its open re-implementation): the COM at
# 43.3 % of the length from the segment origin, which PiG puts at the *distal* joint for
# shank and thigh (so 0.567 from the proximal one), and the radii of gyration 69.0, 52.8
# and 54.0 % (Winter's values about the proximal end) applied about the COM. Against the
# Nexus moments of btk_PiG_Motion-FlatFoot-Full.c3d this halves the knee-flexion error of
# Winter's own reading (COM 0.433 from proximal, radii 47.5/30.2/32.3 %): 0.027-0.039 vs
# 0.057-0.059 N.m/kg RMS.
SEGMENTS = {
    "foot": Segment(0.0145, 0.50, 0.690),  # ankle -> toe
    "shank": Segment(0.0465, 0.567, 0.528),  # knee -> ankle
    "thigh": Segment(0.100, 0.567, 0.540),  # hip -> knee
}

# PiG output component k = sign * (moment in the distal frame)[axis]; pinned against the
# moments Nexus stored in btk_PiG_Motion-FlatFoot-Full.c3d (tests/test_kinetics.py).
PIG_MOMENT_SIGNS: dict[tuple[str, Side], tuple[tuple[int, int], ...]] = {
    ("ankle", "left"): ((1, 1), (2, -1), (0, 1)),
    ("ankle", "right"): ((1, 1), (2, 1), (0, -1)),
    ("knee", "left"): ((1, -1), (0, 1), (2, 1)),
    ("knee", "right"): ((1, -1), (0, -1), (2, 1)),
    ("hip", "left"): ((1, 1), (0, 1), (2, 1)),
    ("hip", "right"): ((1, 1), (0, -1), (2, 1)),
}


# Vicon Clinical Manager: Dempster (1955) as Winter (2009, table 4.1) prints it -- COM
# 43.3 % of the segment length from the proximal joint (foot: 50 % of ankle -> toe), radii
# of gyration about the COM 47.5 / 30.2 / 32.3 % of the length. Identified on the swing
# phase of c3dorg_gait-pig.c3d, where the moment is segment inertia and gravity alone and
# so linear in the parameters: the least-squares first mass moment of the shank about the
# knee is 0.0191-0.0192 of body mass x length (this table 0.0201, SEGMENTS 0.0264), its
# second moment 0.0118-0.0125 (this table 0.0130, SEGMENTS 0.0279); the thigh's about the
# hip 0.045-0.049 and 0.030-0.031 (this table 0.043 and 0.029, SEGMENTS 0.057 and 0.061).
VCM_SEGMENTS = {
    "foot": Segment(0.0145, 0.50, 0.475),
    "shank": Segment(0.0465, 0.433, 0.302),
    "thigh": Segment(0.100, 0.433, 0.323),
}

# VCM output component k = sign * (moment in the *proximal* segment frame)[axis]: ankle in
# the tibia, knee in the thigh, hip in the pelvis. Pinned by least squares on the stance
# frames of c3dorg_gait-pig.c3d (each coefficient within 0.05 of +-1, the others < 0.1 in
# size; tests/test_kinetics.py), where the same moments in the distal frames are off by
# up to 0.16 N.m/kg because this subject's tibia frame is turned 31-41 deg from the thigh.
VCM_MOMENT_SIGNS: dict[tuple[str, Side], tuple[tuple[int, int], ...]] = {
    ("ankle", "left"): ((1, 1), (0, 1), (2, 1)),
    ("ankle", "right"): ((1, 1), (0, -1), (2, -1)),
    ("knee", "left"): ((1, -1), (0, 1), (2, -1)),
    ("knee", "right"): ((1, -1), (0, -1), (2, 1)),
    ("hip", "left"): ((1, 1), (0, 1), (2, 1)),
    ("hip", "right"): ((1, 1), (0, -1), (2, -1)),
}


class FootContact(NamedTuple):
    """One foot's stance on one plate: frames ``start:stop`` (point frames)."""

    side: Side
    plate: int
    start: int
    stop: int


def _inside(points: np.ndarray, corners: np.ndarray, margin_m: float = 0.0) -> np.ndarray:
    """Whether horizontal projections of ``points`` (n, 3) lie in the convex plate outline
    grown by ``margin_m`` on every side."""
    c = corners[:, :2]
    centre = c.mean(axis=0)
    order = np.argsort(np.arctan2(c[:, 1] - centre[1], c[:, 0] - centre[0]))
    c = c[order]
    edge = np.roll(c, -1, axis=0) - c
    rel = points[:, None, :2] - c[None]
    cross = edge[None, :, 0] * rel[..., 1] - edge[None, :, 1] * rel[..., 0]
    return np.all(cross / np.linalg.norm(edge, axis=1)[None] >= -margin_m, axis=1)


def _seg_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Horizontal distance of points ``p`` to segments ``a``–``b`` (all (n, 3))."""
    ab, ap = (b - a)[:, :2], (p - a)[:, :2]
    t = np.clip(np.sum(ap * ab, axis=1) / np.sum(ab * ab, axis=1), 0.0, 1.0)
    return np.linalg.norm(ap - t[:, None] * ab, axis=1)


def foot_contacts(
    recording: Recording,
    heel: dict,
    toe: dict,
    /,
    *,
    threshold_n: float = 20.0,
    max_cop_distance_m: float = 0.10,
    margin_m: float = 0.06,
    ground_height_m: float = 0.10,
) -> list[FootContact]:
    """Which foot stands on which plate, contact by contact.

    A plate contact (vertical force above ``threshold_n``, resampled to the point rate)
    is given to a foot when the CoP stays within ``max_cop_distance_m`` of that foot's
    heel–toe line on every frame and, on every frame, its heel and toe markers that are
    down (lower than ``ground_height_m`` above the plate) lie inside the plate outline
    grown by ``margin_m`` -- the heel marker sits some 5 cm behind the heel's contact
    (measured on btk_PiG_Motion-FlatFoot-Full.c3d, which Nexus assigned). A foot partly
    off the plate, or two feet on one plate, gives no assignment.

    Parameters
    ----------
    recording : Recording
    heel, toe : dict of side to ndarray, shape (n_frames, 3)
        Heel (HEE, else AJC) and toe points per side, m.

    Returns
    -------
    list of FootContact
    """
    out = []
    n = recording.n_frames
    for k, plate in enumerate(recording.platforms):
        force, cop = _at_point_rate(recording, plate.force), _at_point_rate(recording, plate.cop)
        loaded = np.nan_to_num(force[:, 2]) > threshold_n
        for start, stop in nan_runs(loaded[:n]):
            fits = []
            for side in ("left", "right"):
                h, t = heel[side][start:stop], toe[side][start:stop]
                if not (np.isfinite(h).all() and np.isfinite(t).all()):
                    continue
                c = cop[start:stop]
                near = _seg_distance(c, h, t) <= max_cop_distance_m
                floor = np.nanmean(plate.corners[:, 2])
                on = (_inside(h, plate.corners, margin_m) | (h[:, 2] - floor > ground_height_m)) & (
                    _inside(t, plate.corners, margin_m) | (t[:, 2] - floor > ground_height_m)
                )
                if near.all() and on.all():
                    fits.append(side)
            if len(fits) == 1:
                out.append(FootContact(fits[0], k, int(start), int(stop)))
    return out


def _heel_toe(rec: Recording, frames) -> tuple[dict, dict]:
    """Heel (HEE, else the ankle centre) and toe points per side, m."""
    from cxlab.features.kinematics import _marker_getter  # one label lookup for both modules

    get = _marker_getter(rec)
    n = rec.n_frames
    heel, toe = {}, {}
    for side in ("left", "right"):
        p = "L" if side == "left" else "R"
        t = get(p + "TOE")
        h = get(p + "HEE")
        toe[side] = (t if t is not None else np.full((n, 3), np.nan)) / 1000
        heel[side] = (h if h is not None else frames.centres["ankle", side]) / 1000
    return heel, toe


def plate_contacts(
    recording: Recording, /, *, subject: PigSubject, threshold_n: float = 20.0
) -> list[FootContact]:
    """Which foot stands on which plate: :func:`foot_contacts` with the heel (HEE, else
    the PiG ankle centre) and toe markers, the rule :func:`joint_moments` applies (there
    to its low-passed markers, so a contact at the edge of the rule may differ).

    Parameters
    ----------
    recording : Recording
        PiG lower-body markers and force plates.
    subject : PigSubject
        Measurements (for the ankle centre when a heel marker is missing).
    threshold_n : float
        Contact threshold on vertical force, N.

    Returns
    -------
    list of FootContact
    """
    heel, toe = _heel_toe(recording, pig_segment_frames(recording, subject=subject))
    return foot_contacts(recording, heel, toe, threshold_n=threshold_n)


class PlateLoad(NamedTuple):
    """A loaded run of one plate: plate index and point frames ``start:stop``."""

    plate: int
    start: int
    stop: int


def unassigned_loads(
    recording: Recording, contacts: list[FootContact], /, *, threshold_n: float = 20.0
) -> list[PlateLoad]:
    """Plate loads no foot was given: each loaded run (vertical force above
    ``threshold_n``, at the point rate) that no contact in ``contacts`` covers.

    :func:`joint_moments` applies no plate load in those frames, so its moments there
    lack a ground reaction that was measured (a foot partly off the plate, two feet on
    it, or a marker gap).

    Returns
    -------
    list of PlateLoad
    """
    out = []
    n = recording.n_frames
    for k, plate in enumerate(recording.platforms):
        loaded = np.nan_to_num(_at_point_rate(recording, plate.force)[:, 2]) > threshold_n
        for start, stop in nan_runs(loaded[:n]):
            if not any(c.plate == k and c.start <= start and c.stop >= stop for c in contacts):
                out.append(PlateLoad(k, int(start), int(stop)))
    return out


def _at_point_rate(recording: Recording, x: np.ndarray) -> np.ndarray:
    ratio = recording.analog_rate_hz / recording.point_rate_hz if recording.point_rate_hz else 1
    idx = np.round(np.arange(recording.n_frames) * ratio).astype(int)
    out = np.full((recording.n_frames, *x.shape[1:]), np.nan)
    ok = idx < x.shape[0]
    out[ok] = x[idx[ok]]
    return out


def _smooth(x: np.ndarray, *, rate_hz: float, cutoff_hz: float | None) -> np.ndarray:
    """Low-pass each column over its finite runs (runs too short to filter stay raw).

    Gap-free columns are filtered together in one call; only columns with gaps are
    filtered run by run.
    """
    if cutoff_hz is None:
        return x
    flat = x.reshape(x.shape[0], -1).copy()
    finite = np.isfinite(flat)
    whole = finite.all(axis=0)
    if whole.any() and flat.shape[0] > 15:
        flat[:, whole] = lowpass(flat[:, whole], rate_hz=rate_hz, cutoff_hz=cutoff_hz)
    for j in np.flatnonzero(~whole & finite.any(axis=0)):
        for a, b in nan_runs(finite[:, j]):
            if b - a > 15:
                flat[a:b, j] = lowpass(flat[a:b, j], rate_hz=rate_hz, cutoff_hz=cutoff_hz)
    return flat.reshape(x.shape)


def _angular_velocity(r: np.ndarray, dt: float) -> np.ndarray:
    """ω (n, 3), rad/s, from frames r (n, 3, 3): skew(ω) = dR/dt Rᵀ."""
    w = np.einsum("fij,fkj->fik", np.gradient(r, dt, axis=0), r)
    return np.stack([w[:, 2, 1], w[:, 0, 2], w[:, 1, 0]], axis=1)


def joint_moments(
    recording: Recording,
    /,
    *,
    model: str = "pig",
    subject: PigSubject | None = None,
    cutoff_hz: float | None = 15.0,
    threshold_n: float = 20.0,
    convention: ConventionOption = "auto",
) -> pd.DataFrame:
    """PiG-compatible ankle, knee and hip moments and powers by inverse dynamics.

    Parameters
    ----------
    recording : Recording
        PiG lower-body markers and force plates.
    model : {"pig"}
    subject : PigSubject, optional
        Measurements (body mass required); default from ``PROCESSING``.
    cutoff_hz : float or None
        One low-pass cut-off, Hz, applied to both the model's markers and the plates'
        force and moment (4th-order zero-lag Butterworth,
        :func:`cxlab.features.signal.lowpass`), so the moments carry no artefact of
        mismatched filters, which inflates knee abduction moments at impact (Kristianslund
        et al. 2012, J Biomech 45:666-671). Default 15 Hz; None = no filtering (Nexus
        markers are already smoothed: knee RMS vs Nexus 0.027-0.039 N·m/kg unfiltered,
        0.028-0.033 at 15 Hz, 0.029-0.037 at 10 Hz on the validation trial).
    threshold_n : float
        Contact threshold on vertical force, N.
    convention : {"auto", "nexus", "vcm"}
        ``"nexus"``: Nexus' Plug-in Gait (:data:`SEGMENTS`, distal segment frames,
        :data:`PIG_MOMENT_SIGNS`). ``"vcm"``: Vicon Clinical Manager (:data:`VCM_SEGMENTS`,
        proximal segment frames, :data:`VCM_MOMENT_SIGNS`); the foot frame then carries
        the static plantar flexion only, as in
        :func:`~cxlab.features.kinematics.joint_angles`. ``"auto"`` (default): the one the
        recording's own evidence names (:func:`~cxlab.features.kinematics.detect_convention`).

    Returns
    -------
    DataFrame
        ``frame``, ``time_s``, ``side``, ``joint`` ("hip", "knee", "ankle"),
        ``flexion_nm_per_kg``, ``adduction_nm_per_kg``, ``internal_rotation_nm_per_kg``
        (internal moments in the distal -- ``"vcm"``: proximal -- segment frame, the
        convention's signs, N·m/kg) and
        ``power_w_per_kg`` (M · (ω_distal − ω_proximal), W/kg; Nexus stores it as the Z
        component of ``<L|R><Joint>Power``). Outside the stance of a foot assigned to a
        plate (:func:`foot_contacts`) the moments come from the segment dynamics alone
        (swing); NaN where a marker is missing.
    """
    check_option("model", model, ("pig",))
    convention = resolve_convention(recording, convention)
    src = str(recording.meta.get("source", "recording"))
    subject = subject or pig_subject(recording)
    if subject is None or not subject.body_mass_kg:
        raise FeatureError(
            message(
                "no body mass for inverse dynamics",
                file=src,
                field="PROCESSING:Bodymass",
                fix="pass subject=PigSubject(..., body_mass_kg=...)",
            )
        )
    rate = recording.point_rate_hz
    if not (np.isfinite(rate) and rate > 0) or recording.n_frames < 3:
        raise FeatureError(
            message(
                "inverse dynamics needs a positive point rate and at least 3 frames",
                file=src,
                field="POINT:RATE/FRAMES",
                value=(rate, recording.n_frames),
                fix="pass a motion trial, not a single-frame static",
            )
        )
    dt = 1.0 / rate
    mass = subject.body_mass_kg
    segments, signs = SEGMENTS, PIG_MOMENT_SIGNS
    if convention == "vcm":
        segments, signs = VCM_SEGMENTS, VCM_MOMENT_SIGNS
        # VCM's foot carries the static plantar flexion only (as its angles do)
        subject = replace(
            subject,
            left=replace(subject.left, static_rotation_offset_deg=0.0),
            right=replace(subject.right, static_rotation_offset_deg=0.0),
        )
    rec = recording
    if cutoff_hz is not None:
        rec = _filtered(recording, cutoff_hz)
    frames = pig_segment_frames(rec, subject=subject)
    n = rec.n_frames
    heel, toe = _heel_toe(rec, frames)
    grf = {s: np.zeros((n, 3)) for s in ("left", "right")}
    grm = {s: np.zeros((n, 3)) for s in ("left", "right")}  # about the lab origin
    # Contacts from the unfiltered plates (the filter smears the loaded runs into frames
    # whose CoP is undefined); loads from the filtered ones.
    for c in foot_contacts(recording, heel, toe, threshold_n=threshold_n):
        plate = rec.platforms[c.plate]
        f = _at_point_rate(rec, plate.force)[c.start : c.stop]
        m0 = _at_point_rate(rec, plate.moment)[c.start : c.stop]
        grf[c.side][c.start : c.stop] += f
        grm[c.side][c.start : c.stop] += m0
    rows, keys = [], []
    for side in ("left", "right"):
        chain = [
            (
                "ankle",
                "foot",
                frames.centres["ankle", side],
                toe[side] * 1000,
                frames.foot[side],
                frames.tibia[side],
            ),
            (
                "knee",
                "shank",
                frames.centres["knee", side],
                frames.centres["ankle", side],
                frames.tibia[side],
                frames.thigh[side],
            ),
            (
                "hip",
                "thigh",
                frames.centres["hip", side],
                frames.centres["knee", side],
                frames.thigh[side],
                frames.pelvis,
            ),
        ]
        f_dist = grf[side]  # force applied on the segment at its distal end, N
        m_dist = grm[side]  # moment of that load about the lab origin, N·m
        for joint, seg_name, prox_mm, dist_mm, r_seg, r_prox in chain:
            seg = segments[seg_name]
            prox, dist = prox_mm / 1000, dist_mm / 1000
            m = seg.mass_fraction * mass
            com = prox + seg.com_from_proximal * (dist - prox)
            acc = np.gradient(np.gradient(com, dt, axis=0), dt, axis=0)
            f_prox = m * acc - m * GRAVITY - f_dist
            length = np.nanmedian(np.linalg.norm(dist - prox, axis=1))
            inertia = np.diag([1.0, 1.0, 0.0]) * m * (seg.gyration_about_com * length) ** 2
            w = _angular_velocity(r_seg, dt)
            alpha = np.gradient(w, dt, axis=0)
            i_lab = np.einsum("fij,jk,flk->fil", r_seg, inertia, r_seg)
            dh = np.einsum("fij,fj->fi", i_lab, alpha) + np.cross(
                w, np.einsum("fij,fj->fi", i_lab, w)
            )
            # Euler about the COM: M_prox + (M_dist about COM) + (prox - com) x F_prox = dH/dt
            m_dist_com = m_dist - np.cross(com, f_dist)
            m_prox = dh - m_dist_com - np.cross(prox - com, f_prox)
            r_out = r_prox if convention == "vcm" else r_seg
            local = np.einsum("fji,fj->fi", r_out, m_prox) / mass
            out = np.empty_like(local)
            for k, (axis, sign) in enumerate(signs[joint, side]):
                out[:, k] = sign * local[:, axis]
            power = np.sum(m_prox * (w - _angular_velocity(r_prox, dt)), axis=1) / mass
            rows.append(np.column_stack([out, power]))
            keys.append((side, joint))
            # The proximal end's load becomes the next segment's distal load (reaction).
            f_dist = -f_prox
            m_dist = -(m_prox + np.cross(prox, f_prox))
    values = np.concatenate(rows)
    frame = np.tile(np.arange(n, dtype=np.int64), len(keys))
    return pd.DataFrame(
        {
            "frame": frame,
            "time_s": frame * dt,
            "side": np.repeat([k[0] for k in keys], n),
            "joint": np.repeat([k[1] for k in keys], n),
            **{c: values[:, i] for i, c in enumerate(MOMENT_COLUMNS)},
            "power_w_per_kg": values[:, 3],
        }
    )


def _filtered(recording: Recording, cutoff_hz: float) -> Recording:
    """The recording with the model's markers and the plates' force and moment low-passed
    at one cut-off (the other markers are left as they are)."""
    from cxlab.features.kinematics import _strip

    needed = {"LASI", "RASI", "SACR", "LPSI", "RPSI"} | {
        p + m for p in "LR" for m in ("THI", "KNE", "TIB", "ANK", "TOE", "HEE")
    }
    cols = [i for i, lab in enumerate(recording.marker_labels) if _strip(lab) in needed]
    markers = recording.markers.copy()
    markers[:, cols] = _smooth(
        recording.markers[:, cols], rate_hz=recording.point_rate_hz, cutoff_hz=cutoff_hz
    )
    plates = [
        replace(
            p,
            force=_smooth(p.force, rate_hz=p.rate_hz, cutoff_hz=cutoff_hz),
            moment=_smooth(p.moment, rate_hz=p.rate_hz, cutoff_hz=cutoff_hz),
        )
        for p in recording.platforms
    ]
    return replace(recording, markers=markers, platforms=plates)


class Landing3DPeaks(NamedTuple):
    """One leg's 3-D landing peaks (Hewett et al. 2005), in the windows after contact.

    Attributes
    ----------
    side : {"left", "right"}
    knee_abduction_deg : float
        Peak knee abduction (valgus) angle = max of −``adduction_deg`` (PiG knee), deg.
    hip_adduction_deg, hip_internal_rotation_deg : float
        Peak hip adduction and internal rotation, deg.
    knee_abduction_moment_nm_per_kg : float
        Peak *external* knee abduction moment, N·m/kg: max of −``adduction_nm_per_kg``,
        since PiG's knee Y moment is the internal abductor moment (a +Y internal moment
        on the left tibia turns its distal end laterally); NaN without moments.
    knee_abduction_at_contact_deg : float
        Knee abduction at the frame nearest ``contact_s``, deg (Bates et al. 2020: ≥ 4.6°
        at initial contact predicted ACL injury).
    """

    side: Side
    knee_abduction_deg: float
    hip_adduction_deg: float
    hip_internal_rotation_deg: float
    knee_abduction_moment_nm_per_kg: float
    knee_abduction_at_contact_deg: float


class _Curves:
    """A joint_angles/joint_moments frame as NumPy arrays: (side, joint) -> row indices."""

    def __init__(self, df: pd.DataFrame):
        self.df = df
        self.time = df["time_s"].to_numpy(dtype=float)
        side = df["side"].to_numpy(dtype=object)
        joint = df["joint"].to_numpy(dtype=object)
        self.rows = {
            (s, j): np.flatnonzero((side == s) & (joint == j))
            for s in ("left", "right")
            for j in np.unique(joint)
        }

    def values(self, side: str, joint: str, column: str) -> tuple[np.ndarray, np.ndarray]:
        idx = self.rows.get((side, joint), np.zeros(0, dtype=int))
        return self.time[idx], self.df[column].to_numpy(dtype=float)[idx]


def _window_max(
    c: _Curves, side: str, joint: str, column: str, sign: float, start: float, stop: float
) -> float:
    t, v = c.values(side, joint, column)
    v = sign * v[(t >= start) & (t <= stop)]
    return float(np.nanmax(v)) if np.isfinite(v).any() else float("nan")


def _at_time(c: _Curves, side: str, joint: str, column: str, sign: float, t0: float) -> float:
    t, v = c.values(side, joint, column)
    if not len(t):
        return float("nan")
    return float(sign * v[int(np.argmin(np.abs(t - t0)))])


def landing_3d_peaks(
    angles: pd.DataFrame,
    moments: pd.DataFrame | None = None,
    /,
    *,
    contact_s: float,
    angle_window_s: float = 0.5,
    moment_window_s: float = 0.1,
) -> list[Landing3DPeaks]:
    """Peak 3-D knee and hip measures of a landing or single-leg squat, per leg.

    Parameters
    ----------
    angles : DataFrame
        :func:`cxlab.features.kinematics.joint_angles` output.
    moments : DataFrame, optional
        :func:`joint_moments` output.
    contact_s : float
        Initial contact, s (same clock as ``time_s``).
    angle_window_s : float
        Angles are searched from contact to contact + this, s.
    moment_window_s : float
        The moment is searched in the first ``moment_window_s`` after contact, s
        (100 ms: Hewett et al. 2005, Am J Sports Med 33:492–501, whose peak external
        knee abduction moment in a drop vertical jump predicted ACL injury).

    Returns
    -------
    list of Landing3DPeaks
        One per side with any finite value.
    """
    out = []
    a_stop, m_stop = contact_s + angle_window_s, contact_s + moment_window_s
    angles = _Curves(angles)
    moments = None if moments is None else _Curves(moments)
    for side in ("left", "right"):
        kam = (
            float("nan")
            if moments is None
            else _window_max(moments, side, "knee", "adduction_nm_per_kg", -1.0, contact_s, m_stop)
        )
        peaks = Landing3DPeaks(
            side,
            _window_max(angles, side, "knee", "adduction_deg", -1.0, contact_s, a_stop),
            _window_max(angles, side, "hip", "adduction_deg", 1.0, contact_s, a_stop),
            _window_max(angles, side, "hip", "internal_rotation_deg", 1.0, contact_s, a_stop),
            kam,
            _at_time(angles, side, "knee", "adduction_deg", -1.0, contact_s),
        )
        if np.isfinite(peaks[1:]).any():
            out.append(peaks)
    return out
