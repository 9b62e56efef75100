"""How much a broken download costs: bytes the mirror sent ÷ the file's size.

Serves a file from the HTTPS fake hub on 127.0.0.1, drops the connection
half-way through the body once, and lets keepers' https source fetch it
(it retries and resumes with a Range request). Prints the ratio for a few
file sizes; the target is ≤ 1.05 (a restart from zero would be ~1.5).

    .venv/bin/python bench/resume.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TARGET = 1.05


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KEEPERS_CACHE"] = str(Path(tmp) / "cache")
        os.environ["KEEPERS_CONFIG"] = str(Path(tmp) / "absent.yaml")
        from daemon.hub import ModelHub
        from fakehubs import FileHub
        from fakehubs.builders import random_blob, sha256_hex
        from fakehubs.fixtures import fast_config

        worst = 0.0
        print(f"{'file size':>12} {'sent':>12} {'sent/size':>10} {'requests':>9} {'seconds':>8}")
        for i, size in enumerate((1_000_003, 8_000_009, 30_000_001)):  # not chunk-aligned: the worst case
            blob = random_blob(size, seed=i)
            with FileHub() as mirror:
                url = mirror.add(f"/model-{i}.bin", blob)
                mirror.reset_mid_body(times=1)
                config = fast_config(sources={"ava-resnet50": [{"kind": "https", "url": url, "sha256": sha256_hex(blob)}]})
                started = time.monotonic()
                fetched = ModelHub(config).fetch("ava-resnet50")
                seconds = time.monotonic() - started
                assert fetched.path.read_bytes() == blob, "the resumed file differs from the original"
                ratio = mirror.bytes_sent / size
                worst = max(worst, ratio)
                print(f"{size:>12,} {mirror.bytes_sent:>12,} {ratio:>10.4f} {mirror.count:>9} {seconds:>8.2f}")
                fetched.path.unlink()
                from daemon.hub.cache import HubCache

                HubCache(config.cache_path).forget("ava-resnet50")
        verdict = "meets" if worst <= TARGET else "MISSES"
        print(f"worst bytes transferred / file size = {worst:.4f} ({verdict} the target of {TARGET})")
        return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
