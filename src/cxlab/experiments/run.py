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
from dataclasses import dataclass, field, fields
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
from cxlab.experiments.moderation import moderation_table
from cxlab.experiments.spec import read_spec
from cxlab.store import Store, remove_stale_temporaries, write_parquet

__all__ = ["INPUT_TABLES", "Run", "input_digests", "run_experiment"]

#: the store tables a run reads; their Parquet parts' sha256 enter the run hash
INPUT_TABLES = (
    "scores",
    "interventions",
    "features",
    "recordings",
    "quarantine",
    "strength",
    "sessions",
    "participants",
    "retest",
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


@dataclass(frozen=True, eq=False)
class Run:
    """A finished run: where it is and what it found.

    Attributes
    ----------
    path : pathlib.Path
        The run directory ``<out>/<name>/<run_id>/`` (see :func:`run_experiment`).
    run_id : str
        12 hex digits: sha256 of the canonical spec and of every input part (also
        ``path.name``).
    experiment : str
        The spec's name (also ``path.parent.name``).
    effects : pandas.DataFrame
        The effects table as written to ``effects.parquet``.
    engines : dict of str to str
        Outcome → which code fitted its mixed model (``"reml"``, cxlab's fast profiled
        REML, or ``"statsmodels"``); empty for GEE, AIPW, pre/post and crossover designs.
    warnings : tuple of str
        The run's warnings, as in ``manifest.json``.
    methods : str
        The methods paragraph.

    Notes
    -----
    A ``Run`` is also path-like (``os.fspath(run)``, ``run / "report.html"``) and answers
    :class:`pathlib.Path` attributes (``run.name``, ``run.parent``, ``run.rglob(...)``) from
    ``path``, so code written when :func:`run_experiment` returned the directory keeps
    working. Two runs are equal when their directories and run ids are.
    """

    path: Path
    run_id: str
    experiment: str
    effects: pd.DataFrame = field(repr=False)
    engines: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    methods: str = field(default="", repr=False)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        return self.path / other

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Run):
            return (self.path, self.run_id) == (other.path, other.run_id)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.path, self.run_id))

    def __getattr__(self, name: str):
        # only reached for names a Run lacks: answer Path attributes from ``path``
        if name.startswith("__") or name in {f.name for f in fields(Run)}:
            raise AttributeError(name)
        return getattr(self.path, name)


def input_digests(store: Store, /) -> dict[str, list[dict[str, str]]]:
    """sha256 of every Parquet part of the input tables, by table, in a fixed order.

    Returns
    -------
    dict
        ``{table: [{"part": <path relative to the store>, "sha256": <hex>}, ...]}``. The
        sheet tables added later (``participants``, ``retest``) appear only when the store has
        them, so a store without them keeps the run hash it had.
    """
    out = {
        name: [{"part": d.part, "sha256": d.sha256} for d in store.file_digests(name)]
        for name in INPUT_TABLES
    }
    return {k: v for k, v in out.items() if v or k not in _LATER_TABLES}


_LATER_TABLES = ("participants", "retest")


def _git_info() -> dict[str, object]:
    """The git commit of cxlab's own source: ``commit``, ``dirty`` and, when unknown, why.

    The repository is the one whose work tree holds the imported package *and tracks it*
    (an editable install from a clone). A package installed into a virtual environment that
    happens to lie inside some other repository is not that repository's code, so then
    ``commit`` is None with a ``commit_note``; so it is without git or outside any checkout.
    The note names no path (manifests are shared).
    """
    pkg = Path(__file__).resolve().parents[1]  # the cxlab package directory

    def git(*args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        return subprocess.run(
            ["git", "-C", str(pkg), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
        ).stdout

    def unknown(note: str) -> dict[str, object]:
        return {"commit": None, "dirty": None, "commit_note": note}

    try:
        git("rev-parse", "--show-toplevel")
    except OSError:
        return unknown("git is not installed")
    except subprocess.SubprocessError:
        return unknown("the installed cxlab package is not in a git checkout")
    try:
        git("ls-files", "--error-unmatch", "--", "__init__.py")
    except (OSError, subprocess.SubprocessError):
        return unknown(
            "the git repository around the installed cxlab package does not track it "
            "(not an editable install from a cxlab clone)"
        )
    try:
        commit = git("rev-parse", "--verify", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return unknown("the cxlab repository has no commit yet")
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
) -> Run:
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
    Run
        Its ``path`` is ``<out>/<name>/<hash>/`` where ``hash`` (12 hex) is the sha256 of the
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
    if not st.exists():
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
            reliability = reliability_table(
                trial_table(st, spec, base), spec, analysis, retest=st.table("retest")
            )
            errors = measurement_errors(reliability)
            responders = responders_table(analysis, spec, errors=errors)
            participants = participants_table(analysis, spec, errors=errors)
            t = lap("responders and reliability", t)
            moderation = moderation_table(
                analysis, spec, participants=st.table("participants") if spec.moderators else None
            )
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
                **({"moderation": moderation} if spec.moderators else {}),
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
            "engines": dict(sorted(fitted.engines.items())),
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
    return Run(
        final,
        run_id,
        spec.name,
        effects,
        dict(fitted.engines),
        tuple(run_warnings),
        methods_text,
    )


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
