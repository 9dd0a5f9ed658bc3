"""``cxlab demo``: synthesise a cohort, ingest it, compute features, run the demo experiment.

The whole pipeline on data with a known answer: the report's findings can be
compared with ``ground_truth.json`` in the raw folder.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cxlab._check import ConfigError, message
from cxlab.store import Store

__all__ = ["DemoResult", "default_spec", "run_demo"]

STAGES = ("synth", "ingest", "features", "run", "report")


@dataclass
class DemoResult:
    """What :func:`run_demo` did.

    Attributes
    ----------
    run_dir, report : pathlib.Path
        The run directory and its ``report.html``.
    seconds : dict of str to float
        Wall-clock time per stage (``synth``, ``ingest``, ``features``, ``run``,
        ``report``), s; ``synth`` is ~0 when the raw files were reused.
    synthesised : bool
        False when the raw folder already held this seed's cohort.
    quarantined : pandas.DataFrame
        The store's ``quarantine`` rows (the malformed survey rows are expected).
    findings : pandas.DataFrame
        :func:`cxlab.report.findings` of the run.
    summary : list of str
        Five plain-language lines: the clear effects first (smallest adjusted
        p), then the rest.
    """

    run_dir: Path
    report: Path
    seconds: dict[str, float] = field(default_factory=dict)
    synthesised: bool = True
    quarantined: pd.DataFrame = field(default_factory=pd.DataFrame)
    findings: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: list[str] = field(default_factory=list)


def default_spec() -> Path:
    """``experiments/demo.toml``: in the current directory, else beside the source checkout."""
    here = Path("experiments/demo.toml")
    if here.exists():
        return here
    repo = Path(__file__).resolve().parents[2] / "experiments" / "demo.toml"
    if repo.exists():
        return repo
    raise ConfigError(
        message(
            "was not found",
            field="experiments/demo.toml",
            fix="run from the cxlab checkout or pass --spec",
        )
    )


def _same_cohort(raw: Path, *, n_subjects: int, n_sessions: int, seed: int) -> bool:
    gt = raw / "ground_truth.json"
    if not gt.exists():
        return False
    try:
        truth = json.loads(gt.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    meta = truth.get("meta", truth)
    return (
        meta.get("seed") == seed
        and meta.get("n_subjects") == n_subjects
        and meta.get("n_sessions") == n_sessions
        and _has_emg(truth)
    )


def _has_emg(truth: dict) -> bool:
    """The demo cohort carries EMG (its spec has an EMG outcome); older raw folders do not."""
    subjects = truth.get("subjects") or {}
    return bool(subjects) and all(
        "emg" in (s.get("signal_plan") or {}) for s in subjects.values() if isinstance(s, dict)
    )


def _cohort_of(raw: Path) -> str:
    """What a non-empty raw folder holds, in words, for the refusal message."""
    try:
        truth = json.loads((raw / "ground_truth.json").read_text(encoding="utf-8"))
        meta = truth.get("meta", truth)
        return (
            f"another cohort (seed {meta.get('seed')}, {meta.get('n_subjects')} subjects, "
            f"{meta.get('n_sessions')} sessions{'' if _has_emg(truth) else ', no EMG'})"
        )
    except (OSError, ValueError, AttributeError):
        return "other files"


def run_demo(
    raw: str | os.PathLike[str],
    store: str | os.PathLike[str],
    /,
    *,
    n_subjects: int = 40,
    n_sessions: int = 4,
    seed: int = 2026,
    spec: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "runs",
    jobs: int | None = None,
    progress: bool = True,
) -> DemoResult:
    """Run the whole pipeline on a synthetic cohort.

    Parameters
    ----------
    raw : path-like
        Folder for the synthetic lab export (C3D per subject/session/task,
        ``surveys.csv``, ``interventions.csv``, ``strength.csv``,
        ``ground_truth.json``); reused when it already holds the same seed's
        cohort of the same size.
    store : path-like
        The store to fill (incremental: unchanged files are skipped).
    n_subjects, n_sessions, seed : int
        Cohort size and seed of :func:`cxlab.synth.write_cohort`.
    spec : path-like, optional
        Experiment spec; default :func:`default_spec`. Its ``store`` is
        replaced by ``store``.
    out : path-like
        Parent of the run directories.
    jobs : int, optional
        Worker processes for synthesis, ingest and features (default: all cores).
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    DemoResult

    Raises
    ------
    ConfigError
        If ``raw`` is a file, or a non-empty folder without this seed's cohort of this size
        (the message names ``--raw`` and ``make clean-demo``).
    """
    from cxlab.experiments import run_experiment
    from cxlab.features.runner import extract_features
    from cxlab.ingest import ingest, ingest_interventions, ingest_strength, ingest_surveys
    from cxlab.report import findings

    raw, st = Path(raw), Store(store)
    spec = Path(spec) if spec is not None else default_spec()
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    synthesised = not _same_cohort(raw, n_subjects=n_subjects, n_sessions=n_sessions, seed=seed)
    if synthesised and raw.exists() and (not raw.is_dir() or any(raw.iterdir())):
        raise ConfigError(
            message(
                f"holds {_cohort_of(raw)}, not the cohort asked for (seed {seed}, {n_subjects} "
                f"subjects, {n_sessions} sessions)",
                field="--raw",
                value=str(raw),
                fix="run `make clean-demo` (removes data/raw/demo, data/processed/demo, runs/demo) "
                "or delete that folder, or pass --raw with a new folder",
            )
        )
    if synthesised:
        from cxlab.synth.files import write_cohort

        write_cohort(
            raw,
            n_subjects=n_subjects,
            n_sessions=n_sessions,
            seed=seed,
            jobs=jobs,
            progress=progress,
            emg=True,  # the demo spec's gluteus medius outcome
        )
    seconds["synth"] = time.perf_counter() - t

    t = time.perf_counter()
    subject_dirs = sorted(p for p in raw.glob("sub-*") if p.is_dir())
    if not subject_dirs:
        raise ConfigError(
            message(
                "holds no sub-* folders",
                file=raw,
                field="--raw",
                fix="delete it so the demo can synthesise the cohort again",
            )
        )
    ingest(subject_dirs, store=st, jobs=jobs, progress=progress)
    for fn, name in (
        (ingest_surveys, "surveys.csv"),
        (ingest_interventions, "interventions.csv"),
        (ingest_strength, "strength.csv"),
    ):
        if (raw / name).exists():
            fn([raw / name], store=st)
    seconds["ingest"] = time.perf_counter() - t

    t = time.perf_counter()
    extract_features(st, jobs=jobs, progress=progress)
    seconds["features"] = time.perf_counter() - t

    t = time.perf_counter()
    run_dir = Path(run_experiment(spec, out=out, store=st.path))  # a Run; renders the report last
    total = time.perf_counter() - t
    laps = dict(
        line.split("\t") for line in (run_dir / "run.log").read_text(encoding="utf-8").splitlines()
    )
    report_s = float(laps["report"].split()[0])
    seconds["run"] = total - report_s
    seconds["report"] = report_s
    report = run_dir / "report.html"

    effects = pd.read_parquet(run_dir / "effects.parquet")
    man = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    found = findings(
        effects,
        control=man["spec"]["control"],
        time_unit=man["spec"]["time"],
        alpha=man["spec"]["alpha"],
    )
    return DemoResult(
        run_dir=run_dir,
        report=report,
        seconds=seconds,
        synthesised=synthesised,
        quarantined=st.table("quarantine"),
        findings=found,
        summary=summary_lines(found),
    )


def summary_lines(found: pd.DataFrame, /, *, n: int = 5) -> list[str]:
    """The ``n`` findings to lead with: clear ones by adjusted p, then the least uncertain."""
    if found.empty:
        return []
    order = found.assign(clear=found["verdict"].isin(["better", "worse"])).sort_values(
        ["clear", "p_adj", "outcome", "arm"], ascending=[False, True, True, True], kind="stable"
    )
    return order["sentence"].head(n).tolist()
