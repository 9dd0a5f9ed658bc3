"""Ingest on the real files laid out BIDS-like in a tmp folder: landing, pairing, quarantine,
incremental runs, determinism across --jobs, and the CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import ezc3d
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cxlab._check import ConfigError, CxlabWarning
from cxlab.cli import EXIT_REJECTED, app
from cxlab.ingest import ingest
from cxlab.ingest._paths import masked_path, path_fields, pattern_regex
from cxlab.ingest._worker import Task, run_task
from cxlab.io import read_mot
from cxlab.pseudo import pseudonymise
from cxlab.store import Store

LAYOUT = {
    "sub-01/ses-1/sub-01_ses-1_task-gait_run-1.c3d": "c3d/opensim_walking2.c3d",
    "sub-01/ses-1/sub-01_ses-1_task-gait_run-2.trc": (
        "opensim/subject01_walk_marker_trajectories.trc"
    ),
    "sub-01/ses-1/sub-01_ses-1_task-gait_run-2_grf.mot": "opensim/subject01_walk_grf.mot",
    "sub-02/ses-1/sub-02_ses-1_task-balance_left_run-1.c3d": "c3d/c3dorg_TYPE-2.C3D",
    "sub-02/ses-2/sub-02_ses-2_task-posture_run-1.trc": "opensim/pyomeca_markers.trc",
    "misc/notes_ik.mot": "opensim/pyomeca_inverse_kin.mot",
}
LAYOUT_KEY_POSTURE = "sub-02/ses-2/sub-02_ses-2_task-posture_run-1.trc"
BAD = "sub-03/ses-1/sub-03_ses-1_task-cmj_run-1.c3d"


def _sha(path: Path, *more: Path) -> str:
    h = hashlib.sha256()
    for p in (path, *more):
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def raw(real_dir, tmp_path) -> Path:
    root = tmp_path / "raw"
    for dst, src in LAYOUT.items():
        (root / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real_dir / src, root / dst)
    return root


def _add_truncated(raw: Path, real_dir: Path) -> Path:
    bad = raw / BAD
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes((real_dir / "c3d/opensim_walking2.c3d").read_bytes()[:5000])
    return bad


def _files(store: Path) -> dict[str, bytes]:
    return {
        p.relative_to(store).as_posix(): p.read_bytes() for p in sorted(store.rglob("*.parquet"))
    }


def _run(raw, store, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        return ingest([raw], store=store, progress=False, **kw)


def test_bids_paths_give_pseudonymised_fields_and_no_raw_label(raw, tmp_path):
    rep = _run(raw, tmp_path / "st", jobs=2)
    assert len(rep.ingested) == 5 and not rep.failed
    rec = Store(tmp_path / "st").table("recordings").set_index("trial", drop=False)
    s01, s02 = pseudonymise("01"), pseudonymise("02")
    bal = rec[rec["task"] == "balance_left"].iloc[0]
    assert (bal["subject_id"], bal["session"], bal["trial"]) == (s02, "1", "1")
    assert set(rec.loc[rec["task"] == "gait", "subject_id"]) == {s01}
    assert bal["source_path"] == f"sub-{s02}/ses-1/sub-{s02}_ses-1_task-balance_left_run-1.c3d"
    stored = pd.concat(
        [Store(tmp_path / "st").table(t).astype(str).stack() for t in ("recordings", "events")]
    )
    assert not stored.str.contains("sub-01|sub-02").any()
    assert not any("sub-01" in p for p in _files(tmp_path / "st"))


def test_unmatched_path_lands_with_empty_fields_and_one_warning(raw, tmp_path):
    rep = _run(raw, tmp_path / "st")
    rec = Store(tmp_path / "st").table("recordings")
    # a path matching no pattern is stored as a keyed hash plus its extension only
    stored = pseudonymise("path:misc/notes_ik.mot") + ".mot"
    row = rec[rec["source_path"] == stored].iloc[0]
    assert row[["subject_id", "session", "task", "trial"]].isna().all()
    assert not rec["source_path"].str.contains("misc|notes").any()
    lines = [w for w in rep.warnings if "match no file-name pattern" in w]
    assert len(lines) == 1 and lines[0].startswith("1 path(s)")
    assert lines[0].endswith(": misc/notes_ik.mot")
    analogs = Store(tmp_path / "st").table(
        "analogs", filters=[("recording_id", "==", row["recording_id"])]
    )
    assert len(analogs) == 88 * 25 and set(analogs["unit"]) == {"deg", "m"}


def test_trc_and_force_mot_land_as_one_recording(raw, tmp_path):
    _run(raw, tmp_path / "st")
    st = Store(tmp_path / "st")
    trc = raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-2.trc"
    mot = raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-2_grf.mot"
    rid = _sha(trc, mot)[:16]
    rec = st.table("recordings", filters=[("recording_id", "==", rid)])
    assert len(rec) == 1 and rec["format"].item() == "trc"
    assert not st.table("recordings")["source_path"].str.endswith("_grf.mot").any()
    forces = st.table("forces", filters=[("recording_id", "==", rid)])
    ref = pd.read_csv(mot, sep="\t", skiprows=6, header=0)
    np.testing.assert_allclose(forces.loc[forces["plate"] == 2, "fz"], ref["1_ground_force_vy"])
    markers = st.table("markers", filters=[("recording_id", "==", rid), ("marker", "==", "R.ASIS")])
    # the pair is read in the forces' frame (Y up -> Z up): the pelvis is ~1 m above the floor
    assert 0.9 < markers["z"].mean() < 1.2
    assert rec["analog_rate_hz"].item() == 600.0 and rec["point_rate_hz"].item() == 60.0
    assert read_mot(mot).meta["up"] == "y"


def test_c3d_lands_with_every_ezc3d_point(raw, tmp_path):
    _run(raw, tmp_path / "st")
    path = raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-1.c3d"
    c = ezc3d.c3d(str(path))
    rid = _sha(path)[:16]
    m = Store(tmp_path / "st").table(
        "markers", filters=[("recording_id", "==", rid), ("marker", "==", "RTH1")]
    )
    ref = c["data"]["points"][:3, 0, :].T / 1000.0
    np.testing.assert_allclose(m[["x", "y", "z"]].to_numpy(), ref, rtol=1e-6, atol=1e-9)


def test_corrupt_file_is_quarantined_and_good_ones_land(raw, real_dir, tmp_path):
    bad = _add_truncated(raw, real_dir)
    out = CliRunner().invoke(
        app, ["ingest", str(raw), "--store", str(tmp_path / "st"), "--jobs", "2"]
    )
    assert out.exit_code == EXIT_REJECTED, out.output
    assert "ingested 5, unchanged 0, failed 1" in out.output
    stored = BAD.replace("sub-03", f"sub-{pseudonymise('03')}")
    assert f"{stored} [read]: " in out.output and "sub-03" not in out.output  # as stored
    st = Store(tmp_path / "st")
    rid = _sha(bad)[:16]
    assert len(st.table("recordings")) == 5
    for name in ("recordings", "markers", "analogs", "forces", "events"):
        assert rid not in st.keys(name)
    q = st.table("quarantine")
    assert len(q) == 1 and q["stage"].item() == "read"
    assert q["source_sha256"].item() == _sha(bad)
    assert q["source_path"].item().startswith(f"sub-{pseudonymise('03')}/")
    assert "sub-03" not in q["reason"].item() and q["reason"].item()


def test_failure_midway_deletes_parts_already_written(raw, tmp_path, monkeypatch):
    from cxlab.io.recording import Recording

    path = raw / "sub-02/ses-1/sub-02_ses-1_task-balance_left_run-1.c3d"
    real = Recording.take_arrow_tables

    def bad_events(self, rid):
        import pyarrow as pa

        for name, table in real(self, rid):
            if name == "events":
                table = pa.table(
                    {
                        "recording_id": [rid],
                        "label": ["x"],
                        "context": ["Sideways"],
                        "time_s": [0.0],
                    }
                )
            yield name, table

    monkeypatch.setattr(Recording, "take_arrow_tables", bad_events)
    sha = _sha(path)
    task = Task(
        store=str(tmp_path / "st"),
        root=str(raw),
        files=[str(path)],
        rel="x.c3d",
        shown="x.c3d",
        sha256=sha,
        subject_id=None,
        session=None,
        task=None,
        trial=None,
    )
    out = run_task(task)
    assert out.status == "failed" and out.stage == "validate" and "context" in out.reason
    assert _files(tmp_path / "st") == {}  # markers/analogs/forces were written, then removed


def test_incremental_skip_force_and_byte_identical_reingest(raw, tmp_path):
    st = tmp_path / "st"
    _run(raw, st, jobs=1)
    first = _files(st)
    again = _run(raw, st)
    assert len(again.unchanged) == 5 and not again.ingested and sum(again.rows.values()) == 0
    forced = _run(raw, st, force=True)
    assert len(forced.ingested) == 5
    assert _files(st) == first


def test_jobs_do_not_change_a_single_byte(raw, real_dir, tmp_path):
    _add_truncated(raw, real_dir)
    _run(raw, tmp_path / "a", jobs=1)
    _run(raw, tmp_path / "b", jobs=2)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a == b and len(a) > 10


def test_changed_file_replaces_its_old_recording_and_clears_quarantine(raw, real_dir, tmp_path):
    bad = _add_truncated(raw, real_dir)
    st = Store(tmp_path / "st")
    _run(raw, st.path)
    assert len(st.table("quarantine")) == 1
    shutil.copy(real_dir / "c3d/c3dorg_TYPE-4.C3D", bad)  # the file is fixed
    rep = _run(raw, st.path)
    assert len(rep.ingested) == 1 and not rep.failed
    assert st.table("quarantine").empty
    trc = raw / LAYOUT_KEY_POSTURE
    old = _sha(trc)[:16]
    trc.write_text(trc.read_text().replace("0.01,", "0.010,", 1))  # same data, new bytes
    rep = _run(raw, st.path)
    assert f"{LAYOUT_KEY_POSTURE}: content changed; replaced recording {old}" in rep.summary(
        show_paths=True
    )
    assert "sub-02" not in rep.summary()  # named as stored by default
    rec = st.table("recordings")
    assert old not in set(rec["recording_id"]) and _sha(trc)[:16] in set(rec["recording_id"])
    assert old not in st.keys("markers") and len(rec) == 6


def test_custom_pattern_and_bids_parsing():
    rx = pattern_regex("{subject}/{session}/{task}_{trial}.*")
    assert path_fields("data/S07/pre/balance_left_3.c3d", pattern=rx) == {
        "subject": "S07",
        "session": "pre",
        "task": "balance_left",
        "trial": "3",
    }
    assert path_fields("S07/pre/notes.c3d", pattern=rx) is None
    assert (
        masked_path("data/S07/pre/cmj_1.c3d", label="S07", subject_id="abc", pattern=rx)
        == "data/abc/pre/cmj_1.c3d"
    )
    assert path_fields("sub-CX001_ses-1_task-balance_right_run-2.c3d") == {
        "subject": "CX001",
        "session": "1",
        "task": "balance_right",
        "trial": "2",
    }
    assert path_fields("sub-7/ses-2/trial.c3d") == {
        "subject": "7",
        "session": "2",
        "task": None,
        "trial": None,
    }
    assert path_fields("walk.c3d") is None
    with pytest.raises(ConfigError, match=r"--pattern: has an unknown field \(got '\{subj\}'\)"):
        pattern_regex("{subj}/{task}.c3d")


def test_cli_pattern_and_missing_path(raw, tmp_path):
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "ingest",
            str(raw / "sub-02"),
            "--store",
            str(tmp_path / "st"),
            "--pattern",
            "{session}/*_task-{task}_run-{trial}.*",
        ],
    )
    assert out.exit_code == 0, out.output
    rec = Store(tmp_path / "st").table("recordings")
    assert sorted(rec["task"]) == ["balance_left", "posture"]
    assert rec["subject_id"].isna().all()  # the pattern has no {subject}
    assert "match no file-name pattern" not in out.output
    out = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--store", str(tmp_path / "s")])
    assert out.exit_code == 1 and "PATH: does not exist" in out.output


def _crashing_reader(task):
    """Stands in for a reader that kills its process (a segfault in a C extension)."""
    if "balance_left" in task.rel:
        os._exit(139)
    return run_task(task)


def _crashing_batch(tasks):
    """A batch holding the crashing file: the whole worker dies with it."""
    return [_crashing_reader(t) for t in tasks]


def test_a_reader_crash_is_isolated_and_quarantined(raw, tmp_path, monkeypatch):
    import cxlab.ingest

    monkeypatch.setattr(cxlab.ingest, "run_batch", _crashing_batch)
    monkeypatch.setattr(cxlab.ingest, "run_task", _crashing_reader)  # the retry, one by one
    rep = _run(raw, tmp_path / "st", jobs=2)
    assert [o.shown for o in rep.failed] == [
        "sub-02/ses-1/sub-02_ses-1_task-balance_left_run-1.c3d"
    ]
    assert "crashed its process" in rep.failed[0].reason
    assert len(rep.ingested) == 4
    st = Store(tmp_path / "st")
    assert len(st.table("recordings")) == 4 and len(st.table("quarantine")) == 1


def test_force_plate_csv_lands_and_survey_sheets_are_recorded_not_read(raw, tmp_path):
    grf = pd.read_csv(
        raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-2_grf.mot", sep="\t", skiprows=6, header=0
    )
    cmj = raw / "sub-04/ses-1/sub-04_ses-1_task-cmj_run-1.csv"
    cmj.parent.mkdir(parents=True)
    pd.DataFrame(
        {
            "time": grf["time"],
            "left_fz": grf["ground_force_vy"],
            "right_fz": grf["1_ground_force_vy"],
        }
    ).to_csv(cmj, index=False)
    pd.DataFrame({"participant": ["04"], "session": ["1"], "pain": [3]}).to_csv(
        raw / "surveys.csv", index=False
    )
    rep = _run(raw, tmp_path / "st")
    # the survey sheet is not read as a recording, and not dropped either: it is a failure
    # (exit 3) in the quarantine, with the command that ingests it
    assert [(o.shown, o.stage) for o in rep.failed] == [("surveys.csv", "discover")]
    assert "cxlab ingest-survey" in rep.failed[0].reason
    st = Store(tmp_path / "st")
    q = st.table("quarantine")
    assert q["stage"].tolist() == ["discover"] and q["source_sha256"].item() == _sha(
        raw / "surveys.csv"
    )
    rid = _sha(cmj)[:16]
    rec = st.table("recordings", filters=[("recording_id", "==", rid)])
    assert (rec["format"].item(), rec["task"].item(), rec["analog_rate_hz"].item()) == (
        "csv",
        "cmj",
        600.0,
    )
    f = st.table("forces", filters=[("recording_id", "==", rid)])
    # stored as float32 (cxlab.schemas.F32): exactly the reference rounded to float32
    ref = grf["ground_force_vy"].to_numpy(np.float32)
    np.testing.assert_array_equal(f.loc[f["plate"] == 1, "fz"], ref)


def test_cli_mapping_reads_a_custom_export(raw, tmp_path):
    grf = pd.read_csv(
        raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-2_grf.mot", sep="\t", skiprows=6, header=0
    )
    path = tmp_path / "in" / "sub-05_ses-1_task-cmj_run-1.csv"
    path.parent.mkdir()
    pd.DataFrame({"Fz1 (kN)": grf["ground_force_vy"] / 1000}).to_csv(path, index=False)
    (tmp_path / "map.toml").write_text(
        'rate_hz = 600\n[columns."Fz1 (kN)"]\nplate = 1\ncomponent = "fz"\nunit = "kN"\n'
    )
    out = CliRunner().invoke(
        app,
        [
            "ingest",
            str(path.parent),
            "--store",
            str(tmp_path / "st"),
            "--mapping",
            str(tmp_path / "map.toml"),
        ],
    )
    assert out.exit_code == 0, out.output
    f = Store(tmp_path / "st").table("forces")
    # kN x 1000 rounded to float32: within one float32 step (2**-23) of the reference
    np.testing.assert_allclose(f["fz"], grf["ground_force_vy"], rtol=2**-23)


def test_a_failing_force_mot_of_a_pair_leaves_no_raw_label_in_quarantine(raw, tmp_path):
    mot = raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-2_grf.mot"
    lines = mot.read_text().splitlines(keepends=True)
    lines[20] = lines[20].replace("\t", "\tgarbage", 1)
    mot.write_text("".join(lines))
    rep = _run(raw, tmp_path / "st")
    assert [o.shown for o in rep.failed] == ["sub-01/ses-1/sub-01_ses-1_task-gait_run-2.trc"]
    assert "_grf.mot" in rep.failed[0].reason  # the summary still names the bad file
    q = Store(tmp_path / "st").table("quarantine")
    assert len(q) == 1 and "_grf.mot" in q["reason"].iloc[0]
    assert not q.astype(str).stack().str.contains("sub-01").any()


def test_a_bad_file_changed_to_another_bad_version_is_quarantined_once(raw, real_dir, tmp_path):
    bad = _add_truncated(raw, real_dir)
    st = Store(tmp_path / "st")
    _run(raw, st.path)
    bad.write_bytes((real_dir / "c3d/opensim_walking2.c3d").read_bytes()[:7000])
    rep = _run(raw, st.path)
    assert len(rep.failed) == 1
    q = st.table("quarantine")
    assert len(q) == 1 and q["source_sha256"].iloc[0] == _sha(bad)


def test_a_write_failing_midway_removes_the_parts_already_written(raw, tmp_path, monkeypatch):
    path = raw / "sub-02/ses-1/sub-02_ses-1_task-balance_left_run-1.c3d"
    real_stage = Store.stage

    def fail_on_forces(self, name, df, /, **kw):
        if name == "forces":
            raise OSError("disk full")
        return real_stage(self, name, df, **kw)

    monkeypatch.setattr(Store, "stage", fail_on_forces)
    task = Task(
        store=str(tmp_path / "st"),
        root=str(raw),
        files=[str(path)],
        rel="x.c3d",
        shown="x.c3d",
        sha256=_sha(path),
        subject_id=None,
        session=None,
        task=None,
        trial=None,
    )
    out = run_task(task)
    assert out.status == "failed" and out.stage == "write" and "disk full" in out.reason
    assert _files(tmp_path / "st") == {}  # analogs were staged before forces, then removed
    assert not out.staged


def test_a_failed_forced_reingest_keeps_the_earlier_good_rows(raw, tmp_path, monkeypatch):
    st = tmp_path / "st"
    _run(raw, st, jobs=1)
    before = _files(st)
    from cxlab.io.recording import Recording

    def broken(self, rid):
        raise ValueError("reader regression")

    monkeypatch.setattr(Recording, "take_arrow_tables", broken)
    forced = _run(raw, st, force=True, jobs=1)
    assert len(forced.failed) == 5 and not forced.ingested
    after = _files(st)

    def kept(files):  # the quarantine grew, and so the catalog listing it
        return {k: v for k, v in files.items() if not k.startswith(("quarantine/", "_catalog"))}

    assert kept(after) == kept(before)
    assert len(Store(st).table("quarantine")) == 5


# -- issue 12: exports picked by content; nothing skipped silently ---------------------------
def _forcedecks_text(n=3000):
    t = np.arange(n) / 1000.0
    fz = 400.0 + 5.0 * np.sin(t)
    head = [
        "ForceDecks Raw Data Export,1,",
        "Weight (Kg),81.5,",
        "Frequency,1000,",
        "Recording Date,2019-12-03T16:51:09,",
        'Data Source,"FD4000 (LabJack);FDLITE",',
        "Analysis Date,2019-12-03T16:51:33,",
        "AthleteId,466bf686-2f86-4120-8f95-524aa3726e19,",
        "Tare,-0.8,-1.5",
        ",,",
        "Time,Left,Right",
    ]
    return "\r\n".join(head + [f"{a:.3f},{b:.1f},{b:.1f}" for a, b in zip(t, fz, strict=True)])


def test_vendor_exports_are_ingested_by_content_and_nothing_is_skipped_silently(real_dir, tmp_path):
    root = tmp_path / "lab"
    (root / "sub-07").mkdir(parents=True)
    (root / "sub-07" / "sub-07_ses-1_task-cmj_run-1.csv").write_bytes(_forcedecks_text().encode())
    shutil.copy(
        real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt",
        root / "sub-07" / "sub-07_ses-1_task-cmj_run-2.txt",
    )
    shutil.copy(
        real_dir / "forceplate/biomdp_kistler_COP.txt",
        root / "sub-07" / "sub-07_ses-1_task-balance_left_run-1.txt",
    )
    # a signal export no mapping fits: ingested so that it fails, with its reason
    pd.DataFrame({"t": np.arange(20) / 100, "Fz_1": np.full(20, 700.0)}).to_csv(
        root / "sub-07" / "sub-07_ses-1_task-cmj_run-3.csv", index=False
    )
    (root / "README.txt").write_text("Trials recorded by the lab on Tuesday.\n")
    pd.DataFrame({"participant": ["07"], "pain": [2]}).to_csv(root / "survey.csv", index=False)
    rep = _run(root, tmp_path / "st")
    st = Store(tmp_path / "st")
    rec = st.table("recordings")
    assert dict(zip(rec["task"] + "_" + rec["trial"], rec["format"], strict=True)) == {
        "cmj_1": "forcedecks",
        "cmj_2": "bioware",
        "balance_left_1": "bioware",
    }
    failed = {o.shown: o for o in rep.failed}
    assert sorted(failed) == ["README.txt", "sub-07/sub-07_ses-1_task-cmj_run-3.csv", "survey.csv"]
    assert "has no column" in failed["sub-07/sub-07_ses-1_task-cmj_run-3.csv"].reason
    assert failed["README.txt"].stage == failed["survey.csv"].stage == "discover"
    assert "is not a recording" in failed["survey.csv"].reason
    q = st.table("quarantine").sort_values("stage")
    assert q["stage"].tolist() == ["discover", "discover", "read"]
    f = st.table("forces")
    assert f["fz"].notna().any() and len(f) == 2 * 3000 + 8000 + 500


def test_a_folder_of_csvs_the_mapping_does_not_fit_is_quarantined_not_empty(tmp_path):
    root = tmp_path / "csvs"
    root.mkdir()
    for k in range(2):
        pd.DataFrame({"t": np.arange(30) / 100, "Fz_L": np.full(30, 350.0 + k)}).to_csv(
            root / f"sub-0{k}_task-cmj_run-1.csv", index=False
        )
    (tmp_path / "map.toml").write_text(
        'rate_hz = 100\n[columns.Fz1]\nplate = 1\ncomponent = "fz"\nunit = "N"\n'
    )
    out = CliRunner().invoke(
        app,
        [
            "ingest",
            str(root),
            "--store",
            str(tmp_path / "st"),
            "--mapping",
            str(tmp_path / "map.toml"),
        ],
    )
    assert out.exit_code == EXIT_REJECTED, out.output
    assert "no recording files" not in out.output
    assert "failed 2" in out.output and "has no column 'Fz1'" in out.output
    assert len(Store(tmp_path / "st").table("quarantine")) == 2


# --- privacy of paths, prefixes, events and vendor text ------------------------------------


def _store_text(store: Path) -> str:
    """Everything a store holds, as text: raw Parquet bytes and every table as CSV."""
    out = []
    for f in sorted(store.rglob("*")):
        if f.is_file():
            out.append(f.relative_to(store).as_posix())
            out.append(f.read_bytes().decode("latin-1"))
            if f.suffix == ".parquet":
                out.append(pd.read_parquet(f).to_csv())
    return "\n".join(out)


def _planted_c3d(real_dir: Path, dst: Path) -> Path:
    """The tennis serve (points prefixed ``Derrick:``) with a free-text event and software."""
    c = ezc3d.c3d(str(real_dir / "c3d/ktk_tennis_serve.c3d"))
    del c["parameters"]["EVENT"]
    c.add_event(time=[0, 0.5], context="Left", label="Foot Strike")
    c.add_event(time=[0, 1.0], context="General", label="John Smith arrives")
    c["parameters"]["MANUFACTURER"]["SOFTWARE"]["value"] = ["Motive 2.1 operator John Smith"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    c.write(str(dst))
    return dst


@pytest.mark.parametrize(
    ("rel", "pattern", "want"),
    [
        # a lab folder named after a person, no pattern matches: hash + extension only
        ("Smith_J/2024-03-01/CMJ_01.c3d", None, "{h}.c3d"),
        # the same with a pattern that names the subject folder
        (
            "Smith_J/2024-03-01/CMJ_01.c3d",
            "{subject}/{session}/{task}_{trial}.*",
            "{sid}/2024-03-01/CMJ_01.c3d",
        ),
        # extra folders around a BIDS path
        (
            "Smith_J/study/sub-01/ses-1/motion/sub-01_ses-1_task-cmj_run-1.c3d",
            None,
            "d{d1}/d{d2}/sub-{sid}/ses-1/motion/sub-{sid}_ses-1_task-cmj_run-1.c3d",
        ),
        # a custom pattern whose file name repeats the label, below an extra folder
        ("lab/JohnSmith/JohnSmith_cmj.c3d", "{subject}/*_{task}.c3d", "d{d1}/{sid}/{sid}_cmj.c3d"),
    ],
)
def test_stored_path_keeps_no_subject_label_or_unexplained_folder(
    real_dir, tmp_path, rel, pattern, want
):
    root = tmp_path / "raw"
    _planted_c3d(real_dir, root / rel)
    st = tmp_path / "st"
    rep = _run(root, st, pattern=pattern)
    assert len(rep.ingested) == 1, rep.summary()
    rec = Store(st).table("recordings")
    folders = rel.split("/")[:-1]
    label = {"Smith_J/2024-03-01/CMJ_01.c3d": "Smith_J"}.get(rel) if pattern else None
    label = label or ("JohnSmith" if "JohnSmith" in rel else "01" if "sub-01" in rel else None)
    sid = pseudonymise(label) if label and (pattern or "sub-" in rel) else None
    expect = want.format(
        h=pseudonymise("path:" + rel),
        sid=sid,
        d1=pseudonymise("dir:" + folders[0])[:8],
        d2=pseudonymise("dir:" + folders[1])[:8] if len(folders) > 1 else "",
    )
    assert rec["source_path"].item() == expect
    text = _store_text(st)
    for secret in ("Smith", "John", "Derrick", str(tmp_path)):
        assert secret not in text, secret


def test_subject_prefix_is_split_off_and_becomes_the_subject(real_dir, tmp_path):
    _planted_c3d(real_dir, tmp_path / "raw" / "serve.c3d")
    st = Store(tmp_path / "st")
    rep = _run(tmp_path / "raw", st.path)
    assert not rep.failed
    markers = set(st.table("markers", columns=["marker"])["marker"])
    assert {"LASI", "RASI", "C7"} <= markers and not any(":" in m for m in markers)
    rec = st.table("recordings")
    assert rec["subject_id"].item() == pseudonymise("Derrick")
    # events outside the standard vocabulary are masked; vendor text keeps names and versions
    ev = st.table("events")
    assert sorted(ev["label"]) == ["Event", "Foot Strike"]
    assert rec["vendor"].item() == "OptiTrack / Motive 2.1"
    assert "Derrick" not in _store_text(st.path)


def test_two_subjects_sharing_a_marker_name_keep_pseudonymised_prefixes():
    from cxlab.io.recording import Recording, strip_subject_prefixes

    rec = Recording(
        markers=np.zeros((1, 4, 3)),
        marker_labels=["Ann:LASI", "Bob:LASI", "Bob:C7", "box:corner"],
        residuals=np.zeros((1, 4)),
        point_rate_hz=100.0,
        analogs=np.zeros((0, 0)),
        analog_labels=[],
        analog_units=[],
        analog_rate_hz=0.0,
    )
    out, subjects = strip_subject_prefixes(rec, pseudonym=pseudonymise)
    assert subjects == ["Ann", "Bob", "box"]
    assert out.marker_labels == [
        f"{pseudonymise('Ann')}:LASI",
        f"{pseudonymise('Bob')}:LASI",
        "C7",
        "corner",
    ]
    assert rec.marker_labels[0] == "Ann:LASI"  # the input is not modified


def test_session_labels_naming_the_subject_are_masked(real_dir, tmp_path):
    rel = "John Smith/John Smith follow-up/cmj_1.c3d"
    _planted_c3d(real_dir, tmp_path / "raw" / rel)
    st = Store(tmp_path / "st")
    _run(tmp_path / "raw", st.path, pattern="{subject}/{session}/{task}_{trial}.c3d")
    rec = st.table("recordings")
    sid = pseudonymise("John Smith")
    assert rec["session"].item() == f"{sid} follow-up"
    assert rec["source_path"].item() == f"{sid}/{sid} follow-up/cmj_1.c3d"
    assert "Smith" not in _store_text(st.path)


def test_rerun_with_a_corrected_pattern_says_unchanged_files_need_force(real_dir, tmp_path):
    rel = "S07/pre/cmj_1.c3d"
    _planted_c3d(real_dir, tmp_path / "raw" / rel)
    st = Store(tmp_path / "st")
    _run(tmp_path / "raw", st.path)  # no pattern: no subject
    assert st.table("recordings")["session"].isna().all()
    rep = _run(tmp_path / "raw", st.path, pattern="{subject}/{session}/{task}_{trial}.c3d")
    assert len(rep.unchanged) == 1
    assert any("re-run with --force" in w and rel in w for w in rep.warnings)
    again = _run(
        tmp_path / "raw", st.path, pattern="{subject}/{session}/{task}_{trial}.c3d", force=True
    )
    assert len(again.ingested) == 1
    rec = st.table("recordings")
    assert len(rec) == 1 and rec["session"].item() == "pre"
    assert rec["subject_id"].item() == pseudonymise("S07")
    assert rec["source_path"].item() == f"{pseudonymise('S07')}/pre/cmj_1.c3d"
    quiet = _run(tmp_path / "raw", st.path, pattern="{subject}/{session}/{task}_{trial}.c3d")
    assert not any("--force" in w for w in quiet.warnings)


def test_quarantine_of_a_file_in_a_named_folder_holds_no_name_or_absolute_path(real_dir, tmp_path):
    bad = tmp_path / "raw" / "Smith_J" / "2024-03-01" / "CMJ_01.c3d"
    bad.parent.mkdir(parents=True)
    bad.write_bytes((real_dir / "c3d/opensim_walking2.c3d").read_bytes()[:5000])
    rel_root = os.path.relpath(tmp_path / "raw")
    stores = []
    for i, root in enumerate((tmp_path / "raw", Path(rel_root))):
        st = tmp_path / f"st{i}"
        rep = _run(root, st)
        assert len(rep.failed) == 1
        q = Store(st).table("quarantine")
        assert (
            q["source_path"].item() == pseudonymise("path:Smith_J/2024-03-01/CMJ_01.c3d") + ".c3d"
        )
        text = _store_text(st)
        assert "Smith" not in text and str(tmp_path) not in text and "CMJ_01" not in text
        stores.append(_files(st))
    assert stores[0] == stores[1]  # typed absolute or relative: the same bytes


def test_recordings_row_stores_reader_warnings_and_meta(real_dir, tmp_path, monkeypatch):
    from cxlab.io import c3d as c3d_module

    real = c3d_module.read_c3d

    def with_meta(path, /, **kw):
        rec = real(path, **kw)
        rec.meta.update(up_axis="y", body_mass_kg=71.5, recorded_at="2024-03-01T10:15:00")
        rec.warnings.append(f"plate 1: stance force points down in {Path(path).name}")
        return rec

    monkeypatch.setattr(c3d_module, "read_c3d", with_meta)
    import cxlab.io as io_module

    monkeypatch.setattr(io_module, "read_c3d", with_meta, raising=False)
    root = tmp_path / "raw"
    _planted_c3d(real_dir, root / "Smith_J" / "serve.c3d")
    rep = _run(root, tmp_path / "st", jobs=1)
    assert not rep.failed, rep.summary()
    row = Store(tmp_path / "st").table("recordings").iloc[0]
    stored = row["source_path"]
    assert list(row["warnings"]) == [f"plate 1: stance force points down in {stored}"]
    assert row["up_axis"] == "y" and row["body_mass_kg"] == 71.5
    assert row["recorded_at"] == "2024-03-01T10:15:00"
    assert "stance force points down" in rep.summary()  # shown in the ingest summary


@pytest.mark.parametrize(
    ("meta", "up", "mass", "note"),
    [
        ({"up_axis": "Y", "body_mass_kg": 80.0}, "y", 80.0, None),
        ({"up_axis": "-z"}, "z", None, None),
        ({"up_axis": "vertical"}, None, None, "up axis 'vertical' is not x, y or z"),
        ({"body_mass_kg": 0.0}, None, None, "stated body mass 0 kg is not a person's"),
        ({"body_mass_kg": 1e6}, None, None, "stated body mass 1e+06 kg is not a person's"),
    ],
)
def test_recordings_row_keeps_only_plausible_meta_and_says_why(meta, up, mass, note):
    from cxlab.ingest._worker import recording_row
    from cxlab.io.recording import Recording

    rec = Recording(
        markers=np.zeros((2, 1, 3)),
        marker_labels=["LASI"],
        residuals=np.zeros((2, 1)),
        point_rate_hz=100.0,
        analogs=np.zeros((0, 0)),
        analog_labels=[],
        analog_units=[],
        analog_rate_hz=0.0,
        meta=dict(meta),
    )
    task = Task(
        store="st",
        root="r",
        files=["r/x.c3d"],
        rel="x.c3d",
        shown="x.c3d",
        sha256="0" * 64,
        subject_id=None,
        session=None,
        task=None,
        trial=None,
    )
    (row,) = recording_row(rec, task, "c3d").to_pylist()
    assert row["up_axis"] == up
    assert row["body_mass_kg"] == mass  # None: missing
    assert row["warnings"] == ([note + "; not stored"] if note else [])
    from cxlab.schemas import validate

    validate(recording_row(rec, task, "c3d"), "recordings")


def _disk_full_after(monkeypatch, n_bytes: int, counter: Path) -> None:
    """Every store write past ``n_bytes`` in total (over all processes) fails with ENOSPC,
    like a real full disk: the counter lives in a file the forked workers share."""
    import errno
    import fcntl

    import cxlab.store as store_mod

    real = store_mod.atomic_file
    counter.write_text("0")

    class _Full:
        def __init__(self, fh):
            self._fh = fh

        def write(self, data):
            with open(counter, "r+") as c:
                fcntl.flock(c, fcntl.LOCK_EX)
                used = int(c.read() or 0) + len(data)
                c.seek(0)
                c.write(str(used))
                c.truncate()
            if used > n_bytes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self._fh.write(data)

        def __getattr__(self, name):
            return getattr(self._fh, name)

    from contextlib import contextmanager

    @contextmanager
    def full_atomic_file(path, **kw):
        with real(path, **kw) as fh:
            yield _Full(fh)

    monkeypatch.setattr(store_mod, "atomic_file", full_atomic_file)


@pytest.mark.parametrize("budget", [0, 60_000, 400_000])
def test_disk_full_ends_with_the_summary_and_lists_unwritten_files_exit_3(
    raw, tmp_path, monkeypatch, budget
):
    from cxlab.store import atomic_file as real_atomic_file

    _disk_full_after(monkeypatch, budget, tmp_path / "used")
    store = tmp_path / "st"
    out = CliRunner().invoke(app, ["ingest", str(raw), "--store", str(store), "--jobs", "2"])
    assert out.exit_code == EXIT_REJECTED, out.output
    assert "Traceback" not in out.output and "error:" not in out.output
    assert "ingested " in out.output and "failed (" in out.output  # the summary, to the end
    assert "No space left on device (errno 28)" in out.output
    n_failed = out.output.count("[write]")
    assert n_failed >= 1
    st = Store(store)
    landed = set(st.table("recordings")["recording_id"]) if st.files("recordings") else set()
    for name in ("markers", "analogs", "forces", "events"):  # no half-written recording
        assert st.keys(name) <= landed, name
    assert not [p for p in store.rglob(".tmp-*")] if store.exists() else True
    import cxlab.store as store_mod

    monkeypatch.setattr(store_mod, "atomic_file", real_atomic_file)  # space is back: the same
    # command finishes the job
    again = CliRunner().invoke(app, ["ingest", str(raw), "--store", str(store), "--jobs", "1"])
    assert again.exit_code == 0, again.output
    fresh = tmp_path / "fresh"
    assert CliRunner().invoke(app, ["ingest", str(raw), "--store", str(fresh)]).exit_code == 0
    assert _files(store) == _files(fresh)


@pytest.mark.parametrize("bad", ["1e308", "-1e308", "inf"])
def test_a_force_export_with_an_absurd_force_is_refused_naming_column_and_value(tmp_path, bad):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = [f"{i / 1000:.3f},{700 if i != 5 else bad},700" for i in range(20)]
    f = raw / "sub-01_ses-1_task-cmj_run-1.csv"
    f.write_text("time,left_fz,right_fz\n" + "\n".join(rows) + "\n")
    good = raw / "sub-02_ses-1_task-cmj_run-1.csv"
    good.write_text(
        "time,left_fz,right_fz\n" + "\n".join(f"{i / 1000:.3f},700,700" for i in range(20)) + "\n"
    )
    rep = _run(raw, tmp_path / "st", jobs=1)
    (fail,) = rep.failed
    assert fail.stage in ("read", "validate") and "fz" in fail.reason
    assert (
        "infinite" in fail.reason
        or "above 100000 N" in fail.reason
        or "below -100000 N" in fail.reason
        or "finite" in fail.reason
    ), fail.reason
    st = Store(tmp_path / "st")
    assert len(st.table("recordings")) == 1  # the good file landed
    assert st.table("forces")["fz"].abs().max() < 1e5
    assert st.table("quarantine")["reason"].str.contains("fz").all()


def test_an_export_header_athlete_id_is_the_pseudonymised_subject_and_never_stored(tmp_path):
    from cxlab.pseudo import pseudonymise

    root = tmp_path / "lab"
    root.mkdir()
    (root / "jump export.csv").write_bytes(_forcedecks_text().encode())  # matches no pattern
    _run(root, tmp_path / "st")
    rec = Store(tmp_path / "st").table("recordings")
    athlete = "466bf686-2f86-4120-8f95-524aa3726e19"
    assert rec["subject_id"].item() == pseudonymise(athlete)
    assert rec["body_mass_kg"].item() == pytest.approx(81.5)
    assert str(rec["recorded_at"].item()).startswith("2019-12-03")
    for f in (tmp_path / "st").rglob("*"):
        if f.is_file():
            assert athlete.encode() not in f.read_bytes(), f


def test_a_reader_finding_is_reported_once_per_file(real_dir, tmp_path):
    # the C3D reader both warns and keeps its findings on the recording; the summary and the
    # stored warnings must show each once, without the file name repeated inside the text
    root = tmp_path / "lab"
    (root / "sub-01").mkdir(parents=True)
    shutil.copy(real_dir / "c3d/c3dorg_gait-pig.c3d", root / "sub-01/sub-01_task-gait_run-1.c3d")
    rep = _run(root, tmp_path / "st")
    plate1 = [w for w in rep.warnings if "plate 1: moment channels" in w]
    assert len(plate1) == 1
    assert plate1[0].count("sub-01_task-gait_run-1.c3d") <= 1
    stored = Store(tmp_path / "st").table("recordings")["warnings"].item()
    assert sum("plate 1: moment channels" in w for w in stored) == 1


def test_every_outcome_status_is_one_of_the_declared_literal(raw, real_dir, tmp_path):
    import typing

    from cxlab.ingest import IngestStatus

    assert typing.get_args(IngestStatus) == ("ingested", "unchanged", "failed")
    bad = _add_truncated(raw, real_dir)
    st = tmp_path / "st"
    first, again = _run(raw, st, jobs=1), _run(raw, st, jobs=1)
    statuses = [(o.shown, o.status) for rep in (first, again) for o in rep.outcomes]
    assert {s for _, s in statuses} <= set(typing.get_args(IngestStatus))
    bad_name = bad.relative_to(raw).as_posix()
    assert [s for n, s in statuses if n == bad_name] == ["failed", "failed"]
    assert [len(first.ingested), len(again.unchanged), len(again.ingested)] == [5, 5, 0]


# -- each sample once: raw plate channels live only in `forces` ----------------------------

_PLATE_FILES = [
    "c3d/opensim_walking2.c3d",  # TYPE 2, Vicon, float
    "c3d/c3dorg_Eb015pi.c3d",  # TYPE 2, int16
    "c3d/c3dorg_TYPE-4.C3D",  # TYPE 4: CAL_MATRIX
    "c3d/btk_Res16bits.c3d",  # six TYPE-4 plates among 81 channels
    "c3d/c3dorg_FP1.C3D",  # TYPE 3 Kistler: 8 channels for 6 loads, kept in analogs
]


@pytest.mark.parametrize("name", _PLATE_FILES)
def test_raw_plate_channels_are_rebuilt_from_forces_as_ezc3d_reads_them(name, real_dir, tmp_path):
    import ezc3d

    from cxlab.io import read
    from cxlab.io.recording import REBUILD_RTOL, plate_channel_values

    src = real_dir / name
    if not src.exists():
        pytest.skip(f"{name} not in this copy of the real data")
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(src, raw / "sub-01_ses-1_task-walk_run-1.c3d")
    store = Store(tmp_path / "store")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = ingest([raw], store=store, jobs=1, progress=False)
    assert len(rep.ingested) == 1, rep.summary()
    c = ezc3d.c3d(str(src))
    values = c["data"]["analogs"][0]  # (n_channels, n_samples), calibrated by ezc3d
    ez_labels = [s.strip() for s in c["parameters"]["ANALOG"]["LABELS"]["value"]]
    ez_labels = ez_labels[: values.shape[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = read(src).analog_labels  # blank labels named, as ingest stores them
    fp = c["parameters"]["FORCE_PLATFORM"]
    chan = np.asarray(fp["CHANNEL"]["value"])
    n_used = int(np.asarray(fp["USED"]["value"]).ravel()[0])
    plate_idx = sorted({int(j) - 1 for j in chan.reshape(chan.shape[0], -1)[:, :n_used].ravel()})
    stored = store.table("analogs")
    rebuilt = plate_channel_values(store.table("forces"), store.table("plate_channels"))
    # every analog channel is in exactly one place: the analogs table or plate_channels
    n = values.shape[1]
    assert len(stored) + len(rebuilt) == values.size
    assert sorted([*stored["channel"], *rebuilt["channel"]]) == sorted(np.repeat(labels, n))
    types = {int(t) for t in np.asarray(fp["TYPE"]["value"]).ravel()[:n_used]}
    if types <= {2, 4}:  # affine in the six loads: every plate channel leaves analogs
        assert sorted(set(rebuilt["channel"])) == sorted({labels[j] for j in plate_idx})
    else:  # TYPE 3: 8 sensor channels cannot come back from 6 loads; none is dropped
        assert rebuilt.empty and len(stored) == values.size
    unique = {lab for lab in labels if labels.count(lab) == 1 and ez_labels.count(lab) == 1}
    checked = 0
    for table, rtol in ((rebuilt, 0.0), (stored, 1e-12)):
        for lab, g in table.groupby("channel"):
            if lab not in unique:
                continue
            ref = values[ez_labels.index(lab)]
            got = g.sort_values("sample")["value"].to_numpy()
            # ezc3d's calibrated values; a rebuilt channel (from float32 forces) within
            # REBUILD_RTOL = 5e-6 of its range: under 1/3 count of a 16-bit channel
            atol = (REBUILD_RTOL if rtol == 0 else 1e-12) * max(np.abs(ref).max(), 1e-12)
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, err_msg=lab)
            checked += 1
    assert checked >= len(unique) > 0


@pytest.mark.parametrize("name", ["opensim_walking2.c3d", "c3dorg_gait-pig.c3d"])
def test_plate_channels_fitted_on_a_subsample_are_those_every_sample_gives(
    name, real_dir, monkeypatch
):
    """The first fit of a plate's channels uses every k-th sample and is checked on every
    sample: it accepts the channels a fit over every sample accepts, each error measured
    over every sample; a subsample too small to span the loads (4 rows for 7 unknowns)
    misses and the fit over every sample decides, with the same channels."""
    from cxlab.io import read
    from cxlab.io import recording as rec_mod
    from cxlab.io.recording import REBUILD_RTOL, plate_channel_fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read(real_dir / "c3d" / name)
    n = rec.analogs.shape[0]
    calls: list[int] = []
    real_fit = rec_mod._checked_fit

    def spy(loads, y, *, steps, every=1):
        calls.append(every)
        return real_fit(loads, y, steps=steps, every=every)

    monkeypatch.setattr(rec_mod, "_checked_fit", spy)
    got = {}
    for rows in (10**9, 512, 4):
        monkeypatch.setattr(rec_mod, "_FIT_ROWS", rows)
        calls.clear()
        fits, in_forces = plate_channel_fits(rec)
        got[rows] = (fits, in_forces, list(calls))
    whole, sub, tiny = got[10**9], got[512], got[4]
    assert set(whole[2]) == {1} and max(sub[2]) == n // 512 > 1
    assert 1 in tiny[2] and max(tiny[2]) == n // 4  # missed, then every sample
    for fits, in_forces, _ in (sub, tiny):
        assert (in_forces == whole[1]).all() and in_forces.any()
        assert list(fits["channel"]) == list(whole[0]["channel"])
        idx = [rec.analog_labels.index(c) for c in fits["channel"]]
        bound = REBUILD_RTOL * np.abs(rec.analogs[:, idx]).max(axis=0)
        assert (fits["max_error"].to_numpy() <= bound).all()
    # the error is measured on every sample: the rebuild from the coefficients
    fits = sub[0]
    for i, plate in enumerate(rec.platforms, start=1):
        rows = fits[fits["plate"] == i]
        x = np.column_stack([plate.force, plate.moment]).astype(np.float32).astype(float)
        coef = rows[[*(f"c_{c}" for c in rec_mod.PLATE_LOADS), "offset"]].to_numpy().T
        rebuilt = x @ coef[:6] + coef[6]
        raw = rec.analogs[:, [rec.analog_labels.index(c) for c in rows["channel"]]]
        np.testing.assert_allclose(
            np.abs(rebuilt - raw).max(axis=0), rows["max_error"], rtol=1e-6, atol=1e-12
        )


def test_the_rebuild_is_the_same_ieee_sum_in_any_layout():
    """:func:`_affine` adds the six terms and the offset in one order, sample by sample, so
    the values the ingest check measured are those plate_channel_values rebuilds, bit for
    bit, whatever the arrays' layout."""
    from cxlab.io.recording import _affine, _affine_rows

    rng = np.random.default_rng(3)
    loads = rng.normal(size=(997, 6)) * [300, 300, 900, 40, 40, 10]
    coef = rng.normal(size=(7, 5))
    term_by_term = loads[:, 0:1] * coef[0]
    for k in range(1, 6):
        term_by_term = term_by_term + loads[:, k : k + 1] * coef[k]
    term_by_term = term_by_term + coef[6]
    assert np.array_equal(_affine(loads, coef), term_by_term)
    assert np.array_equal(_affine(np.asfortranarray(loads), coef), term_by_term)
    assert np.array_equal(_affine_rows(loads, coef).T, term_by_term)


def test_a_plate_channel_no_load_map_gives_back_stays_in_analogs(real_dir):
    """A channel whose samples the forces do not reproduce (one sample disturbed after the
    plates were computed) is kept in analogs; the plate's other channels still leave."""
    from cxlab.io import read
    from cxlab.io.recording import REBUILD_RTOL, plate_channel_fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read(real_dir / "c3d" / "opensim_walking2.c3d")
    bad = rec.platforms[0].channels[2]
    rec.analogs[100, bad] += 5.0
    fits, in_forces = plate_channel_fits(rec)
    assert not in_forces[bad]
    others = [j for p in rec.platforms for j in p.channels if j != bad]
    assert in_forces[others].all()
    assert rec.analog_labels[bad] not in set(fits["channel"])
    kept = rec.to_tables("0123456789abcdef")["analogs"]
    assert set(kept["channel"]) == {rec.analog_labels[bad]}
    idx = [rec.analog_labels.index(c) for c in fits["channel"]]
    bound = REBUILD_RTOL * np.abs(rec.analogs[:, idx]).max(axis=0)
    assert (fits["max_error"].to_numpy() <= bound).all()


def test_taking_the_tables_empties_the_recording_and_to_arrow_leaves_it_whole(real_dir):
    """The worker takes a recording's tables one at a time (Recording.take_arrow_tables):
    the same tables as to_arrow, in the order ingest checks them, each array gone from the
    recording once its table is out (so the worker never holds a table and its source);
    to_arrow leaves the recording's arrays as they were."""
    from cxlab.io import read
    from cxlab.io.recording import ARROW_TABLES

    path = next(  # a real file with markers, analog channels and plates
        f
        for f in sorted((real_dir / "c3d").rglob("*.c3d"))
        if (r := _quiet_read(read, f)) is not None
        and r.markers.shape[1]
        and r.analogs.shape[1]
        and r.platforms
    )
    rec = _quiet_read(read, path)
    markers, analogs, platforms = rec.markers, rec.analogs, rec.platforms
    whole = rec.to_arrow("0123456789abcdef")
    assert rec.markers is markers and rec.analogs is analogs and rec.platforms is platforms
    assert list(whole) == list(ARROW_TABLES)
    taken = rec.take_arrow_tables("0123456789abcdef")
    gone = {  # what the recording still holds once each table is out
        "markers": lambda: rec.markers.shape[0] == 0 and rec.residuals.shape[0] == 0,
        "analogs": lambda: rec.analogs.shape[0] == 0 and rec.analogs.shape[1] == analogs.shape[1],
        "forces": lambda: rec.platforms == [],
        "events": lambda: rec.events == [],
        "model_outputs": lambda: rec.model_outputs is None,
        "rotations": lambda: rec.rotations is None,
    }
    names = []
    for name, table in taken:
        names.append(name)
        assert table.equals(whole[name]), name
        assert gone.get(name, lambda: True)(), name
    assert names == list(ARROW_TABLES)
    assert markers.shape[0] > 0 and analogs.shape[0] > 0  # the arrays themselves untouched


def _quiet_read(read, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return read(path)
        except Exception:
            return None


def test_arrow_tables_store_the_same_rows_as_the_pandas_tables(real_dir):
    """Ingest builds its tables in Arrow straight from NumPy (Recording.to_arrow); after
    validation they equal, schema and metadata included, those of Recording.to_tables (the
    frames the reader tests check against ezc3d, OpenSim and the vendors' own numbers), on
    every real recording file (NaN stored as null, labels as strings)."""
    from cxlab.io import read
    from cxlab.schemas import validate

    compared = 0
    for f in sorted(real_dir.rglob("*")):
        if f.suffix.lower() not in (".c3d", ".trc", ".mot", ".sto"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rec = read(f)
            except Exception:
                continue
        frames, arrow = rec.to_tables("0123456789abcdef"), rec.to_arrow("0123456789abcdef")
        assert frames.keys() == arrow.keys()
        for name, df in frames.items():
            assert len(df) == arrow[name].num_rows, (f.name, name)
            if len(df):
                a, b = validate(df, name), validate(arrow[name], name)
                assert a.equals(b, check_metadata=True), (f.name, name)
                compared += 1
    assert compared >= 60


def test_a_run_reads_only_the_catalog_shards_of_its_own_files(raw, tmp_path, monkeypatch):
    """Issue 19: which files are new is decided by keyed lookups (the recordings and
    sessions shards of their ids, the path index's shard), never by the whole catalog."""
    from cxlab import _catalog

    st = tmp_path / "st"
    _run(raw, st, jobs=1)
    shards = sorted(p.name for p in (st / "_catalog").glob("shard-*"))
    read = []
    real = _catalog.read_shard
    monkeypatch.setattr(_catalog, "read_shard", lambda data: (read.append(1), real(data))[1])
    again = _run(raw, st, jobs=1)
    assert len(again.unchanged) == 5 and not again.ingested
    assert 0 < len(read) <= 3 < len(shards), (len(read), shards)


def test_stored_markers_are_the_readers_coordinates_rounded_to_float32(real_dir, tmp_path):
    """README "Samples stored at their source's precision": the markers part holds x, y, z as
    float32 (field type in the file) and they are the reader's float64 metres rounded to
    float32, every marker and frame, NaN where the reader has a gap."""
    import pyarrow.parquet as pq

    from cxlab.io import read

    src = real_dir / "c3d" / "opensim_walking2.c3d"
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(src, raw / "sub-01_ses-1_task-walk_run-1.c3d")
    st = Store(tmp_path / "st")
    assert len(_run(raw, st.path, jobs=1).ingested) == 1
    (part,) = st.files("markers")
    schema = pq.read_schema(part)
    assert [str(schema.field(c).type) for c in "xyz"] == ["float", "float", "float"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        rec = read(src)
    got = st.table("markers").sort_values(["marker", "frame"])
    assert len(got) == rec.markers.shape[0] * rec.markers.shape[1]
    order = np.argsort(rec.marker_labels, kind="stable")
    assert sorted(got["marker"].unique()) == [rec.marker_labels[i] for i in order]
    want = rec.markers[:, order].transpose(1, 0, 2).reshape(-1, 3).astype(np.float32)
    np.testing.assert_array_equal(got[["x", "y", "z"]].to_numpy(), want.astype(np.float64))
    assert np.isnan(want).any()  # the walk has gaps, and they stay gaps


def _standing_csv(path: Path, seed: int, *, fz: float = 700.0) -> None:
    """A 2 s two-plate force export at 1 kHz (quiet standing), its own noise per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(2000) / 1000.0
    body = np.column_stack([t, fz / 2 + rng.normal(0.0, 2.0, size=(t.size, 2))])
    np.savetxt(path, body, delimiter=",", fmt="%.4f", header="time,left_fz,right_fz", comments="")


def test_a_batch_shares_parts_and_a_bad_recording_in_it_fails_alone(tmp_path, monkeypatch):
    """A subject's files of one run share one forces part, validated together; one of them
    that fails the forces schema (here a bound of 1200 N a plate, below what the reader
    checks, so that the schema is what refuses it) is quarantined with the reason it gets
    ingested alone, its rows in no part, and the others land."""
    import dataclasses

    from cxlab import schemas
    from cxlab.ingest import _worker as worker

    forces = schemas.TABLES["forces"]
    tight = tuple(
        dataclasses.replace(c, le=1200.0) if c.name == "fz" else c for c in forces.columns
    )
    monkeypatch.setitem(schemas.TABLES, "forces", dataclasses.replace(forces, columns=tight))
    monkeypatch.setattr(worker, "MIN_BATCHES", 1)  # 4 files: one batch, not four
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        _standing_csv(raw / f"sub-01_ses-1_task-balance_run-{i + 1}.csv", seed=i)
    bad = raw / "sub-01_ses-1_task-balance_run-3.csv"
    _standing_csv(bad, seed=2, fz=3000.0)  # 1500 N a plate
    rep = _run(raw, tmp_path / "st", jobs=1)
    assert [o.shown for o in rep.failed] == [bad.name] and len(rep.ingested) == 3
    assert rep.failed[0].stage == "validate" and "fz" in rep.failed[0].reason
    st = Store(tmp_path / "st")
    assert len(st.files("forces")) == 1 and "~3-" in st.files("forces")[0].name
    bad_id = _sha(bad)[:16]
    assert bad_id not in st.keys("forces") and bad_id not in st.keys("recordings")
    assert bad_id not in set(st.table("forces", columns=["recording_id"])["recording_id"])
    assert bad_id in set(st.table("quarantine")["source_sha256"].str[:16])
    alone_raw = tmp_path / "alone"
    alone_raw.mkdir()
    shutil.copy(bad, alone_raw / bad.name)
    alone = _run(alone_raw, tmp_path / "st-alone", jobs=1)
    assert alone.failed[0].reason == rep.failed[0].reason


def _tasks(subjects: list[str | None], size: int = 1000) -> list[Task]:
    return [
        Task("", "", [], f"f{i}", f"f{i}", f"{i:064x}", sid, None, None, None, size=size)
        for i, sid in enumerate(subjects)
    ]


def test_batches_are_a_subjects_files_cut_so_every_worker_has_work():
    """One subject's run of 1,000 files: batches of 32; 43 files without a subject in the
    path: 15 of at most 3 (16 workers have work); 20 subjects of 27 files: one batch
    each but for the 32-file cap; a file of 40 MB alone; never two subjects in a batch;
    the same batches whatever the order the files came in."""
    from cxlab.ingest._worker import BATCH_BYTES, batches

    assert [len(b) for b in batches(_tasks(["a"] * 1000))] == [32] * 31 + [8]
    small = batches(_tasks([None] * 43))
    assert len(small) == 15 and max(map(len, small)) == 3
    many = _tasks([f"s{i % 20:02d}" for i in range(540)])
    cut = batches(many)
    assert len(cut) == 20 and all(len({many[i].subject_id for i in b}) == 1 for b in cut)
    big = _tasks(["a"] * 40)
    big[5].size = BATCH_BYTES + 1
    assert [5] in batches(big)
    shuffled = list(reversed(many))
    again = [sorted(shuffled[i].sha256 for i in b) for b in batches(shuffled)]
    assert sorted(again) == sorted(sorted(many[i].sha256 for i in b) for b in cut)


def _file_task(path: Path, store: Path) -> Task:
    """The ingest task of one real file, of subject ``abcdefabcdef``."""
    return Task(
        str(store),
        str(path.parent),
        [str(path)],
        path.name,
        path.name,
        _sha(path),
        "abcdefabcdef",
        None,
        None,
        None,
    )


def _alone_and_in_a_batch(src: Path, other: Path, tmp_path: Path):
    """``src`` ingested alone, then in a batch with ``other``: (alone, batched, other's)."""
    from cxlab.ingest._worker import run_batch

    (alone,) = run_batch([_file_task(src, tmp_path / "alone")])
    batched, good = run_batch(
        [_file_task(src, tmp_path / "batch"), _file_task(other, tmp_path / "batch")]
    )
    return alone, batched, good


@pytest.mark.parametrize(
    ("tighten", "first"),
    [
        ((("forces", "fz", 1.0), ("events", "time_s", 0.0)), "'forces'"),
        ((("recordings", "body_mass_kg", 40.0), ("forces", "fz", 1.0)), "'recordings'"),
        ((("plate_channels", "max_error", -1.0), ("events", "time_s", 0.0)), "'plate_channels'"),
    ],
)
def test_in_a_batch_a_file_failing_two_tables_gets_the_reason_it_gets_alone(
    tighten, first, real_dir, tmp_path, monkeypatch
):
    """Held back for the batch's one check, a file's tables and recordings row are
    validated after it is read: when two of them fail (a long and a later small table;
    the recordings row and forces; two small tables), the file is still reported at the
    first in the order a file ingested alone is checked (recordings row, then tables),
    with the same reason; the other file of the batch, failing nothing, lands."""
    import dataclasses

    from cxlab import schemas
    from cxlab.io import read

    def tightened(name, column, bound):
        t = schemas.TABLES[name]
        cols = tuple(dataclasses.replace(c, le=bound) if c.name == column else c for c in t.columns)
        monkeypatch.setitem(schemas.TABLES, name, dataclasses.replace(t, columns=cols))

    bad_src = real_dir / "c3d/btk_PiG_Motion-FlatFoot-Full.c3d"
    good_src = real_dir / "c3d/c3dorg_Dance1.c3d"  # markers only: no plates, events, mass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read(bad_src)
        assert len(rec.events) and rec.platforms
        for name, column, bound in tighten:
            tightened(name, column, bound)
        alone, batched, good = _alone_and_in_a_batch(bad_src, good_src, tmp_path)
    assert alone.status == batched.status == "failed" and batched.stage == "validate"
    assert first in alone.reason and batched.reason == alone.reason
    assert batched.staged == [] and batched.rows == {}
    assert good.status == "ingested", good.reason
    assert {s.table for s in good.staged} >= {"recordings", "markers"}


def test_a_batch_stores_the_rows_its_files_store_one_by_one(real_dir, tmp_path, monkeypatch):
    """Five real files of one subject (plates, events, plate channels, a markers-only one)
    ingested as one batch (one check a table) and one file a batch: every table holds the
    same rows, and the small tables' files (merged by key bucket) have the same bytes."""
    from cxlab.ingest import _worker as worker
    from cxlab.ingest._worker import ALL_TABLES
    from cxlab.store import COMPACT_TABLES

    names = [
        "btk_PiG_Motion-FlatFoot-Full.c3d",
        "c3dorg_gait-pig.c3d",
        "c3dorg_TYPE-4.C3D",
        "c3dorg_Dance1.c3d",
        "c3dorg_IST_GaitWithEMG.c3d",
    ]
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, name in enumerate(names):
        shutil.copy(real_dir / "c3d" / name, raw / f"sub-01_ses-1_task-walk_run-{i + 1}.c3d")
    stores = {}
    for mode in ("one batch", "one by one"):
        if mode == "one batch":
            monkeypatch.setattr(worker, "MIN_BATCHES", 1)
        else:
            monkeypatch.setattr(worker, "BATCH_FILES", 1)
        rep = _run(raw, tmp_path / mode, jobs=1)
        assert len(rep.ingested) == len(names), rep.summary()
        stores[mode] = Store(tmp_path / mode)
    batch, alone = stores["one batch"], stores["one by one"]
    assert any("~5-" in f.name for f in batch.files("markers"))  # it was one batch
    for name in ALL_TABLES:
        a, b = batch.table(name), alone.table(name)
        assert len(a) == len(b), name
        pd.testing.assert_frame_equal(a, b, obj=name)
    for name in COMPACT_TABLES:
        got = [f.read_bytes() for f in batch.files(name)]
        assert got == [f.read_bytes() for f in alone.files(name)], name


@pytest.mark.parametrize("later", ["warns", "raises"])
def test_a_batch_reports_a_bad_file_as_alone_when_a_later_table_warns_or_fails_to_build(
    later, real_dir, tmp_path, monkeypatch
):
    """Alone, a file whose forces fail the schema is stopped there: the tables after it are
    never built. In a batch its tables are all built before the one check; whether building
    a later table warns or raises, the file is reported as alone: the same stage, reason and
    warnings (none from the later table), no recorded date, nothing staged."""
    import dataclasses

    from cxlab import schemas
    from cxlab.ingest import _worker as worker
    from cxlab.io.recording import Recording

    t = schemas.TABLES["forces"]
    cols = tuple(dataclasses.replace(c, le=1.0) if c.name == "fz" else c for c in t.columns)
    monkeypatch.setitem(schemas.TABLES, "forces", dataclasses.replace(t, columns=cols))
    real_take = Recording.take_arrow_tables

    def take(self, rid):
        bad_file = "FlatFoot" in str(self.meta.get("source", ""))
        after = 0
        for name, table in real_take(self, rid):
            yield name, table
            after += bool(after) or name == "forces"
            if bad_file and after == 1:  # building the table after forces
                warnings.warn("a warning building the table after forces", stacklevel=1)
            if bad_file and after == 2 and later == "raises":  # and the one after it
                raise RuntimeError("building the second table after forces broke")

    monkeypatch.setattr(Recording, "take_arrow_tables", take)
    real_read = worker._read_unit

    def read_dated(files, options):
        rec = real_read(files, options)
        rec.meta["recorded_at"] = "2024-03-01"  # a date the file states
        return rec

    monkeypatch.setattr(worker, "_read_unit", read_dated)
    src = real_dir / "c3d/btk_PiG_Motion-FlatFoot-Full.c3d"
    other = real_dir / "c3d/c3dorg_Dance1.c3d"  # markers only: lands

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone, batched, good = _alone_and_in_a_batch(src, other, tmp_path)
    assert alone.status == batched.status == "failed" and good.status == "ingested"
    assert (
        (batched.stage, batched.reason)
        == (alone.stage, alone.reason)
        == (
            "validate",
            alone.reason,
        )
    )
    assert "'forces'" in alone.reason
    assert batched.warnings == alone.warnings
    assert not any("after forces" in w for w in batched.warnings)
    assert batched.recorded_at is alone.recorded_at is None
    assert good.recorded_at == "2024-03-01"  # the date read, kept where the file lands
    assert batched.staged == [] and batched.rows == {}


def test_by_recording_splits_sorted_and_unsorted_tables_keeping_row_order():
    """A validated table's rows by recording: runs sliced when the ids are sorted, else
    each id's rows picked in the table's order."""
    from cxlab.ingest._worker import _by_recording

    t = pa.table({"recording_id": ["a", "a", "b", "c", "c"], "x": [1, 2, 3, 4, 5]})
    assert [(k, p.column("x").to_pylist()) for k, p in _by_recording(t)] == [
        ("a", [1, 2]),
        ("b", [3]),
        ("c", [4, 5]),
    ]
    u = pa.table({"recording_id": ["b", "a", "b", "a"], "x": [1, 2, 3, 4]})
    assert [(k, p.column("x").to_pylist()) for k, p in _by_recording(u)] == [
        ("a", [2, 4]),
        ("b", [1, 3]),
    ]


def test_a_check_that_errors_on_one_file_of_a_batch_fails_that_file_alone(
    real_dir, tmp_path, monkeypatch
):
    """An error of the check itself (not a schema failure: Arrow refusing one file's
    forces) fails that file at validate with the reason it gets alone; the batch's other
    file lands."""
    from cxlab.ingest import _worker as worker

    src = real_dir / "c3d/btk_PiG_Motion-FlatFoot-Full.c3d"
    other = real_dir / "c3d/c3dorg_gait-pig.c3d"
    bad_id = _sha(src)[:16]
    real_validate = worker.validate

    def validate(table, name):
        ids = table.column("recording_id") if "recording_id" in table.column_names else []
        if name == "forces" and bad_id in set(pa.chunked_array(ids, pa.string()).to_pylist()):
            raise pa.ArrowInvalid("refused one file's forces")
        return real_validate(table, name)

    monkeypatch.setattr(worker, "validate", validate)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone, batched, good = _alone_and_in_a_batch(src, other, tmp_path)
    assert alone.status == batched.status == "failed" and good.status == "ingested"
    assert batched.stage == alone.stage == "validate"
    assert "refused one file's forces" in alone.reason and batched.reason == alone.reason
    assert {s.table for s in good.staged} >= {"forces", "recordings"}


def test_a_store_refuses_ingests_with_another_pseudonymisation_key(real_dir, tmp_path, monkeypatch):
    """Recordings ingested with one key, then a survey and more recordings with another
    (a second machine that made itself a key file): both refused with one message naming
    CXLAB_KEY, both checks and the fix, nothing written; with the first key they land."""
    from cxlab.ingest import ingest_surveys
    from cxlab.pseudo import key_check

    raw = tmp_path / "raw" / "sub-01" / "ses-1"
    raw.mkdir(parents=True)
    shutil.copy(
        real_dir / "c3d" / "biomdp_kistler_CMJ_1plate.c3d", raw / "sub-01_ses-1_task-cmj.c3d"
    )
    store = tmp_path / "st"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([tmp_path / "raw"], store=store, jobs=1, progress=False)
    first = key_check()
    assert Store(store).key_check() == first  # recorded by the store's first ingest
    before = Store(store).catalog()
    survey = tmp_path / "survey.csv"
    survey.write_text("subject,session,date,pain_nrs\n01,1,2025-01-01,3\n")
    more = tmp_path / "raw2" / "sub-02" / "ses-1"
    more.mkdir(parents=True)
    shutil.copy(real_dir / "c3d" / "ezc3d_FP_Type3.c3d", more / "sub-02_ses-1_task-cmj.c3d")
    monkeypatch.setenv("CXLAB_KEY", "the-key-of-another-laptop-0123456789abcdef")
    other = key_check()
    pattern = rf"^CXLAB_KEY: the store .* another pseudonymisation key \(key check {first}; "
    pattern += rf"this machine's key: {other}\).*set CXLAB_KEY to the key the store was made"
    with pytest.raises(ConfigError, match=pattern):
        ingest_surveys([survey], store=store)
    with pytest.raises(ConfigError, match=pattern):
        ingest([tmp_path / "raw2"], store=store, jobs=1, progress=False)
    pd.testing.assert_frame_equal(Store(store).catalog(), before)  # nothing written
    assert Store(store).key_check() == first
    monkeypatch.undo()  # the first key again (conftest's)
    ingest_surveys([survey], store=store)
    assert set(Store(store).table("scores")["subject_id"]) == {pseudonymise("01")}


def test_the_first_key_check_claimed_wins_and_is_never_replaced(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    st = Store(tmp_path / "st")
    assert st.key_check() is None
    checks = [f"{i:016x}" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda c: Store(tmp_path / "st").claim_key_check(c), checks))
    assert len(set(got)) == 1 and got[0] in checks  # every claimer agrees on one
    assert st.claim_key_check("f" * 16) == got[0] == st.key_check()
    assert [p.name for p in st.path.iterdir()] == ["_key_check"]  # no temporary left
    with pytest.raises(ValueError, match="not a key check"):
        st.claim_key_check("not hex")


def test_a_run_that_lands_nothing_records_no_key(real_dir, tmp_path):
    """Only a run whose ids land records its key: a first ingest of a corrupt file alone
    (quarantined) leaves the store without a key record, for the run that lands ids."""
    raw = tmp_path / "raw" / "sub-01" / "ses-1"
    raw.mkdir(parents=True)
    cut = (real_dir / "c3d" / "opensim_walking2.c3d").read_bytes()[:5000]
    (raw / "sub-01_ses-1_task-cmj.c3d").write_bytes(cut)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = ingest([tmp_path / "raw"], store=tmp_path / "st", jobs=1, progress=False)
    assert len(rep.failed) == 1 and not rep.ingested
    assert Store(tmp_path / "st").key_check() is None


def test_sessions_rows_of_stored_files_record_the_key_and_a_rejected_sheet_does_not(
    real_dir, tmp_path
):
    """Rows with ids land also when a re-run writes only the sessions rows of files
    stored earlier (a store of an older cxlab): the key is recorded then. A sheet whose
    every row is rejected lands quarantine rows only, and records no key."""
    from cxlab import store as store_mod
    from cxlab.ingest import ingest_surveys

    raw = tmp_path / "raw" / "sub-01" / "ses-1"
    raw.mkdir(parents=True)
    shutil.copy(
        real_dir / "c3d" / "biomdp_kistler_CMJ_1plate.c3d", raw / "sub-01_ses-1_task-cmj.c3d"
    )
    st = Store(tmp_path / "st")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([tmp_path / "raw"], store=st, jobs=1, progress=False)
        rid = next(iter(st.keys("recordings")))
        st.delete("sessions", key=rid)  # as a store of an older cxlab: no sessions part
        (st.path / store_mod._KEY_CHECK).unlink()  # nor a key record
        rep = ingest([tmp_path / "raw"], store=st, jobs=1, progress=False)
    assert not rep.ingested and rid in st.keys("sessions")
    assert st.key_check() is not None
    bad = tmp_path / "bad.csv"
    bad.write_text("subject,session,date,pain_nrs\n01,1,2025-01-01,11\n")  # NRS above 10
    fresh = tmp_path / "fresh"
    res = ingest_surveys([bad], store=fresh)
    assert len(res.rejected) == 1 and Store(fresh).key_check() is None


def test_a_key_record_is_written_where_the_file_system_has_no_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    st = Store(tmp_path / "st")
    assert st.claim_key_check("0123456789abcdef") == "0123456789abcdef" == st.key_check()
    assert st.claim_key_check("fedcba9876543210") == "0123456789abcdef"  # never replaced
    assert sorted(p.name for p in st.path.iterdir()) == ["_key_check"]
