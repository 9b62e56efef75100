"""Every path default and environment override in one place.

Defaults follow the XDG base directories through platformdirs; each can be
overridden by an environment variable (useful for tests and for running
several instances side by side) and, above that, by the config file.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "keepers"

#: Environment variables the project reads.
ENV_CONFIG = "KEEPERS_CONFIG"  # path of keepers.yaml
ENV_DB = "KEEPERS_DB"  # path of the SQLite database
ENV_CACHE = "KEEPERS_CACHE"  # model cache folder
ENV_STATE = "KEEPERS_STATE_DIR"  # state folder (database, demo set)
ENV_OFFLINE = "KEEPERS_OFFLINE"  # "1" = use cached models only, no network
ENV_PHOTOS = "KEEPERS_PHOTOS"  # os.pathsep-separated photo folders
#: tests only (a fault hook, never set in use): while the file this names exists, the store
#: writer's COMMIT fails with sqlite3.DatabaseError, as on a damaged database
ENV_FAULT_COMMIT = "KEEPERS_FAULT_COMMIT"

PACKAGE_DIR = Path(__file__).resolve().parent
#: The shipped default config and model catalog (kept inside the package so
#: an installed keepers finds them; ``configs/`` at the top level links here).
DEFAULT_CONFIG_FILE = PACKAGE_DIR / "keepers.yaml"
DEFAULT_CATALOG_FILE = PACKAGE_DIR / "models.yaml"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def state_dir() -> Path:
    return _env_path(ENV_STATE) or Path(platformdirs.user_state_dir(APP_NAME))


def cache_dir() -> Path:
    return _env_path(ENV_CACHE) or Path(platformdirs.user_cache_dir(APP_NAME))


#: The hub clients' cache variables, and the folder under keepers' cache each defaults to.
CLIENT_CACHES = {"TFHUB_CACHE_DIR": "tfhub", "KAGGLEHUB_CACHE": "kagglehub", "HF_HUB_CACHE": "huggingface"}


def client_cache_dirs(base: Path | None = None) -> dict[str, Path]:
    """Each hub client's cache folder: its own variable when set, else a folder under
    ``base`` (keepers' cache folder, :func:`cache_dir` by default).

    Keeping them under keepers' cache folder lets the sandboxed service
    (read-only home but for keepers' own folders) fetch models and keep them.
    """
    root = base or cache_dir()
    return {name: _env_path(name) or root / folder for name, folder in CLIENT_CACHES.items()}


def export_client_caches(base: Path | None = None) -> dict[str, Path]:
    """Set the clients' cache variables that are unset (kagglehub and tensorflow_hub read them at each call)."""
    dirs = client_cache_dirs(base)
    for name, folder in dirs.items():
        os.environ.setdefault(name, str(folder))
    return dirs


def user_config_file() -> Path:
    """The config file in effect: $KEEPERS_CONFIG, else ~/.config/keepers/keepers.yaml."""
    return _env_path(ENV_CONFIG) or config_dir() / "keepers.yaml"


def database_file() -> Path:
    return _env_path(ENV_DB) or state_dir() / "keepers.db"


def demo_dir() -> Path:
    """Where `make run` writes the demo set when the default photo folder is missing."""
    return state_dir() / "demo-photos"


def default_photo_folders() -> list[Path]:
    env = os.environ.get(ENV_PHOTOS)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path(platformdirs.user_pictures_dir())]


def offline_from_env() -> bool:
    """True when KEEPERS_OFFLINE or HF_HUB_OFFLINE asks for cache-only model loading."""
    for name in (ENV_OFFLINE, "HF_HUB_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    return False
