"""The run's moderator analyses: the spec's ``[model] moderators``, one fit per outcome."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cxlab._check import CxlabError, CxlabWarning, warn
from cxlab.experiments.spec import ExperimentSpec
from cxlab.models.moderators import MODERATION_COLUMNS

__all__ = ["MIN_SUBJECTS_PER_LEVEL", "MODERATION_RUN_COLUMNS", "moderation_table"]

_AFTER_LEVEL = MODERATION_COLUMNS.index("level") + 1
MODERATION_RUN_COLUMNS = [
    *MODERATION_COLUMNS[:_AFTER_LEVEL],
    "level_value",
    *MODERATION_COLUMNS[_AFTER_LEVEL:],
    "unit",
    "moderator_unit",
    "label",
    "better",
]


#: Fewest subjects an arm may have at a categorical moderator's level: below it the level's
#: slope difference rests on one or two people and the moderator is refused for that outcome.
MIN_SUBJECTS_PER_LEVEL = 3

_UNITS = {"age_years": "year", "adherence": "1", "height_m": "m", "mass_kg": "kg"}


def _with_participants(
    analysis: pd.DataFrame, participants: pd.DataFrame | None, names: list[str]
) -> pd.DataFrame:
    """``analysis`` with the participants-table moderators ``names`` joined by subject."""
    if not names:
        return analysis
    p = participants if participants is not None else pd.DataFrame(columns=["subject_id"])
    missing = [m for m in names if m not in p.columns or p[m].isna().all()]
    if missing or p.empty:
        warn(
            f"moderator(s) {', '.join(missing or names)} not in the store's participants table",
            field="model.moderators",
            fix="ingest a participants sheet with those columns (cxlab ingest-participants)",
        )
    have = [m for m in names if m in p.columns]
    out = analysis.drop(columns=[m for m in have if m in analysis.columns])
    return out.merge(
        p[["subject_id", *have]].drop_duplicates("subject_id"), on="subject_id", how="left"
    )


def moderation_table(
    analysis: pd.DataFrame,
    spec: ExperimentSpec,
    /,
    *,
    participants: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Arm-vs-control slope differences per level of each pre-declared moderator.

    For every outcome × moderator of the spec, :func:`cxlab.models.moderators.fit_moderation`
    on that outcome's rows (``time`` = the spec's time variable). ``"baseline"`` is the
    outcome's own value at the subject's first session (baseline severity, in the
    outcome's unit); ``age_years`` and ``adherence`` are the analysis table's columns;
    ``sex``, ``sport``, ``dominant_side`` (categorical: one slope difference per level,
    against the first level in sorted order) and ``height_m``, ``mass_kg`` come from
    ``participants`` (the store table). A categorical moderator with one level among an
    outcome's subjects, or with fewer than :data:`MIN_SUBJECTS_PER_LEVEL` subjects of an
    arm at a level, is refused for that outcome with a warning naming arm and level.

    Returns
    -------
    pandas.DataFrame
        :data:`MODERATION_RUN_COLUMNS`: the :data:`~cxlab.models.moderators.MODERATION_COLUMNS`
        (``outcome`` is the spec's outcome name, ``moderator`` the spec's name), plus
        ``level_value`` (a numeric moderator's value at the level, its unit; NaN for a
        categorical level or the per-unit interaction), ``unit`` (outcome), ``moderator_unit``,
        ``label`` and ``better``. Empty without moderators. An outcome the model refuses
        (too few subjects at a level, no variation) is left out with a warning naming it.
    """
    from cxlab.experiments.spec import PARTICIPANT_MODERATORS
    from cxlab.models.moderators import fit_moderation

    if not spec.moderators or spec.design != "parallel" or analysis.empty:
        return pd.DataFrame(columns=MODERATION_RUN_COLUMNS)
    from_sheet = [m for m in spec.moderators if m in PARTICIPANT_MODERATORS]
    analysis = _with_participants(analysis, participants, from_sheet)
    parts = []
    for o in spec.outcomes:
        d = analysis[analysis["outcome"] == o.name].dropna(subset=["value", spec.time])
        if d.empty:
            continue
        d = d.sort_values(["subject_id", "session_index"], kind="stable")
        unit = str(d["unit"].iloc[0])
        base = d.groupby("subject_id")["value"].transform("first")
        d = d.assign(baseline=base)
        for m in spec.moderators:
            col = m
            if col not in d.columns or d[col].isna().all():
                continue  # warned once above
            try:
                with warnings.catch_warnings(record=True) as rec:
                    warnings.simplefilter("always")
                    fit = fit_moderation(
                        d,
                        outcome="value",
                        time=spec.time,
                        arm=spec.arm,
                        subject="subject_id",
                        control=spec.control,
                        moderator=col,
                        covariates=[c for c in spec.covariates if c != col],
                        alpha=spec.alpha,
                        min_subjects=MIN_SUBJECTS_PER_LEVEL,
                    )
                for w in rec:
                    if issubclass(w.category, CxlabWarning):
                        warnings.warn(w.message, w.category, stacklevel=2)
            except CxlabError as e:
                warn(
                    f"moderator {m} not fitted: {e}",
                    field=f"outcomes.{o.name}",
                    fix="drop the moderator, or add subjects at each of its levels",
                )
                continue
            t = fit.table.copy()
            t["outcome"] = o.name
            t["level_value"] = t["level"].map(fit.levels).astype(float)
            t["unit"] = unit
            t["moderator_unit"] = {**_UNITS, "baseline": unit}.get(m, "")
            t["label"] = o.label
            t["better"] = o.better
            parts.append(t)
    if not parts:
        return pd.DataFrame(columns=MODERATION_RUN_COLUMNS)
    out = pd.concat(parts, ignore_index=True)[MODERATION_RUN_COLUMNS]
    out["level_value"] = out["level_value"].astype(float).where(out["level_value"].notna(), np.nan)
    return out
