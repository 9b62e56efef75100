"""Each source kind, through its real client, against its fake hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import paths
from daemon.hub import ModelHub
from fakehubs.builders import random_blob, save_safetensors, sha256_hex
from fakehubs.fixtures import fast_config

KONIQ_KAGGLE = {"kind": "kaggle", "handle": "google/musiq/tensorFlow2/koniq-10k/1"}  # the catalog's own handle


def test_kaggle_source_downloads_every_file_of_the_pinned_version(kaggle_fake, tmp_path: Path) -> None:
    files = {"saved_model.pb": random_blob(3000, 1), "variables/variables.index": random_blob(200, 2)}
    kaggle_fake.add_model("google/musiq/tensorFlow2/koniq-10k/1", files=files)
    kaggle_fake.add_model("google/musiq/tensorFlow2/koniq-10k/2", files={"saved_model.pb": random_blob(10, 3)})  # a newer upload
    fetched = ModelHub(fast_config(sources={"musiq-koniq": [KONIQ_KAGGLE]})).fetch("musiq-koniq")
    assert fetched.source_kind == "kaggle" and not fetched.from_cache
    assert (fetched.path / "saved_model.pb").read_bytes() == files["saved_model.pb"]  # version 1, as pinned
    assert (fetched.path / "variables" / "variables.index").read_bytes() == files["variables/variables.index"]
    assert fetched.bytes == 3200
    methods = [r.path.rsplit("/", 1)[-1] for r in kaggle_fake.requests]
    assert "GetModelInstance" not in methods  # a pinned version never asks which one is current
    assert methods.count("DownloadModelInstanceVersion") == 2
    assert fetched.path.is_relative_to(paths.cache_dir() / "kagglehub")  # kagglehub's cache, under keepers' own


def test_pinned_kaggle_version_loads_from_kagglehubs_cache_offline_with_zero_requests(kaggle_fake) -> None:
    import kagglehub

    kaggle_fake.add_model("google/musiq/tensorFlow2/koniq-10k/1", files={"saved_model.pb": random_blob(500, 4)})
    first = ModelHub(fast_config(sources={"musiq-koniq": [KONIQ_KAGGLE]})).fetch("musiq-koniq")
    kaggle_fake.reset_counts()
    kaggle_fake.down()  # were anything asked, it would fail
    # kagglehub itself: a pinned handle is answered from its cache before any request.
    assert Path(kagglehub.model_download(KONIQ_KAGGLE["handle"])) == first.path
    # keepers in offline mode, with its own record of the copy removed: the source asks kagglehub, which needs no network.
    hub = ModelHub(fast_config(sources={"musiq-koniq": [KONIQ_KAGGLE]}))
    hub.cache.forget("musiq-koniq")
    again = hub.fetch("musiq-koniq")
    offline = ModelHub(fast_config(sources={"musiq-koniq": [KONIQ_KAGGLE]}, offline=True)).fetch("musiq-koniq")
    assert again.path == first.path == offline.path and offline.from_cache
    assert kaggle_fake.count == 0


def test_kagglesdk_still_reaches_other_addresses_only_through_localhost_and_the_proxy_variables() -> None:
    """kagglehub 1.0 / kagglesdk 0.1.38 offer no API address setting (the kaggle source says so):
    if this fails, a release changed that, and the kaggle source and the fake should use the new setting."""
    from kagglesdk.kaggle_env import KaggleEnv, get_endpoint

    import kagglehub

    assert get_endpoint(KaggleEnv.LOCAL) == "http://localhost"  # what KAGGLE_API_ENVIRONMENT=LOCALHOST selects
    assert kagglehub.__version__.startswith("1.0."), "a new kagglehub: check for an endpoint setting (kaggle source docstring)"


def test_hf_source_downloads_the_named_files_at_the_pinned_revision(hf_fake, tmp_path: Path) -> None:
    weights = save_safetensors(tmp_path / "model.safetensors").read_bytes()
    hf_fake.add_file("someone/tiny-clip", "model.safetensors", weights)
    hf_fake.add_file("someone/tiny-clip", "config.json", b'{"hidden_size": 8}')
    config = fast_config(sources={"clip-vit-b32": [{"kind": "hf", "repo": "someone/tiny-clip", "filename": "model.safetensors", "revision": "main"}]})
    fetched = ModelHub(config).fetch("clip-vit-b32")
    assert fetched.source_kind == "hf"
    assert fetched.path.name == "model.safetensors" and fetched.path.read_bytes() == weights
    assert any(r.method == "GET" and r.path.endswith("/resolve/main/model.safetensors") for r in hf_fake.requests)


def test_hf_snapshot_source_fetches_listed_files_into_one_folder(hf_fake) -> None:
    hf_fake.add_file("someone/tiny-clip", "config.json", b'{"a": 1}')
    hf_fake.add_file("someone/tiny-clip", "model.safetensors", random_blob(500))
    hf_fake.add_file("someone/tiny-clip", "unrelated.bin", random_blob(900))
    config = fast_config(sources={"clip-vit-b32": [{"kind": "hf", "repo": "someone/tiny-clip", "files": ["config.json", "model.safetensors"]}]})
    fetched = ModelHub(config).fetch("clip-vit-b32")
    assert sorted(p.name for p in fetched.path.iterdir()) == ["config.json", "model.safetensors"]


def test_https_source_verifies_and_stores_the_file(https_fake) -> None:
    blob = random_blob(50_000)
    url = https_fake.add("/mirror/ava.pt", blob)
    config = fast_config(sources={"ava-resnet50": [{"kind": "https", "url": url, "sha256": sha256_hex(blob)}]})
    fetched = ModelHub(config).fetch("ava-resnet50")
    assert fetched.source_kind == "https" and fetched.path.read_bytes() == blob
    assert fetched.sha256 == sha256_hex(blob)
    assert not list(fetched.path.parent.glob("*.part"))


def test_local_source_serves_the_users_file_without_copying(tmp_path: Path) -> None:
    ckpt = tmp_path / "best_model.pt"
    ckpt.write_bytes(random_blob(100))
    config = fast_config(sources={"ava-resnet50": [{"kind": "local", "path": str(ckpt)}]})
    fetched = ModelHub(config).fetch("ava-resnet50")
    assert fetched.path == ckpt and fetched.source_kind == "local"


def test_local_file_with_wrong_pinned_hash_is_refused_but_kept(tmp_path: Path) -> None:
    from daemon.errors import ModelUnavailable

    ckpt = tmp_path / "best_model.pt"
    ckpt.write_bytes(b"x" * 10)
    config = fast_config(sources={"ava-resnet50": [{"kind": "local", "path": str(ckpt), "sha256": "0" * 64}]})
    with pytest.raises(ModelUnavailable) as info:
        ModelHub(config).fetch("ava-resnet50")
    assert info.value.attempts[0].error_class == "HashMismatch"
    assert ckpt.exists()


def test_fake_hubs_run_as_a_separate_process_with_faults_switched_over_http(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    blob = random_blob(1000)
    (tmp_path / "ava.pt").write_bytes(blob)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakehubs", "--https", f"/ava.pt={tmp_path / 'ava.pt'}"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        urls = json.loads(proc.stdout.readline())
        assert urls["pid"] == proc.pid
        assert urllib.request.urlopen(urls["https"] + "/ava.pt", timeout=5).read() == blob
        fault = json.dumps({"kind": "status", "status": 503}).encode()
        urllib.request.urlopen(urllib.request.Request(urls["https"] + "/__fake/fault", data=fault, method="POST"), timeout=5)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(urls["https"] + "/ava.pt", timeout=5)
        assert info.value.code == 503
        stats = json.loads(urllib.request.urlopen(urls["https"] + "/__fake/stats", timeout=5).read())
        assert stats["requests"] == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


@pytest.mark.slow
@pytest.mark.tf
def test_tfhub_source_downloads_the_tarball_and_reloads_it_with_the_server_gone(musiq_savedmodel: Path) -> None:
    import os

    from fakehubs import TFHubFake

    with TFHubFake() as tfhub:
        url = tfhub.add_model("/google/musiq/spaq/1", musiq_savedmodel)
        config = fast_config(sources={"musiq-spaq": [{"kind": "tfhub", "url": url}]})
        fetched = ModelHub(config).fetch("musiq-spaq")
        assert tfhub.requests[0].query == "tf-hub-format=compressed"  # asked the tfhub way
    assert fetched.source_kind == "tfhub" and not fetched.from_cache
    assert fetched.path.parent == Path(os.environ["TFHUB_CACHE_DIR"])  # tensorflow_hub's own cache
    assert (fetched.path / "saved_model.pb").read_bytes() == (musiq_savedmodel / "saved_model.pb").read_bytes()
    again = ModelHub(config).fetch("musiq-spaq")  # the server is gone
    assert again.from_cache and again.path == fetched.path
    import tensorflow_hub

    assert Path(tensorflow_hub.resolve(url)) == fetched.path  # the client finds its cached copy too


def test_hf_snapshot_missing_a_listed_file_falls_back_and_caches_nothing(hf_fake, https_fake, tmp_path: Path) -> None:
    from daemon.hub.sources.hf import hf_cache_dir
    from fakehubs.builders import tar_gz_of_dir

    files = ["config.json", "preprocessor_config.json", "pytorch_model.bin"]  # what the real repository holds
    hf_fake.add_file("openai/clip-vit-base-patch32", "config.json", b'{"projection_dim": 8}')
    hf_fake.add_file("openai/clip-vit-base-patch32", "preprocessor_config.json", b"{}")  # but this one lacks the weights
    complete = tmp_path / "complete"
    complete.mkdir()
    for name in files:
        (complete / name).write_bytes(random_blob(100 + len(name)))
    tarball = tar_gz_of_dir(complete)
    sources = [{"kind": "hf", "repo": "openai/clip-vit-base-patch32", "files": files},
               {"kind": "https", "url": https_fake.add("/clip.tar.gz", tarball), "sha256": sha256_hex(tarball), "extract": True}]
    hub = ModelHub(fast_config(sources={"clip-vit-b32": sources}))
    fetched = hub.fetch("clip-vit-b32")
    assert fetched.source_kind == "https" and sorted(p.name for p in fetched.path.iterdir()) == sorted(files)
    assert hf_fake.count > 0  # hf was asked first
    assert list(hub.cache.entries("clip-vit-b32")) == [f"https {sources[1]['url']}"]  # nothing recorded for hf
    snapshots = hf_cache_dir() / "models--openai--clip-vit-base-patch32" / "snapshots"
    assert not [p for p in snapshots.rglob("*") if p.is_file()]  # and no partial snapshot left behind
    from daemon.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable) as info:  # hf alone: says what was missing
        ModelHub(fast_config(sources={"clip-vit-b32": sources[:1]})).fetch("clip-vit-b32")
    (attempt,) = info.value.attempts
    assert attempt.error_class == "MissingFiles" and "pytorch_model.bin" in attempt.message
    with pytest.raises(ModelUnavailable):  # offline, nothing partial is served either
        ModelHub(fast_config(sources={"clip-vit-b32": sources[:1]}, offline=True)).fetch("clip-vit-b32")


@pytest.mark.slow
@pytest.mark.tf
def test_tfhub_trickle_ends_on_the_progress_deadline_since_the_client_sets_no_timeout(musiq_savedmodel: Path) -> None:
    import time

    import tensorflow_hub

    from daemon.errors import ModelUnavailable
    from fakehubs import TFHubFake

    # The tfhub source's docstring: this release opens URLs with no timeout and has no setting for one.
    assert tensorflow_hub.__version__ == "0.16.1", "a new tensorflow_hub: check whether it takes a timeout now (sources/tfhub.py)"
    with TFHubFake() as tfhub:
        url = tfhub.add_model("/google/musiq/spaq/1", musiq_savedmodel)
        tfhub.trickle(1.0)
        config = fast_config(sources={"musiq-spaq": [{"kind": "tfhub", "url": url}]}, attempts=3,
                             min_bytes_per_second=200, slow_window_seconds=3.0)
        started = time.monotonic()
        with pytest.raises(ModelUnavailable) as info:
            ModelHub(config).fetch("musiq-spaq")
        took = time.monotonic() - started
    (attempt,) = info.value.attempts
    assert attempt.error_class == "TooSlow" and tfhub.count == 1  # given up on, not retried
    assert took < 20, f"took {took:.1f} s"
