"""Ingest questionnaires into the ``surveys`` and ``scores`` tables."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from cxlab._check import check_option
from cxlab.deid import age_years, pseudonymise_labels
from cxlab.ingest._sheet_ingest import _as_store, commit_sheets, read_sheets
from cxlab.ingest._tables import IngestResult, _bad_mask, _conflicts
from cxlab.instruments import Instrument, builtin_instruments, instrument_scores, read_spec
from cxlab.io import Problems
from cxlab.store import Store

__all__ = ["ingest_surveys"]


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

    extra_inst, extra_drop = read_spec(spec)
    instruments = {**builtin_instruments(), **extra_inst}
    if instrument is not None:
        check_option("instrument", instrument, sorted(instruments))
    drop = [*drop_columns, *extra_drop]
    store = _as_store(store)  # another key than the store's: refused before any reading
    problems, files, shas, frames = read_sheets(
        paths,
        lambda p, problems: read_survey(
            p,
            instruments=instruments,
            problems=problems,
            subject_column=subject_column,
            date_format=date_format,
            drop_columns=drop,
            only=instrument,
        ),
    )
    a = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ANSWER_COLUMNS)
    ok = ~_bad_mask(a, problems) if len(a) else np.zeros(0, bool)
    _conflicts(
        a,
        ["label", "session", "instrument", "item"],
        "response",
        problems,
        ok=ok,
        field_column="column",
        shown="text",
        what="item answered twice with different values",
    )
    _conflicts(
        a,
        ["label", "session"],
        "date",
        problems,
        ok=ok,
        field="date",
        what="session has different dates in different rows",
    )
    _conflicts(
        a,
        ["label"],
        "dob",
        problems,
        ok=ok,
        field="date of birth",
        redact=True,
        what="date of birth differs between rows of this subject",
    )
    if len(a):
        ok = ~_bad_mask(a, problems)
        _withhold(a, ok, problems)
        ok = ~_bad_mask(a, problems)
    good = a.loc[ok].drop_duplicates(["label", "session", "instrument", "item"])
    good = good.assign(subject_id=pseudonymise_labels(good["label"]) if len(good) else "")
    answers = pd.DataFrame(
        {
            "_file": good["file"],
            "subject_id": good["subject_id"],
            "session": good["session"],
            "date": pd.to_datetime(good["date"]).dt.date,
            "instrument": good["instrument"],
            "item": good["item"],
            "response": good["response"].astype(float),
        }
    )
    scores = _scores(good, instruments)
    return commit_sheets(
        store,
        {"surveys": answers, "scores": scores},
        problems=problems,
        files=files,
        shas=shas,
        stage="survey",
    )


def _withhold(a: pd.DataFrame, ok: np.ndarray, problems: Problems) -> None:
    """Withhold the other answers of any subject × session × instrument that lost an answer."""
    keys = ["label", "session", "instrument"]
    hit = a.loc[~ok, keys].drop_duplicates().assign(_hit=True)
    m = a[keys].merge(hit, how="left", on=keys)["_hit"].fillna(False).to_numpy(bool) & ok
    w = a.loc[m]
    for f, part in w.groupby("file", sort=True):
        for inst, sub in part.groupby("instrument", sort=True):
            rows = sub["row"].drop_duplicates()
            problems.add(
                f,
                rows,
                str(inst),
                "",
                "withheld: another answer to this instrument for the same subject "
                "and session was rejected",
            )


def _scores(good: pd.DataFrame, instruments: dict[str, Instrument]) -> pd.DataFrame:
    cols = [
        "_file",
        "subject_id",
        "session",
        "date",
        "instrument",
        "score",
        "unit",
        "n_items_answered",
        "age_years",
    ]
    if not len(good):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    s = instrument_scores(good, instruments, by=("subject_id", "session"))
    keys = ["subject_id", "session", "instrument"]
    meta = (
        good.sort_values(["file", "row"], kind="stable")
        .groupby(keys, sort=False)[["file", "date", "dob"]]
        .first()
        .reset_index()
    )
    s = s.merge(meta, on=keys, how="left")
    s["age_years"] = age_years(s["dob"], s["date"])
    s["_file"] = s["file"]
    s["date"] = s["date"].dt.date
    return s[cols]
