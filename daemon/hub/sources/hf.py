"""Hugging Face Hub, through huggingface_hub (its cache under HF_HOME,
revision pinning, its own resumable downloads). HF_ENDPOINT is read here, at
call time, and passed as ``endpoint=`` (the library reads it only at import)."""

from __future__ import annotations

import os
from pathlib import Path

from ..catalog import SourceSpec
from .base import FetchContext


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    import huggingface_hub
    from tqdm.auto import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["disable"] = not ctx.progress
            super().__init__(*args, **kwargs)

    endpoint = os.environ.get("HF_ENDPOINT") or None
    if spec.filename:
        path = huggingface_hub.hf_hub_download(
            spec.ref, spec.filename, revision=spec.revision, endpoint=endpoint, etag_timeout=ctx.timeout, tqdm_class=_Bar
        )
    else:
        path = huggingface_hub.snapshot_download(
            spec.ref,
            revision=spec.revision,
            allow_patterns=list(spec.files) or None,
            endpoint=endpoint,
            etag_timeout=ctx.timeout,
            tqdm_class=_Bar,
        )
    return Path(path)
