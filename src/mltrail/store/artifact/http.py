"""Artifacts through a tracking server's proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`), so a
client needs no storage credentials: uploads and downloads stream, directories go file by file
on a few threads. Large files go up in parts through MLflow's multipart endpoints when the
server offers them (its server-info says so, or `MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD` forces
it), a failed part sent again alone; downloads come straight from the store when the server hands
out presigned URLs. Transfers of a few MB or more show a progress bar (`mltrail._progress`).

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
from mltrail._progress import ProgressBar
from mltrail.entities import FileInfo
from mltrail.errors import (
    INTERNAL_ERROR,
    NOT_IMPLEMENTED,
    TEMPORARILY_UNAVAILABLE,
    InvalidParameterValue,
    MltrailException,
)
from mltrail.store.artifact import http_multipart as mp
from mltrail.store.artifact.base import ArtifactRepository
from mltrail.uri_forms import PROXY_HTTP_ANCHOR, parse_artifact_uri

ANCHOR = PROXY_HTTP_ANCHOR
MPU = "/api/2.0/mlflow-artifacts/mpu"
PRESIGNED = "/api/2.0/mlflow-artifacts/presigned"
SERVER_INFO = "/api/3.0/mlflow/server-info"
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
        self._capabilities: dict[str, Any] | None = None

    def _server_offers(self, flag: str, env: str) -> bool:
        """Whether to use a transfer the server may offer: `env` (MLflow's variable) when set, else
        the server-info flag (read once; a server without server-info offers nothing)."""
        forced = os.environ.get(env, "").strip().lower()
        if forced:
            return forced in ("1", "true", "yes", "on")
        if self._capabilities is None:
            import orjson

            try:
                self._capabilities = dict(orjson.loads(self.http.request("GET", SERVER_INFO, retries=1).content))
            except (MltrailException, ValueError):
                self._capabilities = {}
        return bool(self._capabilities.get(flag, False))

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
        size = os.path.getsize(local_file)
        if size >= mp.env_bytes(mp.MIN_FILE_SIZE_ENV, mp.DEFAULT_MIN_FILE_SIZE) and self._server_offers(
                "multipart_uploads_enabled", "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"):
            try:
                self._put_multipart(local_file, path, size)
                return
            except MltrailException as e:
                if e.error_code != NOT_IMPLEMENTED:  # a server whose destination takes no parts: one PUT
                    raise
        for attempt in range(3):
            with ProgressBar(size, f"Uploading {path}") as bar:
                body = mp.FileSlice(local_file, 0, size, bar)
                try:
                    self.http.request("PUT", url, data=body, headers={"Content-Type": "application/octet-stream"},
                                      retries=0)
                    return
                except MltrailException as e:
                    if e.error_code not in (TEMPORARILY_UNAVAILABLE, INTERNAL_ERROR) or attempt == 2:
                        raise
                finally:
                    body.close()

    def _mpu_call(self, op: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST `/mpu/<op>/<directory of path>` with MLflow's body (`path` naming the file)."""
        import orjson

        directory, _, name = self._full(path).rpartition("/")
        endpoint = f"{MPU}/{op}/{_quote(directory)}" if directory else f"{MPU}/{op}"
        resp = self.http.request("POST", endpoint, body=orjson.dumps({"path": name, **payload}))
        return dict(orjson.loads(resp.content)) if resp.content else {}

    def _put_multipart(self, local_file: str, path: str, size: int) -> None:
        chunk = mp.env_bytes(mp.CHUNK_SIZE_ENV, mp.DEFAULT_CHUNK_SIZE)
        num_parts = max((size + chunk - 1) // chunk, 1)
        created = self._mpu_call("create", path, {"num_parts": num_parts})
        upload_id = str(created.get("upload_id", ""))
        creds = [mp.PartCredential(str(c["url"]), int(c["part_number"]), dict(c.get("headers") or {}))
                 for c in created.get("credentials", [])]
        try:
            if len(creds) != num_parts:
                raise MltrailException(f"The server handed out {len(creds)} part URLs for {num_parts} parts.")
            with ProgressBar(size, f"Uploading {path}") as bar:
                etags = mp.put_parts(creds, local_file, chunk, bar, mp.tls_verify())
            parts = [{"part_number": n, "etag": etag} for n, etag in etags]
            self._mpu_call("complete", path, {"upload_id": upload_id, "parts": parts})
        except BaseException:
            try:
                self._mpu_call("abort", path, {"upload_id": upload_id})
            except MltrailException:
                pass  # the first error is the one to tell; a local destination drops stale uploads itself
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

    def _open_download(self, remote_path: str) -> Any:
        """The streamed response of a file: from the store through a presigned URL when the server
        hands them out, else through the proxy."""
        if self._server_offers("multipart_downloads_enabled", "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"):
            import orjson

            try:
                found = orjson.loads(self.http.request("GET", f"{PRESIGNED}/{_quote(self._full(remote_path))}").content)
            except MltrailException as e:
                if e.error_code != NOT_IMPLEMENTED:
                    raise
            else:
                import requests

                resp = requests.get(str(found["url"]), headers=found.get("headers") or {}, stream=True, timeout=300,
                                    verify=mp.tls_verify())
                if resp.status_code != 200:
                    resp.close()
                    raise MltrailException(f"Could not read {remote_path!r} from its presigned URL: HTTP "
                                           f"{resp.status_code}.", TEMPORARILY_UNAVAILABLE)
                return resp
        return self.http.request("GET", self._url_path(remote_path), stream=True)

    def download_file(self, remote_path: str, local_path: str) -> None:
        """Stream one file to `local_path` (via a temp file beside it, renamed when complete)."""
        os.makedirs(os.path.dirname(local_path) or ".", exist_ok=True)
        resp: Any = self._open_download(remote_path)
        tmp = f"{local_path}.part-{os.getpid()}"
        size = int(resp.headers.get("Content-Length") or 0)
        try:
            with open(tmp, "wb") as fh, ProgressBar(size, f"Downloading {remote_path}") as bar:
                for chunk in resp.iter_content(chunk_size=_CHUNK):
                    fh.write(chunk)
                    bar.update(len(chunk))
            os.replace(tmp, local_path)
        finally:
            resp.close()
            if os.path.exists(tmp):
                os.remove(tmp)
