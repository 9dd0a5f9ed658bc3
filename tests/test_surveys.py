"""Survey reading, instrument scoring and quarantine of bad rows.

Worked examples come from the instruments' publications: ODI (Fairbank & Pynsent 2000:
16 points over 10 sections = 32 %, over 9 answered sections = 16/45 = 35.6 %), TSK-17
(Vlaeyen et al. 1995: items 1-4, items 4, 8, 12, 16 reversed, total 17-68).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxlab._check import ConfigError, CxlabWarning, InputFormatError
from cxlab.cli import app
from cxlab.ingest import ingest_surveys
from cxlab.instruments import (
    builtin_instruments,
    instrument_scores,
    read_instruments,
    read_spec,
)
from cxlab.pseudo import pseudonymise
from cxlab.store import Store

runner = CliRunner()
ODI16 = [2, 2, 1, 2, 2, 1, 2, 2, 1, 1]  # sums to 16
HEAD = "participant,session,date,pain_nrs," + ",".join(f"odi_{i}" for i in range(1, 11))


def _csv(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _odi(answers):
    return ",".join("" if a is None else str(a) for a in answers)


def _score(answers, name):
    inst = builtin_instruments()
    items = inst[name].items
    df = pd.DataFrame(
        {
            "subject_id": "s",
            "session": "1",
            "instrument": name,
            "item": items,
            "response": np.array(answers, dtype=float),
        }
    )
    return instrument_scores(df, inst).iloc[0]


def test_odi_all_sections_total_16_is_32_percent():
    r = _score(ODI16, "odi")
    assert r["score"] == pytest.approx(32.0)
    assert r["n_items_answered"] == 10 and r["unit"] == "%"


def test_odi_one_missing_section_is_16_of_45():
    r = _score([*ODI16[:9], np.nan], "odi")  # 9 answered sections still total 15
    assert r["score"] == pytest.approx(15 / 45 * 100)
    r = _score(
        [
            np.nan,
            *ODI16[1:],
        ],
        "odi",
    )  # drop a 2: total 14 of 45
    assert r["score"] == pytest.approx(14 / 45 * 100)
    r = _score([2, 2, 2, 2, 2, 2, 2, 1, 1, np.nan], "odi")  # the manual's 16/45 = 35.6 %
    assert round(r["score"], 1) == 35.6


def test_odi_two_missing_sections_give_no_score():
    r = _score([*ODI16[:8], np.nan, np.nan], "odi")
    assert math.isnan(r["score"]) and r["n_items_answered"] == 8


def test_tsk17_reverses_items_4_8_12_16_and_spans_17_to_68():
    tsk = builtin_instruments()["tsk17"]
    assert tsk.reverse == ("tsk_4", "tsk_8", "tsk_12", "tsk_16")
    assert tsk.score_range == (17, 68)
    assert _score([4] * 17, "tsk17")["score"] == 13 * 4 + 4 * 1  # 56
    assert _score([1] * 17, "tsk17")["score"] == 13 * 1 + 4 * 4  # 29
    worst = [1 if i in (4, 8, 12, 16) else 4 for i in range(1, 18)]
    best = [4 if i in (4, 8, 12, 16) else 1 for i in range(1, 18)]
    assert _score(worst, "tsk17")["score"] == 68
    assert _score(best, "tsk17")["score"] == 17
    assert math.isnan(_score([3] * 16 + [np.nan], "tsk17")["score"])  # all 17 required


LAB_TOML = """
drop_columns = ["nickname"]

[[instrument]]
name = "fatigue"
title = "A 5-item lab fatigue scale"
items = 5
item_prefix = "fat"
min = 0
max = 6
reverse = [2, "fat_5"]
score = "sum"
min_items = 4
unit = "points"

[[instrument]]
name = "mood"
items = ["happy", "calm"]
min = 1
max = 7
integer = false
score = "mean"
min_items = 1
unit = "points"
"""


def test_toml_instrument_reverse_scores_and_prorates_missing_items(tmp_path):
    spec = tmp_path / "lab.toml"
    spec.write_text(LAB_TOML)
    inst = read_instruments(spec)
    assert inst["fatigue"].items == ("fat_1", "fat_2", "fat_3", "fat_4", "fat_5")
    f = _csv(
        tmp_path / "f.csv",
        [
            "id,session,date,fat_1,fat_2,fat_3,fat_4,fat_5,happy,calm,nickname",
            "A,1,2025-01-01,1,6,3,0,5,6.5,3,Bunny",  # 1 + (6-6) + 3 + 0 + (6-5) = 5
            "A,2,2025-02-01,2,4,,2,0,,",  # 2 + 2 + 2 + 6 = 12 over 4 -> 12/4*5 = 15
            "B,1,2025-01-01,2,4,,,0,7,",  # 3 answered < 4 -> no score
        ],
    )
    r = ingest_surveys([f], store=tmp_path / "st", spec=spec)
    assert r.n_rejected == 0
    s = Store(tmp_path / "st").table("scores").set_index(["subject_id", "session", "instrument"])
    a, b = pseudonymise("A"), pseudonymise("B")
    assert s.loc[(a, "1", "fatigue"), "score"] == 5
    assert s.loc[(a, "2", "fatigue"), "score"] == 15
    assert math.isnan(s.loc[(b, "1", "fatigue"), "score"])
    assert s.loc[(a, "1", "mood"), "score"] == pytest.approx(4.75)
    assert (
        s.loc[(b, "1", "mood"), "score"] == 7 and s.loc[(b, "1", "mood"), "n_items_answered"] == 1
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "[[instrument]]\nname = 'x'\nitems = 3\nmin = 1\nmax = 1\nscore = 'sum'\nunit = 'p'",
            "min < max",
        ),
        (
            "[[instrument]]\nname = 'x'\nitems = 3\nmin = 0\nmax = 4\nscore = 'median'\nunit = 'p'",
            "score",
        ),
        (
            "[[instrument]]\nname = 'x'\nitems = 3\nmin = 0\nmax = 4\nscore = 'sum'\nunit = 'p'\n"
            "reverse = [7]",
            "reverse",
        ),
        ("[[instrument]]\nname = 'x'\nitems = 3\nmin = 0\nmax = 4\nscore = 'sum'", "unit"),
    ],
)
def test_bad_instrument_toml_names_file_and_key(tmp_path, text, needle):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=needle) as e:
        read_instruments(p)
    assert str(e.value).startswith("bad.toml: ")


def test_unknown_spec_keys_are_all_reported_with_the_nearest_allowed_key(tmp_path):
    p = tmp_path / "lab.toml"
    p.write_text('drop_column = ["nickname"]\n[instruments.x]\nname = "x"\n')
    with pytest.raises(ConfigError) as e:
        read_spec(p)
    text = str(e.value)
    assert text.startswith("lab.toml: ")
    assert "'drop_column' (did you mean 'drop_columns'?)" in text
    assert "'instruments' (did you mean 'instrument'?)" in text
    assert "drop_columns and [[instrument]]" in text
    ok = tmp_path / "ok.toml"
    ok.write_text('drop_columns = ["nickname"]\n')
    assert read_spec(ok) == ({}, ["nickname"])


def test_nrs_and_vas_range_rules(tmp_path):
    f = _csv(
        tmp_path / "p.csv",
        [
            "subject,session,date,pain_nrs,pain_vas",
            "A,1,2025-01-01,0,0",
            "B,1,2025-01-01,10,100",
            "C,1,2025-01-01,7.5,37.5",  # NRS must be an integer
            "D,1,2025-01-01,-1,50",  # NRS below 0
            "E,1,2025-01-01,5,100.5",  # VAS above 100 mm
        ],
    )
    r = ingest_surveys([f], store=tmp_path / "st")
    got = set(zip(r.rejected["row"], r.rejected["field"], r.rejected["value"], strict=True))
    assert got == {(4, "pain_nrs", "7.5"), (5, "pain_nrs", "-1"), (6, "pain_vas", "100.5")}
    s = Store(tmp_path / "st").table("scores")
    assert set(s["subject_id"]) == {pseudonymise("A"), pseudonymise("B")}
    assert set(s.loc[s.instrument == "pain_vas", "unit"]) == {"mm"}
    assert set(s.loc[s.instrument == "pain_nrs", "unit"]) == {"points"}


def test_every_bad_row_rule_is_reported_at_once_with_row_numbers(tmp_path):
    f = _csv(
        tmp_path / "bad.csv",
        [
            HEAD,
            f"S1,1,2025-01-13,6,{_odi(ODI16)}",  # row 2 good
            f"S2,1,2025-01-13,6,{_odi([6, *ODI16[1:]])}",  # row 3 odi_1 out of range
            f"S3,1,2025-01-13,six,{_odi(ODI16)}",  # row 4 non-numeric
            f"S4,1,2025-01-13,3,{_odi(ODI16)}",  # row 5 duplicate item ...
            f"S4,1,2025-01-13,4,{_odi(ODI16)}",  # row 6 ... with another answer
            f"S5,1,13/01/2025,3,{_odi(ODI16)}",  # row 7 unparseable date
            f",1,2025-01-13,3,{_odi(ODI16)}",  # row 8 no subject
            f"S6,1,2025-01-13,3,{_odi(ODI16)}",  # row 9 good
            f"S6,1,2025-01-13,3,{_odi(ODI16)}",  # row 10 identical copy: kept once
        ],
    )
    r = ingest_surveys([f], store=tmp_path / "st")
    q = r.rejected
    assert list(zip(q["row"], q["field"], strict=True)) == [
        (3, "odi_1"),
        (4, "pain_nrs"),
        (5, "pain_nrs"),
        (6, "pain_nrs"),
        (7, "date"),
        (8, "participant"),
    ]
    assert q.loc[q.row == 3, "reason"].item() == (
        "bad.csv: row 3, column odi_1: answer is outside 0 to 5 for odi (got '6'); "
        "correct the cell and ingest the file again"
    )
    assert "different values" in q.loc[q.row == 5, "reason"].item()
    assert set(q["stage"]) == {"survey"}
    st = Store(tmp_path / "st")
    assert st.table("quarantine")["row"].tolist() == [3, 4, 5, 6, 7, 8]
    s = st.table("scores")
    assert sorted(s["subject_id"].unique()) == sorted([pseudonymise("S1"), pseudonymise("S6")])
    assert len(st.table("surveys")) == 2 * 11  # two good subjects x 11 items


def test_unknown_subject_column_rejects_the_file_and_others_still_land(tmp_path):
    bad = _csv(tmp_path / "nosubj.csv", ["who,session,pain_nrs", "A,1,3"])
    good = _csv(tmp_path / "ok.csv", ["subject,session,pain_nrs", "A,1,3"])
    r = ingest_surveys([bad, good], store=tmp_path / "st")
    assert r.n_rejected == 1 and r.rows["scores"] == 1
    reason = r.rejected["reason"].item()
    assert reason.startswith("nosubj.csv: header: has no subject label column")
    assert "--subject-column" in reason
    r2 = ingest_surveys([bad], store=tmp_path / "st2", subject_column="who")
    assert r2.n_rejected == 0 and r2.rows["scores"] == 1


def _wide_long(tmp_path):
    wide = _csv(
        tmp_path / "wide.csv",
        [
            HEAD,
            f"S1,1,2025-01-13,6,{_odi(ODI16)}",
            f"S1,2,2025-03-10,2,{_odi([*ODI16[:9], None])}",
            f"S2,1,2025-01-14,,{_odi([1] * 8 + [None, None])}",
        ],
    )
    rows = ["subject_id,session,date,instrument,item,response"]
    rows += ["S1,1,2025-01-13,pain_nrs,,6"]
    rows += [f"S1,1,2025-01-13,odi,{i},{a}" for i, a in enumerate(ODI16, 1)]
    rows += ["S1,2,2025-03-10,PAIN_NRS,pain_nrs,2"]
    rows += [f"S1,2,2025-03-10,odi,odi_{i},{a}" for i, a in enumerate(ODI16[:9], 1)]
    rows += [f"S2,1,2025-01-14,odi,{i},1" for i in range(1, 9)]
    return wide, _csv(tmp_path / "long.csv", rows)


def test_wide_and_long_layouts_give_identical_tables(tmp_path):
    wide, long = _wide_long(tmp_path)
    rw = ingest_surveys([wide], store=tmp_path / "w")
    rl = ingest_surveys([long], store=tmp_path / "l")
    assert rw.n_rejected == rl.n_rejected == 0
    for t in ("surveys", "scores"):
        a, b = Store(tmp_path / "w").table(t), Store(tmp_path / "l").table(t)
        pd.testing.assert_frame_equal(a, b)
    s = Store(tmp_path / "w").table("scores")
    odi = s[s.instrument == "odi"].set_index(["subject_id", "session"])["score"]
    s1, s2 = pseudonymise("S1"), pseudonymise("S2")
    assert odi[(s1, "1")] == pytest.approx(32.0)
    assert odi[(s1, "2")] == pytest.approx(15 / 45 * 100)  # odi_10 (a 1) missing
    assert math.isnan(odi[(s2, "1")])  # two sections missing


def test_long_layout_withholds_a_questionnaire_that_lost_an_answer(tmp_path):
    rows = ["subject,session,date,instrument,item,response"]
    rows += [f"S1,1,2025-01-13,odi,{i},{a}" for i, a in enumerate(ODI16, 1)]
    rows[3] = "S1,1,2025-01-13,odi,3,9"  # row 4 out of range
    rows += ["S1,1,2025-01-13,pain_nrs,,4", "S1,1,2025-01-13,unknown_scale,1,4"]
    f = _csv(tmp_path / "long.csv", rows)
    r = ingest_surveys([f], store=tmp_path / "st")
    q = r.rejected
    assert q.loc[q.row == 4, "field"].item() == "response"
    assert q.loc[q.row == 13, "field"].item() == "instrument"
    withheld = q[q.reason.str.contains("withheld")]
    assert sorted(withheld["row"]) == [2, 3, *range(5, 12)]
    s = Store(tmp_path / "st").table("scores")
    assert s["instrument"].tolist() == ["pain_nrs"]  # no ODI from 9 of 10 valid answers


def test_xlsx_with_date_cells_reads_like_csv(tmp_path):
    wide, _ = _wide_long(tmp_path)
    df = pd.read_csv(wide, dtype=str)
    df["date"] = pd.to_datetime(df["date"])  # real Excel date cells
    for c in df.columns[3:]:
        df[c] = pd.to_numeric(df[c])  # numeric cells, NaN = blank
    xlsx = tmp_path / "wide.xlsx"
    df.to_excel(xlsx, index=False)
    ingest_surveys([wide], store=tmp_path / "c")
    r = ingest_surveys([xlsx], store=tmp_path / "x")
    assert r.n_rejected == 0
    for t in ("surveys", "scores"):
        pd.testing.assert_frame_equal(
            Store(tmp_path / "c").table(t), Store(tmp_path / "x").table(t)
        )


def test_reingest_replaces_rows_with_identical_bytes(tmp_path):
    wide, _ = _wide_long(tmp_path)
    st = Store(tmp_path / "st")
    ingest_surveys([wide], store=st)
    before = {p: p.read_bytes() for p in st.files("scores") + st.files("surveys")}
    ingest_surveys([wide], store=st)
    after = {p: p.read_bytes() for p in st.files("scores") + st.files("surveys")}
    assert before == after and len(before) == 2
    assert len(st.table("scores")) == 5


def test_fixed_file_replaces_quarantine_of_same_file_only_when_content_same(tmp_path):
    f = _csv(tmp_path / "a.csv", ["subject,session,pain_nrs", "A,1,12"])
    st = Store(tmp_path / "st")
    ingest_surveys([f], store=st)
    assert len(st.table("quarantine")) == 1
    ingest_surveys([f], store=st)
    assert len(st.table("quarantine")) == 1  # same file: same part, no duplicate


def test_cli_exits_3_when_rows_are_rejected_and_0_when_clean(tmp_path):
    bad = _csv(tmp_path / "bad.csv", ["subject,session,pain_nrs", "A,1,3", "B,1,11"])
    out = runner.invoke(app, ["ingest-survey", str(bad), "--store", str(tmp_path / "st")])
    assert out.exit_code == 3, out.output
    assert "bad.csv: row 3, column pain_nrs" in out.output
    good = _csv(tmp_path / "good.csv", ["subject,session,pain_nrs", "A,1,3"])
    out = runner.invoke(app, ["ingest-survey", str(good), "--store", str(tmp_path / "st2")])
    assert out.exit_code == 0, out.output
    assert "wrote 1 surveys, 1 scores rows; rejected 0" in out.output


def test_cli_unknown_instrument_option_is_one_line_error(tmp_path):
    f = _csv(tmp_path / "a.csv", ["subject,session,pain_nrs", "A,1,3"])
    out = runner.invoke(
        app, ["ingest-survey", str(f), "--store", str(tmp_path / "st"), "--instrument", "sf36"]
    )
    assert out.exit_code == 1
    assert "is not a valid instrument" in out.output and "Traceback" not in out.output


def test_invalid_date_format_is_a_config_error_naming_the_option(tmp_path):
    f = _csv(tmp_path / "a.csv", ["subject,session,date,pain_nrs", "A,1,02-01-2024,3"])
    out = runner.invoke(
        app, ["ingest-survey", str(f), "--store", str(tmp_path / "st"), "--date-format", "%d-%q"]
    )
    # a bad option is wrong for every file: exit 1, nothing quarantined, no traceback
    assert out.exit_code == 1, out.output
    assert not (tmp_path / "st" / "quarantine").exists()
    assert "--date-format" in out.output and "'%d-%q'" in out.output
    assert "%d/%m/%Y" in out.output and "Traceback" not in out.output
    from cxlab.io._sheet import parse_dates

    with pytest.raises(ConfigError, match=r"date_format.*'%d-%q'"):
        parse_dates(pd.Series(["02-01-2024"]), date_format="%d-%q")


def test_corrected_file_warns_that_its_rows_repeat_an_older_version(tmp_path):
    st = Store(tmp_path / "st")
    f = _csv(tmp_path / "a.csv", ["subject,session,pain_nrs", "A,1,3"])
    ingest_surveys([f], store=st)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ingest_surveys([f], store=st)  # same content: replaces its own part silently
    _csv(f, ["subject,session,pain_nrs", "A,1,4"])
    with pytest.warns(CxlabWarning, match="1 row.* repeat rows already stored"):
        ingest_surveys([f], store=st)
    assert sorted(st.table("scores")["score"]) == [3.0, 4.0]


def test_synthetic_cohort_ingests_cleanly_except_its_deliberate_bad_rows(tmp_path):
    """Cross-check with the synthetic cohort's own list of malformed rows (ground truth)."""
    from cxlab.ingest import ingest_interventions, ingest_strength
    from cxlab.synth import simulate_truth
    from cxlab.synth.tables import identities, interventions_table, strength_table, survey_table

    truth = simulate_truth(30, 3, seed=7)
    rng = np.random.default_rng(7)
    ids = identities(truth, rng)
    table, bad = survey_table(truth, ids, rng)
    table.to_csv(tmp_path / "surveys.csv", index=False)
    interventions_table(truth, ids, rng).to_csv(tmp_path / "interventions.csv", index=False)
    strength_table(truth, rng).to_csv(tmp_path / "strength.csv", index=False)
    st = Store(tmp_path / "st")
    r = ingest_surveys([tmp_path / "surveys.csv"], store=st)
    expected = [(b["row"], b["field"]) for b in bad]
    expected += [(b["duplicate_of"], b["field"]) for b in bad if "duplicate_of" in b]
    assert sorted(zip(r.rejected["row"], r.rejected["field"], strict=True)) == sorted(expected)
    assert ingest_interventions([tmp_path / "interventions.csv"], store=st).n_rejected == 0
    assert ingest_strength([tmp_path / "strength.csv"], store=st).n_rejected == 0
    assert set(st.table("interventions")["subject_id"]) == set(
        pseudonymise(x) for x in truth.subjects["label"]
    )
    stored = pd.concat([st.table(t).astype(str).stack() for t in st.tables()])
    leaked = set(stored) & set(ids[["label", "name", "email", "date_of_birth"]].stack())
    assert leaked == set()


def test_semicolon_csv_reads_like_comma_csv(tmp_path):
    wide, _ = _wide_long(tmp_path)
    semi = tmp_path / "semi.csv"
    semi.write_text(wide.read_text().replace(",", ";"))
    ingest_surveys([wide], store=tmp_path / "c")
    assert ingest_surveys([semi], store=tmp_path / "s").n_rejected == 0
    pd.testing.assert_frame_equal(
        Store(tmp_path / "c").table("scores"), Store(tmp_path / "s").table("scores")
    )


def test_instrument_option_reads_one_instrument_from_either_layout(tmp_path):
    wide, long = _wide_long(tmp_path)
    for f in (wide, long):
        st = tmp_path / f.stem
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = ingest_surveys([f], store=st, instrument="pain_nrs")
        assert r.n_rejected == 0
        s = Store(st).table("scores")
        assert s["instrument"].unique().tolist() == ["pain_nrs"] and len(s) == 2


def test_missing_file_stops_before_anything_is_written_and_copies_are_read_once(tmp_path):
    f = _csv(tmp_path / "a.csv", ["subject,session,pain_nrs", "A,1,3"])
    with pytest.raises(InputFormatError, match=r"nope\.csv: cannot be read"):
        ingest_surveys([f, tmp_path / "nope.csv"], store=tmp_path / "st")
    assert not (tmp_path / "st").exists()
    copy = tmp_path / "copy.csv"
    copy.write_bytes(f.read_bytes())
    with pytest.warns(CxlabWarning, match="same content"):
        r = ingest_surveys([f, copy], store=tmp_path / "st")
    assert r.n_rejected == 0 and r.rows == {"surveys": 1, "scores": 1}
    assert len(Store(tmp_path / "st").table("scores")) == 1


def test_xlsx_formula_without_a_saved_value_is_reported_not_read_as_blank(tmp_path):
    import openpyxl

    # openpyxl writes formulas but never their values: the ODI's last item is "=1+1" with
    # nothing cached, which used to read as a blank item (the ODI scored from 9 of 10)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEAD.split(","))
    ws.append(["S1", "1", "2025-01-13", 6, *ODI16])
    ws.append(["S2", "1", "2025-01-13", 6, *ODI16[:9], "=1+1"])
    wb.save(tmp_path / "odi.xlsx")
    r = ingest_surveys([tmp_path / "odi.xlsx"], store=tmp_path / "st")
    q = r.rejected
    assert list(zip(q["row"], q["field"], strict=True)) == [(3, "odi_10")]
    assert "=1+1" in q["reason"].item() and "formula" in q["reason"].item()
    s = Store(tmp_path / "st").table("scores")
    odi = s[s["instrument"] == "odi"]
    assert odi["subject_id"].tolist() == [pseudonymise("S1")]  # S2's ODI is not made up
    assert odi["score"].tolist() == [pytest.approx(32.0)]


@pytest.mark.parametrize(
    ("cell", "ok"),
    [
        ("2025-01-13", True),
        ("2025-01-13T09:30:00+01:00", True),
        ("2025-01-13 00:00:00", True),
        ("2025", False),
        ("2025-01", False),
        ("-999", False),
        ("0999-01-13", False),
        ("2025-13-01", False),
        ("13/01/2025", False),
    ],
)
def test_a_date_cell_is_a_whole_plausible_day_and_a_bad_one_rejects_only_its_row(
    tmp_path, cell, ok
):
    f = _csv(
        tmp_path / "d.csv",
        [HEAD, f"S1,1,{cell},6,{_odi(ODI16)}", f"S2,1,2025-01-20,5,{_odi(ODI16)}"],
    )
    r = ingest_surveys([f], store=tmp_path / "st")
    s = Store(tmp_path / "st").table("scores")
    assert pseudonymise("S2") in set(s["subject_id"])  # the good row always lands
    if ok:
        assert r.n_rejected == 0
        assert set(s.loc[s.subject_id == pseudonymise("S1"), "date"].astype(str)) == {"2025-01-13"}
    else:
        assert list(zip(r.rejected["row"], r.rejected["field"], strict=True)) == [(2, "date")]


def test_xlsx_date_cells_holding_minus_999_or_an_impossible_serial_reject_only_their_rows(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["participant", "session", "date", "pain_nrs"])
    for label, serial in (("S1", 45000), ("S2", -999), ("S3", 3e9)):
        ws.append([label, "1", serial, 5])
    for r in (2, 3, 4):
        ws.cell(r, 3).number_format = "yyyy-mm-dd"
    wb.save(tmp_path / "d.xlsx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning from the reader either
        r = ingest_surveys([tmp_path / "d.xlsx"], store=tmp_path / "st")
    assert list(zip(r.rejected["row"], r.rejected["field"], strict=True)) == [
        (3, "date"),
        (4, "date"),
    ]
    s = Store(tmp_path / "st").table("scores")
    assert s["subject_id"].tolist() == [pseudonymise("S1")]
    assert str(s["date"].iloc[0]) == "2023-03-15"
