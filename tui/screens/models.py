"""Models: every enabled model's state, the source that served it, its last
error in full and its event history. Action: retry the selected model."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from daemon.store import StoreReader

from .. import format as fmt
from ..queries import ModelRow, ModelsView, models_view
from ..widgets.tables import cursor_key, refill
from .base import DashboardScreen


def _detail(model: ModelRow) -> Group:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Model", Text.assemble((model.name, "bold"), f"  {model.task or '?'} · {model.framework or '?'}"))
    grid.add_row("State", Text(model.state, style=fmt.STATE_STYLES.get(model.state, "")))
    grid.add_row("Source", f"{model.source or fmt.DASH}  {model.source_ref or ''}".rstrip())
    grid.add_row("Cache", model.cache_path or fmt.DASH)
    grid.add_row("Version", f"{model.version or fmt.DASH}  sha256 {model.sha256[:16] + '…' if model.sha256 else fmt.DASH}")
    grid.add_row("Size", f"{fmt.size(model.bytes)} · loaded in {fmt.duration(model.load_seconds)} · {model.attempts} attempts")
    parts: list[Table | Text] = [grid]
    if model.last_error:
        parts.append(Text("Last error", style="bold red"))
        parts.append(Text(model.last_error, style="red"))
    return Group(*parts)


class ModelsScreen(DashboardScreen[ModelsView]):
    MODE = "models"
    AUTO_FOCUS = "#models-table"
    BINDINGS = [Binding("t", "app.retry_model", "Retry model")]

    def __init__(self) -> None:
        super().__init__()
        self.selected_name: str | None = None

    def compose_body(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("Model", "State", "Source", "Load", "Tries", "Last error")
        yield table
        with VerticalScroll(id="model-detail-pane"):
            yield Static(id="model-detail")
            events: DataTable[str | Text] = DataTable(id="model-events", cursor_type="row", show_cursor=False)
            events.add_columns("When", "Event", "Source", "Took", "Error", "Message")
            yield events

    def load_params(self) -> str | None:
        return self.selected_name

    def load(self, reader: StoreReader, params: str | None) -> ModelsView:
        return models_view(reader, params)

    def show(self, data: ModelsView) -> None:
        table = self.query_one("#models-table", DataTable)
        refill(
            table,
            [
                (
                    m.name,
                    (
                        m.name,
                        Text(m.state, style=fmt.STATE_STYLES.get(m.state, "")),
                        m.source or fmt.DASH,
                        fmt.duration(m.load_seconds),
                        str(m.attempts),
                        fmt.first_line(m.last_error, 40),
                    ),
                )
                for m in data.models
            ],
        )
        if self.selected_name is None:
            self.selected_name = data.selected
        model = data.model(data.selected)
        detail = self.query_one("#model-detail", Static)
        if model is None:
            extra = f" ({len(data.disabled)} disabled: {', '.join(data.disabled)})" if data.disabled else ""
            detail.update(f"No model is enabled{extra}. Enable models under `models.enabled` in keepers.yaml.")
        else:
            detail.update(_detail(model))
        refill(
            self.query_one("#model-events", DataTable),
            [
                (
                    str(e.id),
                    (
                        fmt.timestamp(e.at),
                        e.kind,
                        e.source or fmt.DASH,
                        fmt.duration(e.seconds),
                        e.error_class or "",
                        fmt.first_line(e.message, 80),
                    ),
                )
                for e in data.events
            ],
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "models-table" or event.row_key.value is None:
            return
        if event.row_key.value != self.selected_name:
            self.selected_name = event.row_key.value
            self.refresh_data()

    def selected_model(self) -> str | None:
        return cursor_key(self.query_one("#models-table", DataTable)) or self.selected_name
