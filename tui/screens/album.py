"""Album: the picks grouped by moment and cluster with the reason each won,
the cluster's other photos beside the pick, and what the last run changed."""

from __future__ import annotations

import sqlite3
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from daemon.errors import StoreError
from daemon.store import StoreReader

from .. import format as fmt
from ..queries import PAGE_SIZE, AlbumView, PickRow, Sibling, album_view, cluster_siblings
from ..widgets.tables import cursor_key, refill
from .base import DashboardScreen, read_in_thread

#: reason keys shown first, in this order; any others follow as they come
REASON_ORDER = ("decided_by", "manual", "groups", "coverage", "floors", "tiebreak")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return fmt.score(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items()) or fmt.DASH
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or fmt.DASH
    return fmt.DASH if value is None else str(value)


def _vetoed(pick: PickRow | None, image_id: int) -> str:
    """What kept a sibling out, in the reason's words ('eyes closed'), or ''."""
    floors = (pick.reason.get("floors") or {}) if pick else {}
    vetoes = floors.get(str(image_id)) if isinstance(floors, dict) else None
    if not isinstance(vetoes, dict):
        return ""
    return ", ".join(str(v.get("says") or name) for name, v in vetoes.items() if isinstance(v, dict))


def reason_fields(pick: PickRow, *, narrow: bool = False) -> RenderableType:
    """The pick and its reason JSON as label/value rows, known keys first."""
    rows: list[tuple[str, object]] = [
        ("Pick", Text(pick.path)),
        ("Composite", fmt.score(pick.composite)),
        ("Place", f"moment {pick.moment} · cluster {pick.cluster} · rank {pick.rank}"),
    ]
    keys = [k for k in REASON_ORDER if k in pick.reason] + [k for k in pick.reason if k not in REASON_ORDER]
    rows += [(key.replace("_", " ").capitalize(), _value(pick.reason[key])) for key in keys]
    return fmt.fields(rows, narrow=narrow)


class AlbumScreen(DashboardScreen[AlbumView]):
    MODE = "album"
    AUTO_FOCUS = "#album-table"
    BINDINGS = [
        Binding("k", "app.pin", "Pin"),
        Binding("u", "app.unpin", "Unpin"),
        Binding("x", "app.reject", "Reject"),
        Binding("right_square_bracket", "page(1)", "Next page", show=False),
        Binding("left_square_bracket", "page(-1)", "Prev page", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page_offset = 0
        self.cluster_others: tuple[Sibling, ...] = ()
        self._detail_for: int | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="album-body"):
            with Vertical(id="album-list"):
                table: DataTable[str | Text] = DataTable(id="album-table", cursor_type="row", zebra_stripes=True)
                table.add_columns("Mom", "Clu", "Photo", "Comp", "By")
                yield table
                yield Static("", id="album-changes")
            with VerticalScroll(id="album-detail-pane"):
                yield Static("", id="album-reason")
                siblings: DataTable[str | Text] = DataTable(id="album-siblings", cursor_type="row")
                siblings.add_columns("Not picked", "Comp", "Δ", "Note")
                yield siblings

    def load_params(self) -> int:
        return self.page_offset

    def load(self, reader: StoreReader, params: int) -> AlbumView:
        return album_view(reader, offset=params)

    def show(self, data: AlbumView) -> None:
        rows = []
        previous: tuple[int | None, int | None] | None = None
        for p in data.picks:
            same_moment = previous is not None and previous[0] == p.moment
            rows.append(
                (
                    str(p.image_id),
                    (
                        "" if same_moment else str(p.moment),
                        "" if same_moment and previous == (p.moment, p.cluster) else str(p.cluster),
                        p.name,
                        fmt.score(p.composite),
                        p.manual or p.decided_by,
                    ),
                )
            )
            previous = (p.moment, p.cluster)
        table = self.query_one("#album-table", DataTable)
        refill(table, rows)
        self._show_changes(data)
        key = cursor_key(table)
        if key is None:
            self._show_pick(None, ())
        elif int(key) != self._detail_for:
            self._load_siblings(int(key))

    def status_text(self, data: AlbumView) -> str:
        if data.run is None:
            return "no selection run yet · press n to ask the daemon for one"
        first = data.offset + 1 if data.total_picks else 0
        last = min(data.offset + len(data.picks), data.total_picks)
        run = data.run
        return (
            f"picks {fmt.number(first)}–{fmt.number(last)} of {fmt.number(data.total_picks)}"
            f" · run #{run.id} ({run.trigger}) {fmt.timestamp(run.started)}: +{run.added or 0} −{run.removed or 0}"
        )

    def _show_changes(self, data: AlbumView) -> None:
        run = data.run
        if run is None:
            self.query_one("#album-changes", Static).update("")
            return
        line = Text(f"Run #{run.id}: ", style="bold")
        if not data.added and not data.removed:
            line.append("no change to the album", style="dim")
        for path in data.added:
            line.append(f"+{path.rsplit('/', 1)[-1]} ", style="green")
        for path in data.removed:
            line.append(f"−{path.rsplit('/', 1)[-1]} ", style="red")
        self.query_one("#album-changes", Static).update(line)

    # -- the highlighted pick ----------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "album-table" and event.row_key.value is not None:
            image_id = int(event.row_key.value)
            if image_id != self._detail_for:
                self._load_siblings(image_id)

    def _load_siblings(self, image_id: int) -> None:
        self._detail_for = image_id
        self._siblings_worker(image_id)

    @work(thread=True, exclusive=True, group="detail")
    def _siblings_worker(self, image_id: int) -> None:
        worker = get_current_worker()
        try:
            siblings = read_in_thread(self.db_path, lambda reader: cluster_siblings(reader, image_id))
        except (StoreError, sqlite3.Error) as exc:
            self._call_ui(self._show_error, exc)
            return
        if not worker.is_cancelled:
            self._call_ui(self._show_pick, image_id, siblings)

    def _pick(self, image_id: int | None) -> PickRow | None:
        if image_id is None or self.data is None:
            return None
        return next((p for p in self.data.picks if p.image_id == image_id), None)

    def _show_pick(self, image_id: int | None, siblings: tuple[Sibling, ...]) -> None:
        pick = self._pick(image_id)
        self.cluster_others = siblings
        narrow = self.size.width < fmt.NARROW_COLUMNS
        self.query_one("#album-reason", Static).update(reason_fields(pick, narrow=narrow) if pick else "The album is empty.")
        refill(
            self.query_one("#album-siblings", DataTable),
            [
                (
                    str(s.image_id),
                    (
                        s.name,
                        fmt.score(s.composite),
                        f"{s.composite - pick.composite:+.3f}" if pick and s.composite is not None and pick.composite is not None else fmt.DASH,
                        s.manual or _vetoed(pick, s.image_id) or (s.status if s.status != "scored" else ""),
                    ),
                )
                for s in siblings
            ],
        )

    def action_page(self, step: int) -> None:
        total = self.data.total_picks if self.data is not None else 0
        offset = self.page_offset + step * PAGE_SIZE
        if 0 <= offset < max(total, 1):
            self.page_offset = offset
            self.refresh_data()

    def selected_photo(self) -> str | None:
        siblings = self.query_one("#album-siblings", DataTable)
        if siblings.has_focus:
            key = cursor_key(siblings)
            return next((s.path for s in self.cluster_others if str(s.image_id) == key), None)
        pick = self._pick(int(k) if (k := cursor_key(self.query_one("#album-table", DataTable))) else None)
        return pick.path if pick else None
