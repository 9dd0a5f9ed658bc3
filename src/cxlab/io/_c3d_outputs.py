"""What a C3D file holds beside markers and analogs: model outputs and segment poses.

Model outputs
-------------
POINT:ANGLES / FORCES / MOMENTS / POWERS / SCALARS name points that are not markers but
outputs of a model (Vicon Plug-in Gait and others). Both engines set them apart
(``meta["points_other"]``, :func:`cxlab.io._c3d_params.split_points`); here they become a
typed :class:`~cxlab.io.recording.ModelOutputs` with decided units:

* angles in degrees (``deg``; ``rad`` is converted);
* forces, moments, powers: Plug-in Gait writes them **per kg of body mass** although
  POINT:FORCE_UNITS / MOMENT_UNITS / POWER_UNITS say ``N``, ``Nmm``, ``W``. The reader decides
  from evidence in the file (:func:`per_kg_evidence`): the peak force plate reaction against
  the peak model ground reaction (their ratio is the body mass when the outputs are per kg,
  1 when they are in N), PROCESSING:Bodymass, or, lacking both, the magnitude. Stored units
  are then ``N/kg``, ``N.m/kg`` (N·mm/kg → N·m/kg), ``W/kg``; otherwise ``N``, ``N.m``, ``W``.
  ``*NormalisedGRF`` outputs are the ground reaction in percent of body weight (``%BW``:
  per-kg force × 100 / g).
* scalars in the unit POINT:SCALAR_UNITS states.

Rotations
---------
A ROTATION group (Theia markerless exports) describes a separate data section starting at
block ROTATION:DATA_START: per pose frame (ROTATION:RATIO per point frame), per segment
(ROTATION:USED), 16 float32 of a 4×4 homogeneous pose in column-major order followed by one
float32 *reliability* (negative = invalid). Layout as ezc3d reads it (``Rotation.cpp``,
ezc3d 1.5+; Michaud & Begon, 2021). The position column is in POINT:UNITS and is stored in m.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cxlab._check import InputFormatError, message
from cxlab.io.recording import ModelOutputs, Recording, Rotations
from cxlab.units import G

__all__ = ["PerKg", "attach_outputs", "model_outputs", "per_kg_evidence", "read_rotations"]

_PER_KG_UNIT = {"force": "N/kg", "moment": "N.m/kg", "power": "W/kg"}
_ABS_UNIT = {"force": "N", "moment": "N.m", "power": "W"}
# Typical peak magnitudes of per-kg outputs in gait/jumping (Winter, 2009, ch. 5): GRF ~1-3 g
# per kg, joint moments ~1-3 N·m/kg, joint powers ~1-5 W/kg.
_TYPICAL_PER_KG = {"force": 1.5 * G, "moment": 1.5, "power": 3.0}
# Absolute peaks below these are implausible for a person (N, N·m, W)
_MIN_ABSOLUTE = {"force": 100.0, "moment": 10.0, "power": 30.0}


class PerKg(NamedTuple):
    """The decision on force/moment/power units and the evidence it rests on."""

    per_kg: bool
    evidence: str
    strong: bool  # decided from plates or body mass, not from magnitude alone


def _is_normalised(label: str) -> bool:
    low = label.lower()
    return "normalised" in low or "normalized" in low


def _peak(values: np.ndarray) -> float:
    """Largest vector magnitude over frames and outputs, NaN if none is finite."""
    if values.size == 0:
        return math.nan
    # the squared norm summed x, y, z in the order np.nansum(axis=-1) sums a 3-vector
    # (NaN as 0), and sqrt once of the largest (sqrt is monotonic and correctly rounded):
    # the same number without nansum's copies and a reduction over a length-3 axis (0.3 ms
    # for a 1.4 MB gait file's plates)
    sq = values * values
    np.copyto(sq, 0.0, where=np.isnan(sq))
    norm2 = sq[..., 0] + sq[..., 1] + sq[..., 2]
    del sq
    np.copyto(norm2, np.nan, where=~np.isfinite(values).any(axis=-1))
    if not np.isfinite(norm2).any():
        return math.nan
    return float(np.sqrt(np.nanmax(norm2)))


def per_kg_evidence(
    values: np.ndarray,
    labels: list[str],
    kinds: list[str],
    /,
    *,
    body_mass_kg: float | None,
    plate_peak_n: float | None,
) -> PerKg | None:
    """Decide whether force/moment/power outputs are per kg of body mass.

    Parameters
    ----------
    values : ndarray, shape (n_frames, n_outputs, 3)
        Outputs in the file's units (moments already in N·m or N·m/kg).
    labels, kinds : list of str
    body_mass_kg : float, optional
        PROCESSING:Bodymass (or another stated mass), kg.
    plate_peak_n : float, optional
        Peak magnitude of the force-plate reaction of the trial, N.

    Returns
    -------
    PerKg or None
        None when there is no force, moment or power output.

    Notes
    -----
    In order: (1) plates and a model ground reaction (or joint force): the ratio
    plate peak / model peak is the body mass when per kg, ~1 when in N; the nearer (in log)
    wins, against the stated mass if any, else per kg when the ratio exceeds 5 (kg).
    (2) A stated mass: the model's peak against the typical per-kg peak and against it
    times the mass. (3) Magnitude alone: per kg when the peak is below what a person produces
    in absolute units (100 N, 10 N·m, 30 W); reported as weak evidence.
    """
    mass = body_mass_kg if body_mass_kg and np.isfinite(body_mass_kg) and body_mass_kg > 0 else None
    forces = [i for i, k in enumerate(kinds) if k == "force" and not _is_normalised(labels[i])]
    grf = [
        i
        for i in forces
        if "groundreaction" in labels[i].lower().replace(" ", "")
        or labels[i].lower().endswith("grf")
    ]
    if forces and plate_peak_n and np.isfinite(plate_peak_n) and plate_peak_n > 50:
        ref = grf or forces
        model = _peak(values[:, ref])
        if np.isfinite(model) and model > 0:
            r = plate_peak_n / model
            what = "ground reaction" if grf else "joint force"
            if mass:
                per_kg = abs(math.log(r / mass)) < abs(math.log(r))
                ev = (
                    f"plate peak {plate_peak_n:.0f} N / model {what} peak {model:.2f} = "
                    f"{r:.1f}, body mass {mass:g} kg"
                )
            else:
                per_kg = r > 5
                ev = f"plate peak {plate_peak_n:.0f} N / model {what} peak {model:.2f} = {r:.1f}"
            return PerKg(bool(per_kg), ev, True)
    for kind in ("force", "moment", "power"):
        idx = forces if kind == "force" else [i for i, k in enumerate(kinds) if k == kind]
        if not idx:
            continue
        peak = _peak(values[:, idx])
        if not np.isfinite(peak) or peak <= 0:
            continue
        typical = _TYPICAL_PER_KG[kind]
        if mass:
            per_kg = abs(math.log(peak / typical)) < abs(math.log(peak / (typical * mass)))
            return PerKg(
                bool(per_kg),
                f"model {kind} peak {peak:.3g} against a typical "
                f"{typical:g} per kg and body mass {mass:g} kg",
                True,
            )
        per_kg = peak < _MIN_ABSOLUTE[kind]
        return PerKg(
            bool(per_kg),
            f"model {kind} peak {peak:.3g} (no plates or body mass to compare with)",
            False,
        )
    return None


def _body_mass(params: dict[str, Any]) -> float | None:
    proc = {k.upper(): v for k, v in params.get("PROCESSING", {}).items()}
    v = proc.get("BODYMASS")
    v = v[0] if isinstance(v, list) and v else v
    try:
        m = float(v)
    except (TypeError, ValueError):
        return None
    return m if np.isfinite(m) and 0 < m < 500 else None


def model_outputs(rec: Recording, /) -> ModelOutputs | None:
    """The recording's model outputs with decided units (see the module docstring).

    Uses ``rec.meta["points_other"]`` (both engines), ``rec.meta["parameters"]`` (units,
    PROCESSING:Bodymass) and ``rec.platforms`` (evidence). Appends a sentence to
    ``rec.warnings`` when the per-kg decision rests on magnitude alone.
    """
    other = rec.meta.get("points_other") or {}
    labels = [str(x) for x in other.get("labels", [])]
    if not labels:
        return None
    values = np.array(other["values"], dtype=float, copy=True)
    kinds = list(other["kinds"])
    units = [str(u).strip() for u in other["units"]]
    params = rec.meta.get("parameters", {})
    mass = rec.meta.get("body_mass_kg") or _body_mass(params)
    peaks = [_peak(p.force[:, None, :]) for p in rec.platforms if p.force.size]
    plate_peak = max((p for p in peaks if np.isfinite(p)), default=None)
    decision = per_kg_evidence(values, labels, kinds, body_mass_kg=mass, plate_peak_n=plate_peak)
    out_units = []
    for j, (lab, kind, unit) in enumerate(zip(labels, kinds, units, strict=True)):
        low = unit.lower()
        if kind == "angle":
            if low in ("rad", "radian", "radians"):
                values[:, j] = np.degrees(values[:, j])
            out_units.append("deg")
        elif kind in _ABS_UNIT:
            if "/kg" in low or "%" in low:
                out_units.append(unit)  # the file already says it
            elif kind == "force" and _is_normalised(lab) and decision and decision.per_kg:
                out_units.append("%BW")
            elif decision is not None and decision.per_kg:
                out_units.append(_PER_KG_UNIT[kind])
            else:
                out_units.append(_ABS_UNIT[kind])
        else:
            out_units.append(unit)
    if decision is not None:
        rec.meta["model_outputs_units"] = {"per_kg": decision.per_kg, "evidence": decision.evidence}
        if not decision.strong:
            rec.warnings.append(
                f"model outputs taken as {'per kg' if decision.per_kg else 'absolute'} "
                f"from their magnitude only ({decision.evidence}); check POINT:*_UNITS"
            )
    return ModelOutputs(
        values=values, labels=labels, kinds=kinds, units=out_units, rate_hz=float(rec.point_rate_hz)
    )


def read_rotations(buf: bytes, path: Path, /) -> Rotations | None:
    """Decode the ROTATION section of a C3D file, or None when it has none.

    Raises
    ------
    InputFormatError
        A ROTATION parameter is missing or inconsistent with the file's length (checked
        before anything is allocated).
    """
    from cxlab.io._c3d_header import BLOCK, dec_to_float32, read_header, read_parameters
    from cxlab.io._c3d_params import _concat, _num, _str, length_factor

    h = read_header(buf, path)
    params = read_parameters(buf, path, h)
    rot = params.get("ROTATION")
    if not rot:
        return None
    used = _num(rot, "USED", 0) or 0
    if used <= 0:
        return None

    def bad(field: str, value: object, problem: str) -> InputFormatError:
        return InputFormatError(
            message(
                problem,
                file=path,
                field=f"ROTATION:{field}",
                value=value,
                fix="the file is corrupt; re-export it",
            )
        )

    if used != int(used) or used > 65535:
        raise bad("USED", used, "must be a whole number of segments")
    used = int(used)
    start = _num(rot, "DATA_START")
    if start is None or start != int(start) or not 2 <= start <= len(buf) // BLOCK:
        raise bad("DATA_START", start, "must be a block inside the file")
    ratio = _num(rot, "RATIO")
    if ratio is None and _num(rot, "RATE") and h.rate_hz > 0:
        ratio = round((_num(rot, "RATE") or 0) / h.rate_hz)
    if ratio is None or ratio != int(ratio) or not 1 <= ratio <= 1000:
        raise bad("RATIO", ratio, "must be a whole number of poses per frame")
    n_frames = h.last_frame - h.first_frame + 1 if h.last_frame >= h.first_frame else 0
    n = n_frames * int(ratio)
    offset = (int(start) - 1) * BLOCK
    need = n * used * 17 * 4
    if offset + need > len(buf):
        raise bad(
            "USED",
            used,
            f"{n} poses of {used} segments need {need} bytes from block "
            f"{int(start)} but the file holds {len(buf) - offset}",
        )
    word = "<u4" if h.processor == "dec" else h.endian + "f4"
    raw = np.frombuffer(buf, dtype=word, count=n * used * 17, offset=offset)
    data = (dec_to_float32(raw) if h.processor == "dec" else raw).astype(np.float64)
    data = data.reshape(n, used, 17)
    pose = data[..., :16].reshape(n, used, 4, 4).transpose(0, 1, 3, 2)  # column-major
    invalid = ~(data[..., 16] >= 0) | ~np.isfinite(pose).all(axis=(-2, -1))
    length_m = length_factor(_str(params.get("POINT", {}), "UNITS", "mm"), path=path)
    matrices = pose[..., :3, :3].copy()
    positions = pose[..., :3, 3] * length_m
    matrices[invalid] = np.nan
    positions[invalid] = np.nan
    labels = [str(x).strip() for x in _concat(rot, "LABELS")][:used]
    labels += [f"segment_{i + 1}" for i in range(len(labels), used)]
    segments = [lab[:-4] if lab.upper().endswith("_4X4") else lab for lab in labels]
    rate = h.rate_hz * int(ratio)
    return Rotations(matrices=matrices, positions=positions, segments=segments, rate_hz=float(rate))


def _rotation_warnings(rot: Rotations, /) -> list[str]:
    """Poses whose 3×3 part is not a proper rotation (RᵀR = I, det R = +1) within 1e-3."""
    m = rot.matrices
    ok = np.isfinite(m).all(axis=(-2, -1))
    if not ok.any():
        return []
    r = m[ok]
    err = np.abs(np.einsum("nki,nkj->nij", r, r) - np.eye(3)).max(axis=(-2, -1))
    det = np.linalg.det(r)
    bad = (err > 1e-3) | (np.abs(det - 1) > 1e-3)
    if not bad.any():
        return []
    return [
        f"{int(bad.sum())} of {r.shape[0]} segment poses are not proper "
        f"rotations (largest |RᵀR - I| {err.max():.2g}, det down to {det.min():.3g}); "
        "check the exporting software"
    ]


def attach_outputs(rec: Recording, path: Path, /) -> None:
    """Set ``rec.model_outputs`` and ``rec.rotations`` (and ``meta["body_mass_kg"]`` from
    PROCESSING:Bodymass when no reader set it); called once by :func:`~cxlab.io.c3d.read_c3d`
    for either engine. The file is read again only when it has a ROTATION group (the
    reader does not keep the whole file's bytes in memory for that)."""
    mass = _body_mass(rec.meta.get("parameters", {}))
    if mass is not None:
        rec.meta.setdefault("body_mass_kg", mass)
    rec.model_outputs = model_outputs(rec)
    if "ROTATION" in rec.meta.get("parameters", {}):
        rec.rotations = read_rotations(path.read_bytes(), path)
        if rec.rotations is not None:
            rec.warnings.extend(_rotation_warnings(rec.rotations))
