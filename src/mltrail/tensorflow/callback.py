"""Keras callbacks: `MlflowCallback` (metrics and model info) and `MlflowModelCheckpointCallback`.

Both only queue work for a daemon writer (see `_async_writer`), so the training thread never waits
on the tracking store, and a logging failure becomes one warning instead of an exception.

Steps: epoch metrics use the epoch number; step metrics (`log_every_n_steps=N`) the global step,
the count of optimizer steps done. Both continue when `fit` is called again in the same run, so a
second `fit` adds to the curves instead of overwriting their first points.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from typing import Any

import keras

from mltrail.errors import InvalidParameterValue
from mltrail.tensorflow import _distributed, _fit_info
from mltrail.tensorflow._async_writer import AsyncWriter, AutologWarning, FailureReport

_logger = logging.getLogger("mltrail.tensorflow")

__all__ = ["AutologWarning", "KerasMlflowCallback", "MLflowCallback", "MlflowCallback", "MlflowModelCheckpointCallback",
           "MltrailCallback", "load_checkpoint"]

# run_id -> (next epoch step, next global step): where a later fit in the same run continues.
_progress: OrderedDict[str, tuple[int, int]] = OrderedDict()
_progress_lock = threading.Lock()
_MAX_TRACKED_RUNS = 1000

# MLflow's tag naming the latest checkpoint artifact of a run.
LATEST_CHECKPOINT_TAG = "mlflow.latest_checkpoint_artifact"
CHECKPOINT_DIR = "checkpoints"


def _get_progress(run_id: str) -> tuple[int, int]:
    with _progress_lock:
        return _progress.get(run_id, (0, 0))


def _set_progress(run_id: str, next_epoch: int, next_step: int) -> None:
    with _progress_lock:
        _progress[run_id] = (next_epoch, next_step)
        _progress.move_to_end(run_id)
        while len(_progress) > _MAX_TRACKED_RUNS:
            _progress.popitem(last=False)


def _active_or_new_run() -> Any:
    """The active run, else one started now."""
    from mltrail import fluent

    return fluent.active_run() or fluent.start_run()


class LoggingSession:
    """One fit's logging: the run, a client, the writer thread and the failures seen."""

    def __init__(self, run_id: str, silent: bool = False) -> None:
        from mltrail.client import Client
        from mltrail.tracking_uri import get_tracking_uri

        self.run_id = run_id
        self.client = Client(get_tracking_uri())
        self.failures = FailureReport(silent)
        self.writer = AsyncWriter(self.client, run_id, self.failures)

    def close(self) -> None:
        """Store everything queued, stop the writer, and warn about what failed."""
        self.writer.close()
        self.failures.emit()


def _run_id_of(run: Any) -> str:
    if isinstance(run, str):
        return run
    info = getattr(run, "info", None)
    if info is None or not getattr(info, "run_id", None):
        raise InvalidParameterValue(
            f"Invalid run for MlflowCallback: received {type(run).__name__}; expected a Run (as returned by "
            "mltrail.start_run()), a run id string, or None for the active run.")
    return str(info.run_id)


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _SessionCallback(keras.callbacks.Callback, ABC):
    """A callback that logs through a LoggingSession, its own or one autolog hands over."""

    def __init__(self) -> None:
        super().__init__()
        # autolog hands over its session (and closes it); standalone, the callback opens its own
        self._session: LoggingSession | None = None
        self._owns_session = False
        self._active = False

    @abstractmethod
    def _new_session(self) -> LoggingSession:
        """Open this callback's own session (its run, its client)."""

    def _ensure_session(self, what: str) -> LoggingSession | None:
        """The session (opened now unless handed over); None, after a warning about `what`, when it cannot open."""
        if self._session is None:
            if not _distributed.should_log():  # a non-chief process of a distributed job logs nothing
                note = _distributed.skip_note()
                if note is not None:
                    _logger.info("%s: %s", type(self).__name__, note)
                return None
            try:
                self._session = self._new_session()
            except Exception as e:  # noqa: BLE001 - no run, no logging; training goes on
                failures = FailureReport()
                failures.record(what, e)
                failures.emit()
                return None
            self._owns_session = True
        return self._session

    def _release_session(self) -> None:
        """At train end: close our own session (storing what is queued), or emit a handed-over one's warnings."""
        session = self._session
        if session is None:
            return
        if self._owns_session:
            session.close()
            self._session = None
            self._owns_session = False
        else:
            session.failures.emit()


class MlflowCallback(_SessionCallback):
    """Log a Keras `fit` to a run: optimizer params, model summary and config, and metrics.

    Args:
        run: the run to log to (a Run or a run id); None for the active run at train begin
            (one is started if there is none).
        log_every_epoch: log the epoch metrics (Keras's names, step = epoch).
        log_every_n_steps: also log the batch metrics every N optimizer steps (step = global step),
            named `batch/<name>` when epoch metrics are logged too, else with Keras's names.
            Validation metrics are logged per epoch in every case.

    Example:
        >>> with mltrail.start_run() as run:                                  # doctest: +SKIP
        ...     model.fit(x, y, epochs=10, callbacks=[MlflowCallback(run)])
    """

    # Our batch hook only appends to a queue, so Keras may call it from its worker threads.
    async_safe = True
    # the optimizer's config is logged as `<prefix><key>`: mlflow.tensorflow's callback says "opt_"
    optimizer_param_prefix = "opt_"

    def __init__(self, run: Any = None, log_every_epoch: bool = True, log_every_n_steps: int | None = None) -> None:
        super().__init__()
        if isinstance(run, bool):  # MLflow's positional form, MlflowCallback(log_every_epoch, log_every_n_steps)
            run, log_every_epoch, log_every_n_steps = None, run, (
                log_every_epoch if not isinstance(log_every_epoch, bool) else log_every_n_steps)
        _fit_info.check_metric_settings(log_every_epoch, log_every_n_steps, "MlflowCallback would log nothing")
        self.run = run
        self.log_every_epoch = bool(log_every_epoch)
        self.log_every_n_steps = log_every_n_steps
        if run is not None:
            _run_id_of(run)  # fail now, not at train begin
        if log_every_n_steps is not None:
            # Defined only when asked for: every callback's batch hook is a call per step.
            self.on_train_batch_end = self._log_step

    # ------------------------------------------------------------------ train begin / end
    def _new_session(self) -> LoggingSession:
        run = self.run if self.run is not None else _active_or_new_run()
        return LoggingSession(_run_id_of(run))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._active = False
        session = self._ensure_session("the run")
        if session is None:
            return
        self._active = True
        self._writer = session.writer
        self._failures = session.failures
        model = self.model
        next_epoch, next_step = _get_progress(session.run_id)
        self._next_epoch = next_epoch
        self._epoch_offset: int | None = None
        self._last_epoch: int | None = None
        optimizer = getattr(model, "optimizer", None)
        self._step = max(next_step, self._iterations(optimizer))
        self._epoch_step_base = self._step
        self._last_logged_step = self._step
        self._step_names: dict[str, str] = {}
        self._lr_schedule = False
        self._lr_logged = False
        self._lr0 = self._learning_rate(optimizer)
        self._log_model_info(model, optimizer)

    @staticmethod
    def _iterations(optimizer: Any) -> int:
        try:
            return int(optimizer.iterations.numpy())
        except Exception:  # noqa: BLE001 - no optimizer (yet): count from zero
            return 0

    @staticmethod
    def _learning_rate(optimizer: Any) -> float | None:
        if optimizer is None:
            return None
        try:
            return _float_or_none(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except Exception:  # noqa: BLE001 - an optimizer without a readable learning rate
            return None

    def _log_model_info(self, model: Any, optimizer: Any) -> None:
        params: dict[str, Any] = {}
        try:
            opt = _fit_info.optimizer_params(optimizer)
            self._lr_schedule = isinstance(opt.get("learning_rate"), dict)
            params.update({self.optimizer_param_prefix + k: v for k, v in opt.items()})
        except Exception as e:  # noqa: BLE001
            _logger.debug("no optimizer params: %s", e)
        try:
            params.update(_fit_info.param_counts(model))
        except Exception as e:  # noqa: BLE001
            _logger.debug("no parameter counts: %s", e)
        writer, client, run_id = self._writer, self._writer.client, self._writer.run_id
        writer.log_params(params)

        def summary() -> None:
            try:
                text = _fit_info.summary_text(model)
            except Exception as e:  # noqa: BLE001 - a model Keras cannot summarize: nothing to log
                _logger.debug("no model summary: %s", e)
                return
            client.log_text(run_id, text, "model_summary.txt")

        def config() -> None:
            try:
                data = _fit_info.model_config(model)
            except Exception as e:  # noqa: BLE001 - a subclassed model without get_config
                _logger.debug("no model config: %s", e)
                return
            client.log_dict(run_id, data, "model_config.json")

        writer.submit("the model summary", summary)
        writer.submit("the model config", config)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._active:
            return
        session = self._session
        if session is None:  # pragma: no cover - _active implies a session
            return
        optimizer = getattr(self.model, "optimizer", None)
        self._step = max(self._step, self._iterations(optimizer))
        next_epoch = self._next_epoch if self._last_epoch is None else self.epoch_step(self._last_epoch) + 1
        _set_progress(session.run_id, next_epoch, self._step)
        self._release_session()
        self._active = False

    # ------------------------------------------------------------------ epochs and steps
    def epoch_step(self, epoch: int) -> int:
        """The step an epoch's metrics are logged at (the epoch, moved on past a previous fit's)."""
        if self._epoch_offset is None:
            self._epoch_offset = max(0, self._next_epoch - epoch)
        return epoch + self._epoch_offset

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._active:
            return
        self.epoch_step(epoch)
        self._epoch_step_base = self._step

    def _log_step(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._active:
            return
        step = self._epoch_step_base + batch + 1
        if step > self._step:
            self._step = step
        n = self.log_every_n_steps
        if not logs or n is None or step // n <= self._last_logged_step // n:
            return
        self._last_logged_step = step
        names = self._step_names
        ts = int(time.time() * 1000)
        items = []
        for k, v in logs.items():
            name = names.get(k)
            if name is None:
                name = names[k] = f"batch/{k}" if self.log_every_epoch else k
            items.append((name, v, ts, step))
        self._writer.add_metrics(items)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._active:
            return
        step = self.epoch_step(epoch)
        if self.log_every_n_steps is None:
            # no batch hook counted the steps: Keras knows how many an epoch has
            self._step = self._epoch_step_base + int(self.params.get("steps") or 0)
        metrics = dict(logs or {})
        if "learning_rate" not in metrics:
            lr = self._learning_rate(getattr(self.model, "optimizer", None))
            if lr is not None and (self._lr_schedule or self._lr_logged or lr != self._lr0):
                metrics["learning_rate"] = lr
                self._lr_logged = True
        if not self.log_every_epoch:  # the batch metrics are logged per step; validation stays per epoch
            metrics = {k: v for k, v in metrics.items() if k.startswith("val_") or k == "learning_rate"}
        # MLflow's callback also logs each validation result as `validation_<name>` (from on_test_end,
        # at step 0); the same values here, at the epoch's step so that they make a curve
        metrics.update({"validation_" + k[4:]: v for k, v in list(metrics.items()) if k.startswith("val_")})
        if metrics:
            self._writer.add_metric_dict(metrics, step)
            self._writer.wake()
        self._last_epoch = epoch
        self._failures.emit()


# mltrail's own name for the same callback, and MLflow's older spelling
MltrailCallback = MlflowCallback
MLflowCallback = MlflowCallback


class KerasMlflowCallback(MlflowCallback):
    """`mlflow.keras.MlflowCallback`: the same callback with the keras flavor's names, the optimizer's
    config as `optimizer_<key>`, and `model_id` for the logged model its metrics belong to.

    Args:
        log_every_epoch: log the epoch metrics (step = epoch).
        log_every_n_steps: also log the batch metrics every N optimizer steps.
        model_id: the logged model (`mltrail.initialize_logged_model(...).model_id`) to link metrics to.
        run: the run to log to (None: the active run at train begin).
    """

    optimizer_param_prefix = "optimizer_"

    def __init__(self, log_every_epoch: bool = True, log_every_n_steps: int | None = None,
                 model_id: str | None = None, run: Any = None) -> None:
        super().__init__(run, log_every_epoch, log_every_n_steps)
        self.model_id = model_id

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self._active and self.model_id is not None:
            self._writer.model_id = self.model_id


# ---------------------------------------------------------------------- checkpoints
# A deferred best checkpoint is written once this long has passed since the last write (and at
# least 50 times the last write's duration), so checkpoint I/O stays a small share of training.
CHECKPOINT_MIN_INTERVAL_S = 60.0
_CHECKPOINT_COST_FACTOR = 50.0


class MlflowModelCheckpointCallback(_SessionCallback):
    """Save the model (or its weights) to the run's `checkpoints/` artifacts during training.

    With `save_best_only`, the best model so far is `checkpoints/latest_checkpoint.keras` (or
    `.weights.h5`) beside `latest_checkpoint_metrics.json`; the best weights are kept in memory and
    written at most once a minute, and always when training ends. Otherwise every checkpoint is
    written when due, to `checkpoints/epoch_<n>/` (or `global_step_<n>/` for an integer `save_freq`).

    Args:
        client: a Client (None: the current tracking URI's), as in MLflow's signature.
        run_id: the run (None: the active run at train begin).
        monitor: the metric that decides "best" (e.g. "val_loss").
        mode: "min" or "max".
        save_best_only: keep only the best checkpoint.
        save_weights_only: save weights (`.weights.h5`) instead of the whole model (`.keras`).
        save_freq: "epoch", or a number of optimizer steps.
    """

    def __init__(self, client: Any = None, run_id: str | None = None, monitor: str = "val_loss", mode: str = "min",
                 save_best_only: bool = True, save_weights_only: bool = False, save_freq: str | int = "epoch") -> None:
        super().__init__()
        _fit_info.check_checkpoint_settings(mode, save_freq, ("checkpoint mode", "checkpoint save_freq"))
        if save_best_only and not monitor:
            raise InvalidParameterValue("save_best_only=True needs a metric to monitor: received monitor=None.")
        self.client = client
        self.run_id = run_id
        self.monitor = monitor
        self.mode = mode
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        # Whether a callback may change the weights after the last epoch (EarlyStopping restoring the
        # best ones): then a checkpoint kept in memory is always put back before it is written.
        self.weights_change_at_train_end = True
        # the best checkpoint seen but not yet written (write_pending may run before any training)
        self._pending: tuple[list[Any] | None, dict[str, Any], int, int] | None = None
        if save_freq != "epoch":
            self.on_train_batch_end = self._on_batch

    def _new_session(self) -> LoggingSession:
        session = LoggingSession(self.run_id or _run_id_of(_active_or_new_run()))
        if self.client is not None:
            session.client = session.writer.client = self.client
        return session

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._active = False
        if self._ensure_session("checkpoints") is None:
            return
        self._active = True
        self._best: float | None = None
        self._pending = None
        self._last_write = time.monotonic()
        self._write_cost = 0.0
        self._epoch = 0
        self._step = MlflowCallback._iterations(getattr(self.model, "optimizer", None))
        self._epoch_step_base = self._step
        self._last_saved_step = self._step
        self._warned_monitor = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._active:  # no session (a non-chief process, or no run): nothing was set up
            return
        self._epoch = epoch
        self._epoch_step_base = self._step

    def _on_batch(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._active:
            return
        self._step = self._epoch_step_base + batch + 1
        if self._step - self._last_saved_step >= int(self.save_freq):
            self._last_saved_step = self._step
            self._checkpoint(dict(logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._active:
            return
        if self.save_freq != "epoch":
            return
        self._step = self._epoch_step_base + int((self.params or {}).get("steps") or 0)
        self._checkpoint(dict(logs or {}))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._active:
            return
        self.write_pending()
        self._release_session()
        self._active = False

    # ------------------------------------------------------------------ deciding and writing
    def _better(self, value: float) -> bool:
        if self._best is None:
            return True
        return value < self._best if self.mode == "min" else value > self._best

    def _checkpoint(self, logs: dict[str, Any]) -> None:
        metrics = {k: f for k, v in logs.items() if (f := _float_or_none(v)) is not None}
        if self.save_best_only:
            value = metrics.get(self.monitor)
            if value is None:
                silent = self._session is not None and self._session.failures.silent
                if not self._warned_monitor and not silent:
                    self._warned_monitor = True
                    _logger.info("No checkpoint: the monitored metric %r is not among %s.", self.monitor,
                                 sorted(metrics))
                return
            if not self._better(value):
                return
            self._best = value
            wait = max(CHECKPOINT_MIN_INTERVAL_S, _CHECKPOINT_COST_FACTOR * self._write_cost)
            if time.monotonic() - self._last_write < wait:
                try:
                    # after the last epoch nothing changes the weights (unless a callback restores
                    # others): no copy needed, train end saves the model as it is
                    values = None if self._last_epoch_ends() else self._state_values()
                    self._pending = (values, metrics, self._epoch, self._step)
                except Exception as e:  # noqa: BLE001
                    self._record(e)
                return
            self._pending = None
        self._write(metrics, self._epoch, self._step)

    def _last_epoch_ends(self) -> bool:
        if self.save_freq != "epoch" or self.weights_change_at_train_end:
            return False
        epochs = (self.params or {}).get("epochs")
        return bool(getattr(self.model, "stop_training", False)) or (epochs is not None and self._epoch >= epochs - 1)

    def write_pending(self) -> None:
        """Write the best checkpoint kept in memory, if any (at train end, or when training fails)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            values, metrics, epoch, step = pending
            # weights unchanged since the snapshot: save the model as it is (no swapping in and out)
            unchanged = values is None or (step == self._step and not self.weights_change_at_train_end)
            self._write(metrics, epoch, step, None if unchanged else values)

    def _state_variables(self) -> list[Any]:
        optimizer = getattr(self.model, "optimizer", None)
        opt_vars = list(getattr(optimizer, "variables", []) or []) if not self.save_weights_only else []
        return list(self.model.weights) + opt_vars

    def _state_values(self) -> list[Any]:
        return [keras.ops.convert_to_numpy(v) for v in self._state_variables()]

    def _assign(self, values: list[Any]) -> None:
        for var, value in zip(self._state_variables(), values, strict=True):
            var.assign(value)

    def _record(self, e: BaseException) -> None:
        if self._session is not None:
            self._session.failures.record("checkpoints", e)

    def _write(self, metrics: dict[str, Any], epoch: int, step: int, values: list[Any] | None = None) -> None:
        session = self._session
        if session is None:
            return
        start = time.perf_counter()
        suffix = ".weights.h5" if self.save_weights_only else ".keras"
        if self.save_best_only:
            directory, model_file, metrics_file = CHECKPOINT_DIR, f"latest_checkpoint{suffix}", \
                "latest_checkpoint_metrics.json"
        else:
            sub = f"epoch_{epoch}" if self.save_freq == "epoch" else f"global_step_{step}"
            directory, model_file, metrics_file = f"{CHECKPOINT_DIR}/{sub}", f"checkpoint{suffix}", \
                "checkpoint_metrics.json"
        tmp = tempfile.mkdtemp(prefix="mltrail-checkpoint-")
        path = os.path.join(tmp, model_file)
        try:
            current = self._state_values() if values is not None else None
            if values is not None:
                self._assign(values)
            try:
                if self.save_weights_only:
                    self.model.save_weights(path)
                else:
                    self.model.save(path)
            finally:
                if current is not None:
                    self._assign(current)
        except Exception as e:  # noqa: BLE001 - disk full, an unsavable layer: warn, train on
            shutil.rmtree(tmp, ignore_errors=True)
            self._record(e)
            return
        finally:
            self._write_cost = time.perf_counter() - start
            self._last_write = time.monotonic()
        client, run_id = session.client, session.run_id
        info = {**metrics, "epoch": epoch, "global_step": step}

        def upload() -> None:
            try:
                client.log_artifact(run_id, path, directory)
                client.log_dict(run_id, info, f"{directory}/{metrics_file}")
                client.set_tag(run_id, LATEST_CHECKPOINT_TAG, f"{directory}/{model_file}")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        session.writer.submit("checkpoints", upload)


def load_checkpoint(model: Any = None, run_id: str | None = None, epoch: int | None = None,
                    global_step: int | None = None) -> Any:
    """Load a checkpoint that autologging (or MlflowModelCheckpointCallback) logged.

    Args:
        model: for weights-only checkpoints, the model to load the weights into.
        run_id: the run (default: the active run).
        epoch: the checkpoint of this epoch (when every epoch was kept); default the latest.
        global_step: the checkpoint of this step (integer `save_freq`).

    Returns:
        The loaded Keras model (`model` itself for weights-only checkpoints).
    """
    import posixpath

    from mltrail import fluent
    from mltrail.client import Client

    if epoch is not None and global_step is not None:
        raise InvalidParameterValue("Give at most one of `epoch` and `global_step` to load_checkpoint.")
    if run_id is None:
        run = fluent.active_run()
        if run is None:
            raise InvalidParameterValue("load_checkpoint needs `run_id` when no run is active.")
        run_id = run.info.run_id
    client = Client()
    latest = client.get_run(run_id).data.tags.get(LATEST_CHECKPOINT_TAG)
    if latest is None:
        raise InvalidParameterValue(f"Run {run_id} has no checkpoint (no tag {LATEST_CHECKPOINT_TAG!r}).")
    name = posixpath.basename(latest)
    if global_step is not None:
        path = f"{CHECKPOINT_DIR}/global_step_{global_step}/{name}"
    elif epoch is not None:
        path = f"{CHECKPOINT_DIR}/epoch_{epoch}/{name}"
    else:
        path = latest
    local = client.download_artifacts(run_id, path, tempfile.mkdtemp(prefix="mltrail-checkpoint-"))
    if name.endswith(".weights.h5"):
        if model is None:
            raise InvalidParameterValue(
                f"Checkpoint {path!r} holds weights only: pass the model to load them into (model=...).")
        model.load_weights(local)
        return model
    return keras.models.load_model(local)
