"""MLflow's `mlflow.config` module: where to track and register, and how logging behaves."""

from __future__ import annotations

from mltrail.environment_variables import BooleanEnvironmentVariable
from mltrail.system_metrics import (
    disable_system_metrics_logging,
    enable_system_metrics_logging,
    set_system_metrics_node_id,
    set_system_metrics_samples_before_logging,
    set_system_metrics_sampling_interval,
)
from mltrail.tracking_uri import (
    get_registry_uri,
    get_tracking_uri,
    is_tracking_uri_set,
    set_registry_uri,
    set_tracking_uri,
)

# MLflow's switch for its background logging queue
MLFLOW_ENABLE_ASYNC_LOGGING = BooleanEnvironmentVariable("MLFLOW_ENABLE_ASYNC_LOGGING", False)


def enable_async_logging(enable: bool = True) -> None:
    """Record the async-logging switch (MLFLOW_ENABLE_ASYNC_LOGGING), as MLflow does.

    mltrail needs no switch: logging to a tracking server is always queued (behind a local journal, so
    nothing accepted is lost) and local stores write synchronously, so the setting changes nothing here.
    """
    MLFLOW_ENABLE_ASYNC_LOGGING.set(enable)


__all__ = ["disable_system_metrics_logging", "enable_async_logging", "enable_system_metrics_logging",
           "get_registry_uri", "get_tracking_uri", "is_tracking_uri_set", "set_registry_uri",
           "set_system_metrics_node_id", "set_system_metrics_samples_before_logging",
           "set_system_metrics_sampling_interval", "set_tracking_uri"]
