"""Photos: a sortable, filterable, paged table of every image, and a detail
pane with every score and a thumbnail of the highlighted one."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from PIL import Image as PILImage
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static
from textual.worker import get_current_worker

from daemon.errors import StoreError
from daemon.store import StoreReader

from .. import format as fmt
from ..queries import GROUPS, PAGE_SIZE, PHOTO_SORTS, PHOTO_STATUS_FILTERS, PhotoDetail, PhotoPage, PhotoQuery, SearchMemo, photo_detail, photo_page
from ..widgets.tables import cursor_key, refill
from ..widgets.thumbnail import Thumbnail, load_preview
from .base import DashboardScreen, asked_note, read_in_thread

SORT_ORDER = tuple(PHOTO_SORTS)
#: the table column a header click sorts by
COLUMN_SORTS = {"photo": "path", "status": "status", "composite": "composite"}


def _detail(d: PhotoDetail, *, narrow: bool = False, asked: str | None = None) -> Group:
    p = d.photo
    rows: list[tuple[str, object]] = [
        ("Photo", fmt.path_lines(p.path)),
        ("Status", Text(p.status, style=fmt.STATUS_STYLES.get(p.status, ""))),
    ]
    if p.error:
        rows.append(("Error", Text(p.error, style="red")))
    rows.append(("Composite", f"{fmt.score(p.composite)} from {', '.join(p.coverage) or 'no group'}"))
    rows.append(("Groups", "  ".join(f"{g} {fmt.score(p.groups.get(g))}" for g in GROUPS)))
    technical = [s for s in d.scores if s.task == "technical" and s.normalised is not None]
    if technical:  # the group is a soft minimum of its measures: say which one holds it down
        lowest = min(technical, key=lambda s: s.normalised)
        rows.append(("Technical", f"held down most by {lowest.model} {fmt.score(lowest.normalised)} (a soft minimum of its measures)"))
    rows.append(("Size", f"{d.width or '?'}×{d.height or '?'} · {fmt.size(d.size)}"))
    rows.append(("Taken", f"{fmt.timestamp(p.taken_at)} ({d.taken_source or '?'})"))
    if d.camera:
        rows.append(("Camera", d.camera))
    rows.append(("Moment", f"{d.moment if d.moment is not None else fmt.DASH} · cluster {d.cluster if d.cluster is not None else fmt.DASH}"))
    album = "picked" if d.picked else "not picked"
    if p.manual:
        album += " · pinned by hand (kept beside its group's pick)" if p.manual == "pin" else " · rejected by hand"
    rows.append(("Album", album))
    if asked:
        rows.append(("Asked", Text(asked, style="bold yellow")))
    if narrow:  # one line per score: name, 0..1 value, raw value
        scores: Table | Text = Text("\n").join(
            Text.assemble((s.model, "bold"), f" {fmt.score(s.normalised)}", (f" raw {s.raw:.4g}" if s.raw is not None else "", "dim"))
            for s in d.scores
        ) or Text("no scores yet")
    else:
        scores = Table("Score", "Group", "Raw", "0..1", box=None, padding=(0, 1), header_style="bold")
        for s in d.scores:
            scores.add_row(s.model, s.task, f"{s.raw:.4g}" if s.raw is not None else fmt.DASH, fmt.score(s.normalised))
        if not d.scores:
            scores.add_row("(none yet)", "", "", "")
    return Group(fmt.fields(rows, narrow=narrow), Text(""), scores)


class PhotosScreen(DashboardScreen[PhotoPage]):
    MODE = "photos"
    AUTO_FOCUS = "#photos-table"
    BINDINGS = [
        Binding("k", "app.pin", "Pin"),
        Binding("u", "app.unpin", "Unpin"),
        Binding("x", "app.reject", "Reject"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("f", "status_filter", "Status"),
        Binding("right_square_bracket", "page(1)", "Next page", show=False),
        Binding("left_square_bracket", "page(-1)", "Prev page", show=False),
        Binding("escape", "leave_filter", "Back", show=False),
        # still there, out of the footer: at 80 columns it had no room left for q Quit
        Binding("r", "app.rescan", "Rescan", show=False),
        Binding("n", "app.reselect", "Reselect", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.photo_query = PhotoQuery()
        self.detail: PhotoDetail | None = None
        self._detail_for: int | None = None
        self._preview: PILImage.Image | str | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="photos-body"):
            with Vertical(id="photos-list"):
                yield Input(placeholder="filter by path, Enter to apply, Esc to clear", id="photos-filter")
                table: DataTable[str | Text] = DataTable(id="photos-table", cursor_type="row", zebra_stripes=True)
                table.add_column("Photo", key="photo")
                table.add_column("Status", key="status")
                table.add_column("Comp", key="composite")
                for group in GROUPS:
                    table.add_column(group[:4].title(), key=group)
                table.add_column("Cov", key="coverage")
                table.add_column("Note", key="note")
                yield table
            with VerticalScroll(id="photo-detail-pane"):
                yield Thumbnail(id="photo-thumbnail")
                yield Static("", id="photo-detail")

    # -- data --------------------------------------------------------------------------------

    def load_params(self) -> tuple[PhotoQuery, SearchMemo | None]:
        # a path search's matches, reused while no photo has changed (reading every path takes seconds at a million)
        return self.photo_query, self.data.search if self.data is not None else None

    def load(self, reader: StoreReader, params: tuple[PhotoQuery, SearchMemo | None]) -> PhotoPage:
        return photo_page(reader, *params)

    def show(self, data: PhotoPage) -> None:
        rows = []
        for p, name in zip(data.rows, fmt.short_names([p.path for p in data.rows])):
            note = p.manual or fmt.first_line(p.error, 30)
            rows.append(
                (
                    str(p.id),
                    (
                        name,
                        Text(p.status, style=fmt.STATUS_STYLES.get(p.status, "")),
                        fmt.score(p.composite),
                        *(fmt.score(p.groups.get(g)) for g in GROUPS),
                        "".join(g[0].upper() if g in p.coverage else "·" for g in GROUPS),
                        note,
                    ),
                )
            )
        table = self.query_one("#photos-table", DataTable)
        refill(table, rows)
        key = cursor_key(table)
        if key is None:
            self._detail_for = None
            self._show_detail(None, None)
            return
        row = next((p for p in data.rows if str(p.id) == key), None)
        shown = self.detail.photo if self.detail is not None else None
        # the same photo whose row changed (pinned, rejected, picked, rescored): its detail is stale
        if int(key) != self._detail_for or row != shown:
            self._load_detail(int(key))

    def status_text(self, data: PhotoPage) -> str:
        q = data.query
        where = f" matching “{q.text}”" if q.text else ""
        which = "" if q.status == "all" else f"{q.status} "
        if not data.total:
            undo = "Esc clears the filter" if q.text else "f shows other statuses"
            return f"no {which}photos{where} · {undo}" if (q.text or q.status != "all") else "no photos yet · the daemon lists them as it finds them"
        first = q.offset + 1
        last = min(q.offset + len(data.rows), data.total)
        return f"{fmt.number(first)}–{fmt.number(last)} of {fmt.number(data.total)} {which}photos{where} · sorted by {q.sort}"

    # -- the detail pane ---------------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "photos-table" and event.row_key.value is not None:
            image_id = int(event.row_key.value)
            if image_id != self._detail_for:
                self._load_detail(image_id)

    def _load_detail(self, image_id: int) -> None:
        self._detail_for = image_id
        self._detail_worker(image_id)

    @work(thread=True, exclusive=True, group="detail")
    def _detail_worker(self, image_id: int) -> None:
        worker = get_current_worker()
        try:
            detail = read_in_thread(self.db_path, lambda reader: photo_detail(reader, image_id))
        except (StoreError, sqlite3.Error) as exc:
            self._call_ui(self._show_error, exc)
            return
        preview = load_preview(detail.photo.path) if detail is not None else None
        if not worker.is_cancelled:
            self._call_ui(self._show_detail, detail, preview)

    def redraw_detail(self) -> None:
        self._show_detail(self.detail, self._preview)

    def _show_detail(self, detail: PhotoDetail | None, preview: PILImage.Image | str | None) -> None:
        self.detail = detail
        if preview is not self._preview:
            self.query_one("#photo-thumbnail", Thumbnail).show(preview)
            self._preview = preview
        narrow = self.size.width < fmt.NARROW_COLUMNS
        if detail is None:
            self.query_one("#photo-detail", Static).update("")
            return
        asked = asked_note(getattr(self.app, "asked", {}), detail.photo.path, detail.photo.manual)
        self.query_one("#photo-detail", Static).update(_detail(detail, narrow=narrow, asked=asked))

    # -- sorting, filtering, paging ----------------------------------------------------------

    def _requery(self, **changes: Any) -> None:
        self.photo_query = replace(self.photo_query, **changes)
        self.refresh_data()

    def action_sort(self) -> None:
        i = SORT_ORDER.index(self.photo_query.sort) if self.photo_query.sort in SORT_ORDER else -1
        self._requery(sort=SORT_ORDER[(i + 1) % len(SORT_ORDER)], offset=0)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        sort = COLUMN_SORTS.get(str(event.column_key.value))
        if sort:
            self._requery(sort=sort, offset=0)

    def action_status_filter(self) -> None:
        i = PHOTO_STATUS_FILTERS.index(self.photo_query.status)
        self._requery(status=PHOTO_STATUS_FILTERS[(i + 1) % len(PHOTO_STATUS_FILTERS)], offset=0)

    def action_page(self, step: int) -> None:
        total = self.data.total if self.data is not None else 0
        offset = self.photo_query.offset + step * PAGE_SIZE
        if 0 <= offset < max(total, 1):
            self._requery(offset=offset)

    def action_filter(self) -> None:
        box = self.query_one("#photos-filter", Input)
        box.add_class("-shown")
        box.focus()

    def action_leave_filter(self) -> None:
        """Esc: clear the path filter (typed or applied), hide its box, back to the table."""
        box = self.query_one("#photos-filter", Input)
        box.value = ""
        box.remove_class("-shown")
        self.query_one("#photos-table", DataTable).focus()
        if self.photo_query.text:
            self._requery(text="", offset=0)

    @on(Input.Submitted, "#photos-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._requery(text=event.value.strip(), offset=0)
        if not event.value.strip():
            event.input.remove_class("-shown")
        self.query_one("#photos-table", DataTable).focus()

    def selected_photo(self) -> str | None:
        key = cursor_key(self.query_one("#photos-table", DataTable))
        if key is None or self.data is None:
            return None
        return next((p.path for p in self.data.rows if str(p.id) == key), None)
