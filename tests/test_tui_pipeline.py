"""The dashboard against a database built by the real pipeline (`keepers run --once`
on generated photos), with the model rows the real hub records and an album
selection written the way the album writes it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from daemon.store import StoreReader, StoreWriter
from fixtures_tui import make_photos, record_models_through_the_hub, screen_text, settle, write_selection
from tui.app import KeepersApp
from tui.widgets.thumbnail import Thumbnail

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

MOMENT_GAP_SECONDS = 120.0


def group_into_moments(db) -> None:  # type: ignore[no-untyped-def]
    """Moments split where photos are more than two minutes apart; one cluster per moment."""
    moment, previous = 0, None
    for row in db.query("SELECT id, taken_at FROM images WHERE status = 'scored' ORDER BY taken_at, id"):
        if previous is None or row["taken_at"] - previous > MOMENT_GAP_SECONDS:
            moment += 1
        previous = row["taken_at"]
        db.execute("UPDATE images SET moment = ?, cluster = ? WHERE id = ?", (moment, moment * 10, row["id"]))


@pytest.fixture
def pipeline_db(db_path: Path, photo_dir: Path, https_fake, kaggle_fake) -> Path:  # type: ignore[no-untyped-def]
    from daemon.cli import main

    make_photos(photo_dir)
    (photo_dir / "broken.jpg").write_bytes(b"this is not a photo")
    assert main(["run", "--once", "--no-album", "--photos", str(photo_dir), "--db", str(db_path)]) == 0  # the selection is written below
    record_models_through_the_hub(db_path, https_fake, kaggle_fake)
    with StoreWriter(db_path) as writer:
        writer.call(group_into_moments)
        writer.call(lambda db: write_selection(db, run_id=1, started=time.time()))
    return db_path


def app_for(db: Path) -> KeepersApp:
    return KeepersApp(db, refresh_seconds=0)


def column(table: DataTable, index: int) -> list[str]:
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


async def test_overview_counts_match_the_pipelines_database(pipeline_db: Path) -> None:
    with StoreReader(pipeline_db) as reader:
        counts = reader.status_counts()
    assert counts["scored"] == 9 and counts["error"] == 1
    app = app_for(pipeline_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = screen_text(app)
    assert f"{counts['scored']} scored" in text and f"{counts['error']} errors" in text
    assert "⚠ musiq-koniq failed" in text


async def test_photos_show_the_pipelines_scores_and_a_thumbnail(pipeline_db: Path) -> None:
    with StoreReader(pipeline_db) as reader:
        images = reader.query("SELECT id, path, composite FROM images WHERE status != 'deleted' ORDER BY composite DESC, id")
        top_scores = reader.query("SELECT model, normalised FROM scores WHERE image_id = ?", (images[0]["id"],))
    app = app_for(pipeline_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        table = app.screen.query_one("#photos-table", DataTable)
        names, composites = column(table, 0), column(table, 2)
        text = screen_text(app)
        thumb = [type(c).__name__ for c in app.screen.query_one(Thumbnail).children]
    assert names == [Path(i["path"]).name for i in images]
    assert composites == [f"{i['composite']:.3f}" if i["composite"] is not None else "—" for i in images]
    assert top_scores, "the pipeline stored scores for the best photo"
    for s in top_scores:
        assert any(s["model"] in line and f"{s['normalised']:.3f}" in line for line in text.splitlines())
    assert thumb and thumb[0].endswith("Image")


async def test_activity_shows_the_pipelines_stage_timings(pipeline_db: Path) -> None:
    with StoreReader(pipeline_db) as reader:
        stages = {r["stage"]: r["n"] for r in reader.query("SELECT stage, sum(count) AS n FROM telemetry GROUP BY stage")}
    assert "decode" in stages
    app = app_for(pipeline_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        table = app.screen.query_one("#activity-stages", DataTable)
        shown = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1]) for i in range(table.row_count)}
    assert shown == {stage: f"{n:,}" for stage, n in stages.items()}


async def test_album_reject_key_sends_the_picks_path(pipeline_db: Path) -> None:
    with StoreReader(pipeline_db) as reader:
        picks = reader.query("SELECT i.path FROM picks p JOIN images i ON i.id = p.image_id ORDER BY coalesce(i.taken_at, i.mtime_ns / 1e9)")
    assert len(picks) == 3  # one per scene
    app = app_for(pipeline_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        assert column(app.screen.query_one("#album-table", DataTable), 1) == [Path(p["path"]).name for p in picks]
        await pilot.press("down", "x")
        await settle(pilot)
    with StoreReader(pipeline_db) as reader:
        last = reader.query("SELECT kind, arg FROM commands ORDER BY id DESC LIMIT 1")[0]
    assert (last["kind"], last["arg"]) == ("reject", picks[1]["path"])
