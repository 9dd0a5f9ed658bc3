"""Statistical parametric mapping (SPM) of whole curves, on ``spm1d``.

SPM tests a hypothesis at every node of a time-normalised curve and controls the
family-wise error over the whole curve with random field theory (parametric; Friston et
al. 1994; Pataky 2010, *J Biomech* 43:1976) or with permutations (non-parametric; Nichols &
Holmes 2002, *Hum Brain Mapp* 15:1). The statistics are those of ``spm1d``
(Pataky 2012, *Comput Methods Biomech Biomed Engin* 15:295); this module wraps its calls in
typed results, states α, tails and any correction, and refuses unbalanced or incomplete
data instead of imputing.

Every function takes curves as ``(J, Q)`` arrays (J trials or participants, Q nodes) as
built by :func:`cxlab.features.curves.curve_matrix`; :func:`paired_curves` pairs two
sessions of a curves table by participant and names every participant × session missing.

.. warning::
   ``spm1d`` needs complete, balanced data: one curve per participant and condition, the
   same nodes in every curve, no NaN. Several trials of a participant are averaged first
   (stated in the result's ``note``); a participant missing a session is an error naming
   them, never a silently dropped row.
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypedDict, Unpack

import numpy as np
import pandas as pd

from cxlab._check import CxlabError, check_option, message

__all__ = [
    "SpmCluster",
    "SpmResult",
    "paired_curves",
    "sidak_alpha",
    "spm_anova1rm",
    "spm_paired",
    "spm_regression",
    "spm_two_sample",
]

Test = Literal["paired", "two_sample", "anova1rm", "regression"]
Inference = Literal["parametric", "permutation"]


class _SpmOptions(TypedDict, total=False):
    """The keyword options of every ``spm_*`` test (meaning and defaults: :func:`spm_paired`)."""

    alpha: float
    inference: Inference
    permutations: int
    seed: int | None
    n_tests: int
    pct: object
    note: str


class _TOptions(_SpmOptions, total=False):
    """:class:`_SpmOptions` and ``two_tailed``, for the SPM{t} tests."""

    two_tailed: bool


class SpmCluster(NamedTuple):
    """One supra-threshold cluster: where the curves differ.

    ``start_pct``/``end_pct`` are % of the phase (interpolated threshold crossings); ``p``
    is the cluster-level probability; ``sign`` is +1 where the statistic is above
    +threshold, −1 below −threshold (0 for F); ``peak`` is the extreme statistic value.
    """

    start_pct: float
    end_pct: float
    p: float
    sign: int
    peak: float


@dataclass(frozen=True)
class SpmResult:
    """The outcome of one SPM test.

    Attributes
    ----------
    test : {"paired", "two_sample", "anova1rm", "regression"}
    statistic : {"t", "F"}
    inference : {"parametric", "permutation"}
    alpha : float
        The α used for this curve (after any correction).
    alpha_family : float
        The nominal family-wise α before correction.
    n_tests : int
        Curves tested in the family (the correction is Šidák over ``n_tests``).
    two_tailed : bool
    z : ndarray, shape (Q,)
        The SPM{t} or SPM{F} curve.
    threshold : float
        Critical value: where ``|z|`` (t, two-tailed), ``z`` (t, one-tailed) or ``z`` (F)
        exceeds it, H0 is rejected.
    df : tuple of float
        Degrees of freedom (one for t, two for F).
    n : int
        Curves (J) that entered the test.
    pct : ndarray, shape (Q,)
        Node positions, % of the phase.
    clusters : tuple of SpmCluster
    permutations : int or None
        Permutations used (non-parametric), else None.
    seed : int or None
    note : str
        What was done to the data (averaging of trials, pairing) in words.
    """

    test: Test
    statistic: Literal["t", "F"]
    inference: Inference
    alpha: float
    alpha_family: float
    n_tests: int
    two_tailed: bool
    z: np.ndarray
    threshold: float
    df: tuple[float, ...]
    n: int
    pct: np.ndarray
    clusters: tuple[SpmCluster, ...]
    permutations: int | None = None
    seed: int | None = None
    note: str = ""

    @property
    def significant(self) -> bool:
        """Whether any node exceeded the threshold."""
        return len(self.clusters) > 0

    def table(self) -> pd.DataFrame:
        """Tidy clusters: one row per cluster (none when H0 is not rejected).

        Columns ``test, statistic, inference, alpha, two_tailed, threshold, start_pct,
        end_pct, p, sign, peak``.
        """
        rows = [
            {
                "test": self.test,
                "statistic": self.statistic,
                "inference": self.inference,
                "alpha": self.alpha,
                "two_tailed": self.two_tailed,
                "threshold": self.threshold,
                **c._asdict(),
            }
            for c in self.clusters
        ]
        cols = [
            "test",
            "statistic",
            "inference",
            "alpha",
            "two_tailed",
            "threshold",
            *SpmCluster._fields,
        ]
        return pd.DataFrame(rows, columns=cols)


def sidak_alpha(alpha: float, n_tests: int) -> float:
    """Per-test α keeping the family-wise error at ``alpha`` over ``n_tests`` independent tests.

    ``1 − (1 − α)^(1/k)`` (Šidák 1967), the correction ``spm1d`` suggests for several curves.
    """
    if not 0 < alpha < 1:
        raise CxlabError(
            message("must be in (0, 1)", field="alpha", value=alpha, fix="use e.g. 0.05")
        )
    if int(n_tests) != n_tests or n_tests < 1:
        raise CxlabError(
            message(
                "must be a whole number ≥ 1",
                field="n_tests",
                value=n_tests,
                fix="count the curves tested in the run",
            )
        )
    return float(alpha) if int(n_tests) == 1 else 1.0 - (1.0 - alpha) ** (1.0 / int(n_tests))


def _curves(y, name: str, *, min_rows: int = 2) -> np.ndarray:
    a = np.asarray(y, dtype=float)
    if a.ndim != 2 or a.shape[0] < min_rows or a.shape[1] < 2:
        raise CxlabError(
            message(
                f"must be a (J, Q) array with J ≥ {min_rows} curves and Q ≥ 2 nodes",
                field=name,
                value=f"shape {a.shape}",
                fix="pass one time-normalised curve per row",
            )
        )
    bad = ~np.isfinite(a)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise CxlabError(
            message(
                f"has missing (NaN) values in {rows.size} curve(s), rows {list(rows[:10])}",
                field=name,
                fix="spm1d needs complete curves: fill short gaps before time "
                "normalisation or leave those trials out explicitly",
            )
        )
    return a


def _pct(q: int, pct) -> np.ndarray:
    return np.linspace(0.0, 100.0, q) if pct is None else np.asarray(pct, dtype=float)


@contextlib.contextmanager
def _seeded(seed: int | None):
    """spm1d's permutations draw from NumPy's global generator: seed it, then restore it."""
    state = np.random.get_state()  # noqa: NPY002 (spm1d draws from the global generator)
    try:
        if seed is not None:
            np.random.seed(int(seed))  # noqa: NPY002
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def _run(
    test: Test,
    make_param,
    make_nonparam,
    *,
    q: int,
    n: int,
    statistic: Literal["t", "F"],
    alpha: float = 0.05,
    two_tailed: bool = True,
    inference: Inference = "parametric",
    permutations: int = 10000,
    seed: int | None = None,
    n_tests: int = 1,
    pct=None,
    note: str = "",
) -> SpmResult:
    """Run one test built by ``make_param``/``make_nonparam`` with the options (and the
    defaults) every public ``spm_*`` function takes; see :func:`spm_paired` for them."""
    check_option("inference", inference, ("parametric", "permutation"))
    a = sidak_alpha(alpha, n_tests)
    tails = bool(two_tailed) if statistic == "t" else False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spm1d's own deprecation chatter
        if inference == "parametric":
            spm = make_param()
            si = (
                spm.inference(a, two_tailed=tails, interp=True)
                if statistic == "t"
                else spm.inference(a)
            )
            perms = None
        else:
            spm = make_nonparam()
            n_unique = int(getattr(spm, "nPermUnique", -1) or -1)
            if 0 < n_unique < np.ceil(1.0 / a):
                raise CxlabError(
                    message(
                        f"allows only {n_unique} distinct permutations, too few for "
                        f"α = {a:.4g} (at least {int(np.ceil(1.0 / a))} needed)",
                        field="inference",
                        value="permutation",
                        fix="use more participants or inference='parametric'",
                    )
                )
            with _seeded(seed):
                # every distinct permutation when there are no more than asked for (exact)
                exact = 0 < n_unique <= int(permutations)
                kw = {
                    "iterations": -1 if exact else int(permutations),
                    "force_iterations": True,
                }
                si = (
                    spm.inference(a, two_tailed=tails, **kw)
                    if statistic == "t"
                    else spm.inference(a, **kw)
                )
            perms = int(getattr(si, "nPermUnique", 0) or 0)
            perms = min(int(permutations), perms) if perms else int(permutations)
    z = np.asarray(si.z, dtype=float)
    thr = float(si.zstar)
    scale = 100.0 / (q - 1)
    clusters = []
    for c in si.clusters:
        s, e = (float(v) for v in c.endpoints)
        sign = int(getattr(c, "csign", 1)) if statistic == "t" else 0
        lo, hi = int(np.floor(s)), int(np.ceil(e))
        seg = z[max(lo, 0) : min(hi, q - 1) + 1]
        peak = float(seg.max() if sign >= 0 else seg.min()) if seg.size else float("nan")
        clusters.append(
            SpmCluster(start_pct=s * scale, end_pct=e * scale, p=float(c.P), sign=sign, peak=peak)
        )
    df = tuple(float(v) for v in np.atleast_1d(getattr(si, "df", ())))
    if statistic == "t" and len(df) == 2:  # spm1d writes t's df as (1, v)
        df = df[1:]
    return SpmResult(
        test=test,
        statistic=statistic,
        inference=inference,
        alpha=a,
        alpha_family=float(alpha),
        n_tests=int(n_tests),
        two_tailed=tails,
        z=z,
        threshold=thr,
        df=df,
        n=n,
        pct=_pct(q, pct),
        clusters=tuple(clusters),
        permutations=perms,
        seed=seed if inference == "permutation" else None,
        note=note,
    )


def spm_paired(
    pre,
    post,
    /,
    **options: Unpack[_TOptions],
) -> SpmResult:
    """Paired SPM{t} of ``post − pre`` (e.g. pre/post within a programme arm).

    Parameters
    ----------
    pre, post : array_like, shape (J, Q)
        One curve per participant, rows paired (same participant in row j).
    alpha : float
        Family-wise α (default 0.05); the test uses :func:`sidak_alpha` over ``n_tests``.
    two_tailed : bool
        Two-tailed (default) or one-tailed (``post > pre``) inference.
    inference : {"parametric", "permutation"}
        Random field theory, or sign-flip permutations (``permutations`` of them; all
        2^J when fewer exist).
    seed : int, optional
        Seed of the permutations (the run is then reproducible).
    n_tests : int
        Curves tested in the same family (Šidák correction), default 1.
    pct : array_like, shape (Q,), optional
        Node positions, %; default equally spaced 0–100.

    Returns
    -------
    SpmResult
        SPM{t}; positive where ``post > pre``.
    """
    import spm1d

    a, b = _curves(pre, "pre"), _curves(post, "post")
    if a.shape != b.shape:
        raise CxlabError(
            message(
                "pre and post must have the same shape (one curve per participant, same nodes)",
                field="post",
                value=f"{b.shape} vs {a.shape}",
                fix="pair the curves with paired_curves()",
            )
        )
    # spm1d's ttest_paired(YA, YB) tests YA − YB; pass (post, pre) so t > 0 means post > pre
    return _run(
        "paired",
        lambda: spm1d.stats.ttest_paired(b, a),
        lambda: spm1d.stats.nonparam.ttest_paired(b, a),
        q=a.shape[1],
        n=a.shape[0],
        statistic="t",
        **options,
    )


def spm_two_sample(
    a,
    b,
    /,
    *,
    equal_var: bool = False,
    **options: Unpack[_TOptions],
) -> SpmResult:
    """Two-sample SPM{t} of ``a − b`` (e.g. change curves of an arm vs control).

    Parameters
    ----------
    a, b : array_like, shapes (J_a, Q) and (J_b, Q)
        Independent groups of curves.
    equal_var : bool
        Pooled variance (``True``) or unequal variances (default; spm1d's Satterthwaite
        correction of the df, parametric inference only).

    Other parameters are as in :func:`spm_paired`. Positive t where ``a > b``.
    """
    import spm1d

    ya, yb = _curves(a, "a"), _curves(b, "b")
    if ya.shape[1] != yb.shape[1]:
        raise CxlabError(
            message(
                "a and b must have the same number of nodes",
                field="b",
                value=f"{yb.shape[1]} vs {ya.shape[1]}",
                fix="time-normalise both to the same n",
            )
        )
    return _run(
        "two_sample",
        lambda: spm1d.stats.ttest2(ya, yb, equal_var=equal_var),
        lambda: spm1d.stats.nonparam.ttest2(ya, yb),
        q=ya.shape[1],
        n=ya.shape[0] + yb.shape[0],
        statistic="t",
        **options,
    )


def spm_anova1rm(
    y,
    /,
    *,
    conditions,
    subjects,
    **options: Unpack[_SpmOptions],
) -> SpmResult:
    """One-way repeated-measures SPM{F} (e.g. one curve per participant per session).

    Parameters
    ----------
    y : array_like, shape (J, Q)
        All curves; row j belongs to ``subjects[j]`` in condition ``conditions[j]``.
    conditions, subjects : array_like, shape (J,)
        Labels. Every subject must have exactly one curve in every condition.

    Other parameters are as in :func:`spm_paired` (F is one-tailed).
    """
    import spm1d

    arr = _curves(y, "y", min_rows=4)
    cond = pd.Series(np.asarray(conditions)).astype(str)
    subj = pd.Series(np.asarray(subjects)).astype(str)
    if len(cond) != arr.shape[0] or len(subj) != arr.shape[0]:
        raise CxlabError(
            message(
                "conditions and subjects need one label per curve",
                field="conditions",
                value=f"{len(cond)}, {len(subj)} labels for {arr.shape[0]} curves",
                fix="pass one label per row",
            )
        )
    counts = pd.crosstab(subj, cond)
    if (counts.to_numpy() != 1).any():
        bad = [
            f"{s} × {c} ({counts.loc[s, c]} curves)"
            for s in counts.index
            for c in counts.columns
            if counts.loc[s, c] != 1
        ]
        raise CxlabError(
            message(
                "needs exactly one curve per subject and condition (balanced, complete data)",
                field="subjects × conditions",
                value=", ".join(bad[:8]) + (" …" if len(bad) > 8 else ""),
                fix="average repeated trials and leave incomplete subjects out explicitly",
            )
        )
    ca = pd.factorize(cond, sort=True)[0]
    sa = pd.factorize(subj, sort=True)[0]
    try:
        return _run(
            "anova1rm",
            lambda: spm1d.stats.anova1rm(arr, ca, sa),
            lambda: spm1d.stats.nonparam.anova1rm(arr, ca, sa),
            q=arr.shape[1],
            n=arr.shape[0],
            statistic="F",
            two_tailed=False,  # F is one-tailed; passing two_tailed is a TypeError
            **options,
        )
    except (TypeError, AttributeError) as err:
        inside = traceback.extract_tb(err.__traceback__)
        if options.get("inference") != "permutation" or "spm1d" not in inside[-1].filename:
            raise  # an error of cxlab's own call, or of the parametric test: not this limit
        # spm1d (0.4.55) runs its non-parametric ANOVA on its `nonparam_old` code, which
        # calls NumPy 1 API that NumPy 2 removed (np.percentile(interpolation=...), np.trapz,
        # float() of a one-element array): say so instead of a TypeError from inside spm1d
        raise CxlabError(
            message(
                f"spm1d {spm1d.__version__}'s permutation ANOVA does not run on NumPy "
                f"{np.__version__} ({type(err).__name__}: {err})",
                field="inference",
                value="permutation",
                fix='use inference="parametric" (random field theory) for the repeated-'
                "measures ANOVA, or paired permutation tests between pairs of conditions "
                "(spm_paired, Šidák-corrected with sidak_alpha)",
            )
        ) from err


def spm_regression(
    y,
    x,
    /,
    **options: Unpack[_TOptions],
) -> SpmResult:
    """SPM{t} of the linear regression of each node on a continuous covariate.

    Parameters
    ----------
    y : array_like, shape (J, Q)
        Curves.
    x : array_like, shape (J,)
        Covariate (e.g. baseline severity, adherence), any unit.

    Other parameters are as in :func:`spm_paired`. Positive t where the curve rises with x.
    """
    import spm1d

    arr = _curves(y, "y", min_rows=3)
    xv = np.asarray(x, dtype=float)
    if xv.shape != (arr.shape[0],) or not np.all(np.isfinite(xv)):
        raise CxlabError(
            message(
                "needs one finite value per curve",
                field="x",
                value=f"shape {xv.shape}",
                fix="pass x of length J",
            )
        )
    if np.ptp(xv) == 0:
        raise CxlabError(
            message(
                "is constant, so nothing can be regressed on it",
                field="x",
                value=float(xv[0]),
                fix="choose a covariate that varies",
            )
        )
    return _run(
        "regression",
        lambda: spm1d.stats.regress(arr, xv),
        lambda: spm1d.stats.nonparam.regress(arr, xv),
        q=arr.shape[1],
        n=arr.shape[0],
        statistic="t",
        **options,
    )


class PairedCurves(NamedTuple):
    """Curves of two sessions paired by participant: ``pre``/``post`` (J, Q), ``subjects``."""

    pre: np.ndarray
    post: np.ndarray
    subjects: list[str]
    note: str


def paired_curves(
    values,
    labels: pd.DataFrame,
    /,
    *,
    pre: str,
    post: str,
    subject: str = "subject_id",
    session: str = "session",
) -> PairedCurves:
    """Pair the curves of two sessions by participant (trials of a session averaged).

    Parameters
    ----------
    values : array_like, shape (J, Q)
        Curves, e.g. :attr:`CurveMatrix.values`.
    labels : pandas.DataFrame
        One row per curve with columns ``subject`` and ``session`` (e.g.
        :attr:`CurveMatrix.labels`).
    pre, post : str
        The two session labels.

    Returns
    -------
    PairedCurves
        Participants sorted by label; ``note`` states how many trials were averaged.

    Raises
    ------
    CxlabError
        A participant with curves in only one of the two sessions (every one is named).
    """
    y = np.asarray(values, dtype=float)
    if len(labels) != y.shape[0]:
        raise CxlabError(
            message(
                "needs one label row per curve",
                field="labels",
                value=f"{len(labels)} rows for {y.shape[0]} curves",
                fix="pass CurveMatrix.labels",
            )
        )
    for c in (subject, session):
        if c not in labels.columns:
            raise CxlabError(
                message(
                    "is not a column of the labels",
                    field=c,
                    fix=f"the columns are {', '.join(labels.columns)}",
                )
            )
    lab = labels[[subject, session]].astype(str).reset_index(drop=True)
    out = {}
    n_trials = {}
    for ses in (pre, post):
        idx = lab.index[lab[session] == str(ses)]
        g = pd.DataFrame(y[idx]).groupby(lab.loc[idx, subject].to_numpy(), sort=True)
        out[ses] = g.mean()
        n_trials[ses] = g.size()
    subs_pre, subs_post = set(out[pre].index), set(out[post].index)
    missing = sorted(f"{s} × {post}" for s in subs_pre - subs_post) + sorted(
        f"{s} × {pre}" for s in subs_post - subs_pre
    )
    if missing:
        raise CxlabError(
            message(
                f"{len(missing)} participant × session curve(s) are missing: "
                + ", ".join(missing[:10])
                + (" …" if len(missing) > 10 else ""),
                field=f"sessions {pre!r} and {post!r}",
                fix="spm1d needs complete pairs; leave those participants out explicitly",
            )
        )
    if not subs_pre:
        raise CxlabError(
            message(
                "no participant has curves in both sessions",
                field=f"sessions {pre!r} and {post!r}",
                value=sorted(lab[session].unique())[:10],
                fix="check the session labels",
            )
        )
    subs = sorted(subs_pre)
    multi = int(sum((n_trials[s] > 1).sum() for s in (pre, post)))
    note = (
        f"{len(subs)} participants paired; {multi} participant-session(s) had several "
        "trials, averaged node by node"
        if multi
        else f"{len(subs)} participants paired, one trial each"
    )
    return PairedCurves(
        pre=out[pre].loc[subs].to_numpy(),
        post=out[post].loc[subs].to_numpy(),
        subjects=subs,
        note=note,
    )
