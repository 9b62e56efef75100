"""The `keepers` command line.

Each subcommand lives in its own module that exposes ``register(subparsers)``;
the parser sets ``func`` to the function that runs it and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from ..errors import KeepersError
from ..logsetup import setup_logging

#: modules under daemon.cli that add subcommands, in help order
SUBCOMMAND_MODULES = ["run", "tui", "models", "scores", "demo", "album", "doctor"]


def verbosity_level(verbose: int) -> str:
    """The log level for ``-v`` given ``verbose`` times: warning, info, then debug."""
    return ("warning", "info", "debug")[min(int(verbose or 0), 2)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keepers", description="Photo curation: score every photo, keep the best shot of each group.")
    parser.add_argument("--version", action="version", version=f"keepers {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="say more on stderr: -v adds what keepers is doing (INFO), -vv debug messages "
                             "(by default only warnings and errors; the daemon follows the config's log_level)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(verbosity_level(args.verbose))
    try:
        return int(args.func(args) or 0)
    except KeepersError as exc:
        print(f"keepers: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`keepers scores --json | head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
