"""`keepers tui` and the dashboard's import hygiene."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from daemon.cli import tui as tui_command
from daemon.cli.common import db_path_from_args


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="keepers")
    tui_command.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_tui_subcommand_opens_the_database_given_with_db(tmp_path: Path) -> None:
    args = parse(["tui", "--db", str(tmp_path / "other.db")])
    assert args.func is tui_command.run_tui
    assert db_path_from_args(args) == tmp_path / "other.db"


def test_tui_subcommand_defaults_to_the_state_folders_database(isolated_env: Path) -> None:
    args = parse(["tui"])
    assert db_path_from_args(args) == isolated_env / "state" / "keepers.db"


def test_importing_the_dashboard_pulls_in_no_ml_framework() -> None:
    code = (
        "import sys, tui.app, tui.queries, daemon.cli.tui\n"
        "heavy = [m for m in ('tensorflow', 'torch', 'cv2', 'kagglehub', 'huggingface_hub', 'tensorflow_hub',"
        " 'daemon.scoring', 'daemon.hub', 'daemon.service') if m in sys.modules]\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
