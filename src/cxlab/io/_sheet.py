"""Shared pieces of the spreadsheet readers (surveys, participants, sessions, programme logs,
strength, test–retest).

A sheet is read with every cell as text (``""`` for blank), indexed by the row
number a spreadsheet user sees (header = row 1, first data row = 2), so that
every rejected cell can be reported where the user will find it. Checks are
vectorised: each rule is a boolean mask over the rows, and :class:`Problems`
collects all failures before anything is written.

Every sheet reader (participants, sessions, programme, strength, test–retest) is
``read_<sheet>(sheet, /, *, problems[, date_format])``: ``sheet`` is the file as
:func:`open_sheet` opened it (identifier columns dropped, subject-label column found, which
raises :class:`~cxlab._check.InputFormatError` for an unreadable file or no subject
column); every bad cell goes to ``problems`` (:class:`Problems`, spreadsheet row numbers,
header = 1); ``date_format`` is the ``strptime`` format of its dates (default ISO
``YYYY-MM-DD``). It returns :func:`sheet_rows` (``file``, ``row``, ``label`` and its own
columns), rows with problems included: the caller drops them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, InputFormatError, message
from cxlab.deid import DOB_COLUMNS, REDACTED, identifier_columns, normalise_header
from cxlab.io._text import delimiter

__all__ = [
    "SUBJECT_COLUMNS",
    "OpenSheet",
    "Problems",
    "date_column",
    "find_column",
    "open_sheet",
    "parse_dates",
    "parse_numbers",
    "read_sheet",
    "sheet_rows",
    "text_column",
]

#: Accepted subject-label headers (normalised), in order of preference.
SUBJECT_COLUMNS: tuple[str, ...] = (
    "subject",
    "participant",
    "participant_id",
    "subject_id",
    "id",
    "participant_label",
    "subject_label",
)

_FIELDS = ["file", "row", "field", "value", "rule"]


def _delimiter(path: Path) -> str:
    """:func:`cxlab.io._text.delimiter` of the header line."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return delimiter(fh.readline())


def read_sheet(path: str | os.PathLike[str], /) -> pd.DataFrame:
    """Read a CSV or ``.xlsx`` file with every cell as stripped text.

    Parameters
    ----------
    path : path-like
        ``.csv``/``.txt`` (UTF-8 with or without BOM; separated by ``,``, ``;`` or tab,
        whichever the header line holds most of) or ``.xlsx``
        (first sheet; header in row 1).

    Returns
    -------
    pandas.DataFrame
        Original headers (trimmed); cells as ``str`` with ``""`` for blank; the index
        is the spreadsheet row number (header = 1, first data row = 2). Rows that are
        blank in every cell are dropped (their numbers are kept by the others).

    Raises
    ------
    InputFormatError
        Unknown extension, unreadable or empty file, or two headers that are the same
        after :func:`~cxlab.deid.normalise_header`.
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext in (".csv", ".txt"):
            df = pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding="utf-8-sig", sep=_delimiter(path)
            )
        elif ext in (".xlsx", ".xlsm"):
            df = _read_xlsx(path)
        else:
            raise InputFormatError(
                message(
                    "is not a supported sheet format",
                    file=path,
                    value=path.suffix,
                    fix="save it as .csv (UTF-8) or .xlsx",
                )
            )
    except InputFormatError:
        raise
    except FileNotFoundError:
        raise InputFormatError(message("does not exist", file=path, fix="check the path")) from None
    except pd.errors.EmptyDataError:
        raise InputFormatError(
            message("is empty", file=path, fix="export the sheet with its header row")
        ) from None
    except UnicodeDecodeError:
        raise InputFormatError(
            message("is not UTF-8 text", file=path, fix="save it as CSV UTF-8")
        ) from None
    except Exception as e:  # parser errors from csv/openpyxl/zip: one line for the user
        raise InputFormatError(
            message(
                f"cannot be read ({type(e).__name__})",
                file=path,
                fix="open it in a spreadsheet program and re-save it as .csv (UTF-8) or .xlsx",
            )
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    norm = pd.Series([normalise_header(c) for c in df.columns])
    if norm.duplicated().any():
        # positions, not names: in a file without a header row the "names" are data
        pos = np.flatnonzero(norm.duplicated(keep=False).to_numpy())[:2] + 1
        raise InputFormatError(
            message(
                f"has two columns with the same name (columns {pos[0]} and {pos[1]})",
                file=path,
                field="header",
                fix="rename or delete one of them",
            )
        )
    df = df.fillna("").astype(str).apply(lambda s: s.str.strip())
    df.index = pd.RangeIndex(2, 2 + len(df))
    df.index.name = "row"
    return df.loc[(df != "").any(axis=1)]


#: Text put in a formula cell the file holds no computed value for (a sheet written by a
#: program that does not evaluate formulas): number and date parsing reject it by name.
UNCACHED_FORMULA = "formula without a saved value: "


def _read_xlsx(path: Path) -> pd.DataFrame:
    """The first sheet as text, header in row 1 (as ``pd.read_excel(dtype=str)``), except
    that a formula cell with no cached value reads as ``UNCACHED_FORMULA + formula``,
    not as a blank (which silently scored an ODI from 9 of its 10 items)."""
    import openpyxl

    with warnings.catch_warnings():  # a date cell out of range reads as "#VALUE!": rejected
        warnings.simplefilter("ignore", UserWarning)  # as "not a date" with its row
        wb_v = openpyxl.load_workbook(path, read_only=True, data_only=True)
        wb_f = openpyxl.load_workbook(path, read_only=True, data_only=False)
        try:
            vals = list(wb_v.worksheets[0].iter_rows(values_only=True))
            forms = list(wb_f.worksheets[0].iter_rows(values_only=True))
        finally:
            wb_v.close()
            wb_f.close()
    if not vals:
        raise pd.errors.EmptyDataError("no rows")
    width = max(len(r) for r in vals)
    cells = np.full((len(vals), width), None, dtype=object)
    for i, (rv, rf) in enumerate(zip(vals, forms, strict=False)):  # one loop per sheet row
        cells[i, : len(rv)] = rv
        for j, f in enumerate(rf):
            if rv[j] is None and isinstance(f, str) and f.startswith("="):
                cells[i, j] = UNCACHED_FORMULA + f
    head = [("" if h is None else str(h)) for h in cells[0]]
    head = [h if h else f"Unnamed: {k}" for k, h in enumerate(head)]
    body = pd.DataFrame(cells[1:], columns=head)
    return body.map(_cell_text)


def _cell_text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    return str(v)


def find_column(
    columns: Iterable[str],
    candidates: Iterable[str],
    /,
    *,
    role: str,
    file: str | os.PathLike[str],
    option: str | None = None,
    required: bool = True,
) -> str | None:
    """Return the one header of ``columns`` whose normalised form is among ``candidates``.

    Raises
    ------
    InputFormatError
        If none matches (and ``required``) or more than one matches.
    """
    cand = [normalise_header(c) for c in candidates]
    hits = [c for c in columns if normalise_header(c) in cand]
    hint = f" or name it with {option}" if option else ""
    if len(hits) > 1:
        raise InputFormatError(
            message(
                f"has more than one {role} column",
                file=file,
                field="header",
                value=hits,
                fix=f"keep one of them{hint}",
            )
        )
    if not hits:
        if required:  # the headers are not echoed: without a header row they are data
            n = len(list(columns))
            raise InputFormatError(
                message(
                    f"has no {role} column (none of its {n} headers matches)",
                    file=file,
                    field="header",
                    fix=f"add one named {' or '.join(cand)}{hint}",
                )
            )
        return None
    return hits[0]


# A calendar date, optionally followed by a time and a zone (an XLSX date cell reads as
# "2025-02-03 00:00:00"; an export may add "T08:00:00+01:00"): the date as written is kept.
_ISO_DATE = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
    r"\s*(?:Z|[+-]\d{2}:?\d{2}|UTC)?)?"
)


_FIRST_DAY, _LAST_DAY = pd.Timestamp("1900-01-01"), pd.Timestamp("2100-12-31")


def parse_dates(s: pd.Series, /, *, date_format: str | None = None) -> tuple[pd.Series, pd.Series]:
    """Parse date text (ISO ``YYYY-MM-DD`` by default) to ``datetime64`` days.

    A cell is a date only if it names a whole calendar day: ``2025`` and ``2025-02`` are
    not dates, nor is ``-999`` (a missing-value code) or a day outside 1900-2100 (a
    typed year 0999 or 9999); each such cell is *bad* (its row is rejected), never an error that
    loses the file. A time and a time zone after the day (``2025-02-03T08:00:00+01:00``)
    are ignored: the calendar day as written is kept, and one such cell does not affect
    the others.

    Raises
    ------
    ConfigError
        If ``date_format`` is not a valid strptime format (tested on a known date, not on
        the data, so bad cells never raise).

    Returns
    -------
    dates : pandas.Series of datetime64
        NaT for blank or unparseable cells.
    bad : pandas.Series of bool
        True where the cell is not blank but could not be parsed.
    """
    text = s.astype(str)
    if date_format is None:
        day = text.str.fullmatch(_ISO_DATE.pattern)
        text = text.str.extract(_ISO_DATE, expand=False).where(day.fillna(False))
        fmt = "%Y-%m-%d"
    else:
        _check_date_format(date_format)
        fmt = date_format
    text = text.where(s != "")
    try:
        d = pd.to_datetime(text, format=fmt, errors="coerce")
    except (ValueError, OverflowError, TypeError):  # cells that defeat the vectorised parser
        uniq = {v: _one_date(v, fmt) for v in text.dropna().unique()}
        d = pd.to_datetime(text.map(uniq), errors="coerce")
    if getattr(d.dt, "tz", None) is not None:
        d = d.dt.tz_localize(None)
    d = d.dt.normalize()
    d = d.where((d >= _FIRST_DAY) & (d <= _LAST_DAY))  # year 0999 or 9999: a typo, not a visit
    return d, (s != "") & d.isna()


def _one_date(v: str, fmt: str):
    try:
        t = pd.to_datetime(v, format=fmt)
    except (ValueError, OverflowError, TypeError):
        return pd.NaT
    return t.tz_localize(None) if t.tzinfo is not None else t


def _check_date_format(date_format: str) -> None:
    """Refuse a strptime format that cannot read back a date it wrote."""
    probe = pd.Timestamp("2001-02-03")
    try:
        ok = pd.to_datetime(probe.strftime(date_format), format=date_format) == probe
    except (ValueError, TypeError) as e:
        ok, why = False, str(e)
    else:
        why = "it does not give back the day, month and year"
    if not ok:
        raise ConfigError(
            message(
                f"is not a valid strptime date format ({why})",
                field="--date-format (date_format)",
                value=date_format,
                fix="use strptime directives such as %d/%m/%Y or %Y-%m-%d, "
                "or leave it out for YYYY-MM-DD",
            )
        )


def parse_numbers(s: pd.Series, /) -> tuple[pd.Series, pd.Series]:
    """Parse numeric text (``.`` decimal point) to float.

    Returns
    -------
    values : pandas.Series of float
        NaN for blank or unparseable cells.
    bad : pandas.Series of bool
        True where the cell is not blank but is not a finite number.
    """
    v = pd.to_numeric(s.where(s != ""), errors="coerce").astype(float)
    bad = (s != "") & ~np.isfinite(v.to_numpy())
    return v.where(~bad), bad


def _not_a(what: str, text: pd.Series) -> pd.Series:
    """The rule for each bad cell: an uncached XLSX formula is named as such."""
    formula = text.astype(str).str.startswith(UNCACHED_FORMULA)
    return pd.Series(
        np.where(
            formula,
            "is a formula with no saved value (re-save the file in "
            "a spreadsheet program so its values are stored)",
            f"is not {what}",
        ),
        index=text.index,
    )


class Problems:
    """Collects rejected cells of one or more files; every rule adds all its failures at once."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(
        self,
        file: str,
        rows: pd.Index | np.ndarray | list,
        field: str | None,
        values: Iterable[object] | object,
        rule: str,
        *,
        redact: bool = False,
    ) -> None:
        """Record that ``rows`` of ``file`` break ``rule`` in column ``field``.

        ``values`` is one value per row (or one for all); with ``redact`` the value is
        replaced by :data:`~cxlab.deid.REDACTED` so identifiers never leave the reader.
        """
        rows = np.asarray(rows)
        if rows.size == 0:
            return
        if redact:
            vals = [REDACTED] * rows.size
        elif isinstance(values, pd.Series | pd.Index | np.ndarray | list):
            vals = [str(v) for v in values]
        else:
            vals = [str(values)] * rows.size
        self._parts.append(
            pd.DataFrame(
                {
                    "file": str(file),
                    "row": rows.astype("int64"),
                    "field": field,
                    "value": vals,
                    "rule": rule,
                }
            )
        )

    def file_level(self, file: str, error: Exception) -> None:
        """Record that a whole file was rejected (no row number)."""
        self._parts.append(
            pd.DataFrame(
                {
                    "file": [str(file)],
                    "row": [pd.NA],
                    "field": [None],
                    "value": [None],
                    "rule": [str(error)],
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        """All problems: columns ``file, row, field, value, rule``, sorted by file, row, field."""
        if not self._parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in _FIELDS})
        df = pd.concat(self._parts, ignore_index=True)
        df["row"] = df["row"].astype("Int64")
        df = df.drop_duplicates()
        return df.sort_values(
            ["file", "row", "field", "rule"], na_position="first", kind="stable"
        ).reset_index(drop=True)

    def rows(self, file: str, /) -> set[int]:
        """Row numbers of ``file`` with at least one problem."""
        df = self.frame()
        return set(df.loc[(df["file"] == str(file)) & df["row"].notna(), "row"].astype(int))

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)


def quarantine_rows(
    problems: pd.DataFrame,
    /,
    *,
    sha256: dict[str, str],
    stage: str,
    fix: str = "correct the cell and ingest the file again",
) -> pd.DataFrame:
    """Turn :meth:`Problems.frame` rows into ``quarantine`` table rows.

    ``reason`` is the one-line message: ``<file>: row <n>, column <c>: <rule> (got
    '<value>'); <fix>``; values are already redacted where needed.
    """
    p = problems
    name = p["file"].map(lambda f: Path(f).name)
    where = np.where(p["row"].isna(), "", "row " + p["row"].astype(str) + ", ")
    where = where + np.where(p["field"].isna(), "", "column " + p["field"].astype(str) + ": ")
    got = np.where(p["value"].isna(), "", " (got '" + p["value"].astype(str) + "')")
    tail = np.where(p["row"].isna(), "", "; " + fix)
    reason = name + ": " + where + p["rule"].astype(str) + got + tail
    reason = reason.where(p["row"].notna(), p["rule"].astype(str))
    return pd.DataFrame(
        {
            "source_path": p["file"].astype(str),
            "source_sha256": p["file"].map(sha256).astype(object),
            "stage": stage,
            "row": p["row"].astype("Int64"),
            "field": p["field"].astype(object),
            "value": p["value"].astype(object),
            "reason": reason.astype(str),
        }
    )


def check_subject_option(name: str | None, /) -> tuple[str, ...]:
    """Subject header candidates: ``name`` alone when given, else :data:`SUBJECT_COLUMNS`."""
    if name is None:
        return SUBJECT_COLUMNS
    if not str(name).strip():
        raise ConfigError(
            message(
                "is empty",
                field="--subject-column",
                fix="give the header of the subject label column",
            )
        )
    return (str(name),)


class OpenSheet(NamedTuple):
    """A sheet read for ingest, before any cell is checked.

    ``frame`` is the sheet without its identifier columns (names, e-mails, birth dates,
    ``drop_columns``); ``subject`` the header of its subject-label column; ``dob`` the text
    of its birth-date column, read before that column went (``""`` where absent), and
    ``dob_column`` that column's header (``None`` when absent), for the readers that turn
    it into an age and drop it; ``file`` the path as the problems name it.
    """

    frame: pd.DataFrame
    subject: str
    dob: pd.Series
    dob_column: str | None
    file: str


def open_sheet(
    path: str | os.PathLike[str],
    /,
    *,
    subject_column: str | None = None,
    drop_columns: Iterable[str] = (),
) -> OpenSheet:
    """Read a sheet, keep its birth dates aside, drop its identifier columns and find its
    subject-label column: the first steps every sheet reader takes (each then checks the
    labels of the rows it reads with :func:`text_column`).

    Raises
    ------
    InputFormatError
        Unreadable file, or no subject-label column (naming ``--subject-column``).
    ConfigError
        An empty ``subject_column``.
    """
    df = read_sheet(path)
    ident = identifier_columns(df.columns, extra=drop_columns)
    dob_col = next((c for c in ident if normalise_header(c) in DOB_COLUMNS), None)
    dob = df[dob_col] if dob_col else pd.Series("", index=df.index)
    df = df.drop(columns=ident)
    subject = find_column(
        df.columns,
        check_subject_option(subject_column),
        role="subject label",
        file=path,
        option="--subject-column",
    )
    return OpenSheet(df, subject, dob, dob_col, str(path))


def text_column(
    df: pd.DataFrame, col: str, /, *, what: str, file: str, problems: Problems
) -> pd.Series:
    """Column ``col`` of ``df`` as text; every blank cell is a bad cell "``what`` is empty".

    Parameters
    ----------
    df : pandas.DataFrame
        A sheet from :func:`read_sheet` (index = spreadsheet row).
    col : str
        Header of a required text column (session, outcome, muscle group, ...).
    what : str
        What the column holds, as the rule names it.

    Returns
    -------
    pandas.Series of str
        The cells as written (``""`` where blank).
    """
    text = df[col]
    problems.add(file, df.index[text == ""], col, "", f"{what} is empty")
    return text


def sheet_rows(df: pd.DataFrame, label: pd.Series, /, *, file: str, **columns) -> pd.DataFrame:
    """The frame a sheet reader returns: ``file``, ``row``, ``label`` and then ``columns``.

    Parameters
    ----------
    df : pandas.DataFrame
        The sheet (index = spreadsheet row); one returned row per sheet row.
    label : pandas.Series
        The raw subject labels (:func:`text_column`), aligned with ``df``.
    file : str
        The path as the problems name it.
    **columns
        The reader's own columns, in order (Series aligned with ``df``, or arrays).

    Returns
    -------
    pandas.DataFrame
        Index 0..n-1; ``row`` is int64.
    """
    return pd.DataFrame(
        {"file": file, "row": df.index.astype("int64"), "label": label, **columns}
    ).reset_index(drop=True)


def date_column(
    df: pd.DataFrame,
    col: str | None,
    /,
    *,
    file: str,
    problems: Problems,
    date_format: str | None = None,
    rows: pd.Series | None = None,
    what: str = "",
) -> pd.Series:
    """Parse column ``col`` of ``df`` as dates (:func:`parse_dates`) and record every bad cell.

    Parameters
    ----------
    df, col, rows
        As for :func:`number_column` (an absent column or a row outside ``rows`` is NaT).
    date_format : str, optional
        strptime format; ISO ``YYYY-MM-DD`` by default.
    what : str
        Prefix of the rule ("date" gives "date is not a date in the form ...").

    Returns
    -------
    pandas.Series of datetime64
        NaT where blank, bad or outside ``rows``.
    """
    if col is None:
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[us]")
    text = df[col] if rows is None else df[col].where(rows, "")
    date, bad = parse_dates(text, date_format=date_format)
    rule = f"is not a date in the form {date_format or 'YYYY-MM-DD'}"
    problems.add(file, df.index[bad], col, text[bad], f"{what} {rule}" if what else rule)
    return date


def number_column(
    df: pd.DataFrame,
    col: str | None,
    /,
    *,
    file: str,
    problems: Problems,
    ge: float | None = None,
    le: float | None = None,
    integer: bool = False,
    required: bool = False,
    rows: pd.Series | None = None,
) -> pd.Series:
    """Parse column ``col`` of ``df`` as numbers and record every cell breaking a rule.

    Parameters
    ----------
    df : pandas.DataFrame
        A sheet from :func:`read_sheet` (index = spreadsheet row).
    col : str or None
        Header; ``None`` (column absent) gives all-NaN.
    ge, le : float, optional
        Inclusive bounds.
    integer : bool
        Values must be whole numbers.
    required : bool
        Blank cells are a problem.
    rows : pandas.Series of bool, optional
        Check only these rows (others give NaN).

    Returns
    -------
    pandas.Series of float
        Parsed values, NaN where blank or bad.
    """
    sel = pd.Series(True, index=df.index) if rows is None else rows
    if col is None:
        return pd.Series(np.nan, index=df.index)
    text = df[col].where(sel, "")
    v, bad = parse_numbers(text)
    for rule, rows in text[bad].groupby(_not_a("a number", text[bad]), sort=True):
        problems.add(file, rows.index, col, rows, rule)
    if required:
        blank = sel & (text == "")
        problems.add(file, df.index[blank], col, "", "is empty")
    x = v.to_numpy()
    checks = []
    if ge is not None:
        checks.append((x < ge, f"is below {ge:g}"))
    if le is not None:
        checks.append((x > le, f"is above {le:g}"))
    if integer:
        checks.append((~np.isnan(x) & (x != np.round(x)), "is not a whole number"))
    for mask, rule in checks:
        m = np.asarray(mask, bool) & ~np.isnan(x)
        problems.add(file, df.index[m], col, text[m], rule)
        v = v.where(~m)
    return v
