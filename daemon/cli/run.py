"""`keepers run`: score the photo folders, once (`--once`) or as the watching daemon."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from typing import Any

from .. import paths
from ..config import Config
from ..errors import ConfigError, KeepersError, StoreError
from ..logsetup import setup_logging
from .common import add_config_args, config_from_args, fail

log = logging.getLogger(__name__)

#: added and removed picks `run --once` names; the rest are counted
ALBUM_CHANGES_SHOWN = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="score the photo folders (watching them, or once with --once)",
        description=(
            "Score every photo in the configured folders into the database. Without --once keepers keeps "
            "running: it watches the folders, scores new photos as they arrive and re-picks the album."
        ),
    )
    add_config_args(parser, photos=True)
    parser.add_argument("--once", action="store_true", help="scan, score what is new or changed, print a summary and exit")
    parser.add_argument("--tui", action="store_true", help="show the dashboard in front of the daemon (quitting it stops the daemon)")
    parser.add_argument("--no-album", action="store_true", help="with --once: do not re-pick the album after scoring")
    parser.add_argument("--offline", action="store_true", help="use cached models only; make no network call")
    parser.add_argument(
        "--demo-if-missing", action="store_true",
        help="when no --photos is given and the photo folder does not exist, write the demo set and use it",
    )
    parser.set_defaults(func=run)


def resolve_config(args: argparse.Namespace, notices: list[str] | None = None) -> Config:
    """The config for this run; with --demo-if-missing a missing default folder becomes the demo set.

    What the user should know (the demo set is used; their --photos were saved
    as their config) is printed to stderr and appended to ``notices``.
    """
    notices = notices if notices is not None else []
    given = bool(getattr(args, "photos", None))
    try:
        config = config_from_args(args, check_folders=True)
    except ConfigError:
        if not (getattr(args, "demo_if_missing", False) and not given):
            raise
        config = config_from_args(args, check_folders=False)
        missing = [str(f.path) for f in config.photos if not f.path.is_dir()]
        from ..imaging.demo import write_demo_set

        folder = paths.demo_dir()
        written = write_demo_set(folder)
        _notice(notices, f"photo folder {', '.join(missing) or '(none configured)'} does not exist; "
                         f"using the demo set in {folder} ({len(written)} photos). Point `photos` in your config "
                         f"at your pictures, or use --photos DIR.")
        args.photos = [folder]
        return config_from_args(args, check_folders=True)
    if given and config.source_file is None and not getattr(args, "config", None):
        _remember_photos(config, notices)
    return config


def _remember_photos(config: Config, notices: list[str]) -> None:
    """First run with --photos and no config file: write one, so the folders stick."""
    from ..config import write_user_config

    folders = [f.path for f in config.photos]
    try:
        written = write_user_config(folders)
    except FileExistsError:
        return
    except OSError as exc:
        _notice(notices, f"could not save your photo folders as your config ({exc}); "
                         f"put `photos: [{', '.join(map(str, folders))}]` in {paths.user_config_file()} yourself")
        return
    _notice(notices, f"saved your photo folder{'s' if len(folders) > 1 else ''} ({', '.join(map(str, folders))}) "
                     f"in a new config, {written}: later runs, `keepers doctor` and the service use "
                     f"{'them' if len(folders) > 1 else 'it'} without --photos")


def _notice(notices: list[str], text: str) -> None:
    notices.append(text)
    print(f"keepers: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "tui", False):
        return _run_with_dashboard(args)
    config = resolve_config(args)
    if args.once:
        return run_once(config, progress=sys.stderr.isatty(), album=not getattr(args, "no_album", False))
    try:
        from ..service import serve
    except ImportError as exc:  # part of the package: never a reason to score once and exit 0 instead
        raise KeepersError(f"the daemon cannot be loaded ({type(exc).__name__}: {exc}); this keepers installation is "
                           "broken: reinstall it (`make`, or pip install .)") from exc
    if not getattr(args, "verbose", 0):
        setup_logging(config.log_level)  # the daemon logs what its config asks (-v overrides)
    return int(serve(config, args) or 0)


def _run_with_dashboard(args: argparse.Namespace) -> int:
    from tui.launch import daemon_argv, require_terminal, run_with_daemon

    require_terminal()
    given = argparse.Namespace(**vars(args))  # as the user gave it: the daemon resolves a demo set itself
    notices: list[str] = []
    # the config is checked here, before the dashboard takes the screen: a missing folder is an
    # error on the terminal at once, not a daemon that dies behind a dashboard
    config = resolve_config(args, notices)
    db_path = config.database_path
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return run_with_daemon(daemon_argv(given, db_path), db_path, notices=notices)


def pick_album(config: Config, *, out: Any = None, comparator: Any = None) -> int:
    """Re-pick the album after `run --once` (near-ties to ``comparator`` when one is ready, as
    in the daemon) and say what changed; returns the exit code."""
    from ..album import run_selection
    from ..store.writer import StoreWriter

    out = out or sys.stdout
    writer = StoreWriter(config.database_path)
    try:
        result = run_selection(writer, config, comparator=comparator, trigger="cli")
        names = dict(writer.db.conn.execute(
            "SELECT id, path FROM images WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(result.added + result.removed)),),
        ).fetchall())
    except StoreError as exc:
        return fail(f"the photos are scored, but the album could not be re-picked: {exc}; try `keepers reselect`")
    finally:
        writer.close()
    print(f"album: {result.picks} picks, +{len(result.added)} -{len(result.removed)}"
          f" ({result.moments_recomputed} of {result.moments} moments recomputed)", file=out)
    for sign, ids in (("+", result.added), ("-", result.removed)):
        shown = [names.get(i, f"#{i}") for i in ids[:ALBUM_CHANGES_SHOWN]]
        for path in shown:
            print(f"  {sign} {path}", file=out)
        if len(ids) > len(shown):
            print(f"  {sign} … and {len(ids) - len(shown)} more (`keepers picks` lists them all)", file=out)
    return 0


def run_once(config: Config, *, progress: bool = False, out: Any = None, album: bool = False) -> int:
    """Scan every folder, score what is new or changed, wait for it, print a summary;
    with ``album``, then re-pick the album."""
    from ..scoring.pipeline import Pipeline
    from ..scoring.scan import rescore_outdated, scan_folders
    from ..store.writer import StoreWriter
    from .once_models import OnceModels

    out = out or sys.stdout
    config.database_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with StoreWriter(config.database_path) as writer:
        pipeline = Pipeline(config, writer)
        models = OnceModels(config, writer, pipeline)
        if not models.load():  # every enabled learned model, before the first photo: scores as the daemon's
            models.close()
            return fail("models.strict is set and not every enabled model loaded (see above); nothing was scored", 3)
        bar = _ScoreBar(pipeline) if progress else None
        pipeline.start()
        try:
            summary = scan_folders(config, writer, pipeline, progress=progress)
            writer.flush()  # the scan's error rows and deletions, before the outdated rows are read
            refreshed = rescore_outdated(writer, pipeline)
            if bar is not None:
                bar.start(summary.queued + refreshed)
            pipeline.drain()
        except BaseException:
            models.close()
            raise
        finally:
            pipeline.stop(drain=True, timeout=30)
            if bar is not None:
                bar.close()
        models.finish()  # photos scored before without a model get it, as the daemon's backfill does
        writer.flush()
    seconds = time.monotonic() - started
    scored = pipeline.scored_total
    rate = scored / seconds if seconds > 0 else 0.0
    print(
        f"found {summary.found}, new {summary.new}, changed {summary.changed}, unchanged {summary.unchanged}"
        f"{f' ({refreshed} scored again: measured by an older version)' if refreshed else ''}, "
        f"deleted {summary.deleted}, errors {summary.errors + pipeline.errors_total}; "
        f"scored {scored} in {seconds:.1f} s ({rate:.1f} photos/s) into {config.database_path}",
        file=out,
    )
    for root in summary.skipped_roots:
        print(f"warning: {root} looks unmounted or empty; nothing in it was marked deleted", file=out)
    return pick_album(config, out=out, comparator=models.comparator()) if album else 0


class _ScoreBar:
    """A tqdm bar over photos committed, fed by the pipeline's on_committed hook."""

    def __init__(self, pipeline: Any):
        from tqdm import tqdm

        self._lock = threading.Lock()
        self._bar = tqdm(desc="scoring", unit=" photos", total=0, leave=False)
        pipeline.on_committed(self._advance)

    def start(self, total: int) -> None:
        with self._lock:
            self._bar.total = total
            self._bar.refresh()

    def _advance(self, ids: list[int]) -> None:
        with self._lock:
            self._bar.update(len(ids))

    def close(self) -> None:
        self._bar.close()


__all__ = ["register", "run", "run_once", "resolve_config", "pick_album"]
