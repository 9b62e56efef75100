"""The user unit: `systemd-analyze verify` clean, `security` exposure <= 4.0, and it starts on a new account
(every path keepers writes by default is writable and created by the unit; its Documentation= exists)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "keepers.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
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


@needs_analyze
def test_unit_passes_systemd_analyze_verify(user_env: dict[str, str]) -> None:
    result = _analyze(user_env, "verify", "--user", user_env["UNIT"])
    assert result.returncode == 0, result.stderr
    assert "keepers.service" not in result.stderr, f"verify warned about the unit: {result.stderr}"


@needs_analyze
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
    assert settings["ExecStart"].endswith("keepers run")


def _settings(name: str) -> list[str]:
    """Every value of ``name=`` in the unit (a key may repeat)."""
    return re.findall(rf"^{name}=(.*)$", UNIT.read_text(), flags=re.M)


def _writable_paths(home: Path) -> tuple[list[Path], list[str]]:
    """The folders the unit lets keepers write, for ``home``, and the problems that would stop a fresh account.

    CacheDirectory= is created by systemd under ~/.cache. A ReadWritePaths= entry
    must be optional (`-`), or systemd fails the start with 226/NAMESPACE when it
    is missing, and must be created by the unit itself (an ExecStartPre=+ mkdir -p).
    StateDirectory= is not used: on systemd 252 a user unit's state is under
    ~/.config, not ~/.local/state.
    """
    expand = lambda value: Path(value.replace("%h", str(home)))  # noqa: E731
    writable = [home / ".cache" / name for value in _settings("CacheDirectory") for name in value.split()]
    problems = []
    made = [expand(p) for line in _settings("ExecStartPre") if "mkdir -p" in line for p in line.split("mkdir -p", 1)[1].split()]
    for value in _settings("ReadWritePaths"):
        for entry in value.split():
            if not entry.startswith("-"):
                problems.append(f"ReadWritePaths={entry} has no `-`: a fresh account fails with 226/NAMESPACE")
            path = expand(entry.lstrip("-"))
            if path not in made:
                problems.append(f"{path} is writable but nothing in the unit creates it")
            writable.append(path)
    assert not _settings("StateDirectory"), "StateDirectory= of a user unit is ~/.config/<name> on systemd 252"
    return writable, problems


def test_every_path_the_daemon_writes_by_default_is_writable_and_created_by_the_unit(tmp_path: Path) -> None:
    """keepers run under the unit's sandbox on a new account: its database, model cache and the
    hub clients' caches (everything it writes without a config) lie in folders the unit makes writable."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "KEEPERS_", "TFHUB_", "KAGGLEHUB_", "HF_"))}
    env["HOME"] = str(home)
    probe = (
        "import json; from daemon import paths; from daemon.config import load_config; from daemon.hub.cache import HubCache\n"
        "c = load_config(check_folders=False)\n"
        "out = [paths.state_dir(), c.database_path.parent, paths.demo_dir(), c.cache_path, HubCache(c.cache_path).root]\n"
        "out += list(paths.client_cache_dirs(c.cache_path).values())\n"
        "print(json.dumps([str(p) for p in out]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    written = [Path(p) for p in json.loads(result.stdout)]
    writable, problems = _writable_paths(home)
    assert problems == []
    outside = [p for p in written if not any(p == w or w in p.parents for w in writable)]
    assert outside == [], f"the daemon writes there by default, but the unit keeps it read-only: {outside}"
    assert home / ".local" / "state" / "keepers" in writable and home / ".cache" / "keepers" in writable


def test_documentation_points_at_the_readme_the_install_steps_put_there(tmp_path: Path) -> None:
    (doc,) = _settings("Documentation")
    assert doc.startswith("file://%h/"), doc
    relative = doc.removeprefix("file://%h/")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Install the systemd user service", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    (line,) = [ln for ln in block.splitlines() if ln.startswith("install ") and f"~/{relative}" in ln]
    home = tmp_path / "home"
    command = line.split("#", 1)[0].replace("~", str(home)).split()
    subprocess.run(command, cwd=REPO, check=True, timeout=30)  # the README's own step, in a fresh home
    assert (home / relative).read_text(encoding="utf-8") == readme
