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

It is kept as *segments* so that a commit writes what it changed, not the whole catalog:

- ``STORE/_catalog.parquet``, the **root**: one row per segment (``seq``, ``kind``,
  ``file``, ``rows``, ``bytes``), a few rows at most. A commit is one replacement of this
  file (a rename; on object storage one conditional PUT), so readers see the old segments
  or the new ones, never a mixture.
- ``STORE/_catalog/checkpoint-<sha16>.parquet``: every live part at one commit, sorted by
  ``(table, key)`` (so its bytes depend only on which parts are live).
- ``STORE/_catalog/delta-<sha16>.parquet``: what one commit changed: a row per (table,
  key) it touched, with the part's new row, or ``file`` null when the part was removed;
  sorted by ``(table, key)``.

The live catalog is the checkpoint with each delta applied in ``seq`` order (a later row
for a (table, key) replaces an earlier one). Commit ``seq`` (counted from the store's first
commit) writes a delta, except when the root already lists :data:`FOLD_EVERY` deltas: then
it folds, writing a checkpoint of the live set instead, and the root lists that alone. The
fold points depend on the number of commits only, so the same commits give the same files.
Segments are named by a digest of their bytes, written before the root that lists them and
never rewritten. A store written before segments existed has a root holding every part
(``cxlab_table`` = ``_catalog``); it is read as it is and its next commit folds.
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
import pyarrow.parquet as pq

CATALOG = "_catalog.parquet"
SEGMENTS = "_catalog"
STAGING = "_staging"
JOURNAL = "_commit.json"
LOCK = "_lock"
PART_COLUMN = "_part"
FOLD_EVERY = 16
"""Deltas the root lists at most: the commit after the 16th delta writes a checkpoint."""
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
DELTA_SCHEMA = pa.schema(
    [f.with_nullable(True) if f.name == "file" else f for f in SCHEMA],
    metadata={"cxlab_table": "_catalog_delta"},
)
ROOT_SCHEMA = pa.schema(
    [
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
    ],
    metadata={"cxlab_table": "_catalog_root"},
)


class Part(NamedTuple):
    """One live part of a table, as the catalog lists it (``file`` relative to the store)."""

    table: str
    key: str
    partition: str | None
    file: str
    rows: int
    bytes: int


class Segment(NamedTuple):
    """One row of the root: commit ``seq`` wrote ``file`` (a ``checkpoint`` or ``delta``)."""

    seq: int
    kind: str
    file: str
    rows: int
    bytes: int


class State(NamedTuple):
    """The catalog as one reader sees it: the root's segments, the live parts, the number
    of commits so far, and whether the root is in the one-file format (``legacy``)."""

    segments: tuple[Segment, ...]
    live: pa.Table
    seq: int
    legacy: bool = False

    @property
    def deltas(self) -> int:
        return sum(s.kind == "delta" for s in self.segments)

    def files(self) -> set[str]:
        """Every file this state needs: the live parts' and the segments themselves."""
        return set(self.live.column("file").to_pylist()) | {s.file for s in self.segments}


EMPTY_STATE = State((), SCHEMA.empty_table(), 0)


def empty() -> pa.Table:
    return SCHEMA.empty_table()


def ordered(cat: pa.Table, /) -> pa.Table:
    """Rows sorted by (table, key), one chunk: the canonical form of a checkpoint."""
    if cat.num_rows:
        cat = cat.take(
            pc.sort_indices(cat, sort_keys=[("table", "ascending"), ("key", "ascending")])
        )
    return cat.combine_chunks()


def pair_keys(tables: pa.Array | pa.ChunkedArray, keys: pa.Array | pa.ChunkedArray):
    """One string per (table, key) pair, for vectorised membership tests."""
    return pc.binary_join_element_wise(tables, keys, "\x00")


def apply(base: pa.Table, deltas: list[pa.Table], /) -> pa.Table:
    """``base`` (live parts) with ``deltas`` applied in order: each (table, key) a delta
    names takes its last delta row (dropped if that row's ``file`` is null). Vectorised;
    the untouched rows keep their order, the touched ones follow in order of last change."""
    deltas = [d for d in deltas if d.num_rows]
    if not deltas:
        return base
    d = pa.concat_tables([t.select(DELTA_SCHEMA.names).cast(DELTA_SCHEMA) for t in deltas])
    d = d.take(pa.array(range(d.num_rows - 1, -1, -1), pa.int64()))  # latest first
    pk = pair_keys(d.column("table"), d.column("key"))
    uniq = pc.unique(pk)
    last = d.take(pc.index_in(uniq, value_set=pk))  # the first (latest) row of each pair
    last = last.take(pa.array(range(last.num_rows - 1, -1, -1), pa.int64()))
    keep = base
    if base.num_rows:
        gone = pc.is_in(pair_keys(base.column("table"), base.column("key")), value_set=uniq)
        keep = base.filter(pc.invert(gone))
    added = last.filter(pc.is_valid(last.column("file"))).cast(SCHEMA)
    return pa.concat_tables([keep.cast(SCHEMA), added]).combine_chunks()


def delta(touched: list[tuple[str, str]], rows: pa.Table, /) -> pa.Table:
    """The delta of a commit that touched the pairs ``touched`` and leaves ``rows`` (catalog
    rows, for touched pairs only) live: a removal row for each touched pair without one."""
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
        schema=DELTA_SCHEMA,
    )
    return ordered(pa.concat_tables([rows.cast(DELTA_SCHEMA), removed]))


def segment_name(kind: str, data: bytes, /) -> str:
    """The file of a segment of ``kind`` with bytes ``data``, relative to the store."""
    return f"{SEGMENTS}/{kind}-{hashlib.sha256(data).hexdigest()[:16]}.parquet"


def next_segments(state: State, seg: Segment, /) -> tuple[Segment, ...]:
    """The root's segments after the commit that wrote ``seg``."""
    return (seg,) if seg.kind == "checkpoint" else (*state.segments, seg)


def must_fold(state: State, /) -> bool:
    """Whether the next commit writes a checkpoint (a function of the commit count and of
    the root's format, never of time)."""
    return state.legacy or state.deltas >= FOLD_EVERY


def root_table(segments: tuple[Segment, ...], /) -> pa.Table:
    return pa.Table.from_pylist([s._asdict() for s in segments], schema=ROOT_SCHEMA)


def load(root: pa.Table, read: Callable[[str], pa.Table], prev: State | None, /) -> State:
    """The state a root table gives: its segments read with ``read`` (relative path ->
    table), or, when ``prev`` holds the same checkpoint and a prefix of the deltas, only
    the new deltas applied to ``prev``'s live parts."""
    kind = (root.schema.metadata or {}).get(b"cxlab_table", b"")
    if kind != b"_catalog_root":  # one file listing every part (before segments)
        live = root.select(SCHEMA.names).cast(SCHEMA)
        return State((), live, 0, legacy=True)
    segs = tuple(Segment(**r) for r in root.cast(ROOT_SCHEMA).to_pylist())
    seq = max((s.seq for s in segs), default=0)
    if (
        prev is not None
        and not prev.legacy
        and len(prev.segments) <= len(segs)
        and segs[: len(prev.segments)] == prev.segments
        and (prev.segments or not any(s.kind == "checkpoint" for s in segs))
    ):
        new = segs[len(prev.segments) :]
        return State(segs, apply(prev.live, [read(s.file) for s in new]), seq)
    base = empty()
    deltas = []
    for s in segs:
        if s.kind == "checkpoint":
            base = read(s.file).select(SCHEMA.names).cast(SCHEMA)
        else:
            deltas.append(read(s.file))
    return State(segs, apply(base, deltas), seq)


class Cache:
    """The catalog of one store root, re-read only when the root was replaced (and then
    only the segments not read before)."""

    def __init__(self, root: Path):
        self.root = root
        self._stamp: tuple | None = None
        self._state: State = EMPTY_STATE

    def _read(self, rel: str) -> pa.Table:
        return pq.ParquetFile(self.root / rel).read()

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
            except FileNotFoundError:  # a segment folded away since the root was read
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
        return pq.read_table(pa.BufferReader(self.remote.read_bytes(rel)))

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
