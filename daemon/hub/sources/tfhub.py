"""TensorFlow Hub: a tfhub-style compressed tarball URL, through tensorflow_hub.

tensorflow_hub downloads into TFHUB_CACHE_DIR under a lock, extracts into a
temporary folder as the bytes arrive and renames it into place, so a broken
download never becomes a cached module; it refuses tar members outside the
module folder (a ValueError).

tensorflow_hub 0.16.1 opens its URL with ``urllib.request.urlopen`` and no
timeout, and has no setting for one: a stalled or trickling server would
hold the call forever. keepers does not reach into the resolver for it; the
progress deadline (bytes arriving in the cache folder) bounds every attempt
instead. tests/test_hub_sources.py checks that this client still sets no
timeout of its own, so a release that adds one is noticed.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
from pathlib import Path

from ... import paths
from ..catalog import SourceSpec
from ..failures import SourceFailure, UnsafeArchive, causes, classify, first_line, status_failure
from .base import FetchContext, folder_bytes, run_watched


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    from tensorflow_hub.compressed_module_resolver import HttpCompressedFileResolver

    cache = paths.client_cache_dirs()["TFHUB_CACHE_DIR"]  # exported to tensorflow_hub by the hub
    try:
        return Path(run_watched(lambda: HttpCompressedFileResolver()(spec.ref), folder_bytes(cache), ctx, f"tfhub {spec.ref}"))
    except Exception as exc:
        raise client_failure(exc, spec.ref) from exc


def client_failure(exc: BaseException, what: str) -> SourceFailure:
    """urllib's and tensorflow_hub's exceptions, by type."""
    for cur in causes(exc):
        if isinstance(cur, SourceFailure):
            return cur
        if isinstance(cur, urllib.error.HTTPError):
            return status_failure(cur.code, cur.headers, f"{what}: {first_line(cur)}")
        if isinstance(cur, (socket.timeout, TimeoutError)):
            return SourceFailure("Timeout", f"{what}: {first_line(cur)}", transient=True)
        if isinstance(cur, (urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            return SourceFailure("ConnectionError", f"{what}: {first_line(cur)}", transient=True)
    if isinstance(exc, ValueError):  # tensorflow_hub's refusal of a tar member (a `../` path, a device, a link)
        return UnsafeArchive(what, first_line(exc))
    if isinstance(exc, OSError):  # "... does not appear to be a valid module": not a tarball
        return SourceFailure("NotAModule", f"{what}: {first_line(exc)}", transient=False)
    return classify(exc)
