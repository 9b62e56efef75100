"""The user unit passes systemd's own checks: `systemd-analyze verify` and `security` exposure <= 4.0."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "keepers.service"
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian package `systemd`; `make test` installs it when apt can)")


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A home whose ~/.local/bin/keepers is this checkout's entry point, and a runtime dir."""
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "keepers").symlink_to(Path(sys.executable).parent / "keepers")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    shutil.copy(UNIT, unit_dir / "keepers.service")
    return {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "UNIT": str(unit_dir / "keepers.service")}


def _analyze(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([ANALYZE, *args], env=env, capture_output=True, text=True, timeout=60)
    if "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()}")
    return result


def test_unit_passes_systemd_analyze_verify(user_env: dict[str, str]) -> None:
    result = _analyze(user_env, "verify", "--user", user_env["UNIT"])
    assert result.returncode == 0, result.stderr
    assert "keepers.service" not in result.stderr, f"verify warned about the unit: {result.stderr}"


def test_unit_security_exposure_is_at_most_4(user_env: dict[str, str]) -> None:
    result = _analyze(user_env, "security", "--user", "--offline=yes", user_env["UNIT"])
    match = re.search(r"Overall exposure level for keepers\.service: ([0-9.]+)", result.stdout + result.stderr)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= 4.0, f"exposure {match.group(1)}:\n{result.stdout[-3000:]}"


def test_unit_is_a_notify_service_with_watchdog_restart_and_read_only_photos() -> None:
    text = UNIT.read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, flags=re.M))
    assert settings["Type"] == "notify"
    assert int(settings["WatchdogSec"]) > 0
    assert settings["Restart"] == "on-failure"
    assert settings["ProtectSystem"] == "strict" and settings["ProtectHome"] == "read-only"
    assert settings["NoNewPrivileges"] == "yes" and settings["PrivateTmp"] == "yes"
    assert set(settings["ReadWritePaths"].split()) == {"%h/.local/state/keepers", "%h/.cache/keepers"}
    assert settings["ExecStart"].endswith("keepers run")
