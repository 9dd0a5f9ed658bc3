"""Curves built by `cxlab features`: phases from the task's events, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxlab.features.curve_tasks import cmj_curves, trial_curves
from cxlab.features.curves import curve_matrix
from cxlab.features.runner import extract_features, read_config
from cxlab.features.tasks import Trial
from cxlab.store import Store
from featuresim import G, cmj_force
from test_features_runner import SUBJ, _forces, _rec, _rid


def _trial(fz, share=0.45, rate=1000.0):
    return Trial(
        task="cmj", plates={1: {"fz": share * fz}, 2: {"fz": (1 - share) * fz}}, analog_rate_hz=rate
    )


def test_cmj_curve_integrates_to_the_take_off_velocity():
    # impulse-momentum: the integral of (F/BW - 1) dt from onset to take-off is v_to / g
    fz, truth = cmj_force(v_to=2.4)
    cfg = read_config()
    curves = {(c.phase, c.side): c for c in cmj_curves(_trial(fz), cfg)}
    c = curves[("cmj", "bilateral")]
    assert c.values.shape == (101,) and c.unit == "BW"
    duration = c.end_s - c.start_s
    integral = duration * np.trapezoid(c.values - 1.0, dx=0.01)
    assert integral == pytest.approx(truth["v_to"] / G, rel=0.01)
    assert c.start_s == pytest.approx(truth["onset_s"], abs=0.04)
    assert c.end_s == pytest.approx(truth["takeoff_s"], abs=0.005)
    assert c.values[0] == pytest.approx(1.0, abs=0.05)  # onset: still about body weight
    # sides are the plates' shares of the same force
    np.testing.assert_allclose(curves[("cmj", "left")].values, 0.45 * c.values, rtol=1e-12)
    assert ("cmj_landing", "bilateral") in curves


def test_curves_land_in_the_store_and_come_back_as_a_trials_by_nodes_array(tmp_path):
    st = Store(tmp_path / "s")
    recs = []
    for k, v in enumerate((2.2, 2.4, 2.6)):
        fz, _ = cmj_force(v_to=v, noise_n=0.5, seed=k)
        rec = _rec(f"cmj{k}", "cmj") | {"session": str(k + 1)}
        recs.append(rec)
        st.write(
            "forces",
            _forces(rec["recording_id"], [{"fz": 0.5 * fz}, {"fz": 0.5 * fz}]),
            key=rec["recording_id"],
            partition=SUBJ,
        )
    st.write("recordings", pd.DataFrame(recs), key="all")
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.n_quarantined == 0
    cm = curve_matrix(st.table("curves"), signal="fz_bw", phase="cmj", side="bilateral")
    assert cm.values.shape == (3, 101)
    assert list(cm.labels["session"]) == ["1", "2", "3"]
    assert list(cm.labels["recording_id"]) == [_rid(f"cmj{k}") for k in range(3)]
    # each stored curve still integrates to its own take-off velocity (impulse-momentum)
    c = st.table("curves")
    dur = (
        c[(c["phase"] == "cmj") & (c["side"] == "bilateral")]
        .groupby("recording_id")[["phase_start_s", "phase_end_s"]]
        .first()
        .loc[cm.labels["recording_id"]]
    )
    v = (
        G
        * (dur["phase_end_s"] - dur["phase_start_s"]).to_numpy()
        * np.trapezoid(cm.values - 1.0, dx=0.01, axis=1)
    )
    np.testing.assert_allclose(v, [2.2, 2.4, 2.6], rtol=0.02)
    f1 = {p.name: p.read_bytes() for p in st.files("curves")}
    extract_features(st, jobs=2, force=True, progress=False)
    assert {p.name: p.read_bytes() for p in st.files("curves")} == f1  # deterministic


def test_a_task_without_curve_builders_has_no_curves_and_unknown_builders_are_refused(tmp_path):
    cfg = read_config()
    assert trial_curves(Trial(task="posture"), cfg) == []
    from cxlab._check import ConfigError

    with pytest.raises(ConfigError, match="unknown curve builder"):
        read_config({"curves": {"tasks": {"cmj": ["cmj", "knee_moment"]}}})
