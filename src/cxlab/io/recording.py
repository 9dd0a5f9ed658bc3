"""The one in-memory model every reader returns: :class:`Recording`.

All quantities are SI and in the lab frame: markers in metres, forces in N,
moments in N·m, centre of pressure in metres, rates in Hz.

Force-plate sign convention
---------------------------
``Platform.force`` is the *ground reaction force acting on the body*, in the
lab frame, with the vertical component positive up for a person standing on
a level plate (so ``fz ≈ +m·g`` in quiet standing). C3D files store the force
the body exerts *on the plate* in the plate frame (vertical negative down on
most plates); readers convert. ``Platform.moment`` is the moment of that
reaction force about the lab origin; ``Platform.cop`` is the centre of
pressure on the plate surface (NaN where |Fz| is below the reader's
threshold); ``Platform.tz`` is the free moment about the vertical axis at the
CoP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Event", "Platform", "Recording"]


@dataclass
class Platform:
    """One force platform, resampled to the analog rate.

    Attributes
    ----------
    force : ndarray, shape (n_samples, 3)
        Ground reaction force on the body, lab frame, N.
    moment : ndarray, shape (n_samples, 3)
        Moment of the reaction about the lab origin, N·m.
    cop : ndarray, shape (n_samples, 3)
        Centre of pressure, lab frame, m; NaN where |Fz| < threshold.
    tz : ndarray, shape (n_samples,)
        Free moment about the vertical axis, N·m; NaN where CoP is NaN.
    corners : ndarray, shape (4, 3)
        Plate corners in the lab frame, m.
    origin : ndarray, shape (3,)
        FORCE_PLATFORM:ORIGIN as stored (plate frame), m.
    type : int
        C3D plate TYPE (1-4), 0 when not from a C3D file.
    rate_hz : float
        Sample rate, Hz.
    """

    force: np.ndarray
    moment: np.ndarray
    cop: np.ndarray
    tz: np.ndarray
    corners: np.ndarray
    origin: np.ndarray
    type: int
    rate_hz: float


@dataclass
class Event:
    """A labelled instant: ``label``, ``context`` (Left/Right/General) and ``time_s``."""

    label: str
    context: str
    time_s: float


@dataclass
class Recording:
    """A motion-capture and/or force-plate recording in SI units, lab frame.

    Attributes
    ----------
    markers : ndarray, shape (n_frames, n_markers, 3)
        Marker positions, m; NaN where a point is invalid.
    marker_labels : list of str
    residuals : ndarray, shape (n_frames, n_markers)
        Reconstruction residual, m; NaN where invalid.
    point_rate_hz : float
    analogs : ndarray, shape (n_samples, n_channels)
        Calibrated analog values (scale, offset and gen_scale applied).
    analog_labels, analog_units : list of str
    analog_rate_hz : float
    platforms : list of Platform
    events : list of Event
    meta : dict
        ``manufacturer``, ``software``, ``first_frame``, ``units`` (units found
        in the file), ``parameters`` (groups as nested dicts), ``source``
        (path), ``format``, ``engine``; optionally ``up_axis`` (the file's
        original vertical axis, ``"x"``/``"y"``/``"z"``), ``body_mass_kg`` (a
        body mass stated by the file, kg) and ``recorded_at`` (ISO 8601 date or
        date-time stated by the file).
    warnings : list of str
        Quality findings on this recording that no format rule catches (a plate
        whose stance force points down, CoP off the plate, a marker moving
        faster than a person can, a channel pinned at a rail...), one readable
        sentence each. Readers append to it; ingest stores it with the
        recording, so a doubtful number is never silent.
    """

    markers: np.ndarray
    marker_labels: list[str]
    residuals: np.ndarray
    point_rate_hz: float
    analogs: np.ndarray
    analog_labels: list[str]
    analog_units: list[str]
    analog_rate_hz: float
    platforms: list[Platform] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return int(self.markers.shape[0])

    @property
    def first_frame(self) -> int:
        return int(self.meta.get("first_frame", 1))

    def to_tables(self, recording_id: str) -> dict[str, pd.DataFrame]:
        """The store's long tables for this recording.

        Parameters
        ----------
        recording_id : str
            16 hex characters identifying the source file.

        Returns
        -------
        dict of str to DataFrame
            ``markers``, ``analogs``, ``forces`` and ``events`` frames with the
            columns declared in :mod:`cxlab.schemas` (empty frames for absent
            parts). Built without Python loops over frames or samples.
        """
        return {
            "markers": self._markers_long(recording_id),
            "analogs": self._analogs_long(recording_id),
            "forces": self._forces_long(recording_id),
            "events": pd.DataFrame(
                {
                    "recording_id": recording_id,
                    "label": [e.label for e in self.events],
                    "context": [e.context for e in self.events],
                    "time_s": np.array([e.time_s for e in self.events], dtype=float),
                }
            ),
        }

    def _markers_long(self, rid: str) -> pd.DataFrame:
        n_frames, n_markers = self.markers.shape[:2]
        # Rows come out in the store's sort order (marker label, frame), so the
        # store need not sort them again.
        order = _label_order(self.marker_labels)
        frame = np.tile(np.arange(n_frames, dtype=np.int32), n_markers)
        pts = self.markers[:, order].transpose(1, 0, 2).reshape(-1, 3)
        res = self.residuals[:, order].T.reshape(-1)
        labels = np.asarray(self.marker_labels, dtype=object)[order]
        rate = self.point_rate_hz or np.nan
        return pd.DataFrame(
            {
                "recording_id": rid,
                "frame": frame,
                "time_s": frame / rate,
                "marker": np.repeat(labels, n_frames),
                "x": pts[:, 0],
                "y": pts[:, 1],
                "z": pts[:, 2],
                "residual": res,
            }
        )

    def _analogs_long(self, rid: str) -> pd.DataFrame:
        n_samples, n_ch = self.analogs.shape
        order = _label_order(self.analog_labels)  # the store's order: channel, sample
        sample = np.tile(np.arange(n_samples, dtype=np.int64), n_ch)
        rate = self.analog_rate_hz or np.nan
        return pd.DataFrame(
            {
                "recording_id": rid,
                "sample": sample,
                "time_s": sample / rate,
                "channel": np.repeat(np.asarray(self.analog_labels, dtype=object)[order],
                                     n_samples),
                "value": self.analogs[:, order].T.reshape(-1),
                "unit": np.repeat(np.asarray(self.analog_units, dtype=object)[order], n_samples),
            }
        )

    def _forces_long(self, rid: str) -> pd.DataFrame:
        cols = ["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"]
        frames = []
        for i, p in enumerate(self.platforms, start=1):
            n = p.force.shape[0]
            sample = np.arange(n, dtype=np.int64)
            data = np.column_stack([p.force, p.moment, p.cop, p.tz])
            df = pd.DataFrame(data, columns=cols)
            df.insert(0, "time_s", sample / p.rate_hz)
            df.insert(0, "sample", sample)
            df.insert(0, "plate", np.int32(i))
            df.insert(0, "recording_id", rid)
            frames.append(df)
        if not frames:
            return pd.DataFrame(
                {"recording_id": pd.Series(dtype=object), "plate": pd.Series(dtype=np.int32),
                 "sample": pd.Series(dtype=np.int64), "time_s": pd.Series(dtype=float),
                 **{c: pd.Series(dtype=float) for c in cols}}
            )
        return pd.concat(frames, ignore_index=True)


def _label_order(labels: list[str]) -> np.ndarray:
    """Stable order of ``labels`` by their UTF-8 bytes (how Arrow sorts strings)."""
    keys = np.array([str(lab).encode("utf-8") for lab in labels], dtype=object)
    return np.argsort(keys, kind="stable").astype(np.intp)
