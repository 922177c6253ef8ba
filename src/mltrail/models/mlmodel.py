"""The MLmodel file (YAML) that describes a saved model, and `ModelInfo`, what `log_model` returns.

Keys as MLflow writes them: `artifact_path`, `flavors`, `model_id`, `model_size_bytes`,
`model_uuid`, `run_id`, `saved_input_example_info`, `signature` (JSON strings),
`utc_time_created`, `metadata`; the writer's version goes under `mltrail_version`. Unknown keys
(an MLflow-written file's `mlflow_version`, say) are kept as attributes and written back.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models.signature import ModelSignature
from mltrail.types import ParamSchema, Schema

MLMODEL_FILE_NAME = "MLmodel"

__all__ = ["MLMODEL_FILE_NAME", "Model", "ModelInfo", "get_model_info"]


def _now_utc() -> str:
    # MLflow writes a naive UTC timestamp: '2024-01-12 05:17:31.634689'
    return str(datetime.now(UTC).replace(tzinfo=None))


def _mltrail_version() -> str:
    from mltrail.version import __version__

    return __version__


class ModelInfo:
    """The metadata of a logged model, with MLflow's attribute names."""

    def __init__(self, artifact_path: str | None, flavors: dict[str, Any], model_uri: str, model_uuid: str | None,
                 run_id: str | None, saved_input_example_info: dict[str, Any] | None,
                 signature: ModelSignature | None, utc_time_created: str, mltrail_version: str | None,
                 metadata: dict[str, Any] | None = None, registered_model_version: int | None = None,
                 model_id: str | None = None, logged_model: Any = None,
                 model_size_bytes: int | None = None, env_vars: list[str] | None = None,
                 prompts: list[str] | None = None) -> None:
        self.artifact_path = artifact_path
        self.flavors = flavors
        self.model_uri = model_uri
        self.model_uuid = model_uuid
        self.run_id = run_id
        self.saved_input_example_info = saved_input_example_info
        self.signature = signature
        self.utc_time_created = utc_time_created
        self.mltrail_version = mltrail_version
        self.metadata = metadata
        self.registered_model_version = registered_model_version
        self.model_id = model_id
        self.model_size_bytes = model_size_bytes
        self.env_vars = env_vars
        self.prompts = prompts
        self._logged_model = logged_model

    @property
    def mlflow_version(self) -> str | None:
        """MLflow's name for the version of the library that wrote the model."""
        return self.mltrail_version

    @property
    def signature_dict(self) -> dict[str, Any] | None:
        return self.signature.to_dict() if self.signature is not None else None

    @property
    def name(self) -> str | None:
        return self._logged_model.name if self._logged_model is not None else None

    @property
    def params(self) -> dict[str, str] | None:
        return self._logged_model.params if self._logged_model is not None else None

    @property
    def tags(self) -> dict[str, str] | None:
        return self._logged_model.tags if self._logged_model is not None else None

    @property
    def metrics(self) -> list[Any] | None:
        return self._logged_model.metrics if self._logged_model is not None else None

    @property
    def creation_timestamp(self) -> int | None:
        return self._logged_model.creation_timestamp if self._logged_model is not None else None

    def __repr__(self) -> str:
        return f"ModelInfo(model_uri={self.model_uri!r}, model_id={self.model_id!r}, run_id={self.run_id!r})"


class Model:
    """The content of an MLmodel file: flavors, signature, input example info and ids."""

    def __init__(self, artifact_path: str | None = None, run_id: str | None = None,
                 utc_time_created: str | None = None, flavors: dict[str, Any] | None = None,
                 signature: ModelSignature | None = None, saved_input_example_info: dict[str, Any] | None = None,
                 model_uuid: str | None = None, mltrail_version: str | None = None,
                 metadata: dict[str, Any] | None = None, model_size_bytes: int | None = None,
                 model_id: str | None = None, **kwargs: Any) -> None:
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = str(utc_time_created) if utc_time_created is not None else _now_utc()
        self.flavors: dict[str, Any] = flavors if flavors is not None else {}
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid if model_uuid is not None else uuid.uuid4().hex
        self.mltrail_version: str | None = mltrail_version if mltrail_version is not None else _mltrail_version()
        self.metadata = metadata
        self.model_size_bytes = model_size_bytes
        self.model_id = model_id
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        return f"Model(model_id={self.model_id!r}, flavors={sorted(self.flavors)}, run_id={self.run_id!r})"

    def get_input_schema(self) -> Schema | None:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        return self.signature.params if self.signature is not None else None

    def add_flavor(self, name: str, **params: Any) -> Model:
        """Record a flavor's configuration (what its loader needs)."""
        self.flavors[name] = params
        return self

    def load_input_example(self, path: str | None = None) -> Any:
        """The saved input example, read from the model directory `path`; None when there is none."""
        from mltrail.models.input_example import load_input_example

        if self.saved_input_example_info is None:
            return None
        if path is None:
            raise InvalidParameterValue("load_input_example needs the model directory (path=...).")
        return load_input_example(path, self.saved_input_example_info)

    def load_input_example_params(self, path: str) -> dict[str, Any] | None:
        """The inference params saved with a `(data, params)` input example; None when there are none."""
        from mltrail.models.input_example import load_input_example_params

        if self.saved_input_example_info is None:
            return None
        return load_input_example_params(path, self.saved_input_example_info)

    def get_model_info(self, model_uri: str | None = None, logged_model: Any = None) -> ModelInfo:
        """The ModelInfo of this model; `model_uri` defaults to MLflow's (`models:/<model_id>`, else `runs:/`)."""
        uri = model_uri or (f"models:/{self.model_id}" if self.model_id
                            else f"runs:/{self.run_id}/{self.artifact_path}" if self.run_id
                            else (self.artifact_path or ""))
        return ModelInfo(
            artifact_path=self.artifact_path, flavors=self.flavors, model_uri=uri, model_uuid=self.model_uuid,
            run_id=self.run_id, saved_input_example_info=self.saved_input_example_info, signature=self.signature,
            utc_time_created=self.utc_time_created, mltrail_version=self.mltrail_version, metadata=self.metadata,
            model_id=self.model_id, logged_model=logged_model, model_size_bytes=self.model_size_bytes,
            env_vars=self.__dict__.get("env_vars"), prompts=self.__dict__.get("prompts"))

    def to_dict(self) -> dict[str, Any]:
        """The MLmodel content as plain data (None-valued optional keys left out, as MLflow does)."""
        out: dict[str, Any] = {}
        for key, value in sorted(self.__dict__.items()):
            if key.startswith("_"):
                continue
            if key == "signature":
                if value is not None:
                    out[key] = value.to_dict()
                continue
            if value is None and key in ("signature", "saved_input_example_info", "metadata",
                                         "model_size_bytes", "model_id", "mltrail_version"):
                continue
            out[key] = value
        return out

    def to_yaml(self, stream: Any = None) -> str | None:
        import yaml

        return yaml.safe_dump(self.to_dict(), stream=stream, default_flow_style=False, sort_keys=True)

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict())

    def save(self, path: str) -> None:
        """Write this MLmodel to `path` (the file itself, usually `<model dir>/MLmodel`)."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            self.to_yaml(fh)
        os.replace(tmp, path)

    @classmethod
    def from_dict(cls, model_dict: dict[str, Any]) -> Model:
        if not isinstance(model_dict, dict):
            raise InvalidParameterValue(
                f"Invalid MLmodel content: expected a mapping, received {type(model_dict).__name__}.")
        d = dict(model_dict)
        sig = d.pop("signature", None)
        signature = ModelSignature.from_dict(sig) if sig else None
        if "flavors" in d and not isinstance(d["flavors"], dict):
            raise InvalidParameterValue(f"Invalid MLmodel: 'flavors' must be a mapping, received {d['flavors']!r}.")
        model = cls(signature=signature, **d)
        if d.get("mltrail_version") is None:
            model.mltrail_version = None  # written by another tool (MLflow): don't claim it was us
        return model

    @classmethod
    def log(cls, artifact_path: str | None = None, flavor: Any = None, registered_model_name: str | None = None,
            await_registration_for: int | None = None, metadata: dict[str, Any] | None = None,
            run_id: str | None = None, resources: Any = None, auth_policy: Any = None,
            prompts: list[str] | None = None, name: str | None = None, model_type: str | None = None,
            params: dict[str, Any] | None = None, tags: dict[str, Any] | None = None, step: int = 0,
            model_id: str | None = None, **kwargs: Any) -> ModelInfo:
        """Log a model with `flavor.save_model(path=..., mlflow_model=..., **kwargs)` as a new LoggedModel.

        Args:
            flavor: a module (or object) with `save_model`, e.g. `mltrail.tensorflow`.
            name: the logged model's name; `artifact_path` is its deprecated spelling.
            run_id: the run the model is an output of (default: the active run, if any).
            resources, auth_policy, prompts: recorded in the MLmodel file under MLflow's keys.
            kwargs: passed on to `flavor.save_model`.
        """
        save = getattr(flavor, "save_model", None)
        if not callable(save):
            raise InvalidParameterValue(
                f"Model.log needs `flavor`, a module with a `save_model` function (such as mltrail.tensorflow); "
                f"received {flavor!r}.")
        extra = {k: v for k, v in (("resources", resources), ("auth_policy", auth_policy), ("prompts", prompts))
                 if v is not None}
        return log_with_saver(save, name=name, artifact_path=artifact_path,
                              registered_model_name=registered_model_name,
                              await_registration_for=await_registration_for, metadata=metadata, params=params,
                              tags=tags, model_type=model_type, step=step, model_id=model_id, run_id=run_id,
                              mlmodel_fields=extra, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read an MLmodel file, the directory holding one, or any model URI (downloaded first)."""
        import yaml

        path = os.fspath(path)
        if not os.path.exists(path):
            from mltrail.tracking_uri import scheme_of
            from mltrail.uris import resolve_model_uri

            if scheme_of(path) == "":
                raise ResourceDoesNotExist(f'Could not find an "{MLMODEL_FILE_NAME}" configuration file at "{path}"')

            path = resolve_model_uri(path)
        if os.path.isdir(path):
            path = os.path.join(path, MLMODEL_FILE_NAME)
        if not os.path.isfile(path):
            raise ResourceDoesNotExist(
                f"No MLmodel file at {path!r}: expected a model directory holding an 'MLmodel' file.")
        with open(path, encoding="utf-8") as fh:
            try:
                content = yaml.safe_load(fh)
            except yaml.YAMLError as e:
                raise InvalidParameterValue(f"The MLmodel file {path!r} is not valid YAML: {e}") from None
        return cls.from_dict(content or {})


def get_model_info(model_uri: str) -> ModelInfo:
    """The ModelInfo of the model at `model_uri` (any URI `load_model` accepts), its logged model's fields filled.

    As in MLflow, `model_uri` of the result is `models:/<model_id>` when the model has an id. A
    `models:/<name>/<version>` URI also fills `registered_model_version`.
    """
    from mltrail.client import Client

    model = Model.load(model_uri)
    logged = None
    if model.model_id:
        try:
            logged = Client().get_logged_model(model.model_id)
        except ResourceDoesNotExist:  # a model copied out of the store it was logged to
            logged = None
    info = model.get_model_info(logged_model=logged)
    from mltrail.uri_forms import is_models_uri, parse_models_uri

    if is_models_uri(str(model_uri)):  # Model.load has read (and checked) it already
        parsed = parse_models_uri(str(model_uri))
        if parsed.kind == "registered_version":
            info.registered_model_version = int(str(parsed.version))
    return info


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


def log_with_saver(save: Callable[..., None], *, name: str | None, artifact_path: str | None = None,
                   registered_model_name: str | None = None, await_registration_for: int | None = None,
                   metadata: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                   tags: dict[str, Any] | None = None, model_type: str | None = None, step: int = 0,
                   model_id: str | None = None, run_id: str | None = None,
                   mlmodel_fields: dict[str, Any] | None = None, **save_kwargs: Any) -> ModelInfo:
    """Save a model with `save(path=..., mlflow_model=..., **save_kwargs)` into a new LoggedModel.

    As in MLflow 3, the model's files live under the logged model's artifact location (not the run's);
    the run (`run_id`, else the active run, if any) gets the model as an output at `step`. The model
    is finalized READY once its files are uploaded, FAILED if saving or uploading raises.

    Args:
        save: the flavor's `save_model`.
        name: the logged model's name (also what `runs:/<run_id>/<name>` resolves).
        model_id: log into this existing (PENDING) logged model instead of creating one.
        mlmodel_fields: extra top-level MLmodel keys (MLflow's `resources`, `auth_policy`, `prompts`).

    Returns:
        The ModelInfo; its `model_uri` is `models:/<model_id>`.
    """
    from mltrail import fluent
    from mltrail._model_fluent import set_last_logged_model_id
    from mltrail._registry_fluent import register_model
    from mltrail.client import Client
    from mltrail.entities import LoggedModelOutput, LoggedModelStatus

    model_name = resolve_name(name, artifact_path)
    client = Client()
    active = fluent.active_run()
    run = client.get_run(run_id) if run_id is not None and (active is None or active.info.run_id != run_id) \
        else active
    run_id = run.info.run_id if run is not None else None
    if model_id is not None:
        logged = client.get_logged_model(model_id)
    else:
        experiment_id = run.info.experiment_id if run is not None else fluent.get_experiment_id()
        all_params = dict(client.get_run(run_id).data.params) if run_id else {}
        all_params.update({k: str(v) for k, v in (params or {}).items()})
        logged = client.create_logged_model(experiment_id, name=model_name, source_run_id=run_id, tags=tags,
                                            params=all_params or None, model_type=model_type)
        set_last_logged_model_id(logged.model_id)  # what `mltrail.last_logged_model()` returns, as MLflow
    try:
        if run is not None and run_id is not None:
            output = LoggedModelOutput(logged.model_id, int(step or 0))
            client.log_outputs(run_id, [output])
            if output not in run.outputs.model_outputs:
                run.outputs.model_outputs.append(output)  # the active run object sees it at once
        mlmodel = Model(artifact_path=logged.artifact_location, run_id=run_id, model_uuid=logged.model_id,
                        model_id=logged.model_id, metadata=metadata, **(mlmodel_fields or {}))
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
