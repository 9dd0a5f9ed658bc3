"""Strength ratios and limb symmetry from the ``strength`` table (dynamometer peak torques)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab.features.asymmetry import weaker_limb_lsi
from cxlab.schemas import schema_of

__all__ = ["strength_features"]

_RATIOS = {  # feature: (numerator, denominator, method)
    "strength_hq_ratio": (
        "knee_flexors",
        "knee_extensors",
        "knee flexor / knee extensor peak torque (H:Q)",
    ),
    "strength_er_ir_ratio": (
        "shoulder_er",
        "shoulder_ir",
        "shoulder external / internal rotator peak torque",
    ),
}


def strength_features(df: pd.DataFrame, /) -> pd.DataFrame:
    """H:Q and ER:IR ratios per side and the LSI of every muscle group.

    Parameters
    ----------
    df : pandas.DataFrame
        The ``strength`` table: ``subject_id``, ``session``, ``muscle_group``, ``side``
        (left/right), ``peak_torque_nm`` (N·m). Repeated rows are averaged.

    Returns
    -------
    pandas.DataFrame
        Rows of the ``features`` table (``recording_id``, ``task`` and ``trial`` empty):
        ``strength_hq_ratio`` and ``strength_er_ir_ratio`` per side (unit ``1``) where
        both groups exist, and ``strength_<muscle_group>_lsi_pct`` = 100·min(L,R)/max(L,R)
        (bilateral, ``%``) where both sides exist. Missing torques give no row.
    """
    cols = schema_of("features").names
    d = df.dropna(subset=["peak_torque_nm"])
    if d.empty:
        return pd.DataFrame(columns=cols)
    w = d.pivot_table(
        index=["subject_id", "session", "side"],
        columns="muscle_group",
        values="peak_torque_nm",
        aggfunc="mean",
    ).reset_index()
    parts = []
    for feat, (num, den, method) in _RATIOS.items():
        if num in w and den in w:
            with np.errstate(divide="ignore", invalid="ignore"):
                val = w[num] / w[den].where(w[den] > 0)
            parts.append(
                pd.DataFrame(
                    {
                        "subject_id": w["subject_id"],
                        "session": w["session"],
                        "feature": feat,
                        "side": w["side"],
                        "value": val,
                        "unit": "1",
                        "method": method,
                    }
                )
            )
    s = d.pivot_table(
        index=["subject_id", "session", "muscle_group"],
        columns="side",
        values="peak_torque_nm",
        aggfunc="mean",
    ).reset_index()
    if "left" in s and "right" in s:
        lv, rv = s["left"].to_numpy(float), s["right"].to_numpy(float)
        parts.append(
            pd.DataFrame(
                {
                    "subject_id": s["subject_id"],
                    "session": s["session"],
                    "feature": "strength_" + s["muscle_group"].astype(str) + "_lsi_pct",
                    "side": "bilateral",
                    "value": weaker_limb_lsi(lv, rv),
                    "unit": "%",
                    "method": "100 min(L,R)/max(L,R)",
                }
            )
        )
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    out = out.dropna(subset=["value"])
    for c in ("recording_id", "task", "trial"):
        out[c] = None
    return out[cols].sort_values(["subject_id", "session", "feature", "side"], ignore_index=True)
