"""MLflow's `mlflow.tracking` package: the client, the tracking and registry URIs, and the `fluent` and `client` modules."""

from __future__ import annotations

from mltrail.client import MlflowClient
from mltrail.tracking_uri import (
    get_registry_uri,
    get_tracking_uri,
    is_tracking_uri_set,
    set_registry_uri,
    set_tracking_uri,
)

__all__ = ["MlflowClient", "get_registry_uri", "get_tracking_uri", "is_tracking_uri_set", "set_registry_uri",
           "set_tracking_uri"]
