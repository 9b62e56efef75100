"""`keepers tui`: the dashboard, attached to the database of a running (or
stopped) daemon. It only reads; actions go to the daemon as command rows."""

from __future__ import annotations

import argparse

from .common import add_config_args, db_path_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tui",
        help="open the dashboard on the daemon's database",
        description=(
            "Open the dashboard: what the daemon is doing, which models it has, what it picked and why. "
            "Works whether the daemon runs (under systemd or `keepers run`) or not."
        ),
    )
    add_config_args(parser)
    parser.set_defaults(func=run_tui)


def run_tui(args: argparse.Namespace) -> int:
    from tui import run_dashboard  # Textual loads only for this command
    from tui.launch import require_terminal

    require_terminal()
    return run_dashboard(db_path_from_args(args))
