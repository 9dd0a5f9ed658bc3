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

It is kept in **shards**, so that a commit rewrites the rows it touches, not the catalog.
The shards come in **groups**, each with its own ``level`` (hex digits of the shard
prefix, the smallest that keeps its shards small on average: 0 is one shard):

- the parts of the signal and sheet tables, together, by the first ``level`` digits of
  ``sha256(key)`` (at most :data:`SHARD_ROWS` rows a shard on average), shard id
  ``<prefix>``;
- each small per-recording table apart (``recordings``, ``sessions``... : the store says
  which and at which level, the level of its bucket files), by the same digest, shard id
  ``<table>~<prefix>``: a bucket file's keys are exactly one shard's, so rewriting a
  bucket changes one shard, not rows spread over all of them;
- an **index** of a small table by a column (``recordings@source_path``): one row per
  part, key ``<sha16 of the value>-<part key>``, ``file`` empty, sharded by the value's
  digest, so the parts holding a value are found from one shard.

The levels depend on the number of live parts of each group only.

- ``STORE/_catalog.parquet``, the **root**: one row per non-empty shard (``shard``,
  ``file``, ``rows``, ``bytes``), sorted by shard id (its metadata
  ``cxlab_catalog_layout=2``). A commit is one replacement of this file (a rename; on
  object storage one conditional PUT), so readers see the old shards or the new ones,
  never a mixture.
- ``STORE/_catalog/shard-<id>-<sha16>.arrow``: the shard's rows sorted by ``(table,
  key)``, an Arrow IPC file (LZ4), named by a digest of its bytes.

A reader reads the root, then only the shards it needs (:meth:`State.rows`,
:meth:`State.indexed`: the shards of the keys or values asked; :attr:`State.live`: all).
Every file is a function of the live parts alone (never of the order or the number of the
commits that made them): the same parts always give the same root and shards. A commit
writes the shards its keys fall in (a new name each: the live shards are untouched), then
the root; when a group's number of parts crosses a level, that commit rewrites the
group's shards once. A store written before the shards existed has a root listing every
part (``cxlab_table`` = ``_catalog``), one written before the groups has shards of every
table by key (no layout metadata): either is read as it is (``legacy``), and its next
commit writes every shard in the current layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
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
INDEX_SEP = "@"
GROUP_SEP = "~"
"""Between a table's name and the hex prefix in the id of a shard of that table alone."""
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
    metadata={"cxlab_table": "_catalog_root", "cxlab_catalog_layout": "2"},
)
LAYOUT_KEY, LAYOUT = b"cxlab_catalog_layout", b"2"
"""The root's layout: 2 = the small tables' parts in shards of their own (by bucket)."""
# one thread: a shard is a few hundred rows, and handing its 6 columns to Arrow's thread pool
# cost more than compressing them (0.29 -> 0.11 ms a shard written, 0.20 -> 0.16 ms read, on
# the 2-core machine shared by other jobs); the bytes are the same
_IPC = ipc.IpcWriteOptions(compression="lz4", use_threads=False)
_IPC_READ = ipc.IpcReadOptions(use_threads=False)
T = TypeVar("T")
GroupLevel = Callable[[str, int], "int | None"]
"""(table, its live parts) -> the hex level of that table's own shards, or None when its
parts are sharded by key with the other tables'."""
GroupPrefixes = Callable[[str, pa.Table, int], pa.Array]
"""(group of a table of its own, its catalog rows, level) -> the shard prefix of each row,
as :func:`shard_of` gives it for their keys (the store reads it from the names of its
bucket files instead of hashing every key of a rewritten bucket)."""


class Part(NamedTuple):
    """One live part of a table, as the catalog lists it (``file`` relative to the store)."""

    table: str
    key: str
    partition: str | None
    file: str
    rows: int
    bytes: int


class Shard(NamedTuple):
    """One row of the root: the live parts of shard ``shard`` are in ``file``."""

    shard: str
    file: str
    rows: int
    bytes: int


def _group(shard: str, /) -> str:
    """The group a shard id belongs to: ``""`` (parts sharded by key) or a table's name."""
    return shard.partition(GROUP_SEP)[0] if GROUP_SEP in shard else ""


def _prefix(shard: str, /) -> str:
    return shard.rpartition(GROUP_SEP)[2]


def shard_id(group: str, prefix: str, /) -> str:
    """The id of the shard of ``group`` (``""``: the tables sharded by key together, or a
    table's or an index's name) whose keys' digests start with ``prefix``."""
    return f"{group}{GROUP_SEP}{prefix}" if group else prefix


class State:
    """The catalog as one reader sees it: the root's shards, the shards read so far (by
    shard id; the others are read on first need with ``read``, relative path -> table)
    and whether the root is in an older format (``legacy``: one file listing every part,
    or shards of every table by key), which the next commit rewrites whole.

    ``live`` (every live part) reads every shard; :meth:`rows` reads only the shards the
    asked keys fall in."""

    def __init__(self, shards=(), tables=None, *, read=None, legacy=False, live=None):
        self.shards: tuple[Shard, ...] = tuple(shards)
        self.tables: dict[str, pa.Table] = dict(tables or {})
        self.legacy = legacy
        self._read = read
        self._live = live
        self._by_id = {s.shard: s for s in self.shards}
        # the shards of each group, found once: a commit asks a group's level and count a
        # dozen times, and a store of 100,000 recordings has ~1,500 shards
        self._groups: dict[str, list[Shard]] = {}
        for s in self.shards:
            self._groups.setdefault(_group(s.shard), []).append(s)

    def level(self, group: str = "", /) -> int | None:
        """Hex digits of the shard prefix of ``group`` (None: it has no shard)."""
        mine = self._groups.get(group)
        return len(_prefix(mine[0].shard)) if mine else None

    def count(self, group: str = "", /) -> int:
        """Live parts in ``group`` (from the root alone)."""
        return sum(s.rows for s in self._groups.get(group, ()))

    def of(self, group: str, /) -> list[Shard]:
        return list(self._groups.get(group, ()))

    def shard(self, sid: str, /) -> pa.Table:
        """The rows of shard ``sid`` (empty if the root lists none), read once."""
        if sid not in self.tables:
            s = self._by_id.get(sid)
            if s is None:
                return empty()
            self.tables[sid] = self._read(s.file)
        return self.tables[sid]

    @property
    def live(self) -> pa.Table:
        if self._live is None:
            parts = [self.shard(s.shard) for s in self.shards]
            self._live = pa.concat_tables(parts).combine_chunks() if parts else empty()
        return self._live

    def rows(self, table: str, keys: Iterable[str], /) -> pa.Table:
        """The live rows of ``table`` whose key is one of ``keys``, reading only the shards
        those keys fall in (all of them for a root in an older format)."""
        keys = sorted(set(keys))
        if self.legacy or not keys:
            cat = self.live if keys else empty()
        else:
            group = table if self.level(table) is not None else ""
            level = self.level(group)
            if level is None:
                return empty()
            sids = sorted({shard_id(group, p) for p in shard_of(keys, level, group).to_pylist()})
            parts = [self.shard(s) for s in sids]
            cat = pa.concat_tables(parts) if parts else empty()
        mask = pc.and_(
            pc.equal(cat.column("table"), table),
            pc.is_in(cat.column("key"), value_set=pa.array(keys, pa.string())),
        )
        return cat.filter(mask).combine_chunks()

    def indexed(self, index: str, values: Iterable[str | None], /) -> pa.Table:
        """The rows of index group ``index`` (:func:`index_name`) for ``values``, reading
        the shards of their digests only."""
        digests = sorted({value_digest(v) for v in values})
        level = self.level(index)
        if level is None or not digests:
            return empty()
        parts = [
            self.shard(shard_id(index, d[:level])) for d in sorted({d[:level] for d in digests})
        ]
        cat = pa.concat_tables(parts)
        head = pc.utf8_slice_codeunits(cat.column("key"), 0, DIGEST_CHARS)
        return cat.filter(pc.is_in(head, value_set=pa.array(digests, pa.string())))

    def table(self, table: str, /, *, alone: bool = False) -> pa.Table:
        """The live rows of ``table``: only its own shards if it has a group (or none if
        it would have one, ``alone``, but has no part), else every shard."""
        if not self.legacy and (alone or self.level(table) is not None):
            parts = [self.shard(s.shard) for s in self.of(table)]
            return pa.concat_tables(parts).combine_chunks() if parts else empty()
        cat = self.live
        return cat.filter(pc.equal(cat.column("table"), table))

    def files(self) -> set[str]:
        """Every file this state needs: the live parts' and the shards themselves."""
        files = set(self.live.column("file").to_pylist()) - {""}  # index rows name none
        return files | {s.file for s in self.shards}


def empty() -> pa.Table:
    return SCHEMA.empty_table()


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


def shard_of(keys: list[str], level: int, group: str = "", /) -> pa.Array:
    """The shard (first ``level`` hex digits of sha256) of each key; in an index group
    (:func:`index_name`) the key starts with a digest already: its first digits."""
    if INDEX_SEP in group:
        return pa.array([k[:level] for k in keys], pa.string())
    return pa.array(
        [hashlib.sha256(k.encode("utf-8")).hexdigest()[:level] for k in keys], pa.string()
    )


def index_name(table: str, column: str, /) -> str:
    """The catalog's pseudo-table indexing ``table`` by ``column``: one row per part, key
    ``<sha16 of the value>-<part key>``, ``file`` empty (it names no file)."""
    return f"{table}{INDEX_SEP}{column}"


#: characters of a value's sha256 that lead an index key (:func:`index_key`)
DIGEST_CHARS = 16


def value_digest(value: str | None, /) -> str:
    """The first :data:`DIGEST_CHARS` hex digits of the sha256 of ``value`` (UTF-8)."""
    text = "" if value is None else value
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGEST_CHARS]


def index_key(value: str | None, part_key: str, /) -> str:
    """The key of an index row: ``<value_digest(value)>-<part key>``."""
    return f"{value_digest(value)}-{part_key}"


def part_key_of(index_key: str, /) -> str:
    """The part key an index row's key (:func:`index_key`) names."""
    return index_key[DIGEST_CHARS + 1 :]


def changes(touched: pa.Table, rows: pa.Table, /) -> pa.Table:
    """What a commit that touched the (``table``, ``key``) pairs of ``touched`` and leaves
    ``rows`` live (catalog rows of touched pairs only) changes: ``rows``, and a removal
    row (``file`` null) for each touched pair without one, sorted by (table, key). In
    Arrow: a commit into a large store touches every row of its rewritten buckets."""
    touched = touched.select(["table", "key"])
    if touched.num_rows:
        have = pair_keys(rows.column("table"), rows.column("key"))
        kept = pc.is_in(pair_keys(touched.column("table"), touched.column("key")), value_set=have)
        touched = touched.filter(pc.invert(kept))
    gone = pa.TableGroupBy(touched, ["table", "key"]).aggregate([])  # unique pairs
    gone = gone.select(["table", "key"])
    gone = gone.take(
        pc.sort_indices(gone, sort_keys=[("table", "ascending"), ("key", "ascending")])
    )
    n = gone.num_rows
    removed = pa.table(
        {
            "table": gone.column("table").cast(pa.string()),
            "key": gone.column("key").cast(pa.string()),
            "partition": pa.nulls(n, pa.string()),
            "file": pa.nulls(n, pa.string()),
            "rows": pa.array([0] * n, pa.int64()),
            "bytes": pa.array([0] * n, pa.int64()),
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
    return ipc.open_file(src, options=_IPC_READ).read_all()


def commit_state(
    state: State,
    change: pa.Table,
    group_level: GroupLevel,
    /,
    prefixes: GroupPrefixes | None = None,
):
    """The shards after a commit whose :func:`changes` are ``change``: (new state, {shard
    file: bytes} to write, shard files dropped).

    ``group_level(table, n)`` says how a table's parts are sharded when it has ``n`` of
    them: ``None`` for sharding by key with the other tables (at the level
    :func:`shard_level` gives for their number), or a level for a table of its own
    shards (the small tables, whose rows follow their bucket files). Only the shards of the
    changed keys are rebuilt, unless a group's level changes (then that group's shards,
    once) or the root is in an older format (then every shard, once). ``prefixes`` gives
    the shard prefixes of a table's own rows (default: :func:`shard_of` of their keys)."""
    if state.legacy or not state.shards:
        tables = _regroup(_apply(state.live, change), group_level, prefixes)
        touched = set(tables) | {s.shard for s in state.shards}
    else:
        tables, touched = {}, set()
        for g, mine in _by_group(change, group_level):
            tables_g, touched_g = _commit_group(state, g, mine, group_level, prefixes)
            tables.update(tables_g)
            touched |= touched_g
    old = {s.shard: s for s in state.shards}
    write: dict[str, bytes] = {}
    shards = []
    for sid in sorted({*old, *tables} - (touched - set(tables))):
        if sid not in touched:
            shards.append(old[sid])
            continue
        data = shard_bytes(tables[sid])
        name = f"{SHARDS}/shard-{sid or 'all'}-{hashlib.sha256(data).hexdigest()[:16]}.arrow"
        write[name] = data
        shards.append(Shard(sid, name, tables[sid].num_rows, len(data)))
    keep = {s.file for s in shards}
    dropped = sorted(s.file for s in state.shards if s.file not in keep)
    known = {**{s: t for s, t in state.tables.items() if s not in touched}, **tables}
    new = State(shards, {s.shard: known[s.shard] for s in shards if s.shard in known})
    new._read = state._read
    return new, write, dropped


def _level_for(group: str, n: int, group_level: GroupLevel, /) -> int:
    return shard_level(n) if not group else group_level(group, n)


def _row_prefixes(
    rows: pa.Table, level: int, group: str, prefixes: GroupPrefixes | None, /
) -> pa.Array:
    """The shard prefix of each of ``rows`` of ``group`` at ``level``."""
    if prefixes is not None and group and INDEX_SEP not in group:
        return prefixes(group, rows, level)
    return shard_of(rows.column("key").to_pylist(), level, group)


def _commit_group(
    state: State,
    group: str,
    change: pa.Table,
    group_level: GroupLevel,
    prefixes: GroupPrefixes | None,
    /,
):
    """The new tables of the shards of ``group`` that ``change`` (its rows) touches, and
    the shard ids touched (a touched id without a table: the shard is gone)."""
    level = state.level(group)
    if level is not None:
        prefix = _row_prefixes(change, level, group, prefixes)
        sids = [shard_id(group, p) for p in sorted(set(prefix.to_pylist()))]
        bases = [state.shard(s) for s in sids]
        tables = dict(zip(sids, _apply_each(bases, change, prefix), strict=True))
        n = state.count(group) + sum(
            t.num_rows - (state._by_id[s].rows if s in state._by_id else 0)
            for s, t in tables.items()
        )
        if _level_for(group, n, group_level) == level:
            return {s: t for s, t in tables.items() if t.num_rows}, set(tables)
    # a new group, or its level changes: every shard of the group, once
    olds = state.of(group)
    base = pa.concat_tables([state.shard(s.shard) for s in olds]) if olds else empty()
    cat = _apply(base, change)
    level = _level_for(group, cat.num_rows, group_level)
    tables = _shards_of(cat, group, level, prefixes)
    return tables, set(tables) | {s.shard for s in olds}


def _shards_of(
    cat: pa.Table, group: str, level: int, prefixes: GroupPrefixes | None = None, /
) -> dict[str, pa.Table]:
    prefix = _row_prefixes(cat, level, group, prefixes)
    return {
        shard_id(group, p): ordered(cat.filter(pc.equal(prefix, p)))
        for p in sorted(set(prefix.to_pylist()))
    }


def _by_group(cat: pa.Table, group_level: GroupLevel, /) -> list[tuple[str, pa.Table]]:
    """``cat``'s rows by group (``""``: the tables sharded by key together), sorted."""
    names = pc.unique(cat.column("table")).to_pylist()
    groups: dict[str, list[str]] = {}
    for t in names:
        groups.setdefault("" if group_level(t, 0) is None else t, []).append(t)
    return [
        (g, cat.filter(pc.is_in(cat.column("table"), value_set=pa.array(ts, pa.string()))))
        for g, ts in sorted(groups.items())
    ]


def _regroup(
    cat: pa.Table, group_level: GroupLevel, prefixes: GroupPrefixes | None = None, /
) -> dict[str, pa.Table]:
    """Every shard of the live parts ``cat``, built from nothing."""
    tables: dict[str, pa.Table] = {}
    for g, mine in _by_group(cat, group_level):
        level = _level_for(g, mine.num_rows, group_level)
        tables.update(_shards_of(mine, g, level, prefixes))
    return tables


def build(live: pa.Table, group_level: GroupLevel, /):
    """The shards of a catalog of parts ``live`` built from nothing (a store written
    directly, e.g. by a benchmark): (state, {shard file: bytes}, root table)."""
    change = live.cast(CHANGE_SCHEMA)
    state, write, _ = commit_state(State(), change, group_level)
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


_TAG = "_shard"  # a shard's position among the touched ones, while they are updated together


def _apply_each(bases: list[pa.Table], change: pa.Table, prefix: pa.Array, /) -> list[pa.Table]:
    """``[ordered(_apply(bases[i], rows of change of the i-th prefix)) ...]``, the sorted
    distinct values of ``prefix`` (one per row of ``change``) in order, in one pass: a
    commit into a large store touches ~20 shards a group, and their updates one by one
    made ~12 Arrow calls each (a quarter of that commit's time). Each base loses only the
    pairs its own prefix's changes name, as alone; the tag keeps the shards apart."""
    values = sorted(set(prefix.to_pylist()))
    if not values:
        return []
    position = pc.index_in(prefix, value_set=pa.array(values, pa.string())).cast(pa.int32())
    sizes = [b.num_rows for b in bases]
    tag = pa.field(_TAG, pa.int32(), False)
    base = pa.concat_tables([b.cast(SCHEMA) for b in bases]).append_column(
        tag, pa.array(np.repeat(np.arange(len(bases), dtype=np.int32), sizes))
    )
    change = change.append_column(_TAG, position)
    if base.num_rows and change.num_rows:

        def tagged(t: pa.Table) -> pa.Array:
            return pc.binary_join_element_wise(
                t.column(_TAG).cast(pa.string()), t.column("table"), t.column("key"), "\x00"
            )

        base = base.filter(pc.invert(pc.is_in(tagged(base), value_set=tagged(change))))
    added = change.filter(pc.is_valid(change.column("file")))
    added = added.cast(SCHEMA.append(tag))
    both = pa.concat_tables([base, added]).combine_chunks()
    keys = [(_TAG, "ascending"), ("table", "ascending"), ("key", "ascending")]
    order = pc.sort_indices(both, sort_keys=keys).to_numpy()
    counts = np.bincount(both.column(_TAG).to_numpy(), minlength=len(bases))
    both = both.drop_columns([_TAG]).cast(SCHEMA)
    # a take a shard (not slices of one sorted table: a slice's IPC bytes differ)
    return [both.take(idx).combine_chunks() for idx in np.split(order, np.cumsum(counts)[:-1])]


def root_table(shards: tuple[Shard, ...], /) -> pa.Table:
    return pa.Table.from_pylist([s._asdict() for s in shards], schema=ROOT_SCHEMA)


def load(root: pa.Table, read: Callable[[str], pa.Table], prev: State | None, /) -> State:
    """The state a root table gives, its shards to be read with ``read`` (relative path ->
    table) when first needed; a shard ``prev`` holds under the same file name is not read
    again."""
    meta = root.schema.metadata or {}
    if meta.get(b"cxlab_table", b"") != b"_catalog_root":  # one file of every part
        live = root.select(SCHEMA.names).cast(SCHEMA)
        return State(legacy=True, live=live)
    shards = tuple(Shard(**r) for r in root.cast(ROOT_SCHEMA).to_pylist())
    had = () if prev is None else prev.shards
    known = {s.file: prev.tables[s.shard] for s in had if s.shard in prev.tables}
    tables = {s.shard: known[s.file] for s in shards if s.file in known}
    legacy = meta.get(LAYOUT_KEY) != LAYOUT  # shards of every table by key (cxlab before groups)
    return State(shards, tables, read=read, legacy=legacy)


class _Reader:
    """What both caches share: a look at the catalog that re-reads the root when a shard
    it names has gone (replaced by a commit since the root was read)."""

    def _invalidate(self) -> None:
        raise NotImplementedError

    def state(self) -> State:
        raise NotImplementedError

    def read(self, fn: Callable[[State], T], /) -> T:
        for attempt in range(_READ_TRIES):
            state = self.state()
            try:
                return fn(state)
            except FileNotFoundError:  # a shard replaced since the root was read
                if attempt == _READ_TRIES - 1:
                    raise
                self._invalidate()
        raise AssertionError("unreachable")

    def get(self) -> pa.Table:
        """Every live part (reads every shard not read yet)."""
        return self.read(lambda s: s.live)

    def rows(self, table: str, keys: Iterable[str], /) -> pa.Table:
        """The live rows of ``table`` for ``keys`` (reads only their shards)."""
        keys = list(keys)
        return self.read(lambda s: s.rows(table, keys))


class Cache(_Reader):
    """The catalog of one store root, re-read only when the root was replaced (and then
    only the shards that changed, when needed)."""

    def __init__(self, root: Path):
        self.root = root
        self._stamp: tuple | None = None
        self._state: State = State()

    def _read(self, rel: str) -> pa.Table:
        return read_shard((self.root / rel).read_bytes())  # a copy: no mapping kept open

    def _invalidate(self) -> None:
        self._stamp = None

    def state(self) -> State:
        """The catalog the root names now. The root is replaced (renamed over) by each
        commit, also while this process reads it: it is read from ONE open handle, its
        stamp from that handle, so stamp and bytes are of the same file (a reader
        opening the path twice, as ``pq.read_table(path)`` does, could take the footer of
        one root and the pages of the next: "Page was smaller than expected")."""
        try:
            fh = open(self.root / CATALOG, "rb")
        except FileNotFoundError:
            self._stamp, self._state = None, State()
            return self._state
        with fh:
            st = os.fstat(fh.fileno())
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                root = pq.read_table(pa.BufferReader(fh.read()))
                self._state = load(root, self._read, self._state)
                self._stamp = stamp
        return self._state

    def prime(self, state: State, /) -> None:
        """After this process's own commit: ``state`` is what the new root says."""
        with contextlib.suppress(FileNotFoundError):
            st = (self.root / CATALOG).stat()
            state._read = self._read
            self._stamp, self._state = (st.st_ino, st.st_mtime_ns, st.st_size), state


class RemoteCache(_Reader):
    """The catalog of a remote store (:class:`cxlab._fs.Remote`), re-read only when its
    root's version (ETag) changed: one HEAD request per look. ``version`` is the tag of the
    root bytes last parsed, which a commit's conditional write is made against."""

    def __init__(self, remote):
        self.remote = remote
        self._head: str | None = None
        self.version: str | None = None
        self._state: State = State()

    def _read(self, rel: str) -> pa.Table:
        return read_shard(self.remote.read_bytes(rel))

    def _invalidate(self) -> None:
        self._head = None

    def state(self) -> State:
        head = self.remote.version(CATALOG)
        if head is None:
            self._head, self.version, self._state = None, None, State()
            return self._state
        if head == self._head:
            return self._state
        data, tag = self.remote.read_versioned(CATALOG)
        if data is None:
            self._head, self.version, self._state = None, None, State()
            return self._state
        self._state = load(pq.read_table(pa.BufferReader(data)), self._read, self._state)
        self._head, self.version = head, tag
        return self._state

    def prime(self, state: State, data: bytes, /) -> None:
        """After this process's own commit wrote root bytes ``data``."""
        tag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        state._read = self._read
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
