"""Album selection on database rows written by the tests themselves."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path

import pytest

from daemon.album import run_selection
from daemon.album.manual import UnknownPhoto, set_choice
from daemon.album.synthetic import SyntheticPhoto, flip_bits, insert_photo
from daemon.config import AlbumConfig, Config, Floors
from daemon.store.writer import StoreWriter

T0 = 1_700_000_000.0


@pytest.fixture
def writer(db_path: Path):
    w = StoreWriter(db_path)
    yield w
    w.close()


def config(**album: object) -> Config:
    return Config(album=dataclasses.replace(AlbumConfig(), **album))  # type: ignore[arg-type]


def add(writer: StoreWriter, photo: SyntheticPhoto, now: float | None = None) -> int:
    return writer.call(lambda db: insert_photo(db, photo, now=now))


def picks(writer: StoreWriter) -> dict[int, dict]:
    rows = writer.db.conn.execute("SELECT image_id, moment, cluster, rank, composite, reason FROM picks").fetchall()
    return {r[0]: {"moment": r[1], "cluster": r[2], "rank": r[3], "composite": r[4], "reason": json.loads(r[5])} for r in rows}


def burst(
    writer: StoreWriter, folder: str, start: float, base: int, scores: list[float], rng: random.Random, name: str, now: float | None = None
) -> list[int]:
    """A burst: frames 0.5 s apart with hashes a few bits from ``base`` and the given aesthetic scores."""
    return [
        add(
            writer,
            SyntheticPhoto(
                path=f"{folder}/{name}_{i}.jpg",
                taken_at=start + 0.5 * i,
                groups={"aesthetic": s, "technical": s},
                phash=f"{flip_bits(base, rng.randint(0, 5), rng):016x}",
            ),
            now,
        )
        for i, s in enumerate(scores)
    ]


def test_each_burst_is_one_cluster_and_its_best_photo_is_picked(writer: StoreWriter) -> None:
    rng = random.Random(7)
    bursts = []
    for b in range(8):  # bursts 20 s apart: all in one moment, told apart by their hashes
        scores = [rng.uniform(0.1, 0.6) for _ in range(rng.randint(3, 6))]
        best = rng.randrange(len(scores))
        scores[best] = 0.9
        ids = burst(writer, "/p/day1", T0 + 20 * b, rng.getrandbits(64), scores, rng, f"b{b}")
        bursts.append((ids, ids[best]))
    result = run_selection(writer, config())
    chosen = picks(writer)
    assert result.moments == 1
    assert set(chosen) == {best for _, best in bursts}
    clusters = dict(writer.db.conn.execute("SELECT id, cluster FROM images").fetchall())
    for ids, best in bursts:
        assert {clusters[i] for i in ids} == {min(ids)}  # one cluster per burst, named by its first photo
        assert chosen[best]["reason"]["decided_by"] == "composite"
        assert chosen[best]["reason"]["cluster_size"] == len(ids)


def test_moments_split_on_time_gaps_and_folders(writer: StoreWriter) -> None:
    h = "00000000000000ff"
    a1 = add(writer, SyntheticPhoto("/p/a/1.jpg", T0, {"aesthetic": 0.5}, h))
    a2 = add(writer, SyntheticPhoto("/p/a/2.jpg", T0 + 100, {"aesthetic": 0.5}, h))
    a3 = add(writer, SyntheticPhoto("/p/a/3.jpg", T0 + 400, {"aesthetic": 0.5}, h))
    b1 = add(writer, SyntheticPhoto("/p/b/1.jpg", T0 + 50, {"aesthetic": 0.5}, h))
    result = run_selection(writer, config(moment_gap_seconds=120))
    moments = dict(writer.db.conn.execute("SELECT id, moment FROM images").fetchall())
    assert moments[a1] == moments[a2] == a1
    assert moments[a3] == a3
    assert moments[b1] == b1
    assert result.moments == 3


def test_cluster_cap_stops_a_chain_of_lookalikes(writer: StoreWriter) -> None:
    for i in range(10):  # identical hashes: without the cap, one cluster
        add(writer, SyntheticPhoto(f"/p/c/{i}.jpg", T0 + i, {"aesthetic": 0.1 * i}, "0f0f0f0f0f0f0f0f"))
    run_selection(writer, config(cluster_cap=4))
    sizes = [n for (n,) in writer.db.conn.execute("SELECT count(*) FROM images GROUP BY cluster")]
    assert max(sizes) <= 4 and sum(sizes) == 10


class PreferPhoto:
    """A test comparator that always prefers one named file."""

    name = "prefers-known-photo"

    def __init__(self, preferred: str):
        self.preferred = preferred
        self.calls: list[tuple[str, str]] = []

    def compare(self, a: Path, b: Path) -> tuple[int, float]:
        self.calls.append((str(a), str(b)))
        if str(b) == self.preferred:
            return 1, 0.9
        return 0, 0.9 if str(a) == self.preferred else 0.5


def _near_tie(writer: StoreWriter) -> tuple[int, int]:
    top = add(writer, SyntheticPhoto("/p/t/top.jpg", T0, {"aesthetic": 0.80, "technical": 0.80}, "aaaaaaaaaaaaaaaa"))
    close = add(writer, SyntheticPhoto("/p/t/close.jpg", T0 + 1, {"aesthetic": 0.78, "technical": 0.78}, "aaaaaaaaaaaaaaab"))
    add(writer, SyntheticPhoto("/p/t/far.jpg", T0 + 2, {"aesthetic": 0.40, "technical": 0.40}, "aaaaaaaaaaaaaaa8"))
    return top, close


def test_near_tie_is_decided_by_a_ready_comparator_and_the_reason_says_so(writer: StoreWriter) -> None:
    top, close = _near_tie(writer)
    comparator = PreferPhoto("/p/t/close.jpg")
    run_selection(writer, config(), comparator=comparator)
    chosen = picks(writer)
    assert set(chosen) == {close}
    reason = chosen[close]["reason"]
    assert reason["decided_by"] == "comparator"
    assert reason["tiebreak"]["comparator"] == "prefers-known-photo"
    assert reason["tiebreak"]["bouts"][0]["winner"] == close
    assert comparator.calls == [("/p/t/top.jpg", "/p/t/close.jpg")]  # the far photo is no tie


def test_without_a_comparator_the_near_tie_keeps_the_composite_order(writer: StoreWriter) -> None:
    top, _ = _near_tie(writer)
    run_selection(writer, config())
    reason = picks(writer)[top]["reason"]
    assert reason["decided_by"] == "composite"
    assert reason["tiebreak"]["comparator"] is None
    assert reason["tiebreak"]["note"].startswith("near tie with close.jpg (within 0.05)")
    assert reason["runner_up"]["path"] == "/p/t/close.jpg"  # the reason names photos, not only row ids


def test_an_exact_tie_says_so_and_which_photo_was_kept(writer: StoreWriter) -> None:
    first = add(writer, SyntheticPhoto("/p/e/a.jpg", T0, {"aesthetic": 0.7}, "aaaaaaaaaaaaaaaa"))
    add(writer, SyntheticPhoto("/p/e/b.jpg", T0 + 1, {"aesthetic": 0.7}, "aaaaaaaaaaaaaaab"))
    run_selection(writer, config())
    note = picks(writer)[first]["reason"]["tiebreak"]["note"]
    assert note == "exact tie with b.jpg (composite 0.7000); no comparator ready, kept a.jpg, the one keepers found first"


def test_floors_veto_closed_eyes_and_blur(writer: StoreWriter) -> None:
    h = "123456789abcdef0"
    eyes_shut = add(writer, SyntheticPhoto("/p/f/1.jpg", T0, {"aesthetic": 0.9}, h, scores={"eyes_open": ("portrait", 0.1)}))
    blurred = add(writer, SyntheticPhoto("/p/f/2.jpg", T0 + 1, {"aesthetic": 0.85}, h, scores={"sharpness": ("technical", 0.05)}))
    fine = add(writer, SyntheticPhoto("/p/f/3.jpg", T0 + 2, {"aesthetic": 0.5}, h, scores={"eyes_open": ("portrait", 0.9)}))
    run_selection(writer, config(floors=Floors(eyes_open=0.5, sharpness=0.2)))
    chosen = picks(writer)
    assert set(chosen) == {fine}
    floors = chosen[fine]["reason"]["floors"]
    assert floors[str(eyes_shut)]["eyes_open"] == {"floor": 0.5, "value": 0.1, "says": "eyes closed"}
    assert floors[str(blurred)]["sharpness"]["floor"] == 0.2
    run_selection(writer, config(), full=True)  # without floors the best composite wins again
    assert set(picks(writer)) == {eyes_shut}


def test_pin_and_reject_hold_across_reselections(writer: StoreWriter) -> None:
    h = "fedcba9876543210"
    best = add(writer, SyntheticPhoto("/p/m/1.jpg", T0, {"aesthetic": 0.9}, h))
    middle = add(writer, SyntheticPhoto("/p/m/2.jpg", T0 + 1, {"aesthetic": 0.6}, h))
    worst = add(writer, SyntheticPhoto("/p/m/3.jpg", T0 + 2, {"aesthetic": 0.2}, h))
    run_selection(writer, config())
    assert set(picks(writer)) == {best}
    writer.call(lambda db: set_choice(db, "/p/m/3.jpg", "pin"))
    writer.call(lambda db: set_choice(db, best, "reject"))
    for full in (False, True, False):
        run_selection(writer, config(), full=full)
        chosen = picks(writer)
        # a pin adds: the pinned photo joins the cluster's own pick (here the middle one, the best rejected)
        assert set(chosen) == {worst, middle}
        assert chosen[worst]["reason"]["decided_by"] == "pin" and chosen[middle]["reason"]["decided_by"] == "composite"
    writer.call(lambda db: set_choice(db, worst, "unpin"))
    run_selection(writer, config())
    assert set(picks(writer)) == {middle}  # the reject still holds; the pin is gone
    with pytest.raises(UnknownPhoto, match="not a photo keepers knows"):
        writer.call(lambda db: set_choice(db, "/p/m/none.jpg", "pin"))


def test_raw_and_jpeg_of_the_same_name_are_one_photo(writer: StoreWriter) -> None:
    jpg = add(writer, SyntheticPhoto("/p/r/IMG_1.JPG", T0, {"aesthetic": 0.7}, "1111111111111111"))
    raw = add(writer, SyntheticPhoto("/p/r/IMG_1.CR2", T0, {}, None))
    other = add(writer, SyntheticPhoto("/p/r/IMG_2.JPG", T0 + 1, {"aesthetic": 0.6}, "1111111111111113"))
    run_selection(writer, config())
    chosen = picks(writer)
    assert set(chosen) == {jpg}
    assert chosen[jpg]["reason"]["companions"] == ["/p/r/IMG_1.CR2"]
    clusters = dict(writer.db.conn.execute("SELECT id, cluster FROM images").fetchall())
    assert clusters[raw] == clusters[jpg] == clusters[other]
    writer.call(lambda db: set_choice(db, raw, "reject"))  # rejecting either file rejects the photo
    run_selection(writer, config())
    assert set(picks(writer)) == {other}


def test_incremental_run_recomputes_only_touched_moments_and_records_changes(writer: StoreWriter) -> None:
    rng = random.Random(3)
    an_hour_ago = time.time() - 3600  # scored well before the first run
    for m in range(5):
        burst(writer, "/p/i", T0 + 3600 * m, rng.getrandbits(64), [0.5, 0.6, 0.4], rng, f"m{m}", now=an_hour_ago)
    first = run_selection(writer, config())
    assert (first.mode, first.moments, first.moments_recomputed, len(first.added)) == ("full", 5, 5, 5)
    quiet = run_selection(writer, config())
    assert (quiet.mode, quiet.moments_recomputed, quiet.added, quiet.removed) == ("incremental", 0, (), ())
    old_pick = next(i for i, p in picks(writer).items() if p["moment"] == min(p2["moment"] for p2 in picks(writer).values()))
    base = int(writer.db.conn.execute("SELECT phash FROM images WHERE id = ?", (old_pick,)).fetchone()[0], 16)
    newcomer = add(writer, SyntheticPhoto("/p/i/new.jpg", T0 + 2, {"aesthetic": 0.95, "technical": 0.95}, f"{base ^ 1:016x}"))
    second = run_selection(writer, config())
    assert (second.mode, second.moments_recomputed) == ("incremental", 1)
    assert (second.added, second.removed) == ((newcomer,), (old_pick,))
    changes = writer.db.conn.execute("SELECT image_id, change FROM pick_changes WHERE run_id = ?", (second.run_id,)).fetchall()
    assert sorted(changes) == sorted([(newcomer, "added"), (old_pick, "removed")])
    run = writer.db.conn.execute("SELECT trigger, mode, added, removed, picks, finished FROM selection_runs WHERE id = ?", (second.run_id,)).fetchone()
    assert run[:5] == ("cli", "incremental", 1, 1, 5) and run[5] is not None
    incremental_picks = picks(writer)
    run_selection(writer, config(), full=True)
    assert picks(writer).keys() == incremental_picks.keys()  # incremental and full agree


def test_a_deleted_pick_leaves_the_album(writer: StoreWriter) -> None:
    h = "0101010101010101"
    best = add(writer, SyntheticPhoto("/p/d/1.jpg", T0, {"aesthetic": 0.9}, h))
    second = add(writer, SyntheticPhoto("/p/d/2.jpg", T0 + 1, {"aesthetic": 0.5}, h))
    run_selection(writer, config())
    writer.call(lambda db: db.conn.execute("UPDATE images SET status = 'deleted', updated_at = updated_at + 1e6 WHERE id = ?", (best,)))
    result = run_selection(writer, config())
    assert (result.added, result.removed) == ((second,), (best,))
    assert writer.db.conn.execute("SELECT moment, cluster FROM images WHERE id = ?", (best,)).fetchone() == (None, None)


@pytest.mark.parametrize(("policy", "extra", "expected"), [("top_n", {"top_n": 2}, 2), ("top_fraction", {"top_fraction": 0.5}, 3)])
def test_album_size_policy_keeps_the_best_clusters_and_pins(writer: StoreWriter, policy: str, extra: dict, expected: int) -> None:
    ids = [
        add(writer, SyntheticPhoto(f"/p/s/{i}.jpg", T0 + 3600 * i, {"aesthetic": 0.1 + 0.15 * i}, f"{i:016x}"))
        for i in range(6)
    ]
    writer.call(lambda db: set_choice(db, ids[0], "pin"))
    run_selection(writer, config(policy=policy, **extra))
    chosen = set(picks(writer))
    assert len(chosen) == expected
    assert ids[0] in chosen and ids[5] in chosen  # the pin stays, the best cluster stays
    assert ids[1] not in chosen


class BrokenComparator:
    name = "broken"

    def compare(self, a: Path, b: Path) -> tuple[int, float]:
        raise RuntimeError("model crashed")


def test_a_failing_comparator_falls_back_to_the_composite_and_says_why(writer: StoreWriter) -> None:
    top, _ = _near_tie(writer)
    run_selection(writer, config(), comparator=BrokenComparator())
    reason = picks(writer)[top]["reason"]
    assert reason["decided_by"] == "composite"
    assert reason["tiebreak"]["error"] == "RuntimeError: model crashed"


def test_a_failed_run_is_recorded_with_its_error(writer: StoreWriter) -> None:
    add(writer, SyntheticPhoto("/p/e/1.jpg", T0, {"aesthetic": 0.5}, "0000000000000001"))
    writer.call(lambda db: db.conn.execute("DROP TABLE album_candidates"))
    with pytest.raises(Exception, match="album_candidates"):
        run_selection(writer, config())
    row = writer.db.conn.execute("SELECT trigger, finished IS NOT NULL, error FROM selection_runs").fetchone()
    assert row[:2] == ("cli", 1) and "album_candidates" in row[2]


def test_embeddings_join_lookalikes_the_hash_keeps_apart(writer: StoreWriter) -> None:
    import numpy as np

    a = add(writer, SyntheticPhoto("/p/v/1.jpg", T0, {"aesthetic": 0.7}, "0000000000000000"))
    b = add(writer, SyntheticPhoto("/p/v/2.jpg", T0 + 1, {"aesthetic": 0.6}, "ffffffffffffffff"))
    c = add(writer, SyntheticPhoto("/p/v/3.jpg", T0 + 2, {"aesthetic": 0.5}, "00000000ffffffff"))
    vectors = {a: [1.0, 0.0, 0.1], b: [0.98, 0.02, 0.12], c: [0.0, 1.0, 0.0]}
    writer.call(lambda db: db.conn.executemany(
        "INSERT INTO embeddings (image_id, model, dim, vector) VALUES (?, 'clip', 3, ?)",
        [(i, np.asarray(v, dtype="<f4").tobytes()) for i, v in vectors.items()]))
    run_selection(writer, config())
    clusters = dict(writer.db.conn.execute("SELECT id, cluster FROM images").fetchall())
    assert clusters[a] == clusters[b] == a  # cosine 0.999: one scene
    assert clusters[c] == c  # hash 32 bits away and a different embedding
    assert set(picks(writer)) == {a, c}


def test_a_row_stamped_before_the_last_run_but_committed_after_is_not_missed(writer: StoreWriter) -> None:
    h = "5555555555555555"
    first = add(writer, SyntheticPhoto("/p/late/1.jpg", T0, {"aesthetic": 0.5}, h), now=time.time() - 3600)
    run = run_selection(writer, config())
    started = writer.db.conn.execute("SELECT started FROM selection_runs WHERE id = ?", (run.run_id,)).fetchone()[0]
    late = add(writer, SyntheticPhoto("/p/late/2.jpg", T0 + 1, {"aesthetic": 0.9}, h), now=started - 5)
    result = run_selection(writer, config())
    assert result.mode == "incremental"
    assert (result.added, result.removed) == ((late,), (first,))
