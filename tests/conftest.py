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


@pytest.fixture(scope="session")
def real_dir() -> Path:
    d = real_data_dir()
    if not (d / "SOURCES.md").exists():
        pytest.fail(f"real test data not found at {d}; "
                    "clone beside ../shared or set CXLAB_REAL_DATA")
    return d


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch, tmp_path_factory):
    """A fixed key so no test touches ~/.config/cxlab/key."""
    monkeypatch.setenv("CXLAB_KEY", "cxlab-test-key-not-secret-0123456789abcdef")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "xdg"))
