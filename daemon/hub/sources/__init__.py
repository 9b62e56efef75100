"""One module per kind of source. Each exposes ``fetch(spec, ctx) -> Path``
that returns a finished local copy, or raises a SourceFailure: each turns
its client's exceptions into one, by type, at the one place it calls the
client. Every download runs under the progress deadline of ``base``.
Frameworks and hub clients are imported inside ``fetch``, never at module
import."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from ..catalog import SourceSpec
from .base import FetchContext

Fetcher = Callable[[SourceSpec, FetchContext], Path]

_MODULES = {"local": "local", "package": "package", "tfhub": "tfhub", "kaggle": "kaggle", "hf": "hf", "https": "https"}


def fetcher(kind: str) -> Fetcher:
    """The fetch function of a source kind."""
    return importlib.import_module(f"{__name__}.{_MODULES[kind]}").fetch  # type: ignore[no-any-return]


__all__ = ["FetchContext", "Fetcher", "fetcher"]
