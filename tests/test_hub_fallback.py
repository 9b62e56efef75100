"""Acceptance 1: the fallback chain, and what the store records about it."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import ModelUnavailable
from daemon.hub import ModelHub
from daemon.store.reader import StoreReader
from daemon.store.writer import StoreWriter
from fakehubs.builders import random_blob, sha256_hex, tar_gz_of_dir
from fakehubs.fixtures import fast_config

pytestmark = [pytest.mark.slow, pytest.mark.tf]


def _musiq_sources(fakes: dict, folder: Path, *, with_hf: bool = True) -> list[dict]:
    """musiq-spaq served by all four fakes: TF Hub, Kaggle, HF (files of the folder), HTTPS (a tarball)."""
    tfhub_url = fakes["tfhub"].add_model("/google/musiq/spaq/1", folder)
    fakes["kaggle"].add_model("google/musiq/tensorFlow2/spaq/1", folder)
    files = [str(p.relative_to(folder)) for p in sorted(folder.rglob("*")) if p.is_file()]
    for name in files:
        fakes["hf"].add_file("mirror/musiq-spaq", name, (folder / name).read_bytes())
    tarball = tar_gz_of_dir(folder)
    https_url = fakes["https"].add("/mirror/musiq-spaq.tar.gz", tarball)
    sources = [
        {"kind": "tfhub", "url": tfhub_url},
        {"kind": "kaggle", "handle": "google/musiq/tensorFlow2/spaq/1"},
    ]
    if with_hf:
        sources.append({"kind": "hf", "repo": "mirror/musiq-spaq", "files": files})
    sources.append({"kind": "https", "url": https_url, "sha256": sha256_hex(tarball), "extract": True})
    return sources


def _score_white_and_black(path: Path) -> tuple[float, float]:
    import io

    import tensorflow as tf
    from PIL import Image

    model = tf.saved_model.load(str(path))
    serve = model.signatures["serving_default"]
    out = []
    for level in (255, 0):
        buf = io.BytesIO()
        Image.new("RGB", (16, 16), (level, level, level)).save(buf, format="PNG")
        out.append(float(serve(image_bytes_tensor=tf.constant(buf.getvalue()))["output_0"].numpy()[0]))
    return out[0], out[1]


def test_falls_back_to_kaggle_when_tfhub_503s(all_fakes, musiq_savedmodel: Path, db_path: Path) -> None:
    sources = _musiq_sources(all_fakes, musiq_savedmodel)
    all_fakes["tfhub"].down()
    config = fast_config(sources={"musiq-spaq": sources[:2]}, attempts=3)
    with StoreWriter(db_path) as writer:
        fetched = ModelHub(config, writer).fetch("musiq-spaq")
    assert fetched.source_kind == "kaggle"
    assert all_fakes["tfhub"].count == 3  # retried up to the policy's attempts, then fell through
    white, black = _score_white_and_black(fetched.path)  # the downloaded SavedModel really runs
    assert white == pytest.approx(100.0, abs=0.5) and black == pytest.approx(0.0, abs=0.5)
    with StoreReader(db_path) as reader:
        row = {r["name"]: r for r in reader.models()}["musiq-spaq"]
        events = list(reversed(reader.model_events("musiq-spaq")))
    assert row["state"] == "cached" and row["source"] == "kaggle" and row["source_ref"] == "google/musiq/tensorFlow2/spaq/1"
    assert row["cache_path"] == str(fetched.path) and row["attempts"] == 4
    kinds = [(e["kind"], (e["source"] or "").split(" ")[0], e["error_class"]) for e in events]
    assert kinds[0] == ("attempt", "tfhub", None)
    assert kinds.count(("retry", "tfhub", "HTTP 503")) == 2
    assert ("fallback", "tfhub", "HTTP 503") in kinds
    assert kinds[-1][:2] == ("success", "kaggle")


@pytest.mark.parametrize("survivor", ["hf", "https"])
def test_falls_back_to_hf_or_https_when_tfhub_and_kaggle_are_down(all_fakes, musiq_savedmodel: Path, survivor: str) -> None:
    sources = _musiq_sources(all_fakes, musiq_savedmodel, with_hf=survivor == "hf")
    all_fakes["tfhub"].down()
    all_fakes["kaggle"].fail(500)
    fetched = ModelHub(fast_config(sources={"musiq-spaq": sources}, attempts=2)).fetch("musiq-spaq")
    assert fetched.source_kind == survivor
    assert (fetched.path / "saved_model.pb").read_bytes() == (musiq_savedmodel / "saved_model.pb").read_bytes()
    assert all_fakes["kaggle"].count == 2


def test_serves_the_cached_copy_when_every_source_is_down(all_fakes, musiq_savedmodel: Path, db_path: Path) -> None:
    sources = _musiq_sources(all_fakes, musiq_savedmodel)
    all_fakes["tfhub"].down()
    all_fakes["kaggle"].down()
    config = fast_config(sources={"musiq-spaq": sources}, attempts=1)
    first = ModelHub(config).fetch("musiq-spaq")
    assert first.source_kind == "hf"
    for fake in all_fakes.values():
        fake.down()
        fake.reset_counts()
    with StoreWriter(db_path) as writer:
        again = ModelHub(config, writer).fetch("musiq-spaq")
    assert again.from_cache and again.path == first.path and again.source_kind == "hf"
    assert sum(f.count for f in all_fakes.values()) == 0  # a usable copy needs no network call
    with StoreReader(db_path) as reader:
        row = reader.models()[0]
        events = reader.model_events("musiq-spaq")
    assert row["source"] == "cache" and row["source_ref"].startswith("hf mirror/musiq-spaq")
    assert {"cache", "success"} <= {e["kind"] for e in events}


def test_model_unavailable_names_every_source_when_all_are_down_and_nothing_is_cached(all_fakes, db_path: Path) -> None:
    blob = random_blob(1000)
    all_fakes["tfhub"].add("/google/musiq/spaq/1", blob)
    url = all_fakes["https"].add("/m.tar.gz", blob)
    sources = [
        {"kind": "tfhub", "url": all_fakes["tfhub"].url + "/google/musiq/spaq/1"},
        {"kind": "kaggle", "handle": "google/musiq/tensorFlow2/spaq/1"},
        {"kind": "hf", "repo": "mirror/musiq-spaq", "filename": "saved_model.pb"},
        {"kind": "https", "url": url, "sha256": sha256_hex(blob), "extract": True},
    ]
    for kind in ("tfhub", "kaggle", "https"):
        all_fakes[kind].down()
    all_fakes["hf"].fail(401)  # (a 5xx would cost huggingface_hub's own ~20 s of retries)
    config = fast_config(sources={"musiq-spaq": sources}, attempts=2)
    with StoreWriter(db_path) as writer, pytest.raises(ModelUnavailable) as info:
        ModelHub(config, writer).fetch("musiq-spaq")
    err = info.value
    labels = [a.source for a in err.attempts]
    assert [lbl.split(" ")[0] for lbl in labels] == ["tfhub", "kaggle", "hf", "https"]
    assert all(a.outcome == "failed" for a in err.attempts)
    assert [a.error_class for a in err.attempts] == ["HTTP 503", "HTTP 503", "HTTP 401", "HTTP 503"]
    assert all_fakes["https"].count == 2 and all_fakes["kaggle"].count == 2  # 503 retried (attempts=2)
    text = str(err)
    for label in labels:
        assert label in text
    assert "keepers models fetch musiq-spaq" in text and "kind: local" in text
    with StoreReader(db_path) as reader:
        row = reader.models()[0]
        kinds = [e["kind"] for e in reader.model_events("musiq-spaq")]
    assert row["state"] == "failed" and "HTTP 503" in row["last_error"]
    assert kinds.count("fallback") == len(labels) and kinds[0] == "failure"
