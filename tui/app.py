"""The keepers dashboard: the App, its screens (one mode each), key bindings,
command-palette actions and the refresh tick.

The dashboard only reads the database (one read-only connection per worker
thread) and asks the daemon for things by inserting rows in ``commands``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import CancelledError
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from daemon.store import enqueue_command

from .screens.activity import ActivityScreen
from .screens.album import AlbumScreen
from .screens.base import DashboardScreen
from .screens.daemon_exit import DaemonExitedScreen
from .screens.models import ModelsScreen
from .screens.nodb import NoDatabaseScreen
from .screens.overview import OverviewScreen
from .screens.photos import PhotosScreen
from .widgets.tabs import SCREENS

if TYPE_CHECKING:
    from .launch import DaemonProcess

log = logging.getLogger(__name__)

DEFAULT_REFRESH_SECONDS = 2.0
#: how long a start-up notice (demo set in use, config written) stays on screen
NOTICE_SECONDS = 30.0
#: lines of the daemon's log shown when it exits
DAEMON_LOG_LINES = 12

#: what each command kind asks of the daemon, for the confirmation message
COMMAND_WORDS = {
    "rescan": "rescan the photo folders",
    "reselect": "run the album selection now",
    "retry-model": "retry loading model {arg}",
    "pin": "pin {arg}",
    "unpin": "unpin {arg}",
    "reject": "reject {arg}",
}


class KeepersApp(App[None]):
    """The dashboard. ``clock`` and ``refresh_seconds`` exist for tests and the
    benchmark (a fixed clock, no timer)."""

    CSS_PATH = "keepers.tcss"
    TITLE = "keepers"
    MODES = {
        "overview": OverviewScreen,
        "models": ModelsScreen,
        "photos": PhotosScreen,
        "album": AlbumScreen,
        "activity": ActivityScreen,
        "waiting": NoDatabaseScreen,
    }
    BINDINGS = [
        *(Binding(key, f"show('{mode}')", title, show=False) for key, mode, title in SCREENS),
        Binding("r", "rescan", "Rescan"),
        Binding("n", "reselect", "Reselect"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        db_path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        start_mode: str = "overview",
        daemon: DaemonProcess | None = None,
        notices: Sequence[str] = (),
    ) -> None:
        self.db_path = Path(db_path)
        self.clock = clock
        self.refresh_seconds = refresh_seconds
        self.start_mode = start_mode
        #: the daemon `keepers run --tui` started, watched so its exit shows at once
        self.daemon = daemon
        self.notices = tuple(notices)
        #: (exit code, end of its log) once that daemon has exited
        self.daemon_exit: tuple[int | None, str] | None = None
        #: ids of the command rows this session inserted, newest last
        self.sent_commands: list[int] = []
        #: photo path -> the choice (pin, unpin, reject) sent for it and not yet seen stored
        self.asked: dict[str, str] = {}
        self.DEFAULT_MODE = start_mode if self.db_path.exists() else "waiting"  # type: ignore[misc]
        super().__init__()

    def on_mount(self) -> None:
        self.sub_title = str(self.db_path)
        self.switch_mode(self.DEFAULT_MODE)
        if self.refresh_seconds > 0:
            self.set_interval(self.refresh_seconds, self.tick, name="refresh")
        for notice in self.notices:
            self.notify(notice, title="keepers", timeout=NOTICE_SECONDS)
        if self.daemon is not None:
            # a plain thread, not a worker: it blocks in wait() until the daemon exits, which on a
            # normal quit is after the app has closed (Textual would wait for a worker)
            threading.Thread(target=self._watch_daemon, args=(self.daemon,), name="daemon-watch", daemon=True).start()

    def _watch_daemon(self, daemon: DaemonProcess) -> None:
        code = daemon.wait()
        try:
            self.call_from_thread(self._daemon_exited, code, daemon.log_tail(DAEMON_LOG_LINES))
        except (RuntimeError, CancelledError):  # the app has closed: the user quit, the launcher stopped it
            pass

    def _daemon_exited(self, code: int | None, log_tail: str) -> None:
        self.daemon_exit = (code, log_tail)
        log.warning("the daemon exited with code %s", code)
        self.push_screen(DaemonExitedScreen(code, log_tail, self.daemon.log_path if self.daemon else self.db_path))

    def tick(self) -> None:
        """Refresh what is on screen (in a worker); leave the waiting screen once the database exists."""
        if self.current_mode == "waiting":
            if self.db_path.exists():
                self.switch_mode(self.start_mode)
            return
        screen = self.screen
        if isinstance(screen, DashboardScreen):
            screen.refresh_data()

    # -- navigation --------------------------------------------------------------------------

    def action_show(self, mode: str) -> None:
        if self.current_mode == "waiting":
            self.notify("No database yet: start the daemon first (`keepers run`).", severity="warning")
            return
        self.switch_mode(mode)

    # -- actions: rows in the commands table ---------------------------------------------------

    def action_rescan(self) -> None:
        self.send_command("rescan")

    def action_reselect(self) -> None:
        self.send_command("reselect")

    def action_retry_model(self, screen: Screen | None = None) -> None:
        target = self._target(screen or self.screen, "selected_model")
        if target is None:
            self.notify("Select a model on the Models screen to retry it.", severity="warning")
        else:
            self.send_command("retry-model", target)

    def action_pin(self, screen: Screen | None = None) -> None:
        self._photo_command("pin", screen)

    def action_unpin(self, screen: Screen | None = None) -> None:
        self._photo_command("unpin", screen)

    def action_reject(self, screen: Screen | None = None) -> None:
        self._photo_command("reject", screen)

    def _photo_command(self, kind: str, screen: Screen | None) -> None:
        target = self._target(screen or self.screen, "selected_photo")
        if target is None:
            self.notify(f"Select a photo on the Photos or Album screen to {kind} it.", severity="warning")
        else:
            self.send_command(kind, target)

    @staticmethod
    def _target(screen: Screen, getter: str) -> str | None:
        get = getattr(screen, getter, None)
        return get() if callable(get) else None

    def send_command(self, kind: str, arg: str | None = None) -> None:
        """Insert a ``commands`` row for the daemon, off the UI thread, and confirm it."""
        if not self.db_path.exists():
            self.notify("No database yet: start the daemon first (`keepers run`).", severity="error")
            return
        self._send_worker(kind, arg)

    @work(thread=True, group="commands")
    def _send_worker(self, kind: str, arg: str | None) -> None:
        what = COMMAND_WORDS[kind].format(arg=arg)
        try:
            command_id = enqueue_command(self.db_path, kind, arg)
        except (sqlite3.Error, ValueError) as exc:
            log.warning("could not queue %s %s: %s", kind, arg, exc)
            self.call_from_thread(self.notify, f"Could not ask the daemon to {what}: {exc}", severity="error")
            return
        self.call_from_thread(self._sent, command_id, what, kind, arg)

    def _sent(self, command_id: int, what: str, kind: str, arg: str | None) -> None:
        self.sent_commands.append(command_id)
        if kind in ("pin", "unpin", "reject") and arg:
            self.asked[arg] = kind
        self.notify(f"Asked the daemon to {what} (command #{command_id}).", title="Queued")
        screen = self.screen
        if isinstance(screen, DashboardScreen):
            screen.after_command(kind, arg)

    # -- the command palette -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.current_mode == "waiting":
            return
        for key, mode, title in SCREENS:
            yield SystemCommand(f"Show {title}", f"Switch to the {title} screen (key {key})", partial(self.switch_mode, mode))
        yield SystemCommand("Rescan photo folders", "Ask the daemon to look for new, changed and deleted photos (r)", self.action_rescan)
        yield SystemCommand("Reselect now", "Ask the daemon to run the album selection now (n)", self.action_reselect)
        model = self._target(screen, "selected_model")
        if model:
            yield SystemCommand(f"Retry model {model}", "Ask the daemon to load this model again now (t)", partial(self.send_command, "retry-model", model))
        photo = self._target(screen, "selected_photo")
        if photo:
            name = photo.rsplit("/", 1)[-1]
            yield SystemCommand(f"Pin {name}", "Also keep this photo in the album, beside its group's pick (k)", partial(self.send_command, "pin", photo))
            yield SystemCommand(f"Unpin {name}", "Let the selection decide about this photo again (u)", partial(self.send_command, "unpin", photo))
            yield SystemCommand(f"Reject {name}", "Never put this photo in the album (x)", partial(self.send_command, "reject", photo))


def run_dashboard(db_path: Path | str, *, daemon: DaemonProcess | None = None, notices: Sequence[str] = ()) -> int:
    """Run the dashboard in this terminal until the user quits; returns the app's exit
    code (0 after a normal quit). ``daemon``: the child daemon to watch; ``notices``:
    messages to show on screen at start."""
    app = KeepersApp(db_path, daemon=daemon, notices=notices)
    app.run()
    return int(app.return_code or 0)
