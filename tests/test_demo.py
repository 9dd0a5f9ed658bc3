"""The demo recovers the synthetic truth: the right programmes come out effective for the right
outcomes (table level, demo size), and the whole chain runs from files to report (small cohort)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxlab.cli import app
from cxlab.experiments import run_experiment
from cxlab.pseudo import pseudonymise
from cxlab.report import findings
from cxlab.store import Store
from truth_store import truth_store

REPO = Path(__file__).resolve().parents[1]
DEMO_SPEC = REPO / "experiments" / "demo.toml"


@pytest.fixture(scope="module")
def demo_size(tmp_path_factory):
    """experiments/demo.toml on a store filled from the demo cohort's table-level truth."""
    os.environ.setdefault("CXLAB_KEY", "test-key-not-secret")
    root = tmp_path_factory.mktemp("demo_tl")
    store, truth = truth_store(root / "store", 40, 4, seed=2026, quarantine=False)
    run = run_experiment(DEMO_SPEC, out=root / "runs", store=store.path)
    effects = pd.read_parquet(run / "effects.parquet")
    f = findings(effects[effects["estimand"] == "slope_diff"])
    f["truth"] = [truth.effects[o][a] for o, a in zip(f["outcome"], f["arm"], strict=True)]
    return f, truth


def test_the_most_effective_programme_is_found_for_every_outcome(demo_size):
    f, truth = demo_size
    better = {"pain_nrs": -1, "odi": -1, "knee_fppa_peak_deg": -1, "balance_mean_velocity_m_s": -1,
              "landing_peak_force_lsi_pct": 1, "cmj_propulsive_impulse_lsi_pct": 1,
              "posture_cva_deg": 1}
    for outcome, sign in better.items():
        arms = truth.effects[outcome]
        best = max(arms, key=lambda a: sign * arms[a])
        row = f[(f["outcome"] == outcome) & (f["arm"] == best)].iloc[0]
        assert row["verdict"] == "better", (outcome, best, row["sentence"])


def test_programmes_without_a_true_effect_are_not_called_effective(demo_size):
    f, _ = demo_size
    null = f[f["truth"] == 0]
    assert len(null) >= 5
    assert set(null["verdict"]) <= {"unclear", "suggestive"}, null[["outcome", "arm", "verdict"]]
    clear = f[f["verdict"].isin(["better", "worse"])]
    assert (np.sign(clear["estimate"]) == np.sign(clear["truth"])).all()


def test_intervals_cover_the_sample_truth(demo_size):
    """95 % CIs against this sample's true effect: mean true slope in the arm minus control's
    (the LSI and FPPA effects are moderated by baseline asymmetry, so the sample's mix of
    subjects shifts its effect away from the population value)."""
    f, truth = demo_size
    s = truth.subjects
    sample = {}
    for o in f["outcome"].unique():
        slope = s.groupby("arm")[f"slope_{o}"].mean()
        sample.update({(o, a): slope[a] - slope["control"] for a in slope.index})
    st = np.array([sample[(o, a)] for o, a in zip(f["outcome"], f["arm"], strict=True)])
    covered = (f["ci_low"] <= st) & (st <= f["ci_high"])
    assert covered.mean() >= 0.85, f.assign(sample=st)[~covered]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """`cxlab demo` on a small cohort, run twice (the second run reuses the raw files)."""
    os.environ.setdefault("CXLAB_KEY", "test-key-not-secret")
    root = tmp_path_factory.mktemp("demo_chain")
    args = ["demo", "--raw", str(root / "raw"), "--store", str(root / "store"), "--subjects",
            "12", "--sessions", "2", "--seed", "7", "--out", str(root / "runs"), "--jobs", "2"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    return root, first, second


def test_demo_command_prints_quarantine_timings_findings_and_report(chain):
    root, first, _ = chain
    assert first.exit_code == 0, first.output
    out = first.output
    gt = json.loads((root / "raw" / "ground_truth.json").read_text())
    q = Store(root / "store").table("quarantine")
    # every deliberately malformed survey row (and the first copy of a conflicting duplicate)
    want = {b["row"] for b in gt["bad_survey_rows"]} | {
        b["duplicate_of"] for b in gt["bad_survey_rows"] if "duplicate_of" in b}
    assert set(q["row"]) == want and set(q["stage"]) == {"survey"}
    assert f"quarantined {len(q)} input row(s) as expected ({len(q)} survey)" in out
    for stage in ("synth", "ingest", "features", "run", "report"):
        assert f"{stage} " in out.split("timings:")[1].splitlines()[0]
    lines = out.split("findings:")[1].split("report:")[0].strip().splitlines()
    assert len(lines) == 5 and all(x.strip().startswith("- ") for x in lines)
    report = Path(out.split("report:")[1].split()[0])
    assert report.is_file() and report.parent.parent == root / "runs" / "demo"


def test_demo_reuses_raw_files_and_gives_the_same_run(chain):
    _, first, second = chain
    assert second.exit_code == 0, second.output
    t1 = first.output.split("timings:")[1].split(",")[0]
    t2 = second.output.split("timings:")[1].split(",")[0]
    assert "synth" in t1 and float(t2.split()[1]) < 0.5  # skipped
    def report(r):
        return r.output.split("report:")[1].split()[0]

    assert report(first) == report(second)


def test_pipeline_values_match_the_files_ground_truth(chain):
    """Features computed from the synthetic C3D files reproduce the simulated observations."""
    root = chain[0]
    gt = json.loads((root / "raw" / "ground_truth.json").read_text())
    rows = [(pseudonymise(lab), ses, o, v)
            for lab, s in gt["subjects"].items() for ses, d in s["sessions"].items()
            if d["observed"] for o, v in d["observed_values"].items()]
    truth = pd.DataFrame(rows, columns=["subject_id", "session", "outcome", "observed"])
    run = next((root / "runs" / "demo").iterdir())
    a = pd.read_parquet(run / "analysis.parquet").merge(truth, on=["subject_id", "session",
                                                                  "outcome"])
    assert a["outcome"].nunique() == 7
    for o, d in a.groupby("outcome"):
        err = d["value"] - d["observed"]
        spread = truth.loc[truth["outcome"] == o, "observed"].std()
        assert abs(err.mean()) < 0.05 * spread and err.std() < 0.1 * spread, o
