"""The UI's Starlette app: its routes, and the wrappers that turn handlers into endpoints.

Page and API handlers are plain synchronous functions `handler(ui, request) -> Response` (the
stores are synchronous); they run on the thread pool. An error becomes an error page for a page
and MLflow's JSON error shape for an API call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mltrail.errors import MltrailException
from mltrail.server._http import RETRY_AFTER_S, database_unavailable, internal_error, json_response, logger
from mltrail.server.auth import ui as auth_ui
from mltrail.server.context import ServerContext
from mltrail.server.ui import _api_views as api
from mltrail.server.ui import _live as live
from mltrail.server.ui import _pages as pages
from mltrail.server.ui import _tensorboard as tensorboard
from mltrail.server.ui._ui import UI, Handler
from mltrail.store.sql.db_errors import is_transient


def _page(ui: UI, handler: Handler) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(handler, ui, request)
        except MltrailException as e:
            return ui.error_page(request, e.http_status, e.message)
        except Exception as e:  # noqa: BLE001 - show a page, log the trace
            if is_transient(e):  # a lost database: a page saying so, and when to try again
                unavailable = database_unavailable(e)
                page = ui.error_page(request, unavailable.http_status, unavailable.message)
                page.headers["Retry-After"] = str(RETRY_AFTER_S)
                return page
            logger.exception("Unhandled error in a UI page", exc_info=e)
            return ui.error_page(request, 500, f"{type(e).__name__}: {e}")

    endpoint.__name__ = handler.__name__
    return endpoint


def _api(ui: UI, handler: Handler) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(handler, ui, request)
        except MltrailException as e:
            return json_response(e.to_dict(), e.http_status)
        except Exception as e:  # noqa: BLE001 - the one JSON error shape, and the one database mapping
            return internal_error(e)

    endpoint.__name__ = handler.__name__
    return endpoint


def build(ctx: ServerContext) -> Starlette:
    """The UI app for one server context (mounted at `/` by `create_app`)."""
    ui = UI(ctx)

    async def static(request: Request) -> Response:
        return ui.static.response(request, request.path_params["name"])

    async def not_found(request: Request) -> Response:
        return ui.error_page(request, 404, f"No page at {request.url.path}.")

    routes: list[BaseRoute] = [
        Route("/", _page(ui, pages.experiments)),
        Route("/experiments/{experiment_id}", _page(ui, pages.experiment_runs)),
        Route("/runs/{run_id}", _page(ui, pages.run_page)),
        Route("/compare", _page(ui, pages.compare)),
        Route("/models", _page(ui, pages.models)),
        Route("/models/{model_id}", _page(ui, pages.logged_model)),
        Route("/registered-models/{name:path}", _page(ui, pages.registered_model)),
        Route("/ui/api/runs", _api(ui, api.runs)),
        Route("/ui/api/metrics", _api(ui, api.metrics)),
        Route("/ui/api/artifacts", _api(ui, api.artifacts)),
        Route("/ui/api/preview", _api(ui, api.preview)),
        Route("/ui/api/live", _api(ui, live.live)),
        Route("/ui/api/tensorboard", _api(ui, tensorboard.scalars_endpoint)),
        Route("/ui/api/tensorboard/dirs", _api(ui, tensorboard.dirs_endpoint)),
        Route("/ui/files/{owner}/{owner_id}/{path:path}", _api(ui, api.raw_file)),
        Route("/ui/static/{name}", static),
        *auth_ui.routes(ui),  # login, logout, account, admin, sharing
        Route("/{rest:path}", not_found),
    ]
    app = Starlette(routes=routes)
    app.state.ui = ui
    return app
