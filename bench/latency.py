"""Latency from a photo's file being closed to its scored row being visible.

Starts ``keepers run`` on a temp folder (settle window from the shipped config,
1.0 s, unless --settle), writes photos one at a time (open, write, close),
and polls the database with a read-only connection until each one's row is
``scored``. Prints p50 and p95; target p95 <= settle window + 0.5 s.

    .venv/bin/python bench/latency.py [--photos 40] [--settle 1.0] [--gap 0.3]
"""

from __future__ import annotations

import argparse
import io
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _daemon import running_daemon  # noqa: E402



def jpeg_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    pixels = np.clip(np.stack([x // 3, y // 2, (x + y) // 5], axis=-1) + rng.integers(-20, 20, size=(480, 640, 3)),
                     0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between photos")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keepers-latency-") as tmp:
        tmp_path = Path(tmp)
        photos, db = tmp_path / "photos", tmp_path / "state" / "keepers.db"
        photos.mkdir()
        config_text = (f"settle_seconds: {args.settle}\nrescan_minutes: 0\n"
                       "album:\n  reselect_minutes: 0\n  reselect_after_new: 0\n")
        latencies: list[float] = []
        with running_daemon(tmp_path, photos, db, config_text) as daemon:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            payloads = [jpeg_bytes(i) for i in range(args.photos)]
            for i, payload in enumerate(payloads):
                path = photos / f"IMG_{i:04d}.jpg"
                with open(path, "wb") as fh:
                    fh.write(payload)
                closed = time.monotonic()
                deadline = closed + 30
                while time.monotonic() < deadline:
                    row = conn.execute("SELECT status FROM images WHERE path = ?", (str(path),)).fetchone()
                    if row and row[0] == "scored":
                        latencies.append(time.monotonic() - closed)
                        break
                    time.sleep(0.005)
                time.sleep(args.gap)
            conn.close()
    if len(latencies) < args.photos:
        print(f"only {len(latencies)} of {args.photos} photos were scored within 30 s each")
        return 1
    q = statistics.quantiles(latencies, n=100)
    print(f"{len(latencies)} photos of 640x480 (close -> scored row visible), settle window {args.settle:.1f} s, "
          f"daemon exit code {daemon.exit_code}")
    print(f"p50 {statistics.median(latencies):.3f} s, p95 {q[94]:.3f} s, max {max(latencies):.3f} s "
          f"(target p95 <= {args.settle + 0.5:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
