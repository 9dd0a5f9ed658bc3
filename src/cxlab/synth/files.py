"""Write a synthetic cohort as a lab's export: C3D files, spreadsheets and the ground truth.

Layout (``docs/conventions.md``)::

    DIR/sub-CX001/ses-1/sub-CX001_ses-1_task-cmj_run-1.c3d     (and run-2)
    DIR/sub-CX001/ses-1/sub-CX001_ses-1_task-landing_run-1.c3d (and run-2)
    DIR/sub-CX001/ses-1/sub-CX001_ses-1_task-balance_left_run-1.c3d
    DIR/sub-CX001/ses-1/sub-CX001_ses-1_task-balance_right_run-1.c3d
    DIR/sub-CX001/ses-1/sub-CX001_ses-1_task-posture_run-1.c3d
    DIR/sub-CX001/ses-1/sub-CX001_ses-1_task-sj_run-1.c3d      (and task-dj, task-imtp)
    DIR/sub-CX001/ses-1/sub-CX001_ses-1_task-cmj_left_run-1.c3d (and cmj_right, hop_left/right)
    DIR/surveys.csv  DIR/interventions.csv  DIR/strength.csv  DIR/ground_truth.json

Dropped-out sessions have no files and no survey or strength rows. The single trials of
a session (posture, balance, the battery) encode its *observed* outcome values exactly
(CVA, balance mean velocity, LSI). The repeated trials carry realistic trial-to-trial
noise (:data:`cxlab.synth.params.TRIAL_SD`, with sources): each CMJ's propulsive-impulse
LSI and each landing's peak-force LSI and left/right knee FPPA deviate from the session's
observed value by a seeded draw (stream ``default_rng([seed, 7, subject, session])``)
centred within the session, so the mean over a session's trials is the observed value
and every effect in ``ground_truth.json`` is unchanged, while a trial-to-trial ICC has the
designed value instead of ~1. An LSI's deviations are shrunk where needed so no trial
exceeds 100 % (a near-symmetric subject varies less). Jump height (CV 3 %, as Markovic et
al. 2004, *J Strength Cond Res* 18:551, report 2.8 % for CMJ) and landing peak force
(CV 4 %, the generator's choice) vary around the subject's value. Every trial's own values
are listed per trial in ``ground_truth.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from cxlab._check import ConfigError, message
from cxlab.synth import battery, kinematics, signals
from cxlab.synth import emg as synth_emg
from cxlab.synth.c3d import write_trial_c3d
from cxlab.synth.params import TRIAL_SD
from cxlab.synth.tables import identities, interventions_table, strength_table, survey_table
from cxlab.synth.truth import OUTCOMES, CohortTruth, simulate_truth

__all__ = ["c3d_path", "cohort_summary", "write_cohort"]

TASKS = (
    "cmj",
    "landing",
    "balance_left",
    "balance_right",
    "posture",
    "sj",
    "dj",
    "imtp",
    "cmj_left",
    "cmj_right",
    "hop_left",
    "hop_right",
)
TRIALS = {
    "cmj": 2,
    "landing": 2,
    "balance_left": 1,
    "balance_right": 1,
    "posture": 1,
    "sj": 1,
    "dj": 1,
    "imtp": 1,
    "cmj_left": 1,
    "cmj_right": 1,
    "hop_left": 1,
    "hop_right": 1,
}
#: single-leg CMJ height / bilateral CMJ height of the strong leg (Bishop et al. 2018 report
#: ~0.4-0.5); single-leg hop height / bilateral CMJ height; hop contact time, s
SINGLE_LEG_RATIO = (0.40, 0.50)
HOP_RATIO = (0.25, 0.35)
HOP_CONTACT_S = (0.20, 0.30)
BALANCE_RATE_HZ = 100.0


def c3d_path(root: str | os.PathLike[str], label: str, session: str, task: str, trial: int) -> Path:
    """``root/sub-<label>/ses-<session>/sub-<label>_ses-<session>_task-<task>_run-<trial>.c3d``."""
    name = f"sub-{label}_ses-{session}_task-{task}_run-{trial}.c3d"
    return Path(root) / f"sub-{label}" / f"ses-{session}" / name


def _subject_plan(seed: int, index: int, subject: dict) -> dict:
    """Subject-level constants of the signal generator (drawn from their own stream)."""
    rng = np.random.default_rng([seed, 1, index])
    side_shift = rng.uniform(-0.002, 0.002)
    plan = {
        "landing_peak_bw": float(rng.uniform(3.0, 4.5)),
        "pelvic_tilt_deg": float(rng.uniform(6.0, 14.0)),
        "protraction_side_m": float(side_shift),
    }
    # the battery's constants, drawn after the others so earlier values do not move
    plan |= {
        "sj_ratio": float(rng.uniform(0.85, 0.95)),  # SJ height / CMJ height
        "dj_contact_s": float(rng.uniform(0.18, 0.28)),
        "dj_ratio": float(rng.uniform(0.75, 0.90)),  # DJ height / CMJ height
        "imtp_net_bw": float(rng.uniform(2.0, 3.2)),  # IMTP net peak force / body weight
        "imtp_tau_s": float(rng.uniform(0.08, 0.15)),
    }
    return plan


def _centred(rng, n: int, sd: float, *, room: float = np.inf) -> np.ndarray:
    """``n`` trial deviations of SD ``sd`` about their mean (which is exactly 0), scaled
    down if needed so none exceeds ``room``."""
    e = rng.normal(0.0, sd, n)
    e = e - e.mean()
    top = float(e.max())
    return e * (max(room, 0.0) / top) if top > room else e


def _session_trials(root, seed, index, subject, plan, session, values, emg_plan=None):
    """Generate and write one session's C3D files; return their truths by task.

    With ``emg_plan`` (see :mod:`cxlab.synth.emg`) the CMJ and landing files also carry six
    EMG channels and the session gets one MVC trial per muscle; those signals come from
    their own stream ``default_rng([seed, 5, index, session])``, so every other byte is
    the same as without EMG."""
    rng = np.random.default_rng([seed, 2, index, int(session)])
    erng = np.random.default_rng([seed, 5, index, int(session)])
    lab, weak = subject["label"], subject["asymmetric_side"]
    mass, height = subject["body_mass_kg"], subject["height_m"]
    half = 0.5 * subject["valgus_side_offset_deg"]
    fppa = values["knee_fppa_peak_deg"]
    out: dict[str, list[dict]] = {t: [] for t in TASKS}
    # trial-to-trial noise of the repeated measures, from its own stream
    trng = np.random.default_rng([seed, 7, index, int(session)])
    cmj_lsi = values["cmj_propulsive_impulse_lsi_pct"]
    land_lsi = values["landing_peak_force_lsi_pct"]
    d_cmj_lsi = _centred(trng, 2, TRIAL_SD["cmj_propulsive_impulse_lsi_pct"], room=100 - cmj_lsi)
    d_land_lsi = _centred(trng, 2, TRIAL_SD["landing_peak_force_lsi_pct"], room=100 - land_lsi)
    d_fppa = {s: _centred(trng, 2, TRIAL_SD["knee_fppa_peak_deg"]) for s in ("left", "right")}

    def write(task, k, trial, **kw):
        if emg_plan is not None and task in ("cmj", "landing"):
            n, rate = len(trial.forces[0]), trial.analog_rate_hz
            if task == "cmj":
                x, truth = synth_emg.cmj_emg(
                    erng,
                    n=n,
                    rate_hz=rate,
                    plan=emg_plan,
                    onset_s=trial.truth["movement_onset_s"],
                    takeoff_s=trial.truth["takeoff_s"],
                )
            else:
                x, truth = synth_emg.landing_emg(
                    erng,
                    n=n,
                    rate_hz=rate,
                    plan=emg_plan,
                    touchdown_s=trial.truth["contact_s"],
                    week=values["_week"],
                    arm=subject["arm"],
                )
            trial.emg, trial.emg_labels = x, tuple(c[0] for c in synth_emg.CHANNELS)
            trial.truth = {**trial.truth, "emg": truth}
        path = c3d_path(root, lab, session, task, k)
        write_trial_c3d(path, trial, rng=rng, **kw)
        out.setdefault(task, []).append({"file": str(path.relative_to(root)), **trial.truth})

    for k in (1, 2):
        h = subject["jump_height_m"] * rng.normal(1.0, 0.03)
        write(
            "cmj",
            k,
            signals.cmj_trial(
                rng,
                mass_kg=mass,
                jump_height_m=h,
                lsi_pct=cmj_lsi + d_cmj_lsi[k - 1],
                weak_side=weak,
            ),
        )
    for k in (1, 2):
        write(
            "landing",
            k,
            kinematics.landing_trial(
                rng,
                mass_kg=mass,
                height_m=height,
                peak_force_bw=plan["landing_peak_bw"] * rng.normal(1.0, 0.04),
                lsi_pct=land_lsi + d_land_lsi[k - 1],
                weak_side=weak,
                fppa_left_deg=fppa - half + d_fppa["left"][k - 1],
                fppa_right_deg=fppa + half + d_fppa["right"][k - 1],
            ),
        )
    v = values["balance_mean_velocity_m_s"]
    for stance in ("left", "right"):
        vel = v * (1.05 if stance == weak else 0.95)
        write(
            f"balance_{stance}",
            1,
            signals.balance_trial(
                rng, mass_kg=mass, mean_velocity_m_s=vel, stance=stance, rate_hz=BALANCE_RATE_HZ
            ),
            low_noise=True,
        )
    cva = values["posture_cva_deg"]
    pro = 0.045 + 0.0015 * (55.0 - cva)
    write(
        "posture",
        1,
        kinematics.posture_trial(
            rng,
            height_m=height,
            cva_deg=cva,
            protraction_m=(pro - plan["protraction_side_m"], pro + plan["protraction_side_m"]),
            pelvic_tilt_deg=plan["pelvic_tilt_deg"],
        ),
    )
    lsi = values["cmj_propulsive_impulse_lsi_pct"]
    write(
        "sj",
        1,
        battery.sj_trial(
            rng,
            mass_kg=mass,
            jump_height_m=subject["jump_height_m"] * plan["sj_ratio"] * rng.normal(1.0, 0.03),
            lsi_pct=lsi,
            weak_side=weak,
        ),
    )
    write(
        "dj",
        1,
        battery.dj_trial(
            rng,
            mass_kg=mass,
            drop_height_m=0.30,
            contact_time_s=plan["dj_contact_s"] * rng.normal(1.0, 0.04),
            jump_height_m=subject["jump_height_m"] * plan["dj_ratio"] * rng.normal(1.0, 0.03),
            lsi_pct=lsi,
            weak_side=weak,
        ),
    )
    write(
        "imtp",
        1,
        battery.imtp_trial(
            rng,
            mass_kg=mass,
            peak_net_force_n=plan["imtp_net_bw"] * mass * signals.G * rng.normal(1.0, 0.03),
            tau_s=plan["imtp_tau_s"],
            lsi_pct=lsi,
            weak_side=weak,
        ),
    )
    # single-leg tests from their own stream, so every earlier file keeps its bytes; the
    # weak leg's height is the strong leg's x the session's LSI (the truth of both LSIs)
    srng = np.random.default_rng([seed, 6, index, int(session)])
    h_cmj = subject["jump_height_m"] * srng.uniform(*SINGLE_LEG_RATIO)
    h_hop = subject["jump_height_m"] * srng.uniform(*HOP_RATIO)
    ct = srng.uniform(*HOP_CONTACT_S)
    for side in ("left", "right"):
        f = lsi / 100.0 if side == weak else 1.0
        write(
            f"cmj_{side}",
            1,
            battery.single_leg_cmj_trial(srng, mass_kg=mass, jump_height_m=h_cmj * f, side=side),
        )
        write(
            f"hop_{side}",
            1,
            battery.hop_trial(
                srng, mass_kg=mass, jump_height_m=h_hop * f, contact_time_s=ct, side=side
            ),
        )
    if emg_plan is not None:
        for task in synth_emg.MVC_TASKS:
            x, truth = synth_emg.mvc_emg(erng, task=task, rate_hz=1000.0, plan=emg_plan)
            write(
                task,
                1,
                signals.Trial(
                    analog_rate_hz=1000.0,
                    point_rate_hz=200.0,
                    emg=x,
                    emg_labels=tuple(c[0] for c in synth_emg.CHANNELS),
                    truth={"emg": truth},
                ),
            )
    return out


def _subject_job(args) -> tuple[str, dict]:
    root, seed, index, subject, sessions, emg = args
    plan = _subject_plan(seed, index, subject)
    emg_plan = synth_emg.emg_plan(np.random.default_rng([seed, 4, index])) if emg else None
    files = {
        s: _session_trials(root, seed, index, subject, plan, s, vals, emg_plan)
        for s, vals in sessions
    }
    if emg_plan is not None:
        plan = {**plan, "emg": emg_plan}
    return subject["label"], {"plan": plan, "files": files}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return None if np.isnan(x) else float(x)
    if hasattr(x, "isoformat"):
        return x.strftime("%Y-%m-%d")
    return x


def _emg_truth() -> dict:
    """The EMG outcome's truth (:mod:`cxlab.synth.emg`): GMED landing activation, %MVC per
    week, of each arm against control (the demo spec's outcome names the feature)."""
    gm = synth_emg.GMED_EFFECT_PCT_PER_WEEK
    return {
        "gmed_landing_pct_mvc": {
            "feature": "emg_gmed_landing_100ms_mean_pct_mvc",
            "task": "landing",
            "unit": "%MVC",
            "per": "week",
            "control_slope": gm["control"],
            "effects": {a: gm[a] - gm["control"] for a in sorted(gm) if a != "control"},
        }
    }


def _ground_truth(
    truth: CohortTruth, per_subject: dict, bad_rows: list[dict], *, emg: bool = False
) -> dict:
    subjects = {}
    o = truth.outcomes
    by = {k: g for k, g in o.groupby("label", sort=False)}
    skip = {"label", "start_date"}
    for row in truth.subjects.to_dict("records"):
        g = by[row["label"]]
        sessions = {}
        for s, gs in g.groupby("session", sort=False):
            first = gs.iloc[0]
            sessions[s] = {
                "date": first["date"],
                "week": first["week"],
                "observed": first["observed"],
                "true": dict(zip(gs["outcome"], gs["true_value"], strict=True)),
                "observed_values": dict(zip(gs["outcome"], gs["observed_value"], strict=True)),
                "trials": per_subject[row["label"]]["files"].get(s, {}),
            }
        subjects[row["label"]] = {
            **{k: v for k, v in row.items() if k not in skip},
            "start_date": row["start_date"],
            "signal_plan": per_subject[row["label"]]["plan"],
            "sessions": sessions,
        }
    return _jsonable(
        {
            "seed": truth.seed,
            "n_subjects": truth.n_subjects,
            "n_sessions": truth.n_sessions,
            "confounded": truth.confounded,
            "outcomes": list(OUTCOMES),
            "units": truth.units,
            "effects": truth.effects,
            "control_slopes": truth.control_slopes,
            "moderators": truth.moderators,
            "propensity": truth.propensity,
            "trial_sd": TRIAL_SD,
            "rates_hz": {
                "cmj": 1000.0,
                "landing": 1000.0,
                "landing_markers": 200.0,
                "balance": BALANCE_RATE_HZ,
                "posture_markers": 200.0,
            },
            "bad_survey_rows": bad_rows,
            **({"emg_effects": _emg_truth()} if emg else {}),
            "subjects": subjects,
        }
    )


def _with_bar(results, total: int, progress: bool) -> dict:
    """``dict(results)`` in their order, advancing a bar per subject on a terminal's stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    out = {}
    with Progress(
        "synth",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not (progress and console.is_terminal),
        transient=True,
    ) as bar:
        tick = bar.add_task("synth", total=total)
        for label, result in results:
            out[label] = result
            bar.advance(tick)
    return out


def write_cohort(
    out: str | os.PathLike[str],
    /,
    *,
    n_subjects: int,
    n_sessions: int,
    seed: int,
    confounded: bool = False,
    jobs: int | None = None,
    progress: bool = True,
    emg: bool = False,
) -> Path:
    """Simulate a cohort and write it as a lab's export under ``out``.

    Parameters
    ----------
    out : path
        Destination folder; must not exist or be empty. Files are written to a
        temporary sibling and moved into place at the end, so a failure leaves nothing.
    n_subjects, n_sessions, seed, confounded
        As in :func:`cxlab.synth.truth.simulate_truth`.
    jobs : int, optional
        Worker processes (default: all cores). Output bytes do not depend on it: each
        subject's signals come from ``default_rng([seed, ., subject index, session])``.
    progress : bool
        A progress bar over subjects on stderr, shown only when stderr is a terminal.
        Output bytes do not depend on it.
    emg : bool
        Add six EMG channels (GMED, VL, BF, both sides) to the CMJ and landing files and
        three MVC trials (``mvc_gmed``, ``mvc_vl``, ``mvc_bf``) per session, with their
        truth in ``ground_truth.json`` (:mod:`cxlab.synth.emg`). Off by default: the other
        files are byte-identical either way.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ConfigError
        If ``out`` is a non-empty folder or a file, or ``jobs`` < 1.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            message(
                "already exists and is not an empty folder",
                field="out",
                value=str(out),
                fix="choose a new folder or delete it",
            )
        )
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(
            message(
                "must be a positive integer",
                field="jobs",
                value=jobs,
                fix="pass e.g. jobs=2 or leave it unset",
            )
        )
    truth = simulate_truth(n_subjects, n_sessions, seed=seed, confounded=confounded)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        w = truth.wide()
        w = w[w["observed"]]
        vals = {
            lab: [
                (r["session"], {**{o: r[o] for o in OUTCOMES}, "_week": r["week"]})
                for r in g.to_dict("records")
            ]
            for lab, g in w.groupby("label", sort=False)
        }
        jobs_args = [
            (str(tmp), int(seed), i, row, vals.get(row["label"], []), bool(emg))
            for i, row in enumerate(truth.subjects.to_dict("records"))
        ]
        n_workers = min(jobs or os.cpu_count() or 1, len(jobs_args))
        if n_workers <= 1:
            results = _with_bar(map(_subject_job, jobs_args), len(jobs_args), progress)
        else:
            with ProcessPoolExecutor(max_workers=n_workers) as pool:
                # map submits every job (forking the workers) before rich starts its thread
                results = _with_bar(
                    pool.map(_subject_job, jobs_args, chunksize=1), len(jobs_args), progress
                )
        rng = np.random.default_rng([seed, 3])
        ids = identities(truth, rng)
        surveys, bad = survey_table(truth, ids, rng)
        surveys.to_csv(tmp / "surveys.csv", index=False)
        interventions_table(truth, ids, rng).to_csv(tmp / "interventions.csv", index=False)
        strength_table(truth, rng).to_csv(tmp / "strength.csv", index=False)
        gt = _ground_truth(truth, results, bad, emg=bool(emg))
        (tmp / "ground_truth.json").write_text(json.dumps(gt, indent=1) + "\n")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def cohort_summary(out: str | os.PathLike[str], /) -> dict:
    """Counts for a written cohort: subjects, observed sessions, C3D files, bytes on disk."""
    out = Path(out)
    gt = json.loads((out / "ground_truth.json").read_text())
    n_ses = sum(s["observed"] for v in gt["subjects"].values() for s in v["sessions"].values())
    files = [p for p in out.rglob("*") if p.is_file()]
    return {
        "subjects": gt["n_subjects"],
        "sessions_observed": n_ses,
        "c3d_files": sum(p.suffix == ".c3d" for p in files),
        "bytes": sum(p.stat().st_size for p in files),
    }
