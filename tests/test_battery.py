"""Squat jump, drop jump, hops, body mass and single-leg LSI against analytic force traces."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cxlab._check import CxlabWarning
from cxlab.features.battery import (
    BATTERY_UNITS,
    body_mass_estimate,
    dj_metrics,
    hop_metrics,
    jump_segments,
    side_asymmetry,
    single_leg_lsi,
    sj_metrics,
)
from cxlab.features.events import FeatureError
from featuresim import G, dj_force, sj_force


@pytest.mark.parametrize(
    ("mass", "v_to", "t_push"), [(75.0, 2.3, 0.35), (58.0, 1.8, 0.45), (95.0, 2.7, 0.30)]
)
def test_sj_height_by_impulse_momentum_and_flight_match_the_analytic_push(mass, v_to, t_push):
    fz, truth = sj_force(mass_kg=mass, v_to=v_to, t_push=t_push, noise_n=1.5, seed=int(mass))
    m = sj_metrics(fz, rate_hz=1000.0)
    assert m["body_mass_kg"] == pytest.approx(mass, abs=0.05)
    assert m["takeoff_velocity_m_s"] == pytest.approx(v_to, abs=0.01)
    assert m["jump_height_impulse_m"] == pytest.approx(truth["h"], abs=0.003)
    assert m["flight_time_s"] == pytest.approx(truth["flight_s"], abs=0.002)
    assert m["jump_height_flight_m"] == pytest.approx(G * truth["flight_s"] ** 2 / 8, abs=0.002)
    # onset: BW + 5 SD crossing minus 30 ms, so at most 30 ms before the true onset
    assert truth["t_push"] - 0.002 <= m["time_to_takeoff_s"] <= truth["t_push"] + 0.032


def test_sj_force_and_power_match_the_closed_form_push():
    fz, truth = sj_force(mass_kg=80.0, v_to=2.4, t_push=0.4)
    m = sj_metrics(fz, rate_hz=1000.0)
    assert m["peak_force_n"] == pytest.approx(truth["peak_force"], rel=0.002)
    assert m["peak_power_w"] == pytest.approx(truth["peak_power"], rel=0.005)
    assert m["peak_power_w_kg"] == pytest.approx(truth["peak_power"] / 80.0, rel=0.005)
    # means over the detected push (which starts up to 30 ms of standing early)
    n_pre = round((m["time_to_takeoff_s"] - 0.4) * 1000)
    mean_f = (truth["mean_force"] * 400 + 80.0 * G * n_pre) / (400 + n_pre)
    assert m["mean_force_n"] == pytest.approx(mean_f, rel=0.005)
    assert m["mean_power_w"] == pytest.approx(truth["mean_power"] * 400 / (400 + n_pre), rel=0.01)
    assert m["propulsive_impulse_n_s"] == pytest.approx(80.0 * 2.4, rel=0.005)
    assert m["peak_landing_force_bw"] == pytest.approx(3.5, rel=0.002)
    assert m["rsi_mod"] == pytest.approx(m["jump_height_impulse_m"] / m["time_to_takeoff_s"])
    assert set(m) <= set(BATTERY_UNITS)


def test_sj_with_a_countermovement_is_refused():
    fz, _ = sj_force(dip_n=150.0, noise_n=1.0)
    with pytest.raises(FeatureError, match="countermovement before the push"):
        sj_metrics(fz, rate_hz=1000.0)


def test_sj_two_plates_split_impulse_and_give_lsi():
    fz, _ = sj_force(noise_n=1.0)
    m = sj_metrics(fz, rate_hz=1000.0, fz_left=0.4 * fz, fz_right=0.6 * fz)
    p = m["propulsive_impulse_n_s"]
    assert p.left + p.right == pytest.approx(p.bilateral, rel=1e-3)
    assert m["propulsive_impulse_lsi_pct"] == pytest.approx(100 * 0.4 / 0.6, abs=0.1)
    assert m["peak_force_asym_pct"] == pytest.approx(100 * 0.2 / 0.5, abs=0.1)


def test_a_trial_with_four_squat_jumps_is_split_into_four():
    parts, truths = [], []
    for i, v in enumerate((2.0, 2.2, 2.4, 2.1)):
        fz, t = sj_force(v_to=v, quiet_s=1.5, after_s=0.5, noise_n=1.0, seed=i)
        parts.append(fz)
        truths.append(t)
    fz = np.concatenate(parts)
    seg = jump_segments(fz, rate_hz=1000.0)
    assert seg.shape == (4, 2)
    assert seg[0, 0] == 0 and seg[-1, 1] == fz.size
    for (a, b), t in zip(seg, truths, strict=True):
        m = sj_metrics(fz[a:b], rate_hz=1000.0)
        assert m["jump_height_impulse_m"] == pytest.approx(t["h"], abs=0.003)


def test_dj_contact_flight_and_rsi_match_the_built_trace():
    fz, t = dj_force(noise_n=1.0)
    m = dj_metrics(fz, rate_hz=1000.0)
    assert m["contact_time_s"] == pytest.approx(t["contact_s"], abs=0.002)
    assert m["flight_time_s"] == pytest.approx(t["flight_s"], abs=0.002)
    assert m["jump_height_flight_m"] == pytest.approx(t["h_flight"], abs=0.002)
    assert m["rsi"] == pytest.approx(t["rsi"], rel=0.02)
    assert m["flight_contact_ratio"] == pytest.approx(t["flight_s"] / t["contact_s"], rel=0.02)
    assert m["peak_contact_force_bw"] == pytest.approx(t["peak_contact_bw"], rel=0.003)
    assert m["peak_landing_force_bw"] == pytest.approx(3.0, rel=0.003)
    assert m["body_mass_kg"] == pytest.approx(70.0, abs=0.05)


def test_dj_impulse_height_with_a_known_drop_matches_the_take_off_velocity():
    fz, _ = dj_force(drop_m=0.40, v_to=2.0)
    m = dj_metrics(fz, rate_hz=1000.0, drop_height_m=0.40)
    assert m["takeoff_velocity_m_s"] == pytest.approx(2.0, abs=0.02)


def test_dj_per_side_and_no_touchdown_refused():
    fz, _ = dj_force()
    m = dj_metrics(fz, rate_hz=1000.0, fz_left=0.5 * fz, fz_right=0.5 * fz)
    assert m["peak_contact_force_lsi_pct"] == pytest.approx(100.0)
    with pytest.raises(FeatureError, match="start recording with the athlete on the box"):
        dj_metrics(np.concatenate([np.full(500, 700.0), fz[305:]]), rate_hz=1000.0)


def test_repeated_hops_give_each_contact_time_and_rsi():
    # 5 hops: contact 0.20 s half-sine, flight 0.35 s, built on one plate
    m_kg, rate = 60.0, 1000.0
    tc, tf = 0.20, 0.35
    v = G * tf / 2
    fp = (2 * v + G * tc) * np.pi * m_kg / (2 * tc)
    one = np.concatenate([fp * np.sin(np.pi * np.arange(200) / 200), np.zeros(350)])
    fz = np.concatenate(
        [np.full(1000, m_kg * G), np.zeros(350), np.tile(one, 5), np.full(1000, m_kg * G)]
    )
    m = hop_metrics(fz, rate_hz=rate)
    assert m["n_hops"] == 5
    assert m["contact_time_s"] == pytest.approx(tc, abs=0.002)
    assert m["jump_height_flight_m"] == pytest.approx(G * tf**2 / 8, abs=0.002)
    assert m["rsi"] == pytest.approx(G * tf**2 / 8 / tc, rel=0.02)


def test_asymmetry_of_two_near_zero_values_is_not_computed():
    assert np.isnan(side_asymmetry("x", 0.3, -0.2, floor=5.0)["x_lsi_pct"])
    out = side_asymmetry("x", 90.0, 100.0, floor=5.0)
    assert out["x_lsi_pct"] == pytest.approx(90.0)
    assert out["x_asym_pct"] == pytest.approx(100 * 10 / 95)


def test_body_mass_prefers_the_header_and_warns_beyond_2_pct():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bm = body_mass_estimate(70.0, 70.9, where="S1 cmj")
    assert (
        bm.source == "header" and bm.agrees and bm.difference_pct == pytest.approx(100 * 0.9 / 70)
    )
    with pytest.warns(CxlabWarning, match=r"differs from the export header 70.0 kg by \+2.9 %"):
        bm = body_mass_estimate(70.0, 72.0)
    assert bm.body_mass_kg == 70.0 and not bm.agrees
    bm = body_mass_estimate(None, 71.2)
    assert bm.source == "quiet standing" and bm.body_mass_kg == 71.2


def test_single_leg_lsi_across_the_legs_trials_of_a_session():
    rows = []
    for task, side, vals in (
        ("cmj_left", "left", (0.20, 0.22)),
        ("cmj_right", "right", (0.25, 0.25)),
    ):
        for k, v in enumerate(vals):
            rows.append(
                dict(
                    recording_id=f"{task}{k}",
                    subject_id="a" * 12,
                    session="1",
                    task=task,
                    trial=str(k),
                    feature="slcmj_jump_height_impulse_m",
                    side=side,
                    value=v,
                    unit="m",
                    method="",
                )
            )
    out = single_leg_lsi(
        pd.DataFrame(rows),
        pairs={"cmj_single": ("cmj_left", "cmj_right")},
        metrics={"cmj_single": ["slcmj_jump_height_impulse_m"]},
    )
    lsi = out.set_index("feature")["value"]
    assert lsi["slcmj_jump_height_impulse_lsi_pct"] == pytest.approx(100 * 0.21 / 0.25)
    assert lsi["slcmj_jump_height_impulse_asym_pct"] == pytest.approx(100 * 0.04 / 0.23)


def _bioware_text(path):
    """Fz and the header's 'Normalized force (N)' of a Kistler BioWare text export, parsed
    here with numpy (independently of cxlab's readers)."""
    lines = path.read_text(encoding="latin-1").splitlines()
    norm = next(float(ln.split("\t")[1]) for ln in lines if ln.startswith("Normalized force"))
    rate = next(float(ln.split("\t")[1]) for ln in lines if ln.startswith("Rate (Hz)"))
    start = next(i for i, ln in enumerate(lines) if ln.startswith("abs time")) + 2
    data = np.loadtxt(lines[start:])
    return data[:, 3], rate, norm


def test_real_bioware_cmj_body_mass_header_agrees_with_quiet_standing(real_dir):
    fz, rate, norm_n = _bioware_text(real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt")
    from cxlab.features.events import quiet_standing

    qs = quiet_standing(fz, rate_hz=rate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bm = body_mass_estimate(norm_n / G, qs.weight_n / G)
    assert bm.source == "header" and abs(bm.difference_pct) < 1.0


def test_real_bioware_cmj_is_refused_as_a_squat_jump(real_dir):
    fz, rate, _ = _bioware_text(real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt")
    with pytest.raises(FeatureError, match="countermovement before the push"):
        sj_metrics(fz, rate_hz=rate)
    # one jump in the trial, and its flight and impulse heights agree within 1 cm
    assert jump_segments(fz, rate_hz=rate).shape == (1, 2)
    from cxlab.features.jump import cmj_metrics

    m = cmj_metrics(fz, rate_hz=rate)
    assert m["jump_height_impulse_m"] == pytest.approx(m["jump_height_flight_m"], abs=0.01)


def test_real_bioware_c3d_twin_gives_the_same_battery_metrics(real_dir):
    from cxlab.features.jump import cmj_metrics
    from cxlab.io import read

    fz_t, rate, _ = _bioware_text(real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt")
    rec = read(real_dir / "c3d/biomdp_kistler_CMJ_1plate.c3d")
    fz_c = rec.platforms[0].force[:, 2]
    if fz_c.shape != fz_t.shape or np.nanmax(np.abs(fz_c - fz_t)) > 1.0:
        pytest.xfail(
            "the C3D reader on this branch does not yet give the text twin's forces "
            "(fixed by the c3d-numbers branch); the twins must then agree"
        )
    a, b = cmj_metrics(fz_t, rate_hz=rate), cmj_metrics(fz_c, rate_hz=rate)
    for k in ("jump_height_impulse_m", "flight_time_s", "peak_propulsive_force_n"):
        assert a[k] == pytest.approx(b[k], rel=2e-3)


def _store_with(tmp_path, trials):
    """A store of one-plate or two-plate recordings: trials = [(name, task, [fz per plate])]."""
    import hashlib

    from cxlab.store import Store

    cols = ["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"]
    st, recs = Store(tmp_path / "st"), []
    for name, task, plates in trials:
        rid = hashlib.sha256(name.encode()).hexdigest()[:16]
        frames = []
        for k, fz in enumerate(plates, start=1):
            df = pd.DataFrame({c: fz if c == "fz" else np.zeros(fz.size) for c in cols})
            df.insert(0, "time_s", np.arange(fz.size) / 1000.0)
            df.insert(0, "sample", np.arange(fz.size, dtype=np.int64))
            df.insert(0, "plate", np.int32(k))
            df.insert(0, "recording_id", rid)
            frames.append(df)
        st.write("forces", pd.concat(frames, ignore_index=True), key=rid, partition="a" * 12)
        recs.append(
            {
                "recording_id": rid,
                "subject_id": "a" * 12,
                "session": "1",
                "task": task,
                "trial": name,
                "source_path": f"{name}.c3d",
                "source_sha256": hashlib.sha256(name.encode()).hexdigest(),
                "format": "c3d",
                "vendor": None,
                "point_rate_hz": np.nan,
                "analog_rate_hz": 1000.0,
                "n_frames": 0,
                "first_frame": 1,
            }
        )
    st.write("recordings", pd.DataFrame(recs), key="all")
    return st


def test_single_leg_cmj_trials_give_each_legs_height_and_the_session_lsi(tmp_path):
    from cxlab.features.runner import extract_features
    from featuresim import cmj_force

    zero = np.zeros(1)
    trials, h = [], {}
    for side, v_to in (("left", 1.6), ("right", 1.8)):
        for k in (1, 2):
            fz, t = cmj_force(mass_kg=70.0, v_to=v_to, noise_n=1.0, seed=k)
            h[side] = t["h"]
            plates = [fz, zero * fz] if side == "left" else [zero * fz, fz]
            trials.append((f"{side}{k}", f"cmj_{side}", plates))
    # the side of a task without one comes from the loaded plate (plate 2 = right)
    fz, _ = cmj_force(mass_kg=70.0, v_to=1.7, noise_n=1.0, seed=9)
    trials.append(("single", "cmj_single", [zero * fz, fz]))
    st = _store_with(tmp_path, trials)
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.quarantine.empty, list(rep.quarantine["reason"])
    f = st.table("features")
    g = f[f["feature"] == "slcmj_jump_height_impulse_m"]
    by = g[g["task"] != "cmj_single"].groupby("side")["value"].mean()
    assert by["left"] == pytest.approx(h["left"], abs=0.003)
    assert by["right"] == pytest.approx(h["right"], abs=0.003)
    assert set(g.loc[g["task"] == "cmj_single", "side"]) == {"right"}
    lsi = f[f["feature"] == "slcmj_jump_height_impulse_lsi_pct"]["value"]
    assert len(lsi) == 1
    assert float(lsi.iloc[0]) == pytest.approx(100 * by["left"] / by["right"], rel=1e-9)
    assert float(lsi.iloc[0]) == pytest.approx(100 * (1.6 / 1.8) ** 2, abs=1.5)


def test_runner_sj_dj_imtp_rows_and_a_four_jump_trial(tmp_path):
    from cxlab.features.runner import extract_features
    from featuresim import imtp_force

    four = np.concatenate(
        [
            sj_force(v_to=v, after_s=0.5, noise_n=1.0, seed=k)[0]
            for k, v in enumerate((2.0, 2.2, 2.4, 2.1))
        ]
    )
    dj, tdj = dj_force(noise_n=1.0)
    im, _ = imtp_force(noise_n=1.0)
    st = _store_with(
        tmp_path,
        [
            ("sj", "sj", [0.5 * four, 0.5 * four]),
            ("dj", "dj", [0.4 * dj, 0.6 * dj]),
            ("imtp", "imtp", [0.5 * im, 0.5 * im]),
        ],
    )
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.quarantine.empty, list(rep.quarantine["reason"])
    f = st.table("features").set_index(["feature", "side"])["value"]
    hs = [v**2 / (2 * G) for v in (2.0, 2.2, 2.4, 2.1)]
    assert f["sj_n_jumps", "bilateral"] == 4
    assert f["sj_jump_height_impulse_m", "bilateral"] == pytest.approx(np.mean(hs), abs=0.003)
    # each foot's impulse (half of m·v_to, 75 kg) is averaged over the four jumps too
    for side in ("bilateral", "left", "right"):
        share = 1.0 if side == "bilateral" else 0.5
        assert f["sj_propulsive_impulse_n_s", side] == pytest.approx(
            share * 75.0 * np.mean((2.0, 2.2, 2.4, 2.1)), rel=0.01
        ), side
    assert f["dj_contact_time_s", "bilateral"] == pytest.approx(tdj["contact_s"], abs=0.002)
    assert f["dj_peak_contact_force_lsi_pct", "bilateral"] == pytest.approx(100 * 4 / 6)
    assert f["imtp_peak_force_net_lsi_pct", "bilateral"] == pytest.approx(100.0)
    assert ("imtp_rfd_0_100_n_s", "left") in f.index


def test_single_leg_hops_through_the_runner_give_rsi_per_leg_and_its_lsi(tmp_path):
    from cxlab.features.runner import extract_features

    def hops(tc, tf, m_kg=60.0):
        v = G * tf / 2
        fp = (2 * v + G * tc) * np.pi * m_kg / (2 * tc)
        n_c, n_f = round(tc * 1000), round(tf * 1000)
        one = np.concatenate([fp * np.sin(np.pi * np.arange(n_c) / n_c), np.zeros(n_f)])
        return np.concatenate(
            [np.full(1000, m_kg * G), np.zeros(n_f), np.tile(one, 4), np.full(1000, m_kg * G)]
        )

    left, right = hops(0.25, 0.30), hops(0.20, 0.35)
    st = _store_with(tmp_path, [("hl", "hop_left", [left]), ("hr", "hop_right", [right])])
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.quarantine.empty, list(rep.quarantine["reason"])
    f = st.table("features").set_index(["feature", "side"])["value"]
    rsi_l, rsi_r = G * 0.30**2 / 8 / 0.25, G * 0.35**2 / 8 / 0.20
    assert f["slhop_rsi", "left"] == pytest.approx(rsi_l, rel=0.02)
    assert f["slhop_rsi", "right"] == pytest.approx(rsi_r, rel=0.02)
    assert f["slhop_n_hops", "left"] == 4
    assert f["slhop_rsi_lsi_pct", "bilateral"] == pytest.approx(100 * rsi_l / rsi_r, rel=0.03)
