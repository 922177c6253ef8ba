"""The error hierarchy: one base, `MltrailException(message, error_code)`, with MLflow's error codes.

Every subclass carries the HTTP status the servers answer with, so a store error travels
unchanged from SQL to REST and back (the REST client re-raises the same class).
"""

from __future__ import annotations

import json
from typing import Any

INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID_STATE = "INVALID_STATE"
BAD_REQUEST = "BAD_REQUEST"
INTERNAL_ERROR = "INTERNAL_ERROR"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
REQUEST_LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"

_HTTP_STATUS = {
    INVALID_PARAMETER_VALUE: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    RESOURCE_ALREADY_EXISTS: 400,
    INVALID_STATE: 400,
    BAD_REQUEST: 400,
    INTERNAL_ERROR: 500,
    PERMISSION_DENIED: 403,
    UNAUTHENTICATED: 401,
    REQUEST_LIMIT_EXCEEDED: 429,
    ENDPOINT_NOT_FOUND: 404,
    TEMPORARILY_UNAVAILABLE: 503,
    NOT_IMPLEMENTED: 501,
}


def http_status_for(error_code: str) -> int:
    """The HTTP status MLflow's servers answer with for `error_code` (500 when unknown)."""
    return _HTTP_STATUS.get(error_code, 500)


class MltrailException(Exception):
    """Base of every error mltrail raises on purpose."""

    error_code: str = INTERNAL_ERROR

    def __init__(self, message: str, error_code: str | None = None, **kwargs: Any) -> None:
        """`kwargs` are extra keys for the JSON body, as MLflow's `MlflowException(..., **kwargs)`."""
        super().__init__(message)
        self.message = str(message)
        if error_code is not None:
            self.error_code = error_code
        self.json_kwargs: dict[str, Any] = kwargs

    @property
    def http_status(self) -> int:
        return http_status_for(self.error_code)

    def get_http_status_code(self) -> int:
        """MLflow's name for `http_status`."""
        return self.http_status

    def serialize_as_json(self) -> str:
        """The error as MLflow's JSON text: error_code, message and any extra keys given."""
        return json.dumps({**self.to_dict(), **getattr(self, "json_kwargs", {})})

    @classmethod
    def invalid_parameter_value(cls, message: str, **kwargs: Any) -> MltrailException:
        """An INVALID_PARAMETER_VALUE error, as MLflow's `MlflowException.invalid_parameter_value`."""
        if cls is MltrailException:
            return InvalidParameterValue(message, **kwargs)
        return cls(message, INVALID_PARAMETER_VALUE, **kwargs)

    def to_dict(self) -> dict[str, str]:
        """The JSON body the servers send: `{"error_code": ..., "message": ...}`."""
        return {"error_code": self.error_code, "message": self.message}

    @classmethod
    def from_error_code(cls, message: str, error_code: str) -> MltrailException:
        """Rebuild the most specific subclass for an error code received over HTTP."""
        sub = _BY_CODE.get(error_code)
        if sub is not None:
            return sub(message)
        return cls(message, error_code)


class InvalidParameterValue(MltrailException):
    """A value the caller sent is malformed or out of range."""

    error_code = INVALID_PARAMETER_VALUE


class ResourceDoesNotExist(MltrailException):
    """An experiment, run, model or artifact that was named does not exist."""

    error_code = RESOURCE_DOES_NOT_EXIST


class ResourceAlreadyExists(MltrailException):
    """Creating something whose name or id is taken."""

    error_code = RESOURCE_ALREADY_EXISTS


class InvalidState(MltrailException):
    """The operation is not allowed in the resource's current state (e.g. a deleted run)."""

    error_code = INVALID_STATE


class BadRequest(MltrailException):
    """A request that cannot be understood (bad JSON, wrong content type)."""

    error_code = BAD_REQUEST


class PermissionDenied(MltrailException):
    error_code = PERMISSION_DENIED


class RequestLimitExceeded(MltrailException):
    error_code = REQUEST_LIMIT_EXCEEDED


class RestException(MltrailException):
    """An error answer from a tracking server, built from its JSON body (MLflow's `RestException`)."""

    def __init__(self, json: dict[str, Any]) -> None:
        self.json = json
        code = str(json.get("error_code") or INTERNAL_ERROR)
        if code.isdigit():  # some proxies answer with an HTTP status where the code belongs
            code = {400: BAD_REQUEST, 404: ENDPOINT_NOT_FOUND}.get(int(code), INTERNAL_ERROR)
        text = json.get("message", f"Response: {json}")
        super().__init__(f"{code}: {text}", code)


class MlflowNotImplementedException(MltrailException):
    """A feature that is not implemented (HTTP 501)."""

    error_code = NOT_IMPLEMENTED

    def __init__(self, message: str = "", **kwargs: Any) -> None:
        super().__init__(message, None, **kwargs)


_BY_CODE: dict[str, type[MltrailException]] = {
    c.error_code: c
    for c in (InvalidParameterValue, ResourceDoesNotExist, ResourceAlreadyExists, InvalidState, BadRequest,
              PermissionDenied, RequestLimitExceeded)
}

# MLflow's name, so `except mlflow.exceptions.MlflowException` style code keeps working.
MlflowException = MltrailException


class MltrailWarning(UserWarning):
    """Base of warnings mltrail emits (tests turn these into errors)."""
