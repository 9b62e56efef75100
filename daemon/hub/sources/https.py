"""A plain HTTPS (or HTTP) mirror: one file with a pinned sha256.

The file is written to ``<name>.part`` next to its final place; a retry
after a broken transfer asks for the rest with a ``Range`` request and
appends. Only a complete file whose sha256 matches is renamed into place
(atomically); a mismatch deletes the partial file. With ``extract: true``
the file is a tar archive of the model folder, unpacked with tarfile's
``filter='data'``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

from ..cache import extract_archive, sha256_file
from ..catalog import SourceSpec
from ..failures import HashMismatch, SourceFailure
from .base import FetchContext

log = logging.getLogger(__name__)

CHUNK = 1 << 14  # a broken transfer loses at most the chunk being read


def target_paths(spec: SourceSpec, ctx: FetchContext) -> tuple[Path, Path, Path]:
    """(folder, downloaded file, what fetch returns) for an https source."""
    assert spec.sha256, "catalog loading requires sha256 for https sources"
    name = spec.filename or Path(urlparse(spec.ref).path).name or "model.bin"
    folder = ctx.cache.model_dir(ctx.model) / "https" / spec.sha256[:16]
    file = folder / name
    return folder, file, (folder / "model" if spec.extract else file)


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    import requests
    from tqdm.auto import tqdm

    folder, final, result = target_paths(spec, ctx)
    if result.exists():
        return result
    folder.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "keepers", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with requests.get(spec.ref, stream=True, timeout=(ctx.timeout, ctx.timeout), headers=headers) as response:
        if response.status_code == 416:  # our partial file is no prefix of theirs: start over next time
            part.unlink(missing_ok=True)
            raise SourceFailure("HTTP 416", f"{spec.ref} refused the resume range; restarting", transient=True, status=416)
        response.raise_for_status()
        if offset and response.status_code != 206:
            log.info("%s ignored the Range request; downloading from the start", spec.ref)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        if offset:
            log.info("resuming %s at byte %d", spec.ref, offset)
        with open(part, "ab" if offset else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f"{ctx.model} (https)", disable=not ctx.progress,
        ) as bar:
            for chunk in response.iter_content(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise SourceFailure("IncompleteRead", f"{spec.ref}: got {size} of {total} bytes", transient=True)
    digest = sha256_file(part)
    if digest != spec.sha256:
        part.unlink(missing_ok=True)
        raise HashMismatch(spec.ref, spec.sha256 or "", digest)
    os.replace(part, final)
    if spec.extract:
        try:
            extract_archive(final, result)
        finally:
            final.unlink(missing_ok=True)
    return result
