"""The synthetic cohort's spreadsheets, as a lab would export them (columns per docs/surveys.md).

- ``surveys.csv`` (wide): ``participant, name, email, date_of_birth, session, date,
  pain_nrs, odi_1 .. odi_10`` for every observed session, with raw identifiers that
  ingest must strip and a few deliberately malformed rows (listed in the truth).
- ``interventions.csv``: ``participant, name, arm, start_date, end_date,
  sessions_prescribed, sessions_attended``.
- ``strength.csv``: ``participant, session, muscle_group, side, peak_torque_nm`` for
  ``knee_extensors``, ``knee_flexors``, ``shoulder_er``, ``shoulder_ir``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxlab.synth.truth import CohortTruth

__all__ = ["interventions_table", "strength_table", "survey_table"]

_FIRST = (
    "Ann",
    "Ben",
    "Chloe",
    "David",
    "Eva",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
)
_LAST = (
    "Example",
    "Sample",
    "Tester",
    "Placeholder",
    "Dummy",
    "Fictive",
    "Synthetic",
    "Madeup",
    "Notreal",
    "Pretend",
)
ODI_ITEMS = [f"odi_{k}" for k in range(1, 11)]
MUSCLE_GROUPS = ("knee_extensors", "knee_flexors", "shoulder_er", "shoulder_ir")


def identities(truth: CohortTruth, rng: np.random.Generator) -> pd.DataFrame:
    """Fake raw identifiers per subject: ``label, name, email, date_of_birth`` (ISO)."""
    n = len(truth.subjects)
    first = np.asarray(_FIRST, dtype=object)[rng.integers(0, len(_FIRST), n)]
    last = np.asarray(_LAST, dtype=object)[rng.integers(0, len(_LAST), n)]
    labels = truth.subjects["label"].to_numpy()
    name = first + " " + last
    email = [
        f"{f.lower()}.{la.lower()}{i + 1}@example.org"
        for i, (f, la) in enumerate(zip(first, last, strict=True))
    ]
    age_days = np.rint(truth.subjects["age_years"].to_numpy() * 365.25).astype("timedelta64[D]")
    start = truth.subjects["start_date"].to_numpy().astype("datetime64[D]")
    dob = (start - age_days).astype(str)
    return pd.DataFrame({"label": labels, "name": name, "email": email, "date_of_birth": dob})


def _odi_items(total_pct: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ten 0-5 item answers per row whose sum x 2 is the ODI total (%), shape (n, 10)."""
    s = (np.asarray(total_pct) / 2).astype(int)
    base = s // 10
    extra = s % 10
    order = np.argsort(rng.random((len(s), 10)), axis=1)
    rank = np.argsort(order, axis=1)  # a random permutation of 0..9 per row
    return base[:, None] + (rank < extra[:, None]).astype(int)


def survey_table(
    truth: CohortTruth,
    ids: pd.DataFrame,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, list[dict]]:
    """The wide survey export and the list of deliberately bad rows.

    Returns
    -------
    table : DataFrame
        Columns ``participant, name, email, date_of_birth, session, date, pain_nrs,
        odi_1..odi_10`` (all text, as read from a spreadsheet).
    bad_rows : list of dict
        ``row`` (spreadsheet row, header = 1), ``participant``, ``session``, ``kind``
        (``nrs_out_of_range``, ``odi_not_numeric``, ``duplicate_conflict``), ``field``
        and ``value``; duplicates also name ``duplicate_of`` (the original's row).
    """
    w = truth.wide()
    w = w[w["observed"]].reset_index(drop=True)
    idx = ids.set_index("label")
    items = _odi_items(w["odi"].to_numpy(), rng)
    t = pd.DataFrame(
        {
            "participant": w["label"].to_numpy(),
            "name": idx.loc[w["label"], "name"].to_numpy(),
            "email": idx.loc[w["label"], "email"].to_numpy(),
            "date_of_birth": idx.loc[w["label"], "date_of_birth"].to_numpy(),
            "session": w["session"].to_numpy(),
            "date": pd.to_datetime(w["date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "pain_nrs": w["pain_nrs"].astype(int).astype(str).to_numpy(),
        }
    )
    for k, col in enumerate(ODI_ITEMS):
        t[col] = items[:, k].astype(str)
    t = t.astype(object)
    n_bad = max(1, len(t) // 40)
    pick = rng.permutation(len(t))[: 3 * n_bad]
    bad = []
    for i in pick[:n_bad]:
        value = str(rng.choice([11, 12, 14, 15]))
        t.loc[i, "pain_nrs"] = value
        bad.append(_bad(t, i, "nrs_out_of_range", "pain_nrs", value))
    for i in pick[n_bad : 2 * n_bad]:
        col = ODI_ITEMS[int(rng.integers(0, 10))]
        value = str(rng.choice(["n/a", "three", "2-3"]))
        t.loc[i, col] = value
        bad.append(_bad(t, i, "odi_not_numeric", col, value))
    dups = []
    for i in pick[2 * n_bad :]:
        row = t.loc[i].copy()
        old = int(row["pain_nrs"])
        row["pain_nrs"] = str(old + 2 if old <= 8 else old - 2)
        dups.append((i, row))
    t = pd.concat([t, pd.DataFrame([r for _, r in dups])], ignore_index=True)
    for k, (i, row) in enumerate(dups):
        j = len(t) - len(dups) + k
        entry = _bad(t, j, "duplicate_conflict", "pain_nrs", row["pain_nrs"])
        entry["duplicate_of"] = int(i) + 2
        bad.append(entry)
    return t, bad


def _bad(t: pd.DataFrame, i: int, kind: str, field: str, value: str) -> dict:
    return {
        "row": int(i) + 2,
        "participant": str(t.loc[i, "participant"]),
        "session": str(t.loc[i, "session"]),
        "kind": kind,
        "field": field,
        "value": value,
    }


def interventions_table(
    truth: CohortTruth,
    ids: pd.DataFrame,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One row per subject: programme, dates, sessions prescribed (2/week) and attended.

    The control arm (natural history) is prescribed no sessions. Attendance is
    binomial with a Beta(8, 2) adherence, over the weeks the subject stayed.
    """
    s = truth.subjects
    weeks = max(4 * (truth.n_sessions - 1), 4)
    start = s["start_date"].to_numpy().astype("datetime64[D]")
    end = start + np.timedelta64(7 * weeks, "D")
    prescribed = np.where(s["arm"] == "control", 0, 2 * weeks)
    stayed = (s["n_sessions_observed"].to_numpy() - 1) / max(truth.n_sessions - 1, 1)
    stayed = np.where(truth.n_sessions == 1, 1.0, stayed)
    adherence = rng.beta(8.0, 2.0, len(s))
    attended = rng.binomial(np.rint(prescribed * stayed).astype(int), adherence)
    return pd.DataFrame(
        {
            "participant": s["label"].to_numpy(),
            "name": ids["name"].to_numpy(),
            "arm": s["arm"].to_numpy(),
            "start_date": start.astype(str),
            "end_date": end.astype(str),
            "sessions_prescribed": prescribed,
            "sessions_attended": attended,
        }
    )


def strength_table(truth: CohortTruth, rng: np.random.Generator) -> pd.DataFrame:
    """Peak torques (N·m) per observed session, muscle group and side.

    Knee extensors: 2.6 N·m/kg (men) or 2.1 N·m/kg (women) on the strong side, the weak
    side scaled by the session's CMJ LSI; flexors = extensors x the subject's H:Q ratio
    (uniform 0.50-0.75, so some fall below the 0.6 screening cut-off); shoulder internal
    rotators 0.55 N·m/kg, external rotators x ER:IR (uniform 0.60-0.85). Values rounded
    to 0.1 N·m.
    """
    s = truth.subjects.set_index("label")
    n = len(s)
    hq = pd.Series(rng.uniform(0.50, 0.75, n), index=s.index)
    erir = pd.Series(rng.uniform(0.60, 0.85, n), index=s.index)
    w = truth.wide()
    w = w[w["observed"]].reset_index(drop=True)
    lab = w["label"]
    mass = lab.map(s["body_mass_kg"]).to_numpy()
    male = (lab.map(s["sex"]) == "male").to_numpy()
    weak_left = (lab.map(s["asymmetric_side"]) == "left").to_numpy()
    lsi = w["cmj_propulsive_impulse_lsi_pct"].to_numpy() / 100.0
    day = rng.normal(1.0, 0.04, len(w))
    ext = np.where(male, 2.6, 2.1) * mass * day
    ext_l = np.where(weak_left, ext * lsi, ext)
    ext_r = np.where(weak_left, ext, ext * lsi)
    ir = 0.55 * mass * rng.normal(1.0, 0.05, len(w))
    values = {
        ("knee_extensors", "left"): ext_l,
        ("knee_extensors", "right"): ext_r,
        ("knee_flexors", "left"): ext_l * lab.map(hq).to_numpy(),
        ("knee_flexors", "right"): ext_r * lab.map(hq).to_numpy(),
        ("shoulder_er", "left"): ir * lab.map(erir).to_numpy(),
        ("shoulder_er", "right"): ir * 1.03 * lab.map(erir).to_numpy(),
        ("shoulder_ir", "left"): ir,
        ("shoulder_ir", "right"): ir * 1.03,
    }
    frames = [
        pd.DataFrame(
            {
                "participant": lab.to_numpy(),
                "session": w["session"].to_numpy(),
                "muscle_group": mg,
                "side": side,
                "peak_torque_nm": np.round(v, 1),
            }
        )
        for (mg, side), v in values.items()
    ]
    out = pd.concat(frames, ignore_index=True)
    order = {k: i for i, k in enumerate(truth.subjects["label"])}
    keys = {"participant": lambda c: c.map(order), "session": lambda c: c.astype(int)}
    out = out.sort_values(
        ["participant", "session", "muscle_group", "side"],
        key=lambda c: keys.get(c.name, lambda x: x)(c),
        kind="stable",
    )
    return out.reset_index(drop=True)
