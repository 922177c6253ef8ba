"""MLflow's FileStore folder (`./mlruns`) read as rows of mltrail's tables, without the `mlflow` package.

The layout is MLflow 3.17's (`mlflow/store/tracking/file_store.py`, `model_registry/file_store.py`):

    <root>/<exp_id>/meta.yaml, tags/<key>          an experiment (deleted ones live in <root>/.trash/)
    <exp>/<run_id>/meta.yaml, params/, tags/       a run; metrics/<key> holds "timestamp value step" lines
    <exp>/<run_id>/inputs/<id>/meta.yaml           a dataset or logged-model input; outputs/<model_id>/ a model
    <exp>/datasets/<id>/meta.yaml                  a dataset (its id is md5(name + digest), per experiment)
    <exp>/models/<model_id>/meta.yaml, params/, tags/, metrics/   a logged model
    <root>/models/<name>/meta.yaml, tags/, aliases/<alias>, version-<n>/meta.yaml, version-<n>/tags/

Every file is opened through `mltrail._paths.resolve_under(root, ...)`, so a crafted store (a symlink,
an odd name) cannot make the reader leave its root; YAML is read with `yaml.safe_load` only. Nothing
is written. Where MLflow's own reader skips something (a folder without `meta.yaml`, a run filed under
the wrong experiment) this reader skips it too; a file MLflow would fail on is an error naming the file.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrail._paths import resolve_under
from mltrail.errors import InvalidParameterValue, InvalidState
from mltrail.interop.mlflow.records import BATCH_ROWS, TABLE_ORDER, ArtifactRoot, RowBatch
from mltrail.store.mlflow_detect import is_mlflow_file_store as tracking_folder_check
from mltrail.uri_forms import is_runs_uri, parse_runs_uri

_log = logging.getLogger(__name__)

TRASH = ".trash"
META = "meta.yaml"
REGISTRY = "models"  # <root>/models is the registry; <exp>/models holds the experiment's logged models
# Folders of an experiment that are not runs (MLflow's RESERVED_EXPERIMENT_FOLDERS).
_NOT_RUNS = frozenset({"tags", "datasets", "traces", "models"})
# MLflow's RunStatus proto numbers, as its FileStore writes them in a run's meta.yaml.
_RUN_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
# LoggedModelStatus.to_int(); mltrail has no UNSPECIFIED, a model that never finished is PENDING.
_MODEL_STATUS = {0: "PENDING", 1: "PENDING", 2: "READY", 3: "FAILED"}
_DELETED_VERSION = "Deleted_Internal"  # a deleted model version's stage: its folder stays, its number is used
_MODEL_INPUT = "MODEL_INPUT"  # the `inputs.source_type` mltrail's SQL store gives a logged-model input


def _local_root(root_or_file_uri: str) -> str:
    """The folder a `file://` URI or a plain path names (absolute, symlinks resolved)."""
    if root_or_file_uri.startswith("file:"):
        parsed = urllib.parse.urlparse(root_or_file_uri)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidParameterValue(
                f"Invalid FileStore URI {root_or_file_uri!r}: expected a local file:/// URI or a folder path.")
        path = urllib.parse.unquote(parsed.path)
    else:
        path = root_or_file_uri
    return os.path.realpath(os.path.expanduser(path))


def is_mlflow_file_store(path: str) -> bool:
    """Whether `path` (a folder or `file://` URI) holds an MLflow FileStore: what the store layer's own check
    recognises (`.trash/`, `<experiment id>/meta.yaml`), or a registry-only folder (`models/<name>/meta.yaml`).

    A folder holding an mltrail database (`mltrail.db`) is mltrail's own, whatever else it holds.
    """
    try:
        root = _local_root(path)
    except InvalidParameterValue:
        return False
    if not os.path.isdir(root) or os.path.exists(os.path.join(root, "mltrail.db")):
        return False
    if tracking_folder_check(root):
        return True
    registry = os.path.join(root, REGISTRY)
    if not os.path.isdir(registry):
        return False
    with os.scandir(registry) as entries:
        return any(e.is_dir() and os.path.isfile(os.path.join(e.path, META)) for e in entries)


@dataclass
class _Experiment:
    exp_id: str
    rel: str  # its folder under the root: "<id>", or ".trash/<id>" when deleted
    meta: dict[str, Any]


@dataclass
class _Run:
    run_id: str
    exp_id: str
    rel: str
    meta: dict[str, Any]


@dataclass
class _Model:
    model_id: str
    exp_id: str
    rel: str
    meta: dict[str, Any]


@dataclass
class _Registered:
    rm_id: int  # mltrail's surrogate key: MLflow's FileStore names a registered model by its folder
    name: str
    rel: str
    meta: dict[str, Any]
    versions: list[tuple[int, str, dict[str, Any]]]  # (number, folder, meta), deleted ones included


class FileSource:
    """An MLflow FileStore folder opened for reading (`MlflowSource`); reading changes nothing in it.

    Args:
        root_or_file_uri: the store's folder (`./mlruns`) or its `file:///` URI.
    """

    def __init__(self, root_or_file_uri: str) -> None:
        self.root = _local_root(root_or_file_uri)
        if not os.path.isdir(self.root):
            raise InvalidParameterValue(
                f"MLflow FileStore {root_or_file_uri!r} is not a folder (resolved to {self.root!r}). Expected the "
                "folder MLflow tracked into (e.g. ./mlruns) or its file:/// URI.")
        self._experiments: list[_Experiment] | None = None
        self._runs: list[_Run] | None = None
        self._models: list[_Model] | None = None
        self._registered: list[_Registered] | None = None
        self._where_now: dict[tuple[str, str], str] | None = None

    # ------------------------------------------------------------------ MlflowSource
    def describe(self) -> str:
        return f"MLflow FileStore folder {self.root}"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in TABLE_ORDER:
            if table == "metrics":  # the largest table: count its lines without building rows
                out[table] = sum(len(_data_lines(self._text(rel))) for _, _, rel in self._metric_files())
            else:
                out[table] = sum(len(batch.rows) for batch in self.batches(table))
        return out

    def batches(self, table: str) -> Iterator[RowBatch]:
        readers: dict[str, Callable[[], Iterable[dict[str, Any]]]] = {
            "experiments": self._experiment_rows, "experiment_tags": self._experiment_tag_rows,
            "runs": self._run_rows, "params": lambda: self._run_value_rows("params"),
            "tags": lambda: self._run_value_rows("tags"), "metrics": self._metric_rows,
            "datasets": self._dataset_rows, "inputs": lambda: self._input_rows(tags=False),
            "input_tags": lambda: self._input_rows(tags=True), "logged_models": self._model_rows,
            "logged_model_params": lambda: self._model_value_rows("params"),
            "logged_model_tags": lambda: self._model_value_rows("tags"),
            "logged_model_metrics": self._model_metric_rows, "run_outputs": self._output_rows,
            "registered_models": self._registered_rows, "registered_model_tags": self._registered_tag_rows,
            "model_versions": lambda: self._version_rows(tags=False),
            "model_version_tags": lambda: self._version_rows(tags=True),
            "registered_model_aliases": self._alias_rows,
        }
        if table not in readers:
            raise InvalidParameterValue(f"Unknown table {table!r}: expected one of {', '.join(TABLE_ORDER)}.")
        rows: list[dict[str, Any]] = []
        for row in readers[table]():
            rows.append(row)
            if len(rows) >= BATCH_ROWS:
                yield RowBatch(table, rows)
                rows = []
        if rows:
            yield RowBatch(table, rows)

    def artifact_roots(self) -> Iterator[ArtifactRoot]:
        where = self._where()
        for exp in self._experiment_list():
            yield ArtifactRoot("experiment", exp.exp_id, where[("experiment", exp.exp_id)])
        for run in self._run_list():
            yield ArtifactRoot("run", run.run_id, where[("run", run.run_id)])
        for model in self._model_list():
            yield ArtifactRoot("logged_model", model.model_id, where[("logged_model", model.model_id)])

    def close(self) -> None:
        """Nothing stays open between calls; forget what was scanned so a reopened store is read afresh."""
        self._experiments = self._runs = self._models = self._registered = None
        self._where_now = None

    # ------------------------------------------------------------------ files
    def _abs(self, rel: str) -> str:
        """The absolute path of `rel` under the root, refused when it would lead outside the root."""
        try:
            return resolve_under(self.root, rel)
        except InvalidParameterValue as exc:
            raise InvalidState(f"MLflow FileStore entry {rel!r} under {self.root} cannot be read safely: "
                               f"{exc.message}") from exc

    def _text(self, rel: str) -> str:
        path = self._abs(rel)
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except UnicodeDecodeError as exc:  # MLflow writes every value as UTF-8 text
            raise InvalidState(f"Malformed MLflow FileStore file {path}: it is not UTF-8 text ({exc}).") from exc

    def _yaml(self, rel: str, required: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """A meta.yaml as a dict (None when the file is absent); a malformed one is an error naming it."""
        import yaml

        path = self._abs(rel)
        if not os.path.isfile(path):
            return None
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidState(f"Malformed MLflow FileStore file {path}: it is not valid YAML ({exc}).") from exc
        if not isinstance(data, dict):
            raise InvalidState(f"Malformed MLflow FileStore file {path}: expected a mapping of fields, received "
                               f"{type(data).__name__} {data!r:.80}.")
        missing = [key for key in required if data.get(key) in (None, "")]
        if missing:
            raise InvalidState(f"Malformed MLflow FileStore file {path}: it lacks {', '.join(missing)}.")
        return data

    def _subdirs(self, rel: str) -> list[str]:
        """Names of the folders directly in `rel` (none when it is absent), sorted."""
        path = self._abs(rel)
        if not os.path.isdir(path):
            return []
        with os.scandir(path) as entries:
            return sorted(e.name for e in entries if e.is_dir())

    def _value_files(self, rel: str) -> list[str]:
        """Keys stored as files under `rel` (a tag `a/b` is the file a/b), sorted; MLflow's `os.walk` read."""
        path = self._abs(rel)
        keys: list[str] = []
        for folder, _, files in os.walk(path):
            sub = os.path.relpath(folder, path)
            keys.extend(name if sub == "." else f"{sub.replace(os.sep, '/')}/{name}" for name in files)
        return sorted(keys)

    def _values(self, rel: str) -> list[tuple[str, str]]:
        """(key, file content) of every value file under `rel`: params, tags, aliases."""
        return [(key, self._text(f"{rel}/{key}")) for key in self._value_files(rel)]

    # ------------------------------------------------------------------ scanning
    def _experiment_list(self) -> list[_Experiment]:
        if self._experiments is None:
            found: list[_Experiment] = []
            for parent in ("", TRASH):
                for name in self._subdirs(parent or "."):
                    if not parent and name in (TRASH, REGISTRY):
                        continue
                    rel = f"{parent}/{name}" if parent else name
                    meta = self._yaml(f"{rel}/{META}", required=("experiment_id", "name"))
                    if meta is None:  # MLflow: "Malformed experiment", skipped
                        _log.warning("Skipping %s: it has no %s.", self._abs(rel), META)
                        continue
                    if str(meta["experiment_id"]) != name:  # MLflow ignores it too
                        _log.warning("Skipping experiment folder %s: its meta.yaml says experiment %s.",
                                     self._abs(rel), meta["experiment_id"])
                        continue
                    _experiment_number(name, self._abs(rel))
                    found.append(_Experiment(name, rel, meta))
            self._experiments = found
        return self._experiments

    def _run_list(self) -> list[_Run]:
        if self._runs is None:
            found: list[_Run] = []
            for exp in self._experiment_list():
                for name in self._subdirs(exp.rel):
                    if name in _NOT_RUNS:
                        continue
                    rel = f"{exp.rel}/{name}"
                    meta = self._yaml(f"{rel}/{META}", required=("experiment_id",))
                    if meta is None:  # an artifact folder or leftover, as MLflow's listing treats it
                        continue
                    run_id = str(meta.get("run_id") or meta.get("run_uuid") or "")
                    if run_id != name or str(meta["experiment_id"]) != exp.exp_id:
                        _log.warning("Skipping run folder %s: its meta.yaml names run %r of experiment %s.",
                                     self._abs(rel), run_id, meta["experiment_id"])
                        continue
                    found.append(_Run(run_id, exp.exp_id, rel, meta))
            self._runs = found
        return self._runs

    def _model_list(self) -> list[_Model]:
        if self._models is None:
            found: list[_Model] = []
            for exp in self._experiment_list():
                for name in self._subdirs(f"{exp.rel}/models"):
                    rel = f"{exp.rel}/models/{name}"
                    meta = self._yaml(f"{rel}/{META}", required=("model_id", "experiment_id"))
                    if meta is None:
                        continue
                    if meta["model_id"] != name or str(meta["experiment_id"]) != exp.exp_id:
                        _log.warning("Skipping logged model folder %s: its meta.yaml names model %r of "
                                     "experiment %s.", self._abs(rel), meta["model_id"], meta["experiment_id"])
                        continue
                    found.append(_Model(name, exp.exp_id, rel, meta))
            self._models = found
        return self._models

    def _registered_list(self) -> list[_Registered]:
        if self._registered is None:
            found: list[_Registered] = []
            for folder in self._subdirs(REGISTRY):
                rel = f"{REGISTRY}/{folder}"
                meta = self._yaml(f"{rel}/{META}")
                if meta is None:
                    continue
                versions: list[tuple[int, str, dict[str, Any]]] = []
                for sub in self._subdirs(rel):
                    if not sub.startswith("version-"):
                        continue
                    vmeta = self._yaml(f"{rel}/{sub}/{META}", required=("version",))
                    if vmeta is not None:
                        versions.append((_integer(vmeta["version"], "version", self._abs(f"{rel}/{sub}")), sub, vmeta))
                versions.sort(key=lambda v: v[0])
                found.append(_Registered(len(found) + 1, str(meta.get("name") or folder), rel, meta, versions))
            self._registered = found
        return self._registered

    def _metric_files(self) -> Iterator[tuple[_Run, str, str]]:
        """(run, metric key, file) of every run's metric history, run by run."""
        for run in self._run_list():
            for key in self._value_files(f"{run.rel}/metrics"):
                yield run, key, f"{run.rel}/metrics/{key}"

    def _where(self) -> dict[tuple[str, str], str]:
        """(kind, id) -> where that experiment's, run's or logged model's artifacts are now (see `_located`)."""
        if self._where_now is None:
            experiments = {e.exp_id: e for e in self._experiment_list()}
            where = {("experiment", e.exp_id): self._located(e.meta.get("artifact_location"), e)
                     for e in experiments.values()}
            for run in self._run_list():
                where[("run", run.run_id)] = self._located(run.meta.get("artifact_uri"), experiments[run.exp_id],
                                                           f"{run.run_id}/artifacts")
            for model in self._model_list():
                where[("logged_model", model.model_id)] = self._located(
                    model.meta.get("artifact_location"), experiments[model.exp_id], f"models/{model.model_id}/artifacts")
            self._where_now = where
        return self._where_now

    def _located(self, uri: Any, exp: _Experiment, tail: str = "") -> str:
        """Where an entity's artifacts are now. MLflow moves a deleted experiment's folder into .trash without
        rewriting the URIs inside it, and a copied `mlruns` keeps the old machine's paths: a local location
        that is gone but was MLflow's default one (`.../<exp_id>/<tail>`) is looked up in this store instead."""
        text = str(uri or "")
        try:
            path = _local_root(text) if text.startswith(("file:", "/")) else ""
        except InvalidParameterValue:  # file://host/...: not a local folder to look in
            path = ""
        default_tail = "/".join(p for p in (exp.exp_id, tail) if p)
        if not path or os.path.exists(path) or not path.replace(os.sep, "/").endswith("/" + default_tail):
            return text
        here = self._abs("/".join(p for p in (exp.rel, tail) if p))
        if not os.path.isdir(here):
            return text
        return Path(here).as_uri() if text.startswith("file:") else here

    # ------------------------------------------------------------------ tracking rows
    def _experiment_rows(self) -> Iterator[dict[str, Any]]:
        for exp in self._experiment_list():
            meta = exp.meta
            yield {"experiment_id": int(exp.exp_id), "name": str(meta["name"]),
                   "artifact_location": self._where()[("experiment", exp.exp_id)] or None,
                   "lifecycle_stage": meta.get("lifecycle_stage") or ("deleted" if exp.rel.startswith(TRASH)
                                                                      else "active"),
                   "creation_time": meta.get("creation_time"), "last_update_time": meta.get("last_update_time")}

    def _experiment_tag_rows(self) -> Iterator[dict[str, Any]]:
        for exp in self._experiment_list():
            for key, value in self._values(f"{exp.rel}/tags"):
                yield {"experiment_id": int(exp.exp_id), "key": key, "value": value}

    def _run_rows(self) -> Iterator[dict[str, Any]]:
        for run in self._run_list():
            meta = run.meta
            name = meta.get("run_name")
            if not name:  # older stores keep the name only in the mlflow.runName tag, as MLflow falls back to
                tag = self._abs(f"{run.rel}/tags/mlflow.runName")
                name = self._text(f"{run.rel}/tags/mlflow.runName") if os.path.isfile(tag) else None
            yield {"run_uuid": run.run_id, "name": name, "experiment_id": int(run.exp_id),
                   "user_id": meta.get("user_id"),
                   "status": _run_status(meta.get("status", 1), self._abs(f"{run.rel}/{META}")),
                   "start_time": meta.get("start_time"), "end_time": meta.get("end_time"),
                   "deleted_time": meta.get("deleted_time"),
                   "lifecycle_stage": meta.get("lifecycle_stage") or "active",
                   "artifact_uri": self._where()[("run", run.run_id)] or None}

    def _run_value_rows(self, folder: str) -> Iterator[dict[str, Any]]:
        for run in self._run_list():
            for key, value in self._values(f"{run.rel}/{folder}"):
                yield {"run_uuid": run.run_id, "key": key, "value": value}

    def _metric_rows(self) -> Iterator[dict[str, Any]]:
        for run, key, rel in self._metric_files():
            run_id = run.run_id
            for ts, value, step in _parse_run_metric(self._text(rel), self._abs(rel)):
                nan = value != value
                yield {"run_uuid": run_id, "key": key, "step": step, "timestamp": ts,
                       "value": 0.0 if nan else value, "is_nan": nan, "model_id": None}

    def _dataset_ids(self) -> dict[tuple[str, str], str]:
        """(experiment id, dataset folder) -> mltrail's dataset id. MLflow names a dataset's folder
        md5(name + digest) in every experiment that uses it; mltrail's ids are unique store-wide."""
        out: dict[tuple[str, str], str] = {}
        for exp in self._experiment_list():
            for folder in self._subdirs(f"{exp.rel}/datasets"):
                digest = hashlib.md5(f"{exp.exp_id}/{folder}".encode(), usedforsecurity=False).hexdigest()
                out[(exp.exp_id, folder)] = digest
        return out

    def _dataset_rows(self) -> Iterator[dict[str, Any]]:
        experiments = {e.exp_id: e for e in self._experiment_list()}
        for (exp_id, folder), dataset_id in self._dataset_ids().items():
            meta = self._yaml(f"{experiments[exp_id].rel}/datasets/{folder}/{META}",
                              required=("name", "digest", "source_type", "source"))
            if meta is None:
                continue
            yield {"dataset_uuid": dataset_id, "experiment_id": int(exp_id), "name": str(meta["name"]),
                   "digest": str(meta["digest"]), "dataset_source_type": str(meta["source_type"]),
                   "dataset_source": str(meta["source"]), "dataset_schema": meta.get("schema"),
                   "dataset_profile": meta.get("profile")}

    def _input_rows(self, tags: bool) -> Iterator[dict[str, Any]]:
        """A run's inputs (or their tags): datasets of its experiment and logged models it used."""
        dataset_ids = self._dataset_ids()
        experiments = {e.exp_id: e for e in self._experiment_list()}
        for run in self._run_list():
            for folder in self._subdirs(f"{run.rel}/inputs"):
                meta = self._yaml(f"{run.rel}/inputs/{folder}/{META}", required=("source_type", "source_id"))
                if meta is None:
                    continue
                kind, source_id = meta["source_type"], str(meta["source_id"])
                if kind == "DATASET":
                    dataset_id = dataset_ids.get((run.exp_id, source_id))
                    dataset_meta = f"{experiments[run.exp_id].rel}/datasets/{source_id}/{META}"
                    if dataset_id is None or not os.path.isfile(self._abs(dataset_meta)):
                        _log.warning("Skipping input %s of run %s: dataset %s is not in its experiment.",
                                     folder, run.run_id, source_id)  # MLflow skips it too
                        continue
                    row = {"input_uuid": folder, "source_type": "DATASET", "source_id": dataset_id,
                           "destination_type": "RUN", "destination_id": run.run_id}
                elif kind == "MODEL":
                    row = {"input_uuid": folder, "source_type": _MODEL_INPUT, "source_id": source_id,
                           "destination_type": "RUN", "destination_id": run.run_id}
                else:
                    continue
                if not tags:
                    yield row
                    continue
                for name, value in (meta.get("tags") or {}).items():
                    yield {"input_uuid": folder, "name": str(name), "value": str(value)}

    def _output_rows(self) -> Iterator[dict[str, Any]]:
        for run in self._run_list():
            for folder in self._subdirs(f"{run.rel}/outputs"):
                meta = self._yaml(f"{run.rel}/outputs/{folder}/{META}", required=("destination_id",))
                if meta is None or meta.get("destination_type", "MODEL_OUTPUT") != "MODEL_OUTPUT":
                    continue
                # MLflow writes the model's id as destination_id (and reads it from there)
                yield {"run_uuid": run.run_id, "model_id": str(meta["destination_id"]),
                       "step": int(meta.get("step") or 0)}

    # ------------------------------------------------------------------ logged models
    def _model_rows(self) -> Iterator[dict[str, Any]]:
        for model in self._model_list():
            meta = model.meta
            where = self._abs(f"{model.rel}/{META}")
            created = meta.get("creation_timestamp")
            yield {"model_id": model.model_id, "experiment_id": int(model.exp_id), "name": str(meta.get("name")),
                   "artifact_location": self._where()[("logged_model", model.model_id)],
                   "creation_timestamp_ms": created,
                   "last_updated_timestamp_ms": meta.get("last_updated_timestamp") or created,
                   "status": _model_status(meta.get("status", 1), where),
                   "lifecycle_stage": meta.get("lifecycle_stage") or "active",
                   "model_type": meta.get("model_type"), "source_run_id": meta.get("source_run_id"),
                   "status_message": meta.get("status_message")}

    def _model_value_rows(self, folder: str) -> Iterator[dict[str, Any]]:
        column = "param" if folder == "params" else "tag"
        for model in self._model_list():
            for key, value in self._values(f"{model.rel}/{folder}"):
                yield {"model_id": model.model_id, f"{column}_key": key, f"{column}_value": value}

    def _model_metric_rows(self) -> Iterator[dict[str, Any]]:
        for model in self._model_list():
            for key in self._value_files(f"{model.rel}/metrics"):
                rel = f"{model.rel}/metrics/{key}"
                # the table's key is (model, name, timestamp, step, run): a repeated point keeps its last line
                points: dict[tuple[int, int, str], dict[str, Any]] = {}
                for ts, value, step, run_id, dataset_name, dataset_digest in _parse_model_metric(
                        self._text(rel), self._abs(rel)):
                    points[(ts, step, run_id)] = {
                        "model_id": model.model_id, "metric_name": key, "metric_timestamp_ms": ts,
                        "metric_step": step, "metric_value": None if math.isnan(value) else value,
                        "run_id": run_id, "dataset_name": dataset_name, "dataset_digest": dataset_digest}
                yield from points.values()

    # ------------------------------------------------------------------ registry
    def _registered_rows(self) -> Iterator[dict[str, Any]]:
        for rm in self._registered_list():
            meta = rm.meta
            created = meta.get("creation_timestamp") or 0
            yield {"id": rm.rm_id, "name": rm.name, "creation_time": created,
                   "last_updated_time": meta.get("last_updated_timestamp") or created,
                   "description": meta.get("description"),
                   # mltrail never reuses a version number: the counter starts above deleted versions too
                   "last_version": max((number for number, _, _ in rm.versions), default=0)}

    def _registered_tag_rows(self) -> Iterator[dict[str, Any]]:
        for rm in self._registered_list():
            for key, value in self._values(f"{rm.rel}/tags"):
                yield {"rm_id": rm.rm_id, "key": key, "value": value}

    def _version_rows(self, tags: bool) -> Iterator[dict[str, Any]]:
        locations = self._locations()
        for rm in self._registered_list():
            for number, folder, meta in rm.versions:
                if meta.get("current_stage") == _DELETED_VERSION:  # deleted: mltrail keeps no row for it
                    continue
                if tags:
                    for key, value in self._values(f"{rm.rel}/{folder}/tags"):
                        yield {"rm_id": rm.rm_id, "version": number, "key": key, "value": value}
                    continue
                created = meta.get("creation_timestamp") or 0
                source = str(meta.get("source") or "")
                yield {"rm_id": rm.rm_id, "version": number, "creation_time": created,
                       "last_updated_time": meta.get("last_updated_timestamp") or created,
                       "description": meta.get("description"), "user_id": meta.get("user_id"),
                       "current_stage": meta.get("current_stage") or "None", "source": source,
                       "storage_location": locations(str(meta.get("storage_location") or source)),
                       "run_id": meta.get("run_id"), "run_link": meta.get("run_link"),
                       "model_id": meta.get("model_id"), "status": meta.get("status") or "READY",
                       "status_message": meta.get("status_message")}

    def _alias_rows(self) -> Iterator[dict[str, Any]]:
        for rm in self._registered_list():
            live = {number for number, _, meta in rm.versions if meta.get("current_stage") != _DELETED_VERSION}
            for alias, value in self._values(f"{rm.rel}/aliases"):
                number = _integer(value.strip(), "alias version", self._abs(f"{rm.rel}/aliases/{alias}"))
                if number in live:  # MLflow drops a deleted version's aliases; a stale file points nowhere
                    yield {"rm_id": rm.rm_id, "alias": alias, "version": number}

    def _locations(self) -> Callable[[str], str]:
        """Where a version's files are now. MLflow's FileStore leaves a `runs:/` source unresolved: it becomes
        the run's logged model of that name, else the run's artifact folder (mltrail's registry rule); a
        location inside a run's or logged model's folder follows that folder when it moved (see `_located`)."""
        where = self._where()
        runs = {r.run_id: where[("run", r.run_id)] for r in self._run_list()}
        by_run_name = {(str(m.meta.get("source_run_id")), str(m.meta.get("name"))): where[("logged_model", m.model_id)]
                       for m in self._model_list()}
        # (recorded location, where it is now) of folders that moved, the longest first: the deepest match wins
        moved = [(str(r.meta.get("artifact_uri") or ""), runs[r.run_id]) for r in self._run_list()]
        moved += [(str(m.meta.get("artifact_location") or ""), where[("logged_model", m.model_id)])
                  for m in self._model_list()]
        moved = sorted(((old, new) for old, new in moved if old and old != new), key=lambda pair: -len(pair[0]))

        def resolve(location: str) -> str:
            if is_runs_uri(location):
                try:
                    parsed = parse_runs_uri(location)
                except InvalidParameterValue:  # a malformed source stays as MLflow recorded it
                    return location
                run_id, rel, first, rest = str(parsed.run_id), parsed.subpath, parsed.head, parsed.rest
                base = by_run_name.get((run_id, first))
                if base is not None:
                    return f"{base.rstrip('/')}/{rest}" if rest else base
                if runs.get(run_id):
                    return f"{runs[run_id].rstrip('/')}/{rel}" if rel else runs[run_id]
                return location
            for recorded, now in moved:
                if location == recorded or location.startswith(recorded + "/"):
                    return now + location[len(recorded):]
            return location

        return resolve


# ---------------------------------------------------------------------- values
def _data_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _parse_run_metric(text: str, where: str) -> Iterator[tuple[int, float, int]]:
    """(timestamp, value, step) of every line of a run's metric file: "ts value [step [dataset digest]]".

    Values are spelled as Python prints floats (`nan`, `inf`, `-inf`). The common file, every line
    "ts value step", is parsed column-wise in C; anything else line by line, naming a bad line.
    """
    tokens = text.split()
    lines = _data_lines(text)
    # MLflow writes single spaces: 3 tokens and 2 spaces a line means every line is "ts value step"
    if len(tokens) == 3 * len(lines) and text.count(" ") == 2 * len(lines):
        try:
            points = list(zip(map(int, tokens[0::3]), map(float, tokens[1::3]), map(int, tokens[2::3]),
                              strict=True))
        except ValueError:
            points = []  # read again line by line below, which names the bad line
        if points or not lines:
            yield from points
            return
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) not in (2, 3, 5):
            raise InvalidState(f"Malformed MLflow metric file {where}, line {number}: {line!r} has {len(parts)} "
                               "fields. Expected 2, 3, or 5 fields (timestamp value [step [dataset digest]]).")
        try:
            yield int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 0
        except ValueError as exc:
            raise InvalidState(f"Malformed MLflow metric file {where}, line {number}: {line!r} ({exc}). "
                               "Expected an integer timestamp, a number and an integer step.") from exc


def _parse_model_metric(text: str, where: str) -> Iterator[tuple[int, float, int, str, str | None, str | None]]:
    """(timestamp, value, step, run id, dataset name, dataset digest) of a logged model's metric file."""
    for number, line in enumerate(_data_lines(text), 1):
        parts = line.split()
        if len(parts) not in (4, 6):
            raise InvalidState(f"Malformed MLflow metric file {where}, line {number}: {line!r} has {len(parts)} "
                               "fields. Expected 4 or 6 fields (timestamp value step run_id [dataset digest]).")
        try:
            ts, value, step = int(parts[0]), float(parts[1]), int(parts[2])
        except ValueError as exc:
            raise InvalidState(f"Malformed MLflow metric file {where}, line {number}: {line!r} ({exc}).") from exc
        yield ts, value, step, parts[3], (parts[4] if len(parts) == 6 else None), \
            (parts[5] if len(parts) == 6 else None)


def _integer(value: Any, what: str, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidState(f"Malformed MLflow FileStore entry {where}: its {what} {value!r} is not an integer.") \
            from exc


def _experiment_number(exp_id: str, where: str) -> int:
    """mltrail's experiment ids are integers; MLflow's FileStore makes them so (0, or 18 random digits)."""
    return _integer(exp_id, "experiment id", where)


def _run_status(status: Any, where: str) -> str:
    if isinstance(status, str) and status in _RUN_STATUS.values():
        return status
    if isinstance(status, int) and status in _RUN_STATUS:
        return _RUN_STATUS[status]
    raise InvalidState(f"Malformed MLflow FileStore file {where}: run status {status!r} is not one of "
                       f"{sorted(_RUN_STATUS)} or {list(_RUN_STATUS.values())}.")


def _model_status(status: Any, where: str) -> str:
    if isinstance(status, str) and status.removeprefix("LOGGED_MODEL_") in ("PENDING", "READY", "FAILED"):
        return status.removeprefix("LOGGED_MODEL_")
    if isinstance(status, int) and status in _MODEL_STATUS:
        return _MODEL_STATUS[status]
    raise InvalidState(f"Malformed MLflow FileStore file {where}: logged model status {status!r} is not one of "
                       f"{sorted(_MODEL_STATUS)}.")
