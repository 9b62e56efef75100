"""`keepers run --tui`: the daemon runs as a child process and is stopped
gracefully (SIGTERM, drain, commit) when the dashboard quits."""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

import pytest

from daemon.store import StoreReader
from tui.launch import DaemonProcess, daemon_argv, run_with_daemon

# A stand-in daemon process: commits a heartbeat through the real writer until
# SIGTERM, then commits a final 'stopped' row and exits 0, as the service does.
STAND_IN = textwrap.dedent(
    """
    import signal, sys, threading, time
    from daemon.store import StoreWriter
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    writer = StoreWriter(sys.argv[1]).start()
    def beat(state):
        writer.call(lambda db: db["daemon"].upsert({"id": 1, "pid": 0, "state": state, "heartbeat": time.time()}, pk="id"))
    beat("ready")
    print("ready", flush=True)
    while not stop.wait(0.05):
        beat("ready")
    beat("stopped")
    writer.close()
    print("stopped cleanly", flush=True)
    """
)


def wait_for(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def daemon_state(db: Path) -> str | None:
    if not db.exists():
        return None
    try:
        with StoreReader(db) as reader:
            row = reader.daemon_row()
    except Exception:
        return None
    return row["state"] if row else None


def test_quitting_the_dashboard_stops_the_daemon_after_it_commits(db_path: Path, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def dashboard(path: Path, **options: object) -> int:
        seen["ready"] = wait_for(lambda: daemon_state(path) == "ready")
        return 0

    code = run_with_daemon(
        ["run"], db_path, log_path=tmp_path / "daemon.log", dashboard=dashboard, stop_timeout=20,
        command=[sys.executable, "-c", STAND_IN, str(db_path)],
    )
    assert seen["ready"] is True
    assert code == 0
    assert daemon_state(db_path) == "stopped"  # its last write was committed before it exited
    assert "stopped cleanly" in (tmp_path / "daemon.log").read_text()


def test_a_daemon_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    daemon = DaemonProcess([], tmp_path / "d.log", command=[sys.executable, "-c", code]).start()
    try:
        assert wait_for(lambda: "up" in (tmp_path / "d.log").read_text(), 20)
        started = time.monotonic()
        returncode = daemon.stop(timeout=1.0)
        assert returncode == -9 and time.monotonic() - started < 10
    finally:
        if daemon.running():
            daemon.process.kill()  # type: ignore[union-attr]


def test_daemon_command_line_keeps_the_run_options_but_not_tui(tmp_path: Path) -> None:
    args = argparse.Namespace(config=tmp_path / "k.yaml", photos=[tmp_path / "a", tmp_path / "b"], offline=True,
                              demo_if_missing=True, verbose=False, tui=True)
    argv = daemon_argv(args, tmp_path / "k.db")
    assert argv == ["run", "--db", str(tmp_path / "k.db"), "--config", str(tmp_path / "k.yaml"),
                    "--photos", str(tmp_path / "a"), "--photos", str(tmp_path / "b"), "--offline", "--demo-if-missing"]
    assert "--tui" not in argv


@pytest.mark.asyncio
async def test_the_dashboard_shows_at_once_that_its_daemon_exited_and_why(db_path: Path, tmp_path: Path) -> None:
    from fixtures_tui import screen_text
    from tui.app import KeepersApp

    dies = ("import sys, time; print('keepers: starting', flush=True); time.sleep(0.5);"
            "print(\"keepers: --photos: photos[0]: folder '/nope' does not exist; create it\", file=sys.stderr); sys.exit(2)")
    (tmp_path / "daemon.log").write_text("an earlier run's line\n")
    daemon = DaemonProcess([], tmp_path / "daemon.log", command=[sys.executable, "-c", dies]).start()
    app = KeepersApp(db_path, daemon=daemon, refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            if app.daemon_exit is not None:
                break
        await pilot.pause()
        text = screen_text(app)
        assert app.daemon_exit is not None and app.daemon_exit[0] == 2
        assert "The daemon stopped (exit code 2)" in text
        assert "folder '/nope' does not exist" in text and str(tmp_path / "daemon.log") in text
        assert "an earlier run's line" not in text  # only this run's output
        await pilot.press("escape")  # back to the data underneath
        assert "The daemon stopped" not in screen_text(app)


def test_the_dashboard_refuses_to_run_without_a_terminal(tmp_path: Path) -> None:
    """stdin at end of file made Textual's input loop spin a core (35 % of the machine
    measured with < /dev/null); the dashboard now says why it cannot run instead."""
    import subprocess

    main = "import sys; from daemon.cli import main; sys.exit(main(sys.argv[1:]))"
    for argv in (["tui", "--db", str(tmp_path / "k.db")], ["run", "--tui", "--photos", str(tmp_path), "--db", str(tmp_path / "k.db")]):
        done = subprocess.run([sys.executable, "-c", main, *argv], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "needs a terminal" in done.stderr and "standard input" in done.stderr
    assert not (tmp_path / "k.db").exists()  # no daemon was started
