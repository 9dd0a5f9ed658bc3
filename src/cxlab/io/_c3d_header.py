"""C3D header and parameter section: validated, processor-aware decoding.

The C3D layout follows the C3D.org *User Guide* (Motion Lab Systems, 2008):
512-byte blocks; block 1 is the header, the parameter section starts at the
block named by header byte 0, and its byte 3 names the processor that wrote
the file (84 Intel, 85 DEC, 86 MIPS/SGI).  Integers are little-endian on
Intel and DEC, big-endian on MIPS; floats are IEEE-754 on Intel (LE) and MIPS
(BE) and VAX F-floating on DEC.

Everything here is pure and works on an in-memory ``bytes`` buffer; every
out-of-bounds or inconsistent value raises :class:`~cxlab._check.InputFormatError`
with a one-line message naming the file, the field, the value and a fix.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxlab._check import InputFormatError, message

__all__ = ["C3DHeader", "Param", "dec_to_float32", "read_header", "read_parameters"]

BLOCK = 512
PROCESSORS = {84: "intel", 85: "dec", 86: "mips"}
_FIX_CORRUPT = "the file is corrupt or truncated; re-export it from the capture software"


def _fail(
    path: Path, problem: str, *, field: str | None = None, value: Any = ..., fix: str = _FIX_CORRUPT
) -> InputFormatError:
    return InputFormatError(message(problem, file=path, field=field, value=value, fix=fix))


def dec_to_float32(raw: np.ndarray, /) -> np.ndarray:
    """Convert VAX F-floating values to IEEE float32, vectorised.

    Parameters
    ----------
    raw : ndarray of uint32
        The 4 bytes of each value read as a little-endian ``uint32`` (so the
        two 16-bit words are swapped relative to VAX order).

    Returns
    -------
    ndarray of float32, same shape
        ``(-1)^s * 0.1f * 2^(e - 128)`` with ``e == 0`` giving 0 (VAX
        Architecture Reference Manual, F_floating).  Computed exactly in
        float64 with :func:`numpy.ldexp`, then rounded to float32.
    """
    raw = np.asarray(raw, dtype=np.uint32)
    bits = (raw >> np.uint32(16)) | (raw << np.uint32(16))  # VAX word order -> s|e|f
    exp = ((bits >> np.uint32(23)) & np.uint32(0xFF)).astype(np.int32)
    mant = ((bits & np.uint32(0x7FFFFF)) | np.uint32(0x800000)).astype(np.float64)
    val = np.ldexp(mant, exp - 152)  # 0.1f x 2^(e-128) = mant x 2^(e-128-24)
    val = np.where(bits >> np.uint32(31), -val, val)
    val[exp == 0] = 0.0
    return val.astype(np.float32)


def _float_dtype(processor: str) -> str:
    return {"intel": "<f4", "mips": ">f4", "dec": "<u4"}[processor]


def _floats(buf: bytes, offset: int, count: int, processor: str) -> np.ndarray:
    arr = np.frombuffer(buf, dtype=_float_dtype(processor), count=count, offset=offset)
    return dec_to_float32(arr) if processor == "dec" else arr.astype(np.float32)


@dataclass
class C3DHeader:
    """The fields of the 512-byte C3D header (User Guide, Table 1)."""

    param_block: int
    processor: str
    n_points: int
    n_analog_words: int
    first_frame: int
    last_frame: int
    scale: float
    data_start: int
    analog_per_frame: int
    rate_hz: float
    events: list[tuple[str, float]] = field(default_factory=list)

    @property
    def endian(self) -> str:
        return ">" if self.processor == "mips" else "<"


def read_header(buf: bytes, path: Path, /) -> C3DHeader:
    """Decode and validate the header block.

    Raises
    ------
    InputFormatError
        Shorter than one block, key byte not 0x50, parameter block outside the
        file, unknown processor byte, non-finite scale or rate.
    """
    if len(buf) < 2 * BLOCK:
        raise _fail(
            path,
            "file is shorter than a C3D header and one parameter block",
            field="header",
            value=len(buf),
        )
    if buf[1] != 0x50:
        raise _fail(
            path,
            "key byte is not 0x50, so this is not a C3D file",
            field="header[1]",
            value=hex(buf[1]),
            fix="check the file type",
        )
    param_block = buf[0]
    if param_block < 2 or param_block * BLOCK > len(buf):
        raise _fail(
            path,
            f"first parameter block lies outside the file ({len(buf) // BLOCK} blocks)",
            field="header[0]",
            value=param_block,
        )
    proc_byte = buf[(param_block - 1) * BLOCK + 3]
    if proc_byte not in PROCESSORS:
        raise _fail(
            path,
            "unknown processor type byte (expected 84 Intel, 85 DEC, 86 MIPS)",
            field="parameters[3]",
            value=proc_byte,
        )
    processor = PROCESSORS[proc_byte]
    e = ">" if processor == "mips" else "<"
    words = np.frombuffer(buf, dtype=e + "u2", count=256)
    scale = float(_floats(buf, 12, 1, processor)[0])
    rate = float(_floats(buf, 20, 1, processor)[0])
    if not np.isfinite(scale):
        raise _fail(path, "point scale factor is not finite", field="header scale", value=scale)
    if not np.isfinite(rate) or rate < 0:
        raise _fail(
            path, "frame rate is not a finite non-negative number", field="header rate", value=rate
        )
    events: list[tuple[str, float]] = []
    n_events = int(words[150])
    if 0 < n_events <= 18:
        times = _floats(buf, 304, n_events, processor)
        labels = [
            buf[396 + 4 * i : 400 + 4 * i].decode("latin-1").strip(" \x00") for i in range(n_events)
        ]
        events = [(lab, float(t)) for lab, t in zip(labels, times, strict=True)]
    return C3DHeader(
        param_block=param_block,
        processor=processor,
        n_points=int(words[1]),
        n_analog_words=int(words[2]),
        first_frame=int(words[3]),
        last_frame=int(words[4]),
        scale=scale,
        data_start=int(words[8]),
        analog_per_frame=int(words[9]),
        rate_hz=rate,
        events=events,
    )


@dataclass
class Param:
    """One C3D parameter.

    ``value`` is a list of str for character data (one string per entry,
    trailing blanks stripped), else an ndarray shaped like the C3D
    dimensions in Fortran order (``dims[0]`` varies fastest), as ezc3d does.
    """

    dtype: int
    dims: tuple[int, ...]
    value: Any

    def flat(self) -> np.ndarray:
        """The numeric values as a flat float64 array (column-major order)."""
        if self.dtype == -1:
            raise TypeError("character parameter")
        return np.asarray(self.value, dtype=np.float64).ravel(order="F")

    def strings(self) -> list[str]:
        if self.dtype != -1:
            return [str(v) for v in self.flat()]
        return list(self.value)

    def plain(self) -> Any:
        """JSON-friendly value: str, number, or (nested) list."""
        if self.dtype == -1:
            return self.value[0] if len(self.dims) <= 1 and len(self.value) == 1 else self.value
        arr = np.asarray(self.value)
        return arr.item() if arr.size == 1 and len(self.dims) == 0 else arr.tolist()


def _int8(b: int) -> int:
    return b - 256 if b > 127 else b


#: numpy dtypes of the numeric parameter types, by byte order ("<" or ">"); built once
_INT_DTYPE = {e: np.dtype(e + "i2") for e in "<>"}
_U1 = np.dtype(np.uint8)
_F4 = {"intel": np.dtype("<f4"), "mips": np.dtype(">f4"), "dec": np.dtype("<u4")}


#: a record's signed 16-bit offset to the next one, by byte order
_I16 = {e: struct.Struct(e + "h") for e in "<>"}


def _decode_value(
    buf: bytes, pos: int, dtype: int, dims: tuple[int, ...], processor: str, e: str
) -> Any:
    n = math.prod(dims)
    if dtype == -1:
        raw = buf[pos : pos + n]
        if len(dims) <= 1:
            return [raw.decode("latin-1").rstrip(" \x00")]
        width = dims[0]
        count = n // width if width else 0
        text = raw.decode("latin-1")  # one char per byte: slicing the str = slicing the bytes
        if not count:
            return []
        return [text[i : i + width].rstrip(" \x00") for i in range(0, count * width, width)]
    if dtype == 1:
        arr = np.frombuffer(buf, dtype=_U1, count=n, offset=pos).astype(np.int64)
    elif dtype == 2:
        arr = np.frombuffer(buf, dtype=_INT_DTYPE[e], count=n, offset=pos).astype(np.int64)
    else:
        arr = np.frombuffer(buf, dtype=_F4[processor], count=n, offset=pos)
        # float32 -> float64 is exact, so no float32 intermediate is needed
        arr = (dec_to_float32(arr) if processor == "dec" else arr).astype(np.float64)
    return arr.reshape(dims, order="F") if dims else arr.reshape(())


def _decode_batch(batch: list[tuple[Param, bytes]], dtype: int, processor: str, e: str) -> None:
    """Set the value of every numeric parameter of one type from one decode of their bytes.

    The same conversions as :func:`_decode_value` (uint8 and int16 to int64, float32, or VAX
    F-float through :func:`dec_to_float32`, to float64; all exact element by element), once
    for all the parameters of the type instead of ~10 NumPy calls per DEC parameter; each
    value is then its slice, shaped like the C3D dimensions in Fortran order.
    """
    raw = b"".join(chunk for _, chunk in batch)
    if dtype == 1:
        arr = np.frombuffer(raw, dtype=_U1).astype(np.int64)
    elif dtype == 2:
        arr = np.frombuffer(raw, dtype=_INT_DTYPE[e]).astype(np.int64)
    else:
        arr = np.frombuffer(raw, dtype=_F4[processor])
        arr = (dec_to_float32(arr) if processor == "dec" else arr).astype(np.float64)
    at = 0
    for param, chunk in batch:
        n = len(chunk) // dtype
        part = arr[at : at + n]
        at += n
        param.value = part.reshape(param.dims, order="F") if param.dims else part.reshape(())


def read_parameters(
    buf: bytes, path: Path, header: C3DHeader, /, *, strict: bool = False
) -> dict[str, dict[str, Param]]:
    """Decode the parameter section into ``{GROUP: {PARAM: Param}}`` (names upper-case).

    ``strict=True`` (used before handing a file to ezc3d) also rejects group
    ids above 64, a group id declared twice and records that do not end
    exactly where their pointer says the next one starts (ezc3d 1.7 crashes on
    such files instead of raising).  Parameters of undeclared
    groups (seen in c3d.org's TYPE-2.C3D) are dropped.

    Raises
    ------
    InputFormatError
        Block count runs past the end of the file; a record points outside
        the section; a parameter has an invalid type or runs past the section.
    """
    start = (header.param_block - 1) * BLOCK
    n_blocks = buf[start + 2]
    n_file_blocks = len(buf) // BLOCK - header.param_block + 1
    if n_blocks == 0:  # some writers leave it 0; bound by the data start instead
        n_blocks = max(header.data_start - header.param_block, 1)
    if n_blocks > n_file_blocks:
        raise _fail(
            path,
            f"parameter section claims {n_blocks} blocks but the file holds only "
            f"{n_file_blocks} from block {header.param_block}",
            field="parameters[2]",
            value=n_blocks,
        )
    end = start + n_blocks * BLOCK
    if header.data_start > header.param_block + n_blocks:  # claim too small: data start bounds it
        end = min((header.data_start - 1) * BLOCK, len(buf))
    e = header.endian
    i16 = _I16[e].unpack_from
    processor = header.processor
    groups: dict[int, str] = {}
    pending: list[tuple[int, str, Param]] = []
    batches: dict[int, list[tuple[Param, bytes]]] = {1: [], 2: [], 4: []}
    pos = start + 4
    seen = 0
    while pos + 2 <= end:
        n_chars, gid = buf[pos], buf[pos + 1]  # signed bytes (_int8), inlined: once a record
        n_chars = 256 - n_chars if n_chars > 127 else n_chars
        gid = gid - 256 if gid > 127 else gid
        if n_chars == 0 or gid == 0:
            break
        name_end = pos + 2 + n_chars
        if name_end + 2 > end:
            raise _fail(
                path,
                "a parameter record runs past the parameter section",
                field="parameters",
                value=pos - start,
            )
        name = buf[pos + 2 : name_end].decode("latin-1").strip().upper()
        if not name.isprintable():
            name = "".join(ch if ch.isprintable() else "?" for ch in name)
        offset = i16(buf, name_end)[0]
        body = name_end + 2
        nxt = name_end + offset if offset > 0 else end
        if offset < 0:
            raise _fail(path, "parameter record points backwards", field=name, value=offset)
        if gid < 0:
            if strict and (-gid > 64 or -gid in groups):
                raise _fail(
                    path, "group id is out of range or declared twice", field=name, value=-gid
                )
            if strict and offset > 0 and (body >= end or body + 1 + buf[body] != nxt):
                raise _fail(
                    path,
                    "group record does not end where the next one starts",
                    field=name,
                    value=buf[body] if body < end else None,
                )
            groups[-gid] = name
        else:
            if body + 2 > end:
                raise _fail(
                    path,
                    "parameter record runs past the parameter section",
                    field=name,
                    value=body - start,
                )
            dtype = _int8(buf[body])
            n_dims = buf[body + 1]
            if dtype not in (-1, 1, 2, 4):
                raise _fail(
                    path,
                    "parameter has an invalid data type (expected -1, 1, 2 or 4)",
                    field=name,
                    value=dtype,
                )
            if n_dims > 7:
                raise _fail(path, "parameter has more than 7 dimensions", field=name, value=n_dims)
            dims = tuple(buf[body + 2 : body + 2 + n_dims])
            vpos = body + 2 + n_dims
            size = math.prod(dims) * abs(dtype)
            if vpos + size > end:
                raise _fail(
                    path,
                    f"parameter data ({size} bytes) runs past the parameter section",
                    field=name,
                    value=dims,
                )
            if (
                strict
                and offset > 0
                and (vpos + size >= end or vpos + size + 1 + buf[vpos + size] != nxt)
            ):
                raise _fail(
                    path,
                    "parameter record does not end where the next one starts",
                    field=name,
                    value=dims,
                )
            if dtype == -1:
                param = Param(dtype, dims, _decode_value(buf, vpos, dtype, dims, processor, e))
            else:  # decoded below with every other value of its type: one NumPy pass a type
                param = Param(dtype, dims, None)
                batches[dtype].append((param, buf[vpos : vpos + size]))
            pending.append((gid, name, param))
        seen += 1
        if offset == 0 or nxt + 2 > end or seen > 100_000:  # last record (some point past)
            break
        pos = nxt
    for dtype, batch in batches.items():
        if batch:
            _decode_batch(batch, dtype, processor, e)
    params: dict[str, dict[str, Param]] = {name: {} for name in groups.values()}
    for gid, name, p in pending:
        group = groups.get(gid)
        if group is not None:
            params[group][name] = p
    return params
