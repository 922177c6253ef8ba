"""`SystemMetricsMonitor`: a daemon thread that samples system metrics and logs their averages to a run.

Every `sampling_interval` seconds it takes one sample from each reader; every `samples_before_logging`
samples it logs their mean (network totals: the latest value), rounded to one decimal as MLflow does,
under `system/` (or `system/<node_id>/`) at steps 0, 1, 2, ... (continuing after the run's last
system step when a run is resumed). `finish()` wakes the thread, which takes and logs a last sample
(so a run shorter than one interval still gets one step) and is joined.

Sampling never slows or breaks the run: the thread sleeps between samples, and a failure to read or
log is one `SystemMetricsWarning`, after which the thread stops.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Sequence

from mltrail.client import Client
from mltrail.entities import Metric
from mltrail.system_metrics import _readers, _settings

_logger = logging.getLogger("mltrail.system_metrics")

PREFIX = "system/"


class SystemMetricsMonitor:
    """Samples system metrics on a daemon thread and logs them to `run_id` (MLflow's class and arguments).

    Args:
        run_id: the run to log to.
        sampling_interval: seconds between samples (`MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` wins).
        samples_before_logging: samples averaged into one logged step
            (`MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING` wins).
        resume_logging: continue the steps after the run's last `system/` step instead of from 0.
        node_id: a machine name put in the keys, `system/<node_id>/...` (`MLFLOW_SYSTEM_METRICS_NODE_ID` wins).
        tracking_uri: where the run lives (None: the current tracking URI).
        readers: what to sample (None: CPU and memory, disk, network, and NVIDIA GPUs when NVML is there).
    """

    def __init__(self, run_id: str, sampling_interval: float = _settings.DEFAULT_SAMPLING_INTERVAL,
                 samples_before_logging: int = _settings.DEFAULT_SAMPLES_BEFORE_LOGGING,
                 resume_logging: bool = False, node_id: str | None = None, tracking_uri: str | None = None,
                 readers: Sequence[_readers.Reader] | None = None) -> None:
        self.sampling_interval = _settings.sampling_interval() or _settings.parse_interval(
            sampling_interval, "sampling_interval")
        self.samples_before_logging = _settings.samples_before_logging() or _settings.parse_samples(
            samples_before_logging, "samples_before_logging")
        self.node_id = _settings.node_id() or node_id
        self.run_id = run_id
        self._client = Client(tracking_uri)
        self._prefix = PREFIX + (f"{self.node_id}/" if self.node_id else "")
        self._readers = list(readers) if readers is not None else _readers.default_readers()
        self._cumulative = frozenset().union(*(r.cumulative for r in self._readers))
        self._samples: dict[str, list[float]] = {}
        self._sample_count = 0
        self._step = self._next_step() if resume_logging else 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def step(self) -> int:
        """The step the next logged average gets."""
        return self._step

    def _next_step(self) -> int:
        """One past the run's last system step (a resumed run's curves continue), else 0."""
        run = self._client.get_run(self.run_id)
        keys = [k for k in run.data.metrics if k.startswith(self._prefix)]
        if not keys:
            return 0
        # every system metric is logged at every step: one history tells the last step
        return max(m.step for m in self._client.get_metric_history(self.run_id, keys[0])) + 1

    def start(self) -> None:
        """Start the sampling thread."""
        self._thread = threading.Thread(target=self._run, name="SystemMetricsMonitor", daemon=True)
        self._thread.start()
        _logger.debug("Started monitoring system metrics for run %s (every %s s, %d samples a step).",
                      self.run_id, self.sampling_interval, self.samples_before_logging)

    def finish(self) -> None:
        """Stop sampling: the thread logs the samples it holds (and one last sample), and is joined."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()
        for reader in self._readers:
            try:
                reader.close()
            except Exception as e:  # noqa: BLE001 - nothing left to do with a reader that cannot close
                _logger.debug("closing %s: %s", type(reader).__name__, e)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        try:
            while True:
                stopping = self._stop.wait(self.sampling_interval)
                self.collect_metrics()
                if stopping or self._sample_count >= self.samples_before_logging:
                    self.publish_metrics(self.aggregate_metrics())
                if stopping:
                    return
        except Exception as e:  # noqa: BLE001 - system metrics never break the run: say so once and stop
            warnings.warn(f"Failed to log system metrics for run {self.run_id}, stopping system metrics "
                          f"monitoring: {type(e).__name__}: {e}", _settings.SystemMetricsWarning, stacklevel=1)

    def collect_metrics(self) -> dict[str, float]:
        """Take one sample from every reader (kept for the next average) and return it."""
        sample: dict[str, float] = {}
        for reader in self._readers:
            sample.update(reader.read())
        for key, value in sample.items():
            self._samples.setdefault(key, []).append(value)
        self._sample_count += 1
        return sample

    def aggregate_metrics(self) -> dict[str, float]:
        """The samples taken since the last logged step, averaged (cumulative ones: the latest), and forgotten."""
        out = {}
        for key, values in self._samples.items():
            if values:
                value = values[-1] if key in self._cumulative else sum(values) / len(values)
                out[key] = round(value, 1)
        self._samples, self._sample_count = {}, 0
        return out

    def publish_metrics(self, metrics: dict[str, float]) -> None:
        """Log `metrics` under `system/` at the next step."""
        if not metrics:
            return
        ts = int(time.time() * 1000)
        self._client.log_batch(self.run_id, metrics=[Metric(self._prefix + k, v, ts, self._step)
                                                     for k, v in metrics.items()])
        self._step += 1
