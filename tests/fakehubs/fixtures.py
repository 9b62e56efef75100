"""pytest fixtures for the fake hubs (registered in tests/conftest.py).

    def test_x(tfhub_fake, kaggle_fake, musiq_savedmodel):
        url = tfhub_fake.add_model("/google/musiq/spaq/1", musiq_savedmodel)
        kaggle_fake.add_model("google/musiq/tensorFlow2/spaq/1", musiq_savedmodel)
        tfhub_fake.down()
        config = fast_config(sources={"musiq-spaq": [{"kind": "tfhub", "url": url}]})

Each fake runs on a free 127.0.0.1 port for one test and is stopped after
it. ``kaggle_fake`` sets KAGGLE_API_ENVIRONMENT and HTTP_PROXY (see
KaggleFake) and ``hf_fake`` sets HF_ENDPOINT for the test, so the real
clients talk to them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator

import pytest

import yaml

from daemon import paths
from daemon.config import Config, RetryPolicy, SourceHealth, load_config

from .builders import build_musiq_savedmodel
from .hubs import FileHub, HFFake, KaggleFake, TFHubFake


def fast_config(
    *,
    sources: dict[str, list[dict[str, Any]]] | None = None,
    enabled: tuple[str, ...] = (),
    offline: bool = False,
    attempts: int = 3,
    initial_seconds: float = 0.05,
    max_seconds: float = 5.0,
    timeout_seconds: float = 5.0,
    min_bytes_per_second: float = 1024.0,
    slow_window_seconds: float = 60.0,
    health: SourceHealth | None = None,
    database: Path | None = None,
    hermetic: bool = True,
) -> Config:
    """The default config with short retry waits and the given model sources.

    ``hermetic`` (the default) uses the shipped catalog with its own sources
    removed, so a test only ever reaches the sources it names (never the real
    tfhub.dev or Kaggle, should a test machine have a network).
    """
    base = load_config(check_folders=False)
    models = dataclasses.replace(
        base.models,
        catalog=hermetic_catalog() if hermetic else None,
        sources=dict(sources or {}),
        enabled=tuple(enabled),
        offline=offline,
        retry=RetryPolicy(attempts=attempts, initial_seconds=initial_seconds, max_seconds=max_seconds, timeout_seconds=timeout_seconds,
                          min_bytes_per_second=min_bytes_per_second, slow_window_seconds=slow_window_seconds),
        health=health or SourceHealth(failures=100, window_seconds=600, cooldown_seconds=300),
    )
    return dataclasses.replace(base, models=models, database=database)


def hermetic_catalog() -> Path:
    """A copy of the shipped catalog whose models have no sources of their own (written to the state folder)."""
    data = yaml.safe_load(paths.DEFAULT_CATALOG_FILE.read_text(encoding="utf-8"))
    for entry in data["models"].values():
        entry["sources"] = []
    file = paths.state_dir() / "hermetic-models.yaml"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return file


@pytest.fixture
def tfhub_fake() -> Iterator[TFHubFake]:
    with TFHubFake() as hub:
        yield hub


@pytest.fixture
def kaggle_fake(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaggleFake]:
    with KaggleFake() as hub:
        for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name, value in hub.client_env().items():
            monkeypatch.setenv(name, value)
        for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path_factory.mktemp("kaggle-config")))  # no real credentials
        yield hub


@pytest.fixture
def hf_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[HFFake]:
    with HFFake() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


@pytest.fixture
def https_fake() -> Iterator[FileHub]:
    with FileHub() as hub:
        yield hub


@pytest.fixture
def all_fakes(tfhub_fake: TFHubFake, kaggle_fake: KaggleFake, hf_fake: HFFake, https_fake: FileHub) -> dict[str, Any]:
    """All four fakes, by source kind."""
    return {"tfhub": tfhub_fake, "kaggle": kaggle_fake, "hf": hf_fake, "https": https_fake}


@pytest.fixture(scope="session")
def musiq_savedmodel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MUSIQ-signature SavedModel folder (score = brightness on 0..100), built once per session."""
    return build_musiq_savedmodel(tmp_path_factory.mktemp("musiq-savedmodel") / "model", (0.0, 100.0))
