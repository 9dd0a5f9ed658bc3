import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from cxlab import ConfigError
from cxlab.models import responders, wilson_interval


def _scores():
    # Hand-worked pain NRS cases (baseline -> follow-up), improvement = decrease.
    pairs = {
        "A": (8, 6),
        "B": (5, 4),
        "C": (3, 2),
        "D": (6, 6),
        "E": (4, 7),
        "F": (0, 0),
        "G": (9, 3),
        "H": (7, 5),
    }
    arm = {
        "A": "exercise",
        "B": "exercise",
        "C": "exercise",
        "D": "exercise",
        "E": "control",
        "F": "control",
        "G": "control",
        "H": "control",
    }
    rows = [
        (s, str(v), float(x), arm[s]) for s, (b, f) in pairs.items() for v, x in ((1, b), (2, f))
    ]
    rows.append(("I", "1", 5.0, "control"))  # no follow-up
    return pd.DataFrame(rows, columns=["subject_id", "session", "pain_nrs", "arm"])


def test_change_percent_and_mcid_flags_are_hand_worked():
    r = responders(
        _scores(), outcome="pain_nrs", subject="subject_id", baseline="1", followup="2", arm="arm"
    )
    s = r.subjects.set_index("subject")
    assert s.loc["A", "change"] == -2 and s.loc["A", "pct_change"] == pytest.approx(-25.0)
    # 2 points OR 30 %: A (-2 pts), C (-1 pt but -33 %), G, H respond; B (-1, -20 %) does not.
    assert s["responder_mcid"].to_dict() == {
        "A": True,
        "B": False,
        "C": True,
        "D": False,
        "E": False,
        "F": False,
        "G": True,
        "H": True,
    }
    assert np.isnan(s.loc["F", "pct_change"])  # baseline 0: percent undefined
    assert r.criteria == {
        "mcid": 2.0,
        "mcid_pct": 30.0,
        "sem": None,
        "mdc": None,
        "lower_is_better": True,
    }
    rates = r.rates.set_index("arm")
    assert rates.loc["control", "n"] == 4 and rates.loc["control", "n_missing"] == 1
    assert rates.loc["exercise", "n_responders"] == 2
    assert list(r.rates["criterion"]) == ["mcid", "mcid"]


def test_reliable_change_index_is_change_over_root_two_sem():
    r = responders(
        _scores(),
        outcome="pain_nrs",
        subject="subject_id",
        baseline="1",
        followup="2",
        arm="arm",
        sem=1.0,
    )
    s = r.subjects.set_index("subject")
    # Jacobson & Truax (1991): RCI = (x2 - x1) / sqrt(2 SEM^2); G: -6 / 1.41421 = -4.243.
    assert s.loc["G", "rci"] == pytest.approx(-6 / np.sqrt(2))
    assert s.loc["A", "rci"] == pytest.approx(-1.41421356, rel=1e-8)
    assert s["responder_rci"].to_dict() == {
        "A": False,
        "B": False,
        "C": False,
        "D": False,
        "E": False,
        "F": False,
        "G": True,
        "H": False,
    }
    assert set(r.rates["criterion"]) == {"mcid", "rci"}


def test_wilson_interval_matches_statsmodels():
    x = np.array([0, 1, 7, 19, 20])
    n = np.array([20, 20, 20, 20, 20])
    lo, hi = wilson_interval(x, n)
    ref_lo, ref_hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    np.testing.assert_allclose(lo, ref_lo, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hi, ref_hi, rtol=1e-12)
    r = responders(
        _scores(), outcome="pain_nrs", subject="subject_id", baseline="1", followup="2", arm="arm"
    ).rates.set_index("arm")
    exp = proportion_confint(2, 4, method="wilson")
    assert (r.loc["control", "ci_low"], r.loc["control", "ci_high"]) == pytest.approx(exp)


def test_store_scores_table_is_read_by_instrument():
    s = _scores()
    long = pd.DataFrame(
        {
            "subject_id": s["subject_id"],
            "session": s["session"],
            "instrument": "odi",
            "score": s["pain_nrs"] * 10,
            "arm": s["arm"],
        }
    )
    r = responders(long, outcome="odi", subject="subject_id", baseline="1", followup="2", arm="arm")
    # ODI default: 10 points or 30 %; A improves by 20 points.
    assert r.subjects.set_index("subject").loc["A", "responder_mcid"]
    assert r.criteria["mcid"] == 10.0


def test_unknown_outcome_needs_explicit_mcid_and_direction():
    s = _scores().rename(columns={"pain_nrs": "cmj_jump_height_flight_m"})
    with pytest.raises(ConfigError, match="mcid: has no default"):
        responders(
            s, outcome="cmj_jump_height_flight_m", subject="subject_id", baseline="1", followup="2"
        )
    with pytest.raises(ConfigError, match="lower_is_better"):
        responders(
            s,
            outcome="cmj_jump_height_flight_m",
            subject="subject_id",
            baseline="1",
            followup="2",
            mcid=0.03,
        )
    r = responders(
        s,
        outcome="cmj_jump_height_flight_m",
        subject="subject_id",
        baseline="1",
        followup="2",
        mcid=2.5,
        lower_is_better=False,
    )
    assert r.subjects.set_index("subject").loc["E", "responder_mcid"]  # +3 is better here
    with pytest.raises(ConfigError, match="followup: has no rows with session"):
        responders(_scores(), outcome="pain_nrs", subject="subject_id", baseline="1", followup="9")


def test_first_and_last_visit_by_order_and_the_larger_of_mcid_and_mdc():
    # hand-worked: visits labelled "2", "10", "3" sort numerically (2 < 3 < 10)
    d = pd.DataFrame(
        {
            "subject": ["a"] * 3 + ["b"] * 3 + ["c"] * 2 + ["d"],
            "visit": ["2", "10", "3", "2", "3", "10", "3", "10", "2"],
            "y": [10.0, 6.0, 9.0, 10.0, 9.0, 8.5, 12.0, 9.5, 7.0],
        }
    )
    r = responders(
        d,
        outcome="y",
        subject="subject",
        time="visit",
        baseline="first",
        followup="last",
        mcid=1.0,
        mdc=3.0,
        lower_is_better=True,
    )
    s = r.subjects.set_index("subject")
    assert list(s.index) == ["a", "b", "c"]  # d has one visit: no follow-up
    assert s["baseline_value"].tolist() == [10.0, 10.0, 12.0]
    assert s["followup_value"].tolist() == [6.0, 8.5, 9.5]
    assert s["change_mcid"].tolist() == [4.0, 1.5, 2.5]  # improvement / MCID
    assert s["responder_mcid"].tolist() == [True, True, True]
    # MDC 3 > MCID 1: only a change of at least 3 counts
    assert s["responder_mcid_mdc"].tolist() == [True, False, False]
    rates = r.rates.set_index("criterion")
    assert rates.loc["mcid_mdc", "n_responders"] == 1 and rates.loc["mcid", "n_responders"] == 3


def test_wilson_interval_matches_newcombe_1998_table_and_is_nan_without_trials():
    # Newcombe (1998) Stat Med 17:857-872, Table I, method 3 (Wilson score), 4 decimals
    lo, hi = wilson_interval([81, 15, 0, 1], [263, 148, 20, 29])
    np.testing.assert_allclose(lo, [0.2553, 0.0624, 0.0, 0.0061], atol=5e-5)
    np.testing.assert_allclose(hi, [0.3662, 0.1605, 0.1611, 0.1718], atol=5e-5)
    lo, hi = wilson_interval([0, 3], [0, 10])
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and 0 < lo[1] < 0.3 < hi[1] < 1
