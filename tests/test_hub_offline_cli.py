"""Acceptance 4 (offline mode makes no network call) and 6 (`keepers models status|fetch`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from daemon.config import load_config
from daemon.errors import KeepersError, ModelUnavailable
from daemon.hub import ModelHub
from daemon.store.reader import StoreReader
from daemon.store.writer import StoreWriter
from fakehubs.builders import random_blob, sha256_hex
from fakehubs.fixtures import fast_config


def _sources(fakes: dict) -> tuple[dict, bytes]:
    """ava-resnet50 from the HTTPS fake; musiq-koniq from every other fake (never fetched online here)."""
    blob = random_blob(20_000)
    fakes["kaggle"].add_model("google/musiq/tensorFlow2/koniq-10k", files={"saved_model.pb": blob})
    fakes["hf"].add_file("mirror/koniq", "saved_model.pb", blob)
    tfhub_url = fakes["tfhub"].add("/google/musiq/koniq/1", blob)
    return {
        "ava-resnet50": [{"kind": "https", "url": fakes["https"].add("/ava.pt", blob), "sha256": sha256_hex(blob)}],
        "musiq-koniq": [
            {"kind": "tfhub", "url": tfhub_url},
            {"kind": "hf", "repo": "mirror/koniq", "filename": "saved_model.pb"},
            {"kind": "https", "url": fakes["https"].add("/koniq.pb", blob), "sha256": sha256_hex(blob)},
        ],
    }, blob


def test_offline_mode_serves_cached_models_with_zero_network_calls(all_fakes, db_path: Path) -> None:
    sources, blob = _sources(all_fakes)
    online = ModelHub(fast_config(sources=sources))
    prefetched = online.fetch("ava-resnet50")
    for fake in all_fakes.values():
        fake.reset_counts()
    offline = fast_config(sources=sources, offline=True)
    with StoreWriter(db_path) as writer:
        hub = ModelHub(offline, writer)
        got = hub.fetch("ava-resnet50")
        with pytest.raises(ModelUnavailable) as info:
            hub.fetch("musiq-koniq")
    assert got.path == prefetched.path and got.from_cache and got.path.read_bytes() == blob
    assert {name: fake.count for name, fake in all_fakes.items()} == {"tfhub": 0, "kaggle": 0, "hf": 0, "https": 0}
    err = info.value
    assert {a.outcome for a in err.attempts} == {"offline"} and len(err.attempts) == 3
    assert "leave offline mode" in str(err) and "KEEPERS_OFFLINE" in str(err)
    with StoreReader(db_path) as reader:
        states = {r["name"]: r["state"] for r in reader.models()}
    assert states == {"ava-resnet50": "cached", "musiq-koniq": "offline-unavailable"}


@pytest.mark.parametrize("variable", ["KEEPERS_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_environment_variables_turn_offline_mode_on(all_fakes, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    sources, _ = _sources(all_fakes)
    monkeypatch.setenv(variable, "1")
    config = load_config(check_folders=False)
    assert config.models.offline
    hub = ModelHub(fast_config(sources=sources, offline=config.models.offline))
    with pytest.raises(ModelUnavailable):
        hub.fetch("musiq-koniq")
    assert sum(f.count for f in all_fakes.values()) == 0


# -- the CLI -------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    """Run `keepers models ...` the way daemon.cli.main does (argument parsing, KeepersError → exit 2)."""
    from daemon.cli import models

    parser = argparse.ArgumentParser(prog="keepers")
    models.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeepersError:
        return 2


def _write_config(isolated_env: Path, db_path: Path, sources: dict, enabled: list[str]) -> Path:
    file = isolated_env / "config" / "keepers.yaml"
    file.parent.mkdir(parents=True, exist_ok=True)
    # the shipped catalog: its extra sources here are local files (absent) and Kaggle (the fake)
    models = {"enabled": enabled, "sources": sources, "retry": {"attempts": 2, "initial_seconds": 0.05, "timeout_seconds": 5}}
    file.write_text(yaml.safe_dump({"database": str(db_path), "models": models}))
    return file


def test_models_fetch_shows_progress_and_exits_nonzero_with_the_reason(all_fakes, isolated_env: Path, db_path: Path, capsys) -> None:
    sources, _ = _sources(all_fakes)
    all_fakes["tfhub"].down()
    all_fakes["hf"].fail(404)
    all_fakes["https"].fail(503, path_contains="koniq")
    all_fakes["kaggle"].down()
    _write_config(isolated_env, db_path, sources, ["ava-resnet50", "musiq-koniq"])
    code = _cli(["models", "fetch"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "ava-resnet50: fetched from https" in out
    assert "ava-resnet50 (https)" in err and "100%" in err  # the download's progress bar
    assert "model 'musiq-koniq' is unavailable" in err and "HTTP 503" in err and "HTTP 404" in err


def test_models_status_json_reports_state_source_and_last_error(all_fakes, isolated_env: Path, db_path: Path, capsys) -> None:
    sources, _ = _sources(all_fakes)
    for fake in all_fakes.values():
        fake.fail(401, path_contains="koniq")
    all_fakes["kaggle"].fail(401)
    _write_config(isolated_env, db_path, sources, ["ava-resnet50", "musiq-koniq", "siamese-comparator"])
    assert _cli(["models", "fetch", "--json"]) == 1
    capsys.readouterr()
    assert _cli(["models", "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in report["models"]}
    # models.enabled first, then the face models the (default) faces scorer loads itself
    assert list(rows) == ["ava-resnet50", "musiq-koniq", "siamese-comparator", "face-detector", "face-mesh", "face-iris"]
    assert rows["ava-resnet50"]["state"] == "cached" and rows["ava-resnet50"]["source"] == "https"
    assert rows["ava-resnet50"]["last_error"] is None
    assert rows["musiq-koniq"]["state"] == "failed" and "HTTP 401" in rows["musiq-koniq"]["last_error"]
    assert rows["siamese-comparator"]["state"] == "failed" and "NotFound" in rows["siamese-comparator"]["last_error"]


def test_models_fetch_offline_flag_makes_no_network_call(all_fakes, isolated_env: Path, db_path: Path, capsys) -> None:
    sources, _ = _sources(all_fakes)
    _write_config(isolated_env, db_path, sources, ["musiq-koniq"])
    assert _cli(["models", "fetch", "--offline", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result[0]["ok"] is False and "offline" in result[0]["error"]
    assert sum(f.count for f in all_fakes.values()) == 0


def test_models_verify_notices_a_changed_cached_file(all_fakes, isolated_env: Path, db_path: Path, capsys) -> None:
    sources, _ = _sources(all_fakes)
    _write_config(isolated_env, db_path, sources, ["ava-resnet50"])
    assert _cli(["models", "fetch", "--json"]) == 0
    path = Path(json.loads(capsys.readouterr().out)[0]["path"])
    assert _cli(["models", "verify"]) == 0
    assert "ok" in capsys.readouterr().out
    path.write_bytes(b"tampered")
    assert _cli(["models", "verify", "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in rows] == [("ava-resnet50", "mismatch")]


def test_models_prune_removes_copies_of_models_no_longer_enabled(all_fakes, isolated_env: Path, db_path: Path, capsys) -> None:
    sources, _ = _sources(all_fakes)
    _write_config(isolated_env, db_path, sources, ["ava-resnet50"])
    assert _cli(["models", "fetch", "--json"]) == 0
    path = Path(json.loads(capsys.readouterr().out)[0]["path"])
    _write_config(isolated_env, db_path, sources, [])
    assert _cli(["models", "prune", "--dry-run"]) == 0 and path.exists()
    assert "would remove ava-resnet50" in capsys.readouterr().out
    assert _cli(["models", "prune", "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert not path.exists()
    assert removed["removed"][0]["name"] == "ava-resnet50"
