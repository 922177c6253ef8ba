"""The scoring server: `create_scoring_app(model, settings)` builds the ASGI app (Starlette).

MLflow's endpoints (`/ping`, `/health`, `/version`, `/invocations`) and the Open Inference
Protocol (`/v2/...`, see `mltrail.serving.v2`). `/invocations` is the hot path: it is a bare
ASGI handler (no Request/Response objects) that the app calls before Starlette's router, so one
request costs little more than its JSON parsing, validation and the model call.
`app_from_env()` is the factory each uvicorn worker process calls (`--workers N`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mltrail.errors import INTERNAL_ERROR, MltrailException
from mltrail.serving._outputs import error_body, predictions_body
from mltrail.serving._scorer import Scorer, ServableModel, status_of
from mltrail.serving._settings import ServingSettings
from mltrail.version import __version__

_log = logging.getLogger("mltrail.serving")

_JSON_HEADERS = [(b"content-type", b"application/json")]


async def send_json(send: Any, status: int, body: bytes) -> None:
    """Send a whole JSON response over raw ASGI."""
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return None


class _Headers:
    """Just enough of a header mapping for `Scorer.read_body` (no Starlette Headers object on the hot path)."""

    __slots__ = ("_scope",)

    def __init__(self, scope: dict[str, Any]) -> None:
        self._scope = scope

    def get(self, name: str) -> str | None:
        return _header(self._scope, name.encode())


class Invocations:
    """`POST /invocations` as a bare ASGI app."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "POST":
            body = error_body("BAD_REQUEST", f"/invocations takes POST; received {scope['method']}.")
            await send({"type": "http.response.start", "status": 405,
                        "headers": [*_JSON_HEADERS, (b"allow", b"POST"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        scorer = self.scorer
        try:
            with scorer.batcher.arrival():
                raw = await scorer.read_body(receive, _Headers(scope))
                data, params = await scorer.parse_async(raw, _header(scope, b"content-type"))
            out = await scorer.predict(data, params)
            body = predictions_body(out)
        except MltrailException as e:
            await send_json(send, status_of(e), error_body(e.error_code, e.message))
            return
        except Exception as e:  # a bug of ours, or an output we cannot write: answer, keep serving
            _log.error("Scoring failed: %s: %s", type(e).__name__, e, exc_info=e)
            await send_json(send, 500, error_body(INTERNAL_ERROR, f"Scoring failed: {type(e).__name__}: {e}"))
            return
        await send_json(send, 200, body)


class ScoringApp(Starlette):
    """Starlette, with `/invocations` answered before routing (the hot path)."""

    invocations: Invocations
    scorer: Scorer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/invocations":
            await self.invocations(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_scoring_app(model: ServableModel, settings: ServingSettings | None = None) -> ScoringApp:
    """The scoring server's ASGI app for a loaded model.

    Args:
        model: a `PyFuncModel` (or a wrapper with its `predict(data, params=None)` and `.metadata`).
        settings: batching, limits and the V2 model name (defaults when None).

    Returns:
        A Starlette app; serve it with uvicorn, or call it in-process with Starlette's TestClient.
    """
    from mltrail.serving import v2

    settings = settings or ServingSettings()
    scorer = Scorer(model, settings)
    invocations = Invocations(scorer)

    async def ping(request: Request) -> Response:
        return Response("\n", status_code=200, media_type="application/json")

    async def version(request: Request) -> Response:
        return PlainTextResponse(__version__)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            scorer.close()

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/invocations", invocations, methods=["POST"]),
        *v2.routes(scorer),
    ]
    app = ScoringApp(routes=routes, lifespan=lifespan)
    app.invocations = invocations
    app.scorer = scorer
    return app


def configure_logging() -> None:
    """Show the scoring server's own log lines beside uvicorn's (the CLI and worker processes call this)."""
    log = logging.getLogger("mltrail.serving")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def load_served_model(model_uri: str) -> Any:
    """Load the model a server serves (through pyfunc: any registered flavor)."""
    from mltrail.pyfunc import load_model

    return load_model(model_uri)


def app_from_env() -> ScoringApp:
    """The app for one uvicorn worker: settings (and the model's location) from `MLTRAIL_SERVE_*`."""
    configure_logging()
    settings = ServingSettings.from_env()
    if not settings.model_uri:
        raise MltrailException("MLTRAIL_SERVE_MODEL_URI is not set: no model to serve.")
    return create_scoring_app(load_served_model(settings.model_uri), settings)
