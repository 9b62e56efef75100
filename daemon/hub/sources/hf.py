"""Hugging Face Hub, through huggingface_hub (its cache under HF_HOME,
revision pinning, its own resumable downloads). HF_ENDPOINT and the cache
folder are read here, at call time, and passed in (the library reads them
only at import)."""

from __future__ import annotations

import os
from pathlib import Path

from ..catalog import SourceSpec
from ..failures import SourceFailure, classify
from .base import FetchContext


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    import huggingface_hub
    from tqdm.auto import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["disable"] = not ctx.progress
            super().__init__(*args, **kwargs)

    try:
        return _download(huggingface_hub, spec, ctx, _Bar)
    except Exception as exc:
        failure = classify(exc)
        if failure.transient:  # huggingface_hub already retried 5xx, 429 and connection errors with its own backoff
            raise SourceFailure(failure.error_class, f"{failure.message} (after huggingface_hub's own retries)",
                                transient=False, status=failure.status) from exc
        raise failure from exc


def _download(huggingface_hub, spec: SourceSpec, ctx: FetchContext, bar: type) -> Path:  # type: ignore[no-untyped-def]
    endpoint = os.environ.get("HF_ENDPOINT") or None
    _Bar = bar
    cache_dir = hf_cache_dir()
    if spec.filename:
        path = huggingface_hub.hf_hub_download(
            spec.ref, spec.filename, revision=spec.revision, endpoint=endpoint, etag_timeout=ctx.timeout,
            tqdm_class=_Bar, cache_dir=cache_dir,
        )
    else:
        path = huggingface_hub.snapshot_download(
            spec.ref,
            revision=spec.revision,
            allow_patterns=list(spec.files) or None,
            endpoint=endpoint,
            etag_timeout=ctx.timeout,
            tqdm_class=_Bar,
            cache_dir=cache_dir,
        )
    return Path(path)


def hf_cache_dir() -> Path:
    """huggingface_hub's cache folder, read from the environment now (the library reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"
