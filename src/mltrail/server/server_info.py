"""`/api/3.0/mlflow/server-info` (and its ajax twin): how this server is set up, as MLflow 3's client asks.

MLflow's client reads it before multipart artifact transfers and workspace calls; it is public,
even with auth on, so it holds nothing but capability flags. We answer as a plain MLflow server
backed by a SQL store would, without workspaces, trace archival or the AI gateway. Multipart and
presigned transfers are reported off because this server does not implement their endpoints, so
the client keeps to the ordinary artifact proxy calls (MLflow's server reports the presigned
request contracts as supported).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mltrail.server._http import json_response

PATHS = ("/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info")


def server_info(tracking: bool) -> dict[str, Any]:
    """The answer; `tracking` is False for an `--artifacts-only` server (no tracking store)."""
    return {
        "store_type": "SqlStore" if tracking else None,
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    }


def server_info_routes(tracking: bool) -> list[Route]:
    payload = server_info(tracking)

    async def get_server_info(request: Request) -> Response:
        return json_response(payload)

    return [Route(path, get_server_info, methods=["GET"]) for path in PATHS]
