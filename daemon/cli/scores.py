"""`keepers scores`: every photo with its status, scores and composite."""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from .common import add_config_args, add_json_arg, config_from_args, db_path_from_args, fail, print_json_list


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
    """One record per photo in path order, read as a stream: a photo's scores come
    joined to its row, so nothing is held beyond the photo being written."""
    per_photo = {name: task for name, task in models.items() if task != "comparator"}
    query = (
        "SELECT i.id, i.path, i.status, i.error, i.composite, i.coverage, i.groups_json, i.taken_at, i.camera, i.phash,"
        " i.width, i.height, (SELECT json_group_array(e.model) FROM embeddings e WHERE e.image_id = i.id),"
        " s.model, s.raw, s.normalised FROM images i LEFT JOIN scores s ON s.image_id = i.id"
        + (" WHERE i.status = ?" if status else "") + " ORDER BY i.path, s.model"
    )
    for _, rows in itertools.groupby(conn.execute(query, (status,) if status else ()), key=lambda r: r[0]):
        norm: dict[str, float] = {}
        raws: dict[str, float] = {}
        for row in rows:
            if row[13] is not None:
                norm[row[13]] = row[15]
                raws[row[13]] = row[14]
        image_id, path, st, error, comp, coverage, groups, taken, camera, phash, width, height, embedded = row[:13]
        missing: list[str] = []
        if st == "scored" and per_photo:
            have_vectors = set(json.loads(embedded)) if embedded else set()
            missing = [n for n, task in per_photo.items() if n not in (have_vectors if task == "embedding" else norm)]
        yield {
            "id": image_id, "path": path, "status": st, "error": error,
            "scores": norm, "raw": raws, "composite": comp,
            "coverage": json.loads(coverage) if coverage else [],
            "groups": json.loads(groups) if groups else {},
            "missing_models": missing,
            "taken_at": taken, "camera": camera, "phash": phash, "width": width, "height": height,
        }


def show_scores(args: argparse.Namespace) -> int:
    db = db_path_from_args(args)
    if not Path(db).exists():
        return fail(f"no database at {db}; run `keepers run` first (or pass --db FILE)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = records(conn, enabled_models(args), args.status)
        if args.json:
            print_json_list(rows)
            return 0
        names = [r[0] for r in conn.execute("SELECT DISTINCT model FROM scores ORDER BY model")]
        header = ["composite", "status", *names, "path"]
        count = 0
        for r in rows:
            if count == 0:
                print("  ".join(f"{h[:10]:>10}" for h in header[:-1]) + "  path")
            count += 1
            cells = [_num(r["composite"]), f"{r['status']:>10}", *(_num(r["scores"].get(n)) for n in names)]
            tail = r["path"] + (f"  ({r['error']})" if r["error"] else "")
            print("  ".join(cells) + "  " + tail)
        if count == 0:
            print("no photos recorded yet")
        return 0
    finally:
        conn.close()


def _num(value: float | None) -> str:
    return f"{value:>10.3f}" if value is not None else f"{'-':>10}"
