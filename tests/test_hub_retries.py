"""Acceptance 2: what is retried, how long it waits, what falls through at once, and resume."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemon.config import SourceHealth
from daemon.errors import ModelUnavailable
from daemon.hub import ModelHub
from daemon.store.reader import StoreReader
from daemon.store.writer import StoreWriter
from fakehubs.builders import random_blob, sha256_hex
from fakehubs.fixtures import fast_config


def _two_mirrors(https_fake, size: int = 40_000) -> tuple[list[dict], bytes]:
    """ava-resnet50 served by two paths of the same mirror: /a (the one under test) then /b (the fallback)."""
    blob = random_blob(size)
    digest = sha256_hex(blob)
    return [
        {"kind": "https", "url": https_fake.add("/a/ava.pt", blob), "sha256": digest},
        {"kind": "https", "url": https_fake.add("/b/ava.pt", blob), "sha256": digest},
    ], blob


def _hits(fake, part: str) -> int:
    return sum(1 for r in fake.requests if part in r.path)


@pytest.mark.slow
def test_waits_for_retry_after_then_succeeds(https_fake, db_path: Path) -> None:
    sources, blob = _two_mirrors(https_fake)
    https_fake.fail(429, retry_after=2, times=1)
    config = fast_config(sources={"ava-resnet50": sources}, initial_seconds=0.05, max_seconds=10)
    started = time.monotonic()
    with StoreWriter(db_path) as writer:
        fetched = ModelHub(config, writer).fetch("ava-resnet50")
    waited = time.monotonic() - started
    assert fetched.source_ref == sources[0]["url"] and fetched.path.read_bytes() == blob
    assert _hits(https_fake, "/a/") == 2 and _hits(https_fake, "/b/") == 0
    assert waited >= 2.0  # the server's Retry-After, not the 0.05 s backoff
    with StoreReader(db_path) as reader:
        retries = [e for e in reader.model_events("ava-resnet50") if e["kind"] == "retry"]
    assert len(retries) == 1 and retries[0]["seconds"] == pytest.approx(2.0) and retries[0]["error_class"] == "HTTP 429"


def test_retry_after_is_capped_at_max_seconds(https_fake) -> None:
    sources, _ = _two_mirrors(https_fake)
    https_fake.fail(503, retry_after=3600, times=1)
    config = fast_config(sources={"ava-resnet50": sources}, max_seconds=0.2)
    started = time.monotonic()
    ModelHub(config).fetch("ava-resnet50")
    assert time.monotonic() - started < 60  # not the hour the server asked for
    assert _hits(https_fake, "/a/") == 2


def test_retries_503_then_succeeds_on_the_same_source(https_fake) -> None:
    sources, _ = _two_mirrors(https_fake)
    https_fake.fail(503, times=2)
    fetched = ModelHub(fast_config(sources={"ava-resnet50": sources}, attempts=4)).fetch("ava-resnet50")
    assert fetched.source_ref == sources[0]["url"]
    assert _hits(https_fake, "/a/") == 3


@pytest.mark.parametrize("status", [401, 403, 404])
def test_client_errors_are_not_retried_and_fall_through(https_fake, status: int) -> None:
    sources, _ = _two_mirrors(https_fake)
    https_fake.fail(status, path_contains="/a/")
    fetched = ModelHub(fast_config(sources={"ava-resnet50": sources}, attempts=4)).fetch("ava-resnet50")
    assert fetched.source_ref == sources[1]["url"]
    assert _hits(https_fake, "/a/") == 1


def test_kaggle_401_is_not_retried_and_says_how_to_set_credentials(kaggle_fake) -> None:
    kaggle_fake.add_model("google/musiq/tensorFlow2/koniq-10k", files={"saved_model.pb": b"x"})
    kaggle_fake.fail(401)
    with pytest.raises(ModelUnavailable) as info:
        ModelHub(fast_config(attempts=4, sources={"musiq-koniq": [{"kind": "kaggle", "handle": "google/musiq/tensorFlow2/koniq-10k/1"}]})).fetch("musiq-koniq")
    assert kaggle_fake.count == 1
    assert info.value.attempts[0].error_class == "HTTP 401"
    assert "KAGGLE_API_TOKEN" in str(info.value)


def test_hash_mismatch_is_not_retried_leaves_no_file_and_falls_through(https_fake, tmp_path: Path) -> None:
    sources, blob = _two_mirrors(https_fake)
    https_fake.wrong_bytes()  # every body is corrupted...
    https_fake.add("/a/ava.pt", blob)
    config = fast_config(sources={"ava-resnet50": sources}, attempts=4)
    hub = ModelHub(config)
    with pytest.raises(ModelUnavailable) as info:
        hub.fetch("ava-resnet50")
    assert _hits(https_fake, "/a/") == 1 and _hits(https_fake, "/b/") == 1  # each tried once, no retry
    assert [a.error_class for a in info.value.attempts] == ["HashMismatch", "HashMismatch"]
    leftovers = [p for p in hub.cache.model_dir("ava-resnet50").rglob("*") if p.is_file()]
    assert leftovers == []  # neither the bad file nor a .part remains
    https_fake.clear()  # ...then the mirror is fixed: the next fetch works
    assert hub.fetch("ava-resnet50").path.read_bytes() == blob


def test_reset_mid_body_resumes_with_a_range_request(https_fake) -> None:
    sources, blob = _two_mirrors(https_fake, size=200_000)
    https_fake.reset_mid_body(times=1)
    fetched = ModelHub(fast_config(sources={"ava-resnet50": sources})).fetch("ava-resnet50")
    assert fetched.path.read_bytes() == blob and fetched.source_ref == sources[0]["url"]
    first, second = [r for r in https_fake.requests if "/a/" in r.path]
    assert "range" not in first.headers
    # asked only for what was missing: the half the fake sent, less the chunk being read when it broke
    assert len(blob) // 2 - 16384 <= second.range_start <= len(blob) // 2
    assert https_fake.bytes_sent / len(blob) <= 1.05


def test_slow_body_times_out_and_falls_through(https_fake) -> None:
    sources, blob = _two_mirrors(https_fake)
    https_fake.slow_body(delay=3.0, times=1)
    config = fast_config(sources={"ava-resnet50": sources}, attempts=1, timeout_seconds=0.5)
    hub = ModelHub(config)
    fetched = hub.fetch("ava-resnet50")
    assert fetched.source_ref == sources[1]["url"] and fetched.path.read_bytes() == blob


def test_timeout_hint_names_the_timeout_setting_not_the_command_that_timed_out(https_fake) -> None:
    sources, _blob = _two_mirrors(https_fake)
    https_fake.slow_body(delay=3.0, times=1)
    config = fast_config(sources={"ava-resnet50": sources[:1]}, attempts=1, timeout_seconds=0.5)
    with pytest.raises(ModelUnavailable) as info:
        ModelHub(config).fetch("ava-resnet50")
    text = str(info.value)
    assert [a.error_class for a in info.value.attempts] == ["Timeout"]
    assert "models.retry.timeout_seconds (0.5 s)" in text
    assert "keepers models fetch" not in text  # the command the user just ran


def test_a_source_that_keeps_failing_is_skipped_for_a_cool_down(https_fake, db_path: Path) -> None:
    from fakehubs import FileHub

    good = random_blob(100, 8)
    names = ("ava-resnet50", "siamese-comparator", "clip-vit-b32")
    with FileHub() as mirror:  # a second, healthy host
        https_fake.down()
        sources = {
            name: [
                {"kind": "https", "url": https_fake.add(f"/{name}.pt", good), "sha256": sha256_hex(good)},
                {"kind": "https", "url": mirror.add(f"/{name}.pt", good), "sha256": sha256_hex(good)},
            ]
            for name in names
        }
        # Two failures of one host ("https 127.0.0.1:PORT") open its circuit for the cool-down.
        config = fast_config(sources=sources, attempts=1, health=SourceHealth(failures=2, window_seconds=60, cooldown_seconds=60))
        with StoreWriter(db_path) as writer:
            hub = ModelHub(config, writer)
            served = [hub.fetch(name) for name in names]
        assert all(f.source_ref.startswith(mirror.url) for f in served)
        assert https_fake.count == 2  # the third model did not ask the broken host at all
        assert mirror.count == 3
    with StoreReader(db_path) as reader:
        skips = [e for e in reader.model_events("clip-vit-b32") if e["kind"] == "skip"]
    assert len(skips) == 1 and skips[0]["error_class"] == "CircuitOpen"


def test_two_mirrors_keep_their_own_partial_files_and_a_good_one_is_never_blamed(tmp_path: Path) -> None:
    from fakehubs import FileHub

    good = random_blob(120_000, 21)
    stale = random_blob(120_000, 22)  # an older upload the first mirror still serves, and it keeps breaking
    with FileHub() as flaky, FileHub() as healthy:
        flaky.reset_mid_body(times=None)
        sources = [{"kind": "https", "url": flaky.add("/ava.pt", stale), "sha256": sha256_hex(good)},
                   {"kind": "https", "url": healthy.add("/ava.pt", good), "sha256": sha256_hex(good)}]
        hub = ModelHub(fast_config(sources={"ava-resnet50": sources}, attempts=2))
        fetched = hub.fetch("ava-resnet50")
        assert fetched.source_ref == sources[1]["url"] and fetched.path.read_bytes() == good
        (first,) = healthy.requests
        assert "range" not in first.headers  # the good mirror started from byte 0, not from the flaky one's half
        assert healthy.bytes_sent == len(good)
        events = hub.cache.entries("ava-resnet50")
        assert list(events) == [f"https {sources[1]['url']}"]


def test_a_resume_after_the_file_changed_starts_over_instead_of_mixing_versions() -> None:
    from fakehubs import FileHub

    old, new = random_blob(80_000, 31), random_blob(80_000, 32)
    with FileHub() as mirror:
        url = mirror.add("/ava.pt", old)
        mirror.reset_mid_body(times=1)
        config = fast_config(sources={"ava-resnet50": [{"kind": "https", "url": url, "sha256": sha256_hex(new)}]}, attempts=1)
        with pytest.raises(ModelUnavailable):
            ModelHub(config).fetch("ava-resnet50")  # half of the old file is kept for a resume
        mirror.add("/ava.pt", new)  # the mirror is updated in between
        fetched = ModelHub(config).fetch("ava-resnet50")
        assert fetched.path.read_bytes() == new
        second = mirror.requests[-1]
        assert second.range_start is not None and second.headers.get("if-range")  # asked for the rest, if unchanged...
        assert mirror.bytes_sent >= len(old) // 2 + len(new)  # ...and got the whole new file instead


@pytest.mark.slow
def test_a_trickling_mirror_gives_up_on_its_progress_deadline_and_falls_through(https_fake, db_path: Path) -> None:
    sources, blob = _two_mirrors(https_fake, size=20_000)
    https_fake.trickle(0.5, path_contains="/a/")  # one byte every half second
    config = fast_config(sources={"ava-resnet50": sources}, attempts=3, timeout_seconds=5.0,
                         min_bytes_per_second=200, slow_window_seconds=1.5)
    started = time.monotonic()
    with StoreWriter(db_path) as writer:
        fetched = ModelHub(config, writer).fetch("ava-resnet50")
    took = time.monotonic() - started
    assert fetched.source_ref == sources[1]["url"] and fetched.path.read_bytes() == blob
    assert _hits(https_fake, "/a/") == 1  # too slow is not retried: the next source is tried at once
    assert took < 15, f"took {took:.1f} s"  # the window (1.5 s), not the 10,000 s the trickle would take
    with StoreReader(db_path) as reader:
        fallbacks = [e for e in reader.model_events("ava-resnet50") if e["kind"] == "fallback"]
    assert [e["error_class"] for e in fallbacks] == ["TooSlow"]
