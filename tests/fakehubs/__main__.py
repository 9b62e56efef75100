"""Run fake hubs as a separate process (for end-to-end tests that start the daemon).

    python -m tests.fakehubs [--build-musiq DIR] \\
        [--tfhub PATH=FOLDER ...] [--kaggle HANDLE=FOLDER ...] \\
        [--hf REPO:FILE=LOCALFILE ...] [--https PATH=LOCALFILE ...] [--kaggle-port PORT]

Prints one JSON line on stdout once every fake listens, e.g.
``{"tfhub": "http://127.0.0.1:41234", "kaggle": ..., "hf": ..., "https": ..., "pid": 123}``,
then serves until SIGTERM/SIGINT. Give the daemon ``KAGGLE_API_ENVIRONMENT=LOCALHOST``
with ``HTTP_PROXY=<kaggle>`` and ``NO_PROXY=127.0.0.1`` (KaggleFake.client_env), and ``HF_ENDPOINT=<hf>``, and point ``models.sources`` at the tfhub/https URLs.
Faults are switched over HTTP: ``POST <url>/__fake/fault`` with JSON
``{"kind": "status", "status": 503}`` (fields of fakehubs.server.Fault),
``POST <url>/__fake/clear``, ``GET <url>/__fake/stats``.
Run from the repository root (``tests`` is then importable).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

if __package__ in (None, ""):  # `python tests/fakehubs/__main__.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "fakehubs"

from .builders import build_musiq_savedmodel  # noqa: E402
from .hubs import FileHub, HFFake, KaggleFake, TFHubFake  # noqa: E402


def _pairs(values: list[str], sep: str = "=") -> list[tuple[str, str]]:
    out = []
    for value in values:
        key, _, path = value.partition(sep)
        if not key or not path:
            raise SystemExit(f"expected KEY{sep}PATH, got {value!r}")
        out.append((key, path))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakehubs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-musiq", type=Path, metavar="DIR", help="build a MUSIQ-signature SavedModel into DIR first (if missing)")
    parser.add_argument("--tfhub", action="append", default=[], metavar="PATH=FOLDER")
    parser.add_argument("--kaggle", action="append", default=[], metavar="HANDLE=FOLDER")
    parser.add_argument("--hf", action="append", default=[], metavar="REPO:FILE=LOCALFILE")
    parser.add_argument("--https", action="append", default=[], metavar="PATH=LOCALFILE")
    parser.add_argument("--kaggle-port", type=int, default=0, help="the Kaggle fake's port (default: a free port)")
    args = parser.parse_args(argv)

    if args.build_musiq and not (args.build_musiq / "saved_model.pb").exists():
        build_musiq_savedmodel(args.build_musiq)
    tfhub, kaggle, hf, https = TFHubFake(), KaggleFake(args.kaggle_port), HFFake(), FileHub()
    for path, folder in _pairs(args.tfhub):
        tfhub.add_model(path, Path(folder))
    for handle, folder in _pairs(args.kaggle):
        kaggle.add_model(handle, Path(folder))
    for key, file in _pairs(args.hf):
        repo, _, name = key.partition(":")
        hf.add_file(repo, name, Path(file).read_bytes())
    for path, file in _pairs(args.https):
        https.add(path, Path(file).read_bytes())
    fakes = {"tfhub": tfhub, "kaggle": kaggle, "hf": hf, "https": https}
    for fake in fakes.values():
        fake.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    import os

    print(json.dumps({**{k: f.url for k, f in fakes.items()}, "pid": os.getpid()}), flush=True)
    stop.wait()
    for fake in fakes.values():
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
