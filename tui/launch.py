"""`keepers run --tui`: the daemon in a child process, the dashboard in front.

The daemon runs as its own process (``keepers run`` without ``--tui``) so it
keeps its signal handling, its threads and its logging to itself: its log goes
to a file beside the database instead of over the dashboard. Quitting the
dashboard sends the daemon SIGTERM, which makes it stop intake, drain, commit
and exit; whatever it had not finished is found again by the next start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger(__name__)

#: how long the daemon gets to drain and commit after SIGTERM before it is killed
STOP_TIMEOUT_SECONDS = 30.0
_MAIN = "import sys; from daemon.cli import main; sys.exit(main(sys.argv[1:]))"


def daemon_argv(args: argparse.Namespace, db_path: Path) -> list[str]:
    """The `keepers run` command line that serves what ``args`` asked for, minus ``--tui``,
    always naming the database so daemon and dashboard agree on it."""
    argv = ["run", "--db", str(db_path)]
    if getattr(args, "config", None):
        argv += ["--config", str(args.config)]
    for folder in getattr(args, "photos", None) or ():
        argv += ["--photos", str(folder)]
    if getattr(args, "offline", False):
        argv.append("--offline")
    if getattr(args, "demo_if_missing", False):
        argv.append("--demo-if-missing")
    if getattr(args, "verbose", False):
        argv.insert(0, "--verbose")
    return argv


def require_terminal() -> None:
    """Raise KeepersError unless the dashboard can run here: it reads keys from stdin and
    draws on stderr. With stdin at end-of-file (a pipe, /dev/null, a service) Textual's
    input loop wakes up forever and spins a core; refuse instead."""
    from daemon.errors import KeepersError

    for name, stream in (("standard input", sys.stdin), ("standard error", sys.__stderr__)):
        if stream is None or not stream.isatty():
            raise KeepersError(
                f"the dashboard needs a terminal, and {name} is not one; run it in a terminal, "
                f"or run the daemon alone with `keepers run` (add --once to score and exit)"
            )


class DaemonProcess:
    """A `keepers` daemon running as a child process, logging to ``log_path``."""

    def __init__(self, argv: Sequence[str], log_path: Path, *, python: str = sys.executable, command: Sequence[str] | None = None):
        self.log_path = log_path
        self.command = list(command) if command is not None else [python, "-c", _MAIN, *argv]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "DaemonProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self._log_start = out.tell()  # this run's output starts here
            # its own session: a ctrl+c meant for the terminal does not reach it; we stop it ourselves
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        log.info("daemon started as pid %d, logging to %s", self.process.pid, self.log_path)
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """SIGTERM the daemon and wait for it to commit and exit; SIGKILL only after ``timeout``.

        Returns its exit code (None when it was never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("daemon pid %d did not stop within %.0f s of SIGTERM; killing it (the next start resumes its work)", self.process.pid, timeout)
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def wait(self) -> int | None:
        """Block until the daemon exits; its exit code (None when it was never started)."""
        return self.process.wait() if self.process is not None else None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines this run of the daemon wrote to its log."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(getattr(self, "_log_start", 0))
                text = log_file.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def run_with_daemon(
    argv: Sequence[str],
    db_path: Path,
    *,
    log_path: Path | None = None,
    dashboard: Callable[..., int] | None = None,
    stop_timeout: float = STOP_TIMEOUT_SECONDS,
    command: Sequence[str] | None = None,
    notices: Sequence[str] = (),
) -> int:
    """Start the daemon (``keepers`` + ``argv``, or ``command`` as given) in a child
    process, run the dashboard until the user quits, then stop the daemon gracefully.
    The dashboard is handed the daemon (it shows at once when the daemon exits, with
    the end of its log) and ``notices`` to show on screen.

    Returns the daemon's exit code when it failed, else the dashboard's."""
    if dashboard is None:
        from . import run_dashboard as dashboard
    log_path = log_path or db_path.with_name("keepers-run.log")
    daemon = DaemonProcess(argv, log_path, command=command).start()
    code: int | None = None
    try:
        code = dashboard(db_path, daemon=daemon, notices=list(notices))
    finally:
        started = time.monotonic()
        daemon_code = daemon.stop(stop_timeout)
        log.info("daemon stopped with exit code %s in %.1f s", daemon_code, time.monotonic() - started)
    if daemon_code not in (0, None, -signal.SIGTERM):
        print(f"keepers: the daemon exited with code {daemon_code}; the end of its log ({log_path}):", file=sys.stderr)
        print(daemon.log_tail(), file=sys.stderr)
        return int(daemon_code) if daemon_code and daemon_code > 0 else 1
    return int(code or 0)


__all__ = ["DaemonProcess", "daemon_argv", "require_terminal", "run_with_daemon", "STOP_TIMEOUT_SECONDS"]
