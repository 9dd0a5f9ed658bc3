"""The store's catalog: which Parquet files hold the live parts of each table.

Private to :mod:`cxlab.store` (the only module that knows the store's layout). The
catalog is one Parquet file, ``STORE/_catalog.parquet``, with one row per live part:

======== ======== ==============================================================
column   type     meaning
======== ======== ==============================================================
table    string   a table declared in :mod:`cxlab.schemas`
key      string   the part's key (a recording id, ``survey-<sha16>``, ``all``...)
partition string  the partition value (subject id) of a partitioned table, or null
file     string   the file holding the part, relative to the store, POSIX
rows     int64    the part's rows
bytes    int64    the size of ``file``
======== ======== ==============================================================

sorted by ``(table, key)``, so its bytes depend only on which parts are live (never on
the order or the number of the commits that made them). A commit is one rename of this
file; a crash before it leaves the old catalog (the old parts) visible, after it the new.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CATALOG = "_catalog.parquet"
STAGING = "_staging"
JOURNAL = "_commit.json"
LOCK = "_lock"
PART_COLUMN = "_part"

SCHEMA = pa.schema(
    [
        pa.field("table", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("partition", pa.string()),
        pa.field("file", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
    ],
    metadata={"cxlab_table": "_catalog"},
)


class Part(NamedTuple):
    """One live part of a table, as the catalog lists it (``file`` relative to the store)."""

    table: str
    key: str
    partition: str | None
    file: str
    rows: int
    bytes: int


def empty() -> pa.Table:
    return SCHEMA.empty_table()


def ordered(cat: pa.Table, /) -> pa.Table:
    """Rows sorted by (table, key), one chunk: the canonical form that is written."""
    if cat.num_rows:
        cat = cat.take(
            pc.sort_indices(cat, sort_keys=[("table", "ascending"), ("key", "ascending")])
        )
    return cat.combine_chunks()


def pair_keys(tables: pa.Array | pa.ChunkedArray, keys: pa.Array | pa.ChunkedArray):
    """One string per (table, key) pair, for vectorised membership tests."""
    return pc.binary_join_element_wise(tables, keys, "\x00")


class Cache:
    """The catalog of one store root, re-read only when the file was replaced."""

    def __init__(self, root: Path):
        self.root = root
        self._stamp: tuple | None = None
        self._table: pa.Table = empty()

    def get(self) -> pa.Table:
        path = self.root / CATALOG
        try:
            st = path.stat()
        except FileNotFoundError:
            self._stamp, self._table = None, empty()
            return self._table
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._table = pq.read_table(path, schema=SCHEMA)
            self._stamp = stamp
        return self._table


class RemoteCache:
    """The catalog of a remote store (:class:`cxlab._fs.Remote`), re-read only when its
    version (ETag) changed: one HEAD request per look. ``version`` is the tag of the
    bytes last parsed, which a commit's conditional write is made against."""

    def __init__(self, remote):
        self.remote = remote
        self._head: str | None = None
        self.version: str | None = None
        self._table: pa.Table = empty()

    def get(self) -> pa.Table:
        head = self.remote.version(CATALOG)
        if head is None:
            self._head, self.version, self._table = None, None, empty()
        elif head != self._head:
            data, tag = self.remote.read_versioned(CATALOG)
            if data is None:
                self._head, self.version, self._table = None, None, empty()
            else:
                self._table = pq.read_table(pa.BufferReader(data), schema=SCHEMA)
                self._head, self.version = head, tag
        return self._table


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the store's writer lock (``fcntl.flock`` on ``STORE/_lock``): one commit at a
    time, across processes; released by the kernel if the holder is killed."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_journal(root: Path, files: list[str], write) -> None:
    """Record the files a commit is about to add or drop (``write`` = atomic writer)."""
    write(json.dumps({"files": sorted(set(files))}, indent=0), root / JOURNAL)


def finish_journal(root: Path, cat: pa.Table) -> int:
    """After a crash mid-commit: remove the journal's files that ``cat`` does not list.

    Whichever catalog won (the old or the new), the files it does not list are the
    losers' (new parts never committed, or old ones already replaced). Returns files removed.
    """
    path = root / JOURNAL
    try:
        files = json.loads(path.read_text("utf-8"))["files"]
    except FileNotFoundError:
        return 0
    except (ValueError, KeyError, OSError):
        files = []  # a journal cut short was never acted on: the commit had not started
    live = set(cat.column("file").to_pylist()) if files else set()
    n = 0
    for f in files:
        if f not in live:
            with contextlib.suppress(FileNotFoundError):
                (root / f).unlink()
                n += 1
    path.unlink(missing_ok=True)
    return n
