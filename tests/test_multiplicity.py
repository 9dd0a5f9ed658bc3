"""p_adjust against Holm (1979) and Benjamini & Hochberg (1995) worked by hand."""

import numpy as np
import pytest

from cxlab._check import ConfigError
from cxlab.models import p_adjust

P = np.array([0.01, 0.04, 0.03, 0.005])
# sorted 0.005, 0.01, 0.03, 0.04; m = 4
# Holm: x4, x3, x2, x1 -> 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
HOLM = [0.03, 0.06, 0.06, 0.02]
# BH: x4/1, x4/2, x4/3, x4/4 -> 0.02, 0.02, 0.04, 0.04 -> running min from the top
BH = [0.02, 0.04, 0.04, 0.02]


def test_holm_by_hand():
    np.testing.assert_allclose(p_adjust(P, method="holm"), HOLM, rtol=1e-12)


def test_benjamini_hochberg_by_hand():
    np.testing.assert_allclose(p_adjust(P, method="fdr_bh"), BH, rtol=1e-12)


def test_nan_is_left_out_of_the_family_and_none_is_identity():
    p = np.insert(P, 2, np.nan)
    got = p_adjust(p, method="holm")
    assert np.isnan(got[2])
    np.testing.assert_allclose(np.delete(got, 2), HOLM, rtol=1e-12)
    np.testing.assert_array_equal(p_adjust(p, method="none"), p)
    assert np.isnan(p_adjust([np.nan], method="fdr_bh")).all()


def test_an_unknown_method_names_the_allowed_ones():
    with pytest.raises(ConfigError, match="fdr_bh"):
        p_adjust(P, method="bonferroni")


def test_holm_is_multipletests_bit_for_bit_with_ties_and_ones():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(20)
    for m in (1, 2, 7, 40):
        p = rng.uniform(0, 0.6, m)
        p[: m // 3] = p[0]  # ties
        got = p_adjust(p, method="holm")
        np.testing.assert_array_equal(got, multipletests(p, method="holm")[1])
        assert got.max() <= 1.0


def test_holm_does_not_collect_the_whole_heap(monkeypatch):
    """statsmodels' Holm branch calls gc.collect() on every call: a pass over every object of
    the process, which in a test run or notebook cost more than the fits it adjusts."""
    import gc

    def refuse():
        raise AssertionError("p_adjust called gc.collect()")

    monkeypatch.setattr(gc, "collect", refuse)
    np.testing.assert_allclose(p_adjust(P, method="holm"), HOLM, rtol=1e-12)
