"""Shared helpers of the text readers (TRC, MOT/STO, CSV): header lines, delimiters, numbers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab._check import InputFormatError, message

__all__ = ["cells", "delimiter", "head_lines", "numeric_block", "rate_from_time"]


def head_lines(path: Path, n: int) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            out = []
            for _ in range(n):
                line = fh.readline()
                if not line:
                    break
                out.append(line.rstrip("\r\n"))
            return out
    except OSError as e:
        raise InputFormatError(message(f"cannot be read ({e.strerror})", file=path,
                                       fix="check the path and its permissions")) from None


def delimiter(line: str) -> str:
    if "\t" in line:
        return "\t"
    if "," in line:
        return ","
    return r"\s+"


def cells(line: str, sep: str) -> list[str]:
    parts = re.split(sep, line.strip()) if sep == r"\s+" else line.split(sep)
    return [p.strip() for p in parts]


def numeric_block(path: Path, /, *, skiprows: int, sep: str, names_line: int) -> np.ndarray:
    """Parse the numeric block of a delimited text file as float64, shape (n_rows, n_cols).

    Blank lines and rows whose cells are all empty are dropped. A cell that is not a number
    raises :class:`InputFormatError` naming its line (1-based) and column.
    """
    # a corrupt byte becomes U+FFFD, so the cell is reported as not a number
    kw = dict(sep=sep, header=None, skiprows=skiprows, skip_blank_lines=True, engine="c",
              encoding_errors="replace")
    try:  # EmptyDataError and ParserError subclass ValueError: catch them first
        try:
            df = pd.read_csv(path, dtype=np.float64, **kw)
        except pd.errors.EmptyDataError:
            return np.empty((0, 0))
        except pd.errors.ParserError:
            raise
        except (ValueError, TypeError):
            df = _locate_bad_cell(path, kw, skiprows, names_line)
    except pd.errors.ParserError as e:
        raise InputFormatError(message(f"rows have inconsistent numbers of columns "
                                       f"({' '.join(str(e).split())})",
                                       file=path, fix="re-export the file")) from None
    data = df.to_numpy(dtype=np.float64)
    return data[~np.isnan(data).all(axis=1)]


def _locate_bad_cell(path: Path, kw: dict, skiprows: int, names_line: int) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, **kw)
    num = raw.apply(pd.to_numeric, errors="coerce")
    text = raw.apply(lambda s: s.str.strip())
    bad = num.isna().to_numpy() & ~text.isin(["", "NaN", "nan", "NA", "N/A", "-nan"]).to_numpy()
    if not bad.any():
        return num
    r, c = np.argwhere(bad)[0]
    names = cells(head_lines(path, names_line)[-1], kw["sep"]) if names_line else []
    col = names[c] if c < len(names) and names[c] else f"column {c + 1}"
    raise InputFormatError(message(f"line {skiprows + 1 + int(r)}: is not a number", file=path,
                                   field=col, value=raw.iat[r, c],
                                   fix="fix or blank that cell and re-run"))


def rate_from_time(time: np.ndarray, path: Path, field: str, *, robust: bool = False) -> float:
    """Sample rate from a time column, Hz, rounded to 9 significant digits.

    ``robust=False``: (n − 1) / (t_last − t_first), exact for time stamps rounded to a few
    decimals (600 Hz written as 0.0017, 0.0033, ...). ``robust=True``: 1 / median step, which
    ignores a single odd step (a decimated file whose last frame is the original last frame).
    """
    t = time[np.isfinite(time)]
    if t.size < 2 or not t[-1] > t[0]:
        raise InputFormatError(message("needs at least two increasing time values to give the "
                                       "sample rate", file=path, field=field,
                                       value=t[:2].tolist(), fix="check the time column"))
    rate = 1.0 / np.median(np.diff(t)) if robust else (t.size - 1) / (t[-1] - t[0])
    return float(f"{rate:.9g}")


