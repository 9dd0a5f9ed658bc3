"""Analysis tables built from a store with DuckDB SQL.

Everything here is a query over the store's views (``scores``, ``features``,
``interventions``, ``recordings``, ``quarantine``); the results are sorted so
that the same store always gives the same rows in the same order.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from cxlab._check import ConfigError, message, warn
from cxlab.experiments.spec import PREPOST_ARM, ExperimentSpec, Outcome
from cxlab.features.asymmetry import symmetry_index
from cxlab.features.pairing import SEPARATE_TRIALS, side_pairs
from cxlab.store import Store

__all__ = [
    "analysis_table",
    "asymmetry_table",
    "cohort_table",
    "flow_table",
    "quality_table",
    "trial_table",
]

ANALYSIS_COLUMNS = [
    "outcome",
    "subject_id",
    "session",
    "session_index",
    "date",
    "week",
    "arm",
    "adherence",
    "age_years",
    "value",
    "unit",
    "period",
    "sequence",
]

# Session dates: the sessions table (a sheet first, then the date a recording states, then a
# {date} in its path) and the survey dates, the best source that has one; the sheet's
# session order where given. Sessions seen only in features are undated. The programme start,
# arm and adherence, and the subject's age at the first dated survey.
_CONTEXT = """
sess_src AS (
    SELECT subject_id, session, date, session_index,
           CASE source WHEN 'sheet' THEN 0 WHEN 'recording' THEN 1 ELSE 2 END AS prio
    FROM sessions
    UNION ALL
    SELECT subject_id, session, date, NULL, 3 FROM scores WHERE date IS NOT NULL
),
sess_best AS (
    SELECT subject_id, session, min(prio) FILTER (WHERE date IS NOT NULL) AS best
    FROM sess_src GROUP BY subject_id, session
),
sess AS (
    SELECT s.subject_id, s.session,
           min(s.date) FILTER (WHERE s.prio = b.best) AS date,
           min(s.session_index) FILTER (WHERE s.prio = 0) AS given_index
    FROM sess_src s JOIN sess_best b USING (subject_id, session)
    GROUP BY s.subject_id, s.session
),
prog AS (
    SELECT subject_id, min(arm) AS arm, min(start_date) AS start_date, avg(adherence) AS adherence
    FROM interventions GROUP BY subject_id
),
age AS (
    SELECT subject_id, arg_min(age_years, date) AS age_years
    FROM scores WHERE age_years IS NOT NULL GROUP BY subject_id
)
"""


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _outcome_values(o: Outcome) -> str:
    """SQL giving (subject_id, session, value, unit) for one outcome."""
    if o.source == "scores":
        return (
            f"SELECT subject_id, session, avg(score) AS value, min(unit) AS unit FROM scores "
            f"WHERE instrument = {_quote(o.feature)} AND score IS NOT NULL "
            f"AND isfinite(score) GROUP BY subject_id, session"
        )
    task = f" AND task = {_quote(o.task)}" if o.task else ""
    side = f" AND side = {_quote(o.side)}" if o.side else ""
    per_side = (
        f"SELECT subject_id, session, side, avg(value) AS v, min(unit) AS unit "
        f"FROM features WHERE feature = {_quote(o.feature)}{task}{side} "
        f"AND subject_id IS NOT NULL AND value IS NOT NULL AND isfinite(value) "
        f"GROUP BY subject_id, session, side"
    )
    return (
        f"SELECT subject_id, session, coalesce(max(v) FILTER (WHERE side = 'bilateral'), "
        f"avg(v) FILTER (WHERE side IN ('left', 'right'))) AS value, min(unit) AS unit "
        f"FROM ({per_side}) GROUP BY subject_id, session"
    )


def _run(con, sql: str, *, spec: ExperimentSpec) -> pd.DataFrame:
    try:
        return con.execute(sql).df()
    except duckdb.Error as e:
        first = str(e).splitlines()[0]
        if spec.where and ("Binder" in first or "Parser" in first):
            raise ConfigError(
                message(
                    f"is not a valid filter ({first})",
                    file=spec.path,
                    field="where",
                    value=spec.where,
                    fix="write a SQL boolean expression over the columns "
                    + ", ".join(ANALYSIS_COLUMNS),
                )
            ) from None
        raise


def analysis_table(store: Store, spec: ExperimentSpec, /) -> pd.DataFrame:
    """The long analysis table: one row per outcome x subject x session.

    Parameters
    ----------
    store : Store
        A store with ``interventions`` (arms; optional for ``design = "prepost"``),
        ``features`` and/or ``scores`` for the outcomes, and session dates from
        ``sessions`` (sheet, recording metadata, ``{date}`` in the path) or the
        survey dates in ``scores``.
    spec : ExperimentSpec
        Outcomes, filter and time variable.

    Returns
    -------
    pandas.DataFrame
        Columns ``outcome`` (spec name), ``subject_id``, ``session``,
        ``session_index`` (the sheet's index where given, else 0 = the subject's
        first session by date, then by session label), ``date`` (None when no
        source dates the session), ``week`` (``(date - start_date) / 7 days``,
        weeks; from the subject's first dated session without a start date;
        NaN when undated), ``arm`` (``"all"`` for a pre/post design without
        programmes; for a crossover, the programme whose start date is the
        latest on or before the session date),
        ``adherence`` (1), ``age_years`` (age at the first dated session),
        ``value`` (in ``unit``), ``unit``, ``period`` (1; a crossover: the
        programme's rank in start order), ``sequence`` (the arm; a crossover:
        the subject's programmes in start order, ``"control-hip"``); sorted by
        outcome, subject, session index. Feature values are means over trials
        (and over recordings of the session); an outcome without side suffix
        uses the bilateral value, else the mean of the left and right trial
        means.

    Raises
    ------
    ConfigError
        A subject in two programmes (unless ``design = "crossover"``), naming it.

    Warns
    -----
    CxlabWarning
        When rows are dropped because their subject has no programme
        (``interventions``), and with ``time = "week"`` when sessions are undated.
    """
    _check_one_programme(store, spec)
    parts = []
    for o in spec.outcomes:
        parts.append(f"SELECT {_quote(o.name)} AS outcome, * FROM ({_outcome_values(o)})")
    values = " UNION ALL ".join(parts)
    where = f"WHERE ({spec.where})" if spec.where else ""
    prog_join = (
        "LEFT JOIN prog p USING (subject_id)"
        if spec.design == "prepost"
        else "JOIN prog p USING (subject_id)"
    )
    arm = f"coalesce(p.arm, {_quote(PREPOST_ARM)})" if spec.design == "prepost" else "p.arm"
    period, sequence, extra = "1", arm, ""
    if spec.design == "crossover":  # the programme running at the session date
        extra = """,
    progs AS (
        SELECT subject_id, arm, start_date, adherence,
               row_number() OVER (PARTITION BY subject_id ORDER BY start_date, arm) AS period,
               min(start_date) OVER (PARTITION BY subject_id) AS first_start
        FROM interventions WHERE start_date IS NOT NULL
    ),
    seqs AS (SELECT subject_id, string_agg(arm, '-' ORDER BY start_date, arm) AS sequence
             FROM interventions GROUP BY subject_id)"""
        prog_join = (
            "ASOF JOIN progs p ON v.subject_id = p.subject_id AND s.date >= "
            "p.start_date JOIN seqs q ON q.subject_id = v.subject_id"
        )
        arm, period, sequence = "p.arm", "p.period", "q.sequence"
    start = "p.first_start" if spec.design == "crossover" else "p.start_date"
    sql = f"""
    WITH {_CONTEXT}{extra},
    vals AS ({values}),
    joined AS (
        SELECT v.outcome, v.subject_id, v.session, s.date, s.given_index,
               datediff('day', coalesce({start},
                                        min(s.date) OVER (PARTITION BY v.subject_id)),
                        s.date) / 7.0 AS week,
               {arm} AS arm, p.adherence, a.age_years, v.value, v.unit,
               ({period})::INTEGER AS period, {sequence} AS sequence
        FROM vals v LEFT JOIN sess s USING (subject_id, session) {prog_join}
        LEFT JOIN age a USING (subject_id)
    ),
    indexed AS (
        SELECT j.*, coalesce(given_index, (dense_rank() OVER (
                   PARTITION BY subject_id ORDER BY date NULLS LAST,
                   try_cast(session AS DOUBLE) NULLS LAST, session) - 1))::INTEGER
               AS session_index
        FROM joined j
    )
    SELECT {", ".join(ANALYSIS_COLUMNS)} FROM indexed {where}
    ORDER BY outcome, subject_id, session_index, session
    """
    count_sql = (
        f"WITH {_CONTEXT}, vals AS ({values}) SELECT outcome, count(*) AS n FROM vals "
        "GROUP BY outcome"
    )
    with store.connect() as con:
        df = _run(con, sql, spec=spec)
        totals = dict(con.execute(count_sql).fetchall())
    got = df.groupby("outcome").size().to_dict() if len(df) else {}
    undated = df[df["date"].isna()].groupby("outcome").size().to_dict() if len(df) else {}
    for o in spec.outcomes:
        n_all, n_kept = totals.get(o.name, 0), got.get(o.name, 0)
        if n_all == 0:
            what = "instrument FROM scores" if o.source == "scores" else "feature FROM features"
            warn(
                "has no rows in the store",
                field=f"outcomes.{o.name}",
                fix=f'check the name against `cxlab sql STORE "SELECT DISTINCT {what}"`',
            )
        elif n_kept < n_all and not spec.where:
            why = (
                "is undated or precedes every programme start"
                if spec.design == "crossover"
                else "whose subject has no programme"
            )
            warn(
                f"left out {n_all - n_kept} of {n_all} subject-sessions {why}",
                field=f"outcomes.{o.name}",
                fix="ingest interventions (with start dates for a crossover) for every "
                "subject, and date every session",
            )
        if spec.time == "week" and undated.get(o.name) and n_kept:
            warn(
                f"{undated[o.name]} of {n_kept} subject-sessions have no date (no sessions "
                "sheet, {date} in the path, recording date or survey date), so no week; the "
                "model leaves them out",
                field=f"outcomes.{o.name}",
                fix='ingest a sessions sheet (cxlab ingest-sessions) or use time = "session_index"',
            )
    df = df.astype({"date": object})
    df["date"] = pd.to_datetime(df["date"]).dt.date if len(df) else df["date"]
    df["date"] = df["date"].where(df["date"].notna(), None) if len(df) else df["date"]
    df["session_index"] = df["session_index"].astype("int64")
    return df.reset_index(drop=True)


def _check_one_programme(store: Store, spec: ExperimentSpec) -> None:
    """A subject with two arms is an error (parallel/pre-post), naming the subject."""
    if spec.design == "crossover":
        return
    two = store.sql(
        "SELECT subject_id, list(DISTINCT arm ORDER BY arm) AS arms "
        "FROM interventions GROUP BY subject_id HAVING count(DISTINCT arm) > 1 "
        "ORDER BY subject_id"
    )
    if len(two):
        first = two.iloc[0]
        raise ConfigError(
            message(
                f"subject {first['subject_id']} is in {len(first['arms'])} programmes "
                f"({', '.join(map(str, first['arms']))}); {len(two)} subject(s) in all",
                file=spec.path,
                field="interventions.arm",
                value=first["subject_id"],
                fix="keep one programme row per subject in the programme log, or declare "
                'design = "crossover" in [model]',
            )
        )


def trial_table(store: Store, spec: ExperimentSpec, /, subjects: pd.DataFrame) -> pd.DataFrame:
    """Trial-level values of the feature outcomes at each subject's first session.

    Parameters
    ----------
    subjects : pandas.DataFrame
        ``subject_id``, ``session`` pairs to keep (the baseline sessions of the
        analysis table).

    Returns
    -------
    pandas.DataFrame
        ``outcome``, ``subject_id``, ``session``, ``trial``, ``value``: one row
        per trial (the side handling of :func:`analysis_table`, per trial).
    """
    rows = []
    with store.connect() as con:
        con.register("keep", subjects[["subject_id", "session"]])
        for o in spec.outcomes:
            if o.source != "features":
                continue
            task = f" AND task = {_quote(o.task)}" if o.task else ""
            side = f" AND side = {_quote(o.side)}" if o.side else ""
            sql = f"""
            WITH t AS (
                SELECT subject_id, session, task || ':' || trial AS trial, side, avg(value) AS v
                FROM features JOIN keep USING (subject_id, session)
                WHERE feature = {_quote(o.feature)}{task}{side} AND value IS NOT NULL
                  AND isfinite(value) AND trial IS NOT NULL
                GROUP BY subject_id, session, task, trial, side
            )
            SELECT {_quote(o.name)} AS outcome, subject_id, session, trial,
                   coalesce(max(v) FILTER (WHERE side = 'bilateral'),
                            avg(v) FILTER (WHERE side IN ('left', 'right'))) AS value
            FROM t GROUP BY subject_id, session, trial ORDER BY subject_id, trial
            """
            rows.append(con.execute(sql).df())
    cols = ["outcome", "subject_id", "session", "trial", "value"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


def asymmetry_table(store: Store, /, subjects: pd.DataFrame) -> pd.DataFrame:
    """Side-to-side asymmetry per subject x session x measure.

    Uses the stored ``*_asym_pct`` features (Robinson et al. 1987 symmetry
    index, ``100 (R - L) / (0.5 (R + L))``, positive = right larger) and, for
    per-side features without a stored twin (``X_<unit>`` when ``X_asym_pct`` is
    stored counts as a twin), the same index computed from the pairs of
    :func:`cxlab.features.pairing.side_pairs` that were measured in one recording
    (both limbs at once: a bilateral jump on two plates) or, for rows without a
    recording (the strength table), in one session. Its pairs of separate
    single-leg trials are not computed here: their limb indices are the stored
    ``*_asym_pct`` (the same trial means), so a single-leg test's body mass or hop
    count is never an "asymmetry". ``side_pairs`` leaves out angles and signed
    features (any value ≤ 0) and keeps tasks apart; a feature computed in more than
    one task (e.g. an EMG onset in the jump and in the landing) is one measure per
    task, named ``"<task> <feature>"``.

    Parameters
    ----------
    subjects : pandas.DataFrame
        ``subject_id``, ``session``, ``session_index`` rows to keep.

    Returns
    -------
    pandas.DataFrame
        ``subject_id``, ``session_index``, ``measure``, ``asym_pct`` (%), sorted.
    """
    stored_sql = """
    SELECT subject_id, session, regexp_replace(feature, '_asym_pct$', '') AS measure,
           avg(value) AS asym_pct
    FROM features WHERE feature LIKE '%\\_asym\\_pct' ESCAPE '\\' AND isfinite(value)
    GROUP BY ALL
    """
    sided_sql = (
        "SELECT recording_id, subject_id, session, task, trial, feature, side, value, unit "
        "FROM features WHERE side IN ('left', 'right')"
    )
    with store.connect() as con:
        stored = con.execute(stored_sql).df()
        sided = con.execute(sided_sql).df()
    pairs = side_pairs(sided)
    pairs = pairs[pairs["pairing"] != SEPARATE_TRIALS]
    stems = stored["measure"].drop_duplicates().to_numpy(str)
    feat = pairs["feature"].to_numpy(str)
    twin = np.isin(feat, stems)
    for stem in stems:  # the stored indices are few (one per quantity)
        twin |= np.char.startswith(feat, stem + "_")
    pairs = pairs[~twin]
    n_tasks = pairs.groupby("feature")["task"].transform("nunique").to_numpy()
    computed = pd.DataFrame(
        {
            "subject_id": pairs["subject_id"],
            "session": pairs["session"],
            "measure": np.where(
                n_tasks > 1, pairs["task"].fillna("") + " " + pairs["feature"], feat[~twin]
            ),
            "asym_pct": symmetry_index(
                pairs["left"].to_numpy(float), pairs["right"].to_numpy(float)
            ),
        }
    )
    keep = subjects[["subject_id", "session", "session_index"]]
    out = pd.concat([stored, computed], ignore_index=True).merge(keep, on=["subject_id", "session"])
    out = out[np.isfinite(out["asym_pct"].to_numpy(float))]
    out = out.sort_values(["subject_id", "session_index", "measure"], kind="stable")
    return out[["subject_id", "session_index", "measure", "asym_pct"]].reset_index(drop=True)


def cohort_table(analysis: pd.DataFrame, /) -> pd.DataFrame:
    """Subjects, subject-sessions and observations per arm (``arm``, ``n_subjects``, ...)."""
    g = analysis.groupby("arm", sort=True)
    out = pd.DataFrame(
        {
            "n_subjects": g["subject_id"].nunique(),
            "n_sessions": g.apply(
                lambda d: len(d[["subject_id", "session"]].drop_duplicates()), include_groups=False
            ),
            "n_obs": g.size(),
            "mean_adherence": g["adherence"].mean(),
            "mean_age_years": g["age_years"].mean(),
        }
    ).reset_index()
    return out.astype({"n_subjects": "int64", "n_sessions": "int64", "n_obs": "int64"})


def quality_table(store: Store, /) -> pd.DataFrame:
    """Quarantined inputs grouped by stage and reason.

    Returns
    -------
    pandas.DataFrame
        ``stage``, ``file`` (base name), ``field``, ``n_rows``, ``reason``,
        sorted. File names and reasons are passed through :func:`redact` so
        raw subject labels never reach the report.
    """
    q = store.sql("SELECT stage, source_path, field, value, reason FROM quarantine")
    if q.empty:
        return pd.DataFrame(columns=["stage", "file", "field", "n_rows", "reason"])
    q["file"] = q["source_path"].map(lambda p: redact(str(p).replace("\\", "/").split("/")[-1]))
    q["reason"] = [
        redact(r, v if _is_label(f) else None)
        for r, v, f in zip(q["reason"], q["value"], q["field"], strict=True)
    ]
    q["field"] = q["field"].fillna("")
    out = (
        q.groupby(["stage", "file", "field", "reason"], sort=True)
        .size()
        .rename("n_rows")
        .reset_index()
    )
    return out[["stage", "file", "field", "n_rows", "reason"]]


def _is_label(field) -> bool:
    return isinstance(field, str) and any(k in field.lower() for k in ("subject", "participant"))


def redact(text: str, value: object = None, /) -> str:
    """Remove raw subject labels from ``text``.

    ``sub-<label>`` becomes ``sub-…``, the offending ``value`` (which may be a
    raw label) becomes ``…``, and 12-hex pseudonyms become ``…``.
    """
    import re

    out = re.sub(r"sub-[A-Za-z0-9]+", "sub-…", str(text))
    if value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value):
        out = out.replace(repr(str(value)), "'…'").replace(str(value), "…")
    return re.sub(r"\b[0-9a-f]{12}\b", "…", out)


FLOW_COLUMNS = [
    "arm",
    "enrolled",
    "with_sessions",
    "n_sessions",
    "followed_up",
    "analysed",
    "reasons",
]


def flow_table(
    store: Store,
    analysis: pd.DataFrame,
    participants: pd.DataFrame,
    /,
) -> pd.DataFrame:
    """Participant flow per arm (CONSORT-style), with the reasons for exclusions.

    Returns
    -------
    pandas.DataFrame
        :data:`FLOW_COLUMNS`: ``enrolled`` (subjects of the arm in ``interventions``, or
        seen in the analysis table), ``with_sessions`` (with at least one analysed
        session), ``n_sessions`` (subject-sessions attended and analysed),
        ``followed_up`` (two or more sessions), ``analysed`` (in the per-participant
        table), ``reasons`` (counts of the exclusions, plain words).
    """
    iv = store.table("interventions", columns=["subject_id", "arm"])
    arms = sorted(set(iv["arm"].dropna()) | set(analysis["arm"].dropna()))
    rows = []
    for arm in arms:
        a = analysis[analysis["arm"] == arm]
        seen = set(a["subject_id"])
        enrolled = set(iv.loc[iv["arm"] == arm, "subject_id"]) | seen
        sessions = a.groupby("subject_id")["session_index"].nunique()
        two = set(sessions[sessions >= 2].index)
        analysed = (
            set(participants.loc[participants["arm"] == arm, "subject_id"])
            if len(participants)
            else set()
        )
        reasons = []
        if enrolled - seen:
            reasons.append(
                f"{len(enrolled - seen)} with no usable session (no recording or "
                "survey, every input quarantined, or filtered out)"
            )
        if seen - two:
            reasons.append(f"{len(seen - two)} seen at one session only (no follow-up)")
        rows.append(
            {
                "arm": arm,
                "enrolled": len(enrolled),
                "with_sessions": len(seen),
                "n_sessions": len(a[["subject_id", "session"]].drop_duplicates()),
                "followed_up": len(two),
                "analysed": len(analysed),
                "reasons": "; ".join(reasons),
            }
        )
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)
