"""`keepers doctor`: what it finds on a good set-up and on broken ones."""

from __future__ import annotations

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


def test_doctor_checks_an_existing_database_is_writable(photo_dir: Path, db_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.store.db import open_db

    db_path.parent.mkdir(parents=True)
    open_db(db_path).conn.close()
    code, report = doctor(capsys, "--photos", str(photo_dir), "--db", str(db_path))
    assert code == 0 and by_name(report)["database"]["detail"] == f"{db_path} is writable"


def test_doctor_looks_for_extras_without_importing_them(photo_dir: Path, tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; from daemon.cli import main; main(['doctor', '--photos', sys.argv[1], '--db', sys.argv[2]]); "
            "print(sorted(m for m in ('tensorflow', 'torch', 'kagglehub', 'huggingface_hub') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, str(photo_dir), str(tmp_path / "k.db")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "OK    extra tf:" in result.stdout or "WARN  extra tf:" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"
