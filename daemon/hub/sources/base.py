"""What every source is given when asked for a model."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, TypeVar

from ..cache import HubCache
from ..failures import SourceFailure

T = TypeVar("T")

#: environment variable pointing kagglehub's API at another endpoint (a mirror, or a test server)
ENV_KAGGLE_ENDPOINT = "KEEPERS_KAGGLE_ENDPOINT"


@dataclass(frozen=True)
class FetchContext:
    model: str
    cache: HubCache
    timeout: float  # seconds for one connect/read
    progress: bool  # show a progress bar


def run_with_deadline(fn: Callable[[], T], seconds: float, what: str) -> T:
    """Run ``fn`` in a helper thread and give up waiting after ``seconds``.

    For clients that set no read timeout of their own: the caller moves on
    (a Timeout failure) while the abandoned call finishes or fails on its own.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"fetch-{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise SourceFailure("Timeout", f"{what} did not finish within {seconds:.0f} s", transient=True)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
