"""The model catalog: configs/models.yaml → :class:`ModelSpec` values.

``load_catalog(config)`` reads the catalog named by ``models.catalog`` (the
shipped one by default), puts the user's ``models.sources`` entries in front
of each model's own sources, and checks every entry. Problems raise
:class:`~daemon.errors.ConfigError` naming the file, the key and the fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs
import yaml

from .. import paths
from ..config import Config
from ..errors import ConfigError

Task = Literal["aesthetic", "technical", "portrait", "comparator", "embedding"]
Framework = Literal["tf-savedmodel", "torch-state-dict", "torchscript", "onnx", "safetensors", "tflite"]
SourceKind = Literal["local", "package", "tfhub", "kaggle", "hf", "https"]

TASKS: tuple[str, ...] = ("aesthetic", "technical", "portrait", "comparator", "embedding")
FRAMEWORKS: tuple[str, ...] = ("tf-savedmodel", "torch-state-dict", "torchscript", "onnx", "safetensors", "tflite")
SOURCE_KINDS: tuple[str, ...] = ("local", "package", "tfhub", "kaggle", "hf", "https")
#: kinds that need no network: looked at first, and in offline mode
LOCAL_KINDS: tuple[str, ...] = ("local", "package")

#: the YAML key that holds each kind's main reference
_REF_KEY = {"local": "path", "package": "file", "tfhub": "url", "kaggle": "handle", "hf": "repo", "https": "url"}
#: the other keys each kind reads
_OPTIONAL_KEYS = {
    "local": ("sha256",),
    "package": ("sha256",),
    "tfhub": ("sha256",),
    "kaggle": ("sha256",),
    "hf": ("filename", "files", "revision", "sha256"),
    "https": ("sha256", "filename", "extract"),
}
#: the keys of one catalog entry
_MODEL_KEYS = ("task", "framework", "adapter", "output_range", "input", "scorer", "sources")


@dataclass(frozen=True)
class SourceSpec:
    """One place a model can come from."""

    kind: str  # one of SOURCE_KINDS
    ref: str  # path, URL, Kaggle handle or HF repo id
    sha256: str | None = None  # hex digest of the file (https: required)
    filename: str | None = None  # hf: one file of the repo; https: the cached file's name
    files: tuple[str, ...] = ()  # hf: several files (snapshot_download allow_patterns)
    revision: str | None = None  # hf: branch, tag or commit
    extract: bool = False  # https: the file is a tar archive of the model directory

    @property
    def label(self) -> str:
        """How messages and the store name this source, e.g. 'kaggle google/musiq/tensorFlow2/spaq'."""
        extra = f"@{self.revision}" if self.revision else ""
        name = f":{self.filename}" if self.filename and self.kind == "hf" else ""
        return f"{self.kind} {self.ref}{extra}{name}"


@dataclass(frozen=True)
class ModelSpec:
    """A catalog entry: what the model is and where it can come from, in order."""

    name: str
    task: str
    framework: str
    adapter: str
    output_range: tuple[float, float]
    input: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    sources: tuple[SourceSpec, ...] = ()
    scorer: str | None = None  # a built-in scorer that loads this model itself (before READY), e.g. faces


def catalog_file(config: Config) -> Path:
    return config.models.catalog or paths.DEFAULT_CATALOG_FILE


def load_catalog(config: Config) -> dict[str, ModelSpec]:
    """Every model of the catalog, with the user's extra sources in front."""
    file = catalog_file(config)
    try:
        data = yaml.safe_load(Path(file).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(file, "(file)", f"model catalog cannot be read: {exc.strerror or exc}; fix models.catalog") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(file, "(syntax)", f"model catalog is not valid YAML: {exc}") from exc
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(file, "models", "the catalog must have a `models:` mapping of name → entry")
    catalog = {name: _model(name, entry, file) for name, entry in entries.items()}
    user_file = config.source_file or paths.DEFAULT_CONFIG_FILE
    for name, extra in config.models.sources.items():
        if name not in catalog:
            raise ConfigError(user_file, f"models.sources.{name}", f"no model {name!r} in the catalog {file}; known: {', '.join(sorted(catalog))}")
        if not isinstance(extra, list):
            raise ConfigError(user_file, f"models.sources.{name}", "expected a list of sources, e.g. [{kind: local, path: ~/models/x}]")
        prepended = tuple(_source(s, user_file, f"models.sources.{name}[{i}]") for i, s in enumerate(extra))
        spec = catalog[name]
        labels = {s.label for s in prepended}
        merged = prepended + tuple(s for s in spec.sources if s.label not in labels)  # a source listed twice is tried once
        catalog[name] = dataclasses.replace(spec, sources=merged)
    return catalog


def _model(name: str, entry: Any, file: Path) -> ModelSpec:
    key = f"models.{name}"
    if not isinstance(entry, dict):
        raise ConfigError(file, key, "expected a mapping with task, framework, adapter, output_range and sources")
    unknown = sorted(set(entry) - set(_MODEL_KEYS), key=str)
    if unknown:
        hint = " (the adapter's options go under `input:`)" if unknown[0] in ("options", "opts", "params") else ""
        raise ConfigError(file, f"{key}.{unknown[0]}", f"unknown key in a catalog entry{hint}; expected any of {', '.join(_MODEL_KEYS)}")
    if entry.get("input") is not None and not isinstance(entry["input"], dict):
        raise ConfigError(file, f"{key}.input", f"expected a mapping of adapter options, e.g. {{long_side: 1024}}; got {entry['input']!r}")
    for required in ("task", "framework", "adapter", "output_range", "sources"):
        if required not in entry:
            raise ConfigError(file, f"{key}.{required}", "missing; every catalog entry needs it")
    if entry["task"] not in TASKS:
        raise ConfigError(file, f"{key}.task", f"expected one of {', '.join(TASKS)}, got {entry['task']!r}")
    if entry["framework"] not in FRAMEWORKS:
        raise ConfigError(file, f"{key}.framework", f"expected one of {', '.join(FRAMEWORKS)}, got {entry['framework']!r}")
    rng = entry["output_range"]
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng) and rng[0] < rng[1]):
        raise ConfigError(file, f"{key}.output_range", f"expected [lo, hi] with lo < hi, got {rng!r}")
    sources = entry["sources"]
    if not isinstance(sources, list):
        raise ConfigError(file, f"{key}.sources", "expected a list of sources")
    return ModelSpec(
        name=name,
        task=entry["task"],
        framework=entry["framework"],
        adapter=str(entry["adapter"]),
        output_range=(float(rng[0]), float(rng[1])),
        input=dict(entry.get("input") or {}),
        sources=tuple(_source(s, file, f"{key}.sources[{i}]") for i, s in enumerate(sources)),
        scorer=str(entry["scorer"]) if entry.get("scorer") else None,
    )


def _source(entry: Any, file: Path, key: str) -> SourceSpec:
    if not isinstance(entry, dict) or entry.get("kind") not in SOURCE_KINDS:
        raise ConfigError(file, key, f"expected a mapping with kind: one of {', '.join(SOURCE_KINDS)}")
    kind = entry["kind"]
    ref_key = _REF_KEY[kind]
    unknown = sorted(set(entry) - {"kind", ref_key} - set(_OPTIONAL_KEYS[kind]), key=str)
    if unknown:
        raise ConfigError(file, f"{key}.{unknown[0]}", f"unknown key for a {kind} source; expected {ref_key} and any of {', '.join(_OPTIONAL_KEYS[kind])}")
    ref = entry.get(ref_key)
    if not isinstance(ref, str) or not ref:
        raise ConfigError(file, f"{key}.{ref_key}", f"a {kind} source needs `{ref_key}`")
    if kind == "kaggle" and not _versioned_handle(ref):
        raise ConfigError(file, f"{key}.handle", f"pin a version: owner/model/framework/variation/VERSION, e.g. {ref.rstrip('/')}/1 "
                          "(an unversioned handle asks Kaggle before the cache, so it fails offline and silently takes new uploads)")
    if kind == "local":
        ref = str(expand_path(ref))
    if kind == "package" and not all(ref.partition(":")[::2]):
        raise ConfigError(file, f"{key}.file", f"expected DISTRIBUTION:PATH (a file an installed Python package ships), got {ref!r}")
    sha = entry.get("sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha.lower())):
        raise ConfigError(file, f"{key}.sha256", "expected 64 hex digits (sha256sum FILE)")
    if kind == "https" and not sha:
        raise ConfigError(file, f"{key}.sha256", "an https source must pin the file's sha256 (sha256sum FILE)")
    files = entry.get("files") or ()
    if not isinstance(files, (list, tuple)) or not all(isinstance(f, str) for f in files):
        raise ConfigError(file, f"{key}.files", "expected a list of file names")
    return SourceSpec(
        kind=kind,
        ref=ref,
        sha256=sha.lower() if sha else None,
        filename=entry.get("filename"),
        files=tuple(files),
        revision=str(entry["revision"]) if entry.get("revision") is not None else None,
        extract=bool(entry.get("extract", False)),
    )


def _versioned_handle(handle: str) -> bool:
    parts = handle.strip("/").split("/")
    return len(parts) == 5 and all(parts) and parts[4].isdigit()


def expand_path(value: str) -> Path:
    """Expand ~, $VARS and the {data_dir}/{cache_dir} placeholders of a catalog path."""
    import os

    value = value.replace("{data_dir}", platformdirs.user_data_dir(paths.APP_NAME)).replace("{cache_dir}", str(paths.cache_dir()))
    return Path(os.path.expandvars(value)).expanduser()
