"""Satterthwaite degrees of freedom for linear contrasts of a REML linear mixed model.

For a contrast ``l'β`` of a fitted ``statsmodels`` MixedLM, the variance
``f(θ) = l' C(θ) l`` with ``C(θ) = (X' V(θ)⁻¹ X)⁻¹`` depends on the variance parameters
``θ`` (the random-effect covariance entries and the residual variance). Satterthwaite's
(1946) approximation gives

    df = 2 f(θ̂)² / (∇f(θ̂)' A ∇f(θ̂)),   A = 2 H⁻¹,

where ``H`` is the Hessian of the REML deviance ``−2 ℓ_R(θ)`` at the estimate (so ``A`` is
the asymptotic covariance of ``θ̂``). This is the method of ``lmerTest`` (Kuznetsova,
Brockhoff & Christensen 2017) and of ``emmeans`` with ``lmer.df = "satterthwaite"``;
gradients and Hessian are central finite differences of the closed-form deviance below,
evaluated at statsmodels' REML estimates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

__all__ = [
    "MixedParts",
    "RemlIntercept",
    "beta_cov",
    "fit_reml_intercept",
    "kenward_roger",
    "mixed_parts",
    "satterthwaite_df",
]


@dataclass(frozen=True)
class MixedParts:
    """A fitted REML mixed model reduced to what the deviance needs.

    Attributes
    ----------
    X, Z, y : list of numpy.ndarray
        Per subject: fixed-effects design ``(n_i, p)``, random-effects design ``(n_i, q)``,
        outcome ``(n_i,)``.
    theta : numpy.ndarray, shape (q(q+1)/2 + 1,)
        Lower triangle of the random-effect covariance ``G`` (row-major) then the residual
        variance σ², in outcome units squared.
    q : int
        Number of random effects per subject.
    """

    X: list[np.ndarray]
    Z: list[np.ndarray]
    y: list[np.ndarray]
    theta: np.ndarray
    q: int

    @cached_property
    def by_size(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The subjects grouped by their number of rows ``n``, each group stacked:
        ``X`` ``(m, n, p)``, ``Z`` ``(m, n, q)``, ``y`` ``(m, n)`` (so the deviance is a
        few batched solves, not a Python loop over subjects)."""
        sizes = np.array([len(y) for y in self.y])
        return [
            (
                np.stack([self.X[i] for i in idx]),
                np.stack([self.Z[i] for i in idx]),
                np.stack([self.y[i] for i in idx]),
            )
            for n in np.unique(sizes)
            for idx in [np.flatnonzero(sizes == n)]
        ]


def mixed_parts(res, /) -> MixedParts:
    """Per-subject designs and variance parameters of a statsmodels ``MixedLMResults``."""
    m = res.model
    g = np.atleast_2d(np.asarray(res.cov_re, dtype=float))
    q = g.shape[0]
    rows, cols = np.tril_indices(q)
    theta = np.concatenate([g[rows, cols], [float(res.scale)]])
    return MixedParts(
        [np.asarray(x, float) for x in m.exog_li],
        [np.asarray(z, float) for z in m.exog_re_li],
        [np.asarray(v, float) for v in m.endog_li],
        theta,
        q,
    )


class RemlIntercept(NamedTuple):
    """A random-intercept REML fit with what the small-sample steps need.

    Attributes
    ----------
    result : statsmodels MixedLMResults
    notes : list of str
        The fit's warnings (convergence, boundary), each once, whitespace collapsed.
    parts : MixedParts
        :func:`mixed_parts` of ``result``.
    names : list of str
        The fixed effects in ``fe_params`` order (the columns of a contrast ``L``).
    """

    result: object
    notes: list[str]
    parts: MixedParts
    names: list[str]


def fit_reml_intercept(formula: str, data, /, *, groups) -> RemlIntercept:
    """Fit ``formula`` with a random intercept per ``groups`` by REML (statsmodels'
    ``mixedlm``; L-BFGS, then BFGS, then Powell), recording its warnings instead of
    printing them."""
    import statsmodels.formula.api as smf

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = smf.mixedlm(formula, data, groups=groups).fit(
            reml=True, method=["lbfgs", "bfgs", "powell"]
        )
    notes = sorted({" ".join(str(w.message).split()) for w in rec})
    return RemlIntercept(res, notes, mixed_parts(res), list(res.fe_params.index))


def _g(theta: np.ndarray, q: int) -> np.ndarray:
    g = np.zeros((q, q))
    rows, cols = np.tril_indices(q)
    g[rows, cols] = theta[: len(rows)]
    return g + np.tril(g, -1).T


def _pieces(parts: MixedParts, theta: np.ndarray):
    """``X'V⁻¹X``, ``X'V⁻¹y``, ``y'V⁻¹y`` and ``log|V|`` summed over subjects."""
    g, s2 = _g(theta, parts.q), theta[-1]
    p = parts.X[0].shape[1]
    xvx, xvy, yvy, logdet = np.zeros((p, p)), np.zeros(p), 0.0, 0.0
    for x, z, y in parts.by_size:  # one batched solve per subject size
        v = z @ g @ z.transpose(0, 2, 1) + s2 * np.eye(y.shape[1])
        vx = np.linalg.solve(v, np.concatenate([x, y[:, :, None]], axis=2))
        xvx += np.einsum("mnp,mnr->pr", x, vx[:, :, :p])
        xvy += np.einsum("mnp,mn->p", x, vx[:, :, p])
        yvy += float(np.einsum("mn,mn->", y, vx[:, :, p]))
        chol = np.linalg.cholesky(v)
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2))))
    return xvx, xvy, yvy, logdet


def reml_deviance(parts: MixedParts, theta: np.ndarray, /) -> float:
    """``−2 ℓ_R(θ)`` (Harville 1977; Patterson & Thompson 1971), β profiled out."""
    xvx, xvy, yvy, logdet = _pieces(parts, theta)
    n = sum(len(y) for y in parts.y)
    p = xvx.shape[0]
    beta = np.linalg.solve(xvx, xvy)
    quad = yvy - beta @ xvy
    _, ld = np.linalg.slogdet(xvx)
    return float((n - p) * np.log(2 * np.pi) + logdet + ld + quad)


def _cov_beta(parts: MixedParts, theta: np.ndarray) -> np.ndarray:
    return np.linalg.inv(_pieces(parts, theta)[0])


def beta_cov(parts: MixedParts, /) -> np.ndarray:
    """``(X' V(θ̂)⁻¹ X)⁻¹``: the fixed effects' covariance as lme4 and lmerTest report it.

    (statsmodels' ``cov_params`` inverts the joint Hessian of fixed and variance
    parameters, which differs from this by a fraction of a percent in small samples.)
    """
    return _cov_beta(parts, parts.theta)


def _steps(theta: np.ndarray) -> np.ndarray:
    return 1e-4 * np.maximum(np.abs(theta), 1e-3 * max(float(np.max(np.abs(theta))), 1e-12))


def satterthwaite_df(parts: MixedParts, L: np.ndarray, /) -> np.ndarray:
    """Satterthwaite df of each row of ``L`` (contrasts ``l'β``).

    Parameters
    ----------
    parts : MixedParts
    L : numpy.ndarray, shape (k, p)
        Contrast rows over the fixed effects (statsmodels' ``fe_params`` order).

    Returns
    -------
    numpy.ndarray, shape (k,)
        Degrees of freedom; NaN where the variance-parameter Hessian is not positive
        definite (an estimate on the boundary, e.g. a zero random-effect variance).
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    th = parts.theta.astype(float)
    k = len(th)
    h = _steps(th)
    f0 = reml_deviance(parts, th)
    hess = np.zeros((k, k))
    grads = np.zeros((len(L), k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        fp, fm = reml_deviance(parts, th + ei), reml_deviance(parts, th - ei)
        hess[i, i] = (fp - 2 * f0 + fm) / h[i] ** 2
        cp, cm = _cov_beta(parts, th + ei), _cov_beta(parts, th - ei)
        grads[:, i] = np.einsum("kp,pr,kr->k", L, (cp - cm) / (2 * h[i]), L)
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            hess[i, j] = hess[j, i] = (
                reml_deviance(parts, th + ei + ej)
                - reml_deviance(parts, th + ei - ej)
                - reml_deviance(parts, th - ei + ej)
                + reml_deviance(parts, th - ei - ej)
            ) / (4 * h[i] * h[j])
    var = np.einsum("kp,pr,kr->k", L, _cov_beta(parts, th), L)
    try:
        if np.linalg.eigvalsh(hess)[0] <= 0:
            return np.full(len(L), np.nan)
        a = 2.0 * np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return np.full(len(L), np.nan)
    denom = np.einsum("ki,ij,kj->k", grads, a, grads)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2.0 * var**2 / denom, np.nan)


def _v_derivatives(parts: MixedParts) -> list[list[np.ndarray]]:
    """Per subject, ``∂V/∂θ_r`` for each variance parameter (V is linear in θ)."""
    q = parts.q
    rows, cols = np.tril_indices(q)
    out = []
    for z, y in zip(parts.Z, parts.y, strict=True):
        ds = []
        for a, b in zip(rows, cols, strict=True):
            e = np.zeros((q, q))
            e[a, b] = e[b, a] = 1.0
            ds.append(z @ e @ z.T)
        ds.append(np.eye(len(y)))
        out.append(ds)
    return out


def kenward_roger(parts: MixedParts, L: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
    """Kenward–Roger (1997) df and adjusted fixed-effect covariance for each row of ``L``.

    With ``Φ = (X'V⁻¹X)⁻¹``, ``P_i = X'V⁻¹V_iV⁻¹X``, ``Q_ij = X'V⁻¹V_iV⁻¹V_jV⁻¹X`` and ``W``
    the inverse expected REML information (``I_ij = ½ tr(ΠV_iΠV_j)``,
    ``Π = V⁻¹ − V⁻¹XΦX'V⁻¹``), the adjusted covariance is ``Φ_A = Φ + 2ΦΛΦ`` with
    ``Λ = Σ W_ij (Q_ij − P_iΦP_j)`` (the second-derivative term vanishes: V is linear in
    θ), and the df of a single contrast is ``m = 4 + 3/(ρ − 1)`` from ``A1``, ``A2``
    (Kenward & Roger 1997, eqs. 4–6 with ℓ = 1), as ``pbkrtest`` and ``emmeans`` with
    ``lmer.df = "kenward-roger"`` compute them.

    Returns
    -------
    df : numpy.ndarray, shape (k,)
        NaN where the information matrix is singular.
    cov : numpy.ndarray, shape (p, p)
        ``Φ_A``.
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    th = parts.theta.astype(float)
    g, s2 = _g(th, parts.q), th[-1]
    dv = _v_derivatives(parts)
    r = len(th)
    p = parts.X[0].shape[1]
    P = np.zeros((r, p, p))
    Q = np.zeros((r, r, p, p))
    tvv = np.zeros((r, r))
    for x, z, y, ds in zip(parts.X, parts.Z, parts.y, dv, strict=True):
        vinv = np.linalg.inv(z @ g @ z.T + s2 * np.eye(len(y)))
        a = [vinv @ d for d in ds]  # V⁻¹V_i
        ax = [ai @ vinv @ x for ai in a]  # V⁻¹V_iV⁻¹X
        for i in range(r):
            P[i] += x.T @ ax[i]
            for j in range(r):
                Q[i, j] += x.T @ a[i] @ ax[j]
                tvv[i, j] += np.sum(a[i] * a[j].T)
    phi = np.linalg.inv(
        sum(
            x.T @ np.linalg.solve(z @ g @ z.T + s2 * np.eye(len(y)), x)
            for x, z, y in zip(parts.X, parts.Z, parts.y, strict=True)
        )
    )
    info = np.empty((r, r))
    for i in range(r):
        for j in range(r):
            info[i, j] = 0.5 * (
                tvv[i, j] - 2 * np.trace(phi @ Q[i, j]) + np.trace(phi @ P[i] @ phi @ P[j])
            )
    try:
        w = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full(len(L), np.nan), phi
    lam = sum(w[i, j] * (Q[i, j] - P[i] @ phi @ P[j]) for i in range(r) for j in range(r))
    cov = phi + 2 * phi @ lam @ phi
    dfs = np.empty(len(L))
    for k, row in enumerate(L):
        theta_l = np.outer(row, row) / (row @ phi @ row)
        m = [theta_l @ phi @ P[i] @ phi for i in range(r)]
        tr = np.array([np.trace(mi) for mi in m])
        a1 = float(tr @ w @ tr)
        a2 = float(sum(w[i, j] * np.trace(m[i] @ m[j]) for i in range(r) for j in range(r)))
        b = (a1 + 6 * a2) / 2
        gg = (2 * a1 - 5 * a2) / (3 * a2)
        den = 3 + 2 * (1 - gg)
        c1, c2, c3 = gg / den, (1 - gg) / den, (3 - gg) / den
        e_star = 1 / (1 - a2)
        v_star = 2 * (1 + c1 * b) / ((1 - c2 * b) ** 2 * (1 - c3 * b))
        rho = v_star / (2 * e_star**2)
        dfs[k] = 4 + 3 / (rho - 1)
    return dfs, cov
