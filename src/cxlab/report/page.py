"""The report's sections, one function each, and the order the page shows them in.

As mne's ``Report.add_*``: every ``<id>_section(run, /)`` reads what it needs from one
:class:`RunData` and returns a :class:`~cxlab.report.sections.Section` rendered by its own
autoescaped template ``templates/sections/<id>.html.j2``. :func:`cxlab.report.render_report`
lays them out in :data:`SECTIONS` order (findings matrix first) with a table of contents of
the sections that have content.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup

from cxlab._html import svg_markup
from cxlab.report import figures as fg
from cxlab.report import sections
from cxlab.report.findings import findings
from cxlab.report.sections import Section, render_section, table
from cxlab.store import write_text

__all__ = ["SECTIONS", "RunData", "read_run"]

_RESP_COLS = [
    "outcome",
    "arm",
    "criterion",
    "n",
    "n_responders",
    "rate",
    "ci_low",
    "ci_high",
    "n_missing",
]
_EFFECT_COLS = [
    "label",
    "arm",
    "estimand",
    "visit",
    "moderator",
    "estimate",
    "ci_low",
    "ci_high",
    "df",
    "p_adj",
    "unit",
    "n_subjects",
    "n_obs",
    "converged",
    "var_intercept",
    "var_slope",
    "var_residual",
    "warnings",
]
_RELIABILITY_COLS = [
    "outcome",
    "type",
    "icc",
    "ci_low",
    "ci_high",
    "sem",
    "mdc95",
    "n_targets",
    "n_raters",
    "basis",
    "flag",
]
_MODERATOR_COLS = [
    "arm",
    "estimand",
    "level",
    "reference",
    "estimate",
    "ci_low",
    "ci_high",
    "df",
    "p_value",
    "n_subjects",
    "unit",
]
_METHOD_NAMES = {
    "mixed": "a linear mixed model (REML; the engine of each outcome is under Methods)",
    "gee": "generalised estimating equations (exchangeable working correlation)",
    "ols": "ordinary least squares with cluster-robust errors",
}
_FORMULAS = {
    "mixed": "value ~ arm * {t}{c} + (1 + {t} | subject)",
    "gee": "value ~ arm * {t}{c}, clusters = subject",
    "ols": "value ~ arm * {t}{c}",
}


@dataclass(frozen=True)
class RunData:
    """What the sections read from a run directory, read once.

    Attributes
    ----------
    run : pathlib.Path
        The run directory.
    manifest : dict
        ``manifest.json``; ``spec`` is ``manifest["spec"]``.
    tables : dict of str to pandas.DataFrame
        The run's Parquet tables by name (a missing one is an empty frame).
    outcome_labels : dict of str to str
        Outcome name → the spec's label.
    participant_labels : dict of str to str
        ``subject_id`` → ``P01``, ``P02``, … (sorted identifiers): the only names a page shows.
    slopes : pandas.DataFrame
        The ``slope_diff`` rows of the effects table.
    mdc : dict of str to float
        Outcome → MDC95 (:func:`_mdcs`).
    found : pandas.DataFrame
        ``verdict, sentence`` per effect (:func:`cxlab.report.findings`).
    """

    run: Path
    manifest: dict
    tables: dict[str, pd.DataFrame] = field(repr=False)
    outcome_labels: dict[str, str]
    participant_labels: dict[str, str]
    slopes: pd.DataFrame = field(repr=False)
    mdc: dict[str, float]
    found: pd.DataFrame = field(repr=False)

    @property
    def spec(self) -> dict:
        return self.manifest["spec"]

    @property
    def alpha(self) -> float:
        return self.spec.get("alpha", 0.05)

    @property
    def level(self) -> str:
        """The confidence level in percent, as the page writes it (``"95"``)."""
        return f"{100 * (1 - self.alpha):g}"

    @property
    def per(self) -> str:
        """The unit of the rate of change: ``"week"`` or ``"session"``."""
        return "week" if self.spec["time"] == "week" else "session"

    def table(self, name: str, /) -> pd.DataFrame:
        return self.tables.get(name, pd.DataFrame())

    def relabel(self, text: str, /) -> str:
        """``text`` with each participant's ``subject_id`` as its ``P01`` label."""
        return sections.relabel(text, self.participant_labels)

    def save(self, name: str, svg: str, /) -> Markup:
        """Write ``figures/<name>.svg`` and return it as inline markup, proven inert."""
        safe = svg_markup(svg)  # proves the figure escaped every label it drew
        write_text(svg, self.run / "figures" / f"{name}.svg")
        return safe


_RUN_TABLES = (
    "analysis",
    "effects",
    "responders",
    "reliability",
    "asymmetry",
    "cohort",
    "quality",
    "screening",
    "participants",
    "flow",
    "marginal_means",
    "contrasts",
    "variances",
    "moderation",
)


def read_run(run: Path, /) -> RunData:
    """The manifest and tables of ``run`` and what several sections derive from them."""
    from cxlab.experiments.curves import CURVE_RUN_TABLES

    man = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    tables = {t: _read(run, t) for t in (*_RUN_TABLES, *CURVE_RUN_TABLES)}
    effects, spec = tables["effects"], man["spec"]
    slopes = effects[effects["estimand"] == "slope_diff"] if not effects.empty else effects
    found = (
        findings(
            sections.readable_effects(slopes),
            control=spec["control"],
            time_unit=spec["time"],
            alpha=spec.get("alpha", 0.05),
        )
        if not slopes.empty
        else pd.DataFrame(columns=["verdict", "sentence"])
    )
    subjects = sorted(tables["analysis"]["subject_id"].unique())
    (run / "figures").mkdir(exist_ok=True)
    return RunData(
        run=run,
        manifest=man,
        tables=tables,
        outcome_labels={o["name"]: o["label"] for o in spec["outcomes"]},
        participant_labels={s: f"P{i:02d}" for i, s in enumerate(subjects, 1)},
        slopes=slopes,
        mdc=_mdcs(tables["reliability"]),
        found=found,
    )


def _read(run: Path, name: str) -> pd.DataFrame:
    p = run / f"{name}.parquet"
    return pd.read_parquet(p) if p.exists() else pd.DataFrame()


def findings_section(r: RunData, /) -> Section:
    """The findings matrix (arms × outcomes), the clear findings and the warnings by outcome."""
    effects, spec = r.table("effects"), r.spec
    note = render_section(
        "findings_note",
        method_name=_METHOD_NAMES.get(spec["method"], spec["method"]),
        level=r.level,
        n_contrasts=len(effects),
    )
    if effects.empty:
        matrix = render_section("matrix", rows=[], arms=[])
        return Section("Findings", "findings", Markup(matrix + "\n" + note))
    arms, rows = sections.matrix_rows(effects, r.mdc, alpha=r.alpha, per=r.per)
    prepost = spec.get("design") == "prepost"
    clear = [f for f in r.found.to_dict("records") if f["verdict"] in ("better", "worse")]
    labels = r.outcome_labels
    outcomes_of: dict[str, list[str]] = {}  # one warning, once, with every outcome it concerns
    for o, g in effects.groupby("outcome", sort=False):
        texts = sorted(
            {p for w in g["warnings"].fillna("").astype(str) for p in w.split("; ") if p.strip()}
        )
        for t in texts:
            outcomes_of.setdefault(t, []).append(labels.get(o, o))
    for w in r.manifest.get("warnings", []):
        for o in labels:
            if f"outcomes.{o}: " in w:
                text = w.replace(f"outcomes.{o}: ", "", 1)
                outcomes_of.setdefault(text, []).append(labels[o])
    every = list(dict.fromkeys(labels.get(o, o) for o in effects["outcome"]))
    notes = [
        {
            "label": f"all {len(every)} outcomes"
            if len(every) > 2 and set(outs) == set(every)
            else "; ".join(dict.fromkeys(outs)),
            "text": r.relabel(t),
        }
        for t, outs in outcomes_of.items()
    ]
    matrix = render_section(
        "matrix",
        rows=rows,
        arms=arms,
        per=r.per,
        level=r.level,
        comparison=None if prepost else spec["control"],
        what="change" if prepost else "difference from control in the rate of change",
        adjust="Holm-adjusted",
        alpha=f"{r.alpha:g}",
        clear=clear,
        notes=notes,
    )
    return Section("Findings", "findings", Markup(matrix + "\n" + note))


def _n_quarantined(r: RunData) -> int:
    quality = r.table("quality")
    return int(quality["n_rows"].sum()) if not quality.empty else 0


def flow_section(r: RunData, /) -> Section:
    """Participant flow per arm and the baseline table."""
    flow = r.table("flow")
    html = render_section(
        "flow",
        rows=flow.to_dict("records") if not flow.empty else [],
        n_quarantined=_n_quarantined(r),
        baseline=table(sections.baseline_table(r.table("analysis"), labels=r.outcome_labels)),
    )
    return Section("Flow", "flow", html)


def participants_section(r: RunData, /) -> Section:
    """Each participant's first and last session per outcome, and individual responses."""
    p, spec = r.table("participants"), r.spec
    blocks = _participants(p, r.participant_labels, r.outcome_labels) if not p.empty else []
    indiv = (
        sections.individual_response(p, control=spec["control"])
        if not p.empty and spec.get("design", "parallel") == "parallel"
        else pd.DataFrame()
    )
    if not indiv.empty:
        indiv["outcome"] = indiv["outcome"].map(lambda o: r.outcome_labels.get(o, o))
    html = render_section("participants", blocks=blocks, individual=table(indiv))
    return Section("Participants", "participants", html)


def cohort_section(r: RunData, /) -> Section:
    """Cohort counts, the cohort table and the quarantined inputs."""
    analysis = r.table("analysis")
    html = render_section(
        "cohort",
        n_subjects=analysis["subject_id"].nunique(),
        n_subject_sessions=len(analysis[["subject_id", "session"]].drop_duplicates()),
        n_outcomes=analysis["outcome"].nunique(),
        cohort_html=table(r.table("cohort")),
        quality_html=table(r.table("quality")),
        n_quarantined=_n_quarantined(r),
    )
    return Section("Cohort", "cohort", html)


def trajectories_section(r: RunData, /) -> Section:
    """One trajectory figure per outcome: participants and each arm's mean over time."""
    analysis, spec = r.table("analysis"), r.spec
    figures = []
    for o in spec["outcomes"]:
        d = analysis[analysis["outcome"] == o["name"]]
        if d.empty:
            continue
        fid = "trajectory-" + o["name"].replace("@", "-")
        unit = d["unit"].iloc[0]
        svg = fg.trajectory_plot(
            d, label=o["label"], unit=unit, time=spec["time"], control=spec["control"]
        )
        undated = int(d[spec["time"]].isna().sum())
        left_out = (
            f" {undated} participant-session(s) without a {spec['time']} are not drawn"
            " (the model leaves them out too)."
            if undated
            else ""
        )
        figures.append(
            {
                "id": fid,
                "caption": f"{o['label']} ({unit}) over time, per arm.{left_out}",
                "svg": r.save(fid, svg),
            }
        )
    html = render_section("trajectories", trajectory_figures=figures)
    return Section("Trajectories", "trajectories", html)


def effects_section(r: RunData, /) -> Section:
    """The forest plot in MCIDs (outcomes whose MCID is above their MDC95) and the effects."""
    slopes, effects, control = r.slopes, r.table("effects"), r.spec["control"]
    in_mcid = (
        slopes[
            [
                float(m) >= r.mdc.get(o, 0.0)
                for o, m in zip(slopes["outcome"], slopes["mcid"].astype(float), strict=True)
            ]
        ]
        if not slopes.empty
        else slopes
    )
    own_units = sorted(set(slopes["label"]) - set(in_mcid["label"])) if not slopes.empty else []
    forest = (
        r.save("forest", fg.forest_plot(in_mcid, control=control))
        if not in_mcid.empty
        else Markup("")
    )
    effects_html = (
        table(sections.readable_effects(effects)[[c for c in _EFFECT_COLS if c in effects]])
        if not effects.empty
        else Markup("")
    )
    html = render_section(
        "effects",
        forest_svg=forest,
        control=control.replace("_", " "),
        time_unit=r.per,
        own_units=own_units,
        effects_html=effects_html,
    )
    return Section("Effects", "effects", html)


def means_section(r: RunData, /) -> Section:
    """Marginal means per visit, pairwise contrasts and variance components."""
    labels = r.outcome_labels
    html = render_section(
        "means",
        level=r.level,
        means=table(_labelled(r.table("marginal_means"), labels)),
        pairs=table(_labelled(r.table("contrasts"), labels)),
        variances=table(_labelled(r.table("variances"), labels)),
    )
    return Section("Marginal means", "means", html)


def moderators_section(r: RunData, /) -> Section:
    """Per outcome × moderator: the effect at levels of the moderator and its rows."""
    moderation, spec = r.table("moderation"), r.spec
    blocks = []
    groups = moderation.groupby(["outcome", "moderator"], sort=False) if len(moderation) else []
    for (o, m), g in groups:
        g = sections.readable_effects(g.assign(mcid=np.nan))
        fid = "moderator-" + o.replace("@", "-") + "-" + m
        inter = g[g["estimand"] == "interaction"]
        clear = inter[(inter["ci_low"] > 0) | (inter["ci_high"] < 0)]
        what = (
            f"the interaction CI excludes 0 for {', '.join(sorted(clear['arm']))}"
            if len(clear)
            else "no interaction CI excludes 0: the data do not show that the effect "
            "differs by " + m.replace("_", " ")
        )
        svg = fg.moderator_plot(
            g[g["estimand"] == "slope_diff"], time_unit=r.per, control=spec["control"]
        )
        blocks.append(
            {
                "id": fid,
                "svg": r.save(fid, svg),
                "caption": f"{g['label'].iloc[0]} by {m.replace('_', ' ')}: {what}.",
                "table": table(g[_MODERATOR_COLS]),
            }
        )
    html = render_section(
        "moderators",
        blocks=blocks,
        time_unit=spec["time"].replace("_", " "),
        control=spec["control"],
        level=r.level,
    )
    return Section("Moderators", "moderators", html)


def curves_section(r: RunData, /) -> Section:
    """Whole-curve (SPM) outcomes; empty (and left out of the page) when the run has none."""
    from cxlab.experiments.curves import CURVE_RUN_TABLES
    from cxlab.report.curve_section import curves_section as curves_html

    tables = {t: r.table(t) for t in CURVE_RUN_TABLES}
    if tables["spm"].empty:
        return Section("Curves", "curves", Markup(""))
    html = curves_html(
        tables, save=r.save, control=r.spec["control"], participants=r.participant_labels
    )
    return Section("Curves", "curves", html)


def responders_section(r: RunData, /) -> Section:
    """Responder rates per arm (figure with CIs) and the responders table."""
    responders = r.table("responders")
    rates = _responder_rates(responders)
    svg = (
        r.save(
            "responders",
            fg.responder_plot(rates, labels=r.outcome_labels, control=r.spec["control"]),
        )
        if not rates.empty
        else Markup("")
    )
    rows = (
        _labelled(responders[[c for c in _RESP_COLS if c in responders]], r.outcome_labels)
        if not responders.empty
        else responders
    )
    html = render_section(
        "responders", responder_svg=svg, level=r.level, responders_html=table(rows)
    )
    return Section("Responders", "responders", html)


def asymmetry_section(r: RunData, /) -> Section:
    """The side-to-side asymmetry heat map, participants as P01, P02, …"""
    asym = r.table("asymmetry")
    if asym.empty:
        return Section("Asymmetry", "asymmetry", render_section("asymmetry", asymmetry_svg=""))
    view = fg.asymmetry_view(asym)
    svg = r.save("asymmetry", fg.asymmetry_heatmap(asym, labels=r.participant_labels, view=view))
    html = render_section("asymmetry", asymmetry_svg=svg, view=view, mark=fg.ASYMMETRY_MARK_PCT)
    return Section("Asymmetry", "asymmetry", html)


def screening_section(r: RunData, /) -> Section:
    """Prevalence of each screening rule per arm at baseline and follow-up."""
    html = render_section("screening", screening_html=table(_screening_grid(r.table("screening"))))
    return Section("Screening", "screening", html)


def reliability_section(r: RunData, /) -> Section:
    """Trial-to-trial reliability (ICC, SEM, MDC95) of the feature outcomes."""
    rel = r.table("reliability")
    rows = (
        table(_labelled(rel[[c for c in _RELIABILITY_COLS if c in rel]], r.outcome_labels))
        if not rel.empty
        else Markup("")
    )
    return Section(
        "Reliability", "reliability", render_section("reliability", reliability_html=rows)
    )


def methods_section(r: RunData, /) -> Section:
    """Analysis table, time variable, model formula, software versions and inputs."""
    man, spec = r.manifest, r.spec
    time_text = (
        "weeks since the programme started, (session date − start date) / 7 days, "
        "the session date being the survey date"
        if spec["time"] == "week"
        else "session number (0 = each participant's first session)"
    )
    html = render_section(
        "methods",
        time_text=time_text,
        where=spec.get("where"),
        method_name=_METHOD_NAMES.get(spec["method"], spec["method"]),
        formula=_formula(r.table("effects"), spec),
        covariates=", ".join(spec["covariates"]),
        control=spec["control"].replace("_", " "),
        methods_text=man.get("methods", ""),
        cxlab_version=man["cxlab"]["version"],
        git_commit=man["cxlab"].get("commit") or "unknown",
        git_dirty=man["cxlab"].get("dirty"),
        python=man["python"],
        packages=sorted(man["packages"].items()),
        inputs=[(t, len(p)) for t, p in sorted(man["inputs"].items())],
    )
    return Section("Methods", "methods", html)


def limitations_section(r: RunData, /) -> Section:
    """The model's missing-data assumption, non-randomised arms and every run warning."""
    effects = r.table("effects")
    warnings_ = list(r.manifest.get("warnings", []))
    if not effects.empty and "converged" in effects:
        bad = effects.loc[~effects["converged"].astype(bool), ["outcome", "arm"]]
        warnings_ += [
            f"The model for {o} did not converge; treat its {a} estimate with caution."
            for o, a in bad.drop_duplicates().itertuples(index=False)
        ]
    if not effects.empty and "warnings" in effects:
        seen = set(warnings_)  # a fit-wide note is in the manifest and in every effects row
        rest = set()
        for w in effects["warnings"].astype(str):
            for m in seen:
                w = w.replace(m, "")
            rest.add("; ".join(p for p in w.split("; ") if p.strip()))
        warnings_ += sorted(rest - {""})
    html = render_section(
        "limitations",
        method=r.spec["method"],
        randomised_note=False,
        warnings=[r.relabel(w) for w in warnings_],
    )
    return Section("Limitations", "limitations", html)


#: The page's sections in order: the findings matrix first, then as the report has always read.
SECTIONS: tuple[Callable[[RunData], Section], ...] = (
    findings_section,
    flow_section,
    participants_section,
    cohort_section,
    trajectories_section,
    effects_section,
    means_section,
    moderators_section,
    curves_section,
    responders_section,
    asymmetry_section,
    screening_section,
    reliability_section,
    methods_section,
    limitations_section,
)


def _mdcs(reliability: pd.DataFrame) -> dict[str, float]:
    """Outcome -> MDC95 of ICC(2,1) (between-session first; flagged rows skipped)."""
    if reliability.empty or "mdc95" not in reliability:
        return {}
    r = reliability[reliability["type"] == "ICC(2,1)"]
    if "flag" in r:
        r = r[r["flag"].fillna("") == ""]
    if "basis" in r:
        r = r.assign(_p=~r["basis"].astype(str).str.startswith("between")).sort_values(
            ["outcome", "_p"]
        )
    return {
        o: float(m)
        for o, m in r.drop_duplicates("outcome")[["outcome", "mdc95"]].itertuples(index=False)
        if np.isfinite(m)
    }


def _labelled(df: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    if df.empty or "outcome" not in df:
        return df
    return df.assign(outcome=df["outcome"].map(lambda o: labels.get(o, o)))


def _participants(p: pd.DataFrame, label_of: dict, labels: dict) -> list[dict]:
    """One collapsible block per outcome: its threshold rule and its participants' rows."""
    out = []
    for o, g in p.groupby("outcome", sort=False):
        r = g.iloc[0]
        factor, unit = sections.readable_unit(
            r["unit"], g[["baseline_value", "last_value"]].to_numpy(dtype=float).ravel()
        )
        if np.isfinite(r["mdc95"]):
            larger = "MDC95" if r["mdc95"] > r["mcid"] else "MCID"
            rule = (
                f"MCID {sections.fmt(r['mcid'] * factor)}, MDC95 "
                f"{sections.fmt(r['mdc95'] * factor)} {unit} ({r['error_basis']}); the "
                f"threshold is the {larger}."
            )
        else:
            rule = (
                f"MCID {sections.fmt(r['mcid'] * factor)} {unit}; no MDC could be "
                "estimated, so a responder may be within measurement error."
            )
        t = pd.DataFrame(
            {
                "participant": g["subject_id"].map(label_of),
                "arm": g["arm"],
                "adherence": g["adherence"],
                f"baseline ({unit})": g["baseline_value"] * factor,
                f"last ({unit})": g["last_value"] * factor,
                f"change ({unit})": g["change"] * factor,
                "change (MCIDs)": g["change_mcid"],
                "RCI": g["rci"],
                "verdict": g["verdict"],
            }
        )
        counts = g.groupby("arm")["verdict"].agg(
            lambda v: f"{int((v == 'responder').sum())}/{len(v)}"
        )
        out.append(
            {
                "label": labels.get(o, o),
                "rule": rule,
                "summary": ", ".join(f"{a} {c}" for a, c in counts.items()),
                "table": sections.table(t.sort_values(["arm", "participant"], kind="stable")),
            }
        )
    return out


def _formula(effects: pd.DataFrame, spec: dict) -> str:
    """The fitted formula with the outcome's name replaced by ``outcome``."""
    if not effects.empty and "formula" in effects and (effects["formula"].astype(str) != "").any():
        f = str(effects["formula"].iloc[0])
        return "outcome ~" + f.split("~", 1)[1] if "~" in f else f
    return _FORMULAS.get(spec["method"], "value ~ arm * {t}{c}").format(
        t=spec["time"], c="".join(f" + {c}" for c in spec["covariates"])
    )


def _screening_grid(s: pd.DataFrame) -> pd.DataFrame:
    """Rules x (arm, timepoint) cells ``"k/n (p %)"`` from the screening prevalence table."""
    need = {"arm", "rule_id", "timepoint", "n_assessed", "n_flagged", "prevalence"}
    if s.empty or not need <= set(s.columns):
        return s
    cell = (
        s["n_flagged"].astype(int).astype(str)
        + "/"
        + s["n_assessed"].astype(int).astype(str)
        + " ("
        + (100 * s["prevalence"]).round().astype(int).astype(str)
        + " %)"
    )
    g = s.assign(cell=cell, col=s["arm"].str.replace("_", " ") + ": " + s["timepoint"])
    w = g.pivot(index="rule_id", columns="col", values="cell").fillna("")
    cols = sorted(
        w.columns,
        key=lambda c: (not c.startswith("control"), c.split(": ")[0], c.endswith("follow-up")),
    )
    w = w[cols].reset_index().rename(columns={"rule_id": "finding"})
    w.columns.name = None
    return w


def _responder_rates(responders: pd.DataFrame) -> pd.DataFrame:
    """``outcome, arm, n, n_responders, rate, ci_low, ci_high`` from the responders table."""
    need = {"outcome", "arm", "rate", "ci_low", "ci_high"}
    if responders.empty or not need <= set(responders.columns):
        return pd.DataFrame(columns=sorted(need))
    r = responders
    if "criterion" in r:
        r = r[r["criterion"] == "mcid"]
    cols = [
        c
        for c in ["outcome", "arm", "n", "n_responders", "rate", "ci_low", "ci_high"]
        if c in r.columns
    ]
    return r[cols].reset_index(drop=True)
