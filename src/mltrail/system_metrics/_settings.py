"""The system-metrics environment variables (MLflow's names) and their parsing."""

from __future__ import annotations

import os

from mltrail.errors import InvalidParameterValue, MltrailWarning

ENABLE_VAR = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"
SAMPLING_INTERVAL_VAR = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
SAMPLES_VAR = "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"
NODE_ID_VAR = "MLFLOW_SYSTEM_METRICS_NODE_ID"

DEFAULT_SAMPLING_INTERVAL = 10.0
DEFAULT_SAMPLES_BEFORE_LOGGING = 1


class SystemMetricsWarning(MltrailWarning):
    """System metrics could not be sampled or logged (the run itself goes on)."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def logging_enabled() -> bool:
    """`MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING` as a bool (unset: False); "true"/"false"/"1"/"0", any case."""
    raw = _raw(ENABLE_VAR)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidParameterValue(
            f"{ENABLE_VAR} value must be one of ['true', 'false', '1', '0'] (case-insensitive), but got {raw!r}.")
    return value in ("true", "1")


def parse_interval(value: object, source: str) -> float:
    """A sampling interval (a positive number of seconds, or its text); `source` names where it came from."""
    try:
        seconds = -1.0 if isinstance(value, bool) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise InvalidParameterValue(
            f"Invalid {source}: received {value!r}; expected a positive number of seconds.")
    return seconds


def parse_samples(value: object, source: str) -> int:
    """A count of samples to average (a positive integer, or its text); `source` names where it came from."""
    try:
        count = 0 if isinstance(value, bool | float) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise InvalidParameterValue(f"Invalid {source}: received {value!r}; expected a positive integer.")
    return count


def sampling_interval() -> float | None:
    """`MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` in seconds, or None when unset."""
    raw = _raw(SAMPLING_INTERVAL_VAR)
    return None if raw is None else parse_interval(raw, SAMPLING_INTERVAL_VAR)


def samples_before_logging() -> int | None:
    """`MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING`, or None when unset."""
    raw = _raw(SAMPLES_VAR)
    return None if raw is None else parse_samples(raw, SAMPLES_VAR)


def node_id() -> str | None:
    """`MLFLOW_SYSTEM_METRICS_NODE_ID`, or None when unset."""
    return _raw(NODE_ID_VAR)
