"""The one path of every sheet ingest: read sheet → validate → pseudonymise → quarantine → commit.

Each sheet (programme log, dynamometer, sessions, participants, test–retest) declares its
reader and, per table it fills, a :class:`Landing`: the key that must not repeat with
different values, the value columns compared, and how a landed row becomes a table row.
:func:`ingest_sheet` then does the rest the same way for all of them: every file hashed and
read once (a file-level failure is quarantined, the others go on), numbers breaking the
table's declared ranges rejected, conflicting repeats rejected, subject labels pseudonymised,
every part validated before anything is written, and one store commit per ingest.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

import pandas as pd

from cxlab.ingest._tables import IngestResult, _land, _quarantine, _read_all, _write
from cxlab.io import OpenSheet, Problems, open_sheet
from cxlab.pseudo import key_check
from cxlab.store import Store

__all__ = [
    "DatedSheetOptions",
    "Landing",
    "ReadSheets",
    "SheetOptions",
    "StoreLike",
    "commit_sheets",
    "ingest_sheet",
    "read_sheets",
]

#: ``reader(path, problems)`` → one frame per :class:`Landing` (columns ``file``, ``row``,
#: ``label`` and the landing's keys/values); a single frame for a single landing.
SheetReader = Callable[[str, Problems], "pd.DataFrame | tuple[pd.DataFrame, ...]"]
#: A sheet reader of :mod:`cxlab.io` (its sheet module): ``read(sheet, /, *, problems, **options)``.
OpenSheetReader = Callable[..., "pd.DataFrame | tuple[pd.DataFrame, ...]"]


#: Where an ingest writes: a :class:`~cxlab.store.Store` or its folder.
StoreLike = Store | str | os.PathLike[str]


class SheetOptions(TypedDict, total=False):
    """The keyword options of every sheet ingest (``**options``), as for :func:`ingest_surveys`.

    ``subject_column``: header of the subject label column; ``drop_columns``: more identifier
    headers to drop.
    """

    subject_column: str | None
    drop_columns: Iterable[str]


class DatedSheetOptions(SheetOptions, total=False):
    """:class:`SheetOptions` of a sheet with dates: also ``date_format`` (``strptime``)."""

    date_format: str | None


@dataclass(frozen=True)
class Landing:
    """How one reader frame lands in one store table.

    Attributes
    ----------
    table : str
        Destination table (declared in :mod:`cxlab.schemas`).
    keys : tuple of str
        Columns identifying a row (``label`` = raw subject label, pseudonymised after).
    values : tuple of str
        Columns that must agree when a key repeats; a repeat with different values rejects
        every copy with ``what`` as the rule, identical repeats are kept once.
    what : str
        The rule text of a conflicting repeat.
    build : callable
        Landed rows (with ``subject_id``) → the table's columns; with a ``_file`` column
        when it changes the number of rows (a wide row landing as several long rows).
    check_ranges : bool
        Reject numbers breaking the table's declared ranges before landing.
    """

    table: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    what: str
    build: Callable[[pd.DataFrame], pd.DataFrame]
    check_ranges: bool = True


def _as_store(store: Store | str | os.PathLike[str]) -> Store:
    """``store`` opened, checked to hold ids of this machine's key if it records one (the
    check is recorded when the rows are written: :func:`cxlab.ingest._tables._write`)."""
    st = store if isinstance(store, Store) else Store(store)
    st.require_key_check(key_check(), claim=False)
    return st


class ReadSheets(NamedTuple):
    """What :func:`read_sheets` read: the problems found, the distinct files in order,
    each file's SHA-256, and the reader's frames of the files read (a file that failed
    has a problem and no frame)."""

    problems: Problems
    files: list[str]
    shas: dict[str, str]
    frames: list


def read_sheets(paths: Iterable[str | os.PathLike[str]], reader: SheetReader, /) -> ReadSheets:
    """Hash and read each distinct file once."""
    problems = Problems()
    files, shas, frames = _read_all(paths, lambda p: reader(p, problems), problems)
    return ReadSheets(problems, files, shas, frames)


def commit_sheets(
    store: Store | str | os.PathLike[str],
    tables: dict[str, pd.DataFrame],
    /,
    *,
    problems: Problems,
    files: Sequence[str],
    shas: dict[str, str],
    stage: str,
) -> IngestResult:
    """Quarantine the problems (private wording) and write every table in one commit.

    ``tables`` maps table → rows with a ``_file`` column (the file each row came from).
    """
    tables = {
        k: (v if len(v) else pd.DataFrame({"_file": pd.Series(dtype=object)}))
        for k, v in tables.items()
    }
    quarantine = _quarantine(problems, shas, stage)
    rows = _write(_as_store(store), tables, files, shas, stage, quarantine)
    return IngestResult(rows=rows, rejected=quarantine, files=len(files))


def land_rows(df: pd.DataFrame, problems: Problems, landing: Landing, /) -> pd.DataFrame:
    """Reject bad and conflicting rows of ``df``; the landed rows as table rows + ``_file``."""
    good = _land(
        df,
        problems,
        list(landing.keys),
        list(landing.values),
        field=None,
        table=landing.table if landing.check_ranges else None,
        what=landing.what,
    )
    if not len(good):
        return pd.DataFrame({"_file": pd.Series(dtype=object)})
    out = landing.build(good.reset_index(drop=True))
    if "_file" not in out.columns:
        out.insert(0, "_file", good["file"].to_numpy())
    return out


def ingest_sheet(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: Store | str | os.PathLike[str],
    reader: OpenSheetReader,
    landings: Sequence[Landing],
    stage: str,
    prepare: Callable[[pd.DataFrame, Problems, Store], pd.DataFrame] | None = None,
    subject_column: str | None = None,
    drop_columns: Iterable[str] = (),
    **reader_options: object,
) -> IngestResult:
    """Read, check, pseudonymise, quarantine and commit sheets, one :class:`Landing` per table.

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files.
    store : Store or path, keyword-only
        Destination store.
    reader : callable, keyword-only
        ``reader(sheet, /, *, problems, **reader_options)`` → one frame per landing (a bare
        frame for one landing); ``sheet`` is each file opened by
        :func:`cxlab.io.open_sheet` with ``subject_column`` and ``drop_columns``.
    landings : sequence of Landing, keyword-only
        Where each of the reader's frames lands.
    stage : str, keyword-only
        The quarantine stage and the prefix of the parts' keys.
    prepare : callable, optional
        ``prepare(frame, problems, store)`` before landing (the first landing's frame
        only), e.g. turning a birth date into age at baseline from the store's sessions.
    subject_column, drop_columns, **reader_options
        :class:`SheetOptions` (``reader_options``: those of ``reader``, e.g. ``date_format``).

    Returns
    -------
    IngestResult

    Raises
    ------
    TypeError
        An option ``reader`` does not take (before any file is read).
    """
    inspect.signature(reader).bind(None, problems=None, **reader_options)

    def read(path: str, problems: Problems) -> pd.DataFrame | tuple[pd.DataFrame, ...]:
        sheet: OpenSheet = open_sheet(
            path, subject_column=subject_column, drop_columns=drop_columns
        )
        return reader(sheet, problems=problems, **reader_options)

    st = _as_store(store)
    problems, files, shas, frames = read_sheets(paths, read)
    tables: dict[str, pd.DataFrame] = {}
    for i, landing in enumerate(landings):
        parts = [f[i] if isinstance(f, tuple) else f for f in frames]
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if i == 0 and prepare is not None and len(df):
            df = prepare(df, problems, st)
        tables[landing.table] = land_rows(df, problems, landing) if len(df) else pd.DataFrame()
    return commit_sheets(st, tables, problems=problems, files=files, shas=shas, stage=stage)
