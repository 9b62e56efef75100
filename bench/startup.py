"""Time to READY with and without heavy learned models configured.

Starts ``keepers run`` as a subprocess (as systemd would, with NOTIFY_SOCKET
set to a datagram socket this script listens on) and measures the seconds
from spawn to ``READY=1``. Scenario "built-ins" enables no learned model;
scenario "heavy" enables a MUSIQ-signature TF SavedModel and a full-width
ResNet-50 torch checkpoint (random weights, ~100 MB) from local sources.
Models load in the background, so READY should not wait for them: the
target is heavy / built-ins <= 1.2.

    .venv/bin/python bench/startup.py [--runs 3] [--photos 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
KEEPERS = [sys.executable, "-c", "import sys; from daemon.cli import main; sys.exit(main())"]


def make_photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(0, 256, size=(1, 1, 3))
        img = np.clip(base + rng.normal(0, 30, size=(480, 640, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"photo_{i:03d}.jpg", quality=90)


def build_heavy_models(folder: Path) -> dict[str, Path]:
    """A MUSIQ-signature SavedModel and a full ResNet-50 state dict (built in child
    processes so this script's own start-up stays light)."""
    folder.mkdir(parents=True, exist_ok=True)
    musiq, resnet = folder / "musiq", folder / "ava_resnet50.pt"
    code_tf = (
        "import sys, tensorflow as tf\n"
        "class M(tf.Module):\n"
        "    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name='image_bytes_tensor')])\n"
        "    def serve(self, image_bytes_tensor):\n"
        "        im = tf.io.decode_image(image_bytes_tensor, channels=3, expand_animations=False)\n"
        "        return {'output_0': tf.reshape(tf.reduce_mean(tf.cast(im, tf.float32)) / 2.55, [1])}\n"
        "m = M(); tf.saved_model.save(m, sys.argv[1], signatures={'serving_default': m.serve})\n"
    )
    code_torch = (
        "import sys, torch\nfrom daemon.scoring.models.resnet import resnet50\n"
        "torch.manual_seed(0); torch.save(resnet50(1).state_dict(), sys.argv[1])\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if not musiq.exists():
        subprocess.run([sys.executable, "-c", code_tf, str(musiq)], check=True, env=env, cwd=ROOT)
    if not resnet.exists():
        subprocess.run([sys.executable, "-c", code_torch, str(resnet)], check=True, env=env, cwd=ROOT)
    return {"musiq-spaq": musiq, "ava-resnet50": resnet}


def write_config(path: Path, photos: Path, db: Path, heavy: dict[str, Path] | None) -> None:
    cfg: dict = {"photos": [str(photos)], "database": str(db), "log_level": "warning"}
    if heavy:
        cfg["models"] = {"enabled": sorted(heavy), "threads": 1,
                         "sources": {name: [{"kind": "local", "path": str(p)}] for name, p in heavy.items()}}
    path.write_text(yaml.safe_dump(cfg))


def time_to_ready(config: Path, state: Path, timeout: float) -> tuple[float, str]:
    """Seconds from spawn to READY=1 (or the daemon row saying ready), and how it was seen."""
    sock_path = state / "notify.sock"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.05)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "KEEPERS_STATE_DIR": str(state), "KEEPERS_CACHE": str(state / "cache"),
           "KEEPERS_CONFIG": str(config), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("JOURNAL_STREAM", None)
    db = yaml.safe_load(config.read_text())["database"]
    started = time.monotonic()
    proc = subprocess.Popen([*KEEPERS, "run", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    how, took = "timeout", float("nan")
    try:
        while time.monotonic() - started < timeout:
            try:
                if b"READY=1" in sock.recv(4096).split(b"\n"):
                    how, took = "sd_notify", time.monotonic() - started
                    break
            except socket.timeout:
                pass
            if proc.poll() is not None:
                how = f"exited {proc.returncode}: {proc.stderr.read().decode(errors='replace')[-400:] if proc.stderr else ''}"
                break
            if _daemon_ready(db):
                how, took = "daemon row", time.monotonic() - started
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sock.close()
    return took, how


def _daemon_ready(db: str) -> bool:
    if not Path(db).exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            row = conn.execute("SELECT state FROM daemon WHERE id = 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return bool(row and row[0] == "ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keepers-bench-") as tmp:
        work = Path(tmp)
        make_photos(work / "photos", args.photos)
        print("building the heavy models (TF SavedModel, ResNet-50 checkpoint)...", flush=True)
        heavy = build_heavy_models(work / "models")
        results: dict[str, list[float]] = {"built-ins": [], "heavy": []}
        # the two set-ups take turns, so this machine's drifting speed (runs here spread
        # over 1.5-2.3 s) weighs on both alike instead of on whichever ran second
        for run in range(args.runs):
            for name, models in (("built-ins", None), ("heavy", heavy)):
                state = work / f"state-{name}-{run}"
                state.mkdir()
                config = state / "keepers.yaml"
                write_config(config, work / "photos", state / "keepers.db", models)
                took, how = time_to_ready(config, state, args.timeout)
                print(f"  {name:9s} run {run + 1}: {took:6.2f} s to READY ({how})", flush=True)
                results[name].append(took)
        base, loaded = statistics.median(results["built-ins"]), statistics.median(results["heavy"])
        print(f"median time to READY: built-ins {base:.2f} s, heavy models configured {loaded:.2f} s")
        ratio = loaded / base if base and base == base else float("nan")
        print(f"ratio heavy / built-ins: {ratio:.2f} (target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
