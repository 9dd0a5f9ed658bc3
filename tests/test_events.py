import ezc3d
import numpy as np
import pytest

from cxlab.features.events import (
    FeatureError,
    contacts,
    flights,
    movement_onset,
    quiet_standing,
)


def _plates(path):
    c = ezc3d.c3d(str(path), extract_forceplat_data=True)
    rate = float(c["parameters"]["ANALOG"]["RATE"]["value"][0])
    out = []
    for pf in c["data"]["platform"]:
        fz = np.asarray(pf["force"][2], float)
        fz = fz * np.sign(fz[np.argmax(np.abs(fz))])  # loaded = positive, whatever the file
        scale = 0.001 if pf["unit_position"] == "mm" else 1.0
        out.append(
            {
                "fz": fz,
                "cop": np.asarray(pf["center_of_pressure"]).T * scale,
                "corners": np.asarray(pf["corners"]).T * scale,
            }
        )
    return rate, out


def test_quiet_standing_finds_the_steadiest_window_and_its_mean():
    rng = np.random.default_rng(3)
    rate = 1000.0
    fz = np.concatenate(
        [
            700 + rng.normal(0, 15, 800),
            736 + rng.normal(0, 2, 1200),
            700 + 200 * np.sin(np.arange(1000) / 50),
        ]
    )
    qs = quiet_standing(fz, rate_hz=rate, window_s=1.0)
    assert 800 <= qs["start"] <= 1000 and qs["stop"] - qs["start"] == 1000
    seg = fz[qs["start"] : qs["stop"]]
    assert qs["weight_n"] == pytest.approx(seg.mean(), abs=1e-9)
    assert qs["sd_n"] == pytest.approx(seg.std(), rel=1e-9)


def test_quiet_standing_on_a_real_plate_matches_the_signal_mean(real_dir):
    rate, plates = _plates(real_dir / "c3d" / "btk_Res16bits.c3d")
    fz = plates[2]["fz"]  # a foot standing still on plate 3 for the whole 0.1 s
    qs = quiet_standing(fz, rate_hz=rate, window_s=0.05)
    assert qs["weight_n"] == pytest.approx(fz.mean(), abs=2 * fz.std())
    assert 400 < qs["weight_n"] < 500


def test_quiet_standing_needs_a_loaded_window():
    with pytest.raises(FeatureError, match="no 1 s window"):
        quiet_standing(np.zeros(3000), rate_hz=1000.0)


def test_movement_onset_is_the_5_sd_crossing_minus_30_ms():
    fz = np.full(3000, 700.0)
    fz[1500:1600] = 700 - np.arange(100) * 2.0  # linear unweighting from sample 1500
    fz[1000:1500:2] += 1.0  # tiny noise, SD 0.5 N
    # first sample below 700 - 5 * 0.5 = 697.5 N is 1502 (696 N)
    assert movement_onset(fz, rate_hz=1000.0, weight_n=700.0, sd_n=0.5, backtrack_s=0) == 1502
    assert movement_onset(fz, rate_hz=1000.0, weight_n=700.0, sd_n=0.5) == 1502 - 30
    assert movement_onset(fz, rate_hz=1000.0, weight_n=700.0, sd_n=0.5, start=1490) == 1490


def test_flights_and_contacts_from_threshold():
    fz = np.r_[
        np.full(100, 700.0), np.zeros(50), np.full(100, 900.0), np.zeros(3), np.full(100, 700.0)
    ]
    assert flights(fz, rate_hz=1000.0).tolist() == [[100, 150]]  # 3-sample dip ignored
    assert contacts(fz, rate_hz=1000.0, min_contact_s=0.05).tolist() == [[150, 250]]


def test_gait_contacts_on_real_plates_alternate_and_cop_stays_on_the_plate(real_dir):
    rate, plates = _plates(real_dir / "c3d" / "opensim_walking2.c3d")
    found = []
    for k, p in enumerate(plates):
        c = contacts(p["fz"], rate_hz=rate, threshold_n=50.0)
        assert len(c) == 1  # one foot strike per plate
        s, e = c[0]
        assert 0.4 < (e - s) / rate < 1.0  # a walking stance lasts ~0.6 s
        found.append((s, e, k))
        load = p["fz"][s:e] > 200  # CoP is reliable once loaded
        cop = p["cop"][s:e][load]
        lo, hi = p["corners"].min(axis=0), p["corners"].max(axis=0)
        inside = ((cop[:, :2] >= lo[:2]) & (cop[:, :2] <= hi[:2])).all(axis=1)
        assert inside.mean() > 0.97  # a heel strike on the plate edge may stray at first
        assert ((cop[:, :2] >= lo[:2] - 0.02) & (cop[:, :2] <= hi[:2] + 0.02)).all()
    found.sort()
    assert [k for *_, k in found] == [1, 0]  # plate 2 struck first, then plate 1
    assert found[0][0] < found[1][0] < found[0][1]  # double support: second strike before off
