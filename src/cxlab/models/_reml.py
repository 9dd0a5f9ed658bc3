"""Profiled REML for a linear mixed model with a random intercept and slope per subject.

The model is ``y_i = X_i β + Z_i b_i + ε_i`` for subject i, with ``Z_i = [1, t_i]``,
``b_i ~ N(0, σ² Λ)``, ``ε_i ~ N(0, σ² I)``, and ``Λ = L Lᵀ`` with ``L`` lower triangular
(``θ = (L11, L21, L22)``), the parameterisation of lme4 (Bates et al. 2015, *J Stat Softw*
67(1), §3). For fixed θ, β and σ² have closed forms and the REML criterion is profiled::

    −2 ℓ_R(θ) = Σ_i log|I + Lᵀ Z_iᵀ Z_i L| + log|Xᵀ V⁻¹ X| + (n − p) (1 + log(2π r² / (n − p)))

with ``V_i = I + Z_i Λ Z_iᵀ``, ``V_i⁻¹ = I − Z_i L M_i⁻¹ Lᵀ Z_iᵀ``, ``M_i = I + Lᵀ Z_iᵀ Z_i L``
(Woodbury; determinant lemma), ``r² = yᵀV⁻¹y − β̂ᵀ XᵀV⁻¹y``. Every subject's contribution
needs only its cross-products ``Z_iᵀZ_i`` (2 × 2), ``Z_iᵀX_i`` (2 × p), ``Z_iᵀy_i`` (2), so each
evaluation is a handful of batched 2 × 2 solves over all subjects at once (no Python loop
over subjects). θ is optimised with L-BFGS-B from several starts, L11, L22 ≥ 0 (the boundary
is allowed, as in lme4).

This is a private engine of :mod:`cxlab.models`; it returns the same estimates as
statsmodels' ``MixedLM(..., re_formula="~time").fit(reml=True)`` and R's
``lme4::lmer(y ~ ... + (time | subject), REML = TRUE)`` at their optimum (tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["RemlFit", "fit_random_slope"]

_LOG2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class RemlFit:
    """A profiled-REML fit.

    Attributes
    ----------
    beta : ndarray, shape (p,)
        Fixed effects.
    cov_beta : ndarray, shape (p, p)
        ``σ² (Xᵀ V⁻¹ X)⁻¹`` (model-based covariance of β̂).
    sigma2 : float
        Residual variance σ².
    cov_re : ndarray, shape (2, 2)
        Random-effect covariance ``σ² Λ`` (intercept, slope).
    theta : ndarray, shape (3,)
        ``(L11, L21, L22)`` at the optimum (relative Cholesky factor).
    reml_loglik : float
        Restricted log-likelihood at the optimum.
    converged : bool
        Whether the optimiser reported success.
    n_obs, n_groups : int
    boundary : bool
        Whether Λ is singular at the optimum (a variance or correlation on its boundary).
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2: float
    cov_re: np.ndarray
    theta: np.ndarray
    reml_loglik: float
    converged: bool
    n_obs: int
    n_groups: int
    boundary: bool


class _Crossprod:
    """Per-subject cross-products, computed once (vectorised with ``np.bincount``)."""

    def __init__(self, y: np.ndarray, X: np.ndarray, t: np.ndarray, g: np.ndarray):
        codes, k = _codes(g)
        self.n_groups = k
        n, p = X.shape

        def gsum(w):
            return np.bincount(codes, weights=w, minlength=k)

        self.a, self.b, self.c = gsum(np.ones(n)), gsum(t), gsum(t * t)  # ZᵢᵀZᵢ entries
        self.U = np.column_stack([gsum(X[:, j]) for j in range(p)])  # 1ᵀXᵢ, (k, p)
        self.W = np.column_stack([gsum(t * X[:, j]) for j in range(p)])  # tᵀXᵢ, (k, p)
        self.zy0, self.zy1 = gsum(y), gsum(t * y)  # Zᵢᵀyᵢ
        self.XtX = X.T @ X
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self.n, self.p = n, p

    def parts(self, theta: np.ndarray):
        """``(XᵀV⁻¹X, XᵀV⁻¹y, yᵀV⁻¹y, Σ log|M_i|)`` for relative factor θ.

        Written out for 2 × 2 blocks so each term is an elementwise operation over all
        subjects (or one (k × p)ᵀ(k × p) product).
        """
        l1, l2, l3 = (float(v) for v in theta)
        a, b, c = self.a, self.b, self.c
        # S L with S = ZᵢᵀZᵢ = [[a, b], [b, c]], L = [[l1, 0], [l2, l3]]
        s00, s01 = a * l1 + b * l2, b * l3
        s10, s11 = b * l1 + c * l2, c * l3
        # M = I + Lᵀ S L (symmetric)
        m00 = 1.0 + l1 * s00 + l2 * s10
        m01 = l1 * s01 + l2 * s11
        m11 = 1.0 + l3 * s11
        det = m00 * m11 - m01 * m01
        i00, i01, i11 = m11 / det, -m01 / det, m00 / det  # M⁻¹
        # A = L M⁻¹ Lᵀ (symmetric): V⁻¹ = I − Z A Zᵀ
        a00 = l1 * l1 * i00
        a01 = l1 * (l2 * i00 + l3 * i01)
        a11 = l2 * l2 * i00 + 2.0 * l2 * l3 * i01 + l3 * l3 * i11
        U, W = self.U, self.W
        cross = U.T @ (a01[:, None] * W)
        XVX = self.XtX - (U.T @ (a00[:, None] * U) + cross + cross.T + W.T @ (a11[:, None] * W))
        r0 = a00 * self.zy0 + a01 * self.zy1  # A Zᵀy, per subject
        r1 = a01 * self.zy0 + a11 * self.zy1
        XVy = self.Xty - (U.T @ r0 + W.T @ r1)
        yVy = self.yty - float(self.zy0 @ r0 + self.zy1 @ r1)
        return XVX, XVy, yVy, float(np.log(det).sum())


def _codes(g: np.ndarray) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(g), return_inverse=True)
    return codes.astype(np.intp), int(codes.max()) + 1


def _criterion(theta: np.ndarray, cp: _Crossprod) -> float:
    """−2 × restricted log-likelihood, profiled over β and σ²."""
    XVX, XVy, yVy, logdet_m = cp.parts(theta)
    try:
        c = np.linalg.cholesky(XVX)
    except np.linalg.LinAlgError:
        return np.inf
    beta_part = np.linalg.solve(c, XVy)
    r2 = yVy - float(beta_part @ beta_part)
    dof = cp.n - cp.p
    if not r2 > 0:
        return np.inf
    return (
        logdet_m + 2.0 * float(np.log(np.diag(c)).sum()) + dof * (1.0 + _LOG2PI + np.log(r2 / dof))
    )


def fit_random_slope(
    y, X, t, groups, /, *, starts=None, tol: float = 1e-12, polish: bool = False
) -> RemlFit:
    """REML fit of ``y ~ X`` with a correlated random intercept and slope of ``t`` per group.

    Parameters
    ----------
    y : array_like, shape (n,)
        Outcome, any unit.
    X : array_like, shape (n, p)
        Fixed-effects design (full column rank; include the intercept column).
    t : array_like, shape (n,)
        The random-slope covariate (time, rescaled as the caller likes).
    groups : array_like, shape (n,)
        Subject of each row.
    starts : sequence of array_like, optional
        Starting θ values; default θ = (1, 0, 1) (random-effect SDs equal to the residual
        SD, as lme4 starts), then two more (small and large variances) only when the first
        ends on the boundary or does not converge, so a boundary optimum is confirmed.
    tol : float
        Optimiser tolerance on the criterion and the projected gradient.
    polish : bool
        Refine the optimum with a derivative-free Nelder–Mead search (θ to 1e-9, at most
        600 evaluations). The
        finite-difference gradients of L-BFGS-B stop where the criterion is flat to
        rounding, which leaves variance components about 1e-5 (relative) from lme4's; the
        polish brings them to about 1e-6 at a few hundred cheap evaluations. The analysis
        path polishes; power simulations, which need only the test, do not.

    Returns
    -------
    RemlFit
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    t = np.asarray(t, dtype=float)
    cp = _Crossprod(y, X, t, np.asarray(groups))
    bounds = [(0.0, None), (None, None), (0.0, None)]
    default = starts is None
    starts = [[1.0, 0.0, 1.0], [0.3, 0.0, 0.3], [3.0, 0.0, 3.0]] if default else list(starts)
    best = None
    for k, s in enumerate(starts):
        r = optimize.minimize(
            _criterion,
            np.asarray(s, float),
            args=(cp,),
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": tol, "gtol": 1e-9, "maxiter": 2000},
        )
        if best is None or r.fun < best.fun:
            best = r
        if default and k == 0 and r.success and min(r.x[0], r.x[2]) > 1e-4:
            break  # an interior optimum from the standard start: no need for more starts
    converged = bool(best.success)
    if not converged and np.isfinite(best.fun):
        # L-BFGS-B often stops on a line-search failure right at the optimum (the
        # criterion is flat to machine precision there): confirm with derivative-free Powell
        # from its end point; converged when Powell agrees to 1e-9 relative.
        r2 = optimize.minimize(
            _criterion,
            best.x,
            args=(cp,),
            method="Powell",
            bounds=bounds,
            options={"xtol": 1e-8, "ftol": 1e-12, "maxfev": 4000},
        )
        converged = bool(r2.success) or abs(r2.fun - best.fun) <= 1e-9 * max(1.0, abs(best.fun))
        if r2.fun < best.fun:
            best = r2
    if polish and np.isfinite(best.fun):
        r3 = optimize.minimize(
            _criterion,
            best.x,
            args=(cp,),
            method="Nelder-Mead",
            bounds=bounds,
            # the criterion is a sum over subjects: its rounding error grows with its size
            options={"xatol": 1e-9, "fatol": 1e-13 * max(1.0, abs(best.fun)), "maxfev": 600},
        )
        if r3.fun <= best.fun:
            best = r3
    theta = np.asarray(best.x, dtype=float)
    XVX, XVy, yVy, _ = cp.parts(theta)
    beta = np.linalg.solve(XVX, XVy)
    dof = cp.n - cp.p
    sigma2 = float((yVy - beta @ XVy) / dof)
    L = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
    lam = L @ L.T
    boundary = bool(min(theta[0], theta[2]) <= 1e-6 * max(1.0, abs(theta).max()))
    return RemlFit(
        beta=beta,
        cov_beta=sigma2 * np.linalg.inv(XVX),
        sigma2=sigma2,
        cov_re=sigma2 * lam,
        theta=theta,
        reml_loglik=-0.5 * float(best.fun),
        converged=converged and bool(np.isfinite(best.fun)),
        n_obs=cp.n,
        n_groups=cp.n_groups,
        boundary=boundary,
    )
