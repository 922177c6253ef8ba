"""`mltrail.artifacts` (MLflow's `mlflow.artifacts`): download what a run or an artifact URI holds.

The repositories behind it are `mltrail.store.artifact`.
"""

from __future__ import annotations

from mltrail.client import Client
from mltrail.errors import InvalidParameterValue
from mltrail.uris import download_uri

__all__ = ["download_artifacts"]


def download_artifacts(artifact_uri: str | None = None, run_id: str | None = None,
                       artifact_path: str | None = None, dst_path: str | None = None,
                       tracking_uri: str | None = None) -> str:
    """Download a run's artifact (`run_id` + `artifact_path`) or any artifact URI; return the local path."""
    if (artifact_uri is None) == (run_id is None):
        raise InvalidParameterValue(
            "Exactly one of `artifact_uri` and `run_id` must be given "
            f"(received artifact_uri={artifact_uri!r}, run_id={run_id!r}).")
    if run_id is not None:
        return Client(tracking_uri).download_artifacts(run_id, artifact_path or "", dst_path)
    if artifact_path is not None:
        raise InvalidParameterValue("`artifact_path` goes with `run_id`; with `artifact_uri`, put the path in the URI.")
    return download_uri(artifact_uri or "", dst_path, tracking_uri)
