"""`custom_artifacts`: functions that return extra artifacts (files, tables, arrays, figures, JSON) to log."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mltrail.errors import MltrailException
from mltrail.models.evaluation.artifacts import (
    ARTIFACT_BY_EXTENSION,
    CsvEvaluationArtifact,
    EvaluationArtifact,
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    NumpyEvaluationArtifact,
)

_logger = logging.getLogger(__name__)

# log_file(local_path) logs a file and returns its artifact URI.
LogFile = Callable[[str], str]


def _write(name: str, raw: Any, directory: str, header: str) -> tuple[str, type[EvaluationArtifact]]:
    """Write one returned artifact into `directory`; return its file and artifact class."""
    if isinstance(raw, str):
        if os.path.exists(raw):
            raw = pathlib.Path(raw)
        else:
            try:
                content = json.loads(raw)
            except json.JSONDecodeError:
                raise MltrailException(
                    f"{header} produced an artifact '{name}' with string representation '{raw}' that is neither a "
                    "valid path to a file nor a JSON string.") from None
            raw = content
            path = os.path.join(directory, f"{name}.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(content, f)
            return path, JsonEvaluationArtifact
    if isinstance(raw, pathlib.Path):
        if not raw.is_file():
            raise MltrailException(f"{header} produced an artifact '{name}' with path '{raw}' that is not a file.")
        artifact_cls = ARTIFACT_BY_EXTENSION.get(raw.suffix)
        if artifact_cls is None:
            raise MltrailException(
                f"{header} produced an artifact '{name}' with path '{raw}' that does not match any of the supported "
                f"file extensions: {', '.join(ARTIFACT_BY_EXTENSION)}.")
        path = os.path.join(directory, name + raw.suffix)
        shutil.copyfile(raw, path)
        return path, artifact_cls
    if isinstance(raw, pd.DataFrame):
        path = os.path.join(directory, f"{name}.csv")
        raw.to_csv(path, index=False)
        return path, CsvEvaluationArtifact
    if isinstance(raw, np.ndarray):
        path = os.path.join(directory, f"{name}.npy")
        np.save(path, raw, allow_pickle=False)
        return path, NumpyEvaluationArtifact
    if hasattr(raw, "savefig"):  # a matplotlib Figure
        path = os.path.join(directory, f"{name}.png")
        raw.savefig(path)
        return path, ImageEvaluationArtifact
    path = os.path.join(directory, f"{name}.json")
    try:
        text = json.dumps(raw)
    except TypeError:
        # MLflow would pickle it; a pickle runs code when loaded, so mltrail asks for a safe type instead.
        raise MltrailException(
            f"{header} produced an artifact '{name}' of type {type(raw).__name__}, which mltrail cannot store: "
            "expected a file path, a JSON string or JSON-serialisable object, a pandas DataFrame, a numpy array "
            "or a matplotlib Figure.") from None
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path, JsonEvaluationArtifact


def log_custom_artifacts(functions: Sequence[Callable[..., Any]] | None, eval_df: pd.DataFrame,
                         builtin_metrics: dict[str, Any], log_file: LogFile) -> dict[str, EvaluationArtifact]:
    """Call each `fn(eval_df, builtin_metrics, artifacts_dir)` and log what it returns."""
    out: dict[str, EvaluationArtifact] = {}
    for index, function in enumerate(functions or []):
        name = getattr(function, "__name__", repr(function))
        header = f"Custom artifact function '{name}' at index {index} in the `custom_artifacts` parameter"
        with tempfile.TemporaryDirectory(prefix="mltrail-custom-") as work, \
                tempfile.TemporaryDirectory(prefix="mltrail-custom-out-") as staged:
            result = function(eval_df.copy(), dict(builtin_metrics), work)
            if result is None:
                _logger.warning("%s returned None.", header)
                continue
            if not (isinstance(result, dict) and all(isinstance(k, str) for k in result)):
                _logger.warning("%s did not return artifacts as a dictionary of string artifact names with their "
                                "corresponding objects.", header)
                continue
            for artifact_name, raw in result.items():
                path, artifact_cls = _write(artifact_name, raw, staged, header)
                artifact = artifact_cls(uri=log_file(path))
                artifact._load(path)
                out[artifact_name] = artifact
    return out
