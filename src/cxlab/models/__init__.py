"""Intervention-effect models: reliability, longitudinal effects, responders, causal adjustment.

- :func:`reliability`: intraclass correlations, SEM, MDC95, typical error and SWC.
- :func:`fit_mixed`, :func:`fit_gee`, :func:`fit_aipw`: arm-vs-control effects from linear
  mixed models, GEE or doubly robust AIPW, each with its own result type
  (:func:`fit_effects` dispatches to them by ``method``).
- :class:`OutcomeNotFitted`: the error for a problem with one outcome of a fit.
- :func:`responders`: change, reliable change index and responder rates with Wilson CIs.
- :func:`p_adjust`: Holm / Benjamini–Hochberg adjustment.
"""

from cxlab.models._inputs import MIN_SUBJECTS_PER_ARM, OutcomeNotFitted, check_subjects_per_arm
from cxlab.models._multiplicity import p_adjust
from cxlab.models.effects import (
    AipwFit,
    EffectFit,
    GeeFit,
    MixedFit,
    fit_aipw,
    fit_effects,
    fit_gee,
    fit_mixed,
)
from cxlab.models.reliability import reliability, retest_reliability
from cxlab.models.responders import ResponderResult, responders, wilson_interval

__all__ = [
    "MIN_SUBJECTS_PER_ARM",
    "AipwFit",
    "EffectFit",
    "GeeFit",
    "MixedFit",
    "OutcomeNotFitted",
    "ResponderResult",
    "check_subjects_per_arm",
    "fit_aipw",
    "fit_effects",
    "fit_gee",
    "fit_mixed",
    "p_adjust",
    "reliability",
    "responders",
    "retest_reliability",
    "wilson_interval",
]
