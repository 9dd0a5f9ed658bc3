"""Multiple-comparison adjustment of p-values (Holm 1979; Benjamini & Hochberg 1995)."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests

from cxlab._check import check_option

__all__ = ["CORRECTIONS", "p_adjust"]

#: the names a spec may write -> ``statsmodels.stats.multitest.multipletests`` methods
_STATSMODELS = {"holm": "holm", "fdr_bh": "fdr_bh"}
CORRECTIONS = (*_STATSMODELS, "none")


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
        Adjusted p-values in the input order over the non-NaN entries, equal (bit for bit)
        to ``statsmodels.stats.multitest.multipletests(p, method=method)[1]``. Holm is
        computed here with the same operations as statsmodels, because its ``"holm"``
        branch ends with a full ``gc.collect()``: a pass over every object of the process
        on each call, which in a long-lived process (a test run, a notebook, a calibration
        loop) cost more than the model fit it adjusts.
    """
    check_option("correction", method, CORRECTIONS)
    p = np.asarray(p_values, dtype=float)
    out = p.copy()
    ok = ~np.isnan(p)
    if method == "holm" and ok.any():
        out[ok] = _holm(p[ok])
    elif method != "none" and ok.any():
        out[ok] = multipletests(p[ok], method=_STATSMODELS[method])[1]
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of non-NaN ``p``, as ``multipletests(p, "holm")[1]``."""
    order = np.argsort(p)  # statsmodels' sort: ties in the same order
    adjusted = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted[adjusted > 1] = 1
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out
