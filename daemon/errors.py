"""The error types keepers raises. Each message names the thing, says what
happened and says what to do next."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class KeepersError(Exception):
    """Base class of every error keepers raises on purpose."""


class ConfigError(KeepersError):
    """The config file is not valid: names the file, the key and what is expected."""

    def __init__(self, file: Path | str | None, key: str, problem: str):
        self.file = str(file) if file else "<built-in defaults>"
        self.key = key
        self.problem = problem
        super().__init__(f"{self.file}: {key}: {problem}")


class ImageRejected(KeepersError):
    """A file could not be decoded as a photo; ``reason`` is a short, user-facing cause."""

    def __init__(self, path: Path | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class StoreError(KeepersError):
    """The database cannot be opened or written."""


@dataclass(frozen=True)
class SourceAttempt:
    """What one source said when asked for a model."""

    source: str  # e.g. "tfhub https://tfhub.dev/google/musiq/spaq/1"
    outcome: str  # "failed", "skipped", "offline"
    error_class: str  # e.g. "HTTP 503", "HashMismatch", "NotCached"
    message: str


@dataclass
class ModelUnavailable(KeepersError):
    """No source could provide a model. The message lists every source tried,
    what each said, and what the user can do."""

    model: str
    attempts: list[SourceAttempt] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [f"model {self.model!r} is unavailable: no source could provide it."]
        if self.attempts:
            lines.append("Sources tried, in order:")
            for a in self.attempts:
                lines.append(f"  - {a.source}: {a.outcome} ({a.error_class}): {a.message}")
        else:
            lines.append("No source is configured for it.")
        if self.hints:
            lines.append("What to do:")
            lines.extend(f"  * {h}" for h in self.hints)
        return "\n".join(lines)
