"""`keepers doctor`: is this machine ready to run keepers? Each check says what to do when it is not."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sqlite3
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..extras import EXTRAS, install_hint
from ..store.db import damaged_message, is_damage
from .common import add_config_args, add_json_arg, config_from_args, print_json

#: extra -> modules it installs (found with importlib.util.find_spec; nothing is imported)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn, fail
    detail: str


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check the config, folders, database, inotify limit and model extras",
                                   description="Check that keepers can run here; each problem says what to do.")
    add_config_args(parser, photos=True)
    add_json_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks: list[Check] = []
    config: Config | None = None
    try:
        config = config_from_args(args, check_folders=False)
        checks.append(Check("config", "ok", f"{config.source_file or 'shipped defaults'} is valid"))
    except ConfigError as exc:
        checks.append(Check("config", "fail", str(exc)))
    if config is not None:
        checks += check_folders(config)
        checks.append(check_database(config.database_path))
        checks.append(check_inotify(config))
        checks.append(check_daemon(config.database_path))
    checks += check_extras()
    checks.append(check_face_runtime())
    failed = any(c.status == "fail" for c in checks)
    if getattr(args, "json", False):
        print_json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        for c in checks:
            print(f"{c.status.upper():4}  {c.name}: {c.detail}")
    return 1 if failed else 0


def check_folders(config: Config) -> list[Check]:
    if not config.photos:
        return [Check("folders", "fail", "no photo folder is configured; set `photos` in keepers.yaml or pass --photos DIR")]
    out = []
    for folder in config.photos:
        path = folder.path
        if not path.is_dir():
            out.append(Check(f"folder {path}", "fail", "does not exist (or is not mounted); create it or fix `photos`"))
        elif not os.access(path, os.R_OK | os.X_OK):
            out.append(Check(f"folder {path}", "fail", "is not readable by this user; fix its permissions"))
        else:
            try:
                count = sum(1 for _ in os.scandir(path))
            except OSError as exc:
                out.append(Check(f"folder {path}", "fail", f"cannot be listed: {exc.strerror or exc}"))
                continue
            out.append(Check(f"folder {path}", "ok", f"readable ({count} entries at the top)"))
    return out


def check_database(db: Path) -> Check:
    if db.exists():
        try:
            conn = sqlite3.connect(db, timeout=5)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            if is_damage(exc):
                return Check("database", "fail", damaged_message(db, exc))
            return Check("database", "fail", f"{db} cannot be written: {exc}; check its permissions and free space")
        if ok != "ok":
            return Check("database", "fail", damaged_message(db, f"PRAGMA quick_check: {ok}"))
        return Check("database", "ok", f"{db} is writable and PRAGMA quick_check found it whole")
    parent = db.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        return Check("database", "ok", f"{db} will be created (in writable {parent})")
    return Check("database", "fail", f"cannot create {db}: {parent} is not writable; set `database` to a writable place")


def check_inotify(config: Config) -> Check:
    from ..watch.mounts import RAISE_WATCHES_HINT, inotify_limit
    from ..watch.watcher import OVER_LIMIT_POLL_SECONDS, watch_summary

    folders = watch_summary(config)
    needed = sum(f["directories"] for f in folders)
    polled = [f["path"] for f in folders if f["mode"] == "polling" and not f["over_limit"]]
    over = [f["path"] for f in folders if f["over_limit"]]
    limit = inotify_limit()
    extra = f"; polled (network shares or set so): {', '.join(polled)}" if polled else ""
    if limit is None:
        return Check("inotify", "warn", f"{needed} folders to watch; max_user_watches is unknown here{extra}")
    if over:
        return Check("inotify", "fail", f"{needed} folders to watch but fs.inotify.max_user_watches is {limit}: "
                                        f"{', '.join(over)} will be polled every {OVER_LIMIT_POLL_SECONDS:.0f} s instead "
                                        f"of watched (changes show up late, each pass stats every file); {RAISE_WATCHES_HINT}")
    if needed > limit * 0.5:
        return Check("inotify", "warn", f"{needed} folders to watch of max_user_watches {limit} (other programs need watches too): "
                                        f"{RAISE_WATCHES_HINT}")
    return Check("inotify", "ok", f"{needed} folders to watch, max_user_watches {limit}{extra}")


def check_daemon(db: Path) -> Check:
    from .album import live_daemon

    if not db.exists():
        return Check("daemon", "ok", "not running (no database yet)")
    live = live_daemon(db)
    if live is None:
        return Check("daemon", "ok", "not running; start it with `systemctl --user start keepers` or `keepers run`")
    return Check("daemon", "ok", f"running (pid {live[0]}, {live[1]})")


def check_extras() -> list[Check]:
    out = []
    for extra, modules in EXTRAS.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            out.append(Check(f"extra {extra}", "warn",
                             f"not installed ({', '.join(missing)} missing); if you need it, {install_hint(extra)}"))
        else:
            out.append(Check(f"extra {extra}", "ok", f"installed ({', '.join(modules)})"))
    return out


def check_face_runtime() -> Check:
    """Which runtime will run the face models (see daemon/scoring/builtin/mediapipe.py)."""
    if importlib.util.find_spec("ai_edge_litert") is not None:
        return Check("face runtime", "ok", "LiteRT (ai-edge-litert) runs the face models")
    return Check("face runtime", "warn", "OpenCV's DNN module runs the face models, about twice as slow as "
                 f"LiteRT; where a wheel exists for this machine: {shlex.quote(sys.executable)} -m pip install ai-edge-litert")


__all__: list[Any] = ["register", "run"]
