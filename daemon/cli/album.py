"""`keepers picks | reselect | pin | unpin | reject`: the album and a person's choices.

When a daemon is running (its heartbeat is fresh) these ask it through the
``commands`` table and wait briefly for the answer; otherwise they work on
the database directly.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from ..errors import StoreError
from .common import add_config_args, add_json_arg, config_from_args, db_path_from_args, fail, print_json, print_json_list

#: a daemon whose heartbeat is older than this is taken for dead
HEARTBEAT_FRESH_SECONDS = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("picks", help="the album: each pick with its moment, cluster, composite and reason")
    add_config_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_picks)

    p = subparsers.add_parser("reselect", help="re-pick the album now (in the running daemon, else directly)")
    add_config_args(p)
    add_json_arg(p)
    p.add_argument("--full", action="store_true", help="recompute every moment, not only those touched since the last run")
    p.add_argument("--wait", type=float, default=60.0, metavar="S", help="how long to wait for a running daemon (default 60)")
    p.set_defaults(func=cmd_reselect)

    for verb, text in (
        ("pin", "also keep this photo in the album, beside its group's own pick (to replace the pick, reject it)"),
        ("unpin", "forget a pin or reject; the selection decides again"),
        ("reject", "never put this photo in the album"),
    ):
        p = subparsers.add_parser(verb, help=text)
        add_config_args(p)
        add_json_arg(p)
        p.add_argument("paths", nargs="+", metavar="PATH", help="photo file (as `keepers picks` prints it) or image id")
        p.add_argument("--wait", type=float, default=30.0, metavar="S", help="how long to wait for a running daemon (default 30)")
        p.set_defaults(func=cmd_choice, choice=verb)


def live_daemon(db_path: Path) -> tuple[int | None, str] | None:
    """(pid, state) of the database's daemon when its heartbeat is fresh (and, on this
    machine, its pid lives); None when no daemon runs."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT pid, state, heartbeat FROM daemon WHERE id = 1").fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None or row[2] is None or row[1] in ("stopped", "stopping"):
        return None
    if time.time() - float(row[2]) > HEARTBEAT_FRESH_SECONDS:
        return None
    if row[0]:
        try:
            os.kill(int(row[0]), 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return row[0], row[1]


def daemon_alive(db_path: Path) -> bool:
    """True when the database's daemon row has a fresh heartbeat (and, on this machine, its pid lives)."""
    return live_daemon(db_path) is not None


def wait_for_command(db_path: Path, command_id: int, timeout: float) -> dict[str, Any] | None:
    """The command's row once the daemon has marked it done, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        finally:
            conn.close()
        if row is not None and row["done"] is not None:
            return dict(row)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def _require_db(db_path: Path) -> None:
    if not db_path.exists():
        raise StoreError(f"database {db_path} does not exist yet; run `keepers run` first (or pass --db)")


def cmd_picks(args: argparse.Namespace) -> int:
    db_path = db_path_from_args(args)
    _require_db(db_path)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        if args.json:
            print_json_list(_picks(conn))
            return 0
        count = 0
        for p in _picks(conn):
            count += 1
            comp = "-" if p["composite"] is None else f"{p['composite']:.3f}"
            print(f"{p['moment']:>8} {p['cluster']:>8} {comp:>6} {p['reason'].get('decided_by', ''):<10} {p['path']}")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the album from {db_path}: {exc}") from exc
    finally:
        conn.close()
    if not count:
        print("The album is empty: no selection has run yet (`keepers reselect`), or nothing is scored.")
        return 0
    print(f"{count} picks (moment, cluster, composite, decided by, path)")
    return 0


def _picks(conn: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """The album in the order its photos were taken (a moment's id is a row id, not a time), read as a stream."""
    conn.row_factory = sqlite3.Row
    for r in conn.execute(
        "SELECT i.path, p.image_id, p.moment, p.cluster, p.rank, p.composite, p.reason, p.run_id"
        " FROM picks p JOIN images i ON i.id = p.image_id"
        " ORDER BY coalesce(i.taken_at, i.mtime_ns / 1e9), p.moment, p.cluster, p.rank, p.image_id"
    ):
        try:
            reason = json.loads(r["reason"])
        except (TypeError, ValueError):
            reason = {"text": r["reason"]}
        yield {**dict(r), "reason": reason}


def cmd_reselect(args: argparse.Namespace) -> int:
    db_path = db_path_from_args(args)
    _require_db(db_path)
    if daemon_alive(db_path):
        from ..store.reader import enqueue_command

        command_id = enqueue_command(db_path, "reselect", "full" if args.full else None)
        row = wait_for_command(db_path, command_id, args.wait)
        if row is None:
            return fail(f"asked the running daemon to re-pick (command {command_id}); it has not answered in {args.wait:.0f} s", 1)
        if row.get("error"):
            return fail(f"the daemon's selection failed: {row['error']}", 1)
        result = json.loads(row["result"]) if row.get("result") else {}
        result["via"] = "daemon"
    else:
        from ..album import run_selection
        from ..store.writer import StoreWriter

        config = config_from_args(args)
        writer = StoreWriter(db_path)
        try:
            result = run_selection(writer, config, trigger="cli", full=args.full).as_dict()
        finally:
            writer.close()
        result["via"] = "direct"
    if args.json:
        print_json(result)
    else:
        print(
            f"selection run {result.get('run_id')} ({result.get('mode')}, {result['via']}): {result.get('picks')} picks,"
            f" +{result.get('added')} -{result.get('removed')}, {result.get('moments_recomputed')} of"
            f" {result.get('moments')} moments recomputed in {result.get('seconds')} s"
        )
    return 0


def cmd_choice(args: argparse.Namespace) -> int:
    db_path = db_path_from_args(args)
    _require_db(db_path)
    choice: str = args.choice
    refs = [p if p.isdigit() and not os.path.exists(p) else os.path.abspath(os.path.expanduser(p)) for p in args.paths]
    done: list[dict[str, Any]] = []
    if daemon_alive(db_path):
        from ..store.reader import enqueue_command

        for ref in refs:
            command_id = enqueue_command(db_path, choice, ref)
            row = wait_for_command(db_path, command_id, args.wait)
            if row is None:
                return fail(f"asked the running daemon to {choice} {ref} (command {command_id}); it has not answered in {args.wait:.0f} s")
            if row.get("error"):
                return fail(f"{choice} {ref}: {row['error']}")
            done.append({"path": ref, "choice": choice, "via": "daemon"})
    else:
        from ..album import run_selection
        from ..album.manual import set_choice
        from ..store.writer import StoreWriter

        config = config_from_args(args)
        writer = StoreWriter(db_path)
        try:
            for ref in refs:
                image_id = writer.call(lambda db, ref=ref: set_choice(db, ref, choice, origin="cli"))  # type: ignore[misc]
                done.append({"path": ref, "image_id": image_id, "choice": choice, "via": "direct"})
            run_selection(writer, config, trigger="cli")
        finally:
            writer.close()
    if args.json:
        print_json(done)
    else:
        for d in done:
            print(f"{d['choice']}: {d['path']}")
    return 0
