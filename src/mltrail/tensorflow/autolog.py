"""`mltrail.tensorflow.autolog()`: log every Keras `fit` with no change to the training code.

It wraps `keras.Model.fit` (the class `tf.keras.Model` is too). Each autologged fit:

- logs into the active run (and leaves it open), or starts a run and ends it after fit;
- logs fit's arguments as params as MLflow does (as given: `steps_per_epoch=None` stays "None"),
  the data's sizes and shapes, the datasets as run inputs, the optimizer's config (`opt_*`),
  parameter counts, `model_summary.txt` and `model_config.json`;
- adds `MlflowCallback` for the metrics, a cheap epoch-level TensorBoard callback (unless the
  user has one) whose directory becomes the `tensorboard_logs/` artifacts, and checkpointing;
- after fit logs EarlyStopping's outcome and the trained model (with signature and, if asked,
  an input example) through `mltrail.tensorflow.log_model`.

In a distributed job only the chief process logs (`_distributed`: TF_CONFIG or a launcher's rank);
the others train without touching the tracking store.

Logging never stops training: failures become one `AutologWarning` per kind.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any

_logger = logging.getLogger("mltrail.tensorflow")

FLAVOR_NAME = "tensorflow"


@dataclass(frozen=True)
class AutologConfig:
    """The settings of the last `autolog()` call."""

    log_models: bool = True
    log_datasets: bool = True
    exclusive: bool = False
    silent: bool = False
    registered_model_name: str | None = None
    log_input_examples: bool = False
    log_model_signatures: bool = True
    saved_model_kwargs: dict[str, Any] | None = None
    keras_model_kwargs: dict[str, Any] | None = None
    extra_tags: dict[str, Any] = field(default_factory=dict)
    log_every_epoch: bool = True
    log_every_n_steps: int | None = None
    checkpoint: bool = True
    checkpoint_monitor: str = "val_loss"
    checkpoint_mode: str = "min"
    checkpoint_save_best_only: bool = True
    checkpoint_save_weights_only: bool = False
    checkpoint_save_freq: str | int = "epoch"
    # which MLflow autolog this one stands for: "tensorflow" (mlflow.tensorflow.autolog) or "keras"
    # (mlflow.keras.autolog: `optimizer_*` params, the keras flavor's model, no checkpoints)
    flavor: str = "tensorflow"
    save_exported_model: bool = False
    save_model_kwargs: dict[str, Any] | None = None


_config: AutologConfig | None = None
_patch_lock = threading.Lock()
# (class, the attribute it had before patching or None when fit was inherited, the fit we call)
_patched: tuple[type, Any, Any] | None = None
_local = threading.local()
_tensorboard_note_given = False


def autolog(log_models: bool = True, log_datasets: bool = True, disable: bool = False, exclusive: bool = False,
            disable_for_unsupported_versions: bool = False, silent: bool = False,
            registered_model_name: str | None = None, log_input_examples: bool = False,
            log_model_signatures: bool = True, saved_model_kwargs: dict[str, Any] | None = None,
            keras_model_kwargs: dict[str, Any] | None = None, extra_tags: dict[str, Any] | None = None,
            log_every_epoch: bool = True, log_every_n_steps: int | None = None, checkpoint: bool = True,
            checkpoint_monitor: str = "val_loss", checkpoint_mode: str = "min",
            checkpoint_save_best_only: bool = True, checkpoint_save_weights_only: bool = False,
            checkpoint_save_freq: str | int = "epoch", every_n_iter: int | None = None) -> None:
    """Enable (or, with `disable=True`, disable) autologging of Keras `fit` calls.

    Args:
        log_models: log the trained model after each fit (`model/`, through `log_model`).
        log_datasets: log the training and validation data as run inputs.
        disable: undo autologging: `fit` is Keras's own again.
        exclusive: do not log into runs the user started (only into runs autolog starts).
        disable_for_unsupported_versions: accepted for MLflow compatibility (every installed
            Keras 3 is supported).
        silent: no info lines and no warnings from autologging.
        registered_model_name: register each logged model as a new version of this name.
        log_input_examples: log a few training rows as the model's input example.
        log_model_signatures: infer and log the model's signature from a few training rows.
        saved_model_kwargs: passed to `log_model` (SavedModel export options).
        keras_model_kwargs: passed to `log_model` (`model.save` options).
        extra_tags: tags for the runs autolog starts.
        log_every_epoch: log the epoch metrics (step = epoch).
        log_every_n_steps: also log the batch metrics every N steps (step = global step);
            `batch/<name>` when epoch metrics are logged too.
        checkpoint: save checkpoints under `checkpoints/` during training.
        checkpoint_monitor: the metric deciding the best checkpoint.
        checkpoint_mode: "min" or "max" for that metric.
        checkpoint_save_best_only: keep only the best checkpoint.
        checkpoint_save_weights_only: save weights only.
        checkpoint_save_freq: "epoch" or a number of steps.
        every_n_iter: MLflow's old name for `log_every_n_steps`.
    """
    global _config
    if every_n_iter is not None and log_every_n_steps is None:
        log_every_n_steps = every_n_iter
    if disable:
        with _patch_lock:
            _config = None
            _unpatch()
        return
    from mltrail.tensorflow._fit_info import check_checkpoint_settings, check_metric_settings

    check_metric_settings(log_every_epoch, log_every_n_steps, "autolog would log no metrics")
    check_checkpoint_settings(checkpoint_mode, checkpoint_save_freq, ("checkpoint_mode", "checkpoint_save_freq"))
    config = AutologConfig(
        log_models=log_models, log_datasets=log_datasets, exclusive=exclusive, silent=silent,
        registered_model_name=registered_model_name, log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures, saved_model_kwargs=saved_model_kwargs,
        keras_model_kwargs=keras_model_kwargs, extra_tags=dict(extra_tags or {}), log_every_epoch=log_every_epoch,
        log_every_n_steps=log_every_n_steps, checkpoint=checkpoint, checkpoint_monitor=checkpoint_monitor,
        checkpoint_mode=checkpoint_mode, checkpoint_save_best_only=checkpoint_save_best_only,
        checkpoint_save_weights_only=checkpoint_save_weights_only, checkpoint_save_freq=checkpoint_save_freq)
    _enable(config)


def _enable(config: AutologConfig) -> None:
    global _config, _tensorboard_note_given
    with _patch_lock:
        _patch()
        _config = config
        _tensorboard_note_given = False


def keras_autolog(log_every_epoch: bool = True, log_every_n_steps: int | None = None, log_models: bool = True,
                  log_model_signatures: bool = True, save_exported_model: bool = False, log_datasets: bool = True,
                  log_input_examples: bool = False, disable: bool = False, exclusive: bool = False,
                  disable_for_unsupported_versions: bool = False, silent: bool = False,
                  registered_model_name: str | None = None, save_model_kwargs: dict[str, Any] | None = None,
                  extra_tags: dict[str, Any] | None = None) -> None:
    """`mlflow.keras.autolog`: the same Keras autologging, logging as MLflow's keras flavor does.

    Its runs are tagged `mlflow.autologging=keras`, the optimizer's config is logged as
    `optimizer_<key>` (`KerasMlflowCallback`), the model with the `keras` flavor
    (`mltrail.keras.log_model`, with `save_exported_model` and `save_model_kwargs`), and neither
    checkpoints nor TensorBoard logs are written (MLflow's keras autolog has neither). The other
    arguments are those of `autolog`.
    """
    if disable:
        autolog(disable=True)
        return
    from mltrail.tensorflow._fit_info import check_metric_settings

    check_metric_settings(log_every_epoch, log_every_n_steps, "autolog would log no metrics")
    _enable(AutologConfig(
        log_models=log_models, log_datasets=log_datasets, exclusive=exclusive, silent=silent,
        registered_model_name=registered_model_name, log_input_examples=log_input_examples,
        log_model_signatures=log_model_signatures, extra_tags=dict(extra_tags or {}),
        log_every_epoch=log_every_epoch, log_every_n_steps=log_every_n_steps, checkpoint=False, flavor="keras",
        save_exported_model=save_exported_model, save_model_kwargs=save_model_kwargs))


# The flavor names that `mltrail.autolog(exclude_flavors=...)` matches to the Keras autologging:
# MLflow has one autolog per flavor, mltrail one for both.
KERAS_FLAVORS = frozenset({"tensorflow", "keras"})
# `mltrail.autolog`'s own arguments, never passed on
_GLOBAL_ONLY = frozenset({"exclude_flavors"})


def autolog_integrations(settings: dict[str, Any]) -> None:
    """`mltrail.autolog(**settings)`: configure the Keras autologging with the arguments it takes.

    MLflow's arguments this autolog lacks (`log_traces`: no tracing here) are ignored, named in one
    debug line. `exclude_flavors` naming "tensorflow" or "keras" leaves Keras alone; so does a
    process without TensorFlow or Keras installed.
    """
    excluded = {str(f) for f in settings.get("exclude_flavors") or ()}
    if excluded & KERAS_FLAVORS:
        _logger.debug("autolog: Keras autologging skipped: exclude_flavors=%s", sorted(excluded))
        return
    if importlib.util.find_spec("keras") is None and importlib.util.find_spec("tensorflow") is None:
        _logger.debug("autolog: neither Keras nor TensorFlow is installed; nothing to autolog.")
        return
    import inspect

    accepted = set(inspect.signature(autolog).parameters)
    passed = {k: v for k, v in settings.items() if k in accepted}
    ignored = sorted(k for k in settings if k not in accepted and k not in _GLOBAL_ONLY)
    if ignored:
        _logger.debug("autolog: arguments the Keras autologging does not take, ignored: %s", ", ".join(ignored))
    autolog(**passed)


def get_autolog_config() -> AutologConfig | None:
    """The settings in force, or None when autologging is off."""
    return _config


# ---------------------------------------------------------------------- patching
def _patch() -> None:
    global _patched
    if _patched is not None:
        return
    import keras

    cls = keras.Model
    before = cls.__dict__.get("fit")
    original = cls.fit

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = _config
        if config is None or getattr(_local, "depth", 0) > 0:  # off, or a fit inside an autologged fit
            return original(self, *args, **kwargs)
        _local.depth = 1
        try:
            return _autologged_fit(config, original, self, args, kwargs)
        finally:
            _local.depth = 0

    fit.__mltrail_autolog__ = True  # type: ignore[attr-defined]
    cls.fit = fit
    _patched = (cls, before, original)


def _unpatch() -> None:
    global _patched
    if _patched is None:
        return
    cls, before, _ = _patched
    if before is None:
        delattr(cls, "fit")
    else:
        setattr(cls, "fit", before)  # noqa: B010
    _patched = None


# ---------------------------------------------------------------------- one autologged fit
def _tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _epoch_tensorboard(log_dir: str) -> Any:
    """Keras's TensorBoard callback writing epoch summaries only, with no per-step work at all.

    Keras's own callback calls `tf.summary.scalar` for every batch even with update_freq="epoch"
    (a no-op write that costs a tenth of a millisecond per metric): ours drops the batch hooks,
    and the per-validation "evaluation_*_vs_iterations" scalars, which repeat the epoch's
    validation metrics (the validation writer still gets them once per epoch).
    """
    import keras

    class _EpochTensorBoard(keras.callbacks.TensorBoard):
        on_train_batch_begin = keras.callbacks.Callback.on_train_batch_begin
        on_train_batch_end = keras.callbacks.Callback.on_train_batch_end
        on_test_batch_begin = keras.callbacks.Callback.on_test_batch_begin

        def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
            self._pop_writer()

    return _EpochTensorBoard(log_dir, histogram_freq=0, write_graph=False, update_freq="epoch", profile_batch=0)


def _note(config: AutologConfig, message: str, *args: Any) -> None:
    """An info line: through logging when the program configured it, else on stderr (as MLflow's are)."""
    if config.silent:
        return
    if _logger.hasHandlers():
        _logger.info(message, *args)
    else:
        import sys

        print(f"mltrail: {message % args if args else message}", file=sys.stderr)


class _Fit:
    """The state of one autologged fit: its run, session and the callbacks it added."""

    def __init__(self, config: AutologConfig, model: Any, fit_args: dict[str, Any] | None) -> None:
        self.config = config
        self.model = model
        self.fit_args = fit_args
        self.managed = False
        self.session: Any = None
        self.metrics_callback: Any = None
        self.checkpoint_callback: Any = None
        self.early_stopping: Any = None
        self.tb_dir: str | None = None
        self.tb_is_temp = False

    # ---------------------------------------------------------------- before fit
    def start(self) -> None:
        from mltrail import fluent
        from mltrail.tensorflow.callback import LoggingSession

        run = fluent.active_run()
        if run is None:
            tags = {"mlflow.autologging": self.config.flavor, **self.config.extra_tags}
            run = fluent.start_run(tags=tags)
            self.managed = True
        self.run_id = run.info.run_id
        self.session = LoggingSession(self.run_id, silent=self.config.silent)

    def callbacks(self, given: Any) -> Any:
        """The callbacks fit gets: the user's, plus ours."""
        import keras

        from mltrail.tensorflow.callback import (
            KerasMlflowCallback,
            MlflowCallback,
            MlflowModelCheckpointCallback,
        )

        if isinstance(given, keras.callbacks.CallbackList):
            _note(self.config, "autolog: fit got a CallbackList; metrics are not autologged for this fit.")
            return given
        callbacks = list(given or [])
        config = self.config
        for cb in callbacks:
            if isinstance(cb, keras.callbacks.EarlyStopping) and self.early_stopping is None:
                self.early_stopping = cb
            if isinstance(cb, keras.callbacks.TensorBoard) and self.tb_dir is None:
                self.tb_dir = str(cb.log_dir)
        if self.tb_dir is None and config.flavor == "tensorflow":  # MLflow's keras autolog logs no TensorBoard
            if _tensorboard_available():
                self.tb_dir = tempfile.mkdtemp(prefix="mltrail-tensorboard-")
                self.tb_is_temp = True
                callbacks.append(_epoch_tensorboard(self.tb_dir))
            else:
                global _tensorboard_note_given
                if not _tensorboard_note_given:
                    _tensorboard_note_given = True
                    _note(config, "autolog: TensorBoard is not installed, so no tensorboard_logs/ are logged "
                                  "(pip install tensorboard to get them).")
        if any(isinstance(cb, MlflowCallback) for cb in callbacks):
            _note(config, "autolog: fit already has an MlflowCallback; autolog leaves the metrics to it.")
        else:
            callback_class = KerasMlflowCallback if config.flavor == "keras" else MlflowCallback
            self.metrics_callback = callback_class(log_every_epoch=config.log_every_epoch,
                                                   log_every_n_steps=config.log_every_n_steps)
            self.metrics_callback._session = self.session
            callbacks.append(self.metrics_callback)
        if config.checkpoint and not any(isinstance(cb, MlflowModelCheckpointCallback) for cb in callbacks):
            self.checkpoint_callback = MlflowModelCheckpointCallback(
                run_id=self.run_id, monitor=config.checkpoint_monitor, mode=config.checkpoint_mode,
                save_best_only=config.checkpoint_save_best_only,
                save_weights_only=config.checkpoint_save_weights_only, save_freq=config.checkpoint_save_freq)
            self.checkpoint_callback._session = self.session
            # only a restoring EarlyStopping changes the weights after the last epoch
            self.checkpoint_callback.weights_change_at_train_end = any(
                isinstance(cb, keras.callbacks.EarlyStopping) and cb.restore_best_weights for cb in callbacks)
            callbacks.append(self.checkpoint_callback)
        return callbacks

    def log_inputs(self) -> None:
        """fit's params, EarlyStopping's settings and the datasets (all queued for the writer)."""
        from mltrail.tensorflow import _fit_info

        writer = self.session.writer
        params: dict[str, Any] = {}
        if self.fit_args is not None:
            try:
                params.update(_fit_info.fit_params(self.fit_args))
            except Exception as e:  # noqa: BLE001 - an input kind we cannot describe: log the rest
                _logger.debug("fit params: %s", e)
        es = self.early_stopping
        if es is not None:
            params.update({"monitor": es.monitor, "min_delta": es.min_delta, "patience": es.patience,
                           "baseline": es.baseline, "restore_best_weights": es.restore_best_weights})
        writer.log_params(params)
        if self.config.log_datasets and self.fit_args is not None:
            fit_args, client, run_id = dict(self.fit_args), self.session.client, self.run_id

            def datasets() -> None:
                from mltrail.entities import DatasetInput, InputTag

                found = _fit_info.dataset_inputs(fit_args)
                if found:
                    client.log_inputs(run_id, [DatasetInput(ds._to_entity(), [InputTag("mlflow.data.context", ctx)])
                                               for ds, ctx in found])

            writer.submit("datasets", datasets)

    # ---------------------------------------------------------------- after fit
    def log_early_stopping(self, history: Any) -> None:
        es, cb = self.early_stopping, self.metrics_callback
        if es is None or cb is None or cb._last_epoch is None:
            return
        writer = self.session.writer
        last_step = cb.epoch_step(cb._last_epoch)
        if getattr(self.model, "stop_training", False) and getattr(es, "stopped_epoch", 0):
            writer.add_metric_dict({"stopped_epoch": es.stopped_epoch}, last_step)
        if es.restore_best_weights and getattr(es, "best_weights", None) is not None:
            best = int(getattr(es, "best_epoch", 0))
            writer.add_metric_dict({"restored_epoch": best}, last_step)
            epochs = list(getattr(history, "epoch", []) or [])
            if best in epochs:
                i = epochs.index(best)
                restored = {k: v[i] for k, v in history.history.items() if i < len(v)}
                # the restored model's metrics become each curve's last point
                writer.add_metric_dict(restored, last_step + 1)

    def log_model(self) -> None:
        import mltrail.tensorflow as mtf
        from mltrail.tensorflow import _fit_info

        config, model = self.config, self.model
        signature = input_example = None
        if (config.log_model_signatures or config.log_input_examples) and self.fit_args is not None:
            try:
                x = _fit_info.input_slice(self.fit_args.get("x"), model)  # named as the model's inputs
                if x is not None:
                    if config.log_input_examples:
                        input_example = x
                    if config.log_model_signatures:
                        from mltrail.models.signature import infer_signature

                        stop = model.stop_training
                        output = _fit_info.to_numpy(model(x, training=False))
                        model.stop_training = stop
                        signature = infer_signature(x, output)
            except Exception as e:  # noqa: BLE001
                self.session.failures.record("the model signature", e)
        kwargs: dict[str, Any] = {"name": "model", "signature": signature, "input_example": input_example,
                                  "registered_model_name": config.registered_model_name}
        if config.flavor == "keras":
            from mltrail import keras as keras_flavor

            keras_flavor.log_model(model, save_exported_model=config.save_exported_model,
                                   save_model_kwargs=config.save_model_kwargs, **kwargs)
            return
        if config.keras_model_kwargs is not None:
            kwargs["keras_model_kwargs"] = config.keras_model_kwargs
        if config.saved_model_kwargs is not None:
            kwargs["saved_model_kwargs"] = config.saved_model_kwargs
        mtf.log_model(model, **kwargs)

    def upload_tensorboard(self) -> None:
        import os

        tb_dir, temp = self.tb_dir, self.tb_is_temp
        if tb_dir is None:
            return
        client, run_id = self.session.client, self.run_id

        def upload() -> None:
            try:
                if os.path.isdir(tb_dir) and os.listdir(tb_dir):
                    client.log_artifacts(run_id, tb_dir, "tensorboard_logs")
            finally:
                if temp:
                    shutil.rmtree(tb_dir, ignore_errors=True)

        self.session.writer.submit("TensorBoard logs", upload)

    def finish(self, status: str | None) -> None:
        """Store what is queued, end the run autolog started, and warn about failures."""
        from mltrail import fluent

        failures = self.session.failures
        self.session.writer.close()
        if self.managed:
            try:
                run = fluent.active_run()
                if run is not None and run.info.run_id == self.run_id:
                    fluent.end_run(status or "FINISHED")
                else:
                    self.session.client.set_terminated(self.run_id, status or "FINISHED")
            except Exception as e:  # noqa: BLE001 - end_run pops the run even when ending it fails
                failures.record("the run's end", e)
        failures.emit()


def _autologged_fit(config: AutologConfig, original: Any, model: Any, args: tuple, kwargs: dict) -> Any:
    from mltrail import fluent
    from mltrail.tensorflow import _distributed, _fit_info
    from mltrail.tensorflow._async_writer import FailureReport

    if not _distributed.should_log(config.silent):  # a non-chief process of a distributed job: no run, no calls
        note = _distributed.skip_note()
        if note is not None:
            _note(config, "autolog: %s", note)
        return original(model, *args, **kwargs)
    if config.exclusive and fluent.active_run() is not None:
        return original(model, *args, **kwargs)
    try:
        fit_args: dict[str, Any] | None = _fit_info.bind_fit_args(original, model, args, kwargs)
    except TypeError:
        fit_args = None  # arguments fit itself will reject: let it say why
    state = _Fit(config, model, fit_args)
    try:
        state.start()
    except Exception as e:  # noqa: BLE001 - no run to log to: train without logging
        failures = FailureReport(config.silent)
        failures.record("the run", e)
        failures.emit()
        return original(model, *args, **kwargs)
    try:
        if fit_args is not None:
            fit_args["callbacks"] = state.callbacks(fit_args.get("callbacks"))
        state.log_inputs()
    except Exception as e:  # noqa: BLE001
        state.session.failures.record("the fit's settings", e)
    status = None
    try:
        if fit_args is not None:
            call_args = {k: v for k, v in fit_args.items() if k != "self"}
            history = original(model, **call_args)
        else:
            history = original(model, *args, **kwargs)
    except BaseException as e:
        status = "KILLED" if isinstance(e, KeyboardInterrupt) else "FAILED"
        if state.checkpoint_callback is not None:
            try:
                state.checkpoint_callback.write_pending()  # training failed: keep the best model so far
            except Exception as ce:  # noqa: BLE001
                state.session.failures.record("checkpoints", ce)
        state.upload_tensorboard()
        state.finish(status)
        raise
    try:
        state.log_early_stopping(history)
    except Exception as e:  # noqa: BLE001
        state.session.failures.record("early stopping metrics", e)
    if config.log_models:
        try:
            state.log_model()
        except Exception as e:  # noqa: BLE001
            state.session.failures.record("the model", e)
    state.upload_tensorboard()
    state.finish(status)
    return history
