"""What every source is given when asked for a model, and the progress
deadline every download runs under."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from ..cache import HubCache
from ..failures import TooSlow

T = TypeVar("T")


@dataclass(frozen=True)
class FetchContext:
    model: str
    cache: HubCache
    timeout: float  # seconds for one connect/read (clients that take one)
    progress: bool  # show a progress bar
    min_rate: float = 1024.0  # bytes/s an attempt must keep up, measured over `window`
    window: float = 60.0  # seconds


def folder_bytes(*folders: Path) -> Callable[[], int]:
    """A progress probe: the bytes now on disk under ``folders`` (a client's download area)."""

    def probe() -> int:
        total = 0
        for folder in folders:
            if not folder.exists():
                continue
            for path in [folder] if folder.is_file() else folder.rglob("*"):
                try:
                    if path.is_file():
                        total += path.stat().st_size
                except OSError:  # a temporary file renamed or removed under us
                    continue
        return total

    return probe


def run_watched(fn: Callable[[], T], progress: Callable[[], int], ctx: FetchContext, what: str, *,
                on_stall: Callable[[], None] | None = None) -> T:
    """Run ``fn`` (one download attempt) in a helper thread under a progress deadline.

    ``progress()`` says how many bytes have arrived so far. When fewer than
    ``ctx.min_rate * ctx.window`` bytes arrived over the last ``ctx.window``
    seconds, the attempt fails with :class:`TooSlow` at once: a source that
    trickles cannot hold a model (or the caller) indefinitely. ``on_stall``
    lets a source that owns its connection close it, so the helper thread
    ends too; a client's own call is otherwise left to finish or fail on its
    own in the background (none of the hub clients can be cancelled).
    """
    box: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=target, name=f"fetch-{ctx.model}", daemon=True)
    started = time.monotonic()
    samples: deque[tuple[float, int]] = deque([(started, _safe(progress))])
    thread.start()
    poll = min(1.0, max(0.05, ctx.window / 10))
    while not done.wait(poll):
        now = time.monotonic()
        got = _safe(progress)
        samples.append((now, got))
        while len(samples) > 1 and samples[1][0] <= now - ctx.window:
            samples.popleft()
        if now - started >= ctx.window and samples[0][0] <= now - ctx.window:
            moved = got - samples[0][1]
            if moved < ctx.min_rate * ctx.window:
                if on_stall is not None:
                    on_stall()
                    done.wait(5.0)
                raise TooSlow(what, max(0, moved), ctx.window, ctx.min_rate)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _safe(progress: Callable[[], int]) -> int:
    try:
        return int(progress())
    except OSError:
        return 0
