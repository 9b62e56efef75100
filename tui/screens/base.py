"""What every data screen shares: the tab bar, a status line, the footer, and
loading its data in a worker thread so the UI never waits on the database."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from daemon.errors import StoreError
from daemon.store import StoreReader

from ..widgets.tabs import ScreenTabs

log = logging.getLogger(__name__)

D = TypeVar("D")

#: after an action, look again this many seconds later for the daemon's answer
FOLLOW_UP_SECONDS = (0.4, 1.0, 2.0, 3.5, 6.0)
#: what a manual choice looks like once the daemon has stored it
CHOICE_STORED = {"pin": "pin", "reject": "reject", "unpin": None}


def asked_note(asked: dict[str, str], path: str, manual: str | None) -> str | None:
    """'pin asked…' while a choice this dashboard sent for ``path`` is not stored yet; None
    once it is (and then it is forgotten)."""
    kind = asked.get(path)
    if kind is None:
        return None
    if manual == CHOICE_STORED.get(kind, "?"):
        del asked[path]
        return None
    return f"{kind} asked of the daemon; waiting for it…"


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $boost; color: $text-muted; padding: 0 1; }
    StatusLine.-error { color: $error; text-style: bold; }
    """


def read_in_thread(db_path: Path, load: Callable[[StoreReader], D]) -> D:
    """Open a read-only connection for this thread, run ``load`` on it, close it."""
    with StoreReader(db_path) as reader:
        return load(reader)


class DashboardScreen(Screen[None], Generic[D]):
    """A screen whose content comes from the database.

    Subclasses set MODE, compose their body in ``compose_body``, read in
    ``load`` (worker thread; gets the parameters ``load_params`` captured on the
    UI thread) and render in ``show`` (UI thread).
    """

    MODE = ""

    def __init__(self) -> None:
        super().__init__()
        self.data: D | None = None
        self.last_load_seconds: float | None = None  # the worker's query time
        self.last_apply_seconds: float | None = None  # the UI thread's repaint work
        self.loads = 0

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ScreenTabs(self.MODE)
        yield from self.compose_body()
        yield StatusLine("loading…", id="status")
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:  # pragma: no cover - every screen overrides
        yield from ()

    # -- data --------------------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        return Path(getattr(self.app, "db_path"))

    def now(self) -> float:
        clock: Callable[[], float] = getattr(self.app, "clock", time.time)
        return clock()

    def load_params(self) -> Any:
        """What the next load needs from the UI (filters, selection); read on the UI thread."""
        return None

    def load(self, reader: StoreReader, params: Any) -> D:  # pragma: no cover - every screen overrides
        raise NotImplementedError

    def show(self, data: D) -> None:  # pragma: no cover - every screen overrides
        raise NotImplementedError

    def on_mount(self) -> None:
        self.refresh_data()

    def on_screen_resume(self) -> None:
        if self.loads:
            self.refresh_data()

    def refresh_data(self) -> None:
        """Start loading this screen's data in a worker (the newest request wins)."""
        self._load_worker(self.load_params())

    @work(thread=True, exclusive=True, group="load")
    def _load_worker(self, params: Any) -> None:
        worker = get_current_worker()
        started = time.perf_counter()
        try:
            data = read_in_thread(self.db_path, lambda reader: self.load(reader, params))
        except (StoreError, sqlite3.Error) as exc:
            log.debug("loading %s failed: %s", self.MODE, exc)
            if not worker.is_cancelled:
                self._call_ui(self._show_error, exc)
            return
        if not worker.is_cancelled:
            self._call_ui(self._apply, data, time.perf_counter() - started)

    def _call_ui(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self.app.call_from_thread(fn, *args)
        except RuntimeError:  # the app is shutting down
            pass

    def _taken_down(self) -> bool:
        """True once the screen has lost its widgets (the app is quitting): a load that finishes
        then has nowhere to show its data, and querying for its widgets would raise NoMatches
        inside the worker and end the dashboard with a traceback."""
        return not self.is_attached or not self.query("#status")

    def _apply(self, data: D, seconds: float) -> None:
        if self._taken_down():
            return
        started = time.perf_counter()
        self.data = data
        self.last_load_seconds = seconds
        self.loads += 1
        self.show(data)
        status = self.query_one("#status", StatusLine)
        status.remove_class("-error")
        status.update(self.status_text(data))
        self.last_apply_seconds = time.perf_counter() - started

    def _show_error(self, exc: BaseException) -> None:
        if self._taken_down():
            return
        status = self.query_one("#status", StatusLine)
        status.add_class("-error")
        status.update(f"cannot read {self.db_path}: {exc}")

    def status_text(self, data: D) -> str:
        every = float(getattr(self.app, "refresh_seconds", 0) or 0)
        return (f"refreshes every {every:g} s · " if every > 0 else "") + "ctrl+p: all actions"

    def after_command(self, kind: str, arg: str | None) -> None:
        """This dashboard just sent a command: show it at once, and look again soon (the daemon
        answers within about a second) instead of waiting for the next refresh."""
        self.redraw_detail()
        self.refresh_data()
        for delay in FOLLOW_UP_SECONDS:
            self.set_timer(delay, self.refresh_data)

    def redraw_detail(self) -> None:
        """Render the detail pane again from what is loaded (screens with one override it)."""

    # -- what actions act on -----------------------------------------------------------------

    def selected_photo(self) -> str | None:
        """The path of the photo pin/unpin/reject act on, if this screen has one selected."""
        return None

    def selected_model(self) -> str | None:
        """The model retry acts on, if this screen has one selected."""
        return None
