"""Report sections built from a run's tables, each rendered by its own autoescaped template.

As mne's ``Report.add_*``: every section is a function ``<name>_section(...) -> Markup`` that
prepares plain rows and renders ``templates/sections/<name>.html.j2``. Numbers reach the
templates already formatted (:func:`fmt`), units already scaled to readable ones
(:func:`readable_unit`), and every text value is escaped by Jinja.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from jinja2 import FileSystemLoader
from markupsafe import Markup

from cxlab._html import html_environment

__all__ = ["Section", "fmt", "readable_unit", "render_section"]

_ENV = html_environment(FileSystemLoader(str(Path(__file__).with_name("templates"))))

#: (unit, factor, readable unit): a value in ``unit`` times ``factor`` is in the readable unit
_SCALES = {
    "m/s": [(1e-2, 1e3, "mm/s")],
    "m": [(1e-2, 1e3, "mm")],
    "s": [(1e-1, 1e3, "ms")],
    "m^2": [(1e-3, 1e4, "cm^2")],
    "N": [(1e-2, 1e3, "mN")],
}


class Section(NamedTuple):
    """One section of a report page, as a section function returns it.

    Attributes
    ----------
    title : str
        Its entry in the page's table of contents.
    id : str
        The ``id`` of its ``<section>`` element (the contents link's target).
    html : markupsafe.Markup
        The rendered, autoescaped section; empty when it has nothing to show (the page
        then leaves it, and its contents entry, out).
    """

    title: str
    id: str
    html: Markup


def readable_effects(effects: pd.DataFrame, /) -> pd.DataFrame:
    """The effects table with each outcome's estimates, CIs, SEs and MCID in a readable unit
    (:func:`readable_unit` on the outcome's estimates and CI bounds); ``unit`` replaced."""
    if effects.empty or "unit" not in effects:
        return effects
    e = effects.copy()
    cols = [c for c in ("estimate", "ci_low", "ci_high", "std_error", "mcid") if c in e]
    for _, g in e.groupby("outcome", sort=False):
        factor, unit = readable_unit(
            g["unit"].iloc[0], g[["estimate", "ci_low", "ci_high"]].to_numpy(dtype=float).ravel()
        )
        if factor != 1.0:
            e.loc[g.index, cols] = g[cols].astype(float) * factor
            e.loc[g.index, "unit"] = unit
    return e


def render_section(name: str, /, **context) -> Markup:
    """Render ``templates/sections/<name>.html.j2`` (autoescaped)."""
    return Markup(_ENV.get_template(f"sections/{name}.html.j2").render(**context))


def readable_unit(unit: str, values, /) -> tuple[float, str]:
    """``(factor, unit)`` that makes ``values`` readable: 0.0005 m/s -> 0.5 mm/s.

    The largest magnitude among the finite ``values`` decides: below the threshold of
    :data:`_SCALES` the value is shown in the smaller unit.
    """
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    top = float(v.max()) if v.size else 0.0
    for limit, factor, new in _SCALES.get(str(unit), []):
        if 0 < top < limit:
            return factor, new
    return 1.0, str(unit)


def fmt(x, /, *, digits: int = 3, signed: bool = False) -> str:
    """A number for reading: ``digits`` significant figures, no exponent for everyday sizes,
    0 for round-off (|x| < 1e-12), a real minus sign; empty for NaN."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    x = float(x)
    if not np.isfinite(x):
        return ""
    if abs(x) < 1e-12:
        return "0"
    mag = int(np.floor(np.log10(abs(x))))
    if -4 <= mag < 6:
        decimals = max(digits - 1 - mag, 0)
        text = f"{x:{'+' if signed else ''}.{decimals}f}"
    else:
        text = f"{x:{'+' if signed else ''}.{digits - 1}e}"
    return text.replace("-", "−")


def fmt_p(p, /) -> str:
    """P-values: ``<0.001`` below 0.001, else 2 significant figures."""
    if p is None or not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else fmt(p, digits=2)


def verdict(est_good_lo: float, est_good_hi: float, p_adj: float, alpha: float) -> str:
    """``benefit`` / ``harm`` when the CI (signed so positive = better) excludes 0 and the
    adjusted p is below alpha; ``unclear`` otherwise."""
    if not (np.isfinite(p_adj) and p_adj < alpha):
        return "unclear"
    if est_good_lo > 0:
        return "benefit"
    if est_good_hi < 0:
        return "harm"
    return "unclear"


def matrix_rows(
    effects: pd.DataFrame, reliability_mdc: dict[str, float], /, *, alpha: float, per: str
) -> tuple[list[str], list[dict]]:
    """Programmes (columns) and one row per outcome of the findings matrix.

    Each cell: the effect per unit of time with its CI (readable unit), ``cls`` (benefit,
    harm, unclear) and ``below_mdc`` (True when the effect at the median follow-up,
    ``|estimate| x followup``, is smaller than the outcome's MDC95). A per-visit fit
    (``change_diff`` rows, no slopes) shows the difference in change from baseline at the
    last visit instead, compared with the MDC95 as it is.
    """
    e = effects[effects["estimand"].isin(["slope_diff", "slope"])]
    visit = e.empty and (effects["estimand"] == "change_diff").any()
    if visit:  # per-visit fit: the contrast at the last visit, in the outcome's unit
        from cxlab.report.findings import last_visit

        e = last_visit(effects)
    arms = sorted(e["arm"].unique())
    rows = []
    for outcome, g in e.groupby("outcome", sort=False):
        first = g.iloc[0]
        factor, unit = readable_unit(
            first["unit"], g[["estimate", "ci_low", "ci_high"]].to_numpy().ravel()
        )
        mdc = reliability_mdc.get(outcome, np.nan)
        cells = []
        for arm in arms:
            r = g[g["arm"] == arm]
            if r.empty:
                cells.append(None)
                continue
            r = r.iloc[0]
            good = -1.0 if r["better"] == "lower" else 1.0
            lo, hi = sorted((r["ci_low"] * good, r["ci_high"] * good))
            p = r["p_adj"] if np.isfinite(r["p_adj"]) else r["p_value"]
            at_follow = abs(r["estimate"]) * (1.0 if visit else float(r["followup_weeks"]))
            cells.append(
                {
                    "estimate": fmt(r["estimate"] * factor, signed=True),
                    "ci": f"{fmt(r['ci_low'] * factor)} to {fmt(r['ci_high'] * factor)}",
                    "cls": verdict(lo, hi, p, alpha),
                    "below_mdc": bool(np.isfinite(mdc) and at_follow < mdc),
                    "warn": bool(r.get("warnings")),
                }
            )
        rows.append(
            {
                "label": first["label"],
                "unit": f"{unit} at visit {first['visit']}" if visit else f"{unit}/{per}",
                "cells": cells,
                "mdc": fmt(mdc * factor) if np.isfinite(mdc) else "",
                "mcid": fmt(float(first["mcid"]) * factor)
                if np.isfinite(float(first["mcid"]))
                else "",
                "mcid_below_mdc": bool(np.isfinite(mdc) and float(first["mcid"]) < mdc),
            }
        )
    return arms, rows


def relabel(text: str, labels: dict[str, str], /) -> str:
    """``text`` with every key of ``labels`` that stands as a whole word replaced by its value.

    The pipeline's warnings name participants by their pseudonymised ``subject_id``; a page
    shows only their ``P01``, ``P02``, … labels.
    """
    if not labels:
        return text
    keys = sorted(labels, key=len, reverse=True)
    pattern = r"\b(?:" + "|".join(map(re.escape, keys)) + r")\b"
    return re.sub(pattern, lambda m: labels[m.group(0)], text)


#: Characters above which a table's text cell is laid out at least ``td.long``'s width.
LONG_TEXT = 60


def table_rows(
    df: pd.DataFrame, /, *, p_columns: tuple[str, ...] = ("p_value", "p_adj")
) -> tuple[list[str], list[list[dict]]]:
    """Headers and cells (``text``, ``num``) of a plain table; text verbatim, numbers read."""
    heads = [str(c).replace("_", " ") for c in df.columns]
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, rec, strict=True):
            if isinstance(v, (bool, np.bool_)):
                cells.append({"text": "yes" if v else "no", "num": False})
            elif isinstance(v, (int, np.integer)):
                cells.append({"text": str(v), "num": True})
            elif isinstance(v, (float, np.floating)):
                cells.append({"text": fmt_p(v) if c in p_columns else fmt(v), "num": True})
            elif v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
                cells.append({"text": "", "num": False})
            else:  # a long message gets a readable width instead of one word per line
                cells.append({"text": str(v), "num": False, "long": len(str(v)) > LONG_TEXT})
        rows.append(cells)
    return heads, rows


def table(df: pd.DataFrame, /, **kw) -> Markup:
    """An autoescaped HTML table of ``df`` (``sections/table.html.j2``); '' for no rows."""
    if df is None or df.empty:
        return Markup("")
    heads, rows = table_rows(df, **kw)
    return render_section("table", heads=heads, rows=rows)


def baseline_table(analysis: pd.DataFrame, /, *, labels: dict[str, str]) -> pd.DataFrame:
    """Mean ± SD per arm of each outcome at the first session, and of age and adherence."""
    base = analysis[analysis["session_index"] == 0]
    rows = []
    for o, g in base.groupby("outcome", sort=False):
        factor, unit = readable_unit(g["unit"].iloc[0], g["value"])
        row = {"measure": f"{labels.get(o, o)} ({unit})"}
        for arm, a in g.groupby("arm", sort=True):
            v = a["value"] * factor
            row[arm] = f"{fmt(v.mean())} ± {fmt(v.std(ddof=1))} (n={len(v)})"
        rows.append(row)
    subj = analysis.drop_duplicates("subject_id")
    for col, name in (("age_years", "age (years)"), ("adherence", "adherence (fraction)")):
        if subj[col].notna().any():
            row = {"measure": name}
            for arm, a in subj.groupby("arm", sort=True):
                v = a[col].dropna()
                row[arm] = f"{fmt(v.mean())} ± {fmt(v.std(ddof=1))} (n={len(v)})" if len(v) else ""
            rows.append(row)
    return pd.DataFrame(rows).fillna("")


def individual_response(participants: pd.DataFrame, /, *, control: str) -> pd.DataFrame:
    """SD of change per arm and the individual-response SD ``sqrt(SD_arm² − SD_control²)``
    (Hopkins 2015; Atkinson & Batterham 2015), per outcome; NaN when not positive."""
    rows = []
    for o, g in participants.groupby("outcome", sort=False):
        sd = g.groupby("arm")["change"].std(ddof=1)
        if control not in sd.index:
            continue
        for arm, s in sd.items():
            if arm == control:
                continue
            diff = s**2 - sd[control] ** 2
            rows.append(
                {
                    "outcome": o,
                    "arm": arm,
                    "sd_change_arm": s,
                    "sd_change_control": sd[control],
                    "sd_individual_response": float(np.sqrt(diff)) if diff > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)
