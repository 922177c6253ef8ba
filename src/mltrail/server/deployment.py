"""What the deployment options add around the tracking app: server-info, /metrics, middleware, the prefix."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount

from mltrail.server.http_headers import security_middleware
from mltrail.server.prometheus import PrometheusMiddleware, ServerMetrics
from mltrail.server.server_info import server_info_routes
from mltrail.server.settings import ServerSettings


class ServerOptions:
    """The routes, middleware and mounting that `settings` ask for (resolved settings)."""

    def __init__(self, settings: ServerSettings, engine: Any | None = None) -> None:
        self.settings = settings
        self.metrics = ServerMetrics(engine) if settings.expose_prometheus else None

    @property
    def routes(self) -> list[BaseRoute]:
        """server-info always; /metrics with --expose-prometheus."""
        routes: list[BaseRoute] = [*server_info_routes(tracking=not self.settings.artifacts_only)]
        if self.metrics is not None:
            routes.append(self.metrics.route())
        return routes

    @property
    def middleware(self) -> list[Middleware]:
        """Outermost first: the request timer (so it sees every answer), then the security stack."""
        timer = [Middleware(PrometheusMiddleware, metrics=self.metrics)] if self.metrics is not None else []
        return [*timer, *security_middleware(self.settings)]

    def finish(self, app: Starlette) -> Starlette:
        """The app itself, or the app mounted under `--static-prefix` (UI links follow `root_path`)."""
        prefix = self.settings.static_prefix
        if not prefix:
            return app
        outer = Starlette(routes=[Mount(prefix, app=app)])
        outer.state.ctx = app.state.ctx
        return outer
