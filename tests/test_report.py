"""The HTML report: every section and figure present, offline, no identifiers; honest findings."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from cxlab._check import ConfigError
from cxlab.experiments import run_experiment
from cxlab.pseudo import pseudonymise
from cxlab.report import findings, render_report
from cxlab.report.figures import forest_plot
from truth_store import truth_store

SPEC = """
name = "rep"
title = "Report test"
seed = 3
store = "store"
[model]
control = "control"
[outcomes.pain_nrs]
mcid = 2.0
[outcomes.knee_fppa_peak_deg]
mcid = "swc"
[outcomes.landing_peak_force_lsi_pct]
mcid = 5.0
better = "higher"
"""
SECTIONS = [
    "findings",
    "cohort",
    "trajectories",
    "effects",
    "responders",
    "asymmetry",
    "screening",
    "reliability",
    "methods",
    "limitations",
]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.tags, self.urls, self.svgs, self.text = set(), [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "svg":
            self.svgs += 1
        for k in ("src", "href", "xlink:href", "action", "data", "poster"):
            v = a.get(k)
            if v and not v.startswith(("#", "data:")):  # fragments and inline data only
                self.urls.append((tag, k, v))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    store, truth = truth_store(root / "store", 16, 3, seed=9)
    (root / "rep.toml").write_text(SPEC, encoding="utf-8")
    return run_experiment(root / "rep.toml", out=root / "runs"), store, truth


def _page(run_dir) -> tuple[_Page, str]:
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    p = _Page()
    p.feed(html)
    return p, html


def test_report_has_every_section_and_figure(run):
    p, _ = _page(run[0])
    assert set(SECTIONS) <= p.ids
    figs = {
        "fig-forest",
        "fig-asymmetry",
        "fig-trajectory-pain_nrs",
        "fig-trajectory-knee_fppa_peak_deg",
        "fig-trajectory-landing_peak_force_lsi_pct",
    }
    assert figs <= p.ids
    assert p.svgs >= len(figs)
    for f in figs:
        assert (run[0] / "figures" / (f.removeprefix("fig-") + ".svg")).is_file(), f


def test_report_is_self_contained_and_offline(run):
    p, html = _page(run[0])
    assert p.urls == []
    assert not {"script", "link", "iframe", "img", "object", "embed"} & set(p.tags)
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    # the only http(s) strings are XML namespace names of the inline SVG
    for m in re.finditer(r"https?://[^\s\"'<>)]+", html):
        assert m.group(0).startswith(("http://www.w3.org/", "https://www.w3.org/")), m.group(0)


def test_report_shows_no_identifiers(run):
    run_dir, _store, truth = run
    _, html = _page(run_dir)
    for label in truth.subjects["label"]:
        assert label not in html
        assert pseudonymise(label) not in html
    assert "CX999" not in html  # the raw label in the quarantine reason is redacted
    assert "P01" in html


def test_report_surfaces_quarantine_cohort_and_methods(run):
    p, html = _page(run[0])
    text = " ".join(p.text)
    assert "1 input row(s) or file(s) were rejected" in text
    assert "16 participants" in text
    man = json.loads((run[0] / "manifest.json").read_text())
    assert f"statsmodels {man['packages']['statsmodels']}" in text
    assert "outcome ~ week * C(arm" in html and "Holm" in text


def test_render_report_is_deterministic_and_rejects_non_runs(run, tmp_path):
    first = (run[0] / "report.html").read_bytes()
    assert render_report(run[0]).read_bytes() == first
    with pytest.raises(ConfigError, match="is not a run directory"):
        render_report(tmp_path)


def test_svg_figures_carry_no_date_and_repeat_exactly():
    e = pd.DataFrame(
        {
            "outcome": ["a", "a"],
            "arm": ["x", "y"],
            "label": ["a", "a"],
            "estimate": [-0.5, 0.1],
            "ci_low": [-0.8, -0.2],
            "ci_high": [-0.2, 0.4],
            "followup_weeks": [12.0, 12.0],
            "mcid": [2.0, 2.0],
            "better": ["lower", "lower"],
        }
    )
    a, b = forest_plot(e), forest_plot(e)
    assert a == b and a.startswith("<svg") and "<dc:date>" not in a


def _effects(**kw):
    base = dict(
        outcome="pain_nrs",
        label="pain",
        arm="core_stability",
        estimand="slope_diff",
        estimate=-0.2,
        ci_low=-0.3,
        ci_high=-0.1,
        p_adj=0.001,
        unit="points",
        mcid=2.0,
        better="lower",
        followup_weeks=12.0,
    )
    base.update(kw)
    return pd.DataFrame([base])


def test_finding_is_clear_and_worthwhile_only_when_the_interval_says_so():
    # whole CI beyond the MCID at 12 weeks: -0.3*12=-3.6, -0.2*12=-2.4 (MCID 2)
    f = findings(_effects(estimate=-0.25, ci_low=-0.3, ci_high=-0.2)).iloc[0]
    assert (f["verdict"], f["worthwhile"]) == ("better", "likely")
    assert f["sentence"].startswith(
        "Core stability reduced pain by 0.25 points/week more than control (95 % CI −0.30 to −0.20"
    )
    # CI excludes zero, but only part of it is beyond the MCID: -0.1*12 = -1.2 > -2
    f = findings(_effects()).iloc[0]
    assert (f["verdict"], f["worthwhile"]) == ("better", "possibly")


def test_finding_wording_is_honest_when_the_interval_crosses_zero():
    f = findings(_effects(estimate=-0.05, ci_low=-0.2, ci_high=0.1, p_adj=0.6)).iloc[0]
    assert f["verdict"] == "unclear"
    assert "no clear difference" in f["sentence"] and "includes zero" in f["sentence"]
    assert "reduced" not in f["sentence"]


def test_finding_direction_respects_higher_is_better():
    f = findings(
        _effects(
            outcome="lsi",
            label="LSI",
            unit="%",
            better="higher",
            mcid=5.0,
            estimate=-0.5,
            ci_low=-0.8,
            ci_high=-0.2,
        )
    ).iloc[0]
    assert f["verdict"] == "worse" and "%-points/week" in f["sentence"]
    f = findings(
        _effects(better="higher", mcid=np.nan, estimate=0.5, ci_low=0.2, ci_high=0.8)
    ).iloc[0]
    assert (f["verdict"], f["worthwhile"]) == ("better", "unknown")


def test_finding_that_fails_multiplicity_adjustment_is_only_suggestive():
    f = findings(_effects(p_adj=0.3)).iloc[0]
    assert f["verdict"] == "suggestive"
    assert "does not survive adjustment" in f["sentence"]


def test_finding_names_the_confidence_level_the_run_used():
    # a run with alpha = 0.1 has 90 % intervals; calling them 95 % overstates the certainty
    for kw in ({}, {"p_adj": 0.3}, {"estimate": -0.05, "ci_low": -0.2, "ci_high": 0.1}):
        s = findings(_effects(**kw), alpha=0.1).iloc[0]["sentence"]
        assert "90 % CI" in s and "95 %" not in s, s


def test_report_names_the_confidence_level_the_run_used(run, tmp_path):
    import shutil

    d = tmp_path / "run"
    shutil.copytree(run[0], d)
    man = json.loads((d / "manifest.json").read_text())
    man["spec"]["alpha"] = 0.1
    (d / "manifest.json").write_text(json.dumps(man))
    text = " ".join(_page(render_report(d).parent)[0].text)
    assert "90 % confidence intervals" in text and "95 % confidence intervals" not in text
    assert "Responder percentage per arm with its 90 % CI" in text


def test_report_states_the_missing_data_assumption_of_the_method_used(run, tmp_path):
    # GEE is unbiased only if dropout is unrelated to the outcome (MCAR), not merely MAR
    import shutil

    d = tmp_path / "run"
    shutil.copytree(run[0], d)
    man = json.loads((d / "manifest.json").read_text())
    man["spec"]["method"] = "gee"
    (d / "manifest.json").write_text(json.dumps(man))
    text = " ".join(_page(render_report(d).parent)[0].text)
    assert "missing completely at random" in text and "(missing at random)" not in text
    assert "(missing at random)" in " ".join(_page(run[0])[0].text)


def test_responder_plot_accepts_rates_of_zero_and_one():
    from cxlab.report.figures import responder_plot

    # a Wilson bound computed in floating point can sit 1e-17 beyond a rate of 0 or 1
    rates = pd.DataFrame(
        {
            "outcome": ["a", "a"],
            "arm": ["control", "x"],
            "rate": [0.0, 1.0],
            "ci_low": [1e-17, 0.57],
            "ci_high": [0.43, 1 - 1e-17],
        }
    )
    assert responder_plot(rates).startswith("<svg")


def _copy_run(run_dir, dest, *, spec=None, control=None):
    import shutil

    shutil.copytree(run_dir, dest)
    man = json.loads((dest / "manifest.json").read_text())
    man["spec"].update(spec or {})
    if control:
        man["spec"]["control"] = control
        for name in ("analysis", "effects", "responders", "screening", "cohort"):
            p = dest / f"{name}.parquet"
            t = pd.read_parquet(p)
            if "arm" in t:
                t["arm"] = t["arm"].replace({"control": control})
                t.to_parquet(p)
    (dest / "manifest.json").write_text(json.dumps(man))
    return dest


def test_forest_caption_names_the_runs_time_unit_not_weekly(run, tmp_path):
    # the caption said "weekly slope difference" for a session_index run too
    _, html = _page(run[0])
    assert "slope difference per week × median follow-up (weeks)" in html
    d = _copy_run(run[0], tmp_path / "run", spec={"time": "session_index"})
    _, html = _page(render_report(d).parent)
    cap = re.search(r'<figure id="fig-forest">.*?<figcaption>(.*?)</figcaption>', html, re.S)
    assert "weekly" not in cap.group(1) and "week" not in cap.group(1)
    assert "slope difference per session × median follow-up (sessions)" in cap.group(1)


def test_control_arm_is_grey_whatever_it_is_named(run, tmp_path):
    # only an arm literally named "control" was drawn grey
    from cxlab.report.figures import arm_palette

    grey = (0.45, 0.45, 0.45)
    pal = arm_palette(["waitlist", "hip"], control="waitlist")
    assert pal["waitlist"] == grey and pal["hip"] != grey
    assert arm_palette(["hip"], control="waitlist")["hip"] == pal["hip"]  # same in every figure
    d = _copy_run(run[0], tmp_path / "run", control="waitlist")
    render_report(d)
    svg = (d / "figures" / "trajectory-pain_nrs.svg").read_text()
    assert "#737373" in svg  # matplotlib's hex for (0.45, 0.45, 0.45)
    assert "waitlist" in svg


def test_a_fit_warning_in_the_manifest_and_the_effects_table_is_listed_once(run, tmp_path):
    note = "week: 1 row(s) with a missing value left out"
    d = _copy_run(run[0], tmp_path / "run")
    man = json.loads((d / "manifest.json").read_text())
    man["warnings"] = [note]
    (d / "manifest.json").write_text(json.dumps(man))
    e = pd.read_parquet(d / "effects.parquet")
    e["warnings"] = [f"{note}; slope variance singular"] * len(e)
    e.to_parquet(d / "effects.parquet")
    html = render_report(d).read_text(encoding="utf-8")
    limits = html[html.index('id="limitations"') :]
    assert limits.count(note) == 1 and limits.count("slope variance singular") == 1


# Script and event-handler payloads, one per text a user controls; each must reach the page
# escaped (so it shows as text) and never as markup.
_XSS = ('<script>alert("{0}")</script>', '<img src=x onerror=alert("{0}")>')
_KEEP = {
    "outcome",
    "estimand",
    "criterion",
    "verdict",
    "type",
    "subject_id",
    "better",
    "stage",
    "source_sha256",
    "formula",
    "warnings",
}


def _plant(text, where):
    return f"{text}{_XSS[0].format(where)}{_XSS[1].format(where)}"


class _Active(HTMLParser):
    """Every element and attribute that could run code, from the browser's point of view."""

    def __init__(self):
        super().__init__()
        self.active, self.csp = [], []

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "img", "iframe", "object", "embed", "foreignobject", "link"}:
            self.active.append(tag)
        self.active += [
            f"{tag}[{k}]"
            for k, v in attrs
            if k.startswith("on") or (v or "").strip().lower().startswith("javascript:")
        ]
        a = dict(attrs)
        if tag == "meta" and a.get("http-equiv", "").lower() == "content-security-policy":
            self.csp.append(a.get("content", ""))


def _assert_inert(html, *, planted, img_ok=False):
    p = _Active()
    p.feed(html)
    active = [t for t in p.active if not (img_ok and t == "img")]
    assert active == [], active
    assert "<script" not in html.lower()
    assert len(p.csp) == 1 and "default-src 'none'" in p.csp[0]
    for where in planted:  # each payload reached the page, as text
        assert (
            f"&lt;script&gt;alert(&#34;{where}&#34;)" in html
            or f"&lt;script&gt;alert(&quot;{where}&quot;)" in html
        ), where


def test_report_escapes_every_text_from_the_spec_and_the_data(run, tmp_path):
    d = _copy_run(run[0], tmp_path / "run")
    man = json.loads((d / "manifest.json").read_text())
    man["title"] = _plant(man["title"], "title")
    spec = man["spec"]
    spec["title"] = man["title"]
    spec["where"] = _plant("age_years > 0 -- ", "where")
    for o in spec["outcomes"]:
        o["label"] = _plant(o["label"], "label")
    arm = "hip_strengthening"
    new_arm = _plant(arm, "arm")
    man["warnings"] = [_plant("a fit note", "warning")]
    (d / "manifest.json").write_text(json.dumps(man))
    for f in sorted(d.glob("*.parquet")):
        t = pd.read_parquet(f)
        for c in t.columns:
            if c in _KEEP or not pd.api.types.is_string_dtype(t[c]):
                continue
            if c == "arm":
                t[c] = t[c].replace({arm: new_arm})
            elif c == "label":
                t[c] = t[c].map(lambda v: _plant(v, "label") if isinstance(v, str) else v)
            else:  # sessions, units, quarantine paths, fields (marker labels) and reasons
                t[c] = t[c].map(lambda v, c=c: _plant(v, c) if isinstance(v, str) else v)
        t.to_parquet(f)
    assert new_arm in set(pd.read_parquet(d / "analysis.parquet")["arm"])
    html = render_report(d).read_text(encoding="utf-8")
    _assert_inert(html, planted=["title", "where", "label", "arm", "warning", "reason"])
    for svg in (d / "figures").glob("*.svg"):  # labels and arm names drawn as SVG <text>
        _assert_inert(
            f'<meta http-equiv="Content-Security-Policy" '
            f"content=\"default-src 'none'\">{svg.read_text()}",
            planted=[],
        )
    svg = (d / "figures" / "trajectory-pain_nrs.svg").read_text()
    assert (
        "&lt;img src=x onerror=alert(&quot;arm&quot;)&gt;" in svg
        or '&lt;img src=x onerror=alert("arm")&gt;' in svg
    )


def test_svg_markup_refuses_active_content():
    from cxlab._html import svg_markup

    ok = '<svg xmlns="http://www.w3.org/2000/svg"><text>&lt;script&gt;</text></svg>'
    assert str(svg_markup(ok)) == ok
    for bad in (
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><text><img src=x onerror=1></text></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
        '<a x:href="javascript:alert(1)"/></svg>',
        "<div>not svg</div>",
    ):
        with pytest.raises(ValueError, match=r"refusing|refuse|only #fragments"):
            svg_markup(bad)


def test_report_opens_with_the_findings_matrix_then_clear_findings_only(run):
    run_dir = run[0]
    _, html = _page(run_dir)
    body = html.split("<body>", 1)[1]
    first = re.search(r"<section id=\"([a-z]+)\"", body).group(1)
    assert first == "findings" and body.index("findings-matrix") < body.index('id="cohort"')
    eff = pd.read_parquet(run_dir / "effects.parquet")
    slopes = eff[eff["estimand"] == "slope_diff"]
    # one matrix row per outcome, one cell per arm (a coloured class each)
    matrix = html.split('class="findings-matrix"', 1)[1].split("</table>", 1)[0]
    assert matrix.count("<tr>") == slopes["outcome"].nunique() + 1
    assert len(re.findall(r'class="cell-(benefit|harm|unclear)"', matrix)) == len(slopes)
    found = findings(slopes, control="control")
    n_clear = int(found["verdict"].isin(["better", "worse"]).sum())
    section = body.split('id="findings"', 1)[1].split("</section>", 1)[0]
    assert section.count('<li class="verdict-') == n_clear
    assert "no clear difference" not in section  # unclear ones stay in the effects table
    assert 'http-equiv="Content-Security-Policy"' in html


def test_report_tables_keep_messages_verbatim_and_round_numbers(run, tmp_path):
    run_dir = tmp_path / "r"
    shutil.copytree(run[0], run_dir)
    q = pd.read_parquet(run_dir / "quality.parquet")
    q.loc[0, "reason"] = "surveys.csv: row 5, column odi_4: is not a number <b>"
    q.to_parquet(run_dir / "quality.parquet")
    eff = pd.read_parquet(run_dir / "effects.parquet")
    eff.loc[0, "estimate"] = 2.78e-17
    eff.to_parquet(run_dir / "effects.parquet")
    render_report(run_dir)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "column odi_4: is not a number &lt;b&gt;" in html  # verbatim and escaped
    assert "odi 4" not in html and "e-17" not in html


def test_small_velocities_are_shown_in_mm_per_s():
    from cxlab.report.sections import fmt, readable_unit

    assert readable_unit("m/s", [0.0005, -0.0012]) == (1e3, "mm/s")
    assert readable_unit("m/s", [0.5]) == (1.0, "m/s")
    assert readable_unit("deg", [0.001]) == (1.0, "deg")
    assert fmt(0.0005 * 1e3) == "0.500" and fmt(2.78e-17) == "0" and fmt(-1.234) == "−1.23"


def _nav_and_sections(html: str) -> tuple[list[str], list[str]]:
    nav = html.split("<nav>", 1)[1].split("</nav>", 1)[0]
    body = html.split("</nav>", 1)[1]
    return re.findall(r'href="#([a-z_-]+)"', nav), re.findall(r'<section id="([a-z_-]+)"', body)


def test_contents_lists_every_section_once_in_page_order(run):
    _, html = _page(run[0])
    nav, ids = _nav_and_sections(html)
    # the page as it has always read (findings matrix first); no curve outcome in this run,
    # so no curve section and no contents link to one
    assert ids == [
        "findings",
        "flow",
        "participants",
        "cohort",
        "trajectories",
        "effects",
        "means",
        "moderators",
        "responders",
        "asymmetry",
        "screening",
        "reliability",
        "methods",
        "limitations",
    ]
    assert nav == ids


def test_page_is_its_section_functions_output_in_order(run):
    from cxlab.report.page import SECTIONS, read_run
    from cxlab.report.sections import Section

    run_dir = run[0]
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    data = read_run(run_dir)
    at = 0
    for section in SECTIONS:
        s = section(data)
        assert isinstance(s, Section) and isinstance(s.title, str) and s.title
        if not s.html:  # an empty section (curves here) is left out of page and contents
            assert f'href="#{s.id}"' not in html
            continue
        assert s.html.startswith(f'<section id="{s.id}">'), s.id
        assert f'<a href="#{s.id}">{s.title}</a>' in html
        at = html.index(str(s.html), at) + len(s.html)  # each in turn, nothing reordered


def test_trajectory_of_an_outcome_with_undated_sessions_still_draws_the_arm_means():
    # one undated session made the dodge of every arm's mean NaN, so no mean was drawn at all
    from cxlab.report.figures import trajectory_plot

    rng = np.random.default_rng(4)
    rows = [
        {"subject_id": f"s{i}", "arm": arm, "session_index": k, "week": 4.0 * k + 0.1 * i}
        for i, arm in enumerate(["control", "hip"] * 4)
        for k in range(3)
    ]
    dated = pd.DataFrame(rows).assign(value=rng.normal(10, 1, len(rows)))
    undated = dated.iloc[[2, 5]].assign(week=np.nan, value=99.0)  # drawn, it would show
    both = pd.concat([dated, undated], ignore_index=True)
    kw = {"label": "knee", "unit": "deg", "time": "week"}
    assert trajectory_plot(both, **kw) == trajectory_plot(dated, **kw)


def test_page_names_participants_by_label_in_warnings_and_gives_long_messages_room(run, tmp_path):
    d = _copy_run(run[0], tmp_path / "run")
    sid = sorted(pd.read_parquet(d / "analysis.parquet")["subject_id"].unique())[1]
    man = json.loads((d / "manifest.json").read_text())
    man["warnings"] = [*man.get("warnings", []), f"curves.x: left out {sid} × session 2"]
    (d / "manifest.json").write_text(json.dumps(man))
    q = pd.read_parquet(d / "quality.parquet")
    q.loc[0, "reason"] = "surveys.csv: row 5, column odi_4: " + "a long reason " * 8
    q.to_parquet(d / "quality.parquet")
    _, html = _page(render_report(d).parent)
    assert sid not in html  # a pseudonym is not a name the page shows
    assert "curves.x: left out P02 × session 2" in html
    assert re.search(r'<td class="long">surveys\.csv: row 5, column odi_4: a long', html)
    assert '<td class="long">control</td>' not in html  # short cells keep their width


def test_findings_note_does_not_name_an_engine_the_fits_did_not_use(run):
    _, html = _page(run[0])
    note = re.search(r'<p class="meta">Effects are from (.*?);', html, re.S).group(1)
    engines = set(pd.read_parquet(run[0] / "effects.parquet")["engine"].dropna())
    assert "statsmodels" not in note or engines == {"statsmodels"}


def test_a_warning_shared_by_several_outcomes_is_listed_once_with_each_outcome(run, tmp_path):
    d = _copy_run(run[0], tmp_path / "run")
    man = json.loads((d / "manifest.json").read_text())
    gap = "2 of 48 subject-sessions have no date; the model leaves them out"
    man["warnings"] = [f"outcomes.{o}: {gap}" for o in ("pain_nrs", "knee_fppa_peak_deg")]
    (d / "manifest.json").write_text(json.dumps(man))
    e = pd.read_parquet(d / "effects.parquet")
    e["warnings"] = "week: 2 row(s) with a missing value left out"
    e.to_parquet(d / "effects.parquet")
    html = render_report(d).read_text(encoding="utf-8")
    found = html[html.index("Warnings by outcome") : html.index('id="flow"')]
    assert found.count(gap) == 1 and found.count("week: 2 row(s) with a missing value") == 1
    labels = {o["name"]: o["label"] for o in man["spec"]["outcomes"]}
    item = re.search(r"<strong>([^<]*)</strong>: week: 2 row", found).group(1)
    assert item == f"all {len(labels)} outcomes" and len(labels) == 3
    both = f"{labels['pain_nrs']}; {labels['knee_fppa_peak_deg']}"
    assert f"<strong>{both}</strong>: {gap}" in found  # the two it concerns, named


def test_asymmetry_view_picks_the_largest_median_asymmetries_at_the_first_session():
    from cxlab.report.figures import asymmetry_view

    rows = []
    for subject, scale in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        for k in range(30):  # measure m00 .. m29: median |index| k at the first session
            rows.append((subject, 0, f"m{k:02d}", (-1) ** k * k * scale / 2.0))
            rows.append((subject, 3, f"m{k:02d}", 0.0))  # the last session: no asymmetry
        rows.append((subject, 1, "m00", 99.0))  # a middle session is not shown
    asym = pd.DataFrame(rows, columns=["subject_id", "session_index", "measure", "asym_pct"])
    view = asymmetry_view(asym, n=5)
    assert view.measures == ["m29", "m28", "m27", "m26", "m25"]
    assert view.n_measures == 30 and view.sessions == [0, 3]
