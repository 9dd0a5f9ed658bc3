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
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from cxlab.pseudo import pseudonymise

__all__ = [
    "DOB_COLUMNS",
    "IDENTIFIER_COLUMNS",
    "REDACTED",
    "age_years",
    "event_label",
    "identifier_columns",
    "looks_identifying",
    "normalise_header",
    "pseudonymise_labels",
    "redact_text",
    "redact_value",
    "stored_file_name",
    "vendor_text",
]

#: Header names (normalised by :func:`normalise_header`) of direct identifiers.
IDENTIFIER_COLUMNS: frozenset[str] = frozenset(
    {
        # names
        "name",
        "full_name",
        "first_name",
        "firstname",
        "given_name",
        "forename",
        "last_name",
        "lastname",
        "surname",
        "family_name",
        "middle_name",
        "initials",
        "participant_name",
        "subject_name",
        "patient_name",
        # contact
        "email",
        "e_mail",
        "email_address",
        "mail",
        "phone",
        "telephone",
        "tel",
        "mobile",
        "phone_number",
        "mobile_number",
        "contact",
        # address
        "address",
        "street",
        "street_address",
        "address_line_1",
        "address_line_2",
        "city",
        "town",
        "postcode",
        "post_code",
        "postal_code",
        "zip",
        "zip_code",
        "zipcode",
        # birth date
        "date_of_birth",
        "dob",
        "birth_date",
        "birthdate",
        # record numbers
        "nhs_number",
        "mrn",
        "medical_record_number",
        "ssn",
        "social_security_number",
        "insurance_number",
        "passport_number",
        # free text
        "notes",
        "note",
        "comments",
        "comment",
        "remarks",
        "free_text",
        "other",
    }
)

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
        (d.dt.month == b.dt.month) & (d.dt.day < b.dt.day)
    )
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


# --- free text found inside files (C3D events, MANUFACTURER) and rejected cell values -------

#: Words an event label may be made of (C3D/Vicon/Qualisys/Visual3D vocabulary); any other
#: word masks the whole label as ``Event`` (a label is free text a user typed).
EVENT_WORDS: frozenset[str] = frozenset(
    {
        "foot",
        "strike",
        "off",
        "heel",
        "toe",
        "contact",
        "initial",
        "terminal",
        "general",
        "event",
        "events",
        "start",
        "stop",
        "end",
        "begin",
        "beginning",
        "takeoff",
        "take",
        "landing",
        "land",
        "touchdown",
        "touch",
        "down",
        "peak",
        "jump",
        "release",
        "impact",
        "left",
        "right",
        "l",
        "r",
        "lhs",
        "rhs",
        "lto",
        "rto",
        "lfs",
        "rfs",
        "lfo",
        "rfo",
        "hs",
        "to",
        "fs",
        "fo",
        "ic",
        "tc",
        "trial",
        "cycle",
        "step",
        "stride",
        "swing",
        "stance",
        "mid",
        "max",
        "min",
        "flight",
        "squat",
        "bottom",
        "top",
        "catch",
        "ball",
        "serve",
        "racket",
        "hit",
        "throw",
        "kick",
        "onset",
        "offset",
        "lift",
        "sync",
        "trigger",
        "marker",
        "gait",
        "reach",
        "plant",
        "stand",
        "sit",
        "turn",
        "first",
        "last",
        "second",
    }
)
_WORD = re.compile(r"[A-Za-z]+")

#: Vendor and software names kept from MANUFACTURER:COMPANY/SOFTWARE (case-insensitive);
#: with version numbers, everything else there is dropped as free text.
VENDOR_WORDS: frozenset[str] = frozenset(
    {
        "vicon",
        "nexus",
        "workstation",
        "polygon",
        "tracker",
        "blade",
        "shogun",
        "procalc",
        "qualisys",
        "qtm",
        "motion",
        "analysis",
        "cortex",
        "evart",
        "codamotion",
        "coda",
        "odin",
        "kistler",
        "bioware",
        "mars",
        "bts",
        "smart",
        "smartanalyzer",
        "track",
        "theia",
        "theia3d",
        "theia_markerless",
        "markerless",
        "c-motion",
        "visual3d",
        "optitrack",
        "motive",
        "natural",
        "point",
        "xsens",
        "mvn",
        "noraxon",
        "delsys",
        "emgworks",
        "peak",
        "performance",
        "motus",
        "amti",
        "bertec",
        "simi",
        "ezc3d",
        "btk",
        "mokka",
        "opensim",
        "kinetics",
        "toolkit",
        "kineticstoolkit",
        "c3d",
        "c3dserver",
        "ariel",
        "apas",
        "elite",
        "stt",
        "optotrak",
        "ndi",
        "northern",
        "digital",
        "inc",
        "ltd",
        "gmbh",
        "ag",
        "ab",
        "s.p.a",
        "spa",
        "oxford",
        "metrics",
        "systems",
        "vald",
        "forcedecks",
        "hawkin",
        "dynamics",
        "plug-in",
        "gait",
        "plugin",
        "pipeline",
        "matlab",
        "python",
        "pycgm2",
        "cgm",
        "cgm2",
        "manager",
        "dynamic",
        "static",
        "model",
        "sdk",
        "software",
        "medical",
        "technologies",
    }
)
_VERSION = re.compile(r"v?\d+(?:[._]\d+)*[a-z]?", re.IGNORECASE)


def event_label(label: str, /) -> str:
    """The event label if it is standard vocabulary (:data:`EVENT_WORDS` and numbers), else
    ``"Event"``.

    >>> event_label("Foot Strike"), event_label("Left Foot Off 2"), event_label("John here")
    ('Foot Strike', 'Left Foot Off 2', 'Event')
    """
    text = " ".join(str(label).split())
    words = _WORD.findall(text)
    ok = (
        bool(words)
        and all(w.lower() in EVENT_WORDS for w in words)
        and re.fullmatch(r"[A-Za-z0-9 _\-]+", text) is not None
    )
    return text if ok else "Event"


def vendor_text(text: str, /) -> str:
    """Vendor name and version from free text such as MANUFACTURER:SOFTWARE.

    Keeps the words in :data:`VENDOR_WORDS` and version numbers, in order; drops the rest
    (``"Vicon Nexus 2.12 operator John Smith"`` -> ``"Vicon Nexus 2.12"``).
    """
    kept = []
    for tok in str(text).replace(",", " ").split():
        bare = tok.strip("()[];:")
        if bare.lower() in VENDOR_WORDS or _VERSION.fullmatch(bare):
            kept.append(bare)
    return " ".join(kept)


_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_PHONE = re.compile(r"\+?\(?\d[\d\s().\-/]{6,}\d")
_DATE_LIKE = re.compile(r"\d{1,4}([./\-])\d{1,2}\1\d{1,4}")
_CAPWORD = re.compile(r"\b[A-Z][a-z]+\b")


def looks_identifying(value: object, /) -> bool:
    """Whether a cell value looks like an identifier: an e-mail address, a phone number, or
    name-like free text (two or more words with a capitalised one, or four or more words).

    Numbers, dates, codes (``S01``, ``n/a``) and single words are not.
    """
    text = " ".join(str(value).split())
    if not text:
        return False
    if _EMAIL.search(text) or re.fullmatch(r"\+?0\d{9,}", text):  # e-mail, 07700900123
        return True
    if _PHONE.fullmatch(text) and not _DATE_LIKE.fullmatch(text):
        digits = sum(c.isdigit() for c in text)
        if digits >= 7 and not re.fullmatch(r"[+-]?\d+([.,]\d+)?", text):
            return True
    words = _WORD.findall(text)
    return (len(words) >= 2 and bool(_CAPWORD.search(text))) or len(words) >= 4


def redact_value(value: object, /) -> object:
    """``value``, or :data:`REDACTED` when :func:`looks_identifying`; None stays None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return value
    return REDACTED if looks_identifying(value) else value


def redact_text(text: str, /) -> str:
    """``text`` with every e-mail address and phone number in it replaced by :data:`REDACTED`
    (for messages that quote a value)."""
    text = _EMAIL.sub(REDACTED, str(text))
    return re.sub(
        r"(?<![\w.])\+?\(?\d[\d\s().\-/]{6,}\d(?![\w.])",
        lambda m: REDACTED if looks_identifying(m.group(0)) else m.group(0),
        text,
    )


#: Words a sheet's file name may be made of and still be stored as it is (anything else,
#: e.g. a participant's name, makes :func:`stored_file_name` store a keyed hash instead).
FILE_WORDS: frozenset[str] = frozenset(
    {
        "survey",
        "surveys",
        "questionnaire",
        "questionnaires",
        "intake",
        "baseline",
        "follow",
        "followup",
        "up",
        "pre",
        "post",
        "mid",
        "week",
        "wk",
        "month",
        "year",
        "visit",
        "session",
        "ses",
        "sub",
        "day",
        "test",
        "retest",
        "data",
        "export",
        "exports",
        "results",
        "responses",
        "answers",
        "form",
        "forms",
        "scores",
        "score",
        "programme",
        "program",
        "programmes",
        "log",
        "logs",
        "exercise",
        "exercises",
        "intervention",
        "interventions",
        "strength",
        "dynamometer",
        "isokinetic",
        "isometric",
        "biodex",
        "humac",
        "training",
        "adherence",
        "arm",
        "arms",
        "group",
        "groups",
        "cohort",
        "study",
        "pilot",
        "trial",
        "trials",
        "clean",
        "raw",
        "final",
        "v",
        "copy",
        "demo",
        "odi",
        "koos",
        "tsk",
        "nrs",
        "vas",
        "pain",
        "psfs",
        "ndi",
        "lefs",
        "dash",
        "quickdash",
        "sf",
        "eq",
        "promis",
        "ipaq",
        "hoos",
        "ikdc",
        "visa",
        "fabq",
        "pcs",
        "rmdq",
        "bpi",
        "bad",
        "new",
        "old",
        "all",
        "part",
        "sheet",
        "sheets",
        "table",
        "tables",
        "lab",
        "clinic",
        "site",
        "and",
        "of",
        "the",
    }
)


def stored_file_name(path: str, /, *, token: Callable[[str], str]) -> str:
    """The name a sheet file is stored under in ``quarantine.source_path``.

    The file name alone (so it does not depend on how the path was typed, relative or
    absolute, nor show the folders); ``<token(name)><extension>`` instead
    (``Smith_John_intake.csv`` -> ``3f9c0a1b2d4e.csv``) when it looks like it carries a
    name: a word with a capital letter (``Smith``, ``JOHN``, ``SmithJ``) that is not in
    :data:`FILE_WORDS`, an e-mail address or a phone number. Lower-case file names are kept
    (``surveys_week6.csv``, ``dyn.csv``): a name typed in lower case is not recognised.
    """
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, dot + ext) if dot and stem else (name, "")
    words = _WORD.findall(stem)
    named = any(len(w) >= 2 and w != w.lower() and w.lower() not in FILE_WORDS for w in words)
    if not named and redact_text(stem) == stem:
        return name
    return f"{token('file:' + name)}{ext}"
