"""Intervention-effect models: reliability, longitudinal effects, responders, causal adjustment.

- :func:`reliability`: intraclass correlations, SEM, MDC95, typical error and SWC.
- :func:`fit_effects`: arm-vs-control effects from linear mixed models, GEE or AIPW.
- :func:`responders`: change, reliable change index and responder rates with Wilson CIs.
- :func:`p_adjust`: Holm / Benjamini–Hochberg adjustment.
"""

from cxlab.models._multiplicity import p_adjust
from cxlab.models.effects import EffectFit, fit_effects
from cxlab.models.reliability import reliability
from cxlab.models.responders import ResponderResult, responders, wilson_interval

__all__ = [
    "EffectFit",
    "ResponderResult",
    "fit_effects",
    "p_adjust",
    "reliability",
    "responders",
    "wilson_interval",
]
