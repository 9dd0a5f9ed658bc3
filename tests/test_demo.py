"""The demo recovers the synthetic truth: the right programmes come out effective for the right
outcomes (table level, demo size), and the whole chain runs from files to report (small cohort)."""

from __future__ import annotations

import json
import os
import shutil
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
from leakscan import leaks
from truth_store import truth_store

REPO = Path(__file__).resolve().parents[1]
DEMO_SPEC = REPO / "experiments" / "demo.toml"


@pytest.fixture(scope="module")
def demo_size(tmp_path_factory):
    """experiments/demo.toml on a store filled from the demo cohort's table-level truth."""
    root = tmp_path_factory.mktemp("demo_tl")
    store, truth = truth_store(root / "store", 40, 4, seed=2026, quarantine=False)
    run = run_experiment(DEMO_SPEC, out=root / "runs", store=store.path)
    effects = pd.read_parquet(run / "effects.parquet")
    f = findings(effects[effects["estimand"] == "slope_diff"])
    f["truth"] = [truth.effects[o][a] for o, a in zip(f["outcome"], f["arm"], strict=True)]
    return f, truth


def test_demo_findings_recover_the_synthetic_truth(demo_size):
    """At the demo's size: (1) for every outcome, the programme with the largest true effect
    is found effective; (2) no programme without a true effect is called effective or harmful
    and every clear finding has the true sign; (3) the 95 % CIs cover this sample's true
    effect (mean true slope in the arm minus control's; LSI and FPPA effects are moderated by
    baseline asymmetry, so the sample's mix shifts its effect from the population value)."""
    f, truth = demo_size
    better = {
        "pain_nrs": -1,
        "odi": -1,
        "knee_fppa_peak_deg": -1,
        "balance_mean_velocity_m_s": -1,
        "landing_peak_force_lsi_pct": 1,
        "cmj_propulsive_impulse_lsi_pct": 1,
        "posture_cva_deg": 1,
    }
    for outcome, sign in better.items():
        arms = truth.effects[outcome]
        best = max(arms, key=lambda a: sign * arms[a])
        row = f[(f["outcome"] == outcome) & (f["arm"] == best)].iloc[0]
        assert row["verdict"] == "better", (outcome, best, row["sentence"])

    null = f[f["truth"] == 0]
    assert len(null) >= 5
    assert set(null["verdict"]) <= {"unclear", "suggestive"}, null[["outcome", "arm", "verdict"]]
    clear = f[f["verdict"].isin(["better", "worse"])]
    assert (np.sign(clear["estimate"]) == np.sign(clear["truth"])).all()

    s = truth.subjects
    sample = {}
    for o in f["outcome"].unique():
        slope = s.groupby("arm")[f"slope_{o}"].mean()
        sample.update({(o, a): slope[a] - slope["control"] for a in slope.index})
    st = np.array([sample[(o, a)] for o, a in zip(f["outcome"], f["arm"], strict=True)])
    covered = (f["ci_low"] <= st) & (st <= f["ci_high"])
    assert covered.mean() >= 0.85, f.assign(sample=st)[~covered]


def test_demo_command_runs_the_whole_chain_from_files_to_report(demo_cohort, tmp_path):
    """The shared ``cxlab demo`` run (conftest ``demo_cohort``: the CLI, in-process, from an
    empty folder) and a second run of the same command on a copy of its folders: output
    lines, quarantine, reuse of the raw files, and fidelity of the features computed from
    the synthetic C3D files to the simulated observations."""
    import shutil

    from conftest import DEMO_SUBJECTS, demo_args

    d = demo_cohort
    assert d.exit_code == 0, d.output
    out = d.output
    # the raw files hard-linked (the demo only reads them: same inodes, so the mtimes below
    # would show any write), the store and runs copied (the second run writes there)
    shutil.copytree(d.raw, tmp_path / "raw", copy_function=os.link)
    for name in ("store", "runs"):
        shutil.copytree(d.root / name, tmp_path / name)
    stamps = {p: p.stat().st_mtime_ns for p in sorted((tmp_path / "raw").rglob("*"))}
    second = CliRunner().invoke(app, demo_args(tmp_path))
    assert second.exit_code == 0, second.output
    print(out.split("timings:")[1].splitlines()[0], "|", second.output.split("timings:")[1][:80])
    raw_reused = stamps == {p: p.stat().st_mtime_ns for p in sorted((tmp_path / "raw").rglob("*"))}

    # the deliberately malformed survey rows (and the first copy of a conflicting duplicate)
    gt = json.loads((d.raw / "ground_truth.json").read_text())
    q = Store(d.store).table("quarantine")
    want = {b["row"] for b in gt["bad_survey_rows"]} | {
        b["duplicate_of"] for b in gt["bad_survey_rows"] if "duplicate_of" in b
    }
    assert set(q["row"]) == want and set(q["stage"]) == {"survey"}
    assert f"quarantined {len(q)} input row(s) as expected ({len(q)} survey)" in out

    timings = out.split("timings:")[1].splitlines()[0]
    for stage in ("synth", "ingest", "features", "run", "report"):
        assert f"{stage} " in timings
    lines = out.split("findings:")[1].split("report:")[0].strip().splitlines()
    assert len(lines) == 5 and all(x.strip().startswith("- ") for x in lines)
    report = Path(out.split("report:")[1].split()[0])
    assert report.is_file() and report.parent.parent == d.runs / "demo"

    # second run: raw files reused (synth skipped), same inputs -> the same run directory
    assert raw_reused
    again = Path(second.output.split("report:")[1].split()[0])
    assert again.relative_to(tmp_path) == report.relative_to(d.root)
    assert again.is_file()

    # features from the files reproduce the simulated observed values
    rows = [
        (pseudonymise(lab), ses, o, v)
        for lab, s in gt["subjects"].items()
        for ses, d_ in s["sessions"].items()
        if d_["observed"]
        for o, v in d_["observed_values"].items()
    ]
    truth = pd.DataFrame(rows, columns=["subject_id", "session", "outcome", "observed"])
    a = pd.read_parquet(report.parent / "analysis.parquet").merge(
        truth, on=["subject_id", "session", "outcome"]
    )
    assert a["outcome"].nunique() == 7
    for o, g in a.groupby("outcome"):
        err = g["value"] - g["observed"]
        spread = truth.loc[truth["outcome"] == o, "observed"].std()
        assert abs(err.mean()) < 0.05 * spread and err.std() < 0.1 * spread, o

    # privacy: no raw label, name, e-mail or birth date of the synthetic cohort anywhere in
    # the processed store, the run directory (tables, manifest, figures, report) or the output
    raw = pd.read_csv(d.raw / "surveys.csv", dtype=str)
    raw = pd.concat([raw, pd.read_csv(d.raw / "interventions.csv", dtype=str)])
    secrets = set()
    for col in ("participant", "name", "email", "date_of_birth"):
        secrets |= set(raw[col].dropna())
    secrets |= {n.split()[-1] for n in raw["name"].dropna()}  # surnames on their own
    assert len(secrets) > 3 * DEMO_SUBJECTS
    roots = (d.store, d.runs, tmp_path / "store", tmp_path / "runs")
    assert leaks(roots, secrets, outputs=[out, second.output]) == {}


def test_demo_refuses_a_raw_folder_of_another_cohort_naming_raw_and_clean_demo(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ground_truth.json").write_text(
        json.dumps({"seed": 7, "n_subjects": 12, "n_sessions": 2})
    )
    res = CliRunner().invoke(
        app,
        [
            "demo",
            "--raw",
            str(raw),
            "--store",
            str(tmp_path / "st"),
            "--out",
            str(tmp_path / "runs"),
            "--seed",
            "2026",
        ],
    )
    assert res.exit_code == 1, res.output
    line = " ".join(res.output.split())
    assert "--raw" in line and "make clean-demo" in line and "delete" in line
    assert "seed 7" in line and "out:" not in line and "Traceback" not in line
    assert sorted(p.name for p in raw.iterdir()) == ["ground_truth.json"]
    assert not (tmp_path / "st").exists()


def _planted_files(real_dir: Path, raw: Path) -> Path:
    """Recordings and a sheet that plant identifiers on every path a name can take into the
    store: folder and file names, subject prefixes of C3D and TRC points, C3D event labels and
    MANUFACTURER:SOFTWARE, a session label, a damaged file's quarantine row, and cell values
    (an e-mail and a name typed in a date column) of a sheet named after a person."""
    import ezc3d

    c = ezc3d.c3d(str(real_dir / "c3d/ktk_tennis_serve.c3d"))  # points prefixed Derrick:
    del c["parameters"]["EVENT"]
    c.add_event(time=[0, 0.5], context="Left", label="Foot Strike")
    c.add_event(time=[0, 1.0], context="General", label="John Smith arrives")
    c["parameters"]["MANUFACTURER"]["SOFTWARE"]["value"] = ["Motive 2.1 operator John Smith"]
    for rel in (
        "Smith_J/2024-03-01/CMJ_01.c3d",  # a lab folder named after a person
        "Smith_J/study/sub-PeterPan/ses-1/sub-PeterPan_ses-1_task-serve_run-1.c3d",
    ):
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        c.write(str(raw / rel))
        c.add_event(time=[0, 1.5], context="Right", label="Foot Off")  # other bytes next
    lines = (real_dir / "opensim/pyomeca_markers.trc").read_text().splitlines()
    lines[3] = ",".join(
        x if i < 2 or not x else f"PeterPan:{x}" for i, x in enumerate(lines[3].split(","))
    )
    trc = raw / "JohnSmith/JohnSmith follow-up/posture_1.trc"
    trc.parent.mkdir(parents=True)
    trc.write_text("\n".join(lines) + "\n")
    bad = raw / "Smith_J/2024-03-02/CMJ_02.c3d"
    bad.parent.mkdir(parents=True)
    bad.write_bytes((real_dir / "c3d/opensim_walking2.c3d").read_bytes()[:5000])
    sheet = raw.parent / "sheets" / "Smith_John_intake.csv"
    sheet.parent.mkdir(parents=True)
    sheet.write_text(
        "participant,session,date,pain_nrs\n"
        "JohnSmith,1,john.smith@example.org,3\n"
        "JohnSmith,2,John Smith,4\n"
        "PeterPan,1,2025-01-13,5\n"
    )
    return sheet


def test_planted_identifiers_never_reach_the_store_or_the_output(real_dir, tmp_path):
    """The privacy plants of issue #13, one per path, through the CLI as a user runs it (the
    sheet typed as an absolute path); every byte of the store and every output line is
    scanned. A positive control plants one value in a table to prove the scan sees it."""
    raw = tmp_path / "raw"
    sheet = _planted_files(real_dir, raw)
    store = tmp_path / "store"
    runner = CliRunner()
    rec = runner.invoke(
        app,
        [
            "ingest",
            str(raw),
            "--store",
            str(store),
            "--jobs",
            "1",
            "--pattern",
            "{subject}/{session}/{task}_{trial}.*",
        ],
    )
    assert rec.exit_code == 3, rec.output  # the damaged file is quarantined, the rest lands
    sur = runner.invoke(app, ["ingest-survey", str(sheet.resolve()), "--store", str(store)])
    assert sur.exit_code == 3, sur.output
    st = Store(store)
    assert len(st.table("recordings")) == 3 and len(st.table("quarantine")) == 3
    markers = set(st.table("markers", columns=["marker"])["marker"])
    assert {"LASI", "ASISl"} <= markers  # prefixes split off, so features find them

    # (the store's own path is printed on purpose; the raw data's folders never are)
    secrets = {"Smith", "John", "Derrick", "PeterPan", "example.org", str(raw), str(sheet.parent)}
    assert leaks([store], secrets, outputs=[rec.output, sur.output], ignore_case=True) == {}
    st.write(
        "strength",
        pd.DataFrame(
            {
                "subject_id": ["abcdefabcdef"],
                "session": ["1"],
                "muscle_group": ["John"],
                "side": ["left"],
                "peak_torque_nm": [1.0],
            }
        ),
    )
    assert set(leaks([store / "strength"], secrets, ignore_case=True)) == {"John"}


def test_a_one_letter_key_is_refused_before_anything_is_written(real_dir, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    _planted_files(real_dir, raw)
    monkeypatch.setenv("CXLAB_KEY", "k")
    out = CliRunner().invoke(app, ["ingest", str(raw), "--store", str(tmp_path / "store")])
    assert out.exit_code == 1 and "CXLAB_KEY" in out.output and "too weak" in out.output
    assert not list((tmp_path / "store").rglob("*.parquet"))


def test_the_leak_scan_reads_the_values_not_only_the_bytes(tmp_path):
    """Positive controls for :func:`leakscan.leaks`: a birth date in a date32 column (stored
    as a day count, so absent from the file's bytes), a name in a compressed column, an
    e-mail inside a list, a label in a dictionary and in a struct column, in a file not named
    .parquet; numeric columns never match; outputs and file names are searched too."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from leakscan import parquet_texts

    n = 5000
    rng = np.random.default_rng(0)
    filler = [f"{x:08x}" for x in rng.integers(0, 2**31, n - 1)]
    table = pa.table(
        {
            "name": pa.array([*filler, "Margaret Hamilton"]),
            "born": pa.array([dt.date(2000, 1, 1)] * (n - 1) + [dt.date(1936, 8, 17)]),
            "mail": pa.array([["x"]] * (n - 1) + [["mh@example.net"]]),
            "cat": pa.array([*filler, "CX0417"]).dictionary_encode(),
            "nested": pa.array([{"who": v} for v in [*filler, "Apollo-11"]]),
            "value": pa.array(np.r_[rng.normal(size=n - 1), 0.5]),
        }
    )
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(table, out / "part-0.bin", compression="zstd", write_statistics=False)
    secrets = {"Margaret Hamilton", "1936-08-17", "mh@example.net", "CX0417", "Apollo-11"}
    assert b"1936-08-17" not in (out / "part-0.bin").read_bytes()
    texts = parquet_texts(out / "part-0.bin")
    assert all(s in texts for s in secrets) and "0.5" not in texts
    found = leaks([out], secrets | {"0.5"})
    assert set(found) == secrets, found
    assert found["1936-08-17"] == "out/part-0.bin (values)"
    assert leaks([out], {"1936-08-17"}, outputs=["born 1936-08-17"]) == {"1936-08-17": "output 0"}
    assert set(leaks([out], {"apollo"}, ignore_case=True)) == {"apollo"}
    assert leaks([out], {"apollo"}) == {}
    (out / "Hopper.txt").write_text("x")
    assert leaks([out], {"Hopper"}) == {"Hopper": "out/Hopper.txt (path)"}
    # a copy of a folder beside it is not searched twice, but a file that differs is
    twin = tmp_path / "twin" / "out"
    shutil.copytree(out, twin)
    assert leaks([out, twin], {"Hopper", "CX0417"}) == {
        "Hopper": "out/Hopper.txt (path)",
        "CX0417": "out/part-0.bin (values)",
    }
    (twin / "Hopper.txt").write_text("Grace Hopper")
    found = leaks([out, twin], {"Grace"})
    assert found == {"Grace": "out/Hopper.txt"}, found
