"""Artifacts: the proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`: PUT, GET, DELETE, and the
listing `?path=`), run artifact listing (`/mlflow/artifacts/list`), file downloads for runs
(`/get-artifact`), registered model versions (`/model-versions/get-artifact`) and logged models,
logged-model directory listings, and the UI's small-file upload into a run
(`/ajax-api/2.0/mlflow/upload-artifact`).

Uploads stream to a temporary file beside the target and are renamed into place, so a reader
never sees half a file; the size limit is checked as bytes arrive. Every path goes through
`safe_relpath` and, for local storage, `resolve_under` (symlinks cannot lead out of the root).
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
import uuid
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from mltrail._paths import resolve_under, safe_relpath
from mltrail.errors import InvalidParameterValue, MltrailException, ResourceDoesNotExist
from mltrail.server._http import (
    Call,
    RequestTooLarge,
    check_content_length,
    error_response,
    internal_error,
    json_response,
)
from mltrail.store.artifact.local import LocalArtifactRepository
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


async def _serve_file(repo: Any, rel: str, attachment: bool = False) -> Response:
    """Stream one file of `repo` (local: straight from disk; other stores: via a temp copy).

    A directory is a 400 (never copied to serve it), a missing file a 404. `attachment` adds
    MLflow's `Content-Disposition: attachment` (its _send_artifact always sends files so).
    """
    name = rel.rsplit("/", 1)[-1]
    filename = name if attachment and name else None
    if isinstance(repo, LocalArtifactRepository):
        path = resolve_under(repo.root, rel)
        if os.path.isdir(path):
            raise _is_a_directory(rel)
        if not os.path.isfile(path):
            raise _no_such_artifact(rel)
        return FileResponse(path, media_type=_media_type(name), headers=_SAFE_HEADERS, filename=filename)
    if not rel or await run_in_threadpool(repo.is_dir, rel):
        raise _is_a_directory(rel)
    tmp = tempfile.mkdtemp(prefix="mltrail-serve-")
    try:
        local = os.path.join(tmp, name)
        await run_in_threadpool(repo.download_file, rel, local)  # is_dir has listed it: not a directory
        if not os.path.isfile(local):
            raise _no_such_artifact(rel)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(local, media_type=_media_type(name), headers=_SAFE_HEADERS,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True), filename=filename)


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
        dest = resolve_under(repo.root, rel)
        if os.path.isdir(dest):
            raise InvalidParameterValue(f"Cannot upload to '{rel}': a directory of that name exists.")
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidParameterValue(f"Cannot upload to '{rel}': a parent of it is a file.") from None
        resolve_under(repo.root, rel)  # re-check now that the parents exist
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
    return await _serve_file(ctx.proxy_repo(), rel)


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
    return await _serve_file(repo, _join(prefix, rel), attachment=True)


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
    return await _serve_file(repo, _join(prefix, rel), attachment=True)


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
    return await _serve_file(repo, _join(prefix, rel))


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
