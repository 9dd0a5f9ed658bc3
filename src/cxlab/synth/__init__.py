"""Realistic synthetic cohorts with known ground truth.

- :func:`simulate_truth` (:mod:`cxlab.synth.truth`): the statistical truth at the
  table level (subjects, arms, outcome trajectories, dropout), fast enough for
  calibration studies with hundreds of replications; parameters in
  :mod:`cxlab.synth.params`.
- :func:`write_cohort` (:mod:`cxlab.synth.files`): the same truth written as a lab's
  export (C3D files through ezc3d, survey/intervention/strength CSVs and
  ``ground_truth.json``); signals from :mod:`cxlab.synth.signals` and
  :mod:`cxlab.synth.kinematics`. Imported lazily so the truth model stays light.
"""

from cxlab.synth.params import ARMS, DEFAULT_EFFECTS, OUTCOMES
from cxlab.synth.truth import CohortTruth, simulate_truth

__all__ = ["ARMS", "DEFAULT_EFFECTS", "OUTCOMES", "CohortTruth", "simulate_truth", "write_cohort"]


def __getattr__(name):
    if name == "write_cohort":
        from cxlab.synth.files import write_cohort

        return write_cohort
    raise AttributeError(f"module 'cxlab.synth' has no attribute {name!r}")
