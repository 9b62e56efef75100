"""The keepers dashboard (Textual). Reads the daemon's database, never imports
ML code; ``run_dashboard`` is the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def run_dashboard(db_path: Path | str, *, on_exit: Callable[[], None] | None = None) -> int:
    """Run the dashboard on ``db_path`` until the user quits, then call ``on_exit``."""
    from .app import run_dashboard as _run

    return _run(db_path, on_exit=on_exit)


__all__ = ["run_dashboard"]
