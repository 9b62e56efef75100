"""Album selection on a 100 000-photo library.

Builds a synthetic database (bursts of near-identical hashes, moments spread
over folders), then prints the time of a full reselection (target ≤ 15 s) and
of an incremental one after 100 new photos land (target ≤ 5 % of the full run).

    .venv/bin/python bench/reselect.py [--photos 100000] [--new 100]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.album import run_selection  # noqa: E402
from daemon.album.synthetic import insert_photo, library_photos  # noqa: E402
from daemon.config import Config  # noqa: E402
from daemon.store.writer import StoreWriter  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        writer = StoreWriter(Path(tmp) / "keepers.db")
        photos = library_photos(args.photos + args.new, seed=11)
        old, new = photos[: args.photos], photos[args.photos :]
        t = time.perf_counter()
        scored_earlier = time.time() - 3600  # the library was scored before this session's runs
        writer.call(lambda db: [insert_photo(db, p, now=scored_earlier) for p in old], timeout=None)
        print(f"built {args.photos} photos in {time.perf_counter() - t:.1f} s")

        full = run_selection(writer, config, trigger="cli", full=True)
        print(f"full reselection:        {full.seconds:7.3f} s  ({full.moments} moments, {full.clusters} clusters, "
              f"{full.picks} picks)  target <= 15 s")
        quiet = run_selection(writer, config, trigger="cli")
        print(f"incremental, no change:  {quiet.seconds:7.3f} s  ({quiet.moments_recomputed} moments recomputed)")

        writer.call(lambda db: [insert_photo(db, p) for p in new])
        inc = run_selection(writer, config, trigger="new-photos")
        share = 100 * inc.seconds / full.seconds if full.seconds else 0.0
        print(f"after {len(new)} new photos:  {inc.seconds:7.3f} s  ({inc.moments_recomputed} moments recomputed, "
              f"+{len(inc.added)} -{len(inc.removed)})  = {share:.1f} % of the full run, target <= 5 %")
        again = run_selection(writer, config, trigger="cli", full=True)
        print(f"full reselection again:  {again.seconds:7.3f} s  (+{len(again.added)} -{len(again.removed)}: "
              f"{'incremental and full agree' if not again.added and not again.removed else 'MISMATCH'})")
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
