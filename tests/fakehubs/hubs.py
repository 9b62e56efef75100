"""The four fake hubs: TF Hub, Kaggle Models, Hugging Face and a plain HTTPS mirror.

Each serves what a test registers and speaks just enough of the real
protocol for the real client (tensorflow_hub, kagglehub/kagglesdk,
huggingface_hub, requests) to download it. Faults and counting come from
:class:`~tests.fakehubs.server.FakeHub`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .builders import tar_gz_of_dir
from .server import FakeHub, Reply, Request


class FileHub(FakeHub):
    """A plain file server (an HTTPS mirror stand-in): GET/HEAD of registered paths, with an ETag, Range and If-Range."""

    name = "https-fake"

    def __init__(self, port: int = 0):
        super().__init__(port)
        self.files: dict[str, bytes] = {}

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns its full URL."""
        path = "/" + path.lstrip("/")
        self.files[path] = data
        return self.url + path

    def route(self, request: Request) -> Reply:
        data = self.files.get(request.path)
        if data is None:
            return self.error_reply(404, f"{request.path} not found", {})
        return Reply.file(data, headers={"ETag": f'"{hashlib.sha256(data).hexdigest()[:16]}"'})


class TFHubFake(FileHub):
    """tfhub.dev stand-in: a tfhub-style compressed tarball at each registered path.

    tensorflow_hub asks for ``<path>?tf-hub-format=compressed``; the query is ignored.
    """

    name = "tfhub-fake"

    def add_model(self, path: str, folder: Path | None = None, *, tarball: bytes | None = None) -> str:
        """Serve the SavedModel ``folder`` (or a ready ``tarball``) at ``path``; returns the handle URL."""
        if tarball is None:
            assert folder is not None, "give a folder or a tarball"
            tarball = tar_gz_of_dir(folder)
        return self.add(path, tarball)


def _split_handle(handle: str) -> tuple[str, str, str, str, int | None]:
    parts = handle.strip("/").split("/")
    owner, model, framework, variation = parts[:4]
    return owner, model, framework, variation, int(parts[4]) if len(parts) > 4 else None


class KaggleFake(FakeHub):
    """Kaggle Models API stand-in for kagglehub 1.x (kagglesdk RPC style).

    ``POST [/api]/v1/models.ModelApiService/<Method>`` with a JSON body:
    GetModelInstance (the latest version), ListModelInstanceVersionFiles,
    DownloadModelInstanceVersion (of the ``versionNumber`` asked for).
    kagglesdk has no setting for another API address, so the real client
    reaches the fake the way it would reach a mirror: with
    ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` (API at http://localhost) and
    ``HTTP_PROXY=<url>``, ``NO_PROXY=127.0.0.1`` (see :meth:`client_env`); the
    fake answers the proxied requests itself.
    """

    name = "kaggle-fake"
    _RPC = re.compile(r"^(?:/api)?/v1/models\.ModelApiService/(\w+)$")

    def __init__(self, port: int = 0):
        super().__init__(port)
        self.models: dict[tuple[str, str, str], dict[int, dict[str, bytes]]] = {}

    def client_env(self) -> dict[str, str]:
        """The environment that points kagglehub at this fake (and keeps other 127.0.0.1 fakes direct)."""
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "HTTP_PROXY": self.url, "http_proxy": self.url,
                "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}

    def add_model(self, handle: str, folder: Path | None = None, *, files: dict[str, bytes] | None = None, version: int | None = None) -> str:
        """Serve ``folder``'s files (or ``files``: relative name → bytes) as
        ``owner/model/framework/variation/version`` (the version from the handle,
        else ``version``, else 1); returns the versioned handle."""
        if files is None:
            assert folder is not None, "give a folder or files"
            files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}
        owner, model, framework, variation, in_handle = _split_handle(handle)
        number = in_handle or version or 1
        self.models.setdefault((owner.lower(), model.lower(), variation.lower()), {})[number] = files
        return f"{owner}/{model}/{framework}/{variation}/{number}"

    def error_reply(self, status: int, message: str, headers: dict[str, str]) -> Reply:
        return Reply.json({"code": status, "message": message}, status, headers)

    def route(self, request: Request) -> Reply:
        match = self._RPC.match(request.path)
        if request.method != "POST" or not match:
            return self.error_reply(404, f"no such API: {request.method} {request.path}", {})
        import json

        body = json.loads(request.body or b"{}")
        key = (str(body.get("ownerSlug", "")).lower(), str(body.get("modelSlug", "")).lower(), str(body.get("instanceSlug", "")).lower())
        versions = self.models.get(key)
        if not versions:
            return self.error_reply(404, f"model instance {'/'.join(key)} not found", {})
        latest = max(versions)
        method = match.group(1)
        if method == "GetModelInstance":
            return Reply.json({"id": 1, "slug": key[2], "versionNumber": latest, "versionId": latest,
                               "framework": body.get("framework", "tensorFlow2")})
        number = int(body.get("versionNumber") or latest)
        if number not in versions:
            return self.error_reply(404, f"version {number} of {'/'.join(key)} not found", {})
        files = versions[number]
        if method == "ListModelInstanceVersionFiles":
            return Reply.json({"files": [{"name": n, "size": len(b)} for n, b in files.items()], "nextPageToken": ""})
        if method == "DownloadModelInstanceVersion":
            path = body.get("path")
            if path not in files:
                return self.error_reply(404, f"file {path!r} not in {'/'.join(key)}/{number}", {})
            return Reply.file(files[path])
        return self.error_reply(404, f"method {method} is not faked", {})


class HFFake(FakeHub):
    """Hugging Face Hub stand-in for ``hf_hub_download`` and ``snapshot_download``.

    ``HEAD/GET /<repo>/resolve/<revision>/<file>`` with X-Repo-Commit and ETag;
    ``GET /api/models/<repo>[/revision/<rev>]`` and ``/api/models/<repo>/tree/<rev>``
    listing the files. Pass its
    ``url`` as HF_ENDPOINT (keepers' hf source reads it at call time).
    """

    name = "hf-fake"
    _RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
    _INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
    _TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/.*)?$")

    def __init__(self, port: int = 0):
        super().__init__(port)
        self.repos: dict[str, dict[str, bytes]] = {}

    def add_file(self, repo: str, filename: str, data: bytes) -> None:
        self.repos.setdefault(repo, {})[filename] = data

    def commit(self, repo: str) -> str:
        h = hashlib.sha1(repo.encode())
        for name, data in sorted(self.repos.get(repo, {}).items()):
            h.update(name.encode() + hashlib.sha1(data).digest())
        return h.hexdigest()

    def error_reply(self, status: int, message: str, headers: dict[str, str]) -> Reply:
        return Reply.json({"error": message}, status, headers)

    def route(self, request: Request) -> Reply:
        m = self._RESOLVE.match(request.path)
        if m:
            repo, name = m.group("repo"), m.group("file")
            files = self.repos.get(repo)
            if files is None:
                return self.error_reply(404, f"Repository {repo} not found", {"X-Error-Code": "RepoNotFound"})
            if name not in files:
                return self.error_reply(404, f"Entry {name} not found", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": self.commit(repo)})
            data = files[name]
            etag = hashlib.sha256(data).hexdigest()
            return Reply.file(data, headers={"X-Repo-Commit": self.commit(repo), "ETag": f'"{etag}"'})
        m = self._TREE.match(request.path)
        if m:
            repo = m.group("repo")
            if repo not in self.repos:
                return self.error_reply(404, f"Repository {repo} not found", {"X-Error-Code": "RepoNotFound"})
            return Reply.json([{"type": "file", "path": n, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                               for n, b in sorted(self.repos[repo].items())])
        m = self._INFO.match(request.path)
        if m:
            repo = m.group("repo")
            if repo not in self.repos:
                return self.error_reply(404, f"Repository {repo} not found", {"X-Error-Code": "RepoNotFound"})
            siblings = [{"rfilename": n, "size": len(b)} for n, b in sorted(self.repos[repo].items())]
            return Reply.json({"id": repo, "modelId": repo, "sha": self.commit(repo), "siblings": siblings, "private": False})
        return self.error_reply(404, f"no such path {request.path}", {})
