"""Faults inside the daemon, with the real daemon process: the writer failing at commit,
the database's disk filling up, and kill -9 in the middle of a batch of commands."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from daemon.paths import ENV_FAULT_COMMIT
from daemon.service.health import EXIT_UNHEALTHY
from daemon.store import StoreReader
from tui.queries import overview
from fixtures_daemon import Daemon, NotifySocket, query, rows_by_path, small_photo, wait_for, write_config

pytestmark = pytest.mark.slow

SCORERS = 5  # write_config's scorers list
WATCHDOG_USEC = 4_000_000  # WatchdogSec=4: a ping every 2 s


def _all_scored(db: Path, photos: list[Path]) -> bool:
    rows = rows_by_path(db)
    return all(rows.get(str(p), (0, ""))[1] == "scored" and rows[str(p)][4] == SCORERS for p in photos)


def test_writer_failing_at_commit_exits_within_the_watchdog_interval_and_a_restart_scores_everything(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    fault = tmp_path / "fail-commits"  # while it exists, every COMMIT raises sqlite3.DatabaseError
    notify = NotifySocket(tmp_path)
    config = write_config(tmp_path / "keepers.yaml", settle=0.2, workers=1)
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC), ENV_FAULT_COMMIT: str(fault)}
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config, env=env)
    first = [small_photo(photos / f"a{i}.jpg", 10 + i) for i in range(5)]
    later = []
    try:
        daemon.start()
        assert wait_for(lambda: _all_scored(daemon.db, first), 30), daemon.log_text()
        assert wait_for(lambda: notify.seen("WATCHDOG=1"), 5), notify.messages
        fault.touch()
        later = [small_photo(photos / f"b{i}.jpg", 20 + i) for i in range(5)]
        assert wait_for(lambda: daemon.proc.poll() is not None, 20), "the daemon kept running with a dead writer"
        exited = time.monotonic()
        code = daemon.proc.returncode
        daemon.kill()
    finally:
        daemon.kill()
        notify.close()
    log = daemon.log_text()
    assert code == EXIT_UNHEALTHY, log
    assert re.search(r"not healthy: the store writer stopped: DatabaseError at commit: fault injected", log), log
    last_ping = notify.last("WATCHDOG=1")
    print(f"writer fault: exit {code}, {exited - (last_ping or 0):.2f} s after the last watchdog ping")
    assert last_ping is not None and exited - last_ping < WATCHDOG_USEC / 1e6, \
        f"{exited - last_ping:.1f} s without a ping before the exit: systemd's watchdog would have killed it first"
    assert any(s.startswith("not healthy: the store writer stopped") for s in notify.statuses()), notify.statuses()
    beat = query(daemon.db, "SELECT state, status_text FROM daemon")
    assert beat[0][0] in ("ready", "failed")  # the writer cannot record its own failure in the database

    fault.unlink()
    restart = Daemon(photos, daemon.db, config, log=tmp_path / "restart.log").start()
    try:
        assert wait_for(lambda: _all_scored(restart.db, first + later), 60), restart.log_text()
    finally:
        assert restart.terminate() == 0, restart.log_text()
    assert sorted(rows_by_path(restart.db)) == sorted(str(p) for p in first + later)
    assert query(restart.db, "PRAGMA integrity_check") == [("ok",)]


def _fill(folder: Path) -> Path:
    """Fill the file system holding ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        chunk = b"\0" * 65536
        while True:
            try:
                fh.write(chunk)
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
        for size in (4096, 512, 1):  # the tail a whole chunk did not fit into
            while True:
                try:
                    os.write(fh.fileno(), b"\0" * size)
                except OSError:
                    break
    return filler


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 16 MiB tmpfs of its own (mounting needs root; without it there is no honest full disk)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
                                capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here to make a small tmpfs")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip() or result.returncode}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_loses_nothing_says_so_and_everything_is_scored_once_space_returns(tmp_path: Path, small_disk: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    notify = NotifySocket(tmp_path)
    config = write_config(tmp_path / "keepers.yaml", settle=0.2, workers=1)
    daemon = Daemon(photos, small_disk / "keepers.db", config, log=tmp_path / "daemon.log",
                    env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    first = [small_photo(photos / f"a{i}.jpg", 100 + i) for i in range(5)]
    arrived: list[Path] = []
    filler = None
    try:
        daemon.start()
        assert wait_for(lambda: _all_scored(daemon.db, first), 30), daemon.log_text()
        filler = _fill(small_disk)
        assert os.statvfs(small_disk).f_bavail == 0
        for i in range(60):
            arrived.append(small_photo(photos / f"b{i:02d}.jpg", 200 + i))
        assert wait_for(lambda: "is full" in daemon.log_text(), 30), daemon.log_text()
        assert wait_for(lambda: any(s.startswith("waiting: the disk holding the database") for s in notify.statuses()), 10), \
            notify.statuses()[-3:]
        waited_from = time.monotonic()
        time.sleep(3 * WATCHDOG_USEC / 1e6)  # the daemon waits: it lives, and keeps telling systemd so
        assert daemon.proc.poll() is None, daemon.log_text()
        assert (notify.last("WATCHDOG=1") or 0) > waited_from + WATCHDOG_USEC / 2e6
        dashboard = overview(StoreReader(daemon.db)).daemon  # what the Overview screen shows
        assert dashboard is not None and dashboard.disk and dashboard.disk.startswith(
            f"the disk holding the database {daemon.db} is full"), dashboard
        held = [p for p in arrived if rows_by_path(daemon.db).get(str(p), (0, ""))[1] != "scored"]
        assert held, "the disk never filled up: the test proved nothing"
        print(f"full disk: {len(held)} of {len(arrived)} new photos held while it was full")
        assert not [r for r in rows_by_path(daemon.db).values() if r[1] == "error"], "a photo got an error row for the full disk"

        filler.unlink()  # space returns
        filler = None
        assert wait_for(lambda: _all_scored(daemon.db, first + arrived), 60), daemon.log_text()
        assert "can be written again" in daemon.log_text()
        assert daemon.proc.poll() is None
        assert wait_for(lambda: not notify.statuses()[-1].startswith("waiting:"), 10), notify.statuses()[-3:]
    finally:
        if filler is not None:
            filler.unlink()
        code = daemon.terminate()
        notify.close()
    assert code == 0, daemon.log_text()
    rows = rows_by_path(daemon.db)
    assert sorted(rows) == sorted(str(p) for p in first + arrived)
    assert all(r[1] == "scored" and r[4] == SCORERS for r in rows.values())
    assert query(daemon.db, "PRAGMA integrity_check") == [("ok",)]


COMMANDS = 60


def _enqueue_at_once(db: Path, kind: str, count: int) -> list[int]:
    """``count`` commands arriving together (one transaction), as a burst of dashboard actions
    does between two polls: the daemon finds them all open at once."""
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        ids = [conn.execute("INSERT INTO commands (kind, created) VALUES (?, ?)", (kind, time.time())).lastrowid
               for _ in range(count)]
        conn.execute("COMMIT")
    finally:
        conn.close()
    return [int(i) for i in ids]


def test_kill_9_in_the_middle_of_a_batch_of_commands_carries_each_out_once_after_restart(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shots = [small_photo(photos / f"IMG_{i:03d}.jpg", 300 + i) for i in range(40)]
    config = write_config(tmp_path / "keepers.yaml", settle=0.2, workers=1)
    db = tmp_path / "state" / "keepers.db"
    daemon = Daemon(photos, db, config).start()
    try:
        assert wait_for(lambda: _all_scored(db, shots), 60), daemon.log_text()
        ids = _enqueue_at_once(db, "reselect", COMMANDS)

        def done() -> int:
            return query(db, "SELECT COUNT(*) FROM commands WHERE done IS NOT NULL")[0][0]

        assert wait_for(lambda: done() >= 3, 30, interval=0.01), daemon.log_text()
    finally:
        daemon.kill()
    done_before_kill = done()
    assert done_before_kill < COMMANDS, "every command finished before the kill: the test proved nothing"

    restart = Daemon(photos, db, config, log=tmp_path / "restart.log").start()
    try:
        assert wait_for(lambda: done() == COMMANDS, 60), restart.log_text()
    finally:
        assert restart.terminate() == 0, restart.log_text()
    commands = query(db, f"SELECT id, done, error FROM commands WHERE id IN ({','.join('?' * COMMANDS)})", tuple(ids))
    assert all(c[1] is not None and c[2] is None for c in commands), commands
    reruns = restart.log_text().count("was taken by a daemon that stopped before finishing it")
    print(f"kill -9: {done_before_kill} of {COMMANDS} commands done before the kill, {reruns} run again after the restart")
    assert reruns <= 1, "more than the one command in progress ran again"
    runs = query(db, "SELECT COUNT(*) FROM selection_runs WHERE trigger = 'command' AND finished IS NOT NULL")[0][0]
    assert runs == COMMANDS + reruns or (reruns == 1 and runs == COMMANDS), \
        f"{runs} selections for {COMMANDS} commands ({reruns} run again)"

