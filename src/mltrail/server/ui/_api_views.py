"""The UI's JSON endpoints (`/ui/api/...`) and raw artifact files (`/ui/files/...`).

- `GET /ui/api/runs?experiment_id=&filter=&order_by=&columns=&page_token=&page_size=&view=`:
  the next page of the runs table as rows (`{"rows": [...], "next_page_token": ...}`).
- `GET /ui/api/metrics?run_ids=a,b&key=&max_points=&min_step=&max_step=`: downsampled series
  (`{"key": ..., "runs": [{"run_id", "steps", "values", "timestamps"}]}`).
- `GET /ui/api/artifacts?run_id=|model_id=&path=`: one directory's entries.
- `GET /ui/api/preview?run_id=|model_id=&path=`: what the preview pane shows for one file.
- `GET /ui/files/run|model/<id>/<path>`: the file itself, for images and downloads.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.server._http import json_response
from mltrail.server.ui._artifacts import SAFE_HEADERS, ArtifactView, media_type
from mltrail.server.ui._runs import page_size, parse_columns, runs_page
from mltrail.server.ui._sampling import points_per_run
from mltrail.server.ui._ui import UI

_NO_STORE = {"Cache-Control": "no-store"}


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(float(raw))
    except ValueError:
        raise InvalidParameterValue(f"Invalid {name} {raw!r}: expected an integer.") from None


def _required(request: Request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise InvalidParameterValue(f"Missing value for required parameter '{name}'.")
    return value


def runs(ui: UI, request: Request) -> Response:
    p = request.query_params
    experiment_id = _required(request, "experiment_id")
    page = runs_page(ui.store, experiment_id, (p.get("filter") or "").strip(), (p.get("order_by") or "").strip()
                     or None, p.get("page_token") or None, page_size(p.get("page_size")),
                     parse_columns(p.get("columns")), p.get("view"))
    return json_response({"rows": [r.to_dict() for r in page.rows], "columns": [c.spec for c in page.columns],
                          "nested": page.nested, "next_page_token": page.token})


def metrics(ui: UI, request: Request) -> Response:
    key = _required(request, "key")
    ids: list[str] = []
    for value in request.query_params.getlist("run_ids"):
        ids += [x.strip() for x in value.split(",") if x.strip()]
    n = _int(request, "max_points") or points_per_run(len(ids))
    body = ui.sampler.response(ids, key, n, _int(request, "min_step"), _int(request, "max_step"))
    return Response(body, media_type="application/json", headers=_NO_STORE)


def _view(ui: UI, request: Request) -> ArtifactView:
    run_id = request.query_params.get("run_id")
    model_id = request.query_params.get("model_id")
    return _view_of(ui, "run" if run_id else "model", run_id or model_id or "")


def _view_of(ui: UI, owner: str, owner_id: str) -> ArtifactView:
    if not owner_id:
        raise InvalidParameterValue("Missing value for required parameter 'run_id' (or 'model_id').")
    if owner == "run":
        return ArtifactView.for_run(ui.ctx, ui.store.get_run(owner_id))
    if owner == "model":
        return ArtifactView.for_model(ui.ctx, ui.store.get_logged_model(owner_id))
    raise ResourceDoesNotExist(f"No artifact owner kind {owner!r}: expected 'run' or 'model'.")


def artifacts(ui: UI, request: Request) -> Response:
    view = _view(ui, request)
    return json_response({"files": view.list(request.query_params.get("path") or "")})


def preview(ui: UI, request: Request) -> Response:
    view = _view(ui, request)
    base = request.scope.get("root_path", "").rstrip("/")
    return json_response(view.preview(_required(request, "path"), base))


def raw_file(ui: UI, request: Request) -> Response:
    view = _view_of(ui, request.path_params["owner"], request.path_params["owner_id"])
    rel = request.path_params["path"]
    headers: dict[str, Any] = dict(SAFE_HEADERS)
    local = view.local_file(rel) if rel else None
    if local is not None:
        if not os.path.isfile(local):
            raise ResourceDoesNotExist(f"No artifact file at '{rel}'.")
        return FileResponse(local, media_type=media_type(rel), headers=headers)
    data, _ = view.read(rel)
    return Response(data, media_type=media_type(rel), headers=headers)
