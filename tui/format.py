"""How the dashboard writes numbers, times and states."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

DASH = "—"

#: colour of each model state (a word is always shown beside the colour)
STATE_STYLES: dict[str, str] = {
    "ready": "bold green",
    "cached": "cyan",
    "fetching": "cyan",
    "pending": "yellow",
    "failed": "bold red",
    "offline-unavailable": "bold yellow",
    "disabled": "dim",
}

STATUS_STYLES: dict[str, str] = {
    "scored": "green",
    "pending": "yellow",
    "error": "bold red",
    "deleted": "dim",
}

LEVEL_STYLES: dict[str, str] = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red reverse"}


def number(value: int | None) -> str:
    """12345 -> '12,345'; None -> '—'."""
    return DASH if value is None else f"{value:,}"


def score(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def duration(seconds: float | None) -> str:
    """A span in the largest sensible units: '850 ms', '4.2 s', '3 min 5 s', '2 h 10 min', '3 d 4 h'."""
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def millis(seconds: float | None) -> str:
    return DASH if seconds is None else f"{seconds * 1000:,.1f}"


def timestamp(at: float | None) -> str:
    """Local date and time of a unix timestamp."""
    return DASH if at is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def clock(at: float | None) -> str:
    """Local time of day of a unix timestamp."""
    return DASH if at is None else time.strftime("%H:%M:%S", time.localtime(at))


def size(n: int | None) -> str:
    if n is None:
        return DASH
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def first_line(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def short_names(paths: "list[str]") -> "list[str]":
    """Each path's file name, with as many parent folders as it takes to tell apart
    the paths that share a name (``2024/IMG_1007.JPG`` beside ``2025/IMG_1007.JPG``)."""
    parts = [p.split("/") for p in paths]
    depth = [1] * len(paths)
    while True:
        names = ["/".join(pp[-d:]) for pp, d in zip(parts, depth)]
        seen: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            seen.setdefault(name, []).append(i)
        clashes = [i for same in seen.values() if len(same) > 1 for i in same if depth[i] < len(parts[i])]
        if not clashes:
            return names
        for i in clashes:
            depth[i] += 1


def path_lines(path: str) -> "Text":
    """A path as its file name (bold) over its folder: long paths wrap between the two,
    not in the middle of the name."""
    from rich.text import Text

    folder, _, name = path.rpartition("/")
    text = Text(name, style="bold")
    if folder:
        text.append(f"\nin {folder}", style="dim")
    return text


#: below this many columns, detail panes stack each label over its value's line
NARROW_COLUMNS = 110


def fields(rows: "list[tuple[str, object]]", *, narrow: bool = False) -> "RenderableType":
    """Label/value rows: a two-column grid, or (narrow) one wrapped line per row
    starting with its bold label, which wastes no width on a label column."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if narrow:
        lines = []
        for label, value in rows:
            line = Text(f"{label} ", style="bold")
            line.append_text(value if isinstance(value, Text) else Text(str(value)))
            lines.append(line)
        return Group(*lines)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value if isinstance(value, Text) else str(value))
    return grid
