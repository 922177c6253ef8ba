"""MLflow's `mlflow.environment_variables`: the `MLFLOW_*` variables mltrail honours, with their `MLTRAIL_*` twins.

Each is an object with `.name`, `.get()` (typed, with the default), `.is_set()`, `.set()` and `.unset()`, as
in MLflow. Where mltrail reads an `MLTRAIL_*` twin first, the twin is listed under its own name too.
"""

from __future__ import annotations

import os
from typing import Any


class EnvironmentVariable:
    """One environment variable: its name, the type its text converts to, and the default when unset."""

    def __init__(self, name: str, type_: type, default: Any) -> None:
        if type_ is bool and not isinstance(self, BooleanEnvironmentVariable):
            raise ValueError("Use BooleanEnvironmentVariable for boolean variables")
        self.name = name
        self.type = type_
        self.default = default

    @property
    def defined(self) -> bool:
        return self.name in os.environ

    def is_set(self) -> bool:
        return self.name in os.environ

    def get_raw(self) -> str | None:
        return os.environ.get(self.name)

    def set(self, value: Any) -> None:
        os.environ[self.name] = str(value)

    def unset(self) -> None:
        os.environ.pop(self.name, None)

    def get(self) -> Any:
        """The value converted to the variable's type, or the default when it is unset."""
        raw = self.get_raw()
        if raw is None:
            return self.default
        try:
            return self.type(raw)
        except Exception as e:
            raise ValueError(f"Failed to convert {raw!r} for {self.name}: {e}") from e

    def __str__(self) -> str:
        return f"{self.name} (default: {self.default})"

    def __repr__(self) -> str:
        return repr(self.name)

    def __format__(self, format_spec: str) -> str:
        return self.name.__format__(format_spec)


class BooleanEnvironmentVariable(EnvironmentVariable):
    """A true/false variable: "true"/"1" or "false"/"0" (any case); anything else is refused by name."""

    def __init__(self, name: str, default: bool | None) -> None:
        if not (default is True or default is False or default is None):
            raise ValueError(f"{name} default value must be one of [True, False, None]")
        super().__init__(name, bool, default)

    def get(self) -> bool | None:
        raw = self.get_raw()
        if raw is None:
            return self.default
        lowered = raw.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"{self.name} value must be one of ['true', 'false', '1', '0'] (case-insensitive), "
                             f"but got {raw}")
        return lowered in ("true", "1")


# MLflow's private spellings of the two classes, for code that type-checks against them
_EnvironmentVariable = EnvironmentVariable
_BooleanEnvironmentVariable = BooleanEnvironmentVariable

# ---------------------------------------------------------------------- where to track
MLFLOW_TRACKING_URI = EnvironmentVariable("MLFLOW_TRACKING_URI", str, None)
MLTRAIL_TRACKING_URI = EnvironmentVariable("MLTRAIL_TRACKING_URI", str, None)
MLFLOW_REGISTRY_URI = EnvironmentVariable("MLFLOW_REGISTRY_URI", str, None)
MLTRAIL_REGISTRY_URI = EnvironmentVariable("MLTRAIL_REGISTRY_URI", str, None)
MLFLOW_EXPERIMENT_ID = EnvironmentVariable("MLFLOW_EXPERIMENT_ID", str, None)
MLTRAIL_EXPERIMENT_ID = EnvironmentVariable("MLTRAIL_EXPERIMENT_ID", str, None)
MLFLOW_EXPERIMENT_NAME = EnvironmentVariable("MLFLOW_EXPERIMENT_NAME", str, None)
MLTRAIL_EXPERIMENT_NAME = EnvironmentVariable("MLTRAIL_EXPERIMENT_NAME", str, None)
MLFLOW_RUN_ID = EnvironmentVariable("MLFLOW_RUN_ID", str, None)
MLFLOW_ACTIVE_MODEL_ID = EnvironmentVariable("MLFLOW_ACTIVE_MODEL_ID", str, None)

# ---------------------------------------------------------------------- talking to a tracking server
MLFLOW_TRACKING_USERNAME = EnvironmentVariable("MLFLOW_TRACKING_USERNAME", str, None)
MLFLOW_TRACKING_PASSWORD = EnvironmentVariable("MLFLOW_TRACKING_PASSWORD", str, None)
MLFLOW_TRACKING_TOKEN = EnvironmentVariable("MLFLOW_TRACKING_TOKEN", str, None)
MLFLOW_TRACKING_INSECURE_TLS = BooleanEnvironmentVariable("MLFLOW_TRACKING_INSECURE_TLS", False)
MLFLOW_TRACKING_SERVER_CERT_PATH = EnvironmentVariable("MLFLOW_TRACKING_SERVER_CERT_PATH", str, None)
MLFLOW_TRACKING_CLIENT_CERT_PATH = EnvironmentVariable("MLFLOW_TRACKING_CLIENT_CERT_PATH", str, None)
MLFLOW_HTTP_REQUEST_MAX_RETRIES = EnvironmentVariable("MLFLOW_HTTP_REQUEST_MAX_RETRIES", int, 5)
MLFLOW_HTTP_REQUEST_TIMEOUT = EnvironmentVariable("MLFLOW_HTTP_REQUEST_TIMEOUT", int, 120)
# ours: how long flush() and the end of a run wait for queued remote logging (seconds)
MLTRAIL_FLUSH_TIMEOUT = EnvironmentVariable("MLTRAIL_FLUSH_TIMEOUT", float, 30.0)
# ours: where the remote-logging journal lives, and how often it is synced to disk (seconds)
MLTRAIL_JOURNAL_DIR = EnvironmentVariable("MLTRAIL_JOURNAL_DIR", str, None)
MLTRAIL_JOURNAL_FSYNC_INTERVAL = EnvironmentVariable("MLTRAIL_JOURNAL_FSYNC_INTERVAL", float, 1.0)
# ours: a journal file past this size (bytes) is rewritten without what the server acknowledged
MLTRAIL_JOURNAL_COMPACT_BYTES = EnvironmentVariable("MLTRAIL_JOURNAL_COMPACT_BYTES", int, 8 * 1024 * 1024)

# ---------------------------------------------------------------------- system metrics (mltrail.system_metrics)
MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING = BooleanEnvironmentVariable("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", False)
MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL = EnvironmentVariable("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", float, None)
MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING = EnvironmentVariable(
    "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", int, None)
MLFLOW_SYSTEM_METRICS_NODE_ID = EnvironmentVariable("MLFLOW_SYSTEM_METRICS_NODE_ID", str, None)

# ---------------------------------------------------------------------- S3 artifacts
MLFLOW_S3_ENDPOINT_URL = EnvironmentVariable("MLFLOW_S3_ENDPOINT_URL", str, None)
MLTRAIL_S3_ENDPOINT_URL = EnvironmentVariable("MLTRAIL_S3_ENDPOINT_URL", str, None)
MLFLOW_S3_IGNORE_TLS = BooleanEnvironmentVariable("MLFLOW_S3_IGNORE_TLS", False)
MLFLOW_S3_UPLOAD_EXTRA_ARGS = EnvironmentVariable("MLFLOW_S3_UPLOAD_EXTRA_ARGS", str, None)
MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE = EnvironmentVariable("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", str, "auto")

# ---------------------------------------------------------------------- models and serving
MLFLOW_PYFUNC_INFERENCE_CONFIG = EnvironmentVariable("MLFLOW_PYFUNC_INFERENCE_CONFIG", str, None)
MLFLOW_MODELS_WORKERS = EnvironmentVariable("MLFLOW_MODELS_WORKERS", int, None)
MLFLOW_BACKEND_STORE_URI = EnvironmentVariable("MLFLOW_BACKEND_STORE_URI", str, None)
# ours: the opt-in (with allow_pickle=True) to unpickle code from a model's files; MLflow's
# MLFLOW_ALLOW_PICKLE_DESERIALIZATION (on by default there) is deliberately not read
MLTRAIL_ALLOW_PICKLE = BooleanEnvironmentVariable("MLTRAIL_ALLOW_PICKLE", False)
# ours: where `models serve --env-manager` builds environments
MLTRAIL_ENV_ROOT = EnvironmentVariable("MLTRAIL_ENV_ROOT", str, None)
# ours: Keras autologging and callbacks log from every process of a distributed job, not only the chief
MLTRAIL_DISTRIBUTED_LOG_ALL = BooleanEnvironmentVariable("MLTRAIL_DISTRIBUTED_LOG_ALL", False)

__all__ = [name for name, value in list(globals().items())
           if isinstance(value, EnvironmentVariable) and not name.startswith("_")] + [
    "BooleanEnvironmentVariable", "EnvironmentVariable"]
