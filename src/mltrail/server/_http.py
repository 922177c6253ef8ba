"""Request parsing, JSON responses and the one error shape, shared by every route module.

A route handler is a plain function `handler(call: Call) -> dict` run in the thread pool (the
stores are synchronous); `json_endpoint` wraps it into a Starlette endpoint that reads the body
within the size limit, checks the content type, parses JSON with orjson, and turns any
`MltrailException` into `{"error_code", "message"}` with MLflow's HTTP status; any other exception
goes through `internal_error`, the one place where a lost database connection becomes a 503 with
`Retry-After`. Before the handler runs, a request to an MLflow endpoint is checked as MLflow's
server checks it (`mltrail.server.validation`: wrong JSON types and missing required fields, in
MLflow's words).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, overload

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mltrail.errors import (
    BAD_REQUEST,
    INTERNAL_ERROR,
    REQUEST_LIMIT_EXCEEDED,
    TEMPORARILY_UNAVAILABLE,
    InvalidParameterValue,
    MltrailException,
)
from mltrail.server.context import ServerContext
from mltrail.server.validation import check_request
from mltrail.store.readable import Readable
from mltrail.store.rest_json import as_int, as_str
from mltrail.store.sql.db_errors import describe, is_constraint_violation, is_disconnect, is_transient
from mltrail.store.sql.store import SqlTrackingStore

logger = logging.getLogger("mltrail.server")
JSON = "application/json"


class RequestTooLarge(MltrailException):
    error_code = REQUEST_LIMIT_EXCEEDED
    http_status = 413


class UnsupportedMediaType(MltrailException):
    error_code = BAD_REQUEST
    http_status = 415


# How long a client is told to wait before retrying a request the database could not serve.
RETRY_AFTER_S = 1
# Where a server with --auth puts a request's authorization gate (mltrail.server.auth.authorize.Gate)
GATE_KEY = "mltrail.gate"
# the endpoints json_endpoint and method_dispatch built: their gate runs once the body is parsed
_JSON_ENDPOINTS: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def is_json_endpoint(endpoint: Callable[..., Any]) -> bool:
    """Whether `endpoint` parses a JSON request into a `Call` (and so runs the request's gate itself)."""
    return endpoint in _JSON_ENDPOINTS


class CallGate(Protocol):
    """A request's authorization, as a JSON handler's call sees it (built by mltrail.server.auth)."""

    def check(self, call: Call) -> None: ...

    def after(self, call: Call, result: Any) -> None: ...

    def readable(self, resource_type: str) -> Readable | None: ...


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type=JSON)


def error_response(exc: MltrailException) -> Response:
    response = json_response(exc.to_dict(), exc.http_status)
    if exc.http_status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def database_unavailable(exc: BaseException) -> MltrailException:
    """The 503 for a lost database connection or a lock held past every retry: the client waits and
    sends the same request again (the store's write retries have already run out)."""
    cause = "connection to the database was lost" if is_disconnect(exc) else "database is locked by another writer"
    return MltrailException(
        f"The tracking database is temporarily unavailable: the {cause} ({describe(exc)}). "
        f"Retry after {RETRY_AFTER_S} s.", TEMPORARILY_UNAVAILABLE)


def internal_error(exc: BaseException) -> Response:
    """The response for an exception that is not an `MltrailException`: the one place where database
    errors are mapped, as MLflow's SQL store maps them (a transient one is 503 with Retry-After, a
    constraint violation 400), and anything else is a logged 500."""
    if is_transient(exc):
        logger.warning("Database unavailable, answering 503: %s", describe(exc))
        return error_response(database_unavailable(exc))
    if is_constraint_violation(exc):
        return error_response(MltrailException(f"The request broke a database constraint: {describe(exc)}.",
                                               BAD_REQUEST))
    logger.exception("Unhandled error in a request", exc_info=exc)
    return json_response({"error_code": INTERNAL_ERROR, "message": f"{type(exc).__name__}: {exc}"}, 500)


def check_content_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise UnsupportedMediaType(f"Invalid Content-Length header {declared!r}.") from None
        if n > limit:
            raise RequestTooLarge(f"Request body of {n} bytes exceeds this server's limit of {limit} bytes.")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) one larger than `limit`, whatever Content-Length claims."""
    check_content_length(request, limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"Request body exceeds this server's limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON or (media.startswith("application/") and media.endswith("+json"))


async def read_json_body(request: Request, limit: int) -> dict[str, Any] | None:
    """The JSON object a request carries (None for an empty body), within the size limit."""
    body = await read_body(request, limit)
    if not body.strip():
        return None
    if not _is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {request.headers.get('content-type')!r}: this endpoint expects "
            "'application/json'.")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise MltrailException(f"Malformed JSON request body: {e}.", BAD_REQUEST) from None
    if not isinstance(parsed, dict):
        raise MltrailException(f"Invalid JSON request body: expected an object, got {type(parsed).__name__}.",
                               BAD_REQUEST)
    return parsed


def merge_input(request: Request, body: dict[str, Any] | None) -> dict[str, Any]:
    """Query parameters, with the JSON body's fields over them."""
    data: dict[str, Any] = dict(request.query_params)
    if body:
        data.update(body)
    return data


@dataclass
class Call:
    """One request as a handler sees it."""

    ctx: ServerContext
    data: dict[str, Any]
    query: Any
    path_params: dict[str, Any]
    method: str
    gate: CallGate | None = None

    @property
    def store(self) -> SqlTrackingStore:
        return self.ctx.store

    def readable(self, resource_type: str) -> Readable | None:
        """What the caller may read of a resource type ("experiment", "registered_model"), for a
        search; None when the server runs without --auth (or the caller is an admin)."""
        return None if self.gate is None else self.gate.readable(resource_type)

    def text(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        value = as_str(self.data.get(name), name, default)
        if required and not value:
            raise InvalidParameterValue(f"Missing value for required parameter '{name}'.")
        return value

    def req(self, name: str, *aliases: str) -> str:
        """A required string parameter (MLflow also accepts old aliases such as run_uuid)."""
        for n in (name, *aliases):
            value = as_str(self.data.get(n), n)
            if value:
                return value
        raise InvalidParameterValue(f"Missing value for required parameter '{name}'.")

    @overload
    def integer(self, name: str) -> int | None: ...

    @overload
    def integer(self, name: str, default: int) -> int: ...

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer field; `default` when absent (so an int default gives an int)."""
        return as_int(self.data.get(name), name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def bounded_ids(self, name: str, noun: str, request: str, limit: int) -> list[str]:
        """A repeated id field MLflow bounds: at least one, at most `limit`, refused in MLflow's words."""
        ids = [str(v) for v in self.items(name)]
        if not ids:
            raise InvalidParameterValue(f"{request} request must specify at least one {noun}.")
        if len(ids) > limit:
            raise InvalidParameterValue(
                f"{request} request cannot specify more than {limit} {noun}s. Received {len(ids)} {noun}s.")
        return ids

    def items(self, name: str) -> list[Any]:
        """A repeated field: a JSON list, or repeated query parameters (`?run_ids=a&run_ids=b`)."""
        if self.method in ("GET", "HEAD"):
            return list(self.query.getlist(name))
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            return [value]
        return value


Handler = Callable[[Call], Any]


def _checked_call(handler: Handler, call: Call, path: str, body: dict[str, Any] | None) -> Any:
    """The handler, after MLflow's own checks of the request (`mltrail.server.validation`) and,
    with --auth, the caller's permission (the gate: before the handler, then after it succeeded)."""
    check_request(call.method, path, call.query, body)
    if call.gate is None:
        return handler(call)
    call.gate.check(call)
    result = handler(call)
    call.gate.after(call, result)
    return result


def json_endpoint(handler: Handler) -> Callable[[Request], Any]:
    """A Starlette endpoint around a synchronous JSON handler."""

    async def endpoint(request: Request) -> Response:
        ctx = request.app.state.ctx
        try:
            body = None if request.method in ("GET", "HEAD") else \
                await read_json_body(request, ctx.settings.max_json_bytes)
            call = Call(ctx, merge_input(request, body), request.query_params, dict(request.path_params),
                        request.method, request.scope.get(GATE_KEY))
            result = await run_in_threadpool(_checked_call, handler, call, request.url.path, body)
        except MltrailException as e:
            return error_response(e)
        except Exception as e:  # noqa: BLE001 - every failure must come back as the JSON error shape
            return internal_error(e)
        if isinstance(result, Response):
            return result
        return json_response(result if result is not None else {})

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    _JSON_ENDPOINTS.add(endpoint)
    return endpoint


def method_dispatch(handlers: dict[str, Handler]) -> Callable[[Request], Any]:
    """One endpoint for several methods on the same path (GET/PATCH/DELETE of a logged model)."""
    wrapped = {m: json_endpoint(h) for m, h in handlers.items()}

    async def endpoint(request: Request) -> Response:
        fn = wrapped.get(request.method)
        if fn is None:
            return json_response({"error_code": BAD_REQUEST,
                                  "message": f"Method {request.method} is not allowed here; expected one of "
                                             f"{', '.join(sorted(wrapped))}."}, 405)
        return await fn(request)

    _JSON_ENDPOINTS.add(endpoint)
    return endpoint
