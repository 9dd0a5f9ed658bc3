"""Ingest questionnaires, programme logs and dynamometer sheets into the store.

Each function reads its files, de-identifies them (:mod:`cxlab.deid`),
checks every cell, and then writes, per source file, one part keyed by the
file's sha256 (``survey-<sha16>``, ...) so that re-ingesting a file replaces
exactly its rows. Rows with a problem do not land: they are returned and
written to the ``quarantine`` table; the good rows land. All frames are
validated against :mod:`cxlab.schemas` before the first write, so a schema
failure leaves the store untouched.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, CxlabError, check_option, message
from cxlab.deid import age_years, pseudonymise_labels
from cxlab.instruments import Instrument, builtin_instruments, instrument_scores, read_instruments
from cxlab.io._sheet import Problems, quarantine_rows, sha256_of
from cxlab.schemas import validate
from cxlab.store import Store

__all__ = ["IngestResult", "ingest_interventions", "ingest_strength", "ingest_surveys",
           "read_spec"]


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


def read_spec(path: str | os.PathLike[str] | None, /) -> tuple[dict[str, Instrument], list[str]]:
    """Instruments and extra identifier headers from a ``--spec`` TOML file.

    The file may hold ``[[instrument]]`` tables (see :mod:`cxlab.instruments`) and a
    top-level ``drop_columns = ["..."]`` list of more identifier headers to drop.
    """
    if path is None:
        return {}, []
    inst = read_instruments(path)
    doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    drop = doc.get("drop_columns", [])
    if not isinstance(drop, list) or not all(isinstance(d, str) for d in drop):
        raise ConfigError(message("must be a list of header names", file=path,
                                  field="drop_columns", value=drop))
    return inst, drop


def _part_key(stage: str, sha: str) -> str:
    return f"{stage}-{sha[:16]}"


def _quarantine(problems: Problems, shas: dict[str, str], stage: str) -> pd.DataFrame:
    return quarantine_rows(problems.frame(), sha256=shas, stage=stage)


def _bad_mask(df: pd.DataFrame, problems: Problems) -> np.ndarray:
    """True for rows of ``df`` (columns ``file``, ``row``) that have a recorded problem."""
    p = problems.frame()
    p = p.loc[p["row"].notna(), ["file", "row"]].drop_duplicates()
    p = p.assign(row=p["row"].astype("int64"), _bad=True)
    key = df[["file", "row"]].astype({"row": "int64"})
    return key.merge(p, how="left", on=["file", "row"])["_bad"].fillna(False).to_numpy(bool)


def _conflicts(df: pd.DataFrame, keys: list[str], value: str, problems: Problems, *,
               what: str, ok: np.ndarray, field: str | None = None,
               field_column: str | None = None, redact: bool = False) -> None:
    """Record rows whose ``keys`` repeat with different non-missing ``value`` (among ``ok``).

    The reported column is ``field`` or, per row, the header in ``field_column``.
    """
    d = df.loc[ok & df[value].notna().to_numpy()]
    if not len(d):
        return
    n = d[value].astype(str).groupby([d[k] for k in keys], dropna=False).transform("nunique")
    clash = d.loc[(n > 1).to_numpy()]
    by = ["file", field_column] if field_column else ["file"]
    for k, part in clash.groupby(by, sort=True):
        col = str(k[1]) if field_column else field
        problems.add(k[0], part["row"], col, part[value].astype(str), what, redact=redact)


def _write(store: Store, frames: dict[str, pd.DataFrame], files: Sequence[str],
           shas: dict[str, str], stage: str, quarantine: pd.DataFrame) -> dict[str, int]:
    """Validate every part, then write (or delete) each file's parts and its quarantine."""
    parts: list[tuple[str, str, pd.DataFrame | None]] = []
    for f in files:
        key = _part_key(stage, shas[f])
        for name, df in frames.items():
            mine = df.loc[df["_file"] == f].drop(columns="_file")
            if len(mine):
                validate(mine, name)  # raises before anything is written
            parts.append((name, key, mine if len(mine) else None))
        q = quarantine.loc[quarantine["source_path"] == f]
        if len(q):
            validate(q, "quarantine")
        parts.append(("quarantine", key, q if len(q) else None))
    rows: dict[str, int] = {name: 0 for name in frames}
    for name, key, df in parts:
        if df is None:
            store.delete(name, key=key)
        else:
            store.write(name, df, key=key)
            if name != "quarantine":
                rows[name] += len(df)
    return rows


def _read_all(paths, reader, problems) -> tuple[list[str], dict[str, str], list]:
    files, shas, out = [], {}, []
    for p in paths:
        f = str(p)
        files.append(f)
        try:
            shas[f] = sha256_of(p)
        except OSError:
            shas[f] = None
        try:
            out.append(reader(p))
        except CxlabError as e:
            problems.file_level(f, e)
    return files, shas, out


# -- surveys ------------------------------------------------------------------------
def ingest_surveys(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: Store | str | os.PathLike[str],
    instrument: str | None = None,
    spec: str | os.PathLike[str] | None = None,
    subject_column: str | None = None,
    date_format: str | None = None,
    drop_columns: Iterable[str] = (),
) -> IngestResult:
    """Ingest survey files into ``surveys`` (answers) and ``scores`` (one per instrument).

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files, wide or long layout (``docs/surveys.md``).
    store : Store or path, keyword-only
        Destination store.
    instrument : str, optional
        Only read this instrument's items (wide) or answers (long).
    spec : path, optional
        TOML with more ``[[instrument]]`` tables and/or ``drop_columns``.
    subject_column : str, optional
        Header of the subject label column.
    date_format : str, optional
        ``strptime`` format of dates (default ISO ``YYYY-MM-DD``).
    drop_columns : iterable of str
        More identifier headers to drop.

    Returns
    -------
    IngestResult
        Rows written to ``surveys`` and ``scores`` and the quarantine rows.

    Notes
    -----
    A row with any bad cell is rejected as a whole (every bad cell is reported).
    Duplicate answers (same subject, session and item) with different values reject
    every copy; identical copies are kept once. Answers of a subject × session ×
    instrument that lost any answer to rejection are withheld too, so no score is
    computed from a partly rejected questionnaire. ``age_years`` is the age in
    completed years at the session date (:func:`cxlab.deid.age_years`).
    """
    from cxlab.io.surveys import ANSWER_COLUMNS, read_survey

    store = store if isinstance(store, Store) else Store(store)
    extra_inst, extra_drop = read_spec(spec)
    instruments = {**builtin_instruments(), **extra_inst}
    if instrument is not None:
        check_option("instrument", instrument, sorted(instruments))
        instruments = {instrument: instruments[instrument]}
    drop = [*drop_columns, *extra_drop]
    problems = Problems()
    files, shas, frames = _read_all(
        paths, lambda p: read_survey(p, instruments=instruments, problems=problems,
                                     subject_column=subject_column, date_format=date_format,
                                     drop_columns=drop), problems)
    a = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ANSWER_COLUMNS)
    ok = ~_bad_mask(a, problems) if len(a) else np.zeros(0, bool)
    _conflicts(a, ["label", "session", "instrument", "item"], "response", problems, ok=ok,
               field_column="column", what="item answered twice with different values")
    _conflicts(a, ["label", "session"], "date", problems, ok=ok, field="date",
               what="session has different dates in different rows")
    _conflicts(a, ["label"], "dob", problems, ok=ok, field="date of birth", redact=True,
               what="date of birth differs between rows of this subject")
    if len(a):
        ok = ~_bad_mask(a, problems)
        _withhold(a, ok, problems)
        ok = ~_bad_mask(a, problems)
    good = a.loc[ok].drop_duplicates(["label", "session", "instrument", "item"])
    good = good.assign(subject_id=pseudonymise_labels(good["label"]) if len(good) else "")
    answers = pd.DataFrame({
        "_file": good["file"], "subject_id": good["subject_id"], "session": good["session"],
        "date": good["date"].dt.date, "instrument": good["instrument"], "item": good["item"],
        "response": good["response"].astype(float)})
    scores = _scores(good, instruments)
    quarantine = _quarantine(problems, shas, "survey")
    rows = _write(store, {"surveys": answers, "scores": scores}, files, shas, "survey",
                  quarantine)
    return IngestResult(rows=rows, rejected=quarantine, files=len(files))


def _withhold(a: pd.DataFrame, ok: np.ndarray, problems: Problems) -> None:
    """Withhold the other answers of any subject × session × instrument that lost an answer."""
    keys = ["label", "session", "instrument"]
    hit = a.loc[~ok, keys].drop_duplicates().assign(_hit=True)
    m = a[keys].merge(hit, how="left", on=keys)["_hit"].fillna(False).to_numpy(bool) & ok
    w = a.loc[m]
    for f, part in w.groupby("file", sort=True):
        for inst, sub in part.groupby("instrument", sort=True):
            rows = sub["row"].drop_duplicates()
            problems.add(f, rows, str(inst), "",
                         "withheld: another answer to this instrument for the same subject "
                         "and session was rejected")


def _scores(good: pd.DataFrame, instruments: dict[str, Instrument]) -> pd.DataFrame:
    cols = ["_file", "subject_id", "session", "date", "instrument", "score", "unit",
            "n_items_answered", "age_years"]
    if not len(good):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    s = instrument_scores(good, instruments, by=("subject_id", "session"))
    keys = ["subject_id", "session", "instrument"]
    meta = good.sort_values(["file", "row"], kind="stable").groupby(keys, sort=False)[
        ["file", "date", "dob"]].first().reset_index()
    s = s.merge(meta, on=keys, how="left")
    s["age_years"] = age_years(s["dob"], s["date"])
    s["_file"] = s["file"]
    s["date"] = s["date"].dt.date
    return s[cols]


def _land(df: pd.DataFrame, problems: Problems, keys: list[str], values: list[str],
          *, what: str, field: str | None) -> pd.DataFrame:
    """Reject conflicting repeats of ``keys``; drop rows with problems; keep one of equals."""
    if not len(df):
        return df
    ok = ~_bad_mask(df, problems)
    sig = df[values[0]].astype(object).astype(str)
    for c in values[1:]:
        sig = sig + "|" + df[c].astype(object).astype(str)
    _conflicts(df.assign(_sig=sig), keys, "_sig", problems, ok=ok, field=field, what=what)
    good = df.loc[~_bad_mask(df, problems)].drop_duplicates(keys)
    return good.assign(subject_id=pseudonymise_labels(good["label"]) if len(good) else "")


def _date(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.date.astype(object).where(s.notna(), None)


def ingest_interventions(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: Store | str | os.PathLike[str],
    subject_column: str | None = None,
    date_format: str | None = None,
    drop_columns: Iterable[str] = (),
) -> IngestResult:
    """Ingest programme logs into ``interventions`` and ``exercise_log``.

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX programme logs (``docs/surveys.md``); exercise rows may be in the same
        file or in separate files.
    store : Store or path, keyword-only
        Destination store.
    subject_column, date_format, drop_columns
        As for :func:`ingest_surveys`.

    Returns
    -------
    IngestResult
        Rows written to ``interventions`` and ``exercise_log``; quarantine rows.

    Notes
    -----
    ``adherence = sessions_attended / sessions_prescribed`` (NaN when prescribed is 0
    or blank). A subject × arm given twice with different values rejects both rows;
    likewise a subject × date × exercise.
    """
    from cxlab.io.programme import read_programme

    store = store if isinstance(store, Store) else Store(store)
    problems = Problems()
    files, shas, frames = _read_all(
        paths, lambda p: read_programme(p, problems=problems, subject_column=subject_column,
                                        date_format=date_format, drop_columns=drop_columns),
        problems)
    prog = pd.concat([f[0] for f in frames], ignore_index=True) if frames else pd.DataFrame()
    ex = pd.concat([f[1] for f in frames], ignore_index=True) if frames else pd.DataFrame()
    pv = ["start_date", "end_date", "sessions_prescribed", "sessions_attended"]
    prog = _land(prog, problems, ["label", "arm"], pv, field=None,
                 what="subject and arm given twice with different dates or sessions")
    ev = ["sets", "reps", "load_kg", "rpe"]
    ex = _land(ex, problems, ["label", "date", "exercise"], ev, field=None,
               what="subject, date and exercise given twice with different values")
    frames_out = {"interventions": pd.DataFrame(), "exercise_log": pd.DataFrame()}
    if len(prog):
        frames_out["interventions"] = pd.DataFrame({
            "_file": prog["file"], "subject_id": prog["subject_id"], "arm": prog["arm"],
            "start_date": _date(prog["start_date"]), "end_date": _date(prog["end_date"]),
            "sessions_prescribed": prog["sessions_prescribed"].astype("Int32"),
            "sessions_attended": prog["sessions_attended"].astype("Int32"),
            "adherence": prog["adherence"].astype(float)})
    if len(ex):
        frames_out["exercise_log"] = pd.DataFrame({
            "_file": ex["file"], "subject_id": ex["subject_id"], "date": _date(ex["date"]),
            "exercise": ex["exercise"], "sets": ex["sets"].astype("Int32"),
            "reps": ex["reps"].astype("Int32"), "load_kg": ex["load_kg"].astype(float),
            "rpe": ex["rpe"].astype(float)})
    for k, v in frames_out.items():
        if v.empty:
            frames_out[k] = pd.DataFrame({"_file": pd.Series(dtype=object)})
    quarantine = _quarantine(problems, shas, "interventions")
    rows = _write(store, frames_out, files, shas, "interventions", quarantine)
    return IngestResult(rows=rows, rejected=quarantine, files=len(files))


def ingest_strength(
    paths: Iterable[str | os.PathLike[str]],
    /,
    *,
    store: Store | str | os.PathLike[str],
    subject_column: str | None = None,
    drop_columns: Iterable[str] = (),
) -> IngestResult:
    """Ingest dynamometer sheets into ``strength`` (peak torque in N·m).

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files (``docs/surveys.md``).
    store : Store or path, keyword-only
        Destination store.
    subject_column, drop_columns
        As for :func:`ingest_surveys`.

    Returns
    -------
    IngestResult
        Rows written to ``strength``; quarantine rows.

    Notes
    -----
    One peak torque per subject × session × muscle group × side: a repeat with a
    different torque rejects every copy (export the session's peak, not each trial).
    """
    from cxlab.io.strength import read_strength

    store = store if isinstance(store, Store) else Store(store)
    problems = Problems()
    files, shas, frames = _read_all(
        paths, lambda p: read_strength(p, problems=problems, subject_column=subject_column,
                                       drop_columns=drop_columns), problems)
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    df = _land(df, problems, ["label", "session", "muscle_group", "side"], ["peak_torque_nm"],
               field=None, what="subject, session, muscle group and side given twice with "
                                "different torques")
    out = pd.DataFrame({"_file": pd.Series(dtype=object)})
    if len(df):
        out = pd.DataFrame({
            "_file": df["file"], "subject_id": df["subject_id"], "session": df["session"],
            "muscle_group": df["muscle_group"], "side": df["side"],
            "peak_torque_nm": df["peak_torque_nm"].astype(float)})
    quarantine = _quarantine(problems, shas, "strength")
    rows = _write(store, {"strength": out}, files, shas, "strength", quarantine)
    return IngestResult(rows=rows, rejected=quarantine, files=len(files))
