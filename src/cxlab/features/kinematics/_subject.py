"""PiG subject measurements: the C3D ``PROCESSING`` group or a lab CSV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, InputFormatError, message
from cxlab.io.recording import Recording

Side = Literal["left", "right"]
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
