"""Read the input of ``cxlab effects`` and write its results atomically and deterministically."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from cxlab._check import ConfigError, CxlabError, InputFormatError, message
from cxlab.store import Store, write_parquet, write_text

__all__ = ["read_input", "write_effects"]


def read_input(
    *,
    table: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    query: str | None = None,
) -> pd.DataFrame:
    """The long table to model: a CSV/Parquet file, or a SQL query over a store.

    Parameters
    ----------
    table : path, optional
        ``.csv`` or ``.parquet`` file, one row per subject × time point.
    store, query : optional
        A store directory and a DuckDB SQL query over its tables (both or neither).

    Raises
    ------
    ConfigError
        Neither or both sources, or a store without a query.
    InputFormatError
        Missing file, unknown extension, unreadable file or failing query.
    """
    problem = (
        "no input table"
        if table is None and store is None and query is None
        else "both --table and --store given"
        if table is not None and store is not None
        else "--store needs --query SQL"
        if store is not None and query is None
        else "--query needs --store DIR"
        if query is not None and store is None
        else None
    )
    if problem:
        raise ConfigError(
            message(problem, field="input", fix="pass --table FILE or --store DIR --query SQL")
        )
    if store is not None:
        import duckdb

        try:
            return Store(store).sql(query)
        except duckdb.Error as e:
            raise InputFormatError(
                message(
                    f"SQL failed: {str(e).splitlines()[0]}",
                    file=store,
                    field="query",
                    fix=f"check table and column names with `cxlab store info {store}`",
                )
            ) from None
    path = Path(table)
    if not path.is_file():
        raise InputFormatError(
            message(
                "file not found", file=path, field="table", value=str(path), fix="check the path"
            )
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, pa.ArrowException) as e:
        raise InputFormatError(
            message(
                f"cannot be read ({e})",
                file=path,
                field="table",
                fix="export it again as CSV or Parquet",
            )
        ) from None
    raise InputFormatError(
        message(
            "has an unsupported extension",
            file=path,
            field="table",
            value=suffix,
            fix="use a .csv or .parquet file",
        )
    )


def write_effects(fit, out: str | os.PathLike, /) -> list[Path]:
    """Write ``effects.csv``, ``effects.parquet`` and ``methods.txt`` (and, for AIPW,
    ``overlap.csv``) into directory ``out``; each file is written atomically.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CxlabError(
            message(
                "exists and is not a directory", file=out, field="out", fix="choose a new directory"
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    table = fit.table
    arrow = pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(None)
    paths = [
        write_text(table.to_csv(index=False, lineterminator="\n"), out / "effects.csv"),
        write_parquet(arrow, out / "effects.parquet"),
    ]
    formulas = "\n".join(f"{k}: {v}" for k, v in fit.formula.items())
    paths.append(write_text(f"{fit.methods}\n\nModels:\n{formulas}\n", out / "methods.txt"))
    if fit.diagnostics is not None:
        paths.append(
            write_text(
                fit.diagnostics.to_csv(index=False, lineterminator="\n"), out / "overlap.csv"
            )
        )
    return paths
