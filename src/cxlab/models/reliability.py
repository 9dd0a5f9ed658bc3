"""Test–retest and inter-rater reliability: intraclass correlations, SEM, MDC95, SWC.

The six Shrout & Fleiss (1979) intraclass correlations are computed from the
two-way ANOVA of a complete targets × raters table (for within-session
reliability of a screening feature: targets = subject × session, raters = trial).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cxlab._check import ConfigError, message, warn

__all__ = [
    "IMPLAUSIBLE_ICC",
    "RETEST_COLUMNS",
    "icc_flag",
    "reliability",
    "retest_basis",
    "retest_reliability",
]

#: An ICC at or above this is implausible for human movement measures, whose trial-to-trial
#: ICCs are 0.6-0.98 (e.g. knee FPPA 0.59-0.88, Munro et al. 2012; CMJ height 0.98,
#: Markovic et al. 2004): repeats that agree this well are copies, or noise-free synthesis.
IMPLAUSIBLE_ICC = 0.999

_TYPES = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")
_DESCRIPTIONS = (
    "single rating, one-way random (raters differ per target)",
    "single rating, two-way random, absolute agreement",
    "single rating, two-way mixed, consistency",
    "mean of k ratings, one-way random",
    "mean of k ratings, two-way random, absolute agreement",
    "mean of k ratings, two-way mixed, consistency",
)
COLUMNS = [
    "type",
    "description",
    "icc",
    "ci_low",
    "ci_high",
    "f",
    "df1",
    "df2",
    "p_value",
    "n_targets",
    "n_raters",
    "sem",
    "mdc95",
    "typical_error",
    "swc",
    "between_sd",
]


def reliability(
    data: pd.DataFrame,
    /,
    *,
    targets: str,
    raters: str,
    ratings: str,
    by: str | Sequence[str] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Intraclass correlations and absolute reliability from repeated ratings.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table, one row per target × rater (e.g. subject-session × trial).
    targets, raters, ratings : str
        Columns naming the rated unit, the rater (or trial) and the numeric rating
        (in the measure's own unit).
    by : str or list of str, optional
        Grouping columns (e.g. ``"feature"``); one block of six rows per group.
    alpha : float
        1 − confidence level of the intervals (default 0.05 → 95 %).

    Returns
    -------
    pandas.DataFrame
        Six rows per group, one per ``type`` in Shrout & Fleiss notation
        ``ICC(1,1) ICC(2,1) ICC(3,1) ICC(1,k) ICC(2,k) ICC(3,k)`` (k = number of raters),
        with columns (after the ``by`` columns):

        - ``type``, ``description`` (plain words), ``icc``, ``ci_low``, ``ci_high``;
        - ``f``, ``df1``, ``df2``, ``p_value``: the F test of ICC = 0 (one-way
          ``MSR/MSW`` for ICC(1,·), two-way ``MSR/MSE`` otherwise);
        - ``n_targets``, ``n_raters``;
        - absolute reliability, *repeated on each of the six rows* (it does not depend
          on the ICC type), in the rating's unit:
          ``sem = sqrt(MSW)``, the standard error of measurement from the one-way
          within-target mean square (absolute agreement: systematic trial-to-trial shifts
          count as error; Stratford & Goldsmith 1997);
          ``mdc95 = 1.96 · √2 · sem`` (Weir 2005);
          ``typical_error = sqrt(MSE)``, the two-way residual mean square (Hopkins 2000;
          equals ``SD(trial2 − trial1) / √2`` for two trials);
          ``between_sd``, the SD (ddof 1) of the target means;
          ``swc = 0.2 · between_sd``, the smallest worthwhile change (Hopkins 2000).

    Notes
    -----
    With ``n`` targets, ``k`` raters and the mean squares for targets (MSR), raters (MSC),
    residual (MSE) and within targets (MSW), Shrout & Fleiss (1979, Table 1):
    ICC(1,1) = (MSR − MSW)/(MSR + (k−1)MSW); ICC(2,1) = (MSR − MSE)/(MSR + (k−1)MSE +
    k(MSC − MSE)/n); ICC(3,1) = (MSR − MSE)/(MSR + (k−1)MSE); ICC(1,k) = (MSR − MSW)/MSR;
    ICC(2,k) = (MSR − MSE)/(MSR + (MSC − MSE)/n); ICC(3,k) = (MSR − MSE)/MSR.
    Confidence intervals follow Shrout & Fleiss (1979) / McGraw & Wong (1996): exact F
    intervals for ICC(1,·) and ICC(3,·), Satterthwaite's approximation for ICC(2,·).

    Warnings
    --------
    Targets with a missing rating are dropped (with a :class:`~cxlab.CxlabWarning`);
    the ANOVA needs a complete table. ICCs depend on the spread between targets: the
    same measurement error gives a low ICC in a homogeneous sample. Use ``sem``/``mdc95``
    for decisions about individuals.

    Examples
    --------
    >>> import pandas as pd
    >>> x = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> df = pd.DataFrame([(t, j, v) for t, row in enumerate(x) for j, v in enumerate(row)],
    ...                   columns=["target", "judge", "rating"])
    >>> reliability(df, targets="target", raters="judge", ratings="rating")["icc"].round(2).tolist()
    [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]
    """
    by_cols = [by] if isinstance(by, str) else list(by or [])
    missing = [c for c in (*by_cols, targets, raters, ratings) if c not in data.columns]
    if missing:
        raise ConfigError(
            message(
                "column not found",
                field=", ".join(missing),
                fix=f"use one of {', '.join(map(str, data.columns))}",
            )
        )
    if not pd.api.types.is_numeric_dtype(data[ratings]) or pd.api.types.is_bool_dtype(
        data[ratings]
    ):
        raise ConfigError(
            message(
                "must be numeric",
                field=ratings,
                value=str(data[ratings].dtype),
                fix="convert the ratings to numbers",
            )
        )
    if not 0 < alpha < 1:
        raise ConfigError(message("must be between 0 and 1", field="alpha", value=alpha))
    if not by_cols:
        return _one_block(data, targets, raters, ratings, alpha, where=None)
    blocks = []
    for key, sub in data.groupby(by_cols, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        block = _one_block(
            sub, targets, raters, ratings, alpha, where=dict(zip(by_cols, key, strict=True))
        )
        for col, val in zip(by_cols[::-1], key[::-1], strict=True):
            block.insert(0, col, val)
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def _one_block(data, targets, raters, ratings, alpha, *, where) -> pd.DataFrame:
    label = "" if where is None else " in " + ", ".join(f"{k}={v!r}" for k, v in where.items())
    dup = data.duplicated([targets, raters])
    if dup.any():
        row = data.loc[dup, [targets, raters]].iloc[0].tolist()
        raise ConfigError(
            message(
                f"has {int(dup.sum())} duplicate target × rater rows{label}",
                field=f"{targets}, {raters}",
                value=row,
                fix="average or remove repeated ratings first",
            )
        )
    wide = data.pivot(index=targets, columns=raters, values=ratings).sort_index()
    wide = wide.reindex(sorted(wide.columns, key=str), axis=1)
    incomplete = wide.isna().any(axis=1)
    if incomplete.any():
        warn(
            f"dropped {int(incomplete.sum())} target(s) with a missing rating{label}",
            field=targets,
            value=wide.index[incomplete].tolist()[:5],
        )
        wide = wide.loc[~incomplete]
    x = wide.to_numpy(dtype=float)
    n, k = x.shape
    if n < 2 or k < 2:
        raise ConfigError(
            message(
                f"needs at least 2 complete targets and 2 raters{label}",
                field=f"{targets}, {raters}",
                value=(n, k),
                fix="add repeated ratings (e.g. trials) for more targets",
            )
        )
    grand = x.mean()
    row_means, col_means = x.mean(axis=1), x.mean(axis=0)
    ss_r = k * np.sum((row_means - grand) ** 2)
    ss_c = n * np.sum((col_means - grand) ** 2)
    ss_t = np.sum((x - grand) ** 2)
    ss_e = ss_t - ss_r - ss_c
    msr, msc = ss_r / (n - 1), ss_c / (k - 1)
    mse = ss_e / ((n - 1) * (k - 1))
    msw = (ss_c + ss_e) / (n * (k - 1))

    with np.errstate(divide="ignore", invalid="ignore"):
        icc1 = (msr - msw) / (msr + (k - 1) * msw)
        icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        icc3 = (msr - mse) / (msr + (k - 1) * mse)
        icc1k = (msr - msw) / msr
        icc2k = (msr - mse) / (msr + (msc - mse) / n)
        icc3k = (msr - mse) / msr

        q = 1 - alpha / 2
        df1, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
        f1, f3 = msr / msw, msr / mse
        f1_l, f1_u = f1 / stats.f.ppf(q, df1, df_w), f1 * stats.f.ppf(q, df_w, df1)
        f3_l, f3_u = f3 / stats.f.ppf(q, df1, df_e), f3 * stats.f.ppf(q, df_e, df1)
        ci1 = ((f1_l - 1) / (f1_l + k - 1), (f1_u - 1) / (f1_u + k - 1))
        ci1k = (1 - 1 / f1_l, 1 - 1 / f1_u)
        ci3 = ((f3_l - 1) / (f3_l + k - 1), (f3_u - 1) / (f3_u + k - 1))
        ci3k = (1 - 1 / f3_l, 1 - 1 / f3_u)
        # Satterthwaite degrees of freedom for ICC(2,1) (McGraw & Wong 1996, Table 7).
        fj = msc / mse
        vn = df_e * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        vd = df1 * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
        v = vn / vd
        fu, fl = stats.f.ppf(q, df1, v), stats.f.ppf(q, v, df1)
        lo2 = n * (msr - fu * mse) / (fu * (k * msc + (k * n - k - n) * mse) + n * msr)
        hi2 = n * (fl * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fl * msr)
        ci2 = (lo2, hi2)
        ci2k = (lo2 * k / (1 + lo2 * (k - 1)), hi2 * k / (1 + hi2 * (k - 1)))

    p1, p3 = stats.f.sf(f1, df1, df_w), stats.f.sf(f3, df1, df_e)
    sem = np.sqrt(msw)
    between_sd = float(np.std(row_means, ddof=1))
    rows = {
        "type": list(_TYPES),
        "description": list(_DESCRIPTIONS),
        "icc": [icc1, icc2, icc3, icc1k, icc2k, icc3k],
        "ci_low": [ci1[0], ci2[0], ci3[0], ci1k[0], ci2k[0], ci3k[0]],
        "ci_high": [ci1[1], ci2[1], ci3[1], ci1k[1], ci2k[1], ci3k[1]],
        "f": [f1, f3, f3, f1, f3, f3],
        "df1": [float(df1)] * 6,
        "df2": [float(df_w), float(df_e), float(df_e), float(df_w), float(df_e), float(df_e)],
        "p_value": [p1, p3, p3, p1, p3, p3],
        "n_targets": [n] * 6,
        "n_raters": [k] * 6,
        "sem": [sem] * 6,
        "mdc95": [1.96 * np.sqrt(2) * sem] * 6,
        "typical_error": [np.sqrt(mse)] * 6,
        "swc": [0.2 * between_sd] * 6,
        "between_sd": [between_sd] * 6,
    }
    out = pd.DataFrame(rows, columns=COLUMNS)
    float_cols = [c for c in COLUMNS if c not in ("type", "description", "n_targets", "n_raters")]
    out[float_cols] = out[float_cols].astype(float)
    return out


#: :func:`retest_reliability` columns after ``outcome``: the :data:`COLUMNS` of the
#: ICC(2,1) row, then the pairs' ``n_pairs`` and ``interval_days`` (median, d).
RETEST_COLUMNS = [*COLUMNS, "n_pairs", "interval_days"]


def icc_flag(icc, /) -> np.ndarray:
    """The reliability table's ``flag`` for each ICC: a warning where it is implausibly high.

    Parameters
    ----------
    icc : array_like, shape (n,)
        Intraclass correlations (NaN allowed).

    Returns
    -------
    numpy.ndarray of str, shape (n,)
        ``"implausible: ICC ≥ 0.999, repeat trials nearly identical; check the data"`` where
        ``icc ≥ IMPLAUSIBLE_ICC``, else ``""``. A flagged row gives no SEM/MDC95 to the
        responder analysis (its measurement error would be ~0).
    """
    x = np.asarray(icc, dtype=float)
    text = f"implausible: ICC ≥ {IMPLAUSIBLE_ICC:g}, repeat trials nearly identical; check the data"
    return np.where(np.nan_to_num(x, nan=-np.inf) >= IMPLAUSIBLE_ICC, text, "")


def retest_reliability(pairs: pd.DataFrame, /, *, alpha: float = 0.05) -> pd.DataFrame:
    """Between-session reliability of each outcome from test–retest pairs.

    Parameters
    ----------
    pairs : pandas.DataFrame
        The store's ``retest`` table (long: ``subject_id``, ``outcome``, ``test`` 1 or 2,
        ``value`` in the outcome's unit, ``interval_days`` in d, may be NaN), or the same
        pairs wide with ``value_1`` and ``value_2``.
    alpha : float
        1 − confidence level of the ICC interval.

    Returns
    -------
    pandas.DataFrame
        One row per outcome with at least 3 complete pairs: ``outcome`` and
        :data:`RETEST_COLUMNS` — ICC(2,1) (two-way random, absolute agreement, single
        measure; Shrout & Fleiss 1979) with its CI, ``sem`` (√MSW), ``mdc95``
        (1.96·√2·SEM, Weir 2005), ``typical_error`` (SD of the differences / √2, Hopkins
        2000), ``n_pairs`` and the median ``interval_days`` (NaN when none given).

    Warnings
    --------
    The MDC is only as general as the pairs: tests days apart by the same tester, in a
    sample as varied as the study's. An outcome with fewer than 3 pairs is left out with
    a :class:`~cxlab.CxlabWarning`.
    """
    if "test" in pairs.columns and "value" in pairs.columns:
        pairs = _wide_pairs(pairs)
    need = ["subject_id", "outcome", "value_1", "value_2"]
    missing = [c for c in need if c not in pairs.columns]
    if missing:
        raise ConfigError(
            message(
                "column not found",
                field=", ".join(missing),
                fix="pass the store's retest table (cxlab ingest-retest)",
            )
        )
    p = pairs.dropna(subset=["value_1", "value_2"])
    if "interval_days" not in p.columns:
        p = p.assign(interval_days=np.nan)
    out = []
    for outcome, g in p.groupby("outcome", sort=True):
        if len(g) < 3:
            warn(
                f"has {len(g)} test-retest pair(s), fewer than 3; no reliability from the sheet",
                field=str(outcome),
                fix="add pairs to the test-retest sheet",
            )
            continue
        long = pd.DataFrame(
            {
                "target": np.concatenate([g["subject_id"].to_numpy()] * 2),
                "rater": np.repeat(["1", "2"], len(g)),
                "rating": np.concatenate([g["value_1"].to_numpy(), g["value_2"].to_numpy()]),
            }
        )
        r = reliability(long, targets="target", raters="rater", ratings="rating", alpha=alpha)
        r = r[r["type"] == "ICC(2,1)"].copy()
        r.insert(0, "outcome", outcome)
        r["n_pairs"] = len(g)
        days = g["interval_days"].dropna()
        r["interval_days"] = float(days.median()) if len(days) else np.nan
        out.append(r)
    if not out:
        return pd.DataFrame(columns=["outcome", *RETEST_COLUMNS])
    return pd.concat(out, ignore_index=True)[["outcome", *RETEST_COLUMNS]]


def _wide_pairs(long: pd.DataFrame) -> pd.DataFrame:
    """The long ``retest`` table as one row per subject × outcome (value_1, value_2)."""
    keys = ["subject_id", "outcome"]
    w = long.pivot_table(index=keys, columns="test", values="value", aggfunc="first")
    w = w.rename(columns={1: "value_1", 2: "value_2"}).reset_index()
    for c in ("value_1", "value_2"):
        if c not in w.columns:
            w[c] = np.nan
    if "interval_days" in long.columns:
        days = long.groupby(keys, sort=False)["interval_days"].first().reset_index()
        w = w.merge(days, on=keys, how="left")
    return w


def retest_basis(n_pairs: int, interval_days: float, /) -> str:
    """The sentence naming a test–retest sheet's MDC source (starts with "between-session")."""
    when = (
        f"median interval {interval_days:g} d"
        if np.isfinite(interval_days)
        else "interval not given"
    )
    return f"between-session (test-retest sheet, n = {int(n_pairs)}, {when})"
