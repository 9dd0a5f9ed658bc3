"""Run an experiment: a spec + a store -> ``runs/<name>/<hash>/`` with a manifest and a report."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import pyarrow as pa

from cxlab._check import ConfigError, CxlabWarning, message
from cxlab._hashing import sha256_of
from cxlab.experiments.analysis import (
    analysis_table,
    asymmetry_table,
    cohort_table,
    flow_table,
    quality_table,
    trial_table,
)
from cxlab.experiments.curves import curve_input_digests, curve_tables
from cxlab.experiments.fitting import (
    effects_table,
    measurement_errors,
    participants_table,
    reliability_table,
    resolve_mcids,
    responders_table,
)
from cxlab.experiments.spec import read_spec
from cxlab.store import Store, remove_stale_temporaries, write_parquet

__all__ = ["INPUT_TABLES", "input_digests", "run_experiment"]

#: the store tables a run reads; their Parquet parts' sha256 enter the run hash
INPUT_TABLES = (
    "scores",
    "interventions",
    "features",
    "recordings",
    "quarantine",
    "strength",
    "sessions",
)
_PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "statsmodels",
    "duckdb",
    "matplotlib",
    "seaborn",
    "jinja2",
)


def input_digests(store: Store, /) -> dict[str, list[dict[str, str]]]:
    """sha256 of every Parquet part of the input tables, by table, in a fixed order.

    Returns
    -------
    dict
        ``{table: [{"part": <path relative to the store>, "sha256": <hex>}, ...]}``.
    """
    return {
        name: [
            {"part": f.relative_to(store.path).as_posix(), "sha256": sha256_of(f)}
            for f in store.files(name)
        ]
        for name in INPUT_TABLES
    }


def _git_info() -> dict[str, object]:
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "src"],
            check=True,
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def _versions() -> dict[str, str]:
    out = {}
    for p in _PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:  # pragma: no cover
            out[p] = "not installed"
    return out


def _write_table(df: pd.DataFrame, path: Path) -> None:
    write_parquet(pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False), path)


def run_experiment(
    spec_path: str | os.PathLike[str],
    /,
    *,
    out: str | os.PathLike[str] = "runs",
    store: str | os.PathLike[str] | None = None,
) -> Path:
    """Run the experiment described by a TOML spec and write its run directory.

    Parameters
    ----------
    spec_path : path-like
        The experiment spec (see :func:`cxlab.experiments.read_spec`).
    out : path-like
        Parent of the run directories (relative to the current directory).
    store : path-like, optional
        Override the spec's store.

    Returns
    -------
    pathlib.Path
        ``<out>/<name>/<hash>/`` where ``hash`` (12 hex) is the sha256 of the
        canonical spec and of every input table part. It holds
        ``manifest.json``, ``analysis.parquet``, ``effects.parquet``,
        ``responders.parquet``, ``participants.parquet`` (per participant ×
        outcome), ``marginal_means.parquet``, ``contrasts.parquet``,
        ``variances.parquet``, ``reliability.parquet``, ``asymmetry.parquet``,
        ``cohort.parquet``, ``quality.parquet``, ``screening.parquet``,
        with ``[curves.*]`` outcomes ``spm.parquet``, ``spm_clusters.parquet``,
        ``spm_curves.parquet`` and ``curves.parquet``
        (:func:`cxlab.experiments.curves.curve_tables`),
        ``figures/``, ``report.html`` and ``run.log`` (wall-clock timings, the
        only file that differs between two runs of the same inputs).

    Raises
    ------
    ConfigError
        If the spec is invalid, the store is missing or holds no usable rows.

    Notes
    -----
    The directory is built beside its destination and renamed into place, so
    an interrupted run never leaves a half-written run directory; re-running
    replaces it with identical bytes.
    """
    t0 = time.perf_counter()
    timings: list[tuple[str, float]] = []

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        timings.append((stage, now - since))
        return now

    spec = read_spec(spec_path, store=store)
    st = Store(spec.store)
    # --store is a command-line path (relative to the current directory); the spec's
    # store is relative to the spec file, so say which one is wrong
    where = (
        {"file": None, "field": "--store"}
        if store is not None
        else {"file": spec.path, "field": "store"}
    )
    if not spec.store.is_dir():
        raise ConfigError(
            message(
                "does not exist",
                **where,
                value=str(spec.store),
                fix="build it with `cxlab ingest` or correct the path "
                + (
                    "(relative to the current directory)"
                    if store is not None
                    else "(relative to the spec file)"
                ),
            )
        )
    inputs = input_digests(st)
    if spec.curves:  # the curves enter the hash only of runs that test them
        inputs["curves"] = curve_input_digests(st)
    if not inputs["interventions"] and spec.design != "prepost":
        raise ConfigError(
            message(
                "has no interventions table",
                **where,
                value=str(spec.store),
                fix="ingest the programme log first (cxlab "
                "ingest-interventions), or declare design = "
                '"prepost" for a single group',
            )
        )
    if not inputs["scores"] and not inputs["features"]:
        raise ConfigError(
            message(
                "has neither scores nor features",
                **where,
                value=str(spec.store),
                fix="ingest surveys (cxlab ingest-survey) or recordings "
                "(cxlab ingest, then cxlab features)",
            )
        )
    canonical = spec.canonical()
    blob = json.dumps({"spec": canonical, "inputs": inputs}, sort_keys=True).encode()
    run_id = hashlib.sha256(blob).hexdigest()[:12]
    parent = Path(out) / spec.name
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(parent, recursive=False)  # folders of killed runs
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-{run_id}-", dir=parent))
    tmp.chmod(0o755)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = lap("read spec and hash inputs", t0)
            analysis = analysis_table(st, spec)
            if analysis.empty:
                raise ConfigError(
                    message(
                        "selects no rows",
                        file=spec.path,
                        field="where" if spec.where else "outcomes",
                        value=spec.where or [o.name for o in spec.outcomes],
                        fix="check the outcome names and filter against the store (cxlab sql)",
                    )
                )
            t = lap("analysis table", t)
            spec = _time_from_sessions(analysis, spec)
            spec = resolve_mcids(analysis, spec)
            fitted = effects_table(analysis, spec)
            effects, methods_text = fitted.table, fitted.methods
            t = lap("effects", t)
            base = analysis[analysis["session_index"] == 0][
                ["subject_id", "session"]
            ].drop_duplicates()
            reliability = reliability_table(trial_table(st, spec, base), spec, analysis)
            errors = measurement_errors(reliability)
            responders = responders_table(analysis, spec, errors=errors)
            participants = participants_table(analysis, spec, errors=errors)
            t = lap("responders and reliability", t)
            keep = analysis[["subject_id", "session", "session_index"]].drop_duplicates()
            asym = asymmetry_table(st, keep)
            screening = _screening(st, analysis)
            tables = {
                "analysis": analysis,
                "effects": effects,
                "responders": responders,
                "participants": participants,
                "marginal_means": fitted.means,
                "contrasts": fitted.pairs,
                "variances": fitted.variances,
                "reliability": reliability,
                "asymmetry": asym,
                "cohort": cohort_table(analysis),
                "quality": quality_table(st),
                "flow": flow_table(st, analysis, participants),
                "screening": screening,
                **curve_tables(st, analysis, spec),  # SPM of [curves.*] (docs/curves.md)
            }
            for name, df in tables.items():
                _write_table(df, tmp / f"{name}.parquet")
            t = lap("write tables", t)
        run_warnings = sorted(
            {
                str(w.message)
                for w in caught
                if issubclass(w.category, (CxlabWarning, UserWarning))
                and not issubclass(w.category, DeprecationWarning)
            }
        )
        from cxlab import __version__

        manifest = {
            "run_id": run_id,
            "name": spec.name,
            "title": spec.title,
            "seed": spec.seed,
            "spec": {**canonical, "time": spec.time},
            "spec_file": Path(spec_path).name,
            "store": spec.store_text,
            "inputs": inputs,
            "cxlab": {"version": __version__, **_git_info()},
            "python": platform.python_version(),
            "packages": _versions(),
            "warnings": run_warnings,
            "methods": methods_text,
            "mcid": {o.name: o.mcid for o in spec.outcomes},
            "outputs": {f.name: sha256_of(f) for f in sorted(tmp.glob("*.parquet"))},
        }
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        from cxlab.report import render_report

        render_report(tmp)
        t = lap("report", t)
        lap("total", t0)
        (tmp / "run.log").write_text(
            "".join(f"{stage}\t{sec:.3f} s\n" for stage, sec in timings), encoding="utf-8"
        )
        final = parent / run_id
        _swap_in(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return final


_RENAME_EXCHANGE = 2  # linux/fs.h


def _swap_in(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final`` so that ``final`` is at every moment either the
    whole old run or the whole new one, then delete the old one.

    On Linux one ``renameat2(RENAME_EXCHANGE)`` swaps the two folders atomically
    (``man 2 rename``). Elsewhere the old folder is first renamed aside to
    ``.old-<pid>-...`` (so ``final`` is briefly absent, never half-deleted). The old
    copy is removed last; if that is interrupted, the next run removes it.
    """
    if not final.exists():
        os.replace(new, final)
        return
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        at_fdcwd = -100
        if (
            hasattr(libc, "renameat2")
            and libc.renameat2(
                at_fdcwd, os.fsencode(new), at_fdcwd, os.fsencode(final), _RENAME_EXCHANGE
            )
            == 0
        ):
            shutil.rmtree(new)  # ``new`` now holds the old run
            return
    aside = final.with_name(f".old-{os.getpid()}-{final.name}")
    os.replace(final, aside)
    os.replace(new, final)
    shutil.rmtree(aside)


def _time_from_sessions(analysis: pd.DataFrame, spec):
    """``time = "week"`` with no dated session at all: use the session index, and say so."""
    from dataclasses import replace

    from cxlab._check import warn

    if spec.time == "week" and analysis["week"].isna().all():
        warn(
            "no session has a date (no sessions sheet, {date} in the path, recording date or "
            "survey date), so time is the session index instead of weeks",
            field="model.time",
            value="week",
            fix='ingest a sessions sheet (cxlab ingest-sessions) or set time = "session_index"',
        )
        return replace(spec, time="session_index")
    return spec


def _screening(store: Store, analysis: pd.DataFrame) -> pd.DataFrame:
    """Prevalence of each screening finding per arm at baseline and follow-up.

    Uses :func:`cxlab.screen.screen` with the shipped rules on the analysed
    subjects' features, scores and strength, then
    :func:`cxlab.screen.screen_prevalence`.
    """
    from cxlab.screen import screen, screen_prevalence

    arms = analysis[["subject_id", "arm"]].drop_duplicates()
    keep = [("subject_id", "in", sorted(arms["subject_id"]))]
    features = store.table("features", filters=keep)
    scores = store.table("scores", filters=keep)
    strength = store.table("strength", filters=keep)
    screened = screen(features, scores, strength=strength if len(strength) else None)
    return screen_prevalence(screened, arms=arms).reset_index(drop=True)


if __name__ == "__main__":  # pragma: no cover
    print(run_experiment(sys.argv[1]))
