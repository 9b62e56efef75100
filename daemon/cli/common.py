"""Helpers shared by the subcommands: common options, config loading, output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable

from ..config import Config, load_config


def add_config_args(parser: argparse.ArgumentParser, *, photos: bool = False) -> None:
    parser.add_argument("--config", type=Path, help="config file (default: $KEEPERS_CONFIG or ~/.config/keepers/keepers.yaml)")
    parser.add_argument("--db", type=Path, help="database file (default: from the config, ~/.local/state/keepers/keepers.db)")
    if photos:
        parser.add_argument("--photos", type=Path, action="append", metavar="DIR", help="photo folder (repeatable); replaces the config's")


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def config_from_args(args: argparse.Namespace, *, check_folders: bool = False) -> Config:
    return load_config(
        getattr(args, "config", None),
        photos=getattr(args, "photos", None),
        database=getattr(args, "db", None),
        offline=True if getattr(args, "offline", False) else None,
        check_folders=check_folders,
    )


def db_path_from_args(args: argparse.Namespace) -> Path:
    """The database a read-only command should open, without requiring photo folders to exist."""
    if getattr(args, "db", None):
        return Path(args.db).expanduser()
    return config_from_args(args, check_folders=False).database_path


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str, ensure_ascii=False)
    sys.stdout.write("\n")


def print_json_list(items: Iterable[Any]) -> int:
    """Write ``items`` as a JSON list, one item a line, as they come, so a listing of
    a million rows never holds them all (and uses json's C encoder, which indenting
    would not: ten times faster); returns how many were written."""
    out = sys.stdout
    count = 0
    out.write("[")
    for item in items:
        out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(item, default=str, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def fail(message: str, code: int = 1) -> int:
    print(f"keepers: {message}", file=sys.stderr)
    return code
