"""``fit_mixed`` end to end: the fast REML engine (``engine="auto"``) vs statsmodels.

Both fit ``pain_nrs ~ week * arm`` with a random intercept and slope per subject on the same
``simulate_truth`` cohort (default 1,000 subjects x 6 sessions, 4 arms and control) through
the whole public path (design checks, formula, fit, rows, Satterthwaite below 50 subjects).
Prints the best of ``--repeat`` seconds for each, their ratio measured in the same run, and
the largest difference in slope-difference estimates in standard errors.

Usage::

    .venv/bin/python benchmarks/bench_fit_mixed.py [--subjects 1000] [--sessions 6] [--repeat 3]
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from cxlab.models import fit_mixed
from cxlab.synth.truth import simulate_truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    w = simulate_truth(a.subjects, a.sessions, seed=1).wide()
    kw = dict(outcome="pain_nrs", time="week", arm="arm", subject="label", control="control")
    fits, best = {}, {}
    for engine in ("auto", "statsmodels"):
        times = timeit.repeat(
            lambda e=engine: fits.__setitem__(e, fit_mixed(w, **kw, engine=e)),
            number=1,
            repeat=a.repeat,
        )
        best[engine] = min(times)
    fast, slow = fits["auto"].table, fits["statsmodels"].table
    gap = np.max(np.abs(fast["estimate"] - slow["estimate"]) / slow["std_error"])
    print(f"cohort: {a.subjects} subjects x {a.sessions} sessions, {len(w)} rows")
    print(f"fit_mixed engine=auto ({fits['auto'].engine['pain_nrs']}): {best['auto']:.3f} s")
    print(f"fit_mixed engine=statsmodels: {best['statsmodels']:.3f} s")
    print(f"ratio auto / statsmodels: {best['auto'] / best['statsmodels']:.2f}")
    print(f"largest estimate difference: {gap:.2e} standard errors")


if __name__ == "__main__":
    main()
