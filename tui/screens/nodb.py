"""Shown while the database does not exist yet: how to start the daemon."""

from __future__ import annotations

import shlex
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Footer, Static

from daemon import paths


def waiting_text(db_path: Path) -> Text:
    """How to start a daemon that writes ``db_path``: the commands carry ``--db`` unless it is
    the default database (the service always uses the one its config names)."""
    db = "" if db_path == paths.database_file() else f" --db {shlex.quote(str(db_path))}"
    text = Text()
    text.append("No keepers database yet\n\n", style="bold")
    text.append("Looked for ")
    text.append(str(db_path), style="bold")
    text.append(".\nThe daemon creates it when it first starts. Start it with one of:\n\n")
    for command, what in (
        (f"keepers run --tui{db}", "daemon and dashboard in this terminal"),
        (f"keepers run{db}", "daemon only (then `keepers tui`" + (" with the same --db)" if db else ")")),
        ("systemctl --user start keepers", "as a service" + (" (set `database:` in its config)" if db else "")),
    ):
        text.append(f"  {command}", style="bold cyan")
        text.append(f"\n      {what}\n")
    text.append("\nThis screen switches to the overview as soon as the database appears.", style="dim")
    return text


class NoDatabaseScreen(Screen[None]):
    MODE = "waiting"

    def compose(self) -> ComposeResult:
        with Middle():
            with Center():
                yield Static(waiting_text(Path(getattr(self.app, "db_path"))), id="nodb-message")
        yield Footer(compact=True)
