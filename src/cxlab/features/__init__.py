"""Feature library: pure functions over arrays, one module per domain, and a store runner.

Modules: :mod:`~cxlab.features.signal` (filtering, gaps), :mod:`~cxlab.features.events`
(quiet standing, onset, take-off, contacts), :mod:`~cxlab.features.jump` (CMJ),
:mod:`~cxlab.features.landing`, :mod:`~cxlab.features.balance` (CoP sway),
:mod:`~cxlab.features.asymmetry`, :mod:`~cxlab.features.alignment` (knee FPPA, pelvic
drop), :mod:`~cxlab.features.posture`, :mod:`~cxlab.features.efficiency` (SPARC, LDLJ,
gait timing), :mod:`~cxlab.features.strength`, and :mod:`~cxlab.features.runner`
(``extract_features``). Nothing is imported here, so ``import cxlab.features.balance``
stays cheap.
"""
