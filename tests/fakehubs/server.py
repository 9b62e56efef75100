"""The common part of every fake hub: an HTTP server on 127.0.0.1 that counts
requests and injects faults.

A fake subclasses :class:`FakeHub` and implements ``route(request)`` returning
a :class:`Reply`. Faults are switched on with the methods below, or over HTTP
(``POST /__fake/fault`` with the same JSON fields, ``POST /__fake/clear``,
``GET /__fake/stats``) when the fake runs in another process. Admin requests
are not counted.

    hub.fail(503)                       # every request answers 503, forever
    hub.fail(429, retry_after=2, times=1)
    hub.fail(401) / hub.fail(404)
    hub.reset_mid_body(times=1)         # send half the body, then drop the connection
    hub.slow_body(delay=5, times=1)     # send half, stall `delay` s, then the rest
    hub.trickle(interval=0.5)           # one byte every `interval` s (until the client hangs up)
    hub.wrong_bytes()                   # same length, different bytes (a hash mismatch)
    hub.clear()                         # back to normal
    hub.count / hub.requests / hub.bytes_sent
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

BODY_FAULTS = ("reset", "slow", "wrong_bytes", "trickle")


@dataclass
class Fault:
    kind: str  # "status" or one of BODY_FAULTS
    status: int = 503
    retry_after: float | str | None = None
    times: int | None = None  # None = until cleared
    delay: float = 5.0  # slow: seconds of stall in the middle of the body; trickle: seconds between bytes
    path_contains: str | None = None  # only requests whose path contains this


@dataclass
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def range_start(self) -> int | None:
        value = self.headers.get("range", "")
        if value.startswith("bytes=") and "-" in value:
            start = value[6:].split("-", 1)[0]
            return int(start) if start.isdigit() else None
        return None


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    payload: bool = False  # a model file: Range requests honoured, body faults apply

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def file(cls, body: bytes, content_type: str = "application/octet-stream", headers: dict[str, str] | None = None) -> "Reply":
        return cls(200, body, {"Content-Type": content_type, **(headers or {})}, payload=True)


class FakeHub:
    """A threaded HTTP server on 127.0.0.1 (a free port unless one is given)."""

    name = "fake"

    def __init__(self, port: int = 0):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.requests: list[Request] = []
        self.bytes_sent = 0
        self._stopping = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                hub._serve(self)

            do_GET = do_POST = do_HEAD = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-{self.port}", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> "FakeHub":
        with self._lock:
            self._faults.append(fault)
        return self

    def fail(self, status: int = 503, *, retry_after: float | str | None = None, times: int | None = None,
             path_contains: str | None = None) -> "FakeHub":
        return self.add_fault(Fault("status", status=status, retry_after=retry_after, times=times, path_contains=path_contains))

    def down(self) -> "FakeHub":
        """Answer 503 to everything until cleared."""
        return self.fail(503)

    def reset_mid_body(self, *, times: int | None = 1) -> "FakeHub":
        return self.add_fault(Fault("reset", times=times))

    def slow_body(self, delay: float = 5.0, *, times: int | None = 1) -> "FakeHub":
        return self.add_fault(Fault("slow", delay=delay, times=times))

    def trickle(self, interval: float = 0.5, *, times: int | None = None, path_contains: str | None = None) -> "FakeHub":
        """Send bodies one byte every ``interval`` seconds (a connection that is alive but useless)."""
        return self.add_fault(Fault("trickle", delay=interval, times=times, path_contains=path_contains))

    def wrong_bytes(self, *, times: int | None = None) -> "FakeHub":
        return self.add_fault(Fault("wrong_bytes", times=times))

    def clear(self) -> "FakeHub":
        with self._lock:
            self._faults.clear()
        return self

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_sent = 0

    def _take_fault(self, request: Request, body_stage: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if (fault.kind in BODY_FAULTS) != body_stage:
                    continue
                if fault.path_contains and fault.path_contains not in request.path:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                return fault
        return None

    # -- to implement ----------------------------------------------------------------------------

    def route(self, request: Request) -> Reply:  # pragma: no cover - subclasses implement
        raise NotImplementedError

    def error_reply(self, status: int, message: str, headers: dict[str, str]) -> Reply:
        """How this hub reports an error (subclasses answer in their API's style)."""
        return Reply(status, message.encode(), {"Content-Type": "text/plain", **headers})

    # -- the request loop ------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(handler.command, parts.path, parts.query, {k.lower(): v for k, v in handler.headers.items()}, body)
        if request.path.startswith("/__fake/"):
            self._send(handler, request, self._admin(request))
            return
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault(request, body_stage=False)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            self._send(handler, request, self.error_reply(fault.status, f"injected fault: HTTP {fault.status}", headers))
            return
        try:
            reply = self.route(request)
        except Exception as exc:  # a bug in a fake: tell the client, do not hang it
            reply = Reply(500, f"fake hub error: {exc!r}".encode(), {"Content-Type": "text/plain"})
        self._send(handler, request, reply)

    def _send(self, handler: BaseHTTPRequestHandler, request: Request, reply: Reply) -> None:
        body = reply.body
        status = reply.status
        headers = dict(reply.headers)
        if reply.payload:
            headers.setdefault("Accept-Ranges", "bytes")
            start = request.range_start
            if_range = request.headers.get("if-range")
            if if_range is not None and if_range != headers.get("ETag"):
                start = None  # the file changed since the client's partial copy: send it whole
            if start is not None and status == 200:
                if start >= len(body):
                    status, body = 416, b""
                    headers["Content-Range"] = f"bytes */{len(reply.body)}"
                else:
                    headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    status, body = 206, body[start:]
        headers["Content-Length"] = str(len(body))
        fault = self._take_fault(request, body_stage=True) if reply.payload and body and request.method != "HEAD" else None
        try:
            handler.send_response(status)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            if request.method == "HEAD" or not body:
                return
            if fault is None:
                self._write(handler, body)
            elif fault.kind == "wrong_bytes":
                self._write(handler, bytes(b ^ 0xFF for b in body[:64]) + body[64:])
            elif fault.kind == "reset":
                self._write(handler, body[: len(body) // 2])
                handler.wfile.flush()
                # Drop the connection with half the promised Content-Length sent. (A FIN, not an
                # RST: an RST makes the client's kernel discard what it had not read yet, so how
                # much arrived would depend on socket buffers.)
                handler.connection.shutdown(socket.SHUT_RDWR)
                handler.close_connection = True
            elif fault.kind == "trickle":
                for i in range(len(body)):
                    self._write(handler, body[i:i + 1])
                    handler.wfile.flush()
                    if self._stopping.wait(fault.delay):
                        return
            elif fault.kind == "slow":
                self._write(handler, body[: len(body) // 2])
                handler.wfile.flush()
                if self._stopping.wait(fault.delay):
                    return
                self._write(handler, body[len(body) // 2:])
        except (BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True

    def _write(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        handler.wfile.write(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _admin(self, request: Request) -> Reply:
        if request.path == "/__fake/fault" and request.method == "POST":
            self.add_fault(Fault(**json.loads(request.body or b"{}")))
            return Reply.json({"ok": True})
        if request.path == "/__fake/clear" and request.method == "POST":
            self.clear()
            return Reply.json({"ok": True})
        if request.path == "/__fake/stats":
            with self._lock:
                faults = [asdict(f) for f in self._faults]
                return Reply.json({"requests": len(self.requests), "bytes_sent": self.bytes_sent, "faults": faults})
        return Reply.json({"error": "unknown admin path"}, 404)
