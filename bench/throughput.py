"""Scoring throughput on generated 12-megapixel JPEGs, in one run.

Prints three rates and two ratios:

- decode-only: ``decode_image`` at the configured size on the pipeline's worker
  count (the limit: keepers cannot score faster than it decodes);
- keepers: the real pipeline (scan, decode, hashes, every built-in scorer, the
  store writer) on a fresh database;
- naive: what a script without keepers' care does per photo: a full-resolution
  decode, the `brisque` package's own feature code (its ``score()`` fails
  under numpy 2, so its ``calculate_brisque_features`` at both scales plus the
  shipped SVM) on the full image, and the same OpenCV measures (Laplacian
  variance, exposure, Haar faces) on the full image.

Targets: keepers >= 0.5 x decode-only and >= 10 x naive. Beside the rates' ratio it prints
the CPU time a photo of decode-only and of keepers (this process's, all its threads): on a
machine shared with other work the rates swing with the load, the CPU time much less. A
round of each lasts about a second, so ``--rounds`` of them run in turns and the medians
are the figures.

    .venv/bin/python bench/throughput.py [--photos 48] [--rounds 3] [--naive 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from statistics import median
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.config import load_config  # noqa: E402
from daemon.imaging.decode import decode_image  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from fixtures_photos import twelve_megapixel_jpegs  # noqa: E402  (the photos tests/test_cli_scores.py scores)


def decode_only(paths: list[Path], size: int, workers: int) -> tuple[float, float]:
    """Photos/s, and this process's CPU seconds a photo."""
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda p: decode_image(p, size=size), paths))
    return len(paths) / (time.perf_counter() - started), (time.process_time() - cpu) / len(paths)


def keepers_rate(folder: Path, db: Path) -> tuple[float, int, float, float]:
    """Photos/s of the pipeline once started (the scorers' one-off model and
    cascade loading is reported apart: a daemon pays it once), and its CPU seconds a photo."""
    from daemon.scoring.pipeline import Pipeline
    from daemon.scoring.scan import scan_folders
    from daemon.store.writer import StoreWriter

    config = load_config(None, photos=[folder], database=db)
    t0 = time.perf_counter()
    with StoreWriter(db) as writer:
        pipeline = Pipeline(config, writer).start()
        pipeline.wait_ready()  # each worker has loaded its cascades and the hashing code
        startup = time.perf_counter() - t0
        started, cpu = time.perf_counter(), time.process_time()
        scan_folders(config, writer, pipeline)
        pipeline.drain()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        pipeline.stop()
    return pipeline.scored_total / seconds, pipeline.scored_total, startup, cpu / max(1, pipeline.scored_total)


def stage_costs(db: Path) -> list[tuple[str, float]]:
    """Milliseconds per photo in each pipeline stage, from the telemetry the pipeline
    recorded, summed as the dashboard's Activity screen sums it."""
    from daemon.store import StoreReader
    from tui.queries.service import activity_view

    with StoreReader(db) as reader:
        stages = activity_view(reader).stages
    return [(t.stage, t.mean_seconds * 1000.0) for t in stages]


def naive_one(path: Path) -> float:
    import cv2
    from brisque import BRISQUE

    rgb = np.asarray(Image.open(path).convert("RGB"))  # full resolution
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    measure = BRISQUE(url=False)
    g = grey.astype(np.float64) / 255.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = measure.calculate_brisque_features(g, kernel_size=7, sigma=7 / 6)
        half = cv2.resize(g, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        feats = np.concatenate((feats, measure.calculate_brisque_features(half, kernel_size=7, sigma=7 / 6)))
        # its features are 1-element arrays, which its own scaling cannot float() under numpy 2
        quality = measure.calculate_image_quality_score([float(np.asarray(f).ravel()[0]) for f in feats])
    cv2.Laplacian(grey, cv2.CV_64F).var()
    float(grey.mean())
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5)
    return float(quality)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=48, help="12 MP JPEGs to generate (default 48: enough for a steady rate)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="decode-only and keepers in turns this many times; the ratios' median is the figure (default 3)")
    parser.add_argument("--naive", type=int, default=2, help="photos for the naive reference (it is slow; default 2)")
    args = parser.parse_args()
    config = load_config(None, check_folders=False)
    with tempfile.TemporaryDirectory(prefix="keepers-bench-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        t = time.perf_counter()
        paths = twelve_megapixel_jpegs(folder, args.photos)
        print(f"generated {len(paths)} 4000x3000 JPEGs in {time.perf_counter() - t:.1f} s; "
              f"{config.worker_count} workers, decode size {config.decode_size}; load {os.getloadavg()[0]:.1f}")
        # a round lasts about a second, so one round's ratio moves with whatever else the
        # machine does meanwhile: the rounds alternate the two, and the median is the figure
        ratios, cpu_ratios = [], []
        for r in range(max(1, args.rounds)):
            decode_rate, decode_cpu = decode_only(paths, config.decode_size, config.worker_count)
            db = Path(tmp) / f"bench-{r}.db"
            keepers, scored, startup, keepers_cpu = keepers_rate(folder, db)
            ratios.append(keepers / decode_rate)
            cpu_ratios.append(decode_cpu / keepers_cpu)
            print(f"round {r + 1}: decode-only {decode_rate:6.2f} photos/s, keepers {keepers:6.2f} photos/s ({scored} scored;"
                  f" start-up {startup:.2f} s, paid once): {ratios[-1]:.2f}; CPU time a photo {decode_cpu * 1000:.1f} ms"
                  f" and {keepers_cpu * 1000:.1f} ms: {cpu_ratios[-1]:.2f}")
        costs = stage_costs(db)
        print("  per photo in each stage, last round (ms, wall time inside a worker; the workers share the cores):")
        print("  " + ", ".join(f"{stage} {ms:.1f}" for stage, ms in costs))
        started = time.perf_counter()
        for p in paths[: args.naive]:
            naive_one(p)
        naive = args.naive / (time.perf_counter() - started)
        print(f"naive reference:  {naive:6.3f} photos/s (full decode + brisque package features + OpenCV on the full image)")
    print(f"keepers / decode-only = {median(ratios):.2f} (target >= 0.5; median of {len(ratios)} rounds, {min(ratios):.2f}-{max(ratios):.2f})")
    # on a machine shared with other work the rates swing with its load; CPU time a photo
    # does not, so this is the ratio the rates approach when the cores are the bench's own
    print(f"  in CPU time a photo: {median(cpu_ratios):.2f} (median; {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})")
    print(f"keepers / naive       = {keepers / naive:.1f} (target >= 10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
