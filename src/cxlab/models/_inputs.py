"""Input checks shared by the effect models: one readable error per problem."""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cxlab._check import ConfigError, message

#: The fewest subjects an arm (control included) may have in any arm-vs-control fit: with
#: fewer, a between-subject variance has at most one residual degree of freedom per arm and
#: no interval is worth reporting. Every model (mixed, GEE, AIPW), the experiment runner's
#: pre-filter and the power simulation apply this one rule through
#: :func:`check_subjects_per_arm`.
MIN_SUBJECTS_PER_ARM = 3


class OutcomeNotFitted(ConfigError):  # noqa: N818 -- the name STYLE.md gives it
    """One outcome cannot be fitted; the other outcomes of the same call can.

    Raised by the effect models for a problem that concerns a single outcome (too few
    subjects with observed values in an arm, a constant outcome, one time point, a model no
    optimiser could fit). Callers that fit many outcomes catch it and leave ``outcome`` out;
    nobody needs to parse the message.

    Attributes
    ----------
    outcome : str
        The outcome column that was not fitted.
    reason : str
        What is wrong, in plain words, without the outcome's name in front.
    fix : str or None
        What the user can do about it.
    """

    def __init__(self, *, outcome: str, reason: str, value: Any = ..., fix: str | None = None):
        super().__init__(message(reason, field=outcome, value=value, fix=fix))
        self.outcome = outcome
        self.reason = reason
        self.value = value
        self.fix = fix

    def __reduce__(self):  # picklable across worker processes
        return (_rebuild_not_fitted, (self.outcome, self.reason, self.value, self.fix))


def _rebuild_not_fitted(outcome, reason, value, fix):
    return OutcomeNotFitted(outcome=outcome, reason=reason, value=value, fix=fix)


def check_subjects_per_arm(
    counts: pd.Series,
    /,
    *,
    arms: Sequence[str] | None = None,
    outcome: str | None = None,
    field: str = "arm",
    what: str = "subject(s)",
    fix: str = "merge or drop the arm before fitting",
) -> None:
    """Raise when an arm has fewer than :data:`MIN_SUBJECTS_PER_ARM` subjects.

    Parameters
    ----------
    counts : pandas.Series
        Subjects per arm (index: arm label).
    arms : sequence of str, optional
        Arms that must be present (missing ones count as 0), e.g. control first.
    outcome : str, optional
        When given, the problem concerns this outcome only: raise
        :class:`OutcomeNotFitted`; otherwise :class:`~cxlab.ConfigError` on ``field``.
    field, what, fix : str
        Wording: the column named in the message (no outcome), what was counted, the fix.

    Raises
    ------
    OutcomeNotFitted or ConfigError
        Naming the first small arm, its count and the minimum.
    """
    if arms is not None:
        counts = counts.reindex(list(arms), fill_value=0)
    small = counts[counts < MIN_SUBJECTS_PER_ARM]
    if not len(small):
        return
    arm, n = small.index[0], int(small.iloc[0])
    reason = f"arm {arm!r} has {n} {what}, fewer than {MIN_SUBJECTS_PER_ARM}"
    if outcome is not None:
        raise OutcomeNotFitted(outcome=outcome, reason=reason, value=arm, fix=fix)
    raise ConfigError(message(reason, field=field, value=arm, fix=fix))


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """``"a"`` → ``["a"]``, ``None`` → ``[]``, sequences as lists."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def quoted(name: str) -> str:
    """A column name as a patsy formula term (``Q('...')`` unless a plain identifier)."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return name
    return f"Q({name!r})"


@dataclass(frozen=True)
class Design:
    """Validated inputs of :func:`cxlab.models.fit_effects`."""

    data: pd.DataFrame
    outcomes: list[str]
    time: str
    arm: str
    subject: str
    control: str
    covariates: list[str]
    moderators: list[str]
    arms: list[str]  # non-control arms, sorted
    times: list  # distinct time values, sorted
    notes: tuple[str, ...] = ()  # rows left out (missing time, arm or subject), counted


def design(
    data, *, outcomes, time, arm, subject, control, covariates, moderators, numeric_time: bool
) -> Design:
    """Check the table and return a sorted copy with ``arm`` as strings.

    Raises
    ------
    ConfigError
        Missing columns (all named at once), a non-numeric outcome, moderator or
        (continuous) time, a constant covariate or moderator, an unknown control arm (arms
        present are listed), a subject in two arms, a single time point or an arm with
        fewer than :data:`MIN_SUBJECTS_PER_ARM` subjects.

    Rows with a missing ``time``, ``arm`` or ``subject`` are left out; ``notes`` counts
    them per column (``"week: 2 row(s) with a missing value left out"``).
    """
    if not isinstance(data, pd.DataFrame):
        raise ConfigError(
            message("must be a pandas DataFrame", field="data", value=type(data).__name__)
        )
    if not outcomes:
        raise ConfigError(
            message(
                "needs at least one outcome column",
                field="outcome",
                fix="pass outcome='pain_nrs' or a list of columns",
            )
        )
    needed = [*outcomes, time, arm, subject, *covariates, *moderators]
    missing = list(dict.fromkeys(c for c in needed if c not in data.columns))
    if missing:
        raise ConfigError(
            message(
                "column(s) not found in the table",
                field=", ".join(missing),
                fix=f"columns present: {', '.join(map(str, data.columns))}",
            )
        )
    numeric = [*outcomes, *moderators, *([time] if numeric_time else [])]
    for col in numeric:
        s = data[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise ConfigError(
                message(
                    "must be numeric",
                    field=col,
                    value=str(s.dtype),
                    fix="convert it to numbers (e.g. score, weeks)",
                )
            )
    d = data[list(dict.fromkeys(needed))].copy()
    notes = tuple(
        message(f"{int(n)} row(s) with a missing value left out", field=c)
        for c in dict.fromkeys([time, arm, subject])
        if (n := d[c].isna().sum())
    )
    d = d[d[arm].notna() & d[subject].notna() & d[time].notna()]
    d[arm] = d[arm].astype(str).astype(object)
    for c in covariates:  # patsy wants object columns for categorical terms
        if not pd.api.types.is_numeric_dtype(d[c]):
            d[c] = d[c].astype(object)
    d[subject] = d[subject].astype(str).astype(object)
    for c in dict.fromkeys([*covariates, *moderators]):  # collinear with the intercept
        if d[c].nunique() < 2:
            seen = d[c].dropna().tolist()
            raise ConfigError(
                message(
                    "is constant, so its effect cannot be estimated",
                    field=c,
                    value=seen[0] if seen else None,
                    fix="drop it from the covariates/moderators",
                )
            )
    control = str(control)
    present = sorted(d[arm].unique())
    if control not in present:
        raise ConfigError(
            message(
                "is not an arm in the table",
                field="control",
                value=control,
                fix=f"use one of {', '.join(present)}",
            )
        )
    if len(present) < 2:
        raise ConfigError(message("needs at least two arms", field=arm, value=present))
    arms_per_subject = d.groupby(subject)[arm].nunique()
    if (arms_per_subject > 1).any():
        bad = arms_per_subject.index[arms_per_subject > 1][0]
        raise ConfigError(
            message(
                "subject is in more than one arm",
                field=subject,
                value=bad,
                fix="one arm per subject (cross-over designs are not supported)",
            )
        )
    times = _sorted_visits(d[time].unique().tolist())
    if len(times) < 2:
        raise ConfigError(
            message(
                "has a single time point; effects need change over time",
                field=time,
                value=times,
                fix="include baseline and follow-up rows",
            )
        )
    check_subjects_per_arm(d.groupby(arm)[subject].nunique(), field=arm)
    d = d.sort_values([subject, time], kind="stable").reset_index(drop=True)
    return Design(
        d,
        list(outcomes),
        time,
        arm,
        subject,
        control,
        list(covariates),
        list(moderators),
        [a for a in present if a != control],
        times,
        notes,
    )


def covariate_terms(d: pd.DataFrame, covariates: list[str]) -> list[str]:
    """Formula terms for covariates: numeric as is, anything else as ``C(...)``."""
    terms = []
    for c in covariates:
        numeric = pd.api.types.is_numeric_dtype(d[c]) and not pd.api.types.is_bool_dtype(d[c])
        terms.append(quoted(c) if numeric else f"C({quoted(c)})")
    return terms


def _sorted_visits(values: list) -> list:
    """Distinct time values in time order; digit strings ("1", "2", "10") sort as numbers."""
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        return sorted(values, key=str)
