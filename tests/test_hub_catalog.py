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
    assert [s.label for s in catalog["musiq-spaq"].sources] == ["tfhub https://tfhub.dev/google/musiq/spaq/1", "kaggle google/musiq/tensorFlow2/spaq/1"]
    assert [s.label for s in catalog["musiq-koniq"].sources] == ["tfhub https://tfhub.dev/google/musiq/koniq-10k/1",
                                                                  "kaggle google/musiq/tensorFlow2/koniq-10k/1"]
    assert [s.label for s in catalog["vila"].sources] == ["tfhub https://tfhub.dev/google/vila/image/1", "kaggle google/vila/tensorFlow2/image/1"]
    assert catalog["ava-resnet50"].sources[0].kind == "local" and catalog["siamese-comparator"].task == "comparator"
    assert catalog["clip-vit-b32"].task == "embedding" and catalog["clip-vit-b32"].sources[0].kind == "hf"


def test_every_shipped_kaggle_handle_pins_a_version_and_hf_source_a_commit() -> None:
    for spec in load_catalog(fast_config(hermetic=False)).values():
        for source in spec.sources:
            if source.kind == "kaggle":
                assert source.ref.rsplit("/", 1)[-1].isdigit() and source.ref.count("/") == 4, source.label
            if source.kind == "hf":
                assert source.revision and len(source.revision) == 40 and int(source.revision, 16) >= 0, source.label


def test_clip_entry_asks_for_the_files_the_real_repository_holds_at_a_pinned_commit() -> None:
    (hf,) = load_catalog(fast_config(hermetic=False))["clip-vit-b32"].sources
    assert hf.ref == "openai/clip-vit-base-patch32" and hf.revision == "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"
    # the repository's weights are pytorch_model.bin (no model.safetensors at that commit)
    assert hf.files == ("config.json", "preprocessor_config.json", "pytorch_model.bin")


def test_each_musiq_model_is_fed_the_size_of_the_data_it_was_trained_on() -> None:
    catalog = load_catalog(fast_config(hermetic=False))
    sizes = {name: dict(catalog[name].input) for name in ("musiq-koniq", "musiq-spaq", "musiq-paq2piq", "musiq-ava")}
    assert sizes == {"musiq-koniq": {"long_side": 1024}, "musiq-spaq": {"short_side": 512},
                     "musiq-paq2piq": {"long_side": 640}, "musiq-ava": {"long_side": 512}}


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
        ({"musiq-spaq": [{"kind": "kaggle", "handle": "google/musiq/tensorFlow2/spaq"}]}, "models.sources.musiq-spaq[0].handle"),
        ({"musiq-spaq": [{"kind": "local", "path": "/x", "extract": True}]}, "models.sources.musiq-spaq[0].extract"),
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


def test_unknown_keys_in_a_catalog_entry_are_refused_and_the_hint_names_input(tmp_path: Path) -> None:
    import dataclasses

    import yaml

    entry = {"task": "technical", "framework": "tf-savedmodel", "adapter": "musiq", "output_range": [0, 100],
             "options": {"long_side": 512}, "sources": []}
    (tmp_path / "models.yaml").write_text(yaml.safe_dump({"models": {"mine": entry}}))
    config = fast_config()
    config = dataclasses.replace(config, models=dataclasses.replace(config.models, catalog=tmp_path / "models.yaml"))
    with pytest.raises(ConfigError) as info:
        load_catalog(config)
    assert info.value.key == "models.mine.options" and "`input:`" in info.value.problem


def test_kaggle_hint_says_public_models_need_no_token() -> None:
    from daemon.hub.hub import _hints
    from daemon.errors import SourceAttempt

    spec = load_catalog(fast_config(hermetic=False))["musiq-koniq"]
    (hint,) = [h for h in _hints(spec, [SourceAttempt("kaggle google/musiq/tensorFlow2/koniq-10k/1", "failed", "HTTP 401", "x")], False, 60.0)
               if "Kaggle" in h]
    assert "public models (MUSIQ, VILA) need no token" in hint and "KAGGLE_API_TOKEN" in hint


def test_classify_sorts_errors_by_type_into_retryable_or_not() -> None:
    import urllib.error
    from email.message import Message

    from daemon.hub.sources.tfhub import client_failure

    headers = Message()
    headers["Retry-After"] = "3"
    busy = client_failure(urllib.error.HTTPError("http://x", 429, "Too Many Requests", headers, None), "x")
    assert busy.transient and busy.retry_after == 3.0 and busy.error_class == "HTTP 429"
    assert not client_failure(urllib.error.HTTPError("http://x", 404, "Not Found", Message(), None), "x").transient
    assert classify(ConnectionResetError("reset by peer")).transient
    assert classify(TimeoutError("timed out")).error_class == "Timeout"
    assert not classify(ValueError("odd")).transient

    class TimeoutLookalike(Exception):  # a name is not a type: no string matching
        pass

    assert classify(TimeoutLookalike("slow")).error_class == "TimeoutLookalike" and not classify(TimeoutLookalike()).transient


def test_each_clients_errors_are_classified_by_type_where_it_is_called() -> None:
    import httpx2
    import requests

    from daemon.hub.sources import hf, https, kaggle  # noqa: F401 - https classifies inside its download loop

    assert kaggle.client_failure(requests.ConnectionError("refused"), "k").error_class == "ConnectionError"
    assert kaggle.client_failure(requests.ReadTimeout("slow"), "k").error_class == "Timeout"
    response = requests.Response()
    response.status_code = 403
    assert kaggle.client_failure(requests.HTTPError("no", response=response), "k").error_class == "HTTP 403"
    timeout = hf.client_failure(httpx2.ReadTimeout("slow"), "h")
    assert timeout.error_class == "Timeout" and not timeout.transient  # huggingface_hub already retried
