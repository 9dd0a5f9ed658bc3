"""The run's moderator analyses: the spec's ``[model] moderators``, one fit per outcome."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cxlab._check import CxlabError, CxlabWarning, warn
from cxlab.experiments.spec import ExperimentSpec

__all__ = ["MODERATION_RUN_COLUMNS", "moderation_table"]

MODERATION_RUN_COLUMNS = [
    "outcome",
    "arm",
    "moderator",
    "kind",
    "level",
    "level_value",
    "reference",
    "estimand",
    "estimate",
    "std_error",
    "df",
    "df_method",
    "ci_low",
    "ci_high",
    "p_value",
    "n_subjects",
    "converged",
    "warnings",
    "unit",
    "moderator_unit",
    "label",
    "better",
]


def moderation_table(analysis: pd.DataFrame, spec: ExperimentSpec, /) -> pd.DataFrame:
    """Arm-vs-control slope differences per level of each pre-declared moderator.

    For every outcome × moderator of the spec, :func:`cxlab.models.moderators.fit_moderation`
    on that outcome's rows (``time`` = the spec's time variable). ``"baseline"`` is the
    outcome's own value at the subject's first session (baseline severity, in the
    outcome's unit); ``age_years`` and ``adherence`` are the analysis table's columns.

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
    from cxlab.models.moderators import fit_moderation

    if not spec.moderators or spec.design != "parallel" or analysis.empty:
        return pd.DataFrame(columns=MODERATION_RUN_COLUMNS)
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
            t["moderator_unit"] = {"baseline": unit, "age_years": "year", "adherence": "1"}.get(
                m, ""
            )
            t["label"] = o.label
            t["better"] = o.better
            parts.append(t)
    if not parts:
        return pd.DataFrame(columns=MODERATION_RUN_COLUMNS)
    out = pd.concat(parts, ignore_index=True)[MODERATION_RUN_COLUMNS]
    out["level_value"] = out["level_value"].astype(float).where(out["level_value"].notna(), np.nan)
    return out
