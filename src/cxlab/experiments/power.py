"""Power of a planned trial from an experiment spec: ``cxlab power SPEC``.

The spec's ``[power]`` section says what to simulate; the pilot estimates (baseline mean,
control slope, random-effect covariance, residual variance) come from numbers in the
section or, for what it leaves out, from a random intercept + slope fit of each outcome in
the spec's store (:func:`cxlab.models.fit_mixed`). Each planned trial is then simulated and
analysed :func:`cxlab.models.power.simulate_power` times per sample size, in parallel::

    [power]
    n_per_arm = [10, 20, 40]        # participants per arm to try (required)
    n_sims = 500                    # simulated trials per size (default 500)
    seed = 7                        # default: the spec's seed
    alpha = 0.05                    # default: the spec's model.alpha
    dropout = 0.1                   # chance of missing each visit after the first (MCAR)
    times = [0, 4, 8, 12]           # planned visits, in the spec's time unit

    [power.outcomes.pain_nrs]       # optional; every spec outcome when absent
    effects = { hip = -0.08 }       # slope difference vs control per time unit, per arm
    intercept = 5.0                 # the rest: numbers, or estimated from the store
    control_slope = 0.0
    cov_re = [[1.0, 0.01], [0.01, 0.01]]
    sigma2 = 0.64
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxlab._check import ConfigError, check_keys, message
from cxlab.experiments.spec import ExperimentSpec, read_spec
from cxlab.models.power import POWER_COLUMNS, PowerPlan, simulate_power

__all__ = ["PILOT_KEYS", "POWER_KEYS", "PowerResult", "PowerSpec", "power_analysis", "write_power"]

POWER_KEYS = ("n_per_arm", "n_sims", "seed", "alpha", "dropout", "times", "outcomes")
PILOT_KEYS = ("effects", "intercept", "control_slope", "cov_re", "sigma2")
#: the columns of :attr:`PowerResult.table`
TABLE_COLUMNS = ["outcome", *POWER_COLUMNS, "source"]


@dataclass(frozen=True)
class PilotNumbers:
    """Pilot values given in ``[power.outcomes.NAME]`` (None: estimate from the store)."""

    effects: Mapping[str, float] | None = None
    intercept: float | None = None
    control_slope: float | None = None
    cov_re: tuple[tuple[float, float], tuple[float, float]] | None = None
    sigma2: float | None = None


@dataclass(frozen=True)
class PowerSpec:
    """The ``[power]`` section of an experiment spec, validated.

    Attributes
    ----------
    n_per_arm : tuple of int
        Sample sizes per arm to try.
    n_sims : int
        Simulated trials per sample size.
    seed : int
    alpha : float
        Two-sided level of each arm's test.
    dropout : float
        Probability of missing each visit after the first (MCAR), in [0, 1).
    times : tuple of float or None
        Planned visit times in the spec's time unit; None: the pilot's median time of each
        session index.
    outcomes : dict of str to PilotNumbers
        Per spec outcome; empty: every spec outcome, all from the store.
    """

    n_per_arm: tuple[int, ...]
    n_sims: int
    seed: int
    alpha: float
    dropout: float
    times: tuple[float, ...] | None
    outcomes: Mapping[str, PilotNumbers]

    @classmethod
    def from_spec(cls, path: str | os.PathLike[str], spec: ExperimentSpec, /) -> PowerSpec:
        """Read and check the ``[power]`` section of the spec file at ``path``."""
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("power")
        if not isinstance(raw, dict):
            raise ConfigError(
                message(
                    "has no [power] section",
                    file=path,
                    field="power",
                    fix="add [power] with n_per_arm = [10, 20, 40] (see docs/models.md)",
                )
            )
        check_keys(raw, POWER_KEYS, where="power", file=path)

        def bad(field: str, value: Any, what: str) -> ConfigError:
            return ConfigError(message(what, file=path, field=f"power.{field}", value=value))

        sizes = raw.get("n_per_arm")
        if isinstance(sizes, int) and not isinstance(sizes, bool):
            sizes = [sizes]
        if (
            not isinstance(sizes, list)
            or not sizes
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)
        ):
            raise bad("n_per_arm", sizes, "must be a list of whole numbers, e.g. [10, 20, 40]")
        n_sims = raw.get("n_sims", 500)
        if not isinstance(n_sims, int) or isinstance(n_sims, bool) or n_sims < 1:
            raise bad("n_sims", n_sims, "must be a whole number >= 1")
        seed = raw.get("seed", spec.seed)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise bad("seed", seed, "must be a whole number >= 0")
        alpha = raw.get("alpha", spec.alpha)
        if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise bad("alpha", alpha, "must be between 0 and 1")
        dropout = raw.get("dropout", 0.0)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise bad("dropout", dropout, "must be in [0, 1)")
        times = raw.get("times")
        if times is not None and (
            not isinstance(times, list) or not all(isinstance(v, (int, float)) for v in times)
        ):
            raise bad("times", times, "must be a list of numbers, e.g. [0, 4, 8, 12]")
        names = {o.name for o in spec.outcomes}
        outs = raw.get("outcomes", {})
        if not isinstance(outs, dict):
            raise bad("outcomes", outs, "must be a table of [power.outcomes.NAME] sections")
        pilots = {}
        for name, v in outs.items():
            if name not in names:
                raise bad(
                    f"outcomes.{name}", name, f"is not an outcome of the spec {sorted(names)}"
                )
            if not isinstance(v, dict):
                raise bad(f"outcomes.{name}", v, "must be a table")
            check_keys(v, PILOT_KEYS, where=f"power.outcomes.{name}", file=path)
            eff = v.get("effects")
            if eff is not None and (
                not isinstance(eff, dict)
                or not all(isinstance(x, (int, float)) for x in eff.values())
            ):
                raise bad(f"outcomes.{name}.effects", eff, "must map arm names to numbers")
            if eff is not None and spec.control in eff:
                raise bad(
                    f"outcomes.{name}.effects",
                    spec.control,
                    "is the control arm; effects are differences from it (use control_slope)",
                )
            cov = v.get("cov_re")
            if cov is not None:
                arr = np.asarray(cov, dtype=float) if _numeric_2x2(cov) else None
                if arr is None:
                    raise bad(f"outcomes.{name}.cov_re", cov, "must be a 2 x 2 list of numbers")
                cov = tuple(tuple(float(x) for x in row) for row in arr)
            for k in ("intercept", "control_slope", "sigma2"):
                if k in v and not isinstance(v[k], (int, float)):
                    raise bad(f"outcomes.{name}.{k}", v[k], "must be a number")
            pilots[name] = PilotNumbers(
                effects={str(a): float(x) for a, x in eff.items()} if eff is not None else None,
                intercept=_opt_float(v.get("intercept")),
                control_slope=_opt_float(v.get("control_slope")),
                cov_re=cov,
                sigma2=_opt_float(v.get("sigma2")),
            )
        return cls(
            tuple(int(s) for s in sizes),
            int(n_sims),
            int(seed),
            float(alpha),
            float(dropout),
            tuple(float(t) for t in times) if times is not None else None,
            pilots,
        )


def _numeric_2x2(cov) -> bool:
    return (
        isinstance(cov, list)
        and len(cov) == 2
        and all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r)
            for r in cov
        )
    )


def _opt_float(v) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class PowerResult:
    """What :func:`power_analysis` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        :data:`TABLE_COLUMNS`: ``outcome`` then :data:`cxlab.models.power.POWER_COLUMNS`
        and ``source`` (``"spec"``: every pilot number from the spec; ``"store"``: some
        estimated from the store).
    plans : dict of str to PowerPlan
        Outcome → what was simulated (slopes per time unit of the spec's time).
    time : str
        The spec's time variable (the unit of slopes and ``times``).
    """

    table: pd.DataFrame
    plans: Mapping[str, PowerPlan]
    time: str


def _pilot_fit(analysis: pd.DataFrame, spec: ExperimentSpec, name: str):
    """Control intercept and slope, random-effect covariance and residual variance of
    outcome ``name`` from :func:`cxlab.models.fit_mixed` (no covariates: the simulated
    model has none), per unit of the spec's time."""
    from cxlab.models import fit_mixed

    d = analysis[(analysis["outcome"] == name) & analysis["value"].notna()]
    fit = fit_mixed(
        d,
        outcome="value",
        time=spec.time,
        arm=spec.arm,
        subject="subject_id",
        control=spec.control,
        alpha=spec.alpha,
    )
    res, scale = fit.results_["value"], fit.time_scale["value"]
    fe = res.fe_params
    g = np.atleast_2d(np.asarray(res.cov_re, dtype=float))
    if g.shape != (2, 2):
        g = np.array([[g[0, 0], 0.0], [0.0, 0.0]])  # fell back to a random intercept
    g = g / np.array([[1.0, scale], [scale, scale**2]])
    arm_slopes = {
        a: float(fit.table.loc[fit.table["arm"] == a, "estimate"].iloc[0]) for a in fit.table["arm"]
    }
    return {
        "intercept": float(fe["Intercept"]),
        "control_slope": float(fe[spec.time]) / scale,
        "effects": arm_slopes,
        "cov_re": g,
        "sigma2": float(res.scale),
        "engine": fit.engine["value"],
    }


def _planned_times(analysis: pd.DataFrame, spec: ExperimentSpec, name: str) -> list[float]:
    d = analysis[(analysis["outcome"] == name) & analysis[spec.time].notna()]
    med = d.groupby("session_index")[spec.time].median().sort_index()
    return sorted({round(float(v), 6) for v in med})


def power_analysis(
    spec_path: str | os.PathLike[str],
    /,
    *,
    store: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PowerResult:
    """Simulated power per outcome, arm and sample size for the spec's planned trial.

    Parameters
    ----------
    spec_path : path-like
        An experiment spec with a ``[power]`` section (see the module docstring).
    store : path-like, optional
        Override the spec's store (pilot estimates); not opened when the spec gives every
        pilot number.
    jobs : int, optional
        Worker processes (default: all cores, via :func:`cxlab._executor.make_executor`).
        The result does not depend on it.
    progress : callable, optional
        ``progress(n, total)`` after each finished task: ``n`` trials just simulated, of
        ``total`` for the whole analysis.

    Returns
    -------
    PowerResult

    Raises
    ------
    ConfigError
        No or an invalid ``[power]`` section; a pilot number missing with no usable store;
        a plan that is not simulable (fewer than 3 visits, a covariance that is not
        positive semi-definite).
    """
    from cxlab._executor import make_executor

    spec = read_spec(spec_path, store=store)
    ps = PowerSpec.from_spec(spec_path, spec)
    names = list(ps.outcomes) or [o.name for o in spec.outcomes]
    need_store = ps.times is None or not all(
        _all_given(ps.outcomes.get(n, PilotNumbers())) for n in names
    )
    analysis = None
    if need_store:
        from cxlab.experiments.run import _time_from_sessions

        analysis = _pilot_analysis(spec, store_given=store is not None)
        spec = _time_from_sessions(analysis, spec)  # no dated session: the session index
    plans, sources = {}, {}
    for name in names:
        given = ps.outcomes.get(name, PilotNumbers())
        pilot = (
            _pilot_fit(analysis, spec, name)
            if analysis is not None and not _all_given(given)
            else {}
        )
        effects = given.effects if given.effects is not None else pilot.get("effects")
        values = {
            k: getattr(given, k) if getattr(given, k) is not None else pilot.get(k)
            for k in ("intercept", "control_slope", "cov_re", "sigma2")
        }
        missing = [k for k, v in {"effects": effects, **values}.items() if v is None]
        if missing:
            raise ConfigError(
                message(
                    "has no value and the store gives none",
                    file=spec.path,
                    field=f"power.outcomes.{name}.{missing[0]}",
                    fix="give the number in the spec or point --store at a pilot store",
                )
            )
        times = ps.times if ps.times is not None else _planned_times(analysis, spec, name)
        c0 = float(values["control_slope"])
        plans[name] = PowerPlan(
            slopes={spec.control: c0, **{a: c0 + float(e) for a, e in sorted(effects.items())}},
            intercept=float(values["intercept"]),
            cov_re=np.asarray(values["cov_re"], dtype=float),
            sigma2=float(values["sigma2"]),
            times=np.asarray(times, dtype=float),
            dropout=ps.dropout,
            control=spec.control,
        )
        sources[name] = "spec" if not pilot else "store"
    tables = []
    total = len(names) * len(ps.n_per_arm) * ps.n_sims
    tick = None if progress is None else (lambda n: progress(n, total))
    with make_executor(jobs or os.cpu_count() or 1) as ex:
        for i, name in enumerate(names):
            t = simulate_power(
                plans[name],
                n_per_arm=list(ps.n_per_arm),
                n_sims=ps.n_sims,
                alpha=ps.alpha,
                seed=ps.seed + 1_000_003 * i,  # each outcome its own stream
                progress=tick,
                executor=ex,
            )
            t.insert(0, "outcome", name)
            t["source"] = sources[name]
            tables.append(t)
    table = pd.concat(tables, ignore_index=True)[TABLE_COLUMNS]
    return PowerResult(table, plans, spec.time)


def _all_given(p: PilotNumbers) -> bool:
    return None not in (p.effects, p.intercept, p.control_slope, p.cov_re, p.sigma2)


def _pilot_analysis(spec: ExperimentSpec, *, store_given: bool) -> pd.DataFrame:
    from cxlab.experiments.analysis import analysis_table
    from cxlab.store import Store

    if not Store(spec.store).exists():
        raise ConfigError(
            message(
                "does not exist, and the [power] section leaves pilot numbers (or times) out",
                file=None if store_given else spec.path,
                field="--store" if store_given else "store",
                value=str(spec.store),
                fix="give intercept, control_slope, effects, cov_re, sigma2 and times in "
                "[power], or build the pilot store with cxlab ingest",
            )
        )
    analysis = analysis_table(Store(spec.store), spec)
    if analysis.empty:
        raise ConfigError(
            message(
                "selects no pilot rows",
                file=spec.path,
                field="outcomes",
                value=[o.name for o in spec.outcomes],
                fix="check the outcome names and filter against the store (cxlab sql)",
            )
        )
    return analysis


def write_power(result: PowerResult, path: str | os.PathLike[str], /) -> Path:
    """Write the power table as CSV (``.csv``) or JSON (``.json``, with the plans).

    The bytes depend only on the result (fixed float format, sorted keys).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        doc = {
            "time": result.time,
            "plans": {
                k: {
                    "slopes": dict(sorted(p.slopes.items())),
                    "intercept": p.intercept,
                    "cov_re": np.asarray(p.cov_re, float).tolist(),
                    "sigma2": p.sigma2,
                    "times": np.asarray(p.times, float).tolist(),
                    "dropout": p.dropout,
                    "control": p.control,
                }
                for k, p in sorted(result.plans.items())
            },
            "power": json.loads(result.table.to_json(orient="records", double_precision=15)),
        }
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    elif path.suffix.lower() == ".csv":
        path.write_text(
            result.table.to_csv(index=False, lineterminator="\n", float_format="%.10g"),
            encoding="utf-8",
        )
    else:
        raise ConfigError(
            message(
                "must end in .csv or .json",
                field="--out",
                value=str(path),
                fix="e.g. --out power.csv",
            )
        )
    return path
