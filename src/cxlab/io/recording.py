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

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "ARROW_TABLES",
    "PLATE_CHANNEL_COLUMNS",
    "PLATE_LOADS",
    "REBUILD_RTOL",
    "Event",
    "ModelOutputs",
    "Platform",
    "Recording",
    "Rotations",
    "as_stored",
    "plate_channel_fits",
    "plate_channel_values",
    "split_subject_prefix",
    "strip_subject_prefixes",
]

#: The store's tables of one recording, in the order :meth:`Recording.take_arrow_tables`
#: yields them (and ingest validates them: a file failing two is reported at the first).
#: The longest (analogs) after the forces: the plates' arrays are gone when it is staged.
ARROW_TABLES = (
    "markers",
    "forces",
    "analogs",
    "plates",
    "plate_channels",
    "events",
    "model_outputs",
    "rotations",
)

#: What a model output is (C3D POINT:ANGLES, FORCES, MOMENTS, POWERS, SCALARS).
ModelKind = Literal["angle", "force", "moment", "power", "scalar"]


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
    channels : tuple of int
        0-based columns of :attr:`Recording.analogs` the plate was computed from (C3D
        FORCE_PLATFORM:CHANNEL minus one), in the plate's channel order; empty when its values
        do not come from the recording's analogs. Ingest stores these raw channels once, in
        ``forces`` (see :func:`plate_channel_values`).
    """

    force: np.ndarray
    moment: np.ndarray
    cop: np.ndarray
    tz: np.ndarray
    corners: np.ndarray
    origin: np.ndarray
    type: int
    rate_hz: float
    channels: tuple[int, ...] = ()


@dataclass
class Event:
    """A labelled instant: ``label``, ``context`` (Left/Right/General) and ``time_s``."""

    label: str
    context: str
    time_s: float


@dataclass(frozen=True)
class ModelOutputs:
    """Outputs of a biomechanical model stored beside the markers (Plug-in Gait and others).

    Attributes
    ----------
    values : ndarray, shape (n_frames, n_outputs, 3)
        Values in ``units``; NaN where the model gave none (e.g. outside stance).
    labels : list of str
        Output names (``LKneeAngles``), subject prefix already split off at ingest.
    kinds : list of {"angle", "force", "moment", "power", "scalar"}
    units : list of str
        Per output: ``deg``; ``N`` or ``N/kg``; ``N.m`` or ``N.m/kg``; ``W`` or ``W/kg``;
        ``%BW`` (percent body weight); scalars as stated by the file.
    rate_hz : float
        Frame rate (the point rate), Hz.
    """

    values: np.ndarray
    labels: list[str]
    kinds: list[ModelKind]
    units: list[str]
    rate_hz: float

    def to_frame(self, recording_id: str, /) -> pd.DataFrame:
        """The long ``model_outputs`` rows (recording_id, frame, time_s, label, kind, x, y, z,
        unit), in the store's order (label, frame)."""
        n_frames, n = self.values.shape[:2]
        order = _label_order(self.labels)
        frame = np.tile(np.arange(n_frames, dtype=np.int32), n)
        vals = self.values[:, order].transpose(1, 0, 2).reshape(-1, 3)

        def rep(xs: list[str]) -> np.ndarray:
            return np.repeat(np.asarray(xs, dtype=object)[order], n_frames)

        return pd.DataFrame(
            {
                "recording_id": recording_id,
                "frame": frame,
                "time_s": frame / (self.rate_hz or np.nan),
                "label": rep(self.labels),
                "kind": rep(list(self.kinds)),
                "x": vals[:, 0],
                "y": vals[:, 1],
                "z": vals[:, 2],
                "unit": rep(self.units),
            }
        )


@dataclass(frozen=True)
class Rotations:
    """Segment poses (C3D ROTATION group, e.g. Theia markerless): a rotation and a position.

    Attributes
    ----------
    matrices : ndarray, shape (n_frames, n_segments, 3, 3)
        Rotation from the segment frame to the lab frame (columns = segment axes in lab
        coordinates), dimensionless; NaN where the pose is invalid.
    positions : ndarray, shape (n_frames, n_segments, 3)
        Segment origin in the lab frame, m; NaN where invalid.
    segments : list of str
        Segment names (ROTATION:LABELS without a ``_4X4`` suffix).
    rate_hz : float
        Pose rate, Hz.
    """

    matrices: np.ndarray
    positions: np.ndarray
    segments: list[str]
    rate_hz: float

    def to_frame(self, recording_id: str, /) -> pd.DataFrame:
        """The long ``rotations`` rows (recording_id, frame, time_s, segment, r11..r33, x, y, z),
        in the store's order (segment, frame)."""
        n_frames, n = self.matrices.shape[:2]
        order = _label_order(self.segments)
        frame = np.tile(np.arange(n_frames, dtype=np.int32), n)
        r = self.matrices[:, order].transpose(1, 0, 2, 3).reshape(-1, 9)
        pos = self.positions[:, order].transpose(1, 0, 2).reshape(-1, 3)
        cols = {f"r{i + 1}{j + 1}": r[:, 3 * i + j] for i in range(3) for j in range(3)}
        return pd.DataFrame(
            {
                "recording_id": recording_id,
                "frame": frame,
                "time_s": frame / (self.rate_hz or np.nan),
                "segment": np.repeat(np.asarray(self.segments, dtype=object)[order], n_frames),
                **cols,
                "x": pos[:, 0],
                "y": pos[:, 1],
                "z": pos[:, 2],
            }
        )


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
    model_outputs : ModelOutputs, optional
        Model outputs the file stores as points (not markers), e.g. Plug-in Gait angles.
    rotations : Rotations, optional
        Segment poses (C3D ROTATION group).
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
    model_outputs: ModelOutputs | None = None
    rotations: Rotations | None = None

    @property
    def n_frames(self) -> int:
        return int(self.markers.shape[0])

    @property
    def first_frame(self) -> int:
        return int(self.meta.get("first_frame", 1))

    def to_tables(self, recording_id: str) -> dict[str, pd.DataFrame]:
        """The store's long tables for this recording.

        Each sample is stored once: a raw plate channel (an analog channel a plate was
        computed from, :attr:`Platform.channels`) that an affine map of the plate's stored
        ``forces`` rebuilds within :data:`REBUILD_RTOL` of its largest magnitude is left out
        of ``analogs`` and described by a ``plate_channels`` row (the map's coefficients and
        the error measured on this recording); :func:`plate_channel_values` rebuilds it.
        Channels no such map reproduces (TYPE-3 Kistler plates carry 8 channels for 6 loads,
        non-finite samples, ...) stay in ``analogs``.

        Parameters
        ----------
        recording_id : str
            16 hex characters identifying the source file.

        Returns
        -------
        dict of str to DataFrame
            ``markers``, ``analogs``, ``forces``, ``plates``, ``plate_channels``,
            ``events``, ``model_outputs`` and ``rotations`` frames with the columns declared
            in :mod:`cxlab.schemas` (empty frames for absent parts). Built without Python
            loops over frames or samples.
        """
        empty = ModelOutputs(np.zeros((0, 0, 3)), [], [], [], 0.0)
        no_rot = Rotations(np.zeros((0, 0, 3, 3)), np.zeros((0, 0, 3)), [], 0.0)
        fits, in_forces = plate_channel_fits(self)
        return {
            "model_outputs": (self.model_outputs or empty).to_frame(recording_id),
            "rotations": (self.rotations or no_rot).to_frame(recording_id),
            "markers": _frame(self._markers_long(recording_id)),
            "analogs": _frame(self._analogs_long(recording_id, keep=~in_forces)),
            "forces": _frame(self._forces_long(recording_id)),
            "plates": _frame(self._plates_long(recording_id)),
            "plate_channels": fits.assign(recording_id=recording_id)[list(PLATE_CHANNEL_COLUMNS)],
            "events": _frame(self._events_long(recording_id)),
        }

    def to_arrow(self, recording_id: str) -> dict[str, pa.Table]:
        """The tables of :meth:`to_tables` as Arrow tables, the long signal tables built
        straight from the NumPy arrays (labels dictionary-encoded, no per-row Python
        strings, no pandas copy); :func:`cxlab.schemas.validate` takes them as they are.

        Parameters
        ----------
        recording_id : str
            16 hex characters identifying the source file.

        Returns
        -------
        dict of str to pyarrow.Table
            The same tables, columns and rows as :meth:`to_tables`, in the order of
            :data:`ARROW_TABLES`. This recording is not modified (the tables are taken from
            a shallow copy, :meth:`take_arrow_tables`).
        """
        return dict(replace(self).take_arrow_tables(recording_id))

    def take_arrow_tables(self, recording_id: str) -> Iterator[tuple[str, pa.Table]]:
        """The tables of :meth:`to_arrow`, one at a time, each array taken out of this
        recording as soon as its table is built, so that only one long table and the
        arrays not yet converted are in memory (the ingest worker, which owns the recording
        it read, validates and stages each table before asking for the next).

        The raw plate channels' fits (:func:`plate_channel_fits`, which need the analogs and
        the plates' loads) and the ``plates`` rows are computed by this call; each long table
        when it is asked for.

        Parameters
        ----------
        recording_id : str
            16 hex characters identifying the source file.

        Returns
        -------
        iterator of (str, pyarrow.Table)
            ``(name, table)`` in the order of :data:`ARROW_TABLES`. Once a table is
            yielded, this recording's arrays it came from are empty (markers and residuals
            of zero frames, analogs of zero samples, no platforms, events, model outputs or
            rotations): use :meth:`to_arrow` to keep the recording whole.
        """
        fits, in_forces = _channel_fits(self)
        plates = _table(self._plates_long(recording_id))
        plate_channels = _table(
            {
                "recording_id": _constant(recording_id, len(fits["plate"])),
                **{
                    c: pa.array(v, pa.string()) if isinstance(v, list) else v
                    for c, v in fits.items()
                },
            }
        )
        return self._take_tables(recording_id, plates, plate_channels, keep=~in_forces)

    def _take_tables(
        self, rid: str, plates: pa.Table, plate_channels: pa.Table, *, keep: np.ndarray
    ) -> Iterator[tuple[str, pa.Table]]:
        # each table is yielded without a local name, so the caller's drop frees it
        yield "markers", self._took(_table(self._markers_long(rid)), "markers", "residuals")
        yield "forces", self._took(_table(self._forces_long(rid)), "platforms")
        yield "analogs", self._took(_table(self._analogs_long(rid, keep=keep)), "analogs")
        yield "plates", plates
        del plates
        yield "plate_channels", plate_channels
        del plate_channels
        yield "events", self._took(_table(self._events_long(rid)), "events")
        for name in ("model_outputs", "rotations"):
            part = getattr(self, name)
            frame = part.to_frame(rid) if part is not None else None
            del part
            setattr(self, name, None)
            yield (
                name,
                (
                    pa.Table.from_pandas(frame, preserve_index=False)
                    if frame is not None
                    else pa.table({"recording_id": pa.array([], pa.string())})  # none: no rows
                ),
            )
            del frame

    def _took(self, table: pa.Table, /, *names: str) -> pa.Table:
        """``table``, after emptying this recording's attributes ``names`` (new empty arrays
        of the same trailing shape and type, never views that would keep the data)."""
        for name in names:
            old = getattr(self, name)
            if isinstance(old, np.ndarray):
                setattr(self, name, np.empty((0, *old.shape[1:]), dtype=old.dtype))
            else:
                setattr(self, name, [])
        return table

    def _markers_long(self, rid: str) -> dict[str, Any]:
        n_frames, n_markers = self.markers.shape[:2]
        # Rows come out in the store's sort order (marker label, frame), so the
        # store need not sort them again.
        order = _label_order(self.marker_labels)
        frame = np.tile(np.arange(n_frames, dtype=np.int32), n_markers)
        # float32, as the store keeps samples (cxlab.schemas.F32), cast as each marker is
        # copied into its rows (no float64 copy of every marker first); one array per
        # coordinate, so Arrow takes each without another copy
        pts = np.empty((3, n_markers, n_frames), dtype=np.float32)
        res = np.empty((n_markers, n_frames), dtype=self.residuals.dtype)
        for k, j in enumerate(order):  # markers (tens), each a block of frames
            pts[:, k] = self.markers[:, j].T
            res[k] = self.residuals[:, j]
        rate = self.point_rate_hz or np.nan
        return {
            "recording_id": _constant(rid, frame.size),
            "frame": frame,
            "time_s": frame / rate,
            "marker": _repeated([self.marker_labels[i] for i in order], n_frames),
            "x": pts[0].reshape(-1),
            "y": pts[1].reshape(-1),
            "z": pts[2].reshape(-1),
            "residual": res.reshape(-1),
        }

    def _analogs_long(self, rid: str, *, keep: np.ndarray) -> dict[str, Any]:
        n_samples = self.analogs.shape[0]
        order = _label_order(self.analog_labels)  # the store's order: channel, sample
        order = order[keep[order]]
        n_ch = order.size
        sample = np.tile(np.arange(n_samples, dtype=np.int64), n_ch)
        rate = self.analog_rate_hz or np.nan
        units = [*self.analog_units, *[""] * len(self.analog_labels)]
        value = np.empty((n_ch, n_samples), dtype=self.analogs.dtype)
        for k, j in enumerate(order):  # channels, each a block of samples: one copy
            value[k] = self.analogs[:, j]
        return {
            "recording_id": _constant(rid, sample.size),
            "sample": sample,
            "time_s": sample / rate,
            "channel": _repeated([self.analog_labels[i] for i in order], n_samples),
            "value": value.reshape(-1),
            "unit": _repeated([units[i] for i in order], n_samples),
        }

    def _plates_long(self, rid: str) -> dict[str, Any]:
        """One row per plate and corner: corners (lab frame, m), origin, type."""
        n = len(self.platforms)
        corners = np.full((n, 4, 3), np.nan)
        origin = np.full((n, 3), np.nan)
        for i, p in enumerate(self.platforms):
            c = np.asarray(p.corners, dtype=float)
            if c.shape == (4, 3):
                corners[i] = c
            o = np.asarray(p.origin, dtype=float).reshape(-1)
            if o.shape == (3,):
                origin[i] = o
        types = np.array([int(p.type) for p in self.platforms], dtype=np.int32)
        flat = corners.reshape(-1, 3)
        return {
            "recording_id": _constant(rid, 4 * n),
            "plate": np.repeat(np.arange(1, n + 1, dtype=np.int32), 4),
            "corner": np.tile(np.arange(1, 5, dtype=np.int32), n),
            "x": flat[:, 0],
            "y": flat[:, 1],
            "z": flat[:, 2],
            "origin_x": np.repeat(origin[:, 0], 4),
            "origin_y": np.repeat(origin[:, 1], 4),
            "origin_z": np.repeat(origin[:, 2], 4),
            "plate_type": np.repeat(types, 4),
        }

    def _events_long(self, rid: str) -> dict[str, Any]:
        return {
            "recording_id": _constant(rid, len(self.events)),
            "label": pa.array([e.label for e in self.events], pa.string()),
            "context": pa.array([e.context for e in self.events], pa.string()),
            "time_s": np.array([e.time_s for e in self.events], dtype=float),
        }

    def _forces_long(self, rid: str) -> dict[str, Any]:
        cols = ["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"]
        plates = self.platforms
        sizes = np.array([p.force.shape[0] for p in plates], dtype=np.int64)
        total = int(sizes.sum())
        # one float32 buffer (the store's sample precision), a row per column (Arrow takes
        # each without a copy), filled plate by plate
        data = np.empty((len(cols), total), dtype=np.float32)
        at = 0
        for p, n in zip(plates, sizes, strict=True):
            block = data[:, at : at + n]
            block[0:3], block[3:6], block[6:9], block[9] = p.force.T, p.moment.T, p.cop.T, p.tz
            at += n
        starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
        sample = np.arange(total, dtype=np.int64) - starts
        rates = np.repeat(np.array([p.rate_hz for p in plates], dtype=float), sizes)
        return {
            "recording_id": _constant(rid, total),
            "plate": np.repeat(np.arange(1, len(plates) + 1, dtype=np.int32), sizes),
            "sample": sample,
            "time_s": sample / rates,
            **{c: data[j] for j, c in enumerate(cols)},
        }


#: Largest error, as a fraction of the channel's largest magnitude, within which a raw plate
#: channel must be rebuilt from the stored ``forces`` to be stored only there. ``forces`` are
#: float32 (6e-8 relative per load; a plate-frame moment rebuilt from lab moments about a
#: distant origin loses a few more bits: 1.6e-6 measured on c3dorg_Eb015pi.c3d). A 16-bit
#: channel spans at most 65,536 counts, so 5e-6 of its magnitude is under 1/3 count: rounding
#: the rebuilt value gives back the file's integers exactly.
REBUILD_RTOL = 5e-6

#: The six ``forces`` columns a raw plate channel is an affine function of.
PLATE_LOADS = ("fx", "fy", "fz", "mx", "my", "mz")

PLATE_CHANNEL_COLUMNS = (
    "recording_id",
    "plate",
    "channel",
    "unit",
    *(f"c_{c}" for c in PLATE_LOADS),
    "offset",
    "max_error",
)


def plate_channel_fits(rec: Recording, /) -> tuple[pd.DataFrame, np.ndarray]:
    """Which raw plate channels ``forces`` rebuilds exactly, and how.

    For each plate computed from analog channels (:attr:`Platform.channels`), the channels
    are fitted, by least squares, as ``value = c_fx·fx + c_fy·fy + c_fz·fz
    + c_mx·mx + c_my·my + c_mz·mz + offset`` of the plate's lab-frame reaction (N, N·m).
    The readers' chain from channels to ``forces`` (CAL_MATRIX, moment unit, transducer
    offset, ZERO baseline, reaction sign, plate-to-lab rotation, moment transfer to the lab
    origin, Z-up rotation) is affine for TYPE 2 and 4 plates; the fit is made on the loads
    as stored (float32), so its error is that of the rebuild from the store, and a channel
    is accepted only if that measured error, over every sample, is within
    :data:`REBUILD_RTOL` of its largest magnitude, so nothing is dropped that the
    coefficients do not give back. The first fit uses every k-th sample (about 512 of
    them: an exact map is found from any samples spanning the loads); where a channel
    misses, the fit over every sample decides.

    Parameters
    ----------
    rec : Recording
        Not modified.

    Returns
    -------
    fits : DataFrame
        The ``plate_channels`` columns but ``recording_id``: ``plate`` (1-based),
        ``channel`` and ``unit`` (the analog's label and unit), ``c_fx`` ... ``c_mz``
        (channel unit per N or per N·m), ``offset`` (channel unit) and ``max_error`` (the
        largest absolute difference rebuilt - raw over the recording, channel unit); one
        row per accepted channel, in plate then channel-label order.
    in_forces : ndarray of bool, shape (n_channels,)
        True for the analog columns described by ``fits``.
    """
    cols, in_forces = _channel_fits(rec)
    frame = pd.DataFrame(
        {c: pd.Series(v, dtype=object) if c in ("channel", "unit") else v for c, v in cols.items()}
    )
    return frame, in_forces


def _channel_fits(rec: Recording, /) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`plate_channel_fits` as NumPy columns and label lists (no pandas: ingest builds
    the Arrow table from them)."""
    n, n_ch = rec.analogs.shape if rec.analogs.ndim == 2 else (0, 0)
    in_forces = np.zeros(n_ch, dtype=bool)
    parts: list[tuple[int, list[str], list[str], np.ndarray, np.ndarray]] = []
    for i, p in enumerate(rec.platforms, start=1):
        idx = np.unique(np.asarray(p.channels, dtype=np.intp))
        if not idx.size or idx.min() < 0 or idx.max() >= n_ch or p.force.shape[0] != n:
            continue
        idx = idx[~in_forces[idx]]  # a channel two plates name is described once
        if not idx.size or n < len(PLATE_LOADS) + 1:
            continue
        y = rec.analogs[:, idx].astype(np.float64, copy=False)
        x = np.empty((n, len(PLATE_LOADS) + 1))
        # the loads as the store keeps them (float32), so the fit and its measured error
        # are those of the rebuild from stored rows (plate_channel_values)
        x[:, 0:3], x[:, 3:6], x[:, 6] = _as_stored(p.force), _as_stored(p.moment), 1.0
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            continue
        limit = REBUILD_RTOL * np.abs(y).max(axis=0)
        # fitted on every k-th sample (at most ~2 x _FIT_ROWS), checked on every sample:
        # an exact affine map is found from any samples that span the loads; one
        # refinement step gives the round-off four give. Where a channel misses, the
        # least-squares fit over every sample with four steps decides (a TYPE-3 plate's
        # 8 channels, cross-talk, a plate loaded only between the subsample's rows).
        step = max(1, n // _FIT_ROWS)
        coef, err = _checked_fit(x[:, :6], y, steps=1, every=step)
        ok = err <= limit
        if not ok.all():
            coef, err = _checked_fit(x[:, :6], y, steps=4)
            ok = err <= limit
        if not ok.any():
            continue
        in_forces[idx[ok]] = True
        labels = [str(rec.analog_labels[j]) for j in idx[ok]]
        units = [str(rec.analog_units[j]) if j < len(rec.analog_units) else "" for j in idx[ok]]
        order = _label_order(labels)
        parts.append(
            (
                i,
                [labels[k] for k in order],
                [units[k] for k in order],
                coef[:, ok][:, order],
                err[ok][order],
            )
        )
    coefs = np.hstack([c for *_, c, _ in parts]) if parts else np.zeros((7, 0))
    cols: dict[str, Any] = {
        "plate": np.concatenate(
            [np.full(len(lab), i, dtype=np.int32) for i, lab, *_ in parts]
            or [np.zeros(0, np.int32)]
        ),
        "channel": [lab for _, labs, *_ in parts for lab in labs],
        "unit": [u for _, _, us, *_ in parts for u in us],
        **{f"c_{c}": coefs[k] for k, c in enumerate(PLATE_LOADS)},
        "offset": coefs[6],
        "max_error": np.concatenate([e for *_, e in parts] or [np.zeros(0)]),
    }
    return cols, in_forces


def _as_stored(values: np.ndarray, /) -> np.ndarray:
    """``values`` rounded to the store's sample precision (float32)."""
    return np.asarray(values).astype(np.float32)


def as_stored(rec: Recording, /) -> Recording:
    """A copy of ``rec`` with its samples at the store's precision: marker positions and
    plate loads (force, moment, CoP, free moment) rounded to float32 and widened back to
    float64, as ``Store.table("markers")`` / ``("forces")`` return them.

    What a feature computed from the store is computed from; a test comparing the pipeline
    with a library call on the file uses it for the library's input.
    """
    plates = [
        replace(
            p, force=_round(p.force), moment=_round(p.moment), cop=_round(p.cop), tz=_round(p.tz)
        )
        for p in rec.platforms
    ]
    return replace(rec, markers=_round(rec.markers), platforms=plates)


def _round(values: np.ndarray, /) -> np.ndarray:
    return _as_stored(values).astype(np.float64)


#: Samples a plate's channels are first fitted on (every k-th of a recording; the check is
#: on every sample): the map is exact up to the float32 loads, so more rows add time only.
_FIT_ROWS = 512


def _checked_fit(
    loads: np.ndarray, y: np.ndarray, *, steps: int, every: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_affine_fit` with ``steps`` refinements on every ``every``-th sample, and each
    channel's largest error of the rebuild (:func:`_affine`) over every sample, in the
    channel's units."""
    if every > 1:
        coef = _affine_fit(
            np.ascontiguousarray(loads[::every]), np.ascontiguousarray(y[::every]), steps=steps
        )
    else:
        coef = _affine_fit(loads, y, steps=steps)
    miss = _affine_rows(loads, coef)  # (k, n): the rebuild, a channel a row
    miss -= y.T
    return coef, np.abs(miss, out=miss).max(axis=1)


def _affine_fit(loads: np.ndarray, y: np.ndarray, *, steps: int = 4) -> np.ndarray:
    """Least-squares ``coef`` (7, k) with ``y ≈ loads @ coef[:6] + coef[6]``.

    Normal equations of the centred, unit-scaled loads (a 6 x 6 system: no BLAS thread
    pool, which costs more than the fit on a busy machine), then ``steps`` steps of
    iterative refinement on the residual (one brings the result to round-off for the
    well-conditioned systems a plate gives; :func:`_channel_fits` takes four where a
    channel still misses); a rank-deficient one (a load identically zero) gets the
    minimum-norm solution. Accuracy is not assumed: the caller measures it.
    """
    mx, my = loads.mean(axis=0), y.mean(axis=0)
    xc = loads - mx
    norm = np.sqrt(np.einsum("ij,ij->j", xc, xc))
    norm[norm == 0] = 1.0
    xc /= norm
    gram = np.einsum("ij,ik->jk", xc, xc)
    yc = y - my  # once, not once per step: one (n, k) temporary fewer at a time
    b = np.linalg.lstsq(gram, np.einsum("ij,ik->jk", xc, yc), rcond=None)[0]
    for _ in range(steps):  # refinement: near-collinear loads (fy, fz, mz all ~ load) need it
        resid = np.einsum("ij,jk->ik", xc, b)
        np.subtract(yc, resid, out=resid)
        b += np.linalg.lstsq(gram, np.einsum("ij,ik->jk", xc, resid), rcond=None)[0]
        del resid
    b /= norm[:, None]
    return np.vstack([b, my - mx @ b])


def _affine(loads: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``loads @ coef[:6] + coef[6]``, shape (n, k), term by term in one fixed order (the
    same in the ingest check and in :func:`plate_channel_values`: :func:`_affine_rows`)."""
    return _affine_rows(loads, coef).T


def _affine_rows(loads: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """:func:`_affine` as (k, n): each channel ``((l0·c0 + l1·c1) + ...) + c6`` over
    contiguous rows of the loads (each sample the same IEEE operations in the same order,
    so the values do not depend on layout; no BLAS, whose sums do)."""
    cols = np.ascontiguousarray(loads.T, dtype=np.float64)  # (6, n); float64 on NumPy 1.x too
    out = np.empty((coef.shape[1], cols.shape[1]))
    term = np.empty(cols.shape[1])
    for c in range(coef.shape[1]):  # a channel at a time: vectors over samples
        row = out[c]
        np.multiply(cols[0], coef[0, c], out=row)
        for j in range(1, 6):
            np.multiply(cols[j], coef[j, c], out=term)
            row += term
        row += coef[6, c]
    return out


def plate_channel_values(forces: pd.DataFrame, plate_channels: pd.DataFrame, /) -> pd.DataFrame:
    """Rebuild raw plate channels from stored ``forces`` rows and their ``plate_channels``.

    Parameters
    ----------
    forces : DataFrame
        ``forces`` rows (at least ``recording_id``, ``plate``, ``sample``, ``time_s`` and
        ``fx`` ... ``mz``), e.g. ``store.table("forces", filters=[("recording_id", "==",
        rid)])``.
    plate_channels : DataFrame
        The matching ``plate_channels`` rows (``store.table("plate_channels")``).

    Returns
    -------
    DataFrame
        ``analogs`` rows (``recording_id``, ``sample``, ``time_s``, ``channel``, ``value``,
        ``unit``) for every described channel whose plate is in ``forces``, sorted as the
        ``analogs`` table (recording, channel, sample): concatenated with the stored
        ``analogs`` rows they give the file's calibrated analog channels, each within the
        row's ``max_error`` (and :data:`REBUILD_RTOL` of the channel's magnitude).
    """
    out = []
    f = forces.sort_values(["recording_id", "plate", "sample"], kind="stable")
    groups = {k: g for k, g in f.groupby(["recording_id", "plate"], sort=False)}
    for (rid, plate), chans in plate_channels.groupby(["recording_id", "plate"], sort=True):
        g = groups.get((rid, plate))
        if g is None:
            continue
        loads = g[list(PLATE_LOADS)].to_numpy(dtype=float)
        coef = chans[[*(f"c_{c}" for c in PLATE_LOADS), "offset"]].to_numpy(dtype=float).T
        values = _affine(loads, coef)  # (n_samples, n_channels)
        n, k = values.shape
        out.append(
            pd.DataFrame(
                {
                    "recording_id": rid,
                    "sample": np.tile(g["sample"].to_numpy(), k),
                    "time_s": np.tile(g["time_s"].to_numpy(), k),
                    "channel": np.repeat(chans["channel"].to_numpy(dtype=object), n),
                    "value": values.T.reshape(-1),
                    "unit": np.repeat(chans["unit"].to_numpy(dtype=object), n),
                }
            )
        )
    cols = ["recording_id", "sample", "time_s", "channel", "value", "unit"]
    if not out:
        return pd.DataFrame(
            {c: pd.Series(dtype=float if c in ("time_s", "value") else object) for c in cols}
        )
    df = pd.concat(out, ignore_index=True)
    keys = df["channel"].map(lambda s: str(s).encode("utf-8"))
    order = np.lexsort((df["sample"].to_numpy(), keys.to_numpy(), df["recording_id"].to_numpy()))
    return df.iloc[order].reset_index(drop=True)[cols]


def _constant(text: str, n: int, /) -> pa.DictionaryArray:
    """``n`` copies of ``text`` as a dictionary array (one string, ``n`` int8 zeros)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int8)), pa.array([str(text)], pa.string())
    )


def _repeated(labels: list[str], n: int, /) -> pa.DictionaryArray:
    """Each of ``labels`` repeated ``n`` times, in order, as a dictionary array (codes of
    the narrowest integer type that holds them: a byte a row for up to 127 labels)."""
    codes = np.repeat(np.arange(len(labels), dtype=_code_type(len(labels))), n)
    return pa.DictionaryArray.from_arrays(
        pa.array(codes), pa.array([None if v is None else str(v) for v in labels], pa.string())
    )


def _code_type(n_labels: int, /) -> type[np.signedinteger]:
    for t in (np.int8, np.int16):
        if n_labels <= np.iinfo(t).max + 1:
            return t
    return np.int32


def _table(columns: dict[str, Any], /) -> pa.Table:
    """A column dict as an Arrow table; NaN becomes null, as pandas' conversion makes it
    (so both paths store the same bytes)."""
    return pa.table(
        {
            k: pa.array(v, from_pandas=True) if isinstance(v, np.ndarray) else v
            for k, v in columns.items()
        }
    )


def _frame(columns: dict[str, Any], /) -> pd.DataFrame:
    """A column dict of :meth:`Recording._markers_long` & co. as the pandas frame
    :meth:`Recording.to_tables` returns (label columns as object strings)."""
    return pd.DataFrame(
        {
            k: v.to_numpy(zero_copy_only=False).astype(object) if isinstance(v, pa.Array) else v
            for k, v in columns.items()
        }
    )


def _label_order(labels: list[str]) -> np.ndarray:
    """Stable order of ``labels`` by their UTF-8 bytes (how Arrow sorts strings)."""
    keys = np.array([str(lab).encode("utf-8") for lab in labels], dtype=object)
    return np.argsort(keys, kind="stable").astype(np.intp)


_PREFIX = re.compile(r"^([^:]+):(.+)$")


def split_subject_prefix(label: str, /) -> tuple[str, str]:
    """``"Derrick:LASI"`` -> ``("Derrick", "LASI")``; a label without prefix -> ``("", label)``.

    Vicon Nexus (and TRC files exported from it) prefix every point of a subject with the
    subject's name and a colon (SUBJECTS:LABEL_PREFIXES); the prefix is a subject label.
    """
    m = _PREFIX.match(str(label).strip())
    return (m.group(1).strip(), m.group(2).strip()) if m else ("", str(label).strip())


def _unprefixed(labels: list[str], pseudonym: Callable[[str], str]) -> tuple[list[str], list[str]]:
    parts = [split_subject_prefix(lab) for lab in labels]
    bare = [b for _, b in parts]
    counts: dict[str, int] = {}
    for b in bare:
        counts[b] = counts.get(b, 0) + 1
    out = [f"{pseudonym(p)}:{b}" if p and counts[b] > 1 else b for p, b in parts]
    return out, [p for p, _ in parts if p]


def strip_subject_prefixes(
    rec: Recording, /, *, pseudonym: Callable[[str], str]
) -> tuple[Recording, list[str]]:
    """Split the subject prefixes off marker and model-output labels.

    A label keeps no prefix when its bare name is unique in the recording (``Derrick:LASI``
    -> ``LASI``, so features looking for ``LASI`` match); where two subjects of one file
    share a bare name, the prefix is replaced by ``pseudonym(prefix)``
    (``3f2a...:LASI``), so the raw subject label is never kept either way.

    Parameters
    ----------
    rec : Recording
        Not modified.
    pseudonym : callable
        Raw subject label -> pseudonym (:func:`cxlab.pseudo.pseudonymise`).

    Returns
    -------
    recording : Recording
        A copy with the new labels.
    subjects : list of str
        The distinct raw subject labels found, in order of first appearance (for the
        caller to pseudonymise; never store them).
    """
    markers, found = _unprefixed(rec.marker_labels, pseudonym)
    out = replace(rec, marker_labels=markers, meta=dict(rec.meta), warnings=list(rec.warnings))
    if rec.model_outputs is not None:
        labels, more = _unprefixed(rec.model_outputs.labels, pseudonym)
        out = replace(out, model_outputs=replace(rec.model_outputs, labels=labels))
        found += more
    return out, list(dict.fromkeys(found))
