"""Artifacts through a tracking server's proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`), so a
client needs no storage credentials: uploads and downloads stream, directories go file by file
on a few threads.

Root URIs: `http(s)://host/api/2.0/mlflow-artifacts/artifacts/<path>`, `mlflow-artifacts:/<path>`
(resolved against the tracking URI in force, which must be a server) or
`mlflow-artifacts://host:port/<path>`.
"""

from __future__ import annotations

import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mltrail._paths import safe_relpath
from mltrail.entities import FileInfo
from mltrail.errors import INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE, InvalidParameterValue, MltrailException
from mltrail.store.artifact.base import ArtifactRepository
from mltrail.uri_forms import PROXY_HTTP_ANCHOR, parse_artifact_uri

ANCHOR = PROXY_HTTP_ANCHOR
_CHUNK = 1024 * 1024
_UPLOAD_THREADS = 4


def split_proxy_uri(uri: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """(server base URL, root path under the proxy) for any proxy form of an artifact URI (`mltrail.uri_forms`)."""
    parsed = parse_artifact_uri(uri)
    if parsed.base is not None:
        return parsed.base, parsed.path
    from mltrail.tracking_uri import get_tracking_uri

    base = (tracking_uri or get_tracking_uri()).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InvalidParameterValue(
            f"Artifact URI {uri!r} names a tracking server's artifact proxy, but the tracking URI in "
            f"force is {base!r}. Set the tracking URI to that server (http://HOST:PORT).")
    return base, parsed.path


def _quote(path: str) -> str:
    return "/".join(urllib.parse.quote(part, safe="") for part in path.split("/"))


class HttpArtifactRepository(ArtifactRepository):
    """Files under one root of a tracking server's artifact proxy."""

    def __init__(self, root_uri: str) -> None:
        super().__init__(root_uri)
        from mltrail.store.rest import HttpClient

        self.base, self.root = split_proxy_uri(root_uri)
        self.http = HttpClient(self.base)

    def _full(self, path: str | None) -> str:
        return "/".join(p for p in (self.root, safe_relpath(path)) if p)

    def _url_path(self, path: str | None) -> str:
        full = self._full(path)
        if not full:
            raise InvalidParameterValue("An artifact path is required: the proxy root itself is not a file.")
        return f"{ANCHOR}/{_quote(full)}"

    # ------------------------------------------------------------------ writing
    def _put_file(self, local_file: str, path: str) -> None:
        url = self._url_path(path)
        for attempt in range(3):
            try:
                with open(local_file, "rb") as fh:
                    self.http.request("PUT", url, data=fh, headers={"Content-Type": "application/octet-stream"},
                                      retries=0)
                return
            except MltrailException as e:
                if e.error_code not in (TEMPORARILY_UNAVAILABLE, INTERNAL_ERROR) or attempt == 2:
                    raise

    def _put_many(self, pairs: list[tuple[str, str]]) -> None:
        if len(pairs) <= 1:
            for local, rel in pairs:
                self._put_file(local, rel)
            return
        with ThreadPoolExecutor(max_workers=_UPLOAD_THREADS, thread_name_prefix="mltrail-upload") as pool:
            for f in [pool.submit(self._put_file, local, rel) for local, rel in pairs]:
                f.result()

    @staticmethod
    def _walk(local_dir: str, dest: str) -> list[tuple[str, str]]:
        pairs = []
        for root, _dirs, files in os.walk(local_dir):
            rel_dir = os.path.relpath(root, local_dir).replace(os.sep, "/")
            for name in sorted(files):
                rel = "/".join(p for p in (dest, "" if rel_dir == "." else rel_dir, name) if p)
                pairs.append((os.path.join(root, name), safe_relpath(rel)))
        return pairs

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Upload a file (or a directory, keeping its name) under `artifact_path`."""
        base = safe_relpath(artifact_path)
        name = os.path.basename(os.path.normpath(local_file))
        dest = "/".join(p for p in (base, name) if p)
        if os.path.isdir(local_file):
            self._put_many(self._walk(local_file, dest))
        else:
            self._put_file(local_file, safe_relpath(dest))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        self._put_many(self._walk(local_dir, safe_relpath(artifact_path)))

    def write_bytes(self, path: str, data: bytes) -> None:
        self.http.request("PUT", self._url_path(path), data=data,
                          headers={"Content-Type": "application/octet-stream"})

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        self.http.request("DELETE", self._url_path(artifact_path))

    # ------------------------------------------------------------------ reading
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        from mltrail.store.rest_json import file_info_from_json

        rel = safe_relpath(path)
        resp = self.http.request("GET", ANCHOR, params={"path": self._full(rel)})
        import orjson

        files = orjson.loads(resp.content).get("files", []) if resp.content else []
        out = []
        for f in files:
            name = safe_relpath(str(f.get("path", "")), "listed artifact name")
            if not name or "/" in name:
                continue
            out.append(file_info_from_json({**f, "path": name}, rel))
        if len(out) == 1 and not out[0].is_dir and rel and out[0].path == f"{rel}/{rel.rsplit('/', 1)[-1]}":
            return []  # MLflow servers list a file path as the file itself
        return sorted(out, key=lambda f: f.path)

    def read_bytes(self, path: str) -> bytes:
        return self.http.request("GET", self._url_path(path)).content

    def download_file(self, remote_path: str, local_path: str) -> None:
        os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)
        resp: Any = self.http.request("GET", self._url_path(remote_path), stream=True)
        tmp = f"{local_path}.part-{os.getpid()}"
        try:
            with open(tmp, "wb") as fh:
                for chunk in resp.iter_content(chunk_size=_CHUNK):
                    fh.write(chunk)
            os.replace(tmp, local_path)
        finally:
            resp.close()
            if os.path.exists(tmp):
                os.remove(tmp)
