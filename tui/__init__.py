"""The keepers dashboard (Textual). Reads the daemon's database, never imports
ML code; ``run_dashboard`` is the entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_dashboard(db_path: Path | str, **options: Any) -> int:
    """Run the dashboard on ``db_path`` until the user quits (options: see tui.app.run_dashboard)."""
    from .app import run_dashboard as _run

    return _run(db_path, **options)


__all__ = ["run_dashboard"]
