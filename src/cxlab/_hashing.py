"""Content hashes of files (a leaf module: recording ids, survey part keys, run manifests)."""

from __future__ import annotations

import hashlib
import os

__all__ = ["sha256_of"]


def sha256_of(*paths: str | os.PathLike[str]) -> str:
    """Hex sha256 of the files' bytes, read in 1 MiB blocks and hashed in the given order."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
