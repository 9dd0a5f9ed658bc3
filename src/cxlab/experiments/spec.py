"""The experiment spec: a TOML file, validated once with every problem reported together.

A spec names the data (a store and an optional SQL filter), the outcomes with
their minimal clinically important differences, and the model. Example
(``experiments/demo.toml``)::

    name = "demo"
    title = "Corrective-exercise programmes: demo cohort"
    seed = 2026
    store = "../data/processed/demo"        # relative to this file
    where = "adherence >= 0.5"              # optional, SQL over the analysis rows

    [model]
    design = "parallel"                     # or "prepost" (one group), "crossover"
    time = "week"                           # or "session_index"
    control = "control"
    covariates = ["age_years"]
    method = "mixed"

    [outcomes.pain_nrs]
    mcid = 2.0
    better = "lower"

    [outcomes."knee_fppa_peak_deg@left"]
    mcid = 3.0
    better = "lower"

    [curves.landing_force]                  # optional: whole-curve outcomes (SPM)
    signal = "fz_bw"
    phase = "landing"
    test = "two_sample"                     # or "paired", "anova1rm", "regression"
    arm = "hip_strengthening"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cxlab._check import ConfigError, message, nearest, unknown_keys
from cxlab.store import is_url

__all__ = [
    "CURVE_TESTS",
    "DESIGNS",
    "INSTRUMENTS",
    "PREPOST_ARM",
    "CurveOutcome",
    "ExperimentSpec",
    "Outcome",
    "read_spec",
]

#: survey instruments (``scores.instrument``) from docs/conventions.md; other names are features
INSTRUMENTS = ("pain_nrs", "pain_vas", "odi")
#: model time variables: weeks since the programme started, or 0-based session number
TIMES = ("week", "session_index")
#: time as a slope (estimand: difference in rate of change) or per visit (difference in
#: change from the first visit at each later visit)
TIME_AS = ("continuous", "categorical")
#: covariates available in the analysis table
COVARIATES = ("age_years", "adherence")
METHODS = ("mixed", "gee")
#: pre-declared moderators: the outcome's own baseline value (baseline severity) and the
#: subject-level columns of the analysis table; each is fitted by
#: :func:`cxlab.models.moderators.fit_moderation` (numeric: per SD; text: per level)
MODERATORS = ("baseline", "age_years", "adherence")
#: moderators read from the store's ``participants`` table (``cxlab ingest-participants``);
#: text ones are categorical (one slope difference per level)
PARTICIPANT_MODERATORS = ("sex", "sport", "dominant_side", "height_m", "mass_kg")
#: study designs: arms vs a control arm; one group measured before and after; every subject
#: following each programme in turn (periods in interventions.start_date order)
DESIGNS = ("parallel", "prepost", "crossover")
#: the arm of every subject in a pre/post design without a programme log
PREPOST_ARM = "all"
SIDES = ("left", "right")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_OUTCOME = re.compile(r"[a-z][a-z0-9_]*(@(left|right))?")

_TOP = (
    "name",
    "title",
    "seed",
    "store",
    "where",
    "model",
    "outcomes",
    "power",
    "curves",
    "curve_correction",
)
_MODEL = (
    "design",
    "time",
    "time_as",
    "arm",
    "control",
    "covariates",
    "method",
    "alpha",
    "moderators",
)
_OUT = ("mcid", "better", "label", "source", "task")
#: SPM tests of a curve outcome (cxlab.models.spm)
CURVE_TESTS = ("paired", "two_sample", "anova1rm", "regression")
#: corrections of the per-curve alpha over the run's curve tests
CURVE_CORRECTIONS = ("sidak", "none")
_CURVE = (
    "signal",
    "phase",
    "side",
    "task",
    "test",
    "arm",
    "alpha",
    "two_tailed",
    "inference",
    "permutations",
    "pre",
    "post",
    "covariate",
    "incomplete",
    "label",
)
_CURVE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class Outcome:
    """One outcome of an experiment.

    Attributes
    ----------
    name : str
        An instrument (``pain_nrs``) or a feature (``knee_fppa_peak_deg``),
        optionally with a side suffix (``knee_fppa_peak_deg@left``).
    source : {"scores", "features"}
        The table it comes from (default: ``scores`` for the instruments in
        :data:`INSTRUMENTS`, else ``features``).
    feature : str
        The instrument or feature name without the side suffix.
    side : str or None
        ``"left"``/``"right"`` for a suffixed outcome; ``None`` means the
        bilateral value if the feature has one, else the mean of the two
        sides' trial means.
    task : str or None
        Only features from this task (default: every task).
    mcid : float, "swc" or None
        Minimal clinically important difference in the outcome's unit, or
        ``"swc"`` for the smallest worthwhile change ``0.2 x SD`` of the
        subjects' baseline values (Hopkins 2000), resolved from the data when
        the experiment runs; responders and the forest plot need it.
    better : {"lower", "higher"}
        Direction of improvement.
    label : str
        Plain-language name for the report.
    """

    name: str
    source: str
    feature: str
    side: str | None
    task: str | None
    mcid: float | str | None
    better: str
    label: str


@dataclass(frozen=True)
class CurveOutcome:
    """One whole-curve outcome of an experiment, tested with SPM (docs/curves.md).

    Attributes
    ----------
    name : str
        The ``[curves.<name>]`` table's name.
    signal, phase : str
        Which curves of the store's ``curves`` table (e.g. ``fz_bw`` in ``landing``).
    side : {"bilateral", "left", "right"}
        Which side's curve (default ``bilateral``).
    task : str or None
        Only curves of recordings of this task (default: every task).
    test : {"paired", "two_sample", "anova1rm", "regression"}
        ``paired``: ``post`` vs ``pre`` within ``arm``; ``two_sample``: the change curves
        (``post − pre``) of ``arm`` vs the control arm; ``anova1rm``: every session from
        ``pre`` to ``post`` within ``arm``; ``regression``: the change curves of ``arm``
        (default every participant) on ``covariate``.
    arm : str or None
        The programme arm tested (required except for ``regression``; ``"all"`` in a
        pre/post design).
    alpha : float
        Family-wise α of the run's curve tests (default ``model.alpha``).
    two_tailed : bool
        Two-tailed t inference (default); ignored for the F of ``anova1rm``.
    inference : {"parametric", "permutation"}
        Random field theory or permutations.
    permutations : int
        Permutations drawn for ``inference = "permutation"`` (seeded from ``seed``).
    pre, post : int or None
        Session indices (0 = each participant's first session) of the comparison;
        default 0 and the last session index in the analysis table.
    covariate : str or None
        ``regression`` only: a column of the analysis table (:data:`COVARIATES`).
    incomplete : {"refuse", "exclude"}
        A participant missing a needed session's curve stops the run naming every missing
        participant × session (default), or is left out and named in the run's warnings.
    label : str
        Plain-language name for the report.
    """

    name: str
    signal: str
    phase: str
    side: str
    task: str | None
    test: str
    arm: str | None
    alpha: float
    two_tailed: bool
    inference: str
    permutations: int
    pre: int
    post: int | None
    covariate: str | None
    incomplete: str
    label: str


@dataclass(frozen=True)
class ExperimentSpec:
    """A validated experiment spec (see :func:`read_spec`)."""

    name: str
    title: str
    seed: int
    store: Path | str  # a directory, or a remote store's URL (cxlab.store.is_url)
    store_text: str
    where: str | None
    time: str
    arm: str
    control: str
    covariates: tuple[str, ...]
    method: str
    alpha: float
    outcomes: tuple[Outcome, ...] = field(default=())
    path: Path | None = None
    design: str = "parallel"
    moderators: tuple[str, ...] = ()
    time_as: str = "continuous"
    curves: tuple[CurveOutcome, ...] = field(default=())
    curve_correction: str = "sidak"

    def canonical(self) -> dict[str, Any]:
        """The spec as plain JSON-able data, without paths (they do not change results).

        A spec without curve outcomes has no ``curves``/``curve_correction`` keys, so its
        run hash is what it was before curve outcomes existed.
        """
        d = asdict(self)
        for k in ("store", "store_text", "path"):
            d.pop(k)
        d["covariates"] = list(self.covariates)
        if self.moderators:  # absent when unused, so earlier runs keep their identity
            d["moderators"] = list(self.moderators)
        else:
            d.pop("moderators")
        if self.time_as == "continuous":
            d.pop("time_as")
        d["outcomes"] = [asdict(o) for o in self.outcomes]
        if self.curves:
            d["curves"] = [asdict(c) for c in self.curves]
        else:
            d.pop("curves")
            d.pop("curve_correction")
        return d


class _Keys:
    """Typed reads of spec keys that append every problem to one list (one wording each).

    ``need`` reads a key of a type; ``choice`` also requires one of ``allowed``; ``level``
    a significance level in (0, 0.5). Each returns the value read (None when absent and
    required, or of the wrong type), so later checks see what the spec says.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def add(self, problem, /, **where) -> None:
        """Append one problem (the arguments of :func:`cxlab._check.message`)."""
        self.problems.append(message(problem, **where))

    def need(self, d, key, typ, where="", default=...):
        if key not in d:
            if default is ...:
                self.add("is required", field=f"{where}{key}", fix="add it to the spec")
            return None if default is ... else default
        v = d[key]
        if not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
            names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            self.add(
                f"must be a {names}",
                field=f"{where}{key}",
                value=v,
                fix=f"write it as a TOML {names}",
            )
            return None
        return v

    def choice(self, d, key, allowed, where, default, *, problem, fix=None, suggest=False):
        """A string key that must be one of ``allowed``; ``fix`` defaults to listing them,
        ``suggest`` puts a did-you-mean first."""
        v = self.need(d, key, str, where, default)
        if v is not None and v not in allowed:
            self.add(
                problem,
                field=f"{where}{key}",
                value=v,
                fix=fix or _pick_fix(v, allowed, suggest=suggest),
            )
        return v

    def member(self, v, allowed, *, problem, field, many="one"):
        """Append a did-you-mean problem when ``v`` is not in ``allowed``."""
        if v is not None and v not in allowed:
            self.add(
                problem,
                field=field,
                value=v,
                fix=_pick_fix(v, allowed, suggest=True, many=many),
            )

    def names(self, d, key, allowed, where, *, problem):
        """A list key (default empty) whose every item must be one of ``allowed``."""
        v = self.need(d, key, list, where, [])
        for item in v or []:
            self.member(
                item,
                allowed,
                problem=f"is not an available {problem}",
                field=f"{where}{key}",
                many="any",
            )
        return v

    def level(self, d, key, where, default):
        """A significance level: a number in (0, 0.5)."""
        v = self.need(d, key, (int, float), where, default)
        if v is not None and not 0 < v < 0.5:
            self.add(
                "is out of range",
                field=f"{where}{key}",
                value=v,
                fix="use a level between 0 and 0.5, e.g. 0.05",
            )
        return v


def _pick_fix(v, allowed, *, suggest: bool, many: str = "one") -> str:
    close = nearest(v, allowed) if suggest else None
    return f"did you mean {close!r}?" if close else f"use {many} of {', '.join(allowed)}"


def read_spec(path: str | Path, /, *, store: str | Path | None = None) -> ExperimentSpec:
    """Read and validate an experiment spec.

    Parameters
    ----------
    path : path-like
        The TOML file.
    store : path-like, optional
        Use this store instead of the spec's ``store`` (relative to the
        current directory, like any command-line path).

    Returns
    -------
    ExperimentSpec
        With ``store`` resolved: a relative ``store`` in the spec is taken
        relative to the **spec file's directory**, so a spec works from any
        working directory.

    Raises
    ------
    ConfigError
        Listing every problem at once, one line each, naming the key, the bad
        value and the fix; unknown keys get a did-you-mean suggestion.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            message("does not exist", file=path, fix="give the path of an experiment TOML file")
        ) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            message(
                f"is not valid TOML ({e})",
                file=path,
                fix="fix the syntax (see docs/experiments.md)",
            )
        ) from None
    problems: list[str] = []
    problems += [str(u) for u in unknown_keys(raw, _TOP)]

    keys = _Keys(problems)
    need = keys.need

    name = need(raw, "name", str)
    if name is not None and not _NAME.fullmatch(name):
        keys.add(
            "is not a valid run name",
            field="name",
            value=name,
            fix="use letters, digits, '_', '.', '-' (max 64)",
        )
    title = need(raw, "title", str, default=None)
    seed = need(raw, "seed", int)
    if seed is not None and not 0 <= seed < 2**32:
        keys.add(
            "is out of range",
            field="seed",
            value=seed,
            fix="use an integer from 0 to 2**32 - 1",
        )
    store_text = need(raw, "store", str, default=None)
    if store_text is None and store is None and "store" not in raw:
        keys.add(
            "is required",
            field="store",
            fix='add store = "path/to/store" (relative to the spec file)',
        )
    where = need(raw, "where", str, default=None)
    if where is not None and ";" in where:
        keys.add(
            "must be one SQL boolean expression",
            field="where",
            value=where,
            fix="remove the ';' (e.g. where = \"adherence >= 0.5\")",
        )

    model = need(raw, "model", dict, default={}) or {}
    problems += [str(u) for u in unknown_keys(model, _MODEL, where="model")]
    time = keys.choice(
        model, "time", TIMES, "model.", "week", problem="is not a valid time variable"
    )
    arm = keys.choice(
        model,
        "arm",
        ("arm",),
        "model.",
        "arm",
        problem="is not a column of the analysis table",
        fix='use "arm" (interventions.arm)',
    )
    design = keys.choice(
        model, "design", DESIGNS, "model.", "parallel", problem="is not a known design"
    )
    control = need(model, "control", str, "model.", ... if design != "prepost" else PREPOST_ARM)
    cov = keys.names(model, "covariates", COVARIATES, "model.", problem="covariate")
    mods = keys.names(
        model, "moderators", MODERATORS + PARTICIPANT_MODERATORS, "model.", problem="moderator"
    )
    if mods and design != "parallel":
        keys.add(
            "need a parallel design (arms vs control)",
            field="model.moderators",
            value=mods,
            fix='use design = "parallel" or drop the moderators',
        )
    time_as = keys.choice(
        model, "time_as", TIME_AS, "model.", "continuous", problem="is not a way to model time"
    )
    if time_as == "categorical" and (time != "session_index" or design != "parallel"):
        keys.add(
            'per-visit estimands need time = "session_index" and design = "parallel"',
            field="model.time_as",
            value=time_as,
            fix='set time = "session_index" (visits are session numbers), or use '
            'time_as = "continuous"',
        )
    if time_as == "categorical" and mods:
        keys.add(
            'moderators need time_as = "continuous"',
            field="model.moderators",
            value=mods,
            fix="drop the moderators or model time as continuous",
        )
    method = keys.choice(
        model, "method", METHODS, "model.", "mixed", problem="is not a valid method"
    )
    alpha = keys.level(model, "alpha", "model.", 0.05)

    outs_raw = need(raw, "outcomes", dict)
    outcomes: list[Outcome] = []
    if outs_raw is not None and not outs_raw:
        keys.add("is empty", field="outcomes", fix="add at least one [outcomes.<name>] table")
    for oname, o in (outs_raw or {}).items():
        where_ = f"outcomes.{oname}."
        if not _OUTCOME.fullmatch(oname):
            keys.add(
                "is not a valid outcome name",
                field=f"outcomes.{oname}",
                fix="use an instrument or feature name, optionally with "
                "@left or @right (e.g. knee_fppa_peak_deg@left)",
            )
            continue
        if not isinstance(o, dict):
            keys.add(
                "must be a table",
                field=f"outcomes.{oname}",
                value=o,
                fix=f"write it as [outcomes.{oname}] with mcid = ...",
            )
            continue
        problems += [str(u) for u in unknown_keys(o, _OUT, where=f"outcomes.{oname}")]
        feature, _, side = oname.partition("@")
        mcid = need(o, "mcid", (int, float, str), where_, None)
        bad = mcid != "swc" if isinstance(mcid, str) else (mcid is not None and not mcid > 0)
        if bad:
            keys.add(
                'must be positive or "swc"',
                field=f"{where_}mcid",
                value=mcid,
                fix="give the minimal important change in the "
                'outcome\'s unit, or "swc" for 0.2 x baseline SD',
            )
        better = keys.choice(
            o,
            "better",
            ("lower", "higher"),
            where_,
            "lower",
            problem="is not a direction",
            fix='use "lower" or "higher"',
        )
        source = keys.choice(
            o,
            "source",
            ("scores", "features"),
            where_,
            "scores" if feature in INSTRUMENTS else "features",
            problem="is not a table",
            fix='use "scores" or "features"',
        )
        if source == "scores" and side:
            keys.add(
                "has a side suffix but comes from scores",
                field=f"outcomes.{oname}",
                fix="drop the @left/@right",
            )
        task = need(o, "task", str, where_, None)
        label = need(o, "label", str, where_, None) or (
            feature.replace("_", " ") + (f" ({side})" if side else "")
        )
        outcomes.append(
            Outcome(
                oname,
                source or "features",
                feature,
                side or None,
                task,
                mcid if mcid is None or isinstance(mcid, str) else float(mcid),
                better or "lower",
                label,
            )
        )
    curves = _read_curves(raw, keys, design=design, alpha=alpha)
    correction = keys.choice(
        raw, "curve_correction", CURVE_CORRECTIONS, "", "sidak", problem="is not a known correction"
    )
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(
            f"{path.name}: {len(problems)} problem(s) in the experiment spec:\n"
            f"{lines}\nsee docs/experiments.md for every key"
        )
    if store is not None:
        store_path, store_text = (str(store) if is_url(store) else Path(store)), str(store)
    elif is_url(store_text):  # s3://bucket/prefix: a remote store, never relative
        store_path = store_text
    else:
        store_path = Path(store_text)
        if not store_path.is_absolute():
            store_path = path.parent / store_path
    return ExperimentSpec(
        name=name,
        title=title or name,
        seed=seed,
        store=store_path,
        store_text=store_text,
        where=where,
        time=time,
        arm=arm,
        control=control,
        covariates=tuple(cov),
        method=method,
        alpha=float(alpha),
        outcomes=tuple(outcomes),
        path=path,
        design=design,
        moderators=tuple(dict.fromkeys(mods or [])),
        time_as=time_as or "continuous",
        curves=tuple(curves),
        curve_correction=correction or "sidak",
    )


def _read_curves(raw: dict, keys: _Keys, *, design, alpha) -> list[CurveOutcome]:
    """The ``[curves.<name>]`` tables, every problem appended to ``keys.problems``."""
    problems, need = keys.problems, keys.need
    tables = need(raw, "curves", dict, "", {}) or {}
    out: list[CurveOutcome] = []
    for cname, c in tables.items():
        where_ = f"curves.{cname}."
        if not _CURVE_NAME.fullmatch(cname):
            keys.add(
                "is not a valid curve outcome name",
                field=f"curves.{cname}",
                fix="use lower-case letters, digits and '_' (e.g. landing_force)",
            )
            continue
        if not isinstance(c, dict):
            keys.add(
                "must be a table",
                field=f"curves.{cname}",
                value=c,
                fix=f"write it as [curves.{cname}] with signal = ..., phase = ..., test = ...",
            )
            continue
        n_before = len(problems)
        problems += [str(u) for u in unknown_keys(c, _CURVE, where=f"curves.{cname}")]
        signal = need(c, "signal", str, where_)
        phase = need(c, "phase", str, where_)
        side = keys.choice(
            c,
            "side",
            ("bilateral", *SIDES),
            where_,
            "bilateral",
            problem="is not a side",
            fix='use "bilateral", "left" or "right"',
        )
        task = need(c, "task", str, where_, None)
        test = keys.choice(
            c, "test", CURVE_TESTS, where_, ..., problem="is not a curve test", suggest=True
        )
        arm = need(c, "arm", str, where_, PREPOST_ARM if design == "prepost" else None)
        if arm is None and test in ("paired", "two_sample", "anova1rm") and "arm" not in c:
            keys.add(
                f"is required for test = {test!r}",
                field=f"{where_}arm",
                fix="name the programme arm tested (interventions.arm)",
            )
        if test == "two_sample" and design == "prepost":
            keys.add(
                "needs a control arm, which a pre/post design has not",
                field=f"{where_}test",
                value=test,
                fix='use test = "paired" in a pre/post design',
            )
        c_alpha = keys.level(c, "alpha", where_, alpha if alpha is not None else 0.05)
        two_tailed = need(c, "two_tailed", bool, where_, True)
        inference = keys.choice(
            c,
            "inference",
            ("parametric", "permutation"),
            where_,
            "parametric",
            problem="is not an inference",
            fix='use "parametric" (random field theory) or "permutation"',
        )
        perms = need(c, "permutations", int, where_, 10000)
        if perms is not None and not 100 <= perms <= 1_000_000:
            keys.add(
                "is out of range",
                field=f"{where_}permutations",
                value=perms,
                fix="use 100 to 1000000 (10000 gives p to about ±0.004)",
            )
        pre = need(c, "pre", int, where_, 0)
        post = need(c, "post", int, where_, None)
        for key, v in (("pre", pre), ("post", post)):
            if v is not None and v < 0:
                keys.add(
                    "must be a session index ≥ 0",
                    field=f"{where_}{key}",
                    value=v,
                    fix="0 is each participant's first session",
                )
        if pre is not None and post is not None and post <= pre:
            keys.add(
                "must come after pre",
                field=f"{where_}post",
                value=post,
                fix=f"use a session index greater than pre = {pre}",
            )
        covariate = need(c, "covariate", str, where_, None)
        if test == "regression" and covariate is None and "covariate" not in c:
            keys.add(
                "is required for test = 'regression'",
                field=f"{where_}covariate",
                fix=f"use one of {', '.join(COVARIATES)}",
            )
        keys.member(
            covariate,
            COVARIATES,
            problem="is not an available covariate",
            field=f"{where_}covariate",
        )
        if covariate is not None and test not in (None, "regression"):
            keys.add(
                f"is only used by test = 'regression', not {test!r}",
                field=f"{where_}covariate",
                fix="remove it",
            )
        incomplete = keys.choice(
            c,
            "incomplete",
            ("refuse", "exclude"),
            where_,
            "refuse",
            problem="is not a known policy",
            fix='use "refuse" (stop, naming the missing participant × session) or '
            '"exclude" (leave them out, named in the warnings)',
        )
        label = need(c, "label", str, where_, None)
        if len(problems) > n_before:
            continue
        out.append(
            CurveOutcome(
                name=cname,
                signal=signal,
                phase=phase,
                side=side,
                task=task,
                test=test,
                arm=arm,
                alpha=float(c_alpha),
                two_tailed=bool(two_tailed),
                inference=inference,
                permutations=int(perms),
                pre=int(pre),
                post=None if post is None else int(post),
                covariate=covariate,
                incomplete=incomplete,
                label=label
                or f"{signal} in {phase}" + (f" ({side})" if side != "bilateral" else ""),
            )
        )
    return out
