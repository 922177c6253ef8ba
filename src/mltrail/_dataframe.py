"""Runs as a pandas DataFrame with MLflow's column names (pandas is imported only here)."""

from __future__ import annotations

from typing import Any

_INFO_COLUMNS = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]


def runs_to_dataframe(runs: list[Any]) -> Any:
    import numpy as np
    import pandas as pd

    metric_keys = sorted({k for r in runs for k in r.data.metrics})
    param_keys = sorted({k for r in runs for k in r.data.params})
    tag_keys = sorted({k for r in runs for k in r.data.tags})
    cols: dict[str, Any] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "status": [r.info.status for r in runs],
        "artifact_uri": [r.info.artifact_uri for r in runs],
        "start_time": pd.to_datetime([r.info.start_time for r in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([r.info.end_time for r in runs], unit="ms", utc=True),
    }
    for k in metric_keys:
        cols[f"metrics.{k}"] = np.array([r.data.metrics.get(k, np.nan) for r in runs], dtype="float64")
    for k in param_keys:
        cols[f"params.{k}"] = [r.data.params.get(k) for r in runs]
    for k in tag_keys:
        cols[f"tags.{k}"] = [r.data.tags.get(k) for r in runs]
    if not runs:
        return pd.DataFrame({c: [] for c in _INFO_COLUMNS})
    return pd.DataFrame(cols)
