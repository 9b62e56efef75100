"""Acceptance 3 and 5: hostile archives stay out, and two processes share one cached copy."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from daemon.errors import ModelUnavailable
from daemon.hub import ModelHub
from daemon.hub.cache import extract_archive
from daemon.hub.failures import UnsafeArchive
from fakehubs.builders import evil_tar_gz, random_blob, sha256_hex
from fakehubs.fixtures import fast_config

REPO = Path(__file__).resolve().parents[1]


def _escaped_files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("escaped.txt")]


def test_https_tarball_with_a_dotdot_member_is_refused_and_nothing_escapes(https_fake, isolated_env: Path, tmp_path: Path) -> None:
    evil = evil_tar_gz("../escaped.txt")
    url = https_fake.add("/evil.tar.gz", evil)
    config = fast_config(sources={"musiq-spaq": [{"kind": "https", "url": url, "sha256": sha256_hex(evil), "extract": True}]})
    hub = ModelHub(config)
    with pytest.raises(ModelUnavailable) as info:
        hub.fetch("musiq-spaq")
    assert info.value.attempts[0].error_class == "UnsafeArchive"
    assert _escaped_files(isolated_env, tmp_path) == []
    assert [p for p in hub.cache.model_dir("musiq-spaq").rglob("*") if p.is_file()] == []  # no half-extracted model
    assert https_fake.count == 1  # refused, not retried


@pytest.mark.parametrize("member", ["../escaped.txt", "link"])
def test_extract_archive_refuses_members_that_point_outside(tmp_path: Path, member: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if member == "link":
            info = tarfile.TarInfo("link")
            info.type = tarfile.SYMTYPE
            info.linkname = "../../outside"
            tar.addfile(info)
        else:
            data = b"x"
            info = tarfile.TarInfo(member)
            info.size = 1
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "a.tar"
    archive.write_bytes(buf.getvalue())
    dest = tmp_path / "cache" / "model"
    with pytest.raises(UnsafeArchive):
        extract_archive(archive, dest)
    assert not dest.exists()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "outside").exists()


def test_extract_archive_keeps_absolute_member_names_inside_the_destination(tmp_path: Path) -> None:
    name = f"{tmp_path}/abs-escaped.txt"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    archive = tmp_path / "a.tar"
    archive.write_bytes(buf.getvalue())
    dest = extract_archive(archive, tmp_path / "cache" / "model")
    assert not Path(name).exists()  # not written at the absolute path...
    assert (dest / name.lstrip("/")).read_bytes() == b"x"  # ...but under the destination


@pytest.mark.slow
@pytest.mark.tf
def test_tfhub_tarball_with_a_dotdot_member_is_refused_and_nothing_escapes(tfhub_fake, isolated_env: Path, tmp_path: Path) -> None:
    url = tfhub_fake.add_model("/google/musiq/spaq/1", tarball=evil_tar_gz("../escaped.txt"))
    config = fast_config(sources={"musiq-spaq": [{"kind": "tfhub", "url": url}]})
    with pytest.raises(ModelUnavailable) as info:
        ModelHub(config).fetch("musiq-spaq")
    assert info.value.attempts[0].error_class == "UnsafeArchive"
    assert _escaped_files(isolated_env, tmp_path) == []
    tfhub_cache = Path(os.environ["TFHUB_CACHE_DIR"])
    leftovers = [p for p in tfhub_cache.rglob("*") if p.is_file()] if tfhub_cache.exists() else []
    assert leftovers == []  # no module folder, no half-extracted temp folder


_FETCH_SCRIPT = """
import json, sys
from daemon.config import load_config
from daemon.hub import ModelHub
fetched = ModelHub(load_config(check_folders=False)).fetch("ava-resnet50")
print(json.dumps({"path": str(fetched.path), "from_cache": fetched.from_cache, "sha256": fetched.sha256}))
"""


@pytest.mark.slow
def test_two_processes_fetching_the_same_model_end_with_one_intact_copy(https_fake, isolated_env: Path) -> None:
    blob = random_blob(300_000)
    url = https_fake.add("/ava.pt", blob)
    https_fake.slow_body(delay=1.5, times=1)  # the first download is slow, so the two overlap
    config_file = Path(os.environ["KEEPERS_CONFIG"])
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump({"models": {"sources": {"ava-resnet50": [{"kind": "https", "url": url, "sha256": sha256_hex(blob)}]}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _FETCH_SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    paths = {r["path"] for r in results}
    assert len(paths) == 1
    path = Path(paths.pop())
    assert path.read_bytes() == blob
    assert sorted(r["from_cache"] for r in results) == [False, True]  # one downloaded, the other waited and reused it
    assert [r.path for r in https_fake.requests].count("/ava.pt") == 1
    assert list(path.parent.glob("*.part")) == []
