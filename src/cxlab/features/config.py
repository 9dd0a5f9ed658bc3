"""``FeatureConfig``: the feature configuration, built once from ``features.toml``.

The shipped ``features.toml`` is merged with a user's file (or dict) table by table, key by
key; the merged tables become frozen dataclasses, so a misspelt key, a value of the wrong
type or an unknown function fails at construction with one message (file, key, value,
fix) instead of as a ``KeyError`` in a worker process.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from cxlab._check import ANY, ConfigError, check_keys, message
from cxlab.features.emg import EmgMap, read_emg_map

__all__ = [
    "CurvesConfig",
    "EventsConfig",
    "FeatureConfig",
    "FiltersConfig",
    "KinematicsConfig",
    "MarkersConfig",
    "PlatesConfig",
    "TaskConfig",
    "read_config",
]

Side = Literal["left", "right", "bilateral"]
_SIDES = typing.get_args(Side)
_DOCS = "the keys are those of src/cxlab/features/features.toml (docs/features.md)"


@dataclass(frozen=True)
class TaskConfig:
    """One ``[tasks.<label>]`` table: the functions run for that ``recordings.task``.

    Attributes
    ----------
    functions : tuple of str
        Names of :data:`cxlab.features.tasks.FUNCTIONS`, run in this order.
    side : {"left", "right", "bilateral"} or None
        Stance leg of a balance or single-leg task; None = from the data (single-leg: the
        loaded plate) or ``"bilateral"`` (balance).
    """

    functions: tuple[str, ...] = ()
    side: Side | None = None


@dataclass(frozen=True)
class CurvesConfig:
    """``[curves]``: time-normalised curves (docs/curves.md).

    Attributes
    ----------
    nodes : int
        Nodes per phase (0-100 %).
    method : str
        ``"linear"`` or ``"spline"`` resampling.
    landing_window_s : float
        Landing phases: initial contact to + this, s.
    tasks : dict of str to tuple of str
        ``recordings.task`` -> curve builders (:data:`cxlab.features.curve_tasks.CURVE_BUILDERS`).
    """

    nodes: int
    method: str
    landing_window_s: float
    tasks: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class PlatesConfig:
    """``[plates]``: 1-based force-plate numbers (``forces.plate``)."""

    left: int
    right: int
    balance: int

    def of(self, side: str, /) -> int:
        """The plate number of ``side`` (``"left"``, ``"right"`` or ``"balance"``)."""
        return getattr(self, side)


@dataclass(frozen=True)
class EventsConfig:
    """``[events]``: event detection thresholds and windows.

    Attributes
    ----------
    threshold_n : float
        Take-off / touchdown / contact threshold, N.
    onset_n_sd : float
        CMJ onset at body weight minus this many SD of quiet standing (Owen 2014).
    quiet_window_s, landing_window_s, balance_min_s : float
        Quiet-standing window, landing-kinematics window after touchdown, shortest loaded
        single-leg stance, s.
    body_mass_tolerance_pct : float
        Warn when header and quiet-standing body mass differ by more, %.
    """

    threshold_n: float
    onset_n_sd: float
    quiet_window_s: float
    landing_window_s: float
    balance_min_s: float
    body_mass_tolerance_pct: float


@dataclass(frozen=True)
class FiltersConfig:
    """``[filters]``: low-pass cut-offs, Hz (0 = none), and the longest filled marker gap, s."""

    cop_cutoff_hz: float
    marker_cutoff_hz: float
    speed_cutoff_hz: float
    max_gap_s: float


@dataclass(frozen=True)
class MarkersConfig:
    """``[markers]``: marker names, ``(left, right)`` (``heel``/``toe``: alternating L, R)."""

    hip: tuple[str, ...]
    knee: tuple[str, ...]
    knee_fallback: tuple[str, ...]
    ankle: tuple[str, ...]
    ankle_fallback: tuple[str, ...]
    asis: tuple[str, ...]
    psis: tuple[str, ...]
    heel: tuple[str, ...]
    toe: tuple[str, ...]


@dataclass(frozen=True)
class KinematicsConfig:
    """``[kinematics]``: the PiG subject-measurements CSV (``""`` = none), the tasks
    whose features gain 3-D landing peaks, and the angle ``convention`` of the cxlab-pig
    rows (``"auto"``, ``"nexus"`` or ``"vcm"``, docs/kinematics.md)."""

    measurements: str
    peak_tasks: tuple[str, ...]
    convention: str

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ConfigError(
                message(
                    "is not a Plug-in Gait angle convention",
                    field="kinematics.convention",
                    value=self.convention,
                    fix=f"use one of {', '.join(map(repr, CONVENTIONS))}",
                )
            )


#: ``[kinematics] convention`` values: decided per recording from its evidence ("auto",
#: cxlab.features.kinematics.detect_convention), Nexus' Plug-in Gait, or the older Vicon
#: Clinical Manager
CONVENTIONS = ("auto", "nexus", "vcm")


@dataclass(frozen=True)
class FeatureConfig:
    """The whole feature configuration; build it with :func:`read_config`.

    Attributes
    ----------
    tasks : dict of str to TaskConfig
        ``recordings.task`` -> its functions and side.
    curves, plates, events, filters, markers, kinematics
        One frozen dataclass per table of ``features.toml``.
    emg : cxlab.features.emg.EmgMap
        ``emg.toml`` merged with the user's ``[emg]`` table.
    """

    tasks: dict[str, TaskConfig]
    curves: CurvesConfig
    plates: PlatesConfig
    events: EventsConfig
    filters: FiltersConfig
    markers: MarkersConfig
    kinematics: KinematicsConfig
    emg: EmgMap

    def functions(self, task: str, /) -> tuple[str, ...]:
        """The functions configured for ``task`` (empty for an unknown task)."""
        spec = self.tasks.get(task)
        return spec.functions if spec is not None else ()


_SECTIONS = {
    "curves": CurvesConfig,
    "plates": PlatesConfig,
    "events": EventsConfig,
    "filters": FiltersConfig,
    "markers": MarkersConfig,
    "kinematics": KinematicsConfig,
}


def _schema(defaults: dict) -> dict:
    """The key schema of :func:`cxlab._check.check_keys` from the shipped configuration."""
    out: dict[str, Any] = {
        "tasks": {ANY: dict.fromkeys(f.name for f in fields(TaskConfig))},
        "emg": {ANY: None},  # its keys are checked by read_emg_map against emg.toml
    }
    for name, table in defaults.items():
        if name != "tasks":
            out[name] = {
                k: ({ANY: None} if isinstance(v, dict) else None) for k, v in table.items()
            }
    return out


def _bad(file, field: str, problem: str, value: Any, fix: str) -> ConfigError:
    return ConfigError(message(problem, file=file, field=field, value=value, fix=fix))


def _names(value: Any, *, file, field: str) -> tuple[str, ...]:
    """A TOML list of strings (a single string is a list of one) as a tuple."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise _bad(file, field, "must be a list of names", value, 'write it as ["a", "b"]')
    return tuple(items)


def _value(hint: Any, value: Any, *, file, field: str) -> Any:
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(file, field, "must be a number", value, "write a TOML number, e.g. 20.0")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(file, field, "must be a whole number", value, "write e.g. 1")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise _bad(file, field, "must be a string", value, 'write it in quotes, e.g. "x"')
        return value
    if hint == tuple[str, ...]:
        return _names(value, file=file, field=field)
    raise TypeError(f"no TOML conversion for {hint!r}")  # a field type this module lacks


def _section(cls, table: dict, *, file, where: str):
    hints = typing.get_type_hints(cls)
    kw = {}
    for f in fields(cls):
        field = f"{where}.{f.name}"
        if f.name == "tasks" and cls is CurvesConfig:
            kw[f.name] = {
                str(t): _names(v, file=file, field=f"{field}.{t}") for t, v in table[f.name].items()
            }
        else:
            kw[f.name] = _value(hints[f.name], table[f.name], file=file, field=field)
    return cls(**kw)


def _task(label: str, table: dict, *, file) -> TaskConfig:
    where = f"tasks.{label}"
    functions = _names(table.get("functions", []), file=file, field=f"{where}.functions")
    side = table.get("side")
    if side is not None and side not in _SIDES:
        raise _bad(
            file,
            f"{where}.side",
            "is not a side",
            side,
            f"use one of {', '.join(map(repr, _SIDES))}",
        )
    return TaskConfig(functions=functions, side=side)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _user(path) -> dict:
    if isinstance(path, dict):
        return dict(path)
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(
            message(
                f"cannot be read as TOML ({e})", file=path, fix="check the path and the TOML syntax"
            )
        ) from None


def read_config(path=None, /) -> FeatureConfig:
    """The feature configuration: the shipped ``features.toml`` merged with ``path``.

    Parameters
    ----------
    path : path-like, dict or FeatureConfig, optional
        A TOML file (or an already-parsed dict) whose tables override the defaults key by
        key (``[tasks.cmj] functions = [...]``, ``[plates] left = 2``, ...). A
        :class:`FeatureConfig` is returned as it is.

    Returns
    -------
    FeatureConfig

    Raises
    ------
    ConfigError
        Unreadable TOML; keys the shipped ``features.toml`` does not have (every one named
        at once with the nearest valid key, by :func:`cxlab._check.check_keys`; new task
        labels are allowed); a value of the wrong type; a task naming an unknown function
        or curve builder; a side other than left, right or bilateral.
    """
    if isinstance(path, FeatureConfig):
        return path
    from cxlab.features.curve_tasks import CURVE_BUILDERS  # they take a FeatureConfig
    from cxlab.features.tasks import FUNCTIONS

    defaults = tomllib.loads(
        resources.files("cxlab.features").joinpath("features.toml").read_text()
    )
    file = None if path is None or isinstance(path, dict) else path
    cfg, user_emg = defaults, None
    if path is not None:
        user = _user(path)
        check_keys(user, _schema(defaults), file=file, fix=_DOCS)
        user_emg = user.pop("emg", None)
        cfg = _merge(defaults, user)
    tasks = {str(t): _task(t, spec, file=file) for t, spec in cfg["tasks"].items()}
    for label, spec in tasks.items():
        for fn in spec.functions:
            if fn not in FUNCTIONS:
                raise _bad(
                    file,
                    f"tasks.{label}",
                    "names an unknown function",
                    fn,
                    f"use one of {', '.join(FUNCTIONS)}",
                )
    sections = {n: _section(c, cfg[n], file=file, where=n) for n, c in _SECTIONS.items()}
    for label, names in sections["curves"].tasks.items():
        for name in names:
            if name not in CURVE_BUILDERS:
                raise _bad(
                    file,
                    f"curves.tasks.{label}",
                    "names an unknown curve builder",
                    name,
                    f"use one of {', '.join(CURVE_BUILDERS)}",
                )
    emg = read_emg_map(user_emg, file=file)
    return FeatureConfig(tasks=tasks, emg=emg, **sections)
