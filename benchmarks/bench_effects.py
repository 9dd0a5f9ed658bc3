"""Speed of :func:`cxlab.models.fit_effects` on a 1,000-subject × 6-session × 4-arm cohort.

Prints wall-clock seconds (best of ``--repeat``) for the mixed model (random intercept
and slope, REML), GEE and AIPW, and each as a ratio against an OLS fit of the same
fixed-effects formula measured in the same run (the baseline). Target: the mixed model
under 5 s on one core.

Usage::

    .venv/bin/python benchmarks/bench_effects.py [--subjects 1000] [--sessions 6]
"""

from __future__ import annotations

import argparse
import timeit

import statsmodels.formula.api as smf

from cxlab.models import fit_effects
from cxlab.synth.truth import simulate_truth


def best_of(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` single calls, s."""
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args()

    wide = simulate_truth(a.subjects, a.sessions, seed=a.seed).wide()
    kw = dict(outcome="pain_nrs", time="week", arm="arm", subject="label", control="control")
    d = wide.dropna(subset=["pain_nrs"])
    fml = "pain_nrs ~ week * C(arm, Treatment('control'))"
    ols = best_of(lambda: smf.ols(fml, d).fit(), a.repeat)
    results = {}
    fit = None

    def mixed():
        nonlocal fit
        fit = fit_effects(wide, **kw)

    results["mixed (fit_effects)"] = best_of(mixed, a.repeat)
    results["gee (fit_effects)"] = best_of(lambda: fit_effects(wide, method="gee", **kw), a.repeat)
    wide_s = wide.assign(session=wide["session"].astype(int))
    results["aipw (fit_effects, 5 folds)"] = best_of(
        lambda: fit_effects(wide_s, method="aipw", **{**kw, "time": "session"}), a.repeat
    )

    print(
        f"cohort: {a.subjects} subjects x {a.sessions} sessions x 4 arms, "
        f"{len(d)} observed rows (outcome pain_nrs)"
    )
    print(f"{'baseline OLS (same fixed effects)':36s} {ols:8.3f} s   1.0x")
    for name, t in results.items():
        print(f"{name:36s} {t:8.3f} s {t / ols:6.0f}x")
    w = fit.table["warnings"].iloc[0] or "none"
    print(f"mixed model converged: {bool(fit.table['converged'].all())}; warnings: {w}")
    target = results["mixed (fit_effects)"]
    print(f"target < 5 s for the mixed model: {'met' if target < 5 else 'MISSED'} ({target:.2f} s)")


if __name__ == "__main__":
    main()
