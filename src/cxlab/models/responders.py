"""Individual responders: change, reliable change index, MCID, and responder rates per arm."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from cxlab._check import ConfigError, message
from cxlab.io.sessions import session_order

__all__ = ["MCID_DEFAULTS", "ResponderResult", "responders", "wilson_interval"]

#: Minimal important change per instrument (Ostelo et al. 2008, Spine 33:90-94):
#: (points in the instrument's unit, percent of baseline, lower score is better).
MCID_DEFAULTS: dict[str, tuple[float, float, bool]] = {
    "pain_nrs": (2.0, 30.0, True),
    "pain_vas": (15.0, 30.0, True),
    "odi": (10.0, 30.0, True),
}
RCI_CRITICAL = 1.96


@dataclass
class ResponderResult:
    """Per-subject change and responder flags, and responder rates per arm.

    Attributes
    ----------
    subjects : pandas.DataFrame
        One row per subject with both visits: ``subject``, ``arm``, ``baseline_value``,
        ``followup_value``, ``change`` (followup − baseline, outcome unit), ``pct_change``
        (100·change/baseline; NaN at baseline 0), ``improvement`` (change signed so that
        positive = better), ``change_mcid`` (improvement in MCIDs), ``rci`` (reliable
        change index, NaN without ``sem``), ``responder_mcid``, ``responder_rci`` (bool;
        RCI flags missing without ``sem``), ``responder_mcid_mdc`` (bool; missing without
        ``mdc``).
    rates : pandas.DataFrame
        One row per arm × criterion (``mcid``, ``rci`` with ``sem``, ``mcid_mdc`` with
        ``mdc``): ``arm``, ``criterion``, ``n``,
        ``n_responders``, ``rate``, ``ci_low``, ``ci_high`` (Wilson score interval),
        ``n_missing`` (subjects of the arm without both visits).
    criteria : dict
        The thresholds used: ``mcid``, ``mcid_pct``, ``sem``, ``lower_is_better``.
    """

    subjects: pd.DataFrame
    rates: pd.DataFrame
    criteria: dict


def wilson_interval(successes, n, /, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson (1927) score interval for a binomial proportion.

    ``(p + z²/2n ± z sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = successes/n`` and
    ``z`` the ``1 − alpha/2`` normal quantile, computed by
    ``statsmodels.stats.proportion.proportion_confint(successes, n, alpha=alpha,
    method="wilson")`` (Wilson 1927, J Am Stat Assoc 22:209-212; Newcombe 1998, Stat Med
    17:857-872, method 3). The one Wilson interval of cxlab (responder rates, screening
    prevalence).

    Parameters
    ----------
    successes, n : array-like of int, same shape
        Successes and trials; the interval is NaN where ``n = 0``.
    alpha : float
        1 − confidence level (default 0.05, a 95 % interval).

    Returns
    -------
    (low, high) : tuple of numpy.ndarray of float, the shape of ``successes``
        Bounds in [0, 1].
    """
    x, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    x, n = np.broadcast_arrays(x, n)
    ok = n > 0
    lo, hi = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    if ok.any():
        lo[ok], hi[ok] = proportion_confint(x[ok], n[ok], alpha=alpha, method="wilson")
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


def responders(
    scores: pd.DataFrame,
    /,
    *,
    outcome: str,
    subject: str,
    baseline,
    followup,
    time: str = "session",
    mcid: float | None = None,
    mcid_pct: float | None = None,
    sem: float | None = None,
    mdc: float | None = None,
    arm: str | None = None,
    lower_is_better: bool | None = None,
    alpha: float = 0.05,
) -> ResponderResult:
    """Classify each subject's change from ``baseline`` to ``followup`` as response or not.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long table, one row per subject × visit. ``outcome`` is either a numeric column
        or, for the store's ``scores`` table, a value of its ``instrument`` column (the
        value is then taken from ``score``).
    outcome : str
        Column or instrument, e.g. ``"pain_nrs"`` (points), ``"odi"`` (%).
    subject, time : str
        Subject and visit columns (``time`` default ``"session"``).
    baseline, followup
        Values of ``time`` to compare (e.g. ``"1"`` and ``"3"``), or ``"first"`` /
        ``"last"``: each subject's first and last visit in ``time`` order (numeric order
        for a numeric ``time`` or digit labels, else text order), so no visit value needs
        spelling out.
    mcid, mcid_pct : float, optional
        Minimal clinically important improvement in the outcome's unit and in percent of
        baseline; a subject responds if *either* is reached. Defaults for ``pain_nrs``
        (2 points or 30 %), ``pain_vas`` (15 mm or 30 %) and ``odi`` (10 points or 30 %)
        from Ostelo et al. (2008); other outcomes need ``mcid``.
    sem : float, optional
        Standard error of measurement (outcome unit), e.g. ``mdc95 / (1.96·√2)`` or
        ``sem`` from :func:`cxlab.models.reliability`. Enables the reliable change index
        ``RCI = change / (√2·SEM)`` (Jacobson & Truax 1991); a subject has reliably
        improved when the RCI exceeds 1.96 in the improving direction.
    mdc : float, optional
        Minimal detectable change (outcome unit, e.g. MDC95 of between-session
        reliability). Adds criterion ``mcid_mdc``: a subject responds when the improvement
        reaches the *larger* of ``mcid`` and ``mdc``, so a change inside measurement
        error never counts as a response, even when the MCID is smaller than the MDC.
    arm : str, optional
        Arm column; rates are per arm (else one group ``"all"``).
    lower_is_better : bool, optional
        Direction of improvement; default from the instrument (decrease for pain and ODI).
    alpha : float
        1 − confidence level of the Wilson intervals.

    Returns
    -------
    ResponderResult

    Warnings
    --------
    A responder rate without a comparison arm says nothing about the intervention:
    regression to the mean and natural history make many untreated subjects "respond".
    Compare rates between arms.
    """
    data, value = _values(scores, outcome)
    cols = [subject, time, *([arm] if arm else [])]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ConfigError(
            message(
                "column(s) not found",
                field=", ".join(missing),
                fix=f"columns present: {', '.join(map(str, data.columns))}",
            )
        )
    default = MCID_DEFAULTS.get(outcome)
    if mcid is None and default is None:
        raise ConfigError(
            message(
                "has no default minimal important change",
                field="mcid",
                value=outcome,
                fix="pass mcid= (and lower_is_better=)",
            )
        )
    if mcid is None:
        mcid, mcid_pct = default[0], default[1] if mcid_pct is None else mcid_pct
    if lower_is_better is None:
        if default is None:
            raise ConfigError(
                message(
                    "direction of improvement unknown",
                    field="lower_is_better",
                    value=outcome,
                    fix="pass lower_is_better=True or False",
                )
            )
        lower_is_better = default[2]
    if sem is not None and not sem > 0:
        raise ConfigError(message("must be positive", field="sem", value=sem))

    if mdc is not None and not mdc > 0:
        raise ConfigError(message("must be positive", field="mdc", value=mdc))
    times = data[time].astype(str)
    order = session_order(data[time])
    ranked = (
        data.assign(_order=order)
        .dropna(subset=[value])
        .sort_values([subject, "_order"], kind="stable")
    )

    def pick(which):
        if which == "first":
            return ranked.drop_duplicates(subject, keep="first").set_index(subject)
        if which == "last":
            last = ranked.drop_duplicates(subject, keep="last").set_index(subject)
            first = ranked.drop_duplicates(subject, keep="first").set_index(subject)
            return last[last["_order"] > first["_order"].reindex(last.index)]
        return data[times == str(which)].drop_duplicates(subject).set_index(subject)

    b, f = pick(baseline), pick(followup)
    for name, part, v in (("baseline", b, baseline), ("followup", f, followup)):
        if part.empty and v in ("first", "last"):
            raise ConfigError(
                message(
                    "no subject has two visits",
                    field=name,
                    value=v,
                    fix="responders need a baseline and a later visit",
                )
            )
        if part.empty:
            raise ConfigError(
                message(
                    f"has no rows with {time} equal to it",
                    field=name,
                    value=v,
                    fix=f"use one of {sorted(set(times))}",
                )
            )
    subjects_all = pd.Index(sorted(data[subject].dropna().unique()))
    arms_all = (
        data.drop_duplicates(subject).set_index(subject)[arm].astype(str)
        if arm
        else pd.Series("all", index=subjects_all)
    )
    both = b.index.intersection(f.index).sort_values()
    out = pd.DataFrame(
        {
            "subject": both,
            "arm": arms_all.reindex(both).to_numpy(),
            "baseline_value": b.loc[both, value].to_numpy(dtype=float),
            "followup_value": f.loc[both, value].to_numpy(dtype=float),
        }
    )
    out = out.dropna(subset=["baseline_value", "followup_value"]).reset_index(drop=True)
    sign = -1.0 if lower_is_better else 1.0
    out["change"] = out["followup_value"] - out["baseline_value"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pct_change"] = np.where(
            out["baseline_value"] != 0, 100 * out["change"] / out["baseline_value"], np.nan
        )
    out["improvement"] = sign * out["change"]
    pct_ok = (sign * out["pct_change"] >= mcid_pct) if mcid_pct is not None else False
    out["change_mcid"] = out["improvement"] / mcid
    out["responder_mcid"] = (out["improvement"] >= mcid) | pct_ok
    if sem is not None:
        out["rci"] = out["change"] / (np.sqrt(2) * sem)
        out["responder_rci"] = sign * out["rci"] > RCI_CRITICAL
    else:
        out["rci"] = np.nan
        out["responder_rci"] = pd.array([pd.NA] * len(out), dtype="boolean")
    if mdc is not None:
        out["responder_mcid_mdc"] = out["improvement"] >= max(mcid, mdc)
    else:
        out["responder_mcid_mdc"] = pd.array([pd.NA] * len(out), dtype="boolean")
    criteria = {
        "mcid": float(mcid),
        "mcid_pct": None if mcid_pct is None else float(mcid_pct),
        "sem": sem,
        "mdc": mdc,
        "lower_is_better": bool(lower_is_better),
    }
    crits = (
        "mcid",
        *(("rci",) if sem is not None else ()),
        *(("mcid_mdc",) if mdc is not None else ()),
    )
    return ResponderResult(out, _rates(out, arms_all, crits, alpha), criteria)


def _values(scores: pd.DataFrame, outcome: str):
    if outcome in scores.columns:
        s = scores[outcome]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise ConfigError(message("must be numeric", field=outcome, value=str(s.dtype)))
        return scores, outcome
    if {"instrument", "score"} <= set(scores.columns):
        rows = scores[scores["instrument"] == outcome]
        if rows.empty:
            raise ConfigError(
                message(
                    "is not an instrument in the table",
                    field="outcome",
                    value=outcome,
                    fix="use one of " + ", ".join(sorted(map(str, scores["instrument"].unique()))),
                )
            )
        return rows, "score"
    raise ConfigError(
        message(
            "column not found",
            field="outcome",
            value=outcome,
            fix=f"columns present: {', '.join(map(str, scores.columns))}",
        )
    )


def _rates(
    out: pd.DataFrame, arms_all: pd.Series, crits: tuple[str, ...], alpha: float
) -> pd.DataFrame:
    rows = []
    for a in sorted(arms_all.unique()):
        g = out[out["arm"] == a]
        n_missing = int((arms_all == a).sum() - len(g))
        for crit in crits:
            x, n = int(g[f"responder_{crit}"].sum()), len(g)
            lo, hi = wilson_interval(x, n, alpha=alpha)
            rows.append(
                {
                    "arm": a,
                    "criterion": crit,
                    "n": n,
                    "n_responders": x,
                    "rate": x / n if n else np.nan,
                    "ci_low": float(lo),
                    "ci_high": float(hi),
                    "n_missing": n_missing,
                }
            )
    return pd.DataFrame(rows)
