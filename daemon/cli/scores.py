"""`keepers scores`: every photo with its status, scores and composite."""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from .common import add_config_args, add_json_arg, config_from_args, db_path_from_args, fail, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scores",
        help="list every photo with its scores",
        description="One record per photo: path, status (scored/error/deleted/pending), error, each score, the composite "
                    "and which score groups it covers, and which enabled models have not scored it yet.",
    )
    add_config_args(parser)
    add_json_arg(parser)
    parser.add_argument("--status", choices=("scored", "error", "deleted", "pending"), help="only photos with this status")
    parser.set_defaults(func=show_scores)


def enabled_models(args: argparse.Namespace) -> dict[str, str]:
    """Enabled learned models -> task, from the config and the catalog (empty when unavailable)."""
    try:
        from ..hub.catalog import load_catalog

        config = config_from_args(args, check_folders=False)
        catalog = load_catalog(config)
    except Exception:  # noqa: BLE001 - listing scores must work even with a broken catalog
        return {}
    return {name: catalog[name].task for name in config.models.enabled if name in catalog}


def records(conn: sqlite3.Connection, models: dict[str, str], status: str | None = None) -> Iterator[dict[str, Any]]:
    from ..scoring.backfill import missing_models

    missing = missing_models(conn, models) if models else {}
    scores: dict[int, tuple[dict[str, float], dict[str, float]]] = {}
    for image_id, model, raw, normalised in conn.execute("SELECT image_id, model, raw, normalised FROM scores ORDER BY image_id, model"):
        norm, raws = scores.setdefault(image_id, ({}, {}))
        norm[model] = normalised
        raws[model] = raw
    query = ("SELECT id, path, status, error, composite, coverage, groups_json, taken_at, camera, phash, width, height "
             "FROM images" + (" WHERE status = ?" if status else "") + " ORDER BY path")
    for row in conn.execute(query, (status,) if status else ()):
        image_id, path, st, error, comp, coverage, groups, taken, camera, phash, width, height = row
        norm, raws = scores.get(image_id, ({}, {}))
        yield {
            "id": image_id, "path": path, "status": st, "error": error,
            "scores": norm, "raw": raws, "composite": comp,
            "coverage": json.loads(coverage) if coverage else [],
            "groups": json.loads(groups) if groups else {},
            "missing_models": missing.get(image_id, []) if st == "scored" else [],
            "taken_at": taken, "camera": camera, "phash": phash, "width": width, "height": height,
        }


def show_scores(args: argparse.Namespace) -> int:
    db = db_path_from_args(args)
    if not Path(db).exists():
        return fail(f"no database at {db}; run `keepers run` first (or pass --db FILE)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = list(records(conn, enabled_models(args), args.status))
    finally:
        conn.close()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no photos recorded yet")
        return 0
    names = sorted({n for r in rows for n in r["scores"]})
    header = ["composite", "status", *names, "path"]
    print("  ".join(f"{h[:10]:>10}" for h in header[:-1]) + "  path")
    for r in rows:
        cells = [_num(r["composite"]), f"{r['status']:>10}", *(_num(r["scores"].get(n)) for n in names)]
        tail = r["path"] + (f"  ({r['error']})" if r["error"] else "")
        print("  ".join(cells) + "  " + tail)
    return 0


def _num(value: float | None) -> str:
    return f"{value:>10.3f}" if value is not None else f"{'-':>10}"
