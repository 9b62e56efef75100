"""A burst of small photos dropped into a watched folder at once.

Starts ``keepers run`` as a subprocess on a temp folder and database, waits for
READY, then moves N pre-made small JPEGs into the folder as fast as the file
system allows (one rename each, so the watcher sees N events). Prints the
daemon's peak RSS growth over its idle RSS (target <= 150 MB: the queue is
bounded, so memory must not grow with the burst) and the time until every
photo has a scored row.

    .venv/bin/python bench/burst.py [--photos 10000] [--workers 0] [--scorers default]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402

TARGET_MB = 150.0


def make_photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:96, 0:128]
    base = np.stack([x * 2, y * 2, (x + y)], axis=-1).astype(np.int16)
    out = []
    for i in range(count):
        pixels = np.clip(base + rng.integers(-30, 30, size=base.shape), 0, 255).astype(np.uint8)
        path = folder / f"IMG_{i:05d}.jpg"
        Image.fromarray(pixels).save(path, "JPEG", quality=80)
        out.append(path)
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def scored(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM images WHERE status = 'scored'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=0, help="scoring threads (0 = one per core)")
    parser.add_argument("--scorers", default="default", help="'default' (the shipped list) or a comma list, e.g. sharpness,exposure")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keepers-burst-") as tmp:
        tmp_path = Path(tmp)
        staging, photos, db = tmp_path / "staging", tmp_path / "photos", tmp_path / "state" / "keepers.db"
        photos.mkdir()
        t = time.monotonic()
        files = make_photos(staging, args.photos)
        print(f"made {len(files)} photos of {files[0].stat().st_size // 1024} KiB in {time.monotonic() - t:.1f} s")
        scorers = "" if args.scorers == "default" else f"scorers: [{args.scorers}]\n"
        config_text = (f"workers: {args.workers}\nrescan_minutes: 0\n{scorers}"
                       "album:\n  reselect_minutes: 0\n  reselect_after_new: 0\n")
        with running_daemon(tmp_path, photos, db, config_text) as daemon:
            proc = daemon.proc
            time.sleep(2.0)
            idle = rss_mb(proc.pid)
            peak = idle
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_mb(proc.pid))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            for f in files:
                os.rename(f, photos / f.name)
            dropped = time.monotonic() - started
            deadline = started + args.timeout
            while scored(db) < args.photos and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.5)
            drained = time.monotonic() - started
            done.set()
            sampler.join()
            count = scored(db)
        print(f"dropped {args.photos} photos in {dropped:.1f} s; {count} scored after {drained:.1f} s "
              f"({count / drained:.0f} photos/s); daemon exit code {daemon.exit_code}")
        print(f"RSS idle {idle:.0f} MB, peak {peak:.0f} MB: peak growth {peak - idle:.0f} MB (target <= {TARGET_MB:.0f} MB)")
        if count < args.photos:
            print("NOT DRAINED: see the daemon log:\n" + daemon.log_tail())
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
