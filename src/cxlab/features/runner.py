"""``extract_features``: every recording in a store → the long ``features`` table.

Each recording's ``task`` selects the functions to run (``features.toml``, overridable);
the recording's forces and markers are read from its own Parquet part, the functions run
in worker processes, and the results land as one ``features`` part per recording (key =
recording id) plus one part ``strength`` for the strength table. A function that cannot
run on a recording (missing plate or marker, no take-off, ...) leaves one row in
``quarantine`` (stage ``features``) instead of a NaN feature.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxlab._check import CxlabError, nearest
from cxlab._executor import make_executor
from cxlab.features.config import FeatureConfig, read_config
from cxlab.features.curve_signals import joint_data
from cxlab.features.curve_tasks import curves_frame, trial_curves
from cxlab.features.emg import emg_channels
from cxlab.features.joints import store_joint_tables
from cxlab.features.measure import Measure
from cxlab.features.tasks import (
    FUNCTIONS,
    SINGLE_LEG_METRICS,
    SINGLE_LEG_PAIRS,
    Trial,
    capture_warnings,
)
from cxlab.store import Part, Store

__all__ = ["FeatureConfig", "FeaturesReport", "extract_features", "read_config"]

FEATURE_COLUMNS = [
    "recording_id",
    "subject_id",
    "session",
    "task",
    "trial",
    "feature",
    "side",
    "value",
    "unit",
    "method",
]
_HEX16 = re.compile(r"[0-9a-f]{16}")
_Q_COLUMNS = ["source_path", "source_sha256", "stage", "row", "field", "value", "reason"]


@dataclass
class FeaturesReport:
    """What :func:`extract_features` did.

    Attributes
    ----------
    n_recordings : int
        Recordings in the store.
    n_processed : int
        Recordings whose features were (re)computed in this run.
    n_up_to_date : int
        Recordings skipped because they already have a features part.
    n_no_functions : int
        Recordings whose task has no functions configured.
    n_rows : int
        Feature rows written in this run (including strength features).
    quarantine : pandas.DataFrame
        The ``features`` quarantine rows of every recording in scope (columns of that
        table): written in this run, or standing from the run that computed an up-to-date
        recording, so a rerun (also after a kill) reports and exits like the first run.
    elapsed_s : float
        Wall-clock time, s.
    """

    n_recordings: int = 0
    n_processed: int = 0
    n_up_to_date: int = 0
    n_no_functions: int = 0
    n_rows: int = 0
    quarantine: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_Q_COLUMNS))
    elapsed_s: float = 0.0

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantine)


def _parts(store: Store, name: str) -> dict[str, list[Part]]:
    """Recording id -> the handles of its part of ``name`` (read by the store in a worker)."""
    return {k: [p] for k, p in store.parts(name).items()}


def _read(job: dict, name: str, columns: list[str]) -> pd.DataFrame:
    """One recording's rows of ``name``: its own part if the table is keyed by recording."""
    parts = job[name]
    if parts:
        return Store(job["store"]).read_parts(parts, table=name, columns=columns)
    if job[f"{name}_keyed"]:  # parts are keyed by recording id and this one has none
        return pd.DataFrame(columns=columns)
    return Store(job["store"]).table(
        name, columns=columns, filters=[("recording_id", "==", job["rec"]["recording_id"])]
    )


def _trial(job: dict) -> Trial:
    rec = job["rec"]
    trial = Trial(task=rec["task"])
    mass = rec.get("body_mass_kg")  # export header (ForceDecks Weight (Kg)), if ingested
    if mass is not None and np.isfinite(mass):
        trial.body_mass_kg = float(mass)
    cols = ("fx", "fy", "fz", "cop_x", "cop_y")  # fx, fy: the shear curves
    forces = _read(job, "forces", ["plate", "sample", "time_s", *cols])
    if len(forces):
        forces = forces.sort_values(["plate", "sample"])
        for plate, g in forces.groupby("plate", sort=True):
            trial.plates[int(plate)] = {c: g[c].to_numpy(float) for c in cols}
        rate = rec.get("analog_rate_hz")
        if not (rate and np.isfinite(rate) and rate > 0):
            t = forces.loc[forces["plate"] == forces["plate"].iloc[0], "time_s"].to_numpy()
            rate = 1.0 / float(np.median(np.diff(t)))
        trial.analog_rate_hz = float(rate)
    markers = _read(job, "markers", ["marker", "frame", "time_s", "x", "y", "z"])
    if len(markers):
        markers = markers.sort_values(["marker", "frame"])
        for name, g in markers.groupby("marker", sort=True):
            trial.markers[str(name)] = g[["x", "y", "z"]].to_numpy(float)
        rate = rec.get("point_rate_hz")
        if not (rate and np.isfinite(rate) and rate > 0):
            t = np.unique(markers["time_s"].to_numpy())
            rate = 1.0 / float(np.median(np.diff(t)))
        trial.point_rate_hz = float(rate)
    if "analogs" in job:  # the task runs "emg": its analog channels, events and MVC trials
        _emg_inputs(job, trial)
    elif job.get("events"):  # gait curves: the file's foot strikes
        trial.events = _events(job)
    return trial


def _events(job: dict) -> list[tuple[str, str, float]]:
    """The recording's events as (label, context, time_s) on its samples' time axis."""
    rec = job["rec"]
    ev = Store(job["store"]).table(
        "events",
        columns=["recording_id", "label", "context", "time_s"],
        filters=[("recording_id", "==", rec["recording_id"])],
    )
    # C3D event times count from frame 1 of the capture; samples from the first stored frame
    first, prate = rec.get("first_frame") or 0, rec.get("point_rate_hz")
    t0 = (first - 1) / prate if first and prate and np.isfinite(prate) else 0.0
    return [(str(r.label), str(r.context), float(r.time_s) - t0) for r in ev.itertuples()]


def _emg_inputs(job: dict, trial: Trial) -> None:
    """The recording's EMG channels (by label, emg.toml), its events and the session's MVC
    trials; reads only the channel column when the recording has no EMG channel."""
    parts = job["analogs"]
    if not parts:
        return
    store = Store(job["store"])
    emg_map = job["cfg"].emg
    labels = store.read_parts(parts, table="analogs", columns=["channel"])["channel"]
    keep = [c.label for c in emg_channels(pd.unique(labels).tolist(), emg_map)]
    if not keep:
        return

    def channels(handles):
        df = store.read_parts(handles, table="analogs", columns=["channel", "sample", "value"])
        df = df[df["channel"].isin(keep)].sort_values(["channel", "sample"], kind="stable")
        return {str(c): g["value"].to_numpy(float) for c, g in df.groupby("channel", sort=True)}

    trial.analogs = channels(parts)
    trial.events = _events(job)
    rec = job["rec"]
    if not np.isfinite(trial.analog_rate_hz):
        trial.analog_rate_hz = float(rec.get("analog_rate_hz") or np.nan)
    for task, rate, paths in job["mvc"]:
        trial.mvc.append((task, float(rate), channels(paths)))


def _run_one(job: dict) -> tuple[int, pd.DataFrame]:
    """Worker: compute and write one recording's features; return (rows written, quarantine)."""
    rec, cfg = job["rec"], job["cfg"]
    rid, task = rec["recording_id"], rec["task"]
    rows, qrows = [], []
    failed = False  # a feature function raised: its curves would repeat the reason
    try:
        trial = _trial(job)
    except (OSError, ValueError, CxlabError) as e:
        trial, err = None, f"cannot read the recording's data ({e})"
        qrows.append(("read", err))
    for fn in [] if trial is None else cfg.functions(task):
        try:
            with np.errstate(all="ignore"):
                out, warned = capture_warnings(FUNCTIONS[fn], trial, cfg)
            # A physical check that failed but left usable values (body mass header vs
            # quiet standing): the values land and the warning is kept beside them.
            qrows.extend((fn, f"warning, values kept: {w}") for w in warned)
            # A value that cannot be computed (e.g. an LSI of opposite-sign impulses) is
            # quarantined by name; the function's other values still land.
            rows.extend(m for m in out if np.isfinite(m.value))
            bad = [
                f"{m.feature} ({m.side})"
                + (f" {m.method}" if m.method.startswith("not analysed") else "")
                for m in out
                if not np.isfinite(m.value)
            ]
            if bad:
                qrows.append(
                    (
                        fn,
                        f"{fn}: non-finite result for {', '.join(bad)}; its other "
                        f"{len(out) - len(bad)} value(s) were kept",
                    )
                )
        except (CxlabError, KeyError, ValueError, IndexError) as e:
            failed = True
            qrows.append((fn, str(e) if isinstance(e, CxlabError) else f"{fn}: {e!r}"))
    # A recording a feature function could not process is not reported twice by its
    # curves; a non-finite value (values kept) or a joint-table row does not stop them.
    joints = None
    if trial is not None:
        joints = store_joint_tables(
            Store(job["store"]),
            rec,
            trial,
            cfg=cfg,
            subject=job["pig_subject"],
            had=job["had_joints"],
            has_outputs=job["has_outputs"],
        )
        qrows.extend(joints.quarantine)
        rows.extend(joints.features)
    feats = pd.DataFrame(rows, columns=list(Measure._fields))
    for c in ("recording_id", "subject_id", "session", "task", "trial"):
        feats[c] = rec[c]
    curves = pd.DataFrame()
    if trial is not None and not failed and cfg.curves.tasks.get(task):
        try:
            jd = joint_data(joints.angles, joints.moments)
            with np.errstate(all="ignore"):
                curves = curves_frame(trial_curves(trial, cfg, joints=jd))
            for c in ("recording_id", "subject_id", "session", "task", "trial"):
                curves[c] = rec[c]
        except (CxlabError, KeyError, ValueError, IndexError) as e:
            qrows.append(("curves", str(e) if isinstance(e, CxlabError) else f"curves: {e!r}"))
    q = pd.DataFrame(
        {
            "source_path": rec["source_path"],
            "source_sha256": rec["source_sha256"],
            "stage": "features",
            "row": pd.array([None] * len(qrows), dtype="Int64"),
            "field": [f"{task}:{fn}" for fn, _ in qrows],
            "value": rid,
            "reason": [f"recording {rid} (task {task}): {why}" for _, why in qrows],
        },
        columns=_Q_COLUMNS,
    )
    store = Store(job["store"])
    # The quarantine part first, the features part last: the features part is what marks
    # the recording done, so a kill between the two is redone by the next run.
    if len(q):
        store.append_quarantine(q, key=f"features-{rid}")
    elif job["had_quarantine"]:
        store.delete("quarantine", key=f"features-{rid}")
    if len(curves):
        store.write("curves", curves, key=rid)
    elif job["had_curves"]:
        store.delete("curves", key=rid)
    if len(feats):
        store.write("features", feats[FEATURE_COLUMNS], key=rid)
    elif job["had_features"]:
        store.delete("features", key=rid)
    return len(feats), q


def extract_features(
    store,
    /,
    *,
    config=None,
    jobs: int | None = None,
    force: bool = False,
    progress: bool = True,
    scheduler: str | None = None,
) -> FeaturesReport:
    """Compute the features of every recording in ``store`` and write the ``features`` table.

    Parameters
    ----------
    store : Store or path-like
        The store (needs ``recordings`` and ``forces``/``markers``).
    config : path-like, dict or FeatureConfig, optional
        Overrides of the shipped ``features.toml`` (see :func:`read_config`), or a
        configuration already built.
    jobs : int, optional
        Worker processes; default ``os.cpu_count()``; 1 runs in this process.
    force : bool
        Recompute recordings that already have a features part.
    progress : bool
        Show a rich progress bar on stderr.
    scheduler : str, optional
        Run the recordings on a Dask cluster: ``"local"`` or a scheduler address
        (:func:`cxlab._executor.make_executor`); the store must be on a filesystem its workers
        share.

    Returns
    -------
    FeaturesReport

    Notes
    -----
    Incremental: only recordings without a ``features`` part (key = recording id) are
    processed. A recording where every function failed writes no part and is retried on
    the next run; its quarantine part (key ``features-<recording_id>``) is replaced each
    time and removed once it succeeds. Output bytes depend only on the inputs and the
    configuration, not on ``jobs``.
    """
    t0 = time.perf_counter()
    store = store if isinstance(store, Store) else Store(store)
    if not store.path.is_absolute():  # workers (a Dask cluster) may run in another directory
        store = Store(store.path.absolute())
    cfg = read_config(config)
    recs = store.table("recordings")
    report = FeaturesReport(n_recordings=len(recs))
    _recover(store, set(recs["recording_id"]))
    done = store.keys("features")
    jobs_list = []
    forces, markers = _parts(store, "forces"), _parts(store, "markers")
    analogs = _parts(store, "analogs")
    mvc_prefix = cfg.emg.settings["mvc"]["task_prefix"]
    mvc: dict[tuple, list] = {}  # (subject, session) -> MVC recordings' analog parts
    for r in recs.sort_values("recording_id").itertuples():
        if str(r.task).startswith(mvc_prefix) and analogs.get(r.recording_id):
            mvc.setdefault((r.subject_id, r.session), []).append(
                (str(r.task), float(r.analog_rate_hz), analogs[r.recording_id])
            )
    keyed = {
        n: any(_HEX16.fullmatch(k) for k in parts) or not parts
        for n, parts in (("forces", forces), ("markers", markers))
    }
    quarantined = store.keys("quarantine")
    had_curves = store.keys("curves")
    had_angles = store.keys("joint_angles")
    had_moments = store.keys("joint_moments")
    with_outputs = store.keys("model_outputs")
    pig_subjects = {}
    if cfg.kinematics.measurements:
        from cxlab.features.kinematics import read_pig_measurements

        pig_subjects = read_pig_measurements(cfg.kinematics.measurements)
    standing: list[str] = []  # up to date: their quarantine rows still stand
    qparts = []
    for rec in recs.sort_values("recording_id").to_dict("records"):
        rec = {
            k: (None if isinstance(v, float) and np.isnan(v) and k in FEATURE_COLUMNS else v)
            for k, v in rec.items()
        }
        # A task only [curves.tasks] names (a single-leg squat) runs for its curves; one
        # declared with `functions = []` stays without features and curves.
        curves_only = rec["task"] not in cfg.tasks and bool(cfg.curves.tasks.get(rec["task"]))
        no_functions = not cfg.functions(rec["task"]) and not curves_only
        # Joint tables fill whatever the task: for subjects with PiG measurements, and
        # from the PiG outputs stored in a file.
        rid = rec["recording_id"]
        if no_functions and rec["subject_id"] not in pig_subjects and rid not in with_outputs:
            report.n_no_functions += 1
            if rec["task"] not in cfg.tasks and not str(rec["task"]).startswith(mvc_prefix):
                qparts.append(_unknown_task(store, rec, sorted(cfg.tasks)))
            elif f"features-{rec['recording_id']}" in quarantined:  # declared since
                store.delete("quarantine", key=f"features-{rec['recording_id']}")
            continue
        if not force and (rid in done or (no_functions and rid in had_angles | had_moments)):
            report.n_up_to_date += 1
            standing.append(rec["recording_id"])
            continue
        jobs_list.append(
            {
                "store": str(store.path),
                "rec": rec,
                "cfg": cfg,
                "forces": forces.get(rid, []),
                "markers": markers.get(rid, []),
                "forces_keyed": keyed["forces"],
                "markers_keyed": keyed["markers"],
                "had_features": rid in done,
                "had_curves": rid in had_curves,
                "had_quarantine": f"features-{rid}" in quarantined,
                "had_joints": frozenset(
                    n
                    for n, keys in (("joint_angles", had_angles), ("joint_moments", had_moments))
                    if rid in keys
                ),
                "has_outputs": rid in with_outputs,
                "pig_subject": pig_subjects.get(rec["subject_id"]),
            }
        )
        jobs_list[-1]["events"] = "gait" in cfg.curves.tasks.get(rec["task"], ())
        if "emg" in cfg.functions(rec["task"]):
            jobs_list[-1] |= {
                "analogs": analogs.get(rid, []),
                "analogs_keyed": True,
                "mvc": mvc.get((rec["subject_id"], rec["session"]), []),
            }
    n_workers = min(jobs or os.cpu_count() or 1, max(len(jobs_list), 1))
    with _Progress(progress, len(jobs_list)) as bar:
        if n_workers > 1 or (scheduler and jobs_list):
            with make_executor(n_workers, scheduler=scheduler) as ex:
                results = ex.map(_run_one, jobs_list, chunksize=max(1, len(jobs_list) // 64))
                for n_rows, q in results:
                    report.n_processed += 1
                    report.n_rows += n_rows
                    qparts.append(q)
                    bar.advance()
        else:
            for job in jobs_list:
                n_rows, q = _run_one(job)
                report.n_processed += 1
                report.n_rows += n_rows
                qparts.append(q)
                bar.advance()
    strength = store.table("strength")
    if len(strength):
        from cxlab.features.strength import strength_features

        sf = strength_features(strength)
        store.write("features", sf, key="strength")
        report.n_rows += len(sf)
    if standing:  # the same exit status as the run that computed them (and after a kill)
        old = store.table(
            "quarantine", filters=[("stage", "==", "features"), ("value", "in", standing)]
        )
        qparts.append(old[_Q_COLUMNS])
    _single_leg(store, report)
    qparts = [q for q in qparts if len(q)]
    if qparts:
        report.quarantine = (
            pd.concat(qparts, ignore_index=True)
            .sort_values(["source_path", "value", "field"], kind="stable")
            .reset_index(drop=True)
        )
    report.elapsed_s = time.perf_counter() - t0
    return report


def _unknown_task(store: Store, rec: dict, known: list[str]) -> pd.DataFrame:
    """Quarantine a recording whose task no configuration names (empty or unknown), so it is
    listed with the fix and the command exits 3, rather than counted and forgotten.

    A task the configuration declares with ``functions = []`` (a static or calibration trial)
    is left alone: the user said it has no features.
    """
    rid, task = rec["recording_id"], rec["task"]
    what = f"task {task!r}" if task else "no task (the file name gave none)"
    near = nearest(task or "", known)
    hint = f"did you mean {near!r}? " if near else ""
    q = pd.DataFrame(
        {
            "source_path": [rec["source_path"]],
            "source_sha256": [rec["source_sha256"]],
            "stage": ["features"],
            "row": pd.array([None], dtype="Int64"),
            "field": ["task"],
            "value": [rid],
            "reason": [
                f"recording {rid} ({what}): no feature functions for it; {hint}name tasks at "
                "ingest (--pattern with {task}), or declare it in a --config ([tasks.NAME] "
                "functions = [...], or functions = [] for a trial without features; "
                f"docs/features.md); known tasks: {', '.join(known)}"
            ],
        },
        columns=_Q_COLUMNS,
    )
    store.append_quarantine(q, key=f"features-{rid}")
    return q


def _single_leg(store: Store, report: FeaturesReport) -> None:
    """Rewrite the session-level LSI of single-leg tests (part ``single_leg``) from the
    left- and right-leg trials now in ``features``."""
    from cxlab.features.battery import single_leg_lsi

    tasks = [t for pair in SINGLE_LEG_PAIRS.values() for t in pair]
    feats = store.table("features", filters=[("task", "in", tasks)])
    lsi = (
        single_leg_lsi(feats, pairs=SINGLE_LEG_PAIRS, metrics=SINGLE_LEG_METRICS)
        if len(feats)
        else feats
    )
    if len(lsi):
        store.write("features", lsi[FEATURE_COLUMNS], key="single_leg")
        report.n_rows += len(lsi)
    elif "single_leg" in store.keys("features"):
        store.delete("features", key="single_leg")


def _recover(store: Store, recordings: set[str]) -> None:
    """Clear what a killed or superseded run left: temporaries of dead writers, and the
    features, joint-table and quarantine parts of recordings no longer in the store (a
    file whose new version replaced the old one)."""
    store.recover()
    for name in ("features", "joint_angles", "joint_moments"):
        for key in sorted(store.keys(name)):
            if _HEX16.fullmatch(key) and key not in recordings:
                store.delete(name, key=key)
    for key in sorted(store.keys("quarantine")):
        rid = key.removeprefix("features-")
        if key.startswith("features-") and _HEX16.fullmatch(rid) and rid not in recordings:
            store.delete("quarantine", key=key)


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self._p = enabled and total > 0, total, None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._p = Progress(
                "features",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._p.start()
            self._task = self._p.add_task("features", total=self.total)
        return self

    def advance(self):
        if self._p is not None:
            self._p.advance(self._task)

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.stop()
