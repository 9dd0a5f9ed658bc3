"""The demo's EMG outcome: the synthetic cohort's gluteus medius landing activation rises by a
known amount per week in the hip programme (cxlab.synth.emg), and the demo spec's EMG outcome,
run through files -> ingest -> features -> mixed model, estimates that effect within its CI.
The shared demo cohort of the suite (16 x 2, conftest ``demo_cohort``), control and hip arms
only, not the full demo size."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from cxlab.experiments import run_experiment
from cxlab.synth.emg import GMED_EFFECT_PCT_PER_WEEK
from cxlab.synth.files import write_cohort

DEMO_SPEC = Path(__file__).resolve().parents[1] / "experiments" / "demo.toml"
EMG = "emg_gmed_landing_100ms_mean_pct_mvc"
ARMS = ("control", "hip_strengthening")


@pytest.fixture(scope="module")
def emg_run(demo_cohort, tmp_path_factory):
    """The demo spec's EMG outcome on the shared demo store (conftest ``demo_cohort``: 16
    subjects x 2 sessions through files -> ingest -> features), control and hip arms only."""
    root = tmp_path_factory.mktemp("demo_emg")
    gt = json.loads((demo_cohort.raw / "ground_truth.json").read_text())
    demo = tomllib.loads(DEMO_SPEC.read_text(encoding="utf-8"))
    outcome = demo["outcomes"][EMG]  # the demo's own outcome definition
    lines = [
        'name = "demo_emg"',
        f"seed = {demo['seed']}",
        'store = "store"',
        f"where = \"arm IN ('{ARMS[0]}', '{ARMS[1]}')\"",
        "[model]",
        # time in sessions: a survey row the synthetic export garbles on purpose leaves its
        # session undated, and this small cohort cannot spare a subject
        *(f"{k} = {json.dumps(v)}" for k, v in {**demo["model"], "time": "session_index"}.items()),
        f"[outcomes.{EMG}]",
        *(f"{k} = {json.dumps(v)}" for k, v in outcome.items()),
    ]
    spec = root / "emg.toml"
    spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run_experiment(spec, out=root / "runs", store=demo_cohort.store), gt


def test_demo_spec_declares_the_emg_outcome_from_landing():
    demo = tomllib.loads(DEMO_SPEC.read_text(encoding="utf-8"))
    assert demo["outcomes"][EMG]["task"] == "landing"
    assert demo["outcomes"][EMG]["better"] == "higher"


def test_ground_truth_states_the_emg_effect_of_every_arm(emg_run):
    _, gt = emg_run
    emg = gt["emg_effects"]["gmed_landing_pct_mvc"]
    want = {a: v - GMED_EFFECT_PCT_PER_WEEK["control"] for a, v in GMED_EFFECT_PCT_PER_WEEK.items()}
    assert emg["effects"] == {a: v for a, v in want.items() if a != "control"}
    assert emg["effects"]["core_stability"] == pytest.approx(0.3)
    assert emg["effects"]["hip_strengthening"] > emg["effects"]["core_stability"]


def test_cohort_without_emg_has_no_emg_truth(tmp_path):
    raw = write_cohort(tmp_path / "raw", n_subjects=2, n_sessions=1, seed=3, jobs=1, progress=False)
    assert "emg_effects" not in json.loads((raw / "ground_truth.json").read_text())


def test_demo_emg_outcome_recovers_the_injected_hip_effect(emg_run):
    run, gt = emg_run
    e = pd.read_parquet(run / "effects.parquet")
    row = e[(e["outcome"] == EMG) & (e["estimand"] == "slope_diff")].set_index("arm")
    emg = gt["emg_effects"]["gmed_landing_pct_mvc"]  # the truth the cohort was written with
    assert emg["feature"] == EMG and emg["unit"] == "%MVC"
    per_week = emg["effects"]["hip_strengthening"]
    weeks = [  # programme weeks at the second session of each hip subject
        s["sessions"]["2"]["week"]
        for s in gt["subjects"].values()
        if s["arm"] == "hip_strengthening" and s["sessions"]["2"]["observed"]
    ]
    truth = per_week * sum(weeks) / len(weeks)  # %MVC per session
    hip = row.loc["hip_strengthening"]
    assert hip["ci_low"] <= truth <= hip["ci_high"], hip.to_dict()
    print(
        f"hip slope_diff {hip['estimate']:.2f} [{hip['ci_low']:.2f}, {hip['ci_high']:.2f}]"
        f" %MVC/session, truth {truth:.2f}"
    )
    # each session is normalised to its own MVC trial, so with 4 + 4 subjects and two
    # sessions the interval is wide; it must still exclude an effect of the wrong size
    assert hip["ci_high"] - hip["ci_low"] < 8 * truth
    assert hip["unit"] == "%MVC"
    a = pd.read_parquet(run / "analysis.parquet")
    assert set(a["arm"]) == set(ARMS) and a["subject_id"].nunique() >= 6
