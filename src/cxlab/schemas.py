"""Every table's columns, types, units and value constraints, declared once.

The store validates each write against these declarations and reports *all*
failures at once (like pandera's ``lazy=True``). Units travel with the data: every
Parquet part the store writes carries each column's unit and description in its field
metadata (keys ``unit``, ``doc``) and, in the file's key-value metadata, the table name
(``cxlab_table``), :data:`SCHEMA_VERSION` (``cxlab_schema_version``) and the lab-frame
convention :data:`LAB_FRAME` (``cxlab_lab_frame``).

Unit strings follow SI: ``m``, ``s``, ``Hz``, ``N``, ``N.m``, ``deg``, ``kg``;
``1`` marks a dimensionless quantity and an empty string a non-quantity.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cxlab._check import SchemaError, message

SCHEMA_VERSION = "2"
"""Version of the table declarations, written into every part (``cxlab_schema_version``);
raised when a declared column changes type, unit or meaning."""

LAB_FRAME = (
    "right-handed, Z up, subject facing +X (anterior), +Y to the subject's left; "
    "positions in m, forces on the body in N, moments in N.m (docs/conventions.md)"
)
"""The lab-frame convention of every spatial column, written into every part
(``cxlab_lab_frame``)."""

__all__ = [
    "LAB_FRAME",
    "SCHEMA_VERSION",
    "TABLES",
    "Column",
    "TableSchema",
    "range_failures",
    "schema_frame",
    "schema_of",
    "validate",
]


@dataclass(frozen=True)
class Column:
    """One column: name, Arrow type, unit and constraints.

    Parameters
    ----------
    name : str
        Column name (snake_case; identifiers end in ``_id``).
    type : pyarrow.DataType
        Storage type.
    unit : str
        SI unit, ``"1"`` for dimensionless, ``""`` for non-quantities.
    nullable : bool
        Whether missing values are allowed. Floating columns may always hold
        NaN when ``nullable`` (e.g. an occluded marker).
    ge, le : float, optional
        Inclusive bounds on non-missing values, in ``unit``: the physically plausible
        range (a force of 1e308 N, a torque of 1e30 N·m or a load of 1e308 kg is refused
        with the column and the value, never stored).
    finite : bool
        Floating values must be finite when present (NaN is "missing", ``inf`` is refused).
    isin : tuple, optional
        Allowed values.
    pattern : str, optional
        Regular expression that non-missing strings must match in full.
    doc : str
        One line describing the column.
    optional : bool
        A writer may leave the column out: :meth:`cxlab.store.Store.write` fills it with
        missing values (an empty list for list columns). For metadata a table gained
        later (e.g. ``recordings.body_mass_kg``), never for measured data.
    """

    name: str
    type: pa.DataType
    unit: str = ""
    nullable: bool = False
    ge: float | None = None
    le: float | None = None
    isin: tuple | None = None
    pattern: str | None = None
    doc: str = ""
    optional: bool = False
    finite: bool = True


@dataclass(frozen=True)
class TableSchema:
    """A table: its columns, its sort key and its partition directory name.

    ``partition_by`` names the hive-style directory level (``subject=<id>``)
    under which the store places a table's parts; the value is given at write
    time, since long signal tables do not repeat the subject id on every row.

    Rows are always written sorted by ``sort_by`` so that re-writing the same
    data gives byte-identical Parquet files.
    """

    name: str
    columns: tuple[Column, ...]
    sort_by: tuple[str, ...]
    partition_by: str | None = None
    doc: str = ""
    extra: tuple[Column, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema: each column's unit and description in its field metadata
        (``unit``, ``doc``); the table name, :data:`SCHEMA_VERSION` and :data:`LAB_FRAME`
        in the schema metadata (``cxlab_table``, ``cxlab_schema_version``,
        ``cxlab_lab_frame``), and the units again as a JSON object column -> unit
        (``cxlab_units``, columns with a unit only) for tools that read a Parquet file's
        key-value metadata but not Arrow field metadata (DuckDB's ``parquet_kv_metadata``).

        Built once per schema (an Arrow schema is immutable): every validation and every
        staged part asks for it."""
        cached = self.__dict__.get("_arrow_schema")
        if cached is None:
            cached = self._build_arrow_schema()
            object.__setattr__(self, "_arrow_schema", cached)  # frozen: a cache, not state
        return cached

    def _build_arrow_schema(self) -> pa.Schema:
        fields = [
            pa.field(c.name, c.type, nullable=c.nullable, metadata={"unit": c.unit, "doc": c.doc})
            for c in self.columns
        ]
        return pa.schema(
            fields,
            metadata={
                "cxlab_table": self.name,
                "cxlab_schema_version": SCHEMA_VERSION,
                "cxlab_lab_frame": LAB_FRAME,
                # the units once more as plain JSON, for tools that show a file's key-value
                # metadata but not Arrow field metadata (DuckDB's parquet_kv_metadata)
                "cxlab_units": json.dumps({c.name: c.unit for c in self.columns if c.unit}),
            },
        )


S, I32, I64, F64, B = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
#: Samples of a motion-capture or force-plate signal: float32 in the store (docs/store.md,
#: "Sample precision"). C3D holds points and analogs as float32 or int16, so float32 markers
#: lose nothing and float32 loads keep ~7 significant digits (0.1 mN at 1 kN), far below any
#: plate's noise; readers of the store get float64 back, so computation stays float64.
F32 = pa.float32()
HEX16 = r"[0-9a-f]{16}"
HEX12 = r"[0-9a-f]{12}"
CONTEXTS = ("Left", "Right", "General")
SIDES = ("left", "right", "bilateral")

_rec = Column("recording_id", S, pattern=HEX16, doc="first 16 hex of the source file's sha256")
_PSEUDO = "pseudonym: HMAC-SHA256 of the subject label, 12 hex"
_sub = Column("subject_id", S, nullable=True, pattern=HEX12, doc=_PSEUDO)
_sub_req = Column("subject_id", S, pattern=HEX12, doc=_PSEUDO)
_ses = Column("session", S, nullable=True, doc="session label from the file path or the survey")
_time = Column("time_s", F64, "s", doc="time since the first frame of the recording")


# Plausible ranges (generous: they catch corrupt scales and units, not unusual athletes).
_MAX_RATE_HZ = 1e6  # Hz: no motion-capture or force-plate system samples faster
_MAX_LAB_M = 1e3  # m: a marker or centre of pressure 1 km from the lab origin is a scale error
_MAX_FORCE_N = 1e5  # N: ~100 kN, over 10x the largest ground reaction force of any human
_MAX_MOMENT_NM = 1e6  # N.m: 100 kN at 10 m from the origin
_MAX_TORQUE_NM = 1e3  # N.m: knee extensor peaks of elite athletes are ~300-450 N.m
_MAX_LOAD_KG = 2e3  # kg: above any lifted or sled-pressed load on record


def _bounded(
    names, unit: str, limit: float, *, doc: str = "", type: pa.DataType = F64
) -> list[Column]:
    """Nullable float columns ``names`` (float64 unless ``type`` says otherwise) in ``unit``,
    each bounded to ``±limit``."""
    return [Column(c, type, unit, nullable=True, ge=-limit, le=limit, doc=doc) for c in names]


def _t(name, cols, sort_by, partition_by=None, doc=""):
    return TableSchema(name, tuple(cols), tuple(sort_by), partition_by, doc)


def _angle(name: str, doc: str) -> Column:
    """A nullable joint angle in degrees, within ±180."""
    return Column(name, F64, "deg", nullable=True, ge=-180, le=180, doc=doc)


def _joint_frames(name, joints, quantities, *, method_doc: str, doc: str) -> TableSchema:
    """A joint table: one row per recording × method × side × joint × frame, the
    ``quantities`` between the keys and ``method`` (``cxlab-pig`` or ``file``)."""
    cols = [
        _rec,
        Column("frame", I32, "1", ge=0, doc="0-based frame index"),
        _time,
        Column("side", S, isin=("left", "right")),
        Column("joint", S, isin=joints),
        *quantities,
        Column("method", S, isin=("cxlab-pig", "file"), doc=method_doc),
    ]
    return _t(name, cols, ["recording_id", "method", "side", "joint", "frame"], "subject", doc)


TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in [
        _t(
            "recordings",
            [
                _rec,
                _sub,
                _ses,
                Column("task", S, nullable=True, doc="task label, e.g. cmj, landing, balance_left"),
                Column("trial", S, nullable=True, doc="trial or run label"),
                Column("source_path", S, doc="path of the source file relative to the ingest root"),
                Column("source_sha256", S, pattern=r"[0-9a-f]{64}"),
                Column(
                    "format",
                    S,
                    isin=("c3d", "trc", "mot", "sto", "csv", "forcedecks", "bioware"),
                    doc="file format",
                ),
                Column("vendor", S, nullable=True, doc="manufacturer/software found in the file"),
                Column("point_rate_hz", F64, "Hz", nullable=True, ge=0, le=_MAX_RATE_HZ),
                Column("analog_rate_hz", F64, "Hz", nullable=True, ge=0, le=_MAX_RATE_HZ),
                Column("n_frames", I64, "1", ge=0),
                Column("first_frame", I64, "1", ge=0),
                Column(
                    "warnings",
                    pa.list_(S),
                    optional=True,
                    doc="quality findings of the reader (a plate "
                    "whose stance force points down, CoP off the plate, ...), one sentence "
                    "each; empty when none",
                ),
                Column(
                    "up_axis",
                    S,
                    nullable=True,
                    optional=True,
                    isin=("x", "y", "z"),
                    doc="vertical axis of the file as recorded (data are stored z-up)",
                ),
                Column(
                    "body_mass_kg",
                    F64,
                    "kg",
                    nullable=True,
                    optional=True,
                    ge=0,
                    le=500,
                    doc="body mass stated by the file (PROCESSING:Bodymass, export header)",
                ),
                Column(
                    "recorded_at",
                    S,
                    nullable=True,
                    optional=True,
                    doc="date or date-time the file states it was recorded (ISO 8601)",
                ),
            ],
            ["recording_id"],
            doc="one row per ingested file",
        ),
        _t(
            "markers",
            [
                _rec,
                Column("frame", I32, "1", ge=0, doc="0-based frame index"),
                _time,
                Column("marker", S),
                *_bounded(("x",), "m", _MAX_LAB_M, doc="lab frame; NaN where invalid", type=F32),
                *_bounded(("y", "z"), "m", _MAX_LAB_M, type=F32),
                Column("residual", F64, "m", nullable=True, doc="reconstruction residual"),
            ],
            ["recording_id", "marker", "frame"],
            "subject",
            doc="marker trajectories, long format",
        ),
        _t(
            "analogs",
            [
                _rec,
                Column("sample", I64, "1", ge=0),
                _time,
                Column("channel", S),
                Column("value", F64, nullable=True, doc="calibrated value, unit in `unit`"),
                Column("unit", S, nullable=True),
            ],
            ["recording_id", "channel", "sample"],
            "subject",
            doc="calibrated analog channels, long format; raw force-plate channels that `forces` "
            "gives back are not repeated here (see `plate_channels`)",
        ),
        _t(
            "forces",
            [
                _rec,
                Column("plate", I32, "1", ge=1, doc="1-based plate number"),
                Column("sample", I64, "1", ge=0),
                _time,
                *_bounded(
                    ("fx", "fy", "fz"),
                    "N",
                    _MAX_FORCE_N,
                    doc="reaction force on the body, lab frame",
                    type=F32,
                ),
                *_bounded(
                    ("mx", "my", "mz"),
                    "N.m",
                    _MAX_MOMENT_NM,
                    doc="moment about the lab origin",
                    type=F32,
                ),
                *_bounded(
                    ("cop_x", "cop_y", "cop_z"),
                    "m",
                    _MAX_LAB_M,
                    doc="centre of pressure; NaN below threshold. In the files cop_x and cop_y "
                    "are null where they follow from the loads on a level plate at z = cop_z "
                    "((cop_z*fx - my)/fz, (mx + cop_z*fy)/fz in float64, rounded to float32); "
                    "every cxlab reader fills them (docs/store.md)",
                    type=F32,
                ),
                *_bounded(
                    ("tz",),
                    "N.m",
                    _MAX_MOMENT_NM,
                    doc="free moment about the vertical. In the files null where it follows "
                    "as mz - cop_x*fy + cop_y*fx (float64, rounded to float32); every cxlab "
                    "reader fills it (docs/store.md)",
                    type=F32,
                ),
            ],
            ["recording_id", "plate", "sample"],
            "subject",
            doc="force-plate data in the lab frame, one row per plate and sample",
        ),
        _t(
            "plates",
            [
                _rec,
                Column("plate", I32, "1", ge=1, doc="1-based plate number, as in `forces`"),
                Column("corner", I32, "1", ge=1, le=4, doc="corner 1-4 in the file's order"),
                *_bounded(
                    ("x", "y", "z"),
                    "m",
                    _MAX_LAB_M,
                    doc="corner position, lab frame (FORCE_PLATFORM:CORNERS)",
                ),
                *_bounded(
                    ("origin_x", "origin_y", "origin_z"),
                    "m",
                    _MAX_LAB_M,
                    doc="FORCE_PLATFORM:ORIGIN as stored (plate frame), same on each corner",
                ),
                Column("plate_type", I32, "1", ge=0, doc="C3D plate TYPE; 0 = not from a C3D"),
            ],
            ["recording_id", "plate", "corner"],
            "subject",
            doc="force-plate outlines (corners, origin, type), one row per plate and corner; "
            "what inverse dynamics needs to know which foot stands on which plate",
        ),
        _t(
            "plate_channels",
            [
                _rec,
                Column("plate", I32, "1", ge=1, doc="1-based plate number, as in `forces`"),
                Column("channel", S, doc="the raw analog channel's label (ANALOG:LABELS)"),
                Column("unit", S, nullable=True, doc="the raw channel's unit (ANALOG:UNITS)"),
                *[
                    Column(
                        f"c_{c}",
                        F64,
                        doc=f"coefficient of `forces.{c}` in the channel's affine rebuild "
                        f"(channel unit per {u})",
                    )
                    for c, u in zip(
                        ("fx", "fy", "fz", "mx", "my", "mz"), ("N",) * 3 + ("N.m",) * 3, strict=True
                    )
                ],
                Column("offset", F64, doc="constant term of the rebuild (channel unit)"),
                Column(
                    "max_error",
                    F64,
                    ge=0,
                    doc="largest absolute difference rebuilt - raw over the recording, "
                    "measured at ingest (channel unit)",
                ),
            ],
            ["recording_id", "plate", "channel"],
            doc="raw force-plate channels stored only through `forces`: value = c_fx*fx + "
            "... + c_mz*mz + offset (cxlab.io.recording.plate_channel_values); the "
            "channels are not repeated in `analogs`",
        ),
        _t(
            "events",
            [
                _rec,
                Column("label", S),
                Column("context", S, isin=CONTEXTS),
                _time,
            ],
            ["recording_id", "time_s", "label", "context"],
            doc="events from the file (foot strike, foot off, ...)",
        ),
        _t(
            "model_outputs",
            [
                _rec,
                Column("frame", I32, "1", ge=0, doc="0-based frame index"),
                _time,
                Column("label", S, doc="output name without subject prefix, e.g. LKneeAngles"),
                Column("kind", S, isin=("angle", "force", "moment", "power", "scalar")),
                Column(
                    "x",
                    F64,
                    nullable=True,
                    doc="first component, unit in `unit`; NaN where the model gives none",
                ),
                Column("y", F64, nullable=True),
                Column("z", F64, nullable=True),
                Column("unit", S, doc="deg, N/kg or N, N.m/kg or N.m, W/kg or W, %BW, ..."),
            ],
            ["recording_id", "label", "frame"],
            "subject",
            doc="model outputs stored as C3D points (Plug-in Gait angles, forces, moments, "
            "powers), long format",
        ),
        _t(
            "rotations",
            [
                _rec,
                Column("frame", I32, "1", ge=0, doc="0-based pose frame index"),
                _time,
                Column("segment", S, doc="segment name, e.g. pelvis, l_thigh"),
                *[
                    Column(
                        f"r{i}{j}",
                        F64,
                        "1",
                        nullable=True,
                        doc="rotation segment -> lab, row i column j; NaN where invalid",
                    )
                    for i in (1, 2, 3)
                    for j in (1, 2, 3)
                ],
                *[
                    Column(c, F64, "m", nullable=True, doc="segment origin, lab frame")
                    for c in ("x", "y", "z")
                ],
            ],
            ["recording_id", "segment", "frame"],
            "subject",
            doc="segment poses (C3D ROTATION group, e.g. Theia markerless), long format",
        ),
        _t(
            "quarantine",
            [
                Column("source_path", S, doc="the rejected file"),
                Column("source_sha256", S, nullable=True),
                Column("stage", S, doc="read, validate, survey, interventions, features, ..."),
                Column("row", I64, "1", nullable=True, doc="1-based row in the file, if any"),
                Column("field", S, nullable=True, doc="column, parameter or channel at fault"),
                Column("value", S, nullable=True, doc="the offending value as text"),
                Column("reason", S, doc="the one-line message the user saw"),
            ],
            ["stage", "source_path", "row", "field", "reason"],
            doc="every input that was rejected, and why",
        ),
        _t(
            "surveys",
            [
                _sub_req,
                Column("session", S),
                Column("date", pa.date32(), nullable=True),
                Column("instrument", S),
                Column("item", S),
                Column("response", F64, nullable=True),
            ],
            ["instrument", "subject_id", "session", "item"],
            doc="questionnaire answers, one row per item",
        ),
        _t(
            "scores",
            [
                _sub_req,
                Column("session", S),
                Column("date", pa.date32(), nullable=True),
                Column("instrument", S),
                Column("score", F64, nullable=True),
                Column("unit", S),
                Column("n_items_answered", I32, "1", ge=0),
                Column("age_years", F64, "year", nullable=True, ge=0, le=130),
            ],
            ["instrument", "subject_id", "session"],
            doc="instrument scores by subject and session",
        ),
        _t(
            "sessions",
            [
                _sub_req,
                Column("session", S, doc="session label (file path, sheet or survey)"),
                Column(
                    "session_index",
                    I32,
                    "1",
                    nullable=True,
                    ge=0,
                    doc="0-based order of the subject's sessions when the sheet gives it",
                ),
                Column("date", pa.date32(), nullable=True, doc="session date when known"),
                Column(
                    "source",
                    S,
                    isin=("path", "recording", "sheet"),
                    doc="where the row comes from: path pattern, recording metadata, "
                    "sessions sheet",
                ),
            ],
            ["subject_id", "session", "source"],
            doc="when each subject's sessions took place, one row per source",
        ),
        _t(
            "interventions",
            [
                _sub_req,
                Column("arm", S, doc="programme name, e.g. hip_strengthening or control"),
                Column("start_date", pa.date32(), nullable=True),
                Column("end_date", pa.date32(), nullable=True),
                Column("sessions_prescribed", I32, "1", nullable=True, ge=0, le=10_000),
                Column("sessions_attended", I32, "1", nullable=True, ge=0, le=10_000),
                Column("adherence", F64, "1", nullable=True, ge=0, le=1.5),
            ],
            ["subject_id", "arm"],
            doc="which programme each subject followed",
        ),
        _t(
            "exercise_log",
            [
                _sub_req,
                Column("date", pa.date32(), nullable=True),
                Column("exercise", S),
                Column("sets", I32, "1", nullable=True, ge=0, le=100),
                Column("reps", I32, "1", nullable=True, ge=0, le=10_000),
                Column("load_kg", F64, "kg", nullable=True, ge=0, le=_MAX_LOAD_KG),
                Column("rpe", F64, "1", nullable=True, ge=0, le=10),
            ],
            ["subject_id", "date", "exercise"],
            doc="exercise-level programme log",
        ),
        _t(
            "strength",
            [
                _sub_req,
                Column("session", S),
                Column("muscle_group", S, doc="e.g. knee_flexors, knee_extensors, shoulder_er"),
                Column("side", S, isin=("left", "right")),
                Column("peak_torque_nm", F64, "N.m", nullable=True, ge=0, le=_MAX_TORQUE_NM),
            ],
            ["subject_id", "session", "muscle_group", "side"],
            doc="isokinetic/isometric dynamometer peak torques",
        ),
        _t(
            "features",
            [
                Column(
                    "recording_id",
                    S,
                    nullable=True,
                    pattern=HEX16,
                    doc="source recording; empty for features from the strength table",
                ),
                _sub,
                _ses,
                Column("task", S, nullable=True),
                Column("trial", S, nullable=True),
                Column("feature", S),
                Column("side", S, isin=SIDES),
                Column("value", F64, nullable=True),
                Column("unit", S),
                Column("method", S, doc="formula or reference used"),
            ],
            ["subject_id", "session", "task", "trial", "recording_id", "feature", "side"],
            doc="one row per recording x feature x side",
        ),
        _t(
            "curves",
            [
                _rec,
                _sub,
                _ses,
                Column("task", S, nullable=True),
                Column("trial", S, nullable=True),
                Column("phase", S, doc="movement phase, e.g. cmj_propulsion, landing"),
                Column("signal", S, doc="what the curve is, e.g. fz_bw, knee_fppa"),
                Column("side", S, isin=SIDES),
                Column("node", I32, "1", ge=0, doc="0-based node of the time-normalised phase"),
                Column("pct", F64, "%", ge=0, le=100, doc="node position, % of the phase"),
                Column("value", F64, nullable=True, doc="signal at the node, unit in `unit`"),
                Column("unit", S),
                Column("phase_start_s", F64, "s", doc="phase start, time in the recording"),
                Column("phase_end_s", F64, "s", doc="phase end, time in the recording"),
                Column("method", S, doc="events and resampling used"),
            ],
            [
                "subject_id",
                "session",
                "task",
                "trial",
                "recording_id",
                "phase",
                "signal",
                "side",
                "node",
            ],
            doc="time-normalised curves: one row per recording x phase x signal x side x node",
        ),
        _joint_frames(
            "joint_angles",
            ("pelvis", "hip", "knee", "ankle", "foot_progression"),
            [
                _angle("flexion_deg", "flexion / dorsiflexion / anterior tilt +, PiG sign"),
                _angle("adduction_deg", "adduction / varus / obliquity up +, PiG sign"),
                _angle("internal_rotation_deg", "internal rotation +, PiG sign"),
            ],
            method_doc="cxlab-pig = computed from markers; file = stored by the vendor",
            doc="3-D joint angles, Plug-in Gait conventions (docs/kinematics.md)",
        ),
        _joint_frames(
            "joint_moments",
            ("hip", "knee", "ankle"),
            [
                Column(
                    "flexion_nm_per_kg",
                    F64,
                    "N.m/kg",
                    nullable=True,
                    doc="internal moment in the distal segment frame, PiG sign",
                ),
                Column("adduction_nm_per_kg", F64, "N.m/kg", nullable=True),
                Column("internal_rotation_nm_per_kg", F64, "N.m/kg", nullable=True),
                Column("power_w_per_kg", F64, "W/kg", nullable=True, doc="joint power"),
            ],
            method_doc="cxlab-pig = inverse dynamics here; file = stored by the vendor",
            doc="inverse-dynamics joint moments and powers per kg (docs/kinematics.md)",
        ),
        _t(
            "screen",
            [
                Column("subject_id", S, pattern=HEX12, doc=_PSEUDO),
                Column("session", S),
                Column("rule_id", S, doc="rule id from the rules file"),
                Column("feature", S, doc="the feature or instrument the rule reads"),
                Column(
                    "side",
                    S,
                    isin=("left", "right", "bilateral", "worst"),
                    doc="side judged; 'worst' = the worse of left and right",
                ),
                Column(
                    "worse_side",
                    S,
                    nullable=True,
                    isin=("left", "right"),
                    doc="for 'worst' rules: which side was worse",
                ),
                Column("value", F64, nullable=True, doc="mean of trials, unit in `unit`"),
                Column("unit", S),
                Column("n_trials", I32, "1", ge=0, doc="trials (or scores) averaged"),
                Column("threshold", F64, nullable=True, doc="flag threshold, unit in `unit`"),
                # the same values as cxlab.screen.rules.COMPARISONS and SEVERITIES (tested)
                Column("comparison", S, isin=("<", "<=", ">", ">=", "abs>", "abs>=")),
                Column("flagged", B, nullable=True, doc="missing when not assessed"),
                Column("status", S, isin=("flagged", "normal", "not assessed")),
                Column("severity", S, nullable=True, isin=("low", "moderate", "high")),
                Column("region", S),
                Column("focus", S),
                Column("source", S),
            ],
            ["subject_id", "session", "rule_id", "side"],
            doc="movement-screen findings, one row per subject x session x rule x side "
            "(cxlab screen; one part per subject)",
        ),
        _t(
            "participants",
            [
                _sub_req,
                Column("sex", S, nullable=True, isin=("female", "male", "other")),
                Column("sport", S, nullable=True, doc="main sport, lower case"),
                Column("height_m", F64, "m", nullable=True, ge=0.5, le=2.6),
                Column("mass_kg", F64, "kg", nullable=True, ge=10.0, le=400.0),
                Column("dominant_side", S, nullable=True, isin=("left", "right")),
                Column(
                    "age_years",
                    F64,
                    "year",
                    nullable=True,
                    ge=0,
                    le=130,
                    doc="age at the first dated session (birth dates are never stored)",
                ),
            ],
            ["subject_id"],
            doc="participant characteristics, one row per subject (cxlab ingest-participants)",
        ),
        _t(
            "retest",
            [
                _sub_req,
                Column("outcome", S, doc="the experiment outcome name it measures"),
                Column("test", I32, "1", ge=1, le=2, doc="1 = first test, 2 = retest"),
                Column("value", F64, doc="the measurement, in the outcome's unit"),
                Column("interval_days", F64, "d", nullable=True, ge=0, le=3650),
            ],
            ["outcome", "subject_id", "test"],
            doc="test-retest pairs for between-session reliability, two rows a pair "
            "(cxlab ingest-retest)",
        ),
    ]
}


def schema_of(name: str) -> TableSchema:
    """Return the declared schema of table ``name``.

    Raises
    ------
    SchemaError
        If no table of that name is declared.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise SchemaError(
            message(
                "is not a declared table",
                field="table",
                value=name,
                fix=f"use one of {', '.join(sorted(TABLES))} or declare it in cxlab.schemas",
            )
        ) from None


def schema_frame(names: list[str] | None = None, /) -> pd.DataFrame:
    """The declared columns of the named tables (default: all) as a DataFrame.

    Returns
    -------
    pandas.DataFrame
        Columns ``table``, ``column``, ``type``, ``unit``, ``nullable``,
        ``constraint``, ``description``.
    """
    rows = []
    for name in names or list(TABLES):
        for c in schema_of(name).columns:
            cons = []
            if c.ge is not None:
                cons.append(f">= {c.ge:g}")
            if c.le is not None:
                cons.append(f"<= {c.le:g}")
            if c.isin is not None:
                cons.append("in {" + ", ".join(map(str, c.isin)) + "}")
            if c.pattern is not None:
                cons.append(f"matches {c.pattern}")
            if c.finite and pa.types.is_floating(c.type):
                cons.append("finite")
            rows.append(
                {
                    "table": name,
                    "column": c.name,
                    "type": str(c.type),
                    "unit": c.unit,
                    "nullable": c.nullable,
                    "constraint": "; ".join(cons),
                    "description": c.doc,
                }
            )
    return pd.DataFrame(rows)


def _fail(out, table, column, check, value, n):
    out.append({"table": table, "column": column, "check": check, "value": value, "n_rows": n})


def _first(values) -> object:
    v = values[0]
    return v.item() if isinstance(v, np.generic) else v


def validate(df: pd.DataFrame | pa.Table, schema: TableSchema | str, /) -> pa.Table:
    """Check ``df`` against ``schema`` and return it as a sorted, typed Arrow table.

    All failures are collected first and raised together.

    Parameters
    ----------
    df : pandas.DataFrame or pyarrow.Table
        The rows to write (an Arrow table built straight from NumPy, e.g. by
        :meth:`cxlab.io.Recording.to_arrow`, skips the pandas conversion; a dictionary-encoded
        label column is cast to the declared string type).
    schema : TableSchema or str
        The table's schema or name.

    Returns
    -------
    pyarrow.Table
        Columns in declared order, cast to the declared types, rows sorted by
        ``schema.sort_by``, units in the field metadata.

    Raises
    ------
    SchemaError
        Listing each failing column, the check and an offending value:
        missing or unexpected columns, values that cannot be cast, missing
        values in non-nullable columns, values out of bounds, not among the
        allowed values, or not matching the pattern.
    """
    schema = schema_of(schema) if isinstance(schema, str) else schema
    failures: list[dict] = []
    arrow = isinstance(df, pa.Table)
    present_cols = df.column_names if arrow else list(df.columns)
    names = schema.names
    present, declared = set(present_cols), set(names)
    missing = [c for c in names if c not in present]
    extra = [c for c in present_cols if c not in declared]
    for c in missing:
        _fail(failures, schema.name, c, "column is missing", None, len(df))
    for c in extra:
        _fail(failures, schema.name, c, "column is not declared", None, len(df))
    arrays = {}
    labels = {}  # dictionary-encoded label columns as given: checked and sort-coded by label
    for col in schema.columns:
        if col.name in missing:
            continue
        s = df.column(col.name) if arrow else df[col.name]
        try:
            arr = given = _one_array(s) if arrow else pa.array(s, from_pandas=True)
            if not arr.type.equals(col.type):
                arr = arr.cast(col.type, safe=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as e:
            bad = _first_uncastable(s.to_pandas() if arrow else s, col.type)
            _fail(
                failures,
                schema.name,
                col.name,
                f"cannot be stored as {col.type} ({e})",
                bad,
                len(s),
            )
            continue
        arrays[col.name] = arr
        if _is_label_dictionary(given, col):
            labels[col.name] = given
            failures.extend(_label_failures(schema.name, col, given))
            continue
        # a float narrowed to float32 is checked as given: 1e308 N is "above 100000 N",
        # not the infinity the cast makes of it
        narrowed = pa.types.is_floating(given.type) and given.type.bit_width > arr.type.bit_width
        failures.extend(_value_failures(schema.name, col, s, given if narrowed else arr))
    if failures:
        raise SchemaError(_schema_message(schema.name, failures), failures)
    table = pa.table([arrays[c] for c in names], schema=schema.arrow_schema())
    if schema.sort_by and table.num_rows and not _is_sorted(table, schema.sort_by, labels):
        table = table.sort_by([(c, "ascending") for c in schema.sort_by])
    return table


def _one_array(column: pa.ChunkedArray, /) -> pa.Array:
    """A column as one array: its only chunk as it is (``combine_chunks`` copies even one
    chunk: a copy of every column of every table validated), else the chunks joined."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _is_label_dictionary(arr: pa.Array, col: Column, /) -> bool:
    """Whether ``arr`` is a dictionary-encoded string column without missing values (indices
    and dictionary), declared as a string: then its rules are checked once per dictionary
    entry (:func:`_label_failures`) rather than on every row."""
    return (
        pa.types.is_dictionary(arr.type)
        and pa.types.is_string(arr.type.value_type)
        and pa.types.is_string(col.type)
        and not arr.null_count
        and not arr.dictionary.null_count
    )


def _label_failures(table: str, col: Column, arr: pa.DictionaryArray, /) -> list[dict]:
    """:func:`_value_failures` of a label dictionary (:func:`_is_label_dictionary`): no value
    is missing, and the allowed-value and pattern rules are checked on the dictionary entries
    the rows use, counting rows per entry (the same failures, values and counts)."""
    out: list[dict] = []
    if col.isin is None and col.pattern is None:
        return out
    counts = pc.value_counts(arr.indices)  # codes in order of first appearance
    entries = arr.dictionary.take(counts.field("values")).to_pylist()
    rows: dict[str, int] = {}
    for v, n in zip(entries, counts.field("counts").to_pylist(), strict=True):
        rows[v] = rows.get(v, 0) + n  # a label the dictionary holds twice is one value
    _rule_failures(out, table, col, list(rows), list(rows.values()))
    return out


def _rule_failures(out: list[dict], table: str, col: Column, values: list, rows: list[int]):
    """Record ``col``'s allowed-value and pattern failures among the distinct present
    ``values`` (in order of first appearance; the first failing one is the example) held by
    ``rows`` rows each."""
    if col.isin is not None:
        allowed = set(col.isin)
        bad = [i for i, v in enumerate(values) if v not in allowed]
        if bad:
            n = sum(rows[i] for i in bad)
            _fail(out, table, col.name, f"has values not in {list(col.isin)}", values[bad[0]], n)
    if col.pattern is not None:
        rx = re.compile(col.pattern)
        bad = [i for i, v in enumerate(values) if rx.fullmatch(str(v)) is None]
        if bad:
            n = sum(rows[i] for i in bad)
            _fail(
                out,
                table,
                col.name,
                f"has values not matching /{col.pattern}/",
                str(values[bad[0]]),
                n,
            )


def _sort_codes(arr: pa.Array) -> np.ndarray | None:
    """Integer codes that order like ``arr`` (strings by bytes, as Arrow sorts), or None.

    A label dictionary (:func:`_is_label_dictionary`) is ranked on its entries alone; numbers
    are their own codes (the array's buffer, not a copy)."""
    if arr.null_count:
        return None
    if pa.types.is_dictionary(arr.type):
        if arr.dictionary.null_count or not pa.types.is_string(arr.type.value_type):
            return None
        return _ranked(arr.dictionary, arr.indices)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        enc = pc.dictionary_encode(arr)
        return _ranked(enc.dictionary, enc.indices)
    if pa.types.is_integer(arr.type):
        return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if pa.types.is_floating(arr.type):
        codes = arr.to_numpy(zero_copy_only=False)
        return None if np.isnan(codes.min()) else codes  # NaN propagates through min
    if pa.types.is_date(arr.type):
        return arr.cast(pa.int32()).to_numpy(zero_copy_only=False)
    return None


def _ranked(dictionary: pa.Array, indices: pa.Array, /) -> np.ndarray:
    """Each row's rank of its dictionary entry (equal entries rank equal), int32."""
    rank = pc.rank(dictionary, sort_keys="ascending", tiebreaker="dense").to_numpy()
    return rank.astype(np.int32)[indices.to_numpy(zero_copy_only=False)]


def _is_sorted(
    table: pa.Table, keys: tuple[str, ...], labels: dict[str, pa.Array] | None = None
) -> bool:
    """Whether rows already follow ``keys`` lexicographically (then no sort is needed).

    Ingest emits rows in key order, so checking (O(n)) saves an Arrow sort and
    a take of every column; any doubt (nulls, other types) answers False. ``labels`` holds
    key columns as given, dictionary-encoded (their codes come from the dictionary; one
    entry, as a recording's id in its own tables, decides nothing and is skipped).
    Comparisons of neighbours, not differences: no integer overflow, one byte per row.
    """
    if table.num_rows < 2:
        return True
    labels = labels or {}
    undecided = np.ones(table.num_rows - 1, dtype=bool)
    for key in keys:
        arr = labels[key] if key in labels else _one_array(table.column(key))
        if pa.types.is_dictionary(arr.type) and len(arr.dictionary) == 1 and not arr.null_count:
            continue  # every row the same value
        codes = _sort_codes(arr)
        if codes is None:
            return False
        before, after = codes[:-1], codes[1:]
        if (undecided & (after < before)).any():
            return False
        undecided &= after == before
        if not undecided.any():
            return True
    return True


def _first_uncastable(s: pd.Series, typ: pa.DataType) -> object:
    for v in s.dropna().unique()[:10_000]:
        try:
            pa.array([v]).cast(typ, safe=True)
        except Exception:
            return v.item() if isinstance(v, np.generic) else v
    return None


def _numbers_pass(col: Column, arr: pa.Array) -> bool:
    """Whether numeric ``arr`` certainly passes ``col``'s rules, from its minimum and maximum
    (nulls and NaN skipped) and null/NaN counts; False means "check in full"
    (:func:`_value_failures` then finds and words the failures).

    The extremes are NumPy reductions over the array's own buffer (a copy only when it has
    nulls): Arrow's ``min_max`` kernel takes 25x longer on float32 samples."""
    floating = pa.types.is_floating(arr.type)
    if not (floating or pa.types.is_integer(arr.type)) or col.isin or col.pattern:
        return False
    if (arr.null_count and not col.nullable) or arr.null_count == len(arr):
        return False  # missing where not allowed, or nothing but missing: the full check
    if floating:
        v = arr.to_numpy(zero_copy_only=False)  # nulls read as NaN
        lo, hi = v.min(), v.max()  # NaN propagates: one pass says whether there is any
        if lo != lo or hi != hi:
            if not col.nullable:
                return False
            lo, hi = np.fmin.reduce(v), np.fmax.reduce(v)  # NaN skipped
        lo, hi = float(lo), float(hi)
    elif arr.null_count:
        mm = pc.min_max(arr)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
    else:
        v = arr.to_numpy()
        lo, hi = v.min().item(), v.max().item()
    if lo != lo:  # all NaN: the full check decides
        return False
    if floating and (col.finite or col.ge is not None or col.le is not None):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
    return (col.ge is None or lo >= col.ge) and (col.le is None or hi <= col.le)


def _value_failures(table: str, col: Column, s: pd.Series, arr: pa.Array) -> list[dict]:
    out: list[dict] = []
    if _numbers_pass(col, arr):
        return out
    if arr.null_count or pa.types.is_floating(arr.type):
        isnull = arr.is_null(nan_is_null=True).to_numpy(zero_copy_only=False)
    else:  # no null and no NaN: no mask to build
        isnull = np.zeros(len(arr), dtype=bool)
    if not col.nullable and isnull.any():
        _fail(
            out, table, col.name, "has missing values but is not nullable", None, int(isnull.sum())
        )
    ok = ~isnull
    if not ok.any():
        return out
    numeric = pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)
    every = bool(ok.all())
    allvals = (
        np.asarray(arr.to_numpy(zero_copy_only=False), dtype=float)
        if numeric and (col.finite or col.ge is not None or col.le is not None)
        else None
    )
    if col.finite and pa.types.is_floating(arr.type):
        vals = allvals if every else allvals[ok]
        if (bad := ~np.isfinite(vals)).any():
            _fail(out, table, col.name, "has infinite values", _first(vals[bad]), int(bad.sum()))
            ok = ok.copy()
            ok[np.flatnonzero(ok)[bad]] = False  # reported once, not again as out of range
            every = False
    if (col.ge is not None or col.le is not None) and allvals is not None:
        vals = allvals if every else allvals[ok]
        lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 0.0)
        if (col.ge is None or lo >= col.ge) and (col.le is None or hi <= col.le):
            vals = vals[:0]  # all in range: one min and one max, no masks
        unit = f" {col.unit}" if col.unit not in ("", "1") else ""
        if col.ge is not None and (bad := vals < col.ge).any():
            _fail(
                out,
                table,
                col.name,
                f"has values below {col.ge:g}{unit}",
                _first(vals[bad]),
                int(bad.sum()),
            )
        if col.le is not None and (bad := vals > col.le).any():
            _fail(
                out,
                table,
                col.name,
                f"has values above {col.le:g}{unit}",
                _first(vals[bad]),
                int(bad.sum()),
            )
    if col.isin is not None or col.pattern is not None:
        # Checked once per distinct value: long tables repeat ids and labels on every row.
        counts = pc.value_counts(arr if every else arr.filter(pa.array(ok)))
        values = counts.field("values").to_pylist()  # in order of first appearance
        _rule_failures(out, table, col, values, counts.field("counts").to_pylist())
    return out


_INT_LIMITS = {pa.int32(): (-(2**31), 2**31 - 1), pa.int64(): (-(2**63), 2**63 - 1)}


def range_failures(df: pd.DataFrame, table: str, /) -> list[tuple[str, np.ndarray, str]]:
    """Rows of ``df`` whose numeric columns break ``table``'s declared value rules.

    For every column of ``df`` that ``table`` declares as a number: non-finite values,
    values outside ``ge``/``le`` (with the unit) and, for integer columns, values that
    do not fit the storage type (``sets = 3e9`` in an int32 column). Row-level readers
    (sheets) use it to reject rows with the rule before anything is cast or written.

    Returns
    -------
    list of (column, mask, rule)
        ``mask`` is a boolean array over ``df``'s rows; one entry per failing rule.
    """
    out = []
    for col in schema_of(table).columns:
        if col.name not in df.columns or not (
            pa.types.is_floating(col.type) or pa.types.is_integer(col.type)
        ):
            continue
        v = pd.to_numeric(df[col.name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        present = ~np.isnan(v)
        unit = f" {col.unit}" if col.unit not in ("", "1") else ""
        rules = [(present & np.isinf(v), "is not a finite number")]
        fin = present & np.isfinite(v)
        lo, hi = _INT_LIMITS.get(col.type, (None, None))
        if lo is not None:
            rules.append((fin & ((v < lo) | (v > hi)), f"does not fit a {col.type} integer"))
        if col.ge is not None:
            rules.append(
                (
                    fin & (v < col.ge),
                    f"is below the plausible minimum {col.ge:g}{unit} "
                    f"({table}.{col.name} in cxlab.schemas)",
                )
            )
        if col.le is not None:
            rules.append(
                (
                    fin & (v > col.le),
                    f"is above the plausible maximum {col.le:g}{unit} "
                    f"({table}.{col.name} in cxlab.schemas)",
                )
            )
        seen = np.zeros(len(v), dtype=bool)
        for m, rule in rules:  # each bad cell once, under the first rule it breaks
            m = m & ~seen
            seen |= m
            if m.any():
                out.append((col.name, m, rule))
    return out


def _schema_message(table: str, failures: list[dict]) -> str:
    lines = [f"table {table!r} failed {len(failures)} schema check(s):"]
    for f in failures:
        v = "" if f["value"] is None else f" e.g. {f['value']!r}"
        lines.append(f"  - column {f['column']!r}: {f['check']} ({f['n_rows']} rows){v}")
    lines.append("fix the input or the code that builds this table; see docs/store.md")
    return "\n".join(lines)
