"""System metrics: MLflow's `system/*` names sampled by a thread that lives and dies with the run,
against SQLite and through a real tracking server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import InvalidParameterValue
from mltrail.system_metrics import SystemMetricsWarning
from mltrail.system_metrics.system_metrics_monitor import SystemMetricsMonitor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))

from server_fixture import start_server  # noqa: E402

# MLflow's names for a machine without an NVIDIA GPU
CPU_DISK_NETWORK = {
    "system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage", "system/disk_usage_percentage", "system/disk_usage_megabytes",
    "system/disk_available_megabytes", "system/network_receive_megabytes", "system/network_transmit_megabytes",
}
VARIABLES = ("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
             "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "MLFLOW_SYSTEM_METRICS_NODE_ID")


@pytest.fixture(autouse=True)
def fast_sampling(monkeypatch):
    """No system-metrics variable leaks in or out; samples every 50 ms."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    mltrail.set_system_metrics_sampling_interval(0.05)
    yield
    for name in VARIABLES:  # set by the functions under test; monkeypatch then restores what was there
        os.environ.pop(name, None)


def monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "SystemMetricsMonitor"]


def wait_for_steps(run_id: str, key: str, count: int, timeout: float = 20.0) -> None:
    client = mltrail.MlflowClient()
    deadline = time.monotonic() + timeout
    while len(client.get_metric_history(run_id, key)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} steps of {key} after {timeout} s"
        time.sleep(0.05)


def system_history(run_id: str) -> dict[str, list[int]]:
    client = mltrail.MlflowClient()
    keys = [k for k in client.get_run(run_id).data.metrics if k.startswith("system/")]
    return {k: [m.step for m in client.get_metric_history(run_id, k)] for k in keys}


def test_a_run_with_log_system_metrics_gets_mlflows_metrics_at_several_steps(tracking):
    with mltrail.start_run(log_system_metrics=True) as run:
        wait_for_steps(run.info.run_id, "system/cpu_utilization_percentage", 3)
    history = system_history(run.info.run_id)
    assert set(history) >= CPU_DISK_NETWORK
    # no NVIDIA management library here: no GPU metrics, and no failure either
    assert not [k for k in history if k.startswith("system/gpu_")]
    steps = history["system/cpu_utilization_percentage"]
    assert steps == list(range(len(steps))) and len(steps) >= 3
    assert all(history[k] == steps for k in CPU_DISK_NETWORK)  # every metric at every step
    data = mltrail.get_run(run.info.run_id).data.metrics
    assert 0 <= data["system/cpu_utilization_percentage"] <= 100
    assert 0 < data["system/system_memory_usage_percentage"] <= 100
    assert data["system/disk_available_megabytes"] > 0 and data["system/network_receive_megabytes"] >= 0
    assert data["system/system_memory_usage_megabytes"] == round(data["system/system_memory_usage_megabytes"], 1)


def test_the_thread_is_gone_after_end_run_and_a_short_run_still_gets_one_step(tracking):
    mltrail.set_system_metrics_sampling_interval(60)  # far longer than the run
    run = mltrail.start_run(log_system_metrics=True)
    assert len(monitor_threads()) == 1
    mltrail.end_run()
    assert monitor_threads() == []
    history = system_history(run.info.run_id)
    assert set(history) >= CPU_DISK_NETWORK and history["system/cpu_utilization_percentage"] == [0]
    assert mltrail.get_run(run.info.run_id).info.status == "FINISHED"


def test_a_failing_with_block_stops_the_thread_too(tracking):
    with pytest.raises(ValueError, match="boom"), mltrail.start_run(log_system_metrics=True) as run:
        raise ValueError("boom")
    assert monitor_threads() == []
    assert mltrail.get_run(run.info.run_id).info.status == "FAILED"
    assert "system/cpu_utilization_percentage" in mltrail.get_run(run.info.run_id).data.metrics


def test_off_by_default_and_off_when_the_run_says_so(tracking, monkeypatch):
    with mltrail.start_run() as run:
        assert monitor_threads() == []
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    with mltrail.start_run(log_system_metrics=False) as quiet:
        assert monitor_threads() == []
    for r in (run, quiet):
        assert not [k for k in mltrail.get_run(r.info.run_id).data.metrics if k.startswith("system/")]


def test_the_environment_variable_and_enable_disable_turn_it_on_and_off(tracking, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "1")
    with mltrail.start_run() as run:
        assert len(monitor_threads()) == 1
    assert "system/disk_usage_percentage" in mltrail.get_run(run.info.run_id).data.metrics
    mltrail.disable_system_metrics_logging()
    with mltrail.start_run():
        assert monitor_threads() == []
    mltrail.enable_system_metrics_logging()
    assert os.environ["MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"] == "True"  # as MLflow sets it: children inherit
    with mltrail.start_run():
        assert len(monitor_threads()) == 1
    assert monitor_threads() == []


def test_samples_are_averaged_and_named_with_the_node(tracking):
    mltrail.set_system_metrics_samples_before_logging(4)
    mltrail.set_system_metrics_node_id("node_0")
    with mltrail.start_run(log_system_metrics=True) as run:
        wait_for_steps(run.info.run_id, "system/node_0/cpu_utilization_percentage", 2)
    history = system_history(run.info.run_id)
    assert {k.replace("node_0/", "") for k in history} >= CPU_DISK_NETWORK
    assert all(k.startswith("system/node_0/") for k in history)


def test_a_resumed_run_continues_the_steps(tracking):
    mltrail.set_system_metrics_sampling_interval(60)  # one step per start/end
    with mltrail.start_run(log_system_metrics=True) as run:
        pass
    with mltrail.start_run(run_id=run.info.run_id, log_system_metrics=True):
        pass
    assert system_history(run.info.run_id)["system/cpu_utilization_percentage"] == [0, 1]


def test_a_logging_error_is_one_warning_and_the_thread_stops(tracking):
    with mltrail.start_run() as run:
        pass
    mltrail.delete_run(run.info.run_id)  # logging to a deleted run is refused
    monitor = SystemMetricsMonitor(run.info.run_id, sampling_interval=0.01)
    with pytest.warns(SystemMetricsWarning, match="Failed to log system metrics") as record:
        monitor.start()
        deadline = time.monotonic() + 20
        while monitor_threads() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert monitor_threads() == [] and len(record) == 1
    monitor.finish()  # already stopped: nothing more, no second warning


def test_settings_are_checked_and_a_bad_variable_does_not_stop_the_run(tracking, monkeypatch):
    with pytest.raises(InvalidParameterValue, match="received 0"):
        mltrail.set_system_metrics_sampling_interval(0)
    with pytest.raises(InvalidParameterValue, match="received 'x'"):
        mltrail.set_system_metrics_samples_before_logging("x")  # type: ignore[arg-type]
    mltrail.set_system_metrics_sampling_interval(None)
    mltrail.set_system_metrics_samples_before_logging(None)
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "yes")
    with pytest.warns(SystemMetricsWarning, match="MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"):
        run = mltrail.start_run()
    assert monitor_threads() == [] and run.info.status == "RUNNING"


def test_import_mltrail_does_not_import_psutil():
    code = "import sys, mltrail; mltrail.enable_system_metrics_logging(); print('psutil' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_without_psutil_the_run_starts_with_one_warning_and_no_thread(tmp_path):
    # a child process where psutil is not found
    code = (
        "import sys, threading, warnings\n"
        "import importlib.util as u\n"
        "real = u.find_spec\n"
        "u.find_spec = lambda name, *a, **k: None if name == 'psutil' else real(name, *a, **k)\n"
        "import mltrail\n"
        f"mltrail.set_tracking_uri('sqlite:///{tmp_path}/m.db')\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    with mltrail.start_run(log_system_metrics=True):\n"
        "        alive = [t for t in threading.enumerate() if t.name == 'SystemMetricsMonitor']\n"
        "print(len(w), type(w[0].message).__name__, len(alive), 'psutil' in str(w[0].message))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "SystemMetricsWarning", "0", "True"]


def test_through_a_real_server(request, tmp_path):
    mltrail.set_tracking_uri(start_server(request, tmp_path))
    with mltrail.start_run(log_system_metrics=True) as run:
        wait_for_steps(run.info.run_id, "system/cpu_utilization_percentage", 2)
    history = system_history(run.info.run_id)
    assert set(history) >= CPU_DISK_NETWORK
    steps = history["system/cpu_utilization_percentage"]
    assert steps == list(range(len(steps))) and len(steps) >= 2
    assert monitor_threads() == []


class _FakeNVML:
    """A stand-in for NVIDIA's `pynvml` (a third-party library; no GPU here): one device, fixed readings,
    power unreadable, as on boards that do not report it."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        self.shut_down = False

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        pass

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:  # noqa: N802
        return f"gpu{i}"

    def nvmlDeviceGetMemoryInfo(self, handle: str):  # noqa: N802
        from types import SimpleNamespace

        return SimpleNamespace(used=2_000_000_000, total=8_000_000_000)

    def nvmlDeviceGetUtilizationRates(self, handle: str):  # noqa: N802
        from types import SimpleNamespace

        return SimpleNamespace(gpu=37)

    def nvmlDeviceGetPowerUsage(self, handle: str) -> int:  # noqa: N802
        raise self.NVMLError("Not Supported")

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: str) -> int:  # noqa: N802
        raise self.NVMLError("Not Supported")


def test_gpu_metrics_have_mlflows_names_when_nvml_is_there(tracking, monkeypatch):
    nvml = _FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    mltrail.set_system_metrics_sampling_interval(60)
    with mltrail.start_run(log_system_metrics=True) as run:
        pass
    metrics = mltrail.get_run(run.info.run_id).data.metrics
    gpu = {k: v for k, v in metrics.items() if k.startswith("system/gpu_")}
    assert gpu == {"system/gpu_0_memory_usage_percentage": 25.0, "system/gpu_0_memory_usage_megabytes": 2000.0,
                   "system/gpu_0_utilization_percentage": 37.0}  # no power reading: left out, no failure
    assert set(metrics) >= CPU_DISK_NETWORK and nvml.shut_down
