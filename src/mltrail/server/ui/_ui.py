"""What every UI handler shares: the `UI` object (server context, Jinja2 templates, static files).

Pages are Jinja2 templates with autoescaping on everything, and a Content-Security-Policy that
only allows this server's own scripts, and eval only where Plotly.js may load (the compare page):
stored names, tags or MLmodel contents can never run as script.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mltrail.server.context import ServerContext
from mltrail.server.ui._format import FILTERS
from mltrail.server.ui._sampling import Sampler
from mltrail.server.ui._static import StaticFiles
from mltrail.store.sql.store import SqlTrackingStore
from mltrail.version import __version__

TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "templates")
# No inline script runs (page data travels as JSON in <script type="application/json">), and no
# eval: uPlot, which draws the metric charts, needs none.
_CSP = ("default-src 'self'; script-src 'self'{eval}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'")
CSP = _CSP.format(eval="")
# Plotly's WebGL traces (parallel coordinates) compile their code with `new Function`: 'unsafe-eval'
# only on the pages that may load Plotly.js.
PLOTLY_CSP = _CSP.format(eval=" 'unsafe-eval'")
PLOTLY_TEMPLATES = frozenset({"compare.html"})
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
PLOTLY_PAGE_HEADERS = PAGE_HEADERS | {"Content-Security-Policy": PLOTLY_CSP}

Handler = Callable[["UI", Request], Response]


class UI:
    """What every UI handler shares: the server context, templates and static files."""

    def __init__(self, ctx: ServerContext) -> None:
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
    def store(self) -> SqlTrackingStore:
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
        headers = PLOTLY_PAGE_HEADERS if template in PLOTLY_TEMPLATES else PAGE_HEADERS
        return HTMLResponse(html, status_code=status, headers=headers)

    def error_page(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "error.html", status=status, status_code=status, message=message)
