"""Running `keepers run` as a real subprocess for the daemon tests: a config,
a fake NOTIFY_SOCKET, bounded waits, and reading the database back."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

DAEMON_MAIN = "import sys; from daemon.cli import main; sys.exit(main())"


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def small_photo(path: Path, seed: int, size: tuple[int, int] = (160, 120)) -> Path:
    """A distinct small JPEG (smooth gradient plus seeded noise), written in one go."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], axis=-1)
    pixels = np.clip(base + rng.integers(-40, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, "JPEG", quality=85)
    return path


def photo_bytes(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    import io

    rng = np.random.default_rng(seed)
    w, h = size
    pixels = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def write_config(path: Path, *, settle: float = 0.5, workers: int = 2, extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"settle_seconds: {settle}\nworkers: {workers}\nrescan_minutes: 0\n"
        "scorers: [sharpness, exposure, contrast, noise, colourfulness]\n"
        "album:\n  reselect_minutes: 0\n  reselect_after_new: 0\n" + extra,
        encoding="utf-8",
    )
    return path


class NotifySocket:
    """A fake systemd notify socket: collects every datagram the daemon sends."""

    def __init__(self, folder: Path):
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.times: list[float] = []  # time.monotonic() each message arrived
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="fake-notify", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            self.times.append(time.monotonic())
            self.messages.append(data.decode())

    def seen(self, field: str) -> bool:
        return any(field in m.split("\n") for m in list(self.messages))

    def last(self, field: str) -> float | None:
        """When (time.monotonic()) the last message holding ``field`` arrived; None if none did."""
        found = [t for t, m in zip(list(self.times), list(self.messages)) if field in m.split("\n")]
        return found[-1] if found else None

    def statuses(self) -> list[str]:
        return [line[len("STATUS="):] for m in list(self.messages) for line in m.split("\n") if line.startswith("STATUS=")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Daemon:
    """`keepers run` on one photo folder and database, started and stopped by PID."""

    def __init__(self, photos: Path, db: Path, config: Path, *, env: dict[str, str] | None = None,
                 log: Path | None = None, extra_args: list[str] | None = None, wrapper: list[str] | None = None):
        self.photos, self.db, self.config = photos, db, config
        self.wrapper = wrapper or []  # a command that runs the daemon's (e.g. in a namespace), exec-ing it in place
        self.env = {**os.environ, **(env or {})}
        self.log = log or db.parent / "daemon.log"
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, timeout: float = 60.0) -> "Daemon":
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self._log_fh = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [*self.wrapper, sys.executable, "-c", DAEMON_MAIN, "run", "--photos", str(self.photos), "--db", str(self.db),
             "--config", str(self.config), *self.extra_args],
            env=self.env, stdout=self._log_fh, stderr=subprocess.STDOUT,
        )
        if wait_ready:
            assert wait_for(lambda: self.state() == "ready" or self.proc.poll() is not None, timeout), "daemon not ready"
            assert self.proc.poll() is None, f"daemon exited early:\n{self.log_text()}"
        return self

    def state(self) -> str | None:
        try:
            rows = query(self.db, "SELECT state, pid FROM daemon WHERE id = 1")
        except sqlite3.Error:
            return None
        if rows and self.proc is not None and rows[0][1] == self.proc.pid:
            return rows[0][0]
        return None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log_fh.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if getattr(self, "_log_fh", None):
            self._log_fh.close()


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def rows_by_path(db: Path) -> dict[str, tuple]:
    """path -> (id, status, scored_at, size, number of scores)."""
    return {r[0]: r[1:] for r in query(
        db, "SELECT path, id, status, scored_at, size, (SELECT COUNT(*) FROM scores s WHERE s.image_id = images.id) FROM images")}
