"""Multiple-comparison adjustment of p-values (Holm 1979; Benjamini & Hochberg 1995)."""

from __future__ import annotations

import numpy as np

from cxlab._check import check_option

__all__ = ["CORRECTIONS", "p_adjust"]

CORRECTIONS = ("holm", "fdr_bh", "none")


def p_adjust(p_values, /, *, method: str = "holm") -> np.ndarray:
    """Adjust a family of p-values for multiple comparisons.

    Parameters
    ----------
    p_values : array-like of float, shape (m,)
        Unadjusted p-values; NaN entries are left out of the family and stay NaN.
    method : {"holm", "fdr_bh", "none"}
        ``"holm"``: Holm's (1979) step-down family-wise error control,
        ``p_adj(i) = max_{j <= i} min(1, (m - j + 1) p(j))`` over the sorted p-values.
        ``"fdr_bh"``: Benjamini & Hochberg's (1995) step-up false-discovery rate,
        ``p_adj(i) = min_{j >= i} min(1, m p(j) / j)``.
        ``"none"``: the p-values unchanged.

    Returns
    -------
    numpy.ndarray of float, shape (m,)
        Adjusted p-values in the input order; equal to
        ``statsmodels.stats.multitest.multipletests(p, method=method)[1]``.
    """
    check_option("correction", method, CORRECTIONS)
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0 or method == "none":
        out[ok] = q
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    j = np.arange(1, m + 1)
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - j + 1) * ranked))
    else:
        adj = np.minimum.accumulate(np.minimum(1.0, m * ranked / j)[::-1])[::-1]
    back = np.empty(m)
    back[order] = adj
    out[ok] = back
    return out
