"""TensorFlow datasets: `from_tensorflow(tf.data.Dataset | tf.Tensor)`. TensorFlow loads only when used.

The schema comes from `element_spec` (no data read). The digest reads only the first elements
(at most `MAX_ELEMENTS` elements and `MAX_ROWS` values, through `.take()`), and adds the
cardinality and the element spec, so a large or infinite dataset is never iterated through.
A dataset whose first elements change between iterations (an unseeded `shuffle`) gets a
different digest each time: give such a dataset a `digest` yourself.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import Any

import numpy as np

from mltrail.data._digest import MAX_ROWS, array_elements, md5_digest, numpy_digest
from mltrail.data._schema import infer_tensor_specs, tensor_dataset_schema, tensor_spec
from mltrail.data.dataset import Dataset
from mltrail.data.sources import DatasetSource, resolve_or_code_source
from mltrail.errors import InvalidParameterValue

_logger = logging.getLogger(__name__)

# The most elements of a tf.data.Dataset a digest reads.
MAX_ELEMENTS = 1000


def _is_dataset(obj: Any) -> bool:
    import tensorflow as tf

    return isinstance(obj, tf.data.Dataset)


def _is_tensor(obj: Any) -> bool:
    import tensorflow as tf

    return bool(tf.is_tensor(obj))


def _cardinality(ds: Any) -> int:
    """Number of elements; -1 when infinite, -2 when unknown (tf.data's constants)."""
    return int(ds.cardinality().numpy())


def _spec_entries(element_spec: Any) -> list[dict[str, Any]] | None:
    """Tensor specs of a dataset element: one spec, a tuple (named "0", "1", ...) or a dict of specs."""
    import tensorflow as tf

    def one(spec: Any, name: str | None) -> dict[str, Any] | None:
        if type(spec) is not tf.TensorSpec or spec.shape.rank is None:
            return None  # ragged, sparse, nested or unknown-rank elements have no tensor-spec form
        return tensor_spec(spec.dtype.as_numpy_dtype, spec.shape.as_list(), name=name)

    if isinstance(element_spec, dict):
        named = [(str(k), v) for k, v in element_spec.items()]
    elif isinstance(element_spec, tuple | list):
        named = [(str(i), v) for i, v in enumerate(element_spec)]
    else:
        named = [(None, element_spec)]  # type: ignore[list-item]
    entries = [one(spec, name) for name, spec in named]
    if any(e is None for e in entries):
        return None
    return entries  # type: ignore[return-value]


def _object_specs(obj: Any) -> list[dict[str, Any]] | None:
    if _is_dataset(obj):
        return _spec_entries(obj.element_spec)
    return infer_tensor_specs(obj.numpy())


def _dataset_elements(ds: Any) -> list[Any]:
    """Digest elements of a tf.data.Dataset: its first values, cardinality and element spec."""
    import json

    import tensorflow as tf

    elements: list[Any] = [np.int64(_cardinality(ds)), json.dumps(_spec_entries(ds.element_spec)).encode()]
    budget = MAX_ROWS
    for element in ds.take(MAX_ELEMENTS).as_numpy_iterator():
        for part in tf.nest.flatten(element):
            array = np.asarray(part)
            elements.extend(array_elements(array, budget))
            budget -= min(array.size, budget)
            if budget <= 0:
                return elements
    return elements


class TensorFlowDataset(Dataset):
    """Features (and optional targets) as a `tf.data.Dataset` or a `tf.Tensor`."""

    def __init__(self, features: Any, source: DatasetSource, targets: Any = None, name: str | None = None,
                 digest: str | None = None) -> None:
        if _is_dataset(features):
            if targets is not None and not _is_dataset(targets):
                raise InvalidParameterValue(
                    f"Invalid targets: received {type(targets).__name__}; features are a tf.data.Dataset, so "
                    "targets must be a tf.data.Dataset too.")
        elif _is_tensor(features):
            if targets is not None and not _is_tensor(targets):
                raise InvalidParameterValue(
                    f"Invalid targets: received {type(targets).__name__}; features are a tf.Tensor, so targets "
                    "must be a tf.Tensor too.")
        else:
            raise InvalidParameterValue(
                f"Invalid features: received {type(features).__name__}; expected a tf.data.Dataset or a tf.Tensor.")
        self._features = features
        self._targets = targets
        super().__init__(source=source, name=name, digest=digest)

    def _compute_digest(self) -> str:
        if _is_tensor(self._features):
            targets = self._targets.numpy() if self._targets is not None else None
            return numpy_digest(self._features.numpy(), targets)
        elements = _dataset_elements(self._features)
        if self._targets is not None:
            elements += _dataset_elements(self._targets)
        return md5_digest(elements)

    @property
    def features(self) -> Any:
        return self._features

    @property
    def data(self) -> Any:
        """The features (MLflow's name)."""
        return self._features

    @property
    def targets(self) -> Any:
        return self._targets

    @cached_property
    def schema(self) -> dict[str, Any] | None:
        """`{"mlflow_tensorspec": {...}}` from the element spec (or tensor), or None when it has no tensor form."""
        features = _object_specs(self._features)
        targets = _object_specs(self._targets) if self._targets is not None else None
        if features is None or (self._targets is not None and targets is None):
            _logger.warning("No schema for TensorFlow dataset %r: its elements are not plain tensors, tuples or "
                            "dicts of tensors.", self.name)
            return None
        return tensor_dataset_schema(features, targets)

    @cached_property
    def profile(self) -> dict[str, Any]:
        """num_rows (None when infinite or unknown) and MLflow's `features_cardinality`/`targets_cardinality`."""
        profile: dict[str, Any] = {}
        for side, obj in (("features", self._features), ("targets", self._targets)):
            if obj is None:
                continue
            if _is_dataset(obj):
                card = _cardinality(obj)
                rows = card if card >= 0 else None
                profile[f"{side}_cardinality"] = card
            else:
                shape = [int(d) for d in obj.shape]
                rows = shape[0] if shape else 1
                profile[f"{side}_cardinality"] = int(np.prod(shape))  # MLflow counts a tensor's elements
                profile[f"{side}_shape"] = shape
            if side == "features":
                profile["num_rows"] = rows
        return profile


def from_tensorflow(features: Any, source: str | DatasetSource | None = None, targets: Any = None,
                    name: str | None = None, digest: str | None = None) -> TensorFlowDataset:
    """A TensorFlowDataset for `log_input`.

    Args:
        features: a `tf.data.Dataset` or a `tf.Tensor`.
        source: where the data came from (a DatasetSource, a path, an s3:// or http(s):// URI);
            by default the program building it (a "code" source).
        targets: optional targets, of the same kind as `features`.
        name: the dataset's name ("dataset" by default).
        digest: a fingerprint to use instead of the computed one (do so for unseeded shuffles).
    """
    return TensorFlowDataset(features=features, source=resolve_or_code_source(source), targets=targets, name=name,
                             digest=digest)
