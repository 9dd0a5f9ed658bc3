"""The statistical truth behind the synthetic cohort: who is in which arm, and how they change.

:func:`simulate_truth` draws a cohort at the table level (no files): subjects with
phenotypes, random intercepts and slopes, an arm (balanced block randomisation or a
covariate-dependent choice), sessions every 4 weeks with a few days' jitter in the
date, true and observed outcome values, and monotone dropout that is missing at
random (it depends on the pain *observed* at the previous visit).

Model
-----
For subject *i* at session *j* (``t_ij`` weeks since the programme start)::

    y_true(i, j) = b0_o + u0_oi + (c_o + e_o,arm(i) + u1_oi) * t_ij          (linear outcomes)
    y_obs(i, j)  = y_true(i, j) + N(0, sd_obs_o)    then rounded/clipped to the instrument

with ``c_o`` the control arm's drift (natural history), ``e_o,arm`` the arm's effect
(difference in weekly slope vs control, :data:`DEFAULT_EFFECTS`) and
``u1_oi ~ N(0, sd_slope_o)`` the subject's random slope. Baselines ``b0 + u0`` come
from the subject's phenotype (see :data:`PHENOTYPES`).

Effect heterogeneity. For the two limb-symmetry indices (LSI, %) and the knee frontal
plane projection angle (FPPA, deg) the slope is proportional to how much impairment
there is to remove, ``d0`` = baseline asymmetry ``100 - LSI_0`` or baseline FPPA::

    slope_i = (c_o + e_o,arm + u1_oi) * m_i,    m_i = (d0_i - 1) / (E[d0] - 1)

so the population-average slope is exactly ``c + e_arm`` (``E[m_i] = 1``; ``E[d0]``
is computed exactly from the phenotype mixture) and a subject's effect grows by
``e_arm / (E[d0] - 1)`` per unit of baseline impairment (:attr:`CohortTruth.moderators`).
With the defaults an impairment reaches ~1 after ``(E[d0] - 1) / |c + e|`` weeks:
16.5 weeks for the hip-strengthening LSI (+0.5 %-points/week, ``E[d0] = 10.1``) and 13
weeks for its FPPA (-0.6 deg/week, ``E[d0] = 8.9``). True LSI is capped at 99.5; the
cap binds for < 0.1 % of rows up to week 12 (4 sessions) and ~5 % at week 16. FPPA is
not floored: after ~13 weeks of hip strengthening it turns negative (varus) for
some subjects.

Dropout
-------
Monotone: before session ``j >= 2`` a subject still in the study leaves with
probability ``h_j = expit(logit(h0) + 0.45 * (pain_obs(j-1) - 5))`` where ``h0`` is
chosen so that about 15 % have left by the last session. Higher observed pain means
more dropout (missing at random given the observed history).

Confounded arm choice (``confounded=True``)
-------------------------------------------
Multinomial logit on *observed* baseline covariates (so adjustment can remove it)::

    score(control)           = 0
    score(hip_strengthening) = 1.2 * has_valgus + 0.8 * has_asymmetry
    score(core_stability)    = 0.6 * (pain_nrs_0 - 5) + 0.04 * (odi_0 - 30)
    score(thoracic_mobility) = 1.5 * has_forward_head
    P(arm) = softmax(score)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, message
from cxlab.synth.params import (
    ARMS,
    CONTROL_SLOPES,
    DEFAULT_EFFECTS,
    DROPOUT_BY_END,
    DROPOUT_PAIN_LOGIT,
    FIRST_START,
    LSI_CAP,
    MIN_IMPAIRMENT,
    OBS_SD,
    OUTCOMES,
    PHENOTYPES,
    PROPORTIONAL,
    SLOPE_SD,
    UNITS,
    WEEKS_BETWEEN_SESSIONS,
)

__all__ = [
    "ARMS",
    "DEFAULT_EFFECTS",
    "OUTCOMES",
    "PHENOTYPES",
    "CohortTruth",
    "simulate_truth",
]


@dataclass
class CohortTruth:
    """A simulated cohort at the table level, with every parameter that made it.

    Attributes
    ----------
    subjects : DataFrame
        One row per subject: ``label`` (``CX001``...), ``arm``, ``sex`` (``female``/
        ``male``), ``age_years``, ``body_mass_kg``, ``height_m``, ``has_valgus``,
        ``has_asymmetry``, ``has_forward_head`` (bool), ``asymmetric_side`` (the weaker
        side, ``left``/``right``), ``valgus_side_offset_deg`` (right minus left true
        FPPA, deg), ``jump_height_m`` (baseline CMJ height), ``start_date``,
        ``n_sessions_observed``, then per outcome ``baseline_<outcome>`` (true value
        at week 0), ``u0_<outcome>`` (deviation of the baseline from the cohort
        mean) and ``slope_<outcome>`` (the subject's true weekly slope,
        all terms included).
    outcomes : DataFrame
        Long: ``label, arm, session`` (str ``"1".."K"``), ``week`` (float, days since
        start / 7), ``date``, ``outcome``, ``true_value``, ``observed_value`` (NaN
        where not observed), ``observed`` (False after dropout). Rows for every
        subject x session x outcome.
    effects : dict
        outcome -> arm -> true difference vs control in the weekly slope (outcome
        units per week); non-control arms only.
    control_slopes : dict
        outcome -> weekly drift of the control arm.
    moderators : dict
        outcome -> arm -> ``{"moderator", "per_unit", "reference", "form"}``: the
        effect heterogeneity (see module docstring).
    propensity : str
        How arms were assigned (block randomisation or the confounded logit).
    seed, n_subjects, n_sessions, confounded : as passed.
    """

    subjects: pd.DataFrame
    outcomes: pd.DataFrame
    effects: dict[str, dict[str, float]]
    control_slopes: dict[str, float]
    moderators: dict[str, dict[str, dict[str, Any]]]
    propensity: str
    seed: int
    n_subjects: int
    n_sessions: int
    confounded: bool
    units: dict[str, str] = field(default_factory=lambda: dict(UNITS))

    def wide(self, *, value: str = "observed_value") -> pd.DataFrame:
        """One row per subject and session, one column per outcome.

        Parameters
        ----------
        value : {"observed_value", "true_value"}
            Which value to spread.

        Returns
        -------
        DataFrame
            ``label, arm, session, week, date, observed`` then one column per outcome.
        """
        keys = ["label", "arm", "session", "week", "date", "observed"]
        w = self.outcomes.pivot(index=keys, columns="outcome", values=value)
        w = w.reset_index()[keys + list(OUTCOMES)]
        w.columns.name = None
        order = {lab: i for i, lab in enumerate(self.subjects["label"])}
        w = w.sort_values(
            ["label", "session"], key=lambda s: s.map(order) if s.name == "label" else s.astype(int)
        )
        return w.reset_index(drop=True)


def _check_sizes(n_subjects: int, n_sessions: int) -> None:
    for name, v, lo in (("n_subjects", n_subjects, 1), ("n_sessions", n_sessions, 1)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise ConfigError(
                message(
                    f"must be an integer >= {lo}", field=name, value=v, fix=f"pass e.g. {name}=40"
                )
            )
    if n_subjects > 999_999:
        raise ConfigError(
            message(
                "is too large for CX labels",
                field="n_subjects",
                value=n_subjects,
                fix="use at most 999999",
            )
        )


def _merge_effects(effects: dict | None) -> dict[str, dict[str, float]]:
    out = {o: dict(a) for o, a in DEFAULT_EFFECTS.items()}
    for o, arms in (effects or {}).items():
        if o not in OUTCOMES:
            raise ConfigError(
                message(
                    "is not a simulated outcome",
                    field="effects",
                    value=o,
                    fix=f"use one of {', '.join(OUTCOMES)}",
                )
            )
        for a, v in arms.items():
            if a not in ARMS[1:]:
                raise ConfigError(
                    message(
                        "is not a treatment arm",
                        field=f"effects[{o!r}]",
                        value=a,
                        fix=f"use one of {', '.join(ARMS[1:])}",
                    )
                )
            out[o][a] = float(v)
    return out


def _label_width(n: int) -> int:
    return max(3, len(str(n)))


def _uniform(rng, n, flag, with_, without):
    lo = np.where(flag, with_[0], without[0])
    hi = np.where(flag, with_[1], without[1])
    return lo + (hi - lo) * rng.random(n)


def _impairment(outcome: str, value):
    """Baseline impairment that scales a subject's slope: asymmetry %-points or valgus deg."""
    return 100.0 - value if outcome.endswith("_lsi_pct") else value


def _expected_impairment(outcome: str) -> float:
    """Population mean of the baseline impairment, from the phenotype mixture (exact)."""
    ph = next(
        v
        for v in PHENOTYPES.values()
        if v["feature"] == outcome.replace("cmj_propulsive_impulse", "landing_peak_force")
    )
    p = ph["prevalence"]
    mid = [_impairment(outcome, 0.5 * sum(ph[k])) for k in ("with", "without")]
    return p * mid[0] + (1 - p) * mid[1]


def _assign_arms(rng, n, confounded, pain0, odi0, flags) -> tuple[np.ndarray, str]:
    if not confounded:
        n_blocks = -(-n // len(ARMS))
        keys = rng.random((n_blocks, len(ARMS)))
        arms = np.argsort(keys, axis=1).reshape(-1)[:n]
        return arms, "permuted blocks of 4 (balanced 1:1:1:1 randomisation)"
    score = np.column_stack(
        [
            np.zeros(n),
            1.2 * flags["has_valgus"] + 0.8 * flags["has_asymmetry"],
            0.6 * (pain0 - 5.0) + 0.04 * (odi0 - 30.0),
            1.5 * flags["has_forward_head"],
        ]
    )
    p = np.exp(score - score.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n)[:, None]
    arms = (u > np.cumsum(p, axis=1)).sum(axis=1)
    arms = np.minimum(arms, len(ARMS) - 1)
    desc = (
        "multinomial logit on observed baseline covariates: score(control)=0, "
        "score(hip_strengthening)=1.2*has_valgus+0.8*has_asymmetry, "
        "score(core_stability)=0.6*(pain_nrs_0-5)+0.04*(odi_0-30), "
        "score(thoracic_mobility)=1.5*has_forward_head; P(arm)=softmax(score)"
    )
    return arms, desc


def simulate_truth(
    n_subjects: int,
    n_sessions: int,
    /,
    *,
    seed: int,
    confounded: bool = False,
    effects: dict[str, dict[str, float]] | None = None,
    dropout: bool = True,
) -> CohortTruth:
    """Simulate a cohort's subjects, arms and outcome trajectories with known truth.

    Parameters
    ----------
    n_subjects : int
        Number of subjects (labels ``CX001``...).
    n_sessions : int
        Sessions per subject, at weeks 0, 4, 8, ... (dates jittered by up to 3 days).
    seed : int
        Seed of :func:`numpy.random.default_rng`; same seed, same cohort.
    confounded : bool
        If True, arms are chosen from baseline covariates (see module docstring)
        instead of block randomisation.
    effects : dict, optional
        outcome -> arm -> weekly slope difference vs control, overriding
        :data:`DEFAULT_EFFECTS` entry by entry (e.g. zeros for a null simulation).
    dropout : bool
        If False every session is observed.

    Returns
    -------
    CohortTruth

    Notes
    -----
    1,000 subjects x 6 sessions take a few tens of milliseconds: everything is
    drawn as (subjects x sessions) arrays.
    """
    _check_sizes(n_subjects, n_sessions)
    eff = _merge_effects(effects)
    rng = np.random.default_rng(seed)
    n, K = int(n_subjects), int(n_sessions)

    # --- demographics -------------------------------------------------------------
    male = rng.random(n) < 0.5
    age = np.clip(rng.normal(38.0, 11.0, n), 18.0, 70.0).round(1)
    height = np.where(male, rng.normal(1.78, 0.07, n), rng.normal(1.65, 0.065, n))
    bmi = np.clip(rng.normal(24.5, 3.0, n), 18.0, 36.0)
    mass = (bmi * height**2).round(2)
    height = height.round(3)
    jump = np.clip(
        np.where(male, 0.34, 0.25) + rng.normal(0, 0.04, n) - 0.001 * (age - 38.0), 0.12, 0.55
    ).round(4)

    # --- phenotypes and baselines ------------------------------------------------
    flags = {k: rng.random(n) < v["prevalence"] for k, v in PHENOTYPES.items()}
    weak_right = rng.random(n) < 0.5
    fppa0 = _uniform(
        rng, n, flags["has_valgus"], *(PHENOTYPES["has_valgus"][k] for k in ("with", "without"))
    )
    side_offset = rng.uniform(-1.5, 1.5, n)
    asym0 = 100.0 - _uniform(
        rng,
        n,
        flags["has_asymmetry"],
        *(PHENOTYPES["has_asymmetry"][k] for k in ("with", "without")),
    )
    cva0 = _uniform(
        rng,
        n,
        flags["has_forward_head"],
        *(PHENOTYPES["has_forward_head"][k] for k in ("with", "without")),
    )
    pain0 = np.clip(
        4.6 + 0.6 * flags["has_valgus"] + 0.5 * flags["has_forward_head"] + rng.normal(0, 1.1, n),
        1.0,
        9.0,
    )
    odi0 = np.clip(26.0 + 3.5 * (pain0 - 5.0) + rng.normal(0, 6.0, n), 4.0, 70.0)
    bal0 = np.clip(0.040 + 0.004 * flags["has_valgus"] + rng.normal(0, 0.005, n), 0.02, 0.08)
    baseline = {
        "pain_nrs": pain0,
        "odi": odi0,
        "knee_fppa_peak_deg": fppa0,
        "landing_peak_force_lsi_pct": 100.0 - asym0,
        "cmj_propulsive_impulse_lsi_pct": 100.0 - asym0,
        "posture_cva_deg": cva0,
        "balance_mean_velocity_m_s": bal0,
    }

    # --- sessions: dates and weeks -------------------------------------------------
    start = FIRST_START + rng.integers(0, 365, n).astype("timedelta64[D]")
    jitter = rng.integers(-3, 4, (n, K))
    jitter[:, 0] = 0
    days = WEEKS_BETWEEN_SESSIONS * 7 * np.arange(K)[None, :] + jitter
    week = days / 7.0
    dates = start[:, None] + days.astype("timedelta64[D]")

    # --- observation noise and slopes (drawn before arms: arms do not shift draws) -
    noise = {o: rng.normal(0.0, OBS_SD[o], (n, K)) for o in OUTCOMES}
    u1 = {o: rng.normal(0.0, SLOPE_SD[o], n) for o in OUTCOMES}

    # observed baselines drive the confounded arm choice
    pain_obs0 = np.clip(np.rint(pain0 + noise["pain_nrs"][:, 0]), 0, 10)
    odi_obs0 = 2 * np.rint(np.clip(odi0 + noise["odi"][:, 0], 0, 100) / 2)
    arm_idx, propensity = _assign_arms(rng, n, confounded, pain_obs0, odi_obs0, flags)
    arm = np.asarray(ARMS, dtype=object)[arm_idx]

    true, slope = {}, {}
    for o in OUTCOMES:
        arm_eff = np.array([0.0] + [eff[o][a] for a in ARMS[1:]])[arm_idx]
        s = CONTROL_SLOPES[o] + arm_eff + u1[o]
        if o in PROPORTIONAL:
            d0 = _impairment(o, baseline[o])
            s = s * (d0 - MIN_IMPAIRMENT) / (_expected_impairment(o) - MIN_IMPAIRMENT)
        true[o] = baseline[o][:, None] + s[:, None] * week
        if o.endswith("_lsi_pct"):
            true[o] = np.minimum(true[o], LSI_CAP)
        slope[o] = s
    true["pain_nrs"] = np.clip(true["pain_nrs"], 0.0, 10.0)
    true["odi"] = np.clip(true["odi"], 0.0, 100.0)
    true["balance_mean_velocity_m_s"] = np.maximum(true["balance_mean_velocity_m_s"], 0.01)

    obs = {o: true[o] + noise[o] for o in OUTCOMES}
    obs["pain_nrs"] = np.clip(np.rint(obs["pain_nrs"]), 0, 10)
    obs["odi"] = 2 * np.rint(np.clip(obs["odi"], 0, 100) / 2)
    for o in ("landing_peak_force_lsi_pct", "cmj_propulsive_impulse_lsi_pct"):
        obs[o] = np.minimum(obs[o], 100.0)
    obs["balance_mean_velocity_m_s"] = np.maximum(obs["balance_mean_velocity_m_s"], 0.005)

    # --- dropout: monotone, MAR on the previously observed pain ------------------
    present = np.ones((n, K), dtype=bool)
    if dropout and K > 1:
        h0 = 1.0 - (1.0 - DROPOUT_BY_END) ** (1.0 / (K - 1))
        logit0 = np.log(h0 / (1.0 - h0))
        u = rng.random((n, K))
        for j in range(1, K):  # loop over sessions (K <= ~10), vectorised over subjects
            lin = logit0 + DROPOUT_PAIN_LOGIT * (obs["pain_nrs"][:, j - 1] - 5.0)
            leave = u[:, j] < 1.0 / (1.0 + np.exp(-lin))
            present[:, j] = present[:, j - 1] & ~leave

    # --- assemble -----------------------------------------------------------------
    width = _label_width(n)
    labels = np.array([f"CX{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    subjects = pd.DataFrame(
        {
            "label": labels,
            "arm": arm,
            "sex": np.where(male, "male", "female"),
            "age_years": age,
            "body_mass_kg": mass,
            "height_m": height,
            **{k: v for k, v in flags.items()},
            "asymmetric_side": np.where(weak_right, "right", "left"),
            "valgus_side_offset_deg": side_offset.round(3),
            "jump_height_m": jump,
            "start_date": pd.to_datetime(start),
            "n_sessions_observed": present.sum(axis=1),
        }
    )
    for o in OUTCOMES:
        subjects[f"baseline_{o}"] = baseline[o]
        subjects[f"u0_{o}"] = baseline[o] - float(np.mean(baseline[o]))
        subjects[f"slope_{o}"] = slope[o]

    n_o = len(OUTCOMES)
    sess = np.tile(np.arange(1, K + 1), n).astype(str)
    long = pd.DataFrame(
        {
            "label": np.repeat(np.repeat(labels, K), n_o),
            "arm": np.repeat(np.repeat(arm, K), n_o),
            "session": np.repeat(sess, n_o),
            "week": np.repeat(week.reshape(-1), n_o),
            "date": pd.to_datetime(np.repeat(dates.reshape(-1), n_o)),
            "outcome": np.tile(np.asarray(OUTCOMES, dtype=object), n * K),
            "true_value": np.stack([true[o].reshape(-1) for o in OUTCOMES], axis=1).reshape(-1),
            "observed_value": np.stack([obs[o].reshape(-1) for o in OUTCOMES], axis=1).reshape(-1),
            "observed": np.repeat(present.reshape(-1), n_o),
        }
    )
    long.loc[~long["observed"], "observed_value"] = np.nan

    mods = {}
    for o in PROPORTIONAL:
        e_d = _expected_impairment(o)
        what = (
            "baseline asymmetry 100 - LSI_0 (%-points)"
            if o.endswith("_lsi_pct")
            else "baseline knee FPPA (deg)"
        )
        mods[o] = {
            a: {
                "moderator": what,
                "form": "slope_i = (c + e_arm + u1_i) * (d0_i - 1) / (E[d0] - 1)",
                "reference": round(e_d, 6),
                "per_unit": eff[o][a] / (e_d - MIN_IMPAIRMENT),
            }
            for a in ARMS[1:]
        }
    return CohortTruth(
        subjects=subjects,
        outcomes=long,
        effects={o: {a: eff[o][a] for a in ARMS[1:]} for o in OUTCOMES},
        control_slopes=dict(CONTROL_SLOPES),
        moderators=mods,
        propensity=propensity,
        seed=int(seed),
        n_subjects=n,
        n_sessions=K,
        confounded=bool(confounded),
    )
