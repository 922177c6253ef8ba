"""Autolog's logging path: a buffered writer on a daemon thread, and failures turned into warnings.

The training thread only appends to in-memory queues (a few hundred nanoseconds); a daemon thread
stores metrics with `Client.log_batch` in batches of up to 1000 and runs the other log calls
(params, artifacts, datasets) in the order they were queued. A failure there never reaches the
training loop: it is recorded by kind ("metrics", "params", ...) and reported as one warning per
kind, on the training thread, at the next epoch end or at train end.

A transient failure (the tracking server or database not answering) is not a loss: the writer
keeps what it holds and retries with the journal's backoff (`mltrail.store.backoff`) until the
store answers, saying once what it waits for; only a refusal (a deleted run, a bad value) counts
as a failure. Closing gives the retries a bounded time, then reports what could not be stored.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from mltrail.errors import TEMPORARILY_UNAVAILABLE, MltrailException
from mltrail.store.backoff import Backoff

_logger = logging.getLogger("mltrail.tensorflow")

# Most metrics per `log_batch` (the store's limit) and most params per batch.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
# Longest param value the stores accept; longer values (a big class_weight) are cut.
MAX_PARAM_LENGTH = 6000
# How often the writer stores what is buffered, when nothing else wakes it (seconds).
FLUSH_INTERVAL_S = 1.0
# After this many refused metric batches in a row (a deleted run) later points are dropped.
MAX_CONSECUTIVE_METRIC_FAILURES = 3


def is_transient(exc: BaseException) -> bool:
    """A failure that waiting may cure: the store did not answer (not: it refused the call)."""
    if isinstance(exc, MltrailException):
        return exc.error_code == TEMPORARILY_UNAVAILABLE
    return isinstance(exc, ConnectionError | TimeoutError)


class _GaveUp(Exception):
    """Closing: the store stayed unreachable past the close timeout."""


class AutologWarning(UserWarning):
    """A logging failure during autologging or in `MlflowCallback`; training went on regardless."""


class FailureReport:
    """Failures by kind, from any thread; `emit` warns once per kind, on the caller's thread."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._pending: list[tuple[str, BaseException]] = []
        self._notes_seen: set[str] = set()
        self._notes: list[str] = []

    def record(self, kind: str, exc: BaseException) -> None:
        with self._lock:
            if kind in self._seen:
                return
            self._seen.add(kind)
            self._pending.append((kind, exc))

    def note(self, kind: str, message: str) -> None:
        """A message to warn once (not a failure: nothing is lost), e.g. what the writer waits for."""
        with self._lock:
            if kind in self._notes_seen:
                return
            self._notes_seen.add(kind)
            self._notes.append(message)

    @property
    def kinds(self) -> set[str]:
        with self._lock:
            return set(self._seen)

    def emit(self) -> None:
        """Warn about each failure recorded since the last call (once per kind, ever)."""
        with self._lock:
            pending, self._pending = self._pending, []
            notes, self._notes = self._notes, []
        messages = notes + [
            f"mltrail could not log {kind} to the tracking store ({type(exc).__name__}: {exc}); "
            f"training goes on, but the run may lack some {kind}." for kind, exc in pending]
        for message in messages:
            if self.silent:
                _logger.debug(message)
                continue
            try:
                warnings.warn(message, AutologWarning, stacklevel=2)
            except Exception:  # noqa: BLE001 - warnings turned into errors must not stop training
                _logger.warning(message)


class AsyncWriter:
    """Stores one run's metrics and log calls from a daemon thread.

    Args:
        client: the `Client` to write with (explicit run id: no fluent state on this thread).
        run_id: the run everything goes to.
        failures: where failures are recorded.
    """

    def __init__(self, client: Any, run_id: str, failures: FailureReport) -> None:
        self.client = client
        self.run_id = run_id
        self.failures = failures
        # (key, value, timestamp_ms, step); values converted with float() on the writer thread
        self._metrics: deque[tuple[str, Any, int, int]] = deque()
        self._tasks: deque[tuple[str, Callable[[], Any]]] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._close_deadline: float | None = None
        self._backoff = Backoff()
        self._metric_failures = 0
        # the logged model the metrics belong to (MLflow's keras callback's `model_id`), if any
        self.model_id: str | None = None
        self._known_params: dict[str, str] | None = None
        self._bad_keys: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="mltrail-autolog-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ training thread
    def add_metrics(self, items: Iterable[tuple[str, Any, int, int]]) -> None:
        """Queue (key, value, timestamp_ms, step) points; never blocks."""
        self._metrics.extend(items)
        if len(self._metrics) >= MAX_METRICS_PER_BATCH:
            self._wake.set()

    def add_metric_dict(self, metrics: dict[str, Any], step: int) -> None:
        ts = int(time.time() * 1000)
        self.add_metrics((k, v, ts, step) for k, v in metrics.items())

    def submit(self, kind: str, fn: Callable[[], Any]) -> None:
        """Run `fn()` on the writer thread, after what is queued before it; failures count as `kind`."""
        self._tasks.append((kind, fn))
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until everything queued so far is stored (or failed); False if `timeout` passed first."""
        if not self._thread.is_alive():
            self._drain()  # the thread is gone (closed): finish on this thread
            return True
        done = threading.Event()
        self.submit("flush", done.set)
        return done.wait(timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Store what is queued, then stop the thread (retries of an unreachable store end at `timeout`)."""
        if timeout is not None:
            self._close_deadline = time.monotonic() + timeout
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            self._drain()
            if self._closed and not self._metrics and not self._tasks:
                return

    def _drain(self) -> None:
        try:
            while self._metrics or self._tasks:
                self._write_metrics()
                while self._tasks:
                    kind, fn = self._tasks[0]
                    self._retrying(kind, fn)
                    self._tasks.popleft()
        except _GaveUp:
            return

    def _give_up(self) -> bool:
        deadline = self._close_deadline
        return self._closed and (deadline is None or time.monotonic() >= deadline)

    def _retrying(self, kind: str, fn: Callable[[], Any]) -> None:
        """Run `fn` until it succeeds or is refused (recorded); a store that does not answer is waited for."""
        while True:
            try:
                fn()
                self._backoff.reset()
                return
            except Exception as e:  # noqa: BLE001 - reported as a warning, never raised into training
                if not is_transient(e):
                    self.failures.record(kind, e)
                    return
                self.failures.note("waiting", (
                    f"mltrail is waiting for the tracking store to answer ({type(e).__name__}: {e}); autologging "
                    f"keeps what it holds and retries with backoff; training goes on."))
                if self._give_up() or not self._backoff.sleep(stop=self._give_up):
                    n = len(self._metrics)
                    self.failures.record(kind, MltrailException(
                        f"the tracking store did not answer before the writer closed; {n} metric point(s) "
                        f"and {len(self._tasks)} other call(s) were not stored: {e}", TEMPORARILY_UNAVAILABLE))
                    raise _GaveUp from e

    def _write_metrics(self) -> None:
        from mltrail.entities import Metric

        model_id = self.model_id
        while self._metrics:
            batch: list[Metric] = []
            while self._metrics and len(batch) < MAX_METRICS_PER_BATCH:
                key, value, ts, step = self._metrics.popleft()
                if key in self._bad_keys:
                    continue
                try:
                    batch.append(Metric(key, float(value), ts, int(step), model_id))
                except (TypeError, ValueError):
                    continue  # a non-numeric log entry (a string, a nested structure): not a metric
            if not batch or self._metric_failures >= MAX_CONSECUTIVE_METRIC_FAILURES:
                continue
            try:
                self._retrying("metrics", functools.partial(self._store_metrics, batch))
            except _GaveUp:
                self._metrics.extendleft((m.key, m.value, m.timestamp, m.step) for m in reversed(batch))
                raise

    def _store_metrics(self, batch: list[Any]) -> None:
        """Store one batch; a refusal is recorded here, a transient failure raised (to retry it whole)."""
        from mltrail.errors import InvalidParameterValue

        try:
            self.client.log_batch(self.run_id, metrics=batch)
            self._metric_failures = 0
        except InvalidParameterValue as e:
            # one bad key (a metric name the store refuses) must not cost the others: store key by key
            self.failures.record("metrics", e)
            by_key: dict[str, list[Any]] = {}
            for m in batch:
                by_key.setdefault(m.key, []).append(m)
            for key, points in by_key.items():
                try:
                    self.client.log_batch(self.run_id, metrics=points)
                except InvalidParameterValue:
                    self._bad_keys.add(key)
                except Exception as e2:  # noqa: BLE001
                    if is_transient(e2):
                        raise
                    self._metric_failures += 1
                    self.failures.record("metrics", e2)
                    return
        except Exception as e:  # noqa: BLE001
            if is_transient(e):
                raise
            self._metric_failures += 1
            self.failures.record("metrics", e)

    # ------------------------------------------------------------------ helpers for tasks
    def log_params(self, params: dict[str, Any]) -> None:
        """Queue params; keys the run already has keep their value (a second `fit` in one run)."""
        from mltrail._validation import param_value_to_str

        texts = {k: param_value_to_str(v) for k, v in params.items()}

        def write() -> None:
            from mltrail.entities import Param

            if self._known_params is None:
                self._known_params = dict(self.client.get_run(self.run_id).data.params)
            known = self._known_params
            items = []
            for k, text in texts.items():
                if k in known:
                    continue
                if len(text) > MAX_PARAM_LENGTH:
                    text = text[:MAX_PARAM_LENGTH - 3] + "..."
                items.append(Param(k, text))
                known[k] = text
            for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=items[i:i + MAX_PARAMS_PER_BATCH])

        self.submit("params", write)
