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
UNITS = {
    "knee_fppa_peak_deg": "deg",
    "landing_peak_force_lsi_pct": "%",
    "cmj_propulsive_impulse_lsi_pct": "%",
    "posture_cva_deg": "deg",
    "balance_mean_velocity_m_s": "m/s",
    "landing_peak_force_n": "N",
    "landing_peak_force_asym_pct": "%",
}
TRIAL_DEV = np.array([-1.0, 0.0, 1.0])  # x 0.3 x outcome SD; sums to zero


def _rid(*parts) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]


def truth_store(
    path: Path,
    n_subjects: int = 16,
    n_sessions: int = 3,
    *,
    seed: int = 7,
    quarantine: bool = True,
    curves: bool = False,
):
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
    scores = pd.DataFrame(
        {
            "subject_id": sc["subject_id"],
            "session": sc["session"],
            "date": sc["date"],
            "instrument": sc["outcome"],
            "score": sc["observed_value"],
            "unit": sc["outcome"].map(SCORE_UNITS),
            "n_items_answered": 10,
            "age_years": sc["label"].map(age),
        }
    )
    store.write("scores", scores)

    start = pd.to_datetime(subj["start_date"]).dt.date
    store.write(
        "interventions",
        pd.DataFrame(
            {
                "subject_id": subj["subject_id"],
                "arm": subj["arm"],
                "start_date": start,
                "end_date": [d + pd.Timedelta(weeks=12) for d in start],
                "sessions_prescribed": 24,
                "sessions_attended": 20,
                "adherence": 20 / 24,
            }
        ),
    )

    rows = []
    sd = obs.groupby("outcome")["observed_value"].std().to_dict()
    side_info = subj.set_index("label")
    for o, task in FEATURE_TASK.items():
        d = obs[obs["outcome"] == o]
        for k, dev in enumerate(TRIAL_DEV, start=1):
            v = d["observed_value"].to_numpy() + dev * 0.3 * sd[o]
            base = dict(
                subject_id=d["subject_id"].to_numpy(),
                session=d["session"].to_numpy(),
                trial=str(k),
                feature=o,
                unit=UNITS[o],
                method="simulate_truth",
            )
            lab = d["label"].to_numpy()
            if o == "knee_fppa_peak_deg":
                off = side_info.loc[lab, "valgus_side_offset_deg"].to_numpy()
                for s, sign in (("left", -1), ("right", 1)):
                    rows.append(
                        pd.DataFrame({**base, "task": task, "side": s, "value": v + sign * off / 2})
                    )
            elif o == "balance_mean_velocity_m_s":
                for s in ("left", "right"):
                    rows.append(
                        pd.DataFrame({**base, "task": f"balance_{s}", "side": s, "value": v})
                    )
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
                rows.append(
                    pd.DataFrame(
                        {
                            **base,
                            "task": task,
                            "side": "bilateral",
                            "feature": "landing_peak_force_asym_pct",
                            "value": 100 * (right - left) / (0.5 * (right + left)),
                        }
                    )
                )
    feats = pd.concat(rows, ignore_index=True)
    feats["recording_id"] = [
        _rid(*t)
        for t in zip(
            feats["subject_id"], feats["session"], feats["task"], feats["trial"], strict=True
        )
    ]
    feats = feats[
        [
            "recording_id",
            "subject_id",
            "session",
            "task",
            "trial",
            "feature",
            "side",
            "value",
            "unit",
            "method",
        ]
    ]
    store.write("features", feats)
    if curves:
        store.write("curves", landing_curves(feats, subj.set_index("subject_id")["arm"], seed=seed))
    if quarantine:
        store.append_quarantine(
            pd.DataFrame(
                {
                    "source_path": ["surveys.csv"],
                    "source_sha256": [None],
                    "stage": ["survey"],
                    "row": [5],
                    "field": ["subject"],
                    "value": ["CX999"],
                    "reason": ["surveys.csv: row 5: subject: label 'CX999' has no session date"],
                }
            ),
            key="survey",
        )
    return store, truth


#: landing-curve truth: ``hip_strengthening`` lowers the impact peak (5-20 % of the phase)
#: by this many body weights per session after the first; every other arm is null.
CURVE_EFFECT_BW = 0.25
CURVE_EFFECT_PCT = (5.0, 20.0)


def landing_curves(feats: pd.DataFrame, arms: pd.Series, *, seed: int) -> pd.DataFrame:
    """Landing vertical-force curves (BW, 101 nodes) for every landing recording of ``feats``.

    Shape: an impact spike at 10 % and an absorption hump at 40 % of the phase, scaled per
    participant; the ``hip_strengthening`` arm loses :data:`CURVE_EFFECT_BW` x session
    index of the spike inside :data:`CURVE_EFFECT_PCT`; smooth noise (0.1 BW, Gaussian
    kernel of 8 nodes) on every trial.
    """
    rng = np.random.default_rng(seed + 1)
    rec = (
        feats[feats["task"] == "landing"]
        .drop_duplicates("recording_id")[["recording_id", "subject_id", "session", "task", "trial"]]
        .sort_values("recording_id")
        .reset_index(drop=True)
    )
    pct = np.linspace(0.0, 100.0, 101)
    spike = 2.0 * np.exp(-0.5 * ((pct - 10.0) / 3.5) ** 2)
    hump = 1.2 * np.exp(-0.5 * ((pct - 40.0) / 15.0) ** 2)
    lo, hi = CURVE_EFFECT_PCT
    u = np.clip((pct - lo) / (hi - lo), 0.0, 1.0)
    window = np.sin(np.pi * u) ** 2
    kernel = np.exp(-0.5 * (np.arange(-24, 25) / 8.0) ** 2)
    kernel /= np.sqrt((kernel**2).sum())
    scale = {s: rng.uniform(0.8, 1.2) for s in sorted(rec["subject_id"].unique())}
    order = sorted(rec["session"].unique(), key=lambda x: (len(x), x))
    idx = {s: k for k, s in enumerate(order)}
    noise = np.stack(
        [np.convolve(rng.normal(0, 0.1, 101 + 48), kernel, mode="valid") for _ in range(len(rec))]
    )
    k = rec["session"].map(idx).to_numpy(float)[:, None]
    treated = (rec["subject_id"].map(arms) == "hip_strengthening").to_numpy()[:, None]
    sc = rec["subject_id"].map(scale).to_numpy()[:, None]
    y = 1.0 + sc * (spike + hump) - treated * CURVE_EFFECT_BW * k * window + noise
    n = len(rec)
    out = rec.loc[rec.index.repeat(101)].reset_index(drop=True)
    out["phase"], out["signal"], out["side"] = "landing", "fz_bw", "bilateral"
    out["node"] = np.tile(np.arange(101, dtype=np.int32), n)
    out["pct"] = np.tile(pct, n)
    out["value"] = y.reshape(-1)
    out["unit"] = "BW"
    out["phase_start_s"], out["phase_end_s"] = 0.0, 0.25
    out["method"] = "truth_store.landing_curves"
    return out
