"""Readers: one per format, all returning :class:`Recording`, behind one :func:`read`.

==========  ==========================================  ==================================
format      recognised by                               reader
==========  ==========================================  ==================================
C3D         key byte 0x50 at offset 1 (any name)        :func:`read_c3d` (``cxlab.io.c3d``)
ForceDecks  line 1 ``ForceDecks Raw Data Export,``      :func:`read_forcedecks`
BioWare     line 1 ``BioWare Version ... Export``       :func:`read_bioware`
TRC         ``PathFileType`` on line 1, or ``.trc``     :func:`read_trc`
MOT/STO     an ``endheader`` line, or ``.mot``/``.sto``  :func:`read_mot`
CSV         ``.csv`` or ``.txt`` (through a mapping)    :func:`read_forceplate_csv`
==========  ==========================================  ==================================

Text formats are recognised by content first, so a ``.csv`` that is an OpenSim MOT, or a
ForceDecks export renamed ``.txt``, is read by its real reader. An empty (0-byte) file is
refused as empty whatever its name.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

from cxlab._check import ConfigError, InputFormatError, message
from cxlab.io._sheet import OpenSheet, Problems, open_sheet
from cxlab.io._sheet import quarantine_rows as sheet_quarantine_rows
from cxlab.io._text import NA_TEXT, check_empty, delimiter, head_bytes, is_endheader
from cxlab.io.csv import read_forceplate_csv
from cxlab.io.opensim import read_mot, read_trc
from cxlab.io.recording import Event, Platform, Recording
from cxlab.io.vendor import read_bioware, read_forcedecks, vendor_format

__all__ = [
    "FORMATS",
    "NA_TEXT",
    "Event",
    "OpenSheet",
    "Platform",
    "Problems",
    "Recording",
    "delimiter",
    "format_of",
    "open_sheet",
    "read",
    "read_bioware",
    "read_c3d",
    "read_forcedecks",
    "read_forceplate_csv",
    "read_mot",
    "read_trc",
    "sheet_quarantine_rows",
]

#: format name -> file extensions (lower case) recognised for it
FORMATS: dict[str, tuple[str, ...]] = {
    "c3d": (".c3d",),
    "trc": (".trc",),
    "mot": (".mot",),
    "sto": (".sto",),
    "csv": (".csv", ".txt"),
    "forcedecks": (".csv",),
    "bioware": (".txt",),
}
_SUPPORTED = (
    "C3D (.c3d), TRC (.trc), OpenSim motion/storage (.mot, .sto), VALD ForceDecks "
    "and Kistler BioWare exports (by content), force-plate CSV/TXT (.csv, .txt)"
)


def __getattr__(name: str):
    # read_c3d is imported on first use: ezc3d is slow to import and cxlab.io.c3d is optional
    if name == "read_c3d":
        from cxlab.io.c3d import read_c3d

        return read_c3d
    raise AttributeError(f"module 'cxlab.io' has no attribute {name!r}")


def format_of(path: str | os.PathLike[str], /) -> str | None:
    """The format of ``path`` by content, then extension: ``c3d``, ``forcedecks``,
    ``bioware``, ``trc``, ``mot``, ``sto``, ``csv`` or ``None`` when unknown.

    A file whose byte at offset 1 is 0x50 (the C3D key) is C3D whatever its name, unless its
    first two bytes are printable text and its extension names a text format (a CSV whose
    header starts with e.g. ``"AP"``). Text is recognised by content before extension: line 1
    ``ForceDecks Raw Data Export`` or ``BioWare Version ... Export``, ``PathFileType`` on
    line 1 (TRC), an ``endheader`` line (MOT; ``sto`` for a ``.sto`` file); else by
    extension (``.txt`` and ``.csv`` are read through a mapping).

    Raises
    ------
    InputFormatError
        If the file cannot be opened.
    """
    path = Path(path)
    head = head_bytes(path)
    ext = path.suffix.lower()
    text_ext = ext in (".trc", ".mot", ".sto", ".csv", ".txt")
    if len(head) >= 2 and head[1] == 0x50:
        printable = all(32 <= b < 127 or b in (9, 10, 13) for b in head[:2])
        if not (printable and text_ext):
            return "c3d"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    vendor = vendor_format(lines[0]) if lines else None
    if vendor:
        return vendor
    if text.lower().startswith("pathfiletype"):
        return "trc"
    if any(is_endheader(line) for line in lines[:-1]):
        return "sto" if ext == ".sto" else "mot"
    for fmt in ("c3d", "trc", "mot", "sto", "csv"):
        # an empty file keeps its extension's format, so its reader says it is empty
        if ext in FORMATS[fmt] and (fmt != "c3d" or not head):
            return fmt
    return None


def _reader(fmt: str):
    if fmt == "c3d":
        from cxlab.io.c3d import read_c3d

        return read_c3d
    return {
        "trc": read_trc,
        "mot": read_mot,
        "sto": read_mot,
        "csv": read_forceplate_csv,
        "forcedecks": read_forcedecks,
        "bioware": read_bioware,
    }[fmt]


def read(path: str | os.PathLike[str], /, **options: Any) -> Recording:
    """Read any supported recording file; the reader is picked by :func:`format_of`.

    Parameters
    ----------
    path : path-like
        A C3D, TRC, MOT/STO or force-plate CSV file.
    **options
        Keyword options of the chosen reader (e.g. ``up="y"`` for TRC/MOT, ``mapping=`` for
        CSV, ``engine=`` and ``cop_threshold_n=`` for C3D).

    Returns
    -------
    Recording
        In SI units; ``meta["format"]`` names the format.

    Raises
    ------
    InputFormatError
        If the format is not supported or the file is invalid.
    ConfigError
        If an option is not accepted by the chosen reader.
    """
    fmt = format_of(path)
    check_empty(Path(path))
    if fmt is None and Path(path).suffix.lower() in FORMATS["c3d"]:
        raise InputFormatError(
            message(
                "is not a C3D file: its content lacks the C3D "
                "parameter-section key byte 0x50 at offset 1",
                file=path,
                fix="re-export it as C3D from the capture software, or "
                "rename it to its real format's extension "
                f"({_SUPPORTED})",
            )
        )
    if fmt is None:
        raise InputFormatError(
            message(
                "is not a supported recording format",
                file=path,
                value=Path(path).suffix or "(no extension)",
                fix=f"supported: {_SUPPORTED}",
            )
        )
    try:
        reader = _reader(fmt)
    except ImportError as e:
        raise InputFormatError(
            message(
                f"needs the {fmt.upper()} reader, which is not available ({e})",
                file=path,
                fix="install cxlab with its C3D support",
            )
        ) from None
    params = inspect.signature(reader).parameters
    allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for name in options:
        if name not in allowed:
            raise ConfigError(
                message(
                    f"is not an option of {reader.__name__}",
                    field=name,
                    fix=f"use one of {', '.join(allowed) or '(none)'}",
                )
            )
    return reader(path, **options)
