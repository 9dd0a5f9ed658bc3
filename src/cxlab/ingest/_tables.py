"""Shared steps of the sheet ingests: bad-row bookkeeping, conflict checks, one commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, CxlabError, InputFormatError, message, warn
from cxlab._hashing import sha256_of
from cxlab.deid import pseudonymise_labels, redact_text, redact_value, stored_file_name
from cxlab.io import Problems
from cxlab.io import sheet_quarantine_rows as quarantine_rows
from cxlab.pseudo import key_check, pseudonymise
from cxlab.schemas import range_failures, validate
from cxlab.store import Store

__all__ = ["IngestResult"]


@dataclass
class IngestResult:
    """What an ingest wrote and what it rejected.

    Attributes
    ----------
    rows : dict of str to int
        Rows written per table.
    rejected : pandas.DataFrame
        The ``quarantine`` rows written (identifier values redacted).
    files : int
        Number of files read.
    """

    rows: dict[str, int] = field(default_factory=dict)
    rejected: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: int = 0

    @property
    def n_rejected(self) -> int:
        """Number of rejected cells/rows/files."""
        return len(self.rejected)


def _part_key(stage: str, sha: str) -> str:
    return f"{stage}-{sha[:16]}"


def _quarantine(problems: Problems, shas: dict[str, str], stage: str) -> pd.DataFrame:
    """The quarantine rows, private: each file shown as :func:`~cxlab.deid.stored_file_name`
    (the same whether its path was typed relative or absolute), identifier-like values
    redacted (:func:`~cxlab.deid.redact_value`), e-mails and phone numbers in messages too."""
    p = problems.frame().copy()
    if not len(p):
        return quarantine_rows(p, sha256=shas, stage=stage)
    shown = {f: stored_file_name(f, token=pseudonymise) for f in p["file"].unique()}
    raw_names = {}
    for f, name in shown.items():
        for raw in (str(Path(f).resolve()), str(f), Path(f).name):
            raw_names.setdefault(raw, name)
    order = sorted(raw_names, key=len, reverse=True)

    def mask(text: object) -> object:
        if text is None or (isinstance(text, float) and np.isnan(text)):
            return text
        out = str(text)
        for raw in order:
            out = out.replace(raw, raw_names[raw])
        return redact_text(out)

    for col, fn in (("value", lambda v: mask(redact_value(v))), ("rule", mask), ("field", mask)):
        p[col] = pd.Series(
            [None if pd.isna(v) else fn(v) for v in p[col]], index=p.index, dtype=object
        )
    sha = p["file"].map(shas)
    p["file"] = p["file"].map(shown)
    q = quarantine_rows(p, sha256={}, stage=stage)
    q["source_sha256"] = sha.astype(object).to_numpy()
    return q


def _bad_mask(df: pd.DataFrame, problems: Problems) -> np.ndarray:
    """True for rows of ``df`` (columns ``file``, ``row``) that have a recorded problem."""
    p = problems.frame()
    p = p.loc[p["row"].notna(), ["file", "row"]].drop_duplicates()
    p = p.assign(row=p["row"].astype("int64"), _bad=True)
    key = df[["file", "row"]].astype({"row": "int64"})
    return key.merge(p, how="left", on=["file", "row"])["_bad"].fillna(False).to_numpy(bool)


def _conflicts(
    df: pd.DataFrame,
    keys: list[str],
    value: str,
    problems: Problems,
    *,
    what: str,
    ok: np.ndarray,
    field: str | None = None,
    field_column: str | None = None,
    redact: bool = False,
    shown: str | None = None,
) -> None:
    """Record rows whose ``keys`` repeat with different non-missing ``value`` (among ``ok``).

    The reported column is ``field`` or, per row, the header in ``field_column``; the
    reported value comes from column ``shown`` (default ``value``).
    """
    d = df.loc[ok & df[value].notna().to_numpy()]
    if not len(d):
        return
    n = d[value].astype(str).groupby([d[k] for k in keys], dropna=False).transform("nunique")
    clash = d.loc[(n > 1).to_numpy()]
    by = ["file", field_column] if field_column else ["file"]
    for k, part in clash.groupby(by, sort=True):
        col = str(k[1]) if field_column else field
        problems.add(k[0], part["row"], col, part[shown or value].astype(str), what, redact=redact)


def _write(
    store: Store,
    frames: dict[str, pd.DataFrame],
    files: Sequence[str],
    shas: dict[str, str],
    stage: str,
    quarantine: pd.DataFrame,
) -> dict[str, int]:
    """Validate every part, then write (or delete) each file's parts and its quarantine."""
    parts: list[tuple[str, str, pd.DataFrame | None]] = []
    for f in files:
        key = _part_key(stage, shas[f])
        for name, df in frames.items():
            mine = df.loc[df["_file"] == f].drop(columns="_file")
            if len(mine):
                validate(mine, name)  # raises before anything is written
            parts.append((name, key, mine if len(mine) else None))
        q = quarantine.loc[quarantine["source_sha256"] == shas[f]]
        if len(q):
            validate(q, "quarantine")
        parts.append(("quarantine", key, q if len(q) else None))
    own = {_part_key(stage, shas[f]) for f in files if shas.get(f)}
    for name, df in frames.items():
        _warn_overlap(store, name, df, own)
    rows: dict[str, int] = {name: 0 for name in frames}
    if any(df is not None and len(df) and name != "quarantine" for name, _, df in parts):
        store.require_key_check(key_check())  # rows land: their ids are of the store's key
    with store.transaction() as tx:  # every file's parts and quarantine: one commit
        for name, key, df in parts:
            if df is None:
                tx.delete(name, key=key)
            else:
                tx.write(name, df, key=key)
                if name != "quarantine":
                    rows[name] += len(df)
    return rows


_NATURAL_KEYS = {
    "scores": ["subject_id", "session", "instrument"],
    "interventions": ["subject_id", "arm"],
    "exercise_log": ["subject_id", "date", "exercise"],
    "strength": ["subject_id", "session", "muscle_group", "side"],
    "participants": ["subject_id"],
    "retest": ["subject_id", "outcome"],
}


def _warn_overlap(store: Store, name: str, df: pd.DataFrame, own: set[str]) -> None:
    """Warn when rows being written already exist in parts from other files.

    Parts are keyed by content, so a corrected version of a file lands beside the old one;
    this tells the user instead of silently doubling rows.
    """
    keys = _NATURAL_KEYS.get(name)
    others = [p for k, p in sorted(store.parts(name).items()) if k not in own]
    if keys is None or not others or not len(df):
        return
    old = store.read_parts(others, table=name, columns=keys)
    new = df[keys].astype({k: object for k in keys})
    n = len(new.merge(old.astype({k: object for k in keys}).drop_duplicates(), on=keys))
    if n:
        warn(
            f"{n} row(s) repeat rows already stored from another file (an earlier version "
            "of this file?)",
            field=name,
            fix="delete the old file's parts (docs/surveys.md) or ingest into a fresh store",
        )


def _read_all(paths, reader, problems) -> tuple[list[str], dict[str, str], list]:
    """Hash every file first (a missing one stops the command before anything is read), then
    read each distinct file once; a file-level failure is recorded and the others go on."""
    files, shas, out = [], {}, []
    seen: dict[str, str] = {}
    for p in paths:
        f = str(p)
        try:
            sha = sha256_of(p)
        except OSError as e:
            raise InputFormatError(
                message(f"cannot be read ({e.strerror})", file=p, fix="check the path")
            ) from None
        if sha in seen:
            warn(
                "has the same content as another file of this ingest and is skipped",
                file=p,
                value=Path(seen[sha]).name,
            )
            continue
        seen[sha] = f
        files.append(f)
        shas[f] = sha
    for f in files:
        try:
            out.append(reader(f))
        except ConfigError:
            raise  # a bad option (e.g. --date-format) is wrong for every file: stop, exit 1
        except CxlabError as e:
            problems.file_level(f, e)
    return files, shas, out


def _reject_out_of_range(df: pd.DataFrame, problems: Problems, table: str) -> None:
    """Record rows whose numbers break ``table``'s declared rules (finite, plausible range,
    fits the integer type): rejected with the rule, never cast or stored."""
    known = _bad_mask(df, problems)  # a row the reader rejected already is not reported twice
    for col, mask, rule in range_failures(df, table):
        bad = df.loc[mask & ~known]
        for f, part in bad.groupby("file", sort=True):
            problems.add(f, part["row"], col, part[col].map(lambda v: f"{v:g}"), rule)


def _land(
    df: pd.DataFrame,
    problems: Problems,
    keys: list[str],
    values: list[str],
    *,
    what: str,
    field: str | None,
    table: str | None = None,
) -> pd.DataFrame:
    """Reject conflicting repeats of ``keys``; drop rows with problems; keep one of equals.

    With ``table``, rows whose numbers break that table's declared rules are rejected first.
    """
    if not len(df):
        return df
    if table is not None:
        _reject_out_of_range(df, problems, table)
    ok = ~_bad_mask(df, problems)
    sig = df[values[0]].astype(object).map(str)  # astype(str) keeps NaN: no conflict seen
    for c in values[1:]:
        sig = sig + "|" + df[c].astype(object).map(str)
    _conflicts(df.assign(_sig=sig), keys, "_sig", problems, ok=ok, field=field, what=what)
    good = df.loc[~_bad_mask(df, problems)].drop_duplicates(keys)
    return good.assign(subject_id=pseudonymise_labels(good["label"]) if len(good) else "")


def _date(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.date.astype(object).where(s.notna(), None)
