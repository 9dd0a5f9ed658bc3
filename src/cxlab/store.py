"""A directory of Parquet tables: atomic, validated, deterministic writes; SQL through DuckDB.

Layout::

    STORE/
      recordings/part-<key>.parquet
      markers/subject=<subject_id>/part-<key>.parquet   (partitioned tables)
      ...

Each table is a directory of *parts*. A part is named by a key (for ingest,
the recording id) so that re-ingesting a file replaces exactly its rows.
Every part is validated against :mod:`cxlab.schemas`, sorted by the table's
sort key and written with fixed settings, so the same rows always give the
same bytes. A part is written to a temporary file in the same directory,
flushed with ``fsync`` and renamed into place: readers never see half a file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cxlab._check import ConfigError, message
from cxlab.schemas import TABLES, schema_of, validate

__all__ = [
    "ReadOnlySQL",
    "Store",
    "atomic_file",
    "remove_stale_temporaries",
    "write_parquet",
    "write_text",
]

_KEY = re.compile(r"[A-Za-z0-9_.=-]+")
_PARQUET_OPTS = dict(
    compression="zstd",
    compression_level=3,
    use_dictionary=True,
    write_statistics=True,
    row_group_size=1 << 20,
    data_page_version="2.0",
    version="2.6",
    store_schema=False,
)
_NULL_PARTITION = "__null__"
_TMP_PREFIX = ".tmp-"  # + writer pid + "-": a temporary file or folder not yet renamed in place
_TMP_PID = re.compile(r"\.(?:tmp|old)-(\d+)-")
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], /) -> Iterator[BinaryIO]:
    """Open ``path`` for binary writing so that it appears whole or not at all.

    Yields a handle on a temporary file in the destination directory; on a
    clean exit the file is flushed, fsynced and renamed over ``path``; on an
    error it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=path.suffix, dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _writer_alive(name: str) -> bool:
    """Whether the process that made temporary ``name`` (``.tmp-<pid>-...``) still runs."""
    m = _TMP_PID.match(name)
    if not m:
        return False  # no pid in the name (an older cxlab): nobody can still be writing it
    pid = int(m.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(root: str | os.PathLike[str], /, *, recursive: bool = True) -> int:
    """Remove temporary files and folders (``.tmp-<pid>-*``, ``.old-<pid>-*``) left under
    ``root`` by a writer that was killed; the ones of a living process are kept.

    Returns
    -------
    int
        Entries removed.
    """
    import shutil

    root = Path(root)
    if not root.is_dir():
        return 0
    found = root.rglob(".*") if recursive else root.glob(".*")
    n = 0
    for p in sorted(found, key=lambda p: len(p.parts)):
        if not p.name.startswith((".tmp-", ".old-")) or _writer_alive(p.name):
            continue
        with contextlib.suppress(FileNotFoundError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n


def write_parquet(table: pa.Table, path: str | os.PathLike[str], /) -> Path:
    """Write ``table`` to ``path`` atomically and deterministically.

    The bytes depend only on the table's content and the pyarrow version:
    fixed compression (zstd level 3), fixed row-group size, no timestamps.
    The file is written next to its destination, fsynced, then renamed.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    with atomic_file(path) as fh:
        pq.write_table(table, fh, **_PARQUET_OPTS)
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str], /) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as fh:
        fh.write(text.encode("utf-8"))
    return Path(path)


class Store:
    """A cxlab store: one sub-directory of Parquet parts per table.

    Parameters
    ----------
    path : path-like
        The store's root directory; created on first write.

    Examples
    --------
    >>> store = Store("data/processed/demo")            # doctest: +SKIP
    >>> store.table("recordings", filters=[("task", "==", "cmj")])   # doctest: +SKIP
    >>> store.sql("SELECT task, count(*) FROM recordings GROUP BY task")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- writing -----------------------------------------------------------------
    def write(
        self,
        name: str,
        df: pd.DataFrame | pa.Table,
        /,
        *,
        key: str = "all",
        partition: str | None = None,
    ) -> list[Path]:
        """Validate ``df`` and write it as part ``key`` of table ``name``.

        A part with the same key is replaced, so writing ``key="all"`` replaces
        a whole small table, and writing ``key=recording_id`` replaces one
        recording's rows.

        Parameters
        ----------
        name : str
            A table declared in :data:`cxlab.schemas.TABLES`.
        df : pandas.DataFrame or pyarrow.Table
            Rows with the declared columns (a column declared ``optional`` that a
            DataFrame lacks is written as missing, so a table can gain metadata columns
            without every writer changing), or the Arrow table that
            :func:`cxlab.schemas.validate` returned for them (so a caller can
            validate several tables before writing any).
        key : str
            Part name: letters, digits, ``_ . = -``.
        partition : str, optional
            For partitioned tables (``markers``, ``analogs``, ``forces``): the
            partition value, e.g. the subject id; the part lands in
            ``<table>/subject=<partition>/``. Missing means ``__null__``.

        Returns
        -------
        list of pathlib.Path
            The file written.

        Raises
        ------
        SchemaError
            If ``df`` does not match the schema (nothing is written).
        """
        schema = schema_of(name)
        for opt, val in (("key", key), ("partition", partition)):
            if val is not None and not _KEY.fullmatch(val):
                raise ConfigError(
                    message(
                        "is not a valid part name",
                        field=opt,
                        value=val,
                        fix="use letters, digits, '_', '.', '=' or '-'",
                    )
                )
        if isinstance(df, pd.DataFrame):
            absent = [c for c in schema.columns if c.optional and c.name not in df.columns]
            if absent:
                df = df.assign(
                    **{c.name: [[] if pa.types.is_list(c.type) else None] * len(df) for c in absent}
                )
        table = df if isinstance(df, pa.Table) else validate(df, schema)
        if isinstance(df, pa.Table) and not table.schema.equals(
            schema.arrow_schema(), check_metadata=True
        ):
            raise ConfigError(
                message(
                    "was not built by cxlab.schemas.validate for this table",
                    field="df",
                    value=name,
                    fix="pass a DataFrame, or validate(df, name) first",
                )
            )
        old = self._part_files(name, key)
        if schema.partition_by is None:
            target = self.path / name / f"part-{key}.parquet"
        else:
            value = partition if partition else _NULL_PARTITION
            target = self.path / name / f"{schema.partition_by}={value}" / f"part-{key}.parquet"
        write_parquet(table, target)
        for stale in old:
            if stale != target:
                stale.unlink()
        return [target]

    def append_quarantine(self, rows: pd.DataFrame, /, *, key: str) -> None:
        """Record rejected inputs (schema ``quarantine``) as part ``key``."""
        if len(rows):
            self.write("quarantine", rows, key=key)

    def delete(self, name: str, /, *, key: str) -> int:
        """Remove part ``key`` of table ``name`` everywhere; return the number of files removed."""
        files = self._part_files(name, key)
        for f in files:
            f.unlink()
        return len(files)

    def _part_files(self, name: str, key: str) -> list[Path]:
        root = self.path / name
        if not root.exists():
            return []
        return sorted(root.rglob(f"part-{key}.parquet"))

    # -- reading -----------------------------------------------------------------
    def tables(self) -> list[str]:
        """Names of the tables that have at least one part, sorted."""
        if not self.path.exists():
            return []
        return sorted(
            p.name
            for p in self.path.iterdir()
            if p.is_dir() and p.name in TABLES and self.files(p.name)
        )

    def files(self, name: str, /) -> list[Path]:
        """The Parquet parts of table ``name``, in a fixed order."""
        root = self.path / name
        if not root.exists():
            return []
        return sorted(p for p in root.rglob("part-*.parquet"))

    def keys(self, name: str, /) -> set[str]:
        """The part keys present in table ``name``."""
        return {p.stem.removeprefix("part-") for p in self.files(name)}

    def table(
        self,
        name: str,
        /,
        *,
        filters: Sequence[tuple[str, str, Any]] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Read table ``name`` as a DataFrame.

        Parameters
        ----------
        name : str
            A declared table. A table that has never been written reads as an
            empty frame with the declared columns.
        filters : list of (column, op, value), optional
            Row filters ANDed together; ``op`` is one of ``== != < <= > >= in not in``.
        columns : list of str, optional
            Columns to read (default: all, in declared order).

        Returns
        -------
        pandas.DataFrame
            Rows in part order, each part sorted by the table's sort key.
        """
        schema = schema_of(name)
        files = self.files(name)
        arrow_schema = schema.arrow_schema()
        cols = list(columns) if columns is not None else schema.names
        for c in cols:
            if c not in schema.names:
                raise ConfigError(
                    message(
                        "is not a column of table " + repr(name),
                        field="columns",
                        value=c,
                        fix=f"use one of {', '.join(schema.names)}",
                    )
                )
        if not files:
            return arrow_schema.empty_table().select(cols).to_pandas()
        dataset = ds.dataset([str(f) for f in files], schema=arrow_schema, format="parquet")
        expr = _filter_expression(filters or [], schema.names)
        return dataset.to_table(columns=cols, filter=expr).to_pandas()

    def sql(self, query: str, /) -> pd.DataFrame:
        """Run one read-only DuckDB ``SELECT`` with one view per table; return a DataFrame.

        Every declared table is a view, an empty one if the table has not been
        written, so queries can join ``recordings``, ``forces``, ``scores`` and
        ``features`` freely. The query runs on :meth:`connect`'s read-only
        connection: it can read the store's parts and nothing else.

        Raises
        ------
        ConfigError
            If ``query`` is not exactly one ``SELECT`` (``COPY``, ``ATTACH``, ``CREATE``,
            ``INSERT``, ``PRAGMA``, ``SET``, ``INSTALL``, ``LOAD``, ... are refused).
        duckdb.Error
            If DuckDB cannot run it, e.g. ``read_text('/etc/passwd')`` (a file outside the
            store: "Permission Error").
        """
        with self.connect() as con:
            return con.execute(query).df()

    def connect(self) -> ReadOnlySQL:
        """A DuckDB connection that can only read this store (use as a context manager).

        An in-memory database gets one view per table over the table's Parquet parts;
        then external access is switched off except for the store's directory
        (``enable_external_access = false``, ``allowed_directories = [store]``), extension
        installing and auto-loading are off and the configuration is locked
        (``lock_configuration = true``), so no later ``SET`` can undo it. Every statement
        passed to :meth:`ReadOnlySQL.execute` must be exactly one ``SELECT``.
        """
        import duckdb

        root = str(self.path.resolve())
        con = duckdb.connect(
            ":memory:",
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        try:
            con.execute("SET allowed_directories = [?]", [root + os.sep])
            for name, schema in TABLES.items():
                files = self.files(name)
                if files:
                    lst = ", ".join("'" + str(f.resolve()).replace("'", "''") + "'" for f in files)
                    con.execute(
                        f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{lst}], "
                        "hive_partitioning=false, union_by_name=true)"
                    )
                else:  # materialised now: no Python object is scanned once locked
                    con.register(f"__empty_{name}", schema.arrow_schema().empty_table())
                    con.execute(f"CREATE TABLE {name} AS SELECT * FROM __empty_{name}")
                    con.unregister(f"__empty_{name}")
            con.execute("SET temp_directory = ''")  # no spill folder in the working directory
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return ReadOnlySQL(con)

    def info(self) -> pd.DataFrame:
        """One row per written table: rows, parts, subjects and size on disk.

        Returns
        -------
        pandas.DataFrame
            Columns ``table``, ``rows``, ``parts``, ``subjects``, ``size_bytes`` (of the
            readable parts) and ``unreadable_parts``: parts that are not Parquet or lack
            the table's columns (overwritten by something else); they are counted, not read.
        """
        out = []
        for name in self.tables():
            rows, ids, sizes, damaged, parts = 0, [], 0, 0, 0
            for f in self.files(name):  # a part replaced or removed meanwhile is skipped
                try:
                    size = f.stat().st_size
                    meta = pq.ParquetFile(f)
                    if not set(schema_of(name).names) <= set(meta.schema_arrow.names):
                        damaged += 1  # overwritten by something else (another table, by hand)
                        continue
                    n = meta.metadata.num_rows
                    if "subject_id" in schema_of(name).names:
                        ids.append(meta.read(columns=["subject_id"]).column(0))
                except FileNotFoundError:
                    continue
                except (OSError, pa.ArrowException):
                    damaged += 1  # not Parquet at all
                    continue
                rows, sizes, parts = rows + n, sizes + size, parts + 1
            subjects = None
            if "subject_id" in schema_of(name).names:
                subjects = (
                    len(
                        pa.compute.unique(
                            pa.chunked_array([c.cast(pa.string()) for c in ids], type=pa.string())
                        ).drop_null()
                    )
                    if ids
                    else 0
                )
            elif name in {"markers", "analogs", "forces"}:
                subjects = len({p.parent.name for p in self.files(name)})
            out.append(
                {
                    "table": name,
                    "rows": rows,
                    "parts": parts,
                    "subjects": subjects,
                    "size_bytes": sizes,
                    "unreadable_parts": damaged,
                }
            )
        return pd.DataFrame(
            out, columns=["table", "rows", "parts", "subjects", "size_bytes", "unreadable_parts"]
        )


_READ_ONLY = ("SELECT",)


class ReadOnlySQL:
    """A DuckDB connection over a store that runs one ``SELECT`` per call and nothing else.

    Made by :meth:`Store.connect`. ``execute(query)`` refuses any text that is not
    exactly one ``SELECT`` statement (so a filter cannot smuggle in ``; COPY ... TO``)
    before DuckDB runs it; DuckDB itself refuses any file outside the store.
    """

    def __init__(self, con, /):
        self._con = con

    def execute(self, query: str, parameters=None, /):
        """Run one ``SELECT``; returns the DuckDB connection to fetch from (``.df()``)."""
        check_read_only(self._con, query)
        return (
            self._con.execute(query, parameters)
            if parameters is not None
            else self._con.execute(query)
        )

    def register(self, name: str, df: pd.DataFrame, /) -> None:
        """Make DataFrame ``df`` (built by the code, not by the user) a view ``name``."""
        self._con.register(name, df)

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ReadOnlySQL:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


#: the operators of ``pyarrow.parquet.filters_to_expression``
_OPS = ("==", "=", "!=", "<", "<=", ">", ">=", "in", "not in")


def _filter_expression(filters: Iterable[tuple[str, str, Any]], names: list[str]):
    """``pyarrow.parquet.filters_to_expression`` of AND-ed tuples, after readable checks."""
    filters = list(filters)
    for item in filters:
        if len(item) != 3:
            raise ConfigError(
                message("must be (column, op, value) tuples", field="filters", value=item)
            )
        col, op, _ = item
        if col not in names:
            raise ConfigError(
                message(
                    "names an unknown column",
                    field="filters",
                    value=col,
                    fix=f"use one of {', '.join(names)}",
                )
            )
        if op not in _OPS:
            raise ConfigError(
                message(
                    "has an unknown operator",
                    field="filters",
                    value=op,
                    fix=f"use one of {', '.join(sorted(_OPS))}",
                )
            )
    return pq.filters_to_expression([tuple(f) for f in filters]) if filters else None
