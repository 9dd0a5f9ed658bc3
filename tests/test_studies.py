"""Study designs end to end: a motion-capture-only study, dates from the path, the sessions
sheet, pre/post and two-programme subjects."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxlab._check import ConfigError
from cxlab.experiments import analysis_table, read_spec, run_experiment
from cxlab.store import Store

SPEC = """
name = "mocap"
seed = 3
store = "store"

[model]
design = "{design}"
time = "{time}"
control = "control"

[outcomes.knee_fppa_peak_deg]
task = "landing"
mcid = 3.0

[outcomes.cmj_propulsive_impulse_lsi_pct]
task = "cmj"
mcid = "swc"
better = "higher"
"""


#: the tasks of SPEC's outcomes: the only trials the mocap store needs
STUDY_TASKS = frozenset({"landing", "cmj"})
#: the one run of each task the mocap store ingests: every check here is on sessions, dates,
#: programmes and per-session outcome values, none on the number of trials in a session (the
#: demo has two runs of each; the second would double the store's ingest and features)
STUDY_RUN = "1"


def _spec(root: Path, *, time: str, design: str = "parallel", name: str = "mocap") -> Path:
    p = root / f"{name}-{design}-{time}.toml"
    p.write_text(
        SPEC.format(time=time, design=design).replace('"mocap"', f'"{name}"'), encoding="utf-8"
    )
    return p


@pytest.fixture(scope="module")
def mocap(demo_cohort, built_once, tmp_path_factory):
    """The shared demo cohort's C3D files (conftest ``demo_cohort``: 16 subjects x 2
    sessions), renamed to carry the session date, ingested with a {date} pattern once for
    the whole run (``built_once``), only run 1 (``STUDY_RUN``) of the trials of the spec's
    outcomes (``STUDY_TASKS``); the programme log but no surveys. Each use gets its own
    folder for specs and runs, with ``store`` linked to the shared (read-only) store."""
    from conftest import DEMO_SEED, DEMO_SESSIONS, DEMO_SUBJECTS
    from cxlab.synth.truth import simulate_truth

    raw = demo_cohort.raw
    truth = simulate_truth(DEMO_SUBJECTS, DEMO_SESSIONS, seed=DEMO_SEED)  # the demo's truth
    obs = truth.outcomes[truth.outcomes["observed"]]
    when = obs.drop_duplicates(["label", "session"]).set_index(["label", "session"])["date"]

    def build(shared: Path) -> None:
        from cxlab.features.runner import extract_features
        from cxlab.ingest import ingest, ingest_interventions

        dated = shared / "dated"
        for f in sorted(raw.glob("sub-*/ses-*/*.c3d")):
            label, session = f.parent.parent.name[4:], f.parent.name[4:]
            day = pd.Timestamp(when.loc[(label, session)]).strftime("%Y-%m-%d")
            task_run = f.stem.split("_task-", 1)[1]  # balance_left_run-1
            task, run = task_run.rsplit("_run-", 1)
            if task not in STUDY_TASKS or run != STUDY_RUN:  # no check needs other trials
                continue
            dest = dated / f"sub-{label}" / f"{day}_ses-{session}" / f"{task}_{run}.c3d"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        st = Store(shared / "store")
        rep = ingest(
            [dated],
            store=st,
            jobs=2,
            progress=False,
            pattern="sub-{subject}/{date}_ses-{session}/{task}_{trial}.c3d",
        )
        assert not rep.failed, rep.summary()
        ingest_interventions([raw / "interventions.csv"], store=st)
        extract_features(st, jobs=2, progress=False)

    shared = built_once("studies-mocap", build)
    root = tmp_path_factory.mktemp("mocap")
    (root / "store").symlink_to(shared / "store", target_is_directory=True)
    st = Store(root / "store")
    return {"root": root, "store": st, "truth": truth, "when": when, "raw": raw}


def test_ingest_fills_sessions_with_the_dates_of_the_path(mocap):
    s = mocap["store"].table("sessions")
    assert set(s["source"]) == {"path"} and s["date"].notna().all()
    from cxlab.pseudo import pseudonymise

    ids = {pseudonymise(lab): lab for lab in mocap["truth"].subjects["label"]}
    got = {
        (ids[r.subject_id], r.session): pd.Timestamp(r.date)
        for r in s.drop_duplicates(["subject_id", "session"]).itertuples()
    }
    want = {k: pd.Timestamp(v) for k, v in mocap["when"].items()}
    assert got == {k: want[k] for k in got} and len(got) == len(want)


@pytest.mark.parametrize("time", ["session_index", "week"])
def test_motion_capture_only_study_runs_and_holds_the_participant_table(mocap, time):
    st = mocap["store"]
    assert st.table("scores").empty  # no surveys at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_experiment(_spec(mocap["root"], time=time), out=mocap["root"] / "runs")
    man = json.loads((run / "manifest.json").read_text())
    assert man["spec"]["time"] == time
    a = pd.read_parquet(run / "analysis.parquet")
    if time == "week":  # weeks since the programme start, from the dates in the path
        start = st.table("interventions").set_index("subject_id")["start_date"]
        k = a.iloc[0]
        assert k["week"] == pytest.approx(
            (pd.Timestamp(k["date"]) - pd.Timestamp(start[k["subject_id"]])).days / 7
        )
        assert a["week"].notna().all()
    eff = pd.read_parquet(run / "effects.parquet")
    assert set(eff["outcome"]) == {"knee_fppa_peak_deg", "cmj_propulsive_impulse_lsi_pct"}
    assert (eff["df_method"] == "satterthwaite").all()  # 16 subjects: small-sample df
    p = pd.read_parquet(run / "participants.parquet")
    n = a[a["outcome"] == "knee_fppa_peak_deg"].groupby("subject_id")["session_index"].nunique()
    assert set(p.loc[p["outcome"] == "knee_fppa_peak_deg", "subject_id"]) == set(n[n == 2].index)
    assert {"responder", "within threshold"} >= set(p["verdict"]) - {"worse beyond error"}
    mm = pd.read_parquet(run / "marginal_means.parquet")
    assert len(mm) and mm["df"].gt(0).all()
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "findings-matrix" in html and "Per-participant" in html


def test_a_subject_in_two_programmes_is_an_error_naming_the_subject(mocap, tmp_path):
    st = Store(tmp_path / "store")
    shutil.copytree(mocap["store"].path, st.path)
    iv = st.table("interventions")
    extra = iv.iloc[[0]].assign(arm="zz_other")
    st.write("interventions", pd.concat([iv, extra], ignore_index=True))
    spec = read_spec(_spec(tmp_path, time="session_index"), store=st.path)
    with pytest.raises(ConfigError, match=f"subject {iv['subject_id'].iloc[0]} is in 2 programmes"):
        analysis_table(st, spec)


def test_sessions_sheet_dates_take_precedence_and_bad_rows_are_quarantined(mocap, tmp_path):
    from cxlab.ingest import ingest_sessions

    st = Store(tmp_path / "store")
    shutil.copytree(mocap["store"].path, st.path)
    when = mocap["when"]  # the sessions with files: the first label seen at both sessions
    labels = sorted(mocap["truth"].subjects["label"])
    labels.sort(key=lambda lab: not {(lab, "1"), (lab, "2")} <= set(when.index))
    sheet = tmp_path / "sessions.csv"
    sheet.write_text(
        "participant,session,date\n"
        f"{labels[0]},1,2020-01-06\n"
        f"{labels[0]},2,2020-02-03\n"
        f"{labels[1]},1,2020-13-45\n"
        f",2,2020-02-03\n",
        encoding="utf-8",
    )
    res = ingest_sessions([sheet], store=st)
    assert res.rows["sessions"] == 2 and res.n_rejected == 2
    q = st.table("quarantine")
    assert q["reason"].str.contains("is not a date").any()
    spec = read_spec(_spec(tmp_path, time="week"), store=st.path)
    a = analysis_table(st, spec)
    from cxlab.pseudo import pseudonymise

    mine = a[a["subject_id"] == pseudonymise(labels[0])]
    assert set(mine["date"].astype(str)) == {"2020-01-06", "2020-02-03"}


def test_prepost_single_group_reports_change_with_ci_and_no_control(mocap):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_experiment(
            _spec(mocap["root"], time="week", design="prepost", name="prepost"),
            out=mocap["root"] / "runs",
        )
    eff = pd.read_parquet(run / "effects.parquet")
    assert set(eff["estimand"]) == {"slope", "mean_change"} and set(eff["arm"]) == {"all"}
    a = pd.read_parquet(run / "analysis.parquet")
    d = a[a["outcome"] == "knee_fppa_peak_deg"].sort_values("session_index")
    g = d.groupby("subject_id")["value"]
    change = (g.last() - g.first())[d.groupby("subject_id").size() == 2]
    row = eff[(eff["outcome"] == "knee_fppa_peak_deg") & (eff["estimand"] == "mean_change")]
    assert row["estimate"].item() == pytest.approx(change.mean(), rel=1e-10)
    assert "no control arm" in json.loads((run / "manifest.json").read_text())["methods"]
    assert np.isfinite(row["ci_low"].item())


def test_crossover_takes_the_programme_of_each_period_from_the_start_dates(mocap, tmp_path):
    st = Store(tmp_path / "store")
    shutil.copytree(mocap["store"].path, st.path)
    s = st.table("sessions").drop_duplicates(["subject_id", "session"])
    first = s[s["session"] == "1"].set_index("subject_id")["date"]
    second = s[s["session"] == "2"].set_index("subject_id")["date"]
    subjects = sorted(set(first.index) & set(second.index))
    rows = []
    for i, sid in enumerate(subjects):
        order = ("control", "hip_strengthening") if i % 2 == 0 else ("hip_strengthening", "control")
        mid = pd.Timestamp(first[sid]) + (pd.Timestamp(second[sid]) - pd.Timestamp(first[sid])) / 2
        for arm, start in zip(order, (pd.Timestamp(first[sid]), mid), strict=True):
            rows.append(
                {
                    "subject_id": sid,
                    "arm": arm,
                    "start_date": start.date(),
                    "end_date": None,
                    "sessions_prescribed": None,
                    "sessions_attended": None,
                    "adherence": None,
                }
            )
    iv = pd.DataFrame(rows).astype(
        {"sessions_prescribed": "Int32", "sessions_attended": "Int32", "adherence": float}
    )
    for key in sorted(st.keys("interventions")):  # through the store: its catalog lists parts
        st.delete("interventions", key=key)
    st.write("interventions", iv)
    spec = _spec(tmp_path, time="session_index", design="crossover", name="xover")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = analysis_table(st, read_spec(spec, store=st.path))
        run = run_experiment(spec, store=st.path, out=tmp_path / "runs")
    k = a[a["outcome"] == "knee_fppa_peak_deg"]
    even = k[k["subject_id"] == subjects[0]].sort_values("session_index")
    assert even["arm"].tolist() == ["control", "hip_strengthening"]
    assert even["period"].tolist() == [1, 2] and set(even["sequence"]) == {
        "control-hip_strengthening"
    }
    eff = pd.read_parquet(run / "effects.parquet")
    assert set(eff["estimand"]) == {"crossover_diff"} and set(eff["arm"]) == {"hip_strengthening"}
    assert (eff["n_subjects"] == len(subjects)).all() and eff["df"].gt(0).all()
