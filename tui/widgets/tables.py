"""DataTable helpers: refill a table without losing the reader's place."""

from __future__ import annotations

from typing import Any, Sequence

from textual.widgets import DataTable


def refill(table: DataTable[Any], rows: Sequence[tuple[str, Sequence[Any]]], *, signature: Any = None) -> bool:
    """Replace the table's rows with ``rows`` ((key, cells) pairs), keeping the
    cursor on the same key when it is still there, else on the same line. Does
    nothing (and returns False) when the rows are the same as last time."""
    signature = signature if signature is not None else tuple((k, tuple(str(c) for c in cells)) for k, cells in rows)
    if getattr(table, "_keepers_signature", None) == signature:
        return False
    table._keepers_signature = signature  # type: ignore[attr-defined]
    selected: str | None = None
    row = table.cursor_row
    if table.row_count and row >= 0:
        try:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # the cursor is past the end after a shrink
            selected = None
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if selected is not None and table.row_count:
        try:
            row = table.get_row_index(selected)
        except Exception:  # the selected row is gone (a rejected pick, a deleted photo): stay at its place
            row = min(row, table.row_count - 1)
        table.move_cursor(row=row, animate=False, scroll=True)
    return True


def cursor_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor, or None when the table is empty."""
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:
        return None
