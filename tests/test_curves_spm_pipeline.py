"""Simulation with known truth: a programme effect injected into one window of the landing
force curve is found by SPM on curves the features stage stored, there and nowhere else."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from cxlab.features.curves import curve_matrix
from cxlab.features.runner import extract_features
from cxlab.models.spm import paired_curves, spm_two_sample
from cxlab.store import Store
from cxlab.synth.kinematics import landing_trial
from test_features_runner import _forces, _markers, _rec

G = 9.80665
WINDOW_S = 0.25  # features.toml [curves] landing_window_s
EFFECT = (0.15, 0.20)  # s after contact: 60-80 % of the landing curve


def _store(tmp_path, n_per_arm=10, seed=5):
    rng = np.random.default_rng(seed)
    st = Store(tmp_path / "store")
    recs = []
    for i in range(2 * n_per_arm):
        arm = "programme" if i < n_per_arm else "control"
        sub = hashlib.sha256(f"s{i}".encode()).hexdigest()[:12]
        mass = rng.uniform(60, 90)
        peak = rng.uniform(3.0, 4.5)
        for ses in ("pre", "post"):
            tr = landing_trial(
                rng,
                mass_kg=mass,
                height_m=1.75,
                peak_force_bw=peak * rng.normal(1.0, 0.04),
                lsi_pct=95.0,
                weak_side="left",
                fppa_left_deg=8.0,
                fppa_right_deg=8.0,
            )
            fz = [f[:, 2].copy() for f in tr.forces]
            if arm == "programme" and ses == "post":
                t = (np.arange(fz[0].size) / tr.analog_rate_hz) - tr.truth["contact_s"]
                u = (t - EFFECT[0]) / (EFFECT[1] - EFFECT[0])
                bump = np.where((u > 0) & (u < 1), np.sin(np.pi * u) ** 2, 0.0)
                for f in fz:  # +0.5 BW in the window, shared by the feet
                    f += 0.25 * mass * G * bump
            name = f"{sub}-{ses}"
            rec = _rec(name, "landing") | {
                "subject_id": sub,
                "session": ses,
                "point_rate_hz": tr.point_rate_hz,
                "n_frames": tr.markers.shape[0],
            }
            recs.append(rec | {"_arm": arm})
            rid = rec["recording_id"]
            st.write("forces", _forces(rid, [{"fz": f} for f in fz]), key=rid, partition=sub)
            mk = {lab: tr.markers[:, k] for k, lab in enumerate(tr.marker_labels)}
            st.write("markers", _markers(rid, mk, tr.point_rate_hz), key=rid, partition=sub)
    arms = {r["subject_id"]: r.pop("_arm") for r in recs}
    st.write("recordings", pd.DataFrame(recs), key="all")
    return st, arms


def test_landing_effect_window_is_found_by_spm_on_stored_curves(tmp_path):
    st, arms = _store(tmp_path)
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.n_quarantined == 0
    cm = curve_matrix(st.table("curves"), signal="fz_bw", phase="landing", side="bilateral")
    assert cm.values.shape == (40, 101)
    p = paired_curves(cm.values, cm.labels, pre="pre", post="post")
    change = p.post - p.pre
    is_prog = np.array([arms[s] == "programme" for s in p.subjects])
    r = spm_two_sample(change[is_prog], change[~is_prog])
    lo, hi = (100 * e / WINDOW_S for e in EFFECT)
    assert r.clusters, "the injected effect was not found"
    for c in r.clusters:  # every cluster lies within the injected window (±5 %)
        assert lo - 5 <= c.start_pct and c.end_pct <= hi + 5, (c, lo, hi)
        assert c.sign == 1
    covered = sum(c.end_pct - c.start_pct for c in r.clusters)
    assert covered >= 0.3 * (hi - lo)  # sin² bump: above threshold around its middle
    # knee FPPA curves came along from the markers, per side
    fppa = curve_matrix(st.table("curves"), signal="knee_fppa", phase="landing", side="left")
    assert fppa.values.shape == (40, 101) and fppa.unit == "deg"
    assert np.nanmax(fppa.values) <= 8.0 + 0.1
