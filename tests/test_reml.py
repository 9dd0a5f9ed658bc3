"""The profiled-REML random-slope engine against statsmodels MixedLM on the same data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf

from cxlab.models._reml import fit_random_slope
from cxlab.synth.truth import simulate_truth

FML = "pain_nrs ~ t * C(arm, Treatment('control'))"


@pytest.fixture(scope="module")
def data():
    d = simulate_truth(300, 5, seed=11).wide().dropna(subset=["pain_nrs"]).reset_index(drop=True)
    d["t"] = d["week"] / (d["week"].max() - d["week"].min())
    return d


def _statsmodels(d, fml=FML, re="~t"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm(fml, d, groups=d["label"], re_formula=re).fit(
            reml=True, method=["lbfgs"], gtol=1e-10
        )


def _ours(d, fml=FML):
    y, X = patsy.dmatrices(fml, d, return_type="dataframe")
    return fit_random_slope(
        y.to_numpy().ravel(), X.to_numpy(), d["t"].to_numpy(), d["label"].to_numpy()
    )


def test_estimates_equal_statsmodels_at_its_optimum(data):
    sm, ours = _statsmodels(data), _ours(data)
    assert sm.converged and ours.converged and not ours.boundary
    # within a thousandth of a standard error: the two optimisers' tolerances, no more
    se = np.sqrt(np.diag(ours.cov_beta))
    assert np.all(np.abs(ours.beta - sm.fe_params.to_numpy()) <= 1e-3 * se)
    np.testing.assert_allclose(ours.cov_re, np.asarray(sm.cov_re), rtol=1e-3, atol=1e-5)
    assert ours.sigma2 == pytest.approx(sm.scale, rel=1e-4)
    # the same restricted likelihood, and ours at least as high (it is a maximum)
    assert ours.reml_loglik == pytest.approx(sm.llf, abs=1e-5)
    assert ours.reml_loglik >= sm.llf - 1e-7
    assert ours.n_groups == data["label"].nunique() and ours.n_obs == len(data)


def test_standard_errors_are_the_model_based_ones(data):
    # sigma2 (X' V^-1 X)^-1, built here from the dense V of the fitted variance components
    ours = _ours(data)
    _, X = patsy.dmatrices(FML, data, return_type="dataframe")
    Xv = X.to_numpy()
    xvx = np.zeros((Xv.shape[1],) * 2)
    for _, idx in data.groupby("label").indices.items():
        Z = np.column_stack([np.ones(idx.size), data["t"].to_numpy()[idx]])
        V = ours.sigma2 * np.eye(idx.size) + Z @ ours.cov_re @ Z.T
        xvx += Xv[idx].T @ np.linalg.solve(V, Xv[idx])
    np.testing.assert_allclose(ours.cov_beta, np.linalg.inv(xvx), rtol=1e-8)


def test_no_slope_dispersion_ends_on_the_boundary_like_a_random_intercept_fit():
    # residuals orthogonal to [1, t] within each subject: every subject's OLS slope is
    # exactly 1, less dispersed than noise alone would make it, so the REML slope variance
    # is 0 and the model is the random-intercept model
    rng = np.random.default_rng(3)
    n, k = 150, 5
    g = np.repeat(np.arange(n), k)
    tk = np.linspace(0, 1, k)
    Z = np.column_stack([np.ones(k), tk])
    proj = np.eye(k) - Z @ np.linalg.pinv(Z)
    e = (rng.normal(0, 0.5, (n, k)) @ proj).ravel()
    t = np.tile(tk, n)
    y = 2.0 + 1.0 * t + rng.normal(0, 1.0, n)[g] + e
    X = np.column_stack([np.ones(n * k), t])
    ours = fit_random_slope(y, X, t, g)
    assert ours.boundary and ours.cov_re[1, 1] == pytest.approx(0.0, abs=1e-8)
    d = pd.DataFrame({"y": y, "t": t, "label": g})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ri = smf.mixedlm("y ~ t", d, groups=d["label"]).fit(reml=True)
    assert ours.reml_loglik == pytest.approx(ri.llf, abs=1e-6)
    np.testing.assert_allclose(ours.beta, ri.fe_params.to_numpy(), rtol=1e-6)
    assert ours.sigma2 == pytest.approx(ri.scale, rel=1e-4)  # statsmodels stops at ~1e-5
