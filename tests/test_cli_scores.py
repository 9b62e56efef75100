"""`keepers run --once` and `keepers scores` end to end, through the command line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.cli import main
from daemon.store import StoreWriter
from fixtures_photos import save_jpeg, scene

BUILTIN = {"sharpness", "exposure", "contrast", "noise", "compression", "brisque"}
FIELDS = {"path", "status", "error", "scores", "raw", "composite", "coverage", "groups", "missing_models"}


def scores_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["scores", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_run_once_scores_200_twelve_megapixel_jpegs(jpegs_12mp: Path, db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--photos", str(jpegs_12mp), "--db", str(db_path)]) == 0
    summary = capsys.readouterr().out
    assert "found 200, new 200" in summary and "scored 200" in summary
    records = scores_json(capsys, "--db", str(db_path))
    assert len(records) == 200
    for r in records:
        assert FIELDS <= set(r)
        assert r["status"] == "scored" and r["error"] is None
        assert BUILTIN <= set(r["scores"]), r["scores"]
        assert all(0.0 <= v <= 1.0 for v in r["scores"].values())
        assert 0.0 <= r["composite"] <= 1.0 and "technical" in r["coverage"]
        assert r["width"] == 4000 and r["height"] == 3000


def test_second_run_scores_nothing_and_touch_rescores_one(photo_dir: Path, db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, name in enumerate(("coffee", "chelsea", "rocket")):
        save_jpeg(scene(name, (320, 240)), photo_dir / f"{i}.jpg")
    argv = ["run", "--once", "--photos", str(photo_dir), "--db", str(db_path)]
    assert main(argv) == 0
    assert "scored 3" in capsys.readouterr().out
    before = {r["path"]: r for r in scores_json(capsys, "--db", str(db_path))}
    assert main(argv) == 0
    assert "unchanged 3" in (out := capsys.readouterr().out) and "scored 0" in out
    later = time.time() + 10
    os.utime(photo_dir / "1.jpg", (later, later))
    (photo_dir / "2.jpg").unlink()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "changed 1" in out and "deleted 1" in out and "scored 1" in out
    after = {r["path"]: r for r in scores_json(capsys, "--db", str(db_path))}
    assert after[str(photo_dir / "2.jpg")]["status"] == "deleted"
    assert after[str(photo_dir / "0.jpg")]["scores"] == before[str(photo_dir / "0.jpg")]["scores"]


def test_scores_lists_enabled_models_that_have_not_scored_a_photo(photo_dir: Path, db_path: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "models.yaml"
    catalog.write_text(yaml.safe_dump({"models": {
        "my-aesthetic": {"task": "aesthetic", "framework": "torchscript", "adapter": "torchscript", "output_range": [0, 10],
                         "sources": [{"kind": "local", "path": str(tmp_path / "missing.pt")}]},
        "my-embed": {"task": "embedding", "framework": "torchscript", "adapter": "torchscript", "output_range": [-1, 1],
                     "sources": [{"kind": "local", "path": str(tmp_path / "missing-embed.pt")}]}}}))
    config = tmp_path / "keepers.yaml"
    config.write_text(yaml.safe_dump({"models": {"catalog": str(catalog), "enabled": ["my-aesthetic", "my-embed"]}}))
    save_jpeg(scene("coffee", (320, 240)), photo_dir / "c.jpg")
    assert main(["run", "--once", "--photos", str(photo_dir), "--db", str(db_path)]) == 0
    (record,) = scores_json(capsys, "--db", str(db_path), "--config", str(config))
    assert record["missing_models"] == ["my-aesthetic", "my-embed"]
    with StoreWriter(db_path) as writer:  # the embedding model's vector, as the backfill stores it
        writer.call(lambda db: db.conn.execute("INSERT INTO embeddings (image_id, model, dim, vector) VALUES (?, 'my-embed', 2, ?)",
                                               (record["id"], b"\0" * 8)))
    (record,) = scores_json(capsys, "--db", str(db_path), "--config", str(config))
    assert record["missing_models"] == ["my-aesthetic"]
    (record,) = scores_json(capsys, "--db", str(db_path))  # the default config enables no model
    assert record["missing_models"] == []


def test_scores_prints_a_table_and_says_when_there_is_no_database(photo_dir: Path, db_path: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scores", "--db", str(tmp_path / "none.db")]) == 1
    assert "no database" in capsys.readouterr().err
    save_jpeg(scene("chelsea", (320, 240)), photo_dir / "cat.jpg")
    (photo_dir / "bad.jpg").write_text("not a photo")
    assert main(["run", "--once", "--photos", str(photo_dir), "--db", str(db_path)]) == 0
    capsys.readouterr()
    assert main(["scores", "--db", str(db_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "composite" in lines[0] and "sharpness" in lines[0]
    assert any("cat.jpg" in line and "scored" in line for line in lines)
    assert any("bad.jpg" in line and "error" in line and "text" in line for line in lines)


def test_run_once_with_a_missing_folder_names_it_and_exits_non_zero(tmp_path: Path, db_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--once", "--photos", str(tmp_path / "nope"), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "does not exist" in err


def test_run_once_after_a_scorer_upgrade_scores_the_library_again(tmp_path: Path, db_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.scoring.builtin.technical import Exposure

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(("coffee", "rocket")):
        save_jpeg(scene(name, (320, 240)), folder / f"{i}.jpg")
    assert main(["run", "--once", "--photos", str(folder), "--db", str(db_path)]) == 0
    capsys.readouterr()
    assert main(["run", "--once", "--photos", str(folder), "--db", str(db_path)]) == 0
    assert "unchanged 2," in capsys.readouterr().out  # same versions: nothing to do

    monkeypatch.setattr(Exposure, "version", "next")
    assert main(["run", "--once", "--photos", str(folder), "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "unchanged 2 (2 scored again: measured by an older version)" in out and "scored 2 " in out, out
    import sqlite3

    conn = sqlite3.connect(db_path)
    try:
        versions = conn.execute("SELECT model_version, COUNT(*) FROM scores WHERE model = 'exposure' GROUP BY 1").fetchall()
    finally:
        conn.close()
    assert versions == [("next", 2)]
