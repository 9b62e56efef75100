"""The one-line bar naming the screens and their keys, the current one lit."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

SCREENS: tuple[tuple[str, str, str], ...] = (
    ("1", "overview", "Overview"),
    ("2", "models", "Models"),
    ("3", "photos", "Photos"),
    ("4", "album", "Album"),
    ("5", "activity", "Activity"),
)


class ScreenTabs(Static):
    """Shows ``1 Overview  2 Models …`` with the current screen highlighted."""

    DEFAULT_CSS = """
    ScreenTabs { height: 1; background: $panel; }
    """

    def __init__(self, current: str) -> None:
        super().__init__(self._render_tabs(current))

    @staticmethod
    def _render_tabs(current: str) -> Text:
        text = Text(" keepers ", style="bold reverse")
        for key, mode, title in SCREENS:
            text.append(" ")
            style = "bold reverse" if mode == current else ""
            text.append(f" {key} ", style="bold " + ("reverse" if mode == current else "dim"))
            text.append(f"{title} ", style=style)
        return text
