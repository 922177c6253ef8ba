"""Models: the MLmodel file, signatures and schemas, pyfunc loading, environments and model URIs.

Importing this package is light: numpy, pandas and TensorFlow load only when a function needs them.
"""

from __future__ import annotations

from mltrail.models.input_example import ModelInputExample, convert_input_example_to_serving_input
from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model, ModelInfo, get_model_info
from mltrail.models.model_code import set_model
from mltrail.models.requirements_update import update_model_requirements
from mltrail.models.serving_input import validate_serving_input
from mltrail.models.set_signature import set_signature
from mltrail.models.signature import ModelSignature, infer_signature

# Model evaluation (mltrail.models.evaluation) loads pandas: its names resolve on first use.
_EVALUATION_NAMES = ("EvaluationArtifact", "EvaluationMetric", "EvaluationResult", "evaluate", "list_evaluators",
                     "make_metric")


# The rest load their own heavy parts; each resolves on first use from the module that holds it.
_LAZY_NAMES = {"MetricThreshold": "mltrail.models.evaluation.validation",
               "build_docker": "mltrail.models.docker_build",
               "infer_pip_requirements": "mltrail.models.requirements_inference",
               "predict": "mltrail.models.python_api", "validate_schema": "mltrail.models.schema_validation"}


def __getattr__(name: str) -> object:
    if name in _EVALUATION_NAMES:
        from mltrail.models import evaluation

        return getattr(evaluation, name)
    if name in _LAZY_NAMES:
        import importlib

        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'mltrail.models' has no attribute {name!r}")


__all__ = [*_EVALUATION_NAMES, *_LAZY_NAMES, "MLMODEL_FILE_NAME", "Model", "ModelInfo", "ModelSignature", "get_model_info", "infer_signature",
           "convert_input_example_to_serving_input", "set_signature", "set_model", "validate_serving_input", "ModelInputExample",
           "update_model_requirements"]
