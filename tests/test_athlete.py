"""Per-athlete pages and the squad index: dates, typical error, escaping, CSP, pseudonyms."""

from __future__ import annotations

import base64
import hashlib
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxlab._check import CxlabWarning
from cxlab.cli import app
from cxlab.pseudo import pseudonymise
from cxlab.screen.athlete import (
    KEY_METRICS,
    SIDE_PAIRS,
    _noise,
    change_direction,
    session_dates,
    write_athlete_pages,
)
from truth_store import truth_store

runner = CliRunner()


@pytest.fixture
def store(tmp_path):
    st, truth = truth_store(tmp_path / "st", n_subjects=6, n_sessions=3, quarantine=False)
    return st, truth


def test_pages_for_every_athlete_and_an_index_with_links(store, tmp_path):
    st, _ = store
    written = write_athlete_pages(st, tmp_path / "pages")
    subjects = sorted(st.table("features")["subject_id"].unique())
    assert [p.name for p in written] == [f"athlete-{s}.html" for s in subjects] + ["index.html"]
    index = written[-1].read_text()
    for s in subjects:
        assert f'href="athlete-{s}.html"' in index
    page = written[0].read_text()
    assert "Knee valgus on landing" in page and "knee_fppa_peak_deg" not in page
    assert "typical error" in page.lower() and "smallest worthwhile change" in page


def test_pages_load_nothing_from_outside_and_the_csp_hashes_the_inline_script(store, tmp_path):
    st, _ = store
    for page in write_athlete_pages(st, tmp_path / "pages"):
        html = page.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)
        csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
        assert "default-src 'none'" in csp
        for kind in ("script", "style"):
            for body in re.findall(rf"<{kind}>(.*?)</{kind}>", html, flags=re.S):
                h = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
                assert f"'sha256-{h}'" in csp  # the browser would run it, and nothing else


def test_hostile_text_in_the_store_is_escaped(store, tmp_path):
    st, _ = store
    f = st.table("features")
    sid = f["subject_id"].iloc[0]
    paired = ["knee_fppa_peak_deg", "landing_peak_force_n"]  # the force is on the L/R table
    evil = f[(f["subject_id"] == sid) & f["feature"].isin(paired)].copy()
    evil["unit"] = "<script>alert(1)</script>"
    evil["session"] = evil["session"].astype(str) + "<img src=x onerror=alert(2)>"
    force = evil["feature"] == "landing_peak_force_n"  # the knee rows keep the screen's task
    evil.loc[force, "task"] = "<b onmouseover=alert(3)>landing</b>"
    st.write("features", evil, key="evil")
    html = tmp_path / "pages" / f"athlete-{sid}.html"
    with pytest.warns(CxlabWarning, match="expects 'deg'"):  # the screen ignores those rows
        write_athlete_pages(st, tmp_path / "pages")
    text = html.read_text()
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)" in text
    assert "<img src=x" not in text
    assert "<b onmouseover" not in text and "&lt;b onmouseover=alert(3)&gt;landing" in text


def test_session_dates_come_from_the_scores_when_there_is_no_sessions_table(store):
    st, _ = store
    sc = st.table("scores").groupby(["subject_id", "session"])["date"].min().reset_index()
    d = session_dates(st).merge(sc, on=["subject_id", "session"], suffixes=("", "_scores"))
    assert len(d) and (d["date"] == pd.to_datetime(d["date_scores"])).all()


def test_typical_error_of_two_trials_is_sd_of_differences_over_root_2():
    rng = np.random.default_rng(1)
    true = rng.normal(0.30, 0.04, 8)
    t1, t2 = true + rng.normal(0, 0.01, 8), true + rng.normal(0, 0.01, 8)
    rows = [
        dict(
            subject_id=f"{i:012x}",
            session="1",
            feature="cmj_jump_height_impulse_m",
            side="bilateral",
            value=v,
            unit="m",
        )
        for i in range(8)
        for v in (t1[i], t2[i])
    ]
    te, swc = _noise(pd.DataFrame(rows), KEY_METRICS[0])
    assert te == pytest.approx(np.std(t2 - t1, ddof=1) / np.sqrt(2), rel=1e-9)
    assert swc == pytest.approx(0.2 * np.std((t1 + t2) / 2, ddof=1), rel=1e-9)


def test_change_direction_uses_te_swc_and_the_metric_direction():
    kw = dict(te=0.01, swc=0.02)
    assert change_direction(0.005, better="higher", **kw) == "within noise"
    assert change_direction(0.015, better="higher", **kw) == "trivial"
    assert change_direction(0.03, better="higher", **kw) == "better"
    assert change_direction(0.03, better="lower", **kw) == "worse"
    assert change_direction(-0.03, better="lower", **kw) == "better"
    assert change_direction(0.5, te=np.nan, swc=0.02, better="higher") == "within noise"


def _asym_rows(html: str) -> list[list[str]]:
    """The cells (tags stripped) of the page's left-vs-right table, one list per row."""
    i = html.index('<section id="asymmetry">')
    sec = html[i : html.index("</section>", i)]
    rows = re.findall(r"<tr>(.*?)</tr>", sec, flags=re.S)[1:]  # without the header
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]


#: hand-worked latest session (2) of one athlete, values chosen so every mean is exact
_SID = "a1b2c3d4e5f6"
_HAND = [
    # session 1: an older session, never on the page's left-vs-right table
    ("r0", "1", "cmj", "1", "cmj_propulsive_impulse_n_s", "left", 50.0, "N.s"),
    ("r0", "1", "cmj", "1", "cmj_propulsive_impulse_n_s", "right", 500.0, "N.s"),
    # cmj, two recordings with both plates: L (120 + 110) / 2 = 115, R (100 + 90) / 2 = 95
    ("r1", "2", "cmj", "1", "cmj_propulsive_impulse_n_s", "left", 120.0, "N.s"),
    ("r1", "2", "cmj", "1", "cmj_propulsive_impulse_n_s", "right", 100.0, "N.s"),
    ("r2", "2", "cmj", "2", "cmj_propulsive_impulse_n_s", "left", 110.0, "N.s"),
    ("r2", "2", "cmj", "2", "cmj_propulsive_impulse_n_s", "right", 90.0, "N.s"),
    # the same feature in a second task: its own row (a mean across tasks would be 103/93)
    ("r3", "2", "cmj_arms", "1", "cmj_propulsive_impulse_n_s", "left", 80.0, "N.s"),
    ("r3", "2", "cmj_arms", "1", "cmj_propulsive_impulse_n_s", "right", 100.0, "N.s"),
    # an angle measured on both sides of one recording: never paired
    ("r4", "2", "landing", "1", "knee_fppa_peak_deg", "left", 12.0, "deg"),
    ("r4", "2", "landing", "1", "knee_fppa_peak_deg", "right", 4.0, "deg"),
    # single-leg trials: L (0.20 + 0.22) / 2 = 0.21 on 2 trials, R 0.18 on 1
    ("r5", "2", "cmj_left", "1", "slcmj_jump_height_impulse_m", "left", 0.20, "m"),
    ("r6", "2", "cmj_left", "2", "slcmj_jump_height_impulse_m", "left", 0.22, "m"),
    ("r7", "2", "cmj_right", "1", "slcmj_jump_height_impulse_m", "right", 0.18, "m"),
    # body mass and hop counts of single-leg trials: never paired
    ("r5", "2", "cmj_left", "1", "slcmj_body_mass_kg", "left", 70.0, "kg"),
    ("r7", "2", "cmj_right", "1", "slcmj_body_mass_kg", "right", 72.0, "kg"),
    ("r8", "2", "hop_left", "1", "slhop_n_hops", "left", 10.0, "1"),
    ("r9", "2", "hop_right", "1", "slhop_n_hops", "right", 8.0, "1"),
    ("r8", "2", "hop_left", "1", "slhop_rsi", "left", 0.30, "m/s"),
    ("r9", "2", "hop_right", "1", "slhop_rsi", "right", 0.40, "m/s"),
]


def _hand_store(tmp_path, rows=_HAND):
    from cxlab.store import Store

    st = Store(tmp_path / "hand")
    cols = ["recording_id", "session", "task", "trial", "feature", "side", "value", "unit"]
    d = pd.DataFrame(rows, columns=cols).assign(subject_id=_SID, method="hand-worked")
    d["recording_id"] = [hashlib.sha256(r.encode()).hexdigest()[:16] for r in d["recording_id"]]
    st.write("features", d)
    return st


def test_left_vs_right_is_hand_worked_per_task_with_its_pairing_and_n(tmp_path):
    st = _hand_store(tmp_path)
    (page,) = write_athlete_pages(st, tmp_path / "pages")[:-1]
    got = _asym_rows(page.read_text())
    assert got == [
        # title, task, left, right, LSI, weaker, paired from, trials (L / R)
        ["CMJ push-off impulse, N.s (higher is better)", "cmj", "115", "95", "83 %", "right",
         "same recording", "2 / 2"],  # 100 * 95 / 115 = 82.6 %
        ["CMJ push-off impulse, N.s (higher is better)", "cmj_arms", "80", "100", "80 %",
         "left", "same recording", "1 / 1"],
        ["Single-leg jump height, m (higher is better)", "cmj_single_leg", "0.21", "0.18",
         "86 %", "right", "separate single-leg trials", "2 / 1"],  # 100 * 0.18 / 0.21
        ["Single-leg hop reactive strength (RSI), m/s (higher is better)", "hop_single_leg",
         "0.3", "0.4", "75 %", "left", "separate single-leg trials", "1 / 1"],
    ]  # fmt: skip


def test_no_mean_across_tasks_and_the_rows_come_from_the_one_pairing_rule(tmp_path):
    """Every row on the page is a row of ``side_pairs`` of the store, numbers unchanged."""
    from cxlab.features.pairing import side_pairs

    st = _hand_store(tmp_path)
    (page,) = write_athlete_pages(st, tmp_path / "pages")[:-1]
    got = _asym_rows(page.read_text())
    p = side_pairs(st.table("features"))
    p = p[(p["session"] == "2") & p["feature"].isin(list(SIDE_PAIRS))]
    assert [r[1] for r in got] == p["task"].tolist()
    np.testing.assert_allclose([float(r[2]) for r in got], p["left"], rtol=2e-3)
    n = zip(p["n_left"], p["n_right"], strict=True)
    assert [r[7] for r in got] == [f"{a} / {b}" for a, b in n]
    assert not any("103" in c or "93" in c for r in got for c in r[2:4])  # no cross-task mean


def test_weaker_side_follows_the_direction_of_better(monkeypatch):
    """With a lower-is-better measure the side with the larger value is the weaker one."""
    import cxlab.screen.athlete as ath

    pairs = pd.DataFrame(
        {
            "task": ["dj", "dj", "dj"],
            "feature": ["dj_peak_contact_force_n"] * 3,
            "unit": ["N"] * 3,
            "left": [900.0, 1000.0, 800.0],
            "right": [1000.0, 900.0, 800.0],
            "pairing": ["same recording"] * 3,
            "n_left": [1, 1, 1],
            "n_right": [1, 1, 1],
        }
    )
    higher = [r["weaker"] for r in ath._asymmetries(pairs)]
    monkeypatch.setitem(ath.SIDE_PAIRS, "dj_peak_contact_force_n", ("Contact force", "lower"))
    rows = ath._asymmetries(pairs)
    assert higher == ["left", "right", "equal"]
    assert [r["weaker"] for r in rows] == ["right", "left", "equal"]
    np.testing.assert_allclose([r["lsi"] for r in rows], [90.0, 90.0, 100.0])


def test_page_measures_are_pairable_and_name_every_single_leg_outcome():
    """No body mass, count, angle or per-leg balance measure is listed; every single-leg
    jump outcome ``side_pairs`` may pair has a title, so none is silently dropped."""
    from cxlab.features.tasks import SINGLE_LEG_METRICS

    single = {f for fs in SINGLE_LEG_METRICS.values() for f in fs}
    assert single <= set(SIDE_PAIRS)
    bad = re.compile(r"(_deg|_kg|_n_hops|^balance_)")
    assert not [f for f in SIDE_PAIRS if bad.search(f)]


def test_cli_athlete_and_pseudonyms_print_locally_and_write_nothing(store, tmp_path):
    st, _ = store
    res = runner.invoke(app, ["athlete", "--store", str(st.path), "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "index.html").exists()
    key = tmp_path / "lab.key"
    key.write_text("lab-secret\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("S01\n# comment\nS02  # trailing\n\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = runner.invoke(
        app, ["pseudonyms", "--key", str(key), "--labels", str(labels), "S03", "--csv"]
    )
    assert res.exit_code == 0, res.output
    got = dict(line.split(",") for line in res.output.strip().splitlines()[1:])
    assert got == {s: pseudonymise(s, key=b"lab-secret") for s in ("S03", "S01", "S02")}
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    res = runner.invoke(app, ["pseudonyms"])
    assert res.exit_code == 1 and "no labels given" in res.output


def test_same_store_gives_byte_identical_pages(store, tmp_path):
    st, _ = store
    a = write_athlete_pages(st, tmp_path / "a")
    b = write_athlete_pages(st, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_docs_screen_athlete_example_runs():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "screen.md").read_text()
    part = doc.split("## The athlete view", 1)[1].split("## Checked against", 1)[0]
    code = part.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/screen.md", "exec"), {})


def test_cmj_curve_is_latest_vs_baseline_session_mean_from_the_curves_table(store, tmp_path):
    """Analytic curves written to the curves table come back on the page: each session's
    trials averaged node by node, the latest over the baseline, left and right drawn."""
    st, _ = store
    sid = sorted(st.table("features")["subject_id"].unique())[0]
    ses = session_dates(st)
    ses = ses[ses["subject_id"] == sid].sort_values("order")["session"].tolist()
    pct = np.linspace(0.0, 100.0, 101)
    bump = np.sin(np.pi * pct / 100.0)
    shapes = {  # session -> two trials' bilateral curves (BW); their mean is 1 + a·bump
        ses[0]: [1.0 + 0.3 * bump, 1.0 + 0.5 * bump],
        ses[1]: [1.0 + 0.6 * bump, 1.0 + 0.6 * bump],  # a middle session: not drawn
        ses[-1]: [1.0 + 0.8 * bump, 1.0 + 1.0 * bump],
    }
    rows = []
    for s, trials in shapes.items():
        for k, y in enumerate(trials):
            for side, v in (("bilateral", y), ("left", 0.45 * y), ("right", 0.55 * y)):
                rows.append(
                    pd.DataFrame(
                        {
                            "recording_id": hashlib.sha256(f"{s}-{k}".encode()).hexdigest()[:16],
                            "subject_id": sid,
                            "session": s,
                            "task": "cmj",
                            "trial": str(k + 1),
                            "phase": "cmj",
                            "signal": "fz_bw",
                            "side": side,
                            "node": np.arange(101, dtype=np.int32),
                            "pct": pct,
                            "value": v,
                            "unit": "BW",
                            "phase_start_s": 1.0,
                            "phase_end_s": 1.8,
                            "method": "analytic test curve",
                        }
                    )
                )
    st.write("curves", pd.concat(rows, ignore_index=True), key="cmj-test")
    page = tmp_path / "pages" / f"athlete-{sid}.html"
    write_athlete_pages(st, tmp_path / "pages")
    html = page.read_text()
    sec = html[
        html.index('<section id="curve">') : html.index(
            "</section>", html.index('<section id="curve">')
        )
    ]
    assert "CMJ (time-normalised" in sec and "movement onset (0 %) to take-off (100 %)" in sec
    assert f"baseline (session {ses[0]}, 2 trials)" in sec
    assert f"latest (session {ses[-1]}, 2 trials)" in sec
    assert "latest left" in sec and "latest right" in sec
    lines = [
        np.array([[float(v) for v in p.split(",")] for p in pts.split()])
        for pts in re.findall(r'<polyline points="([^"]+)"', sec)
    ]
    assert len(lines) == 4  # baseline, latest, latest left, latest right
    base, latest, left, right = lines
    # the SVG's y is linear in the value: calibrate it on the baseline's known mean
    A = np.column_stack([np.ones(101), 1.0 + 0.4 * bump])
    coef, *_ = np.linalg.lstsq(A, base[:, 1], rcond=None)
    np.testing.assert_allclose(A @ coef, base[:, 1], atol=0.06)  # rounding to 0.1 px
    for got, want in ((latest, 1.0 + 0.9 * bump), (left, 0.45 * (1.0 + 0.9 * bump))):
        np.testing.assert_allclose(coef[0] + coef[1] * want, got[:, 1], atol=0.06)
    np.testing.assert_allclose(right[:, 1], coef[0] + coef[1] * 0.55 * (1 + 0.9 * bump), atol=0.06)
    assert np.all(np.diff(latest[:, 0]) > 0)  # x: % of the phase, increasing
