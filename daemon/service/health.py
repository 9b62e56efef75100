"""Is the daemon alive and making progress? One answer from every part that must be.

systemd's watchdog ping means "I am making progress", so the daemon sends it
(and writes the heartbeat the dashboard reads) only after :meth:`Health.problem`
found nothing wrong: the store writer, the scoring workers, the settle thread,
the folder watchers and the job scheduler each say whether they live and move.
A part that is dead or wedged makes the daemon log why and exit non-zero, so
systemd restarts it (``Restart=on-failure``) and the next start's catch-up scan
scores what was missed.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

#: the scheduler's beat job runs every this many seconds
SCHEDULER_BEAT_SECONDS = 2.0
#: no beat from the scheduler for this long means it stopped running jobs
SCHEDULER_STALE_SECONDS = 30.0
#: the exit code of a daemon that stopped because a part of it died or wedged
EXIT_UNHEALTHY = 4

Check = Callable[[], "str | None"]


class Health:
    """The checks of the running parts, asked in the order they were added."""

    def __init__(self) -> None:
        self._checks: list[tuple[str, Check]] = []
        self._lock = threading.Lock()
        self._scheduler: Any = None
        self._scheduler_beat = time.monotonic()

    def add(self, part: str, check: Check) -> None:
        """``check()`` returns None while ``part`` works, else why it does not (a sentence naming the part)."""
        with self._lock:
            self._checks.append((part, check))

    def watch_scheduler(self, scheduler: Any) -> None:
        """From now on the scheduler must run :meth:`scheduler_beat` every SCHEDULER_BEAT_SECONDS."""
        self._scheduler = scheduler
        self._scheduler_beat = time.monotonic()

    def scheduler_beat(self) -> None:
        """Called by a scheduler job: the scheduler still runs jobs."""
        self._scheduler_beat = time.monotonic()

    def problem(self) -> str | None:
        """Why the daemon is not healthy, or None when every part lives and moves."""
        with self._lock:
            checks = list(self._checks)
        for part, check in checks:
            try:
                why = check()
            except Exception as exc:  # noqa: BLE001 - a check that cannot tell is itself a problem
                why = f"the health check of the {part} failed ({type(exc).__name__}: {exc})"
            if why:
                return why
        if self._scheduler is not None:
            if not getattr(self._scheduler, "running", True):
                return "the job scheduler stopped"
            idle = time.monotonic() - self._scheduler_beat
            if idle > SCHEDULER_STALE_SECONDS:
                return f"the job scheduler has run no job for {idle:.0f} s"
        return None
