"""Pilot tests of the dashboard: what each screen shows matches the database,
and the action keys put the right rows in the commands table."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from daemon.store import StoreReader
from fixtures_tui import FIXED_NOW, KONIQ_ERROR, build_sample_db, screen_text, settle
from tui.app import KeepersApp
from tui.widgets.thumbnail import Thumbnail

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("utc")]


def make_app(db: Path) -> KeepersApp:
    return KeepersApp(db, clock=lambda: FIXED_NOW, refresh_seconds=0)


def commands(db: Path) -> list[tuple[str, str | None]]:
    with StoreReader(db) as reader:
        return [(r["kind"], r["arg"]) for r in reader.query("SELECT kind, arg FROM commands ORDER BY id")]


def table_column(table: DataTable, index: int) -> list[str]:
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


async def test_overview_numbers_match_the_database(sample_db: Path) -> None:
    with StoreReader(sample_db) as reader:
        counts = reader.status_counts()
        daemon = reader.daemon_row()
        picks = reader.scalar("SELECT count(*) FROM picks")
        unready = reader.query("SELECT name, state FROM models WHERE enabled = 1 AND state != 'ready'")
    app = make_app(sample_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = screen_text(app)
    assert f"{counts['scored']} scored" in text and f"{counts['pending']} pending" in text
    assert f"{counts['error']} errors" in text and f"{sum(counts.values()) - counts['deleted']} total" in text
    assert "running" in text and f"pid {daemon['pid']}" in text
    assert f"{daemon['queue_depth']} waiting" in text and f"{daemon['photos_per_min']:.1f} photos/min" in text
    assert "1,234 of 65,536 watches" in text and "/mnt/nas/photos (polling)" in text
    assert f"{picks} picks" in text and "uptime 1 h 2 min" in text
    for model in unready:  # a warning line for every enabled model that is not ready
        assert f"⚠ {model['name']} {model['state']}" in text


async def test_overview_says_when_the_daemon_heartbeat_is_stale(sample_db: Path) -> None:
    app = KeepersApp(sample_db, clock=lambda: FIXED_NOW + 600, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = screen_text(app)
    assert "not running" in text and "10 min 3 s ago" in text


async def test_models_screen_shows_a_failed_models_full_error_and_history(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        table = app.screen.query_one("#models-table", DataTable)
        names = table_column(table, 0)
        assert names == ["ava-resnet50", "musiq-koniq", "musiq-spaq", "siamese"]  # enabled only, by name
        table.move_cursor(row=names.index("musiq-koniq"))
        await settle(pilot)
        text = screen_text(app)
        events = app.screen.query_one("#model-events", DataTable)
        kinds = table_column(events, 1)
    for line in KONIQ_ERROR.splitlines():
        assert line.strip() in text
    assert kinds == ["failure", "fallback", "retry", "attempt"]  # newest first
    assert "HashMismatch" in text and "HTTP 503" in text


async def test_retry_key_queues_a_retry_for_the_selected_model(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("down", "t")  # second row: musiq-koniq
        await settle(pilot)
    assert commands(sample_db)[-1] == ("retry-model", "musiq-koniq")
    assert app.sent_commands, "the app confirmed the queued command"


async def test_rescan_and_reselect_keys_queue_commands(sample_db: Path) -> None:
    before = commands(sample_db)
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r", "n")
        await settle(pilot)
    assert commands(sample_db)[len(before):] == [("rescan", None), ("reselect", None)]


async def test_photos_table_is_the_databases_best_first_page(sample_db: Path) -> None:
    with StoreReader(sample_db) as reader:
        expected = reader.query("SELECT path, composite FROM images WHERE status != 'deleted' ORDER BY composite DESC, id")
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        table = app.screen.query_one("#photos-table", DataTable)
        shown_names = table_column(table, 0)
        shown_scores = table_column(table, 2)
        status = str(app.screen.query_one("#status", Static).render())
    assert shown_names == [Path(r["path"]).name for r in expected]
    assert shown_scores == [f"{r['composite']:.3f}" if r["composite"] is not None else "—" for r in expected]
    assert f"of {len(expected)} photos" in status


async def test_photos_filter_status_and_sort_requery_the_database(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("slash", *"1005", "enter")
        await settle(pilot)
        table = app.screen.query_one("#photos-table", DataTable)
        assert table_column(table, 0) == ["IMG_1005.jpg"]
        assert table_column(table, 7)[0].startswith("cannot identify image file")
        assert table_column(table, 6)[0] == "···"  # no group contributed
        await pilot.press("slash", *["backspace"] * 4, "enter", "f", "f")  # clear the filter; status: scored -> pending
        await settle(pilot)
        assert table_column(table, 0) == ["IMG_1011.jpg", "IMG_1017.jpg"]
        await pilot.press("f", "f", "f", "s")  # back to all; sort by path
        await settle(pilot)
        names = table_column(table, 0)
    assert names == sorted(names) and len(names) == 23


async def test_photo_detail_lists_every_score_of_the_highlighted_photo(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("down")
        await settle(pilot)
        key = app.screen.query_one("#photos-table", DataTable).coordinate_to_cell_key((1, 0)).row_key.value
        detail = screen_text(app)
    with StoreReader(sample_db) as reader:
        scores = reader.query("SELECT model, normalised FROM scores WHERE image_id = ?", (int(key),))
        path = reader.scalar("SELECT path FROM images WHERE id = ?", (int(key),))
    folder, _, name = path.rpartition("/")
    assert scores and name in detail and f"in {folder}" in detail  # the name whole, its folder below
    for s in scores:
        assert any(s["model"] in line and f"{s['normalised']:.3f}" in line for line in detail.splitlines())
    assert "no preview: the file is not there any more" in detail  # the text fallback


async def test_pin_unpin_reject_keys_send_the_highlighted_photos_path(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        top = app.screen.selected_photo()
        await pilot.press("k", "u", "x")
        await settle(pilot)
    assert top is not None and top.endswith("IMG_1020.jpg")
    assert commands(sample_db)[-3:] == [("pin", top), ("unpin", top), ("reject", top)]


async def test_a_load_that_finishes_after_the_dashboard_quit_is_dropped_not_raised(sample_db: Path) -> None:
    # Quitting right after an action: the refresh the action asked for can come back from its
    # thread once the screen has lost its widgets; it used to end the dashboard with NoMatches.
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        data, loads = screen.data, screen.loads
    screen._apply(data, 0.0)
    screen._show_error(sqlite3.OperationalError("database is locked"))
    assert screen.loads == loads


async def test_album_shows_picks_reasons_siblings_and_the_last_runs_changes(sample_db: Path) -> None:
    with StoreReader(sample_db) as reader:
        picks = reader.query("SELECT p.image_id, i.path, p.reason FROM picks p JOIN images i ON i.id = p.image_id ORDER BY i.taken_at")
        changes = reader.query("SELECT change, path FROM pick_changes JOIN images ON id = image_id WHERE run_id = 2")
        first = picks[0]
        siblings = reader.query(
            "SELECT path FROM images WHERE moment = (SELECT moment FROM images WHERE id = ?) AND cluster = (SELECT cluster FROM images WHERE id = ?)"
            " AND id != ? AND status != 'deleted'",
            (first["image_id"], first["image_id"], first["image_id"]),
        )
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        text = screen_text(app)
        table = app.screen.query_one("#album-table", DataTable)
        shown = table_column(table, 1)
        sibling_rows = table_column(app.screen.query_one("#album-siblings", DataTable), 0)
        app.screen.query_one("#album-siblings", DataTable).focus()
        await pilot.press("k")  # pin the best sibling instead
        await settle(pilot)
    assert shown == [Path(p["path"]).name for p in picks]
    assert sorted(sibling_rows) == sorted(Path(s["path"]).name for s in siblings)
    assert f"Decided by {json.loads(first['reason'])['decided_by']}" in text
    for change in changes:
        sign = "+" if change["change"] == "added" else "−"
        assert f"{sign}{Path(change['path']).name}" in text
    assert commands(sample_db)[-1][0] == "pin" and Path(commands(sample_db)[-1][1]).name == sibling_rows[0]


async def test_activity_shows_stage_totals_and_recent_errors(sample_db: Path) -> None:
    with StoreReader(sample_db) as reader:
        stages = reader.query("SELECT stage, sum(count) AS n, sum(total_seconds) AS total FROM telemetry GROUP BY stage ORDER BY total DESC")
        errors = reader.query("SELECT message FROM log WHERE level IN ('ERROR', 'WARNING') ORDER BY id DESC")
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        table = app.screen.query_one("#activity-stages", DataTable)
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        text = screen_text(app)
    assert [(r[0], r[1], r[2]) for r in rows] == [(s["stage"], f"{s['n']:,}", f"{s['total']:,.2f}") for s in stages]
    for e in errors:
        assert e["message"][:60] in text
    assert "watchers ready" not in text  # info lines are not errors


async def test_command_palette_offers_the_actions(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Reselect now")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
    assert {"Rescan photo folders", "Reselect now", "Pin IMG_1020.jpg", "Unpin IMG_1020.jpg", "Reject IMG_1020.jpg"} <= set(titles)
    assert commands(sample_db)[-1] == ("reselect", None)


async def test_missing_database_explains_how_to_start_and_switches_once_it_exists(db_path: Path) -> None:
    app = KeepersApp(db_path, clock=lambda: FIXED_NOW, refresh_seconds=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert app.current_mode == "waiting"
        assert "No keepers database yet" in text and "keepers run" in text and "systemctl --user start keepers" in text
        await pilot.press("r")  # no database: nothing is created behind the user's back
        await pilot.pause()
        assert not db_path.exists()
        build_sample_db(db_path)
        app.tick()
        await settle(pilot)
        assert app.current_mode == "overview"
        assert "20 scored" in screen_text(app)


async def test_thumbnail_draws_a_real_photo(sample_db: Path, tmp_path: Path) -> None:
    from PIL import Image

    photo = tmp_path / "IMG_1020.jpg"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo)
    conn = sqlite3.connect(sample_db)
    with conn:
        conn.execute("UPDATE images SET path = ? WHERE path LIKE '%IMG_1020.jpg'", (str(photo),))
    conn.close()
    app = make_app(sample_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        thumb = app.screen.query_one(Thumbnail)
        kinds = [type(child).__name__ for child in thumb.children]
    assert kinds and kinds[0].endswith("Image"), kinds


async def test_a_database_error_is_shown_not_raised(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        conn = sqlite3.connect(sample_db)
        conn.execute("DROP TABLE picks")
        conn.close()
        app.tick()
        await settle(pilot)
        status = app.screen.query_one("#status", Static)
        assert status.has_class("-error") and "no such table" in str(status.render())



async def test_models_screen_shows_the_error_the_real_hub_recorded(db_path: Path, https_fake, kaggle_fake) -> None:
    from fixtures_tui import record_models_through_the_hub

    error = record_models_through_the_hub(db_path, https_fake, kaggle_fake)
    with StoreReader(db_path) as reader:
        events = reader.query("SELECT kind FROM model_events WHERE model = 'musiq-koniq' ORDER BY at DESC, id DESC")
    app = make_app(db_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        table = app.screen.query_one("#models-table", DataTable)
        assert table_column(table, 0) == ["musiq-koniq"]
        assert str(table.get_row_at(0)[1]) == "failed"
        text = screen_text(app)
        shown_events = table_column(app.screen.query_one("#model-events", DataTable), 1)
    assert error and all(part.strip() in text for part in error.split(";"))
    assert shown_events == [e["kind"] for e in events][: len(shown_events)] and "failure" in shown_events


async def test_the_refresh_interval_picks_up_new_rows(sample_db: Path) -> None:
    app = KeepersApp(sample_db, clock=lambda: FIXED_NOW, refresh_seconds=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "20 scored" in screen_text(app)
        conn = sqlite3.connect(sample_db)
        with conn:
            conn.execute("UPDATE images SET status = 'scored' WHERE status = 'pending'")
        conn.close()
        for _ in range(100):  # bounded: at most ~5 s
            await pilot.pause(0.05)
            if "22 scored" in screen_text(app):
                break
        assert "22 scored" in screen_text(app) and "0 pending" in screen_text(app)


async def test_overview_says_which_folders_are_polled_for_want_of_inotify_watches(sample_db: Path) -> None:
    folders = [{"path": "/photos", "mode": "events"},
               {"path": "/archive", "mode": "polling", "over_limit": True, "why": "needs 30000 inotify watches"}]
    with sqlite3.connect(sample_db) as conn:
        conn.execute("UPDATE daemon SET watched_folders = ?", (json.dumps(folders),))
    app = make_app(sample_db)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        text = screen_text(app)
    assert "/photos (events)" in text
    assert "/archive (polled: over the inotify watch limit" in text
