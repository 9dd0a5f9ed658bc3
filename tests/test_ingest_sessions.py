"""The sessions rows a recording ingest writes: dates from a {date} path token, real files."""

from __future__ import annotations

import shutil

from cxlab.ingest import ingest
from cxlab.pseudo import pseudonymise
from cxlab.store import Store


def test_path_dates_land_in_sessions_and_a_bad_date_is_a_warning_not_a_failure(real_dir, tmp_path):
    src = real_dir / "c3d"
    raw = tmp_path / "raw"
    for label, day, name in (
        ("S01", "2024-03-05", "c3dorg_16bitanalog.c3d"),
        ("S02", "2024-13-40", "btk_Res16bits.c3d"),
    ):
        dest = raw / f"sub-{label}" / f"{day}_ses-1" / "walk_1.c3d"
        dest.parent.mkdir(parents=True)
        shutil.copyfile(src / name, dest)
    st = Store(tmp_path / "store")
    rep = ingest(
        [raw],
        store=st,
        jobs=1,
        progress=False,
        pattern="sub-{subject}/{date}_ses-{session}/{task}_{trial}.c3d",
    )
    assert not rep.failed, rep.summary()
    s = st.table("sessions").set_index("subject_id")
    good, bad = pseudonymise("S01"), pseudonymise("S02")
    assert str(s.loc[good, "date"]) == "2024-03-05" and s.loc[good, "source"] == "path"
    assert s.loc[bad, "date"] is None or str(s.loc[bad, "date"]) in ("None", "NaT")
    assert any("2024-13-40" in w and "not a calendar date" in w for w in rep.warnings)
    assert "S01" not in st.table("sessions").to_string()  # pseudonyms only
