"""The UI's Starlette app: routes, the Jinja2 environment, security headers and error pages.

Page and API handlers are plain synchronous functions `handler(ui, request) -> Response` (the
stores are synchronous); they run on the thread pool. Pages are Jinja2 templates with
autoescaping on everything, and a Content-Security-Policy that only allows this server's own
scripts: stored names, tags or MLmodel contents can never run as script.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from mltrail.errors import MltrailException
from mltrail.server._http import json_response, logger
from mltrail.server.ui._format import FILTERS
from mltrail.server.ui._sampling import Sampler
from mltrail.server.ui._static import StaticFiles
from mltrail.version import __version__

TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "templates")
# Plotly's WebGL traces compile their shader code with `new Function`, hence 'unsafe-eval';
# no inline script runs (page data travels as JSON in <script type="application/json">).
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}

Handler = Callable[["UI", Request], Response]


class UI:
    """What every UI handler shares: the server context, templates and static files."""

    def __init__(self, ctx: Any) -> None:
        import jinja2
        import orjson

        self.ctx = ctx
        self.static = StaticFiles()
        self.sampler = Sampler(ctx.store)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, trim_blocks=True,
            lstrip_blocks=True, auto_reload=False)
        self.env.filters.update(FILTERS)
        # orjson writes NaN and infinities as null: page data stays valid JSON for JSON.parse
        self.env.policies["json.dumps_function"] = lambda obj, **_: orjson.dumps(obj).decode()
        self.env.globals["version"] = __version__

    @property
    def store(self) -> Any:
        return self.ctx.store

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")

        def static(name: str) -> str:
            return self.static.url(name, base)

        def url(path: str, **query: Any) -> str:
            q = {k: v for k, v in query.items() if v not in (None, "", [])}
            return base + path + ("?" + urlencode(q, doseq=True) if q else "")

        html = self.env.get_template(template).render(base=base, static=static, has_static=self.static.available,
                                                      url=url, request=request, **context)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def error_page(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "error.html", status=status, status_code=status, message=message)


def _page(ui: UI, handler: Handler) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(handler, ui, request)
        except MltrailException as e:
            return ui.error_page(request, e.http_status, e.message)
        except Exception as e:  # noqa: BLE001 - show a page, log the trace
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
        except Exception as e:  # noqa: BLE001 - the one JSON error shape
            logger.exception("Unhandled error in a UI API call", exc_info=e)
            return json_response({"error_code": "INTERNAL_ERROR", "message": f"{type(e).__name__}: {e}"}, 500)

    endpoint.__name__ = handler.__name__
    return endpoint


def build(ctx: Any) -> Starlette:
    """The UI app for one server context (mounted at `/` by `create_app`)."""
    from mltrail.server.ui import _api_views as api
    from mltrail.server.ui import _pages as pages

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
        Route("/ui/files/{owner}/{owner_id}/{path:path}", _api(ui, api.raw_file)),
        Route("/ui/static/{name}", static),
        Route("/{rest:path}", not_found),
    ]
    app = Starlette(routes=routes)
    app.state.ui = ui
    return app
