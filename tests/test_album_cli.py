"""`keepers picks / reselect / pin / unpin / reject`, directly and through a running daemon."""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import pytest

from daemon.album.manual import UnknownPhoto
from daemon.album.service_hooks import AlbumHooks, install
from daemon.album.synthetic import SyntheticPhoto, insert_photo
from daemon.cli import album as album_cli
from daemon.config import Config
from daemon.store.writer import StoreWriter

T0 = 1_700_000_000.0


def keepers(*argv: str) -> int:
    """Run an album subcommand the way `keepers` does (parse, then call its func)."""
    parser = argparse.ArgumentParser(prog="keepers")
    album_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def library(db_path: Path) -> dict[str, int]:
    with StoreWriter(db_path) as writer:
        ids = {
            name: writer.call(lambda db, n=name, s=s, t=t: insert_photo(db, SyntheticPhoto(f"/p/x/{n}.jpg", T0 + t, {"aesthetic": s, "technical": s}, "0123456789abcdef")))
            for name, s, t in (("a", 0.9, 0), ("b", 0.4, 1), ("c", 0.7, 600))
        }
    return ids


def test_reselect_then_picks_json_explains_each_pick(db_path: Path, library: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    assert keepers("reselect", "--db", str(db_path), "--json") == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["via"], run["mode"], run["picks"], run["added"]) == ("direct", "full", 2, 2)
    assert keepers("picks", "--db", str(db_path), "--json") == 0
    picks = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in picks] == ["/p/x/a.jpg", "/p/x/c.jpg"]
    first = picks[0]
    assert first["moment"] == library["a"] and first["cluster"] == library["a"]
    assert first["composite"] == pytest.approx(0.9)
    assert first["reason"]["decided_by"] == "composite"
    assert first["reason"]["groups"] == {"aesthetic": 0.9, "technical": 0.9}
    assert first["reason"]["runner_up"]["id"] == library["b"]


def test_picks_come_in_the_order_the_photos_were_taken(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Moment ids are row ids: a folder scanned first can hold the newest photos."""
    with StoreWriter(db_path) as writer:
        for name, taken in (("evening", T0 + 9 * 3600), ("morning", T0), ("noon", T0 + 3 * 3600)):
            writer.call(lambda db, n=name, t=taken: insert_photo(db, SyntheticPhoto(f"/p/day/{n}.jpg", t, {"aesthetic": 0.5}, "0123456789abcdef")))
    assert keepers("reselect", "--db", str(db_path)) == 0
    capsys.readouterr()
    keepers("picks", "--db", str(db_path), "--json")
    assert [Path(p["path"]).stem for p in json.loads(capsys.readouterr().out)] == ["morning", "noon", "evening"]


def test_pin_and_reject_without_a_daemon_write_the_choice_and_repick(db_path: Path, library: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    assert keepers("pin", "--db", str(db_path), "/p/x/b.jpg") == 0
    assert keepers("reject", "--db", str(db_path), "--json", "/p/x/c.jpg") == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1]) == [{"path": "/p/x/c.jpg", "image_id": library["c"], "choice": "reject", "via": "direct"}]
    keepers("picks", "--db", str(db_path), "--json")
    assert [p["path"] for p in json.loads(capsys.readouterr().out)] == ["/p/x/a.jpg", "/p/x/b.jpg"]  # the pin adds b beside a
    assert keepers("unpin", "--db", str(db_path), "/p/x/b.jpg") == 0
    assert capsys.readouterr().out == "unpin: /p/x/b.jpg\n"
    keepers("picks", "--db", str(db_path), "--json")
    assert [p["path"] for p in json.loads(capsys.readouterr().out)] == ["/p/x/a.jpg"]
    with pytest.raises(UnknownPhoto, match="/p/x/none.jpg: not a photo keepers knows"):
        keepers("pin", "--db", str(db_path), "/p/x/none.jpg")


class FakeService:
    """The parts of the daemon service the album hooks use; it answers commands like the daemon's loop."""

    def __init__(self, writer: StoreWriter, config: Config):
        self.writer = writer
        self.config = config
        self.handlers: dict[str, object] = {}
        self.committed: list[object] = []
        self.scheduler = None
        self.pipeline = self

    def register_command(self, kind: str, handler) -> None:  # type: ignore[no-untyped-def]
        self.handlers[kind] = handler

    def on_committed(self, callback) -> None:  # type: ignore[no-untyped-def]
        self.committed.append(callback)

    def serve(self, stop: threading.Event) -> None:
        self.writer.call(lambda db: db.conn.execute(
            "INSERT OR REPLACE INTO daemon (id, pid, state, started, heartbeat) VALUES (1, ?, 'ready', ?, ?)", (os.getpid(), time.time(), time.time())))
        while not stop.wait(0.05):
            rows = self.writer.call(lambda db: db.conn.execute("SELECT id, kind, arg FROM commands WHERE done IS NULL").fetchall())
            for cid, kind, arg in rows:
                try:
                    result, error = json.dumps(self.handlers[kind](arg)), None  # type: ignore[operator]
                except Exception as exc:
                    result, error = None, str(exc)
                self.writer.call(lambda db, cid=cid, r=result, e=error: db.conn.execute(
                    "UPDATE commands SET taken = ?, done = ?, result = ?, error = ? WHERE id = ?", (time.time(), time.time(), r, e, cid)))


def test_cli_goes_through_a_running_daemon(db_path: Path, library: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    writer = StoreWriter(db_path).start()
    service = FakeService(writer, Config())
    hooks = install(writer, service.config, register_command=service.register_command, on_committed=service.on_committed)
    stop = threading.Event()
    thread = threading.Thread(target=service.serve, args=(stop,), name="fake-daemon")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not album_cli.daemon_alive(db_path):
            assert time.monotonic() < deadline, "the fake daemon never wrote its heartbeat"
            time.sleep(0.05)
        assert keepers("reselect", "--db", str(db_path), "--json", "--wait", "20") == 0
        run = json.loads(capsys.readouterr().out)
        assert (run["via"], run["trigger"], run["picks"]) == ("daemon", "command", 2)
        assert keepers("reject", "--db", str(db_path), "--wait", "20", "/p/x/a.jpg") == 0
        assert writer.call(lambda db: db.conn.execute("SELECT origin FROM manual_choices WHERE image_id = ?", (library["a"],)).fetchone()) == ("dashboard",)
        picked = writer.call(lambda db: {i for (i,) in db.conn.execute("SELECT image_id FROM picks")})
        assert picked == {library["b"], library["c"]}  # the daemon re-picked after the reject
        assert keepers("pin", "--db", str(db_path), "--wait", "20", "/p/x/nowhere.jpg") == 1  # the daemon's error is reported
        assert "not a photo keepers knows" in capsys.readouterr().err
    finally:
        stop.set()
        thread.join(10)
        writer.close()
    assert hooks.runs == 2 and set(service.handlers) == {"reselect", "pin", "unpin", "reject"}


def test_new_photos_trigger_a_selection_after_the_configured_count(db_path: Path, library: dict[str, int]) -> None:
    writer = StoreWriter(db_path).start()
    try:
        hooks = AlbumHooks(writer, Config())
        hooks.on_committed(49)
        assert hooks.new_since_run == 49 and hooks.runs == 0
        hooks.on_committed([1])
        deadline = time.monotonic() + 10
        while hooks.runs == 0:
            assert time.monotonic() < deadline, "no selection after 50 new photos"
            time.sleep(0.05)
        trigger = writer.call(lambda db: db.conn.execute("SELECT trigger FROM selection_runs").fetchall())
        assert trigger == [("new-photos",)]
    finally:
        writer.close()


def test_a_stale_heartbeat_means_no_daemon(db_path: Path, library: dict[str, int]) -> None:
    with StoreWriter(db_path) as writer:
        writer.call(lambda db: db.conn.execute("INSERT INTO daemon (id, pid, state, heartbeat) VALUES (1, ?, 'ready', ?)", (os.getpid(), time.time() - 600)))
    assert not album_cli.daemon_alive(db_path)


def test_install_adds_the_periodic_job_to_the_scheduler(db_path: Path, library: dict[str, int]) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from daemon.album.service_hooks import JOB_ID

    writer = StoreWriter(db_path)
    try:
        service = FakeService(writer, Config())
        service.scheduler = BackgroundScheduler()
        hooks = install(writer, service.config, register_command=service.register_command,
                        on_committed=service.on_committed, scheduler=service.scheduler)
        job = service.scheduler.get_job(JOB_ID)
        assert job is not None and job.trigger.interval.total_seconds() == 600  # reselect_minutes: 10
        job.func()  # what the scheduler runs every ten minutes
        assert hooks.runs == 1
        assert writer.call(lambda db: db.conn.execute("SELECT trigger FROM selection_runs").fetchall()) == [("schedule",)]
        assert service.committed == [hooks.on_committed]
    finally:
        writer.close()
