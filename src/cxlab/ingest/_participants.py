"""Ingest participants sheets into the ``participants`` table (one row per subject)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Unpack

import numpy as np
import pandas as pd

from cxlab._check import warn
from cxlab.deid import age_years, pseudonymise_labels
from cxlab.ingest._sheet_ingest import DatedSheetOptions as Dated
from cxlab.ingest._sheet_ingest import Landing, StoreLike, ingest_sheet
from cxlab.ingest._tables import IngestResult
from cxlab.io import Problems
from cxlab.io.participants import read_participants
from cxlab.store import Store

__all__ = ["ingest_participants"]


def _age_at_baseline(df: pd.DataFrame, problems: Problems, store: Store) -> pd.DataFrame:
    """Turn each birth date into the age at the subject's first dated session, then drop it.

    The first dated session comes from the store's ``sessions`` table (recordings, a sessions
    sheet). Without one the birth date is dropped with a warning: the age is then only what
    the sheet's age column says.
    """
    has = df["dob"].notna()
    if not has.any():
        return df.drop(columns="dob")
    s = store.table("sessions", columns=["subject_id", "date"]).dropna(subset=["date"])
    first = pd.to_datetime(s["date"]).groupby(s["subject_id"]).min()
    ids = pseudonymise_labels(df["label"])
    when = pd.Series(pd.to_datetime(first.reindex(ids).to_numpy()), index=df.index)
    late = has & when.notna() & (df["dob"] > when)
    for f, part in df.loc[late].groupby("file", sort=True):
        problems.add(
            f, part["row"], "date of birth", None, "is after the first session", redact=True
        )
    age = age_years(df["dob"], when).astype(float).where(~late)
    no_date = has & when.isna()
    if no_date.any():
        warn(
            f"{int(no_date.sum())} birth date(s) dropped without an age: the store has no "
            "dated session for those subjects",
            field="date of birth",
            fix="ingest the recordings or a sessions sheet with dates first, then this sheet again",
        )
    out = df.drop(columns="dob")
    out["age_years"] = np.where(age.notna(), age, out["age_years"])
    return out


_PARTICIPANTS = Landing(
    "participants",
    ("label",),
    ("sex", "sport", "height_m", "mass_kg", "dominant_side", "age_years"),
    "subject given twice with different characteristics",
    lambda d: pd.DataFrame(
        {
            "subject_id": d["subject_id"],
            "sex": d["sex"].astype(object),
            "sport": d["sport"].astype(object),
            "height_m": d["height_m"].astype(float),
            "mass_kg": d["mass_kg"].astype(float),
            "dominant_side": d["dominant_side"].astype(object),
            "age_years": d["age_years"].astype(float),
        }
    ),
)


def ingest_participants(
    paths: Iterable[str | os.PathLike[str]], /, *, store: StoreLike, **options: Unpack[Dated]
) -> IngestResult:
    """Ingest participants sheets (:func:`cxlab.io.participants.read_participants`).

    Parameters
    ----------
    paths : iterable of path-like
        CSV/XLSX files, one row per subject.
    store : Store or path, keyword-only
        Destination store.
    **options : DatedSheetOptions, keyword-only
        As for :func:`cxlab.ingest.ingest_surveys`.

    Returns
    -------
    IngestResult
        Rows written to ``participants``; quarantine rows (stage ``participants``).

    Notes
    -----
    Names, e-mails, phone numbers and addresses are dropped unread. A date of birth becomes
    ``age_years`` in completed years at the subject's first dated session in the store
    (:func:`cxlab.deid.age_years`) and is never stored; without a dated session it is dropped
    with a warning. A subject given twice with different values rejects every copy.
    """
    return ingest_sheet(
        paths,
        store=store,
        reader=read_participants,
        landings=[_PARTICIPANTS],
        stage="participants",
        prepare=_age_at_baseline,
        **options,
    )
