"""Which left and right values of a long features table may be compared, and how.

One rule, read by the experiment report's asymmetry table
(:func:`cxlab.experiments.analysis.asymmetry_table`), the client profile page
(:mod:`cxlab.screen.profile`) and the coach's weekly athlete page
(:mod:`cxlab.screen.athlete`):

* **same recording**: a left and a right value measured in one recording (both limbs at
  once, e.g. a bilateral jump on two plates) pair up; the pair of a task is the mean over
  the recordings that measured both sides.
* **separate single-leg trials**: a left-leg trial and a right-leg trial pair up only for
  the features declared in :data:`cxlab.features.tasks.SINGLE_LEG_METRICS` (performance
  outcomes of unilateral jump tests: jump height, propulsive impulse, peak power, RSI),
  whose limb symmetry index is by definition formed from separate trials (Bishop et al.
  2018, *Strength Cond J* 40(4):1-6). The pair is the mean of each leg's trials, named by
  the output task of :data:`~cxlab.features.tasks.SINGLE_LEG_PAIRS` (``cmj_single_leg``) —
  the same means as the stored ``*_lsi_pct`` / ``*_asym_pct`` of
  :func:`cxlab.features.battery.single_leg_lsi`. Body mass, hop or jump counts, protocol
  durations of a single-leg trial are never paired.
* Never paired at all: angles (unit ``deg``: a percentage of an angle near zero is not
  meaningful) and any feature with a value ≤ 0 anywhere in the table given (a signed
  quantity: the indices need a ratio scale).
* Per task: a feature measured in two tasks is two pairs, never one mean across tasks.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from cxlab.features.tasks import SINGLE_LEG_METRICS, SINGLE_LEG_PAIRS

__all__ = [
    "PAIR_COLUMNS",
    "SAME_RECORDING",
    "SAME_SESSION",
    "SEPARATE_TRIALS",
    "Pairing",
    "side_pairs",
]

Pairing = Literal["same recording", "same session", "separate single-leg trials"]
SAME_RECORDING: Pairing = "same recording"
SAME_SESSION: Pairing = "same session"
SEPARATE_TRIALS: Pairing = "separate single-leg trials"

PAIR_COLUMNS = [
    "subject_id",
    "session",
    "task",
    "feature",
    "unit",
    "pairing",
    "left",
    "right",
    "n_left",
    "n_right",
]
_MEASURE = ["subject_id", "session", "task", "feature", "unit"]
_TRIAL = ["_trial"]


def _side_means(d: pd.DataFrame, /) -> pd.DataFrame:
    """Mean per measure x trial x side, sides as columns (NaN where a side is missing)."""
    g = d.groupby([*_MEASURE, *_TRIAL, "side"], dropna=False, sort=True)["value"].mean()
    wide = g.unstack("side")
    for s in ("left", "right"):
        if s not in wide:
            wide[s] = np.nan
    return wide[["left", "right"]]


def side_pairs(features: pd.DataFrame, /) -> pd.DataFrame:
    """Left/right pairs of every feature that may be compared, per subject x session x task.

    Parameters
    ----------
    features : pandas.DataFrame
        Long ``features`` table (``recording_id``, ``subject_id``, ``session``, ``task``,
        ``trial``, ``feature``, ``side``, ``value``, ``unit``); rows of other sides are
        ignored. A trial is one ``recording_id``; rows without one are one trial per
        ``trial`` label, and rows with neither one group per session (``same session``).

    Returns
    -------
    pandas.DataFrame
        :data:`PAIR_COLUMNS`: ``subject_id``, ``session``, ``task`` (for separate single-leg
        trials the output task of ``SINGLE_LEG_PAIRS``), ``feature``, ``unit``, ``pairing``
        (:data:`Pairing`: ``same recording``, ``same session`` or ``separate single-leg
        trials``), ``left`` and ``right`` (the mean over trials, in ``unit``),
        ``n_left`` and ``n_right`` (trials per side; equal for ``same recording``). Sorted
        by subject, session, task, feature, unit.
    """
    d = features[features["side"].isin(["left", "right"])]
    d = d[np.isfinite(d["value"].to_numpy(float)) & (d["unit"] != "deg")]
    ratio = d.groupby("feature")["value"].min() > 0
    d = d[d["feature"].map(ratio).fillna(False).to_numpy(bool)]
    label = "trial " + d["trial"].astype("string")
    d = d.assign(_trial=d["recording_id"].astype("string").fillna(label))
    parts = []

    per_trial = _side_means(d).dropna()
    per_trial["_norec"] = per_trial.index.get_level_values("_trial").isna()
    same = (
        per_trial.groupby([*_MEASURE, "_norec"], dropna=False, sort=True)
        .agg(left=("left", "mean"), right=("right", "mean"), n_left=("left", "size"))
        .reset_index("_norec")
    )
    kind = np.where(same.pop("_norec").to_numpy(bool), SAME_SESSION, SAME_RECORDING)
    parts.append(same.assign(n_right=same["n_left"], pairing=kind).reset_index())

    for out_task, (lt, rt) in SINGLE_LEG_PAIRS.items():
        legs = d[d["task"].isin([lt, rt]) & d["feature"].isin(SINGLE_LEG_METRICS[out_task])]
        g = legs.assign(task=out_task).groupby(
            [*_MEASURE, *_TRIAL, "side"], dropna=False, sort=True
        )["value"]
        trials = g.mean().reset_index()
        sides = (
            trials.groupby([*_MEASURE, "side"], dropna=False, sort=True)["value"]
            .agg(["mean", "size"])
            .unstack("side")
            .dropna()
        )
        if sides.empty or not {"left", "right"} <= set(sides.columns.get_level_values(1)):
            continue
        parts.append(
            pd.DataFrame(
                {
                    "left": sides["mean"]["left"],
                    "right": sides["mean"]["right"],
                    "n_left": sides["size"]["left"],
                    "n_right": sides["size"]["right"],
                    "pairing": SEPARATE_TRIALS,
                }
            ).reset_index()
        )
    out = pd.concat([p for p in parts if len(p)] or [parts[0]], ignore_index=True)
    out = out.astype({"n_left": "int64", "n_right": "int64"})
    out = out.sort_values(_MEASURE, kind="stable", ignore_index=True)
    return out[PAIR_COLUMNS]
