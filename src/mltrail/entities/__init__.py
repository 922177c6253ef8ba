"""Plain data with MLflow's attribute names, so code written for MLflow reads them unchanged.

Runs, experiments, metrics, params, tags, datasets, logged models and registry objects. No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

# model registry entities live in MLflow's module for them and are listed here too
from mltrail.entities.model_registry import (
    ModelVersion,
    ModelVersionStage,
    ModelVersionStatus,
    RegisteredModel,
)


class RunStatus:
    """A run's status. The constants are the status names (what `run.info.status` holds, in MLflow too);
    MLflow's proto numbers (RUNNING=1 ... KILLED=5) are accepted wherever a status is read."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")  # in the proto's order: ALL[n - 1]
    TERMINATED = ("FINISHED", "FAILED", "KILLED")

    @staticmethod
    def to_string(status: int | str) -> str:
        """The status name for MLflow's number (3 -> "FINISHED") or for a name."""
        if isinstance(status, int) and not isinstance(status, bool) and 1 <= status <= len(RunStatus.ALL):
            return RunStatus.ALL[status - 1]
        if isinstance(status, str) and status in RunStatus.ALL:
            return status
        raise Exception(  # MLflow raises a bare Exception here
            f"Could not get string corresponding to run status {status}. Valid run statuses: "
            f"{list(range(1, len(RunStatus.ALL) + 1))}")

    @staticmethod
    def from_string(status_str: str) -> str:
        """Validate a status name and return it (the constant code compares `run.info.status` with)."""
        if status_str not in RunStatus.ALL:
            raise Exception(  # as MLflow does
                f"Could not get run status corresponding to string {status_str}. Valid run status strings: "
                f"{list(RunStatus.ALL)}")
        return status_str

    @staticmethod
    def is_terminated(status: int | str) -> bool:
        return RunStatus.to_string(status) in RunStatus.TERMINATED

    @staticmethod
    def all_status() -> list[str]:
        return list(RunStatus.ALL)


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType:
    """Which runs or experiments a search sees (MLflow's integer values)."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    _NAMES = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}

    @classmethod
    def from_any(cls, value: int | str | None) -> int:
        """Accept the int, the name (`"ACTIVE_ONLY"`) or None (active only)."""
        if value is None:
            return cls.ACTIVE_ONLY
        if isinstance(value, str):
            if value.upper() in cls._NAMES:
                return cls._NAMES[value.upper()]
            if value.isdigit():
                value = int(value)
        if value in (1, 2, 3):
            return int(value)
        from mltrail.errors import InvalidParameterValue

        raise InvalidParameterValue(
            f"Invalid run_view_type {value!r}: expected ACTIVE_ONLY, DELETED_ONLY or ALL (1, 2, 3)."
        )

    _LOWER = {1: "active_only", 2: "deleted_only", 3: "all"}

    @classmethod
    def from_string(cls, view_str: str) -> int:
        """MLflow's lower-case names: "active_only" -> 1, "deleted_only" -> 2, "all" -> 3."""
        for number, name in cls._LOWER.items():
            if view_str == name:
                return number
        raise Exception(  # MLflow raises a bare Exception here
            f"Could not get valid view type corresponding to string {view_str}. Valid view types are "
            f"{list(cls._LOWER.values())}")

    @classmethod
    def to_string(cls, view_type: int) -> str:
        """MLflow's lower-case name for a view type: 1 -> "active_only"."""
        if view_type not in cls._LOWER:
            raise Exception(  # MLflow raises a bare Exception here
                f"Could not get valid view type corresponding to string {view_type}. Valid view types are "
                f"{list(cls._LOWER)}")
        return cls._LOWER[view_type]


class SourceType:
    NOTEBOOK = "NOTEBOOK"
    JOB = "JOB"
    PROJECT = "PROJECT"
    LOCAL = "LOCAL"
    UNKNOWN = "UNKNOWN"


def json_number(v: float) -> float | str:
    """MLflow's REST JSON writes non-finite floats as strings ("NaN", "Infinity")."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


class Metric(NamedTuple):
    """One metric point. A NamedTuple: search builds thousands of these, ten times faster than a dataclass."""

    key: str
    value: float
    timestamp: int
    step: int = 0
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"key": self.key, "value": json_number(self.value),
                             "timestamp": self.timestamp, "step": self.step}
        if self.model_id:  # a logged model's metric, maybe measured on a named dataset
            d["model_id"] = self.model_id
        if self.dataset_name:
            d["dataset_name"] = self.dataset_name
        if self.dataset_digest:
            d["dataset_digest"] = self.dataset_digest
        return d

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's plain-dict view (every field, the value as a float)."""
        return {"key": self.key, "value": self.value, "timestamp": self.timestamp, "step": self.step,
                "model_id": self.model_id, "dataset_name": self.dataset_name,
                "dataset_digest": self.dataset_digest, "run_id": self.run_id}


@dataclass(frozen=True)
class Param:
    key: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


ExperimentTag = RunTag
InputTag = RunTag
LoggedModelTag = RunTag
LoggedModelParameter = Param
RegisteredModelTag = RunTag
ModelVersionTag = RunTag


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE

    @property
    def run_uuid(self) -> str:
        """MLflow's old name for `run_id`."""
        return self.run_id

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "run_id": self.run_id, "run_uuid": self.run_id, "run_name": self.run_name,
            "experiment_id": self.experiment_id, "user_id": self.user_id, "status": self.status,
            "start_time": self.start_time, "artifact_uri": self.artifact_uri,
            "lifecycle_stage": self.lifecycle_stage,
        }
        if self.end_time is not None:
            d["end_time"] = self.end_time
        return d

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's `dict(run.info)`: every property, `end_time` None while the run is open."""
        return {"artifact_uri": self.artifact_uri, "end_time": self.end_time, "experiment_id": self.experiment_id,
                "lifecycle_stage": self.lifecycle_stage, "run_id": self.run_id, "run_name": self.run_name,
                "start_time": self.start_time, "status": self.status, "user_id": self.user_id}


@dataclass
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # the latest point of each metric, with step and timestamp (REST responses need them)
    _metric_objs: list[Metric] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_dict() for m in self._metric_objs],
            "params": [{"key": k, "value": v} for k, v in self.params.items()],
            "tags": [{"key": k, "value": v} for k, v in self.tags.items()],
        }

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's plain-dict view: `{"metrics": {key: latest value}, "params": {...}, "tags": {...}}`."""
        return {"metrics": dict(self.metrics), "params": dict(self.params), "tags": dict(self.tags)}


@dataclass(frozen=True)
class Dataset:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"name": self.name, "digest": self.digest, "source_type": self.source_type, "source": self.source}
        if self.schema is not None:
            d["schema"] = self.schema
        if self.profile is not None:
            d["profile"] = self.profile
        return d


@dataclass(frozen=True)
class DatasetInput:
    dataset: Dataset
    tags: list[InputTag] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tags": [t.to_dict() for t in self.tags], "dataset": self.dataset.to_dict()}


@dataclass(frozen=True)
class LoggedModelInput:
    model_id: str


@dataclass(frozen=True)
class LoggedModelOutput:
    model_id: str
    step: int


@dataclass
class RunInputs:
    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[LoggedModelInput] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset_inputs": [d.to_dict() for d in self.dataset_inputs],
                "model_inputs": [{"model_id": m.model_id} for m in self.model_inputs]}

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's plain-dict view (the model inputs as entities, the datasets as dicts)."""
        return {"model_inputs": list(self.model_inputs), "dataset_inputs": [d.to_dict() for d in self.dataset_inputs]}


@dataclass
class RunOutputs:
    model_outputs: list[LoggedModelOutput] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model_outputs": [{"model_id": m.model_id, "step": m.step} for m in self.model_outputs]}

    def to_dictionary(self) -> dict[str, Any]:
        return self.to_dict()


@dataclass
class Run:
    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "data": self.data.to_dict(),
                "inputs": self.inputs.to_dict(), "outputs": self.outputs.to_dict()}

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's plain-dict view: info and data as dicts of values, not REST JSON."""
        return {"info": self.info.to_dictionary(), "data": self.data.to_dictionary(),
                "inputs": self.inputs.to_dictionary(), "outputs": self.outputs.to_dictionary()}


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id, "name": self.name,
            "artifact_location": self.artifact_location, "lifecycle_stage": self.lifecycle_stage,
            "last_update_time": self.last_update_time, "creation_time": self.creation_time,
            "tags": [{"key": k, "value": v} for k, v in self.tags.items()],
        }


@dataclass(frozen=True)
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "is_dir": self.is_dir}
        if self.file_size is not None:
            d["file_size"] = self.file_size
        return d


class LoggedModelStatus:
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"
    ALL = ("PENDING", "READY", "FAILED")


@dataclass
class LoggedModel:
    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: str = LoggedModelStatus.PENDING
    source_run_id: str | None = None
    model_type: str | None = None
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"

    def to_dictionary(self) -> dict[str, Any]:
        """MLflow's plain-dict view; `status` as MLflow's number (PENDING=1, READY=2, FAILED=3)."""
        return {"artifact_location": self.artifact_location, "creation_timestamp": self.creation_timestamp,
                "experiment_id": self.experiment_id, "last_updated_timestamp": self.last_updated_timestamp,
                "metrics": list(self.metrics) or None, "model_id": self.model_id, "model_type": self.model_type,
                "name": self.name, "params": dict(self.params), "source_run_id": self.source_run_id,
                "status": LoggedModelStatus.ALL.index(self.status) + 1 if self.status in LoggedModelStatus.ALL
                else 0, "status_message": self.status_message, "tags": dict(self.tags)}

    def to_dict(self) -> dict[str, Any]:
        info = {
            "model_id": self.model_id, "experiment_id": self.experiment_id, "name": self.name,
            "artifact_uri": self.artifact_location, "creation_timestamp_ms": self.creation_timestamp,
            "last_updated_timestamp_ms": self.last_updated_timestamp,
            "status": {"READY": "LOGGED_MODEL_READY", "FAILED": "LOGGED_MODEL_UPLOAD_FAILED"}.get(
                self.status, "LOGGED_MODEL_PENDING"),
            "tags": [{"key": k, "value": v} for k, v in self.tags.items()],
        }
        if self.source_run_id:
            info["source_run_id"] = self.source_run_id
        if self.model_type:
            info["model_type"] = self.model_type
        if self.status_message:
            info["status_message"] = self.status_message
        return {"info": info, "data": {
            "params": [{"key": k, "value": v} for k, v in self.params.items()],
            "metrics": [m.to_dict() | ({"run_id": m.run_id} if m.run_id else {}) for m in self.metrics],
        }}


T = TypeVar("T")


class PagedList(list[T]):
    """A list with the token for the next page (None on the last page), like MLflow's."""

    def __init__(self, items: Iterable[T] = (), token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


__all__ = ["Dataset", "DatasetInput", "Experiment", "FileInfo", "LifecycleStage", "LoggedModel", "LoggedModelInput", "LoggedModelOutput", "LoggedModelStatus", "Metric", "ModelVersion", "ModelVersionStage", "ModelVersionStatus", "PagedList", "Param", "RegisteredModel", "Run", "RunData", "RunInfo", "RunInputs", "RunOutputs", "RunStatus", "RunTag", "SourceType", "ViewType"]
