"""Parameters of the synthetic cohort's truth model: arms, outcomes, effects, noise, phenotypes.

Every number here is part of the ground truth written to ``ground_truth.json``; see
:mod:`cxlab.synth.truth` for how they combine.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ARMS",
    "CONTROL_SLOPES",
    "DEFAULT_EFFECTS",
    "LSI_CAP",
    "OBS_SD",
    "OUTCOMES",
    "PHENOTYPES",
    "PROPORTIONAL",
    "SLOPE_SD",
    "TRIAL_SD",
    "UNITS",
    "WEEKS_BETWEEN_SESSIONS",
]

ARMS = ("control", "hip_strengthening", "core_stability", "thoracic_mobility")

OUTCOMES = (
    "pain_nrs",
    "odi",
    "knee_fppa_peak_deg",
    "landing_peak_force_lsi_pct",
    "cmj_propulsive_impulse_lsi_pct",
    "posture_cva_deg",
    "balance_mean_velocity_m_s",
)

UNITS = {
    "pain_nrs": "points",
    "odi": "%",
    "knee_fppa_peak_deg": "deg",
    "landing_peak_force_lsi_pct": "%",
    "cmj_propulsive_impulse_lsi_pct": "%",
    "posture_cva_deg": "deg",
    "balance_mean_velocity_m_s": "m/s",
}

#: Difference vs control in the rate of change, outcome units per week.
DEFAULT_EFFECTS: dict[str, dict[str, float]] = {
    "pain_nrs": {"hip_strengthening": -0.10, "core_stability": -0.20, "thoracic_mobility": -0.08},
    "odi": {"hip_strengthening": -0.40, "core_stability": -1.20, "thoracic_mobility": -0.30},
    "knee_fppa_peak_deg": {
        "hip_strengthening": -0.60,
        "core_stability": -0.10,
        "thoracic_mobility": 0.0,
    },
    "landing_peak_force_lsi_pct": {
        "hip_strengthening": 0.50,
        "core_stability": 0.10,
        "thoracic_mobility": 0.0,
    },
    "cmj_propulsive_impulse_lsi_pct": {
        "hip_strengthening": 0.50,
        "core_stability": 0.10,
        "thoracic_mobility": 0.0,
    },
    "posture_cva_deg": {
        "hip_strengthening": 0.0,
        "core_stability": 0.10,
        "thoracic_mobility": 0.40,
    },
    "balance_mean_velocity_m_s": {
        "hip_strengthening": -0.0004,
        "core_stability": -0.0006,
        "thoracic_mobility": 0.0,
    },
}

#: Control arm's drift per week (natural history), outcome units per week.
CONTROL_SLOPES = {
    "pain_nrs": -0.03,
    "odi": -0.15,
    "knee_fppa_peak_deg": 0.0,
    "landing_peak_force_lsi_pct": 0.05,
    "cmj_propulsive_impulse_lsi_pct": 0.05,
    "posture_cva_deg": -0.02,
    "balance_mean_velocity_m_s": 0.0,
}

#: Subject-level random-slope SD, outcome units per week.
SLOPE_SD = {
    "pain_nrs": 0.04,
    "odi": 0.25,
    "knee_fppa_peak_deg": 0.06,
    "landing_peak_force_lsi_pct": 0.10,
    "cmj_propulsive_impulse_lsi_pct": 0.10,
    "posture_cva_deg": 0.06,
    "balance_mean_velocity_m_s": 0.0002,
}

#: Session-to-session (day-to-day plus measurement) SD of the observed value.
OBS_SD = {
    "pain_nrs": 0.7,
    "odi": 4.0,
    "knee_fppa_peak_deg": 1.0,
    "landing_peak_force_lsi_pct": 1.2,
    "cmj_propulsive_impulse_lsi_pct": 1.2,
    "posture_cva_deg": 0.8,
    "balance_mean_velocity_m_s": 0.002,
}

#: Within-session trial-to-trial SD of the repeated measures (two CMJ and two landing trials
#: per session), outcome units; the trials' deviations are centred within the session, so the
#: session mean stays the observed value above (whose OBS_SD already holds measurement
#: error). Knee FPPA, per side: Munro, Herrington & Carolan (2012), *J Sport Rehabil* 21:7-11,
#: within-day SEM 2.72-3.01 deg (ICC 0.59-0.88). LSIs: Heishman et al. (2019), *Sports*
#: 7:103, within-session CV of CMJ force-plate asymmetries often > 10 % with ICC > 0.7; 2.5
#: %-points of LSI is the generator's choice within that range.
TRIAL_SD = {
    "knee_fppa_peak_deg": 2.8,
    "landing_peak_force_lsi_pct": 2.5,
    "cmj_propulsive_impulse_lsi_pct": 2.5,
}

#: Baseline phenotypes: prevalence and the uniform range of the true baseline value
#: with and without the phenotype, far from the screening cut-offs.
PHENOTYPES = {
    "has_valgus": {
        "prevalence": 0.35,
        "feature": "knee_fppa_peak_deg",
        "with": (14.0, 20.0),
        "without": (2.0, 7.0),
    },
    "has_asymmetry": {
        "prevalence": 0.40,
        "feature": "landing_peak_force_lsi_pct",
        "with": (75.0, 85.0),
        "without": (94.0, 99.0),
    },
    "has_forward_head": {
        "prevalence": 0.40,
        "feature": "posture_cva_deg",
        "with": (40.0, 45.0),
        "without": (52.0, 58.0),
    },
}

WEEKS_BETWEEN_SESSIONS = 4
LSI_CAP = 99.5
MIN_IMPAIRMENT = 1.0  # %-points or deg; moderator m_i = (d0 - 1) / (E[d0] - 1)
#: Outcomes whose slopes scale with the baseline impairment (effect heterogeneity).
PROPORTIONAL = (
    "knee_fppa_peak_deg",
    "landing_peak_force_lsi_pct",
    "cmj_propulsive_impulse_lsi_pct",
)
DROPOUT_BY_END = 0.15
DROPOUT_PAIN_LOGIT = 0.45
FIRST_START = np.datetime64("2025-01-06")
