import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cxlab._check import SchemaError
from cxlab.schemas import TABLES, schema_of, validate

RID = "0123456789abcdef"


def _markers(n=4):
    return pd.DataFrame(
        {
            "recording_id": RID,
            "frame": np.arange(n)[::-1],
            "time_s": np.arange(n)[::-1] / 100,
            "marker": "LASI",
            "x": np.linspace(0, 1, n),
            "y": 0.0,
            "z": 0.0,
            "residual": 0.001,
        }
    )


def test_valid_table_is_typed_sorted_and_carries_units():
    t = validate(_markers(), "markers")
    assert t.schema.field("frame").type == pa.int32()
    assert t.column("frame").to_pylist() == [0, 1, 2, 3]
    assert t.schema.field("x").metadata[b"unit"] == b"m"
    assert t.schema.field("time_s").metadata[b"unit"] == b"s"


def test_missing_column_is_refused_naming_it():
    with pytest.raises(SchemaError, match="'residual': column is missing"):
        validate(_markers().drop(columns="residual"), "markers")


def test_wrong_dtype_is_refused_naming_column_and_value():
    df = _markers().astype({"x": object})
    df.loc[1, "x"] = "12mm"
    with pytest.raises(SchemaError, match=r"'x': cannot be stored as float.*'12mm'"):
        validate(df, "markers")


def test_all_failures_are_reported_at_once():
    df = _markers()
    df["recording_id"] = "not-hex"
    df["frame"] = -1
    df["extra"] = 1
    with pytest.raises(SchemaError) as e:
        validate(df.drop(columns="marker"), "markers")
    cols = {f["column"] for f in e.value.failures}
    assert cols == {"recording_id", "frame", "extra", "marker"}
    assert "4 schema check(s)" in str(e.value)


def test_non_nullable_column_refuses_missing_values():
    df = _markers()
    df.loc[2, "marker"] = None
    with pytest.raises(SchemaError, match="'marker': has missing values"):
        validate(df, "markers")


def test_allowed_values_are_enforced():
    ev = pd.DataFrame(
        {"recording_id": [RID], "label": ["Foot Strike"], "context": ["left"], "time_s": [0.5]}
    )
    with pytest.raises(SchemaError, match="'context': has values not in"):
        validate(ev, "events")


def test_unknown_table_names_the_choices():
    with pytest.raises(SchemaError, match="recordings"):
        schema_of("recording")


def test_every_table_declares_units_for_float_columns():
    for t in TABLES.values():
        for c in t.columns:
            if (
                pa.types.is_floating(c.type)
                and c.name not in ("value", "response", "score", "threshold")
                and not (t.name == "model_outputs" and c.name in "xyz")
                and t.name != "plate_channels"  # channel unit per N or N.m, from its `unit`
            ):  # unit per row
                assert c.unit, f"{t.name}.{c.name} has no unit"
        assert set(t.sort_by) <= set(t.names)


def test_docs_store_md_lists_every_table_and_column():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "store.md").read_text()
    for name, t in TABLES.items():
        assert f"### `{name}`" in doc, f"docs/store.md lacks table {name}"
        for c in t.columns:
            assert f"| `{c.name}` | {c.type} | {c.unit} |" in doc, f"docs/store.md: {name}.{c.name}"


@pytest.mark.parametrize("seed", range(20))
def test_rows_come_out_in_arrow_sort_order_whether_or_not_already_sorted(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 60))
    df = pd.DataFrame(
        {
            "recording_id": rng.choice([RID, "fedcba9876543210"], m),
            "sample": rng.integers(0, 6, m),
            "time_s": 0.0,
            "channel": rng.choice(["a", "b", "B", "é", "Fz1"], m),
            "value": rng.random(m),
            "unit": "V",
        }
    )
    if seed % 2:
        df = df.sort_values(["recording_id", "channel", "sample"], kind="stable")
    keys = [("recording_id", "ascending"), ("channel", "ascending"), ("sample", "ascending")]
    want = pa.Table.from_pandas(df, preserve_index=False).sort_by(keys)
    got = validate(df, "analogs")
    cols = ["recording_id", "channel", "sample", "value"]
    assert got.select(cols).to_pylist() == want.select(cols).to_pylist()


@pytest.mark.parametrize(
    ("table", "column", "value", "rule"),
    [
        ("forces", "fz", 1e308, "above 100000 N"),
        ("forces", "fx", -np.inf, "infinite"),
        ("markers", "x", 3.3e7, "above 1000 m"),
        ("analogs", "value", np.inf, "infinite"),
        ("strength", "peak_torque_nm", 1e30, "above 1000 N.m"),
        ("exercise_log", "load_kg", 1e308, "above 2000 kg"),
    ],
)
def test_a_value_beyond_the_declared_plausible_range_is_refused_naming_column_and_value(
    table, column, value, rule
):
    from cxlab.schemas import TABLES, range_failures

    schema = TABLES[table]
    row = {}
    for c in schema.columns:
        row[c.name] = {"string": "abcdefabcdef0123" if c.pattern else "x"}.get(str(c.type), 0)
    df = pd.DataFrame([row, {**row, column: value}])
    for c in schema.columns:
        if c.isin:
            df[c.name] = c.isin[0]
        if c.pattern:
            df[c.name] = {
                r"[0-9a-f]{16}": "0123456789abcdef",
                r"[0-9a-f]{12}": "abcdefabcdef",
                r"[0-9a-f]{64}": "0" * 64,
            }[c.pattern]
        if str(c.type) == "date32[day]":
            df[c.name] = pd.Timestamp("2025-01-01").date()
    df[column] = (
        df[column].astype(float) if schema.column(column).type != pa.string() else df[column]
    )
    with pytest.raises(SchemaError, match=rf"column '{column}': has (values )?{rule}"):
        validate(
            df.astype({c.name: "int64" for c in schema.columns if pa.types.is_integer(c.type)}),
            table,
        )
    ((_, mask, _),) = [f for f in range_failures(df, table) if f[0] == column]
    assert mask.tolist() == [False, True]


def _as_built_by_ingest(df: pd.DataFrame, labels: dict[str, list]) -> pa.Table:
    """``df`` as :meth:`cxlab.io.Recording.to_arrow` builds tables: the ``labels`` columns
    dictionary-encoded over the given dictionary (which may hold an entry twice, then odd
    rows use the second, or one no row uses), numbers from NumPy as they are."""
    cols = {}
    for c in df.columns:
        if c in labels:
            entries = labels[c]
            first = {v: entries.index(v) for v in entries}
            last = {v: len(entries) - 1 - entries[::-1].index(v) for v in entries}
            codes = [
                None if v is None else (last if i % 2 else first)[v] for i, v in enumerate(df[c])
            ]
            cols[c] = pa.DictionaryArray.from_arrays(
                pa.array(codes, pa.int32()), pa.array(entries, pa.string())
            )
        else:  # NaN stays NaN (pandas' conversion makes it null)
            cols[c] = pa.array(df[c].to_numpy())
    return pa.table(cols)


@pytest.mark.parametrize(
    ("table", "change", "failures"),
    [
        (
            "analogs",
            {"recording_id": ["0123456789abcdef", "not-hex", "not-hex", "BAD"]},
            [("recording_id", "has values not matching /[0-9a-f]{16}/", "not-hex", 3)],
        ),
        (
            "analogs",
            {"channel": ["a", "b", None, "a"]},  # a missing label: the full check
            [("channel", "has missing values but is not nullable", None, 1)],
        ),
        (
            "events",
            {"context": ["Left", "left", "General", "left"]},
            [("context", "has values not in ['Left', 'Right', 'General']", "left", 2)],
        ),
        ("events", {"context": ["Left", "Left", "Right", "Right"]}, []),
        (
            "forces",
            {"time_s": [0.0, np.nan, 0.2, 0.3]},
            [("time_s", "has missing values but is not nullable", None, 1)],
        ),
        ("forces", {"cop_x": [np.nan, 0.1, None, 0.2]}, []),  # nullable
        ("forces", {"cop_x": [np.nan, np.nan, np.nan, np.nan]}, []),  # all missing
        (
            "forces",
            {"cop_x": [np.nan, 0.1, 2e3, None]},  # NaN hides no implausible value
            [("cop_x", "has values above 1000 m", 2e3, 1)],
        ),
        (
            "forces",
            {"fx": [0.0, 2e5, -3e5, np.inf], "plate": [1, 0, 1, 1]},
            [
                ("plate", "has values below 1", 0, 1),
                ("fx", "has infinite values", np.inf, 1),
                ("fx", "has values below -100000 N", -3e5, 1),
                ("fx", "has values above 100000 N", 2e5, 1),
            ],
        ),
        (
            "markers",
            {"frame": [0, 1, -2, 3], "marker": ["LASI", "LASI", "é", "B"]},
            [("frame", "has values below 0", -2, 1)],
        ),
    ],
)
def test_a_table_built_as_ingest_builds_it_fails_or_passes_as_its_pandas_frame(
    table, change, failures
):
    """Known failures (column, check, example, rows), found alike on the pandas frame and on
    the same rows as an Arrow table with dictionary-encoded labels (checked per dictionary
    entry) and float32 samples (checked by NumPy extremes); a passing table is the same
    table either way."""
    schema = schema_of(table)
    n = 4
    df = pd.DataFrame({c.name: [c.isin[0] if c.isin else "x"] * n for c in schema.columns})
    for c in schema.columns:
        if c.pattern:
            df[c.name] = RID
        elif pa.types.is_integer(c.type):
            df[c.name] = np.arange(1, n + 1, dtype="int64" if c.type == pa.int64() else "int32")
        elif pa.types.is_floating(c.type):
            df[c.name] = np.linspace(0.0, 0.5, n).astype(c.type.to_pandas_dtype())
    for col, values in change.items():
        typ = schema.column(col).type
        df[col] = (
            pd.Series(values, dtype=typ.to_pandas_dtype())
            if pa.types.is_floating(typ) or pa.types.is_integer(typ)
            else pd.Series(values, dtype=object)
        )
    labels = {  # every entry twice, and one no row uses
        c.name: [*dict.fromkeys(v for v in df[c.name] if v is not None), "unused"] * 2
        for c in schema.columns
        if c.type == pa.string()
    }
    arrow = _as_built_by_ingest(df, labels)
    if not failures:  # the same rows (NaN read back as missing either way)
        pd.testing.assert_frame_equal(
            validate(arrow, table).to_pandas(), validate(df, table).to_pandas()
        )
        return
    for given in (df, arrow):
        with pytest.raises(SchemaError) as e:
            validate(given, table)
        got = [(f["column"], f["check"], f["value"], f["n_rows"]) for f in e.value.failures]
        assert got == failures


def test_dictionary_labels_sort_by_their_text_not_their_codes():
    """Rows in the order of a dictionary whose entries are not in text order (one held
    twice: rows use both) are sorted as the text sorts, as the pandas path sorts them."""
    df = pd.DataFrame(
        {
            "recording_id": RID,
            "sample": [0, 1, 0, 1, 0, 2],
            "time_s": 0.0,
            "channel": ["é", "é", "b", "b", "a", "a"],
            "value": np.arange(6.0),
            "unit": "V",
        }
    )
    arrow = _as_built_by_ingest(
        df, {"channel": ["é", "b", "b", "a"], "unit": ["V"], "recording_id": [RID]}
    )
    got = validate(arrow, "analogs")
    assert got.equals(validate(df, "analogs"))
    assert got.column("channel").to_pylist() == ["a", "a", "b", "b", "é", "é"]
    assert got.column("value").to_pylist() == [4.0, 5.0, 2.0, 3.0, 0.0, 1.0]
