"""Find identifiers in a folder of outputs: every byte of every file, and every decoded value
of every Parquet column that can hold text.

Not a test module: the privacy tests (``tests/test_demo.py``) import it. A Parquet file's
pages are compressed, so its raw bytes show only the footer (schema, key-value metadata,
statistics); the values are read back with pyarrow and only the columns that can spell a
name, an e-mail or a date are searched. Integer, float and boolean columns cannot (their
text is digits), so they are skipped; dates and timestamps are cast to their ISO text, as
``DataFrame.to_csv`` would print them; dictionary, list and struct columns are unpacked.
Each column is reduced to its distinct values before the search (``pyarrow.compute.unique``),
so a 10-million-row marker table costs one pass in C, not a Python loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["leaks", "parquet_texts"]

_SEP = "\x00"  # no identifier holds a NUL, so no match spans two values


def _texts(arr: pa.Array) -> Iterable[str]:
    """The distinct text values of one column chunk (or nothing, for a numeric one)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        yield from _texts(arr.dictionary)  # every entry, used or not
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _texts(arr.field(i))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        yield from _texts(arr.flatten())
    elif pa.types.is_map(t):
        yield from _texts(arr.keys)
        yield from _texts(arr.items)
    elif _numeric(t):
        return
    else:  # strings, binaries, dates, times, timestamps, durations...
        u = pc.unique(arr.drop_null())
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            yield from (v.decode("latin-1") for v in u.to_pylist())
            return
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            u = pc.cast(u, pa.string())  # ISO text, e.g. 1990-05-03 for a date32
        yield from u.to_pylist()


def _numeric(t: pa.DataType) -> bool:
    """A type whose values are digits only (its text cannot spell a name or an e-mail)."""
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_null(t)
        or pa.types.is_decimal(t)
    )


def parquet_texts(source: Path | bytes) -> str:
    """Every distinct text value of every column of a Parquet file (a path, or its bytes
    already read), NUL-separated.

    Only the columns that can hold text are decoded (the file's schema says which): the
    float columns of a signal table are most of its bytes and :func:`_texts` skips them."""
    f = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source)
    columns = [c.name for c in f.schema_arrow if not _numeric(c.type)]
    if not columns:
        return ""
    table = f.read(columns=columns)
    out: list[str] = []
    for col in table.columns:
        for chunk in col.chunks:
            out.extend(_texts(chunk))
    return _SEP.join(out)


def leaks(
    roots: Iterable[Path],
    secrets: Iterable[str],
    /,
    *,
    outputs: Iterable[str] = (),
    ignore_case: bool = False,
) -> dict[str, str]:
    """Which ``secrets`` occur anywhere under ``roots`` or in ``outputs``.

    Searched: each file's path below its root, its bytes (each secret as UTF-8), and, for
    a Parquet file (told by its ``PAR1`` magic, whatever its name), the decoded text
    columns (:func:`parquet_texts`). With ``ignore_case``, bytes are folded as ASCII. A
    file with the same path below its root and the same bytes as one already searched (a
    copy of a store beside the original) is not searched again: it cannot hold a secret
    the first did not.

    Returns
    -------
    dict
        Secret -> the first place it was seen (a file path or ``"output"``); empty when
        nothing leaked.
    """
    fold = str.lower if ignore_case else str
    todo = {fold(s): s for s in secrets}
    found: dict[str, str] = {}

    def scan(text: str | bytes, where: str) -> None:
        if isinstance(text, bytes):  # bytes.lower folds ASCII only, as the keys' bytes
            t = text.lower() if ignore_case else text
            keys = {k.encode("utf-8"): k for k in todo}
        else:
            t = fold(text)
            keys = {k: k for k in todo}
        for key, k in keys.items():
            if key in t:
                found[todo.pop(k)] = where

    for i, text in enumerate(outputs):
        scan(text, f"output {i}")
    seen: set[tuple[str, bytes]] = set()  # (path below its root, BLAKE2b of the bytes)
    for root in roots:
        root = Path(root)
        for f in sorted(root.rglob("*")):
            if not todo:
                return found
            if not f.is_file():
                continue
            below = f.relative_to(root).as_posix()
            rel = f"{root.name}/{below}"
            data = f.read_bytes()
            copy = (below, hashlib.blake2b(data, digest_size=20).digest())
            if copy in seen:
                continue
            seen.add(copy)
            scan(below, f"{rel} (path)")
            scan(data, rel)
            if data[:4] == b"PAR1":  # Parquet whatever the file is called
                scan(parquet_texts(data), f"{rel} (values)")  # the bytes read above
    return found
