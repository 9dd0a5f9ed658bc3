"""The store's 3-D joint tables, ``joint_angles`` and ``joint_moments``, by method.

Two methods land side by side in the same tables, told apart by the ``method`` column:

``"cxlab-pig"``
    Computed here from the markers (:func:`cxlab.features.kinematics.joint_angles`) and,
    with force plates whose outlines are in the ``plates`` table, by inverse dynamics
    (:func:`cxlab.features.kinetics.joint_moments`). Needs the subject's PiG measurements
    (``[kinematics] measurements``) and, for moments, a body mass (that CSV or the file's
    ``recordings.body_mass_kg``).
``"file"``
    The Plug-in Gait outputs the vendor stored in the file (the ``model_outputs`` table):
    ``<L|R>PelvisAngles``, ``HipAngles``, ``KneeAngles``, ``AnkleAngles``,
    ``FootProgressAngles``, ``<L|R><Hip|Knee|Ankle>Moment`` and ``...Power``
    (:func:`file_joint_angles`, :func:`file_joint_moments`).

The 3-D landing peaks (``[kinematics] peak_tasks``) are taken from ``cxlab-pig`` when it
was computed, else from ``file``; the feature's ``method`` text says which.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import CxlabError
from cxlab.features import kinematics
from cxlab.features.joints._file import (
    FILE_ANGLE_LABELS,
    FILE_MOMENT_LABELS,
    FILE_POWER_LABELS,
    file_joint_angles,
    file_joint_moments,
)
from cxlab.features.kinetics import (
    joint_moments,
    landing_3d_peaks,
    plate_contacts,
    unassigned_loads,
)
from cxlab.features.measure import Measure
from cxlab.features.tasks import Trial
from cxlab.io.recording import Platform
from cxlab.store import Store

if TYPE_CHECKING:
    from cxlab.features.config import FeatureConfig

__all__ = [
    "FILE_ANGLE_LABELS",
    "FILE_MOMENT_LABELS",
    "FILE_POWER_LABELS",
    "METHODS",
    "JointTables",
    "file_joint_angles",
    "file_joint_moments",
    "store_joint_tables",
]

Method = Literal["cxlab-pig", "file"]
METHODS: tuple[Method, ...] = ("cxlab-pig", "file")


class JointTables(NamedTuple):
    """What :func:`store_joint_tables` did for one recording.

    Attributes
    ----------
    quarantine : list of (function, reason)
        Why a method could not run (``joint_angles`` / ``joint_moments``).
    features : list of (feature, side, value, unit, method)
        3-D peak feature rows for the ``features`` table.
    methods : dict of table name to tuple of Method
        The methods written per table (empty = no part).
    angles, moments : tuple of DataFrame or None
        The rows written (``cxlab-pig``, then ``file``), for the curve builders.
    """

    quarantine: list[tuple[str, str]]
    features: list[Measure]
    methods: dict[str, tuple[str, ...]]
    angles: tuple[pd.DataFrame | None, ...] = ()
    moments: tuple[pd.DataFrame | None, ...] = ()


_ORIGIN = ["origin_x", "origin_y", "origin_z"]


def _platforms(store: Store, rid: str, /, *, rate_hz: float | None) -> list[Platform]:
    """The recording's plates rebuilt from ``forces`` and ``plates`` (public Store API);
    ``rate_hz`` is the recording's analog rate (else taken from the sample times)."""
    outline = store.table("plates", filters=[("recording_id", "==", rid)])
    if not len(outline):
        return []
    forces = store.table("forces", filters=[("recording_id", "==", rid)])
    if not len(forces):
        return []
    outline = outline.sort_values(["plate", "corner"])
    forces = forces.sort_values(["plate", "sample"])
    out = []
    for plate, f in forces.groupby("plate", sort=True):
        if len(f) < 2:
            continue
        o = outline[outline["plate"] == plate]
        if len(o) != 4:  # no outline for this plate: NaN corners, refused by the caller
            o = pd.DataFrame(
                np.nan, index=range(4), columns=["x", "y", "z", *_ORIGIN, "plate_type"]
            ).assign(plate_type=0)
        rate = rate_hz
        if not (rate and np.isfinite(rate) and rate > 0):
            rate = 1.0 / float(np.median(np.diff(f["time_s"].to_numpy(dtype=float))))
        out.append(
            Platform(
                force=f[["fx", "fy", "fz"]].to_numpy(dtype=float),
                moment=f[["mx", "my", "mz"]].to_numpy(dtype=float),
                cop=f[["cop_x", "cop_y", "cop_z"]].to_numpy(dtype=float),
                tz=f["tz"].to_numpy(dtype=float),
                corners=o[["x", "y", "z"]].to_numpy(dtype=float),
                origin=o[_ORIGIN].to_numpy(dtype=float)[0],
                type=int(o["plate_type"].iloc[0]),
                rate_hz=float(rate),
            )
        )
    return out


def _outline_area_m2(corners: np.ndarray) -> float:
    """Horizontal area (m²) of the plate outline (corners in angular order); NaN when a
    corner is unknown."""
    if not np.isfinite(corners).all():
        return float("nan")
    c = corners[:, :2] - corners[:, :2].mean(axis=0)
    c = c[np.argsort(np.arctan2(c[:, 1], c[:, 0]))]
    x, y = c[:, 0], c[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


class _Moments(NamedTuple):
    table: pd.DataFrame | None
    contact_s: dict[str, float]  # side -> start of its first plate contact, s
    quarantine: list[tuple[str, str]]
    body_mass_kg: float = float("nan")  # the mass the per-kg moments were divided by


def _cxlab_moments(
    store: Store, rec: dict, rec_m, subject, trial: Trial, /, *, convention: str
) -> _Moments:
    """cxlab-pig moments of one recording and each foot's first plate contact; no table
    with the reason when they cannot be computed (no reason: the recording has no plates)."""
    rid = rec["recording_id"]
    plates = _platforms(store, rid, rate_hz=rec.get("analog_rate_hz"))
    if not plates:
        why = []
        if trial.plates:  # forces but no outlines: a store ingested before the plates table
            why = [
                (
                    "joint_moments",
                    "joint_moments: force plates without outlines in the store's `plates` "
                    "table (ingested before it existed); re-ingest the file with "
                    "`cxlab ingest --force`",
                )
            ]
        return _Moments(None, {}, why)
    mass = subject.body_mass_kg
    if not (mass and np.isfinite(mass) and mass > 0):
        mass = rec.get("body_mass_kg")
    if not (mass is not None and np.isfinite(mass) and mass > 0):
        why = (
            "joint_moments: Plug-in Gait markers and force plates but no body mass; add "
            "body_mass_kg to the CSV named by [kinematics] measurements (docs/kinematics.md)"
        )
        return _Moments(None, {}, [("joint_moments", why)])
    no_outline = [k + 1 for k, p in enumerate(plates) if not _outline_area_m2(p.corners) > 1e-3]
    if no_outline:
        why = (
            f"joint_moments: force plate(s) {no_outline} have no outline (corners unknown, "
            "e.g. forces from a .mot file, or enclosing less than 10 cm²), so no foot can "
            "be assigned to them; moments not computed"
        )
        return _Moments(None, {}, [("joint_moments", why)])
    rates = sorted({round(p.rate_hz, 6) for p in plates})
    if len(rates) != 1:
        why = f"joint_moments: force plates sampled at different rates {rates} Hz"
        return _Moments(None, {}, [("joint_moments", why)])
    full = replace(
        rec_m,
        platforms=plates,
        analog_rate_hz=plates[0].rate_hz,
        meta={"source": str(rec.get("source_path") or rid)},
    )
    subject = replace(subject, body_mass_kg=float(mass))
    try:
        df = joint_moments(full, subject=subject, convention=convention)
        contacts = plate_contacts(full, subject=subject)
    except CxlabError as e:
        return _Moments(None, {}, [("joint_moments", str(e))])
    df["method"] = "cxlab-pig"
    warned = [
        (
            "joint_moments",
            f"warning, values kept: joint_moments: force plate {u.plate + 1} carried a load "
            f"in frames {u.start}-{u.stop - 1} that no foot could be given (a foot partly "
            "off the plate, both feet on it, or a marker gap); the moments of those frames "
            "lack that load",
        )
        for u in unassigned_loads(full, contacts)
    ]
    first: dict[str, float] = {}
    for c in sorted(contacts, key=lambda c: c.start):
        first.setdefault(c.side, c.start / full.point_rate_hz)
    return _Moments(df, first, warned, float(mass))


def _peaks(
    angles: pd.DataFrame,
    moments: pd.DataFrame | None,
    trial: Trial,
    cfg: FeatureConfig,
    source: str,
    contact_s: dict[str, float] | None,
    convention: str = "",
    body_mass_kg: float | None = None,
) -> list[Measure]:
    """3-D landing / single-leg-squat peak feature rows (from touchdown when there is one).

    With a body mass the peak knee abduction moment is also given in N·m
    (``knee_abduction_moment_peak_nm``), the unit of the published ACL-risk thresholds
    (Myer et al. 2011: > 25.25 N·m; the screen rule ``knee_abduction_moment_landing``).

    The knee abduction moment is searched in the first 0.1 s of each foot's own plate
    contact (``contact_s``; for ``file`` moments, whose contacts Nexus does not store,
    from the touchdown on the summed plates) and only after a touchdown.
    """
    from cxlab.features.landing import touchdown

    contact, window = 0.0, float(angles["time_s"].max())
    start = None
    if trial.plates:
        fz = np.sum([np.nan_to_num(p["fz"]) for p in trial.plates.values()], axis=0)
        try:
            contact = touchdown(fz, rate_hz=trial.analog_rate_hz) / trial.analog_rate_hz
            window, start = cfg.events.landing_window_s, "touchdown"
        except CxlabError:
            pass  # no flight before contact: a squat, peaks over the whole trial
    label = f"PiG angles, {convention} convention" if convention else "PiG angles"
    if source != "cxlab-pig":
        label = "PiG angles stored in the file"
    method = f"{label} (method {source}, docs/kinematics.md), peak in {window:g} s from " + (
        start or "trial start"
    )
    moment_window = 0.1
    kam: dict[str, float] = {}
    if start and moments is not None and len(moments):
        on = contact_s if contact_s is not None else {"left": contact, "right": contact}
        for side, t0 in on.items():
            for p in landing_3d_peaks(angles, moments, contact_s=t0, moment_window_s=moment_window):
                if p.side == side:
                    kam[side] = p.knee_abduction_moment_nm_per_kg
    where = "each foot's first plate contact" if contact_s is not None else "touchdown"
    rows = []
    for p in landing_3d_peaks(angles, contact_s=contact, angle_window_s=window):
        values = [
            ("knee_abduction_3d_peak_deg", p.knee_abduction_deg, "deg", method),
            ("hip_adduction_3d_peak_deg", p.hip_adduction_deg, "deg", method),
            ("hip_internal_rotation_3d_peak_deg", p.hip_internal_rotation_deg, "deg", method),
        ]
        if start:
            values.append(
                (
                    "knee_abduction_3d_at_contact_deg",
                    p.knee_abduction_at_contact_deg,
                    "deg",
                    f"PiG knee abduction at touchdown (Bates 2020; method {source})",
                )
            )
            values.append(
                (
                    "knee_abduction_moment_peak_nm_per_kg",
                    kam.get(p.side, float("nan")),
                    "N.m/kg",
                    f"peak external knee abduction moment in the first {moment_window:g} s "
                    f"after {where} (Hewett 2005; PiG inverse dynamics, method {source})",
                )
            )
            mass = np.nan if pd.isna(body_mass_kg) else float(body_mass_kg)
            mass = mass if mass > 0 else np.nan
            values.append(
                (
                    "knee_abduction_moment_peak_nm",
                    kam.get(p.side, float("nan")) * mass,
                    "N.m",
                    f"peak external knee abduction moment in the first {moment_window:g} s "
                    f"after {where} times the body mass {mass:g} kg (Hewett 2005, Myer 2011; "
                    f"method {source})",
                )
            )
        rows += [Measure(n, p.side, v, u, m) for n, v, u, m in values if np.isfinite(v)]
    return rows


def _ankle_by_side(file_angles: pd.DataFrame | None, n_frames: int) -> dict[str, np.ndarray]:
    """The file's stored ankle angles per side as (n_frames, 3) arrays, deg (NaN = none)."""
    out: dict[str, np.ndarray] = {}
    if file_angles is None or not len(file_angles):
        return out
    for side in ("left", "right"):
        rows = file_angles[(file_angles["side"] == side) & (file_angles["joint"] == "ankle")]
        frame = rows["frame"].to_numpy(dtype=np.int64)
        ok = (frame >= 0) & (frame < n_frames)
        if ok.any():
            a = np.full((n_frames, 3), np.nan)
            a[frame[ok]] = rows[list(kinematics.ANGLE_COLUMNS)].to_numpy(dtype=float)[ok]
            out[side] = a
    return out


def _convention(
    cfg: FeatureConfig, rec: dict, trial: Trial, file_angles: pd.DataFrame | None, /
) -> tuple[kinematics.ConventionChoice, list[tuple[str, str]]]:
    """The convention of the recording's cxlab-pig rows and the note saying why.

    ``[kinematics] convention = "auto"``: from the file's stored ankle angles and its own
    segment markers, else its vendor (:func:`cxlab.features.kinematics.convention_from_evidence`);
    a note (``warning, values kept``) when that is ``"vcm"``. An explicit setting wins, with
    a note when the file's evidence names the other convention.
    """
    n = max((np.asarray(v).shape[0] for v in trial.markers.values()), default=0)
    found = kinematics.convention_from_evidence(
        markers=trial.markers,
        ankle_angles=_ankle_by_side(file_angles, n),
        software=rec.get("vendor") or None,
    )
    setting = cfg.kinematics.convention
    if setting == "auto":
        notes = []
        if found.convention == "vcm":
            notes = [
                (
                    "joint_angles",
                    "warning, values kept: joint_angles: cxlab-pig angles and moments use "
                    f"the Vicon Clinical Manager convention because {found.reason}; set "
                    '[kinematics] convention = "nexus" to override',
                )
            ]
        return found, notes
    chosen = kinematics.ConventionChoice(setting, "set by [kinematics] convention")
    if found.convention != setting and not found.reason.startswith("default"):
        why = (
            "warning, values kept: joint_angles: [kinematics] convention = "
            f"{setting!r} used although {found.reason}, which is the {found.convention!r} "
            'convention; set it to "auto" to follow the file'
        )
        return chosen, [("joint_angles", why)]
    return chosen, []


def _write(store: Store, name: str, parts: list[pd.DataFrame], rec: dict, had: bool) -> tuple:
    rid = rec["recording_id"]
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        if had:
            store.delete(name, key=rid)
        return ()
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "recording_id", rid)
    df["frame"] = df["frame"].astype(np.int32)
    store.write(name, df, key=rid, partition=rec["subject_id"])
    return tuple(m for m in METHODS if (df["method"] == m).any())


def store_joint_tables(
    store: Store,
    rec: dict,
    trial: Trial,
    /,
    *,
    cfg: FeatureConfig,
    subject: kinematics.PigSubject | None,
    had: frozenset[str] = frozenset(),
    has_outputs: bool = False,
) -> JointTables:
    """Write one recording's ``joint_angles`` and ``joint_moments`` parts, both methods.

    Parameters
    ----------
    store : Store
    rec : dict
        The recording's ``recordings`` row.
    trial : Trial
        Its markers (m) and plates (``fz`` for touchdown), as the features runner read them.
    cfg : FeatureConfig
        The features configuration (``[kinematics] peak_tasks`` and ``convention``,
        ``[events] landing_window_s``).
    subject : PigSubject or None
        Measurements from ``[kinematics] measurements``; None = no ``cxlab-pig`` rows.
    had : frozenset of str
        Tables (``joint_angles``, ``joint_moments``) that already have a part for this
        recording, so a part that no longer applies is removed.
    has_outputs : bool
        Whether the recording has ``model_outputs`` rows (read only then).

    Returns
    -------
    JointTables
    """
    rid = rec["recording_id"]
    quarantine: list[tuple[str, str]] = []
    angles = moments = None
    contacts: dict[str, float] = {}
    file_angles = file_moments = None
    if has_outputs:
        outputs = store.table("model_outputs", filters=[("recording_id", "==", rid)])
        file_angles = file_joint_angles(outputs)
        file_moments = file_joint_moments(outputs, body_mass_kg=rec.get("body_mass_kg"))
    convention = ""
    moment_mass = float("nan")
    if kinematics.has_pig_markers(trial.markers):
        if subject is None:
            quarantine.append(
                (
                    "joint_angles",
                    "joint_angles: Plug-in Gait markers but no subject "
                    "measurements; add the subject to the CSV named by [kinematics] "
                    "measurements (docs/kinematics.md)",
                )
            )
        else:
            try:
                with np.errstate(all="ignore"):
                    choice, notes = _convention(cfg, rec, trial, file_angles)
                    convention = choice.convention
                    quarantine += notes
                    rec_m = kinematics.recording_from_markers(
                        trial.markers, rate_hz=trial.point_rate_hz
                    )
                    angles = kinematics.joint_angles(rec_m, subject=subject, convention=convention)
                    angles["method"] = "cxlab-pig"
                    got = _cxlab_moments(store, rec, rec_m, subject, trial, convention=convention)
                moments, contacts, moment_mass = got.table, got.contact_s, got.body_mass_kg
                quarantine += got.quarantine
            except CxlabError as e:
                quarantine.append(("joint_angles", str(e)))
    rows: list[Measure] = []
    if rec["task"] in cfg.kinematics.peak_tasks:
        if angles is not None and len(angles):
            rows = _peaks(
                angles, moments, trial, cfg, "cxlab-pig", contacts, convention, moment_mass
            )
        elif file_angles is not None and len(file_angles):
            rows = _peaks(
                file_angles, file_moments, trial, cfg, "file", None, "", rec.get("body_mass_kg")
            )
    methods = {
        "joint_angles": _write(
            store, "joint_angles", [angles, file_angles], rec, "joint_angles" in had
        ),
        "joint_moments": _write(
            store, "joint_moments", [moments, file_moments], rec, "joint_moments" in had
        ),
    }
    return JointTables(quarantine, rows, methods, (angles, file_angles), (moments, file_moments))
