"""Programme logs: arms, adherence, exercise rows, units and bad-row rules."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from cxlab.cli import app
from cxlab.ingest import ingest_interventions
from cxlab.io.programme import LB_TO_KG
from cxlab.pseudo import pseudonymise
from cxlab.store import Store

runner = CliRunner()
HEAD = (
    "participant,arm,start_date,end_date,sessions_prescribed,sessions_attended,exercise,"
    "date,sets,reps,load_kg,rpe"
)


def _csv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_adherence_is_attended_over_prescribed_and_exercise_rows_share_the_file(tmp_path):
    f = _csv(
        tmp_path / "log.csv",
        [
            HEAD,
            "CX001,hip_strengthening,2025-01-20,2025-03-16,16,14,,,,,,",
            "CX002,Core Stability,2025-01-20,2025-03-16,24,18,,,,,,",
            "CX003,control,2025-01-20,2025-03-16,0,0,,,,,,",
            "CX001,,,,,,Side-lying hip abduction,2025-01-20,3,12,2.5,6",
            "CX001,,,,,,clamshell,2025-01-20,3,15,,5.5",
        ],
    )
    r = ingest_interventions([f], store=tmp_path / "st")
    assert r.n_rejected == 0 and r.rows == {"interventions": 3, "exercise_log": 2}
    st = Store(tmp_path / "st")
    iv = st.table("interventions").set_index("subject_id")
    assert iv.loc[pseudonymise("CX001"), "adherence"] == pytest.approx(14 / 16)
    assert iv.loc[pseudonymise("CX002"), "adherence"] == pytest.approx(0.75)
    assert iv.loc[pseudonymise("CX002"), "arm"] == "core_stability"
    assert math.isnan(iv.loc[pseudonymise("CX003"), "adherence"])  # 0 prescribed
    ex = st.table("exercise_log").set_index("exercise")
    assert ex.loc["side_lying_hip_abduction", "load_kg"] == 2.5
    assert math.isnan(ex.loc["clamshell", "load_kg"]) and ex.loc["clamshell", "rpe"] == 5.5
    assert str(ex.loc["clamshell", "date"]) == "2025-01-20"


def test_exercise_log_in_its_own_file_with_load_in_pounds(tmp_path):
    prog = _csv(
        tmp_path / "prog.csv",
        [HEAD.split(",exercise")[0], "CX001,hip_strengthening,2025-01-20,2025-03-16,16,14"],
    )
    ex = _csv(
        tmp_path / "ex.csv",
        [
            "subject,date,exercise,sets,reps,load,load_unit,rpe",
            "CX001,2025-01-22,bridge,3,10,10,lb,7",
            "CX001,2025-01-24,bridge,3,10,5,kg,7",
        ],
    )
    r = ingest_interventions([prog, ex], store=tmp_path / "st")
    assert r.n_rejected == 0
    log = Store(tmp_path / "st").table("exercise_log")
    assert log["load_kg"].tolist() == pytest.approx([10 * 0.45359237, 5.0])
    # 1 lb = 0.45359237 kg exactly (1959); scipy.constants.lb is that to within one ulp
    assert LB_TO_KG == pytest.approx(0.45359237, rel=2**-52, abs=0)
    assert len(Store(tmp_path / "st").table("interventions")) == 1


def test_every_bad_row_is_quarantined_with_its_row_number(tmp_path):
    f = _csv(
        tmp_path / "bad.csv",
        [
            HEAD,
            "CX001,hip_strengthening,2025-01-20,2025-03-16,16,14,,,,,,",  # 2 good
            "CX002,core_stability,2025-01-20,2025-01-10,16,12,,,,,,",  # 3 end before start
            "CX003,control,2025-01-20,2025-03-16,16,30,,,,,,",  # 4 adherence > 1.5
            "CX004,control,20.1.2025,2025-03-16,16,10,,,,,,",  # 5 bad date
            "CX005,,2025-01-20,2025-03-16,16,10,,,,,,",  # 6 no arm
            "CX006,control,2025-01-20,2025-03-16,16,-2,,,,,,",  # 7 negative
            "CX007,control,2025-01-20,2025-03-16,16,10,,,,,,",  # 8 duplicate ...
            "CX007,control,2025-01-20,2025-03-16,16,11,,,,,,",  # 9 ... conflicting
            "CX001,,,,,,bridge,2025-01-20,3,12.5,x,11",  # 10 three bad cells
            ",,,,,,bridge,2025-01-20,3,12,1,5",  # 11 no subject
            "CX001,,,,,,bridge,2025-01-22,3,12,1,5",  # 12 good
        ],
    )
    r = ingest_interventions([f], store=tmp_path / "st")
    got = list(zip(r.rejected["row"], r.rejected["field"], strict=True))
    assert got == [
        (3, "end_date"),
        (4, "sessions_attended"),
        (5, "start_date"),
        (6, "arm"),
        (7, "sessions_attended"),
        (8, None),
        (9, None),
        (10, "load_kg"),
        (10, "reps"),
        (10, "rpe"),
        (11, "participant"),
    ]
    st = Store(tmp_path / "st")
    assert st.table("interventions")["subject_id"].tolist() == [pseudonymise("CX001")]
    assert st.table("exercise_log")["date"].astype(str).tolist() == ["2025-01-22"]
    assert set(st.table("quarantine")["stage"]) == {"interventions"}


def test_cli_exit_codes(tmp_path):
    f = _csv(tmp_path / "log.csv", [HEAD, "CX001,control,2025-01-20,2025-03-16,16,x,,,,,,"])
    out = runner.invoke(app, ["ingest-interventions", str(f), "--store", str(tmp_path / "s")])
    assert out.exit_code == 3 and "log.csv: row 2, column sessions_attended" in out.output
    f.write_text(HEAD + "\nCX001,control,2025-01-20,2025-03-16,16,8,,,,,,\n")
    out = runner.invoke(app, ["ingest-interventions", str(f), "--store", str(tmp_path / "s")])
    assert out.exit_code == 0, out.output
    # parts are keyed by content: the corrected file is a new part, the old rejection stays
    st = Store(tmp_path / "s")
    assert len(st.table("quarantine")) == 1 and len(st.table("interventions")) == 1


def test_absurd_numbers_and_dates_are_rejected_rows_with_the_rule_not_crashes(tmp_path):
    f = _csv(
        tmp_path / "log.csv",
        [
            HEAD,
            "CX001,hip_strengthening,2025-01-20,2025-03-16,16,14,,,,,,",
            "CX002,control,-999,2025-03-16,16,14,,,,,,",  # row 3 date code
            "CX003,control,2025,2025-03-16,16,14,,,,,,",  # row 4 a year
            "CX004,control,2025-01-20T08:00:00+01:00,2025-03-16,16,14,,,,,,",  # row 5 lands
            "CX001,,,,,,bridge,2025-01-20,3000000000,10,20,6",  # row 6 int32 overflow
            "CX001,,,,,,squat,2025-01-21,3,10,1e308,6",  # row 7 absurd load
            "CX001,,,,,,lunge,2025-01-22,3,10,40,6",  # row 8 lands
        ],
    )
    r = ingest_interventions([f], store=tmp_path / "st")
    got = list(zip(r.rejected["row"], r.rejected["field"], strict=True))
    assert got == [(3, "start_date"), (4, "start_date"), (6, "sets"), (7, "load_kg")]
    q = r.rejected.set_index("row")["reason"]
    assert "plausible maximum 2000 kg" in q[7] and "1e+308" in q[7]
    assert "sets" in q[6] and ("100" in q[6] or "int32" in q[6])
    assert r.rows == {"interventions": 2, "exercise_log": 1}
    out = runner.invoke(app, ["ingest-interventions", str(f), "--store", str(tmp_path / "s2")])
    assert out.exit_code == 3, out.output  # rejected rows, good ones landed: exit 3
