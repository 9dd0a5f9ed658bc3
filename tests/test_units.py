"""cxlab.units: factors against NIST SP 811 (2008) appendix B values, typed here by hand."""

import numpy as np
import pandas as pd
import pytest

from cxlab.units import FORCE, LENGTH, MASS, MOMENT, TIME, G, unit_factor, unit_factors, unit_name

# NIST Special Publication 811 (2008), appendix B.8/B.9 (exact where the guide says so)
NIST = {
    ("mass", "lb"): 0.45359237,  # exact
    ("force", "lbf"): 4.4482216152605,  # exact
    ("moment", "ft.lbf"): 1.355818,  # 6 significant figures in B.9
    ("length", "mm"): 1e-3,
    ("length", "cm"): 1e-2,
    ("time", "ms"): 1e-3,
    ("force", "kN"): 1e3,
}


@pytest.mark.parametrize(("key", "value"), NIST.items())
def test_factors_match_nist_sp811(key, value):
    quantity, name = key
    assert unit_factor(name, quantity=quantity) == pytest.approx(value, rel=5e-7)


def test_standard_gravity_is_the_cgpm_value():
    assert G == 9.80665  # 3rd CGPM (1901), exact


@pytest.mark.parametrize(
    ("text", "quantity", "name"),
    [
        ("Nmm", "moment", "N.mm"),
        ("N·mm", "moment", "N.mm"),
        ("n.mm", "moment", "N.mm"),
        ("N*m", "moment", "N.m"),
        ("Ncm", "moment", "N.cm"),
        ("ft-lb", "moment", "ft.lbf"),
        ("FT LBF", "moment", "ft.lbf"),
        ("millimetres", "length", "mm"),
        ("Meters", "length", "m"),
        ("mete", "length", "m"),  # C3D POINT:UNITS cut to 4 characters
        ("lbs", "mass", "lb"),
        ("KGS", "mass", "kg"),
        ("kN", "force", "kN"),
        ("ms", "time", "ms"),
    ],
)
def test_spellings_files_use_resolve_to_one_name(text, quantity, name):
    assert unit_name(text, quantity=quantity) == name


def test_a_unit_of_another_quantity_or_unknown_is_none():
    assert unit_factor("nm", quantity="length") is None  # N.m is not a length
    assert unit_factor("mm", quantity="force") is None
    assert unit_factor("furlong", quantity="length") is None
    assert unit_factor("", quantity="length") is None


def test_vectorised_factors_agree_with_the_scalar_lookup():
    s = pd.Series(["N.m", "N·m", "ft·lbf", "kg", None, "Nmm"])
    got = unit_factors(s, quantity="moment")
    want = [unit_factor(str(t), quantity="moment") for t in s]
    np.testing.assert_array_equal(got.to_numpy(), [np.nan if w is None else w for w in want])
    assert got.isna().tolist() == [False, False, False, True, True, False]


def test_every_canonical_name_is_its_own_spelling():
    for quantity, table in {
        "length": LENGTH,
        "force": FORCE,
        "moment": MOMENT,
        "time": TIME,
        "mass": MASS,
    }.items():
        for name, factor in table.items():
            assert unit_name(name, quantity=quantity) == name
            assert unit_factor(name, quantity=quantity) == factor
