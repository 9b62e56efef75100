"""No silent failure: each fault the daemon used to swallow, tested on its own
(the whole daemon under the same faults is in test_daemon_e2e_faults.py)."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from daemon.config import load_config
from daemon.errors import StoreError
from daemon.paths import ENV_FAULT_COMMIT
from daemon.scoring.pipeline import _STOP, Pipeline
from daemon.service.commands import CommandRegistry, poll_commands
from daemon.store.reader import enqueue_command
from daemon.store.writer import StoreWriter
from daemon.watch.settle import Settler
from fixtures_daemon import DAEMON_MAIN, Daemon, NotifySocket, query, small_photo, wait_for, write_config


def _scored_config(photos: Path, db: Path, tmp_path: Path, **kw: Any) -> Any:
    return load_config(write_config(tmp_path / "keepers.yaml", **kw), photos=[photos], database=db)


# -- the store writer ----------------------------------------------------------------------------


def test_writer_integrity_error_at_commit_resolves_every_pending_result_and_says_why(db_path: Path) -> None:
    """A deferred foreign key fails at COMMIT (an IntegrityError, not an OperationalError):
    the thread used to end there and leave every caller waiting for ever."""
    writer = StoreWriter(db_path).start()
    try:
        writer.call(lambda db: db.conn.execute(
            "CREATE TABLE picks_note (image_id INTEGER REFERENCES images(id) DEFERRABLE INITIALLY DEFERRED)"))
        # submitted together, so they share one batch (the writer gathers for batch_seconds)
        futures = [writer.submit(lambda db, i=i: db.conn.execute("INSERT INTO log (at, level, logger, message) "
                                                                  "VALUES (0, 'INFO', 't', ?)", (str(i),)))
                   for i in range(2)]
        futures.append(writer.submit(lambda db: db.conn.execute("INSERT INTO picks_note VALUES (424242)")))
        for fut in futures:
            with pytest.raises(StoreError, match="IntegrityError at commit: FOREIGN KEY constraint failed"):
                fut.result(5)
        assert writer.health() == "the store writer stopped: IntegrityError at commit: FOREIGN KEY constraint failed"
        with pytest.raises(StoreError, match="the store writer stopped"):
            writer.submit(lambda db: None)
    finally:
        writer.close(timeout=5)
    assert query(db_path, "SELECT COUNT(*) FROM log WHERE logger = 't'") == [(0,)], "half a batch was committed"


def test_writer_fault_hook_fails_commits_like_a_damaged_database(db_path: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fault = tmp_path / "fault"
    monkeypatch.setenv(ENV_FAULT_COMMIT, str(fault))
    writer = StoreWriter(db_path).start()
    try:
        writer.flush()  # no fault file yet: commits work
        fault.touch()
        with pytest.raises(StoreError, match="DatabaseError at commit: fault injected"):
            writer.flush(5)
        assert (writer.health() or "").startswith("the store writer stopped: DatabaseError at commit: fault injected")
    finally:
        writer.close(timeout=5)


def test_writer_waits_while_the_database_is_full_and_commits_everything_when_space_returns(db_path: Path) -> None:
    """SQLITE_FULL (the disk, or here max_page_count): the batch is held and tried again,
    not failed, so no photo's outcome is lost; it commits once there is room."""
    writer = StoreWriter(db_path).start()
    try:
        pages = writer.call(lambda db: db.conn.execute("PRAGMA page_count").fetchone()[0])
        writer.call(lambda db: db.conn.execute(f"PRAGMA max_page_count = {pages + 1}"))
        rows = [writer.submit(lambda db, i=i: db.conn.execute(
            "INSERT INTO log (at, level, logger, message) VALUES (0, 'INFO', 'full', ?)", ("x" * 3000 + str(i),)))
            for i in range(40)]
        assert wait_for(lambda: writer.waiting_for_storage, 10), "the writer never met the full database"
        assert "is full" in writer.waiting_for_storage and writer.health() is None
        time.sleep(0.5)
        assert not any(f.done() for f in rows), "a write was given up while the disk was full"
        writer.db.conn.execute("PRAGMA max_page_count = 1000000")  # space returns (the writer thread is asleep)
        for fut in rows:
            fut.result(10)
        assert writer.waiting_for_storage is None
    finally:
        writer.close(timeout=5)
    assert query(db_path, "SELECT COUNT(*) FROM log WHERE logger = 'full'") == [(40,)]


def test_writer_closing_while_the_disk_is_full_fails_the_held_work_instead_of_hanging(db_path: Path) -> None:
    writer = StoreWriter(db_path).start()
    pages = writer.call(lambda db: db.conn.execute("PRAGMA page_count").fetchone()[0])
    writer.call(lambda db: db.conn.execute(f"PRAGMA max_page_count = {pages}"))
    held = writer.submit(lambda db: db.conn.execute("INSERT INTO log (at, level, logger, message) VALUES (0, 'I', 'f', ?)",
                                                    ("x" * 5000,)))
    assert wait_for(lambda: writer.waiting_for_storage, 10)
    started = time.monotonic()
    writer.close(timeout=10)
    assert time.monotonic() - started < 5
    with pytest.raises(StoreError, match="is full"):
        held.result(1)



def test_writer_takes_a_read_only_database_for_a_wait_not_a_failure(db_path: Path) -> None:
    """SQLITE_READONLY (a file system remounted read-only, a file made read-only) is waited
    out like a full disk; a mount cannot be remounted read-only under an open database to
    show it end to end, so this checks the classification on SQLite's real error."""
    from daemon.store.db import open_db
    from daemon.store.writer import storage_problem

    open_db(db_path).conn.close()
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            conn.execute("INSERT INTO log (at, level, logger, message) VALUES (0, 'I', 'x', 'y')")
    finally:
        conn.close()
    why = storage_problem(caught.value, db_path)
    assert why is not None and why.startswith(f"the database {db_path} is read-only (the file or its file system)")
    assert storage_problem(sqlite3.IntegrityError("UNIQUE constraint failed"), db_path) is None


# -- the pipeline --------------------------------------------------------------------------------


def test_pipeline_in_flight_counter_stays_at_zero_when_writer_submit_raises(photo_dir: Path, db_path: Path,
                                                                            tmp_path: Path) -> None:
    """writer.submit raising (a closed or failed writer) used to count the photo finished twice
    (-1 in flight) and kill the worker thread."""
    config = _scored_config(photo_dir, db_path, tmp_path, workers=1)
    writer = StoreWriter(db_path)
    pipeline = Pipeline(config, writer).start()
    try:
        writer.close()  # from now on writer.submit raises RuntimeError
        for i in range(3):
            pipeline.submit(small_photo(photo_dir / f"p{i}.jpg", i), photo_dir)
        assert pipeline.drain(30)
        assert pipeline.queue_depth() == 0
        assert pipeline.health() is None, "the worker thread died"
        assert all(t.is_alive() for t in pipeline._workers)
    finally:
        pipeline.stop(drain=False, timeout=5)


def test_pipeline_health_names_a_worker_that_died(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    config = _scored_config(photo_dir, db_path, tmp_path, workers=2)
    with StoreWriter(db_path) as writer:
        pipeline = Pipeline(config, writer).start()
        assert pipeline.health() is None
        pipeline._queue.put(_STOP)  # one worker ends, as one that crashed would
        assert wait_for(lambda: pipeline.health(), 5) == "scoring worker(s) score-0 died (see the error logged before this)" \
            or pipeline.health() == "scoring worker(s) score-1 died (see the error logged before this)"
        pipeline.stop(drain=False, timeout=5)


# -- the settler ---------------------------------------------------------------------------------


def test_settler_hand_over_logs_submit_errors_and_tries_the_photo_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Intake.submit raising (an SQLite error, a failed relink) used to be logged at DEBUG and
    the photo left unscored until the hourly rescan."""
    photo = small_photo(tmp_path / "IMG_1.jpg", 1)
    calls: list[Path] = []

    def submit(path: Path, root: Path) -> bool:
        calls.append(path)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return True

    settler = Settler(submit, 0.05, tick_seconds=0.02)
    with caplog.at_level(logging.WARNING, logger="daemon.watch.settle"):
        settler.start()
        try:
            settler.offer(photo, tmp_path)
            assert wait_for(lambda: len(calls) >= 2, 10), "the photo was not tried again"
        finally:
            settler.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "could not queue" in errors[0].getMessage() and "database is locked" in errors[0].getMessage()
    assert settler.submitted_total == 1 and settler.hand_over_errors == 1


# -- commands ------------------------------------------------------------------------------------


def test_commands_are_taken_and_finished_one_at_a_time(db_path: Path) -> None:
    """_take_open used to mark every open command taken before running any."""
    db_path.parent.mkdir(parents=True)
    seen: list[tuple[int, int]] = []
    with StoreWriter(db_path) as writer:
        ids = [enqueue_command(db_path, "reselect") for _ in range(3)]

        def handler(arg: str | None) -> dict[str, int]:
            taken = writer.call(lambda db: db.conn.execute("SELECT COUNT(*) FROM commands WHERE taken IS NOT NULL").fetchone()[0])
            done = writer.call(lambda db: db.conn.execute("SELECT COUNT(*) FROM commands WHERE done IS NOT NULL").fetchone()[0])
            seen.append((taken, done))
            return {"ok": 1}

        registry = CommandRegistry()
        registry.register("reselect", handler)
        assert poll_commands(writer, registry) == 3
        writer.flush()
    assert seen == [(1, 0), (2, 1), (3, 2)]
    assert [r[0] for r in query(db_path, "SELECT id FROM commands WHERE done IS NOT NULL ORDER BY id")] == ids


def test_a_command_taken_by_a_daemon_that_was_killed_is_finished_after_restart(db_path: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Restarts used to look only at commands WHERE taken IS NULL."""
    db_path.parent.mkdir(parents=True)
    with StoreWriter(db_path) as writer:
        orphan = enqueue_command(db_path, "reselect")
        writer.call(lambda db: db.conn.execute("UPDATE commands SET taken = 1 WHERE id = ?", (orphan,)))
        registry = CommandRegistry()
        registry.register("reselect", lambda arg: {"picked": 1})
        with caplog.at_level(logging.WARNING):
            assert poll_commands(writer, registry) == 1
        writer.flush()
    assert query(db_path, "SELECT done IS NOT NULL, result FROM commands WHERE id = ?", (orphan,)) == [(1, '{"picked": 1}')]
    assert "was taken by a daemon that stopped before finishing it; running it again" in caplog.text


def test_rescan_runs_off_the_command_job_and_does_not_hold_the_next_commands(db_path: Path) -> None:
    """A handler returning a Future (the rescan, queued on the scan thread) is closed when the
    Future resolves; the commands behind it run meanwhile."""
    db_path.parent.mkdir(parents=True)
    long_scan: Future[dict[str, int]] = Future()
    with StoreWriter(db_path) as writer:
        rescan = enqueue_command(db_path, "rescan")
        reselect = enqueue_command(db_path, "reselect")
        registry = CommandRegistry()
        registry.register("rescan", lambda arg: long_scan)
        registry.register("reselect", lambda arg: {"picked": 2})
        assert poll_commands(writer, registry) == 2
        assert poll_commands(writer, registry) == 0, "a running rescan was taken again"
        writer.flush()
        assert query(db_path, "SELECT id FROM commands WHERE done IS NOT NULL") == [(reselect,)]
        long_scan.set_result({"found": 7})
        writer.flush()
    assert query(db_path, "SELECT result FROM commands WHERE id = ?", (rescan,)) == [('{"found": 7}',)]


# -- start-up and the command line ---------------------------------------------------------------


def _run_cli(*args: str, code: str = DAEMON_MAIN, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)


def test_keepers_run_does_not_fall_back_to_once_when_the_service_fails_to_import(photo_dir: Path, db_path: Path) -> None:
    small_photo(photo_dir / "IMG_1.jpg", 1)
    broken = "import sys; sys.modules['daemon.service'] = None; " + DAEMON_MAIN  # the import raises ImportError
    result = _run_cli("run", "--photos", str(photo_dir), "--db", str(db_path), code=broken, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "keepers: the daemon cannot be loaded (ModuleNotFoundError: import of daemon.service halted" in result.stderr
    assert "reinstall" in result.stderr and "Traceback" not in result.stderr
    assert not db_path.exists() or query(db_path, "SELECT COUNT(*) FROM images") == [(0,)], "it scored once instead"


def test_album_that_cannot_be_wired_in_is_a_start_up_failure(photo_dir: Path, db_path: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.album import service_hooks
    from daemon.service import StartupError, app

    def broken_install(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("reselect_minutes")

    notify = NotifySocket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    monkeypatch.setattr(service_hooks, "install", broken_install)
    try:
        with pytest.raises(StartupError, match=r"the album could not be wired into the daemon \(KeyError: 'reselect_minutes'\)"):
            app.serve(_scored_config(photo_dir, db_path, tmp_path))
    finally:
        notify.close()
    assert not notify.seen("READY=1")


def test_a_dead_part_stops_the_watchdog_pings_and_exits_non_zero(photo_dir: Path, db_path: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog ping used to be a scheduler job of its own: a daemon whose scoring worker
    (or writer, or settle thread) had died looked healthy to systemd for ever."""
    from daemon.service import app
    from daemon.service.health import EXIT_UNHEALTHY

    notify = NotifySocket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    started = app.Service.start
    killed: list[float] = []
    services: list[app.Service] = []

    def start_then_kill_a_worker(service: app.Service) -> None:
        started(service)
        services.append(service)
        service.pipeline._queue.put(_STOP)  # one scoring worker ends, as one that crashed would
        killed.append(time.monotonic())

    monkeypatch.setattr(app.Service, "start", start_then_kill_a_worker)
    guard = threading.Timer(30.0, lambda: services and services[0].request_stop(99))  # should health never stop it
    guard.start()
    try:
        code = app.serve(_scored_config(photo_dir, db_path, tmp_path))
    finally:
        guard.cancel()
        notify.close()
    assert code == EXIT_UNHEALTHY
    assert notify.seen("READY=1")
    assert (notify.last("WATCHDOG=1") or 0) < killed[0] + 0.6, "pinged the watchdog with a dead scoring worker"
    died = [s for s in notify.statuses() if s.startswith("not healthy: scoring worker(s) score-")]
    assert died and died[0].endswith(" died (see the error logged before this)"), notify.statuses()
    assert query(db_path, "SELECT state, status_text FROM daemon") == [("failed", died[0])]


def test_cli_is_quiet_by_default_and_models_commands_print_no_migration_lines(db_path: Path, tmp_path: Path) -> None:
    """Every `keepers models ...` call used to print INFO lines (the database's migrations) on stderr."""
    config = tmp_path / "k.yaml"
    config.write_text("models:\n  enabled: []\n")
    quiet = _run_cli("models", "fetch", "--offline", "--config", str(config), "--db", str(db_path), timeout=60)
    assert db_path.exists(), "the command did not open (and migrate) the database: the test proves nothing"
    assert quiet.stderr.splitlines() == ["keepers: no model to fetch: name one (see `keepers models list`) or set models.enabled"]
    loud = _run_cli("-v", "models", "fetch", "--offline", "--config", str(config), "--db", str(tmp_path / "other.db"), timeout=60)
    assert "INFO daemon.store.db: migrating database" in loud.stderr, loud.stderr


def test_log_level_config_key_sets_what_the_daemon_logs(photo_dir: Path, db_path: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "keepers.yaml", extra="log_level: debug\n")
    daemon = Daemon(photo_dir, db_path, config).start()
    assert daemon.terminate() == 0, daemon.log_text()
    assert " DEBUG " in daemon.log_text(), daemon.log_text()


def test_dashboard_shows_not_healthy_with_the_reason_from_the_heartbeat(db_path: Path) -> None:
    from daemon.store import StoreReader
    from tui.queries import overview
    from tui.screens.overview import _daemon_lines

    why = "not healthy: the store writer stopped: IntegrityError at commit: FOREIGN KEY constraint failed"
    with StoreWriter(db_path) as writer:
        writer.call(lambda db: db["daemon"].upsert({"id": 1, "pid": 4242, "state": "failed", "started": time.time() - 60,
                                                    "heartbeat": time.time(), "status_text": why}, pk="id"))
    lines = dict(_daemon_lines(overview(StoreReader(db_path)), time.time()))
    assert str(lines["Daemon"]).startswith("not running")
    assert str(lines["Status"]) == why and lines["Status"].style == "bold red"
