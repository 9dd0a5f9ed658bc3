"""Vendor force-plate exports: VALD ForceDecks (fixtures written here in the exact layouts of
issue 12, from a simulated jump of known height) and Kistler BioWare (real files, checked
against their C3D twin read with ezc3d and against the trial's own physics)."""

from __future__ import annotations

import warnings

import ezc3d
import numpy as np
import pytest

from cxlab._check import CxlabWarning, InputFormatError
from cxlab.features.jump import cmj_metrics
from cxlab.io import format_of, read
from cxlab.io.vendor import read_bioware, read_forcedecks

G = 9.80665
RATE = 1000.0


# -- a countermovement jump with a known take-off velocity ----------------------------------
def simulated_cmj(mass_kg=80.0, v_to=2.6, seed=3):
    """Vertical force (N) of a CMJ built from a prescribed CoM acceleration, 1000 Hz.

    1.5 s quiet standing; unweighting a = -5 sin(pi t / 0.3) m/s^2 for 0.3 s; braking and
    propulsion a = c sin(pi t / 0.4) for 0.4 s with c chosen so that v(take-off) = v_to;
    flight of 2 v_to / g; landing a = c3 sin(pi t / 0.3) that stops the body; 1.5 s standing.
    Ground truth: jump height v_to^2 / (2 g) (impulse-momentum, Linthorne 2001).
    """

    def seg(duration):
        return np.arange(round(duration * RATE)) / RATE

    c1 = 5.0
    c2 = (v_to + c1 * 0.6 / np.pi) * np.pi / 0.8
    c3 = v_to * np.pi / 0.6
    acc = np.concatenate(
        [
            np.zeros(round(1.5 * RATE)),
            -c1 * np.sin(np.pi * seg(0.3) / 0.3),
            c2 * np.sin(np.pi * seg(0.4) / 0.4),
            np.full(round(2 * v_to / G * RATE), -G),  # flight: F = 0
            c3 * np.sin(np.pi * seg(0.3) / 0.3),
            np.zeros(round(1.5 * RATE)),
        ]
    )
    force = mass_kg * (G + acc)
    force += np.random.default_rng(seed).normal(0.0, 1.5, force.size)
    return force, v_to**2 / (2 * G)


def _fmt(x, decimal):
    text = f"{x:.3f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))
    return f'"{text.replace(".", ",")}"' if decimal == "," else text


def write_forcedecks(
    path,
    force,
    *,
    variant="v1",
    mass_kg=80.0,
    athlete="466bf686-2f86-4120-8f95-524aa3726e19",
    left_share=0.48,
):
    """A ForceDecks raw data export in the exact layout of issue 12 (CRLF, comma)."""
    left, right = force * left_share, force * (1 - left_share)
    t = np.arange(force.size) / RATE
    dec = "," if variant == "ios" else "."
    version = {"v1": "1", "v2": "2", "ios": "1.0"}[variant]
    lines = [
        f"ForceDecks Raw Data Export,{version},",
        f"Weight (Kg),{mass_kg}," if variant != "ios" else f"Weight,{_fmt(mass_kg, dec)}",
        "Frequency,1000,",
        "Recording Date,2019-12-03T16:51:09,",
        'Data Source,"FD4000 (LabJack);FDLITE,360018400,2.000,1.450",',
        "Analysis Date,2019-12-03T16:51:33,",
        f"AthleteId,{athlete},",
    ]
    lines.append("Z Tare,-18602.7," if variant == "v2" else "Tare,-0.818064432,-1.535735063")
    if variant == "ios":
        lines += [",,,,,,,,", "Time,Left,Right,,Acceleration,Velocity,Height,Power,Impulse"]
        body = [
            ",".join(
                [
                    _fmt(a, dec),
                    _fmt(b, dec),
                    _fmt(c, dec),
                    "",
                    _fmt(9.1, dec),
                    _fmt(0.5, dec),
                    _fmt(0.1, dec),
                    _fmt(1000.0, dec),
                    _fmt(2.0, dec),
                ]
            )
            for a, b, c in zip(t, np.round(left, 1), np.round(right, 1), strict=True)
        ]
    else:
        lines += [",,", "Time,Left,Right"]
        body = [f"{_fmt(a, dec)},{b:.1f},{c:.1f}" for a, b, c in zip(t, left, right, strict=True)]
    path.write_bytes(("\r\n".join(lines + body) + "\r\n").encode())
    return np.round(left, 1), np.round(right, 1)


@pytest.mark.parametrize("variant", ["v1", "v2", "ios"])
def test_forcedecks_exports_read_by_content_with_metadata(tmp_path, variant):
    force, _ = simulated_cmj()
    path = tmp_path / f"cmj_{variant}.csv"
    left, right = write_forcedecks(path, force, variant=variant)
    assert format_of(path) == "forcedecks"
    rec = read(path)
    assert rec.meta["format"] == "forcedecks" and rec.analog_rate_hz == 1000.0
    assert len(rec.platforms) == 2 and rec.meta["plate_sides"] == ["left", "right"]
    np.testing.assert_allclose(rec.platforms[0].force[:, 2], left, atol=1e-9)
    np.testing.assert_allclose(rec.platforms[1].force[:, 2], right, atol=1e-9)
    for p in rec.platforms:  # what the export does not carry is NaN, never 0
        assert np.isnan(p.force[:, :2]).all() and np.isnan(p.cop).all() and np.isnan(p.tz).all()
    assert rec.meta["body_mass_kg"] == 80.0
    assert rec.meta["recorded_at"] == "2019-12-03T16:51:09"
    assert rec.meta["analysed_at"] == "2019-12-03T16:51:33"
    assert rec.meta["subject_label"] == "466bf686-2f86-4120-8f95-524aa3726e19"
    assert rec.meta["tare"] == (
        {"z": -18602.7} if variant == "v2" else {"left": -0.818064432, "right": -1.535735063}
    )
    assert rec.meta["manufacturer"] == "VALD"
    tables = rec.to_tables("0123456789abcdef")
    assert len(tables["forces"]) == 2 * force.size


def test_ios_weight_with_a_decimal_comma(tmp_path):
    force, _ = simulated_cmj(mass_kg=88.77)
    path = tmp_path / "ios.csv"
    write_forcedecks(path, force, variant="ios", mass_kg=88.77)
    assert 'Weight,"88,77"' in path.read_text()
    assert read(path).meta["body_mass_kg"] == pytest.approx(88.77)


def test_cmj_metrics_from_a_forcedecks_export_recover_the_simulated_height(tmp_path):
    force, height = simulated_cmj()
    path = tmp_path / "cmj.csv"
    write_forcedecks(path, force)
    rec = read(path)
    fl, fr = (p.force[:, 2] for p in rec.platforms)
    m = cmj_metrics(
        fl + fr,
        rate_hz=rec.analog_rate_hz,
        fz_left=fl,
        fz_right=fr,
        body_mass_kg=rec.meta["body_mass_kg"],
    )
    assert height == pytest.approx(0.3447, abs=1e-4)
    assert m["jump_height_impulse_m"] == pytest.approx(height, abs=0.005)
    assert m["jump_height_flight_m"] == pytest.approx(height, abs=0.005)
    assert m["propulsive_impulse_lsi_pct"] == pytest.approx(100 * 48 / 52, abs=0.5)


def test_forcedecks_without_left_right_is_refused_by_name(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "ForceDecks Raw Data Export,1,\r\nFrequency,1000,\r\n,,\r\nTime,Total\r\n0,1\r\n"
    )
    with pytest.raises(InputFormatError, match=r"bad.csv: line 4: has no 'Left' column"):
        read(path)


def test_forcedecks_absurd_force_and_swapped_rows(tmp_path):
    force, _ = simulated_cmj()
    path = tmp_path / "fd.csv"
    write_forcedecks(path, force)
    lines = path.read_bytes().split(b"\r\n")
    bad = list(lines)
    bad[110] = b"0.1,1e308,300.0"
    path.write_bytes(b"\r\n".join(bad))
    with pytest.raises(
        InputFormatError,
        match=r"fd.csv: Left: line 111: is not a finite "
        r"measurement \(got 1e\+308\)",
    ):
        read(path)
    bad[110] = b"0.1,250000,300.0"  # finite, but no person loads a plate with 25 t
    path.write_bytes(b"\r\n".join(bad))
    with pytest.raises(InputFormatError, match=r"fd.csv: Left: line 111: 250000 N is beyond"):
        read(path)
    swapped = list(lines)
    swapped[110], swapped[111] = swapped[111], swapped[110]
    path.write_bytes(b"\r\n".join(swapped))
    with pytest.warns(
        CxlabWarning,
        match=r"Time: line 112: time 0.1 s comes after 0.101 s; .*"
        r"sorted by time",
    ):
        rec = read(path)
    path.write_bytes(b"\r\n".join(lines))
    np.testing.assert_array_equal(rec.platforms[0].force, read(path).platforms[0].force)


# -- Kistler BioWare --------------------------------------------------------------------------
def test_bioware_cmj_has_the_trials_own_physics(real_dir):
    path = real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt"
    assert format_of(path) == "bioware"
    rec = read(path)
    assert rec.meta["format"] == "bioware" and rec.analog_rate_hz == 1000.0
    assert rec.meta["recorded_at"] == "2014-10-22T12:05:31"
    fz = rec.platforms[0].force[:, 2]
    assert fz.shape == (8000,)
    # quiet stance: the body weight BioWare normalises by (665.8 N), Fz positive up
    assert fz[:1000].mean() == pytest.approx(665.83197, rel=0.005)
    assert rec.meta["normalized_force_n"] == pytest.approx(665.83197)
    flight = np.flatnonzero(fz < 20)
    assert 400 < flight.size < 550  # ~0.47 s in the air
    assert abs(np.median(fz[flight])) < 2.0
    m = cmj_metrics(fz, rate_hz=rec.analog_rate_hz)
    assert 0.15 < m["jump_height_impulse_m"] < 0.45
    # two independent estimates of the same jump agree
    assert m["jump_height_impulse_m"] == pytest.approx(m["jump_height_flight_m"], abs=0.01)
    assert m["body_mass_kg"] == pytest.approx(665.83197 / G, rel=0.01)


def test_bioware_text_equals_its_c3d_twin_read_with_ezc3d(real_dir):
    rec = read(real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt")
    c = ezc3d.c3d(str(real_dir / "c3d/biomdp_kistler_CMJ_1plate.c3d"))
    labels = c["parameters"]["ANALOG"]["LABELS"]["value"]
    assert labels == ["Fx12", "Fx34", "Fy14", "Fy23", "Fz1", "Fz2", "Fz3", "Fz4"]
    assert c["parameters"]["FORCE_PLATFORM"]["TYPE"]["value"][0] == 3
    raw = c["data"]["analogs"][0]  # (8, n) in N: ezc3d applies ANALOG:SCALE and OFFSET
    # Documented calibration of a Kistler TYPE-3 plate (Kistler 9287 manual; c3d.org TYPE-3):
    # the eight channels are the action on the plate in the plate frame, z down; the sum of the
    # four vertical channels is the vertical force. No ZERO offset is subtracted (BioWare's
    # ZERO = 1,10 lies in quiet standing, see issue 12), so none is subtracted here either.
    fx, fy, fz = raw[0] + raw[1], raw[2] + raw[3], raw[4:8].sum(axis=0)
    p = rec.platforms[0]
    assert p.force.shape[0] == raw.shape[1]
    np.testing.assert_allclose(p.force[:, 2], fz, atol=1.0)  # within 1 N, issue 12
    # reaction on the body in a right-handed z-up frame: x = x_plate, y = -y_plate
    np.testing.assert_allclose(p.force[:, 0], -fx, atol=1.0)
    np.testing.assert_allclose(p.force[:, 1], fy, atol=1.0)
    # the same jump from both sources: heights from the text and from ezc3d's channel sum
    # agree within 1 mm (measured 0.04 mm by impulse, equal by flight time)
    ours = cmj_metrics(p.force[:, 2], rate_hz=rec.analog_rate_hz)
    twin = cmj_metrics(fz, rate_hz=float(c["parameters"]["ANALOG"]["RATE"]["value"][0]))
    for h in ("jump_height_impulse_m", "jump_height_flight_m"):
        assert ours[h] == pytest.approx(twin[h], abs=1e-3), h


def test_bioware_cop_only_export_is_a_balance_recording_without_force(real_dir):
    path = real_dir / "forceplate/biomdp_kistler_COP.txt"
    rec = read(path)
    rows = [line.split("\t") for line in path.read_text().splitlines()[19:] if line.strip()]
    ref = np.array(rows, dtype=float)
    p = rec.platforms[0]
    assert rec.meta["cop_only"] is True and rec.analog_rate_hz == 50.0
    assert np.isnan(p.force).all()  # not measured: NaN, never 0
    np.testing.assert_allclose(p.cop[:, 0], ref[:, 1])
    np.testing.assert_allclose(p.cop[:, 1], -ref[:, 2])  # y = -y_plate (right-handed, z up)
    assert (p.cop[:, 2] == 0).all()
    assert len(rec.to_tables("0123456789abcdef")["forces"]) == len(ref)


def test_bioware_cop_only_gives_balance_features_not_a_zero_force(real_dir):
    from cxlab.features import balance
    from cxlab.features.runner import read_config
    from cxlab.features.tasks import Trial, balance_sway

    rec = read(real_dir / "forceplate/biomdp_kistler_COP.txt")
    p = rec.platforms[0]
    trial = Trial(
        task="balance_left",
        analog_rate_hz=rec.analog_rate_hz,
        plates={1: {"fz": p.force[:, 2], "cop_x": p.cop[:, 0], "cop_y": p.cop[:, 1]}},
    )
    cfg = read_config({"filters": {"cop_cutoff_hz": 0}})
    rows = {m.feature: m.value for m in balance_sway(trial, cfg)}
    ref = balance.cop_metrics(p.cop[:, :2], rate_hz=50.0)
    assert rows["balance_path_length_m"] == pytest.approx(ref["path_length_m"])
    # the path of the exported CoP, summed by hand
    steps = np.diff(p.cop[:, :2], axis=0)
    assert rows["balance_path_length_m"] == pytest.approx(np.hypot(*steps.T).sum())


def test_bioware_header_identifiers_are_exposed_only_as_a_subject_label(real_dir, tmp_path):
    lines = (real_dir / "forceplate/biomdp_kistler_COP.txt").read_text().splitlines()
    assert lines[13] == "Name\t" and lines[14] == "ID\t"
    lines[13], lines[14] = "Name\tJohn Smith", "ID\tS-017"
    path = tmp_path / "named.txt"
    path.write_text("\n".join(lines) + "\n")
    rec = read(path)
    assert rec.meta["subject_label"] == "S-017"
    assert "John Smith" not in repr(rec.meta)


def test_bioware_repeated_names_are_plates_by_position(real_dir, tmp_path):
    src = (real_dir / "forceplate/biomdp_kistler_CMJ_1plate.txt").read_text().splitlines()
    head, cols, units, body = src[:17], src[17], src[18], src[19:1019]
    two = [head[0], *head[1:17]]
    rows = [f"{r}\t{chr(9).join(str(2 * float(x)) for x in r.split(chr(9))[1:])}" for r in body]
    path = tmp_path / "two.txt"
    path.write_text("\n".join([*two, cols + "\tFx\tFy\tFz", units + "\tN\tN\tN", *rows]) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CxlabWarning)
        rec = read_bioware(path)
    assert len(rec.platforms) == 2
    np.testing.assert_allclose(rec.platforms[1].force, 2 * rec.platforms[0].force)


def test_not_a_vendor_file_is_refused_by_each_reader(real_dir):
    with pytest.raises(InputFormatError, match="is not a ForceDecks raw data export"):
        read_forcedecks(real_dir / "forceplate/biomdp_kistler_COP.txt")
    with pytest.raises(InputFormatError, match="is not a Kistler BioWare export"):
        read_bioware(real_dir / "opensim/pyomeca_markers.trc")


def test_forcedecks_time_in_milliseconds_is_recognised_by_the_frequency(tmp_path):
    force, _ = simulated_cmj()
    path = tmp_path / "ms.csv"
    write_forcedecks(path, force)
    lines = path.read_text().splitlines()
    body = [f"{k},{line.split(',', 1)[1]}" for k, line in enumerate(lines[10:])]
    path.write_text("\r\n".join(lines[:10] + body) + "\r\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CxlabWarning)
        rec = read(path)
    assert rec.analog_rate_hz == 1000.0 and rec.meta["time_offset_s"] == 0.0


def test_a_plate_loaded_downwards_is_a_warning_on_the_recording(tmp_path):
    force, _ = simulated_cmj()
    path = tmp_path / "down.csv"
    write_forcedecks(path, -force)  # an export of the force on the plate, z down
    with pytest.warns(CxlabWarning, match="plate 1: vertical force is negative where loaded"):
        rec = read(path)
    assert len(rec.warnings) == 2 and rec.warnings[1].startswith(
        "plate 2: vertical force is negative where loaded"
    )


def test_a_byte_order_mark_does_not_hide_the_format(real_dir, tmp_path):
    from cxlab.io import read_trc

    path = tmp_path / "bom.trc"
    path.write_bytes(b"\xef\xbb\xbf" + (real_dir / "opensim/osc_exampleFormat.trc").read_bytes())
    assert format_of(path) == "trc"
    assert read_trc(path).markers.shape == (5, 3, 3)


def test_forcedecks_resaved_with_semicolons_and_decimal_commas(tmp_path):
    force, _ = simulated_cmj()
    path = tmp_path / "fd.csv"
    left, right = write_forcedecks(path, force)
    # as a spreadsheet in a decimal-comma locale saves it again: ';' between, ',' within cells
    text = path.read_text().replace(",", ";").replace(".", ",")
    path.write_text(text.replace("Data Source;", "Data Source;x;", 1))
    rec = read(path)
    np.testing.assert_allclose(rec.platforms[0].force[:, 2], left, atol=1e-9)
    np.testing.assert_allclose(rec.platforms[1].force[:, 2], right, atol=1e-9)
    assert rec.meta["body_mass_kg"] == 80.0 and rec.analog_rate_hz == 1000.0
