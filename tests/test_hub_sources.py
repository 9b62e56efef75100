"""Each source kind, through its real client, against its fake hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.hub import ModelHub
from fakehubs.builders import random_blob, save_safetensors, sha256_hex
from fakehubs.fixtures import fast_config


def test_kaggle_source_downloads_every_file_of_the_model_instance(kaggle_fake, tmp_path: Path) -> None:
    files = {"saved_model.pb": random_blob(3000, 1), "variables/variables.index": random_blob(200, 2)}
    kaggle_fake.add_model("google/musiq/tensorFlow2/koniq-10k", files=files, version=3)
    hub = ModelHub(fast_config(hermetic=False))  # the catalog's own Kaggle handle, served by the fake
    fetched = hub.fetch("musiq-koniq")
    assert fetched.source_kind == "kaggle" and not fetched.from_cache
    assert (fetched.path / "saved_model.pb").read_bytes() == files["saved_model.pb"]
    assert (fetched.path / "variables" / "variables.index").read_bytes() == files["variables/variables.index"]
    assert fetched.bytes == 3200
    methods = [r.path.rsplit("/", 1)[-1] for r in kaggle_fake.requests]
    assert methods[0] == "GetModelInstance" and "ListModelInstanceVersionFiles" in methods
    assert methods.count("DownloadModelInstanceVersion") == 2


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
