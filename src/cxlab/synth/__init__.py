"""Realistic synthetic cohorts with known ground truth.

- :func:`simulate_truth` (``cxlab.synth.truth``): the statistical truth at the
  table level (subjects, arms, outcome trajectories, dropout), fast enough for
  calibration studies with hundreds of replications.
- :func:`write_cohort` (``cxlab.synth.files``): the same truth written as a lab's
  export (C3D files through ezc3d, survey/intervention/strength CSVs and
  ``ground_truth.json``).
"""

from cxlab.synth.truth import ARMS, DEFAULT_EFFECTS, OUTCOMES, CohortTruth, simulate_truth

__all__ = ["ARMS", "DEFAULT_EFFECTS", "OUTCOMES", "CohortTruth", "simulate_truth"]
