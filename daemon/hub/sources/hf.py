"""Hugging Face Hub, through huggingface_hub (its cache, revision pinning,
its own resumable downloads). HF_ENDPOINT and the cache folder are read
here, at call time, and passed in (the library reads them only at import).

A snapshot (``files:``) must hold every listed file: huggingface_hub's
``allow_patterns`` quietly skips a name the repository lacks, so a
snapshot missing one fails here (and the chain tries the next source), and
the partial snapshot is removed so nothing ever serves it.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path

from ... import paths
from ..catalog import SourceSpec
from ..failures import SourceFailure, causes, classify, first_line, status_failure
from .base import FetchContext, folder_bytes, run_watched


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    import huggingface_hub
    from tqdm.auto import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            kwargs["disable"] = not ctx.progress
            super().__init__(*args, **kwargs)

    cache_dir = hf_cache_dir()
    repo_folder = cache_dir / f"models--{spec.ref.replace('/', '--')}"  # huggingface_hub's documented cache layout
    try:
        path = run_watched(lambda: _download(huggingface_hub, spec, ctx, _Bar, cache_dir), folder_bytes(repo_folder), ctx,
                           f"hf {spec.ref}")
    except Exception as exc:
        raise client_failure(exc, spec.ref) from exc
    if spec.files:
        _check_snapshot(spec, path)
    return path


def _download(huggingface_hub, spec: SourceSpec, ctx: FetchContext, bar: type, cache_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    endpoint = os.environ.get("HF_ENDPOINT") or None
    if spec.filename:
        return Path(huggingface_hub.hf_hub_download(
            spec.ref, spec.filename, revision=spec.revision, endpoint=endpoint, etag_timeout=ctx.timeout,
            tqdm_class=bar, cache_dir=cache_dir,
        ))
    return Path(huggingface_hub.snapshot_download(
        spec.ref, revision=spec.revision, allow_patterns=list(spec.files) or None, endpoint=endpoint,
        etag_timeout=ctx.timeout, tqdm_class=bar, cache_dir=cache_dir,
    ))


def _check_snapshot(spec: SourceSpec, folder: Path) -> None:
    """Raise (and remove the snapshot) unless every listed file or pattern arrived."""
    have = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
    missing = [pattern for pattern in spec.files if not fnmatch.filter(have, pattern)]
    if not missing:
        return
    shutil.rmtree(folder, ignore_errors=True)  # the links only: the blobs stay for a later, complete snapshot
    raise SourceFailure("MissingFiles", f"{spec.ref}@{spec.revision or 'main'} has no {', '.join(missing)} "
                        f"(got {', '.join(sorted(have)) or 'nothing'}); nothing was cached. Check `files:` against the "
                        "repository's file list at that revision", transient=False)


def client_failure(exc: BaseException, what: str) -> SourceFailure:
    """huggingface_hub's and httpx's exceptions, by type.

    huggingface_hub retries 5xx, 429 and connection errors with its own
    backoff before it raises, so nothing it raises is worth an immediate retry.
    """
    import httpx2
    from huggingface_hub import errors

    failure: SourceFailure | None = None
    for cur in causes(exc):
        if isinstance(cur, SourceFailure):
            return cur
        if isinstance(cur, errors.HfHubHTTPError) and getattr(cur, "response", None) is not None:
            failure = status_failure(cur.response.status_code, cur.response.headers, f"{what}: {first_line(cur)}")
        elif isinstance(cur, errors.OfflineModeIsEnabled):
            failure = SourceFailure("Offline", f"{what}: {first_line(cur)}", transient=False)
        elif isinstance(cur, httpx2.TimeoutException):
            failure = SourceFailure("Timeout", f"{what}: {first_line(cur)}", transient=True)
        elif isinstance(cur, httpx2.TransportError):
            failure = SourceFailure("ConnectionError", f"{what}: {first_line(cur)}", transient=True)
        if failure is not None:
            break
    failure = failure or classify(exc)
    if failure.transient:
        return SourceFailure(failure.error_class, f"{failure.message} (after huggingface_hub's own retries)",
                             transient=False, status=failure.status)
    return failure


def hf_cache_dir() -> Path:
    """huggingface_hub's cache folder for keepers: HF_HUB_CACHE when set, else under keepers' cache folder."""
    return paths.client_cache_dirs()["HF_HUB_CACHE"]
