"""Kaggle Models, through kagglehub (its cache in KAGGLEHUB_CACHE, its auth:
KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json;
public models need none).

Handles carry a version (``google/musiq/tensorFlow2/spaq/1``, the catalog
refuses one without): kagglehub looks a versioned handle up in its cache
before anything else, so a model fetched once loads offline with no request
at all, and a new upload never replaces the one the scores were made with.

The endpoint: kagglehub 1.0 / kagglesdk 0.1.38 have no setting for an
arbitrary API address, only KAGGLE_API_ENVIRONMENT's fixed hosts (e.g.
LOCALHOST = http://localhost); the API calls go through ``requests``, which
honours HTTP(S)_PROXY and NO_PROXY. A mirror or a test server is reached
that way (tests/fakehubs: KAGGLE_API_ENVIRONMENT=LOCALHOST plus HTTP_PROXY
pointing at the fake); tests/test_hub_sources.py fails if that changes.
Neither sets a deadline on a whole download: the progress deadline here does.
"""

from __future__ import annotations

from pathlib import Path

from ... import paths
from ..catalog import SourceSpec
from ..failures import SourceFailure, causes, classify, first_line, status_failure
from .base import FetchContext, folder_bytes, run_watched


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    import kagglehub

    cache = paths.client_cache_dirs()["KAGGLEHUB_CACHE"]  # exported to kagglehub by the hub
    try:
        path = run_watched(lambda: kagglehub.model_download(spec.ref), folder_bytes(cache / "models"), ctx, f"kaggle {spec.ref}")
    except Exception as exc:
        raise client_failure(exc, f"kaggle {spec.ref}") from exc
    return Path(path)


def client_failure(exc: BaseException, what: str) -> SourceFailure:
    """kagglehub's and requests' exceptions, by type."""
    import requests
    from kagglehub import exceptions

    for cur in causes(exc):
        if isinstance(cur, SourceFailure):
            return cur
        if isinstance(cur, requests.HTTPError) and cur.response is not None:
            return status_failure(cur.response.status_code, cur.response.headers, f"{what}: {first_line(cur)}")
        if isinstance(cur, (exceptions.CredentialError, exceptions.UnauthenticatedError)):
            return SourceFailure("HTTP 401", f"{what}: {first_line(cur)}", transient=False, status=401)
        if isinstance(cur, exceptions.NotFoundError):
            return SourceFailure("HTTP 404", f"{what}: {first_line(cur)}", transient=False, status=404)
        if isinstance(cur, exceptions.DataCorruptionError):
            return SourceFailure("HashMismatch", f"{what}: {first_line(cur)}", transient=False)
        if isinstance(cur, exceptions.BackendError):
            status = cur.error_code if isinstance(cur.error_code, int) else None
            return SourceFailure(f"HTTP {status}" if status else "BackendError", f"{what}: {first_line(cur)}",
                                 transient=bool(status and status >= 500), status=status)
        if isinstance(cur, requests.Timeout):
            return SourceFailure("Timeout", f"{what}: {first_line(cur)}", transient=True)
        if isinstance(cur, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            return SourceFailure("ConnectionError", f"{what}: {first_line(cur)}", transient=True)
    return classify(exc)
