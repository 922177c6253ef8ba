"""Artifacts: the proxy (`/api/2.0/mlflow-artifacts/artifacts/<path>`: PUT, GET, DELETE, and the
listing `?path=`), run artifact listing (`/mlflow/artifacts/list`), file downloads for runs
(`/get-artifact`) and logged models, and logged-model directory listings.

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


async def _serve_file(repo: Any, rel: str) -> Response:
    """Stream one file of `repo` (local: straight from disk; other stores: via a temp copy)."""
    name = rel.rsplit("/", 1)[-1]
    if isinstance(repo, LocalArtifactRepository):
        path = resolve_under(repo.root, rel)
        if not os.path.isfile(path):
            raise ResourceDoesNotExist(f"No artifact file at '{rel}'.")
        return FileResponse(path, media_type=_media_type(name), headers=_SAFE_HEADERS)
    tmp = tempfile.mkdtemp(prefix="mltrail-serve-")
    try:
        local = await run_in_threadpool(repo.download_artifacts, rel, tmp)
        if not os.path.isfile(local):
            raise ResourceDoesNotExist(f"No artifact file at '{rel}'.")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(local, media_type=_media_type(name), headers=_SAFE_HEADERS,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


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


@_guard
async def get_run_artifact(request: Request, ctx: Any) -> Response:
    """MLflow UI's `/get-artifact?run_id=..&path=..`: one file of a run."""
    run_id = request.query_params.get("run_id") or request.query_params.get("run_uuid")
    if not run_id:
        raise InvalidParameterValue("Missing value for required parameter 'run_id'.")
    rel = _nonempty(request.query_params.get("path") or "")
    run = await run_in_threadpool(ctx.store.get_run, run_id)
    repo, prefix = ctx.repo_for(run.info.artifact_uri)
    return await _serve_file(repo, _join(prefix, rel))


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
    (["GET"], "/mlflow/get-artifact", get_run_artifact),
]
