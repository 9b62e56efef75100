"""`keepers demo DIR`: write a sample set of photos to try keepers on."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import fail


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="write a sample set of photos (bursts of sharp, blurred, noisy, dark and shifted frames)",
        description="Write scikit-image's bundled photos as bursts with EXIF capture times, so keepers can be tried "
                    "without your own photos: `keepers demo DIR` then `keepers run --photos DIR`.",
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="where to write the photos (created)")
    parser.add_argument("--count", type=int, default=None, help="at most this many photos (default: the whole set)")
    parser.set_defaults(func=demo)


def demo(args: argparse.Namespace) -> int:
    from ..imaging.demo import write_demo_set

    if args.count is not None and args.count < 1:
        return fail("--count must be at least 1")
    try:
        paths = write_demo_set(args.folder.expanduser(), count=args.count)
    except OSError as exc:
        return fail(f"cannot write the demo set to {args.folder}: {exc.strerror or exc}")
    print(f"wrote {len(paths)} photos to {args.folder}; now: keepers run --photos {args.folder}")
    return 0
