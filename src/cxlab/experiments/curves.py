"""Curve outcomes of an experiment: store curves → balanced arrays → SPM → tidy run tables.

An experiment spec declares whole-curve outcomes in ``[curves.<name>]`` tables
(:class:`~cxlab.experiments.spec.CurveOutcome`). For each, :func:`curve_tables` takes the
store's ``curves`` rows of that signal, phase and side, keeps the participants and
sessions of the run's analysis table (its arms, session indices and filter), averages a
participant's trials of a session node by node, checks that every participant tested has
a curve in every session the test needs, and runs :mod:`cxlab.models.spm`. The per-curve
α is corrected across all the run's curve tests (Šidák 1967, ``curve_correction``).

.. warning::
   ``spm1d`` needs balanced, complete data. A participant missing a needed session's
   curve stops the run with every missing participant × session named, unless the
   outcome says ``incomplete = "exclude"``; then they are left out and named in the run's
   warnings and in the ``note`` of the outcome's row. Nothing is imputed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, message, nearest, warn
from cxlab.experiments.spec import COVARIATES, CurveOutcome, ExperimentSpec
from cxlab.models import spm
from cxlab.store import Store

__all__ = [
    "CURVE_RUN_TABLES",
    "CurveNotTested",
    "CurveTest",
    "curve_input_digests",
    "curve_tables",
    "run_curve_test",
]

#: the run tables written for curve outcomes (``<name>.parquet`` in the run directory)
CURVE_RUN_TABLES = ("spm", "spm_clusters", "spm_curves", "curves")

_SPM_COLUMNS = [
    "outcome",
    "label",
    "signal",
    "phase",
    "side",
    "unit",
    "test",
    "arm",
    "comparison",
    "pre",
    "post",
    "covariate",
    "statistic",
    "inference",
    "alpha_family",
    "correction",
    "n_tests",
    "alpha",
    "two_tailed",
    "threshold",
    "df",
    "n_subjects",
    "n_curves",
    "z_min",
    "z_max",
    "n_clusters",
    "permutations",
    "seed",
    "note",
]
_CLUSTER_COLUMNS = ["outcome", "test", "cluster", "start_pct", "end_pct", "p", "sign", "peak"]


class CurveNotTested(ConfigError):  # noqa: N818 (as OutcomeNotFitted: a state, not a bug)
    """A curve outcome the data cannot test (no such curves, too few participants): the run
    leaves it out with a warning, as it does a scalar outcome without rows."""

    def __init__(self, msg: str, *, outcome: str):
        super().__init__(msg)
        self.outcome = outcome


class CurveTest(NamedTuple):
    """One curve outcome's SPM test with the curves it used.

    ``result`` is the :class:`~cxlab.models.spm.SpmResult`; ``curves`` has one row per
    participant × session × node (``subject_id, arm, session_index, node, pct, value``),
    trials averaged; ``excluded`` names each participant × session left out.
    """

    outcome: CurveOutcome
    result: spm.SpmResult
    curves: pd.DataFrame
    unit: str
    comparison: str
    pre: int
    post: int
    excluded: tuple[str, ...]


def curve_input_digests(store: Store, /) -> list[dict[str, str]]:
    """sha256 of every Parquet part of the store's ``curves`` table (enters the run hash)."""
    return [{"part": d.part, "sha256": d.sha256} for d in store.file_digests("curves")]


def _sessions(analysis: pd.DataFrame) -> pd.DataFrame:
    """One row per participant × session of the analysis: arm, session index, covariates."""
    cols = ["subject_id", "session", "session_index", "arm", "adherence", "age_years"]
    s = analysis[[c for c in cols if c in analysis]].drop_duplicates(["subject_id", "session"])
    return s.sort_values(["subject_id", "session_index"], kind="stable").reset_index(drop=True)


def _field(c: CurveOutcome, key: str) -> str:
    return f"curves.{c.name}.{key}"


def _store_curves(store: Store, c: CurveOutcome) -> pd.DataFrame:
    filters = [("phase", "==", c.phase), ("signal", "==", c.signal), ("side", "==", c.side)]
    if c.task is not None:
        filters.append(("task", "==", c.task))
    cols = ["subject_id", "session", "recording_id", "node", "pct", "value", "unit"]
    d = store.table("curves", columns=cols, filters=filters)
    if d.empty:
        have = store.table("curves", columns=["phase", "signal", "side"]).drop_duplicates()
        choices = sorted(f"{p}/{s}/{d_}" for p, s, d_ in have.itertuples(index=False))
        close = nearest(f"{c.phase}/{c.signal}/{c.side}", choices)
        raise CurveNotTested(
            message(
                "has no curves in the store",
                field=f"curves.{c.name}",
                value=f"phase {c.phase!r}, signal {c.signal!r}, side {c.side!r}"
                + (f", task {c.task!r}" if c.task else ""),
                fix=(f"did you mean phase/signal/side {close}? " if close else "")
                + (
                    "the store has " + ", ".join(choices[:12])
                    if choices
                    else "the store has no curves: run `cxlab features` (--force for "
                    "recordings already in the store)"
                ),
            ),
            outcome=c.name,
        )
    return d


def _mean_curves(d: pd.DataFrame, sess: pd.DataFrame, c: CurveOutcome) -> tuple[pd.DataFrame, str]:
    """Trials averaged node by node per participant × session, labelled with the analysis's
    arm and session index; participants and sessions outside the analysis are left out."""
    units = sorted(d["unit"].dropna().unique())
    if len(units) > 1:
        raise ConfigError(
            message(
                "mixes units",
                field=f"curves.{c.name}",
                value=units,
                fix="re-run `cxlab features --force` so every curve has the same unit",
            )
        )
    n_nodes = d.groupby("recording_id")["node"].nunique()
    if n_nodes.nunique() > 1:
        raise ConfigError(
            message(
                "has curves with different node counts",
                field=f"curves.{c.name}",
                value=sorted(n_nodes.unique().tolist()),
                fix="re-run `cxlab features --force` with one [curves] nodes setting",
            )
        )
    d = d.merge(sess, on=["subject_id", "session"], how="inner")
    m = d.groupby(["subject_id", "session_index", "node"], as_index=False, sort=True).agg(
        pct=("pct", "first"), value=("value", "mean"), n_trials=("recording_id", "nunique")
    )
    first = sess.drop_duplicates("subject_id").set_index("subject_id")
    m["arm"] = m["subject_id"].map(first["arm"])
    return m, units[0] if units else ""


def _complete(
    m: pd.DataFrame, subjects: list[str], needed: list[int], c: CurveOutcome
) -> tuple[list[str], tuple[str, ...]]:
    """Participants with a finite curve in every needed session; the rest refused or named."""
    ok = (
        m.assign(finite=np.isfinite(m["value"].to_numpy(float)))
        .groupby(["subject_id", "session_index"])["finite"]
        .all()
    )
    have = set(ok.index[ok.to_numpy(bool)])
    missing = [(s, k) for s in subjects for k in needed if (s, k) not in have]
    text = tuple(f"{s} × session {k}" for s, k in missing)
    if missing and c.incomplete == "refuse":
        raise ConfigError(
            message(
                f"{len(missing)} participant × session curve(s) are missing or have gaps: "
                + ", ".join(text[:10])
                + (" …" if len(text) > 10 else ""),
                field=f"curves.{c.name}",
                fix="spm1d needs balanced, complete data: record or re-extract those trials, "
                f'or set incomplete = "exclude" in [curves.{c.name}] to leave them out',
            )
        )
    bad = {s for s, _ in missing}
    keep = [s for s in subjects if s not in bad]
    if missing:
        warn(
            f"left out {len(bad)} participant(s) without a complete curve in every session "
            "tested: " + ", ".join(text[:10]) + (" …" if len(text) > 10 else ""),
            field=f"curves.{c.name}",
            fix="nothing was imputed; record the missing sessions to include them",
        )
    return keep, text


def _matrix(m: pd.DataFrame, subjects: list[str], k: int) -> np.ndarray:
    d = m[(m["session_index"] == k) & m["subject_id"].isin(subjects)]
    w = d.pivot(index="subject_id", columns="node", values="value")
    return w.loc[subjects].to_numpy(float)


def _arm_subjects(sess: pd.DataFrame, arm: str | None, c: CurveOutcome, key: str) -> list[str]:
    arms = sorted(sess["arm"].dropna().unique())
    if arm is not None and arm not in arms:
        close = nearest(arm, arms)
        raise ConfigError(
            message(
                "is not an arm of the analysis",
                field=_field(c, key),
                value=arm,
                fix=f"did you mean {close!r}?" if close else f"use one of {', '.join(arms)}",
            )
        )
    s = sess if arm is None else sess[sess["arm"] == arm]
    return sorted(s["subject_id"].unique())


def run_curve_test(
    store: Store,
    analysis: pd.DataFrame,
    outcome: CurveOutcome,
    /,
    *,
    control: str,
    n_tests: int = 1,
    seed: int | None = None,
) -> CurveTest:
    """Run one curve outcome's SPM test on the store's curves.

    Parameters
    ----------
    store : Store
        Holds the ``curves`` table.
    analysis : pandas.DataFrame
        The run's analysis table (:func:`cxlab.experiments.analysis_table`): it decides the
        participants, their arm and each session's index.
    outcome : CurveOutcome
        What to test.
    control : str
        The control arm (``two_sample``).
    n_tests : int
        Curve tests in the run's family (Šidák-corrected α; 1 = uncorrected).
    seed : int, optional
        Seed of the permutations.

    Returns
    -------
    CurveTest

    Raises
    ------
    ConfigError
        No such curves in the store, an unknown arm, mixed units or node counts, missing
        participant × session curves (``incomplete = "refuse"``), or too few participants.
    """
    c = outcome
    sess = _sessions(analysis)
    m, unit = _mean_curves(_store_curves(store, c), sess, c)
    pre = c.pre
    post = c.post if c.post is not None else int(sess["session_index"].max())
    if post <= pre:
        raise ConfigError(
            message(
                "has no session after pre",
                field=_field(c, "post"),
                value=post,
                fix=f"the analysis has session indices {sorted(sess['session_index'].unique())}",
            )
        )
    kw = {
        "alpha": c.alpha,
        "inference": c.inference,
        "permutations": c.permutations,
        "seed": seed,
        "n_tests": n_tests,
    }
    needed = [pre, post]
    if c.test == "anova1rm":
        idx = sorted(sess["session_index"].unique())
        needed = [k for k in idx if pre <= k <= post]
    groups = {"two_sample": [c.arm, control]}.get(c.test, [c.arm])
    keep: dict[str | None, list[str]] = {}
    excluded: list[str] = []
    for g in groups:
        subs = _arm_subjects(sess, g, c, "arm")
        keep[g], ex = _complete(m, subs, needed, c)
        excluded += ex
    n_min = {"paired": 2, "two_sample": 2, "anova1rm": 2, "regression": 3}[c.test]
    for g, subs in keep.items():
        if len(subs) < n_min:
            raise CurveNotTested(
                message(
                    f"has {len(subs)} participant(s) with complete curves"
                    + (f" in arm {g!r}" if g else "")
                    + f"; {c.test} needs at least {n_min}",
                    field=f"curves.{c.name}",
                    fix="check the arm and sessions, or record more participants",
                ),
                outcome=c.name,
            )
    pct = np.sort(m["pct"].unique())
    trials = m.loc[m["session_index"].isin(needed)]
    multi = int((trials.drop_duplicates(["subject_id", "session_index"])["n_trials"] > 1).sum())
    avg = f"; {multi} participant-session(s) had several trials, averaged node by node"
    note_end = avg if multi else "; one trial per participant-session"
    if excluded:
        note_end += "; left out (incomplete): " + ", ".join(excluded)
    if c.test == "paired":
        subs = keep[c.arm]
        a, b = _matrix(m, subs, pre), _matrix(m, subs, post)
        comparison = f"session {post} − session {pre} in {c.arm}"
        res = spm.spm_paired(a, b, two_tailed=c.two_tailed, pct=pct, **kw, note="")
        used = subs
    elif c.test == "two_sample":
        sa, sc = keep[c.arm], keep[control]
        da = _matrix(m, sa, post) - _matrix(m, sa, pre)
        dc = _matrix(m, sc, post) - _matrix(m, sc, pre)
        comparison = f"change (session {post} − {pre}) in {c.arm} − change in {control}"
        res = spm.spm_two_sample(da, dc, two_tailed=c.two_tailed, pct=pct, **kw, note="")
        used = sa + sc
    elif c.test == "anova1rm":
        subs = keep[c.arm]
        y = np.vstack([_matrix(m, subs, k) for k in needed])
        conds = np.repeat(needed, len(subs))
        who = np.tile(subs, len(needed))
        comparison = f"sessions {', '.join(map(str, needed))} in {c.arm}"
        res = spm.spm_anova1rm(y, conditions=conds, subjects=who, pct=pct, **kw, note="")
        used = subs
    else:  # regression
        subs = keep[c.arm]
        dy = _matrix(m, subs, post) - _matrix(m, subs, pre)
        first = sess.drop_duplicates("subject_id").set_index("subject_id")
        x = first.loc[subs, c.covariate].to_numpy(float)
        if not np.all(np.isfinite(x)):
            gone = [s for s, v in zip(subs, x, strict=True) if not np.isfinite(v)]
            raise ConfigError(
                message(
                    f"is missing for {len(gone)} participant(s): " + ", ".join(gone[:10]),
                    field=_field(c, "covariate"),
                    value=c.covariate,
                    fix="record it for every participant, or choose another covariate",
                )
            )
        if np.ptp(x) == 0:
            raise ConfigError(
                message(
                    "is constant over the participants tested, so nothing can be regressed on it",
                    field=_field(c, "covariate"),
                    value=f"{c.covariate} = {x[0]:g}",
                    fix="choose a covariate that varies (" + ", ".join(COVARIATES) + ")",
                )
            )
        who = f" in {c.arm}" if c.arm else ""
        comparison = f"change (session {post} − {pre}){who} on {c.covariate}"
        res = spm.spm_regression(dy, x, two_tailed=c.two_tailed, pct=pct, **kw, note="")
        used = subs
    note = f"{len(used)} participants{note_end}"
    res = _with_note(res, note)
    curves = m[m["subject_id"].isin(used) & m["session_index"].isin(needed)]
    curves = curves[["subject_id", "arm", "session_index", "node", "pct", "value"]]
    return CurveTest(
        c, res, curves.reset_index(drop=True), unit, comparison, pre, post, tuple(excluded)
    )


def _with_note(res: spm.SpmResult, note: str) -> spm.SpmResult:
    from dataclasses import replace

    return replace(res, note=note)


def curve_tables(
    store: Store, analysis: pd.DataFrame, spec: ExperimentSpec, /
) -> dict[str, pd.DataFrame]:
    """The run tables of every curve outcome of ``spec`` (empty dict when it declares none).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``spm``: one row per curve outcome (columns of :data:`_SPM_COLUMNS`: the test, the
        comparison, α before and after the ``correction`` over ``n_tests`` curve tests,
        threshold, df, participants, the SPM curve's range, cluster count, permutations,
        seed and a note of what was done to the data); ``spm_clusters``: one row per
        supra-threshold cluster (``outcome, test, cluster, start_pct, end_pct, p, sign,
        peak``; start/end in % of the phase); ``spm_curves``: the SPM{t}/{F} curve
        (``outcome, node, pct, z, threshold``); ``curves``: the curves tested (``outcome,
        subject_id, arm, session_index, node, pct, value, unit``), trials averaged.
    """
    if not spec.curves:
        return {}
    k = len(spec.curves) if spec.curve_correction == "sidak" else 1
    rows, clusters, zs, used = [], [], [], []
    for i, c in enumerate(spec.curves):
        seed = (spec.seed + i) % 2**32  # one stream per curve outcome, reproducible
        try:
            t = run_curve_test(store, analysis, c, control=spec.control, n_tests=k, seed=seed)
        except CurveNotTested as e:  # left out, like a scalar outcome without rows
            warn(f"not tested: {e}", field=f"curves.{c.name}")
            continue
        r = t.result
        rows.append(
            {
                "outcome": c.name,
                "label": c.label,
                "signal": c.signal,
                "phase": c.phase,
                "side": c.side,
                "unit": t.unit,
                "test": c.test,
                "arm": c.arm,
                "comparison": t.comparison,
                "pre": t.pre,
                "post": t.post,
                "covariate": c.covariate,
                "statistic": r.statistic,
                "inference": r.inference,
                "alpha_family": r.alpha_family,
                "correction": spec.curve_correction if k > 1 else "none",
                "n_tests": r.n_tests,
                "alpha": r.alpha,
                "two_tailed": r.two_tailed,
                "threshold": r.threshold,
                "df": ", ".join(f"{v:.6g}" for v in r.df),
                "n_subjects": int(t.curves["subject_id"].nunique()),
                "n_curves": int(r.n),
                "z_min": float(np.min(r.z)),
                "z_max": float(np.max(r.z)),
                "n_clusters": len(r.clusters),
                "permutations": r.permutations,
                "seed": r.seed,
                "note": r.note,
            }
        )
        for j, cl in enumerate(r.clusters, 1):
            clusters.append({"outcome": c.name, "test": c.test, "cluster": j, **cl._asdict()})
        zs.append(
            pd.DataFrame(
                {
                    "outcome": c.name,
                    "node": np.arange(r.z.size, dtype=np.int32),
                    "pct": r.pct,
                    "z": r.z,
                    "threshold": r.threshold,
                }
            )
        )
        used.append(t.curves.assign(outcome=c.name, unit=t.unit))
    if not rows:
        return {}
    spm_rows = pd.DataFrame(rows, columns=_SPM_COLUMNS)
    spm_rows = spm_rows.astype({"permutations": "Int64", "seed": "Int64"})
    cols = ["outcome", "subject_id", "arm", "session_index", "node", "pct", "value", "unit"]
    return {
        "spm": spm_rows,
        "spm_clusters": pd.DataFrame(clusters, columns=_CLUSTER_COLUMNS),
        "spm_curves": pd.concat(zs, ignore_index=True),
        "curves": pd.concat(used, ignore_index=True)[cols],
    }
