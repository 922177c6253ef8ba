"""The web UI: server-rendered pages (Jinja2), small plain JS modules, uPlot metric charts.

`create_app` mounts `create_ui(ctx)` at `/`. Pages: `/` (experiments), `/experiments/<id>`
(runs table), `/runs/<id>`, `/compare?run_ids=..`, `/models`, `/models/<model_id>`,
`/registered-models/<name>`; JSON for the pages' scripts under `/ui/api/`, artifact files under
`/ui/files/`, static files under `/ui/static/`.
"""

from __future__ import annotations

from starlette.applications import Starlette

from mltrail.server.context import ServerContext
from mltrail.server.ui._app import build


def create_ui(ctx: ServerContext) -> Starlette:
    """The UI as a Starlette app over one server context (its store and artifact roots)."""
    return build(ctx)


__all__ = ["create_ui"]
