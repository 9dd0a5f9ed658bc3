"""Ingest questionnaires, programme logs and dynamometer sheets into the store.

Each function reads its files, de-identifies them (:mod:`cxlab.deid`),
checks every cell, and then writes, per source file, one part keyed by the
file's sha256 (``survey-<sha16>``, ...) so that re-ingesting a file replaces
exactly its rows. Rows with a problem do not land: they are returned and
written to the ``quarantine`` table; the good rows land. All frames are
validated against :mod:`cxlab.schemas` before the first write, so a schema
failure leaves the store untouched.
"""

from cxlab.ingest_tables._common import IngestResult
from cxlab.ingest_tables._programme import ingest_interventions, ingest_strength
from cxlab.ingest_tables._sessions import ingest_sessions
from cxlab.ingest_tables._surveys import ingest_surveys

__all__ = [
    "IngestResult",
    "ingest_interventions",
    "ingest_sessions",
    "ingest_strength",
    "ingest_surveys",
]
