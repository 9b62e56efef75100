"""A file or folder already on this machine (the user's own checkpoint)."""

from __future__ import annotations

from pathlib import Path

from ..catalog import SourceSpec
from ..failures import SourceFailure
from .base import FetchContext


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    path = Path(spec.ref).expanduser()
    if not path.exists():
        raise SourceFailure("NotFound", f"{path} does not exist", transient=False)
    if path.is_dir() and not any(path.iterdir()):
        raise SourceFailure("NotFound", f"{path} is an empty folder", transient=False)
    return path
