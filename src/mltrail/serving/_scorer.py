"""What the MLflow and V2 endpoints share: the model, its schemas, the batcher, body limits, errors."""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any, Protocol

from mltrail.errors import INTERNAL_ERROR, BadRequest, MltrailException
from mltrail.models.mlmodel import Model
from mltrail.serving._batcher import Batcher
from mltrail.serving._inputs import UnsupportedMediaType, parse_request, validate
from mltrail.serving._settings import ServingSettings
from mltrail.types import Schema

_log = logging.getLogger("mltrail.serving")

# bodies above this are parsed and checked on a worker thread, so a big upload doesn't stall the loop
OFFLOAD_BYTES = 512 * 1024


class ServableModel(Protocol):
    """What the scoring server serves: a loaded `PyFuncModel`, or a wrapper with the same two members."""

    @property
    def metadata(self) -> Model: ...

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...


class BodyTooLarge(BadRequest):
    """A request body over `--max-body-mb` (answered with 413)."""


class ModelFailure(MltrailException):
    """The model raised while predicting (answered with 500; the server keeps serving)."""

    error_code = INTERNAL_ERROR


def status_of(e: MltrailException) -> int:
    """The HTTP status for an error, with the two statuses the scoring server adds (413, 415)."""
    if isinstance(e, BodyTooLarge):
        return 413
    if isinstance(e, UnsupportedMediaType):
        return 415
    return e.http_status


def as_model_failure(e: BaseException) -> MltrailException:
    """An exception raised by the model as the error the client gets (ours pass through unchanged)."""
    if isinstance(e, MltrailException):
        return e
    _log.error("The model failed to predict: %s: %s", type(e).__name__, e, exc_info=e)
    return ModelFailure(f"The model failed to predict: {type(e).__name__}: {e}")


def input_schema_of(model: ServableModel) -> Schema | None:
    """The model's input schema (None when it has no signature)."""
    return model.metadata.get_input_schema()


def parse_body(body: bytes, content_type: str | None, schema: Any) -> tuple[Any, dict[str, Any] | None]:
    """A request body as a validated model input and params."""
    data, params = parse_request(body, content_type, schema)
    return validate(data, schema), params


class Scorer:
    """A loaded model behind a batcher, with its input schema checked before batching.

    Args:
        model: a `PyFuncModel` (its `.metadata` gives the signature for validation and the flavors
            for the V2 metadata endpoint).
        settings: batching and limits.
    """

    def __init__(self, model: ServableModel, settings: ServingSettings) -> None:
        self.model = model
        self.settings = settings
        self.metadata = model.metadata
        self.input_schema = self.metadata.get_input_schema()
        self.output_schema = self.metadata.get_output_schema()
        self.params_schema = self.metadata.get_params_schema()
        self.batcher = Batcher(self._predict, settings.batch_wait_ms, settings.max_batch_rows)

    def _predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """On the runner thread: the model call itself."""
        if not params:
            return self.model.predict(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = self.model.predict(data, params=params)
        for w in caught:
            _log.warning("%s", w.message)
        return out

    def parse(self, body: bytes, content_type: str | None) -> tuple[Any, dict[str, Any] | None]:
        """A request body as a validated model input and params."""
        return parse_body(body, content_type, self.input_schema)

    async def parse_async(self, body: bytes, content_type: str | None) -> tuple[Any, dict[str, Any] | None]:
        if len(body) < OFFLOAD_BYTES:
            return self.parse(body, content_type)
        return await asyncio.get_running_loop().run_in_executor(None, self.parse, body, content_type)

    async def predict(self, data: Any, params: dict[str, Any] | None) -> Any:
        """The model's output for a validated input (batched with concurrent requests)."""
        try:
            return await self.batcher.submit(data, params)
        except MltrailException:
            raise
        except Exception as e:
            raise as_model_failure(e) from None

    async def read_body(self, receive: Any, headers: Any) -> bytes:
        """The whole request body, refusing (413) one over the limit before reading it where possible."""
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise BadRequest(f"Invalid Content-Length header {declared!r}.") from None
            if size > limit:
                raise BodyTooLarge(self._too_large(size))
        chunks = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("The client disconnected before sending the whole body.")
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > limit:
                    raise BodyTooLarge(self._too_large(total, at_least=True))
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self, size: int, at_least: bool = False) -> str:
        return (f"The request body is {'over ' if at_least else ''}{size} bytes; the limit is "
                f"{self.settings.max_body_bytes} bytes ({self.settings.max_body_mb:g} MiB, set by --max-body-mb).")

    def close(self) -> None:
        b = self.batcher
        if b.requests:
            _log.info("Scored %d requests in %d model calls (largest batch: %d requests).", b.requests,
                      b.model_calls, b.largest_batch)
        b.close()


