"""Shared by the daemon benches: run ``keepers run`` as a subprocess on a temp
folder and database, wait for its READY=1 on a private notify socket, and stop
it with SIGTERM afterwards (killing it only when it ignores that for 30 s)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

KEEPERS = [sys.executable, "-c", "import sys; from daemon.cli import main; sys.exit(main())"]


class Daemon:
    def __init__(self, proc: subprocess.Popen, log_path: Path):
        self.proc = proc
        self.log_path = log_path
        self.exit_code: int | None = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def running_daemon(tmp_path: Path, photos: Path, db: Path, config_text: str) -> Iterator[Daemon]:
    """Yield a READY daemon watching ``photos``; its exit code is on ``.exit_code`` afterwards."""
    config = tmp_path / "keepers.yaml"
    config.write_text(config_text)
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(120)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "KEEPERS_STATE_DIR": str(tmp_path / "state"),
           "KEEPERS_CACHE": str(tmp_path / "cache"), "KEEPERS_CONFIG": str(config)}
    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*KEEPERS, "run", "--photos", str(photos), "--db", str(db), "--config", str(config)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        daemon = Daemon(proc, log_path)
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            yield daemon
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                daemon.exit_code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                daemon.exit_code = proc.wait(10)
                print("the daemon did not stop within 30 s of SIGTERM; its log ends:\n" + daemon.log_tail())
            sock.close()
