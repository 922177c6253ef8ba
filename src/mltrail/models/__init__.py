"""Models: the MLmodel file, signatures and schemas, pyfunc loading, environments and model URIs.

Importing this package is light: numpy, pandas and TensorFlow load only when a function needs them.
"""

from __future__ import annotations

from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model, ModelInfo, get_model_info
from mltrail.models.signature import ModelSignature, infer_signature

__all__ = ["MLMODEL_FILE_NAME", "Model", "ModelInfo", "ModelSignature", "get_model_info", "infer_signature"]
