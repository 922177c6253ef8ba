"""`Client` (also exported as `MlflowClient`): explicit, stateless calls over a tracking store.

Everything here takes ids explicitly; the module-level API in `fluent.py` adds the active run.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mltrail import _validation as v
from mltrail._paths import join_relpath, safe_relpath
from mltrail._registry_client import RegistryClientMixin
from mltrail.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModel,
    LoggedModelOutput,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import InvalidParameterValue
from mltrail.tracking_uri import get_tracking_uri, registry_uri_if_set

if TYPE_CHECKING:
    from mltrail.store.artifact.base import ArtifactRepository
    from mltrail.store.base import TrackingStore


def now_ms() -> int:
    return int(time.time() * 1000)


class Client(RegistryClientMixin):
    """A client of one tracking store (by default the one `get_tracking_uri()` names)."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        self._tracking_uri = tracking_uri or get_tracking_uri()
        self.registry_uri = registry_uri or registry_uri_if_set() or self._tracking_uri
        self._artifact_uris: dict[str, str] = {}

    @property
    def tracking_uri(self) -> str:
        """The tracking URI this client was made for (fixed for its lifetime, as in MLflow)."""
        return self._tracking_uri

    @property
    def store(self) -> TrackingStore:
        from mltrail.store import get_store  # loaded on first use: `import mltrail` stays ~30 ms

        return get_store(self.tracking_uri)

    _tracking_client = property(lambda self: self)  # MLflow internals some code reaches for

    # ------------------------------------------------------------------ experiments
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, Any] | None = None) -> str:
        return self.store.create_experiment(name, artifact_location, {k: str(v) for k, v in (tags or {}).items()})

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(self, view_type: int | str = ViewType.ACTIVE_ONLY, max_results: int | None = 1000,
                           filter_string: str | None = None, order_by: Sequence[str] | None = None,
                           page_token: str | None = None) -> PagedList[Experiment]:
        return self.store.search_experiments(ViewType.from_any(view_type), max_results or 1000, filter_string,
                                             order_by, page_token)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(str(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.store.set_experiment_tag(str(experiment_id), key, str(value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.store.delete_experiment_tag(str(experiment_id), key)

    # ------------------------------------------------------------------ runs
    def create_run(self, experiment_id: str, start_time: int | None = None, tags: dict[str, Any] | None = None,
                   run_name: str | None = None) -> Run:
        tag_list = [RunTag(k, str(val)) for k, val in (tags or {}).items()]
        from mltrail._context import current_user

        user = (tags or {}).get("mlflow.user") or current_user()
        return self.store.create_run(str(experiment_id), user, start_time, tag_list, run_name)

    def get_run(self, run_id: str) -> Run:
        v.validate_run_id(run_id)
        return self.store.get_run(run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        parent = self.get_run(run_id).data.tags.get("mlflow.parentRunId")
        return self.get_run(parent) if parent else None

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        status = _status_name(status)
        self.store.update_run_info(run_id, status, None if status is None or status == RunStatus.RUNNING
                                   else now_ms(), name)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> RunInfo:
        # a remote store journals the end after the run's queued calls and waits for them (bounded)
        return self.store.update_run_info(run_id, _status_name(status) or RunStatus.FINISHED, end_time or now_ms(),
                                          None)

    def delete_run(self, run_id: str) -> None:
        self.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    def search_runs(self, experiment_ids: str | Sequence[str], filter_string: str = "",
                    run_view_type: int | str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList[Run]:
        if isinstance(experiment_ids, str | int):
            experiment_ids = [str(experiment_ids)]
        return self.store.search_runs([str(e) for e in experiment_ids], filter_string or None,
                                      ViewType.from_any(run_view_type), max_results, order_by, page_token)

    # ------------------------------------------------------------------ logging
    def log_metric(self, run_id: str, key: str, value: float, timestamp: int | None = None,
                   step: int | None = None, synchronous: bool | None = None, model_id: str | None = None,
                   **_ignored: Any) -> None:
        self.store.log_batch(run_id, metrics=[Metric(key, value, timestamp if timestamp is not None else now_ms(),
                                                     step or 0, model_id)])

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self.store.log_batch(run_id, params=[Param(key, v.param_value_to_str(value))])
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        self.store.log_batch(run_id, tags=[RunTag(key, str(value))])

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.delete_tag(run_id, key)

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = (), synchronous: bool | None = None) -> None:
        params = [p if isinstance(p.value, str) else Param(p.key, v.param_value_to_str(p.value)) for p in params]
        self.store.log_batch(run_id, metrics=list(metrics), params=params, tags=list(tags))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return list(self.store.get_metric_history(run_id, key))

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None,
                   models: Sequence[Any] | None = None) -> None:
        self.store.log_inputs(run_id, list(datasets or []), list(models or []))

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        self.store.log_outputs(run_id, list(models))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued log call has been stored (remote stores queue; others don't).

        `timeout` (seconds) bounds the wait; None means MLTRAIL_FLUSH_TIMEOUT (30 s by default).
        """
        self.store.flush(timeout)

    # ------------------------------------------------------------------ artifacts
    def _run_artifact_uri(self, run_id: str) -> str:
        uri = self._artifact_uris.get(run_id)
        if uri is None:
            uri = self.get_run(run_id).info.artifact_uri
            self._artifact_uris[run_id] = uri
        return uri

    def artifact_repo_for(self, root_uri: str) -> ArtifactRepository:
        """The repository behind an artifact root this store recorded (a run's or a logged model's)."""
        from mltrail.store.artifact import (
            get_artifact_repository,  # loaded on first use: `import mltrail` stays ~30 ms
        )

        return get_artifact_repository(self._resolve_artifact_root(root_uri))

    def _resolve_artifact_root(self, root_uri: str) -> str:
        """`mlflow-artifacts:/x` means the tracking server's proxy; make it an http URI for that server."""
        import urllib.parse

        from mltrail.uri_forms import PROXY_HTTP_ANCHOR, is_proxy_uri, parse_artifact_uri

        if is_proxy_uri(root_uri) and self.tracking_uri.startswith(("http://", "https://")):
            parsed = parse_artifact_uri(root_uri)
            if parsed.base is None:  # not mlflow-artifacts://host:port/x, which names its server itself
                path = urllib.parse.quote(parsed.path)  # the http form is percent-encoded
                return f"{self.tracking_uri.rstrip('/')}{PROXY_HTTP_ANCHOR}/{path}"
        return root_uri

    def run_artifact_repo(self, run_id: str) -> ArtifactRepository:
        return self.artifact_repo_for(self._run_artifact_uri(run_id))

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        if not os.path.exists(local_path):
            raise InvalidParameterValue(f"Cannot log artifact {local_path!r}: no such file or directory.")
        self.run_artifact_repo(run_id).log_artifact(local_path, safe_relpath(artifact_path) or None)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        if not os.path.isdir(local_dir):
            raise InvalidParameterValue(f"Cannot log artifacts from {local_dir!r}: expected a directory.")
        self.run_artifact_repo(run_id).log_artifacts(local_dir, safe_relpath(artifact_path) or None)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self.run_artifact_repo(run_id).list_artifacts(safe_relpath(path) or None)

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | None = None) -> str:
        return self.run_artifact_repo(run_id).download_artifacts(safe_relpath(path), dst_path)

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        """Store `data` as the artifact `artifact_file` (a relative path) of the run."""
        self.run_artifact_repo(run_id).write_bytes(join_relpath(artifact_file), data)

    def log_stream(self, run_id: str, stream: Any, artifact_file: str) -> None:
        """Log a binary file-like object (read to its end) as the artifact `artifact_file`."""
        chunks = []
        while chunk := stream.read(1 << 20):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InvalidParameterValue(
                    f"log_stream needs a binary stream (e.g. io.BytesIO); read() returned {type(chunk).__name__}.")
            chunks.append(bytes(chunk))
        self.log_bytes(run_id, b"".join(chunks), artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """JSON by default; YAML when `artifact_file` ends in .yaml or .yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dictionary, default_flow_style=False, sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(run_id, text, artifact_file)

    def log_image(self, run_id: str, image: Any, artifact_file: str | None = None, key: str | None = None,
                  step: int | None = None, timestamp: int | None = None, synchronous: bool | None = None) -> None:
        """Log a numpy array, PIL image or `mltrail.Image` to `artifact_file`, or step-wise under `key`."""
        from mltrail._logged_images import log_image

        log_image(self, run_id, image, artifact_file, key=key, step=step, timestamp=timestamp)

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """Log a dict or DataFrame as a table (MLflow's split JSON, or Parquet); appends to an existing one."""
        from mltrail._tables import log_table

        log_table(self, run_id, data, artifact_file)

    def load_table(self, experiment_id: str, artifact_file: str, run_ids: Sequence[str] | None = None,
                   extra_columns: Sequence[str] | None = None) -> Any:
        """The table `artifact_file` from the experiment's runs (or `run_ids`), as one pandas DataFrame."""
        from mltrail._tables import load_table

        return load_table(self, experiment_id, artifact_file, run_ids, extra_columns)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict | None = None) -> None:
        """Log a matplotlib figure (any image format it saves) or a plotly figure (.html, or images with kaleido)."""
        module = type(figure).__module__
        ext = os.path.splitext(artifact_file)[1].lower().lstrip(".")
        if module.startswith("matplotlib"):
            buf = io.BytesIO()
            figure.savefig(buf, format=ext or "png", **(save_kwargs or {}))
            self.log_bytes(run_id, buf.getvalue(), artifact_file)
        elif module.startswith("plotly"):
            if ext == "html":
                self.log_text(run_id, figure.to_html(include_plotlyjs="cdn", **(save_kwargs or {})), artifact_file)
            else:
                self.log_bytes(run_id, figure.to_image(format=ext or "png", **(save_kwargs or {})), artifact_file)
        else:
            raise InvalidParameterValue(
                f"Unsupported figure type {type(figure).__qualname__!r} from {module!r}: expected a matplotlib or "
                "plotly figure.")

    # ------------------------------------------------------------------ logged models
    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        return self.store.create_logged_model(
            str(experiment_id), name, source_run_id, {k: str(x) for k, x in (tags or {}).items()},
            {k: v.param_value_to_str(x) for k, x in (params or {}).items()}, model_type)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return self.store.get_logged_model(model_id)

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        return self.store.finalize_logged_model(model_id, str(status))

    def set_logged_model_tags(self, model_id: str, tags: dict[str, Any]) -> None:
        self.store.set_logged_model_tags(model_id, {k: str(x) for k, x in tags.items()})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.store.delete_logged_model_tag(model_id, key)

    def log_model_params(self, model_id: str, params: dict[str, Any]) -> None:
        self.store.log_logged_model_params(model_id, {k: v.param_value_to_str(x) for k, x in params.items()})

    def delete_logged_model(self, model_id: str) -> None:
        self.store.delete_logged_model(model_id)

    def search_logged_models(self, experiment_ids: Sequence[str] | None = None, filter_string: str | None = None,
                             max_results: int | None = None, order_by: Sequence[Any] | None = None,
                             page_token: str | None = None) -> PagedList[LoggedModel]:
        order = [o if isinstance(o, str) else _order_dict_to_str(o) for o in (order_by or [])]
        return self.store.search_logged_models(
            [str(e) for e in experiment_ids] if experiment_ids else None, filter_string, max_results or 100,
            order, page_token)

    def log_model_artifact(self, model_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Upload one file to a logged model's artifacts (under `artifact_path` when given)."""
        if not os.path.isfile(local_path):
            raise InvalidParameterValue(f"Cannot log model artifact {local_path!r}: expected an existing file.")
        self.artifact_repo_for(self.get_logged_model(model_id).artifact_location).log_artifact(
            local_path, safe_relpath(artifact_path) or None)

    def log_model_artifacts(self, model_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Upload a directory's files to a logged model's artifacts (under `artifact_path` when given)."""
        self.artifact_repo_for(self.get_logged_model(model_id).artifact_location).log_artifacts(
            local_dir, safe_relpath(artifact_path) or None)

    def list_logged_model_artifacts(self, model_id: str, path: str | None = None) -> list[FileInfo]:
        return self.artifact_repo_for(self.get_logged_model(model_id).artifact_location).list_artifacts(path)

    def download_logged_model_artifacts(self, model_id: str, path: str = "", dst_path: str | None = None) -> str:
        repo = self.artifact_repo_for(self.get_logged_model(model_id).artifact_location)
        return repo.download_artifacts(safe_relpath(path), dst_path or tempfile.mkdtemp(prefix="mltrail-model-"))


def _status_name(status: str | int | None) -> str | None:
    """A run status as its name; MLflow's numbers (RunStatus.from_string's values there) are accepted."""
    if isinstance(status, int) and not isinstance(status, bool) and 1 <= status <= len(RunStatus.ALL):
        return RunStatus.to_string(status)
    return None if status is None else str(status)  # the store names a bad status in its error


def _order_dict_to_str(o: dict[str, Any]) -> str:
    """MLflow's search_logged_models also takes [{"field_name": ..., "ascending": ...}]."""
    return f"{o['field_name']} {'ASC' if o.get('ascending', True) else 'DESC'}"


MlflowClient = Client
