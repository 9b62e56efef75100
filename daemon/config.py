"""keepers.yaml → typed, validated config.

``load_config()`` reads the shipped defaults, then the user's file on top of
them, and returns a frozen :class:`Config`. Every problem raises
:class:`~daemon.errors.ConfigError` naming the file, the dotted key and what
was expected, so a typo never turns into a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from . import paths
from .errors import ConfigError

WatchMode = Literal["auto", "events", "polling"]
Group = Literal["aesthetic", "technical", "portrait"]


@dataclass(frozen=True)
class PhotoFolder:
    path: Path
    watch_mode: WatchMode = "auto"


@dataclass(frozen=True)
class Weights:
    aesthetic: float = 0.5
    technical: float = 0.2
    portrait: float = 0.3

    def as_dict(self) -> dict[str, float]:
        return {"aesthetic": self.aesthetic, "technical": self.technical, "portrait": self.portrait}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries per source before falling through to the next one
    initial_seconds: float = 1.0  # first backoff; doubles each time, full jitter
    max_seconds: float = 30.0  # cap of one backoff (a Retry-After is honoured up to this)
    timeout_seconds: float = 60.0  # connect/read timeout of one request
    # an attempt that moves fewer than min_bytes_per_second * slow_window_seconds
    # bytes within slow_window_seconds gives up on that source (a trickle)
    min_bytes_per_second: float = 1024.0
    slow_window_seconds: float = 60.0


@dataclass(frozen=True)
class SourceHealth:
    failures: int = 3  # failures within `window_seconds` that open the circuit
    window_seconds: float = 600.0
    cooldown_seconds: float = 300.0  # how long an open circuit skips the source


@dataclass(frozen=True)
class ModelsConfig:
    offline: bool = False
    strict: bool = False
    catalog: Path | None = None  # None = the shipped configs/models.yaml
    enabled: tuple[str, ...] = ()
    # name -> list of source dicts put *before* the catalog's sources
    sources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    health: SourceHealth = field(default_factory=SourceHealth)
    retry_minutes: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0)  # growing intervals for failed models
    batch_size: int = 8
    threads: int = 0  # intra-op threads for TF/torch; 0 = one per core


@dataclass(frozen=True)
class Floors:
    eyes_open: float | None = None  # veto a photo whose eyes-open score is below this
    sharpness: float | None = None  # veto a photo whose sharpness score is below this


@dataclass(frozen=True)
class AlbumConfig:
    moment_gap_seconds: float = 120.0
    hash_distance: int = 16  # max Hamming distance of 64-bit hashes inside a cluster (see tests/test_album_thresholds.py)
    embedding_similarity: float = 0.92  # min cosine inside a cluster when embeddings exist
    cluster_cap: int = 40  # a cluster never grows past this many photos
    tiebreak_margin: float = 0.05
    floors: Floors = field(default_factory=Floors)
    policy: Literal["best_per_cluster", "top_n", "top_fraction"] = "best_per_cluster"
    top_n: int | None = None
    top_fraction: float | None = None
    reselect_minutes: float = 10.0
    reselect_after_new: int = 50
    bracket_seconds: float = 2.0  # frames this close with differing exposure bias form a bracket
    panorama_seconds: float = 10.0  # overlapping, shifted frames this close form a panorama


@dataclass(frozen=True)
class ExportConfig:
    folder: Path | None = None  # album folder of links; None = off
    link: Literal["symlink", "hardlink"] = "symlink"
    xmp: bool = False
    xmp_naming: Literal["with_extension", "replace_extension", "both"] = "with_extension"
    # darktable's "initial rating" on import: that rating in a darktable sidecar keepers has not
    # written is darktable's default, not a person's choice; 0 = every rating found there is a person's
    xmp_darktable_import_rating: Literal[0, 1, 2, 3, 4, 5] = 1


@dataclass(frozen=True)
class Config:
    photos: tuple[PhotoFolder, ...] = ()
    database: Path | None = None
    cache_dir: Path | None = None
    include_extensions: tuple[str, ...] = ()
    ignore_patterns: tuple[str, ...] = ()
    workers: int = 0  # 0 = one per core
    queue_size: int = 256
    decode_size: int = 1024  # long edge of the image the scorers see
    settle_seconds: float = 1.0
    rescan_minutes: float = 60.0
    watch_mode: WatchMode = "auto"
    scorers: tuple[str, ...] = ()
    weights: Weights = field(default_factory=Weights)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    album: AlbumConfig = field(default_factory=AlbumConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: the file this config was read from (None = defaults only); not a YAML key
    source_file: Path | None = field(default=None, compare=False)

    @property
    def database_path(self) -> Path:
        return self.database or paths.database_file()

    @property
    def cache_path(self) -> Path:
        return self.cache_dir or paths.cache_dir()

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, os.cpu_count() or 1)

    def with_overrides(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- loading


def load_config(
    file: Path | str | None = None,
    *,
    photos: list[Path] | None = None,
    database: Path | None = None,
    offline: bool | None = None,
    check_folders: bool = True,
) -> Config:
    """Load the config in effect.

    ``file`` (or $KEEPERS_CONFIG, else ~/.config/keepers/keepers.yaml when it
    exists) is merged over the shipped defaults. Command-line overrides come
    last. Raises ConfigError for unknown keys, wrong types and, when
    ``check_folders``, photo folders that do not exist.
    """
    defaults = _read_yaml(paths.DEFAULT_CONFIG_FILE)
    user_file: Path | None
    if file is not None:
        user_file = Path(file).expanduser()
        if not user_file.is_file():
            raise ConfigError(user_file, "(file)", "does not exist or is not a file; pass an existing keepers.yaml")
    else:
        candidate = paths.user_config_file()
        user_file = candidate if candidate.is_file() else None
    merged = _deep_merge(defaults, _read_yaml(user_file) if user_file else {})
    config = _build(Config, merged, "", user_file or paths.DEFAULT_CONFIG_FILE)
    if not config.photos:
        # `photos: []`, `photos:` or no key: the pictures folder, as the shipped config's comment says
        # (before, an empty list in the user's file watched nothing, silently)
        config = dataclasses.replace(config, photos=tuple(PhotoFolder(p) for p in paths.default_photo_folders()))
    changes: dict[str, Any] = {"source_file": user_file}
    if photos:
        changes["photos"] = tuple(PhotoFolder(Path(p).expanduser().resolve()) for p in photos)
    if database is not None:
        changes["database"] = Path(database).expanduser()
    if offline is not None or paths.offline_from_env():
        models = dataclasses.replace(config.models, offline=bool(offline) or paths.offline_from_env())
        changes["models"] = models
    config = dataclasses.replace(config, **changes)
    if check_folders:
        for i, folder in enumerate(config.photos):
            if not folder.path.is_dir():
                raise ConfigError(
                    user_file if not photos else "--photos",
                    f"photos[{i}]",
                    f"folder {str(folder.path)!r} does not exist; create it or point `photos` at your picture folder",
                )
    return config


def write_user_config(photos: list[Path], file: Path | None = None) -> Path:
    """Write a first config file holding the user's photo folders; returns its path.

    The file is the shipped default config (every key with its comment) with
    ``photos`` set, so the next run, `keepers doctor` and the service watch the
    same folders without ``--photos``. Raises FileExistsError rather than
    overwrite a config the user has; OSError when it cannot be written.
    """
    target = file or paths.user_config_file()
    text = paths.DEFAULT_CONFIG_FILE.read_text(encoding="utf-8")
    listed = yaml.safe_dump([str(Path(p).expanduser().resolve()) for p in photos], default_flow_style=True, width=10_000).strip()
    line = "photos: []\n"
    if line not in text:  # pragma: no cover - the shipped file and this function change together
        raise ValueError(f"{paths.DEFAULT_CONFIG_FILE} has no `{line.strip()}` line to fill in")
    text = text.replace(line, f"photos: {listed}\n", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "x", encoding="utf-8") as out:  # "x": never overwrite the user's own file
        out.write(text)
    return target


def _read_yaml(file: Path | None) -> dict[str, Any]:
    if file is None:
        return {}
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, "(file)", f"cannot be read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(syntax)"
        raise ConfigError(file, where, f"is not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(file, "(top level)", "must be a mapping of keys to values")
    return data


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "sources":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _build(cls: type, data: Any, prefix: str, file: Path) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(file, prefix or "(top level)", "expected a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source_file"}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(file, key, f"unknown key; expected one of: {', '.join(sorted(names))}")
    kwargs = {name: _convert(hints[name], data[name], f"{prefix}{name}", file) for name in data}
    return cls(**kwargs)


def _convert(tp: Any, value: Any, key: str, file: Path) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, file)
            except ConfigError:
                continue
        raise ConfigError(file, key, f"expected {_describe(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(file, key, f"expected {_describe(tp)}, got {value!r}")
        return value
    if origin is tuple:
        if value is None:
            return ()
        if args[0] is PhotoFolder and isinstance(value, (str, dict)):
            value = [value]  # `photos: ~/Pictures`: one folder needs no list
        if not isinstance(value, list):
            raise ConfigError(file, key, f"expected {_describe(tp)}, got {value!r}")
        return tuple(_convert(args[0], v, f"{key}[{i}]", file) for i, v in enumerate(value))
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(file, key, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is PhotoFolder and isinstance(value, str):
        return PhotoFolder(_path(value))
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, f"{key}.", file)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(file, key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(file, key, f"expected an integer, got {value!r}")
        if value < 0:
            raise ConfigError(file, key, f"must not be negative, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(file, key, f"expected a number, got {value!r}")
        if value < 0:
            raise ConfigError(file, key, f"must not be negative, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(file, key, f"expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(file, key, f"expected a path, got {value!r}")
        return _path(value)
    raise ConfigError(file, key, f"unsupported setting type {tp!r}")  # pragma: no cover - a bug in this module


def _path(value: str) -> Path:
    return Path(os.path.expandvars(value)).expanduser()
