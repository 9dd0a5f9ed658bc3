"""Read-only SQL over a store's files: a DuckDB connection that runs one ``SELECT`` per call.

Used by :mod:`cxlab.store` only, which passes in the files of each table (it alone knows
where they are): :class:`ReadOnlySQL` makes a view over a table's files the first time a
query names it, with the declared columns and the derived centre of pressure filled
(:func:`cxlab._derived.sql_select`); :func:`check_read_only` refuses any text that is not
exactly one ``SELECT``; :func:`names_inside` refuses a catalog file name outside the store.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxlab import _derived
from cxlab._check import ConfigError, CxlabError, message
from cxlab.schemas import TABLES, schema_of

__all__ = ["ReadOnlySQL", "check_read_only", "names_inside"]

_READ_ONLY = ("SELECT",)


def names_inside(files: list[str], /, *, table: str, store: Path) -> None:
    """Refuse a catalog file name that is absolute or climbs out of the store (``..``).

    A part that is a symlink out of the store is refused by DuckDB itself
    (``allowed_directories``), tested in ``tests/test_store.py``.
    """
    for f in files:
        if f.startswith(("/", "\\")) or ".." in f.replace("\\", "/").split("/"):
            raise CxlabError(
                message(
                    f"{store}: the catalog names a {table} part outside the store",
                    field="file",
                    value=f,
                    fix="the catalog is damaged or was edited: restore the store from a copy "
                    "or re-ingest the raw files",
                )
            )


class ReadOnlySQL:
    """A DuckDB connection over a store that runs one ``SELECT`` per call and nothing else.

    Made by :meth:`Store.connect`. ``execute(query)`` refuses any text that is not
    exactly one ``SELECT`` statement (so a filter cannot smuggle in ``; COPY ... TO``)
    before DuckDB runs it; DuckDB itself refuses any file outside the store. A store table
    the query names becomes a view over its parts the first time (``views``: table -> the
    absolute paths of its files).
    """

    def __init__(self, con, /, *, views: dict[str, list[str]] | None = None, dataset=None):
        self._con = con
        self._dataset = dataset  # (table, files) -> pyarrow dataset: a remote store's tables
        # a declared table without parts (None): an empty table, made by DDL when first named
        self._pending: dict[str, list[str] | None] = (
            {} if views is None else {n: views.get(n) for n in TABLES}
        )
        self._made: dict[str, list[str]] = {}

    def execute(self, query: str, parameters=None, /):
        """Run one ``SELECT``; returns the DuckDB connection to fetch from (``.df()``)."""
        import duckdb

        check_read_only(self._con, query)
        if self._pending:
            self._make_views(query)
        try:
            return self._run(query, parameters)
        except duckdb.CatalogException:
            if not self._pending:
                raise
            self._make_views(None)  # a name DuckDB's parser did not report: make them all
            return self._run(query, parameters)
        except duckdb.InvalidInputException as exc:
            if "schema mismatch" not in str(exc) or not self._made or self._dataset:
                raise
            # parts written by different cxlab versions (a column added since): read them
            # by name, the slow way, for this connection only
            for name, files in self._made.items():
                self._con.execute(_view_sql(name, files, union=True))
            return self._run(query, parameters)

    def _run(self, query, parameters):
        if parameters is not None:
            return self._con.execute(query, parameters)
        return self._con.execute(query)

    def _make_views(self, query: str | None) -> None:
        import duckdb

        try:
            names = set(self._pending) if query is None else self._con.get_table_names(query)
        except duckdb.Error:
            names = set(self._pending)  # DuckDB cannot say (e.g. a syntax error): all
        for name in sorted(set(names) & set(self._pending)):
            files = self._pending.pop(name)
            if files is None:
                self._con.execute(_empty_ddl(name))
                continue
            if self._dataset is not None:
                self._con.register(f"__files_{name}", self._dataset(name, files))
                cols = _derived.sql_select(name, schema_of(name).names)
                self._con.execute(f"CREATE VIEW {name} AS SELECT {cols} FROM __files_{name}")
                continue
            try:
                self._con.execute(_view_sql(name, files, union=False))
            except duckdb.BinderException:  # the first file lacks a declared column
                self._con.execute(_view_sql(name, files, union=True))
            self._made[name] = files

    def register(self, name: str, df: pd.DataFrame, /) -> None:
        """Make DataFrame ``df`` (built by the code, not by the user) a view ``name``."""
        self._con.register(name, df)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ReadOnlySQL:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_EMPTY_DDL: dict[str, str] = {}


def _empty_ddl(name: str, /) -> str:
    """``CREATE TABLE name (...)`` with the declared columns as DuckDB types (DuckDB's own
    mapping of the Arrow schema, worked out once per process in a scratch connection)."""
    if not _EMPTY_DDL:
        import duckdb

        with duckdb.connect(":memory:") as scratch:
            for n in TABLES:
                scratch.register("__empty", schema_of(n).arrow_schema().empty_table())
                cols = scratch.execute("DESCRIBE __empty").fetchall()
                scratch.unregister("__empty")
                body = ", ".join(f'"{c[0]}" {c[1]}' for c in cols)
                _EMPTY_DDL[n] = f"CREATE TABLE {n} ({body})"
    return _EMPTY_DDL[name]


def _view_sql(name: str, files: list[str], *, union: bool) -> str:
    """``CREATE OR REPLACE VIEW name`` over ``files`` with the declared columns (not
    ``_part``); ``union`` reads every file's footer to match columns by name."""
    lst = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    cols = _derived.sql_select(name, schema_of(name).names)
    opts = "hive_partitioning=false" + (", union_by_name=true" if union else "")
    return f"CREATE OR REPLACE VIEW {name} AS SELECT {cols} FROM read_parquet([{lst}], {opts})"


def check_read_only(con, query: str, /) -> None:
    """Raise :class:`ConfigError` unless ``query`` is exactly one ``SELECT`` statement."""
    import duckdb

    if not isinstance(query, str):
        raise ConfigError(message("must be SQL text", field="query", value=query))
    try:
        statements = con.extract_statements(query)
    except duckdb.Error:
        return  # a syntax error: let DuckDB's own message say where
    if len(statements) != 1:
        raise ConfigError(
            message(
                f"holds {len(statements)} statements; one per call",
                field="query",
                value=query,
                fix="run one SELECT at a time",
            )
        )
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in _READ_ONLY:
        raise ConfigError(
            message(
                f"is a {kind} statement; the store is read-only through SQL",
                field="query",
                value=query,
                fix="write a SELECT (change the store with cxlab ingest and cxlab features)",
            )
        )
