"""The catalog: shipped entries, the user's extra sources, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.hub import ModelHub, load_catalog
from daemon.hub.failures import classify, parse_retry_after
from fakehubs.fixtures import fast_config


def test_shipped_catalog_has_the_musiq_vila_user_and_embedding_models() -> None:
    catalog = load_catalog(fast_config(hermetic=False))
    ranges = {name: catalog[name].output_range for name in ("musiq-spaq", "musiq-ava", "musiq-koniq", "musiq-paq2piq", "vila")}
    assert ranges == {"musiq-spaq": (0, 100), "musiq-ava": (1, 10), "musiq-koniq": (0, 100), "musiq-paq2piq": (0, 100), "vila": (0, 1)}
    assert [s.label for s in catalog["musiq-spaq"].sources] == ["tfhub https://tfhub.dev/google/musiq/spaq/1", "kaggle google/musiq/tensorFlow2/spaq"]
    assert [s.kind for s in catalog["musiq-koniq"].sources] == ["kaggle"]
    assert catalog["musiq-koniq"].sources[0].ref == "google/musiq/tensorFlow2/koniq-10k"
    assert [s.label for s in catalog["vila"].sources] == ["tfhub https://tfhub.dev/google/vila/image/1", "kaggle google/vila/tensorFlow2/image"]
    assert catalog["ava-resnet50"].sources[0].kind == "local" and catalog["siamese-comparator"].task == "comparator"
    assert catalog["clip-vit-b32"].task == "embedding" and catalog["clip-vit-b32"].sources[0].kind == "hf"


def test_user_sources_go_before_the_catalogs(tmp_path: Path) -> None:
    config = fast_config(sources={"musiq-spaq": [{"kind": "local", "path": str(tmp_path / "spaq")}]}, hermetic=False)
    kinds = [s.kind for s in load_catalog(config)["musiq-spaq"].sources]
    assert kinds == ["local", "tfhub", "kaggle"]


@pytest.mark.parametrize(
    "sources, key",
    [
        ({"no-such-model": [{"kind": "local", "path": "/x"}]}, "models.sources.no-such-model"),
        ({"musiq-spaq": [{"kind": "https", "url": "https://m/x.tar.gz"}]}, "models.sources.musiq-spaq[0].sha256"),
        ({"musiq-spaq": [{"kind": "ftp", "url": "ftp://m/x"}]}, "models.sources.musiq-spaq[0]"),
        ({"musiq-spaq": [{"kind": "hf", "repo": "a/b", "branch": "x"}]}, "models.sources.musiq-spaq[0].branch"),
    ],
)
def test_bad_user_sources_raise_config_errors_naming_the_key(sources: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_catalog(fast_config(sources=sources))
    assert info.value.key == key


def test_enabling_an_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        ModelHub(fast_config(enabled=("musiq-spaq", "musiq-nope"))).enabled()
    assert info.value.key == "models.enabled[1]" and "musiq-koniq" in info.value.problem


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    import email.utils
    import time

    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("soon") is None
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= parse_retry_after(in_ten) <= 10.5


def test_classify_sorts_client_errors_into_retryable_or_not() -> None:
    import urllib.error
    from email.message import Message

    headers = Message()
    headers["Retry-After"] = "3"
    busy = classify(urllib.error.HTTPError("http://x", 429, "Too Many Requests", headers, None))
    assert busy.transient and busy.retry_after == 3.0 and busy.error_class == "HTTP 429"
    assert not classify(urllib.error.HTTPError("http://x", 404, "Not Found", Message(), None)).transient
    assert classify(ConnectionResetError("reset by peer")).transient
    assert classify(TimeoutError("timed out")).error_class == "Timeout"
    assert not classify(ValueError("odd")).transient
