"""Screening rules: declared in TOML, validated once, merged with a lab's overrides.

A rule names one measure (a ``features.feature`` or a ``scores.instrument``), a
comparison against a threshold, which side(s) it is judged on, how severe a
finding is, where in the body it sits, what corrective focus it points to, and
the published source of its threshold. The package ships
``cxlab/screen/rules/default.toml``; a lab file given with ``--rules`` extends
it (same ``id`` = override field by field, ``enabled = false`` = drop) or, with
``replace = true`` at its top, replaces it.

File layout::

    replace = false                       # optional, top level

    [rules.knee_valgus_landing]
    feature = "knee_fppa_peak_deg"        # or: instrument = "odi"
    task = "landing"                      # optional: only rows of this task
    sides = "each"                        # each | bilateral | worst
    comparison = ">"                      # <  <=  >  >=  abs>  abs>=
    threshold = 13.0                      # the flag threshold, in `unit`
    unit = "deg"
    severity = "moderate"                 # low | moderate | high
    grades = { high = 20.0 }              # optional stricter thresholds
    mic = 2.0                             # optional smallest important change
    region = "knee"
    focus = "hip abductor strength and landing mechanics"
    source = "Herrington L, Munro A (2010) ..."
    note = "..."
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from cxlab._check import ConfigError, check_keys, message

__all__ = [
    "COMPARISONS",
    "SEVERITIES",
    "SIDE_LOGIC",
    "Rule",
    "default_rules_path",
    "read_rules",
    "rules_frame",
]

COMPARISONS = ("<", "<=", ">", ">=", "abs>", "abs>=")
SIDE_LOGIC = ("each", "bilateral", "worst")
SEVERITIES = ("low", "moderate", "high")
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class Rule:
    """One validated screening rule (see the module docstring for the fields)."""

    id: str
    threshold: float
    comparison: str
    sides: str
    severity: str
    unit: str
    region: str
    focus: str
    source: str
    note: str = ""
    feature: str | None = None
    instrument: str | None = None
    task: str | None = None
    grades: dict[str, float] = field(default_factory=dict)
    mic: float | None = None
    enabled: bool = True

    @property
    def measure(self) -> str:
        """The feature or instrument name the rule reads."""
        return self.feature if self.feature is not None else str(self.instrument)

    @property
    def higher_is_worse(self) -> bool:
        """True for ``>``/``>=``/``abs>``/``abs>=`` rules (for ``abs`` rules: larger |value|)."""
        return self.comparison not in ("<", "<=")


# field name -> (python types accepted, required in a complete rule)
_STR, _NUM = (str,), (int, float)
_SPEC: dict[str, tuple[tuple[type, ...], bool]] = {
    "feature": (_STR, False),
    "instrument": (_STR, False),
    "task": (_STR, False),
    "sides": (_STR, True),
    "comparison": (_STR, True),
    "threshold": (_NUM, True),
    "unit": (_STR, True),
    "severity": (_STR, True),
    "grades": ((dict,), False),
    "mic": (_NUM, False),
    "region": (_STR, True),
    "focus": (_STR, True),
    "source": (_STR, True),
    "note": (_STR, False),
    "enabled": ((bool,), False),
}
_TYPE_NAMES = {_STR: "a string", _NUM: "a number", (dict,): "a table", (bool,): "true or false"}


def default_rules_path() -> Path:
    """Path of the rule set shipped with cxlab (``cxlab/screen/rules/default.toml``)."""
    return Path(str(resources.files("cxlab.screen") / "rules" / "default.toml"))


def read_rules(path: str | PathLike[str] | None = None, /) -> list[Rule]:
    """Read, merge and validate screening rules.

    Parameters
    ----------
    path : path-like, optional
        A lab rules file. Without it, the shipped defaults are returned. With
        it, each ``[rules.<id>]`` table overrides the default rule of the same
        id field by field (a new id must be complete); ``enabled = false``
        drops a rule; top-level ``replace = true`` discards the defaults.

    Returns
    -------
    list of Rule
        Enabled rules, sorted by id.

    Raises
    ------
    ConfigError
        Naming the file, the rule id and the field: unreadable TOML, unknown
        key, wrong type, unknown comparison/sides/severity, missing required
        field, both or neither of ``feature``/``instrument``, non-finite
        threshold, or a grade threshold that is not stricter than the flag
        threshold.
    """
    default = default_rules_path()
    base = _read_toml(default)
    merged: dict[str, dict[str, Any]] = {}
    _check_top(base, default)
    for rid, raw in base.get("rules", {}).items():
        merged[rid] = _check_raw(rid, raw, default)
    src_of = dict.fromkeys(merged, default)
    if path is not None:
        lab = _read_toml(Path(path))
        _check_top(lab, Path(path))
        if lab.get("replace", False):
            merged, src_of = {}, {}
        for rid, raw in lab.get("rules", {}).items():
            raw = _check_raw(rid, raw, Path(path))
            merged[rid] = {**merged.get(rid, {}), **raw}
            src_of[rid] = Path(path)
    rules = [_build(rid, raw, src_of[rid]) for rid, raw in sorted(merged.items())]
    return [r for r in rules if r.enabled]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            message(
                "does not exist",
                file=path,
                field="--rules",
                fix="give the path of a rules TOML file",
            )
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            message(
                f"is not valid TOML ({e})",
                file=path,
                fix="check the file's syntax against docs/screen.md",
            )
        ) from None


def _check_top(doc: dict[str, Any], path: Path) -> None:
    check_keys(
        doc,
        ("rules", "replace"),
        file=path,
        fix="use [rules.<id>] tables and optionally replace = true (docs/screen.md)",
    )
    if not isinstance(doc.get("replace", False), bool):
        raise ConfigError(
            message("must be true or false", file=path, field="replace", value=doc["replace"])
        )
    if not isinstance(doc.get("rules", {}), dict):
        raise ConfigError(
            message("must be tables [rules.<id>]", file=path, field="rules", value=doc["rules"])
        )


def _err(path: Path, rid: str, fld: str, problem: str, value: Any = ..., fix: str | None = None):
    return ConfigError(
        message(problem, file=path, field=f"rules.{rid}.{fld}", value=value, fix=fix)
    )


def _check_raw(rid: str, raw: Any, path: Path) -> dict[str, Any]:
    """Check keys and types of one (possibly partial) rule table."""
    if not rid or not set(rid) <= _ID_CHARS:
        raise ConfigError(
            message(
                "is not a valid rule id",
                file=path,
                field=f"rules.{rid}",
                value=rid,
                fix="use lower-case letters, digits and '_'",
            )
        )
    if not isinstance(raw, dict):
        raise ConfigError(message("must be a table", file=path, field=f"rules.{rid}", value=raw))
    check_keys(
        raw, _SPEC, where=f"rules.{rid}", file=path, fix="the rule fields are in docs/screen.md"
    )
    for key, val in raw.items():
        types = _SPEC[key][0]
        bad_bool = isinstance(val, bool) and bool not in types
        if bad_bool or not isinstance(val, types):
            raise _err(path, rid, key, f"must be {_TYPE_NAMES[types]}", val)
    return dict(raw)


def _build(rid: str, raw: dict[str, Any], path: Path) -> Rule:
    """Validate a complete rule and return it."""
    for key, (_, required) in _SPEC.items():
        if required and key not in raw:
            raise _err(path, rid, key, "is missing", fix=f"add {key} = ... to [rules.{rid}]")
    if ("feature" in raw) == ("instrument" in raw):
        raise _err(
            path,
            rid,
            "feature",
            "exactly one of feature or instrument must be given",
            fix="name a features.feature or a scores.instrument",
        )
    for key, allowed in (
        ("comparison", COMPARISONS),
        ("sides", SIDE_LOGIC),
        ("severity", SEVERITIES),
    ):
        if raw[key] not in allowed:
            raise _err(
                path,
                rid,
                key,
                f"is not a valid {key}",
                raw[key],
                "use one of " + ", ".join(repr(a) for a in allowed),
            )
    if "instrument" in raw and raw["sides"] != "bilateral":
        raise _err(path, rid, "sides", "must be 'bilateral' for an instrument score", raw["sides"])
    threshold = float(raw["threshold"])
    if not math.isfinite(threshold):
        raise _err(path, rid, "threshold", "must be finite", raw["threshold"])
    grades: dict[str, float] = {}
    for sev, thr in raw.get("grades", {}).items():
        if sev not in SEVERITIES:
            raise _err(
                path,
                rid,
                f"grades.{sev}",
                "is not a valid severity",
                sev,
                "use one of " + ", ".join(repr(a) for a in SEVERITIES),
            )
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not math.isfinite(thr):
            raise _err(path, rid, f"grades.{sev}", "must be a finite number", thr)
        if SEVERITIES.index(sev) <= SEVERITIES.index(raw["severity"]):
            raise _err(
                path,
                rid,
                f"grades.{sev}",
                f"must be more severe than severity {raw['severity']!r}",
                sev,
            )
        stricter = (
            abs(thr) > abs(threshold)
            if raw["comparison"].startswith("abs")
            else (thr < threshold if raw["comparison"].startswith("<") else thr > threshold)
        )
        if not stricter:
            raise _err(
                path,
                rid,
                f"grades.{sev}",
                f"must be stricter than threshold {threshold} for comparison {raw['comparison']!r}",
                thr,
            )
        grades[sev] = float(thr)
    mic = raw.get("mic")
    if mic is not None and not (math.isfinite(mic) and mic > 0):
        raise _err(path, rid, "mic", "must be a positive number", mic)
    for key in ("region", "focus", "source", "unit"):
        if not raw[key].strip():
            raise _err(path, rid, key, "must not be empty", raw[key])
    names = {f.name for f in fields(Rule)}
    kwargs = {k: v for k, v in raw.items() if k in names}
    return Rule(
        id=rid,
        **{
            **kwargs,
            "threshold": threshold,
            "grades": grades,
            "mic": None if mic is None else float(mic),
        },
    )


def rules_frame(rules: list[Rule], /):
    """The rules as a DataFrame, one row per rule (``grades`` as text ``sev:thr;...``).

    Returns
    -------
    pandas.DataFrame
        Columns ``rule_id, feature, instrument, measure, task, sides, comparison,
        threshold, unit, severity, grades, mic, region, focus, source, note``.
    """
    import pandas as pd

    rows = [
        {
            "rule_id": r.id,
            "feature": r.feature,
            "instrument": r.instrument,
            "measure": r.measure,
            "task": r.task,
            "sides": r.sides,
            "comparison": r.comparison,
            "threshold": r.threshold,
            "unit": r.unit,
            "severity": r.severity,
            "grades": ";".join(f"{k}:{v:g}" for k, v in r.grades.items()),
            "mic": r.mic,
            "region": r.region,
            "focus": r.focus,
            "source": r.source,
            "note": r.note,
        }
        for r in rules
    ]
    cols = [
        "rule_id",
        "feature",
        "instrument",
        "measure",
        "task",
        "sides",
        "comparison",
        "threshold",
        "unit",
        "severity",
        "grades",
        "mic",
        "region",
        "focus",
        "source",
        "note",
    ]
    return pd.DataFrame(rows, columns=cols)
