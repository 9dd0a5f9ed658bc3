"""De-identification: which columns are direct identifiers, dropping them, and age from birth date.

Every tabular ingest (surveys, programme logs, strength) passes its raw frame
through :func:`split_identifiers` before anything else is done with it, so
names, e-mail addresses, phone numbers, addresses, birth dates and free-text
notes never reach the store, the quarantine table, warnings or printed output.
The date of birth is kept only long enough to turn it into ``age_years`` at
the session date, in *completed years* (an integer): a fractional age together
with the stored session date would give the birth date back.

The list is declared once, in :data:`IDENTIFIER_COLUMNS`. A lab extends it
per command with ``--drop-column NAME`` (repeatable) or with a
``drop_columns = [...]`` key in the ``--spec`` TOML file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from cxlab.pseudo import pseudonymise

__all__ = [
    "DOB_COLUMNS",
    "IDENTIFIER_COLUMNS",
    "REDACTED",
    "age_years",
    "identifier_columns",
    "normalise_header",
    "pseudonymise_labels",
]

#: Header names (normalised by :func:`normalise_header`) of direct identifiers.
IDENTIFIER_COLUMNS: frozenset[str] = frozenset({
    # names
    "name", "full_name", "first_name", "firstname", "given_name", "forename", "last_name",
    "lastname", "surname", "family_name", "middle_name", "initials", "participant_name",
    "subject_name", "patient_name",
    # contact
    "email", "e_mail", "email_address", "mail", "phone", "telephone", "tel", "mobile",
    "phone_number", "mobile_number", "contact",
    # address
    "address", "street", "street_address", "address_line_1", "address_line_2", "city", "town",
    "postcode", "post_code", "postal_code", "zip", "zip_code", "zipcode",
    # birth date
    "date_of_birth", "dob", "birth_date", "birthdate",
    # record numbers
    "nhs_number", "mrn", "medical_record_number", "ssn", "social_security_number",
    "insurance_number", "passport_number",
    # free text
    "notes", "note", "comments", "comment", "remarks", "free_text", "other",
})

#: Identifier headers that hold the date of birth (turned into ``age_years``).
DOB_COLUMNS: frozenset[str] = frozenset({"date_of_birth", "dob", "birth_date", "birthdate"})

#: What a quarantine entry shows instead of an identifier's value.
REDACTED = "<redacted>"

_SEP = re.compile(r"[\s\-/]+")


def normalise_header(name: object, /) -> str:
    """Return a header as cxlab matches it: trimmed, lower case, spaces/``-``/``/`` → ``_``.

    >>> normalise_header(" E-mail Address ")
    'e_mail_address'
    """
    return _SEP.sub("_", str(name).strip().lower())


def identifier_columns(columns: Iterable[object], /, *, extra: Iterable[str] = ()) -> list[str]:
    """Return the columns of ``columns`` that are direct identifiers, in their original spelling.

    Parameters
    ----------
    columns : iterable of str
        Raw header names.
    extra : iterable of str, keyword-only
        More identifier headers for this lab (matched after :func:`normalise_header`).

    Returns
    -------
    list of str
        The headers (as given) whose normalised form is in :data:`IDENTIFIER_COLUMNS`
        or ``extra``.
    """
    names = IDENTIFIER_COLUMNS | {normalise_header(e) for e in extra}
    return [c for c in columns if normalise_header(c) in names]


def age_years(dob: pd.Series, date: pd.Series, /) -> pd.Series:
    """Age in completed years at ``date`` for a birth date ``dob``.

    The calendar rule: the age increases on the birthday (a 29 February birthday
    counts as reached on 1 March in non-leap years), as a person states their age.

    Parameters
    ----------
    dob, date : pandas.Series of datetime64
        Birth dates and session dates, aligned; NaT gives NaN.

    Returns
    -------
    pandas.Series of float
        Completed years (integer-valued floats), NaN where either date is missing.
    """
    d = pd.to_datetime(date)
    b = pd.to_datetime(dob)
    years = d.dt.year - b.dt.year
    before_birthday = (d.dt.month < b.dt.month) | (
        (d.dt.month == b.dt.month) & (d.dt.day < b.dt.day))
    out = (years - before_birthday.astype("Int64")).astype("Float64")
    return out.astype(float).where(d.notna() & b.notna(), np.nan)


def pseudonymise_labels(labels: pd.Series, /) -> pd.Series:
    """Map raw subject labels to pseudonyms (:func:`cxlab.pseudo.pseudonymise`), once per label.

    Parameters
    ----------
    labels : pandas.Series of str
        Raw labels; surrounding white space is ignored.

    Returns
    -------
    pandas.Series of str
        12-hex pseudonyms, same index.
    """
    clean = labels.astype(str).str.strip()
    mapping = {u: pseudonymise(u) for u in clean.unique()}
    return clean.map(mapping)
