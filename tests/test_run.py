"""Provenance of a run: the git commit in the manifest is cxlab's own (experiments/run.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cxlab
from cxlab.experiments.run import _git_info

HERE = Path(__file__).resolve().parent

_PROBE = (
    "import json, cxlab; from cxlab.experiments.run import _git_info; "
    "print(json.dumps({'file': cxlab.__file__, **_git_info()}))"
)


def _git(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def _probe(pythonpath: Path, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def test_commit_is_git_rev_parse_head_of_the_project():
    # the tests live in the project's repository; the editable install imports its src/
    head = _git("rev-parse", "HEAD", cwd=HERE)
    top = Path(_git("rev-parse", "--show-toplevel", cwd=HERE))
    assert Path(cxlab.__file__).resolve().is_relative_to(top)
    info = _git_info()
    assert info["commit"] == head
    assert isinstance(info["dirty"], bool)


def test_an_enclosing_unrelated_repository_is_not_recorded(tmp_path):
    # a non-editable install: the package copied into a site-packages that lies inside
    # another repository (say, a virtual environment inside a user's analysis repo)
    outer = tmp_path / "analysis"
    site = outer / "venv" / "site-packages"
    shutil.copytree(
        Path(cxlab.__file__).parent, site / "cxlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    _git("init", "-q", cwd=outer)
    (outer / "notes.txt").write_text("an unrelated project\n")
    _git("add", "notes.txt", cwd=outer)
    _git("-c", "user.name=x", "-c", "user.email=x@example.org", "commit", "-qm", "x", cwd=outer)
    unrelated = _git("rev-parse", "HEAD", cwd=outer)
    got = _probe(site, tmp_path)
    assert Path(got["file"]).resolve().is_relative_to(site.resolve())  # the copy was imported
    assert got["commit"] is None and got["commit"] != unrelated
    assert got["dirty"] is None
    assert "does not track it" in got["commit_note"]
    assert str(tmp_path) not in got["commit_note"]  # no path in a shared manifest


def test_outside_any_checkout_the_commit_is_null_with_a_reason(tmp_path):
    site = tmp_path / "site-packages"
    shutil.copytree(
        Path(cxlab.__file__).parent, site / "cxlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    got = _probe(site, tmp_path)
    if got["commit_note"] == "git is not installed":
        return
    assert got["commit"] is None and got["dirty"] is None
    assert got["commit_note"] == "the installed cxlab package is not in a git checkout"
