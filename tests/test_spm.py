"""cxlab.models.spm against spm1d called directly on its bundled data, and by simulation."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import spm1d

from cxlab._check import CxlabError
from cxlab.models.spm import (
    paired_curves,
    sidak_alpha,
    spm_anova1rm,
    spm_paired,
    spm_regression,
    spm_two_sample,
)


def _direct(spm, alpha=0.05, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spm.inference(alpha, **kw)


def _same(result, si, q):
    assert result.threshold == pytest.approx(si.zstar, rel=1e-12)
    np.testing.assert_allclose(result.z, si.z, rtol=1e-12)
    assert len(result.clusters) == len(si.clusters)
    for mine, theirs in zip(result.clusters, si.clusters, strict=True):
        s, e = theirs.endpoints
        assert mine.start_pct == pytest.approx(s * 100 / (q - 1), rel=1e-12)
        assert mine.end_pct == pytest.approx(e * 100 / (q - 1), rel=1e-12)
        assert mine.p == pytest.approx(theirs.P, rel=1e-12)


def test_paired_reproduces_spm1d_on_the_plantar_arch_angle_data():
    ya, yb = spm1d.data.uv1d.tpaired.PlantarArchAngle().get_data()
    si = _direct(spm1d.stats.ttest_paired(ya, yb), two_tailed=True, interp=True)
    # spm_paired tests post − pre, spm1d's ttest_paired(YA, YB) tests YA − YB
    r = spm_paired(yb, ya)
    _same(r, si, ya.shape[1])
    # published figures of this example (spm1d docs): one cluster at the end of stance
    assert r.threshold == pytest.approx(3.939, abs=1e-3)
    assert len(r.clusters) == 1 and r.clusters[0].end_pct == pytest.approx(100.0)
    assert r.clusters[0].p == pytest.approx(0.0373, abs=1e-4)
    assert r.df == (9.0,) and r.n == 10 and r.alpha == 0.05


def test_permutation_paired_matches_spm1d_with_the_same_seed_and_restores_numpy_state():
    ya, yb = spm1d.data.uv1d.tpaired.PlantarArchAngle().get_data()
    np.random.seed(0)  # noqa: NPY002 (spm1d permutes with the global generator)
    si = _direct(spm1d.stats.nonparam.ttest_paired(ya, yb), two_tailed=True, iterations=500)
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    r = spm_paired(yb, ya, inference="permutation", permutations=500, seed=0)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002
    _same(r, si, ya.shape[1])
    assert r.permutations == 500 and r.seed == 0
    again = spm_paired(yb, ya, inference="permutation", permutations=500, seed=0)
    assert again.threshold == r.threshold and again.clusters == r.clusters


def test_two_sample_reproduces_spm1d():
    ya, yb = spm1d.data.uv1d.t2.SimulatedTwoLocalMax().get_data()
    si = _direct(spm1d.stats.ttest2(ya, yb, equal_var=False), two_tailed=True, interp=True)
    _same(spm_two_sample(ya, yb), si, ya.shape[1])
    si = _direct(spm1d.stats.ttest2(ya, yb, equal_var=True), two_tailed=True, interp=True)
    _same(spm_two_sample(ya, yb, equal_var=True), si, ya.shape[1])


def test_anova1rm_reproduces_spm1d():
    y, a, s = spm1d.data.uv1d.anova1rm.SpeedGRFcategoricalRM().get_data()
    si = _direct(spm1d.stats.anova1rm(y, a, s))
    r = spm_anova1rm(y, conditions=a, subjects=s)
    _same(r, si, y.shape[1])
    assert r.statistic == "F" and len(r.df) == 2


def test_permutation_anova1rm_runs_or_says_why_spm1d_cannot():
    # spm1d 0.4's non-parametric ANOVA calls NumPy 1 API (np.percentile(interpolation=),
    # np.trapz); where it cannot run, the error is a CxlabError naming the option and the fix
    y, a, s = spm1d.data.uv1d.anova1rm.SpeedGRFcategoricalRM().get_data()
    np.random.seed(3)  # noqa: NPY002 (spm1d permutes with the global generator)
    try:
        si = _direct(spm1d.stats.nonparam.anova1rm(y, a, s), iterations=200)
    except (TypeError, AttributeError):
        # spm1d's nonparam_old code fails only on NumPy 2 (the API it calls was removed there)
        assert int(np.__version__.split(".")[0]) >= 2
        want = r"inference: spm1d .*NumPy 2.*permutation.*parametric"
        with pytest.raises(CxlabError, match=want):
            spm_anova1rm(
                y, conditions=a, subjects=s, inference="permutation", permutations=200, seed=3
            )
    else:
        r = spm_anova1rm(
            y, conditions=a, subjects=s, inference="permutation", permutations=200, seed=3
        )
        _same(r, si, y.shape[1])


def test_regression_reproduces_spm1d():
    y, x = spm1d.data.uv1d.regress.SpeedGRF().get_data()
    si = _direct(spm1d.stats.regress(y, x), two_tailed=True, interp=True)
    _same(spm_regression(y, x), si, y.shape[1])


def test_sidak_correction_is_stated_and_applied():
    assert sidak_alpha(0.05, 1) == 0.05
    assert sidak_alpha(0.05, 3) == pytest.approx(1 - 0.95 ** (1 / 3))
    ya, yb = spm1d.data.uv1d.tpaired.PlantarArchAngle().get_data()
    r = spm_paired(yb, ya, n_tests=3)
    si = _direct(
        spm1d.stats.ttest_paired(ya, yb), alpha=sidak_alpha(0.05, 3), two_tailed=True, interp=True
    )
    assert r.alpha_family == 0.05 and r.n_tests == 3
    assert r.threshold == pytest.approx(si.zstar) and r.threshold > 3.94


def _smooth_noise(rng, j, q, fwhm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.random.seed(int(rng.integers(2**31)))  # noqa: NPY002 (randn1d uses it)
        return spm1d.rft1d.randn1d(j, q, fwhm, pad=True)


def test_an_effect_injected_in_a_known_window_is_found_there_and_nowhere_else():
    rng = np.random.default_rng(7)
    q, j, reps = 101, 20, 100
    bump = np.zeros(q)
    bump[30:51] = np.sin(np.linspace(0, np.pi, 21)) * 1.5  # +1.5 SD at 30-50 %
    found = elsewhere = 0
    for _ in range(reps):
        pre = _smooth_noise(rng, j, q, 15.0)
        post = pre + bump + _smooth_noise(rng, j, q, 15.0)
        r = spm_paired(pre, post)
        found += any(c.sign == 1 and c.start_pct < 50 and c.end_pct > 30 for c in r.clusters)
        elsewhere += any(c.end_pct < 25 or c.start_pct > 55 for c in r.clusters)
    assert found / reps >= 0.9
    # a cluster away from the effect is a family-wise false positive: about alpha
    assert elsewhere / reps <= 0.1


def test_null_curves_reject_at_the_nominal_rate():
    rng = np.random.default_rng(11)
    reps, hits = 300, 0
    for _ in range(reps):
        a, b = _smooth_noise(rng, 12, 101, 20.0), _smooth_noise(rng, 12, 101, 20.0)
        hits += spm_paired(a, b).significant
    rate = hits / reps
    # nominal 5 %; binomial SE at 300 reps is 1.3 %-points
    assert 0.015 <= rate <= 0.09, rate


def test_table_is_tidy_and_empty_without_clusters():
    rng = np.random.default_rng(3)
    a = _smooth_noise(rng, 10, 101, 20.0)
    r = spm_paired(a, a + 0.001 * _smooth_noise(rng, 10, 101, 20.0))
    t = r.table()
    assert list(t.columns)[:3] == ["test", "statistic", "inference"]
    assert len(t) == len(r.clusters)


def test_incomplete_and_unbalanced_data_are_refused_naming_what_is_missing():
    y = np.ones((4, 11))
    with pytest.raises(CxlabError, match="NaN"):
        bad = y.copy()
        bad[2, 3] = np.nan
        spm_paired(bad, y)
    labels = pd.DataFrame(
        {"subject_id": ["a", "a", "b", "c"], "session": ["pre", "post", "pre", "post"]}
    )
    with pytest.raises(CxlabError, match=r"b × post.*c × pre"):
        paired_curves(y, labels, pre="pre", post="post")
    with pytest.raises(CxlabError, match="exactly one curve per subject"):
        spm_anova1rm(
            np.random.default_rng(0).normal(size=(5, 11)),
            conditions=[1, 2, 1, 2, 1],
            subjects=[1, 1, 2, 2, 3],
        )


def test_paired_curves_average_trials_and_say_so():
    y = np.arange(5 * 3, dtype=float).reshape(5, 3)
    labels = pd.DataFrame(
        {"subject_id": ["a", "a", "a", "b", "b"], "session": ["pre", "pre", "post", "pre", "post"]}
    )
    p = paired_curves(y, labels, pre="pre", post="post")
    assert p.subjects == ["a", "b"]
    np.testing.assert_allclose(p.pre[0], y[:2].mean(axis=0))
    np.testing.assert_allclose(p.post[1], y[4])
    assert "averaged" in p.note
