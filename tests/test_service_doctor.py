"""`keepers doctor`: what it finds on a good set-up and on broken ones."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from daemon.cli import main


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["doctor", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


def test_doctor_passes_on_a_readable_folder_and_writable_database(photo_dir: Path, db_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys, "--photos", str(photo_dir), "--db", str(db_path))
    checks = by_name(report)
    assert code == 0 and report["ok"] is True
    assert checks[f"folder {photo_dir}"]["status"] == "ok"
    assert checks["database"]["status"] == "ok" and "will be created" in checks["database"]["detail"]
    assert checks["inotify"]["status"] in ("ok", "warn")
    assert {"extra tf", "extra torch", "extra raw"} <= set(checks)
    assert checks["face runtime"]["status"] == "ok" and "LiteRT" in checks["face runtime"]["detail"]


def test_doctor_says_how_to_run_the_face_models_faster_without_litert(photo_dir: Path, db_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ai_edge_litert" else real(name, *a))
    code, report = doctor(capsys, "--photos", str(photo_dir), "--db", str(db_path))
    check = by_name(report)["face runtime"]
    assert code == 0 and check["status"] == "warn"
    assert "OpenCV's DNN module" in check["detail"] and "pip install ai-edge-litert" in check["detail"]


def test_doctor_fails_on_a_missing_folder_and_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys, "--photos", str(tmp_path / "nowhere"))
    check = by_name(report)[f"folder {tmp_path / 'nowhere'}"]
    assert code == 1 and report["ok"] is False
    assert check["status"] == "fail" and "does not exist" in check["detail"]


def test_doctor_fails_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "keepers.yaml"
    bad.write_text("settle_secnds: 2\n")
    code, report = doctor(capsys, "--config", str(bad))
    assert code == 1 and by_name(report)["config"]["status"] == "fail"
    assert "settle_secnds" in by_name(report)["config"]["detail"]


def test_doctor_flags_too_few_inotify_watches_with_the_sysctl(photo_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(5):
        (photo_dir / f"y{i}").mkdir()
    limit = tmp_path / "max_user_watches"
    limit.write_text("3\n")
    monkeypatch.setattr("daemon.watch.mounts.WATCH_LIMIT_FILE", limit)
    code, report = doctor(capsys, "--photos", str(photo_dir), "--db", str(tmp_path / "k.db"))
    check = by_name(report)["inotify"]
    assert code == 1 and check["status"] == "fail"
    assert "6 folders" in check["detail"] and "sysctl fs.inotify.max_user_watches" in check["detail"]
    assert f"{photo_dir} will be polled every 60 s instead of watched" in check["detail"]


def test_doctor_checks_an_existing_database_is_writable(photo_dir: Path, db_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.store.db import open_db

    db_path.parent.mkdir(parents=True)
    open_db(db_path).conn.close()
    code, report = doctor(capsys, "--photos", str(photo_dir), "--db", str(db_path))
    assert code == 0 and by_name(report)["database"]["detail"] == f"{db_path} is writable and PRAGMA quick_check found it whole"


def _damage(db_path: Path) -> None:
    """A database with photos whose index pages were overwritten, as a bad sector or a
    copy cut short leaves it (the header still says SQLite)."""
    import sqlite3

    from daemon.store.db import open_db

    db_path.parent.mkdir(parents=True, exist_ok=True)
    db = open_db(db_path)
    db.conn.executemany("INSERT INTO images (path, root, size, mtime_ns, status, first_seen, updated_at) VALUES (?, '/p', 1, 1, 'pending', 0, 0)",
                        [(f"/p/IMG_{i:05d}.jpg",) for i in range(3000)])
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    page = sqlite3.connect(db_path).execute("PRAGMA page_size").fetchone()[0]
    size = db_path.stat().st_size
    with open(db_path, "r+b") as fh:
        for offset in range(page * 3, size - page, page * 4):
            fh.seek(offset + 100)
            fh.write(bytes(range(256)) * 4)


def test_doctor_runs_quick_check_and_names_a_damaged_database(photo_dir: Path, db_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _damage(db_path)
    code, report = doctor(capsys, "--photos", str(photo_dir), "--db", str(db_path))
    detail = by_name(report)["database"]["detail"]
    assert code == 1 and by_name(report)["database"]["status"] == "fail"
    assert "is damaged" in detail and "quick_check" in detail and f"mv {db_path} {db_path}.damaged" in detail


def test_damaged_database_at_start_gets_a_clear_message_and_no_traceback(photo_dir: Path, db_path: Path) -> None:
    import subprocess

    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"these are not the bytes of an SQLite database" * 200)
    result = subprocess.run([sys.executable, "-c", "import sys; from daemon.cli import main; sys.exit(main())", "run",
                             "--photos", str(photo_dir), "--db", str(db_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"keepers: the database {db_path} is damaged (file is not a database)" in result.stderr
    assert "keepers doctor" in result.stderr


def test_doctor_looks_for_extras_without_importing_them(photo_dir: Path, tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; from daemon.cli import main; main(['doctor', '--photos', sys.argv[1], '--db', sys.argv[2]]); "
            "print(sorted(m for m in ('tensorflow', 'torch', 'kagglehub', 'huggingface_hub', 'ai_edge_litert') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(photo_dir), str(tmp_path / "k.db")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "OK    extra tf:" in result.stdout or "WARN  extra tf:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
