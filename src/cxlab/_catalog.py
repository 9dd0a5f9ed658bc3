"""The store's catalog: which Parquet files hold the live parts of each table.

Private to :mod:`cxlab.store` (the only module that knows the store's layout). The live
catalog is a table with one row per live part:

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

It is kept in **shards**, so that a commit rewrites the rows it touches, not the catalog:
a part's shard is the first ``level`` hex digits of ``sha256(key)`` (the digest the small
per-recording tables bucket their keys by, so a recording's rows in every table, and the
bucket of a compacted table it falls in, share one shard). ``level`` is the smallest with
at most :data:`SHARD_ROWS` rows a shard on average (0: one shard, as a small store has),
so it depends on the number of live parts only.

- ``STORE/_catalog.parquet``, the **root**: one row per non-empty shard (``shard``,
  ``file``, ``rows``, ``bytes``), sorted by shard. A commit is one replacement of this
  file (a rename; on object storage one conditional PUT), so readers see the old shards
  or the new ones, never a mixture.
- ``STORE/_catalog/shard-<prefix>-<sha16>.arrow``: the shard's rows sorted by ``(table,
  key)``, an Arrow IPC file (LZ4; a few hundred of them read in a tenth of the time of
  one Parquet file of all their rows), named by a digest of its bytes.

Every file is a function of the live parts alone (never of the order or the number of the
commits that made them): the same parts always give the same root and shards. A commit
writes the shards its keys fall in (a new name each: the live shards are untouched), then
the root; when the number of parts crosses a level, that commit rewrites every shard once.
A store written before the shards existed has a root listing every part (``cxlab_table``
= ``_catalog``): it is read as it is, and its next commit writes the shards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

CATALOG = "_catalog.parquet"
SHARDS = "_catalog"
STAGING = "_staging"
JOURNAL = "_commit.json"
LOCK = "_lock"
PART_COLUMN = "_part"
SHARD_ROWS = 2048
"""Catalog rows a shard aims at: above it the rows spread over 16**level shards."""
_READ_TRIES = 5

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
CHANGE_SCHEMA = pa.schema(
    [f.with_nullable(True) if f.name == "file" else f for f in SCHEMA],
    metadata={"cxlab_table": "_catalog_change"},
)
"""What a commit changes: a row per (table, key) it touched; ``file`` null = removed."""
ROOT_SCHEMA = pa.schema(
    [
        pa.field("shard", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
    ],
    metadata={"cxlab_table": "_catalog_root"},
)
_IPC = ipc.IpcWriteOptions(compression="lz4")


class Part(NamedTuple):
    """One live part of a table, as the catalog lists it (``file`` relative to the store)."""

    table: str
    key: str
    partition: str | None
    file: str
    rows: int
    bytes: int


class Shard(NamedTuple):
    """One row of the root: the live parts whose key hashes to ``shard`` are in ``file``."""

    shard: str
    file: str
    rows: int
    bytes: int


class State(NamedTuple):
    """The catalog as one reader sees it: the root's shards, each shard's rows (by prefix),
    the live parts (the shards' rows in shard order) and whether the root is in the
    one-file format of stores written before shards (``legacy``)."""

    shards: tuple[Shard, ...]
    tables: dict[str, pa.Table]
    live: pa.Table
    legacy: bool = False

    @property
    def level(self) -> int:
        return len(self.shards[0].shard) if self.shards else 0

    def files(self) -> set[str]:
        """Every file this state needs: the live parts' and the shards themselves."""
        return set(self.live.column("file").to_pylist()) | {s.file for s in self.shards}


def empty() -> pa.Table:
    return SCHEMA.empty_table()


EMPTY_STATE = State((), {}, SCHEMA.empty_table())


def ordered(cat: pa.Table, /) -> pa.Table:
    """Rows sorted by (table, key), one chunk: the canonical form of a shard."""
    if cat.num_rows:
        cat = cat.take(
            pc.sort_indices(cat, sort_keys=[("table", "ascending"), ("key", "ascending")])
        )
    return cat.combine_chunks()


def pair_keys(tables: pa.Array | pa.ChunkedArray, keys: pa.Array | pa.ChunkedArray):
    """One string per (table, key) pair, for vectorised membership tests."""
    return pc.binary_join_element_wise(tables, keys, "\x00")


def shard_level(n_rows: int, /) -> int:
    """Hex digits of the shard prefix for a catalog of ``n_rows`` live parts."""
    level = 0
    while n_rows > SHARD_ROWS * 16**level:
        level += 1
    return level


def shard_of(keys: list[str], level: int, /) -> pa.Array:
    """The shard (first ``level`` hex digits of sha256) of each key."""
    return pa.array(
        [hashlib.sha256(k.encode("utf-8")).hexdigest()[:level] for k in keys], pa.string()
    )


def changes(touched: list[tuple[str, str]], rows: pa.Table, /) -> pa.Table:
    """What a commit that touched the pairs ``touched`` and leaves ``rows`` live (catalog
    rows of touched pairs only) changes: ``rows``, and a removal row (``file`` null) for
    each touched pair without one."""
    have = set(zip(rows.column("table").to_pylist(), rows.column("key").to_pylist(), strict=True))
    gone = sorted(set(touched) - have)
    removed = pa.table(
        {
            "table": pa.array([t for t, _ in gone], pa.string()),
            "key": pa.array([k for _, k in gone], pa.string()),
            "partition": pa.nulls(len(gone), pa.string()),
            "file": pa.nulls(len(gone), pa.string()),
            "rows": pa.array([0] * len(gone), pa.int64()),
            "bytes": pa.array([0] * len(gone), pa.int64()),
        },
        schema=CHANGE_SCHEMA,
    )
    return pa.concat_tables([rows.cast(CHANGE_SCHEMA), removed]).combine_chunks()


def shard_bytes(table: pa.Table, /) -> bytes:
    """A shard's rows as the Arrow IPC file written for it (same rows, same bytes)."""
    sink = pa.BufferOutputStream()
    table = table.cast(SCHEMA).combine_chunks()
    with ipc.new_file(sink, SCHEMA, options=_IPC) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def read_shard(data, /) -> pa.Table:
    """The rows of a shard file (bytes or a pyarrow buffer / native file)."""
    src = pa.BufferReader(data) if isinstance(data, bytes) else data
    return ipc.open_file(src).read_all()


def _assemble(shards: tuple[Shard, ...], tables: dict[str, pa.Table]) -> pa.Table:
    parts = [tables[s.shard] for s in shards]
    return pa.concat_tables(parts).combine_chunks() if parts else empty()


def commit_state(state: State, change: pa.Table, n_live: int, /):
    """The shards after a commit whose :func:`changes` are ``change`` and after which
    ``n_live`` parts are live: (new state, {shard file: bytes} to write, shard files
    dropped). Only the shards of the changed keys are rebuilt, unless the level changes
    (or the root is legacy): then every shard, once."""
    level = shard_level(n_live)
    if state.legacy or level != state.level or not state.shards:  # every shard, once
        cat = _apply(state.live, change)
        prefix = shard_of(cat.column("key").to_pylist(), level)
        tables = {
            p: ordered(cat.filter(pc.equal(prefix, p))) for p in sorted(set(prefix.to_pylist()))
        }
        touched = set(tables)
    else:
        prefix = shard_of(change.column("key").to_pylist(), level)
        tables = dict(state.tables)
        touched = set(prefix.to_pylist())
        for p in sorted(touched):
            mine = change.filter(pc.equal(prefix, p))
            new = ordered(_apply(state.tables.get(p, empty()), mine))
            if new.num_rows:
                tables[p] = new
            else:
                tables.pop(p, None)
    old = {s.shard: s for s in state.shards}
    write: dict[str, bytes] = {}
    shards = []
    for p in sorted(tables):
        if p in old and p not in touched:
            shards.append(old[p])
            continue
        data = shard_bytes(tables[p])
        name = f"{SHARDS}/shard-{p or 'all'}-{hashlib.sha256(data).hexdigest()[:16]}.arrow"
        write[name] = data
        shards.append(Shard(p, name, tables[p].num_rows, len(data)))
    keep = {s.file for s in shards}
    dropped = sorted(s.file for s in state.shards if s.file not in keep)
    shards_t = tuple(shards)
    new = State(shards_t, tables, _assemble(shards_t, tables))
    return new, write, dropped


def build(live: pa.Table, /):
    """The shards of a catalog of parts ``live`` built from nothing (a store written
    directly, e.g. by a benchmark): (state, {shard file: bytes}, root table)."""
    change = live.cast(CHANGE_SCHEMA)
    state, write, _ = commit_state(EMPTY_STATE, change, live.num_rows)
    return state, write, root_table(state.shards)


def _apply(base: pa.Table, change: pa.Table, /) -> pa.Table:
    """``base`` without the pairs ``change`` names, plus its rows that are not removals."""
    if not change.num_rows:
        return base
    if base.num_rows:
        pk = pair_keys(change.column("table"), change.column("key"))
        gone = pc.is_in(pair_keys(base.column("table"), base.column("key")), value_set=pk)
        base = base.filter(pc.invert(gone))
    added = change.filter(pc.is_valid(change.column("file"))).cast(SCHEMA)
    return pa.concat_tables([base.cast(SCHEMA), added])


def root_table(shards: tuple[Shard, ...], /) -> pa.Table:
    return pa.Table.from_pylist([s._asdict() for s in shards], schema=ROOT_SCHEMA)


def load(root: pa.Table, read: Callable[[str], pa.Table], prev: State | None, /) -> State:
    """The state a root table gives, its shards read with ``read`` (relative path ->
    table); a shard ``prev`` holds under the same file name is not read again."""
    kind = (root.schema.metadata or {}).get(b"cxlab_table", b"")
    if kind != b"_catalog_root":  # one file listing every part (before shards)
        live = root.select(SCHEMA.names).cast(SCHEMA)
        return State((), {}, live, legacy=True)
    shards = tuple(Shard(**r) for r in root.cast(ROOT_SCHEMA).to_pylist())
    known = {} if prev is None else {s.file: prev.tables[s.shard] for s in prev.shards}
    tables = {s.shard: known[s.file] if s.file in known else read(s.file) for s in shards}
    return State(shards, tables, _assemble(shards, tables))


class Cache:
    """The catalog of one store root, re-read only when the root was replaced (and then
    only the shards that changed)."""

    def __init__(self, root: Path):
        self.root = root
        self._stamp: tuple | None = None
        self._state: State = EMPTY_STATE

    def _read(self, rel: str) -> pa.Table:
        return read_shard((self.root / rel).read_bytes())  # a copy: no mapping kept open

    def state(self) -> State:
        path = self.root / CATALOG
        for attempt in range(_READ_TRIES):
            try:
                st = path.stat()
            except FileNotFoundError:
                self._stamp, self._state = None, EMPTY_STATE
                return self._state
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return self._state
            try:
                state = load(pq.read_table(path), self._read, self._state)
            except FileNotFoundError:  # a shard replaced since the root was read
                if attempt == _READ_TRIES - 1:
                    raise
                continue
            self._stamp, self._state = stamp, state
        return self._state

    def get(self) -> pa.Table:
        return self.state().live

    def prime(self, state: State, /) -> None:
        """After this process's own commit: ``state`` is what the new root says."""
        with contextlib.suppress(FileNotFoundError):
            st = (self.root / CATALOG).stat()
            self._stamp, self._state = (st.st_ino, st.st_mtime_ns, st.st_size), state


class RemoteCache:
    """The catalog of a remote store (:class:`cxlab._fs.Remote`), re-read only when its
    root's version (ETag) changed: one HEAD request per look. ``version`` is the tag of the
    root bytes last parsed, which a commit's conditional write is made against."""

    def __init__(self, remote):
        self.remote = remote
        self._head: str | None = None
        self.version: str | None = None
        self._state: State = EMPTY_STATE

    def _read(self, rel: str) -> pa.Table:
        return read_shard(self.remote.read_bytes(rel))

    def state(self) -> State:
        for attempt in range(_READ_TRIES):
            head = self.remote.version(CATALOG)
            if head is None:
                self._head, self.version, self._state = None, None, EMPTY_STATE
                return self._state
            if head == self._head:
                return self._state
            data, tag = self.remote.read_versioned(CATALOG)
            if data is None:
                self._head, self.version, self._state = None, None, EMPTY_STATE
                return self._state
            try:
                state = load(pq.read_table(pa.BufferReader(data)), self._read, self._state)
            except FileNotFoundError:
                if attempt == _READ_TRIES - 1:
                    raise
                continue
            self._head, self.version, self._state = head, tag, state
        return self._state

    def get(self) -> pa.Table:
        return self.state().live

    def prime(self, state: State, data: bytes, /) -> None:
        """After this process's own commit wrote root bytes ``data``."""
        tag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        self._head, self.version, self._state = tag, tag, state


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


def finish_journal(root: Path, state: State) -> int:
    """After a crash mid-commit: remove the journal's files that ``state`` does not need.

    Whichever root won (the old or the new), the files it does not list (parts or catalog
    segments) are the losers' (new files never committed, or old ones already replaced).
    Returns files removed.
    """
    path = root / JOURNAL
    try:
        files = json.loads(path.read_text("utf-8"))["files"]
    except FileNotFoundError:
        return 0
    except (ValueError, KeyError, OSError):
        files = []  # a journal cut short was never acted on: the commit had not started
    live = state.files() if files else set()
    n = 0
    for f in files:
        if f not in live:
            with contextlib.suppress(FileNotFoundError):
                (root / f).unlink()
                n += 1
    path.unlink(missing_ok=True)
    return n
