"""A run directory -> one self-contained HTML report for coaches and clinicians.

The report inlines every figure as SVG, uses no external fonts, scripts or
styles and makes no network request, so it opens offline and can be e-mailed
as one file. Participants appear as ``P01``, ``P02``, ... only.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import FileSystemLoader
from markupsafe import Markup

from cxlab._check import ConfigError, message
from cxlab._html import html_environment, svg_markup
from cxlab.report.findings import findings
from cxlab.store import write_text

__all__ = ["findings", "render_report"]

_TEMPLATES = Path(__file__).with_name("templates")
_TOC = [("findings", "Findings"), ("cohort", "Cohort"), ("trajectories", "Trajectories"),
        ("effects", "Effects"), ("responders", "Responders"), ("asymmetry", "Asymmetry"),
        ("screening", "Screening"), ("reliability", "Reliability"), ("methods", "Methods"),
        ("limitations", "Limitations")]
_RESP_COLS = ["outcome", "arm", "criterion", "n", "n_responders", "rate", "ci_low", "ci_high",
              "n_missing"]
_METHOD_NAMES = {"mixed": "a linear mixed model (REML, statsmodels MixedLM)",
                 "gee": "generalised estimating equations (exchangeable working correlation)",
                 "ols": "ordinary least squares with cluster-robust errors"}
_FORMULAS = {"mixed": "value ~ arm * {t}{c} + (1 + {t} | subject)",
             "gee": "value ~ arm * {t}{c}, clusters = subject",
             "ols": "value ~ arm * {t}{c}"}


def _html_table(df: pd.DataFrame, /, *, floats: int = 3) -> Markup:
    """A small HTML table (numbers right-aligned, rounded); empty string for no rows."""
    if df is None or df.empty:
        return Markup("")
    head = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, (float, np.floating)):
                cells.append(f'<td class="num">{"" if np.isnan(v) else f"{v:.{floats}g}"}</td>')
            elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                cells.append(f'<td class="num">{v}</td>')
            else:
                cells.append(f"<td>{html.escape(str(v).replace('_', ' '))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


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
        raise ConfigError(message("is not a run directory (no manifest.json)", file=run,
                                  fix="pass a directory written by `cxlab run`"))
    man = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    spec = man["spec"]
    analysis, effects = _read(run, "analysis"), _read(run, "effects")
    responders, reliability = _read(run, "responders"), _read(run, "reliability")
    asym, cohort = _read(run, "asymmetry"), _read(run, "cohort")
    quality, screening = _read(run, "quality"), _read(run, "screening")
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
        trajectories.append({"id": fid, "caption": f"{o['label']} ({unit}) over time, per arm.",
                             "svg": save(fid, fg.trajectory_plot(d, label=o["label"], unit=unit,
                                                                time=time,
                                                                control=spec["control"]))})
    slopes = effects[effects["estimand"] == "slope_diff"] if not effects.empty else effects
    forest = (save("forest", fg.forest_plot(slopes, control=spec["control"]))
              if not slopes.empty else Markup(""))
    rates = _responder_rates(responders)
    labels_ = {o["name"]: o["label"] for o in spec["outcomes"]}
    resp_svg = (save("responders", fg.responder_plot(rates, labels=labels_,
                                                        control=spec["control"]))
                if not rates.empty else Markup(""))
    labels = {s: f"P{i:02d}" for i, s in enumerate(sorted(analysis["subject_id"].unique()), 1)}
    asym_svg = (save("asymmetry", fg.asymmetry_heatmap(asym, labels=labels))
                if not asym.empty else Markup(""))
    found = findings(slopes, control=spec["control"], time_unit=time,
                     alpha=spec.get("alpha", 0.05)) if not slopes.empty \
        else pd.DataFrame(columns=["verdict", "sentence"])

    eff_cols = ["label", "arm", "estimand", "estimate", "ci_low", "ci_high", "p_adj", "unit",
                "n_subjects", "n_obs", "converged"]
    rel_cols = ["outcome", "type", "icc", "ci_low", "ci_high", "sem", "mdc95", "n_targets",
                "n_raters"]
    cov = ", ".join(spec["covariates"])
    t_text = ("weeks since the programme started, (session date − start date) / 7 days, "
              "the session date being the survey date" if time == "week"
              else "session number (0 = each participant's first session)")
    warnings_ = list(man.get("warnings", []))
    if not effects.empty and "converged" in effects:
        bad = effects.loc[~effects["converged"].astype(bool), ["outcome", "arm"]]
        warnings_ += [f"The model for {o} did not converge; treat its {a} estimate with caution."
                      for o, a in bad.drop_duplicates().itertuples(index=False)]
    if not effects.empty and "warnings" in effects:
        seen = set(warnings_)  # a fit-wide note is in the manifest and in every effects row
        rest = set()
        for w in effects["warnings"].astype(str):
            for m in seen:
                w = w.replace(m, "")
            rest.add("; ".join(p for p in w.split("; ") if p.strip()))
        warnings_ += sorted(rest - {""})
    env = html_environment(FileSystemLoader(str(_TEMPLATES)))  # autoescape for every template
    page = env.get_template("report.html.j2").render(
        title=man["title"], name=man["name"], run_id=man["run_id"],
        cxlab_version=man["cxlab"]["version"], git_commit=man["cxlab"].get("commit") or "unknown",
        git_dirty=man["cxlab"].get("dirty"), python=man["python"],
        packages=sorted(man["packages"].items()), toc=_TOC,
        findings=found.to_dict("records"), control=spec["control"].replace("_", " "),
        time_unit="week" if time == "week" else "session",
        method_name=_METHOD_NAMES.get(spec["method"], spec["method"]),
        n_contrasts=len(effects),
        n_subjects=analysis["subject_id"].nunique(),
        n_subject_sessions=len(analysis[["subject_id", "session"]].drop_duplicates()),
        n_outcomes=analysis["outcome"].nunique(),
        cohort_html=_html_table(cohort), quality_html=_html_table(quality),
        n_quarantined=int(quality["n_rows"].sum()) if not quality.empty else 0,
        trajectory_figures=trajectories, forest_svg=forest,
        effects_html=_html_table(effects[[c for c in eff_cols if c in effects]])
        if not effects.empty else Markup(""),
        responder_svg=resp_svg,
        responders_html=_html_table(responders[[c for c in _RESP_COLS if c in responders]]
                                    if not responders.empty else responders),
        asymmetry_svg=asym_svg, screening_html=_html_table(_screening_grid(screening)),
        reliability_html=_html_table(reliability[[c for c in rel_cols if c in reliability]])
        if not reliability.empty else Markup(""),
        time_text=t_text, where=spec.get("where"),
        formula=_formula(effects, spec),
        methods_text=man.get("methods", ""),
        covariates=cov, inputs=[(t, len(p)) for t, p in sorted(man["inputs"].items())],
        randomised_note=False, warnings=warnings_,
        level=f"{100 * (1 - spec.get('alpha', 0.05)):g}", method=spec["method"],
    )
    out = run / "report.html"
    write_text(page, out)
    return out


def _formula(effects: pd.DataFrame, spec: dict) -> str:
    """The fitted formula with the outcome's name replaced by ``outcome``."""
    if not effects.empty and "formula" in effects and (effects["formula"].astype(str) != "").any():
        f = str(effects["formula"].iloc[0])
        return "outcome ~" + f.split("~", 1)[1] if "~" in f else f
    return _FORMULAS.get(spec["method"], "value ~ arm * {t}{c}").format(
        t=spec["time"], c="".join(f" + {c}" for c in spec["covariates"]))


def _screening_grid(s: pd.DataFrame) -> pd.DataFrame:
    """Rules x (arm, timepoint) cells ``"k/n (p %)"`` from the screening prevalence table."""
    need = {"arm", "rule_id", "timepoint", "n_assessed", "n_flagged", "prevalence"}
    if s.empty or not need <= set(s.columns):
        return s
    cell = (s["n_flagged"].astype(int).astype(str) + "/" + s["n_assessed"].astype(int).astype(str)
            + " (" + (100 * s["prevalence"]).round().astype(int).astype(str) + " %)")
    g = s.assign(cell=cell, col=s["arm"].str.replace("_", " ") + ": " + s["timepoint"])
    w = g.pivot(index="rule_id", columns="col", values="cell").fillna("")
    cols = sorted(w.columns, key=lambda c: (not c.startswith("control"), c.split(": ")[0],
                                            c.endswith("follow-up")))
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
    cols = [c for c in ["outcome", "arm", "n", "n_responders", "rate", "ci_low", "ci_high"]
            if c in r.columns]
    return r[cols].reset_index(drop=True)
