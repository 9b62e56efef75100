"""Logging set-up: stderr, journald-friendly under systemd."""

from __future__ import annotations

import logging
import os
import sys

_PLAIN = "%(levelname)s %(name)s: %(message)s"
_TIMED = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "info") -> None:
    """Log to stderr; without timestamps when journald already stamps each line."""
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_PLAIN if under_journald else _TIMED, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_keepers", False):
            root.removeHandler(old)
    handler._keepers = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("watchdog", "urllib3", "PIL", "apscheduler.executors", "filelock", "httpx", "h5py", "absl"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
