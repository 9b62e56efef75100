"""TensorFlow Hub: a tfhub-style compressed tarball URL, through tensorflow_hub.

tensorflow_hub downloads into TFHUB_CACHE_DIR under a lock, extracts into a
temporary folder and renames it into place, so a broken download never
becomes a cached module; it refuses tar members outside the module folder.
Its own urlopen has no timeout, so ours passes one.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from ..catalog import SourceSpec
from .base import FetchContext


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    from tensorflow_hub import compressed_module_resolver

    timeout = ctx.timeout

    class _TimedResolver(compressed_module_resolver.HttpCompressedFileResolver):
        def _call_urlopen(self, request):  # type: ignore[no-untyped-def]
            if isinstance(request, str):
                request = urllib.request.Request(request)
            request.add_header("User-Agent", "keepers")
            return urllib.request.urlopen(request, timeout=timeout, context=self._context)

    return Path(_TimedResolver()(spec.ref))
