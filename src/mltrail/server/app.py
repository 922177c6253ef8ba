"""The tracking server app: `create_app(settings)` builds it; `app_from_env()` is the factory
uvicorn workers call (`mltrail server --workers N` passes the settings in the environment).

Every MLflow REST route is served under `/api/2.0/mlflow` and `/ajax-api/2.0/mlflow` (MLflow's UI
uses the latter), mltrail's own under `/api/2.0/mltrail` (and its `/ajax-api` twin), the artifact
proxy under `/api/2.0/mlflow-artifacts` (and its twin). The routes MLflow's server adds for its UI
by hand (mlflow/server/__init__.py) are served where it serves them: get-history-bulk,
search-datasets and upload-artifact under `/ajax-api/2.0/mlflow` only, `/get-artifact` and
`/model-versions/get-artifact` at the root. The UI (`mltrail.server.ui.create_ui`) is mounted at
`/` unless the settings turn it off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from mltrail.errors import ENDPOINT_NOT_FOUND
from mltrail.server._http import json_response, logger, method_dispatch
from mltrail.server.artifacts_only import artifacts_only_app
from mltrail.server.context import ServerContext
from mltrail.server.deployment import ServerOptions
from mltrail.server.routes import artifacts, experiments, metrics, models, registry, runs
from mltrail.server.settings import ServerSettings
from mltrail.server.ui import create_ui
from mltrail.store.sql.store import SqlTrackingStore
from mltrail.version import __version__

API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
AJAX_PREFIX = "/ajax-api/2.0"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


async def health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def version(request: Request) -> Response:
    return PlainTextResponse(__version__)


async def not_found(request: Request) -> Response:
    logger.warning("No such endpoint: %s %s", request.method, request.url.path)
    return json_response({"error_code": ENDPOINT_NOT_FOUND,
                          "message": f"No endpoint {request.method} {request.url.path} on this server."}, 404)


async def index(request: Request) -> Response:
    return PlainTextResponse(f"mltrail {__version__} tracking server: the REST API is under /api/2.0/mlflow/.")


def _json_routes(prefix: str, table: list[tuple[list[str], str, Callable[..., Any]]]) -> list[BaseRoute]:
    """One Route per path; several methods on one path share a dispatcher (order kept)."""
    by_path: dict[str, dict[str, Callable[..., Any]]] = {}
    for methods, path, handler in table:
        for m in methods:
            by_path.setdefault(path, {})[m] = handler
    return [Route(prefix + path, method_dispatch(handlers), methods=sorted(handlers))
            for path, handlers in by_path.items()]


def api_routes() -> list[BaseRoute]:
    mlflow_table = [*runs.ROUTES, *metrics.ROUTES, *experiments.ROUTES, *artifacts.ROUTES, *models.ROUTES,
                    *registry.ROUTES]
    routes: list[BaseRoute] = []
    for api in API_PREFIXES:
        routes += _json_routes(api + "/mlflow", mlflow_table)
        routes += _json_routes(api + "/mltrail", metrics.MLTRAIL_ROUTES)
        routes += [Route(api + path, fn, methods=methods) for methods, path, fn in artifacts.RAW_ROUTES]
    routes += _json_routes(AJAX_PREFIX + "/mlflow", metrics.AJAX_ROUTES)
    routes += [Route(AJAX_PREFIX + path, fn, methods=methods)
               for methods, path, fn in [*experiments.AJAX_RAW_ROUTES, *artifacts.AJAX_RAW_ROUTES]]
    return routes


def root_routes() -> list[BaseRoute]:
    """The routes at the server's root: health, version, and MLflow UI's file downloads."""
    return [Route("/health", health), Route("/version", version),
            *(Route(path, fn, methods=methods) for methods, path, fn in artifacts.ROOT_ROUTES)]


def create_app(settings: ServerSettings | None = None, store: SqlTrackingStore | None = None) -> Starlette:
    """The tracking server as an ASGI app.

    Args:
        settings: what `mltrail server` was given (defaults resolved here).
        store: a tracking store to serve instead of opening `settings.backend_store_uri` (tests).
    """
    settings = settings or ServerSettings()
    if settings.artifacts_only:  # the artifact proxy alone: no database; tracking routes answer 503
        return artifacts_only_app(settings, [*root_routes(), *api_routes()], not_found)
    ctx = ServerContext(settings, store)
    options = ServerOptions(ctx.settings, ctx.store.engine)  # server-info, /metrics, CORS, headers, prefix
    if ctx.auth is not None:  # no admin, no server: there is no default password
        from mltrail.server.auth.startup import ensure_admin

        ensure_admin(ctx.auth)
    from mltrail.server.auth.api import routes as auth_api_routes  # without --auth they answer 404 saying so

    routes: list[BaseRoute] = [*root_routes(), *options.routes, *api_routes(), *auth_api_routes()]
    for api in API_PREFIXES:
        routes.append(Route(api + "/{rest:path}", not_found, methods=_ALL_METHODS))
    if ctx.settings.ui:
        routes.append(Mount("/", app=create_ui(ctx)))
    else:
        routes.append(Route("/", index))
    if ctx.settings.auth:  # every route behind its rule (add routes above this line)
        from mltrail.server.auth.authorize import guard_routes

        guard_routes(routes, ctx)
    middleware = [*options.middleware]  # the Host check, CORS, security headers, the request timer
    if ctx.auth is not None:  # who is calling (scope["state"]["identity"]); the rules above decide the rest
        from mltrail.server.auth.middleware import AuthMiddleware

        middleware.append(Middleware(AuthMiddleware, store=ctx.auth, proxy_header=ctx.settings.auth_proxy_header,
                                     trusted_proxies=ctx.settings.trusted_proxies))
        # after AuthMiddleware: the CSRF check reads the session that one found
        from mltrail.server.auth.csrf import CsrfMiddleware

        middleware.append(Middleware(CsrfMiddleware, engine=ctx.store.engine,
                                     trusted_proxies=ctx.settings.trusted_proxies))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.ctx = ctx
    return options.finish(app)


def app_from_env() -> Starlette:
    """The app for a uvicorn worker process: settings from `MLTRAIL_SERVER_SETTINGS`."""
    return create_app(ServerSettings.from_env())
