"""Strength: dynamometer-sheet ingest (unit conversion to N·m, side/muscle-group rules,
duplicates) and strength features (hand-worked ratios and LSI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cxlab.cli import app
from cxlab.features.strength import strength_features
from cxlab.ingest import ingest_strength
from cxlab.io.strength import FTLBF_TO_NM, torque_unit_factor
from cxlab.pseudo import pseudonymise
from cxlab.store import Store


def test_strength_ratios_and_lsi_hand_worked():
    rows = [
        ("abcdefabcdef", "1", g, s, v)
        for g, s, v in [
            ("knee_flexors", "left", 60.0),
            ("knee_flexors", "right", 80.0),
            ("knee_extensors", "left", 120.0),
            ("knee_extensors", "right", 160.0),
            ("shoulder_er", "left", 20.0),
            ("shoulder_ir", "left", 30.0),
            ("shoulder_er", "right", np.nan),
            ("shoulder_ir", "right", 28.0),
        ]
    ]
    df = pd.DataFrame(
        rows, columns=["subject_id", "session", "muscle_group", "side", "peak_torque_nm"]
    )
    f = strength_features(df).set_index(["feature", "side"])["value"]
    assert f[("strength_hq_ratio", "left")] == pytest.approx(0.5)
    assert f[("strength_hq_ratio", "right")] == pytest.approx(0.5)
    assert f[("strength_er_ir_ratio", "left")] == pytest.approx(20 / 30)
    assert ("strength_er_ir_ratio", "right") not in f.index  # missing ER torque: no row
    assert f[("strength_knee_flexors_lsi_pct", "bilateral")] == pytest.approx(75.0)
    assert f[("strength_knee_extensors_lsi_pct", "bilateral")] == pytest.approx(75.0)
    assert ("strength_shoulder_er_lsi_pct", "bilateral") not in f.index
    assert f[("strength_shoulder_ir_lsi_pct", "bilateral")] == pytest.approx(100 * 28 / 30)


# -- ingest of dynamometer sheets --------------------------------------------
runner = CliRunner()
NIST_FTLBF_TO_NM = 1.355818  # NIST SP 811 (2008), appendix B.9: foot pound-force -> N·m


def _csv(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ftlbf_factor_matches_nist():
    assert FTLBF_TO_NM == pytest.approx(NIST_FTLBF_TO_NM, abs=5e-7)
    f = torque_unit_factor(pd.Series(["N.m", "N·m", "Nm", "ft·lbf", "ft-lb", "FT LBF", "kg"]))
    assert f.iloc[:3].tolist() == [1.0, 1.0, 1.0]
    assert f.iloc[3:6].tolist() == pytest.approx([NIST_FTLBF_TO_NM] * 3, abs=5e-7)
    assert pd.isna(f.iloc[6])


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("peak_torque_nm", "150", 150.0),
        ("Peak torque (N·m)", "150", 150.0),
        ("peak_torque_ftlbf", "100", 135.5818),
        ("Peak Torque [ft-lbf]", "100", 135.5818),
    ],
)
def test_unit_in_header_is_converted_to_newton_metres(tmp_path, header, value, expected):
    f = _csv(
        tmp_path / "s.csv",
        [f"subject,session,muscle_group,side,{header}", f"A,1,Knee Extensors,L,{value}"],
    )
    r = ingest_strength([f], store=tmp_path / "st")
    assert r.n_rejected == 0
    row = Store(tmp_path / "st").table("strength").iloc[0]
    assert row["peak_torque_nm"] == pytest.approx(expected, abs=1e-4)
    assert (row["muscle_group"], row["side"]) == ("knee_extensors", "left")
    assert row["subject_id"] == pseudonymise("A")


def test_every_bad_row_is_quarantined_with_its_row_number(tmp_path):
    f = _csv(
        tmp_path / "dyn.csv",
        [
            "participant,session,muscle_group,side,peak_torque,unit",
            "CX001,1,knee_extensors,left,182.4,N.m",  # 2 good
            "CX001,1,knee_extensors,R,100,ft.lbf",  # 3 good, 135.58 N·m
            "CX001,1,knee_flexors,up,100,N.m",  # 4 bad side
            "CX002,1,knee_flexors,left,-3,Nm",  # 5 negative
            "CX002,1,knee_flexors,right,50,kg",  # 6 bad unit
            "CX002,1,hip_abductors,left,abc,N.m",  # 7 non-numeric
            "CX002,,hip_abductors,right,80,N.m",  # 8 no session
            "CX003,1,hip_abductors,left,80,N.m",  # 9 conflicting ...
            "CX003,1,hip_abductors,left,85,N.m",  # 10 ... duplicate
            "CX003,1,hip_abductors,right,80,N.m",  # 11 good
            "CX003,1,hip_abductors,right,80,N.m",  # 12 identical copy, kept once
            "CX003,1,,right,80,N.m",  # 13 no muscle group
            "CX003,1,knee_flexors,right,,N.m",  # 14 no torque
        ],
    )
    r = ingest_strength([f], store=tmp_path / "st")
    got = list(zip(r.rejected["row"], r.rejected["field"], strict=True))
    assert got == [
        (4, "side"),
        (5, "peak_torque"),
        (6, "unit"),
        (7, "peak_torque"),
        (8, "session"),
        (9, None),
        (10, None),
        (13, "muscle_group"),
        (14, "peak_torque"),
    ]
    s = Store(tmp_path / "st").table("strength")
    assert s["peak_torque_nm"].round(2).tolist() == [182.4, 135.58, 80.0]


def test_header_without_unit_and_no_unit_column_rejects_the_file(tmp_path):
    f = _csv(
        tmp_path / "dyn.csv",
        ["subject,session,muscle_group,side,peak_torque", "A,1,knee_flexors,left,90"],
    )
    out = runner.invoke(app, ["ingest-strength", str(f), "--store", str(tmp_path / "st")])
    assert out.exit_code == 3
    assert "dyn.csv: peak_torque: gives no torque unit" in out.output
    assert Store(tmp_path / "st").table("strength").empty


def test_cli_clean_file_exits_0(tmp_path):
    f = _csv(
        tmp_path / "dyn.csv",
        [
            "subject,session,muscle_group,side,peak_torque_nm",
            "A,1,knee_flexors,left,90",
            "A,1,knee_flexors,right,95",
        ],
    )
    out = runner.invoke(app, ["ingest-strength", str(f), "--store", str(tmp_path / "st")])
    assert out.exit_code == 0, out.output
    assert "wrote 2 strength rows; rejected 0" in out.output


def test_an_absurd_torque_is_a_rejected_row_naming_the_plausible_range(tmp_path):
    from cxlab.ingest import ingest_strength

    f = _csv(
        tmp_path / "dyn.csv",
        [
            "subject,session,muscle_group,side,peak_torque_nm",
            "S1,1,knee_flexors,left,120",
            "S1,1,knee_flexors,right,1e30",
            "S1,1,knee_extensors,left,inf",
        ],
    )
    r = ingest_strength([f], store=tmp_path / "st")
    assert list(zip(r.rejected["row"], r.rejected["field"], strict=True)) == [
        (3, "peak_torque_nm"),
        (4, "peak_torque_nm"),
    ]
    assert "plausible maximum 1000 N.m" in r.rejected.iloc[0]["reason"]
    assert r.rows == {"strength": 1}
