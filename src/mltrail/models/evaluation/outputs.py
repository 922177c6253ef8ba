"""A model's output turned into what the metrics need: one prediction per row, and class probabilities.

MLflow takes class probabilities only from a scikit-learn model's `predict_proba`. A Keras classifier
returns probabilities from `predict` itself, so here (on purpose, beyond MLflow) a classifier output of
several float columns is read as per-class probabilities (softmax), and one float column in [0, 1] with
two classes as the positive class's probability (sigmoid, threshold 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mltrail.errors import InvalidParameterValue

MISSING_OUTPUT_COLUMN = ("Output column name is not specified for the multi-output model. Please set the correct "
                         "output column name using the `predictions` parameter.")


def output_column(output: Any, column: str | None) -> Any:
    """The `column` of a DataFrame, dict or list-of-dicts output (or its only column); other outputs as they are."""
    if isinstance(output, list) and output and all(isinstance(row, dict) for row in output):
        output = pd.DataFrame(output)
    if isinstance(output, dict):
        output = pd.DataFrame(output)
    if not isinstance(output, pd.DataFrame):
        return output
    if column is not None and column in output.columns:
        return output[column].to_numpy()
    if len(output.columns) == 1:
        return output.iloc[:, 0].to_numpy()
    if column is None:
        return output  # several unnamed columns: the caller decides (probabilities) or refuses
    raise InvalidParameterValue(
        f"Output column name '{column}' is not found in the model predictions dataframe "
        f"{list(map(str, output.columns))}. Please set the correct output column name using the `predictions` "
        "parameter.")


def regression_predictions(output: Any, column: str | None, rows: int) -> np.ndarray:
    """One number per row from a regressor's output."""
    values = output_column(output, column)
    array = np.asarray(values.to_numpy() if isinstance(values, pd.DataFrame) else values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        if isinstance(values, pd.DataFrame):
            raise InvalidParameterValue(MISSING_OUTPUT_COLUMN)
        raise InvalidParameterValue(
            f"A regressor must return one value per row; received an output of shape {array.shape} for {rows} rows.")
    _check_rows(array, rows)
    return array


@dataclass
class ClassifierOutput:
    """Predicted labels, and the class probabilities (columns in `classes` order) when the output had them."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    classes: np.ndarray | None


def classifier_predictions(output: Any, column: str | None, y_true: np.ndarray,
                           label_list: Any | None) -> ClassifierOutput:
    """Labels (and probabilities, for softmax/sigmoid outputs) from a classifier's output."""
    values = output_column(output, column)
    array = np.asarray(values.to_numpy() if isinstance(values, pd.DataFrame) else values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    _check_rows(array, len(y_true))
    if array.ndim == 2 and _is_float(array):
        classes = _classes_for(array.shape[1], y_true, label_list, "per-class probabilities")
        return ClassifierOutput(classes[np.argmax(array, axis=1)], _rows_summing_to_one(array), classes)
    if array.ndim == 1 and _looks_like_sigmoid(array):
        classes = _classes_for(2, y_true, label_list, "a positive-class probability")
        positive = array.astype(float)
        probabilities = np.column_stack([1.0 - positive, positive])
        return ClassifierOutput(classes[(positive >= 0.5).astype(int)], probabilities, classes)
    if array.ndim != 1:
        if isinstance(values, pd.DataFrame):
            raise InvalidParameterValue(MISSING_OUTPUT_COLUMN)
        raise InvalidParameterValue(
            f"A classifier must return one label per row, or per-class probabilities; received an output of shape "
            f"{array.shape}.")
    return ClassifierOutput(array, None, None)


def _rows_summing_to_one(array: np.ndarray) -> np.ndarray:
    """float64 probabilities; a float32 softmax's round-off (rows summing to 1 within 1e-3) is divided out,
    since scikit-learn's log_loss warns about rows that do not sum to one."""
    probabilities = array.astype(np.float64)
    sums = probabilities.sum(axis=1, keepdims=True)
    if np.all(np.abs(sums - 1.0) < 1e-3):
        probabilities /= sums
    return probabilities


def _check_rows(array: np.ndarray, rows: int) -> None:
    if array.ndim == 0 or len(array) != rows:
        raise InvalidParameterValue(
            f"The model returned {0 if array.ndim == 0 else len(array)} predictions for {rows} rows of data.")


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating)


def _looks_like_sigmoid(array: np.ndarray) -> bool:
    """Floats in [0, 1] that are not all whole numbers: a probability, not a 0/1 label stored as float."""
    if not _is_float(array) or array.size == 0 or not np.all(np.isfinite(array)):
        return False
    return bool(np.all((array >= 0.0) & (array <= 1.0)) and np.any(array != np.round(array)))


def _classes_for(columns: int, y_true: np.ndarray, label_list: Any | None, what: str) -> np.ndarray:
    """The class of each probability column: `label_list`, the sorted labels, or 0..n-1 for integer labels."""
    if label_list is not None:
        classes = np.sort(np.asarray(label_list))
        if len(classes) == columns:
            return classes
        raise InvalidParameterValue(
            f"The model returned {what} for {columns} classes, but evaluator_config's label_list has "
            f"{len(classes)}: {list(classes)}.")
    seen = np.unique(y_true)
    if len(seen) == columns:
        return seen
    if np.issubdtype(seen.dtype, np.integer) and seen.min() >= 0 and seen.max() < columns:
        return np.arange(columns)
    raise InvalidParameterValue(
        f"The model returned {what} for {columns} classes, but the targets hold {len(seen)} labels "
        f"({list(seen)[:10]}): pass evaluator_config={{'label_list': [...]}} naming the class of each column.")
