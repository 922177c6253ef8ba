"""The flavor-independent part of `log_model`: a LoggedModel created, filled, linked and finalized.

As in MLflow 3, the model's files live under the logged model's artifact location (not the run's);
the run, when there is one, gets the model as an output at `step`. The model is finalized READY
once its files are uploaded, FAILED if saving or uploading raises.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.models.mlmodel import Model, ModelInfo


def resolve_name(name: str | None, artifact_path: str | None) -> str:
    """The model's name: `name`, or the deprecated `artifact_path` (with a FutureWarning)."""
    if name is not None and artifact_path is not None:
        raise InvalidParameterValue(
            f"Both `name` ({name!r}) and the deprecated `artifact_path` ({artifact_path!r}) were given; "
            "pass only `name`.")
    if artifact_path is not None:
        warnings.warn("`artifact_path` is deprecated; use `name` instead.", FutureWarning, stacklevel=4)
        return str(artifact_path)
    return str(name) if name is not None else "model"


def log_model(save: Callable[..., None], *, name: str | None, artifact_path: str | None = None,
              registered_model_name: str | None = None, await_registration_for: int | None = None,
              metadata: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
              tags: dict[str, Any] | None = None, model_type: str | None = None, step: int = 0,
              model_id: str | None = None, **save_kwargs: Any) -> ModelInfo:
    """Save a model with `save(path=..., mlflow_model=..., **save_kwargs)` into a new LoggedModel.

    Args:
        save: the flavor's `save_model`.
        name: the logged model's name (also what `runs:/<run_id>/<name>` resolves).
        model_id: log into this existing (PENDING) logged model instead of creating one.

    Returns:
        The ModelInfo; its `model_uri` is `models:/<model_id>`.
    """
    from mltrail import fluent
    from mltrail._registry_fluent import register_model
    from mltrail.client import Client
    from mltrail.entities import LoggedModelOutput, LoggedModelStatus

    model_name = resolve_name(name, artifact_path)
    client = Client()
    run = fluent.active_run()
    run_id = run.info.run_id if run is not None else None
    if model_id is not None:
        logged = client.get_logged_model(model_id)
    else:
        experiment_id = run.info.experiment_id if run is not None else fluent.get_experiment_id()
        all_params = dict(client.get_run(run_id).data.params) if run_id else {}
        all_params.update({k: str(v) for k, v in (params or {}).items()})
        logged = client.create_logged_model(experiment_id, name=model_name, source_run_id=run_id, tags=tags,
                                            params=all_params or None, model_type=model_type)
    try:
        if run_id is not None:
            output = LoggedModelOutput(logged.model_id, int(step or 0))
            client.log_outputs(run_id, [output])
            if run is not None and output not in run.outputs.model_outputs:
                run.outputs.model_outputs.append(output)
        mlmodel = Model(artifact_path=logged.artifact_location, run_id=run_id, model_uuid=logged.model_id,
                        model_id=logged.model_id, metadata=metadata)
        with tempfile.TemporaryDirectory(prefix="mltrail-log-model-") as tmp:
            local = os.path.join(tmp, "model")
            save(path=local, mlflow_model=mlmodel, **save_kwargs)
            client.log_model_artifacts(logged.model_id, local)
        logged = client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    except BaseException:
        try:
            client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        except Exception:  # the original error matters more than this one
            pass
        raise
    info = mlmodel.get_model_info(f"models:/{logged.model_id}", logged_model=logged)
    if registered_model_name is not None:
        kwargs: dict[str, Any] = {}
        if await_registration_for is not None:
            kwargs["await_registration_for"] = await_registration_for
        version = register_model(info.model_uri, registered_model_name, **kwargs)
        info.registered_model_version = int(version.version) if version.version else None
    return info
