"""Running a selection: plan (reading), apply (one write transaction), export.

``run_selection`` is what the scheduler, the ``reselect`` command and the
CLI call. It recomputes only the moments touched since the last successful
run, unless asked for a full run or the settings changed, and writes a batch
of moments per writer transaction.
"""

from __future__ import annotations

import fcntl
import logging
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from ..config import Config
from ..store.db import open_db
from ..store.writer import StoreWriter
from .apply import (
    Changes, SelectionResult, apply_batch, begin_run, close_run, record_changes, run_counts, settle_run, stray_rows,
)
from .choose import Comparator
from .plan import FullSplit, Plan, plan_run

log = logging.getLogger(__name__)

TRIGGERS = ("start-up", "schedule", "new-photos", "command", "cli")
#: a full run of this many photos or more is planned in a child process while this one
#: writes the batch before (without a comparator: the model lives in this process)
PLAN_PROCESS_PHOTOS = 50_000

#: pick_changes rows written per writer transaction (a first run of a million photos adds ~300 000)
CHANGES_PER_TRANSACTION = 20_000


def run_selection(
    writer: StoreWriter,
    config: Config,
    *,
    comparator: Comparator | None = None,
    trigger: str = "cli",
    full: bool = False,
    export: bool = True,
) -> SelectionResult:
    """Re-pick the album and record the run; returns what it did.

    Raises StoreError when the database cannot be read or written. Export
    problems (an unwritable album folder) are logged, never raised: the picks
    are already committed.
    """
    if export and config.export.xmp:
        from .export import detect_hand_edits

        detect_hand_edits(writer, config)
    started = time.time()
    run_id: int | None = None
    try:
        reader = open_db(writer.path, readonly=True)
        try:
            writer.flush()  # see everything submitted before this run
            scope, batches = plan_run(reader.conn, config, comparator=comparator, started=started, full=full)
            if scope.split is not None and comparator is None and len(scope.split.ids) >= PLAN_PROCESS_PHOTOS:
                batches = planned_in_child(writer.path, config, scope.split) or batches
            run_id = writer.call(lambda db: begin_run(db, scope, trigger))
            changes = Changes()
            for plan in batches:  # one transaction each: the writer serves scoring in between
                writer.call(lambda db, plan=plan: apply_batch(db, plan, config.album, run_id, changes), timeout=300)
            strays = stray_rows(reader.conn) if scope.mode == "full" else ([], [])
            writer.call(lambda db: settle_run(db, config.album, run_id, changes, strays), timeout=300)
            rows = [(run_id, i, "added") for i in sorted(changes.added)] + [(run_id, i, "removed") for i in sorted(changes.removed)]
            for start in range(0, len(rows), CHANGES_PER_TRANSACTION):
                writer.call(lambda db, part=rows[start : start + CHANGES_PER_TRANSACTION]: record_changes(db, part), timeout=300)
            counts = run_counts(reader.conn)
            result = writer.call(lambda db: close_run(db, scope, run_id, trigger, changes, counts))
        finally:
            reader.conn.close()
    except Exception as exc:
        _record_failure(writer, trigger, started, run_id, exc)
        raise
    log.info(
        "selection run %d (%s, %s): %d photos, %d/%d moments recomputed, %d picks (+%d -%d) in %.2f s",
        result.run_id, trigger, result.mode, result.photos, result.moments_recomputed, result.moments,
        result.picks, len(result.added), len(result.removed), result.seconds,
    )
    if export and (config.export.folder is not None or config.export.xmp):
        from .export import export_album

        try:
            found = export_album(writer, config, scope.touched_moments)
        except Exception:  # the album is committed; an export failure must not lose it
            log.exception("album export failed; the picks are saved, the export will be retried at the next run")
            found = 0
        if found:  # ratings set by hand in sidecars keepers had not seen yet: honour them now
            log.info("%d sidecars carry a rating set by hand; re-picking their moments", found)
            return run_selection(writer, config, comparator=comparator, trigger=trigger, export=True)
    return result


def planned_in_child(path: Path, config: Config, split: FullSplit) -> Iterator[Plan] | None:
    """A full run's batches, planned in a child process of their own (reading the database
    on a connection of its own) while this process writes the batch before: the
    planning's arithmetic, most of a run, leaves this process (and its GIL, which the
    daemon's writer and scoring threads need) and runs on another core. The child is a
    fresh interpreter running this keepers' code (not a fork: the daemon has threads and
    maybe a model running); the plans come back pickled through a pipe, whose buffer keeps
    it at most a batch or two ahead.

    Returns None, with a warning, when the child cannot be started or handed its work
    (the caller then plans in this process). Iterating raises RuntimeError when the child
    fails or dies; the run is then recorded as failed and the next one starts over."""
    code = f"import sys; sys.path.insert(0, {str(_CODE_ROOT)!r}); from daemon.album.selection import _plan_child; _plan_child()"
    child: subprocess.Popen[bytes] | None = None
    try:
        child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None
        try:
            fcntl.fcntl(child.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)  # a whole plan fits: no ping-pong
        except OSError:
            pass
        pickle.dump((str(path), config, split), child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.close()
    except Exception as exc:  # no process to plan in (or the work would not pickle): plan here, as a small run does
        log.warning("cannot plan the selection in a process of its own (%s: %s); planning it in this one", type(exc).__name__, exc)
        if child is not None:
            child.kill()
            child.wait()
        return None
    return _child_plans(child)


def _child_plans(child: subprocess.Popen[bytes]) -> Iterator[Plan]:
    """The plans :func:`planned_in_child`'s child writes, as they come; the child is ended after."""
    assert child.stdout is not None
    try:
        while True:
            try:
                kind, value = pickle.load(child.stdout)
            except EOFError:
                raise RuntimeError(f"the process planning the selection ended (exit code {child.wait()}) before its last batch;"
                                   " its error, if any, is on the daemon's stderr") from None
            if kind == "plan":
                yield value
            elif kind == "error":
                raise RuntimeError(f"planning the selection failed in its process: {value}")
            else:
                log.debug("selection planned in a child process (peak RSS %.0f MB)", value)
                return
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()


#: the folder holding the ``daemon`` package: the child runs the code this process runs
_CODE_ROOT = Path(__file__).resolve().parents[2]


def _plan_child() -> None:
    """The child of :func:`planned_in_child`: read (path, config, split) from stdin, plan
    every batch, write each (then a last word) to stdout, pickled."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the plans alone
    try:
        path, config, split = pickle.load(sys.stdin.buffer)
        reader = open_db(path, readonly=True)
        try:
            for plan in split.batches(reader.conn, config):
                pickle.dump(("plan", plan), out, protocol=pickle.HIGHEST_PROTOCOL)
                out.flush()
        finally:
            reader.conn.close()
        pickle.dump(("done", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), out)
    except BrokenPipeError:  # the parent stopped reading (its run failed): nothing to tell it
        return
    except BaseException as exc:  # say why in the parent's run, not only on this process's stderr
        pickle.dump(("error", f"{type(exc).__name__}: {exc}"), out)
    out.flush()


def _record_failure(writer: StoreWriter, trigger: str, started: float, run_id: int | None, exc: BaseException) -> None:
    """Leave a failed run in selection_runs so the dashboard shows what went wrong
    (and the next run, seeing it, recomputes every moment)."""
    text = f"{type(exc).__name__}: {exc}"
    log.error("selection run (%s) failed: %s", trigger, text)
    try:
        if run_id is not None:
            writer.call(lambda db: db.conn.execute(
                "UPDATE selection_runs SET finished = ?, error = ? WHERE id = ?", (time.time(), text, run_id)))
            return
        writer.call(lambda db: db.conn.execute(
            "INSERT INTO selection_runs (trigger, started, finished, error) VALUES (?, ?, ?, ?)", (trigger, started, time.time(), text)))
    except Exception as again:  # the database itself is the problem; the caller gets the first error
        log.error("could not record the failed selection run: %s", again)
