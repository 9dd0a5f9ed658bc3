"""The CoP and free moment the store keeps as null where they follow from force and
moment (cxlab._derived): what the files hold, what every reader gets back."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import cxlab.io as cio
from cxlab import _derived
from cxlab.schemas import schema_of, validate
from cxlab.store import Store

RID = "0123456789abcdef"
COLS = ["fx", "fy", "fz", "mx", "my", "mz", "cop_x", "cop_y", "cop_z", "tz"]
TOL = 2.0**-20  # the module's bound, relative to the magnitudes of the formula's terms


def _plate(n=400, *, h=-0.01, seed=0) -> pd.DataFrame:
    """A horizontal plate at height ``h``: a force at a CoP on z = h plus a free moment,
    the moment about the lab origin worked by hand as r x F + (0, 0, tz)."""
    rng = np.random.default_rng(seed)
    f = np.column_stack([rng.normal(0, 80, n), rng.normal(0, 60, n), rng.uniform(200, 1500, n)])
    x, y = rng.uniform(-0.5, 1.5, n), rng.uniform(-0.3, 0.9, n)
    tz = rng.normal(0, 3, n)
    m = np.column_stack(
        [y * f[:, 2] - h * f[:, 1], h * f[:, 0] - x * f[:, 2], x * f[:, 1] - y * f[:, 0] + tz]
    )
    df = pd.DataFrame(np.column_stack([f, m, x, y, np.full(n, h), tz]), columns=COLS)
    df.insert(0, "time_s", np.arange(n) / 1000)
    df.insert(0, "sample", np.arange(n))
    df.insert(0, "plate", 1)
    df.insert(0, "recording_id", RID)
    return df


def _stored(df: pd.DataFrame) -> pa.Table:
    """``df`` as validated for the store (float32 samples), before the encoding."""
    return validate(df, schema_of("forces"))


def _written(tmp_path, df: pd.DataFrame) -> tuple[Store, pa.Table]:
    s = Store(tmp_path / "s")
    s.write("forces", df, key=RID, partition="abcdefabcdef")
    (f,) = s.files("forces")
    return s, pq.read_table(f)


def _f64(t: pa.Table, c: str) -> np.ndarray:
    """Column ``c`` of ``t`` as float64, nulls as NaN."""
    return pc.fill_null(t.column(c), np.float32("nan")).to_numpy().astype(np.float64)


def test_a_consistent_plate_stores_cop_and_free_moment_as_nulls_and_reads_them_back(tmp_path):
    df = _plate()
    s, raw = _written(tmp_path, df)
    # the file itself: the derived columns are (almost) all null, force and moment are not
    for c in ("cop_x", "cop_y", "tz"):
        assert raw.column(c).null_count >= 0.99 * len(df), c
    for c in ("fx", "fz", "mz", "cop_z"):
        assert raw.column(c).null_count == 0
    given = _stored(df)
    got = s.table("forces")
    g = {c: _f64(given, c) for c in COLS}
    # force and moment bit for bit; CoP and tz within the float32 rounding of their terms
    for c in ("fx", "fy", "fz", "mx", "my", "mz", "cop_z"):
        np.testing.assert_array_equal(got[c].to_numpy(), g[c])
    bound_x = TOL * (np.abs(g["cop_z"] * g["fx"]) + np.abs(g["my"])) / g["fz"]
    assert np.all(np.abs(got["cop_x"] - g["cop_x"]) <= bound_x)
    bound_tz = TOL * (np.abs(g["mz"]) + np.abs(g["cop_x"] * g["fy"]) + np.abs(g["cop_y"] * g["fx"]))
    assert np.all(np.abs(got["tz"] - g["tz"]) <= bound_tz * 1.01)
    # and the hand-worked values themselves (float64 before the float32 cast) within 1e-6 m
    np.testing.assert_allclose(got["cop_x"], df["cop_x"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(got["tz"], df["tz"], atol=5e-4, rtol=0)


def test_values_that_do_not_follow_are_kept_exactly(tmp_path):
    df = _plate(n=100)
    df.loc[10:19, "cop_x"] += 0.004  # a vendor's CoP 4 mm off what the moments imply
    df.loc[20:29, ["cop_x", "cop_y", "tz"]] = np.nan  # under the force threshold
    df.loc[30:39, "tz"] = 7.0  # a free moment that is not mz - x fy + y fx
    df.loc[40:49, "fz"] = np.nan  # a CoP-only export: no force to derive from
    s, raw = _written(tmp_path, df)
    given, got = _stored(df), s.table("forces")
    for c, rows in (("cop_x", slice(10, 20)), ("tz", slice(30, 40)), ("cop_y", slice(40, 50))):
        np.testing.assert_array_equal(got[c].to_numpy()[rows], _f64(given, c)[rows])
        assert raw.column(c).slice(rows.start, 10).null_count == 0, c
    assert got.loc[20:29, ["cop_x", "cop_y", "tz"]].isna().all().all()
    assert not got.drop(index=range(20, 30))[["cop_x", "cop_y", "tz"]].isna().any().any()


def test_sql_pandas_and_arrow_readers_fill_the_same_bits(tmp_path):
    df = _plate(n=300, seed=3)
    df.loc[5:9, "cop_y"] = np.nan
    s, _ = _written(tmp_path, df)
    by_table = s.table("forces")
    by_sql = s.sql("SELECT cop_x, cop_y, tz FROM forces ORDER BY sample")
    (arrow,) = s.read_arrow_parts(list(s.parts("forces").values()), table="forces")
    for c in ("cop_x", "cop_y", "tz"):
        np.testing.assert_array_equal(by_sql[c].to_numpy(np.float64), by_table[c].to_numpy())
        np.testing.assert_array_equal(arrow.column(c).to_numpy().astype(float), by_table[c])
        assert arrow.column(c).null_count == 0
    # one column asked for: its inputs are read behind the caller's back, not returned
    for c in ("cop_x", "cop_y", "tz"):
        only = s.table("forces", columns=[c])
        assert list(only.columns) == [c]
        np.testing.assert_array_equal(only[c], by_table[c])


def test_a_filter_on_a_derived_column_sees_the_filled_values(tmp_path):
    s, _ = _written(tmp_path, _plate(n=500, seed=4))
    full = s.table("forces")
    got = s.table("forces", filters=[("cop_x", ">", 0.5), ("sample", "<", 400)], columns=["cop_x"])
    expect = full.loc[(full["cop_x"] > 0.5) & (full["sample"] < 400), "cop_x"]
    assert len(got) == len(expect) > 50
    np.testing.assert_array_equal(got["cop_x"], expect)


def test_a_null_on_input_reads_back_as_nan_not_as_a_derived_value():
    t = _stored(_plate(n=20))
    i = t.schema.get_field_index("cop_x")
    mask = np.zeros(20, bool)
    mask[3] = True
    vals = t.column("cop_x").to_numpy()
    t = t.set_column(i, t.schema.field(i), pa.array(vals, pa.float32(), mask=mask))
    enc = _derived.encode("forces", t)
    dec = _derived.decode("forces", enc)
    assert np.isnan(dec.column("cop_x").to_numpy()[3])
    assert dec.column("cop_x").null_count == 0


@pytest.mark.parametrize(
    ("name", "derived"),
    [
        ("c3d/biomdp_kistler_CMJ_1plate.c3d", True),  # a level plate: the CoP follows
        ("c3d/opensim_walking2.c3d", True),  # two level plates
        # CoP heights that vary across the plate (its surface not level in the lab frame),
        # so z = cop_z is not the plane of the formula: kept as stored
        ("c3d/ezc3d_FP_Type3.c3d", False),
        ("c3d/c3dorg_TYPE-2.C3D", False),
        ("forceplate/biomdp_kistler_COP.txt", False),  # a CoP-only export: no fz
    ],
)
def test_real_plates_read_back_stored_or_within_the_bound(real_dir, tmp_path, name, derived):
    forces = cio.read(real_dir / name).to_arrow(RID)["forces"].to_pandas()
    s, raw = _written(tmp_path, forces)
    given, got = _stored(forces), s.table("forces")
    g = {c: _f64(given, c) for c in COLS}
    for c in ("fx", "fy", "fz", "mx", "my", "mz", "cop_z"):
        np.testing.assert_array_equal(got[c].to_numpy(), g[c])
    for c in ("cop_x", "cop_y", "tz"):
        null = raw.column(c).is_null().to_numpy(zero_copy_only=False)
        kept = got[c].to_numpy()[~null]
        np.testing.assert_array_equal(kept, g[c][~null])  # stored: bit for bit
        d = np.abs(got[c].to_numpy()[null] - g[c][null])
        assert np.max(d, initial=0) < (1e-6 if c != "tz" else 1e-3), (c, np.max(d))
    sql = s.sql("SELECT cop_x, cop_y, tz FROM forces ORDER BY plate, sample")
    for c in ("cop_x", "cop_y", "tz"):
        np.testing.assert_array_equal(sql[c].to_numpy(np.float64), got[c].to_numpy())
    finite = np.isfinite(g["cop_x"]).sum()
    if derived:
        assert raw.column("cop_x").null_count > 0.9 * finite
    else:
        assert raw.column("cop_x").null_count < 0.05 * finite
