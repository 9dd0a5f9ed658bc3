"""Surface EMG: envelope, onsets, normalisation, co-contraction, quality, and the task adapter.

Signal functions (:mod:`._signal`, :mod:`._onsets`, :mod:`._quality`) are pure and vectorised
over channels;
:mod:`._channels` maps channel labels to muscle and side from ``emg.toml``; :mod:`._task`
turns one recording's EMG into rows of the features table. Methods: ``docs/emg.md``.
"""

from cxlab.features.emg._channels import Channel, EmgMap, looks_like_emg, muscle_of, read_emg_map
from cxlab.features.emg._onsets import EmgOnsets, emg_onsets, onset_difference_ms
from cxlab.features.emg._quality import EmgQuality, emg_quality
from cxlab.features.emg._signal import (
    CoContraction,
    EmgReference,
    Normalised,
    co_contraction,
    emg_bandpass,
    emg_envelope,
    emg_normalise,
    emg_reference,
    emg_rms,
    tkeo,
)
from cxlab.features.emg._task import Phase, emg_channels, emg_features, task_phases

__all__ = [
    "Channel",
    "CoContraction",
    "EmgMap",
    "EmgOnsets",
    "EmgQuality",
    "EmgReference",
    "Normalised",
    "Phase",
    "co_contraction",
    "emg_bandpass",
    "emg_channels",
    "emg_envelope",
    "emg_features",
    "emg_normalise",
    "emg_onsets",
    "emg_quality",
    "emg_reference",
    "emg_rms",
    "looks_like_emg",
    "muscle_of",
    "onset_difference_ms",
    "read_emg_map",
    "task_phases",
    "tkeo",
]
