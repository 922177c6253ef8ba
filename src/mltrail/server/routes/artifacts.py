"""Artifacts: the proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`: PUT, GET, DELETE, and the
listing `?path=`), run artifact listing (`/mlflow/artifacts/list`), file downloads for runs
(`/get-artifact`), registered model versions (`/model-versions/get-artifact`) and logged models,
logged-model directory listings, and the UI's small-file upload into a run
(`/ajax-api/2.0/mlflow/upload-artifact`).

Uploads stream to a temporary file beside the target and are renamed into place, so a reader
never sees half a file; the size limit is checked as bytes arrive. Every path goes through
`safe_relpath` and, for local storage, `resolve_under` (symlinks cannot lead out of the root).

Large files move in bounded memory: downloads stream from disk or from S3 in 1 MiB chunks, and
answer `Range: bytes=a-b` with 206. MLflow's multipart upload endpoints
(`/mlflow-artifacts/mpu/create|complete|abort/<path>`) work over every destination: the parts go
to presigned S3 URLs when the server hands them out (`--artifacts-presigned-urls`), else through
this server (`PUT /mlflow-artifacts/mpu/part/<path>?upload_id=..&part_number=..`, the upload id
being the capability create handed to a caller allowed to write there).
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from mltrail._paths import safe_relpath
from mltrail.errors import BAD_REQUEST, InvalidParameterValue, MltrailException, ResourceDoesNotExist
from mltrail.server._http import (
    Call,
    RequestTooLarge,
    check_content_length,
    error_response,
    internal_error,
    json_response,
    read_json_body,
)
from mltrail.store.artifact.base import UploadedPart
from mltrail.store.artifact.local import UPLOADS_DIR, LocalArtifactRepository
from mltrail.store.rest_json import file_info_to_json

# served files are never interpreted by the browser as part of this origin's pages
_SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def _join(prefix: str, rel: str) -> str:
    return "/".join(p for p in (prefix, rel) if p)


def _nonempty(path: str) -> str:
    rel = safe_relpath(path)
    if not rel:
        raise InvalidParameterValue("An artifact path is required here; the artifact root itself cannot be used.")
    return rel


def _media_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def _is_a_directory(rel: str) -> InvalidParameterValue:
    # MLflow's words for a download of a directory (a 400, as its _send_artifact answers)
    return InvalidParameterValue(f"Artifact path refers to a directory, not a file: '{rel}'")


def _no_such_artifact(rel: str) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"No such artifact: '{rel}'")


async def _serve_file(repo: Any, rel: str, attachment: bool = False, request_range: str | None = None) -> Response:
    """Stream one file of `repo` (local: straight from disk; other stores: read as it is sent), whole
    or the one range `request_range` (a Range header) names.

    A directory is a 400 (never copied to serve it), a missing file a 404. `attachment` adds
    MLflow's `Content-Disposition: attachment` (its _send_artifact always sends files so).
    """
    name = rel.rsplit("/", 1)[-1]
    filename = name if attachment and name else None
    if isinstance(repo, LocalArtifactRepository):
        path = repo.path_of(rel)
        if os.path.isdir(path):
            raise _is_a_directory(rel)
        if not os.path.isfile(path):
            raise _no_such_artifact(rel)
        return FileResponse(path, media_type=_media_type(name), headers=_SAFE_HEADERS, filename=filename)
    if not rel or await run_in_threadpool(repo.is_dir, rel):
        raise _is_a_directory(rel)
    size = await run_in_threadpool(repo.file_size, rel)
    return _stream_file(repo, rel, size, request_range, filename)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range; None for no range
    (also for several ranges, which a server may answer with the whole file)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    try:
        if not dash:
            raise ValueError
        if first_s == "":
            first, last = max(size - int(last_s), 0), size - 1
        else:
            first = int(first_s)
            last = min(int(last_s), size - 1) if last_s else size - 1
    except ValueError:
        raise RangeNotSatisfiable(header, size) from None
    if first < 0 or first > last:
        raise RangeNotSatisfiable(header, size)
    return first, last


class RangeNotSatisfiable(MltrailException):
    """A Range header that names no byte of the file (HTTP 416)."""

    def __init__(self, header: str, size: int) -> None:
        super().__init__(f"Range {header!r} is not satisfiable: the file has {size} bytes "
                         "(expected bytes=FIRST-LAST within them).", BAD_REQUEST)
        self.size = size


def _stream_file(repo: Any, rel: str, size: int, request_range: str | None, filename: str | None) -> Response:
    """The file read from `repo` as the client consumes it (never whole in memory), or one range of it."""
    headers = {**_SAFE_HEADERS, "Accept-Ranges": "bytes"}
    if filename:  # as starlette's FileResponse says it for local files
        quoted = urllib.parse.quote(filename)
        headers["Content-Disposition"] = (f'attachment; filename="{filename}"' if quoted == filename
                                          else f"attachment; filename*=utf-8''{quoted}")
    span = _parse_range(request_range, size)
    first, last = span or (0, size - 1)
    headers["Content-Length"] = str(max(last - first + 1, 0))
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    chunks: Iterator[bytes] = repo.iter_bytes(rel, first, last) if size else iter(())
    return StreamingResponse(iterate_in_threadpool(chunks), status_code=status, headers=headers,
                             media_type=_media_type(rel))


async def _stream_to(request: Request, path: str, limit: int) -> None:
    size = 0
    with open(path, "wb") as fh:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"Artifact upload exceeds this server's limit of {limit} bytes.")
            fh.write(chunk)


async def _upload(request: Request, repo: Any, rel: str, limit: int) -> None:
    check_content_length(request, limit)
    if isinstance(repo, LocalArtifactRepository):
        dest = repo.path_of(rel)
        if os.path.isdir(dest):
            raise InvalidParameterValue(f"Cannot upload to '{rel}': a directory of that name exists.")
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidParameterValue(f"Cannot upload to '{rel}': a parent of it is a file.") from None
        repo.path_of(rel)  # re-check now that the parents exist
        tmp = f"{dest}.upload-{uuid.uuid4().hex}"
        try:
            await _stream_to(request, tmp, limit)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return
    head, _, name = rel.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="mltrail-upload-") as td:
        local = os.path.join(td, name)
        await _stream_to(request, local, limit)
        await run_in_threadpool(repo.log_artifact, local, head or None)


def _guard(fn: Any) -> Any:
    """Run an async raw endpoint, turning errors into the JSON error shape."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request, request.app.state.ctx)
        except RangeNotSatisfiable as e:
            response = error_response(e)
            response.status_code = 416
            response.headers["Content-Range"] = f"bytes */{e.size}"
            return response
        except MltrailException as e:
            return error_response(e)
        except Exception as e:  # noqa: BLE001
            return internal_error(e)

    endpoint.__name__ = fn.__name__
    return endpoint


# ------------------------------------------------------------------ the proxy
@_guard
async def proxy_upload(request: Request, ctx: Any) -> Response:
    rel = _nonempty(request.path_params["path"])
    await _upload(request, ctx.proxy_repo(), rel, ctx.settings.max_artifact_bytes)
    return json_response({})


@_guard
async def proxy_download(request: Request, ctx: Any) -> Response:
    rel = safe_relpath(request.path_params.get("path", ""))
    if not rel:
        return await proxy_list(request)
    return await _serve_file(ctx.proxy_repo(), rel, request_range=request.headers.get("range"))


@_guard
async def proxy_list(request: Request, ctx: Any) -> Response:
    rel = safe_relpath(request.query_params.get("path") or "")
    repo = ctx.proxy_repo()
    files = await run_in_threadpool(repo.list_artifacts, rel or None)
    return json_response({"files": [file_info_to_json(f, f.path.rsplit("/", 1)[-1]) for f in files]})


@_guard
async def proxy_delete(request: Request, ctx: Any) -> Response:
    rel = _nonempty(request.path_params["path"])
    repo = ctx.proxy_repo()
    await run_in_threadpool(repo.delete_artifacts, rel)
    return json_response({})


# ------------------------------------------------------------------ multipart uploads (MLflow's mpu endpoints)
# presigned part URLs live as long as MLflow's (boto3's default); download URLs as its
# MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS says
PART_URL_TTL_S = 3600
MAX_PARTS = 10000  # S3's limit, which MLflow's client keeps to


def _download_ttl() -> int:
    raw = os.environ.get("MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS", "300")
    try:
        ttl = int(raw)
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS {raw!r}: expected whole seconds.") from None
    if not 1 <= ttl <= 604800:
        raise InvalidParameterValue(f"expiration must be between 1 and 604800 seconds (got {ttl}).")
    return ttl


async def _mpu_request(request: Request, ctx: Any, *required: str) -> tuple[Any, str, dict[str, Any]]:
    """(repository, file path under the proxy root, JSON body) of an mpu call.

    MLflow's client sends the directory in the URL and its LOCAL file path as `path`; the file
    keeps that file's name, as MLflow's repositories name it (`<artifact_path>/<basename>`)."""
    directory = safe_relpath(request.path_params.get("path", ""))
    body = await read_json_body(request, ctx.settings.max_json_bytes) or {}
    for name in required:
        if body.get(name) in (None, "", []):
            raise InvalidParameterValue(f"Missing value for required parameter '{name}'.")
    local = str(body["path"]).replace("\\", "/")
    name = safe_relpath(posixpath.basename(local.rstrip("/")), "path")
    if not name:
        raise InvalidParameterValue(f"Invalid path {body['path']!r}: expected the path of a file.")
    return ctx.proxy_repo(), _join(directory, name), body


def _part_url(request: Request, rel: str, upload_id: str, number: int) -> str:
    """Where the client PUTs a part through this server: the create URL's twin under `mpu/part`."""
    base = str(request.url.replace(query="")).split("/mlflow-artifacts/mpu/create", 1)[0]
    query = urllib.parse.urlencode({"upload_id": upload_id, "part_number": number})
    return f"{base}/mlflow-artifacts/mpu/part/{urllib.parse.quote(rel)}?{query}"


@_guard
async def mpu_create(request: Request, ctx: Any) -> Response:
    """`POST /mlflow-artifacts/mpu/create/<dir>` {path, num_parts}: an upload id and one credential
    (URL, part number, headers) per part."""
    repo, rel, body = await _mpu_request(request, ctx, "path")
    try:
        num_parts = int(body.get("num_parts") or 1)
    except (TypeError, ValueError):
        raise InvalidParameterValue(f"Invalid num_parts {body.get('num_parts')!r}: expected an integer.") from None
    if not 1 <= num_parts <= MAX_PARTS:
        raise InvalidParameterValue(f"Invalid num_parts {num_parts}: expected 1 to {MAX_PARTS}.")
    upload_id = await run_in_threadpool(repo.create_multipart_upload, rel)
    if ctx.settings.presigned_urls and not isinstance(repo, LocalArtifactRepository):
        urls = await run_in_threadpool(repo.presigned_part_urls, rel, upload_id, num_parts, PART_URL_TTL_S)
    else:
        urls = [_part_url(request, rel, upload_id, n) for n in range(1, num_parts + 1)]
    credentials = [{"url": url, "part_number": n, "headers": {}} for n, url in enumerate(urls, start=1)]
    return json_response({"upload_id": upload_id, "credentials": credentials})


@_guard
async def mpu_part(request: Request, ctx: Any) -> Response:
    """`PUT /mlflow-artifacts/mpu/part/<file>?upload_id=..&part_number=..`: one part, spooled to a
    temporary file (never held in memory), answered with its `ETag`."""
    rel = _nonempty(request.path_params["path"])
    upload_id = request.query_params.get("upload_id") or ""
    try:
        number = int(request.query_params.get("part_number") or "")
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid part_number {request.query_params.get('part_number')!r}: expected an integer.") from None
    if not upload_id:
        raise InvalidParameterValue("Missing value for required parameter 'upload_id'.")
    repo = ctx.proxy_repo()
    check_content_length(request, ctx.settings.max_artifact_bytes)
    spool = os.path.join(repo.root, UPLOADS_DIR) if isinstance(repo, LocalArtifactRepository) else None
    if spool:  # beside the staged parts, so that storing the part is a rename
        os.makedirs(spool, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="part-", dir=spool)
    os.close(fd)
    try:
        await _stream_to(request, tmp, ctx.settings.max_artifact_bytes)
        etag = await run_in_threadpool(repo.upload_part, rel, upload_id, number, tmp)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    response = json_response({})
    response.headers["ETag"] = etag
    return response


def _parts(body: dict[str, Any]) -> list[UploadedPart]:
    raw = body.get("parts")
    if not isinstance(raw, list):
        raise InvalidParameterValue(f"Invalid parts {raw!r}: expected a list of {{part_number, etag}}.")
    parts = []
    for item in raw:
        try:
            parts.append(UploadedPart(int(item["part_number"]), str(item.get("etag") or "")))
        except (KeyError, TypeError, ValueError):
            raise InvalidParameterValue(f"Invalid part {item!r}: expected {{part_number, etag}}.") from None
    return parts


@_guard
async def mpu_complete(request: Request, ctx: Any) -> Response:
    """`POST /mlflow-artifacts/mpu/complete/<dir>` {path, upload_id, parts}: join the parts into the file."""
    repo, rel, body = await _mpu_request(request, ctx, "path", "upload_id", "parts")
    await run_in_threadpool(repo.complete_multipart_upload, rel, str(body["upload_id"]), _parts(body))
    return json_response({})


@_guard
async def mpu_abort(request: Request, ctx: Any) -> Response:
    """`POST /mlflow-artifacts/mpu/abort/<dir>` {path, upload_id}: drop the upload and its parts."""
    repo, rel, body = await _mpu_request(request, ctx, "path", "upload_id")
    await run_in_threadpool(repo.abort_multipart_upload, rel, str(body["upload_id"]))
    return json_response({})


@_guard
async def presigned_download(request: Request, ctx: Any) -> Response:
    """`GET /mlflow-artifacts/presigned/<file>`: {url, headers, file_size} to read the file from the
    store directly, when the server hands out presigned URLs (else MLflow's 501, and the client
    reads through the proxy)."""
    from mltrail.errors import MlflowNotImplementedException
    from mltrail.store.artifact.base import MULTIPART_DOWNLOAD_UNSUPPORTED

    rel = _nonempty(request.path_params["path"])
    if not ctx.settings.presigned_urls:
        raise MlflowNotImplementedException(MULTIPART_DOWNLOAD_UNSUPPORTED)
    found = await run_in_threadpool(ctx.proxy_repo().presigned_download, rel, _download_ttl())
    return json_response({"url": found.url, "headers": found.headers, "file_size": found.file_size})


# ------------------------------------------------------------------ runs and logged models
def _listing(call: Call, root_uri: str, path: str | None) -> dict[str, Any]:
    """The files directly under `path` of an artifact root, with paths relative to that root."""
    rel = safe_relpath(path or "")
    repo, prefix = call.ctx.repo_for(root_uri)
    cut = len(prefix) + 1 if prefix else 0
    files = repo.list_artifacts(_join(prefix, rel) or None)
    return {"root_uri": root_uri, "files": [file_info_to_json(f, f.path[cut:]) for f in files]}


def list_run_artifacts(call: Call) -> dict[str, Any]:
    """MLflow's `/mlflow/artifacts/list`: paths relative to the run's artifact root."""
    run = call.store.get_run(call.req("run_id", "run_uuid"))
    return _listing(call, run.info.artifact_uri, call.text("path"))


def list_logged_model_artifacts(call: Call) -> dict[str, Any]:
    model = call.store.get_logged_model(str(call.path_params["model_id"]))
    return _listing(call, model.artifact_location, call.text("artifact_directory_path"))


def _query_path(request: Request) -> str:
    """The `path` query parameter of a download, checked as MLflow's validate_path_is_safe does
    (its errors say 'Invalid path' first), and more strictly: see `safe_relpath`."""
    path = request.query_params.get("path")
    if path is None:  # MLflow: request.args["path"], a bare 400
        raise InvalidParameterValue("Missing value for required parameter 'path'.")
    return safe_relpath(path, "path")


@_guard
async def get_run_artifact(request: Request, ctx: Any) -> Response:
    """MLflow UI's `/get-artifact?run_id=..&path=..` (or `run_uuid=`): one file of a run, as an attachment.

    As get_artifact_handler: the path is checked first, then the run (404 if unknown); a
    directory (or an empty path: the root) is a 400, a missing file a 404.
    """
    rel = _query_path(request)
    run_id = request.query_params.get("run_id") or request.query_params.get("run_uuid")
    if not run_id:  # MLflow looks up run None (a 404); a missing parameter is a 400 here
        raise InvalidParameterValue("Missing value for required parameter 'run_id'.")
    run = await run_in_threadpool(ctx.store.get_run, run_id)
    repo, prefix = ctx.repo_for(run.info.artifact_uri)
    return await _serve_file(repo, _join(prefix, rel), attachment=True, request_range=request.headers.get("range"))


@_guard
async def get_model_version_artifact(request: Request, ctx: Any) -> Response:
    """MLflow UI's `/model-versions/get-artifact?name=..&version=..&path=..`: one file of a
    registered model version, from the version's storage location (get_model_version_artifact_handler)."""
    rel = _query_path(request)
    name = request.query_params.get("name")
    if not name:
        raise InvalidParameterValue("Missing value for required parameter 'name'.")
    version = request.query_params.get("version")
    if not version:
        raise InvalidParameterValue("Missing value for required parameter 'version'.")
    try:
        int(version)
    except ValueError:
        raise InvalidParameterValue(f"Parameter 'version' must be an integer, got {version!r}.") from None
    location = await run_in_threadpool(ctx.store.get_model_version_download_uri, name, version)
    repo, prefix = ctx.repo_for(location)
    return await _serve_file(repo, _join(prefix, rel), attachment=True, request_range=request.headers.get("range"))


# upload_artifact_handler's limit: the UI uploads small files (e.g. images for a run's notes)
UPLOAD_ARTIFACT_MAX_BYTES = 10 * 1024 * 1024


def _too_large(limit: int) -> InvalidParameterValue:
    size = "10MB" if limit == UPLOAD_ARTIFACT_MAX_BYTES else f"{limit} bytes"
    return InvalidParameterValue(f"Artifact size is too large. Max size is {size}.")


async def _read_upload(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _write_artifact(repo: Any, rel: str, data: bytes) -> None:
    try:
        repo.write_bytes(rel, data)
    except (FileExistsError, NotADirectoryError):
        raise InvalidParameterValue(f"Cannot upload to '{rel}': a parent of it is a file.") from None


@_guard
async def upload_artifact(request: Request, ctx: Any) -> Response:
    """MLflow UI's `POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=..&path=..`, the body the file's bytes.

    upload_artifact_handler's checks in its order (run_uuid, path, 'Invalid path', size at most
    10MB, a non-empty body, then the run); the file goes to `path` under the run's own artifact
    location, through the server's artifact access. Answers `{}`.
    """
    run_id = request.query_params.get("run_uuid")
    if not run_id:
        raise InvalidParameterValue("Request must specify run_uuid.")
    path = request.query_params.get("path")
    if not path:
        raise InvalidParameterValue("Request must specify path.")
    rel = safe_relpath(path, "path")
    if not rel or path.endswith("/"):
        raise InvalidParameterValue(f"Invalid path {path!r}: expected the path of a file, not a directory.")
    data = await _read_upload(request, min(UPLOAD_ARTIFACT_MAX_BYTES, ctx.settings.max_artifact_bytes))
    if not data:
        raise InvalidParameterValue("Request must specify data.")
    run = await run_in_threadpool(ctx.store.get_run, run_id)
    repo, prefix = ctx.repo_for(run.info.artifact_uri)
    await run_in_threadpool(_write_artifact, repo, _join(prefix, rel), data)
    return json_response({})


@_guard
async def get_logged_model_artifact(request: Request, ctx: Any) -> Response:
    """`/mlflow/logged-models/<id>/artifacts/files?artifact_file_path=..`: one file of a logged model."""
    rel = _nonempty(request.query_params.get("artifact_file_path") or "")
    model = await run_in_threadpool(ctx.store.get_logged_model, request.path_params["model_id"])
    repo, prefix = ctx.repo_for(model.artifact_location)
    return await _serve_file(repo, _join(prefix, rel), request_range=request.headers.get("range"))


ROUTES = [
    (["GET"], "/artifacts/list", list_run_artifacts),
    (["GET"], "/logged-models/{model_id}/artifacts/directories", list_logged_model_artifacts),
]

# (methods, path, raw async endpoint), each served under /api/2.0 and /ajax-api/2.0
RAW_ROUTES = [
    (["GET"], "/mlflow-artifacts/artifacts", proxy_list),
    (["PUT"], "/mlflow-artifacts/artifacts/{path:path}", proxy_upload),
    (["GET"], "/mlflow-artifacts/artifacts/{path:path}", proxy_download),
    (["DELETE"], "/mlflow-artifacts/artifacts/{path:path}", proxy_delete),
    (["POST"], "/mlflow-artifacts/mpu/create", mpu_create),
    (["POST"], "/mlflow-artifacts/mpu/create/{path:path}", mpu_create),
    (["POST"], "/mlflow-artifacts/mpu/complete", mpu_complete),
    (["POST"], "/mlflow-artifacts/mpu/complete/{path:path}", mpu_complete),
    (["POST"], "/mlflow-artifacts/mpu/abort", mpu_abort),
    (["POST"], "/mlflow-artifacts/mpu/abort/{path:path}", mpu_abort),
    (["PUT"], "/mlflow-artifacts/mpu/part/{path:path}", mpu_part),
    (["GET"], "/mlflow-artifacts/presigned/{path:path}", presigned_download),
    (["GET"], "/mlflow/logged-models/{model_id}/artifacts/files", get_logged_model_artifact),
    (["GET"], "/mlflow/get-artifact", get_run_artifact),  # mltrail's own: MLflow serves it at /get-artifact only
]

# (methods, path, raw async endpoint): MLflow serves these under /ajax-api/2.0 only (mlflow/server/__init__.py)
AJAX_RAW_ROUTES = [
    (["POST"], "/mlflow/upload-artifact", upload_artifact),
]

# (methods, path, raw async endpoint) at the server's root, as MLflow's serve_artifacts and
# serve_model_version_artifact (its static prefix is the root here)
ROOT_ROUTES = [
    (["GET"], "/get-artifact", get_run_artifact),
    (["GET"], "/model-versions/get-artifact", get_model_version_artifact),
]
