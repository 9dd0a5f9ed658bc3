"""The vendor's Plug-in Gait outputs (``model_outputs``) as ``joint_angles`` /
``joint_moments`` rows with method ``"file"``."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab.features.kinematics import ANGLE_COLUMNS
from cxlab.features.kinetics import MOMENT_COLUMNS

#: joint -> Plug-in Gait output name without the side letter (Vicon PiG reference guide).
FILE_ANGLE_LABELS = {
    "pelvis": "PelvisAngles",
    "hip": "HipAngles",
    "knee": "KneeAngles",
    "ankle": "AnkleAngles",
    "foot_progression": "FootProgressAngles",
}
FILE_MOMENT_LABELS = {"hip": "HipMoment", "knee": "KneeMoment", "ankle": "AnkleMoment"}
FILE_POWER_LABELS = {"hip": "HipPower", "knee": "KneePower", "ankle": "AnklePower"}
_SIDE_LETTER = {"left": "L", "right": "R"}


class _Output(NamedTuple):
    frame: np.ndarray  # (n,) int32
    time_s: np.ndarray  # (n,) s
    xyz: np.ndarray  # (n, 3), NaN where Nexus wrote 0, 0, 0
    unit: str


def _outputs_by_label(outputs: pd.DataFrame, labels: list[str]) -> dict[str, _Output]:
    """``labels`` present in ``outputs``, each sorted by frame (one pass, no per-label
    filtering of the long table)."""
    keep = outputs[outputs["label"].isin(labels)]
    if not len(keep):
        return {}
    label = keep["label"].to_numpy(dtype=object)
    frame = keep["frame"].to_numpy(dtype=np.int32)
    order = np.lexsort((frame, label))
    label, frame = label[order], frame[order]
    time_s = keep["time_s"].to_numpy(dtype=float)[order]
    xyz = keep[["x", "y", "z"]].to_numpy(dtype=float, copy=True)[order]
    unit = keep["unit"].to_numpy(dtype=object)[order]
    # Nexus writes 0, 0, 0 where the model gave no output (before the first valid frame,
    # outside stance for forces): that is "missing", not a zero angle or moment.
    xyz[(xyz == 0).all(axis=1)] = np.nan
    names, first = np.unique(label, return_index=True)
    bounds = [*first[1:], len(label)]
    return {
        str(n): _Output(frame[i:j], time_s[i:j], xyz[i:j], str(unit[i]))
        for n, i, j in zip(names, first, bounds, strict=True)
    }


def _long(blocks: list[tuple[str, str, _Output, np.ndarray]], cols: list[str]) -> pd.DataFrame:
    """One long frame from (side, joint, output, values (n, k)) blocks."""
    if not blocks:
        return pd.DataFrame(columns=["frame", "time_s", "side", "joint", *cols, "method"])
    sizes = [len(b[2].frame) for b in blocks]
    values = np.concatenate([b[3] for b in blocks])
    return pd.DataFrame(
        {
            "frame": np.concatenate([b[2].frame for b in blocks]),
            "time_s": np.concatenate([b[2].time_s for b in blocks]),
            "side": np.repeat([b[0] for b in blocks], sizes),
            "joint": np.repeat([b[1] for b in blocks], sizes),
            **{c: values[:, i] for i, c in enumerate(cols)},
            "method": "file",
        }
    )


def file_joint_angles(outputs: pd.DataFrame, /) -> pd.DataFrame:
    """``joint_angles`` rows (method ``"file"``) from a recording's ``model_outputs`` rows.

    Parameters
    ----------
    outputs : DataFrame
        ``model_outputs`` rows of one recording (``frame``, ``time_s``, ``label``,
        ``kind``, ``x``, ``y``, ``z``, ``unit``), labels without subject prefix.

    Returns
    -------
    DataFrame
        ``frame``, ``time_s``, ``side``, ``joint``, ``flexion_deg``, ``adduction_deg``,
        ``internal_rotation_deg``, ``method`` (= ``"file"``): the stored PiG X, Y, Z
        components, which already are flexion, adduction and internal rotation in PiG's
        signs (the table :data:`cxlab.features.kinematics.PIG_SIGNS` reproduces). Frames
        where Nexus wrote 0, 0, 0 (no output) are NaN. Empty when the file has none.
    """
    wanted = {(s, j): L + n for s, L in _SIDE_LETTER.items() for j, n in FILE_ANGLE_LABELS.items()}
    found = _outputs_by_label(outputs[outputs["kind"] == "angle"], list(wanted.values()))
    blocks = [(s, j, found[lab], found[lab].xyz) for (s, j), lab in wanted.items() if lab in found]
    return _long(blocks, list(ANGLE_COLUMNS))


def _per_kg(out: _Output, body_mass_kg: float | None) -> np.ndarray | None:
    """The components in per-kg units (N.m/kg, W/kg), or None when that is unknowable."""
    if out.unit.endswith("/kg"):
        return out.xyz
    if body_mass_kg and np.isfinite(body_mass_kg) and body_mass_kg > 0:
        return out.xyz / body_mass_kg
    return None


def file_joint_moments(
    outputs: pd.DataFrame, /, *, body_mass_kg: float | None = None
) -> pd.DataFrame:
    """``joint_moments`` rows (method ``"file"``) from a recording's ``model_outputs`` rows.

    Parameters
    ----------
    outputs : DataFrame
        ``model_outputs`` rows of one recording (see :func:`file_joint_angles`); moments
        in ``N.m/kg`` or ``N.m``, powers in ``W/kg`` or ``W`` as the reader decided them
        (Nexus stores them per kg although its C3D says N·mm and W:
        :mod:`cxlab.io._c3d_outputs` resolves that trap at ingest).
    body_mass_kg : float, optional
        Divides absolute (``N.m``, ``W``) outputs; without it such outputs are left out.

    Returns
    -------
    DataFrame
        ``frame``, ``time_s``, ``side``, ``joint`` ("hip", "knee", "ankle"),
        ``flexion_nm_per_kg``, ``adduction_nm_per_kg``, ``internal_rotation_nm_per_kg``
        (PiG's X, Y, Z), ``power_w_per_kg`` (PiG stores the joint power in Z),
        ``method`` (= ``"file"``); NaN where Nexus wrote 0, 0, 0.
    """
    wanted = [
        L + names[j]
        for L in _SIDE_LETTER.values()
        for names in (FILE_MOMENT_LABELS, FILE_POWER_LABELS)
        for j in names
    ]
    found = _outputs_by_label(outputs[outputs["kind"].isin(["moment", "power"])], wanted)
    blocks = []
    for side, letter in _SIDE_LETTER.items():
        for joint, name in FILE_MOMENT_LABELS.items():
            w = found.get(letter + name)
            m = None if w is None else _per_kg(w, body_mass_kg)
            if m is None:
                continue
            power = np.full(len(w.frame), np.nan)
            pw = found.get(letter + FILE_POWER_LABELS[joint])
            p = None if pw is None else _per_kg(pw, body_mass_kg)
            if p is not None:
                at = pd.Series(p[:, 2], index=pw.frame)
                power = at.reindex(w.frame).to_numpy(dtype=float)
            blocks.append((side, joint, w, np.column_stack([m, power])))
    return _long(blocks, [*MOMENT_COLUMNS, "power_w_per_kg"])
