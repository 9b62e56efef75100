"""The kernel refusing an inotify watch (ENOSPC from inotify_add_watch) while
keepers' own count says the tree fits: other programs hold watches too. The
folder is polled, not left unwatched, and the log, the heartbeat and the
dashboard say so.

The refusal is real: the daemon runs in a user namespace of its own
(``unshare -U -r``) whose inotify watch limit (/proc/sys/user/max_inotify_watches,
per user namespace since Linux 5.11) is set below the tree's folder count, so
the kernel answers ENOSPC while /proc/sys/fs/inotify/max_user_watches, which
keepers reads, stays the host's. Where namespaces cannot be made the tests
skip and say why."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.store import StoreReader
from tui.queries import overview
from fixtures_daemon import Daemon, query, small_photo, wait_for, write_config

LIMIT = 3  # watches the namespace allows; the trees below have more folders


def in_namespace(limit: int) -> list[str]:
    """A command prefix: run the rest in a new user namespace whose inotify watch limit is ``limit``."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command here: cannot make a user namespace with a low inotify limit")
    prefix = ["unshare", "-U", "-r", "sh", "-c", f'echo {limit} > /proc/sys/user/max_inotify_watches && exec "$0" "$@"']
    probe = subprocess.run([*prefix, "cat", "/proc/sys/user/max_inotify_watches"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != str(limit):
        pytest.skip(f"cannot set an inotify limit in a user namespace here ({probe.stderr.strip() or probe.returncode}); "
                    "needs user namespaces and Linux 5.11 or later")
    return prefix


def tree(photos: Path, folders: int) -> list[Path]:
    """``folders`` subfolders, each with one photo."""
    return [small_photo(photos / f"2024-{i + 1:02d}" / f"a{i}.jpg", 40 + i) for i in range(folders)]


WATCHER = r"""
import json, sys, time
from pathlib import Path
from daemon.config import PhotoFolder, load_config
from daemon.scoring.scan import Matcher
from daemon.store.writer import StoreWriter
from daemon.watch.settle import Settler
from daemon.watch.watcher import EventRouter, FolderWatcher

photos, db = Path(sys.argv[1]), Path(sys.argv[2])
got = []
settler = Settler(lambda path, root: got.append(str(path)) or True, settle_seconds=0.1, tick_seconds=0.05).start()
with StoreWriter(db) as writer:
    writer.start()
    router = EventRouter([photos], Matcher(load_config(check_folders=False)), settler, writer, lambda f, r: None)
    watcher = FolderWatcher([PhotoFolder(photos, "auto")], "auto", router, lambda root, why: None,
                            over_limit_polling_seconds=0.2)
    try:
        watched = watcher.start()[0]
        time.sleep(0.5)  # the polling observer's first snapshot
        new = photos / "2024-03" / "later.jpg"
        new.write_bytes(Path(sys.argv[3]).read_bytes())
        deadline = time.monotonic() + 20
        while str(new) not in got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
        settler.stop()
print(json.dumps({"mode": watched.mode, "over_limit": watched.over_limit, "why": watched.why,
                  "directories": watched.directories, "delivered": got}))
"""


def test_a_folder_the_kernel_refuses_a_watch_for_is_polled_and_its_new_photos_arrive(tmp_path: Path, db_path: Path) -> None:
    prefix = in_namespace(LIMIT)
    photos = tmp_path / "photos"
    tree(photos, 5)  # 6 folders with the root: keepers' count fits the host's limit, the namespace's does not
    sample = small_photo(tmp_path / "sample.jpg", 99)
    script = tmp_path / "watch_it.py"
    script.write_text(WATCHER)
    db_path.parent.mkdir(parents=True)
    out = subprocess.run([*prefix, sys.executable, str(script), str(photos), str(db_path), str(sample)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["mode"], got["over_limit"], got["directories"]) == ("polling", True, 0), got
    assert got["why"].startswith("the kernel refused an inotify watch for 3 of its 6 folders (No space left on device"), got
    assert str(photos / "2024-03" / "later.jpg") in got["delivered"], (got, out.stderr[-3000:])
    assert "polling it every 0 s instead" in out.stderr and "sysctl fs.inotify.max_user_watches" in out.stderr, out.stderr[-3000:]


def test_the_daemon_says_a_refused_folder_is_polled_and_scores_what_is_in_it(tmp_path: Path) -> None:
    prefix = in_namespace(LIMIT)
    photos = tmp_path / "photos"
    present = tree(photos, 5)
    config = write_config(tmp_path / "keepers.yaml", settle=0.2, workers=1)
    daemon = Daemon(photos, tmp_path / "state" / "keepers.db", config, log=tmp_path / "daemon.log", wrapper=prefix)
    try:
        daemon.start()
        log = daemon.log_text()
        assert f"cannot watch {photos} with inotify: the kernel refused an inotify watch" in log, log
        beat = wait_for(lambda: query(daemon.db, "SELECT watched_folders FROM daemon WHERE id = 1"), 10)
        folders = json.loads(beat[0][0])
        assert [(f["path"], f["mode"], f["over_limit"]) for f in folders] == [(str(photos), "polling", True)], folders
        assert "No space left on device" in folders[0]["why"]
        shown = overview(StoreReader(daemon.db)).daemon  # what the dashboard's Overview reads
        assert shown is not None and [(f.path, f.mode, f.over_limit) for f in shown.watched_folders] == [(str(photos), "polling", True)]
        # the catch-up scan does not depend on watches: what is in the folder is scored
        assert wait_for(lambda: query(daemon.db, "SELECT count(*) FROM images WHERE status = 'scored'")[0][0] == len(present), 60), \
            daemon.log_text()
    finally:
        code = daemon.terminate()
    assert code == 0, daemon.log_text()
