"""Reproducible experiments: a TOML spec + a store -> a run directory with a manifest.

- :func:`read_spec`: validate a spec, every problem reported at once.
- :func:`analysis_table`: the subject x session x outcome table, built with DuckDB SQL.
- :func:`run_experiment`: fit effects, responders and reliability, write
  ``runs/<name>/<hash>/`` (tables, ``manifest.json``, figures, ``report.html``).

See ``docs/experiments.md``.
"""

from cxlab.experiments.analysis import analysis_table
from cxlab.experiments.run import Run, input_digests, run_experiment
from cxlab.experiments.spec import ExperimentSpec, Outcome, read_spec

__all__ = [
    "ExperimentSpec",
    "Outcome",
    "Run",
    "analysis_table",
    "input_digests",
    "read_spec",
    "run_experiment",
]
