"""SVG snapshots of every dashboard screen at 80×24 and 160×48.

The data is the fixed sample library and the clock is frozen, so a snapshot
changes only when the screen's layout or content does. After an intended
change, look at the report and run `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from fixtures_tui import FIXED_NOW, settle
from tui.app import KeepersApp

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
SCREENS = [
    pytest.param("1", id="overview"),
    pytest.param("2", id="models"),
    pytest.param("3", id="photos"),
    pytest.param("4", id="album"),
    pytest.param("5", id="activity"),
]


@pytest.mark.usefixtures("utc")
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("key", SCREENS)
def test_screen_snapshot(snap_compare, sample_db: Path, key: str, size: tuple[int, int]) -> None:
    async def open_screen(pilot: Pilot) -> None:
        await pilot.press(key)
        await settle(pilot)

    app = KeepersApp(sample_db, clock=lambda: FIXED_NOW, refresh_seconds=0)
    assert snap_compare(app, terminal_size=size, run_before=open_screen)


@pytest.mark.parametrize("size", SIZES)
def test_no_database_snapshot(snap_compare, size: tuple[int, int]) -> None:
    app = KeepersApp(Path("/var/empty/keepers/keepers.db"), clock=lambda: FIXED_NOW, refresh_seconds=0)
    assert snap_compare(app, terminal_size=size)
