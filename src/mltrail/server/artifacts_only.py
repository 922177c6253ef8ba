"""`--artifacts-only`: the artifact proxy alone, without a database; tracking routes answer MLflow's 503."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from mltrail.server.context import ArtifactsNotServed
from mltrail.server.deployment import ServerOptions
from mltrail.server.settings import ServerSettings
from mltrail.store.artifact import get_artifact_repository
from mltrail.store.artifact.base import ArtifactRepository
from mltrail.tracking_uri import scheme_of
from mltrail.version import __version__

_KEPT_PATHS = ("/health", "/version")
_API_ROOTS = ("/api/2.0", "/ajax-api/2.0", "/api/3.0", "/ajax-api/3.0")


class ProxyOnlyContext:
    """What the proxy routes use of a server context: the settings and the destination's repository."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.destination = settings.artifacts_destination or ""
        self._repo: ArtifactRepository | None = None

    def proxy_repo(self) -> ArtifactRepository:
        if not self.settings.serve_artifacts:  # refused by the settings; kept as the full context says it
            raise ArtifactsNotServed("The artifact proxy is disabled: this server runs with --no-serve-artifacts.")
        if self._repo is None:
            if scheme_of(self.destination) == "":  # resolved settings hold local destinations as paths
                os.makedirs(self.destination, exist_ok=True)
            self._repo = get_artifact_repository(self.destination)
        return self._repo


def kept(route: BaseRoute) -> bool:
    """The proxy's routes and health/version stay; everything else needs the tracking store."""
    return isinstance(route, Route) and ("/mlflow-artifacts/" in route.path or route.path in _KEPT_PATHS)


def disabled(route: Route) -> Route:
    """`route` answering MLflow's artifacts-only 503 (its words, text/plain)."""
    message = (f"Endpoint: {route.path} disabled due to the mlflow server running in `--artifacts-only` mode. "
               "To enable tracking server functionality, run `mltrail server` without `--artifacts-only`")

    async def tracking_disabled(request: Request) -> Response:
        return PlainTextResponse(message, 503)

    return Route(route.path, tracking_disabled, methods=sorted(route.methods or ["GET"]))


def artifacts_only_app(settings: ServerSettings, tracking_routes: list[BaseRoute],
                       not_found: Callable[[Request], Any]) -> Starlette:
    """The app `--artifacts-only` serves: the proxy, health, version, server-info and /metrics."""
    settings = settings.resolved()
    options = ServerOptions(settings)

    async def index(request: Request) -> Response:
        return PlainTextResponse(f"mltrail {__version__} artifact server (--artifacts-only): the artifact proxy "
                                 "is under /api/2.0/mlflow-artifacts/.")

    routes: list[BaseRoute] = [*options.routes]
    routes += [r if kept(r) else disabled(r) for r in tracking_routes if isinstance(r, Route)]
    routes += [Route(api + "/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
               for api in _API_ROOTS]
    routes.append(Route("/", index))
    app = Starlette(routes=routes, middleware=options.middleware)
    app.state.ctx = ProxyOnlyContext(settings)
    return options.finish(app)
