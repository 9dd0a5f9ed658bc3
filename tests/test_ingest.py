"""Ingest on the real files laid out BIDS-like in a tmp folder: landing, pairing, quarantine,
incremental runs, determinism across --jobs, and the CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
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
    "sub-01/ses-1/sub-01_ses-1_task-gait_run-2.trc":
        "opensim/subject01_walk_marker_trajectories.trc",
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
    return {p.relative_to(store).as_posix(): p.read_bytes()
            for p in sorted(store.rglob("*.parquet"))}


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
    stored = pd.concat([Store(tmp_path / "st").table(t).astype(str).stack()
                        for t in ("recordings", "events")])
    assert not stored.str.contains("sub-01|sub-02").any()
    assert not any("sub-01" in p for p in _files(tmp_path / "st"))


def test_unmatched_path_lands_with_empty_fields_and_one_warning(raw, tmp_path):
    rep = _run(raw, tmp_path / "st")
    rec = Store(tmp_path / "st").table("recordings")
    row = rec[rec["source_path"] == "misc/notes_ik.mot"].iloc[0]
    assert row[["subject_id", "session", "task", "trial"]].isna().all()
    lines = [w for w in rep.warnings if w.startswith("misc/notes_ik.mot: path matches no")]
    assert len(lines) == 1
    analogs = Store(tmp_path / "st").table("analogs", filters=[
        ("recording_id", "==", row["recording_id"])])
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
    markers = st.table("markers", filters=[("recording_id", "==", rid), ("marker", "==",
                                                                        "R.ASIS")])
    # the pair is read in the forces' frame (Y up -> Z up): the pelvis is ~1 m above the floor
    assert 0.9 < markers["z"].mean() < 1.2
    assert rec["analog_rate_hz"].item() == 600.0 and rec["point_rate_hz"].item() == 60.0
    assert read_mot(mot).meta["up"] == "y"


def test_c3d_lands_with_every_ezc3d_point(raw, tmp_path):
    ezc3d = pytest.importorskip("ezc3d")
    _run(raw, tmp_path / "st")
    path = raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-1.c3d"
    c = ezc3d.c3d(str(path))
    rid = _sha(path)[:16]
    m = Store(tmp_path / "st").table("markers", filters=[("recording_id", "==", rid),
                                                          ("marker", "==", "RTH1")])
    ref = c["data"]["points"][:3, 0, :].T / 1000.0
    np.testing.assert_allclose(m[["x", "y", "z"]].to_numpy(), ref, rtol=1e-6, atol=1e-9)


def test_corrupt_file_is_quarantined_and_good_ones_land(raw, real_dir, tmp_path):
    bad = _add_truncated(raw, real_dir)
    out = CliRunner().invoke(app, ["ingest", str(raw), "--store", str(tmp_path / "st"),
                                   "--jobs", "2"])
    assert out.exit_code == EXIT_REJECTED, out.output
    assert "ingested 5, unchanged 0, failed 1" in out.output
    assert f"{BAD} [read]: " in out.output
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
    real = Recording.to_tables

    def bad_events(self, rid):
        tables = real(self, rid)
        tables["events"] = pd.DataFrame({"recording_id": [rid], "label": ["x"],
                                         "context": ["Sideways"], "time_s": [0.0]})
        return tables

    monkeypatch.setattr(Recording, "to_tables", bad_events)
    sha = _sha(path)
    task = Task(store=str(tmp_path / "st"), root=str(raw), files=[str(path)], rel="x.c3d",
                shown="x.c3d", sha256=sha, subject_id=None, session=None, task=None, trial=None)
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
    assert f"{LAYOUT_KEY_POSTURE}: content changed; replaced recording {old}" in rep.summary()
    rec = st.table("recordings")
    assert old not in set(rec["recording_id"]) and _sha(trc)[:16] in set(rec["recording_id"])
    assert old not in st.keys("markers") and len(rec) == 6


def test_custom_pattern_and_bids_parsing():
    rx = pattern_regex("{subject}/{session}/{task}_{trial}.*")
    assert path_fields("data/S07/pre/balance_left_3.c3d", pattern=rx) == {
        "subject": "S07", "session": "pre", "task": "balance_left", "trial": "3"}
    assert path_fields("S07/pre/notes.c3d", pattern=rx) is None
    assert masked_path("data/S07/pre/cmj_1.c3d", label="S07", subject_id="abc",
                       pattern=rx) == "data/abc/pre/cmj_1.c3d"
    assert path_fields("sub-CX001_ses-1_task-balance_right_run-2.c3d") == {
        "subject": "CX001", "session": "1", "task": "balance_right", "trial": "2"}
    assert path_fields("sub-7/ses-2/trial.c3d") == {
        "subject": "7", "session": "2", "task": None, "trial": None}
    assert path_fields("walk.c3d") is None
    with pytest.raises(ConfigError, match=r"--pattern: has an unknown field \(got '\{subj\}'\)"):
        pattern_regex("{subj}/{task}.c3d")


def test_cli_pattern_and_missing_path(raw, tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["ingest", str(raw / "sub-02"), "--store", str(tmp_path / "st"),
                              "--pattern", "{session}/*_task-{task}_run-{trial}.*"])
    assert out.exit_code == 0, out.output
    rec = Store(tmp_path / "st").table("recordings")
    assert sorted(rec["task"]) == ["balance_left", "posture"]
    assert rec["subject_id"].isna().all()  # the pattern has no {subject}
    assert "matches no file-name pattern" not in out.output
    out = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--store", str(tmp_path / "s")])
    assert out.exit_code == 1 and "PATH: does not exist" in out.output


def _crashing_reader(task):
    """Stands in for a reader that kills its process (a segfault in a C extension)."""
    if "balance_left" in task.rel:
        os._exit(139)
    return run_task(task)


def test_a_reader_crash_is_isolated_and_quarantined(raw, tmp_path, monkeypatch):
    import cxlab.ingest

    monkeypatch.setattr(cxlab.ingest, "run_task", _crashing_reader)
    rep = _run(raw, tmp_path / "st", jobs=2)
    assert [o.shown for o in rep.failed] == [
        "sub-02/ses-1/sub-02_ses-1_task-balance_left_run-1.c3d"]
    assert "crashed its process" in rep.failed[0].reason
    assert len(rep.ingested) == 4
    st = Store(tmp_path / "st")
    assert len(st.table("recordings")) == 4 and len(st.table("quarantine")) == 1


def test_force_plate_csv_lands_and_survey_sheets_are_skipped(raw, tmp_path):
    grf = pd.read_csv(raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-2_grf.mot", sep="\t",
                      skiprows=6, header=0)
    cmj = raw / "sub-04/ses-1/sub-04_ses-1_task-cmj_run-1.csv"
    cmj.parent.mkdir(parents=True)
    pd.DataFrame({"time": grf["time"], "left_fz": grf["ground_force_vy"],
                  "right_fz": grf["1_ground_force_vy"]}).to_csv(cmj, index=False)
    pd.DataFrame({"participant": ["04"], "session": ["1"], "pain": [3]}).to_csv(
        raw / "surveys.csv", index=False)
    rep = _run(raw, tmp_path / "st")
    assert not rep.failed
    assert any(w.startswith("skipped 1 CSV file(s) that are not force-plate exports")
               and w.endswith(": surveys.csv") for w in rep.warnings)
    st = Store(tmp_path / "st")
    rid = _sha(cmj)[:16]
    rec = st.table("recordings", filters=[("recording_id", "==", rid)])
    assert (rec["format"].item(), rec["task"].item(), rec["analog_rate_hz"].item()) == (
        "csv", "cmj", 600.0)
    f = st.table("forces", filters=[("recording_id", "==", rid)])
    np.testing.assert_array_equal(f.loc[f["plate"] == 1, "fz"], grf["ground_force_vy"])


def test_cli_mapping_reads_a_custom_export(raw, tmp_path):
    grf = pd.read_csv(raw / "sub-01/ses-1/sub-01_ses-1_task-gait_run-2_grf.mot", sep="\t",
                      skiprows=6, header=0)
    path = tmp_path / "in" / "sub-05_ses-1_task-cmj_run-1.csv"
    path.parent.mkdir()
    pd.DataFrame({"Fz1 (kN)": grf["ground_force_vy"] / 1000}).to_csv(path, index=False)
    (tmp_path / "map.toml").write_text(
        'rate_hz = 600\n[columns."Fz1 (kN)"]\nplate = 1\ncomponent = "fz"\nunit = "kN"\n')
    out = CliRunner().invoke(app, ["ingest", str(path.parent), "--store", str(tmp_path / "st"),
                                   "--mapping", str(tmp_path / "map.toml")])
    assert out.exit_code == 0, out.output
    f = Store(tmp_path / "st").table("forces")
    np.testing.assert_allclose(f["fz"], grf["ground_force_vy"], rtol=1e-12)


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
    real_write = Store.write

    def fail_on_forces(self, name, df, /, **kw):
        if name == "forces":
            raise OSError("disk full")
        return real_write(self, name, df, **kw)

    monkeypatch.setattr(Store, "write", fail_on_forces)
    task = Task(store=str(tmp_path / "st"), root=str(raw), files=[str(path)], rel="x.c3d",
                shown="x.c3d", sha256=_sha(path), subject_id=None, session=None, task=None,
                trial=None)
    out = run_task(task)
    assert out.status == "failed" and out.stage == "write" and "disk full" in out.reason
    assert _files(tmp_path / "st") == {}  # analogs were written before forces, then removed


def test_a_failed_forced_reingest_keeps_the_earlier_good_rows(raw, tmp_path, monkeypatch):
    st = tmp_path / "st"
    _run(raw, st, jobs=1)
    before = _files(st)
    from cxlab.io.recording import Recording

    def broken(self, rid):
        raise ValueError("reader regression")

    monkeypatch.setattr(Recording, "to_tables", broken)
    forced = _run(raw, st, force=True, jobs=1)
    assert len(forced.failed) == 5 and not forced.ingested
    after = _files(st)
    assert {k: v for k, v in after.items() if not k.startswith("quarantine/")} == before
    assert len(Store(st).table("quarantine")) == 5


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
    def full_atomic_file(path):
        with real(path) as fh:
            yield _Full(fh)

    monkeypatch.setattr(store_mod, "atomic_file", full_atomic_file)


@pytest.mark.parametrize("budget", [0, 60_000, 400_000])
def test_disk_full_ends_with_the_summary_and_lists_unwritten_files_exit_3(
        raw, tmp_path, monkeypatch, budget):
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
    good.write_text("time,left_fz,right_fz\n" + "\n".join(
        f"{i / 1000:.3f},700,700" for i in range(20)) + "\n")
    rep = _run(raw, tmp_path / "st", jobs=1)
    (fail,) = rep.failed
    assert fail.stage in ("read", "validate") and "fz" in fail.reason
    assert ("infinite" in fail.reason or "above 100000 N" in fail.reason
            or "below -100000 N" in fail.reason or "finite" in fail.reason), fail.reason
    st = Store(tmp_path / "st")
    assert len(st.table("recordings")) == 1  # the good file landed
    assert st.table("forces")["fz"].abs().max() < 1e5
    assert st.table("quarantine")["reason"].str.contains("fz").all()
