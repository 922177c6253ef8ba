"""`EvaluationResult`: the metrics and artifacts one `evaluate` call produced, saved and loaded as MLflow does."""

from __future__ import annotations

import importlib
import json
import logging
import os
from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.models.evaluation.artifacts import EvaluationArtifact, artifact_file_name

_logger = logging.getLogger(__name__)


def _json_default(value: Any) -> Any:
    """numpy scalars and arrays, which `evaluate`'s metrics may hold, as JSON numbers and lists."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class EvaluationResult:
    """What `evaluate` returns: `.metrics` (name -> number), `.artifacts` (name -> EvaluationArtifact), `.run_id`."""

    def __init__(self, metrics: dict[str, Any], artifacts: dict[str, EvaluationArtifact],
                 run_id: str | None = None) -> None:
        self._metrics = metrics
        self._artifacts = artifacts
        if run_id is None:
            from mltrail.fluent import active_run

            run = active_run()
            run_id = run.info.run_id if run is not None else None
        self._run_id = run_id

    @property
    def metrics(self) -> dict[str, Any]:
        """Scalar metrics by name."""
        return self._metrics

    @property
    def artifacts(self) -> dict[str, EvaluationArtifact]:
        """Artifacts by name (e.g. "confusion_matrix", "per_class_metrics")."""
        return self._artifacts

    @property
    def run_id(self) -> str | None:
        """The run the results were logged to."""
        return self._run_id

    @property
    def tables(self) -> dict[str, Any]:
        """The logged tables (e.g. "eval_results_table") as pandas DataFrames, read back with `load_table`."""
        from mltrail.fluent import load_table

        if self._run_id is None:
            _logger.warning("Cannot load eval_results_table because run_id is not specified.")
            return {}
        tables = {}
        for name, artifact in self._artifacts.items():
            if artifact_file_name(artifact.uri).endswith(".json"):
                try:
                    tables[name] = load_table(artifact_file_name(artifact.uri), run_ids=[self._run_id])
                except Exception:  # a JSON artifact that is not a table (MLflow skips those too)
                    _logger.debug("Artifact %r is not a table.", name, exc_info=True)
        return tables

    def save(self, path: str) -> None:
        """Write metrics.json, artifacts_metadata.json and artifacts/ under `path` (MLflow's layout)."""
        os.makedirs(os.path.join(path, "artifacts"), exist_ok=True)
        with open(os.path.join(path, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(self._metrics, f, default=_json_default)
        meta = {name: {"uri": a.uri, "class_name": f"{type(a).__module__}.{type(a).__qualname__}"}
                for name, a in self._artifacts.items()}
        with open(os.path.join(path, "artifacts_metadata.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f)
        for artifact in self._artifacts.values():
            artifact._save(os.path.join(path, "artifacts", artifact_file_name(artifact.uri)))

    @classmethod
    def load(cls, path: str) -> EvaluationResult:
        """Read back what `save` wrote; only evaluation artifact classes are instantiated."""
        with open(os.path.join(path, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        with open(os.path.join(path, "artifacts_metadata.json"), encoding="utf-8") as f:
            meta = json.load(f)
        artifacts: dict[str, EvaluationArtifact] = {}
        for name, entry in meta.items():
            artifact_cls = _artifact_class(str(entry["class_name"]))
            artifact = artifact_cls(uri=entry["uri"])
            artifact._load(os.path.join(path, "artifacts", artifact_file_name(entry["uri"])))
            artifacts[name] = artifact
        return cls(metrics=metrics, artifacts=artifacts)

    def __repr__(self) -> str:
        return f"EvaluationResult(metrics={self._metrics!r}, artifacts={sorted(self._artifacts)!r})"


def _artifact_class(qualified_name: str) -> type[EvaluationArtifact]:
    """The EvaluationArtifact subclass a saved result names (MLflow's or ours, matched by class name)."""
    module_name, _, class_name = qualified_name.rpartition(".")
    if module_name.startswith("mlflow."):
        module_name = "mltrail.models.evaluation.artifacts"  # a result MLflow saved names MLflow's classes
    if module_name != "mltrail.models.evaluation.artifacts":
        raise InvalidParameterValue(
            f"Refusing to load evaluation artifact class {qualified_name!r}: expected one of "
            "mltrail.models.evaluation.artifacts' classes.")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, EvaluationArtifact)):
        raise InvalidParameterValue(f"Unknown evaluation artifact class {qualified_name!r}.")
    return cls
