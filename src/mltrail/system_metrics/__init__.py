"""System metrics (`system/cpu_utilization_percentage`, ...) sampled by a thread while a run is active.

As in MLflow, the switches are environment variables, so a child process inherits them:
`MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`, `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` (seconds, default
10), `MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING` (default 1) and `MLFLOW_SYSTEM_METRICS_NODE_ID`.
The setters below write them. This module stays light: psutil loads only when a monitor starts.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import TYPE_CHECKING

from mltrail.errors import InvalidParameterValue
from mltrail.system_metrics._settings import (
    ENABLE_VAR,
    NODE_ID_VAR,
    SAMPLES_VAR,
    SAMPLING_INTERVAL_VAR,
    SystemMetricsWarning,
    logging_enabled,
    parse_interval,
    parse_samples,
)

if TYPE_CHECKING:
    from mltrail.system_metrics.system_metrics_monitor import SystemMetricsMonitor

__all__ = [
    "SystemMetricsWarning", "disable_system_metrics_logging", "enable_system_metrics_logging",
    "set_system_metrics_node_id", "set_system_metrics_samples_before_logging",
    "set_system_metrics_sampling_interval", "start_monitoring", "stop_monitoring",
]


def enable_system_metrics_logging() -> None:
    """Log system metrics for every run started from now on (unless `start_run(log_system_metrics=False)`)."""
    os.environ[ENABLE_VAR] = "True"


def disable_system_metrics_logging() -> None:
    """Stop logging system metrics by default (`start_run(log_system_metrics=True)` still turns them on)."""
    os.environ[ENABLE_VAR] = "False"


def _set_or_unset(name: str, value: object) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def set_system_metrics_sampling_interval(interval: float | None) -> None:
    """Take a sample every `interval` seconds (None: back to the default, 10 s)."""
    if interval is not None:
        parse_interval(interval, "system metrics sampling interval")
    _set_or_unset(SAMPLING_INTERVAL_VAR, interval)


def set_system_metrics_samples_before_logging(samples: int | None) -> None:
    """Log the average of every `samples` samples (None: back to the default, 1)."""
    if samples is not None:
        parse_samples(samples, "system metrics samples before logging")
    _set_or_unset(SAMPLES_VAR, samples)


def set_system_metrics_node_id(node_id: str | None) -> None:
    """Name this machine in the metric keys (`system/<node_id>/...`), for multi-node training; None: no node."""
    _set_or_unset(NODE_ID_VAR, node_id)


# ---------------------------------------------------------------------- one monitor per monitored run
_monitors: dict[str, SystemMetricsMonitor] = {}
_monitors_lock = threading.Lock()


def start_monitoring(run_id: str, tracking_uri: str, log_system_metrics: bool | None = None,
                     resume: bool = False) -> bool:
    """Start sampling system metrics into `run_id` if asked (None: as the environment says).

    Returns whether a monitor runs. psutil missing, or a monitor that cannot start, is one warning and
    no monitor: system metrics never stop a run from starting.
    """
    if log_system_metrics is None:
        try:
            log_system_metrics = logging_enabled()
        except InvalidParameterValue as e:  # a mistyped variable must not stop the run from starting
            warnings.warn(f"System metrics are off: {e}", SystemMetricsWarning, stacklevel=3)
            return False
    if not log_system_metrics:
        return False
    import importlib.util

    if importlib.util.find_spec("psutil") is None:
        warnings.warn(
            "Failed to start system metrics monitoring as package `psutil` is not installed: run "
            "`pip install psutil` (or `pip install mltrail[system-metrics]`), or turn system metrics off with "
            "`start_run(log_system_metrics=False)` or `mltrail.disable_system_metrics_logging()`.",
            SystemMetricsWarning, stacklevel=3)
        return False
    from mltrail.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    with _monitors_lock:
        if run_id in _monitors:  # the same run resumed while monitored: keep the one monitor
            return True
    try:
        monitor = SystemMetricsMonitor(run_id, resume_logging=resume, tracking_uri=tracking_uri)
        monitor.start()
    except Exception as e:  # noqa: BLE001 - the run goes on without system metrics
        warnings.warn(f"Failed to start system metrics monitoring for run {run_id}: {e}", SystemMetricsWarning,
                      stacklevel=3)
        return False
    with _monitors_lock:
        _monitors[run_id] = monitor
    return True


def stop_monitoring(run_id: str) -> None:
    """Stop the monitor of `run_id`, if any: join its thread, which logs the samples it still holds."""
    with _monitors_lock:
        monitor = _monitors.pop(run_id, None)
    if monitor is not None:
        monitor.finish()
