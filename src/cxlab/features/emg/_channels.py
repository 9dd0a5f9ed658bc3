"""EMG configuration (``emg.toml``) and channel label -> muscle and side."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Literal, NamedTuple

from cxlab._check import ANY, ConfigError, check_keys, message, nearest

__all__ = ["Channel", "EmgMap", "looks_like_emg", "muscle_of", "read_emg_map"]

# tables whose keys are free (muscle codes, labels, names)
_FREE = ("muscles", "channels", "pairs", "onset_differences", "tasks", "event_phases")


class Channel(NamedTuple):
    """One EMG channel: its label, muscle code (``emg.toml [muscles]``) and side."""

    label: str
    muscle: str
    side: Literal["left", "right", "bilateral"]


def _norm(text: str) -> str:
    """Upper case, punctuation and camel-case boundaries to single spaces."""
    t = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", str(text))
    return " ".join(re.sub(r"[^A-Za-z0-9]+", " ", t).upper().split())


def _schema(defaults: dict, *, top: bool = True) -> dict:
    """The key schema of :func:`cxlab._check.check_keys`: the shipped tables, with any key
    allowed in the tables of names (``_FREE``)."""
    return {
        k: {ANY: None}
        if top and k in _FREE
        else (_schema(v, top=False) if isinstance(v, dict) else None)
        for k, v in defaults.items()
    }


@dataclass(frozen=True)
class EmgMap:
    """The EMG configuration, built once from ``emg.toml`` (+ a user's ``[emg]`` table).

    Attributes
    ----------
    aliases : dict
        Normalised label text -> muscle code.
    sides : dict
        Normalised side word -> ``"left"`` / ``"right"``.
    channels : dict
        Normalised explicit label -> (muscle, side).
    pairs, onset_differences : dict
        Name -> (first muscle, second muscle).
    settings : dict
        ``filters``, ``onsets``, ``quality``, ``phases``, ``mvc`` tables as given.
    """

    aliases: dict
    sides: dict
    channels: dict
    pairs: dict
    onset_differences: dict
    settings: dict
    tasks: dict
    event_phases: dict

    @property
    def muscles(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.aliases.values())))


def _pair_table(cfg: dict, name: str, muscles: set, file) -> dict:
    out = {}
    for key, v in cfg.get(name, {}).items():
        if not (isinstance(v, list) and len(v) == 2 and all(m in muscles for m in v)):
            near = [nearest(m, sorted(muscles)) for m in (v if isinstance(v, list) else [v])]
            hint = ", ".join(n for n in near if n)
            raise ConfigError(
                message(
                    "must be [muscle, muscle] with muscle codes of [muscles]",
                    file=file,
                    field=f"emg.{name}.{key}",
                    value=v,
                    fix=f"did you mean {hint}?"
                    if hint
                    else f"use codes from {', '.join(sorted(muscles))}",
                )
            )
        out[key] = (v[0], v[1])
    return out


def read_emg_map(user: dict | None = None, /, *, file=None) -> EmgMap:
    """The shipped ``emg.toml`` merged with a user's ``[emg]`` table.

    Parameters
    ----------
    user : dict, optional
        Overrides, table by table (``muscles``, ``channels``, ``pairs`` and
        ``onset_differences`` add to or replace entries; other tables key by key).
    file : path, optional
        The file ``user`` came from (for messages).

    Returns
    -------
    EmgMap

    Raises
    ------
    ConfigError
        Unknown keys (each named with the nearest valid one), a pair naming an unknown
        muscle, or a channel override that is not ``"<muscle> <side>"``.
    """
    cfg = tomllib.loads(resources.files("cxlab.features").joinpath("emg.toml").read_text())
    user = user or {}
    check_keys(
        user,
        _schema(cfg),
        where="emg",
        file=file,
        fix="the keys are those of src/cxlab/features/emg.toml (docs/emg.md)",
    )
    for table, value in user.items():
        cfg[table] = {**cfg.get(table, {}), **value}
    aliases = {}
    for code, names in cfg["muscles"].items():
        for n in [code, *names]:
            aliases[_norm(n)] = code
            aliases[_norm(n).replace(" ", "")] = code
    sides = {_norm(w): s for s in ("left", "right") for w in [s, *cfg["sides"][s]]}
    muscles = set(cfg["muscles"])
    channels = {}
    for label, spec in cfg.get("channels", {}).items():
        parts = str(spec).split()
        if (
            len(parts) != 2
            or parts[0] not in muscles
            or parts[1] not in ("left", "right", "bilateral")
        ):
            raise ConfigError(
                message(
                    'must be "<muscle> <left|right|bilateral>"',
                    file=file,
                    field=f"emg.channels.{label}",
                    value=spec,
                    fix=f'e.g. "vl right"; muscles: {", ".join(sorted(muscles))}',
                )
            )
        channels[_norm(label)] = (parts[0], parts[1])
    settings = {k: dict(cfg[k]) for k in ("filters", "onsets", "quality", "phases", "mvc")}
    kinds = ("cmj", "landing", "events", "trial")
    for task, kind in cfg["tasks"].items():
        if kind not in kinds:
            raise ConfigError(
                message(
                    "is not a phase kind",
                    file=file,
                    field=f"emg.tasks.{task}",
                    value=kind,
                    fix=f"use one of {', '.join(kinds)}",
                )
            )
    for name, pair in cfg["event_phases"].items():
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(e, str) for e in pair)
        ):
            raise ConfigError(
                message(
                    "must be [start event label, end event label]",
                    file=file,
                    field=f"emg.event_phases.{name}",
                    value=pair,
                    fix='e.g. ["Foot Strike", "Foot Off"]',
                )
            )
    return EmgMap(
        aliases,
        sides,
        channels,
        _pair_table(cfg, "pairs", muscles, file),
        _pair_table(cfg, "onset_differences", muscles, file),
        settings,
        dict(cfg["tasks"]),
        {k: tuple(v) for k, v in cfg["event_phases"].items()},
    )


_NOISE = re.compile(r"^(EMG\d*|IM|CH\d*|CHANNEL\d*|ANALOG\d*|VOLTAGE|SENSOR\d*|\d+|[A-Z]?\d+)$")


def muscle_of(label: str, emg_map: EmgMap, /) -> Channel | None:
    """Muscle and side a channel label names, or ``None`` if it is not an EMG label.

    ``"L_GMED"``, ``"EMG1 R VL"``, ``"Right Vastus Lateralis"``, ``"RGMED"``,
    ``"Voltage.VM_L"`` are all read; the explicit ``[channels]`` table wins. A muscle
    without a side word is ``"bilateral"`` (trunk midline, or a file that does not say).
    """
    key = _norm(label)
    if key in emg_map.channels:
        m, s = emg_map.channels[key]
        return Channel(str(label), m, s)
    tokens = [t for t in key.split() if not _NOISE.match(t) or t in emg_map.aliases]
    side = None
    rest = []
    for t in tokens:
        if t in emg_map.sides and side is None and t not in emg_map.aliases:
            side = emg_map.sides[t]
        else:
            rest.append(t)
    text = " ".join(rest)
    for candidate in (text, text.replace(" ", "")):
        if candidate in emg_map.aliases:
            return Channel(str(label), emg_map.aliases[candidate], side or "bilateral")
    long = [a for a in emg_map.aliases if " " in a and text.startswith(a + " ")]
    if long:  # "BICEPS FEMORIS CAPUT LONGU": the longest multi-word name it starts with
        return Channel(str(label), emg_map.aliases[max(long, key=len)], side or "bilateral")
    if side is None and len(rest) == 1 and rest[0][:1] in ("L", "R"):  # glued: "LGMED"
        m = emg_map.aliases.get(rest[0][1:])
        if m is not None and len(rest[0]) > 2:
            return Channel(str(label), m, "left" if rest[0][0] == "L" else "right")
    return None


def looks_like_emg(label: str, /) -> bool:
    """True if a label says EMG (``"EMG1.v"``, ``"Sensor 12.EMG12"``) whatever its muscle."""
    return "EMG" in _norm(label).replace(" ", "")
