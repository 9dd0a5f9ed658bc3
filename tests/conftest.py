"""Shared fixtures: the real public data set beside the checkout, and a key for pseudonyms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path:
    """``../shared/data/real`` beside the checkout (or ``CXLAB_REAL_DATA``)."""
    env = os.environ.get("CXLAB_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


REQUIRE_REAL = "CXLAB_REQUIRE_REAL_DATA"
_SKIP_REASON = (
    "real test data not found at {d}: these tests read the public C3D, OpenSim and force-plate "
    "files listed in shared/data/real/SOURCES.md; clone this repository beside ../shared or point "
    "CXLAB_REAL_DATA at that folder"
)


def real_data_available() -> bool:
    return (real_data_dir() / "SOURCES.md").exists()


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The real data folder; skipped when absent, a failure when ``CXLAB_REQUIRE_REAL_DATA=1``.

    CI sets the variable (``.ci/run``), so CI never skips the tests on real files; a user who
    cloned the repository alone gets them skipped with one summary line saying where the files
    come from.
    """
    d = real_data_dir()
    if not (d / "SOURCES.md").exists():
        reason = _SKIP_REASON.format(d=d)
        if os.environ.get(REQUIRE_REAL, "") not in ("", "0"):
            pytest.fail(f"{reason} ({REQUIRE_REAL} is set, so their absence is a failure)")
        pytest.skip(reason)
    return d


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line, not one per test, when the real files are missing."""
    if not real_data_available():
        terminalreporter.write_line(
            "NOTE: "
            + _SKIP_REASON.format(d=real_data_dir())
            + "; the tests that read them were skipped",
            yellow=True,
        )


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch, tmp_path_factory):
    """A fixed key so no test touches ~/.config/cxlab/key."""
    monkeypatch.setenv("CXLAB_KEY", "cxlab-test-key-not-secret-0123456789abcdef")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))
