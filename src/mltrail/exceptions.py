"""MLflow's `mlflow.exceptions` module: `MlflowException` and its relatives, over `mltrail.errors`."""

from __future__ import annotations

from mltrail.errors import (
    BAD_REQUEST,
    ENDPOINT_NOT_FOUND,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    NOT_IMPLEMENTED,
    PERMISSION_DENIED,
    REQUEST_LIMIT_EXCEEDED,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    UNAUTHENTICATED,
    BadRequest,
    InvalidParameterValue,
    InvalidState,
    MlflowException,
    MlflowNotImplementedException,
    MltrailException,
    PermissionDenied,
    RequestLimitExceeded,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    RestException,
    http_status_for,
)

# MLflow maps a few HTTP statuses back to error codes (for answers that carry only a status).
_STATUS_TO_CODE = {400: BAD_REQUEST, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: ENDPOINT_NOT_FOUND,
                   429: REQUEST_LIMIT_EXCEEDED, 500: INTERNAL_ERROR, 501: NOT_IMPLEMENTED,
                   503: TEMPORARILY_UNAVAILABLE}


def get_error_code(http_status: int) -> str:
    """The error code MLflow reports for a bare HTTP status (INTERNAL_ERROR when it has none)."""
    return _STATUS_TO_CODE.get(http_status, INTERNAL_ERROR)


class ExecutionException(MltrailException):
    """Running a project or a command failed (MLflow's `ExecutionException`)."""


class MissingConfigException(MltrailException):
    """A required configuration file or value is missing (MLflow's `MissingConfigException`)."""


class InvalidUrlException(MltrailException):
    """A URL that cannot be used (MLflow's `InvalidUrlException`)."""


__all__ = [
    "BAD_REQUEST", "ENDPOINT_NOT_FOUND", "INTERNAL_ERROR", "INVALID_PARAMETER_VALUE", "INVALID_STATE",
    "NOT_IMPLEMENTED", "PERMISSION_DENIED", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST", "TEMPORARILY_UNAVAILABLE", "UNAUTHENTICATED", "BadRequest", "ExecutionException",
    "InvalidParameterValue", "InvalidState", "InvalidUrlException", "MissingConfigException", "MlflowException",
    "MlflowNotImplementedException", "MltrailException", "PermissionDenied", "RequestLimitExceeded",
    "ResourceAlreadyExists", "ResourceDoesNotExist", "RestException", "get_error_code", "http_status_for",
]
