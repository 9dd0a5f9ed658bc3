"""Random-slope REML fit: cxlab's profiled engine vs statsmodels MixedLM vs R's lme4.

The same data (``simulate_truth``: 1,000 subjects x 6 sessions x 4 arms, outcome pain_nrs,
time rescaled to its range) are fitted by :func:`cxlab.models._reml.fit_random_slope`,
by statsmodels ``MixedLM(re_formula="~t").fit(reml=True)``, and, when ``Rscript`` with lme4
is on the machine, by ``lme4::lmer(y ~ t * arm + (t | subject), REML = TRUE)`` timed inside
R (best of ``--repeat``, data already in memory, so R's start-up is not counted). Prints
seconds and each as a ratio against lme4 (target: cxlab at most 2x lme4), plus the largest
difference in the fixed effects against each peer, in standard errors.

Usage::

    .venv/bin/python benchmarks/bench_mixed.py [--subjects 1000] [--sessions 6] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import timeit
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import statsmodels.formula.api as smf

from cxlab.models._reml import fit_random_slope
from cxlab.synth.truth import simulate_truth

FML = "pain_nrs ~ t * C(arm, Treatment('control'))"

R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); d$arm <- relevel(factor(d$arm), ref = "control")
reps <- as.integer(args[2]); best <- Inf
for (i in seq_len(reps)) {
  t0 <- proc.time()[["elapsed"]]
  m <- lmer(pain_nrs ~ t * arm + (t | label), data = d, REML = TRUE)
  best <- min(best, proc.time()[["elapsed"]] - t0)
}
cat(best, "\n"); f <- fixef(m); cat(paste(names(f), f), sep = "\n")
"""


def best_of(fn, repeat: int) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def lme4_time(d: pd.DataFrame, repeat: int):
    """Best lmer time inside R (s) and its fixed effects, or None when R/lme4 is missing."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "fit.R"
        d[["pain_nrs", "t", "arm", "label"]].to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        r = subprocess.run(
            ["Rscript", str(script), str(csv), str(repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
    if r.returncode != 0:
        return None
    lines = r.stdout.strip().splitlines()
    coefs = {}
    for line in lines[1:]:
        name, value = line.rsplit(" ", 1)
        coefs[name] = float(value)
    return float(lines[0]), coefs


def _patsy_name(r_name: str) -> str:
    """lme4's coefficient name (``t:armX``) as patsy writes it (``t:C(arm, ...)[T.X]``)."""
    parts = []
    for p in r_name.split(":"):
        if p.startswith("arm"):
            p = f"C(arm, Treatment('control'))[T.{p[3:]}]"
        parts.append(p.replace("(Intercept)", "Intercept"))
    return ":".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--sessions", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args()

    d = simulate_truth(a.subjects, a.sessions, seed=a.seed).wide().dropna(subset=["pain_nrs"])
    d = d.reset_index(drop=True)
    d["t"] = d["week"] / (d["week"].max() - d["week"].min())
    y, X = patsy.dmatrices(FML, d, return_type="dataframe")
    yv, Xv, tv, gv = y.to_numpy().ravel(), X.to_numpy(), d["t"].to_numpy(), d["label"].to_numpy()
    fit = fit_random_slope(yv, Xv, tv, gv)
    ours = best_of(lambda: fit_random_slope(yv, Xv, tv, gv), a.repeat)
    se = np.sqrt(np.diag(fit.cov_beta))

    def sm_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return smf.mixedlm(FML, d, groups=d["label"], re_formula="~t").fit(
                reml=True, method=["lbfgs"]
            )

    sm = sm_fit()
    sm_t = best_of(sm_fit, max(1, a.repeat // 2))
    print(f"cohort: {a.subjects} subjects x {a.sessions} sessions x 4 arms, {len(d)} rows")
    r = lme4_time(d, a.repeat)
    print(f"{'cxlab profiled REML':28s} {ours:8.3f} s")
    print(
        f"{'statsmodels MixedLM':28s} {sm_t:8.3f} s   cxlab is {sm_t / ours:5.1f}x faster; "
        f"max |dbeta| = {np.max(np.abs(fit.beta - sm.fe_params.to_numpy()) / se):.1e} SE"
    )
    if r is None:
        print("lme4: Rscript with lme4 not found (apt-get install r-cran-lme4); ratio not measured")
        return
    t_r, coefs = r
    beta_r = pd.Series({_patsy_name(k): v for k, v in coefs.items()})[X.columns].to_numpy()
    print(
        f"{'R lme4::lmer':28s} {t_r:8.3f} s   cxlab / lme4 = {ours / t_r:4.2f} (target <= 2); "
        f"max |dbeta| = {np.max(np.abs(fit.beta - beta_r) / se):.1e} SE"
    )


if __name__ == "__main__":
    main()
