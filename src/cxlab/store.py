"""A directory of Parquet tables: atomic, validated, deterministic commits; SQL through DuckDB.

Layout (known to this module only; everything else asks :class:`Store`)::

    STORE/
      _catalog.parquet                     the catalog's root: its shards (the commit point)
      _catalog/shard-<hex>-<sha16>.arrow   live parts whose sha256(key) starts with <hex>
      recordings/part-<sha16>.parquet      small per-recording tables: one file, all keys
      markers/subject=<subject_id>/part-<key>-<sha12>.parquet   (partitioned tables)
      features/part-<key>-<sha12>.parquet
      _staging/.tmp-<pid>-*.parquet        parts written, not yet committed
      _commit.json                         only while a commit runs (its files, for recovery)

Each table is a set of *parts*. A part is named by a key (for ingest, the recording id)
so that re-ingesting a file replaces exactly its rows. Every part is validated against
:mod:`cxlab.schemas`, sorted by the table's sort key and written with fixed settings, its
columns' units and the lab frame in the file's metadata, so the same rows always give the
same bytes; a file's name carries a digest of its bytes. Readers go through the catalog,
never a directory listing: a part is live when the catalog lists it. A commit (one or many
parts written and deleted together) moves staged parts to their final names, rewrites the
catalog shards its keys fall in (see :mod:`cxlab._catalog`) and then replaces the
catalog's root with one rename, so a reader (or a crash) sees all of a commit or none of
it. The small
per-recording tables (:data:`COMPACT_TABLES`) keep all their parts in one file (column
``_part`` holds the key), so reading them costs one file, not one per recording.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cxlab import _catalog, _derived, _fs
from cxlab._catalog import Part
from cxlab._check import ConfigError, message, warn
from cxlab._fs import StoreConflictError
from cxlab._hashing import sha256_of
from cxlab._sql import ReadOnlySQL, names_inside
from cxlab.schemas import TABLES, TableSchema, schema_of, validate

__all__ = [
    "COMPACT_TABLES",
    "FileDigest",
    "Part",
    "ReadOnlySQL",
    "Staged",
    "Store",
    "StoreConflictError",
    "Transaction",
    "atomic_file",
    "is_url",
    "parquet_options",
    "recording_runs",
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
    store_schema=True,  # the Arrow schema: field metadata (units) and the table's metadata
)


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """:data:`_PARQUET_OPTS` with an encoding per column type: dictionary for labels
    (strings, lists of strings), byte-stream-split for floats (their exponent and high
    mantissa bytes compress; dictionary encoding of floats costs time and rarely pays) and
    delta for integers (frame and sample counters become a few bytes a page)."""
    labels, encodings = [], {}
    for f in schema:
        t = f.type.value_type if pa.types.is_list(f.type) else f.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            labels.append(f.name)
        elif pa.types.is_floating(f.type):
            encodings[f.name] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_integer(f.type):
            encodings[f.name] = "DELTA_BINARY_PACKED"
    return {**_PARQUET_OPTS, "use_dictionary": labels, "column_encoding": encodings or None}


COMPACT_TABLES = frozenset({"recordings", "sessions", "quarantine", "events", "plate_channels"})
"""Tables whose parts are small (a few rows per recording): kept in one file per table."""
_COMPACT = COMPACT_TABLES
_NULL_PARTITION = "__null__"
_WHOLE_READ_BYTES = 1 << 20
"""A local part up to this size (bytes) is read in one call, then decoded from memory."""
_TMP_PREFIX = ".tmp-"  # + writer pid + "-": a temporary file or folder not yet renamed in place
_TMP_PID = re.compile(r"\.(?:tmp|old)-(\d+)-")
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_ID_TABLES = tuple(t for t in sorted(TABLES) if "subject_id" in schema_of(t).names)
"""The tables holding subject ids (pseudonyms)."""
_KEY_CHECK = "_key_check"
"""The store's record of its pseudonymisation key's check (:meth:`Store.key_check`)."""


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike[str], /, *, durable: bool = True, fresh: bool = False
) -> Iterator[BinaryIO]:
    """Open ``path`` for binary writing so that it appears whole or not at all.

    Yields a handle on a temporary file in the destination directory; on a
    clean exit the file is flushed, fsynced (unless ``durable`` is false: the caller
    makes it durable later, e.g. with :func:`_sync_store`) and renamed over ``path``;
    on an error it is removed and ``path`` is left as it was. With ``fresh``, ``path`` is
    itself a new temporary name no reader looks at (``.tmp-<pid>-...``, renamed by the
    caller once whole): it is written in place (created exclusively), without a second
    temporary name and rename, and removed on an error.
    """
    path = Path(path)
    if fresh:
        try:
            fh = open(path, "xb")  # closed below, removed on an error
        except FileNotFoundError:  # no folder yet
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "xb")
        try:
            with fh:
                yield fh
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=path.suffix, dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
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
    path : path-like or str
        The store's root directory (created on first write), or an fsspec URL such as
        ``s3://bucket/prefix`` for a store on object storage (docs/store.md, *Object
        storage*).
    storage_options : dict, optional
        fsspec options for a URL (credentials, endpoint), over those in the environment
        variable ``CXLAB_STORAGE_OPTIONS`` (JSON); never printed.

    Examples
    --------
    >>> store = Store("data/processed/demo")            # doctest: +SKIP
    >>> store.table("recordings", filters=[("task", "==", "cmj")])   # doctest: +SKIP
    >>> store.sql("SELECT task, count(*) FROM recordings GROUP BY task")  # doctest: +SKIP
    """

    def __init__(
        self, path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ):
        text = path if isinstance(path, str) else os.fspath(path)
        self._remote: _fs.Remote | None = None
        if _fs.is_url(text):
            self._remote = _fs.Remote(text, options=_fs.storage_options(storage_options))
            self._path: Path | None = None
            self._cache: _catalog.Cache | _catalog.RemoteCache = _catalog.RemoteCache(self._remote)
            self.url = self._remote.url
        else:
            self._path = Path(_fs.local_path(text))
            self._cache = _catalog.Cache(self._path)
            self.url = str(self._path)
        self._sql_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._sql_con: ReadOnlySQL | None = None
        self._sql_cat: pa.Table | None = None
        self._keys_of: _catalog.State | None = None
        self._keys: dict[str, frozenset[str]] = {}

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def path(self) -> Path:
        """The store's directory (a local store only; a remote one has :attr:`url`)."""
        if self._path is None:
            raise ConfigError(
                message(
                    "is an object-storage URL, not a directory",
                    field="store",
                    value=self.url,
                    fix="ask the Store (parts, read_parts, table, sql, file_digests), not its path",
                )
            )
        return self._path

    @property
    def is_remote(self) -> bool:
        """Whether the store lives under an fsspec URL (``s3://...``), not a directory."""
        return self._remote is not None

    @property
    def location(self) -> Path | str:
        """The directory of a local store, the URL (without credentials) of a remote one."""
        return self.url if self._path is None else self._path

    def exists(self) -> bool:
        """Whether the store is there to read: a directory, or a remote store's catalog."""
        if self._remote is None:
            return self.path.is_dir()
        return self._remote.exists(_catalog.CATALOG)

    def absolute(self) -> Store:
        """This store with an absolute location (workers may run in another directory)."""
        if self._path is None or self._path.is_absolute():
            return self
        return Store(self._path.absolute())

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
        """Validate ``df`` and write it as part ``key`` of table ``name``, in one commit.

        A part with the same key is replaced, so writing ``key="all"`` replaces
        a whole small table, and writing ``key=recording_id`` replaces one
        recording's rows. To replace several parts at once (all visible together or
        none), use :meth:`stage` and :meth:`commit` or :meth:`transaction`.

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
            The file now holding the part (relative to the store on a remote store).

        Raises
        ------
        SchemaError
            If ``df`` does not match the schema (nothing is written).
        """
        staged = self.stage(name, df, key=key, partition=partition)
        self.commit([staged])
        return [Path(staged.name) if self._path is None else self._path / staged.name]

    def stage(
        self,
        name: str,
        df: pd.DataFrame | pa.Table,
        /,
        *,
        key: str = "all",
        partition: str | None = None,
        owner: int | None = None,
    ) -> Staged:
        """Validate ``df`` and write it as a part that no reader sees until :meth:`commit`.

        The part goes to the store's staging folder under a temporary name carrying the
        process id ``owner`` (default: this process; a pool worker passes its parent's, so
        the part outlives the worker until the parent commits it). On a remote store
        (object storage has no rename) a part goes straight to its final, digest-named key,
        which no catalog lists until the commit. A small table's part
        (:data:`COMPACT_TABLES`, merged into its bucket file at the commit) is written
        nowhere: its rows travel in the :class:`Staged` (``data``). Arguments as
        :meth:`write`. The returned :class:`Staged` is small and picklable (a worker
        returns it to the process that commits).
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
        return self._staged(name, table, (key,), (table.num_rows,), partition, owner)

    def stage_many(
        self,
        name: str,
        table: pa.Table,
        /,
        *,
        partition: str | None = None,
        owner: int | None = None,
    ) -> Staged:
        """Stage the rows of several recordings of one partition as ONE part (file).

        ``table`` is what :func:`cxlab.schemas.validate` returned for a partitioned signal
        table (``markers``, ``forces``, ...: sorted by ``recording_id`` first), holding the
        rows of one or more recordings; each recording id becomes a key of the part (its
        catalog row names the shared file and its own row count), so :meth:`parts`,
        :meth:`read_part` and deletes work per recording as for a part of its own. One
        recording gives exactly the part :meth:`stage` writes for it. A key later deleted
        or replaced while others of the file stay is cut out at that commit: the file is
        rewritten without its rows (the bytes a batch of the remaining recordings has), so
        no file ever holds a row the catalog does not list. Ingest stages a run's
        recordings of one subject this way (:mod:`cxlab.ingest`): one file a table and
        batch instead of one a recording.

        Raises
        ------
        ConfigError
            The table is not partitioned by recording, or ``table`` is not a validated
            table sorted by ``recording_id``.
        """
        schema = schema_of(name)
        if (
            name in _COMPACT
            or schema.partition_by is None
            or schema.sort_by[:1] != ("recording_id",)
        ):
            raise ConfigError(
                message(
                    "holds no per-recording parts that can share a file",
                    field="name",
                    value=name,
                    fix="use Store.stage (one part per key) for this table",
                )
            )
        if partition is not None and not _KEY.fullmatch(partition):
            raise ConfigError(
                message(
                    "is not a valid part name",
                    field="partition",
                    value=partition,
                    fix="use letters, digits, '_', '.', '=' or '-'",
                )
            )
        if not table.schema.equals(schema.arrow_schema(), check_metadata=True):
            raise ConfigError(
                message(
                    "was not built by cxlab.schemas.validate for this table",
                    field="table",
                    value=name,
                    fix="validate(df, name) first",
                )
            )
        keys, rows = recording_runs(table)
        if not keys or any(not _KEY.fullmatch(k) for k in keys):
            raise ConfigError(
                message(
                    "needs rows sorted by recording_id, each id a valid part name",
                    field="recording_id",
                    value=keys[:3],
                    fix="validate(df, name) sorts the rows; ids are letters, digits, '_.=-'",
                )
            )
        return self._staged(name, table, tuple(keys), tuple(rows), partition, owner)

    def _staged(
        self,
        name: str,
        table: pa.Table,
        keys: tuple[str, ...],
        rows: tuple[int, ...],
        partition: str | None,
        owner: int | None,
    ) -> Staged:
        """Write validated ``table`` (parts ``keys`` of ``rows`` rows each) where no reader
        looks (:meth:`stage`)."""
        schema = schema_of(name)
        table = _derived.encode(name, table)  # CoP and free moment: null where they follow
        if schema.partition_by is None:
            partition = None
        else:
            partition = partition if partition else _NULL_PARTITION
        pid = os.getpid() if owner is None else int(owner)
        key = keys[0]
        if name in _COMPACT:  # merged into the table's bucket file at commit: no file now
            data = _ipc_bytes(table)
            return Staged(name, key, partition, "", "", table.num_rows, len(data), data)
        groups = rows if len(keys) > 1 else None  # row groups of whole recordings (_packed)
        if self._remote is None:
            temp, digest, size = _write_staged(table, self.path / _catalog.STAGING, pid, groups)
        else:
            data = _parquet_bytes(table, parquet_options(table.schema), groups)
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
        final = _part_name(name, partition, keys, digest)
        if self._remote is not None:
            temp = final
            self._remote.write_bytes(temp, data)
        if len(keys) == 1:
            return Staged(name, key, partition, str(temp), final, table.num_rows, size)
        return Staged(
            name, key, partition, str(temp), final, table.num_rows, size, None, keys, rows
        )

    def commit(
        self, staged: Sequence[Staged] = (), /, *, delete: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Make ``staged`` parts live and remove the parts ``delete`` lists, atomically.

        Readers see every change of the commit or none: the parts are moved to their
        final names, then the catalog is replaced by one rename. A crash before that
        rename leaves the store as it was (the moved parts are removed by the next
        commit); after it, the replaced files are removed by this commit or the next.
        On a remote store the parts are already at their final keys and the commit is the
        write of the catalog object (on S3 conditional on the version read at the commit's
        start); an error before it removes the files the commit wrote.

        Parameters
        ----------
        staged : sequence of Staged
            From :meth:`stage` (a later one for the same table and key wins).
        delete : sequence of (table, key)
            Parts to remove; absent ones are ignored.

        Raises
        ------
        StoreConflictError
            On S3, if another writer committed since this commit read the catalog (run
            the command again; nothing of this commit is visible).
        """
        if self._remote is not None:
            with self._commit_lock:  # one commit at a time in this process
                _commit_remote(self._remote, self._cache, list(staged), list(delete))
            return
        with _catalog.locked(self.path):
            _commit(self.path, self._cache, list(staged), list(delete))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Group writes and deletes into one commit (:meth:`commit`) at the end of the block.

        On an error in the block nothing is committed and the staged parts are removed.

        Examples
        --------
        >>> with Store("data/processed/demo").transaction() as tx:   # doctest: +SKIP
        ...     tx.write("recordings", row, key=rid)
        ...     tx.delete("recordings", key=old_rid)
        """
        tx = Transaction(self)
        try:
            yield tx
            self.commit(tx.staged, delete=tx.deleted)
        except BaseException:
            self._discard(tx.staged)
            raise

    def _discard(self, staged: Sequence[Staged], /) -> None:
        """Remove staged parts that were not committed (never a file the catalog lists:
        on a remote store a staged part's key may be the live file of the same bytes)."""
        if self._remote is None:
            for s in staged:
                if s.temp:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(s.temp)
            return
        live = self._cache.state().files()
        self._remote.remove(sorted(_temps(staged) - live))

    def append_quarantine(self, rows: pd.DataFrame, /, *, key: str) -> None:
        """Record rejected inputs (schema ``quarantine``) as part ``key``."""
        if len(rows):
            self.write("quarantine", rows, key=key)

    def delete(self, name: str, /, *, key: str) -> int:
        """Remove part ``key`` of table ``name`` (one commit); return the number removed."""
        schema_of(name)
        had = key in self.keys(name)
        if had:
            self.commit(delete=[(name, key)])
        return int(had)

    def recover(self, *, older_than_s: float = 86_400.0) -> int:
        """Finish what a killed writer left: its staged parts and its temporary catalog or
        journal file (a dead process's), and a commit cut short (the files of the losing
        side). Costs what was left, not the size of the store. Returns the entries removed.

        On a remote store (no process ids, no journal) it lists the store once and removes
        every object the catalog does not name that is older than ``older_than_s`` seconds
        (a writer still staging its parts is younger): the parts of a killed writer or of
        a commit refused by another. Its cost is one listing of the store.
        """
        if self._remote is not None:
            return _sweep_remote(self._remote, self._cache.state(), older_than_s=older_than_s)
        n = remove_stale_temporaries(self.path / _catalog.STAGING, recursive=False)
        n += remove_stale_temporaries(self.path / _catalog.SHARDS, recursive=False)
        # the catalog and the journal are written beside it as .tmp-<pid>-* then renamed:
        # a writer killed between the two leaves that temporary in the store's root
        n += remove_stale_temporaries(self.path, recursive=False)
        if (self.path / _catalog.JOURNAL).exists():
            with _catalog.locked(self.path):
                n += _catalog.finish_journal(self.path, self._cache.state())
        return n

    def discard_staged(self, *, owner: int) -> int:
        """Remove the parts staged for process ``owner`` and not committed (a worker that
        crashed, a commit that failed); call once that process has committed. Returns the
        files removed."""
        if self._remote is not None:
            prefix = f"{_catalog.STAGING}/{_TMP_PREFIX}{int(owner)}-"
            mine = [e.name for e in self._remote.entries(_catalog.STAGING)]
            return self._remote.remove([n for n in mine if n.startswith(prefix)])
        folder = self.path / _catalog.STAGING
        if not folder.is_dir():
            return 0
        n = 0
        for p in sorted(folder.glob(f"{_TMP_PREFIX}{int(owner)}-*")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
        return n

    # -- reading -----------------------------------------------------------------
    def catalog(self) -> pd.DataFrame:
        """The live parts: one row per table and key (columns of :class:`Part`), in a fixed
        order that depends only on which parts are live (by catalog shard, then by table
        and key)."""
        cat = self._live()
        mask = pc.invert(pc.match_substring(cat.column("table"), _catalog.INDEX_SEP))
        return cat.filter(mask).to_pandas()

    def _live(self) -> pa.Table:
        self._adopt()
        return self._cache.get()

    def _adopt(self) -> None:
        """Catalog a store written before the catalog existed, on first use."""
        if not self._cache.state().legacy and self.older_layout():
            with _catalog.locked(self.path):
                _adopt_legacy(self.path, self._cache)

    def key_check(self) -> str | None:
        """The :func:`cxlab.pseudo.key_check` of the pseudonymisation key the store's subject
        ids were made with, or None when none is recorded (a store no ingest has written
        to yet, or one written before cxlab recorded it)."""
        try:
            if self._remote is not None:
                data = self._remote.read_bytes(_KEY_CHECK)
            else:
                data = (self.path / _KEY_CHECK).read_bytes()
        except FileNotFoundError:
            return None
        text = data.decode("ascii", "replace").strip()
        if not re.fullmatch(r"[0-9a-f]{16}", text):  # a bad copy: no key would be checked
            raise ConfigError(
                message(
                    f"is not a key check (16 hex digits), in the store {self.location}",
                    file=_KEY_CHECK,
                    value=text[:40],
                    fix=f"copy {_KEY_CHECK} again from the store's origin, or remove it to "
                    "record the key of the next ingest (only if you know the store's key)",
                )
            )
        return text

    def claim_key_check(self, check: str, /) -> str:
        """Record ``check`` as the store's key check (:meth:`key_check`) unless one is
        recorded already; return the one recorded (``check``, or an earlier writer's).

        Written once and never replaced: locally by :func:`cxlab._fs.create_once` (two
        writers at once: one wins, both return its check); on object storage one
        conditional PUT (only if absent)."""
        if not re.fullmatch(r"[0-9a-f]{16}", check):
            raise ValueError(f"not a key check: {check!r}")
        have = self.key_check()
        if have is not None:
            return have
        if any(self.keys(t) for t in _ID_TABLES):
            warn(
                f"the store {self.location} holds subject ids but no record of the key that "
                f"made them (written by an older cxlab): recording this machine's key (check "
                f"{check}) as the store's; "
                "if its ids were made with another key, they will not join what is "
                "ingested now",
                field="CXLAB_KEY",
                fix="ingest with the key the store was made with (CXLAB_KEY or its "
                "~/.config/cxlab/key)",
            )
        data = (check + "\n").encode("ascii")
        if self._remote is not None:
            with contextlib.suppress(StoreConflictError):
                self._remote.write_if(_KEY_CHECK, data, version=None)
        else:  # a crash leaves at most a temporary that recover sweeps
            _fs.create_once(
                self.path / _KEY_CHECK,
                data,
                mode=0o666 & ~_UMASK,
                prefix=f"{_TMP_PREFIX}{os.getpid()}-",
            )
        got = self.key_check()
        assert got is not None  # written above, or by the writer that won
        return got

    def require_key_check(self, check: str, /, *, claim: bool = True) -> None:
        """Check that the store's subject ids were made with the key whose
        :func:`cxlab.pseudo.key_check` is ``check``; with ``claim`` (an ingest, about to
        write ids) a store that records none records ``check`` (:meth:`claim_key_check`).

        Ids made with two keys never join: every ingest command calls this before it writes
        anything, and so do ``cxlab features`` when it maps a measurements sheet's subjects
        to the store's ids and ``cxlab screen`` when it pseudonymises a subject label.

        Raises
        ------
        ConfigError
            The store records another key's check; the message names both checks,
            ``CXLAB_KEY`` and the fix.
        """
        theirs = self.claim_key_check(check) if claim else self.key_check()
        if theirs is not None and theirs != check:
            raise ConfigError(
                message(
                    f"the store {self.location} holds subject ids made with another "
                    f"pseudonymisation key (key check {theirs}; this machine's key: {check}); "
                    "ids made here would join none of them",
                    field="CXLAB_KEY",
                    fix="set CXLAB_KEY to the key the store was made with (the key file "
                    "~/.config/cxlab/key of the machine that made it), or use a new store",
                )
            )

    def older_layout(self) -> bool:
        """Whether the store was written by an older cxlab: parts without a catalog, or a
        catalog in an older format (read as it is; the next commit rewrites it). Such a
        store may hold what atomic commits never leave (a recording's parts written one by
        one, some without the others), which a caller may want to sweep."""
        state = self._cache.state()
        if state.legacy:
            return True
        return (
            self._remote is None
            and not state.shards
            and not (self.path / _catalog.CATALOG).exists()
            and self._has_legacy_parts()
        )

    def _rows(self, name: str, /) -> pa.Table:
        """The catalog rows of table ``name`` (a compacted table's: its shards only)."""
        self._adopt()
        return self._cache.read(lambda s: s.table(name, alone=name in _COMPACT))

    def lookup(self, name: str, keys: Iterable[str], /) -> dict[str, Part]:
        """The live parts of table ``name`` among ``keys`` (the others are absent), read
        from the catalog shards those keys fall in only: its cost follows ``keys``, not
        the size of the store."""
        schema_of(name)
        self._adopt()
        rows = self._cache.rows(name, keys).to_pylist()
        return {r["key"]: Part(**r) for r in sorted(rows, key=lambda r: r["key"])}

    def _has_legacy_parts(self) -> bool:
        if not self.path.is_dir():
            return False
        return any(
            next((self.path / n).rglob("part-*.parquet"), None) is not None
            for n in TABLES
            if (self.path / n).is_dir()
        )

    def parts(self, name: str, /) -> dict[str, Part]:
        """The live parts of table ``name`` by key (handles for :meth:`read_parts`)."""
        schema_of(name)
        rows = self._rows(name).to_pylist()
        return {r["key"]: Part(**r) for r in sorted(rows, key=lambda r: r["key"])}

    def find(
        self,
        name: str,
        column: str,
        values: Iterable[str],
        /,
        *,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of table ``name`` whose ``column`` is one of ``values``.

        For a column the catalog indexes (``recordings.source_path``) only the catalog
        shards of the values' digests and the files of the parts they name are read, so
        the cost follows ``values``, not the size of the table; any other column (or a
        store of an older layout, until its next commit builds the index) is a filtered
        read of the whole table.
        """
        schema = schema_of(name)
        cols = _columns(schema, columns)
        values = set(values)
        if None in values:
            raise ConfigError(
                message(
                    f"find({name!r}, {column!r}) looks rows up by value; None is no value",
                    field="values",
                    value=None,
                    fix=f"filter missing values with Store.table({name!r}, filters=...)",
                )
            )
        values = sorted(values)
        if not values:
            return _frame(schema.arrow_schema().empty_table().select(cols))
        self._adopt()
        if _INDEXED.get(name) != column or self._cache.state().legacy:
            return self.table(name, columns=cols, filters=[(column, "in", values)])
        iname = _catalog.index_name(name, column)
        hits = self._cache.read(lambda s: s.indexed(iname, values))
        keys = sorted({_catalog.part_key_of(k) for k in hits.column("key").to_pylist()})
        parts = self.lookup(name, keys)
        got = self.read_parts([parts[k] for k in keys if k in parts], table=name)
        return got.loc[got[column].isin(values), cols].reset_index(drop=True)

    def read_part(
        self, name: str, key: str, /, *, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The rows of part ``key`` of table ``name`` (empty, with the columns, if absent)."""
        part = self.parts(name).get(key)
        return self.read_parts([part] if part else [], table=name, columns=columns)

    def read_parts(
        self,
        parts: Sequence[Part],
        /,
        *,
        table: str,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of ``parts`` (from :meth:`parts`, e.g. passed to a worker) of ``table``,
        in the order given, each in the table's sort order; no catalog read."""
        schema = schema_of(table)
        cols = _columns(schema, columns)
        if not parts:
            return _frame(schema.arrow_schema().empty_table().select(cols))
        return _frame(pa.concat_tables(self.read_arrow_parts(parts, table=table, columns=cols)))

    def read_arrow_parts(
        self,
        parts: Sequence[Part],
        /,
        *,
        table: str,
        columns: Sequence[str] | None = None,
    ) -> list[pa.Table]:
        """One Arrow table per part of ``parts``, as stored (float32 sample columns stay
        float32): what :meth:`read_parts` returns without the pandas conversion, for a
        caller that slices the columns as NumPy arrays (the features runner)."""
        cols = _columns(schema_of(table), columns)
        fs = None if self._remote is None else self._remote.arrow
        if table in _COMPACT:
            return self._read_compact_parts(parts, table=table, columns=cols, fs=fs)
        read = _derived.inputs_for(table, cols)
        shared = [i for i, p in enumerate(parts) if _is_shared(p.file)]
        if shared:  # those sliced out of their files, the others read as they are
            out: list[pa.Table | None] = [None] * len(parts)
            got = self._read_shared_parts(
                [parts[i] for i in shared], table=table, columns=cols, fs=fs
            )
            for i, t in zip(shared, got, strict=True):
                out[i] = t
            rest = [i for i in range(len(parts)) if out[i] is None]
            if rest:
                own = self.read_arrow_parts([parts[i] for i in rest], table=table, columns=cols)
                for i, t in zip(rest, own, strict=True):
                    out[i] = t
            return out
        out = []
        for p in parts:
            path = self._source(p.file)
            # ParquetFile.read skips the dataset layer (6 ms, not 30 ms a part); one thread:
            # a part is one row group, and the column threads cost CPU (0.6 vs 1.0 ms a
            # 7-column forces part of 3,000-9,260 rows) in workers that fill every core.
            # A small local part (a recording's forces: tens of kB) is read whole in one
            # call and decoded from memory: 0.40 instead of 0.48 ms a forces part (one
            # read, not one per column chunk); a large one reads only its columns' bytes
            if fs is None and p.bytes <= _WHOLE_READ_BYTES:
                with pa.OSFile(path) as fh:
                    data = fh.read_buffer()
                t = pq.ParquetFile(pa.BufferReader(data)).read(columns=read, use_threads=False)
            elif fs is None:
                t = pq.ParquetFile(path).read(columns=read, use_threads=False)
            else:
                with fs.open_input_file(path) as fh:
                    t = pq.ParquetFile(fh).read(columns=read, use_threads=False)
            out.append(_derived.decode(table, t, columns=cols))
        return out

    def _read_shared_parts(
        self, parts: Sequence[Part], /, *, table: str, columns: list[str], fs
    ) -> list[pa.Table]:
        """:meth:`read_arrow_parts` when some parts share a file (:meth:`stage_many`):
        each file read once, with its ``recording_id`` column, and each part's rows
        sliced out of it (a file holds its keys' rows together, in key order). Only the
        row groups whose id statistics can hold an asked key are read: one recording of a
        large shared file (a batch's EMG analogs: millions of rows) costs the row groups
        holding its rows (its own, and neighbours packed with it up to 65,536 rows)."""
        by_file: dict[str, list[Part]] = {}
        for p in parts:
            by_file.setdefault(p.file, []).append(p)
        read = _derived.inputs_for(table, columns)
        with_id = read if "recording_id" in read else ["recording_id", *read]
        # the ids read as a dictionary: a string a row would cost more than the samples
        opts = {"read_dictionary": ["recording_id"]}
        id_field = schema_of(table).arrow_schema().field("recording_id")
        got: dict[tuple[str, str], pa.Table] = {}
        for file, mine in by_file.items():
            path = self._source(file)
            size = max(p.bytes for p in mine)
            keys = {p.key for p in mine}
            if fs is None and size <= _WHOLE_READ_BYTES:
                with pa.OSFile(path) as fh:
                    data = fh.read_buffer()
                t = _read_keys(pq.ParquetFile(pa.BufferReader(data), **opts), keys, with_id)
            elif fs is None:
                t = _read_keys(pq.ParquetFile(path, **opts), keys, with_id)
            else:
                with fs.open_input_file(path) as fh:
                    t = _read_keys(pq.ParquetFile(fh, **opts), keys, with_id)
            ids = t.column("recording_id")
            body = _derived.decode(table, t.drop_columns(["recording_id"]))
            for k, a, b in _id_runs(ids):
                piece = body.slice(a, b - a)
                if "recording_id" in columns:  # as the file declares it (not null, doc)
                    piece = piece.append_column(id_field, ids.slice(a, b - a).cast(pa.string()))
                got[(file, k)] = piece.select(columns)
        empty = schema_of(table).arrow_schema().empty_table().select(columns)
        return [got.get((p.file, p.key), empty) for p in parts]

    def _read_compact_parts(
        self, parts: Sequence[Part], /, *, table: str, columns: list[str], fs
    ) -> list[pa.Table]:
        """:meth:`read_arrow_parts` of a :data:`COMPACT_TABLES` table: each file the parts
        live in read once (the rows of their keys), each part's rows sliced out of it (a
        file holds its rows sorted by key, a part's rows together). Reading the file once
        per part instead cost 4.7 s of a re-run ingest of the demo cohort's 1,085 files."""
        by_file: dict[str, list[str]] = {}
        for p in parts:
            by_file.setdefault(p.file, []).append(p.key)
        empty = schema_of(table).arrow_schema().empty_table().select(columns)
        rows: dict[tuple[str, str], pa.Table] = {}
        for file, keys in by_file.items():
            t = pq.read_table(
                self._source(file),
                columns=[*columns, _catalog.PART_COLUMN],
                filters=pc.is_in(pc.field(_catalog.PART_COLUMN), pa.array(sorted(set(keys)))),
                filesystem=fs,
            )
            k, starts = _key_runs(t)
            if not len(k):
                continue
            if len(set(k[starts])) < len(starts):  # a file not sorted by key: sort it
                t = t.take(pc.sort_indices(t.column(_catalog.PART_COLUMN)))  # stable
                k, starts = _key_runs(t)
            ends = [*starts[1:], len(k)]
            body = t.select(columns)
            for a, b in zip(starts, ends, strict=True):
                rows[(file, k[a])] = body.slice(a, b - a)
        return [rows.get((p.file, p.key), empty) for p in parts]

    def tables(self) -> list[str]:
        """Names of the tables that have at least one part, sorted."""
        names = set(self._live().column("table").to_pylist())
        return sorted(n for n in names if n in TABLES)

    def _source(self, file: str, /) -> str:
        """Where pyarrow reads ``file`` (relative to the store): a local path, or the
        remote key for :attr:`_fs.Remote.arrow`."""
        return str(self.path / file) if self._remote is None else self._remote.key(file)

    def _files(self, name: str, /) -> list[str]:
        """The live files of table ``name``, relative to the store, sorted."""
        return sorted(pc.unique(self._rows(name).column("file")).to_pylist())

    def files(self, name: str, /) -> list[Path]:
        """The Parquet files holding table ``name``'s live parts, in a fixed order (a
        local store; on a remote one use :meth:`file_digests` or :meth:`table`)."""
        return [self.path / f for f in self._files(name)]

    def file_digests(self, name: str, /) -> list[FileDigest]:
        """The sha256 of each live file of table ``name`` (read whole), in a fixed order:
        what an experiment run records of its inputs."""
        if self._remote is None:
            return [FileDigest(f, sha256_of(self.path / f)) for f in self._files(name)]
        return [
            FileDigest(f, hashlib.sha256(self._remote.read_bytes(f)).hexdigest())
            for f in self._files(name)
        ]

    def keys(self, name: str, /) -> set[str]:
        """The part keys present in table ``name``."""
        self._adopt()
        state = self._cache.state()
        if self._keys_of is not state:  # a set per table, made once per catalog read
            self._keys_of, self._keys = state, {}
        if name not in self._keys:
            keys = self._rows(name).column("key")
            self._keys[name] = frozenset(keys.to_numpy(zero_copy_only=False).tolist())
        return set(self._keys[name])

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
        files = self._files(name)
        arrow_schema = schema.arrow_schema()
        cols = _columns(schema, columns)
        if not files:
            return _frame(arrow_schema.empty_table().select(cols))
        dataset = self._dataset(name, files)
        expr = _filter_expression(filters or [], schema.names)
        on = list(dict.fromkeys(c for c, _, _ in filters or []))
        if not set(_derived.DERIVED.get(name, ())) & set(on):
            read = _derived.inputs_for(name, cols)
            return _frame(
                _derived.decode(name, dataset.to_table(columns=read, filter=expr), columns=cols)
            )
        # a filter on a column stored as null where derived: fill, then filter
        wanted = list(dict.fromkeys([*cols, *on]))
        got = dataset.to_table(columns=_derived.inputs_for(name, wanted))
        return _frame(_derived.decode(name, got, columns=wanted).filter(expr).select(cols))

    def _dataset(self, name: str, files: list[str], /) -> ds.Dataset:
        """A pyarrow dataset over ``files`` (relative) of table ``name``, declared schema."""
        fs = None if self._remote is None else self._remote.arrow
        return ds.dataset(
            [self._source(f) for f in files],
            schema=schema_of(name).arrow_schema(),
            format="parquet",
            filesystem=fs,
        )

    def sql(self, query: str, /) -> pd.DataFrame:
        """Run one read-only DuckDB ``SELECT`` over the store's tables; return a DataFrame.

        Every declared table can be queried (an empty one if the table has not been
        written), so queries can join ``recordings``, ``forces``, ``scores`` and
        ``features`` freely. The query runs on a :meth:`connect` connection that this
        ``Store`` keeps and reuses until the catalog changes (a commit), with a view only
        for each table the query names: it can read the store's parts and nothing else.

        Raises
        ------
        ConfigError
            If ``query`` is not exactly one ``SELECT`` (``COPY``, ``ATTACH``, ``CREATE``,
            ``INSERT``, ``PRAGMA``, ``SET``, ``INSTALL``, ``LOAD``, ... are refused).
        duckdb.Error
            If DuckDB cannot run it, e.g. ``read_text('/etc/passwd')`` (a file outside the
            store: "Permission Error").
        """
        with self._sql_lock:
            cat = self._live()
            if self._sql_con is None or self._sql_cat is not cat:
                if self._sql_con is not None:
                    self._sql_con.close()
                self._sql_con, self._sql_cat = None, None
                self._sql_con, self._sql_cat = self.connect(), cat
            return self._sql_con.execute(query).df()

    def connect(self) -> ReadOnlySQL:
        """A DuckDB connection that can only read this store (use as a context manager).

        An in-memory database; a table never written is an empty table, and each written
        table becomes a view over its Parquet parts (the files the catalog lists, read with
        their one schema: no ``union_by_name`` over every footer, unless the files differ)
        when a query first names it. External access is switched off except for the
        store's directory (``enable_external_access = false``, ``allowed_directories =
        [store]``), extension installing and auto-loading are off and the configuration is
        locked (``lock_configuration = true``), so no later ``SET`` can undo it. Every
        statement passed to :meth:`ReadOnlySQL.execute` must be exactly one ``SELECT``.
        The views list the parts live when the connection was made.

        On a remote store no file is reachable from DuckDB at all (no directory is
        allowed): each table a query names is registered as a pyarrow dataset over its
        live objects (read through fsspec; DuckDB pushes projections and filters into it).
        """
        import duckdb

        if self._remote is not None:
            return self._connect_remote()
        root = str(self.path.resolve())
        con = duckdb.connect(
            ":memory:",
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        views: dict[str, list[str]] = {}
        try:
            con.execute("SET allowed_directories = [?]", [root + os.sep])
            written = set(self.tables())
            for name in TABLES:  # the catalog's relative names under the resolved root:
                if name in written:  # no resolve() (a syscall a path component) a file
                    files = self._files(name)
                    names_inside(files, table=name, store=self.path)
                    views[name] = [root + os.sep + f for f in files]
            con.execute("SET temp_directory = ''")  # no spill folder in the working directory
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return ReadOnlySQL(con, views=views)

    def _connect_remote(self) -> ReadOnlySQL:
        import duckdb

        con = duckdb.connect(
            ":memory:",
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
        try:
            written = set(self.tables())
            views = {n: self._files(n) for n in TABLES if n in written}
            con.execute("SET temp_directory = ''")
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return ReadOnlySQL(con, views=views, dataset=self._dataset)

    def info(self) -> pd.DataFrame:
        """One row per written table: rows, parts, subjects and size on disk.

        Returns
        -------
        pandas.DataFrame
            Columns ``table``, ``rows``, ``parts``, ``subjects``, ``size_bytes`` (of the
            readable files) and ``unreadable_parts``: parts in files that are not Parquet or
            lack the table's columns (overwritten by something else); they are counted, not
            read.
        """
        out = []
        for name in self.tables():
            schema = schema_of(name)
            mine = self._rows(name).to_pandas()  # the table's own catalog rows
            rows, ids, sizes, damaged, parts = 0, [], 0, 0, 0
            for file, group in mine.groupby("file", sort=True):
                try:
                    if self._remote is None:
                        f = self.path / file
                        size = f.stat().st_size
                        meta = pq.ParquetFile(f)
                    else:
                        size = self._remote.size(file)
                        meta = pq.ParquetFile(
                            self._remote.arrow.open_input_file(self._source(file))
                        )
                    if not set(schema.names) <= set(meta.schema_arrow.names):
                        damaged += len(group)  # overwritten by something else (by hand)
                        continue
                    n = meta.metadata.num_rows
                    if "subject_id" in schema.names:
                        ids.append(meta.read(columns=["subject_id"]).column(0))
                except FileNotFoundError:
                    damaged += len(group)
                    continue
                except (OSError, pa.ArrowException):
                    damaged += len(group)  # not Parquet at all
                    continue
                rows, sizes, parts = rows + n, sizes + size, parts + len(group)
            subjects = None
            if "subject_id" in schema.names:
                subjects = (
                    len(
                        pc.unique(
                            pa.chunked_array([c.cast(pa.string()) for c in ids], type=pa.string())
                        ).drop_null()
                    )
                    if ids
                    else 0
                )
            elif schema.partition_by is not None:
                subjects = int(mine["partition"].nunique())
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


def is_url(location: str | os.PathLike[str], /) -> bool:
    """Whether ``location`` names a remote store (an fsspec URL such as ``s3://b/prefix``)
    rather than a directory; ``file://`` URLs are directories."""
    return _fs.is_url(location)


class FileDigest(NamedTuple):
    """A live file of a table: its path relative to the store (POSIX) and its sha256."""

    part: str
    sha256: str


class Staged(NamedTuple):
    """A part written by :meth:`Store.stage` and not yet committed (picklable).

    Attributes
    ----------
    table, key : str
    partition : str or None
        The partition value (``__null__`` for a missing one) of a partitioned table.
    temp : str
        The staged file.
    name : str
        Its final name relative to the store (empty for a :data:`COMPACT_TABLES` part,
        which is merged into the table's file).
    rows, bytes : int
        Its rows (all keys) and the file's bytes.
    data : bytes or None
        A :data:`COMPACT_TABLES` part's rows themselves (an uncompressed Arrow IPC stream;
        ``temp`` is then empty): a recording's one ``recordings`` row or few ``events``
        rows are merged into a bucket file at the commit, so writing them to a Parquet
        file first and reading it back there would only cost time (two file operations a
        part, ~0.4 ms each).
    keys, key_rows : tuple
        For a part of several recordings (:meth:`Store.stage_many`): every key it holds,
        in its sort order, and the rows of each (``key`` is the first); empty otherwise.
    """

    table: str
    key: str
    partition: str | None
    temp: str
    name: str
    rows: int
    bytes: int
    data: bytes | None = None
    keys: tuple[str, ...] = ()
    key_rows: tuple[int, ...] = ()

    def pairs(self) -> dict[tuple[str, str], int]:
        """(table, key) -> rows, for every key the part holds."""
        if not self.keys:
            return {(self.table, self.key): self.rows}
        return {(self.table, k): n for k, n in zip(self.keys, self.key_rows, strict=True)}


_SHARED = "~"
"""Marks the name of a file holding several keys (``part-<first key>~<n>-<sha12>``): not a
character of a key (:data:`_KEY`), so a one-key part's name never carries it."""


def _part_name(name: str, partition: str | None, keys: Sequence[str], digest: str, /) -> str:
    """The final name of a signal part holding ``keys`` (one, or several sharing a file)."""
    schema = schema_of(name)
    stem = keys[0] if len(keys) == 1 else f"{keys[0]}{_SHARED}{len(keys)}"
    folder = name if partition is None else f"{name}/{schema.partition_by}={partition}"
    return f"{folder}/part-{stem}-{digest[:12]}.parquet"


def _is_shared(file: str, /) -> bool:
    """Whether a signal file's name says it holds several keys (:func:`_part_name`)."""
    return _SHARED in file.rsplit("/", 1)[-1]


def _shared_count(file: str, /) -> int:
    """How many keys a signal file's name says it holds (1 for a one-key part)."""
    stem = file.rsplit("/", 1)[-1]
    if _SHARED not in stem:
        return 1
    return int(stem.split(_SHARED, 1)[1].split("-", 1)[0])


def _read_keys(f: pq.ParquetFile, keys: set[str], columns: list[str], /) -> pa.Table:
    """``columns`` of the row groups of ``f`` whose ``recording_id`` statistics (min, max)
    can hold one of ``keys`` (a row group without statistics is read)."""
    meta = f.metadata
    j = f.schema_arrow.get_field_index("recording_id")
    wanted = sorted(keys)
    groups = []
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(j).statistics
        if st is None or not st.has_min_max:
            groups.append(g)
            continue
        lo, hi = st.min, st.max
        if isinstance(lo, bytes):
            lo, hi = lo.decode(), hi.decode()
        i = bisect.bisect_left(wanted, lo)
        if i < len(wanted) and wanted[i] <= hi:
            groups.append(g)
    if len(groups) == meta.num_row_groups:
        return f.read(columns=columns, use_threads=False)
    return f.read_row_groups(groups, columns=columns, use_threads=False)


def _id_runs(ids: pa.ChunkedArray, /) -> list[tuple[str, int, int]]:
    """(id, first row, end row) of each run of equal values of dictionary-encoded
    ``ids``, from the indices (no string a row)."""
    runs: list[tuple[str, int, int]] = []
    offset = 0
    for chunk in ids.chunks:
        idx = chunk.indices.to_numpy(zero_copy_only=False)
        if len(idx):
            names = chunk.dictionary.to_pylist()
            cut = np.flatnonzero(idx[1:] != idx[:-1]) + 1
            for a, b in zip(np.r_[0, cut], np.r_[cut, len(idx)], strict=True):
                k = names[idx[a]]
                if runs and runs[-1][0] == k and runs[-1][2] == offset + a:  # across chunks
                    runs[-1] = (k, runs[-1][1], offset + int(b))
                else:
                    runs.append((k, offset + int(a), offset + int(b)))
        offset += len(chunk)
    return runs


def recording_runs(table: pa.Table, /) -> tuple[list[str], list[int]]:
    """The recording ids of ``table`` and the rows of each, in order; ([], []) when the ids
    are not sorted (each id's rows together, ids ascending) or one is missing.
    :meth:`Store.stage_many` and the ingest worker's per-recording slices use it."""
    col = table.column("recording_id")
    if col.null_count or not len(col):
        return [], []
    counts = pc.value_counts(col)  # in order of first appearance
    keys = counts.field(0).to_pylist()
    if keys != sorted(keys) or len(keys) != len(set(keys)):
        return [], []
    if len(keys) > 1:  # ascending ids, so each id's rows are together
        c = col.combine_chunks()
        if not pc.all(pc.greater_equal(c.slice(1), c.slice(0, len(c) - 1))).as_py():
            return [], []
    return keys, counts.field(1).to_pylist()


def _ipc_bytes(table: pa.Table, /) -> bytes:
    """``table`` as an uncompressed Arrow IPC stream (its schema metadata kept)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _temps(staged: Iterable[Staged], /) -> set[str]:
    """The staged files of ``staged`` (a part kept in memory has none)."""
    return {s.temp for s in staged if s.temp}


class Transaction:
    """Writes and deletes collected by :meth:`Store.transaction`, committed together."""

    def __init__(self, store: Store):
        self.store = store
        self.staged: list[Staged] = []
        self.deleted: list[tuple[str, str]] = []

    def write(self, name: str, df, /, *, key: str = "all", partition: str | None = None) -> None:
        """As :meth:`Store.write`, visible at the end of the transaction."""
        self.staged.append(self.store.stage(name, df, key=key, partition=partition))

    def add(self, staged: Iterable[Staged], /) -> None:
        """Parts staged elsewhere (a worker's :meth:`Store.stage`)."""
        self.staged.extend(staged)

    def delete(self, name: str, /, *, key: str) -> None:
        """Remove part ``key`` of ``name`` at the end of the transaction (unless written)."""
        schema_of(name)
        self.deleted.append((name, key))


def _frame(table: pa.Table, /) -> pd.DataFrame:
    """``table`` as pandas, float32 sample columns (markers, forces) widened to float64 so
    that computation on what the store returns stays float64 (exactly: widening is lossless)."""
    f32 = [i for i, f in enumerate(table.schema) if pa.types.is_float32(f.type)]
    for i in f32:
        f = table.schema.field(i)
        table = table.set_column(i, f.with_type(pa.float64()), table.column(i).cast(pa.float64()))
    return table.to_pandas()


def _key_runs(t: pa.Table, /) -> tuple[np.ndarray, np.ndarray]:
    """A compacted file's part keys (``_part``, one a row) and the row where each run of
    equal keys starts."""
    k = t.column(_catalog.PART_COLUMN).to_numpy(zero_copy_only=False)
    return k, np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.zeros(0, int)


def _columns(schema: TableSchema, columns: Sequence[str] | None) -> list[str]:
    cols = list(columns) if columns is not None else schema.names
    for c in cols:
        if c not in schema.names:
            raise ConfigError(
                message(
                    "is not a column of table " + repr(schema.name),
                    field="columns",
                    value=c,
                    fix=f"use one of {', '.join(schema.names)}",
                )
            )
    return cols


def _parquet_bytes(
    table: pa.Table, options: dict[str, Any], /, groups: Sequence[int] | None = None
) -> bytes:
    """``table`` as the Parquet bytes :func:`_write_staged` writes to a file; with
    ``groups`` (the rows of each key of a shared file, in order) row groups hold whole
    keys: consecutive keys packed up to :data:`_SHARED_GROUP_ROWS`, a key larger than it in
    groups of its own. So a small shared file is one row group, and a reader of one key of
    a large one (a batch's EMG analogs) decodes the groups holding its rows only."""
    sink = io.BytesIO()
    opts = dict(options)
    size = opts.pop("row_group_size")
    cuts = _packed(groups or [table.num_rows], min(size, _SHARED_GROUP_ROWS))
    if len(cuts) < 2:
        pq.write_table(table.combine_chunks(), sink, **options)
        return sink.getvalue()
    with pq.ParquetWriter(sink, table.schema, **opts) as writer:
        for start, n in cuts:
            writer.write_table(table.slice(start, n).combine_chunks(), row_group_size=size)
    return sink.getvalue()


_SHARED_GROUP_ROWS = 1 << 16
"""Rows up to which consecutive recordings of a shared file are packed into one row group
(a recording of more rows has groups of its own, of up to the row-group size). Reading one
recording decodes the groups holding its rows, so the cap bounds what a reader of one
recording decodes beyond it: features read each trial's analogs alone. On the demo cohort
(2026-12-07): a group a recording 388 MB, 13.9 s of features; packed to 65,536 rows
375 MB, 13.9 s; packed to 1 M rows 373 MB, 19.4 s (a trial's EMG read decoded its
neighbours')."""


def _packed(groups: Sequence[int], size: int, /) -> list[tuple[int, int]]:
    """(first row, rows) of the slices a shared file is written in: whole keys of
    ``groups`` rows each, packed in order up to ``size`` rows; a key of more than ``size``
    rows a slice of its own (the writer cuts it at the store's row-group size)."""
    out: list[tuple[int, int]] = []
    start = n_cur = 0
    for n in groups:
        if n_cur and n_cur + n > size:
            out.append((start, n_cur))
            start, n_cur = start + n_cur, 0
        n_cur += n
        if n_cur >= size:
            out.append((start, n_cur))
            start, n_cur = start + n_cur, 0
    if n_cur:
        out.append((start, n_cur))
    return out


def _write_staged(
    table: pa.Table, folder: Path, pid: int, groups: Sequence[int] | None = None
) -> tuple[Path, str, int]:
    """Write ``table`` into ``folder`` as ``.tmp-<pid>-*.parquet``: (path, sha256, bytes).

    Not fsynced: the commit makes every file it lists durable at once
    (:func:`_sync_store`) before its catalog root is replaced. Written in place
    (``fresh``): the name is already a new temporary one that no reader looks at (the
    commit renames it to its final name once whole), so a second temporary name and rename
    would only cost time (0.5 ms a file here; a commit into a large store writes ~40 bucket
    files); a write cut short by a kill leaves a ``.tmp-<pid>-`` file that
    :meth:`Store.recover` removes once the writer is gone."""
    path = folder / f"{_TMP_PREFIX}{pid}-{uuid.uuid4().hex}.parquet"
    data = _parquet_bytes(table, parquet_options(table.schema), groups)
    with atomic_file(path, durable=False, fresh=True) as fh:
        fh.write(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


_BUCKET_ROWS = 1024
"""Keys per file a compacted table aims at: above it, its keys are spread over 16**level
files by the first ``level`` hex digits of sha256(key), so a commit rewrites only the files
its keys fall in (about ``min(changed keys, 16**level) * 1024`` rows), never the table."""


def _bucket_level(n_keys: int, /) -> int:
    """Hex digits of the bucket prefix for a compacted table of ``n_keys`` live keys: the
    smallest level whose 16**level buckets hold at most :data:`_BUCKET_ROWS` keys each on
    average (0 = one file, as a small store has)."""
    level = 0
    while n_keys > _BUCKET_ROWS * 16**level:
        level += 1
    return level


def _bucket_of(key: str, level: int, /) -> str:
    import hashlib

    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:level]


def _bucket_of_file(file: str, /) -> str:
    """The bucket prefix a compacted file's name says (``part-b<prefix>-<sha16>``; ``""``
    for the one file of level 0)."""
    stem = file.rsplit("/", 1)[-1].removeprefix("part-")
    return stem.split("-", 1)[0][1:] if stem.startswith("b") and "-" in stem else ""


def _level_of_file(file: str, /) -> int:
    """The bucket level a compacted file's name says: its prefix's length."""
    return len(_bucket_of_file(file))


_MERGE_THREADS = 2
"""Buckets a commit merges at once (reading, sorting and writing a bucket file is Arrow and
Parquet work that releases the GIL; the machine this was measured on has 2 cores)."""


def _merge_compact(
    root: Path | None,
    name: str,
    old_files: list[str],
    drop: set[str],
    new: list[Staged],
    level: int,
    *,
    remote: _fs.Remote | None = None,
    written: dict[str, bytes] | None = None,
    index: _IndexChange | None = None,
):
    """The new files of compacted table ``name`` replacing ``old_files``: their rows minus
    the keys in ``drop``, plus the staged parts, one file per key bucket of ``level`` (one
    file at level 0), ordered by key, so the bytes depend only on the live parts.
    Returns a list of (staged path, final name, its catalog rows) in bucket order, none for
    an empty bucket. On a remote store (``remote``) the files are read from it and the new
    ones are kept in ``written`` (token -> bytes) for the commit to write at their final
    keys. The index pairs of the rows dropped and added (:data:`_INDEXED`) are collected in
    ``index``.

    Each bucket is merged on its own, from its old file and its staged parts: an old
    file's bucket is in its name, so only the staged keys are hashed and each sort is of
    one bucket's rows (a commit of 20 recordings into a store of 100,000 merges about 20
    files of 400 rows a table, instead of sorting and hashing their 8,000 rows together).
    Old files of another level (the commit that crosses a level) are read together and
    every key is hashed, once."""
    schema = schema_of(name)
    target = schema.arrow_schema().append(pa.field(_catalog.PART_COLUMN, pa.string(), False))
    fs = None if remote is None else remote.arrow
    column = _INDEXED.get(name) if index is not None else None
    drop_keys = pa.array(sorted(drop), pa.string())
    inputs: dict[str, tuple[list[pa.Table | str], list[Staged]]] = {}  # bucket -> (old, new)
    if all(_level_of_file(f) == level for f in old_files):
        for f in old_files:
            inputs.setdefault(_bucket_of_file(f), ([], []))[0].append(f)
    else:  # a level crossed: every old row to its bucket of the new level
        old = pa.concat_tables(
            [_read_as(_source_of(root, f, remote), target, fs) for f in old_files]
        )
        parts = old.column(_catalog.PART_COLUMN)
        uniq = pc.unique(parts)
        of_key = pa.array([_bucket_of(k, level) for k in uniq.to_pylist()], pa.string())
        buckets = pc.take(of_key, pc.index_in(parts, value_set=uniq))
        for b in sorted(set(of_key.to_pylist())):
            inputs.setdefault(b, ([], []))[0].append(old.filter(pc.equal(buckets, b)))
    for s in new:
        inputs.setdefault(_bucket_of(s.key, level), ([], []))[1].append(s)

    def merge(bucket: str):
        """Bucket ``bucket``'s file: (its rows, staged path or None, sha256, bytes, the
        bytes kept for a remote store or None, index pairs gone, added); no rows, None."""
        olds, news = inputs[bucket]
        pieces, gone_pairs, added_pairs = [], set(), set()
        for o in olds:
            t = _read_as(_source_of(root, o, remote), target, fs) if isinstance(o, str) else o
            if drop:
                gone = pc.is_in(t.column(_catalog.PART_COLUMN), value_set=drop_keys)
                if column:
                    gone_pairs |= _index_pairs(name, t.filter(gone), column)
                t = t.filter(pc.invert(gone))
            pieces.append(t)
        for s in news:
            if s.data is not None:
                t = pa.ipc.open_stream(s.data).read_all()
            else:  # a file (a store of an older layout adopting its parts)
                src = s.temp if remote is None else remote.key(s.temp)
                t = _read_as(src, schema.arrow_schema(), fs)
            t = t.append_column(target.field(-1), pa.array([s.key] * t.num_rows, pa.string()))
            if column:
                added_pairs |= _index_pairs(name, t, column)
            pieces.append(t)
        table = pa.concat_tables(pieces).cast(target)
        if not table.num_rows:
            return None, gone_pairs, added_pairs
        order = pc.sort_indices(table.column(_catalog.PART_COLUMN))  # stable: parts keep order
        piece = table.take(order).combine_chunks()
        if remote is None:
            temp, digest, size = _write_staged(piece, root / _catalog.STAGING, os.getpid())
            return (piece, temp, digest, size, None), gone_pairs, added_pairs
        data = _parquet_bytes(piece, parquet_options(piece.schema))
        return (
            (piece, None, hashlib.sha256(data).hexdigest(), len(data), data),
            gone_pairs,
            added_pairs,
        )

    buckets = sorted(inputs)
    if len(buckets) > 1:  # Parquet reads and writes release the GIL: a few at once
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(_MERGE_THREADS, len(buckets))) as pool:
            merged = list(pool.map(merge, buckets))
    else:
        merged = [merge(b) for b in buckets]
    out = []
    for bucket, (got, gone_pairs, added_pairs) in zip(buckets, merged, strict=True):
        if index is not None:
            index.gone.update(gone_pairs)
            index.added.update(added_pairs)
        if got is None:
            continue
        piece, temp, digest, size, data = got
        if data is not None:
            temp = f"memory:{len(written)}"
            written[temp] = data
        tag = f"b{bucket}-" if level else ""
        final = f"{name}/part-{tag}{digest[:16]}.parquet"
        counts = piece.column(_catalog.PART_COLUMN).value_counts()  # in order of appearance
        n = len(counts)
        rows = pa.Table.from_arrays(  # the catalog rows, built in Arrow (100,000s of keys)
            [
                pa.array([name] * n, pa.string()),
                counts.field(0),
                pa.nulls(n, pa.string()),
                pa.array([final] * n, pa.string()),
                counts.field(1).cast(pa.int64()),
                pa.array(np.full(n, size, dtype=np.int64)),
            ],
            schema=_catalog.SCHEMA,
        )
        out.append((temp, final, rows))
    return out


_INDEXED = {"recordings": "source_path"}
"""Compacted tables the catalog indexes by a column (:meth:`Store.find`): ingest finds the
earlier version of a changed file by its path without reading the table."""


class _IndexChange(NamedTuple):
    """The index pairs (index table, key) a commit removes and adds (``base``: those of a
    store of an older layout, which has no index yet, built whole by its first commit)."""

    gone: set[tuple[str, str]]
    added: set[tuple[str, str]]
    base: set[tuple[str, str]]


def _index_pairs(name: str, rows: pa.Table, column: str, /) -> set[tuple[str, str]]:
    """The index pairs of compacted rows ``rows`` (with their ``_part``) by ``column``."""
    iname = _catalog.index_name(name, column)
    return {
        (iname, _catalog.index_key(v, k))
        for v, k in zip(
            rows.column(column).to_pylist(),
            rows.column(_catalog.PART_COLUMN).to_pylist(),
            strict=True,
        )
    }


def _index_all(root: Path | None, name: str, files: list[str], remote=None):
    """The index pairs of every row of ``files`` of compacted table ``name`` (the first
    commit to a store of an older layout builds its index whole)."""
    column = _INDEXED[name]
    fs = None if remote is None else remote.arrow
    out: set[tuple[str, str]] = set()
    for f in files:
        src = str(root / f) if remote is None else remote.key(f)
        t = pq.read_table(src, columns=[column, _catalog.PART_COLUMN], filesystem=fs)
        out |= _index_pairs(name, t, column)
    return out


def _source_of(root: Path | None, file: str, remote: _fs.Remote | None, /) -> str:
    """Where a file of the store (``file`` relative to it) is read. Not for a staged part:
    its ``temp`` is already the path to read locally (relative to the working directory
    when the store's path is), the key on a remote store."""
    return str(root / file) if remote is None else remote.key(file)


def _read_as(src: str, schema: pa.Schema, fs, /) -> pa.Table:
    """The Parquet file ``src`` with ``schema``: a local file whose schema is already that
    is read by ``ParquetFile.read`` (no dataset layer: a few ms a file, not 30; a commit
    of 20 recordings into a large store reads about 40 bucket files); any other (a remote
    one, or one written before a column was added) through the dataset, which fills in
    the missing columns."""
    if fs is None:
        f = pq.ParquetFile(src)
        if f.schema_arrow.equals(schema, check_metadata=False):
            return f.read(use_threads=False).cast(schema)  # a bucket: the pool costs more
    return pq.read_table(src, schema=schema, filesystem=fs)


def _group_level(table: str, n_keys: int, /) -> int | None:
    """How the catalog shards ``table``'s parts (:func:`cxlab._catalog.commit_state`): a
    compacted table's in shards of its own, one per bucket file (so a rewritten bucket
    changes one shard); the others by key, together."""
    if table in _COMPACT or _catalog.INDEX_SEP in table:
        return _bucket_level(n_keys)
    return None


def _bucket_prefixes(table: str, rows: pa.Table, level: int, /) -> pa.Array:
    """The bucket of ``level`` (the catalog shard prefix) of each catalog row of compacted
    table ``table``, read from its file's name (``<table>/part-b<prefix>-<sha16>``): a
    commit into a large store rewrites every row of its ~20 buckets a table, whose keys
    need no hashing; only a row whose file names no bucket of that level (a removal, a
    file of another level) is hashed."""
    n = rows.num_rows
    if level == 0:
        return pa.array([""] * n, pa.string())
    files = rows.column("file")
    head = len(table) + len("/part-b")
    prefix = pc.utf8_slice_codeunits(files, head, head + level)
    dash = pc.equal(pc.utf8_slice_codeunits(files, head + level, head + level + 1), "-")
    named = pc.fill_null(pc.and_(pc.starts_with(files, f"{table}/part-b"), dash), False)
    named = named.combine_chunks() if isinstance(named, pa.ChunkedArray) else named
    prefix = prefix.combine_chunks() if isinstance(prefix, pa.ChunkedArray) else prefix
    if named.false_count == 0:
        return prefix
    keys = rows.column("key").filter(pc.invert(named)).to_pylist()
    return pc.replace_with_mask(prefix, pc.invert(named), _catalog.shard_of(keys, level))


def _compact_plan(
    cat: pa.Table, name: str, changed: set[str], new_keys: set[str], n_before: int | None = None
):
    """Which files of compacted table ``name`` a commit changing keys ``changed`` (of
    which ``new_keys`` are written) rewrites, and at which bucket level: (files, level).
    Only the buckets of the changed keys, unless the table's size crosses a level (then
    every file, once: the layout stays a function of the live keys alone). ``cat`` holds
    every catalog row of the table, or (``n_before`` = the table's live keys) only the rows
    of the buckets the changed keys fall in."""
    mine = cat.filter(pc.equal(cat.column("table"), name))
    keys = mine.column("key")
    files = mine.column("file")
    gone = pc.is_in(keys, value_set=pa.array(sorted(changed), pa.string()))
    n_now = len(keys) if n_before is None else n_before
    n_after = int(n_now - pc.sum(gone).as_py() if len(keys) else n_now) + len(new_keys)
    level = _bucket_level(n_after)
    all_files = sorted(pc.unique(files).to_pylist())  # a few hundred, of 100,000s of rows
    if not all_files:
        return [], level
    if level == 0 or {_level_of_file(f) for f in all_files} != {level}:
        return all_files, level
    tags = sorted({f"{name}/part-b{_bucket_of(k, level)}-" for k in changed})
    hit = [f for f in all_files if any(f.startswith(t) for t in tags)]
    return hit, level


class _CommitRows(NamedTuple):
    """The catalog rows a commit can change, read from the shards its keys fall in only
    (:func:`_commit_rows`), and each touched compacted table's live keys before it."""

    rows: pa.Table
    counts: dict[str, int]


def _commit_rows(
    state: _catalog.State, changed: set[tuple[str, str]], written: set[tuple[str, str]]
) -> _CommitRows | None:
    """The catalog rows a commit of ``changed`` (table, key) pairs (``written`` of them
    staged) can change, read from their shards only; None when the commit needs every
    live row instead (a root in an older format, a compacted table crossing a bucket
    level, bucket files at another level than their shards)."""
    if state.legacy:
        return None
    by_group: dict[str, set[str]] = {}
    for t, k in changed:
        by_group.setdefault(t if t in _COMPACT else "", set()).add(k)
    pieces: list[pa.Table] = []
    counts: dict[str, int] = {}
    for g, keys in sorted(by_group.items()):
        level = state.level(g)
        if level is None:
            continue  # no shard yet: nothing to read
        if g:
            n = state.count(g)
            have = len(state.rows(g, keys))
            n_written = sum(1 for t, k in written if t == g)
            if _bucket_level(n - have + n_written) != level:
                return None
            counts[g] = n
        prefixes = _catalog.shard_of(sorted(keys), level).to_pylist()
        rows = [state.shard(sid) for sid in sorted({_catalog.shard_id(g, p) for p in prefixes})]
        files = {f for r in rows for f in pc.unique(r.column("file")).to_pylist()}
        if g and any(_level_of_file(f) != level for f in files):
            return None
        pieces += rows
    cat = pa.concat_tables(pieces).combine_chunks() if pieces else _catalog.empty()
    return _CommitRows(cat, counts)


class _Plan(NamedTuple):
    """What one commit does: the live parts after it (in no particular order), its catalog
    changes (:func:`cxlab._catalog.changes`), the (staged, final) moves, the files it drops
    (``stale``) and the staged files to remove once done (``consumed``)."""

    live: pa.Table
    change: pa.Table
    moves: list[tuple[str, str]]
    added: set[str]
    stale: list[str]
    consumed: list[str]


def _plan_commit(
    cat: pa.Table,
    last: dict[tuple[str, str], Staged],
    delete,
    *,
    counts: dict[str, int] | None = None,
    index: _IndexChange | None = None,
    root: Path | None,
    remote: _fs.Remote | None = None,
    written: dict[str, bytes] | None = None,
) -> _Plan | None:
    """The commit of ``last`` (the staged parts by table and key) and ``delete`` on
    catalog rows ``cat`` (every live part, or with ``counts`` = each touched compacted
    table's live keys, only the rows of the shards the commit's keys fall in:
    :func:`_commit_rows`): the compacted tables' touched buckets are merged (written to
    the staging folder, or kept in ``written`` for a remote store); None if nothing
    changes. Its cost follows the rows the commit touches."""
    changed = {*last, *((t, k) for t, k in delete)}
    if not changed:
        return None
    hit = _hits(cat, changed)
    touched_compact = sorted({t for t, _ in changed if t in _COMPACT})
    plans = {
        t: _compact_plan(
            cat,
            t,
            {k for tt, k in changed if tt == t},
            {k for tt, k in last if tt == t},
            None if counts is None else counts.get(t, 0),
        )
        for t in touched_compact
    }
    rewritten = sorted({f for files, _ in plans.values() for f in files})
    in_compact = pc.is_in(cat.column("file"), value_set=pa.array(rewritten, pa.string()))
    out = cat.filter(pc.or_(hit, in_compact))
    before = pc.unique(out.column("file")).to_pylist()
    keep = cat.filter(pc.invert(pc.or_(hit, in_compact)))
    rows: list[dict] = []
    compacted: list[pa.Table] = []
    moves: list[tuple[str, str]] = []
    consumed: list[str] = []
    moved: set[str] = set()
    for (t, k), s in sorted(last.items()):
        if t in _COMPACT:
            continue
        n = s.rows if not s.keys else s.key_rows[s.keys.index(k)]
        rows.append(dict(table=t, key=k, partition=s.partition, file=s.name, rows=n, bytes=s.bytes))
        if s.name not in moved:  # a part of several keys moves once
            moves.append((s.temp, s.name))
            moved.add(s.name)
    keep, cut = _cut_shared(root, keep, out, remote=remote, written=written)
    for _, temp, final, cut_rows in cut:
        moves.append((temp, final))
        if remote is None:
            consumed.append(temp)  # removed if the commit fails before it is moved
        compacted.append(cut_rows)
    for t in touched_compact:
        old_files, level = plans[t]
        drop = {k for tt, k in changed if tt == t}
        new = [s for (tt, _), s in sorted(last.items()) if tt == t]
        consumed += [s.temp for s in new if s.temp]
        merged = _merge_compact(
            root, t, old_files, drop, new, level, remote=remote, written=written, index=index
        )
        for temp, final, compact_rows in merged:
            moves.append((str(temp), final))
            if remote is None:
                consumed.append(str(temp))  # removed if the commit fails before it is moved
            compacted.append(compact_rows)
    if index is not None:  # index rows name no file: a rewritten bucket leaves them be
        now = (index.base - index.gone) | index.added
        gone = index.gone - now
        rows += [
            dict(table=t, key=k, partition=None, file="", rows=1, bytes=0) for t, k in sorted(now)
        ]
    new_rows = pa.concat_tables([pa.Table.from_pylist(rows, schema=_catalog.SCHEMA), *compacted])
    touched = out.select(["table", "key"])
    if index is not None and gone:
        pairs = sorted(gone)
        touched = pa.concat_tables(
            [
                touched,
                pa.table(
                    {
                        "table": pa.array([t for t, _ in pairs], pa.string()),
                        "key": pa.array([k for _, k in pairs], pa.string()),
                    },
                    schema=touched.schema,
                ),
            ]
        )
    new_live = pa.concat_tables([keep, new_rows]).combine_chunks()
    added = {f for _, f in moves}
    stale = sorted(set(before) - added)
    if stale:  # a file still listed for another key must stay (a shared one not cut)
        listed = pc.is_in(new_live.column("file"), value_set=pa.array(stale, pa.string()))
        still = set(new_live.filter(listed).column("file").to_pylist())
        stale = [f for f in stale if f not in still]
    return _Plan(new_live, _catalog.changes(touched, new_rows), moves, added, stale, consumed)


def _shared_hits(cat: pa.Table, pairs: set[tuple[str, str]], /) -> list[tuple[str, str]]:
    """(table, file) of the shared signal files (:func:`_is_shared`) holding ``pairs``."""
    if not pairs:
        return []
    sub = cat.filter(_hits(cat, pairs))
    return sorted(
        {
            (t, f)
            for t, f in zip(
                sub.column("table").to_pylist(), sub.column("file").to_pylist(), strict=True
            )
            if t not in _COMPACT and f and _is_shared(f)
        }
    )


def _file_keys(root: Path | None, file: str, remote: _fs.Remote | None, /) -> list[str]:
    """The recording ids a shared signal file holds (its one id column read)."""
    fs = None if remote is None else remote.arrow
    col = pq.read_table(
        _source_of(root, file, remote),
        columns=["recording_id"],
        filesystem=fs,
        read_dictionary=["recording_id"],
    ).column(0)
    return sorted({v for c in col.chunks for v in c.dictionary.to_pylist()})


def _siblings(
    cat: pa.Table, changed: set[tuple[str, str]], /, *, root: Path | None, remote
) -> tuple[set[tuple[str, str]], bool]:
    """The (table, key) pairs that share a file with a changed pair and are not changed
    themselves: the commit rewrites that file without the changed keys, so it needs their
    catalog rows (they may be in shards the changed keys do not fall in). False with them
    when a shared file could not be read: then only the whole catalog says which keys
    still list it (the commit reads it all, a damaged file's case only)."""
    out: set[tuple[str, str]] = set()
    complete = True
    for t, f in _shared_hits(cat, changed):
        mine = cat.filter(pc.equal(cat.column("file"), f))
        gone = sum(
            1
            for p in zip(
                mine.column("table").to_pylist(), mine.column("key").to_pylist(), strict=True
            )
            if p in changed
        )
        if gone >= _shared_count(f):
            continue  # every key of the file goes: nothing to keep, nothing to read
        try:
            out |= {(t, k) for k in _file_keys(root, f, remote)}
        except (OSError, pa.ArrowException):
            complete = False  # unreadable: not cut, it stays for its other keys
    return out - changed, complete


def _cut_shared(
    root: Path | None,
    keep: pa.Table,
    out: pa.Table,
    *,
    remote: _fs.Remote | None,
    written: dict[str, bytes] | None,
) -> tuple[pa.Table, list[tuple[str, str, str, pa.Table]]]:
    """Shared signal files that lose keys in this commit (rows ``out``) but keep others
    (rows in ``keep``): each rewritten with only the kept keys' rows, under the name and
    with the bytes :meth:`Store.stage_many` gives those rows. Returns ``keep`` without the
    re-pointed rows and a list of (the file cut, staged path or memory token, final name,
    the kept keys' new catalog rows). A file that cannot be read, or does not hold the rows
    the catalog lists, is not cut: it stays listed for its other keys."""
    files = sorted(
        {
            f
            for t, f in zip(
                out.column("table").to_pylist(), out.column("file").to_pylist(), strict=True
            )
            if t not in _COMPACT and f and _is_shared(f)
        }
    )
    if not files:
        return keep, []
    listed = pc.is_in(keep.column("file"), value_set=pa.array(files, pa.string()))
    still = keep.filter(listed)
    if not still.num_rows:
        return keep, []
    fs = None if remote is None else remote.arrow
    made = []
    for file in sorted(set(still.column("file").to_pylist())):
        mine = still.filter(pc.equal(still.column("file"), file))
        mine = mine.take(pc.sort_indices(mine.column("key")))
        name = mine.column("table")[0].as_py()
        partition = mine.column("partition")[0].as_py()
        keys = mine.column("key").to_pylist()
        schema = schema_of(name).arrow_schema()
        try:
            t = _read_as(_source_of(root, file, remote), schema, fs)
        except (OSError, pa.ArrowException):
            continue  # unreadable (Store.info counts it): it stays, listed for the others
        t = t.filter(pc.is_in(t.column("recording_id"), value_set=pa.array(keys, pa.string())))
        if t.num_rows != pc.sum(mine.column("rows")).as_py():
            continue  # not the rows the catalog lists: left as it is, not rewritten
        t = t.combine_chunks()
        groups = mine.column("rows").to_pylist() if len(keys) > 1 else None
        if remote is None:
            temp, digest, size = _write_staged(t, root / _catalog.STAGING, os.getpid(), groups)
            temp = str(temp)
        else:
            data = _parquet_bytes(t, parquet_options(t.schema), groups)
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
            temp = f"memory:{len(written)}"
            written[temp] = data
        final = _part_name(name, partition, keys, digest)
        n = len(keys)
        rows = pa.Table.from_arrays(
            [
                mine.column("table"),
                mine.column("key"),
                mine.column("partition"),
                pa.array([final] * n, pa.string()),
                mine.column("rows"),
                pa.array(np.full(n, size, dtype=np.int64)),
            ],
            schema=_catalog.SCHEMA,
        )
        made.append((file, temp, final, rows))
    done = pa.array([f for f, *_ in made], pa.string())
    moved = pc.is_in(keep.column("file"), value_set=done)
    return keep.filter(pc.invert(moved)), made


def _planned(state: _catalog.State, last, delete, **kw) -> _Plan | None:
    """:func:`_plan_commit` on the rows of the shards the commit touches, or on every
    live part when it must (:func:`_commit_rows`)."""
    changed = {*last, *((t, k) for t, k in delete)}
    read = _commit_rows(state, changed, set(last))
    if read is not None:  # the other keys of a shared file the commit cuts: their rows too
        sib, complete = _siblings(read.rows, changed, root=kw.get("root"), remote=kw.get("remote"))
        if not complete:
            read = None
        elif sib:
            read = _commit_rows(state, changed | sib, set(last))
    cat, counts = (state.live, None) if read is None else read
    index = _IndexChange(set(), set(), set())
    if state.legacy:  # the first commit of the current layout: the index, whole
        for name in sorted(_INDEXED):
            mine = cat.filter(pc.equal(cat.column("table"), name)).column("file")
            files = sorted(pc.unique(mine).to_pylist())
            index.base.update(_index_all(kw.get("root"), name, files, kw.get("remote")))
    return _plan_commit(cat, last, delete, counts=counts, index=index, **kw)


def _next_catalog(state: _catalog.State, plan: _Plan, /):
    """The catalog after ``plan``: (new state, {shard file: bytes} to write, the shard
    files it drops, the root's bytes). Only the shards of the changed keys are written."""
    new, write, dropped = _catalog.commit_state(state, plan.change, _group_level, _bucket_prefixes)
    root = _parquet_bytes(_catalog.root_table(new.shards), _PARQUET_OPTS)
    return new, write, dropped, root


_SYNCFS: list = []


def _sync_store(root: Path, files: Iterable[str], /) -> None:
    """Make ``files`` (relative to ``root``) and the renames that named them durable.

    One ``syncfs(2)`` of the store's file system on Linux (every file a commit moved or
    wrote, in one call); elsewhere one ``fsync`` per file and per folder holding one."""
    if not _SYNCFS:
        import ctypes

        try:
            fn = ctypes.CDLL(None, use_errno=True).syncfs
        except (AttributeError, OSError):
            fn = None
        _SYNCFS.append(fn)
    fn = _SYNCFS[0]
    if fn is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if fn(fd) == 0:
                return
        finally:
            os.close(fd)
    folders = set()
    for f in files:
        _fsync(root / f)
        folders.add((root / f).parent)
    for d in sorted(folders):
        _fsync(d)


def _fsync(path: Path, /) -> None:
    """fsync a file, or a folder (so that a rename into it survives a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hits(cat: pa.Table, pairs: set[tuple[str, str]], /) -> pa.Array:
    """Which rows of ``cat`` are one of the (table, key) ``pairs``: the keys looked up
    first (a hash lookup over the key column), the pairs only among the few rows that
    share a key, so no string is built per row of a catalog of 100,000s of parts."""
    n = cat.num_rows
    keys = pa.array(sorted({k for _, k in pairs}), pa.string())
    idx = np.flatnonzero(pc.is_in(cat.column("key"), value_set=keys).to_numpy(False))
    mask = np.zeros(n, dtype=bool)
    if len(idx):
        sub = cat.take(pa.array(idx, pa.int64()))
        pk = _catalog.pair_keys(sub.column("table"), sub.column("key"))
        want = pa.array(sorted(f"{t}\x00{k}" for t, k in pairs), pa.string())
        mask[idx[pc.is_in(pk, value_set=want).to_numpy(False)]] = True
    return pa.array(mask)


def _latest(staged: list[Staged]) -> tuple[dict[tuple[str, str], Staged], list[Staged]]:
    """The last staged part of each (table, key), and the earlier ones it supersedes."""
    last: dict[tuple[str, str], Staged] = {}
    superseded: list[Staged] = []
    for s in staged:
        pairs = s.pairs()
        if all(last.get(p) == s for p in pairs):
            continue  # the same part given twice (each recording of a shared part names it)
        for p in pairs:
            old = last.get(p)
            if old is not None:
                if old.keys or s.keys:  # the shared file would keep a row no one lists
                    raise ConfigError(
                        message(
                            "is staged twice in one commit, once in a part of several keys",
                            field="staged",
                            value=f"{p[0]}:{p[1]}",
                            fix="stage each recording once per commit",
                        )
                    )
                superseded.append(old)
            last[p] = s
    return last, superseded


def _commit(root: Path, cache: _catalog.Cache, staged: list[Staged], delete) -> None:
    """One commit, under the writer lock (see :meth:`Store.commit`).

    The protocol: journal (the files it adds and drops) -> staged parts renamed to their
    final names -> the touched catalog shards written -> one ``syncfs`` (every file above, durable
    at once) -> the root written, fsynced and renamed over ``_catalog.parquet`` (the commit
    point) and its folder fsynced -> the dropped files removed -> the journal removed."""
    state = cache.state()
    _catalog.finish_journal(root, state)  # a commit cut short by a crash: drop its losers
    last, superseded = _latest(staged)
    for s in superseded:
        if s.temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(s.temp)
    plan = _planned(state, last, delete, root=root)
    if plan is None:
        return
    moves, added, consumed = plan.moves, plan.added, plan.consumed
    new_state, shards, dropped, root_bytes = _next_catalog(state, plan)
    stale = [*plan.stale, *dropped]
    try:
        _catalog.write_journal(root, [*added, *shards, *stale], _write_journal_text)
        made: set[Path] = set()
        for temp, final in moves:
            dest = root / final
            if dest.parent not in made:  # once a folder: a commit moves ~60 files into few
                dest.parent.mkdir(parents=True, exist_ok=True)
                made.add(dest.parent)
            os.replace(temp, dest)
        for name, data in sorted(shards.items()):
            with atomic_file(root / name, durable=False) as fh:
                fh.write(data)
        # the small tables' staged parts are merged into new files by now and no root will
        # ever list them (a crash before the commit point loses staged work either way):
        # removed before the sync, while their blocks are still unwritten and cheap to free
        merged = {str(temp) for temp, _ in moves}
        _remove([Path(t) for t in consumed if t not in merged])
        _sync_store(root, [*sorted(added), *sorted(shards)])
        with atomic_file(root / _catalog.CATALOG) as fh:
            fh.write(root_bytes)
        _fsync(root)
    except BaseException:
        for temp in consumed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        raise
    cache.prime(new_state)
    _remove([root / f for f in stale])  # the consumed parts went before the sync
    _prune_empty_dirs(root, plan.stale)
    (root / _catalog.JOURNAL).unlink(missing_ok=True)


_REMOVE_THREADS = 16


def _remove(paths: Sequence[Path], /) -> None:
    """Unlink ``paths`` (absent ones skipped), on up to :data:`_REMOVE_THREADS` threads when
    there are many: freeing a file's written blocks waits on the device (3.3 ms a file on
    this machine's ext4 with online ``discard``, 0.7 ms with 16 unlinks in flight), and a
    commit into a large store drops ~40 bucket files and ~80 catalog shards."""

    def one(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    if len(paths) <= 4:
        for p in paths:
            one(p)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(_REMOVE_THREADS, len(paths))) as pool:
        list(pool.map(one, paths))


def _write_journal_text(text: str, path: Path) -> None:
    """The journal, written whole or not at all but not fsynced: it only names files to
    clean up after a crash, and a journal lost to a power cut leaves unlisted files
    (invisible; ``recover`` on a remote-style sweep or by hand), never a wrong store."""
    with atomic_file(path, durable=False) as fh:
        fh.write(text.encode("utf-8"))


def _commit_remote(
    remote: _fs.Remote, cache: _catalog.RemoteCache, staged: list[Staged], delete
) -> None:
    """One commit of a remote store: the parts are at their final keys already (written by
    :meth:`Store.stage`); the merged small-table files and the touched catalog shards are
    written to theirs, then the catalog's root object, conditionally on the version this commit
    read (S3), last."""
    state = cache.state()
    version = cache.version
    live = state.files()
    last, superseded = _latest(staged)
    written: dict[str, bytes] = {}
    plan = _planned(state, last, delete, root=None, remote=remote, written=written)
    kept = _temps(last.values())
    if plan is None:
        remote.remove(sorted(_temps(superseded) - kept - live))
        return
    moves, added, consumed = plan.moves, plan.added, plan.consumed
    new_state, shards, dropped, root_bytes = _next_catalog(state, plan)
    try:
        for temp, final in moves:
            if temp in written:
                remote.write_bytes(final, written.pop(temp))
        for name, data in sorted(shards.items()):
            remote.write_bytes(name, data)
        remote.write_if(_catalog.CATALOG, root_bytes, version=version)
    except BaseException:
        # nothing of this commit is listed: remove what it wrote, but never a file the
        # catalog lists now (the same bytes may be live, e.g. another writer's commit)
        with contextlib.suppress(Exception):
            now = _catalog.RemoteCache(remote).state().files()
            mine = added | _temps(staged) | set(consumed) | set(shards)
            remote.remove(sorted(mine - live - now))
        raise
    cache.prime(new_state, root_bytes)
    listed = new_state.files()
    gone = set(plan.stale) | set(consumed) | _temps(superseded)
    gone |= set(dropped)
    remote.remove(sorted(gone - listed))


def _sweep_remote(remote: _fs.Remote, state: _catalog.State, /, *, older_than_s: float) -> int:
    """Remove every object of a remote store the catalog ``state`` does not name and that
    is older than ``older_than_s`` seconds (see :meth:`Store.recover`)."""
    import datetime as dt

    live = state.files() | {_catalog.CATALOG, _KEY_CHECK}
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_s)
    orphans = [e.name for e in remote.entries() if e.name not in live and e.modified <= cutoff]
    return remote.remove(orphans)


def _prune_empty_dirs(root: Path, removed: list[str]) -> None:
    """Remove partition folders left empty by ``removed`` files (never a table's folder)."""
    for d in sorted({(root / f).parent for f in removed}, key=lambda p: -len(p.parts)):
        if d.parent != root and d != root:
            with contextlib.suppress(OSError):
                d.rmdir()


def _adopt_legacy(root: Path, cache: _catalog.Cache) -> None:
    """Catalog a store written before the catalog existed (one directory walk, once):
    every ``part-<key>.parquet`` becomes a live part; compacted tables are merged."""
    if (root / _catalog.CATALOG).exists():
        return
    staged: list[Staged] = []
    rows: list[dict] = []
    for name in sorted(TABLES):
        schema = schema_of(name)
        if not (root / name).is_dir():
            continue
        for f in sorted((root / name).rglob("part-*.parquet")):
            key = f.stem.removeprefix("part-")
            partition = None
            if schema.partition_by is not None:
                partition = f.parent.name.partition("=")[2] or _NULL_PARTITION
            n = pq.ParquetFile(f).metadata.num_rows
            rel = f.relative_to(root).as_posix()
            if name in _COMPACT:
                staged.append(Staged(name, key, None, str(f), "", n, f.stat().st_size))
            else:
                rows.append(
                    dict(
                        table=name,
                        key=key,
                        partition=partition,
                        file=rel,
                        rows=n,
                        bytes=f.stat().st_size,
                    )
                )
    with atomic_file(root / _catalog.CATALOG) as fh:
        cat = _catalog.ordered(pa.Table.from_pylist(rows, schema=_catalog.SCHEMA))
        pq.write_table(cat, fh, **_PARQUET_OPTS)
    if staged:
        _commit(root, cache, staged, [])


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
