import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cxlab.cli import app
from cxlab.features.config import PlatesConfig, TaskConfig
from cxlab.features.jump import cmj_metrics
from cxlab.features.runner import extract_features, read_config
from cxlab.schemas import schema_of
from cxlab.store import Store
from featuresim import cmj_force, cop_normal

SUBJ = "abcdefabcdef"
FORCE_COLS = ["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"]


def _rid(name):
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def _rec(name, task, *, analog=1000.0, point=np.nan, n_frames=0):
    return {
        "recording_id": _rid(name),
        "subject_id": SUBJ,
        "session": "1",
        "task": task,
        "trial": "1",
        "source_path": f"{name}.c3d",
        "source_sha256": hashlib.sha256(name.encode()).hexdigest(),
        "format": "c3d",
        "vendor": None,
        "point_rate_hz": point,
        "analog_rate_hz": analog,
        "n_frames": n_frames,
        "first_frame": 1,
        "warnings": [],
        "up_axis": None,
        "body_mass_kg": np.nan,
        "recorded_at": None,
    }


def _forces(rid, plates, rate=1000.0):
    frames = []
    for k, d in enumerate(plates, start=1):
        n = d["fz"].size
        df = pd.DataFrame({c: d.get(c, np.zeros(n)) for c in FORCE_COLS})
        df.insert(0, "time_s", np.arange(n) / rate)
        df.insert(0, "sample", np.arange(n, dtype=np.int64))
        df.insert(0, "plate", np.int32(k))
        df.insert(0, "recording_id", rid)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _markers(rid, markers, rate):
    frames = []
    for name, xyz in markers.items():
        n = xyz.shape[0]
        frames.append(
            pd.DataFrame(
                {
                    "recording_id": rid,
                    "frame": np.arange(n, dtype=np.int32),
                    "time_s": np.arange(n) / rate,
                    "marker": name,
                    "x": xyz[:, 0],
                    "y": xyz[:, 1],
                    "z": xyz[:, 2],
                    "residual": np.zeros(n),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _posture_markers(n=100):
    base = {
        "C7": [0.0, 0.0, 1.5],
        "LTRAGUS": [0.08, 0.07, 1.58],
        "RTRAGUS": [0.08, -0.07, 1.58],
        "LSHO": [0.05, 0.18, 1.45],
        "RSHO": [0.02, -0.18, 1.45],
        "LASI": [0.1, 0.12, 1.0],
        "RASI": [0.1, -0.12, 1.0],
        "LPSI": [-0.08, 0.05, 1.03],
        "RPSI": [-0.08, -0.05, 1.03],
    }
    return {k: np.tile(v, (n, 1)).astype(float) for k, v in base.items()}


@pytest.fixture
def store(tmp_path):
    st = Store(tmp_path / "store")
    fz, _ = cmj_force(noise_n=1.0)
    recs = []

    def add(name, task, plates=None, markers=None, **kw):
        rec = _rec(name, task, **kw)
        recs.append(rec)
        if plates:
            st.write(
                "forces",
                _forces(rec["recording_id"], plates),
                key=rec["recording_id"],
                partition=SUBJ,
            )
        if markers:
            st.write(
                "markers",
                _markers(rec["recording_id"], markers, rec["point_rate_hz"]),
                key=rec["recording_id"],
                partition=SUBJ,
            )

    add("cmj", "cmj", [{"fz": 0.45 * fz}, {"fz": 0.55 * fz}])
    add("cmj_no_flight", "cmj", [{"fz": np.full(3000, 350.0)}, {"fz": np.full(3000, 350.0)}])
    cop = cop_normal(n=10_000, seed=4)
    add(
        "bal",
        "balance_left",
        [{"fz": np.full(10_000, 700.0), "cop_x": cop[:, 0], "cop_y": cop[:, 1]}],
    )
    add("post", "posture", markers=_posture_markers(), analog=np.nan, point=200.0, n_frames=100)
    add("walk_other", "walk_fast")
    st.write("recordings", pd.DataFrame(recs), key="all")
    st.write(
        "strength",
        pd.DataFrame(
            {
                "subject_id": [SUBJ] * 2,
                "session": ["1", "1"],
                "muscle_group": ["knee_flexors"] * 2,
                "side": ["left", "right"],
                "peak_torque_nm": [100.0, 80.0],
            }
        ),
    )
    return st


def _as_stored(df: pd.DataFrame | None, table: str) -> pd.DataFrame | None:
    """``df`` with the columns ``table`` stores as float32 rounded to float32 (what the
    feature runner reads back from the store)."""
    if df is None:
        return None
    f32 = [c.name for c in schema_of(table).columns if c.type == pa.float32() and c.name in df]
    return df.astype({c: np.float32 for c in f32}).astype({c: np.float64 for c in f32})


def test_features_land_with_conventions_names_and_match_the_library(store):
    rep = extract_features(store, jobs=1, progress=False)
    assert (rep.n_recordings, rep.n_processed, rep.n_no_functions) == (5, 4, 1)
    f = store.table("features")
    cmj = f[f["recording_id"] == _rid("cmj")].set_index(["feature", "side"])
    fz, _ = cmj_force(noise_n=1.0)
    # each plate as the store keeps forces (float32), summed as the runner sums them
    left, right = ((k * fz).astype(np.float32).astype(float) for k in (0.45, 0.55))
    direct = cmj_metrics(left + right, rate_hz=1000.0, fz_left=left, fz_right=right)
    assert cmj.loc[("cmj_jump_height_impulse_m", "bilateral"), "value"] == pytest.approx(
        direct["jump_height_impulse_m"], rel=1e-12
    )
    assert cmj.loc[("cmj_braking_impulse_n_s", "left"), "unit"] == "N.s"
    assert cmj.loc[("cmj_eccentric_braking_rfd_n_s", "bilateral"), "unit"] == "N/s"
    assert cmj.loc[("cmj_peak_landing_force_asym_pct", "bilateral"), "value"] == pytest.approx(20.0)
    assert len(cmj) == 15 + 3 * 2 + 6
    bal = f[f["task"] == "balance_left"]
    assert set(bal["side"]) == {"left"} and len(bal) == 8
    post = f[f["task"] == "posture"].set_index(["feature", "side"])["value"]
    assert post[("posture_cva_deg", "bilateral")] == pytest.approx(45.0)
    assert post[("posture_shoulder_protraction_m", "right")] == pytest.approx(0.02)
    st = f[f["recording_id"].isna()].set_index(["feature", "side"])["value"]
    assert st[("strength_knee_flexors_lsi_pct", "bilateral")] == pytest.approx(80.0)
    assert f["value"].notna().all()


def test_unusable_recording_is_quarantined_with_a_reason_not_a_nan_row(store):
    rep = extract_features(store, jobs=1, progress=False)
    assert rep.n_quarantined == 2
    q = store.table("quarantine").set_index("source_path")
    row = q.loc["cmj_no_flight.c3d"]
    assert row["stage"] == "features"
    assert "no take-off" in row["reason"] and _rid("cmj_no_flight") in row["reason"]
    assert row["field"] == "cmj:cmj"
    assert _rid("cmj_no_flight") not in set(store.table("features")["recording_id"].dropna())
    # a task no configuration names is listed too, with the tasks it could have been
    unknown = q.loc["walk_other.c3d"]
    assert unknown["field"] == "task" and "task 'walk_fast'" in unknown["reason"]
    assert "known tasks: balance_left" in unknown["reason"]


def test_a_task_declared_without_functions_is_not_quarantined(store, tmp_path):
    cfg = tmp_path / "walk.toml"
    cfg.write_text("[tasks.walk_fast]\nfunctions = []\n")
    extract_features(store, jobs=1, progress=False)
    assert "features-" + _rid("walk_other") in store.keys("quarantine")
    rep = extract_features(store, config=cfg, jobs=1, progress=False)
    assert rep.n_no_functions == 1
    assert "features-" + _rid("walk_other") not in store.keys("quarantine")


def test_incremental_parallel_and_deterministic(store, tmp_path):
    extract_features(store, jobs=1, progress=False)
    first = {p.name: p.read_bytes() for p in store.files("features")}
    again = extract_features(store, jobs=1, progress=False)
    assert again.n_up_to_date == 3 and again.n_processed == 1  # only the failing one retried
    assert {p.name: p.read_bytes() for p in store.files("features")} == first
    forced = extract_features(store, jobs=2, force=True, progress=False)
    assert forced.n_processed == 4
    assert {p.name: p.read_bytes() for p in store.files("features")} == first


def test_only_this_runs_work_and_unknown_tasks_become_row_dicts(store, tmp_path, monkeypatch):
    """The run decides from three columns which recordings to compute: only those (and a
    recording of an unknown task, for its quarantine row) are turned into full rows, so a
    store of many recordings that are not this run's work costs a column scan each, not a
    row dict. The decision itself is unchanged: up to date, no functions, retried."""
    from cxlab.features import runner

    asked = []
    real = runner._records

    def spy(rows, positions):
        asked.append(len(positions))
        return real(rows, positions)

    monkeypatch.setattr(runner, "_records", spy)
    first = extract_features(store, jobs=1, progress=False)
    assert first.n_processed == 4 and first.n_no_functions == 1
    assert sum(asked) == 4 + 1  # the four computed, the unknown task's quarantine row
    asked.clear()
    again = extract_features(store, jobs=1, progress=False)
    assert again.n_up_to_date == 3 and again.n_processed == 1 and again.n_no_functions == 1
    assert sum(asked) == 1 + 1  # the failing one retried; the unknown task again
    cfg = tmp_path / "walk.toml"
    cfg.write_text("[tasks.walk_fast]\nfunctions = []\n")
    asked.clear()
    declared = extract_features(store, config=cfg, jobs=1, progress=False)
    assert declared.n_no_functions == 1 and sum(asked) == 1  # only the retried one


def test_config_swaps_plates_and_flips_the_sign_of_asymmetry(store, tmp_path):
    cfg = tmp_path / "f.toml"
    cfg.write_text("[plates]\nleft = 2\nright = 1\n")
    extract_features(store, config=cfg, jobs=1, progress=False)
    f = store.table("features", filters=[("feature", "==", "cmj_braking_impulse_asym_pct")])
    assert f["value"].iloc[0] == pytest.approx(-20.0)


def test_bad_config_names_the_task_and_the_function(tmp_path):
    from cxlab._check import ConfigError

    with pytest.raises(ConfigError, match=r"tasks.cmj.*'jumpp'"):
        read_config({"tasks": {"cmj": {"functions": ["jumpp"]}}})


def test_unknown_config_keys_are_all_refused_with_the_file_and_nearest_key(tmp_path):
    from cxlab._check import ConfigError

    cfg = tmp_path / "lab.toml"
    cfg.write_text(
        "[tasks.cmj]\nplatess = [1]\n[plate]\nleft = 2\n"
        "[filters]\nmarker_cutof_hz = 8.0\n[tasks.hop]\nfunctions = ['landing']\n"
    )
    with pytest.raises(ConfigError) as e:
        read_config(cfg)
    text = str(e.value)
    assert text.startswith("lab.toml: ")
    assert "'tasks.cmj.platess'" in text
    assert "'plate' (did you mean 'plates'?)" in text
    assert "'filters.marker_cutof_hz' (did you mean 'filters.marker_cutoff_hz'?)" in text
    assert "tasks.hop" not in text  # a new task label is allowed
    assert "functions, side" in text
    with pytest.raises(ConfigError, match=r"'plates'.*must be a table"):
        read_config({"plates": 2})
    ok = read_config({"tasks": {"hop": {"functions": ["landing"]}}, "plates": {"left": 2}})
    assert ok.plates == PlatesConfig(left=2, right=2, balance=1)
    assert ok.tasks["hop"] == TaskConfig(functions=("landing",), side=None)


def test_cli_features_exit_codes(store, tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["features", "--store", str(store.path), "--jobs", "1"])
    assert out.exit_code == 3, out.output
    assert "quarantined 2" in out.output and "no take-off" in out.output
    assert "task 'walk_fast'" in out.output
    cfg = tmp_path / "only.toml"
    cfg.write_text("[tasks.cmj]\nfunctions = []\n[tasks.walk_fast]\nfunctions = []\n")
    out = runner.invoke(app, ["features", "--store", str(store.path), "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    cfg.write_text("[tasks.cmj]\nfunctions = ['nope']\n")
    out = runner.invoke(app, ["features", "--store", str(store.path), "--config", str(cfg)])
    assert out.exit_code == 1 and "unknown function" in out.output


def _synth_trial(tr, task):
    from cxlab.features.tasks import Trial

    t = Trial(task=task, analog_rate_hz=tr.analog_rate_hz, point_rate_hz=tr.point_rate_hz)
    for k, (f, c) in enumerate(zip(tr.forces, tr.cops, strict=True), start=1):
        t.plates[k] = {"fz": f[:, 2], "cop_x": c[:, 0], "cop_y": c[:, 1]}
    t.markers = {n: tr.markers[:, i, :] for i, n in enumerate(tr.marker_labels)}
    return t


def test_task_functions_recover_the_synthetic_cohorts_truth():
    """cxlab.synth builds trials with exact truth (another module's physics)."""
    from cxlab.features.tasks import FUNCTIONS
    from cxlab.synth import kinematics as kin
    from cxlab.synth import signals as sig

    cfg = read_config()
    rng = np.random.default_rng(5)

    def run(fn, tr, task):
        return {(f, s): v for f, s, v, *_ in FUNCTIONS[fn](_synth_trial(tr, task), cfg)}

    tr = sig.cmj_trial(rng, mass_kg=72, jump_height_m=0.35, lsi_pct=90, weak_side="left")
    r = run("cmj", tr, "cmj")
    assert r[("cmj_jump_height_impulse_m", "bilateral")] == pytest.approx(0.35, abs=0.003)
    assert r[("cmj_flight_time_s", "bilateral")] == pytest.approx(
        tr.truth["flight_time_s"], abs=0.0011
    )
    assert r[("cmj_body_mass_kg", "bilateral")] == pytest.approx(72, abs=0.05)
    assert r[("cmj_propulsive_impulse_lsi_pct", "bilateral")] == pytest.approx(90, abs=0.5)
    tr = kin.landing_trial(
        rng,
        mass_kg=70,
        height_m=1.75,
        peak_force_bw=4.0,
        lsi_pct=85,
        weak_side="right",
        fppa_left_deg=8,
        fppa_right_deg=-3,
    )
    r = run("landing", tr, "landing") | run("landing_alignment", tr, "landing")
    assert r[("landing_peak_force_bw", "bilateral")] == pytest.approx(4.0, abs=0.02)
    assert r[("landing_peak_force_lsi_pct", "bilateral")] == pytest.approx(85, abs=0.5)
    assert r[("landing_peak_force_asym_pct", "bilateral")] < 0  # right is the weak side
    assert r[("knee_fppa_peak_deg", "left")] == pytest.approx(8, abs=0.2)
    assert r[("knee_fppa_peak_deg", "right")] == pytest.approx(-3, abs=0.2)
    tr = sig.balance_trial(rng, mass_kg=70, mean_velocity_m_s=0.03, stance="right")
    r = run("balance", tr, "balance_right")
    assert r[("balance_mean_velocity_m_s", "right")] == pytest.approx(0.03, rel=0.02)
    assert r[("balance_rms_ml_m", "right")] == pytest.approx(tr.truth["rms_ml_m"], rel=0.02)
    tr = kin.posture_trial(
        rng, height_m=1.7, cva_deg=48, protraction_m=(0.05, 0.03), pelvic_tilt_deg=12
    )
    r = run("posture", tr, "posture")
    assert r[("posture_cva_deg", "bilateral")] == pytest.approx(48, abs=0.1)
    assert r[("posture_shoulder_protraction_m", "right")] == pytest.approx(0.03, abs=0.001)
    assert r[("posture_pelvic_tilt_deg", "bilateral")] == pytest.approx(12, abs=0.1)


def test_docs_examples_run():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "features.md").read_text()
    blocks = [b.split("```", 1)[0] for b in doc.split("```python\n")[1:]]
    assert len(blocks) >= 4
    for code in blocks:
        exec(compile(code, "docs/features.md", "exec"), {})
    toml = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    import tomllib

    cfg = read_config(tomllib.loads(toml))
    assert cfg.plates.left == 2 and cfg.tasks["hop"].functions == ("landing",)
    assert cfg.tasks["cmj"].functions == ("cmj", "emg")  # untouched defaults survive


def test_gait_features_of_a_real_walking_trial_through_the_reader(real_dir, tmp_path):
    """opensim_walking2.c3d read by cxlab.io.read, stored, then `gait` features."""
    from cxlab.io import read

    path = real_dir / "c3d" / "opensim_walking2.c3d"
    rec = read(path)
    st = Store(tmp_path / "st")
    rid = _rid("walking2")
    tables = rec.to_tables(rid)
    st.write("markers", tables["markers"], key=rid, partition=SUBJ)
    st.write("forces", tables["forces"], key=rid, partition=SUBJ)
    row = _rec(
        "walking2",
        "gait",
        analog=rec.analog_rate_hz,
        point=rec.point_rate_hz,
        n_frames=rec.n_frames,
    )
    st.write("recordings", pd.DataFrame([row]), key="all")
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.n_quarantined == 0, rep.quarantine["reason"].tolist()
    f = st.table("features").set_index("feature")["value"]
    assert set(f.index) == {"gait_step_time_asym_pct", "gait_stance_time_asym_pct", "gait_sparc"}
    assert abs(f["gait_step_time_asym_pct"]) < 20 and abs(f["gait_stance_time_asym_pct"]) < 20
    assert -10 < f["gait_sparc"] < -1  # a few strides of steady walking: smooth, not flat


def test_a_plate_with_unreadable_force_is_an_error_not_zero_force():
    # a plate the reader could not decode (unsupported TYPE, bad CHANNEL) arrives as NaN;
    # read as 0 N it halved body mass and gave LSI 0 % (a false asymmetry flag)
    from cxlab.features.events import FeatureError
    from cxlab.features.tasks import FUNCTIONS, Trial

    fz, _ = cmj_force(noise_n=1.0)
    t = Trial(task="cmj", analog_rate_hz=1000.0)
    t.plates[1] = {"fz": fz / 2, "cop_x": np.zeros(fz.size), "cop_y": np.zeros(fz.size)}
    t.plates[2] = {
        "fz": np.full(fz.size, np.nan),
        "cop_x": np.full(fz.size, np.nan),
        "cop_y": np.full(fz.size, np.nan),
    }
    for fn in ("cmj", "landing"):
        with pytest.raises(FeatureError, match="plate 2"):
            FUNCTIONS[fn](t, read_config())


def test_a_non_finite_value_is_quarantined_by_name_and_the_others_still_land(store, monkeypatch):
    import cxlab.features.runner as runner

    real = runner.FUNCTIONS["cmj"]

    def one_nan(trial, cfg):
        out = real(trial, cfg)
        return [
            m._replace(value=np.nan) if m.feature == "cmj_braking_impulse_lsi_pct" else m
            for m in out
        ]

    monkeypatch.setitem(runner.FUNCTIONS, "cmj", one_nan)
    extract_features(store, jobs=1, progress=False)
    f = store.table("features")
    cmj = f[f["recording_id"] == _rid("cmj")]
    assert len(cmj) == 15 + 3 * 2 + 6 - 1
    assert "cmj_braking_impulse_lsi_pct" not in set(cmj["feature"])
    q = store.table("quarantine")
    why = q.loc[q["reason"].str.contains(_rid("cmj")), "reason"].item()
    assert "cmj_braking_impulse_lsi_pct (bilateral)" in why and "26 value(s) were kept" in why


def _trial_of(rec, forces, markers):
    """One recording's Trial built the way the runner used to (pandas groupby of that
    recording's own rows): the one-trial-at-a-time reference for the batched runner."""
    from cxlab.features.tasks import Trial

    t = Trial(task=rec["task"], analog_rate_hz=rec["analog_rate_hz"])
    t.point_rate_hz = rec["point_rate_hz"]
    if forces is not None:
        for plate, g in forces.sort_values(["plate", "sample"]).groupby("plate"):
            t.plates[int(plate)] = {c: g[c].to_numpy(float) for c in ("fz", "cop_x", "cop_y")}
    if markers is not None:
        for name, g in markers.sort_values(["marker", "frame"]).groupby("marker"):
            t.markers[str(name)] = g[["x", "y", "z"]].to_numpy(float)
    return t


def test_batched_runner_gives_the_values_of_one_trial_at_a_time_calls(
    real_dir, tmp_path, monkeypatch
):
    """Recordings of two subjects (a real walking C3D with plates and markers, CMJs,
    balance and posture trials) in batches of 2: every value equals the feature function
    called on that recording alone, and the parts' bytes do not depend on the batch size."""
    from cxlab.features import runner
    from cxlab.features.tasks import FUNCTIONS
    from cxlab.io import read

    walk = read(real_dir / "c3d" / "opensim_walking2.c3d")
    st = Store(tmp_path / "st")
    recs, inputs = [], {}

    def add(name, task, subject, forces=None, markers=None, **kw):
        rec = _rec(name, task, **kw) | {"subject_id": subject}
        rid = rec["recording_id"]
        recs.append(rec)
        inputs[rid] = (rec, forces, markers)
        for table, df in (("forces", forces), ("markers", markers)):
            if df is not None:
                st.write(table, df.assign(recording_id=rid), key=rid, partition=subject)

    tables = walk.to_tables("0" * 16)
    kw = dict(analog=walk.analog_rate_hz, point=walk.point_rate_hz, n_frames=walk.n_frames)
    add("walk", "gait", SUBJ, tables["forces"], tables["markers"], **kw)
    for i, subject in enumerate([SUBJ, "fedcbafedcba"] * 3):
        fz, _ = cmj_force(v_to=2.0 + 0.1 * i, noise_n=1.0, seed=i)
        add(f"cmj{i}", "cmj", subject, _forces("x", [{"fz": 0.45 * fz}, {"fz": 0.55 * fz}]))
        cop = cop_normal(n=3000, seed=10 + i)
        plate = {"fz": np.full(3000, 700.0), "cop_x": cop[:, 0], "cop_y": cop[:, 1]}
        add(f"bal{i}", "balance_right", subject, _forces("x", [plate], rate=100.0), analog=100.0)
    posture = _markers("x", _posture_markers(), 200.0)
    add("post", "posture", "fedcbafedcba", None, posture, analog=np.nan, point=200.0)
    st.write("recordings", pd.DataFrame(recs), key="all")

    monkeypatch.setattr(runner, "_BATCH", 2)
    rep = extract_features(st, jobs=1, progress=False)
    assert rep.n_processed == len(recs) and rep.n_quarantined == 0, rep.quarantine
    got = st.table("features")
    cfg = read_config(None)
    for rid, (rec, forces, markers) in inputs.items():
        trial = _trial_of(rec, _as_stored(forces, "forces"), _as_stored(markers, "markers"))
        want = [m for fn in cfg.functions(rec["task"]) for m in FUNCTIONS[fn](trial, cfg)]
        mine = got[got["recording_id"] == rid].set_index(["feature", "side"])["value"]
        assert len(mine) == len(want) > 0, rec["task"]
        for m in want:
            assert mine[(m.feature, m.side)] == m.value, (rec["task"], m.feature)

    files = sorted(st.catalog().query("table in ('features', 'curves')")["file"])
    assert any(f.startswith("curves/") for f in files)
    monkeypatch.setattr(runner, "_BATCH", 64)
    extract_features(st, jobs=1, progress=False, force=True)
    assert sorted(st.catalog().query("table in ('features', 'curves')")["file"]) == files


def test_batch_tables_built_from_columns_equal_pandas_rows_validated():
    """The Arrow columns a batch's features and curves are built from give, once
    validated, the table of a plain pandas frame of the same rows (one Python row per
    value, the validation's own stable sort): missing task and trial sort last, NaN
    curve values are missing, rows of equal key keep their order, non-ASCII labels sort
    by code point."""
    from cxlab.features.curve_signals import Curve
    from cxlab.features.measure import Measure
    from cxlab.features.runner import _curves_table, _features_table
    from cxlab.schemas import validate

    def rec(name, subject, task, trial):
        return {
            "recording_id": _rid(name),
            "subject_id": subject,
            "session": "1",
            "task": task,
            "trial": trial,
        }

    recs = [
        rec("a", "bbbbbbbbbbbb", "cmj", "2"),
        rec("b", "aaaaaaaaaaaa", None, None),
        rec("c", "aaaaaaaaaaaa", "cmj", "10"),
        rec("d", "aaaaaaaaaaaa", "cmj", None),
        rec("e", "aaaaaaaaaaaa", "équilibre", "1"),
    ]
    ms = [
        Measure("z_m", "left", 1.0, "m", "x"),
        Measure("a_m", "right", 2.0, "m", "y"),
        Measure("a_m", "left", 3.0, "m", "é"),
        Measure("a_m", "left", 4.0, "m", "duplicate key, later row"),
    ]
    feats = [(r, ms[i % 2 :]) for i, r in enumerate(recs)]
    rows = [r | m._asdict() for r, m_list in feats for m in m_list]
    want = validate(pd.DataFrame(rows), "features")
    assert validate(_features_table(feats), "features").equals(want, check_metadata=True)

    rng = np.random.default_rng(0)

    def curve(phase, signal, side, k=5):
        y = rng.normal(size=k)
        y[1] = np.nan
        return Curve(phase, signal, side, "N", y, 0.5, 1.5, f"{phase} {signal}")

    def frame(curves):
        out = []
        for r, cs in curves:
            for c in cs:
                k = c.values.size
                out.append(
                    pd.DataFrame(
                        {
                            **r,
                            "phase": c.phase,
                            "signal": c.signal,
                            "side": c.side,
                            "node": np.arange(k, dtype=np.int32),
                            "pct": np.linspace(0.0, 100.0, k),
                            "value": c.values,
                            "unit": c.unit,
                            "phase_start_s": c.start_s,
                            "phase_end_s": c.end_s,
                            "method": c.method,
                        }
                    )
                )
        return validate(pd.concat(out, ignore_index=True), "curves")

    distinct = [
        (
            r,
            [
                curve("landing", "fz_bw", "right"),
                curve("cmj", "fz_bw", "left", 3),
                curve("cmj", "cop_ap_m", "bilateral"),
            ],
        )
        for r in recs
    ]
    assert validate(_curves_table(distinct), "curves").equals(frame(distinct))
    twice = [*distinct, (recs[0], [curve("cmj", "fz_bw", "left", 3)])]  # a repeated key
    assert validate(_curves_table(twice), "curves").equals(frame(twice))


def test_forces_and_markers_shared_by_recordings_give_the_features_of_parts_per_recording(
    store, tmp_path
):
    """Parts not keyed by recording id (several recordings in one part) are read with their
    ``recording_id`` and split on it: the same features as the ingest layout's parts."""
    shared = Store(tmp_path / "shared")
    for name in ("recordings", "strength"):
        shared.write(name, store.table(name), key="all")
    for name in ("forces", "markers"):
        shared.write(name, store.table(name), key="shared", partition=SUBJ)
    assert extract_features(shared, jobs=1, progress=False).n_rows > 0
    extract_features(store, jobs=1, progress=False)
    for name in ("features", "curves"):
        pd.testing.assert_frame_equal(shared.table(name), store.table(name))


def test_a_batch_is_split_into_one_table_per_subject_part_missing_subject_included():
    from cxlab.features.measure import Measure
    from cxlab.features.runner import _validated_by_subject, part_key

    def rec(name, subject):
        return {"recording_id": _rid(name), "subject_id": subject, "session": "1"} | {
            "task": "cmj",
            "trial": "1",
        }

    ms = [Measure("a_m", "left", 1.0, "m", "x"), Measure("b_m", "left", 2.0, "m", "x")]
    a, b = "a" * 12, "b" * 12
    feats = [(rec("a", b), ms), (rec("b", None), ms[:1]), (rec("c", a), ms)]
    got = _validated_by_subject("features", feats)
    assert {k: t.num_rows for k, t in got.items()} == {
        part_key(a): 2,
        part_key(b): 2,
        part_key(None): 1,
    }
    assert got[part_key(None)].column("recording_id").to_pylist() == [_rid("b")]
    assert set(got[part_key(a)].column("subject_id").to_pylist()) == {a}


def test_new_and_removed_recordings_of_a_subject_rewrite_its_parts_as_a_run_from_scratch(
    tmp_path,
):
    """Features and curves land in one part per subject: a rerun after a subject gains a
    recording (or loses one) rewrites that subject's parts with the other recordings' rows
    kept, leaves the other subject's parts alone, and gives the bytes of a run from
    scratch on the final store."""

    def build(path, names):
        st = Store(path)
        recs = []
        for name, subject in names:
            rec = _rec(name, "cmj") | {"subject_id": subject}
            i = int(name[1]) + (3 if name[0] == "b" else 0)  # a recording's own trace
            fz, _ = cmj_force(v_to=2.0 + 0.1 * i, noise_n=1.0, seed=i)
            f = _forces(rec["recording_id"], [{"fz": 0.45 * fz}, {"fz": 0.55 * fz}])
            st.write("forces", f, key=rec["recording_id"], partition=subject)
            recs.append(rec)
        st.write("recordings", pd.DataFrame(recs), key="all")
        return st

    def parts(st):
        cat = st.catalog()
        rows = cat[cat["table"].isin(["features", "curves"])]
        return {(t, k): f for t, k, f in rows[["table", "key", "file"]].values}

    other = "fedcbafedcba"
    first = [("a0", SUBJ), ("a1", SUBJ), ("b0", other)]
    st = build(tmp_path / "inc", first)
    extract_features(st, jobs=1, progress=False)
    before = parts(st)
    assert {k for _, k in before} == {f"subject={SUBJ}", f"subject={other}"}
    grown = build(tmp_path / "inc", [*first, ("a2", SUBJ)])
    rep = extract_features(grown, jobs=1, progress=False)
    assert rep.n_processed == 1 and rep.n_up_to_date == 3
    after = parts(grown)
    for table in ("features", "curves"):
        assert after[(table, f"subject={other}")] == before[(table, f"subject={other}")]
        assert after[(table, f"subject={SUBJ}")] != before[(table, f"subject={SUBJ}")]
    fresh = build(tmp_path / "fresh", [*first, ("a2", SUBJ)])
    extract_features(fresh, jobs=2, progress=False)
    assert parts(fresh) == after
    assert set(grown.table("features")["recording_id"]) == {
        _rid(n) for n in ("a0", "a1", "a2", "b0")
    }
    # a recording gone from the store: its rows go with the next run, the others stay
    gone = [("a0", SUBJ), ("a2", SUBJ), ("b0", other)]
    Store(tmp_path / "inc").write(
        "recordings", pd.DataFrame([_rec(n, "cmj") | {"subject_id": s} for n, s in gone])
    )
    rep = extract_features(Store(tmp_path / "inc"), jobs=1, progress=False)
    assert rep.n_processed == 0
    left = Store(tmp_path / "inc")
    assert set(left.table("features")["recording_id"]) == {_rid(n) for n, _ in gone}
    assert set(left.table("curves")["recording_id"]) == {_rid(n) for n, _ in gone}
    scratch = build(tmp_path / "scratch", gone)
    extract_features(scratch, jobs=1, progress=False)
    assert parts(scratch) == parts(left)


def _analog_rows(rid, channel, n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "recording_id": rid,
            "sample": np.arange(n, dtype=np.int64),
            "time_s": np.arange(n) / 2000.0,
            "channel": channel,
            "value": rng.normal(size=n),
            "unit": "V",
        }
    )


def test_a_recordings_analog_channels_are_split_by_label_as_the_table_sorts_them(tmp_path):
    """_channel_values (the EMG trials' one read): label -> float64 samples in order, labels
    in byte order, as pandas' stable sort and groupby on the same rows give them; parts
    given out of the table's order (a recording's channels in two parts, the later label
    first) are sorted first; the arrays are writable."""
    from cxlab.features.runner import _channel_values

    rid = "0123456789abcdef"
    st = Store(tmp_path)
    one = pd.concat(
        [_analog_rows(rid, c, 50, i) for i, c in enumerate(["R_GMED", "L_GMED", "Ä_x", "Z"])]
    )
    st.write("analogs", one, key=rid, partition="abcdefabcdef")
    st.write("analogs", _analog_rows(rid, "B2", 30, 7), key="k2", partition="abcdefabcdef")
    st.write("analogs", _analog_rows(rid, "A1", 30, 8), key="k1", partition="abcdefabcdef")
    parts = st.parts("analogs")

    def by_pandas(handles):
        df = st.read_parts(handles, table="analogs", columns=["channel", "sample", "value"])
        df = df.sort_values(["channel", "sample"], kind="stable")
        return {str(c): g["value"].to_numpy(float) for c, g in df.groupby("channel", sort=True)}

    for handles in ([parts[rid]], [parts["k2"], parts["k1"]]):
        got, want = _channel_values(st, handles).values, by_pandas(handles)
        assert list(got) == list(want)
        for label, values in want.items():
            assert got[label].dtype == np.float64 and got[label].flags.writeable
            np.testing.assert_array_equal(got[label], values)
    out_of_order = _channel_values(st, [parts["k2"], parts["k1"]])
    assert list(out_of_order.values) == ["A1", "B2"] and out_of_order.first_seen == ["B2", "A1"]
    assert list(_channel_values(st, [parts[rid]]).values) == ["L_GMED", "R_GMED", "Z", "Ä_x"]


def test_an_emg_trial_gets_its_emg_channels_and_the_sessions_mvc_ones_only(real_dir, tmp_path):
    """_emg_inputs hands a trial the channels emg.toml names as EMG (a real file's ten
    muscles, not its sixteen other 'Pin' channels), as the file holds them, and each MVC
    trial's EMG channels, read once a batch."""
    import warnings

    from cxlab.features.emg import emg_channels
    from cxlab.features.runner import _emg_inputs
    from cxlab.features.tasks import Trial
    from cxlab.io import read

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read(real_dir / "c3d" / "btk_PiG_Motion-FlatFoot-Full.c3d")
    rid = "0123456789abcdef"
    analogs = rec.to_tables(rid)["analogs"]
    st = Store(tmp_path)
    st.write("analogs", analogs, key=rid, partition="abcdefabcdef")
    cfg = read_config()
    part = st.parts("analogs")[rid]
    job = {
        "analogs": [part],
        "store": str(tmp_path),
        "cfg": cfg,
        "rec": {"recording_id": rid, "analog_rate_hz": rec.analog_rate_hz},
        "mvc": [("mvc_all", rec.analog_rate_hz, [part])],
    }
    cache: dict = {}
    trials = [Trial(task="gait"), Trial(task="gait")]
    for trial in trials:
        _emg_inputs(job, trial, {}, cache)
    labels = list(dict.fromkeys(analogs["channel"]))
    emg = [c.label for c in emg_channels(labels, cfg.emg)]
    assert len(emg) == 10 and len(labels) == 26
    for trial in trials:
        assert list(trial.analogs) == sorted(emg)
        ((task, rate, mvc),) = trial.mvc
        assert (task, rate) == ("mvc_all", rec.analog_rate_hz) and list(mvc) == sorted(emg)
        for label in emg:
            want = analogs[analogs["channel"] == label].sort_values("sample")["value"]
            np.testing.assert_array_equal(trial.analogs[label], want.to_numpy(float))
    assert len(cache) == 1  # the MVC trial read once for both
