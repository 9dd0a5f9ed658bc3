"""A store filled directly from :func:`cxlab.synth.simulate_truth` (no files, no ingest).

Fast fixture for the experiments, report and notebook tests. Feature rows are
built so that the analysis table's value is known exactly:

- three trials per session whose deviations sum to zero, so the trial mean is
  the simulated observed value;
- ``knee_fppa_peak_deg`` per side at ``observed -/+ valgus_side_offset_deg / 2``
  (mean of the sides = observed; left = observed - offset/2);
- LSI outcomes bilateral, with per-side ``landing_peak_force_n`` and its
  Robinson ``_asym_pct`` twin consistent with the LSI and the weaker side;
- balance velocity per stance leg (tasks ``balance_left``/``balance_right``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab.pseudo import pseudonymise
from cxlab.store import Store
from cxlab.synth import simulate_truth

SCORE_UNITS = {"pain_nrs": "points", "odi": "%"}
FEATURE_TASK = {
    "knee_fppa_peak_deg": "landing",
    "landing_peak_force_lsi_pct": "landing",
    "cmj_propulsive_impulse_lsi_pct": "cmj",
    "posture_cva_deg": "posture",
    "balance_mean_velocity_m_s": "balance",
}
UNITS = {"knee_fppa_peak_deg": "deg", "landing_peak_force_lsi_pct": "%",
         "cmj_propulsive_impulse_lsi_pct": "%", "posture_cva_deg": "deg",
         "balance_mean_velocity_m_s": "m/s", "landing_peak_force_n": "N",
         "landing_peak_force_asym_pct": "%"}
TRIAL_DEV = np.array([-1.0, 0.0, 1.0])  # x 0.3 x outcome SD; sums to zero


def _rid(*parts) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]


def truth_store(path: Path, n_subjects: int = 16, n_sessions: int = 3, *, seed: int = 7,
                quarantine: bool = True):
    """Write scores, features, interventions (and a quarantine row) for a simulated cohort.

    Returns
    -------
    (Store, CohortTruth)
    """
    truth = simulate_truth(n_subjects, n_sessions, seed=seed)
    store = Store(path)
    subj = truth.subjects.copy()
    subj["subject_id"] = [pseudonymise(lab) for lab in subj["label"]]
    ids = dict(zip(subj["label"], subj["subject_id"], strict=True))
    obs = truth.outcomes[truth.outcomes["observed"]].copy()
    obs["subject_id"] = obs["label"].map(ids)
    obs["date"] = pd.to_datetime(obs["date"]).dt.date
    age = dict(zip(subj["label"], subj["age_years"], strict=True))

    sc = obs[obs["outcome"].isin(SCORE_UNITS)]
    scores = pd.DataFrame({
        "subject_id": sc["subject_id"], "session": sc["session"], "date": sc["date"],
        "instrument": sc["outcome"], "score": sc["observed_value"],
        "unit": sc["outcome"].map(SCORE_UNITS), "n_items_answered": 10,
        "age_years": sc["label"].map(age)})
    store.write("scores", scores)

    start = pd.to_datetime(subj["start_date"]).dt.date
    store.write("interventions", pd.DataFrame({
        "subject_id": subj["subject_id"], "arm": subj["arm"], "start_date": start,
        "end_date": [d + pd.Timedelta(weeks=12) for d in start],
        "sessions_prescribed": 24, "sessions_attended": 20, "adherence": 20 / 24}))

    rows = []
    sd = obs.groupby("outcome")["observed_value"].std().to_dict()
    side_info = subj.set_index("label")
    for o, task in FEATURE_TASK.items():
        d = obs[obs["outcome"] == o]
        for k, dev in enumerate(TRIAL_DEV, start=1):
            v = d["observed_value"].to_numpy() + dev * 0.3 * sd[o]
            base = dict(subject_id=d["subject_id"].to_numpy(), session=d["session"].to_numpy(),
                        trial=str(k), feature=o, unit=UNITS[o], method="simulate_truth")
            lab = d["label"].to_numpy()
            if o == "knee_fppa_peak_deg":
                off = side_info.loc[lab, "valgus_side_offset_deg"].to_numpy()
                for s, sign in (("left", -1), ("right", 1)):
                    rows.append(pd.DataFrame({**base, "task": task, "side": s,
                                              "value": v + sign * off / 2}))
            elif o == "balance_mean_velocity_m_s":
                for s in ("left", "right"):
                    rows.append(pd.DataFrame({**base, "task": f"balance_{s}", "side": s,
                                              "value": v}))
            else:
                rows.append(pd.DataFrame({**base, "task": task, "side": "bilateral", "value": v}))
            if o == "landing_peak_force_lsi_pct":
                weak_left = side_info.loc[lab, "asymmetric_side"].to_numpy() == "left"
                strong = 2.0 * side_info.loc[lab, "body_mass_kg"].to_numpy() * 9.81
                weak = strong * np.minimum(v, 100) / 100
                left, right = np.where(weak_left, weak, strong), np.where(weak_left, strong, weak)
                f = {**base, "task": task, "feature": "landing_peak_force_n", "unit": "N"}
                rows.append(pd.DataFrame({**f, "side": "left", "value": left}))
                rows.append(pd.DataFrame({**f, "side": "right", "value": right}))
                rows.append(pd.DataFrame({**base, "task": task, "side": "bilateral",
                                          "feature": "landing_peak_force_asym_pct",
                                          "value": 100 * (right - left) / (0.5 * (right + left))}))
    feats = pd.concat(rows, ignore_index=True)
    feats["recording_id"] = [_rid(*t) for t in zip(feats["subject_id"], feats["session"],
                                                    feats["task"], feats["trial"], strict=True)]
    feats = feats[["recording_id", "subject_id", "session", "task", "trial", "feature", "side",
                   "value", "unit", "method"]]
    store.write("features", feats)
    if quarantine:
        store.append_quarantine(pd.DataFrame({
            "source_path": ["surveys.csv"], "source_sha256": [None], "stage": ["survey"],
            "row": [5], "field": ["subject"], "value": ["CX999"],
            "reason": ["surveys.csv: row 5: subject: label 'CX999' has no session date"]}),
            key="survey")
    return store, truth
