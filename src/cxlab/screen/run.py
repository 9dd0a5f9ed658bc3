"""Screen every client in a store: the library side of ``cxlab screen``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cxlab._check import ConfigError, message

if TYPE_CHECKING:
    from cxlab.store import Store

__all__ = ["ScreenRun", "screen_store"]


@dataclass
class ScreenRun:
    """What :func:`screen_store` computed and wrote.

    Attributes
    ----------
    screened : DataFrame
        :func:`cxlab.screen.screen` output.
    trends : DataFrame
        :func:`cxlab.screen.screen_trends` output.
    mdc : DataFrame
        :func:`cxlab.screen.trends.feature_mdc` output used for the trends.
    summary : DataFrame
        One row per subject x finding at each subject's latest session: subject_id,
        session, rule_id, side, value, unit, threshold, status, severity, focus, trend.
    written : list of Path
        ``screen.parquet`` and the profile pages, or the store's ``screen`` files (none
        listed for a store on object storage, which has no local paths).
    """

    screened: pd.DataFrame
    trends: pd.DataFrame
    mdc: pd.DataFrame
    summary: pd.DataFrame
    written: list[Path] = field(default_factory=list)


def _pick_subject(subject: str, ids: pd.Series, st: Store) -> str:
    if subject in set(ids):
        return subject
    if not re.fullmatch(r"[0-9a-f]{12}", subject):
        from cxlab.pseudo import key_check, pseudonymise

        # a label, pseudonymised with this machine's key: the store's, or it matches no one
        st.require_key_check(key_check(), claim=False)
        pid = pseudonymise(subject)
        if pid in set(ids):
            return pid
    raise ConfigError(
        message(
            "is not a subject in the store",
            field="--subject",
            value=subject,
            fix=f"use one of the {ids.nunique()} subject ids "
            "(cxlab sql STORE 'SELECT DISTINCT subject_id FROM features')",
        )
    )


def screen_store(
    store: str | os.PathLike[str],
    /,
    *,
    subject: str | None = None,
    rules: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> ScreenRun:
    """Screen a store's clients, follow findings over sessions, write the results.

    Reads the ``features``, ``scores`` and ``strength`` tables, applies the rules
    (:func:`cxlab.screen.screen`), estimates each feature's MDC95 from its repeated
    trials (:func:`~cxlab.screen.trends.feature_mdc`), classifies the trends
    (:func:`~cxlab.screen.trends.screen_trends`) and writes the findings (table
    ``screen`` of :mod:`cxlab.schemas`): without ``out`` into the store, one part per
    client in one commit (a full run also removes the parts of clients no longer
    screened; ``subject=`` replaces that client's part only), with ``out`` as
    ``out/screen.parquet`` beside one HTML profile per client. Nothing is written unless
    every step succeeded.

    Parameters
    ----------
    store : path-like or str
        Store directory, or an object-storage URL (``s3://bucket/prefix``).
    subject : str, optional
        One client: a subject_id (pseudonym) or a raw label, pseudonymised with the
        current key.
    rules : path-like, optional
        Lab rules file (merged with the defaults, see :func:`cxlab.screen.read_rules`).
    out : path-like, optional
        Output directory for ``screen.parquet`` and ``profile-<subject_id>.html``
        (default: the findings go into the store's ``screen`` table, no pages).

    Returns
    -------
    ScreenRun
    """
    from cxlab.schemas import validate
    from cxlab.screen import SCREEN_SCHEMA, read_rules, screen, session_order
    from cxlab.screen.profile import write_profiles
    from cxlab.screen.trends import feature_mdc, screen_trends
    from cxlab.store import Store, write_parquet

    st = Store(store)
    if not st.exists():
        raise ConfigError(
            message(
                "holds no store (no catalog at that URL)" if st.is_remote else "is not a directory",
                field="--store",
                value=str(st.location),
                fix="give the store written by cxlab ingest",
            )
        )
    feats, scores, strength = (st.table(n) for n in ("features", "scores", "strength"))
    if feats.empty and scores.empty and strength.empty:
        raise ConfigError(
            message(
                "has no features, scores or strength rows",
                field="--store",
                value=str(store),
                fix="run cxlab features (and ingest surveys/strength) first",
            )
        )
    rule_list = read_rules(rules)
    all_feats = feats  # the profile's pairing rule reads the whole table (signed features)
    if subject is not None:
        ids = pd.concat([t["subject_id"] for t in (feats, scores, strength)]).dropna()
        sid = _pick_subject(subject, ids, st)
        feats, scores, strength = (t[t["subject_id"] == sid] for t in (feats, scores, strength))
    screened = screen(feats, scores, rules=rule_list, strength=strength)
    mdc = feature_mdc(feats) if len(feats) else pd.DataFrame(columns=["feature", "side", "mdc95"])
    trends = screen_trends(screened, mdc=mdc, rules=rule_list)
    table = validate(screened, SCREEN_SCHEMA)

    s = screened.assign(order=session_order(screened["session"]))
    last = s.groupby("subject_id")["order"].transform("max")
    latest = s[(s["order"] == last) & (s["status"] != "not assessed")]
    bl = trends[trends["span"] == "baseline_to_latest"][["subject_id", "rule_id", "side", "trend"]]
    summary = latest.merge(bl, on=["subject_id", "rule_id", "side"], how="left")
    summary["trend"] = summary["trend"].fillna("")
    summary = summary[
        [
            "subject_id",
            "session",
            "rule_id",
            "side",
            "value",
            "unit",
            "threshold",
            "status",
            "severity",
            "focus",
            "trend",
        ]
    ].reset_index(drop=True)

    if out is not None:
        target = Path(out)
        pages = write_profiles(screened, trends, target, features=all_feats, mdc=mdc)
        written = [write_parquet(table, target / "screen.parquet"), *pages]
        return ScreenRun(screened, trends, mdc, summary, written)
    with st.transaction() as tx:
        ids = sorted(screened["subject_id"].dropna().unique())
        if subject is None:
            for key in sorted(st.keys("screen") - set(ids)):
                tx.delete("screen", key=key)
        for sid in ids:
            tx.write("screen", screened[screened["subject_id"] == sid], key=str(sid))
    live = [] if st.is_remote else st.files("screen")  # a remote store has no paths
    return ScreenRun(screened, trends, mdc, summary, live)
