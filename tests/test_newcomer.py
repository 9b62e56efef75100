"""The first hour of a new user, scripted: a fresh config folder, `keepers run --tui`
on a folder that does not exist, then on a real one; the first run remembers the
folder; `run --once` ends with the album re-picked."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.config import load_config
from daemon.imaging.demo import write_demo_set

MAIN = "import sys; from daemon.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def demo_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two bursts of the demo set (eight photos: sharp, blurred, noisy, dark frames of two scenes)."""
    folder = tmp_path_factory.mktemp("demo")
    written = sorted(write_demo_set(folder))
    for extra in written[8:]:
        extra.unlink()
    return folder


def two_bursts(demo_photos: Path, folder: Path) -> Path:
    shutil.copytree(demo_photos, folder)
    return folder


def run_in_a_terminal(argv: list[str], timeout: float = 60.0) -> tuple[int, str]:
    """Run `keepers ARGV` on a pseudo-terminal (as a user's shell does); its exit code and screen output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", MAIN, *argv], stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(leader)
    return code, b"".join(chunks).decode(errors="replace")


def test_run_tui_on_a_missing_folder_says_so_at_once_and_remembers_nothing(tmp_path: Path, isolated_env: Path) -> None:
    config_file = isolated_env / "config" / "keepers.yaml"
    started = time.monotonic()
    code, screen = run_in_a_terminal(["run", "--tui", "--photos", str(tmp_path / "no-such-folder"), "--db", str(tmp_path / "k.db")])
    assert code == 2, screen
    assert f"folder '{tmp_path / 'no-such-folder'}' does not exist" in screen
    assert "\x1b[?1049h" not in screen  # the dashboard never took the screen to hide it
    assert time.monotonic() - started < 30
    assert not config_file.exists()  # a folder that does not exist is not remembered


def test_the_first_run_saves_the_photo_folder_as_the_users_config(tmp_path: Path, isolated_env: Path, demo_photos: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`make run PHOTOS=DIR` is remembered: the next plain run, doctor and the service use DIR."""
    photos = two_bursts(demo_photos, tmp_path / "photos")
    config_file = isolated_env / "config" / "keepers.yaml"
    assert main(["run", "--once", "--no-album", "--photos", str(photos), "--db", str(tmp_path / "k.db")]) == 0
    err = capsys.readouterr().err
    assert f"saved your photo folder ({photos}) in a new config, {config_file}" in err
    assert [f.path for f in load_config().photos] == [photos]
    # every other key is the shipped default, with its comment
    assert "# Folders to watch, recursively." in config_file.read_text() and load_config().workers == 0
    # a later run with other folders never overwrites the user's file
    other = tmp_path / "other"
    other.mkdir()
    before = config_file.read_text()
    assert main(["run", "--once", "--no-album", "--photos", str(other), "--db", str(tmp_path / "k.db")]) == 0
    assert config_file.read_text() == before and "saved your photo" not in capsys.readouterr().err


def test_run_once_ends_with_the_album_repicked_and_says_what_changed(tmp_path: Path, demo_photos: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    photos = two_bursts(demo_photos, tmp_path / "photos")
    db = tmp_path / "k.db"
    assert main(["run", "--once", "--photos", str(photos), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    album = out[out.index("album:"):]
    assert album.startswith("album: 2 picks, +2 -0"), out  # one pick per burst
    assert "+ " + str(photos / "01_astronaut_1_sharp.jpg") in album, album
    # nothing changed: the next run says so, and --no-album leaves the album alone
    assert main(["run", "--once", "--photos", str(photos), "--db", str(db)]) == 0
    assert "album: 2 picks, +0 -0" in capsys.readouterr().out
    assert main(["run", "--once", "--no-album", "--photos", str(photos), "--db", str(db)]) == 0
    assert "album:" not in capsys.readouterr().out


def test_install_advice_names_the_checkout_the_extra_and_a_cpu_torch() -> None:
    """keepers is not on the package index, and `.[torch]` alone resolves the CUDA build:
    the advice installs from this checkout into the Python running keepers, CPU torch first."""
    from daemon.extras import checkout_dir, install_hint

    checkout = checkout_dir()
    assert checkout is not None and (checkout / "pyproject.toml").is_file()
    tf = install_hint("tf")
    assert f"{sys.executable} -m pip install -e '{checkout}[tf]'" in tf and "make test" in tf and "torch" not in tf
    torch = install_hint("torch")
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in torch
    assert torch.index("torch==2.13.0") < torch.index(f"'{checkout}[torch]'")
    assert "pip install 'keepers[" not in tf + torch


def test_a_tf_hub_source_without_its_client_says_install_tf_not_torch() -> None:
    from daemon.hub.failures import classify

    try:
        import tensorflow_hub_not_installed  # type: ignore[import-not-found]  # noqa: F401
    except ImportError as exc:
        exc.name = "tensorflow_hub"  # what `import tensorflow_hub` raises when the tf extra is missing
        failure = classify(exc)
    assert failure.error_class == "ClientMissing"
    assert "[tf]" in failure.message and "torch" not in failure.message


def test_doctor_advises_installing_a_missing_extra_from_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from daemon.cli import doctor

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rawpy" else real(name, *a))
    raw = next(c for c in doctor.check_extras() if c.name == "extra raw")
    assert raw.status == "warn" and "-m pip install -e" in raw.detail and "[raw]" in raw.detail


@pytest.mark.slow
@pytest.mark.asyncio
async def test_on_a_real_folder_pin_reject_unpin_show_in_the_detail_pane_at_once(tmp_path: Path, demo_photos: Path) -> None:
    """`keepers run --tui` as a newcomer meets it: the real daemon as the dashboard's child on
    two bursts; on the Photos screen each of k, x, u shows in the detail pane at once, then as
    the daemon stored it, with no key pressed in between."""
    from fixtures_tui import screen_text, settle
    from tui.app import KeepersApp
    from tui.launch import DaemonProcess

    photos = two_bursts(demo_photos, tmp_path / "photos")
    db = tmp_path / "state" / "keepers.db"
    config = tmp_path / "keepers.yaml"
    config.write_text("settle_seconds: 0.2\nworkers: 1\nrescan_minutes: 0\n")
    daemon = DaemonProcess(["run", "--photos", str(photos), "--db", str(db), "--config", str(config)], tmp_path / "run.log").start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not _picked(db):
            assert daemon.running(), daemon.log_tail()
            time.sleep(0.3)
        assert _picked(db), daemon.log_tail()
        app = KeepersApp(db, daemon=daemon, refresh_seconds=1.0)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3")
            await settle(pilot)
            path = app.screen.selected_photo()
            assert path is not None
            for key, kind, stored in (("k", "pin", "pinned by hand"), ("x", "reject", "rejected by hand"), ("u", "unpin", None)):
                def shows_stored(detail: str) -> bool:
                    return "asked of the daemon" not in detail and ((stored in detail) if stored else ("by hand" not in detail))

                before = _detail(app)
                await pilot.press(key)
                await pilot.pause(0.3)
                # at once: what was asked, or already what the daemon stored (it may answer that fast)
                now = _detail(app)
                assert now != before and (f"{kind} asked of the daemon" in now or shows_stored(now)), (kind, now)
                for _ in range(100):  # then the daemon's answer, within its 1 s poll and a selection
                    if shows_stored(_detail(app)):
                        break
                    await pilot.pause(0.1)
                assert shows_stored(_detail(app)), (kind, _detail(app), daemon.log_tail())
                assert app.screen.selected_photo() == path
            assert app.daemon_exit is None and "The daemon stopped" not in screen_text(app)
    finally:
        assert daemon.stop(20) == 0, daemon.log_tail()


def _picked(db: Path) -> bool:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return bool(conn.execute("SELECT count(*) FROM picks").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _detail(app) -> str:  # type: ignore[no-untyped-def]
    from fixtures_tui import widget_text

    return widget_text(app, "#photo-detail")
