"""Shown while the database does not exist yet: how to start the daemon."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Footer, Static


def waiting_text(db_path: Path) -> Text:
    text = Text()
    text.append("No keepers database yet\n\n", style="bold")
    text.append("Looked for ")
    text.append(str(db_path), style="bold")
    text.append(".\nThe daemon creates it when it first starts. Start it with one of:\n\n")
    text.append("  keepers run --tui", style="bold cyan")
    text.append("            daemon and dashboard in this terminal\n")
    text.append("  keepers run", style="bold cyan")
    text.append("                  daemon only (then `keepers tui`)\n")
    text.append("  systemctl --user start keepers", style="bold cyan")
    text.append("   as a service\n\n")
    text.append("Pass --db FILE when the daemon uses another database.\n")
    text.append("This screen switches to the overview as soon as the database appears.", style="dim")
    return text


class NoDatabaseScreen(Screen[None]):
    MODE = "waiting"

    def compose(self) -> ComposeResult:
        with Middle():
            with Center():
                yield Static(waiting_text(Path(getattr(self.app, "db_path"))), id="nodb-message")
        yield Footer()
