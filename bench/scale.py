"""A million photos: every figure of a large library in one run.

Builds a library of ``--photos`` rows directly in the database (paths in
``--folders`` folders of a year/event tree, capture times in bursts inside
moments, near-duplicate hashes per burst, a score from every built-in scorer
and a learned one), then prints, each against its goal:

- a full reselection (the first: every moment, cluster and pick written), the
  same again on the unchanged library (everything read, nothing to write), and
  an incremental one after 100 new photos: time, peak RSS, and the longest a
  small write from another connection waited meanwhile (what the scoring path
  would wait);
- ``keepers scores --json`` and ``keepers picks --json`` to /dev/null: time, peak RSS;
- the database's size per photo, and a VACUUM-free week of churn: seven days
  that each rescore 1/7 of 10 % of the photos, each followed by the daily
  incremental reselection; the size after it;
- the dashboard's first paint and refresh tick per screen (bench/tui.py on this database);
- with ``--files``: the photo files on disk (small ones: what is measured is
  stat and bookkeeping, not decoding), then ``keepers run`` on them: time to
  READY, inotify watches needed against the limit, the catch-up scan of the
  unchanged files (time, peak RSS) and the idle RSS afterwards.

Every measured step runs in a process of its own, so its peak RSS is its own.

    .venv/bin/python bench/scale.py [--photos 1000000] [--folders 20000] [--files] [--data DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.scoring.composite import composite  # noqa: E402
from daemon.store.writer import StoreWriter  # noqa: E402

PYTHON = sys.executable
KEEPERS = [PYTHON, "-c", "import sys; from daemon.cli import main; sys.exit(main())"]
SCORERS = (("musiq-spaq", "aesthetic"), ("sharpness", "technical"), ("exposure", "technical"), ("contrast", "technical"),
           ("noise", "technical"), ("brisque", "technical"), ("eyes_open", "portrait"), ("smile", "portrait"))
WEIGHTS = {"aesthetic": 0.5, "technical": 0.2, "portrait": 0.3}
FILE_BYTES = b"\xff\xd8\xff\xe0 keepers scale \xff\xd9"
MB = 1024 * 1024


# -- building the library -------------------------------------------------------------------------------

def library_rows(photos: int, folders: int, root: str, seed: int = 16):
    """Yield (image row, score rows) for ``photos`` photos spread over ``folders`` folders of
    ``root/YYYY/YYYY-MM-DD event N``: 1-4 moments a folder, bursts of 1-6 near-duplicates."""
    rng = random.Random(seed)
    per_folder = max(1, photos // folders)
    now = time.time() - 86400
    start = 1_300_000_000.0
    n = 0
    for f in range(folders):
        if n >= photos:
            break
        count = per_folder if f < folders - 1 else photos - n
        clock = start + f * 86400 * 0.9 + rng.uniform(0, 3600)
        day = time.gmtime(clock)
        folder = f"{root}/{day.tm_year}/{day.tm_year}-{day.tm_mon:02d}-{day.tm_mday:02d} event {f}"
        left = count
        while left > 0:
            clock += rng.uniform(900, 7200)  # a new moment
            for _ in range(rng.randint(2, 8)):
                base = rng.getrandbits(64)
                clock += rng.uniform(20, 90)
                for _ in range(rng.randint(1, 6)):
                    if left <= 0:
                        break
                    n += 1
                    left -= 1
                    clock += rng.uniform(0.2, 1.5)
                    phash = base
                    for bit in rng.sample(range(64), rng.randint(0, 5)):
                        phash ^= 1 << bit
                    groups = {"aesthetic": rng.random(), "technical": rng.random(), "portrait": rng.random()}
                    comp = composite(groups, WEIGHTS)
                    status = "error" if n % 200 == 0 else "scored"
                    yield (
                        (n, f"{folder}/IMG_{n:07d}.jpg", root, len(FILE_BYTES), int(clock * 1e9), 6000, 4000, clock, "exif",
                         f"{phash:016x}", status, "cannot decode: truncated file" if status == "error" else None,
                         comp.value if status == "scored" else None, json.dumps(list(comp.coverage)), json.dumps(groups),
                         now, now, now),
                        [(n, model, task, v, v, "1", now) for (model, task), v in ((s, rng.random()) for s in SCORERS)]
                        if status == "scored" else [],
                    )
                if left <= 0:
                    break


IMAGE_SQL = ("INSERT INTO images (id, path, root, size, mtime_ns, width, height, taken_at, taken_source, phash, status, error,"
             " composite, coverage, groups_json, first_seen, scored_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
SCORE_SQL = "INSERT OR REPLACE INTO scores (image_id, model, task, raw, normalised, model_version, scored_at) VALUES (?,?,?,?,?,?,?)"


def build(db: Path, photos: int, folders: int, root: Path, files: bool) -> None:
    StoreWriter(db).close()  # the schema, as the daemon makes it
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    made: set[str] = set()
    images: list[tuple] = []
    scores: list[tuple] = []

    def flush() -> None:
        conn.executemany(IMAGE_SQL, images)
        conn.executemany(SCORE_SQL, scores)
        conn.commit()
        images.clear()
        scores.clear()

    for image, score_rows in library_rows(photos, folders, str(root)):
        images.append(image)
        scores.extend(score_rows)
        if files:
            path = image[1]
            folder = path.rsplit("/", 1)[0]
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            with open(path, "wb") as fh:
                fh.write(FILE_BYTES)
            os.utime(path, ns=(image[4], image[4]))
        if len(images) >= 20_000:
            flush()
    flush()
    conn.execute("ANALYZE")
    conn.close()


def add_photos(db: Path, count: int, *, rescore: bool = False, files: bool = False, seed: int = 99) -> float:
    """New photos in a fresh folder (or, with ``rescore``, ``count`` existing photos rescored); returns seconds."""
    rng = random.Random(seed)
    started = time.perf_counter()
    conn = sqlite3.connect(db, timeout=60)
    now = time.time()
    if rescore:
        top = conn.execute("SELECT max(id) FROM images").fetchone()[0]
        ids = rng.sample(range(1, top + 1), count)
        for image_id in ids:
            groups = {"aesthetic": rng.random(), "technical": rng.random(), "portrait": rng.random()}
            comp = composite(groups, WEIGHTS)
            conn.execute("UPDATE images SET composite = ?, groups_json = ?, scored_at = ?, updated_at = ? WHERE id = ? AND status = 'scored'",
                         (comp.value, json.dumps(groups), now, now, image_id))
            conn.executemany(SCORE_SQL, [(image_id, m, t, v, v, "2", now) for (m, t), v in ((s, rng.random()) for s in SCORERS)])
    else:
        root, = conn.execute("SELECT root FROM images LIMIT 1").fetchone()
        top = conn.execute("SELECT max(id) FROM images").fetchone()[0]
        clock = 1_900_000_000.0
        for k in range(count):
            clock += rng.uniform(0.5, 40)
            groups = {"aesthetic": rng.random(), "technical": rng.random(), "portrait": rng.random()}
            comp = composite(groups, WEIGHTS)
            image_id = top + 1 + k
            path = f"{root}/new/IMG_{image_id:07d}.jpg"
            if files:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                Path(path).write_bytes(FILE_BYTES)
                os.utime(path, ns=(int(clock * 1e9),) * 2)
            conn.execute(IMAGE_SQL, (image_id, path, root, len(FILE_BYTES), int(clock * 1e9),
                                     6000, 4000, clock, "exif", f"{rng.getrandbits(64):016x}", "scored", None, comp.value,
                                     json.dumps(list(comp.coverage)), json.dumps(groups), now, now, now))
            conn.executemany(SCORE_SQL, [(image_id, m, t, v, v, "1", now) for (m, t), v in ((s, rng.random()) for s in SCORERS)])
    conn.commit()
    conn.close()
    return time.perf_counter() - started


# -- measuring --------------------------------------------------------------------------------------------

def measured(cmd: list[str], *, stdout: int | None = subprocess.DEVNULL, env: dict | None = None) -> tuple[float, float, str]:
    """Run ``cmd``; returns (seconds, its peak RSS in MB, its stderr tail). Its CPU seconds
    (user + system, less sensitive than wall time to a shared machine) go on ``measured.cpu``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, env=env or {**os.environ, "PYTHONPATH": str(ROOT)})
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    measured.cpu = usage.ru_utime + usage.ru_stime  # type: ignore[attr-defined]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[-4:])} failed ({proc.returncode}): {err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, err[-2000:]


class WriteProbe:
    """Every 50 ms, one small write transaction from another connection (what the
    scoring path's commits need); records the longest wait."""

    def __init__(self, db: Path):
        self.db = db
        self.worst = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "WriteProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.db, timeout=600)
        while not self._stop.wait(0.05):
            t = time.perf_counter()
            conn.execute("INSERT INTO telemetry (at, stage, count, total_seconds, max_seconds) VALUES (?, 'scale-probe', 1, 0, 0)",
                         (time.time(),))
            conn.commit()
            self.worst = max(self.worst, time.perf_counter() - t)
            self.count += 1
        conn.execute("DELETE FROM telemetry WHERE stage = 'scale-probe'")
        conn.commit()
        conn.close()


RESELECT = ("import json, sys; from pathlib import Path; from daemon.album import run_selection; from daemon.config import Config;"
            " from daemon.store.writer import StoreWriter; w = StoreWriter(Path(sys.argv[1]));"
            " r = run_selection(w, Config(), trigger='cli', full=sys.argv[2] == 'full', export=False); w.close();"
            " print(json.dumps(r.as_dict()), file=sys.stderr)")


def reselect(db: Path, mode: str) -> tuple[float, float, float, dict]:
    with WriteProbe(db) as probe:
        seconds, rss, err = measured([PYTHON, "-c", RESELECT, str(db), mode])
    result = json.loads(err.strip().splitlines()[-1])
    result["cpu"] = measured.cpu  # type: ignore[attr-defined]
    return seconds, rss, probe.worst, result


def verdict(ok: bool) -> str:
    return "ok" if ok else "OVER"


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def scored_by_this_version(db: Path, config_file: Path) -> int:
    """Migrate the database to this version's schema and mark the library's scores and hashes as made by this keepers' built-in scorers and hash
    (the rows are generated with version "1"), so that a restart finds the photos unchanged and
    current, with nothing to score again: else it would queue the whole library for an upgrade's
    rescoring, which is not a catch-up scan nor idle. Returns how many score rows it marked."""
    from daemon.config import load_config
    from daemon.imaging.hashing import PHASH_VERSION
    from daemon.scoring.base import outputs
    from daemon.scoring.builtin import builtin_scorers

    from daemon.store.db import open_db

    open_db(db).conn.close()  # migrated now, as a restart finds it, not inside the measured start
    scorers = builtin_scorers(load_config(config_file, check_folders=False))
    current = [(str(s.version), name) for s in scorers if getattr(s, "version", None) for name in outputs(s)]
    conn = sqlite3.connect(db)
    conn.execute("UPDATE images SET phash_version = ? WHERE phash IS NOT NULL", (PHASH_VERSION,))
    marked = 0
    for version, name in current:
        marked += conn.execute("UPDATE scores SET model_version = ? WHERE model = ? AND model_version IS NOT ?",
                               (version, name, version)).rowcount
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return marked


def run_daemon(data: Path, db: Path, photos_root: Path) -> None:
    """keepers run on the files: READY, watches, catch-up scan, idle RSS."""
    import yaml

    from daemon.watch.mounts import count_directories, inotify_limit

    t = time.perf_counter()
    dirs = count_directories(photos_root)
    limit = inotify_limit()
    print(f"inotify watches needed: {dirs:,} (counted in {time.perf_counter() - t:.1f} s); max_user_watches {limit:,}"
          f"  {'enough' if limit and dirs <= limit else 'TOO FEW: the folders that do not fit are polled'}")
    state = data / "state"
    state.mkdir(exist_ok=True)
    config = data / "keepers.yaml"
    config.write_text(yaml.safe_dump({"photos": [str(photos_root)], "database": str(db), "log_level": "info",
                                      "album": {"reselect_minutes": 0, "reselect_after_new": 0}}))
    t = time.perf_counter()
    marked = scored_by_this_version(db, config)
    print(f"database migrated, scores marked as made by this version's scorers: {marked:,} ({time.perf_counter() - t:.0f} s, not measured)")
    sock_path = data / "notify.sock"
    sock_path.unlink(missing_ok=True)  # left by a run that was stopped
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(600)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(sock_path), "KEEPERS_STATE_DIR": str(state),
           "KEEPERS_CACHE": str(data / "cache"), "KEEPERS_CONFIG": str(config)}
    log_path = data / "daemon.log"
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([*KEEPERS, "run", "--config", str(config)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            ready = time.perf_counter() - started
            print(f"start to READY (1 daemon, {dirs:,} folders): {ready:6.1f} s  goal ≤ 10 s  {verdict(ready <= 10)}")
            peak = 0.0
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline and proc.poll() is None:
                if "catch-up scan: found" in log_path.read_text(errors="replace"):
                    break
                peak = max(peak, _rss(proc.pid, "VmHWM"))
                time.sleep(0.5)
            scan = time.perf_counter() - started
            peak = max(peak, _rss(proc.pid, "VmHWM"))
            line = re.search(r"catch-up scan: .*", log_path.read_text(errors="replace"))
            print(f"catch-up scan of the unchanged files: {scan:6.1f} s after start, peak RSS {peak:5.0f} MB"
                  f"  goal ≤ 60 s and ≤ 500 MB  {verdict(scan <= 60 and peak <= 500)}  ({line.group(0) if line else 'no summary logged'})")
            time.sleep(20)
            idle = _rss(proc.pid, "VmRSS")
            print(f"idle RSS with the library loaded: {idle:5.0f} MB  goal ≤ 300 MB  {verdict(idle <= 300)}")
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            sock.close()


def _rss(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--folders", type=int, default=20_000)
    parser.add_argument("--files", action="store_true", help="also write the files and measure the daemon's start and catch-up scan")
    parser.add_argument("--data", type=Path, help="where the database (and files) go (default: a temporary folder, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep --data's library (database as built, files) for the next run")
    parser.add_argument("--skip", default="", help="comma-separated steps to leave out: reselect,listings,churn,tui,daemon")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    tmp = None
    if args.data is None:
        tmp = tempfile.mkdtemp(prefix="keepers-scale-")
        data = Path(tmp)
    else:
        data = args.data
        data.mkdir(parents=True, exist_ok=True)
    library = data / "library.db"  # as built; each run works on a copy, so runs compare (a link to another --data's works)
    db = data / "keepers.db"
    photos_root = data / "photos"
    print(f"{args.photos:,} photos in {args.folders:,} folders; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
          " (a shared machine: figures are as measured)")
    try:
        if not library.exists():
            t = time.perf_counter()
            build(library, args.photos, args.folders, photos_root, args.files)
            print(f"built the library in {time.perf_counter() - t:.0f} s{' (rows and files)' if args.files else ' (rows)'}")
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(library, db)
        size = db_bytes(db)
        print(f"database: {size / MB:,.0f} MB, {size / args.photos:,.0f} bytes a photo")

        if "reselect" not in skip:
            StoreWriter(db).close()  # the schema's migrations, as the daemon's start makes them: not the run's to pay
            full_s, full_rss, stall, res = reselect(db, "full")
            full_run = res["seconds"]
            print(f"full reselection:    {full_run:7.1f} s ({full_s:.1f} s with the process start, {res['cpu']:.0f} s CPU), peak RSS {full_rss:5.0f} MB, longest write wait meanwhile {stall:5.2f} s"
                  f"  ({res['moments']:,} moments, {res['clusters']:,} clusters, {res['picks']:,} picks)"
                  f"  goal ≤ 60 s, ≤ 500 MB  {verdict(full_s <= 60 and full_rss <= 500)}")
            again_s, again_rss, stall, res = reselect(db, "full")
            print(f"full reselection again, nothing changed: {res['seconds']:5.1f} s ({again_s:.1f} s with the process start,"
                  f" {res['cpu']:.0f} s CPU), peak RSS {again_rss:5.0f} MB, longest write wait meanwhile {stall:5.2f} s"
                  f"  (+{res['added']} -{res['removed']} picks)  goal ≤ 60 s  {verdict(again_s <= 60)}")
            add_photos(db, 100, files=args.files)
            inc_s, inc_rss, stall, res = reselect(db, "incremental")
            inc_run = res["seconds"]
            print(f"incremental after 100 new photos: {inc_run:5.2f} s ({inc_s:.1f} s with the process start), peak RSS"
                  f" {inc_rss:4.0f} MB ({res['moments_recomputed']} moments recomputed) = {100 * inc_run / full_run:.1f} %"
                  f" of the full run  goal ≤ 1 %  {verdict(inc_run <= full_run / 100)}")

        if "listings" not in skip:
            for name in ("scores", "picks"):
                seconds, rss, _ = measured([*KEEPERS, name, "--json", "--db", str(db)])
                print(f"keepers {name} --json > /dev/null: {seconds:6.1f} s ({measured.cpu:.0f} s CPU), peak RSS {rss:5.0f} MB"  # type: ignore[attr-defined]
                      f"  goal: constant memory  {verdict(rss <= 300)}")

        if "churn" not in skip:
            before = db_bytes(db)
            per_day = args.photos // 10 // 7
            writes = selects = 0.0
            for day in range(7):
                writes += add_photos(db, per_day, rescore=True, seed=1000 + day)
                selects += reselect(db, "incremental")[0]
            after = db_bytes(db)
            conn = sqlite3.connect(db)
            free = conn.execute("PRAGMA freelist_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
            conn.close()
            print(f"a week of churn (7 x {per_day:,} photos rescored, no VACUUM): writes {writes:.0f} s, daily reselections"
                  f" {selects:.0f} s in all; database {before / MB:,.0f} → {after / MB:,.0f} MB"
                  f" ({after / args.photos:,.0f} bytes a photo, {free / MB:.0f} MB free pages)")

        if "tui" not in skip:
            out = subprocess.run([PYTHON, str(ROOT / "bench" / "tui.py"), "--db", str(db), "--rounds", "5"], cwd=ROOT,
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            print("dashboard (bench/tui.py on this database):")
            for line in (out.stdout + (out.stderr[-1500:] if out.returncode else "")).splitlines():
                print("   " + line)

        if args.files and "daemon" not in skip:
            conn = sqlite3.connect(db)
            root = Path(conn.execute("SELECT root FROM images LIMIT 1").fetchone()[0])  # where the library was built
            conn.close()
            run_daemon(data, db, root)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), *(() if args.keep else (library,))):
                p.unlink(missing_ok=True)
            if not args.keep:
                shutil.rmtree(photos_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
