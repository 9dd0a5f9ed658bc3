"""Where a store's files live: a local directory or an fsspec URL (``s3://bucket/prefix``).

Private to :mod:`cxlab.store`. A local store keeps today's code path in ``store.py``
(staged files renamed in place with ``os.replace``, an ``flock``, ``fsync``); this module
gives that code the one thing both kinds share, a pyarrow filesystem and a path to read a
part through, and gives a remote store its few object operations: read and write whole
objects, list, remove, and the catalog's conditional write.

Object stores have no rename, so a remote store writes every part straight to its final
key (named by a digest of its bytes, never reused for other bytes) and commits by writing
the catalog object last: one PUT, atomic. On S3 that PUT is conditional (``IfMatch`` on the
ETag read at the commit's start, ``IfNoneMatch="*"`` for a store's first commit), so of two
writers racing the loser is refused (:class:`StoreConflictError`) instead of erasing the
winner's commit. Other fsspec backends offer no conditional write through fsspec: one
writer per store there.

Credentials and endpoint: the backend's own environment (for S3: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``, ``~/.aws``), plus
``storage_options`` given to :class:`cxlab.store.Store` or, as JSON, in the environment
variable ``CXLAB_STORAGE_OPTIONS`` (read by every process, so pool workers see the same
options). Neither is ever printed: a store shows only its URL, without any ``user:pass@``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import re
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from cxlab._check import ConfigError, CxlabError, message

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
OPTIONS_ENV = "CXLAB_STORAGE_OPTIONS"
_CONDITIONAL = frozenset({"s3", "s3a"})


def is_url(location: object, /) -> bool:
    """Whether ``location`` is a URL with a scheme (``s3://...``), not a local path.

    ``file://`` URLs count as local (they are a directory)."""
    return (
        isinstance(location, str)
        and bool(_URL.match(location))
        and not location.startswith("file://")
    )


def local_path(location: str, /) -> str:
    """``location`` without a ``file://`` prefix."""
    return location[len("file://") :] if location.startswith("file://") else location


def create_once(path: Path, data: bytes, /, *, mode: int, prefix: str) -> None:
    """Create the local file ``path`` holding ``data`` unless it exists, whole or not at
    all, and never replace it.

    The bytes are written and fsynced under a temporary name (``prefix`` + random, in the
    same folder), given ``mode``, then hard-linked into place: of two writers at once one
    wins and the other leaves the winner's file as it is. On a file system without hard
    links (SMB, some FUSE mounts) an exclusive create and one write take the link's place.
    The caller reads ``path`` afterwards to learn what won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another writer's file: kept
        except OSError:  # no hard links here
            with contextlib.suppress(FileExistsError):
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(out, "wb") as fh:
                    fh.write(data)
    finally:
        os.unlink(tmp)


def public_url(url: str, /) -> str:
    """``url`` without credentials (``scheme://user:secret@host/...`` -> ``scheme://host/...``)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", url).rstrip("/")


class StoreConflictError(CxlabError):
    """Another writer committed to the store since this commit read its catalog.

    Attributes
    ----------
    store : str
        The store's URL (no credentials).
    """

    def __init__(self, store: str):
        self.store = store
        super().__init__(
            message(
                "changed while this commit ran: another writer committed first "
                "(its catalog replaced the one this commit started from)",
                field="store",
                value=store,
                fix="run the command again (it starts from the new catalog); "
                "parts this commit wrote are unlisted and removed by Store.recover()",
            )
        )


class Entry(NamedTuple):
    """One object under a remote store: its path relative to the store, its modification
    time (UTC) and its size in bytes."""

    name: str
    modified: datetime
    size: int


def storage_options(given: dict[str, Any] | None, /) -> dict[str, Any]:
    """``CXLAB_STORAGE_OPTIONS`` (JSON) updated by ``given``."""
    out: dict[str, Any] = {}
    text = os.environ.get(OPTIONS_ENV, "").strip()
    if text:
        try:
            env = json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                message(
                    f"is not JSON ({exc.msg} at character {exc.pos})",
                    field=OPTIONS_ENV,
                    value="<hidden: may hold credentials>",
                    fix='give a JSON object, e.g. {"client_kwargs": {"endpoint_url": "..."}}',
                )
            ) from None
        if not isinstance(env, dict):
            raise ConfigError(
                message(
                    "is not a JSON object",
                    field=OPTIONS_ENV,
                    value=type(env).__name__,
                    fix='give a JSON object, e.g. {"anon": false}',
                )
            )
        out.update(env)
    out.update(given or {})
    return out


class Remote:
    """A store under an fsspec URL: whole-object reads and writes relative to its root.

    Parameters
    ----------
    url : str
        ``protocol://bucket/prefix``.
    options : dict
        fsspec storage options (credentials, endpoint).
    """

    def __init__(self, url: str, /, *, options: dict[str, Any]):
        import fsspec
        import pyarrow.fs as pafs

        self.url = public_url(url)
        self._raw_url = url.rstrip("/")
        self._options = options
        self.fs, root = fsspec.core.url_to_fs(self._raw_url, **options)
        self.root = root.rstrip("/")
        self.protocol = self.url.split("://", 1)[0].lower()
        self.conditional = self.protocol in _CONDITIONAL
        self.arrow = pafs.PyFileSystem(pafs.FSSpecHandler(self.fs))

    def __reduce__(self):  # a worker rebuilds it (fsspec caches the client per process)
        return (_remote, (self._raw_url, self._options))

    def key(self, rel: str, /) -> str:
        """The backend path (no protocol) of ``rel``, a path relative to the store."""
        return f"{self.root}/{rel}"

    def read_bytes(self, rel: str, /) -> bytes:
        return self.fs.cat_file(self.key(rel))

    def write_bytes(self, rel: str, data: bytes, /) -> None:
        self.fs.pipe_file(self.key(rel), data)

    def exists(self, rel: str, /) -> bool:
        return bool(self.fs.exists(self.key(rel)))

    def size(self, rel: str, /) -> int:
        return int(self.fs.info(self.key(rel))["size"])

    def remove(self, rels: list[str], /) -> int:
        """Delete ``rels`` (missing ones ignored); returns the number asked for."""
        if not rels:
            return 0
        keys = [self.key(r) for r in rels]
        try:
            self.fs.rm(keys)
        except FileNotFoundError:
            for k in keys:
                try:
                    self.fs.rm_file(k)
                except FileNotFoundError:
                    pass
        return len(rels)

    def entries(self, prefix: str = "", /) -> list[Entry]:
        """Every object under the store (or under ``prefix`` of it), sorted by name."""
        base = self.key(prefix).rstrip("/") if prefix else self.root
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            rel = path.removeprefix(self.root + "/")
            mtime = info.get("LastModified") or info.get("mtime") or info.get("created")
            if isinstance(mtime, (int, float)):
                mtime = datetime.fromtimestamp(mtime, UTC)
            if mtime is None:
                mtime = datetime.fromtimestamp(0, UTC)
            out.append(Entry(rel, mtime, int(info.get("size") or 0)))
        return sorted(out)

    # -- the catalog: read with its version, written conditionally ------------------
    def read_versioned(self, rel: str, /) -> tuple[bytes | None, str | None]:
        """The bytes of ``rel`` and a version tag (the ETag on S3) that matches them, or
        ``(None, None)`` when absent. The tag is the MD5 of the bytes read, which is the
        ETag S3 gives an object written by one PUT (as :meth:`write_if` writes), so the
        tag can never belong to newer bytes than the ones returned."""
        try:
            data = self.fs.cat_file(self.key(rel))
        except FileNotFoundError:
            return None, None
        return data, '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'

    def version(self, rel: str, /) -> str | None:
        """The current version tag of ``rel`` (one HEAD request), or None when absent; a
        backend without ETags gives a fresh tag each time (the caller reads again)."""
        try:
            info = self.fs.info(self.key(rel), refresh=True)
        except FileNotFoundError:
            return None
        tag = info.get("ETag") or info.get("etag")
        if tag is None:  # no ETag (memory://, some backends): a size or a time can repeat
            return f"unknown-{uuid.uuid4().hex}"  # so never equal: the catalog is re-read
        return str(tag)

    def write_if(self, rel: str, data: bytes, /, *, version: str | None) -> None:
        """Write ``rel`` only if it is still at ``version`` (None: only if absent).

        Raises
        ------
        StoreConflictError
            If another writer changed it (S3: HTTP 412 Precondition Failed). Backends
            without conditional writes write unconditionally (one writer per store).
        """
        if not self.conditional:
            self.write_bytes(rel, data)
            return
        bucket, _, key = self.key(rel).partition("/")
        cond = {"IfNoneMatch": "*"} if version is None else {"IfMatch": version}
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **cond)
        except (FileExistsError, OSError) as exc:
            if isinstance(exc, FileExistsError) or "pre-condition" in str(exc).lower():
                raise StoreConflictError(self.url) from None
            raise
        finally:
            self.fs.invalidate_cache(self.key(rel))


def _remote(url: str, options: dict[str, Any]) -> Remote:
    return Remote(url, options=options)


_PINNED: list[Any] = []
"""fsspec's event loop and the remote filesystems, referenced for the life of the process.

fsspec's async backends run an event loop in a thread; a pool worker forked from a process
that used one inherits those objects without the thread (fsspec starts a new loop in the
child). If the child's garbage collector then frees the inherited loop or clients, their
finalisers touch state of the dead thread and the worker crashes (seen as segmentation
faults in forked ingest workers). Holding them here, pinned before every fork, means the
child never frees them."""


def _pin_before_fork() -> None:
    import sys

    asyn = sys.modules.get("fsspec.asyn")
    if asyn is None:
        return
    held = {id(o) for o in _PINNED}
    found = [*getattr(asyn, "loop", []), *getattr(asyn, "iothread", [])]
    for kind in [*asyn.AsyncFileSystem.__subclasses__(), asyn.AsyncFileSystem]:
        found.extend(getattr(kind, "_cache", {}).values())
    _PINNED.extend(o for o in found if o is not None and id(o) not in held)
    if any(o is not None for o in getattr(asyn, "loop", [])):
        # and no inherited object at all is collected in the child (cyclic garbage of
        # aiohttp/botocore that no filesystem references any more): Python's gc.freeze,
        # made for fork without exec; the parent unfreezes right after the fork
        gc.freeze()
        _FROZEN[0] = True


def _unfreeze_in_parent() -> None:
    if _FROZEN[0]:
        _FROZEN[0] = False
        gc.unfreeze()


_FROZEN = [False]
os.register_at_fork(before=_pin_before_fork, after_in_parent=_unfreeze_in_parent)
