"""Shared fixtures. Every test runs with its own state, cache and config
locations so nothing touches the real ~/.config, ~/.local/state or ~/.cache.

Area-specific fixtures live in their own modules (tests/fixtures_*.py) listed
in ``pytest_plugins`` below.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins: list[str] = ["fixtures_tui", "fixtures_models", "fakehubs.fixtures", "fixtures_photos"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every keepers and hub-client location at a fresh temp folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("KEEPERS_STATE_DIR", str(home / "state"))
    monkeypatch.setenv("KEEPERS_CACHE", str(home / "cache"))
    monkeypatch.setenv("KEEPERS_CONFIG", str(home / "config" / "keepers.yaml"))  # absent: defaults apply
    monkeypatch.setenv("XDG_PICTURES_DIR", str(home / "Pictures"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))  # its token; the clients' caches default to under KEEPERS_CACHE
    for name in ("TFHUB_CACHE_DIR", "KAGGLEHUB_CACHE", "HF_HUB_CACHE"):  # restored to unset after the test
        monkeypatch.delenv(name, raising=False)
    for name in ("KEEPERS_DB", "KEEPERS_PHOTOS", "KEEPERS_OFFLINE", "HF_HUB_OFFLINE", "NOTIFY_SOCKET", "JOURNAL_STREAM"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """An empty photo folder."""
    d = tmp_path / "photos"
    d.mkdir()
    return d


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's database goes (not created yet)."""
    return tmp_path / "state" / "keepers.db"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked tf/torch need those extras; `make test` installs them all, so a
    # missing framework is a broken set-up, not a reason to skip silently.
    del config, items


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
