"""Property tests (hypothesis) for the composite, the clustering and the picks."""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.album import grouping, run_selection
from daemon.album import plan as album_plan
from daemon.album.choose import Member, choose_cluster
from daemon.album.manual import set_choice
from daemon.album.grouping import TimedPhoto, assign_moments, cluster_photos
from daemon.album.synthetic import SyntheticPhoto, insert_photo
from daemon.config import AlbumConfig, Config
from daemon.scoring.base import GROUPS
from daemon.scoring.composite import composite, composite_values, group_scores
from daemon.store.writer import StoreWriter

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
weight = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)
groups_strategy = st.dictionaries(st.sampled_from(GROUPS), unit)
weights_strategy = st.fixed_dictionaries({g: weight for g in GROUPS})
hash64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(groups_strategy, weights_strategy)
def test_renormalisation_never_divides_by_zero(groups: dict[str, float], weights: dict[str, float]) -> None:
    result = composite(groups, weights)
    if result.value is None:
        assert not any(weights[g] > 0 for g in groups)
        assert result.coverage == ()
    else:
        assert 0.0 <= result.value <= 1.0
        assert set(result.coverage) == {g for g in groups if weights[g] > 0}


@given(st.lists(unit, min_size=1, max_size=8), st.data())
def test_the_technical_group_is_a_soft_minimum_of_its_measures(measures: list[float], data: st.DataObject) -> None:
    """Between the lowest measure and the plain mean (each measure floored at 0.02); never
    higher when any measure falls; all measures equal, that value."""
    technical = group_scores(("technical", v) for v in measures)["technical"]
    floored = [max(v, 0.02) for v in measures]
    assert min(floored) - 1e-9 <= technical <= sum(floored) / len(floored) + 1e-9
    i = data.draw(st.integers(min_value=0, max_value=len(measures) - 1))
    lower = measures[:i] + [measures[i] * data.draw(st.floats(min_value=0.0, max_value=1.0))] + measures[i + 1:]
    assert group_scores(("technical", v) for v in lower)["technical"] <= technical + 1e-12
    same = data.draw(st.floats(min_value=0.02, max_value=1.0))
    assert abs(group_scores(("technical", same) for _ in measures)["technical"] - same) < 1e-9


def test_one_ruined_measure_holds_the_technical_group_down_where_a_mean_would_not() -> None:
    """A frame ruined by camera shake and clean otherwise: the plain mean of its six measures
    would say 0.85; the group says what a photographer sees."""
    shaken = group_scores([("technical", 0.1)] + [("technical", 1.0)] * 5)["technical"]
    assert shaken < 0.3
    assert group_scores([("technical", 0.9)] * 6)["technical"] > shaken + 0.5
    assert group_scores([("aesthetic", 0.1), ("aesthetic", 1.0)])["aesthetic"] == 0.55  # other groups: the plain mean


@given(st.lists(st.dictionaries(st.sampled_from(("aesthetic", "technical")), unit), min_size=2, max_size=8), weights_strategy, weight)
def test_a_missing_group_never_changes_the_ranking_of_photos_that_all_lack_it(
    photos: list[dict[str, float]], weights: dict[str, float], other_portrait: float
) -> None:
    def ranking(w: dict[str, float]) -> list[int]:
        values = [composite(p, w).value for p in photos]
        return sorted(range(len(photos)), key=lambda i: (-(values[i] if values[i] is not None else -1), i))

    assert ranking(weights) == ranking({**weights, "portrait": other_portrait})


members_strategy = st.lists(
    st.tuples(groups_strategy, st.sampled_from([None, None, None, "pin", "reject"])), min_size=1, max_size=8
).map(
    lambda rows: [
        Member(id=i + 1, path=f"/x/{i + 1}.jpg", taken_at=float(i), composite=composite(g, {"aesthetic": 0.5, "technical": 0.2, "portrait": 0.3}).value,
               groups=g, manual=m)
        for i, (g, m) in enumerate(rows)
    ]
)


@given(members_strategy, st.randoms(use_true_random=False))
def test_the_pick_does_not_depend_on_the_order_of_photos(members: list[Member], rnd: random.Random) -> None:
    shuffled = list(members)
    rnd.shuffle(shuffled)
    a = choose_cluster(1, members)
    b = choose_cluster(1, shuffled)
    assert a == b
    picked = {c.image_id for c in a.choices}
    assert not picked & {m.id for m in members if m.manual == "reject"}
    pinned = {m.id for m in members if m.manual == "pin"}
    assert pinned <= picked and len(picked - pinned) <= 1  # a pin adds to the cluster's own pick


@given(st.lists(hash64, min_size=1, max_size=30), st.integers(0, 20), st.integers(1, 10), st.randoms(use_true_random=False))
def test_clusters_partition_the_moment_respect_the_cap_and_ignore_input_order(
    hashes: list[int], distance: int, cap: int, rnd: random.Random
) -> None:
    ids = list(range(100, 100 + len(hashes)))
    clusters = cluster_photos(ids, hashes, max_distance=distance, cap=cap)
    assert sorted(i for c in clusters for i in c) == ids
    assert all(len(c) <= cap for c in clusters)
    order = list(range(len(ids)))
    rnd.shuffle(order)
    assert cluster_photos([ids[i] for i in order], [hashes[i] for i in order], max_distance=distance, cap=cap) == clusters


@given(st.lists(hash64, min_size=2, max_size=25), st.integers(0, 16))
def test_without_a_cap_single_link_joins_every_close_pair(hashes: list[int], distance: int) -> None:
    ids = list(range(len(hashes)))
    clusters = cluster_photos(ids, hashes, max_distance=distance, cap=len(hashes))
    where = {i: k for k, c in enumerate(clusters) for i in c}
    for i in ids:
        for j in ids:
            if (hashes[i] ^ hashes[j]).bit_count() <= distance:
                assert where[i] == where[j]


library_rows = st.lists(
    st.tuples(st.integers(0, 3), st.floats(0, 600), groups_strategy, st.integers(0, 3), st.integers(0, 40)),
    min_size=1,
    max_size=25,
)


def _album(writer: StoreWriter) -> list[tuple]:
    return writer.db.conn.execute(
        "SELECT i.path, p.moment, p.cluster, p.rank, p.composite, p.reason FROM picks p JOIN images i ON i.id = p.image_id ORDER BY i.path"
    ).fetchall()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(library_rows)
def test_picks_are_deterministic_for_the_same_database(rows: list[tuple]) -> None:
    bases = [0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x0F0F0F0F0F0F0F0F, 0xAAAAAAAAAAAAAAAA]
    with tempfile.TemporaryDirectory() as tmp:
        writer = StoreWriter(Path(tmp) / "a.db")
        copy = None
        try:
            for i, (folder, t, groups, base, noise) in enumerate(rows):
                photo = SyntheticPhoto(f"/lib/{folder}/p{i}.jpg", 1e9 + t, groups, f"{bases[base] ^ noise:016x}")
                writer.call(lambda db, photo=photo: insert_photo(db, photo))
            writer.db.conn.execute(f"VACUUM INTO '{Path(tmp) / 'b.db'}'")  # the same database, byte for byte
            run_selection(writer, Config())
            first = _album(writer)
            run_selection(writer, Config(), full=True)
            assert _album(writer) == first
            copy = StoreWriter(Path(tmp) / "b.db")
            run_selection(copy, Config())
            assert _album(copy) == first
            assert first or all(not groups for _, _, groups, _, _ in rows)  # only photos without a score pick nothing
        finally:
            writer.close()
            if copy is not None:
                copy.close()


change_strategy = st.lists(
    st.tuples(st.sampled_from(["add", "delete", "retime", "pin", "reject"]), st.integers(0, 10_000), st.floats(0, 900), groups_strategy),
    min_size=1,
    max_size=6,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(library_rows, st.lists(change_strategy, min_size=1, max_size=3))
def test_incremental_runs_agree_with_a_full_run(rows: list[tuple], rounds: list[list[tuple]]) -> None:
    """Photos added, deleted, moved in time (merging or splitting moments), pinned and rejected
    between incremental runs leave the same album a full run makes."""
    bases = [0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x0F0F0F0F0F0F0F0F, 0xAAAAAAAAAAAAAAAA]
    config = Config(album=dataclasses.replace(AlbumConfig(), moment_gap_seconds=60))
    with tempfile.TemporaryDirectory() as tmp:
        writer = StoreWriter(Path(tmp) / "a.db")
        try:
            for i, (folder, t, groups, base, noise) in enumerate(rows):
                photo = SyntheticPhoto(f"/lib/{folder % 2}/p{i}.jpg", 1e9 + t, groups or {"aesthetic": 0.5}, f"{bases[base] ^ noise:016x}")
                writer.call(lambda db, photo=photo: insert_photo(db, photo))
            run_selection(writer, config)
            for r, changes in enumerate(rounds):
                time.sleep(0.002)  # the changes come after the run started
                for n, (kind, pick, t, groups) in enumerate(changes):
                    ids = [i for (i,) in writer.db.conn.execute("SELECT id FROM images WHERE status = 'scored' ORDER BY id")]
                    target = ids[pick % len(ids)] if ids else None
                    now = time.time()
                    if kind == "add" or target is None:
                        photo = SyntheticPhoto(f"/lib/{pick % 2}/new{r}_{n}.jpg", 1e9 + t, groups or {"technical": 0.6}, f"{bases[pick % 4] ^ (pick % 64):016x}")
                        writer.call(lambda db, photo=photo: insert_photo(db, photo))
                    elif kind == "delete":
                        writer.call(lambda db, i=target: db.conn.execute("UPDATE images SET status = 'deleted', updated_at = ? WHERE id = ?", (now, i)))
                    elif kind == "retime":
                        writer.call(lambda db, i=target: db.conn.execute("UPDATE images SET taken_at = ?, updated_at = ? WHERE id = ?", (1e9 + t, now, i)))
                    else:
                        writer.call(lambda db, i=target, kind=kind: set_choice(db, i, kind))
                result = run_selection(writer, config)
                assert result.mode == "incremental"
                incremental = _album(writer)
                moments = writer.db.conn.execute("SELECT id, moment, cluster FROM images ORDER BY id").fetchall()
                full = run_selection(writer, config, full=True)
                assert (full.added, full.removed) == ((), ())
                assert _album(writer) == incremental
                assert writer.db.conn.execute("SELECT id, moment, cluster FROM images ORDER BY id").fetchall() == moments
        finally:
            writer.close()


group_values = st.one_of(unit, st.just(float("nan")), st.integers(0, 1), st.just("n/a"))


@given(st.lists(st.dictionaries(st.sampled_from((*GROUPS, "other")), group_values), max_size=12), weights_strategy)
def test_composites_of_a_batch_equal_composite_float_for_float(many: list[dict], weights: dict[str, float]) -> None:
    """The selection computes a batch's composites in numpy; each equals composite() of the
    photo's numeric groups, to the last bit (NaN clamped alike), coverage included."""
    got = composite_values(many, weights)
    for groups, (value, coverage) in zip(many, got, strict=True):
        expected = composite({k: float(v) for k, v in groups.items() if isinstance(v, (int, float))}, weights)
        assert coverage == expected.coverage
        assert value == expected.value  # None for None; floats bit for bit (a NaN group clamps to 0.0 in both)


@settings(max_examples=60)
@given(st.lists(st.one_of(st.none(), hash64), min_size=1, max_size=45), st.integers(0, 20), st.integers(1, 12), st.integers(0, 2**64 - 1))
def test_small_moments_cluster_as_the_array_path_does(hashes: list[int | None], distance: int, cap: int, base: int) -> None:
    """Moments of a few photos are compared pair by pair in Python; the result is the one the
    numpy path gives (closest pair first, ties by position, the cap)."""
    near = [None if h is None else base ^ (h & 0x0F0F) for h in hashes]  # many pairs within reach
    ids = list(range(1000, 1000 + len(near)))[::-1]
    small = cluster_photos(ids, near, max_distance=distance, cap=cap)
    saved = grouping.SMALL_MOMENT
    try:
        grouping.SMALL_MOMENT = 0
        assert cluster_photos(ids, near, max_distance=distance, cap=cap) == small
    finally:
        grouping.SMALL_MOMENT = saved


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.none(), st.floats(0, 2000))), min_size=1, max_size=60), st.floats(1, 300))
def test_moments_from_arrays_are_the_moments_assign_moments_makes(rows: list[tuple[int, float | None]], gap: float) -> None:
    """A full run splits the library with numpy; its moments are :func:`assign_moments`'s."""
    ids = np.arange(1, len(rows) + 1, dtype=np.int64)
    lonely = iter(range(-1, -len(rows) - 1, -1))
    folders = np.array([folder if t is not None else next(lonely) for folder, t in rows], dtype=np.int64)
    times = np.array([t if t is not None else 0.0 for _, t in rows], dtype=np.float64)
    split_ = album_plan.FullSplit(*album_plan._split_moments(ids, folders, times, gap), [], None, 10)
    count = len(split_.starts)
    split = {int(i): moment for moment, members in split_.groups() for i in members}
    timed = [TimedPhoto(int(i), f"/{f}" if t is not None else f"\0{i}", t if t is not None else 0.0) for i, (f, t) in zip(ids, rows)]
    assert split == assign_moments(timed, gap)
    assert count == len(set(split.values()))


@given(st.dictionaries(st.sampled_from((*GROUPS, "other")), st.one_of(unit, st.just(float("nan")), st.integers(-(2**70), 2**70))))
def test_a_photos_groups_read_as_json_reads_them(groups: dict) -> None:
    """Group scores are read with orjson; what it refuses (NaN) is read by json, so every stored
    text gives the scores json gives, as the selection uses them (as floats: orjson reads an
    integer past 64 bits as the float the selection would make of it)."""
    import json
    import math

    text = json.dumps(groups)
    got = album_plan._json_dict(text)
    assert got.keys() == groups.keys()
    assert all(float(got[k]) == float(v) or math.isnan(v) and math.isnan(got[k]) for k, v in groups.items())
    assert album_plan._json_dict("[1, 2]") == {} and album_plan._json_dict("{not json") == {} and album_plan._json_dict(None) == {}
