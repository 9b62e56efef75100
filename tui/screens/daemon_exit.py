"""Shown the moment the daemon that `keepers run --tui` started exits: its exit
code and the end of its log, which says why (a missing folder, a locked
database, a model that `models.strict` required)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


def exit_text(code: int | None, log_tail: str, log_path: Path) -> Text:
    text = Text()
    text.append(f"The daemon stopped (exit code {code})\n\n", style="bold red")
    lines = [line for line in log_tail.splitlines() if line.strip()]
    if lines:
        text.append("The end of its log:\n", style="bold")
        for line in lines:
            style = "bold red" if ("error" in line.lower() or line.startswith("keepers:")) else ""
            text.append(f"  {line}\n", style=style)
    else:
        text.append("It wrote nothing to its log.\n")
    text.append("\nThe whole log: ")
    text.append(str(log_path), style="bold")
    text.append("\nNothing is being scored now. Fix the cause, then start `keepers run --tui` again.\n")
    text.append("q quits · Esc looks at what is in the database", style="dim")
    return text


class DaemonExitedScreen(ModalScreen[None]):
    """The daemon's exit code and last words, over whatever screen was showing."""

    BINDINGS = [
        Binding("escape", "dismiss", "Look at the data"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, code: int | None, log_tail: str, log_path: Path) -> None:
        super().__init__()
        self.code = code
        self.log_tail = log_tail
        self.log_path = log_path

    def compose(self) -> ComposeResult:
        with Vertical(id="daemon-exit"):
            yield Static(exit_text(self.code, self.log_tail, self.log_path), id="daemon-exit-message")
        yield Footer(compact=True)
