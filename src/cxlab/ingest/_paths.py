"""Which files to ingest, how they pair, and what their paths say (subject, session, task, trial).

Default pattern (BIDS-like, ``docs/conventions.md``): key-value entities in the file name,
``sub-<label>``, ``ses-<label>``, ``task-<label>``, ``run-<label>``, joined by ``_``, e.g.
``sub-CX001_ses-1_task-balance_left_run-2.c3d``. Labels are letters and digits; the task label
may contain ``_`` (``balance_left``): it runs up to the next ``_<key>-`` entity. ``sub-`` and
``ses-`` may also come from the folders (``sub-CX001/ses-1/...``). A path matches when it
gives a subject.

Custom patterns (``--pattern``) use the fields ``{subject}``, ``{session}``, ``{task}``,
``{trial}`` and the wildcard ``*`` (any characters except ``/``), and are matched against the
end of the path relative to the ingest root, case-insensitively:
``"{subject}/{session}/{task}_{trial}.*"``; ``{date}`` (``2024-03-05`` or ``20240305``)
dates the session (``sessions`` table). A field never spans ``/``; ``{task}`` takes as much
as it can (so ``balance_left_2`` gives task ``balance_left``, trial ``2``), the other fields
as little as they can.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cxlab._check import ConfigError, CxlabError, message
from cxlab._hashing import sha256_of
from cxlab.io import FORMATS, NA_TEXT, delimiter, format_of
from cxlab.io.csv import find_header
from cxlab.io.opensim import GRF_COLUMN as _GRF

__all__ = [
    "Unit",
    "discover",
    "mask_label",
    "masked_path",
    "path_fields",
    "pattern_regex",
    "stored_path",
]

FIELDS = ("subject", "session", "task", "trial")
#: fields a custom ``--pattern`` may use: FIELDS and the session date (``{date}``, ISO 8601
#: ``2024-03-05`` or ``20240305``), which goes to the ``sessions`` table
PATTERN_FIELDS = (*FIELDS, "date")
_DATE_RX = r"(?P<date>[0-9]{4}-?[0-9]{2}-?[0-9]{2})"
EXTENSIONS = tuple(e for exts in FORMATS.values() for e in exts)
_ENTITY = {
    "subject": re.compile(r"(?:^|_)sub-([A-Za-z0-9]+)"),
    "session": re.compile(r"(?:^|_)ses-([A-Za-z0-9]+)"),
    "task": re.compile(r"(?:^|_)task-([A-Za-z0-9]+(?:_(?![A-Za-z]+-)[A-Za-z0-9]+)*)"),
    "trial": re.compile(r"(?:^|_)run-([A-Za-z0-9]+)"),
}
_DIR_ENTITY = {
    "subject": re.compile(r"^sub-([A-Za-z0-9]+)$"),
    "session": re.compile(r"^ses-([A-Za-z0-9]+)$"),
}


@dataclass
class Unit:
    """One recording to ingest: a file, or a TRC with its force ``.mot`` (``companions``)."""

    root: Path
    path: Path
    companions: list[Path] = field(default_factory=list)
    sha256: str = ""

    @property
    def rel(self) -> str:
        return self.path.relative_to(self.root).as_posix()

    @property
    def files(self) -> list[Path]:
        return [self.path, *self.companions]

    def digest(self) -> str:
        """sha256 of the file's bytes (a TRC+MOT pair: of the TRC's bytes then the MOT's)."""
        self.sha256 = sha256_of(*self.files)
        return self.sha256


def pattern_regex(pattern: str, /) -> re.Pattern[str]:
    """Compile a ``--pattern`` such as ``"{subject}/{session}/{task}_{trial}.*"``.

    Raises
    ------
    ConfigError
        Unknown or repeated field.
    """
    out, seen = [], set()
    for part in re.split(r"(\{[^}]*\}|\*)", pattern):
        if part == "*":
            out.append(r"[^/]*")
        elif part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name not in PATTERN_FIELDS or name in seen:
                problem = "repeats a field" if name in seen else "has an unknown field"
                raise ConfigError(
                    message(
                        problem,
                        field="--pattern",
                        value=part,
                        fix="use each of {subject} {session} {task} {trial} "
                        "{date} at most once, and * for anything else",
                    )
                )
            seen.add(name)
            out.append(
                _DATE_RX
                if name == "date"
                else f"(?P<{name}>[^/]+)"
                if name == "task"
                else f"(?P<{name}>[^/]+?)"
            )
        else:
            out.append(re.escape(part))
    return re.compile(r"(?P<_extra>.*/)?" + "".join(out), re.IGNORECASE)


def path_fields(rel: str, /, *, pattern: re.Pattern[str] | None = None) -> dict[str, str] | None:
    """Subject, session, task and trial from a path relative to the ingest root.

    Returns
    -------
    dict or None
        The fields found (absent ones are ``None``; ``date`` only when the pattern has it), or
        ``None`` when the path matches no pattern.
    """
    if pattern is not None:
        m = pattern.fullmatch(rel)
        if m is None:
            return None
        found = {f: m.groupdict().get(f) for f in FIELDS}
        return found | ({"date": m.group("date")} if "date" in pattern.groupindex else {})
    parts = rel.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    out = {}
    for name, rx in _ENTITY.items():
        m = rx.search(stem)
        out[name] = m.group(1) if m else None
    for name, rx in _DIR_ENTITY.items():
        if out[name] is None:
            hits = [m.group(1) for d in parts[:-1] if (m := rx.match(d))]
            out[name] = hits[-1] if hits else None
    return out if out["subject"] else None


def mask_label(text: str, /, *, label: str | None, subject_id: str | None) -> str:
    """``text`` with every occurrence of the subject ``label`` (any case) replaced by its
    pseudonym; a label shorter than 3 characters only where it stands between non-alphanumeric
    characters (so ``7`` does not eat the digits of a date)."""
    if not text or not label or not subject_id:
        return text
    lab = re.escape(label)
    rx = lab if len(label) >= 3 else rf"(?<![A-Za-z0-9]){lab}(?![A-Za-z0-9])"
    return re.sub(rx, subject_id, text, flags=re.IGNORECASE)


def masked_path(
    rel: str, /, *, label: str, subject_id: str, pattern: re.Pattern[str] | None = None
) -> str:
    """``rel`` with the raw subject label replaced by its pseudonym, so no stored path holds it.

    Every occurrence of the label is replaced (:func:`mask_label`): in ``sub-<label>``
    entities, the span a custom ``{subject}`` matched, and anywhere else the file or folder
    names repeat it.
    """
    if pattern is not None:
        m = pattern.fullmatch(rel)
        if m is not None and m.group("subject") is not None:
            a, b = m.span("subject")
            rel = rel[:a] + subject_id + rel[b:]
    return mask_label(rel, label=label, subject_id=subject_id)


#: Folder names of a BIDS tree that say nothing about a person (kept in stored paths).
BIDS_FOLDERS = frozenset(
    {
        "motion",
        "beh",
        "emg",
        "eeg",
        "meg",
        "ieeg",
        "nirs",
        "anat",
        "func",
        "dwi",
        "fmap",
        "perf",
        "pet",
        "micr",
        "derivatives",
        "sourcedata",
        "rawdata",
    }
)


def stored_path(
    rel: str,
    /,
    *,
    fields: dict[str, str | None] | None,
    subject_id: str | None,
    token: Callable[[str], str],
    pattern: re.Pattern[str] | None = None,
) -> str:
    """The ``source_path`` stored for a file at ``rel`` (relative to the ingest root).

    * No pattern matched: ``<token(rel)><extension>`` only (a keyed hash of the path: file
      and folder names that match no pattern may hold anything, e.g. ``Smith_J/...``).
    * Default (BIDS) pattern: ``sub-``/``ses-`` folders and BIDS datatype folders
      (:data:`BIDS_FOLDERS`) are kept, any other folder becomes ``d<token>``; the file name is
      kept (its entities matched).
    * Custom pattern: the folders before the part the pattern describes (``(.*/)``) become
      ``d<token>``; the rest is kept.

    In every kept part each occurrence of the subject label becomes ``subject_id``
    (:func:`mask_label`).

    Parameters
    ----------
    rel : str
        Path relative to the ingest root, ``/``-separated.
    fields : dict or None
        :func:`path_fields` of ``rel`` (None when it matched no pattern).
    subject_id : str or None
        Pseudonym of ``fields["subject"]``.
    token : callable
        Keyed hash of a text (e.g. :func:`cxlab.pseudo.pseudonymise`), so a stored hash
        cannot be reversed by trying names without the key.
    pattern : compiled pattern, optional
        The ``--pattern`` regex; None for the default.
    """
    name = rel.rsplit("/", 1)[-1]
    ext = name[name.rfind(".") :] if "." in name else ""
    if fields is None:
        return f"{token('path:' + rel)}{ext}"
    label = fields.get("subject")
    parts = rel.split("/")
    if pattern is None:
        keep = [
            bool(
                _DIR_ENTITY["subject"].match(d)
                or _DIR_ENTITY["session"].match(d)
                or d.lower() in BIDS_FOLDERS
            )
            for d in parts[:-1]
        ]
    else:
        m = pattern.fullmatch(rel)
        extra = m.group("_extra") if m is not None else None
        n_extra = extra.count("/") if extra else 0
        keep = [i >= n_extra for i in range(len(parts) - 1)]
    folders = [
        d if k else "d" + token("dir:" + d)[:8] for d, k in zip(parts[:-1], keep, strict=True)
    ]
    out = "/".join([*folders, parts[-1]])
    return mask_label(out, label=label, subject_id=subject_id)


def discover(
    paths: list[Path], /, *, csv_columns: list[str] | None = None
) -> tuple[list[Unit], list[Unit]]:
    """Files to ingest under ``paths``, sorted, TRC files paired with their force ``.mot``.

    A folder contributes its files with a known extension (any depth, hidden names skipped) and
    is the root their ``source_path`` is relative to; a file given directly is taken whatever
    its extension, relative to its folder. A ``.mot``/``.sto`` with ground reaction force
    columns pairs with the ``.trc`` of the same folder whose stem is the same, or the same
    without a ``_grf``/``_force``/``_forces`` suffix (``walk.trc`` + ``walk_grf.mot``).
    In a folder, a ``.csv`` or ``.txt`` file is picked by content: a vendor export (ForceDecks,
    BioWare), an OpenSim file, or a table holding the force-plate mapping's ``csv_columns`` is
    ingested; so is any other table of numbers (a signal export the mapping does not fit), so
    that it fails with its reason and lands in quarantine rather than vanishing. Only text
    that is not a numeric table (a survey sheet, a README) is not read, and returned as
    ``skipped`` so the caller records it.

    Returns
    -------
    units : list of Unit
    skipped : list of Unit
        The CSV/TXT files not read because they are not recordings, sorted by path.

    Raises
    ------
    ConfigError
        A path does not exist.
    """
    found: dict[Path, Path] = {}
    skipped: list[Unit] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            root = p.resolve()
            for f in sorted(root.rglob("*")):
                rel = f.relative_to(root).parts
                if (
                    f.is_file()
                    and f.suffix.lower() in EXTENSIONS
                    and not any(x.startswith(".") for x in rel)
                ):
                    if f.suffix.lower() in (".csv", ".txt") and not _is_recording(
                        f, csv_columns or []
                    ):
                        skipped.append(Unit(root, f))
                        continue
                    found.setdefault(f, root)
        elif p.is_file():
            f = p.resolve()
            found.setdefault(f, f.parent)
        else:
            raise ConfigError(
                message(
                    "does not exist",
                    field="PATH",
                    value=str(p),
                    fix="give existing files or folders",
                )
            )
    units = {f: Unit(root, f) for f, root in found.items()}
    trcs = {(f.parent, f.stem.lower()): f for f in units if f.suffix.lower() == ".trc"}
    for f in sorted(units):
        if f.suffix.lower() not in (".mot", ".sto") or f not in units:
            continue
        stem = re.sub(r"_(grf|forces?)$", "", f.stem, flags=re.IGNORECASE).lower()
        trc = trcs.get((f.parent, stem)) or trcs.get((f.parent, f.stem.lower()))
        if trc is not None and trc in units and not units[trc].companions and _has_grf(f):
            units[trc].companions.append(f)
            del units[f]

    def order(u: Unit) -> tuple[str, str]:
        return (u.rel, str(u.root))

    return sorted(units.values(), key=order), sorted(skipped, key=order)


_NUMERIC = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")


def _is_recording(path: Path, columns: list[str]) -> bool:
    """Whether a ``.csv``/``.txt`` file in a folder is a recording to ingest (by content)."""
    try:
        fmt = format_of(path)
    except CxlabError:
        return True  # let the reader report it
    if fmt not in ("csv", None):
        return True
    try:
        if columns and find_header(path, columns) is not None:
            return True
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            lines = [line for _, line in zip(range(60), fh, strict=False)]
    except (OSError, CxlabError):
        return True
    if not lines:
        return True  # an empty export is refused as empty, never skipped
    numeric = 0
    for line in lines:
        sep = delimiter(line)
        cells = [c.strip().strip('"') for c in line.split(sep)]
        cells = [c for c in cells if c]
        if len(cells) >= 2 and all(_NUMERIC.match(c) or c in NA_TEXT for c in cells):
            numeric += 1
    return numeric >= 5  # a table of numbers: a signal export, even if no mapping fits


def _has_grf(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for _, line in zip(range(1000), fh, strict=False):
                if line.strip().lower().startswith("endheader"):
                    names = re.split(r"[\t, ]+", next(fh, "").strip())
                    return any(_GRF.match(n) for n in names)
    except OSError:
        return False
    return False
