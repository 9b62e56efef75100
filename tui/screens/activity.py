"""Activity: where the daemon spends its time, stage by stage, and its recent
warnings and errors."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label

from daemon.store import StoreReader

from .. import format as fmt
from ..queries import ActivityView, activity_view
from ..widgets.tables import refill
from .base import DashboardScreen


class ActivityScreen(DashboardScreen[ActivityView]):
    MODE = "activity"
    AUTO_FOCUS = "#activity-stages"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="activity-body"):
            yield Label("Stage timings", id="activity-timings-title", classes="section")
            stages: DataTable[str | Text] = DataTable(id="activity-stages", cursor_type="row", zebra_stripes=True)
            stages.add_columns("Stage", "Count", "Total s", "Mean ms", "Max ms", "Share")
            yield stages
            yield Label("Recent warnings and errors", classes="section")
            log: DataTable[str | Text] = DataTable(id="activity-log", cursor_type="row")
            log.add_columns("When", "Level", "Where", "Message")
            yield log

    def load(self, reader: StoreReader, params: Any) -> ActivityView:
        return activity_view(reader)

    def show(self, data: ActivityView) -> None:
        grand = sum(s.total_seconds for s in data.stages) or 1.0
        refill(
            self.query_one("#activity-stages", DataTable),
            [
                (
                    s.stage,
                    (
                        s.stage,
                        fmt.number(s.count),
                        f"{s.total_seconds:,.2f}",
                        fmt.millis(s.mean_seconds),
                        fmt.millis(s.max_seconds),
                        f"{s.total_seconds / grand:.0%}",
                    ),
                )
                for s in data.stages
            ],
        )
        title = "Stage timings: none recorded yet"
        if data.window_end is not None:
            title = f"Stage timings over the hour up to {fmt.timestamp(data.window_end)}"
        self.query_one("#activity-timings-title", Label).update(title)
        refill(
            self.query_one("#activity-log", DataTable),
            [
                (
                    str(e.id),
                    (
                        fmt.timestamp(e.at),
                        Text(e.level.upper(), style=fmt.LEVEL_STYLES.get(e.level.upper(), "")),
                        e.logger,
                        fmt.first_line(e.message, 120),
                    ),
                )
                for e in data.log
            ],
        )
