import pandas as pd
from typer.main import get_command
from typer.testing import CliRunner

from cxlab.cli import app
from cxlab.store import Store

runner = CliRunner()


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_command_has_help_text():
    for path, cmd in _commands(get_command(app)):
        assert (cmd.help or "").strip(), f"cxlab {' '.join(path)} has no help text"


def test_help_lists_commands():
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0
    assert "store" in out.output and "sql" in out.output


def _store(tmp_path):
    s = Store(tmp_path / "st")
    s.write(
        "strength",
        pd.DataFrame(
            {
                "subject_id": ["abcdefabcdef"] * 2,
                "session": ["1", "1"],
                "muscle_group": ["knee_flexors"] * 2,
                "side": ["left", "right"],
                "peak_torque_nm": [100.0, 90.0],
            }
        ),
    )
    return s


def test_store_info_prints_tables(tmp_path):
    s = _store(tmp_path)
    out = runner.invoke(app, ["store", "info", str(s.path), "--csv"])
    assert out.exit_code == 0, out.output
    assert "strength,2,1,1," in out.output


def test_sql_prints_csv(tmp_path):
    s = _store(tmp_path)
    out = runner.invoke(
        app, ["sql", str(s.path), "SELECT side, peak_torque_nm FROM strength", "--csv"]
    )
    assert out.exit_code == 0
    assert out.output.splitlines() == ["side,peak_torque_nm", "left,100.0", "right,90.0"]


def test_library_error_is_one_line_without_traceback(tmp_path):
    s = _store(tmp_path)
    out = runner.invoke(app, ["sql", str(s.path), "SELECT nope FROM strength"])
    assert out.exit_code == 1
    assert "Traceback" not in out.output
    assert "error: SQL failed" in out.output


def test_store_schema_lists_columns_with_units():
    out = runner.invoke(app, ["store", "schema", "forces", "--csv"])
    assert out.exit_code == 0
    assert "forces,fz,float,N,True" in out.output
    assert "forces,cop_x,float,m,True" in out.output


def test_store_schema_unknown_table_is_one_line_error():
    out = runner.invoke(app, ["store", "schema", "force"])
    assert out.exit_code == 1 and "is not a declared table" in out.output


def test_reading_a_store_that_does_not_exist_is_an_error(tmp_path):
    missing = str(tmp_path / "no_such_store")
    for args in (
        ["sql", missing, "SELECT * FROM recordings"],
        ["store", "info", missing],
        ["features", "--store", missing],
    ):
        out = runner.invoke(app, args)
        assert out.exit_code == 1, (args, out.output)
        assert "does not exist" in out.output and "Traceback" not in out.output
    assert not (tmp_path / "no_such_store").exists()
    (tmp_path / "a.csv").write_text("x\n1\n")
    out = runner.invoke(app, ["store", "info", str(tmp_path / "a.csv")])
    assert out.exit_code == 1 and "store: is not a directory" in out.output


def test_ingest_of_a_folder_without_recordings_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    out = runner.invoke(app, ["ingest", str(tmp_path / "empty"), "--store", str(tmp_path / "st")])
    assert out.exit_code == 1, out.output
    assert "no recording files" in out.output


def test_unexpected_exception_is_one_line_without_traceback(tmp_path, monkeypatch):
    import cxlab.store

    def boom(self, query):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cxlab.store.Store, "sql", boom)
    s = _store(tmp_path)
    out = runner.invoke(app, ["sql", str(s.path), "SELECT 1"])
    assert out.exit_code == 1
    assert "Traceback" not in out.output
    assert "ZeroDivisionError: division by zero" in out.output and "--debug" in out.output


def test_error_message_with_brackets_is_printed_verbatim(tmp_path, monkeypatch):
    import cxlab.store
    from cxlab._check import CxlabError

    def bad(self, query):
        raise CxlabError("x.csv: side: not allowed (got [left]); use [b]left[/b]")

    monkeypatch.setattr(cxlab.store.Store, "sql", bad)
    out = runner.invoke(app, ["sql", str(_store(tmp_path).path), "SELECT 1"])
    assert out.exit_code == 1
    assert "(got [left]); use [b]left[/b]" in out.output


def test_closed_pipe_ends_quietly(tmp_path, monkeypatch):
    import cxlab.store

    def closed(self, query):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cxlab.store.Store, "sql", closed)
    out = runner.invoke(app, ["sql", str(_store(tmp_path).path), "SELECT 1"])
    assert out.exit_code == 0 and "error" not in out.output


def test_library_warning_is_one_plain_line(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("participant,session,date,pain_nrs,fat_1\nCX001,1,2025-01-13,6,2\n")
    out = runner.invoke(app, ["ingest-survey", str(sheet), "--store", str(tmp_path / "st")])
    assert out.exit_code == 0, out.output
    assert (
        "warning: s.csv: header: columns are not items of a known instrument and are "
        "ignored (got ['fat_1'])"
    ) in out.output
    assert "CxlabWarning" not in out.output and ".py:" not in out.output


def test_screen_of_a_client_without_findings_says_so_instead_of_an_empty_table(tmp_path):
    s = Store(tmp_path / "st")
    s.write(
        "features",
        pd.DataFrame(
            {
                "recording_id": "0123456789abcdef",
                "subject_id": "abcdefabcdef",
                "session": "1",
                "task": "landing",
                "trial": "1",
                "feature": ["landing_peak_force_lsi_pct"],
                "side": "bilateral",
                "value": [97.0],
                "unit": "%",
                "method": "test",
            }
        ),
    )
    out = runner.invoke(app, ["screen", "--store", str(s.path)])
    assert out.exit_code == 0, out.output
    assert "client abcdefabcdef, session 1: nothing flagged" in out.output
    assert "rule_id" not in out.output


def test_features_explains_recordings_without_a_known_task(tmp_path, real_dir):
    real = str(real_dir / "opensim" / "pyomeca_markers.trc")
    st = str(tmp_path / "st")
    assert runner.invoke(app, ["ingest", real, "--store", st, "--jobs", "1"]).exit_code == 0
    out = runner.invoke(app, ["features", "--store", st, "--jobs", "1"])
    assert out.exit_code == 3, out.output  # listed in quarantine, not counted and forgotten
    assert "1 without feature functions" in out.output and "quarantined 1" in out.output
    assert "note: 1 recording(s) have an empty task" in out.output
    assert "no task (the file name gave none)" in out.output


def test_numbers_are_never_folded_across_lines(monkeypatch):
    import io

    from rich.console import Console

    import cxlab.cli as cli

    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, width=70))
    df = pd.DataFrame(
        {
            "outcome": ["pain_nrs"],
            "arm": ["hip_strengthening"],
            "estimand": ["slope_diff"],
            "estimate": [-0.19123],
            "ci_low": [-0.30733],
            "ci_high": [-0.075149],
            "p_adj": [0.0057591],
            "converged": [True],
        }
    )
    cli.print_frame(df)
    text = buf.getvalue()
    for number in ("-0.1912", "-0.3073", "-0.07515", "0.005759"):
        assert number in text, text


def test_store_path_that_is_a_file_is_a_one_line_error(tmp_path, real_dir):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    sheet = tmp_path / "s.csv"
    sheet.write_text("participant,session,date,pain_nrs\nCX001,1,2025-01-13,6\n")
    for args in (
        ["ingest", str(real_dir / "opensim" / "pyomeca_markers.trc")],
        ["ingest-survey", str(sheet)],
        ["ingest-strength", str(sheet)],
        ["ingest-interventions", str(sheet)],
    ):
        out = runner.invoke(app, [*args, "--store", str(afile)])
        assert out.exit_code == 1, (args, out.output)
        assert "store: is not a directory" in out.output and "internal error" not in out.output


def test_os_error_is_a_user_error_not_a_bug(tmp_path, monkeypatch):
    import cxlab.store

    def denied(self, query):
        raise PermissionError(13, "Permission denied", "/srv/lab/store/scores")

    monkeypatch.setattr(cxlab.store.Store, "sql", denied)
    out = runner.invoke(app, ["sql", str(_store(tmp_path).path), "SELECT 1"])
    assert out.exit_code == 1
    assert "error: /srv/lab/store/scores: Permission denied; check the paths" in out.output
    assert "bug" not in out.output


def test_features_rejection_names_the_file(tmp_path):
    trial = tmp_path / "raw" / "sub-ZZ9" / "ses-1" / "sub-ZZ9_ses-1_task-cmj_run-1.csv"
    trial.parent.mkdir(parents=True)
    trial.write_text(
        "time,left_fz,right_fz\n" + "".join(f"{i / 1000},350,360\n" for i in range(4000))
    )
    st = str(tmp_path / "st")
    assert runner.invoke(app, ["ingest", str(tmp_path / "raw"), "--store", st]).exit_code == 0
    out = runner.invoke(app, ["features", "--store", st, "--jobs", "1"])
    assert out.exit_code == 3, out.output
    assert "_ses-1_task-cmj_run-1.csv: recording " in out.output
    assert "ZZ9" not in out.output


def test_demo_refuses_a_cohort_too_small_for_the_models_before_doing_any_work(tmp_path):
    out = runner.invoke(
        app,
        [
            "demo",
            "--raw",
            str(tmp_path / "raw"),
            "--store",
            str(tmp_path / "st"),
            "--subjects",
            "8",
            "--sessions",
            "2",
        ],
    )
    assert out.exit_code == 2, out.output
    assert not (tmp_path / "raw").exists()


def test_run_prints_the_manifest_warnings(tmp_path, monkeypatch):
    import json

    import cxlab.experiments

    run_dir = tmp_path / "runs" / "x" / "abc"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(
        json.dumps(
            {"warnings": [f"outcomes.o{i}: left out 3 of 35 subject-sessions" for i in range(12)]}
        )
    )
    monkeypatch.setattr(cxlab.experiments, "run_experiment", lambda spec, out, store: run_dir)
    out = runner.invoke(app, ["run", "spec.toml"])
    assert out.exit_code == 0, out.output
    assert "warning: outcomes.o0: left out 3 of 35 subject-sessions" in out.output
    assert "warning: outcomes.o9:" in out.output and "outcomes.o10" not in out.output
    assert "2 more warning(s)" in out.output


def test_ingest_retest_lands_pairs_and_exits_3_naming_a_bad_cell(tmp_path):
    from cxlab.store import Store

    sheet = tmp_path / "retest.csv"
    sheet.write_text("participant,outcome,test,retest\nR1,fppa,10,11\nR2,fppa,9,n/a\n")
    out = runner.invoke(app, ["ingest-retest", str(sheet), "--store", str(tmp_path / "s")])
    assert out.exit_code == 3, out.output
    assert "wrote 2 retest rows; rejected 1" in out.output
    assert "retest.csv: row 3, column retest: is not a number (got 'n/a')" in out.output
    assert sorted(Store(tmp_path / "s").table("retest")["value"]) == [10.0, 11.0]


def test_ingest_exits_3_for_a_text_file_that_is_no_recording_and_lands_the_good_one(
    tmp_path, real_dir
):
    """README claim "Bad input loses nothing": a CSV/TXT that is no recording is listed in
    quarantine, the good file still lands, and the command exits 3 (not 0)."""
    import shutil

    lab = tmp_path / "lab" / "sub-01" / "ses-1"
    lab.mkdir(parents=True)
    shutil.copy(real_dir / "c3d" / "opensim_walking2.c3d", lab / "sub-01_ses-1_task-walk_run-1.c3d")
    (lab / "notes.txt").write_text("Trials recorded by the lab on Tuesday.\n")
    pd.DataFrame({"participant": ["01"], "pain": [2]}).to_csv(lab / "survey.csv", index=False)
    st = tmp_path / "st"
    out = runner.invoke(app, ["ingest", str(tmp_path / "lab"), "--store", str(st), "--jobs", "1"])
    assert out.exit_code == 3, out.output
    s = Store(st)
    assert s.table("recordings")["task"].tolist() == ["walk"]
    q = s.table("quarantine")
    assert sorted(q["source_path"].str.rsplit("/", n=1).str[-1]) == ["notes.txt", "survey.csv"]
    assert (q["stage"] == "discover").all() and q["reason"].str.len().gt(0).all()
