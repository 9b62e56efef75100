"""`keepers run --once` with learned models enabled: it waits for them, says
which failed and why, scores with the rest, and gives every photo the same
scores and composite as the daemon does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")

from PIL import ImageEnhance  # noqa: E402

from daemon.imaging.demo import scene_image  # noqa: E402
from fixtures_daemon import DAEMON_MAIN, Daemon, query, wait_for, write_config  # noqa: E402
from fixtures_models.user_training import AVAModel, SiameseNetwork, save_best_model  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]

SCENES = ("astronaut", "coffee", "chelsea", "rocket")


def ava_checkpoint(path: Path) -> Path:
    """The user's AVA model as their training code saves it (narrow ResNet-50, distribution head)."""
    config = {"model": {"mlp_hidden_dims": [32], "activation": "relu", "dropout": 0.2, "output_mode": "distribution"},
              "transform": {"resize_size": 256, "crop_size": 224}}
    torch.manual_seed(5)
    model = AVAModel(config, width=4)
    with torch.no_grad():
        model.head[0].weight.mul_(20.0)
        model.head[-1].weight.mul_(20.0)
    return save_best_model(path, model, config, "val_spearman", 0.66)


def scores_and_composites(db: Path) -> dict[str, tuple[float | None, str, dict[str, float]]]:
    """path -> (composite, coverage, {model: raw})."""
    out = {path: (composite, coverage, {}) for path, composite, coverage in
           query(db, "SELECT path, composite, coverage FROM images WHERE status = 'scored'")}
    for path, model, raw in query(db, "SELECT i.path, s.model, s.raw FROM scores s JOIN images i ON i.id = s.image_id"):
        out[path][2][model] = raw
    return out


def test_run_once_scores_with_every_model_it_can_have_like_the_daemon(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in SCENES:
        image = scene_image(name)
        image.thumbnail((320, 320))
        image.save(photos / f"{name}.jpg", quality=90)
    (tmp_path / "training").mkdir()
    checkpoint = ava_checkpoint(tmp_path / "training" / "best_model.pt")
    missing = tmp_path / "training" / "siamese_best_model.pt"
    models = {"enabled": ["ava-resnet50", "siamese-comparator"], "threads": 1, "retry_minutes": [60],
              "retry": {"attempts": 1, "initial_seconds": 0.01, "max_seconds": 0.01},
              "sources": {"ava-resnet50": [{"kind": "local", "path": str(checkpoint)}],
                          "siamese-comparator": [{"kind": "local", "path": str(missing)}]}}
    config = write_config(tmp_path / "keepers.yaml", settle=0.2, workers=1, extra=yaml.safe_dump({"models": models}))

    once_db = tmp_path / "once" / "keepers.db"
    result = subprocess.run([sys.executable, "-c", DAEMON_MAIN, "run", "--once", "--photos", str(photos), "--db", str(once_db),
                             "--config", str(config)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "loading 2 learned model(s): ava-resnet50, siamese-comparator" in result.stderr
    assert "ava-resnet50: ready from local" in result.stderr
    failure = next(line for line in result.stderr.splitlines() if line.strip().startswith("siamese-comparator: failed"))
    assert str(missing) in failure, failure  # says why
    assert "scoring without siamese-comparator; with ava-resnet50" in result.stderr
    assert "scored 4 " in result.stdout
    once = scores_and_composites(once_db)
    assert sorted(once) == sorted(str(p) for p in photos.iterdir())
    for path, (composite, coverage, raws) in once.items():
        assert 1.0 <= raws["ava-resnet50"] <= 10.0, path
        assert "aesthetic" in coverage and composite is not None

    daemon = Daemon(photos, tmp_path / "daemon" / "keepers.db", config).start()
    try:
        def all_scored_with_the_model() -> bool:
            rows = scores_and_composites(daemon.db)
            return len(rows) == len(SCENES) and all("aesthetic" in cov and "ava-resnet50" in raws for _, cov, raws in rows.values())

        assert wait_for(all_scored_with_the_model, 180), daemon.log_text()
        by_daemon = scores_and_composites(daemon.db)
    finally:
        assert daemon.terminate(timeout=30) == 0, daemon.log_text()
    # the daemon scored these photos with the built-ins first and backfilled the model in a batch;
    # torch's float32 convolutions differ by ~1e-7 between a batch of four and one photo
    for path, (composite, coverage, raws) in once.items():
        d_composite, d_coverage, d_raws = by_daemon[path]
        assert d_raws == pytest.approx(raws, abs=1e-5), path
        assert d_coverage == coverage and d_composite == pytest.approx(composite, abs=1e-6), path
    assert len({round(raws["ava-resnet50"], 3) for _, _, raws in once.values()}) == len(SCENES)  # the model tells them apart


def test_run_once_gives_a_newly_enabled_model_the_photos_scored_before(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in SCENES[:2]:
        image = scene_image(name)
        image.thumbnail((256, 256))
        image.save(photos / f"{name}.jpg", quality=90)
    db = tmp_path / "keepers.db"
    argv = [sys.executable, "-c", DAEMON_MAIN, "run", "--once", "--photos", str(photos), "--db", str(db), "--config"]
    plain = write_config(tmp_path / "plain.yaml", workers=1)
    assert subprocess.run([*argv, str(plain)], capture_output=True, text=True, timeout=120).returncode == 0
    before = scores_and_composites(db)
    assert all("ava-resnet50" not in raws for _, _, raws in before.values())

    checkpoint = ava_checkpoint(tmp_path / "best_model.pt")
    models = {"enabled": ["ava-resnet50"], "threads": 1, "sources": {"ava-resnet50": [{"kind": "local", "path": str(checkpoint)}]}}
    with_model = write_config(tmp_path / "with-model.yaml", workers=1, extra=yaml.safe_dump({"models": models}))
    result = subprocess.run([*argv, str(with_model)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "ava-resnet50: added to 2 photo(s) scored before without it" in result.stderr
    after = scores_and_composites(db)
    for path, (composite, coverage, raws) in after.items():
        assert 1.0 <= raws["ava-resnet50"] <= 10.0 and "aesthetic" in coverage
        assert composite != before[path][0]  # the composite now counts the aesthetic group


def test_run_once_with_strict_models_stops_before_scoring_when_one_fails(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    scene_image("coffee").save(photos / "coffee.jpg")
    models = {"enabled": ["ava-resnet50"], "strict": True, "threads": 1,
              "retry": {"attempts": 1, "initial_seconds": 0.01, "max_seconds": 0.01},
              "sources": {"ava-resnet50": [{"kind": "local", "path": str(tmp_path / "nowhere.pt")}]}}
    config = write_config(tmp_path / "keepers.yaml", workers=1, extra=yaml.safe_dump({"models": models}))
    db = tmp_path / "keepers.db"
    result = subprocess.run([sys.executable, "-c", DAEMON_MAIN, "run", "--once", "--photos", str(photos), "--db", str(db),
                             "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "ava-resnet50: failed" in result.stderr and "models.strict" in result.stderr
    assert query(db, "SELECT COUNT(*) FROM images") == [(0,)]


def test_run_once_breaks_the_albums_near_ties_with_the_users_comparator(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    coffee = scene_image("coffee")
    coffee.thumbnail((320, 320))
    coffee.save(photos / "coffee.jpg", quality=92)
    # the same shot a touch darker, a near tie (2 % brighter would not be one: it clips the cup's highlights)
    ImageEnhance.Brightness(coffee).enhance(0.98).save(photos / "coffee-2.jpg", quality=92)
    config = {"model": {"cnn_backbone": "resnet50", "mlp_hidden_dims": [16, 8], "activation": "relu", "dropout": 0.5}}
    torch.manual_seed(6)
    checkpoint = save_best_model(tmp_path / "best_model.pt", SiameseNetwork(config, width=4), config, "val_acc", 0.7)
    models = {"enabled": ["siamese-comparator"], "threads": 1,
              "sources": {"siamese-comparator": [{"kind": "local", "path": str(checkpoint)}]}}
    settings = write_config(tmp_path / "keepers.yaml", workers=1, extra=yaml.safe_dump({"models": models}))
    db = tmp_path / "keepers.db"
    result = subprocess.run([sys.executable, "-c", DAEMON_MAIN, "run", "--once", "--photos", str(photos), "--db", str(db),
                             "--config", str(settings)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "siamese-comparator: ready from local" in result.stderr
    (reason,) = [json.loads(r[0]) for r in query(db, "SELECT reason FROM picks")]
    assert reason["decided_by"] == "comparator", reason
    assert reason["tiebreak"]["comparator"] == "siamese-comparator" and len(reason["tiebreak"]["bouts"]) == 1
