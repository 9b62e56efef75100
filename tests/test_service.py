"""The daemon as a service: sd_notify, SIGTERM, the commands table, the log table."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.service.commands import UNSUPPORTED, CommandRegistry, poll_commands
from daemon.service.notify import Notifier, watchdog_interval
from daemon.store.reader import enqueue_command
from daemon.store.writer import StoreWriter
from fixtures_daemon import DAEMON_MAIN, Daemon, NotifySocket, photo_bytes, query, rows_by_path, small_photo, wait_for, write_config


def test_notifier_reaches_an_abstract_namespace_socket() -> None:
    name = f"keepers-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    try:
        notifier = Notifier("@" + name)
        assert notifier.ready("scanning")
        assert server.recv(1024).decode().split("\n") == ["READY=1", "STATUS=scanning"]
        notifier.close()
    finally:
        server.close()


def test_notifier_is_silent_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert Notifier().ready() is False


def test_watchdog_pings_at_half_the_interval_and_only_for_its_own_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval() is None


def test_a_command_nobody_handles_is_closed_with_an_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with StoreWriter(db_path) as writer:
        writer.start()
        first = enqueue_command(db_path, "reselect")
        second = enqueue_command(db_path, "rescan", "/photos")
        registry = CommandRegistry()
        registry.register("rescan", lambda arg: {"root": arg})
        assert poll_commands(writer, registry) == 2
        writer.flush()
    rows = {r[0]: r[1:] for r in query(db_path, "SELECT id, taken, done, result, error FROM commands")}
    assert rows[first][1] is not None and rows[first][3] == UNSUPPORTED
    assert rows[second][1] is not None and json.loads(rows[second][2]) == {"root": "/photos"} and rows[second][3] is None


@pytest.mark.slow
def test_daemon_notifies_systemd_and_stops_on_sigterm_without_losing_photos(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    notify = NotifySocket(tmp_path)
    config = write_config(tmp_path / "keepers.yaml", settle=0.3, workers=1)
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config,
                    env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"})
    try:
        daemon.start()
        assert wait_for(lambda: notify.seen("READY=1"), 10), notify.messages
        assert wait_for(lambda: notify.seen("WATCHDOG=1"), 5), notify.messages
        assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in notify.messages)
        for i in range(40):
            small_photo(photos / f"p{i:02d}.jpg", 100 + i)
        growing = photos / "growing.jpg"
        content = photo_bytes(7, (320, 240))
        with open(growing, "wb") as fh:  # still being written when the stop comes
            fh.write(content[: len(content) // 2])
            fh.flush()
            time.sleep(0.3)
            started = time.monotonic()
            code = daemon.terminate(timeout=15)
            took = time.monotonic() - started
            fh.write(content[len(content) // 2:])
    finally:
        daemon.kill()
        notify.close()
    assert code == 0, daemon.log_text()
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert notify.seen("STOPPING=1"), notify.messages
    assert query(daemon.db, "PRAGMA integrity_check") == [("ok",)]
    before = rows_by_path(daemon.db)
    assert str(growing) not in before, "a half-written file got a row"
    assert all(r[1] == "scored" for r in before.values()), "a photo was committed half-done"
    # a restart's catch-up scan scores exactly the photos the stop left, and none twice
    result = subprocess.run([sys.executable, "-c", DAEMON_MAIN, "run", "--once", "--photos", str(photos),
                             "--db", str(daemon.db), "--config", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    after = rows_by_path(daemon.db)
    assert sorted(after) == sorted(str(p) for p in photos.glob("*.jpg"))
    assert all(r[1] == "scored" and r[4] > 0 for r in after.values())
    assert all(after[p][:3] == before[p][:3] for p in before), "a photo scored before the stop was scored again"


@pytest.mark.slow
def test_daemon_answers_rescan_commands_and_stores_warnings_in_the_log_table(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", write_config(tmp_path / "keepers.yaml", settle=0.2)).start()
    try:
        (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
        assert wait_for(lambda: rows_by_path(daemon.db).get(str(photos / "broken.jpg"), (0, ""))[1] == "error", 20)
        command = enqueue_command(daemon.db, "rescan")
        done = wait_for(lambda: query(daemon.db, "SELECT done, result, error FROM commands WHERE id = ?", (command,))[0][0]
                        and query(daemon.db, "SELECT result, error FROM commands WHERE id = ?", (command,))[0], 10)
        assert done and done[1] is None and json.loads(done[0])["found"] == 1
        assert wait_for(lambda: query(daemon.db, "SELECT level, message FROM log WHERE message LIKE '%broken.jpg%'"), 5)
        beat = query(daemon.db, "SELECT pid, state, heartbeat, watched_folders FROM daemon")[0]
        assert beat[0] == daemon.proc.pid and beat[1] == "ready" and time.time() - beat[2] < 10
        assert json.loads(beat[3])[0]["path"] == str(photos)
    finally:
        assert daemon.terminate() == 0


def test_notifier_never_blocks_on_a_listener_that_stopped_reading(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "n.sock"))
    try:
        notifier = Notifier(str(tmp_path / "n.sock"))
        results = [notifier.status("x" * 1000) for _ in range(5000)]  # far more than the socket buffers (a blocking send hangs here)
        assert results[0] is True and results[-1] is False
        notifier.close()
    finally:
        server.close()


@pytest.mark.slow
def test_sighup_reloads_ignore_patterns_without_a_restart(tmp_path: Path) -> None:
    import signal

    photos = tmp_path / "photos"
    photos.mkdir()
    config = write_config(tmp_path / "keepers.yaml", settle=0.2)
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config).start()
    try:
        pid = daemon.proc.pid
        config.write_text(config.read_text() + 'ignore_patterns: [".*", "*.tmp", "draft_*"]\n')
        os.kill(pid, signal.SIGHUP)
        assert wait_for(lambda: "config reloaded" in daemon.log_text(), 10), daemon.log_text()
        small_photo(photos / "draft_1.jpg", 70)
        small_photo(photos / "keep_1.jpg", 71)
        assert wait_for(lambda: str(photos / "keep_1.jpg") in rows_by_path(daemon.db), 15)
        time.sleep(1.0)
        assert str(photos / "draft_1.jpg") not in rows_by_path(daemon.db)
        assert daemon.proc.pid == pid and daemon.proc.poll() is None
    finally:
        assert daemon.terminate() == 0


def test_the_album_is_picked_once_the_start_up_backlog_is_scored(tmp_path: Path) -> None:
    """Fewer new photos than reselect_after_new and a long reselect_minutes: the album still
    appears right after the catch-up scan, not ten minutes later."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        small_photo(photos / f"IMG_{i}.jpg", seed=i)
    config = write_config(tmp_path / "keepers.yaml")
    config.write_text(config.read_text().replace("reselect_minutes: 0\n  reselect_after_new: 0", "reselect_minutes: 60\n  reselect_after_new: 50"))
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config).start()
    try:
        runs = wait_for(lambda: query(daemon.db, "SELECT trigger, photos FROM selection_runs WHERE finished IS NOT NULL"), 30)
        assert runs and runs[0] == ("start-up", 5), runs
        assert query(daemon.db, "SELECT COUNT(*) FROM images WHERE status = 'scored'")[0][0] == 5
        assert query(daemon.db, "SELECT COUNT(*) FROM picks")[0][0] >= 1
    finally:
        assert daemon.terminate() == 0


def test_sigterm_during_start_up_stops_between_its_steps_without_ready_or_a_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemctl stop while the watchers are being set up (a large tree takes a while):
    the daemon stops there instead of running the catch-up scan and announcing READY."""
    import signal

    from daemon.config import load_config
    from daemon.service import app

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        small_photo(photos / f"IMG_{i}.jpg", seed=i)
    notify = NotifySocket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    db = tmp_path / "state" / "keepers.db"
    config = load_config(write_config(tmp_path / "keepers.yaml"), photos=[photos], database=db)
    watching = app.Service._start_watching

    def start_watching_then_sigterm(service: app.Service) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while this start-up step runs
        watching(service)

    monkeypatch.setattr(app.Service, "_start_watching", start_watching_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    try:
        code = app.serve(config)
    finally:
        notify.close()
    assert code == 0
    assert signal.getsignal(signal.SIGTERM) is before
    assert not notify.seen("READY=1"), notify.messages
    assert notify.seen("STOPPING=1"), notify.messages
    assert query(db, "SELECT COUNT(*) FROM images") == [(0,)], "the catch-up scan ran after the stop"
    assert query(db, "SELECT state FROM daemon") == [("stopped",)]


def test_learned_models_start_loading_only_once_the_daemon_is_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing TensorFlow or torch on the loader thread holds the GIL for seconds: started
    before READY it held READY back (1.2-1.3x the built-ins' start-up in bench/startup.py)."""
    from daemon.config import load_config
    from daemon.service import app

    photos = tmp_path / "photos"
    photos.mkdir()
    small_photo(photos / "IMG_0.jpg", seed=0)
    config = load_config(write_config(tmp_path / "keepers.yaml"), photos=[photos], database=tmp_path / "keepers.db")
    states_at_load: list[str] = []
    install = app.Service._start_models

    def start_models(service: app.Service) -> None:
        install(service)
        begin = service.models.start

        def start() -> Any:
            states_at_load.append(service.state)
            service.request_stop(0)
            return begin()

        service.models.start = start
        deadline = threading.Timer(20.0, service.request_stop)  # should the loading never start
        deadline.daemon = True
        deadline.start()

    monkeypatch.setattr(app.Service, "_start_models", start_models)
    assert app.serve(config) == 0
    assert states_at_load == ["ready"]


@pytest.mark.slow
def test_pin_reject_unpin_through_the_daemon_leave_no_scheduler_warnings(tmp_path: Path) -> None:
    """Each dashboard action is a command the daemon answers with a selection. Those used to
    outlast the 1 s command poll (every writer call waited out the 0.25 s batch window) and
    APScheduler logged 'maximum number of running instances reached' into Activity each time."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        small_photo(photos / f"p{i}.jpg", 300 + i)
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", write_config(tmp_path / "keepers.yaml", settle=0.2)).start()
    try:
        assert wait_for(lambda: query(daemon.db, "SELECT count(*) FROM images WHERE status = 'scored'")[0][0] == 4, 30)
        target = str(photos / "p1.jpg")
        for kind in ("reselect", "pin", "reject", "unpin", "reselect"):
            command = enqueue_command(daemon.db, kind, None if kind == "reselect" else target)
            assert wait_for(lambda: query(daemon.db, "SELECT done FROM commands WHERE id = ?", (command,))[0][0], 20), kind
            assert query(daemon.db, "SELECT error FROM commands WHERE id = ?", (command,))[0][0] is None, kind
        time.sleep(1.5)  # a skipped poll would be logged within a second of the last command
        warnings = query(daemon.db, "SELECT level, logger, message FROM log WHERE level IN ('WARNING', 'ERROR')")
    finally:
        assert daemon.terminate() == 0
    assert not [w for w in warnings if "apscheduler" in w[1] or "running instances" in w[2]], warnings
