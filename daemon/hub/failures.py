"""What went wrong when a source was asked for a model, and whether to retry.

Each source turns its client's exceptions into a :class:`SourceFailure`
(by type, at the one place it calls the client); :func:`classify` does the
same for Python's own errors. A failure says whether another try of the
same source can help (connection errors, timeouts, 5xx, 429) or not
(401/403/404, a hash mismatch, an unsafe archive, a missing file), and what
``Retry-After`` the server asked for.
"""

from __future__ import annotations

import email.utils
import socket
import time
from typing import Any

from ..extras import extra_for_module, install_hint

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class SourceFailure(Exception):
    """A source could not provide a model this time."""

    def __init__(self, error_class: str, message: str, *, transient: bool, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.error_class = error_class  # e.g. "HTTP 503", "HashMismatch", "ConnectionError"
        self.message = message
        self.transient = transient  # True: retrying the same source may help
        self.retry_after = retry_after
        self.status = status

    def __str__(self) -> str:
        return f"{self.error_class}: {self.message}"


class HashMismatch(SourceFailure):
    def __init__(self, what: str, expected: str, actual: str):
        super().__init__("HashMismatch", f"{what} has sha256 {actual}, expected {expected}; the copy was deleted", transient=False)


class UnsafeArchive(SourceFailure):
    def __init__(self, what: str, detail: str):
        super().__init__("UnsafeArchive", f"{what} was refused: {detail}", transient=False)


class TooSlow(SourceFailure):
    def __init__(self, what: str, got: int, window: float, min_rate: float):
        super().__init__("TooSlow", f"{what}: {got} bytes in the last {window:.0f} s, under the minimum of {min_rate:.0f} bytes/s "
                         "(models.retry.min_bytes_per_second over slow_window_seconds); gave up on this source", transient=False)


class NotCached(SourceFailure):
    def __init__(self, what: str):
        super().__init__("NotCached", f"{what} is not in the cache and offline mode forbids a download", transient=False)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def status_failure(status: int, headers: Any, message: str) -> SourceFailure:
    """The failure for an HTTP error status (``headers``: any mapping with ``get``, for Retry-After)."""
    retry_after = parse_retry_after(headers.get("Retry-After") if headers is not None else None)
    transient = status in RETRYABLE_STATUS or status >= 500
    return SourceFailure(f"HTTP {status}", message, transient=transient, retry_after=retry_after, status=status)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0][:300]


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (clients wrap socket errors in their own types)."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not seen for seen in out):
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def classify(exc: BaseException) -> SourceFailure:
    """A SourceFailure for an error no source's client wrapped: Python's own types, by ``isinstance``.

    Each source turns its client's exceptions into SourceFailures at the one
    place it calls the client (see ``daemon.hub.sources``); what reaches here
    is a SourceFailure already, or a plain OS, socket or import error.
    """
    if isinstance(exc, SourceFailure):
        return exc
    for cur in causes(exc):
        if isinstance(cur, SourceFailure):
            return cur
        if isinstance(cur, (socket.timeout, TimeoutError)):
            return SourceFailure("Timeout", first_line(exc), transient=True)
        if isinstance(cur, (ConnectionError, socket.gaierror)):
            return SourceFailure("ConnectionError", first_line(exc), transient=True)
    if isinstance(exc, FileNotFoundError):
        return SourceFailure("NotFound", first_line(exc), transient=False)
    if isinstance(exc, PermissionError):
        return SourceFailure("PermissionDenied", first_line(exc), transient=False)
    if isinstance(exc, ImportError):
        extra = extra_for_module(getattr(exc, "name", None))  # the client this source needs, not every client
        hint = install_hint(extra) if extra else "install the extra this source needs (`keepers doctor` lists them)"
        return SourceFailure("ClientMissing", f"{first_line(exc)}; {hint}", transient=False)
    return SourceFailure(type(exc).__name__, first_line(exc), transient=False)
