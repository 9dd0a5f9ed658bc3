"""Participants sheet: identifiers dropped, codes normalised, age from birth date, rejects kept.

Age is checked by hand (the calendar rule: 1990-05-02 is 34 on 2025-05-01 and 35 on
2025-05-02); every quarantine row is checked for file, column, value and fix.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from typer.testing import CliRunner

from cxlab.cli import app
from cxlab.ingest import ingest_participants, ingest_sessions
from cxlab.pseudo import pseudonymise
from cxlab.store import Store

SHEET = """participant,Name,E-mail,date of birth,sex,sport,height_cm,mass_kg,dominant leg
P01,Ann Smith,ann@example.org,1990-05-02,F,Football,170,61.5,R
P02,Bob Jones,bob@example.org,1990-05-02,male,Basket  Ball,182,80,left
P03,Cy Young,cy@example.org,,robot,football,17000,70,up
"""


def _ingest(tmp_path, text=SHEET, *, sessions=True):
    st = Store(tmp_path / "store")
    if sessions:
        (tmp_path / "ses.csv").write_text(
            "subject,session,date\nP01,1,2025-05-01\nP01,2,2025-06-01\nP02,1,2025-05-02\n"
        )
        ingest_sessions([tmp_path / "ses.csv"], store=st)
    (tmp_path / "p.csv").write_text(text)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = ingest_participants([tmp_path / "p.csv"], store=st)
    return st, r, [str(w.message) for w in rec]


def test_birth_date_becomes_age_at_the_first_dated_session_and_is_never_stored(tmp_path):
    st, _r, _ = _ingest(tmp_path)
    p = st.table("participants").set_index("subject_id")
    assert p.loc[pseudonymise("P01"), "age_years"] == 34  # the day before the birthday
    assert p.loc[pseudonymise("P02"), "age_years"] == 35  # on the birthday
    dump = p.to_string() + st.table("quarantine").to_string()
    for secret in ("1990", "Ann", "Smith", "ann@example.org", "P01", "Bob"):
        assert secret not in dump
    assert "dob" not in p.columns and "date_of_birth" not in p.columns


def test_codes_are_normalised_and_units_converted(tmp_path):
    st, _, _ = _ingest(tmp_path)
    p = st.table("participants").set_index("subject_id")
    a, b = p.loc[pseudonymise("P01")], p.loc[pseudonymise("P02")]
    assert (a["sex"], a["sport"], a["dominant_side"]) == ("female", "football", "right")
    assert (b["sex"], b["sport"], b["dominant_side"]) == ("male", "basket ball", "left")
    assert a["height_m"] == pytest.approx(1.70) and a["mass_kg"] == 61.5


def test_bad_cells_reject_their_row_with_file_column_value_and_fix(tmp_path):
    st, r, _ = _ingest(tmp_path)
    assert r.rows == {"participants": 2}
    q = st.table("quarantine")
    assert set(q["stage"]) == {"participants"} and set(q["row"]) == {4}
    reasons = "\n".join(q["reason"])
    assert "p.csv: row 4, column sex: is not one of female, male, other (got 'robot')" in reasons
    assert "column height_cm: is above 260 (got '17000')" in reasons
    assert "column dominant leg: is not one of left, right (got 'up')" in reasons
    assert all("correct the cell and ingest the file again" in x for x in q["reason"])


def test_without_a_dated_session_the_birth_date_is_dropped_with_a_warning(tmp_path):
    st, r, warns = _ingest(tmp_path, sessions=False)
    p = st.table("participants")
    assert p["age_years"].isna().all() and r.rows == {"participants": 2}
    assert any("birth date(s) dropped" in w and "sessions sheet" in w for w in warns)


def test_a_subject_given_twice_with_different_values_rejects_both_copies(tmp_path):
    text = "subject,sex,mass_kg\nP01,f,60\nP01,f,\nP02,m,70\nP02,m,70\n"
    st, _r, _ = _ingest(tmp_path, text, sessions=False)
    p = st.table("participants")
    assert p["subject_id"].tolist() == [pseudonymise("P02")]  # identical copies kept once
    q = st.table("quarantine")
    assert sorted(q["row"]) == [2, 3] and q["reason"].str.contains("given twice").all()


def test_a_sheet_with_only_a_subject_column_is_refused_naming_the_columns(tmp_path):
    (tmp_path / "p.csv").write_text("subject,Name\nP01,Ann\n")
    r = ingest_participants([tmp_path / "p.csv"], store=Store(tmp_path / "s"))
    (reason,) = r.rejected["reason"]
    assert "has no participant column" in reason and "height_m" in reason


def test_cli_ingest_participants_exits_3_on_rejects_and_lists_them(tmp_path):
    (tmp_path / "p.csv").write_text(SHEET)
    out = CliRunner().invoke(
        app, ["ingest-participants", str(tmp_path / "p.csv"), "--store", str(tmp_path / "s")]
    )
    assert out.exit_code == 3, out.output
    assert "wrote 2 participants rows; rejected 3" in out.output
    assert isinstance(Store(tmp_path / "s").table("participants"), pd.DataFrame)


def test_a_corrected_copy_of_the_sheet_warns_that_rows_repeat(tmp_path):
    st, _, _ = _ingest(tmp_path, "subject,sex\nP01,f\n", sessions=False)
    (tmp_path / "p2.csv").write_text("subject,sex\nP01,m\n")
    with pytest.warns(UserWarning, match="repeat rows already stored from another file"):
        ingest_participants([tmp_path / "p2.csv"], store=st)
