"""MLflow's `mlflow.tracking.client` module: `MlflowClient`."""

from __future__ import annotations

from mltrail.client import Client, MlflowClient

__all__ = ["Client", "MlflowClient"]
