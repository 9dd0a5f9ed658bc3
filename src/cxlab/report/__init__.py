"""A run directory -> one self-contained HTML report for coaches and clinicians.

The report inlines every figure as SVG, uses no external fonts, scripts or
styles and makes no network request, so it opens offline and can be e-mailed
as one file. Participants appear as ``P01``, ``P02``, ... only.

The page is composed of small sections (:mod:`cxlab.report.page`, one function and
one autoescaped template each, as mne's ``Report.add_*``) in :data:`page.SECTIONS`
order.
"""

from __future__ import annotations

import os
from pathlib import Path

from jinja2 import FileSystemLoader

from cxlab._check import ConfigError, message
from cxlab._html import html_environment
from cxlab.report.findings import findings
from cxlab.store import write_text

__all__ = ["findings", "render_report"]

_TEMPLATES = Path(__file__).with_name("templates")


def render_report(run_dir: str | os.PathLike[str], /) -> Path:
    """Render ``report.html`` (and ``figures/*.svg``) for a run directory.

    Parameters
    ----------
    run_dir : path-like
        A directory written by :func:`cxlab.experiments.run_experiment`.

    Returns
    -------
    pathlib.Path
        ``run_dir/report.html``: one self-contained HTML file with the sections of
        :data:`cxlab.report.page.SECTIONS` in that order (findings matrix, flow,
        participants, cohort and data quality, trajectories, effects (forest plot),
        marginal means, moderators, curves when the run has curve outcomes, responders,
        asymmetry, screening, reliability, methods and limitations), each listed in the
        table of contents. The same run gives the same bytes.

    Raises
    ------
    ConfigError
        If ``run_dir`` has no ``manifest.json``.
    """
    from cxlab.report.page import SECTIONS, read_run

    run = Path(run_dir)
    if not (run / "manifest.json").exists():
        raise ConfigError(
            message(
                "is not a run directory (no manifest.json)",
                file=run,
                fix="pass a directory written by `cxlab run`",
            )
        )
    data = read_run(run)
    shown = [s for s in (section(data) for section in SECTIONS) if s.html]
    man = data.manifest
    env = html_environment(FileSystemLoader(str(_TEMPLATES)))  # autoescape for every template
    page = env.get_template("report.html.j2").render(
        title=man["title"],
        name=man["name"],
        run_id=man["run_id"],
        cxlab_version=man["cxlab"]["version"],
        toc=[(s.id, s.title) for s in shown],
        sections=shown,
    )
    out = run / "report.html"
    write_text(page, out)
    return out
