"""Queries about the photo library: paged, sorted and filtered images, one
image's every score, the album's picks and the photos beside each pick."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daemon.store import StoreReader

from .common import PAGE_SIZE, PHOTO_SORTS, parse_json
from .service import last_selection_run


# --------------------------------------------------------------------------- photos


@dataclass(frozen=True)
class PhotoRow:
    id: int
    path: str
    status: str
    composite: float | None
    groups: dict[str, float]
    coverage: tuple[str, ...]
    error: str | None
    taken_at: float | None
    manual: str | None = None
    picked: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PhotoQuery:
    sort: str = "composite"
    status: str = "all"  # one of PHOTO_STATUS_FILTERS; "all" leaves out deleted photos
    text: str = ""  # substring of the path
    offset: int = 0
    limit: int = PAGE_SIZE


@dataclass(frozen=True)
class PhotoPage:
    query: PhotoQuery
    total: int
    rows: tuple[PhotoRow, ...]


def _photo_where(q: PhotoQuery) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if q.status == "all":
        clauses.append("status IN ('pending', 'scored', 'error')")
    else:
        clauses.append("status = ?")
        params.append(q.status)
    if q.text:
        clauses.append("instr(lower(path), ?) > 0")
        params.append(q.text.lower())
    return " AND ".join(clauses), params


def photo_page(reader: StoreReader, q: PhotoQuery) -> PhotoPage:
    """One page of images in the order and filter of ``q``, and how many match."""
    where, params = _photo_where(q)
    order = PHOTO_SORTS.get(q.sort, PHOTO_SORTS["composite"])
    total = int(reader.scalar(f"SELECT count(*) FROM images WHERE {where}", tuple(params)) or 0)
    rows = reader.query(
        f"SELECT i.id, i.path, i.status, i.composite, i.groups_json, i.coverage, i.error, i.taken_at,"
        f" (SELECT choice FROM manual_choices m WHERE m.image_id = i.id) AS manual,"
        f" EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id) AS picked"
        f" FROM images i WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, q.limit, q.offset),
    )
    return PhotoPage(
        query=q,
        total=total,
        rows=tuple(
            PhotoRow(
                id=r["id"],
                path=r["path"],
                status=r["status"],
                composite=r["composite"],
                groups=parse_json(r["groups_json"], {}),
                coverage=tuple(parse_json(r["coverage"], [])),
                error=r["error"],
                taken_at=r["taken_at"],
                manual=r["manual"],
                picked=bool(r["picked"]),
            )
            for r in rows
        ),
    )


@dataclass(frozen=True)
class ScoreRow:
    model: str
    task: str
    raw: float | None
    normalised: float | None
    model_version: str | None


@dataclass(frozen=True)
class PhotoDetail:
    photo: PhotoRow
    width: int | None
    height: int | None
    size: int | None
    camera: str | None
    taken_source: str | None
    moment: int | None
    cluster: int | None
    picked: bool
    scores: tuple[ScoreRow, ...]


def photo_detail(reader: StoreReader, image_id: int) -> PhotoDetail | None:
    """Every stored fact about one image, with all its scores; None when it is gone."""
    rows = reader.query(
        "SELECT i.*, (SELECT choice FROM manual_choices m WHERE m.image_id = i.id) AS manual,"
        " EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id) AS picked FROM images i WHERE i.id = ?",
        (image_id,),
    )
    if not rows:
        return None
    r = rows[0]
    scores = tuple(
        ScoreRow(**s)
        for s in reader.query(
            "SELECT model, task, raw, normalised, model_version FROM scores WHERE image_id = ? ORDER BY task, model",
            (image_id,),
        )
    )
    photo = PhotoRow(
        id=r["id"],
        path=r["path"],
        status=r["status"],
        composite=r["composite"],
        groups=parse_json(r["groups_json"], {}),
        coverage=tuple(parse_json(r["coverage"], [])),
        error=r["error"],
        taken_at=r["taken_at"],
        manual=r["manual"],
        picked=bool(r["picked"]),
    )
    return PhotoDetail(
        photo=photo,
        width=r["width"],
        height=r["height"],
        size=r["size"],
        camera=r["camera"],
        taken_source=r["taken_source"],
        moment=r["moment"],
        cluster=r["cluster"],
        picked=bool(r["picked"]),
        scores=scores,
    )


# --------------------------------------------------------------------------- album


@dataclass(frozen=True)
class PickRow:
    image_id: int
    path: str
    moment: int | None
    cluster: int | None
    rank: int | None
    composite: float | None
    reason: dict[str, Any]
    manual: str | None
    taken_at: float | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def decided_by(self) -> str:
        value = self.reason.get("decided_by")
        return str(value) if value is not None else ""


@dataclass(frozen=True)
class Sibling:
    image_id: int
    path: str
    composite: float | None
    status: str
    manual: str | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class AlbumView:
    run: SelectionRun | None
    total_picks: int
    picks: tuple[PickRow, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    offset: int = 0


def _reason(text: str | None) -> dict[str, Any]:
    value = parse_json(text, {})
    return value if isinstance(value, dict) else {"reason": text}


def album_view(reader: StoreReader, offset: int = 0, limit: int = PAGE_SIZE, changes_limit: int = 50) -> AlbumView:
    """A page of the album in the order the photos were taken, and what the last run changed.

    Moments follow each other by time (a moment's id is a row id: moment 10 may
    be older than moment 1); a photo without a capture time goes by its file time.
    """
    run = last_selection_run(reader)
    rows = reader.query(
        "SELECT p.image_id, i.path, p.moment, p.cluster, p.rank, p.composite, p.reason,"
        " coalesce(i.taken_at, i.mtime_ns / 1e9) AS taken_at,"
        " (SELECT choice FROM manual_choices m WHERE m.image_id = p.image_id) AS manual"
        " FROM picks p JOIN images i ON i.id = p.image_id"
        " ORDER BY coalesce(i.taken_at, i.mtime_ns / 1e9), p.moment, p.cluster, p.rank, p.image_id LIMIT ? OFFSET ?",
        (limit, offset),
    )
    picks = tuple(
        PickRow(
            image_id=r["image_id"],
            path=r["path"],
            moment=r["moment"],
            cluster=r["cluster"],
            rank=r["rank"],
            composite=r["composite"],
            reason=_reason(r["reason"]),
            manual=r["manual"],
            taken_at=r["taken_at"],
        )
        for r in rows
    )
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if run is not None:
        added, removed = (
            tuple(
                r["path"]
                for r in reader.query(
                    "SELECT coalesce(i.path, '#' || c.image_id) AS path FROM pick_changes c LEFT JOIN images i ON i.id = c.image_id"
                    " WHERE c.run_id = ? AND c.change = ? ORDER BY c.image_id LIMIT ?",
                    (run.id, change, changes_limit),
                )
            )
            for change in ("added", "removed")
        )
    return AlbumView(
        run=run,
        total_picks=int(reader.scalar("SELECT count(*) FROM picks") or 0),
        picks=picks,
        added=added,
        removed=removed,
        offset=offset,
    )


def cluster_siblings(reader: StoreReader, image_id: int, limit: int = 50) -> tuple[Sibling, ...]:
    """The photos of the pick's moment and cluster that were not picked, best first."""
    rows = reader.query(
        "SELECT i.id AS image_id, i.path, i.composite, i.status,"
        " (SELECT choice FROM manual_choices m WHERE m.image_id = i.id) AS manual"
        " FROM images me JOIN images i ON i.moment = me.moment AND i.cluster = me.cluster"
        " WHERE me.id = ? AND i.id != me.id AND i.status != 'deleted'"
        " AND NOT EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id)"
        " ORDER BY i.composite DESC, i.id LIMIT ?",
        (image_id, limit),
    )
    return tuple(Sibling(**r) for r in rows)
