"""What went wrong when a source was asked for a model, and whether to retry.

Every source lets its client's own exceptions out; :func:`classify` turns
any of them into a :class:`SourceFailure` that says whether another try of
the same source can help (connection errors, timeouts, 5xx, 429) or not
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


def _status_failure(status: int, headers: Any, message: str) -> SourceFailure:
    retry_after = parse_retry_after(headers.get("Retry-After") if headers is not None else None)
    transient = status in RETRYABLE_STATUS or status >= 500
    return SourceFailure(f"HTTP {status}", message, transient=transient, retry_after=retry_after, status=status)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0][:300]


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not seen for seen in out):
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def classify(exc: BaseException) -> SourceFailure:
    """Map any client exception (urllib, requests, httpx, kagglehub, huggingface_hub, OS) to a SourceFailure."""
    if isinstance(exc, SourceFailure):
        return exc
    # An HTTP status, from whichever client raised it (clients wrap it: walk the causes).
    for cur in _chain(exc):
        response = getattr(cur, "response", None)
        status = getattr(response, "status_code", None) if response is not None else None
        if status is None:
            status = getattr(cur, "code", None) if hasattr(cur, "headers") else None  # urllib.error.HTTPError
            headers = getattr(cur, "headers", None)
        else:
            headers = getattr(response, "headers", None)
        if isinstance(status, int) and status >= 400:
            return _status_failure(status, headers, _first_line(exc))
    # Walk the cause chain: clients wrap socket errors in their own types.
    seen: set[int] = set()
    cur: BaseException | None = exc
    names: list[str] = []
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        names.append(type(cur).__module__ + "." + type(cur).__name__)
        if isinstance(cur, (socket.timeout, TimeoutError)):
            return SourceFailure("Timeout", _first_line(exc), transient=True)
        if isinstance(cur, (ConnectionError, socket.gaierror)):
            return SourceFailure("ConnectionError", _first_line(exc), transient=True)
        cur = cur.__cause__ or cur.__context__
    joined = " ".join(names).lower()
    if "timeout" in joined:
        return SourceFailure("Timeout", _first_line(exc), transient=True)
    if any(k in joined for k in ("connecterror", "connectionerror", "urlerror", "remotedisconnected", "protocolerror",
                                   "chunkedencodingerror", "incompleteread", "readerror", "remoteprotocolerror")):
        return SourceFailure("ConnectionError", _first_line(exc), transient=True)
    if isinstance(exc, FileNotFoundError):
        return SourceFailure("NotFound", _first_line(exc), transient=False)
    if isinstance(exc, PermissionError):
        return SourceFailure("PermissionDenied", _first_line(exc), transient=False)
    if isinstance(exc, ImportError):
        extra = extra_for_module(getattr(exc, "name", None))  # the client this source needs, not every client
        hint = install_hint(extra) if extra else "install the extra this source needs (`keepers doctor` lists them)"
        return SourceFailure("ClientMissing", f"{_first_line(exc)}; {hint}", transient=False)
    if isinstance(exc, ValueError) and ("Relative path" in str(exc) or "Unexpected object type in tar" in str(exc)):
        return UnsafeArchive("the archive", _first_line(exc))
    return SourceFailure(type(exc).__name__, _first_line(exc), transient=False)
