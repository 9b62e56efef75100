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
from .base import DashboardScreen, asked_note, read_in_thread

#: reason keys rendered by :func:`reason_fields` itself; any others follow as they come
KNOWN_REASON_KEYS = {
    "decided_by", "manual", "groups", "coverage", "composite", "cluster_size", "kind", "set", "runner_up",
    "tiebreak", "floors", "floor_paths", "companions",
}
#: the "Not picked" table's columns; below fmt.NARROW_COLUMNS the composite gives way (Δ says how far behind)
SIBLING_COLUMNS = ("Not picked", "Comp", "Δ", "Note")
SIBLING_COLUMNS_NARROW = ("Not picked", "Δ", "Note")
GROUP_WORDS = {"cluster": "lookalikes", "bracket": "exposure bracket", "panorama": "panorama"}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return fmt.score(value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items()) or fmt.DASH
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or fmt.DASH
    return fmt.DASH if value is None else str(value)


def _file(path: Any, image_id: Any = None) -> str:
    """A photo as its file name; a reason written before names were stored has only the id."""
    if isinstance(path, str) and path:
        return path.rsplit("/", 1)[-1]
    return f"photo #{image_id}" if image_id is not None else fmt.DASH


def _tiebreak(tiebreak: dict[str, Any]) -> str:
    if tiebreak.get("note"):
        return str(tiebreak["note"])
    if tiebreak.get("error"):
        return f"{tiebreak.get('comparator')} failed ({tiebreak['error']}); kept the higher composite"
    names = {}
    for bout in tiebreak.get("bouts") or ():
        names[bout.get("winner")] = _file(bout.get("winner_path"), bout.get("winner"))
    bouts = tiebreak.get("bouts") or ()
    if bouts:
        last = bouts[-1]
        return (f"{tiebreak.get('comparator')} preferred {names.get(last.get('winner'))} "
                f"(confidence {last.get('confidence', 0):.2f}) over {len(bouts)} near tie(s)")
    return _value(tiebreak)


def _vetoed(pick: PickRow | None, image_id: int) -> str:
    """What kept a sibling out, in the reason's words ('eyes closed'), or ''."""
    floors = (pick.reason.get("floors") or {}) if pick else {}
    vetoes = floors.get(str(image_id)) if isinstance(floors, dict) else None
    if not isinstance(vetoes, dict):
        return ""
    return ", ".join(str(v.get("says") or name) for name, v in vetoes.items() if isinstance(v, dict))


def _vetoes(vetoes: dict[str, Any]) -> str:
    """'sharpness 0.05 < 0.2' for each floor a photo fell below."""
    return ", ".join(f"{v.get('says') or name} ({name} {v.get('value', 0):.2f} < {v.get('floor', 0):g})"
                     for name, v in vetoes.items() if isinstance(v, dict))


def reason_fields(pick: PickRow, *, narrow: bool = False, asked: str | None = None) -> RenderableType:
    """The pick and why it won, as label/value rows that name photos by file."""
    reason = pick.reason
    rows: list[tuple[str, object]] = [("Pick", fmt.path_lines(pick.path))]
    if asked:
        rows.append(("Asked", Text(asked, style="bold yellow")))
    rows.append(("Composite", fmt.score(pick.composite)))
    rows.append(("Taken", fmt.timestamp(pick.taken_at)))
    size, kind = reason.get("cluster_size"), str(reason.get("kind") or "cluster")
    if size:
        rows.append(("Group", f"{size} {GROUP_WORDS.get(kind, kind)}" if kind == "cluster" else f"{GROUP_WORDS.get(kind, kind)} of {size}"))
    decided = pick.decided_by or fmt.DASH
    manual = pick.manual or reason.get("manual")
    if manual == "pin":
        decided += " · pinned by hand (kept beside the group's own pick)" if decided != "pin" else " by hand (kept beside the group's own pick)"
    rows.append(("Decided by", decided))
    groups = reason.get("groups")
    if isinstance(groups, dict) and groups:
        rows.append(("Groups", " · ".join(f"{k} {_value(v)}" for k, v in groups.items())))
    if reason.get("coverage") is not None:
        rows.append(("Coverage", _value(reason.get("coverage"))))
    runner = reason.get("runner_up")
    if isinstance(runner, dict):
        comp = runner.get("composite")
        gap = f" ({comp - pick.composite:+.3f})" if isinstance(comp, (int, float)) and pick.composite is not None else ""
        rows.append(("Runner-up", f"{_file(runner.get('path'), runner.get('id'))} {_value(comp)}{gap}"))
    if isinstance(reason.get("tiebreak"), dict):
        rows.append(("Tie", _tiebreak(reason["tiebreak"])))
    floors = reason.get("floors")
    if isinstance(floors, dict) and floors:
        paths = reason.get("floor_paths") or {}
        rows.append(("Vetoed", "; ".join(f"{_file(paths.get(pid), pid)} ({_vetoes(v)})" for pid, v in floors.items())))
    if reason.get("companions"):
        rows.append(("Also", ", ".join(_file(p) for p in reason["companions"])))
    rows += [(key.replace("_", " ").capitalize(), _value(value)) for key, value in reason.items() if key not in KNOWN_REASON_KEYS]
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
                table.add_columns("Taken", "Photo", "Comp", "By")
                yield table
                yield Static("", id="album-changes")
            # not focusable itself: one Tab goes from the picks straight to "Not picked"
            pane = VerticalScroll(id="album-detail-pane")
            pane.can_focus = False
            with pane:
                yield Static("", id="album-reason")
                yield DataTable(id="album-siblings", cursor_type="row")

    def load_params(self) -> int:
        return self.page_offset

    def load(self, reader: StoreReader, params: int) -> AlbumView:
        return album_view(reader, offset=params)

    def show(self, data: AlbumView) -> None:
        rows = []
        previous: int | None = None
        names = fmt.short_names([p.path for p in data.picks])
        for p, name in zip(data.picks, names):
            first_of_moment = previous is None or previous != p.moment
            rows.append(
                (
                    str(p.image_id),
                    (
                        fmt.timestamp(p.taken_at)[5:16] if first_of_moment else "",  # 11-23 17:00; the year is in the detail
                        name,
                        fmt.score(p.composite),
                        p.manual or p.decided_by,
                    ),
                )
            )
            previous = p.moment
        table = self.query_one("#album-table", DataTable)
        refill(table, rows)
        self._show_changes(data)
        key = cursor_key(table)
        if key is None:
            self._detail_for = None
            self._show_pick(None, ())
        else:
            # every refresh: a pin, reject or run changes the cluster's other photos under the same pick
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

    def redraw_detail(self) -> None:
        self._show_pick(self._detail_for, self.cluster_others)

    def _show_pick(self, image_id: int | None, siblings: tuple[Sibling, ...]) -> None:
        pick = self._pick(image_id)
        self.cluster_others = siblings
        narrow = self.size.width < fmt.NARROW_COLUMNS
        asked: dict[str, str] = getattr(self.app, "asked", {})
        if pick is None:
            self.query_one("#album-reason", Static).update("The album is empty.")
        else:
            note = asked_note(asked, pick.path, pick.manual)
            self.query_one("#album-reason", Static).update(reason_fields(pick, narrow=narrow, asked=note))
        table = self.query_one("#album-siblings", DataTable)
        columns = SIBLING_COLUMNS_NARROW if narrow else SIBLING_COLUMNS
        if tuple(str(c.label) for c in table.columns.values()) != columns:
            table.clear(columns=True)
            table.add_columns(*columns)
            table._keepers_signature = None  # type: ignore[attr-defined]
        rows = []
        for s, name in zip(siblings, fmt.short_names([s.path for s in siblings])):
            delta = f"{s.composite - pick.composite:+.3f}" if pick and s.composite is not None and pick.composite is not None else fmt.DASH
            note = "asked" if asked_note(asked, s.path, s.manual) else s.manual or _vetoed(pick, s.image_id) or (s.status if s.status != "scored" else "")
            rows.append((str(s.image_id), (name, delta, note) if narrow else (name, fmt.score(s.composite), delta, note)))
        refill(table, rows)

    def action_page(self, step: int) -> None:
        total = self.data.total_picks if self.data is not None else 0
        offset = self.page_offset + step * PAGE_SIZE
        if 0 <= offset < max(total, 1):
            self.page_offset = offset
            self.refresh_data()

    def selected_photo(self) -> str | None:
        """The focused list's photo: a "Not picked" photo when that list has focus, else the pick."""
        siblings = self.query_one("#album-siblings", DataTable)
        if siblings.has_focus:
            key = cursor_key(siblings)
            return next((s.path for s in self.cluster_others if str(s.image_id) == key), None)
        pick = self._pick(int(k) if (k := cursor_key(self.query_one("#album-table", DataTable))) else None)
        return pick.path if pick else None
