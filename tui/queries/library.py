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
class SearchMemo:
    """What a path search found, and the store's change number when it looked: while that
    number stands, the same search has the same matches, so a refresh re-reads the page's
    rows by id instead of every path in the library."""

    query: PhotoQuery
    changes: int
    total: int
    ids: tuple[int, ...]


@dataclass(frozen=True)
class PhotoPage:
    query: PhotoQuery
    total: int
    rows: tuple[PhotoRow, ...]
    #: for a path search, what to hand the next photo_page of the same query
    search: SearchMemo | None = None


#: the statuses the "all" filter shows (a deleted photo only under its own filter)
LISTED_STATUSES = ("pending", "scored", "error")
_SELECT_PHOTOS = (
    "SELECT i.id, i.path, i.status, i.composite, i.groups_json, i.coverage, i.error, i.taken_at,"
    " (SELECT choice FROM manual_choices m WHERE m.image_id = i.id) AS manual,"
    " EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id) AS picked FROM images i"
)


def _in(statuses: tuple[str, ...]) -> str:
    return f"({', '.join(repr(s) for s in statuses)})"


def _searched(reader: StoreReader, q: PhotoQuery, order: str) -> tuple[int, list[dict[str, Any]]]:
    """A search for text in the path: every row is looked at, for the count and the page."""
    statuses = LISTED_STATUSES if q.status == "all" else (q.status,)
    where = f"status IN {_in(statuses)} AND instr(lower(path), ?) > 0"
    text = q.text.lower()
    total = int(reader.scalar(f"SELECT count(*) FROM images WHERE {where}", (text,)) or 0)
    # walking the order's index reaches the page after about (offset + limit) * library / total rows,
    # each read out of order; when the matches are fewer than ten times that, reading the table in
    # its own order and sorting the matches is quicker (1.1 s against 5.4 s for 100 of 1 000 000)
    scan = "" if total >= 10 * (q.offset + q.limit) else " NOT INDEXED"
    return total, reader.query(f"{_SELECT_PHOTOS}{scan} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?", (text, q.limit, q.offset))


def _by_ids(reader: StoreReader, ids: tuple[int, ...]) -> list[dict[str, Any]]:
    """The rows of ``ids``, in that order."""
    if not ids:
        return []
    found = {r["id"]: r for r in reader.query(f"{_SELECT_PHOTOS} WHERE i.id IN ({', '.join('?' * len(ids))})", ids)}
    return [found[i] for i in ids if i in found]


def _of_status(reader: StoreReader, status: str, order: str, offset: int, limit: int, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Rows ``offset``.. of one status in ``order``, by the cheaper of two ways: its own rows
    through the status index, sorted (about as many steps as it has rows), or the order's
    index walked past the other statuses' rows (about ``(offset + limit) * library / its rows``)."""
    have, library = counts.get(status, 0), sum(counts.values())
    if have * have <= (offset + limit) * library:
        return reader.query(f"{_SELECT_PHOTOS} INDEXED BY images_status WHERE status = ? ORDER BY {order} LIMIT ? OFFSET ?",
                            (status, limit, offset))
    # "+status": not the status index (whose statistics may say every photo has the same one)
    return reader.query(f"{_SELECT_PHOTOS} WHERE +status = ? ORDER BY {order} LIMIT ? OFFSET ?", (status, limit, offset))


def _listed(reader: StoreReader, q: PhotoQuery, order: str, counts: dict[str, int]) -> list[dict[str, Any]]:
    """The page of an unsearched listing, cut from the store's exact per-status counts: a
    status at a time when the order (or the filter) puts one status's rows together, else
    the order's index walked past the deleted photos. Never more than a page's worth of
    rows is sorted, however large the library."""
    if q.status != "all" or q.sort == "status":
        statuses = (q.status,) if q.status != "all" else tuple(sorted(LISTED_STATUSES))
        within = PHOTO_SORTS["composite"] if q.sort == "status" else order  # "status, composite DESC" inside one status
        rows: list[dict[str, Any]] = []
        skip = q.offset
        for status in statuses:
            have = counts.get(status, 0)
            if skip >= have:
                skip -= have
                continue
            rows += _of_status(reader, status, within, skip, q.limit - len(rows), counts)
            skip = 0
            if len(rows) >= q.limit:
                break
        return rows
    return reader.query(f"{_SELECT_PHOTOS} WHERE +status IN {_in(LISTED_STATUSES)} ORDER BY {order} LIMIT ? OFFSET ?",
                        (q.limit, q.offset))


def photo_page(reader: StoreReader, q: PhotoQuery, search: SearchMemo | None = None) -> PhotoPage:
    """One page of images in the order and filter of ``q``, and how many match.

    ``search``: the memo of the last page of this path search (``PhotoPage.search``); while
    no photo has changed since, its matches are reused instead of reading every path again."""
    order = PHOTO_SORTS.get(q.sort, PHOTO_SORTS["composite"])
    memo: SearchMemo | None = None
    if q.text:
        changes = reader.image_changes()  # read before the search: a write in between only costs a search more
        if search is not None and changes is not None and (search.query, search.changes) == (q, changes):
            total, rows = search.total, _by_ids(reader, search.ids)
        else:
            total, rows = _searched(reader, q, order)
        if changes is not None:
            memo = SearchMemo(q, changes, total, tuple(r["id"] for r in rows))
    else:
        counts = reader.status_counts()
        total = sum(counts.get(s, 0) for s in (LISTED_STATUSES if q.status == "all" else (q.status,)))
        rows = _listed(reader, q, order, counts)
    return PhotoPage(
        query=q,
        search=memo,
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
    total_picks = int(reader.scalar("SELECT count(*) FROM picks") or 0)
    library = sum(reader.status_counts().values())
    # walking the capture-time index (images_when) reaches the page after about
    # (offset + limit) * library / picks photos; sorting the picks costs about as many as there
    # are: an album that is small beside its library (or empty) is read from picks and sorted
    walk = total_picks * total_picks >= (offset + limit) * library
    rows = reader.query(
        "SELECT p.image_id, i.path, p.moment, p.cluster, p.rank, p.composite, p.reason,"
        " coalesce(i.taken_at, i.mtime_ns / 1e9) AS taken_at,"
        " (SELECT choice FROM manual_choices m WHERE m.image_id = p.image_id) AS manual"
        f" FROM picks p {'JOIN images i' if walk else 'CROSS JOIN images i NOT INDEXED'} ON i.id = p.image_id"
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
            # a finished run says how many it recorded: looking for none would walk all the others
            # (a first run's every pick, when it removed nothing)
            if recorded is None or recorded > 0 else ()
            for change, recorded in (("added", run.added), ("removed", run.removed))
        )
    return AlbumView(
        run=run,
        total_picks=total_picks,
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
        # by the cluster's index: the planner, misled by statistics from before the first selection
        # run (every moment NULL), walked the whole composite index instead (0.4 s at 100 000 photos)
        " FROM images me JOIN images i INDEXED BY images_cluster ON i.moment = me.moment AND i.cluster = me.cluster"
        " WHERE me.id = ? AND i.id != me.id AND i.status != 'deleted'"
        " AND NOT EXISTS (SELECT 1 FROM picks p WHERE p.image_id = i.id)"
        " ORDER BY i.composite DESC, i.id LIMIT ?",
        (image_id, limit),
    )
    return tuple(Sibling(**r) for r in rows)
