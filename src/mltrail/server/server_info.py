"""`/api/3.0/mlflow/server-info` (and its ajax twin): how this server is set up, as MLflow 3's client asks.

MLflow's client reads it before multipart artifact transfers and workspace calls; it is public,
even with auth on, so it holds nothing but capability flags. We answer as a plain MLflow server
backed by a SQL store would, without workspaces, trace archival or the AI gateway. Multipart
uploads are on whenever the server proxies artifacts (every destination takes them: parts go to
presigned S3 URLs or through this server); multipart downloads, which MLflow's client makes with
ranged reads of a presigned URL straight from the store, only when the server hands such URLs out
(`--artifacts-presigned-urls`) over an S3 destination.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mltrail.server._http import json_response
from mltrail.server.settings import ServerSettings

PATHS = ("/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info")


def presigned_downloads(settings: ServerSettings | None) -> bool:
    """Whether the proxy answers `/mlflow-artifacts/presigned/<path>` with a URL into the store."""
    if settings is None or not settings.serve_artifacts or not settings.presigned_urls:
        return False
    return (settings.artifacts_destination or "").startswith("s3://")


def server_info(tracking: bool, settings: ServerSettings | None = None) -> dict[str, Any]:
    """The answer; `tracking` is False for an `--artifacts-only` server (no tracking store)."""
    serving = settings is not None and settings.serve_artifacts
    return {
        "store_type": "SqlStore" if tracking else None,
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": serving,
        "multipart_downloads_enabled": presigned_downloads(settings),
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


def server_info_routes(tracking: bool) -> list[Route]:
    async def get_server_info(request: Request) -> Response:
        ctx = getattr(request.app.state, "ctx", None)
        return json_response(server_info(tracking, getattr(ctx, "settings", None)))

    return [Route(path, get_server_info, methods=["GET"]) for path in PATHS]
