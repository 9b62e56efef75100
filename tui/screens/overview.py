"""Overview: is the daemon running, what has it done, what needs attention."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from daemon.store import StoreReader

from .. import format as fmt
from ..queries import Overview, overview
from .base import DashboardScreen


def _daemon_lines(data: Overview, now: float) -> list[tuple[str, Text | str]]:
    d = data.daemon
    if d is None:
        return [("Daemon", Text("not started yet — run `keepers run` or `systemctl --user start keepers`", style="bold yellow"))]
    running = d.is_running(now)
    word = Text("running", style="bold green") if running else Text("not running", style="bold red")
    word.append(f"  pid {d.pid or fmt.DASH} · keepers {d.version or '?'} · state {d.state or '?'}", style="")
    rows: list[tuple[str, Text | str]] = [("Daemon", word)]
    age = d.heartbeat_age(now)
    beat = f"{fmt.duration(age)} ago" if age is not None else "never"
    if running and d.started is not None:
        beat += f"   uptime {fmt.duration(max(0.0, now - d.started))}"
    elif not running and d.heartbeat is not None:
        beat += f"   (last seen {fmt.timestamp(d.heartbeat)})"
    rows.append(("Heartbeat", beat))
    speed = f"{d.photos_per_min:.1f} photos/min" if d.photos_per_min is not None else fmt.DASH
    rows.append(("Queue", f"{fmt.number(d.queue_depth)} waiting   speed {speed}"))
    folders = Text(", ".join(f"{f.path} ({f.mode})" for f in d.watched_folders if not f.over_limit))
    for f in (f for f in d.watched_folders if f.over_limit):
        folders.append(", " if folders.plain else "")
        folders.append(f"{f.path} (polled: over the inotify watch limit; raise fs.inotify.max_user_watches)", style="bold red")
    rows.append(("Watching", folders if folders.plain else "none"))
    if d.inotify_limit:
        used = d.inotify_watches or 0
        share = used / d.inotify_limit
        style = "bold red" if share > 0.9 else "yellow" if share > 0.7 else ""
        rows.append(("inotify", Text(f"{fmt.number(used)} of {fmt.number(d.inotify_limit)} watches ({share:.0%})", style=style)))
    else:
        rows.append(("inotify", f"{fmt.number(d.inotify_watches)} watches"))
    if d.status_text:
        trouble = d.status_text.startswith(("not healthy:", "waiting:"))
        rows.append(("Status", Text(d.status_text, style="bold red") if trouble else d.status_text))
    if d.disk:
        rows.append(("Disk", Text(f"{d.disk}; the daemon holds what it has scored until it can write", style="bold red")))
    return rows


def _library_lines(data: Overview) -> list[tuple[str, Text | str]]:
    c = data.counts
    photos = Text()
    photos.append(f"{fmt.number(c.get('scored', 0))} scored", style="green")
    photos.append(" · ")
    photos.append(f"{fmt.number(c.get('pending', 0))} pending", style="yellow" if c.get("pending") else "")
    photos.append(" · ")
    photos.append(f"{fmt.number(c.get('error', 0))} errors", style="bold red" if c.get("error") else "")
    photos.append(f" · {fmt.number(c.get('deleted', 0))} deleted   ({fmt.number(data.total_photos)} total)")
    rows: list[tuple[str, Text | str]] = [("Photos", photos)]
    run = data.last_run
    if run is None:
        rows.append(("Album", f"{fmt.number(data.album_size)} picks · no selection run yet"))
    else:
        text = Text(f"{fmt.number(data.album_size)} picks · run #{run.id} ({run.trigger}) {fmt.timestamp(run.started)}")
        if run.error:
            text.append(f" failed: {fmt.first_line(run.error)}", style="bold red")
        else:
            took = fmt.duration(run.finished - run.started) if run.finished is not None else "running"
            text.append(f" · {took} · +{run.added or 0} −{run.removed or 0}")
        rows.append(("Album", text))
    enabled = data.ready_models + len(data.unready_models)
    style = "green" if not data.unready_models else "yellow"
    rows.append(("Models", Text(f"{data.ready_models} of {enabled} enabled models ready", style=style)))
    if data.open_commands:
        rows.append(("Commands", f"{data.open_commands} waiting for the daemon"))
    return rows


def _grid(rows: list[tuple[str, Text | str]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True, width=10)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, value)
    return grid


class OverviewScreen(DashboardScreen[Overview]):
    MODE = "overview"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="overview-body"):
            yield Static(id="overview-daemon", classes="panel")
            yield Static(id="overview-library", classes="panel")
            yield Static(id="overview-warnings")

    def load(self, reader: StoreReader, params: Any) -> Overview:
        return overview(reader)

    def show(self, data: Overview) -> None:
        now = self.now()
        self.query_one("#overview-daemon", Static).update(_grid(_daemon_lines(data, now)))
        self.query_one("#overview-library", Static).update(_grid(_library_lines(data)))
        warnings = [
            Text.assemble(
                ("⚠ ", "bold yellow"),
                (m.name, "bold"),
                " ",
                (m.state, fmt.STATE_STYLES.get(m.state, "")),
                f": {fmt.first_line(m.last_error, 200)}" if m.last_error else "",
            )
            for m in data.unready_models
        ]
        self.query_one("#overview-warnings", Static).update(Group(*warnings) if warnings else "")
