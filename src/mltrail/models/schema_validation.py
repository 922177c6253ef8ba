"""`mltrail.models.validate_schema`, MLflow's `mlflow.models.validate_schema`: check data against a Schema.

The check is the one `predict` applies (`mltrail.models.enforce`), so data that passes here passes there.
"""

from __future__ import annotations

from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.types import Schema

__all__ = ["validate_schema"]


def validate_schema(data: Any, expected_schema: Schema) -> None:
    """Raise unless `data` fits `expected_schema` (e.g. `get_model_info(uri).signature.inputs`).

    Args:
        data: a DataFrame, Series, numpy array, list, dict or str, as `PyFuncModel.predict` takes.
        expected_schema: the `Schema` to check against.

    Raises:
        InvalidParameterValue: the data does not fit; the message names what was expected and received.
    """
    from mltrail.models.enforce import enforce_schema

    if not isinstance(expected_schema, Schema):
        raise InvalidParameterValue(
            f"expected_schema must be a mltrail.types.Schema (e.g. a signature's .inputs); received "
            f"{type(expected_schema).__name__}.")
    if data is None:
        if expected_schema.is_tensor_spec():
            raise InvalidParameterValue(f"Model is missing inputs: received None, expected {expected_schema}.")
        raise InvalidParameterValue("Expected input to be DataFrame. Found: NoneType.")
    try:
        enforce_schema(data, expected_schema)
    except (ValueError, TypeError, KeyError) as e:  # what numpy/pandas raise on data they cannot convert
        raise InvalidParameterValue(
            f"Failed to enforce schema of data with schema {expected_schema}. Error: {e}") from None
