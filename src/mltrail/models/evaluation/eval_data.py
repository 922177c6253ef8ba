"""The data `evaluate` scores: features, labels and static predictions taken from numpy, pandas or a Dataset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mltrail.data import Dataset, NumpyDataset, PandasDataset, from_numpy, from_pandas
from mltrail.errors import InvalidParameterValue


@dataclass
class EvaluationData:
    """Features as the model will see them, labels, optional static predictions, and the Dataset to log."""

    features: pd.DataFrame
    labels: np.ndarray | None
    predictions: np.ndarray | None
    targets_name: str | None
    predictions_name: str | None
    dataset: Dataset

    def features_copy(self) -> pd.DataFrame:
        """A copy for each consumer: a model or a metric may change what it is given."""
        return self.features.copy(deep=True)


def default_feature_names(count: int) -> list[str]:
    """MLflow's names for unnamed numpy features: feature_1, ... zero-padded to the same width."""
    width = math.ceil(math.log10(count + 1))
    return [f"feature_{str(i + 1).zfill(width)}" for i in range(count)]


def to_mltrail_dataset(data: Any, targets: Any, predictions: str | None) -> Dataset:
    """Wrap a list, ndarray or DataFrame in a mltrail Dataset (the form that is logged as the run's input)."""
    if isinstance(data, Dataset):
        return data
    if predictions is not None and not isinstance(data, pd.DataFrame):
        raise InvalidParameterValue(
            "If predictions is specified, data must be one of the following types, or an MLflow Dataset that "
            f"represents one of the following types: pandas DataFrame. Received: {type(data).__name__}.")
    if isinstance(data, list):
        if data and not isinstance(data[0], (list, np.ndarray)):
            data = [[x] for x in data]  # a flat list is one feature per sample
        return from_numpy(np.array(data), targets=np.asarray(targets) if targets is not None else None)
    if isinstance(data, np.ndarray):
        return from_numpy(data, targets=np.asarray(targets) if targets is not None else None)
    if isinstance(data, pd.DataFrame):
        return from_pandas(data, targets=targets, predictions=predictions)
    raise InvalidParameterValue(
        "The data argument must be a numpy array, a list or a Pandas DataFrame, or a mltrail.data Dataset; "
        f"received {type(data).__name__}.")


def evaluation_data(dataset: Dataset, feature_names: list[str] | None) -> EvaluationData:
    """Split a PandasDataset or NumpyDataset into features, labels and predictions as MLflow's evaluator does."""
    if feature_names is not None and len(set(feature_names)) < len(list(feature_names)):
        raise InvalidParameterValue("`feature_names` argument must be a list containing unique feature names.")
    if isinstance(dataset, PandasDataset):
        return _from_pandas(dataset, feature_names)
    if isinstance(dataset, NumpyDataset):
        return _from_numpy(dataset, feature_names)
    raise InvalidParameterValue(
        f"evaluate takes a PandasDataset or a NumpyDataset; received a {type(dataset).__name__}.")


def _from_pandas(dataset: PandasDataset, feature_names: list[str] | None) -> EvaluationData:
    df = dataset.df
    labels = df[dataset.targets].to_numpy() if dataset.targets is not None else None
    predictions = df[dataset.predictions].to_numpy() if dataset.predictions is not None else None
    if feature_names is not None:
        missing = [c for c in feature_names if c not in df.columns]
        if missing:
            raise InvalidParameterValue(
                f"feature_names {missing} are not columns of the data: its columns are {list(map(str, df.columns))}.")
        features = df[list(feature_names)]
    else:
        features = df.drop(columns=[c for c in (dataset.targets, dataset.predictions) if c is not None])
    return EvaluationData(features, labels, predictions, dataset.targets, dataset.predictions, dataset)


def _from_numpy(dataset: NumpyDataset, feature_names: list[str] | None) -> EvaluationData:
    if not isinstance(dataset.features, np.ndarray) or dataset.features.ndim != 2:
        raise InvalidParameterValue(
            "If the `data` argument is a numpy array, it must be a 2-dimension array and second dimension "
            "represent the number of features. If the `data` argument is a list, each of its elements must be a "
            "feature array of the numpy array or list, and all elements must have the same length. Received: "
            f"features of shape {_shape(dataset.features)}.")
    array = dataset.features
    labels = dataset.targets
    if labels is not None:
        if not isinstance(labels, np.ndarray):
            raise InvalidParameterValue(
                f"evaluate takes numpy targets as one array; received a {type(labels).__name__}.")
        if len(labels) != len(array):
            raise InvalidParameterValue(
                "The input features example rows must be the same length with labels array. Received: "
                f"{len(array)} rows of features and {len(labels)} labels.")
    if feature_names is not None:
        if len(feature_names) != array.shape[1]:
            raise InvalidParameterValue(
                "feature name list must be the same length with feature data. Received: "
                f"{len(feature_names)} names for {array.shape[1]} features.")
        names = list(feature_names)
    else:
        names = default_feature_names(array.shape[1])
    return EvaluationData(pd.DataFrame(array, columns=names), labels, None, None, None, dataset)


def _shape(value: Any) -> Any:
    return getattr(value, "shape", type(value).__name__)
