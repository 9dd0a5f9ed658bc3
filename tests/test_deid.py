"""De-identification: identifiers never reach the store, quarantine or output; pseudonyms."""

from __future__ import annotations

import warnings

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cxlab._check import CxlabWarning
from cxlab.cli import app
from cxlab.deid import age_years, identifier_columns
from cxlab.ingest import ingest_interventions, ingest_strength, ingest_surveys
from cxlab.pseudo import pseudonymise
from cxlab.store import Store

runner = CliRunner()
SECRETS = [
    "Ann Example",
    "ann@example.org",
    "Bob Person",
    "bob.p@example.net",
    "1990-04-02",
    "1985-12-31",
    "02/04/1990",
    "+44 7700 900123",
    "12 Acacia Avenue",
    "SW1A 1AA",
    "knee gave way at work",
    "CX001",
    "CX002",
]


def _survey(path):
    odi = ",".join(["2", "2", "1", "2", "2", "1", "2", "2", "1", "1"])
    path.write_text(
        "\n".join(
            [
                "Participant,Name,E-mail,Date of Birth,Phone,Address,Post code,Notes,session,date,"
                "pain_nrs," + ",".join(f"odi_{i}" for i in range(1, 11)),
                f"CX001,Ann Example,ann@example.org,1990-04-02,+44 7700 900123,12 Acacia Avenue,"
                f"SW1A 1AA,knee gave way at work,1,2025-01-13,6,{odi}",
                f"CX001,Ann Example,ann@example.org,02/04/1990,,,,,2,2025-03-13,3,{odi}",  # bad DOB
                # bad NRS
                f"CX002,Bob Person,bob.p@example.net,1985-12-31,,,,,1,2025-01-14,12,{odi}",
                f"CX002,Bob Person,bob.p@example.net,1985-12-31,,,,,2,2025-03-14,2,{odi}",
            ]
        )
        + "\n"
    )
    return path


def _all_text(store: Store) -> str:
    """Every value and every byte of metadata in the store, as one searchable string."""
    chunks = []
    for f in sorted(store.path.rglob("*")):
        if f.is_file():
            chunks.append(f.read_bytes().decode("latin-1"))  # raw bytes, metadata
            if f.suffix == ".parquet":
                chunks.append(pq.read_table(f).to_pandas().to_csv())  # decompressed values
    return "\n".join(chunks)


def test_header_matching_is_case_insensitive_and_extensible():
    cols = [
        "Participant",
        "E-Mail",
        "FIRST NAME",
        "Date of Birth",
        "Comments",
        "pain_nrs",
        "Nickname",
    ]
    assert identifier_columns(cols) == ["E-Mail", "FIRST NAME", "Date of Birth", "Comments"]
    assert identifier_columns(cols, extra=["nickname"])[-1] == "Nickname"


def test_age_is_completed_years_at_the_session_date():
    dob = pd.to_datetime(pd.Series(["1990-04-02", "1990-04-02", "2000-02-29", "2000-02-29", None]))
    date = pd.to_datetime(
        pd.Series(["2025-04-01", "2025-04-02", "2025-02-28", "2025-03-01", "2025-01-01"])
    )
    got = age_years(dob, date)
    assert got.iloc[:4].tolist() == [34.0, 35.0, 24.0, 25.0]  # the day before/on birthdays
    assert pd.isna(got.iloc[4])


def test_identifiers_never_reach_store_quarantine_or_output(tmp_path):
    st = Store(tmp_path / "st")
    f = _survey(tmp_path / "survey.csv")
    out = runner.invoke(app, ["ingest-survey", str(f), "--store", str(st.path)])
    assert out.exit_code == 3, out.output
    q = st.table("quarantine")
    assert set(q["row"]) == {3, 4}
    assert q.loc[q.row == 3, "value"].item() == "<redacted>"
    text = _all_text(st) + out.output
    found = [s for s in SECRETS if s.lower() in text.lower()]
    assert found == []
    assert len(st.table("scores")) == 4  # CX001 s1; CX002 s2 (pain_nrs and odi each)
    ages = st.table("scores").set_index(["subject_id", "session"])["age_years"]
    assert ages[(pseudonymise("CX001"), "1")].iloc[0] == 34.0
    assert ages[(pseudonymise("CX002"), "2")].iloc[0] == 39.0


def test_the_scan_finds_an_identifier_when_one_is_written(tmp_path):
    """Positive control: the byte scan above is able to see a leaked value."""
    st = Store(tmp_path / "st")
    st.write(
        "strength",
        pd.DataFrame(
            {
                "subject_id": ["abcdefabcdef"],
                "session": ["1"],
                "muscle_group": ["Ann Example"],
                "side": ["left"],
                "peak_torque_nm": [1.0],
            }
        ),
    )
    assert "Ann Example" in _all_text(st)


def test_programme_and_strength_drop_identifiers(tmp_path):
    p = tmp_path / "prog.csv"
    p.write_text(
        "participant,name,email,arm,start_date,end_date,sessions_prescribed,"
        "sessions_attended,notes\n"
        "CX001,Ann Example,ann@example.org,core_stability,2025-01-20,2025-03-16,16,12,"
        "knee gave way at work\n"
        "CX002,Bob Person,bob.p@example.net,control,2025-01-20,2025-03-16,16,x,\n"
    )
    s = tmp_path / "str.csv"
    s.write_text(
        "participant,Surname,session,muscle_group,side,peak_torque_nm\n"
        "CX001,Example,1,knee_extensors,left,180\n"
        "CX002,Person,1,knee_extensors,left,-1\n"
    )
    st = Store(tmp_path / "st")
    assert ingest_interventions([p], store=st).n_rejected == 1
    assert ingest_strength([s], store=st).n_rejected == 1
    text = _all_text(st)
    assert [x for x in [*SECRETS, "Example", "Person"] if x.lower() in text.lower()] == []


def test_pseudonyms_are_stable_across_ingests_and_change_with_the_key(tmp_path, monkeypatch):
    f = _survey(tmp_path / "survey.csv")
    ingest_surveys([f], store=tmp_path / "a")
    ingest_surveys([f], store=tmp_path / "b")
    ids_a = set(Store(tmp_path / "a").table("scores")["subject_id"])
    ids_b = set(Store(tmp_path / "b").table("scores")["subject_id"])
    assert ids_a == ids_b == {pseudonymise("CX001"), pseudonymise("CX002")}
    monkeypatch.setenv("CXLAB_KEY", "another-key-0f9e8d7c6b5a49382716ffeeddccbbaa")
    ingest_surveys([f], store=tmp_path / "c")
    ids_c = set(Store(tmp_path / "c").table("scores")["subject_id"])
    assert len(ids_c) == 2 and not ids_c & ids_a


def test_lab_columns_can_be_declared_identifiers(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("subject,session,pain_nrs,nickname\nA,1,3,Bunny\n")
    with pytest.warns(CxlabWarning, match="nickname"):
        ingest_surveys([f], store=tmp_path / "a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ingest_surveys([f], store=tmp_path / "b", drop_columns=["Nickname"])
        spec = tmp_path / "lab.toml"
        spec.write_text('drop_columns = ["nickname"]\n')
        ingest_surveys([f], store=tmp_path / "c", spec=spec)


def test_a_file_without_header_row_does_not_echo_its_first_row(tmp_path):
    """Without a header row the 'headers' are a subject's data; errors must not show them."""
    st = Store(tmp_path / "st")
    f = tmp_path / "noheader.csv"
    f.write_text(
        "CX001,Ann Example,ann@example.org,1990-04-02,1,2025-01-13,6\n"
        "CX002,Bob Person,bob.p@example.net,1985-12-31,1,2025-01-14,4\n"
    )
    g = tmp_path / "noheader_strength.csv"
    g.write_text("CX001,Ann Example,1,knee_flexors,left,90\n")
    outs = [
        runner.invoke(app, ["ingest-survey", str(f), "--store", str(st.path)]),
        runner.invoke(app, ["ingest-strength", str(g), "--store", str(st.path)]),
        runner.invoke(app, ["ingest-interventions", str(g), "--store", str(st.path)]),
    ]
    assert [o.exit_code for o in outs] == [3, 3, 3]
    assert "has no subject label column" in outs[0].output
    text = _all_text(st) + "".join(o.output for o in outs)
    assert [s for s in SECRETS if s.lower() in text.lower()] == []


@pytest.mark.parametrize(
    ("value", "identifying"),
    [
        ("John Smith", True),
        ("john.smith@uni.ac.uk", True),
        ("+44 7700 900123", True),
        ("07700 900123", True),
        ("07700900123", True),
        ("(020) 7946 0958", True),
        ("follow up session with the physio", True),
        ("2024-03-01", False),
        ("01/02/2024", False),
        ("12.5", False),
        ("-999", False),
        ("3e9", False),
        ("1,5", False),
        ("n/a", False),
        ("S01", False),
        ("abc", False),
        ("1234567", False),
        ("", False),
    ],
)
def test_identifier_like_values_are_recognised(value, identifying):
    from cxlab.deid import REDACTED, looks_identifying, redact_value

    assert looks_identifying(value) is identifying
    assert redact_value(value) == (REDACTED if identifying else value)


def test_messages_keep_their_words_but_lose_emails_and_phones():
    from cxlab.deid import redact_text

    msg = "row 3, column date: is not a date (got 'ann@example.org', call +44 7700 900123)"
    assert redact_text(msg) == (
        "row 3, column date: is not a date (got '<redacted>', call <redacted>)"
    )
    assert redact_text("POINT:RATE 1000 Hz, 2024-03-01") == "POINT:RATE 1000 Hz, 2024-03-01"


@pytest.mark.parametrize(
    ("label", "kept"),
    [
        ("Foot Strike", "Foot Strike"),
        ("Foot Off", "Foot Off"),
        ("Left Foot Off 2", "Left Foot Off 2"),
        ("General", "General"),
        ("Event", "Event"),
        ("take off", "take off"),
        ("LHS", "LHS"),
        ("John Smith arrives", "Event"),
        ("operator: J. Smith", "Event"),
        ("Smith", "Event"),
        ("ann@example.org", "Event"),
        ("", "Event"),
    ],
)
def test_event_labels_outside_the_vocabulary_are_masked(label, kept):
    from cxlab.deid import event_label

    assert event_label(label) == kept


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Vicon Nexus 2.12 operator John Smith", "Vicon Nexus 2.12"),
        (
            "Qualisys Track Manager 2019.3 (build 5314) - Lab of Dr Jones",
            "Qualisys Track Manager 2019.3 5314",
        ),
        ("THEIA3D", "THEIA3D"),
        ("Motive", "Motive"),
        ("Visual3D v6.01.36", "Visual3D v6.01.36"),
        ("John Smith", ""),
    ],
)
def test_vendor_text_keeps_names_and_versions_only(text, kept):
    from cxlab.deid import vendor_text

    assert vendor_text(text) == kept


@pytest.mark.parametrize(
    ("name", "hashed"),
    [
        ("surveys.csv", False),
        ("odi_week6.csv", False),
        ("dyn.csv", False),
        ("Survey_Baseline.xlsx", False),
        ("Smith_John_intake.csv", True),
        ("JOHN_SMITH.csv", True),
        ("SmithJ.xlsx", True),
        ("ann@example.org.csv", True),
    ],
)
def test_sheet_file_names_with_a_name_are_stored_as_a_keyed_hash(name, hashed):
    from cxlab.deid import stored_file_name

    got = stored_file_name(f"/home/lab/Smith_J/{name}", token=pseudonymise)
    assert got == (pseudonymise("file:" + name) + name[name.rfind(".") :] if hashed else name)
    assert stored_file_name(name, token=pseudonymise) == got  # typed relative: the same


def test_sheet_quarantine_masks_the_typed_path_and_redacts_values(tmp_path, monkeypatch):
    folder = tmp_path / "Smith_John"
    folder.mkdir()
    f = folder / "Smith_John_intake.csv"
    f.write_text(
        "participant,session,date,pain_nrs\n"
        "CX001,1,john.smith@example.org,3\n"  # an e-mail typed in a date column
        "CX001,2,John Smith,4\n"  # a name typed in a date column
        "CX002,1,2025-01-13,5\n"
    )
    parts = []
    for typed in (str(f), "Smith_John/Smith_John_intake.csv"):
        monkeypatch.chdir(tmp_path)
        st = Store(tmp_path / f"st{len(parts)}")
        out = runner.invoke(app, ["ingest-survey", typed, "--store", str(st.path)])
        assert out.exit_code == 3, out.output
        q = st.table("quarantine")
        assert set(q["row"]) == {2, 3}
        assert set(q["source_path"]) == {pseudonymise("file:Smith_John_intake.csv") + ".csv"}
        assert set(q["value"]) == {"<redacted>"}
        text = _all_text(st) + out.output
        for secret in ("Smith", "John", "example.org", str(tmp_path)):
            assert secret.lower() not in text.lower(), secret
        assert len(st.table("scores")) == 1
        parts.append({p.name: p.read_bytes() for p in (st.path / "quarantine").rglob("*.parquet")})
    assert parts[0] == parts[1]  # relative or absolute: byte-identical quarantine
