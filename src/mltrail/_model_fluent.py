"""The module-level logged-model API (`mltrail.initialize_logged_model`, `set_active_model`, ...).

Two pieces of per-thread state, as in MLflow: the last logged model this thread created, and the
active model (set by `set_active_model`, else `MLFLOW_ACTIVE_MODEL_ID` from the environment).
"""

from __future__ import annotations

import threading
from typing import Any

from mltrail import fluent
from mltrail.entities import LoggedModel, LoggedModelStatus
from mltrail.environment_variables import MLFLOW_ACTIVE_MODEL_ID
from mltrail.errors import InvalidParameterValue

_local = threading.local()

# MLflow's tag marking a logged model whose files live outside the tracking store
MODEL_IS_EXTERNAL_TAG = "mlflow.model.isExternal"


def set_last_logged_model_id(model_id: str | None) -> None:
    """Remember `model_id` as this thread's last logged model (what `last_logged_model()` returns)."""
    _local.last_model_id = model_id


def initialize_logged_model(name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None, experiment_id: str | None = None) -> LoggedModel:
    """Create a PENDING logged model, linked to the active run and its experiment unless told otherwise."""
    run = fluent.active_run()
    if source_run_id is None and run is not None:
        source_run_id = run.info.run_id
    if experiment_id is None:
        if run is not None:
            experiment_id = run.info.experiment_id
        elif source_run_id is not None:
            experiment_id = fluent.get_run(source_run_id).info.experiment_id
        else:
            experiment_id = fluent.get_experiment_id()
    from mltrail._context import system_tags

    all_tags: dict[str, Any] = {k: v for k, v in system_tags().items() if k != "mlflow.runName"}
    all_tags.update(tags or {})
    model = fluent.tracking_client().create_logged_model(
        experiment_id, name=name, source_run_id=source_run_id, tags=all_tags, params=params,
        model_type=model_type)
    set_last_logged_model_id(model.model_id)
    return model


def create_external_model(name: str | None = None, source_run_id: str | None = None,
                          tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                          model_type: str | None = None, experiment_id: str | None = None) -> LoggedModel:
    """A logged model whose files live elsewhere: tagged `mlflow.model.isExternal` and READY at once."""
    model = initialize_logged_model(name, source_run_id, {**(tags or {}), MODEL_IS_EXTERNAL_TAG: "true"},
                                    params, model_type, experiment_id)
    return finalize_logged_model(model.model_id, LoggedModelStatus.READY)


def finalize_logged_model(model_id: str, status: str) -> LoggedModel:
    """Mark a logged model READY or FAILED (MLflow's `LoggedModelStatus` or its name)."""
    name = str(getattr(status, "value", status)).upper().replace("LOGGED_MODEL_", "")
    name = {"UPLOAD_FAILED": "FAILED"}.get(name, name)
    if name not in (LoggedModelStatus.READY, LoggedModelStatus.FAILED):
        raise InvalidParameterValue(
            f"Invalid status {status!r} to finalize logged model {model_id}: expected 'READY' or 'FAILED'.")
    return fluent.tracking_client().finalize_logged_model(model_id, name)


def set_logged_model_tags(model_id: str, tags: dict[str, Any]) -> None:
    fluent.tracking_client().set_logged_model_tags(model_id, tags)


def delete_logged_model_tag(model_id: str, key: str) -> None:
    fluent.tracking_client().delete_logged_model_tag(model_id, key)


def log_model_params(params: dict[str, str], model_id: str | None = None) -> None:
    """Log params on a logged model (the active model when `model_id` is not given)."""
    model_id = model_id or get_active_model_id()
    if model_id is None:
        raise InvalidParameterValue("log_model_params needs a model_id: none was given and no active model is set "
                                    "(mltrail.set_active_model).")
    fluent.tracking_client().log_model_params(model_id, params)


def last_logged_model() -> LoggedModel | None:
    """The logged model most recently created by this thread, fetched fresh; None before the first one."""
    model_id = getattr(_local, "last_model_id", None)
    return fluent.get_logged_model(model_id) if model_id else None


# ---------------------------------------------------------------------- the active model
class ActiveModel(LoggedModel):
    """The model `set_active_model` made active; `with` restores the previously active model on exit."""

    def __init__(self, logged_model: LoggedModel, set_by_user: bool = True) -> None:
        super().__init__(**{k: getattr(logged_model, k) for k in LoggedModel.__dataclass_fields__})
        self.last_active_model_id: str | None = getattr(_local, "active_model_id", None)
        _local.active_model_id = self.model_id
        _local.active_model_set_by_user = set_by_user

    def __enter__(self) -> ActiveModel:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _local.active_model_id = self.last_active_model_id


def set_active_model(*, name: str | None = None, model_id: str | None = None) -> ActiveModel:
    """Make a logged model active, by id or by name (the newest of that name; created when there is none)."""
    if name is None and model_id is None:
        raise InvalidParameterValue("Either name or model_id must be provided")
    if model_id is not None:
        model = fluent.get_logged_model(model_id)
        if name is not None and model.name != name:
            raise InvalidParameterValue(
                f"LoggedModel with model_id {model_id!r} has name {model.name!r}, which does not match the "
                f"provided name {name!r}.")
    else:
        quoted = str(name).replace("'", "\\'")
        found = fluent.search_logged_models(filter_string=f"name = '{quoted}'", max_results=2,
                                            order_by=[{"field_name": "creation_timestamp", "ascending": False}],
                                            output_format="list")
        if len(found) > 1:
            import logging  # only here: `import mltrail` stays light

            logging.getLogger(__name__).warning(
                "Multiple LoggedModels found with name %r, setting the latest one as active model.", name)
        model = found[0] if found else create_external_model(name=name)
    return ActiveModel(model, set_by_user=True)


def get_active_model_id() -> str | None:
    """This thread's active model id: `set_active_model`'s, else `MLFLOW_ACTIVE_MODEL_ID`, else None."""
    model_id = getattr(_local, "active_model_id", None)
    return model_id or MLFLOW_ACTIVE_MODEL_ID.get()


def clear_active_model() -> None:
    """Forget the active model (the environment's MLFLOW_ACTIVE_MODEL_ID too, as MLflow does)."""
    _local.active_model_id = None
    MLFLOW_ACTIVE_MODEL_ID.unset()
