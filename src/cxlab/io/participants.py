"""Read a participants sheet: who each subject is (sex, sport, body size, dominant side).

Columns (header in row 1, any case; ``docs/ingest.md``): a subject label column (as for the
other sheets) and any of

==================  ===========================================================
``sex``             ``female``/``f``/``woman``, ``male``/``m``/``man``, ``other``/``x``
``sport``           free text, stored lower case with single spaces
``height_m``        m (or ``height_cm`` in cm)
``mass_kg``         kg (also ``body_mass_kg``, ``weight_kg``)
``dominant_side``   ``left``/``l`` or ``right``/``r`` (also ``dominant_leg``)
``age_years``       completed years (also ``age``)
date of birth       read only to give the age at the subject's first dated session
==================  ===========================================================

Direct identifiers (name, e-mail, phone, address, :data:`cxlab.deid.IDENTIFIER_HEADERS`)
are dropped before any cell is read; the date of birth is never returned as a date to
store, only as ``dob`` for :func:`cxlab.ingest.ingest_participants` to turn into an age.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab._check import InputFormatError, message, warn
from cxlab.io._sheet import (
    OpenSheet,
    Problems,
    find_column,
    number_column,
    parse_dates,
    sheet_rows,
    text_column,
)

__all__ = ["PARTICIPANT_COLUMNS", "read_participants"]

#: The columns :func:`read_participants` returns besides ``file``, ``row``, ``label``.
PARTICIPANT_COLUMNS = ("sex", "sport", "height_m", "mass_kg", "dominant_side", "age_years")

_SEX = {
    "f": "female",
    "female": "female",
    "woman": "female",
    "w": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "other": "other",
    "x": "other",
    "diverse": "other",
    "non-binary": "other",
    "nonbinary": "other",
}
_SIDE = {"l": "left", "left": "left", "r": "right", "right": "right"}


def _coded(
    df: pd.DataFrame, col: str | None, codes: dict[str, str], /, *, file: str, problems: Problems
) -> pd.Series:
    """Map text to its canonical level; an unknown code is a bad cell naming the allowed ones."""
    if col is None:
        return pd.Series(None, index=df.index, dtype=object)
    text = df[col].str.casefold()
    out = text.map(codes)
    bad = (text != "") & out.isna()
    allowed = ", ".join(sorted(set(codes.values())))
    problems.add(file, df.index[bad], col, df.loc[bad, col], f"is not one of {allowed}")
    return out.where(out.notna(), None).astype(object)


def read_participants(
    sheet: OpenSheet, /, *, problems: Problems, date_format: str | None = None
) -> pd.DataFrame:
    """Read one participants sheet (the sheet-reader contract of
    :mod:`cxlab.io._sheet`), recording every bad cell in ``problems``.

    Returns
    -------
    pandas.DataFrame
        :func:`~cxlab.io._sheet.sheet_rows` of :data:`PARTICIPANT_COLUMNS`
        (``height_m`` in m, ``mass_kg`` in kg, ``age_years`` in years; NaN/None when blank
        or absent) and ``dob`` (datetime64, NaT when absent: the caller turns it into
        ``age_years`` and drops it). Rows with problems are included; the caller drops them.

    Raises
    ------
    InputFormatError
        None of the participant columns.
    """
    df, subj, dob_text, dob_col, file = sheet

    def col(*names: str, role: str) -> str | None:
        return find_column(df.columns, names, role=role, file=file, required=False)

    sex_c = col("sex", "gender", role="sex")
    sport_c = col("sport", "main_sport", role="sport")
    h_m = col("height_m", "height", role="height (m)")
    h_cm = col("height_cm", role="height (cm)")
    mass_c = col("mass_kg", "body_mass_kg", "weight_kg", "mass", "weight", role="body mass")
    side_c = col("dominant_side", "dominant_leg", "dominance", role="dominant side")
    age_c = col("age_years", "age", role="age")
    used = {subj, sex_c, sport_c, h_m, h_cm, mass_c, side_c, age_c} - {None}
    if used == {subj} and dob_col is None:
        raise InputFormatError(
            message(
                "has no participant column besides the subject label",
                file=file,
                field="header",
                fix="add one of " + ", ".join(PARTICIPANT_COLUMNS) + " (docs/ingest.md)",
            )
        )
    unread = [c for c in df.columns if c not in used]
    if unread:
        warn(
            f"{len(unread)} column(s) not read: {', '.join(map(str, unread))}",
            file=file,
            fix="rename them to sex, sport, height_m, mass_kg, dominant_side or age_years "
            "(docs/ingest.md) if they hold those",
        )
    label = text_column(df, subj, what="subject label", file=file, problems=problems)
    opts = dict(file=file, problems=problems)
    height = number_column(df, h_m, ge=0.5, le=2.6, **opts)
    if h_cm is not None:
        cm = number_column(df, h_cm, ge=50, le=260, **opts) / 100.0
        height = height.where(height.notna(), cm)
    sport = (
        df[sport_c].str.casefold().str.split().str.join(" ").replace("", None)
        if sport_c
        else pd.Series(None, index=df.index, dtype=object)
    )
    dob, bad_dob = parse_dates(dob_text, date_format=date_format)
    fmt = date_format or "YYYY-MM-DD"
    problems.add(
        file,
        df.index[bad_dob.to_numpy()],
        dob_col,
        None,
        f"date of birth is not in the form {fmt}",
        redact=True,
    )
    late = (dob > pd.Timestamp.today()).fillna(False).to_numpy()
    problems.add(file, df.index[late], dob_col, None, "date of birth is in the future", redact=True)
    return sheet_rows(
        df,
        label,
        file=file,
        sex=_coded(df, sex_c, _SEX, **opts),
        sport=sport.astype(object).where(sport.notna(), None),
        height_m=height,
        mass_kg=number_column(df, mass_c, ge=10, le=400, **opts),
        dominant_side=_coded(df, side_c, _SIDE, **opts),
        age_years=number_column(df, age_c, ge=0, le=130, **opts),
        dob=np.asarray(dob, dtype="datetime64[ns]"),
    )
