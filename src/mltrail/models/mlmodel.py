"""The MLmodel file (YAML) that describes a saved model, and `ModelInfo`, what `log_model` returns.

Keys as MLflow writes them: `artifact_path`, `flavors`, `model_id`, `model_size_bytes`,
`model_uuid`, `run_id`, `saved_input_example_info`, `signature` (JSON strings),
`utc_time_created`, `metadata`; the writer's version goes under `mltrail_version`. Unknown keys
(an MLflow-written file's `mlflow_version`, say) are kept as attributes and written back.
"""

from __future__ import annotations

import os
import uuid
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
                 model_size_bytes: int | None = None) -> None:
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

    def get_model_info(self, model_uri: str | None = None, logged_model: Any = None) -> ModelInfo:
        uri = model_uri or (f"models:/{self.model_id}" if self.model_id else (self.artifact_path or ""))
        return ModelInfo(
            artifact_path=self.artifact_path, flavors=self.flavors, model_uri=uri, model_uuid=self.model_uuid,
            run_id=self.run_id, saved_input_example_info=self.saved_input_example_info, signature=self.signature,
            utc_time_created=self.utc_time_created, mltrail_version=self.mltrail_version, metadata=self.metadata,
            model_id=self.model_id, logged_model=logged_model, model_size_bytes=self.model_size_bytes)

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
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read an MLmodel file, the directory holding one, or any model URI (downloaded first)."""
        import yaml

        path = os.fspath(path)
        if not os.path.exists(path):
            from mltrail.uris import resolve_model_uri

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
    """The ModelInfo of the model at `model_uri` (any URI `load_model` accepts)."""
    return Model.load(model_uri).get_model_info(model_uri)
