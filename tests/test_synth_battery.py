"""The synthetic battery (squat jump, drop jump, IMTP): synth -> ingest -> features gives the
truth the generator was built with (heights, contact time, RSI, peak force, RFD, impulse)."""

from __future__ import annotations

import json

import pytest

from cxlab.features.runner import extract_features
from cxlab.ingest import ingest
from cxlab.pseudo import pseudonymise
from cxlab.store import Store


@pytest.fixture(scope="module")
def battery_store(tmp_path_factory, synth_cohort):
    root = tmp_path_factory.mktemp("battery")
    out = synth_cohort(2, 1, seed=11)  # the cohort test_executor ingests on Dask
    gt = json.loads((out / "ground_truth.json").read_text())
    st = Store(root / "st")
    report = ingest([out / "sub-CX001"], store=st, jobs=1, progress=False)
    assert not report.failed
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.quarantine.empty, list(rep.quarantine["reason"])
    return st, gt


def _feature(st, task, feature, side="bilateral"):
    f = st.table("features")
    f = f[
        (f["subject_id"] == pseudonymise("CX001"))
        & (f["task"] == task)
        & (f["feature"] == feature)
        & (f["side"] == side)
    ]
    assert len(f) == 1, (task, feature, side)
    return float(f["value"].iloc[0])


def _truth(gt, task):
    (ses,) = gt["subjects"]["CX001"]["sessions"].values()
    (trial,) = ses["trials"][task]
    return trial


def test_synth_squat_jump_height_and_lsi_come_back_through_the_pipeline(battery_store):
    st, gt = battery_store
    t = _truth(gt, "sj")
    assert _feature(st, "sj", "sj_jump_height_impulse_m") == pytest.approx(
        t["jump_height_m"], abs=0.005
    )
    assert _feature(st, "sj", "sj_flight_time_s") == pytest.approx(t["flight_time_s"], abs=0.003)
    assert _feature(st, "sj", "sj_propulsive_impulse_lsi_pct") == pytest.approx(
        t["lsi_pct"], abs=1.0
    )
    assert _feature(st, "sj", "sj_n_jumps") == 1


def test_synth_drop_jump_contact_time_and_rsi_come_back(battery_store):
    st, gt = battery_store
    t = _truth(gt, "dj")
    assert _feature(st, "dj", "dj_contact_time_s") == pytest.approx(t["contact_time_s"], abs=0.003)
    assert _feature(st, "dj", "dj_rsi") == pytest.approx(t["rsi"], rel=0.03)
    assert _feature(st, "dj", "dj_peak_contact_force_bw") == pytest.approx(
        t["peak_contact_force_bw"], rel=0.02
    )


def test_synth_imtp_peak_force_rfd_and_impulse_come_back(battery_store):
    st, gt = battery_store
    t = _truth(gt, "imtp")
    assert _feature(st, "imtp", "imtp_peak_force_net_n") == pytest.approx(
        t["peak_force_net_n"], rel=0.01
    )
    for w in (100, 200):
        assert _feature(st, "imtp", f"imtp_rfd_0_{w}_n_s") == pytest.approx(
            t[f"rfd_0_{w}_n_s"], rel=0.05
        )
        assert _feature(st, "imtp", f"imtp_impulse_0_{w}_n_s") == pytest.approx(
            t[f"impulse_0_{w}_n_s"], rel=0.08
        )
    assert _feature(st, "imtp", "imtp_peak_force_net_lsi_pct") == pytest.approx(
        t["lsi_pct"], abs=1.0
    )


def test_synth_single_leg_cmj_heights_and_sides_come_back(battery_store):
    st, gt = battery_store
    for side in ("left", "right"):
        t = _truth(gt, f"cmj_{side}")
        assert t["side"] == side
        got = _feature(st, f"cmj_{side}", "slcmj_jump_height_impulse_m", side=side)
        assert got == pytest.approx(t["jump_height_m"], abs=0.005)
        flight = _feature(st, f"cmj_{side}", "slcmj_flight_time_s", side=side)
        assert flight == pytest.approx(t["flight_time_s"], abs=0.003)


def test_synth_hops_contact_flight_and_rsi_come_back(battery_store):
    st, gt = battery_store
    for side in ("left", "right"):
        t = _truth(gt, f"hop_{side}")
        task = f"hop_{side}"
        assert _feature(st, task, "slhop_n_hops", side=side) == t["n_hops"]
        assert _feature(st, task, "slhop_contact_time_s", side=side) == pytest.approx(
            t["contact_time_s"], abs=0.004
        )
        assert _feature(st, task, "slhop_flight_time_s", side=side) == pytest.approx(
            t["flight_time_s"], abs=0.004
        )
        assert _feature(st, task, "slhop_rsi", side=side) == pytest.approx(t["rsi"], rel=0.04)


def test_synth_single_leg_lsi_is_the_session_lsi_the_generator_used(battery_store):
    st, gt = battery_store
    (ses,) = gt["subjects"]["CX001"]["sessions"].values()
    h = {s: ses["trials"][f"cmj_{s}"][0]["jump_height_m"] for s in ("left", "right")}
    lsi = 100 * min(h.values()) / max(h.values())  # by construction the session's LSI
    (sj,) = ses["trials"]["sj"]
    assert lsi == pytest.approx(sj["lsi_pct"], rel=1e-9)
    got = _feature(st, "cmj_single_leg", "slcmj_jump_height_impulse_lsi_pct")
    assert got == pytest.approx(lsi, abs=1.5)
    f = {s: ses["trials"][f"hop_{s}"][0]["jump_height_flight_m"] for s in ("left", "right")}
    hop_lsi = 100 * min(f.values()) / max(f.values())
    got = _feature(st, "hop_single_leg", "slhop_jump_height_flight_lsi_pct")
    assert got == pytest.approx(hop_lsi, abs=0.5)  # flight found to within a sample
    assert hop_lsi == pytest.approx(sj["lsi_pct"], abs=2.0)  # flight rounded to samples
