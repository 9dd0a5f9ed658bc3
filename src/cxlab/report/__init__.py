"""A run directory -> one self-contained HTML report for coaches and clinicians.

The report inlines every figure as SVG, uses no external fonts, scripts or
styles and makes no network request, so it opens offline and can be e-mailed
as one file. Participants appear as ``P01``, ``P02``, ... only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import FileSystemLoader
from markupsafe import Markup

from cxlab._check import ConfigError, message
from cxlab._html import html_environment, svg_markup
from cxlab.report import sections
from cxlab.report.findings import findings
from cxlab.store import write_text

__all__ = ["findings", "render_report"]

_TEMPLATES = Path(__file__).with_name("templates")
_TOC = [
    ("findings", "Findings"),
    ("flow", "Flow"),
    ("participants", "Participants"),
    ("cohort", "Cohort"),
    ("trajectories", "Trajectories"),
    ("effects", "Effects"),
    ("means", "Marginal means"),
    ("moderators", "Moderators"),
    ("responders", "Responders"),
    ("asymmetry", "Asymmetry"),
    ("screening", "Screening"),
    ("reliability", "Reliability"),
    ("methods", "Methods"),
    ("limitations", "Limitations"),
]
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
_METHOD_NAMES = {
    "mixed": "a linear mixed model (REML, statsmodels MixedLM)",
    "gee": "generalised estimating equations (exchangeable working correlation)",
    "ols": "ordinary least squares with cluster-robust errors",
}
_FORMULAS = {
    "mixed": "value ~ arm * {t}{c} + (1 + {t} | subject)",
    "gee": "value ~ arm * {t}{c}, clusters = subject",
    "ols": "value ~ arm * {t}{c}",
}


def _html_table(df: pd.DataFrame, /, *, floats: int = 3) -> Markup:
    """A small autoescaped HTML table: numbers right-aligned and rounded for reading, text
    verbatim (``odi_4`` stays ``odi_4``); empty string for no rows."""
    return sections.table(df)


def _read(run: Path, name: str) -> pd.DataFrame:
    p = run / f"{name}.parquet"
    return pd.read_parquet(p) if p.exists() else pd.DataFrame()


def render_report(run_dir: str | os.PathLike[str], /) -> Path:
    """Render ``report.html`` (and ``figures/*.svg``) for a run directory.

    Parameters
    ----------
    run_dir : path-like
        A directory written by :func:`cxlab.experiments.run_experiment`.

    Returns
    -------
    pathlib.Path
        ``run_dir/report.html``: one self-contained HTML file with sections
        findings, cohort and data quality, trajectories, effects (forest
        plot), responders, asymmetry, screening, reliability, methods and
        limitations. The same run gives the same bytes.

    Raises
    ------
    ConfigError
        If ``run_dir`` has no ``manifest.json``.
    """
    from cxlab.report import figures as fg

    run = Path(run_dir)
    if not (run / "manifest.json").exists():
        raise ConfigError(
            message(
                "is not a run directory (no manifest.json)",
                file=run,
                fix="pass a directory written by `cxlab run`",
            )
        )
    man = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    spec = man["spec"]
    analysis, effects = _read(run, "analysis"), _read(run, "effects")
    responders, reliability = _read(run, "responders"), _read(run, "reliability")
    asym, cohort = _read(run, "asymmetry"), _read(run, "cohort")
    quality, screening = _read(run, "quality"), _read(run, "screening")
    participants, flow = _read(run, "participants"), _read(run, "flow")
    means, pairs = _read(run, "marginal_means"), _read(run, "contrasts")
    variances = _read(run, "variances")
    figdir = run / "figures"
    figdir.mkdir(exist_ok=True)

    def save(name: str, svg: str) -> Markup:
        safe = svg_markup(svg)  # proves the figure escaped every label it drew
        write_text(svg, figdir / f"{name}.svg")
        return safe

    time = spec["time"]
    trajectories = []
    for o in spec["outcomes"]:
        d = analysis[analysis["outcome"] == o["name"]]
        if d.empty:
            continue
        fid = "trajectory-" + o["name"].replace("@", "-")
        unit = d["unit"].iloc[0]
        trajectories.append(
            {
                "id": fid,
                "caption": f"{o['label']} ({unit}) over time, per arm.",
                "svg": save(
                    fid,
                    fg.trajectory_plot(
                        d, label=o["label"], unit=unit, time=time, control=spec["control"]
                    ),
                ),
            }
        )
    slopes = effects[effects["estimand"] == "slope_diff"] if not effects.empty else effects
    mdc = _mdcs(reliability)
    in_mcid = (
        slopes[
            [
                float(m) >= mdc.get(o, 0.0)
                for o, m in zip(slopes["outcome"], slopes["mcid"].astype(float), strict=True)
            ]
        ]
        if not slopes.empty
        else slopes
    )
    own_units = sorted(set(slopes["label"]) - set(in_mcid["label"])) if not slopes.empty else []
    forest = (
        save("forest", fg.forest_plot(in_mcid, control=spec["control"]))
        if not in_mcid.empty
        else Markup("")
    )
    rates = _responder_rates(responders)
    labels_ = {o["name"]: o["label"] for o in spec["outcomes"]}
    resp_svg = (
        save("responders", fg.responder_plot(rates, labels=labels_, control=spec["control"]))
        if not rates.empty
        else Markup("")
    )
    labels = {s: f"P{i:02d}" for i, s in enumerate(sorted(analysis["subject_id"].unique()), 1)}
    asym_svg = (
        save("asymmetry", fg.asymmetry_heatmap(asym, labels=labels))
        if not asym.empty
        else Markup("")
    )
    found = (
        findings(
            sections.readable_effects(slopes),
            control=spec["control"],
            time_unit=time,
            alpha=spec.get("alpha", 0.05),
        )
        if not slopes.empty
        else pd.DataFrame(columns=["verdict", "sentence"])
    )

    eff_cols = [
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
    rel_cols = [
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
    cov = ", ".join(spec["covariates"])
    t_text = (
        "weeks since the programme started, (session date − start date) / 7 days, "
        "the session date being the survey date"
        if time == "week"
        else "session number (0 = each participant's first session)"
    )
    warnings_ = list(man.get("warnings", []))
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
    matrix = _matrix(effects, found, mdc, spec=spec, man=man, labels=labels_)
    label_of = {s_: lab for s_, lab in labels.items()}
    blocks = _participants(participants, label_of, labels_) if not participants.empty else []
    indiv = (
        sections.individual_response(participants, control=spec["control"])
        if not participants.empty and spec.get("design", "parallel") == "parallel"
        else pd.DataFrame()
    )
    if not indiv.empty:
        indiv["outcome"] = indiv["outcome"].map(lambda o: labels_.get(o, o))
    level_ = f"{100 * (1 - spec.get('alpha', 0.05)):g}"
    flow_html = sections.render_section(
        "flow",
        rows=flow.to_dict("records") if not flow.empty else [],
        n_quarantined=int(quality["n_rows"].sum()) if not quality.empty else 0,
        baseline=sections.table(sections.baseline_table(analysis, labels=labels_)),
    )
    means_html = sections.render_section(
        "means",
        level=level_,
        means=sections.table(_labelled(means, labels_)),
        pairs=sections.table(_labelled(pairs, labels_)),
        variances=sections.table(_labelled(variances, labels_)),
    )
    participants_html = sections.render_section(
        "participants", blocks=blocks, individual=sections.table(indiv)
    )
    moderators_html = _moderators(_read(run, "moderation"), spec=spec, save=save)
    curves_html, toc = _curves_html(run, save, spec["control"], labels)
    env = html_environment(FileSystemLoader(str(_TEMPLATES)))  # autoescape for every template
    page = env.get_template("report.html.j2").render(
        title=man["title"],
        name=man["name"],
        run_id=man["run_id"],
        cxlab_version=man["cxlab"]["version"],
        git_commit=man["cxlab"].get("commit") or "unknown",
        git_dirty=man["cxlab"].get("dirty"),
        python=man["python"],
        packages=sorted(man["packages"].items()),
        toc=toc,
        findings=found.to_dict("records"),
        control=spec["control"].replace("_", " "),
        time_unit="week" if time == "week" else "session",
        method_name=_METHOD_NAMES.get(spec["method"], spec["method"]),
        n_contrasts=len(effects),
        n_subjects=analysis["subject_id"].nunique(),
        n_subject_sessions=len(analysis[["subject_id", "session"]].drop_duplicates()),
        n_outcomes=analysis["outcome"].nunique(),
        cohort_html=_html_table(cohort),
        quality_html=_html_table(quality),
        n_quarantined=int(quality["n_rows"].sum()) if not quality.empty else 0,
        trajectory_figures=trajectories,
        forest_svg=forest,
        effects_html=_html_table(
            sections.readable_effects(effects)[[c for c in eff_cols if c in effects]]
        )
        if not effects.empty
        else Markup(""),
        responder_svg=resp_svg,
        responders_html=_html_table(
            responders[[c for c in _RESP_COLS if c in responders]]
            if not responders.empty
            else responders
        ),
        asymmetry_svg=asym_svg,
        screening_html=_html_table(_screening_grid(screening)),
        reliability_html=_html_table(reliability[[c for c in rel_cols if c in reliability]])
        if not reliability.empty
        else Markup(""),
        time_text=t_text,
        where=spec.get("where"),
        formula=_formula(effects, spec),
        methods_text=man.get("methods", ""),
        covariates=cov,
        inputs=[(t, len(p)) for t, p in sorted(man["inputs"].items())],
        randomised_note=False,
        warnings=warnings_,
        level=f"{100 * (1 - spec.get('alpha', 0.05)):g}",
        method=spec["method"],
        matrix_html=matrix,
        flow_html=flow_html,
        participants_html=participants_html,
        means_html=means_html,
        moderators_html=moderators_html,
        curves_html=curves_html,
        own_units=own_units,
    )
    out = run / "report.html"
    write_text(page, out)
    return out


def _curves_html(
    run: Path, save, control: str, participants: dict[str, str]
) -> tuple[Markup, list[tuple[str, str]]]:
    """The curve-outcome section and the table of contents (with it only when present)."""
    from cxlab.experiments.curves import CURVE_RUN_TABLES
    from cxlab.report.curve_section import curves_section

    tables = {t: _read(run, t) for t in CURVE_RUN_TABLES}
    if tables["spm"].empty:
        return Markup(""), _TOC
    html = curves_section(tables, save=save, control=control, participants=participants)
    at = [k for k, _ in _TOC].index("means") + 1
    return html, [*_TOC[:at], ("curves", "Curves"), *_TOC[at:]]


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


def _matrix(effects, found, mdc, *, spec, man, labels) -> Markup:
    alpha = spec.get("alpha", 0.05)
    per = "week" if spec["time"] == "week" else "session"
    if effects.empty:
        return sections.render_section("matrix", rows=[], arms=[])
    arms, rows = sections.matrix_rows(effects, mdc, alpha=alpha, per=per)
    prepost = spec.get("design") == "prepost"
    clear = [f for f in found.to_dict("records") if f["verdict"] in ("better", "worse")]
    notes = []
    for o, g in effects.groupby("outcome", sort=False):
        texts = sorted(
            {p for w in g["warnings"].fillna("").astype(str) for p in w.split("; ") if p.strip()}
        )
        notes += [{"label": labels.get(o, o), "text": t} for t in texts]
    for w in man.get("warnings", []):
        for o in labels:
            if f"outcomes.{o}:" in w:
                notes.append({"label": labels[o], "text": w})
    return sections.render_section(
        "matrix",
        rows=rows,
        arms=arms,
        per=per,
        level=f"{100 * (1 - alpha):g}",
        comparison=None if prepost else spec["control"],
        what="change" if prepost else "difference from control in the rate of change",
        adjust="Holm-adjusted",
        alpha=f"{alpha:g}",
        clear=clear,
        notes=notes,
    )


def _moderators(moderation: pd.DataFrame, *, spec: dict, save) -> Markup:
    """The moderator section: one figure (per outcome × moderator) and its rows."""
    from cxlab.report import figures as fg

    per = "week" if spec["time"] == "week" else "session"
    alpha = spec.get("alpha", 0.05)
    blocks = []
    if not moderation.empty:
        for (o, m), g in moderation.groupby(["outcome", "moderator"], sort=False):
            g = sections.readable_effects(g.assign(mcid=np.nan))
            fid = "moderator-" + o.replace("@", "-") + "-" + m
            rows = g[
                [
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
            ]
            inter = g[g["estimand"] == "interaction"]
            clear = inter[(inter["ci_low"] > 0) | (inter["ci_high"] < 0)]
            what = (
                f"the interaction CI excludes 0 for {', '.join(sorted(clear['arm']))}"
                if len(clear)
                else "no interaction CI excludes 0: the data do not show that the effect "
                "differs by " + m.replace("_", " ")
            )
            blocks.append(
                {
                    "id": fid,
                    "svg": save(
                        fid,
                        fg.moderator_plot(
                            g[g["estimand"] == "slope_diff"], time_unit=per, control=spec["control"]
                        ),
                    ),
                    "caption": f"{g['label'].iloc[0]} by {m.replace('_', ' ')}: {what}.",
                    "table": sections.table(rows),
                }
            )
    return sections.render_section(
        "moderators",
        blocks=blocks,
        time_unit=spec["time"].replace("_", " "),
        control=spec["control"],
        level=f"{100 * (1 - alpha):g}",
    )


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
