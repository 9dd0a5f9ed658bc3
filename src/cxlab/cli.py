"""The ``cxlab`` command line: a thin Typer layer over the library.

Each command parses its options, calls one library function and prints the
result. A :class:`~cxlab._check.CxlabError` becomes one line on stderr and
exit code 1 (3 when some inputs were rejected but the good ones landed);
tracebacks only with ``--debug``.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cxlab._check import CxlabError

app = typer.Typer(
    name="cxlab",
    help="cxlab: corrective-exercise research workbench (ingest, features, models, reports).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
store_app = typer.Typer(help="Inspect a store.", no_args_is_help=True)
app.add_typer(store_app, name="store", rich_help_panel="Inspect")

console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

EXIT_ERROR = 1
EXIT_REJECTED = 3


def store_location(text: str) -> Path | str:
    """A ``--store`` value: a directory, or an fsspec URL kept as text (``s3://b/prefix``;
    ``Path`` would fold its ``//``)."""
    from cxlab.store import is_url

    return text if is_url(text) else Path(text)


def local_folder(text: str) -> Path:
    """A folder option that must be local (``cxlab demo``): an object-storage URL is
    refused, not folded into a local folder named ``s3:``."""
    from cxlab.store import is_url

    if is_url(text):
        raise typer.BadParameter(
            f"{text!r} is an object-storage URL; cxlab demo writes local folders only. "
            "Give a local folder, or run cxlab ingest, features and run with --store URL "
            "(they take object storage)."
        )
    return Path(text)


_STORE_HELP = "Store directory, or an object-storage URL such as s3://bucket/prefix."
StoreOpt = Annotated[Path, typer.Option("--store", help=_STORE_HELP, parser=store_location)]
JobsOpt = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Worker processes (default: all cores)."),
]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="CXLAB_SCHEDULER",
        show_envvar=True,
        help="Run the per-file work on a Dask cluster: 'local' (a LocalCluster of --jobs workers) "
        "or a scheduler address such as tcp://HOST:8786; the store must be on a filesystem the "
        "workers share. Needs cxlab[dask].",
    ),
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    """cxlab: corrective-exercise research workbench."""
    _state["debug"] = debug
    if not debug:
        warnings.showwarning = _show_warning


_python_showwarning = warnings.showwarning


def _show_warning(msg, category, filename, lineno, file=None, line=None) -> None:
    """Print a CxlabWarning as one plain line (not Python's file:line: Category: source)."""
    from cxlab._check import CxlabWarning

    if not issubclass(category, CxlabWarning):
        return _python_showwarning(msg, category, filename, lineno, file, line)
    err_console.print(f"[yellow]warning:[/] {escape(str(msg))}", highlight=False, soft_wrap=True)


def handled(fn):
    """Turn library errors into one readable line and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CxlabError as e:
            if _state["debug"]:
                raise
            err_console.print(
                f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_ERROR) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # `cxlab sql ... | head`: the reader left; stop quietly
            import os

            try:  # so that flushing stdout at exit does not raise again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            raise typer.Exit(0) from None
        except OSError as e:  # a path that is a file, a full disk, no permission
            if _state["debug"]:
                raise
            where = f"{e.filename}: " if e.filename else ""
            err_console.print(
                f"[bold red]error:[/] {escape(where + (e.strerror or str(e)))}; "
                "check the paths and their permissions",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_ERROR) from None
        except Exception as e:  # a bug, not a user error: one line, traceback with --debug
            if _state["debug"]:
                raise
            err_console.print(
                f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))}",
                highlight=False,
                soft_wrap=True,
            )
            err_console.print(
                "this is a cxlab bug; re-run with `cxlab --debug ...` for the "
                "traceback and report it",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper


def writable_store(path: Path) -> Path:
    """Refuse a store path that exists but is not a directory (it is created otherwise)."""
    from cxlab._check import ConfigError, message
    from cxlab.store import is_url

    if is_url(path):
        return path
    if Path(path).exists() and not Path(path).is_dir():
        raise ConfigError(
            message(
                "is not a directory",
                field="store",
                value=str(path),
                fix="give a new or existing store directory",
            )
        )
    return path


def existing_store(path: Path) -> Path:
    """Refuse to read a store that does not exist (a typo would read as an empty store)."""
    from cxlab._check import ConfigError, message
    from cxlab.store import Store, is_url

    if is_url(path):
        if not Store(path).exists():
            raise ConfigError(
                message(
                    "holds no store (no catalog at that URL)",
                    field="store",
                    value=Store(path).url,
                    fix="give the URL that cxlab ingest wrote to",
                )
            )
        return path
    if not Path(path).is_dir():
        problem = "is not a directory" if Path(path).exists() else "does not exist"
        raise ConfigError(
            message(
                problem,
                field="store",
                value=str(path),
                fix="give the directory written by cxlab ingest",
            )
        )
    return path


def print_frame(df, *, title: str | None = None, csv: bool = False, max_rows: int = 50) -> None:
    """Print a DataFrame as a rich table (or CSV on stdout for machines)."""
    if csv:
        df.to_csv(sys.stdout, index=False)
        return
    import pandas as pd

    table = Table(title=title, show_lines=False)
    shown = df.head(max_rows)
    cells = [["" if _isna(v) else _fmt(v) for v in row] for row in shown.itertuples(index=False)]
    for i, c in enumerate(df.columns):
        if pd.api.types.is_numeric_dtype(df[c]):  # a number folded over two lines misreads
            width = max([len(str(c)), *(len(r[i]) for r in cells)])
            table.add_column(str(c), justify="right", no_wrap=True, min_width=width)
        else:
            table.add_column(str(c), overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)
    if len(df) > max_rows:
        console.print(f"... {len(df) - max_rows} more rows (use --csv for all)")


def _isna(v) -> bool:
    try:
        return bool(v != v) or v is None
    except (TypeError, ValueError):
        return False


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@store_app.command("info")
@handled
def store_info(
    path: Annotated[Path, typer.Argument(help=_STORE_HELP, parser=store_location)],
    csv: CsvOpt = False,
) -> None:
    """List the store's tables with rows, parts, subjects and size on disk."""
    from cxlab.store import Store

    info = Store(existing_store(path)).info()
    if info.empty and not csv:
        console.print(f"{path}: empty store (no tables written yet)")
        return
    info["size"] = info.pop("size_bytes").map(_human_bytes)
    print_frame(info, title=f"store {path}", csv=csv)


@store_app.command("schema")
@handled
def store_schema(
    table: Annotated[str | None, typer.Argument(help="One table (default: all).")] = None,
    csv: CsvOpt = False,
) -> None:
    """Show each table's columns with type, unit, constraints and meaning."""
    from cxlab.schemas import TABLES, schema_frame

    names = [table] if table else list(TABLES)
    print_frame(schema_frame(names), csv=csv, max_rows=10_000)


@app.command("sql", rich_help_panel="Inspect")
@handled
def sql(
    path: Annotated[Path, typer.Argument(help=_STORE_HELP, parser=store_location)],
    query: Annotated[str, typer.Argument(help="SQL over the store's tables (DuckDB dialect).")],
    csv: CsvOpt = False,
) -> None:
    """Run a DuckDB SQL query over the store; each table is a view."""
    import duckdb

    from cxlab.store import Store

    try:
        df = Store(existing_store(path)).sql(query)
    except duckdb.Error as e:  # a bad query is a user error here
        fix = (
            "SQL reads only the store's tables (docs/store.md)"
            if isinstance(e, duckdb.PermissionException)
            else f"check table and column names with `cxlab store info {path}`"
        )
        raise CxlabError(f"SQL failed: {str(e).splitlines()[0]}; {fix}") from None
    print_frame(df, csv=csv)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


SubjectColOpt = Annotated[
    str | None,
    typer.Option(
        "--subject-column",
        help="Header of the subject label column (default: subject, "
        "participant, participant_id, subject_id, id, participant_label or subject_label).",
    ),
]
DropColOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--drop-column",
        help="Another identifier column to drop (repeatable); adds to "
        "cxlab.deid.IDENTIFIER_COLUMNS.",
    ),
]
DateFmtOpt = Annotated[
    str | None,
    typer.Option(
        "--date-format", help="strptime format of dates, e.g. %d/%m/%Y (default YYYY-MM-DD)."
    ),
]
SheetFiles = Annotated[
    list[Path], typer.Argument(help="CSV or XLSX files.", exists=True, dir_okay=False)
]


def _report_ingest(result) -> None:
    """Print rows written and every rejection; exit 3 if anything was rejected."""
    written = ", ".join(f"{n} {t}" for t, n in result.rows.items())
    console.print(
        f"{result.files} file(s): wrote {written} rows; rejected {result.n_rejected}",
        highlight=False,
    )
    if result.n_rejected:
        err_console.print(
            "\n".join(result.rejected["reason"]), highlight=False, soft_wrap=True, markup=False
        )
        raise typer.Exit(EXIT_REJECTED)


def _ingest_sheets(name: str, files, store, drop_column, /, **options) -> None:
    """Every sheet command: call ``cxlab.ingest.<name>`` on a writable store, then report."""
    import cxlab.ingest

    fn = getattr(cxlab.ingest, name)
    _report_ingest(
        fn(files, store=writable_store(store), drop_columns=drop_column or (), **options)
    )


@app.command("ingest", rich_help_panel="1. Ingest")
@handled
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Recording files and/or folders.")],
    store: StoreOpt,
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern",
            help="Path pattern with {subject} {session} {task} {trial} and *, e.g. "
            "'{subject}/{session}/{task}_{trial}.*' "
            "(default: BIDS-like sub-01_ses-1_task-cmj_run-1).",
        ),
    ] = None,
    jobs: JobsOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-ingest files already in the store.")
    ] = False,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            help="TOML mapping of force-plate CSV columns (default: time, left_fz, "
            "right_fz in s and N); see docs/ingest.md.",
        ),
    ] = None,
    show_paths: Annotated[
        bool,
        typer.Option(
            "--show-paths",
            help="Name files in the summary as found on disk (default: as stored, "
            "subject labels pseudonymised).",
        ),
    ] = False,
    scheduler: SchedulerOpt = None,
) -> None:
    """Ingest C3D, TRC, MOT/STO and force-plate CSV files into the store.

    Exit 3 if any file was rejected (listed in the quarantine table)."""
    from cxlab.ingest import ingest

    report = ingest(
        paths,
        store=writable_store(store),
        pattern=pattern,
        jobs=jobs,
        force=force,
        mapping=mapping,
        scheduler=scheduler,
    )
    console.print(
        report.summary(show_paths=show_paths), highlight=False, markup=False, soft_wrap=True
    )
    if not report.outcomes:
        from cxlab._check import message

        raise CxlabError(
            message(
                "no recording files (.c3d .trc .mot .sto .csv .txt) found",
                field="PATHS",
                value=" ".join(map(str, paths)),
                fix="check the paths (folders are searched recursively)",
            )
        )
    if report.failed:
        raise typer.Exit(EXIT_REJECTED)


@app.command("features", rich_help_panel="2. Analyse")
@handled
def features_cmd(
    store: StoreOpt,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            exists=True,
            dir_okay=False,
            help="TOML overriding the shipped features.toml (tasks, plates, markers, filters).",
        ),
    ] = None,
    jobs: JobsOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Recompute recordings that already have features.")
    ] = False,
    scheduler: SchedulerOpt = None,
) -> None:
    """Compute features for every recording in the store (long `features` table).

    Exit 3 if a recording could not be used (reason in the quarantine table)."""
    from cxlab.features.runner import extract_features

    r = extract_features(
        existing_store(store),
        config=config,
        jobs=jobs,
        force=force,
        progress=sys.stderr.isatty(),
        scheduler=scheduler,
    )
    console.print(
        f"{r.n_recordings} recording(s): {r.n_processed} processed, "
        f"{r.n_up_to_date} up to date, {r.n_no_functions} without feature functions; "
        f"wrote {r.n_rows} feature rows; quarantined {r.n_quarantined} "
        f"({r.elapsed_s:.1f} s)",
        highlight=False,
        soft_wrap=True,
    )
    if r.n_no_functions:
        err_console.print(
            f"note: {r.n_no_functions} recording(s) have an empty task or one without feature "
            f'functions; see their tasks with `cxlab sql {store} "SELECT task, count(*) FROM '
            f'recordings GROUP BY task"`, name tasks at ingest (--pattern with {{task}}) or '
            "configure them with --config (docs/features.md)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if r.n_quarantined:
        q = r.quarantine  # name the (pseudonymised) file: a recording id alone is not findable
        lines = [
            f"{p}: {why}" if isinstance(p, str) and p else why
            for p, why in zip(q["source_path"], q["reason"], strict=True)
        ]
        err_console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED)


@app.command("ingest-survey", rich_help_panel="1. Ingest")
@handled
def ingest_survey(
    files: SheetFiles,
    store: StoreOpt,
    instrument: Annotated[
        str | None,
        typer.Option(
            "--instrument",
            help="Read only this instrument (pain_nrs, pain_vas, odi, tsk17 or "
            "one declared in --spec).",
        ),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="TOML declaring more instruments and/or drop_columns (see docs/surveys.md).",
        ),
    ] = None,
    subject_column: SubjectColOpt = None,
    drop_column: DropColOpt = None,
    date_format: DateFmtOpt = None,
) -> None:
    """Ingest questionnaires (wide or long CSV/XLSX) into the surveys and scores tables."""
    _ingest_sheets(
        "ingest_surveys",
        files,
        store,
        drop_column,
        instrument=instrument,
        spec=spec,
        subject_column=subject_column,
        date_format=date_format,
    )


_SHEET_COMMANDS = (  # command, cxlab.ingest function, help, whether it reads dates
    (
        "ingest-interventions",
        "ingest_interventions",
        "Ingest programme logs (arm, dates, adherence, exercises) into the store.\n\n"
        "Programme rows go to interventions, exercise rows to exercise_log.",
        True,
    ),
    (
        "ingest-strength",
        "ingest_strength",
        "Ingest dynamometer peak torques (N·m or ft·lbf) into the strength table (N·m).",
        False,
    ),
    (
        "ingest-sessions",
        "ingest_sessions",
        "Ingest a sessions sheet (subject, session, date, session_index) into sessions.\n\n"
        "Its dates and order take precedence over those of recordings and surveys.",
        True,
    ),
    (
        "ingest-participants",
        "ingest_participants",
        "Ingest a participants sheet (sex, sport, height_m, mass_kg, dominant_side, age).\n\n"
        "Names and e-mails are dropped; a birth date becomes the age at the first dated session.",
        True,
    ),
    (
        "ingest-retest",
        "ingest_retest",
        "Ingest a test-retest sheet (participant, outcome, value_1, value_2, interval_days).\n\n"
        "Runs take each outcome's between-session MDC95 from it.",
        False,
    ),
)


def _sheet_command(command: str, name: str, doc: str, dated: bool) -> None:
    """Register ``cxlab <command>``: the sheet options, then ``cxlab.ingest.<name>``.

    A sheet without dates gets no ``--date-format`` (it is left out of the signature
    Typer reads)."""

    def ingest_sheet(
        files: SheetFiles,
        store: StoreOpt,
        subject_column: SubjectColOpt = None,
        drop_column: DropColOpt = None,
        date_format: DateFmtOpt = None,
    ) -> None:
        dates = {"date_format": date_format} if dated else {}
        _ingest_sheets(name, files, store, drop_column, subject_column=subject_column, **dates)

    ingest_sheet.__name__ = ingest_sheet.__qualname__ = f"{name}_cmd"
    ingest_sheet.__doc__ = doc
    if not dated:
        sig = inspect.signature(ingest_sheet, eval_str=True)  # Typer reads evaluated types
        params = [p for p in sig.parameters.values() if p.name != "date_format"]
        ingest_sheet.__signature__ = sig.replace(parameters=params)
    app.command(command, rich_help_panel="1. Ingest")(handled(ingest_sheet))


for _command in _SHEET_COMMANDS:
    _sheet_command(*_command)


@app.command("run", rich_help_panel="3. Experiments and reports")
@handled
def run_cmd(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (TOML).")],
    out: Annotated[Path, typer.Option("--out", help="Parent of run directories.")] = Path("runs"),
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help="Use this store (or URL) instead of the spec's.", parser=store_location
        ),
    ] = None,
) -> None:
    """Run an experiment: fit effects, responders, reliability; write runs/NAME/HASH/."""
    from cxlab.experiments import run_experiment

    run = Path(run_experiment(spec, out=out, store=store))  # a Run is path-like: its directory
    console.print(f"run: {run}\nreport: {run / 'report.html'}", highlight=False, soft_wrap=True)
    _print_run_warnings(run)


@app.command("power", rich_help_panel="3. Experiments and reports")
@handled
def power_cmd(
    spec: Annotated[Path, typer.Argument(help="Experiment spec (TOML) with a \\[power] section.")],
    store: Annotated[
        Path | None,
        typer.Option("--store", help="Pilot store instead of the spec's (for estimates)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the table: .csv or .json.")
    ] = None,
    jobs: JobsOpt = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print the table as CSV.")] = False,
) -> None:
    """Simulated power per outcome, arm and sample size of the trial the spec plans."""
    from cxlab.experiments.power import power_analysis, write_power

    with _sim_bar(enabled=sys.stderr.isatty() and not csv) as advance:
        res = power_analysis(spec, store=store, jobs=jobs, progress=advance)
    if csv:
        print_frame(res.table, csv=True)
    else:
        t = res.table
        shown = t[["outcome", "arm", "n_per_arm", "true_slope_diff", "power", "mc_se"]].rename(
            columns={"n_per_arm": "n/arm", "true_slope_diff": "effect", "mc_se": "± MC"}
        )
        shown["Wilson 95%"] = [
            f"{lo:.2f}-{hi:.2f}"
            for lo, hi in zip(t["power_ci_low"], t["power_ci_high"], strict=True)
        ]
        shown["failed"] = t["n_failed"]
        print_frame(shown, title=f"simulated power (effect per unit of {res.time})")
    if out is not None:
        console.print(f"wrote {write_power(res, out)}", highlight=False, soft_wrap=True)


@contextmanager
def _sim_bar(*, enabled: bool):
    """A progress bar over simulated trials (total grows as tasks are known)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("simulated trials", total=None)

        def advance(n: int, total: int) -> None:
            bar.update(task, total=total, advance=n)

        yield advance


def _print_run_warnings(run: Path, *, limit: int = 10) -> None:
    """Show the run's data and model warnings (left-out rows, fallbacks), not only the manifest."""
    import json

    try:
        found = json.loads((run / "manifest.json").read_text(encoding="utf-8")).get("warnings", [])
    except (OSError, ValueError):
        return
    for w in found[:limit]:
        err_console.print(f"[yellow]warning:[/] {escape(str(w))}", highlight=False, soft_wrap=True)
    if len(found) > limit:
        err_console.print(
            f"... {len(found) - limit} more warning(s) in {run / 'manifest.json'}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("report", rich_help_panel="3. Experiments and reports")
@handled
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `cxlab run`.")],
) -> None:
    """Render a run's self-contained HTML report (figures inlined, opens offline)."""
    from cxlab.report import render_report

    console.print(str(render_report(run_dir)), highlight=False, soft_wrap=True)


@app.command("screen", rich_help_panel="2. Analyse")
@handled
def screen_cmd(
    store: StoreOpt,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="One client: subject_id (pseudonym) or raw label."),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Lab rules TOML; overrides/extends the defaults by rule id."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write screen.parquet and profile-<subject_id>.html here (default: "
            "the findings go into the store's screen table, no pages).",
        ),
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of tables.")] = False,
) -> None:
    """Screen clients for movement findings (asymmetry, H:Q, valgus, posture, balance, pain)."""
    from cxlab.screen.run import screen_store
    from cxlab.store import Store

    res = screen_store(store, subject=subject, rules=rules, out=out)
    if csv:
        print_frame(res.summary, csv=True)
        return
    for sid, g in res.summary.groupby("subject_id", sort=True):
        flagged = g[g["status"] == "flagged"].drop(columns=["subject_id", "status"])
        title = f"client {sid}, session {g['session'].iloc[0]}"
        if flagged.empty:
            console.print(f"{title}: nothing flagged", highlight=False, soft_wrap=True)
            continue
        print_frame(flagged.drop(columns="session"), title=f"{title}: {len(flagged)} finding(s)")
    if res.written:
        console.print("\n".join(f"wrote {p}" for p in res.written), highlight=False)
    else:  # a store on object storage: the findings went into its screen table
        console.print(f"wrote the screen table of {Store(store).location}", highlight=False)


@app.command("athlete", rich_help_panel="2. Analyse")
@handled
def athlete_cmd(
    store: StoreOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder for athlete-<subject_id>.html and index.html (the squad)."
        ),
    ],
) -> None:
    """Write one offline page per athlete (battery metrics over dates) and a squad index."""
    from cxlab.screen.athlete import write_athlete_pages

    written = write_athlete_pages(existing_store(store), out)
    console.print(
        f"wrote {len(written) - 1} athlete page(s) and {written[-1]}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("pseudonyms", rich_help_panel="Inspect")
@handled
def pseudonyms_cmd(
    labels: Annotated[list[str] | None, typer.Argument(help="Raw subject labels.")] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Key file (default: CXLAB_KEY or ~/.config/cxlab/key)."),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--labels", help="A text file of labels, one per line ('#' starts a comment)."
        ),
    ] = None,
    csv: CsvOpt = False,
) -> None:
    """Print the label <-> pseudonym table on this screen only (nothing is written)."""
    import pandas as pd

    from cxlab._check import ConfigError, message
    from cxlab.pseudo import pseudonymise, read_key

    names = list(labels or [])
    if from_file is not None:
        try:
            lines = from_file.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ConfigError(
                message(f"cannot be read ({e.strerror})", file=from_file, fix="check the path")
            ) from None
        names += [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]
    if not names:
        raise ConfigError(
            message(
                "no labels given", field="LABEL", fix="pass labels as arguments or --labels FILE"
            )
        )
    if key is None:
        secret = read_key()
    else:
        try:
            secret = key.read_text().strip().encode()
        except OSError as e:
            raise ConfigError(
                message(f"cannot be read ({e.strerror})", file=key, fix="give the lab's key file")
            ) from None
        if not secret:
            raise ConfigError(message("is empty", file=key, fix="give the lab's key file"))
    table = pd.DataFrame(
        {"label": names, "subject_id": [pseudonymise(n, key=secret) for n in names]}
    )
    print_frame(table, csv=csv, max_rows=len(table))


@app.command("demo", rich_help_panel="3. Experiments and reports")
@handled
def demo_cmd(
    raw: Annotated[
        Path,
        typer.Option("--raw", help="Folder for the synthetic raw files.", parser=local_folder),
    ] = Path("data/raw/demo"),
    store: Annotated[
        Path,
        typer.Option("--store", help="Store directory to fill (local).", parser=local_folder),
    ] = Path("data/processed/demo"),
    subjects: Annotated[
        int,
        typer.Option(
            "--subjects", min=12, help="Cohort size (4 arms; the models need 3 or more per arm)."
        ),
    ] = 40,
    sessions: Annotated[int, typer.Option("--sessions", min=2, help="Sessions each.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic cohort.")] = 2026,
    out: Annotated[Path, typer.Option("--out", help="Parent of run directories.")] = Path("runs"),
    jobs: Annotated[int | None, typer.Option("--jobs", help="Worker processes.")] = None,
) -> None:
    """Synthesise a cohort, ingest it, compute features, run experiments/demo.toml, report."""
    from cxlab.demo import run_demo

    res = run_demo(
        raw,
        store,
        n_subjects=subjects,
        n_sessions=sessions,
        seed=seed,
        out=out,
        jobs=jobs,
        progress=sys.stderr.isatty(),
    )
    q = res.quarantined
    if len(q):
        stages = ", ".join(f"{n} {s}" for s, n in q["stage"].value_counts().sort_index().items())
        console.print(
            f"quarantined {len(q)} input row(s) as expected ({stages}); "
            f'see `cxlab sql {store} "SELECT * FROM quarantine"`',
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        "timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in res.seconds.items()),
        highlight=False,
        soft_wrap=True,
    )
    console.print("findings:", highlight=False)
    for line in res.summary:
        console.print(f"  - {line}", highlight=False, soft_wrap=True)
    console.print(f"report: {res.report}", highlight=False, soft_wrap=True)


@app.command("synth", rich_help_panel="1. Ingest")
@handled
def synth_cmd(
    out: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the export.")],
    subjects: Annotated[int, typer.Option("--subjects", min=1, help="Cohort size.")] = 40,
    sessions: Annotated[
        int, typer.Option("--sessions", min=1, help="Sessions each, every 4 weeks.")
    ] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Seed; same seed, same bytes.")] = 0,
    confounded: Annotated[
        bool,
        typer.Option(
            "--confounded", help="Arms chosen from baseline covariates instead of randomised."
        ),
    ] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes.")
    ] = None,
) -> None:
    """Write a synthetic cohort with known ground truth (files as a lab exports them).

    C3D files (cmj, landing, balance, posture), surveys/interventions/strength CSVs and
    ground_truth.json."""
    import time

    from cxlab.synth.files import cohort_summary, write_cohort

    t = time.perf_counter()
    path = write_cohort(
        out, n_subjects=subjects, n_sessions=sessions, seed=seed, confounded=confounded, jobs=jobs
    )
    s = cohort_summary(path)
    console.print(
        f"wrote {s['subjects']} subjects, {s['sessions_observed']} observed sessions, "
        f"{s['c3d_files']} C3D files ({_human_bytes(s['bytes'])}) to {path} in "
        f"{time.perf_counter() - t:.1f} s; truth in {path / 'ground_truth.json'}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("effects", rich_help_panel="2. Analyse")
@handled
def effects_cmd(
    outcome: Annotated[list[str], typer.Option("--outcome", help="Outcome column (repeatable).")],
    time: Annotated[str, typer.Option("--time", help="Time column: weeks (numeric) or visit.")],
    arm: Annotated[str, typer.Option("--arm", help="Arm column.")],
    subject: Annotated[str, typer.Option("--subject", help="Subject column.")],
    control: Annotated[str, typer.Option("--control", help="Name of the control arm.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for effects.csv/.parquet.")],
    table: Annotated[
        Path | None,
        typer.Option("--table", help="CSV or Parquet file, one row per subject x time point."),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help="Store directory or URL (with --query).", parser=store_location
        ),
    ] = None,
    query: Annotated[str | None, typer.Option("--query", help="SQL over the store.")] = None,
    covariate: Annotated[
        list[str] | None, typer.Option("--covariate", help="Adjustment covariate (repeatable).")
    ] = None,
    moderator: Annotated[
        list[str] | None,
        typer.Option("--moderator", help="Numeric baseline moderator (repeatable; mixed/gee)."),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="mixed, gee or aipw.")] = "mixed",
    time_as: Annotated[
        str,
        typer.Option("--time-as", help="continuous (slope difference) or categorical (per visit)."),
    ] = "continuous",
    correction: Annotated[str, typer.Option("--correction", help="holm, fdr_bh or none.")] = "holm",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the AIPW cross-fitting.")] = 0,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Mixed-model engine: statsmodels, or auto (cxlab's fast REML where it applies).",
        ),
    ] = "statsmodels",
    csv: Annotated[bool, typer.Option("--csv", help="Print the full table as CSV.")] = False,
) -> None:
    """Arm-vs-control effects (mixed model, GEE or AIPW), written to effects.csv/.parquet."""
    from cxlab.models import fit_effects
    from cxlab.models.effects_io import read_input, write_effects

    data = read_input(table=table, store=store, query=query)
    fit = fit_effects(
        data,
        outcome=outcome,
        time=time,
        arm=arm,
        subject=subject,
        control=control,
        covariates=covariate or (),
        moderators=moderator or (),
        method=method,
        time_as=time_as,
        correction=correction,
        seed=seed,
        engine=engine,
    )
    paths = write_effects(fit, out)
    if csv:
        print_frame(fit.table, csv=True)
        return
    cols = [
        "outcome",
        "arm",
        "estimand",
        "visit",
        "moderator",
        "estimate",
        "ci_low",
        "ci_high",
        "p_adj",
        "converged",
    ]
    shown = fit.table[[c for c in cols if fit.table[c].notna().any()]]
    print_frame(shown, title=f"effects vs {control} ({method})")
    for w in sorted(set(fit.table["warnings"]) - {""}):
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    console.print("\n".join(f"wrote {p}" for p in paths), highlight=False, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    app()
