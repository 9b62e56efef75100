"""The dashboard after an action or a run: the detail pane shows the choice at once and
then what the daemon stored, the cursor keeps its place, Tab reaches "Not picked", the
filter can be left with Esc, and photos read as photos (names told apart, moments by time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from textual.widgets import DataTable

from daemon.album.service_hooks import AlbumHooks
from daemon.config import load_config
from daemon.service.commands import CommandRegistry, poll_commands
from daemon.store import StoreReader, StoreWriter
from fixtures_tui import FIXED_NOW, screen_text, settle, widget_text, write_selection
from tui.app import KeepersApp

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("utc")]


def make_app(db: Path, **options) -> KeepersApp:  # type: ignore[no-untyped-def]
    return KeepersApp(db, clock=lambda: FIXED_NOW, refresh_seconds=0, **options)


def answer_commands(db: Path) -> int:
    """Do what the daemon does with the open commands: its album hooks, through its command poll."""
    registry = CommandRegistry()
    with StoreWriter(db) as writer:
        hooks = AlbumHooks(writer, load_config(check_folders=False))
        for kind in ("pin", "unpin", "reject", "reselect"):
            registry.register(kind, lambda arg, kind=kind: hooks.handle(kind, arg))
        return poll_commands(writer, registry)


def last_command(db: Path) -> tuple[str, str | None]:
    with StoreReader(db) as reader:
        row = reader.query("SELECT kind, arg FROM commands ORDER BY id DESC LIMIT 1")[0]
    return row["kind"], row["arg"]


async def wait_until(pilot, check: Callable[[], bool], seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.1)):
        if check():
            return True
        await pilot.pause(0.1)
    return check()


async def test_photo_detail_shows_pin_reject_unpin_at_once_then_as_stored(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        path = app.screen.selected_photo()
        for key, kind, stored in (("k", "pin", "pinned by hand"), ("x", "reject", "rejected by hand"), ("u", "unpin", None)):
            await pilot.press(key)
            assert await wait_until(pilot, lambda: f"{kind} asked of the daemon" in widget_text(app, "#photo-detail"), 5), kind
            assert answer_commands(sample_db) >= 1
            # no key pressed, the cursor where it was: the pane follows the daemon's answer
            assert await wait_until(pilot, lambda: "asked of the daemon" not in widget_text(app, "#photo-detail")), kind
            detail = widget_text(app, "#photo-detail")
            assert (stored in detail) if stored else ("by hand" not in detail), (kind, detail)
            assert app.screen.selected_photo() == path


async def test_one_tab_reaches_not_picked_and_u_acts_on_that_photo(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        pick = app.screen.selected_photo()
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "album-siblings"
        sibling = app.screen.selected_photo()
        await pilot.press("u")
        await settle(pilot)
    assert sibling != pick and sibling is not None and Path(sibling).name == "IMG_1003.jpg"
    assert last_command(sample_db) == ("unpin", sibling)


async def test_album_cursor_keeps_its_place_after_a_run(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        await pilot.press("down", "down", "down")
        await settle(pilot)
        table = app.screen.query_one("#album-table", DataTable)
        highlighted = app.screen.selected_photo()
        with StoreWriter(sample_db) as writer:  # a run that changes nothing under the cursor
            writer.call(lambda db: write_selection(db, run_id=3, started=FIXED_NOW - 60))
        app.screen.refresh_data()
        await settle(pilot)
        assert table.cursor_row == 3 and app.screen.selected_photo() == highlighted
        with StoreReader(sample_db) as reader:
            rejected = reader.scalar("SELECT id FROM images WHERE path = ?", (highlighted,))
        with StoreWriter(sample_db) as writer:  # a run that replaces the highlighted pick
            writer.call(lambda db: write_selection(db, run_id=4, started=FIXED_NOW - 30, reject={rejected}))
        app.screen.refresh_data()
        await settle(pilot)
        assert table.cursor_row == 3 and app.screen.selected_photo() != highlighted


async def test_esc_clears_the_filter_and_an_empty_result_says_what_to_do(sample_db: Path) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("slash", *"nomatch", "enter")
        await settle(pilot)
        empty = widget_text(app, "#status")
        await pilot.press("escape")
        await settle(pilot)
        after = widget_text(app, "#status")
        box = app.screen.query_one("#photos-filter")
    assert empty == "no photos matching “nomatch” · Esc clears the filter"
    assert "0–0" not in empty
    assert after.startswith("1–23 of 23 photos") and not box.has_class("-shown")


async def test_photos_with_the_same_name_in_two_folders_are_told_apart(sample_db: Path) -> None:
    with StoreWriter(sample_db) as writer:
        writer.call(lambda db: db.execute(
            "INSERT INTO images (path, root, status, composite, first_seen, updated_at) VALUES (?, '/photos', 'scored', 0.99, 0, 0)",
            ("/photos/2024/IMG_1020.jpg",)))
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        table = app.screen.query_one("#photos-table", DataTable)
        names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
    assert names[:2] == ["2024/IMG_1020.jpg", "2025/IMG_1020.jpg"]
    assert "IMG_1016.jpg" in names  # a unique name stays short


async def test_album_lists_moments_by_time_and_reasons_name_files(sample_db: Path) -> None:
    with StoreWriter(sample_db) as writer:
        # moment 1 turns out to be the newest: it was taken three days after the others
        writer.call(lambda db: db.execute("UPDATE images SET taken_at = taken_at + 3 * 86400 WHERE moment = 1"))
        first = writer.call(lambda db: db.execute("SELECT p.image_id, p.reason FROM picks p WHERE p.moment = 2 ORDER BY p.cluster LIMIT 1").fetchone())
        reason = {**json.loads(first[1]), "runner_up": {"id": 28, "path": "/photos/2025/IMG_1008.jpg", "composite": 0.412}}
        writer.call(lambda db: db.execute("UPDATE picks SET reason = ? WHERE image_id = ?", (json.dumps(reason), first[0])))
    app = make_app(sample_db)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await settle(pilot)
        table = app.screen.query_one("#album-table", DataTable)
        names = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        text = screen_text(app)
    assert names[0] == "IMG_1007.jpg" and names[-2:] == ["IMG_1002.jpg", "IMG_1004.jpg"]
    assert "Runner-up  IMG_1008.jpg 0.412" in text and "id 28" not in text


async def test_the_waiting_screen_names_the_database_it_was_given(tmp_path: Path) -> None:
    from daemon import paths

    app = make_app(tmp_path / "k.db")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = widget_text(app, "#nodb-message")
    assert f"keepers run --tui --db {tmp_path / 'k.db'}" in shown and f"keepers run --db {tmp_path / 'k.db'}" in shown
    default = make_app(paths.database_file())
    async with default.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "--db" not in widget_text(default, "#nodb-message")  # the default database needs no flag


async def test_start_up_notices_show_on_screen(sample_db: Path) -> None:
    notice = "photo folder /home/me/Pictures does not exist; using the demo set in /tmp/demo (40 photos)."
    app = make_app(sample_db, notices=[notice])
    async with app.run_test(size=(160, 48), notifications=True) as pilot:
        await settle(pilot)
        text = " ".join(screen_text(app).replace("▌", " ").split())  # the toast's border, between wrapped lines
    assert "using the demo set in /tmp/demo (40 photos)" in text, text
