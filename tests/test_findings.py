"""Findings and the findings matrix for per-visit (categorical time) fits: the contrast at the
last visit, checked against a simulated cohort with known programme effects."""

from __future__ import annotations

import pandas as pd
import pytest

from cxlab._check import ConfigError
from cxlab.experiments import read_spec, run_experiment
from cxlab.report.findings import findings, last_visit
from cxlab.report.sections import matrix_rows
from truth_store import truth_store

SPEC = """
name = "visits"
seed = 4
store = "store"

[model]
control = "control"
time = "session_index"
time_as = "categorical"

[outcomes.pain_nrs]
mcid = 2.0
"""


@pytest.fixture(scope="module")
def visit_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("visits")
    _store, truth = truth_store(root / "store", 40, 3, seed=9)
    (root / "visits.toml").write_text(SPEC, encoding="utf-8")
    return run_experiment(root / "visits.toml", out=root / "runs"), truth


def test_last_visit_contrast_covers_the_simulated_change(visit_run):
    run, truth = visit_run
    e = pd.read_parquet(run / "effects.parquet")
    assert set(e["estimand"]) == {"change_diff"} and set(e["visit"]) == {"1", "2"}
    a = pd.read_parquet(run / "analysis.parquet")
    weeks = a.loc[a["session_index"] == 2, "week"].mean()  # programme weeks at the last visit
    last = last_visit(e).set_index("arm")
    assert (last["visit"] == "2").all()
    for arm, per_week in truth.effects["pain_nrs"].items():
        r = last.loc[arm]
        assert r["ci_low"] <= per_week * weeks <= r["ci_high"], (arm, r.to_dict())


def test_matrix_and_sentences_use_the_last_visit(visit_run):
    run, _ = visit_run
    e = pd.read_parquet(run / "effects.parquet")
    arms, rows = matrix_rows(e, {}, alpha=0.05, per="session")
    (row,) = rows
    assert row["unit"] == "points at visit 2"
    last = last_visit(e).set_index("arm")
    for arm, cell in zip(arms, row["cells"], strict=True):
        shown = float(cell["estimate"].replace("−", "-"))
        assert shown == pytest.approx(last.loc[arm, "estimate"], rel=5e-3, abs=5e-4)
    f = findings(e, control="control", time_unit="session_index")
    assert len(f) == len(arms)
    assert all("visit 2" in s for s in f["sentence"])
    html = (run / "report.html").read_text(encoding="utf-8")
    matrix = html[html.index('<section id="findings">') :]
    assert "points at visit 2" in matrix[: matrix.index("</section>")]


def test_last_visit_orders_numeric_labels_as_numbers():
    e = pd.DataFrame(
        {
            "outcome": "y",
            "arm": "a",
            "estimand": "change_diff",
            "visit": ["2", "10", "3"],
            "estimate": [1.0, 2.0, 3.0],
        }
    )
    assert last_visit(e)["visit"].tolist() == ["10"]


def test_worthwhile_at_last_visit_compares_the_change_itself_with_the_mcid():
    e = pd.DataFrame(
        {
            "outcome": "pain_nrs",
            "label": "pain",
            "arm": "hip",
            "estimand": "change_diff",
            "visit": "2",
            "estimate": -3.0,
            "ci_low": -4.0,
            "ci_high": -2.5,
            "p_adj": 0.001,
            "unit": "points",
            "mcid": 2.0,
            "better": "lower",
            "followup_weeks": 8.0,  # not used: the change is already the whole change
        },
        index=[0],
    )
    f = findings(e, control="control", time_unit="session_index").iloc[0]
    assert f["verdict"] == "better" and f["worthwhile"] == "likely"
    f2 = findings(e.assign(ci_high=-1.0), control="control").iloc[0]
    assert f2["worthwhile"] == "possibly"


def test_per_visit_time_needs_session_index(tmp_path):
    (tmp_path / "s.toml").write_text(SPEC.replace('"session_index"', '"week"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="per-visit estimands need"):
        read_spec(tmp_path / "s.toml")
    (tmp_path / "t.toml").write_text(SPEC.replace('"categorical"', '"visits"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="is not a way to model time"):
        read_spec(tmp_path / "t.toml")
