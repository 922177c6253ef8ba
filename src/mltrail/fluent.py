"""The module-level API (`mltrail.start_run`, `mltrail.log_metric`, ...): a `Client` plus an
active-run stack per thread and the current experiment. No logic beyond choosing the run.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Sequence
from typing import Any

from mltrail import system_metrics
from mltrail.client import Client, now_ms
from mltrail.entities import (
    Experiment,
    LoggedModel,
    LoggedModelOutput,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import InvalidParameterValue, MltrailException, ResourceDoesNotExist
from mltrail.tracking_uri import get_tracking_uri

_local = threading.local()
_active_experiment_id: str | None = None
_last_active_run_id: str | None = None
_clients: dict[str, Client] = {}
_state_lock = threading.Lock()


def _stack() -> list[ActiveRun]:
    """This thread's active runs, innermost last."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _client() -> Client:
    uri = get_tracking_uri()
    client = _clients.get(uri)
    if client is None:
        client = _clients[uri] = Client(uri)
    return client


def tracking_client() -> Client:
    """The Client the module-level API uses for the current tracking URI (one per URI, shared)."""
    return _client()


class ActiveRun(Run):
    """The run `start_run` returns; as a context manager it ends the run (FAILED on an exception)."""

    def __init__(self, run: Run) -> None:
        super().__init__(run.info, run.data, run.inputs, run.outputs)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        # end this run (and any nested run left open inside it), not whatever is on top
        stack = _stack()
        if any(r.info.run_id == self.info.run_id for r in stack):
            while stack and stack[-1].info.run_id != self.info.run_id:
                end_run(status)
            end_run(status)


# ---------------------------------------------------------------------- tracking URI and experiments
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    from mltrail import tracking_uri

    tracking_uri.set_tracking_uri(uri)


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment current (creating it by name if needed) and return it."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterValue("Exactly one of `experiment_name` and `experiment_id` must be given.")
    client = _client()
    exp: Experiment | None
    if experiment_id is not None:
        exp = client.get_experiment(str(experiment_id))
    else:
        exp = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
        if exp is None:
            try:
                client.create_experiment(experiment_name)  # type: ignore[arg-type]
            except MltrailException as e:  # another process created it first
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            exp = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
            if exp is None:
                raise ResourceDoesNotExist(f"Experiment {experiment_name!r} could not be created.")
    if exp.lifecycle_stage != "active":
        raise MltrailException(
            f"Cannot set a deleted experiment {exp.name!r} as the active experiment. You can restore it with "
            "`mltrail experiments restore` or MlflowClient().restore_experiment().", "INVALID_PARAMETER_VALUE")
    with _state_lock:
        _active_experiment_id = exp.experiment_id
    return exp


def get_experiment_id() -> str:
    if _active_experiment_id is not None:
        return _active_experiment_id
    env_id = os.environ.get("MLFLOW_EXPERIMENT_ID") or os.environ.get("MLTRAIL_EXPERIMENT_ID")
    if env_id:
        return env_id
    env_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLTRAIL_EXPERIMENT_NAME")
    if env_name:
        return set_experiment(env_name).experiment_id
    return "0"


def create_experiment(name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None) -> str:
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


def delete_experiment(experiment_id: str) -> None:
    _client().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    """Bring a deleted experiment (and its runs) back to active."""
    _client().restore_experiment(experiment_id)


def search_experiments(view_type: int | str = ViewType.ACTIVE_ONLY, max_results: int | None = None,
                       filter_string: str | None = None, order_by: Sequence[str] | None = None) -> list[Experiment]:
    client, token = _client(), None
    out: list[Experiment] = []
    while True:
        page = client.search_experiments(view_type, 1000, filter_string, order_by, token)
        out.extend(page)
        token = page.token
        if not token or (max_results is not None and len(out) >= max_results):
            return out[:max_results] if max_results is not None else out


def set_experiment_tag(key: str, value: Any) -> None:
    _client().set_experiment_tag(get_experiment_id(), key, value)


def set_experiment_tags(tags: dict[str, Any]) -> None:
    for k, val in tags.items():
        set_experiment_tag(k, val)


def delete_experiment_tag(key: str) -> None:
    """Delete a tag from the current experiment."""
    _client().delete_experiment_tag(get_experiment_id(), key)


# ---------------------------------------------------------------------- runs
def start_run(run_id: str | None = None, experiment_id: str | None = None, run_name: str | None = None,
              nested: bool = False, parent_run_id: str | None = None, tags: dict[str, Any] | None = None,
              description: str | None = None, log_system_metrics: bool | None = None) -> ActiveRun:
    """Start a new run, or resume `run_id`, and make it this thread's active run.

    Args:
        nested: start the run as a child of the active run (tag `mlflow.parentRunId`).
        parent_run_id: the parent to nest under explicitly (must match the active run if there is one).
    """
    global _last_active_run_id
    stack = _stack()
    client = _client()
    run_id = run_id or os.environ.get("MLFLOW_RUN_ID") or None
    if stack and not nested and run_id != stack[-1].info.run_id:
        raise MltrailException(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a nested run, call start_run "
            "with nested=True; to start a new run, first end the current one with mltrail.end_run().",
            "INVALID_STATE")
    if parent_run_id is not None and stack and stack[-1].info.run_id != parent_run_id:
        raise InvalidParameterValue(
            f"Current run with UUID {stack[-1].info.run_id} does not match the specified parent_run_id "
            f"{parent_run_id}. To start a new nested run under the parent run with UUID {parent_run_id}, first end "
            "the current run with mltrail.end_run().")
    parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
    if run_id:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active":
            raise MltrailException(f"Cannot start run with ID {run_id} because it is in the deleted state.",
                                   "INVALID_STATE")
        if experiment_id is not None and str(experiment_id) != run.info.experiment_id:
            raise InvalidParameterValue(
                f"The run {run_id} belongs to experiment {run.info.experiment_id}, not {experiment_id}.")
        updates = {k: str(val) for k, val in (tags or {}).items()}
        if description:
            updates["mlflow.note.content"] = description
        if updates:
            client.log_batch(run_id, tags=[RunTag(k, val) for k, val in updates.items()])
        client.update_run(run_id, RunStatus.RUNNING, run_name)
        run = client.get_run(run_id)
    else:
        exp_id = str(experiment_id) if experiment_id is not None else get_experiment_id()
        all_tags: dict[str, Any] = {}
        from mltrail._context import system_tags

        all_tags.update(system_tags())
        all_tags.update(tags or {})
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        if description:
            all_tags["mlflow.note.content"] = description
        run = client.create_run(exp_id, tags=all_tags, run_name=run_name)
    active = ActiveRun(run)
    stack.append(active)
    _last_active_run_id = active.info.run_id
    # exit hooks run last-registered first: ours must end the runs before a store's hook (registered when
    # the store was first used) flushes what remains, so the run's end is among what it sends
    atexit.unregister(_end_runs_at_exit)
    atexit.register(_end_runs_at_exit)
    system_metrics.start_monitoring(active.info.run_id, client.tracking_uri, log_system_metrics,
                                    resume=bool(run_id))
    return active


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End this thread's active run (waiting for any queued log calls first).

    `status` is a status name ("FINISHED", "FAILED", "KILLED"); MLflow's numbers are accepted too.
    """
    global _last_active_run_id
    stack = _stack()
    if not stack:
        return
    run = stack[-1]
    try:
        system_metrics.stop_monitoring(run.info.run_id)  # its last sample lands before the run ends
        _client().set_terminated(run.info.run_id, status)
    finally:
        stack.pop()
        _last_active_run_id = run.info.run_id


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the run most recently ended in this process (fetched fresh)."""
    run = active_run()
    run_id = run.info.run_id if run is not None else _last_active_run_id
    return get_run(run_id) if run_id else None


def _run_id() -> str:
    run = active_run()
    if run is None:
        run = start_run()
    return run.info.run_id


def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    return _client().get_parent_run(run_id)


def delete_run(run_id: str) -> None:
    _client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    """Bring a deleted run back to active."""
    _client().restore_run(run_id)


# ---------------------------------------------------------------------- logging
def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    return _client().log_param(_run_id(), key, value)


def log_params(params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None) -> None:
    from mltrail._validation import param_value_to_str

    _client().log_batch(run_id or _run_id(), params=[Param(k, param_value_to_str(val)) for k, val in params.items()])


def log_metric(key: str, value: float, step: int | None = None, synchronous: bool | None = None,
               timestamp: int | None = None, run_id: str | None = None, model_id: str | None = None,
               **_ignored: Any) -> None:
    _client().log_metric(run_id or _run_id(), key, value, timestamp, step, model_id=model_id)


def log_metrics(metrics: dict[str, float], step: int | None = None, synchronous: bool | None = None,
                run_id: str | None = None, timestamp: int | None = None, model_id: str | None = None,
                **_ignored: Any) -> None:
    ts = timestamp if timestamp is not None else now_ms()
    _client().log_batch(run_id or _run_id(),
                        metrics=[Metric(k, val, ts, step or 0, model_id) for k, val in metrics.items()])


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    _client().set_tag(_run_id(), key, value)


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> None:
    _client().log_batch(_run_id(), tags=[RunTag(k, str(val)) for k, val in tags.items()])


def delete_tag(key: str) -> None:
    _client().delete_tag(_run_id(), key)


def log_artifact(local_path: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    _client().log_artifact(run_id or _run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    _client().log_artifacts(run_id or _run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_text(run_id or _run_id(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_dict(run_id or _run_id(), dictionary, artifact_file)


def log_image(image: Any, artifact_file: str | None = None, key: str | None = None, step: int | None = None,
              timestamp: int | None = None, synchronous: bool | None = False, run_id: str | None = None) -> None:
    _client().log_image(run_id or _run_id(), image, artifact_file, key=key, step=step, timestamp=timestamp)


def log_table(data: Any, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_table(run_id or _run_id(), data, artifact_file)


def load_table(artifact_file: str, run_ids: Sequence[str] | None = None,
               extra_columns: Sequence[str] | None = None) -> Any:
    """The table `artifact_file` from the current experiment's runs (or `run_ids`), as one DataFrame."""
    return _client().load_table(get_experiment_id(), artifact_file, run_ids, extra_columns)


def log_figure(figure: Any, artifact_file: str, *, save_kwargs: dict | None = None,
               run_id: str | None = None) -> None:
    _client().log_figure(run_id or _run_id(), figure, artifact_file, save_kwargs=save_kwargs)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    from mltrail._paths import safe_relpath

    base = _client()._run_artifact_uri(_run_id())
    rel = safe_relpath(artifact_path)
    return f"{base.rstrip('/')}/{rel}" if rel else base


def log_input(dataset: Any, context: str | None = None, tags: dict[str, str] | None = None,
              model: Any = None) -> None:
    """Record that the active run used `dataset` (from `mltrail.data`), e.g. context="training"."""
    from mltrail.entities import DatasetInput, InputTag

    input_tags = [InputTag(k, str(val)) for k, val in (tags or {}).items()]
    if context:
        input_tags.append(InputTag("mlflow.data.context", context))
    _client().log_inputs(_run_id(), [DatasetInput(dataset._to_entity(), input_tags)])


def log_inputs(datasets: Sequence[Any] | None = None, contexts: Sequence[str | None] | None = None,
               tags_list: Sequence[dict[str, str] | None] | None = None, models: Any = None) -> None:
    for i, ds in enumerate(datasets or []):
        log_input(ds, (contexts or [None] * (i + 1))[i], (tags_list or [None] * (i + 1))[i])


def flush(timeout: float | None = None) -> None:
    """Wait until every log call made so far is stored; raise the first error, if any.

    `timeout` (seconds) bounds the wait for a remote server; None means MLTRAIL_FLUSH_TIMEOUT.
    """
    _client().flush(timeout)


def flush_async_logging() -> None:
    """MLflow's name for `flush()`: wait until every queued metric, param and tag is stored."""
    _client().flush()


def flush_artifact_async_logging() -> None:
    """Wait for queued artifact uploads. mltrail uploads artifacts before `log_artifact` returns, so
    nothing is ever queued; queued metric, param and tag writes are waited for, as a caller expects."""
    _client().flush()


def log_stream(stream: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Log a binary file-like object (e.g. `io.BytesIO`) as the artifact `artifact_file`."""
    _client().log_stream(run_id or _run_id(), stream, artifact_file)


def log_outputs(models: Sequence[LoggedModelOutput] | None = None) -> None:
    """Record logged models (`LoggedModelOutput(model_id, step)`) as outputs of the active run."""
    _client().log_outputs(_run_id(), list(models or []))


# ---------------------------------------------------------------------- search
def search_runs(experiment_ids: Sequence[str] | None = None, filter_string: str = "",
                run_view_type: int | str = ViewType.ACTIVE_ONLY, max_results: int = 100000,
                order_by: Sequence[str] | None = None, output_format: str = "pandas",
                search_all_experiments: bool = False, experiment_names: Sequence[str] | None = None) -> Any:
    """Runs matching a filter, as a pandas DataFrame (MLflow's columns) or a list of Run."""
    client = _client()
    if output_format not in ("pandas", "list"):
        raise InvalidParameterValue(f"Unsupported output_format {output_format!r}: expected 'pandas' or 'list'.")
    if experiment_names:
        ids = []
        for name in experiment_names:
            exp = client.get_experiment_by_name(name)
            if exp is not None:
                ids.append(exp.experiment_id)
        experiment_ids = ids
    if not experiment_ids:
        if search_all_experiments:
            experiment_ids = [e.experiment_id for e in search_experiments(ViewType.ALL)]
        elif not experiment_names:
            experiment_ids = [get_experiment_id()]
    runs: list[Run] = []
    token = None
    while experiment_ids and len(runs) < max_results:
        page = client.search_runs(list(experiment_ids), filter_string, run_view_type,
                                  min(50000, max_results - len(runs)), order_by, token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    if output_format == "list":
        return runs
    from mltrail._dataframe import runs_to_dataframe

    return runs_to_dataframe(runs)


def search_logged_models(experiment_ids: Sequence[str] | None = None, filter_string: str | None = None,
                         max_results: int | None = None, order_by: Sequence[Any] | None = None,
                         output_format: str = "pandas") -> Any:
    client = _client()
    ids = list(experiment_ids) if experiment_ids else [get_experiment_id()]
    models: list[LoggedModel] = []
    token = None
    while True:
        page = client.search_logged_models(ids, filter_string, 1000, order_by, token)
        models.extend(page)
        token = page.token
        if not token or (max_results is not None and len(models) >= max_results):
            break
    if max_results is not None:
        models = models[:max_results]
    if output_format == "list":
        return models
    if output_format != "pandas":
        raise InvalidParameterValue(f"Unsupported output_format {output_format!r}: expected 'pandas' or 'list'.")
    import pandas as pd

    return pd.DataFrame([{
        "model_id": m.model_id, "name": m.name, "experiment_id": m.experiment_id, "status": m.status,
        "source_run_id": m.source_run_id, "artifact_location": m.artifact_location,
        "creation_timestamp": m.creation_timestamp, "model_type": m.model_type, "tags": m.tags,
        "params": m.params} for m in models])


def get_logged_model(model_id: str) -> LoggedModel:
    return _client().get_logged_model(model_id)


def _end_runs_at_exit() -> None:
    """At interpreter exit: end the main thread's open runs (FINISHED) and flush queued logging."""
    try:
        while _stack():
            end_run()
    except Exception as e:  # noqa: BLE001 - exit must not raise; say what was lost instead
        import sys

        print(f"mltrail: could not end the active run at exit: {e}", file=sys.stderr)


atexit.register(_end_runs_at_exit)
