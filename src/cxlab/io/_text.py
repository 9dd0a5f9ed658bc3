"""Shared helpers of the text readers (TRC, MOT/STO, CSV, vendor exports): header lines,
delimiters, the numeric block, finiteness and time-order checks."""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab._check import InputFormatError, message, warn
from cxlab.io.recording import Platform, Recording

__all__ = [
    "MAX_ABS",
    "NA_TEXT",
    "NUMBER",
    "cells",
    "check_empty",
    "decimal_mark",
    "delimiter",
    "head_bytes",
    "head_line",
    "head_lines",
    "is_endheader",
    "numeric_block",
    "plate_findings",
    "plate_recording",
    "rate_from_time",
    "time_order",
    "unreadable",
]

#: cells read as missing: empty, ``NA``/``N/A`` and NaN in any letter case, signed or not
#: (OpenSim writes ``NaN``, its example TRC ``Nan``, C++ streams ``nan`` and ``-nan``)
NA_TEXT = (
    "",
    "NA",
    "N/A",
    "n/a",
    "#N/A",
    *(sign + "".join(p) for sign in ("", "-", "+") for p in itertools.product("nN", "aA", "nN")),
)
#: no value of a recording's text export is this large (epoch time stamps in µs are 1.8e15);
#: larger ones (``1e308``) are corrupt, as are infinities
MAX_ABS = 1e16


def unreadable(path: str | os.PathLike[str], error: OSError, /) -> InputFormatError:
    """The error of a recording file the system cannot open or read (naming its reason)."""
    return InputFormatError(
        message(
            f"cannot be read ({error.strerror})",
            file=path,
            fix="check the path and its permissions",
        )
    )


def head_bytes(path: str | os.PathLike[str], /, n: int = 4096) -> bytes:
    """The first ``n`` bytes of ``path`` (all of a shorter file).

    Raises
    ------
    InputFormatError
        If the file cannot be opened or read (:func:`unreadable`).
    """
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as e:
        raise unreadable(path, e) from None


def check_empty(path: Path, /) -> None:
    """Refuse a 0-byte (or whitespace-only) file with a message saying so."""
    head = head_bytes(path)
    if not head.strip():
        what = f"{len(head)} bytes of white space" if head else "0 bytes"
        raise InputFormatError(
            message(
                f"is empty ({what})",
                file=path,
                fix="re-export the recording; the file holds no data",
            )
        )


#: a number written with a decimal point or a decimal comma
NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def decimal_mark(lines: list[str], sep: str, /) -> str:
    """``","`` when the cells of ``lines`` are written with a decimal comma, else ``"."``.

    Cells are split as CSV (quotes removed), so ``"463,1"`` in a comma-delimited row counts;
    ``","`` wins only when more cells use a comma than a point.
    """
    comma = dot = 0
    for cell in (c.strip() for row in csv.reader(lines, delimiter=sep) for c in row):
        if NUMBER.match(cell):
            comma += "," in cell
            dot += "." in cell
    return "," if comma > dot else "."


def head_lines(path: Path, n: int) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            out = []
            for _ in range(n):
                line = fh.readline()
                if not line:
                    break
                out.append(line.rstrip("\r\n"))
            if out:  # a byte-order mark is not part of the first cell
                out[0] = out[0].lstrip("\ufeff")
            return out
    except OSError as e:
        raise unreadable(path, e) from None


def head_line(
    head: list[str], is_it: Callable[[str], bool], /, *, path: Path, what: str, fix: str
) -> int:
    """The index of the first line of ``head`` that ``is_it`` and has a line after it.

    Raises
    ------
    InputFormatError
        ``what`` is wrong with the file (no such line, or nothing after it), with ``fix``.
    """
    i = next((i for i, line in enumerate(head) if is_it(line)), None)
    if i is None or i + 1 >= len(head):
        raise InputFormatError(message(what, file=path, fix=fix))
    return i


def is_endheader(line: str, /) -> bool:
    """Whether ``line`` is the ``endheader`` line closing an OpenSim MOT/STO header."""
    return re.split(r"[\t, ]", line.strip(), maxsplit=1)[0].lower() == "endheader"


#: the "delimiter" of whitespace-separated text (split with a regular expression)
WHITESPACE = r"\s+"
#: the delimiters a text export may use, in the order that wins a tie
DELIMITERS = ("\t", ",", ";")
_QUOTED = re.compile(r'"[^"]*"')


def delimiter(line: str, /, *, default: str = ",") -> str:
    """The delimiter of a delimited-text line: the most frequent of tab, ``,`` and ``;``.

    The one delimiter sniffer of cxlab's readers (force-plate CSV, ForceDecks, OpenSim,
    sheets, the ingest path check). A tie goes to tab, then ``,``: a ``;`` wins only with
    more ``;`` than ``,`` (comma-decimal locales write ``;``-separated files). Characters
    inside double quotes are not counted. Give it the header line, not a data line, where a
    decimal comma would count.

    Parameters
    ----------
    line : str
        One line of the file (a header row).
    default : str
        Returned when the line holds none of the three: ``","`` (a one-column sheet) or
        :data:`WHITESPACE` for whitespace-separated formats (OpenSim headers).
    """
    bare = _QUOTED.sub("", line)  # a delimiter inside a quoted name does not count
    counts = [bare.count(d) for d in DELIMITERS]
    best = max(range(len(DELIMITERS)), key=lambda i: (counts[i], -i))
    return DELIMITERS[best] if counts[best] else default


def cells(line: str, sep: str) -> list[str]:
    parts = re.split(sep, line.strip()) if sep == WHITESPACE else line.split(sep)
    return [p.strip() for p in parts]


def _max_fields(raw: bytes, skiprows: int, sep: str) -> int | None:
    """Most fields on any line after ``skiprows`` lines, counted with NumPy (no line loop)."""
    if len(sep) != 1:
        return None
    arr = np.frombuffer(raw, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    start = int(nl[skiprows - 1]) + 1 if skiprows and len(nl) >= skiprows else 0
    if skiprows and len(nl) < skiprows:
        return 0
    body = arr[start:]
    if not body.size:
        return 0
    ends = np.append(np.flatnonzero(body == 10), body.size)
    seps = np.concatenate([[0], np.cumsum(body == ord(sep))])
    per_line = np.diff(seps[np.concatenate([[0], ends])])
    return int(per_line.max()) + 1


def numeric_block(
    path: Path,
    /,
    *,
    skiprows: int,
    sep: str,
    names_line: int = 0,
    names: list[str] | None = None,
    decimal: str = ".",
    text: str | None = None,
) -> np.ndarray:
    """Parse the numeric block of a delimited text file as float64, shape (n_rows, n_cols).

    Rows may have different numbers of cells (short rows are NaN-padded; the caller decides
    what extra columns mean). Blank lines and rows whose cells are all empty are dropped.
    ``NaN`` in any case, ``NA`` and empty cells are missing values.

    Parameters
    ----------
    names_line, names
        The 1-based line holding the column names, or the names themselves, to name a bad
        cell's column in the message.
    decimal : str
        Decimal mark (``","`` for exports written with a decimal comma).
    text : str, optional
        The file's text already transformed by the caller (e.g. quaternion cells split);
        else the file is read from ``path``.

    Raises
    ------
    InputFormatError
        A cell that is not a number, an infinite value or one beyond ±1e16 (corrupt), naming
        the line (1-based) and column.
    """
    try:
        raw = text.encode("utf-8") if text is not None else path.read_bytes()
    except OSError as e:
        raise unreadable(path, e) from None
    width = _max_fields(raw, skiprows, sep)
    if width == 0:
        return np.empty((0, 0))
    # a corrupt byte becomes U+FFFD, so the cell is reported as not a number
    kw = dict(
        sep=sep,
        header=None,
        skiprows=skiprows,
        skip_blank_lines=True,
        engine="c",
        encoding_errors="replace",
        na_values=list(NA_TEXT),
        keep_default_na=False,
        decimal=decimal,
        quotechar='"',
    )
    if width is not None:
        kw["names"] = range(width)
    try:  # EmptyDataError and ParserError subclass ValueError: catch them first
        try:
            df = pd.read_csv(io.BytesIO(raw), dtype=np.float64, **kw)
        except pd.errors.EmptyDataError:
            return np.empty((0, 0))
        except pd.errors.ParserError:
            raise
        except (ValueError, TypeError):
            df = _locate_bad_cell(raw, path, kw, skiprows, names_line, names)
    except pd.errors.ParserError as e:
        raise InputFormatError(
            message(
                f"rows have inconsistent numbers of columns ({' '.join(str(e).split())})",
                file=path,
                fix="re-export the file",
            )
        ) from None
    data = df.to_numpy(dtype=np.float64)
    kept = ~np.isnan(data).all(axis=1)
    bad = np.isinf(data) | (np.abs(np.nan_to_num(data)) > MAX_ABS)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        col = _column_name(c, path, sep, names_line, names)
        raise InputFormatError(
            message(
                f"line {_line_numbers(raw, skiprows)[r]}: is not a finite measurement",
                file=path,
                field=col,
                value=float(data[r, c]),
                fix="the file is corrupt there; re-export it or blank that cell",
            )
        )
    return data[kept]


def _line_numbers(raw: bytes, skiprows: int) -> np.ndarray:
    """1-based line number of each row pandas returns (it skips empty lines)."""
    arr = np.frombuffer(raw, dtype=np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(arr == 10) + 1])
    ends = np.append(starts[1:] - 1, arr.size)
    length = ends - starts - (arr[np.maximum(ends - 1, 0)] == 13) * (ends > starts)
    lines = np.arange(1, starts.size + 1)
    return lines[skiprows:][length[skiprows:] > 0]


def _column_name(c: int, path: Path, sep: str, names_line: int, names: list[str] | None) -> str:
    if names is None:
        names = cells(head_lines(path, names_line)[-1], sep) if names_line else []
    return names[c] if c < len(names) and names[c] else f"column {c + 1}"


def _locate_bad_cell(
    raw: bytes, path: Path, kw: dict, skiprows: int, names_line: int, names: list[str] | None
) -> pd.DataFrame:
    kw = {**kw, "keep_default_na": False, "na_values": []}
    df = pd.read_csv(io.BytesIO(raw), dtype=str, **kw).fillna("")
    text = df.apply(lambda s: s.str.strip())
    num = text.apply(
        lambda s: pd.to_numeric(
            s.str.replace(kw["decimal"], ".", regex=False) if kw["decimal"] != "." else s,
            errors="coerce",
        )
    )
    bad = num.isna().to_numpy() & ~text.isin(NA_TEXT).to_numpy()
    if not bad.any():
        return num
    r, c = np.argwhere(bad)[0]
    col = _column_name(c, path, kw["sep"], names_line, names)
    raise InputFormatError(
        message(
            f"line {_line_numbers(raw, skiprows)[r]}: is not a number",
            file=path,
            field=col,
            value=df.iat[r, c],
            fix="fix or blank that cell and re-run",
        )
    )


def time_order(time: np.ndarray, path: Path, field: str, *, first_line: int) -> np.ndarray | None:
    """Check that ``time`` (s) increases; the row order that sorts it, or ``None`` if sorted.

    Rows that are merely out of order (every time value distinct) are sorted, with a warning
    naming the first such line; a repeated time value or a missing one is refused, since
    which row is right cannot be known.

    Parameters
    ----------
    first_line : int
        1-based line number of the first data row, for messages.
    """
    if time.size < 2:
        return None
    missing = ~np.isfinite(time)
    if missing.any():
        i = int(np.argmax(missing))
        raise InputFormatError(
            message(
                f"line {first_line + i}: time is missing",
                file=path,
                field=field,
                value=float(time[i]),
                fix="fill the time cell or re-export the file",
            )
        )
    step = np.diff(time)
    if (step > 0).all():
        return None
    i = int(np.argmax(~(step > 0))) + 1
    order = np.argsort(time, kind="stable")
    if (np.diff(time[order]) == 0).any():
        j = int(np.flatnonzero(np.diff(time[order]) == 0)[0])
        a, b = sorted((int(order[j]), int(order[j + 1])))
        raise InputFormatError(
            message(
                f"line {first_line + b}: time {time[b]:g} s repeats line {first_line + a}",
                file=path,
                field=field,
                fix="remove the duplicated row or re-export the file",
            )
        )
    warn(
        f"line {first_line + i}: time {time[i]:g} s comes after {time[i - 1]:g} s; rows are "
        "not in time order and were sorted by time",
        file=path,
        field=field,
    )
    return order


def rate_from_time(time: np.ndarray, path: Path, field: str, *, robust: bool = False) -> float:
    """Sample rate from a time column, Hz, rounded to 9 significant digits.

    ``robust=False``: (n − 1) / (t_last − t_first), exact for time stamps rounded to a few
    decimals (600 Hz written as 0.0017, 0.0033, ...). ``robust=True``: 1 / median step, which
    ignores a single odd step (a decimated file whose last frame is the original last frame).
    """
    t = time[np.isfinite(time)]
    if t.size < 2 or not t[-1] > t[0]:
        raise InputFormatError(
            message(
                "needs at least two increasing time values to give the sample rate",
                file=path,
                field=field,
                value=t[:2].tolist(),
                fix="check the time column",
            )
        )
    rate = 1.0 / np.median(np.diff(t)) if robust else (t.size - 1) / (t[-1] - t[0])
    return float(f"{rate:.9g}")


def plate_findings(platforms: list, path: Path, /) -> list[str]:
    """Physical checks no format rule catches, one sentence per failed check (also warned).

    A plate whose vertical force is negative where it is loaded (median over samples with
    |fz| > 50 N, at least 10 of them) gives the force *on the plate*, or has its axes upside
    down: cxlab's convention is the force on the body, positive up.
    """
    out = []
    for k, p in enumerate(platforms, start=1):
        fz = p.force[:, 2]
        loaded = np.abs(np.nan_to_num(fz)) > 50.0
        if loaded.sum() >= 10 and np.median(fz[loaded]) < 0:
            text = (
                f"plate {k}: vertical force is negative where loaded (median "
                f"{np.median(fz[loaded]):.0f} N); the file gives the force on the plate or "
                "is upside down; flip its sign (mapping sign = -1) before trusting it"
            )
            warn(text, file=path)
            out.append(text)
    return out


def plate_recording(
    path: Path,
    platforms: list[Platform],
    /,
    *,
    fmt: str,
    rate_hz: float,
    meta: dict,
    analogs: np.ndarray,
    analog_labels: list[str] | None = None,
    analog_units: list[str] | None = None,
) -> Recording:
    """The :class:`Recording` of a text export without markers (force-plate CSV, MOT/STO,
    ForceDecks, BioWare): its analog channels and plates at one rate.

    Parameters
    ----------
    path : Path
        The file read (``meta["source"]``).
    platforms : list of Platform
        Its plates; their physical checks (:func:`plate_findings`) become the warnings.
    fmt : str
        ``meta["format"]``.
    rate_hz : float
        Sample rate of the analogs and plates, in Hz.
    meta : dict
        The reader's own ``meta`` keys, after ``format``, ``engine`` (``"cxlab"``) and
        ``source``.
    analogs : numpy.ndarray
        Shape (n_samples, n_channels); (n_samples, 0) for none.
    analog_labels, analog_units : list of str, optional
        One per analog channel (default none).
    """
    return Recording(
        markers=np.empty((0, 0, 3)),
        marker_labels=[],
        residuals=np.empty((0, 0)),
        point_rate_hz=float("nan"),
        analogs=analogs,
        analog_labels=analog_labels or [],
        analog_units=analog_units or [],
        analog_rate_hz=rate_hz,
        platforms=platforms,
        meta={"format": fmt, "engine": "cxlab", "source": str(path), **meta},
        warnings=plate_findings(platforms, path),
    )
