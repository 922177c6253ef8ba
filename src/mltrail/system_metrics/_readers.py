"""Readers of one sample of system metrics each: CPU and memory, disk, network (psutil), NVIDIA GPUs (NVML).

Names are MLflow's, without the `system/` prefix. A reader's `read()` returns one sample; `cumulative`
names the keys whose latest value is logged instead of the mean of the samples (network totals).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

_logger = logging.getLogger("mltrail.system_metrics")

MEGABYTE = 1e6  # MLflow reports decimal megabytes


class Reader(Protocol):
    cumulative: frozenset[str]

    def read(self) -> dict[str, float]:
        """One sample: metric name (without `system/`) -> value."""
        ...

    def close(self) -> None:
        """Release what the reader holds (NVML's handle)."""
        ...


class CPUReader:
    """CPU utilisation since the previous sample, and system memory in use."""

    cumulative: frozenset[str] = frozenset()

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        # psutil measures CPU use between two calls: this first call starts the first interval
        psutil.cpu_percent()

    def read(self) -> dict[str, float]:
        memory = self._psutil.virtual_memory()
        return {
            "cpu_utilization_percentage": float(self._psutil.cpu_percent()),
            "system_memory_usage_megabytes": memory.used / MEGABYTE,
            "system_memory_usage_percentage": memory.used / memory.total * 100,
        }

    def close(self) -> None:
        pass


class DiskReader:
    """Use of the file system holding the root directory."""

    cumulative: frozenset[str] = frozenset()

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil

    def read(self) -> dict[str, float]:
        usage = self._psutil.disk_usage(os.sep)
        return {
            "disk_usage_percentage": float(usage.percent),
            "disk_usage_megabytes": usage.used / MEGABYTE,
            "disk_available_megabytes": usage.free / MEGABYTE,
        }

    def close(self) -> None:
        pass


class NetworkReader:
    """Megabytes received and sent since monitoring started (psutil counts from boot)."""

    cumulative = frozenset({"network_receive_megabytes", "network_transmit_megabytes"})

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        start = psutil.net_io_counters()
        self._received0 = start.bytes_recv
        self._sent0 = start.bytes_sent

    def read(self) -> dict[str, float]:
        now = self._psutil.net_io_counters()
        return {
            "network_receive_megabytes": (now.bytes_recv - self._received0) / MEGABYTE,
            "network_transmit_megabytes": (now.bytes_sent - self._sent0) / MEGABYTE,
        }

    def close(self) -> None:
        pass


class GPUReader:
    """Per NVIDIA GPU: memory, utilisation and power, through NVML (the `nvidia-ml-py` package).

    A reading NVML refuses for one device (power on some boards) is left out of that sample.
    """

    cumulative: frozenset[str] = frozenset()

    def __init__(self) -> None:
        import pynvml

        self._nvml: Any = pynvml
        pynvml.nvmlInit()  # raises NVMLError when there is no driver or no GPU
        count = pynvml.nvmlDeviceGetCount()
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]

    def read(self) -> dict[str, float]:
        nvml, out = self._nvml, {}
        for i, handle in enumerate(self._handles):
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                out[f"gpu_{i}_memory_usage_percentage"] = memory.used / memory.total * 100
                out[f"gpu_{i}_memory_usage_megabytes"] = memory.used / MEGABYTE
            except nvml.NVMLError as e:
                _logger.debug("GPU %d memory: %s", i, e)
            try:
                out[f"gpu_{i}_utilization_percentage"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except nvml.NVMLError as e:
                _logger.debug("GPU %d utilization: %s", i, e)
            try:
                milliwatts = nvml.nvmlDeviceGetPowerUsage(handle)
                limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle)
                out[f"gpu_{i}_power_usage_watts"] = milliwatts / 1000
                out[f"gpu_{i}_power_usage_percentage"] = milliwatts / limit * 100
            except (nvml.NVMLError, ZeroDivisionError) as e:
                _logger.debug("GPU %d power: %s", i, e)
        return out

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as e:
            _logger.debug("NVML shutdown: %s", e)


def gpu_reader() -> GPUReader | None:
    """A GPU reader, or None (one debug line) when NVML is not installed or finds no GPU."""
    try:
        return GPUReader()
    except Exception as e:  # noqa: BLE001 - ImportError, NVMLError (no driver, no device): no GPU metrics
        _logger.debug("No GPU metrics: %s", e)
        return None


def default_readers() -> list[Reader]:
    """CPU, disk and network; and the GPUs when NVML is there."""
    readers: list[Reader] = [CPUReader(), DiskReader(), NetworkReader()]
    gpu = gpu_reader()
    if gpu is not None:
        readers.append(gpu)
    return readers
