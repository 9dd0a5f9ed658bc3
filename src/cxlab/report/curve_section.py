"""The report's section for curve outcomes: ensemble figures and SPM{t}/{F} with clusters.

Reads the run tables that :func:`cxlab.experiments.curves.curve_tables` wrote (``spm``,
``spm_clusters``, ``spm_curves``, ``curves``) and renders
``templates/sections/curves.html.j2``. Figures are SVG the code drew (checked inert by
:func:`cxlab._html.svg_markup` through the report's ``save``); every text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from markupsafe import Markup

from cxlab.models.spm import SpmCluster, SpmResult
from cxlab.report import sections
from cxlab.report.curve_figures import ensemble_plot, spm_plot
from cxlab.report.figures import arm_palette

__all__ = ["curves_section", "spm_result_of"]


def spm_result_of(row, z: pd.DataFrame, clusters: pd.DataFrame, /) -> SpmResult:
    """Rebuild the :class:`~cxlab.models.spm.SpmResult` of one ``spm`` row from the run tables."""
    z = z.sort_values("node")
    cl = tuple(
        SpmCluster(float(r.start_pct), float(r.end_pct), float(r.p), int(r.sign), float(r.peak))
        for r in clusters.sort_values("cluster").itertuples()
    )
    df = tuple(float(v) for v in str(row["df"]).split(", ") if v)
    return SpmResult(
        test=row["test"],
        statistic=row["statistic"],
        inference=row["inference"],
        alpha=float(row["alpha"]),
        alpha_family=float(row["alpha_family"]),
        n_tests=int(row["n_tests"]),
        two_tailed=bool(row["two_tailed"]),
        z=z["z"].to_numpy(float),
        threshold=float(row["threshold"]),
        df=df,
        n=int(row["n_curves"]),
        pct=z["pct"].to_numpy(float),
        clusters=cl,
        permutations=None if pd.isna(row["permutations"]) else int(row["permutations"]),
        seed=None if pd.isna(row["seed"]) else int(row["seed"]),
        note=str(row["note"]),
    )


def _groups(d: pd.DataFrame, *, control: str):
    """Curves per arm × session as (J, Q) arrays; the arm's colour, the first session dashed."""
    arms = sorted(d["arm"].unique(), key=lambda a: (a == control, a))
    pal = arm_palette(arms, control=control)
    first = int(d["session_index"].min())
    groups, colours, dashed = {}, {}, []
    for arm in arms:
        for k in sorted(d.loc[d["arm"] == arm, "session_index"].unique()):
            g = d[(d["arm"] == arm) & (d["session_index"] == k)]
            w = g.pivot(index="subject_id", columns="node", values="value").sort_index()
            name = f"{arm.replace('_', ' ')} · session {int(k)}"
            groups[name] = w.to_numpy(float)
            colours[name] = pal[arm]
            if int(k) == first:
                dashed.append(name)
    return groups, colours, dashed


def curves_section(
    tables: dict[str, pd.DataFrame],
    /,
    *,
    save: Callable[[str, str], Markup],
    control: str,
    participants: dict[str, str] | None = None,
) -> Markup:
    """The ``curves`` section: per curve outcome, the ensemble and SPM figures and tables.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        The run's ``spm``, ``spm_clusters``, ``spm_curves`` and ``curves`` tables (missing
        or empty: the section says the run declares no curve outcome).
    save : callable
        ``save(name, svg) -> Markup``: writes ``figures/<name>.svg`` and returns the checked
        inline SVG (the report's own).
    control : str
        The control arm (grey).
    participants : dict of str to str, optional
        ``subject_id -> "P01"``: the report's participant labels, used in the notes (a
        participant left out is named by label, never by identifier).
    """
    names = participants or {}
    summary = tables.get("spm", pd.DataFrame())
    blocks = []
    for row in summary.to_dict("records") if not summary.empty else []:
        o = row["outcome"]
        cl = tables["spm_clusters"]
        cl = cl[cl["outcome"] == o] if not cl.empty else cl
        z = tables["spm_curves"][tables["spm_curves"]["outcome"] == o]
        d = tables["curves"][tables["curves"]["outcome"] == o]
        res = spm_result_of(row, z, cl)
        groups, colours, dashed = _groups(d, control=control)
        pct = np.sort(d["pct"].unique())
        spans = [(c.start_pct, c.end_pct) for c in res.clusters]
        ens = save(
            f"curve-{o}",
            ensemble_plot(
                groups,
                pct=pct,
                label=row["label"],
                unit=row["unit"],
                control=control,
                clusters=spans,
                colours=colours,
                dashed=dashed,
            ),
        )
        stat = save(f"spm-{o}", spm_plot(res, label=row["label"]))
        cl_rows = pd.DataFrame(
            {
                "cluster": cl["cluster"].astype(int) if not cl.empty else [],
                "start (% of phase)": cl["start_pct"] if not cl.empty else [],
                "end (% of phase)": cl["end_pct"] if not cl.empty else [],
                "p": cl["p"] if not cl.empty else [],
                "direction": [
                    {1: "above +threshold", -1: "below −threshold", 0: "F above threshold"}[int(s)]
                    for s in (cl["sign"] if not cl.empty else [])
                ],
                "peak": cl["peak"] if not cl.empty else [],
            }
        )
        blocks.append(
            {
                "id": o,
                "label": row["label"],
                "signal": row["signal"],
                "phase": row["phase"],
                "side": row["side"],
                "unit": row["unit"],
                "test": row["test"].replace("_", "-"),
                "statistic": row["statistic"],
                "inference": row["inference"],
                "comparison": row["comparison"],
                "alpha": f"{float(row['alpha']):g}",
                "alpha_family": f"{float(row['alpha_family']):g}",
                "n_tests": int(row["n_tests"]),
                "correction": {"sidak": "Šidák"}.get(row["correction"], row["correction"]),
                "tails": "two-tailed" if row["two_tailed"] else "one-tailed",
                "threshold": sections.fmt(row["threshold"]),
                "df": ", ".join(sections.fmt(v) for v in res.df),
                "n_subjects": int(row["n_subjects"]),
                "permutations": None if pd.isna(row["permutations"]) else int(row["permutations"]),
                "note": sections.relabel(str(row["note"]), names),
                "ensemble_svg": ens,
                "spm_svg": stat,
                "clusters": sections.table(cl_rows, p_columns=("p",)),
                "n_clusters": int(row["n_clusters"]),
            }
        )
    return sections.render_section("curves", blocks=blocks)
