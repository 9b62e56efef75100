"""A plain HTTPS (or HTTP) mirror: one file with a pinned sha256.

The file is written to a ``.part`` file of its own per source (named after
the URL), so two mirrors of one model never mix their bytes: a stale or
flaky mirror cannot poison the resume from a good one, and a hash mismatch
is only ever blamed on the source that sent the bytes. A retry after a
broken transfer asks for the rest with ``Range`` plus ``If-Range`` (the
ETag or Last-Modified the first response carried), so a file that changed
on the server in between is sent whole and the download starts over. Only
a complete file whose sha256 matches is renamed into place (atomically); a
mismatch deletes the partial file. With ``extract: true`` the file is a tar
archive of the model folder, unpacked with tarfile's ``filter='data'``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

from ..cache import extract_archive, sha256_file
from ..catalog import SourceSpec
from ..failures import HashMismatch, SourceFailure, first_line, status_failure
from .base import FetchContext, folder_bytes, run_watched

log = logging.getLogger(__name__)

CHUNK = 1 << 14  # a broken transfer loses at most the chunk being read


def target_paths(spec: SourceSpec, ctx: FetchContext) -> tuple[Path, Path, Path]:
    """(folder, downloaded file, what fetch returns) for an https source."""
    assert spec.sha256, "catalog loading requires sha256 for https sources"
    name = spec.filename or Path(urlparse(spec.ref).path).name or "model.bin"
    folder = ctx.cache.model_dir(ctx.model) / "https" / spec.sha256[:16]
    file = folder / name
    return folder, file, (folder / "model" if spec.extract else file)


def part_path(spec: SourceSpec, final: Path) -> Path:
    """The partial download of ``final`` from this source (one per URL)."""
    tag = hashlib.sha256(spec.ref.encode()).hexdigest()[:12]
    return final.with_name(f"{final.name}.{tag}.part")


def fetch(spec: SourceSpec, ctx: FetchContext) -> Path:
    folder, final, result = target_paths(spec, ctx)
    if result.exists():
        return result
    folder.mkdir(parents=True, exist_ok=True)
    part = part_path(spec, final)
    stop = threading.Event()  # set on a stall: the download loop ends at its next read
    run_watched(lambda: _download(spec, ctx, part, stop), folder_bytes(part), ctx, f"{spec.ref}", on_stall=stop.set)
    digest = sha256_file(part)
    if digest != spec.sha256:
        part.unlink(missing_ok=True)
        _validator_file(part).unlink(missing_ok=True)
        raise HashMismatch(spec.ref, spec.sha256 or "", digest)
    os.replace(part, final)
    _validator_file(part).unlink(missing_ok=True)
    if spec.extract:
        try:
            extract_archive(final, result)
        finally:
            final.unlink(missing_ok=True)
    return result


def _validator_file(part: Path) -> Path:
    return part.with_name(part.name + ".etag")


def _download(spec: SourceSpec, ctx: FetchContext, part: Path, stop: threading.Event) -> None:
    """Fill ``part`` with the whole file (resuming it when it holds a prefix); errors come out as SourceFailures.

    The body is read with urllib3's ``read1`` (whatever has arrived, up to
    CHUNK) rather than requests' fixed-size chunks, so a trickle still comes
    back to the loop after each byte and ``stop`` is seen at once."""
    import requests
    import urllib3
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    validator_file = _validator_file(part)
    headers = {"User-Agent": "keepers", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = validator_file.read_text(encoding="utf-8").strip() if validator_file.exists() else ""
        if validator:
            headers["If-Range"] = validator
    try:
        with requests.get(spec.ref, stream=True, timeout=(ctx.timeout, ctx.timeout), headers=headers) as response:
            if response.status_code == 416:  # our partial file is no prefix of theirs: start over next time
                part.unlink(missing_ok=True)
                raise SourceFailure("HTTP 416", f"{spec.ref} refused the resume range; restarting", transient=True, status=416)
            if response.status_code >= 400:
                raise status_failure(response.status_code, response.headers, f"{spec.ref}: {response.status_code} {response.reason}")
            if offset and response.status_code != 206:
                log.info("%s sent the whole file (it ignored the range, or the file changed); downloading from the start", spec.ref)
                offset = 0
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if validator and not offset:
                validator_file.write_text(validator, encoding="utf-8")
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if offset:
                log.info("resuming %s at byte %d", spec.ref, offset)
            with open(part, "ab" if offset else "wb") as out, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=f"{ctx.model} (https)", disable=not ctx.progress,
            ) as bar:
                while chunk := response.raw.read1(CHUNK):
                    if stop.is_set():
                        return
                    out.write(chunk)
                    bar.update(len(chunk))
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise SourceFailure("Timeout", f"{spec.ref}: {first_line(exc)}", transient=True) from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError) as exc:
        raise SourceFailure("ConnectionError", f"{spec.ref}: {first_line(exc)}", transient=True) from exc
    except requests.RequestException as exc:
        raise SourceFailure(type(exc).__name__, f"{spec.ref}: {first_line(exc)}", transient=False) from exc
    size = part.stat().st_size
    if total is not None and size != total:
        raise SourceFailure("IncompleteRead", f"{spec.ref}: got {size} of {total} bytes", transient=True)
