"""`spark_udf`: MLflow's Spark UDF of a model, which mltrail does not offer (it has no Spark integration)."""

from __future__ import annotations

from typing import Any

from mltrail.errors import MltrailException

__all__ = ["spark_udf"]


def spark_udf(spark: Any, model_uri: str, result_type: Any = None, env_manager: str | None = None,
              params: dict[str, Any] | None = None, extra_env: dict[str, str] | None = None,
              prebuilt_env_uri: str | None = None, model_config: dict[str, Any] | None = None) -> Any:
    """Not supported: always raises. Load the model with `mltrail.pyfunc.load_model` and call `predict` instead.

    Raises:
        MltrailException: always (mltrail does not integrate with Spark).
    """
    raise MltrailException(
        f"mltrail.pyfunc.spark_udf is not supported: mltrail has no Spark integration (asked for {model_uri!r}). "
        "Load the model with mltrail.pyfunc.load_model(model_uri) and call its predict method, for example inside "
        "a pandas UDF you define.")
