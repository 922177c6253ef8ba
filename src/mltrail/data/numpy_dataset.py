"""NumPy datasets: `from_numpy(features, targets=...)` over an ndarray or a dict of ndarrays."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from mltrail.data._digest import numpy_digest
from mltrail.data._schema import infer_tensor_specs, tensor_dataset_schema
from mltrail.data.dataset import Dataset
from mltrail.data.sources import DatasetSource, resolve_or_code_source
from mltrail.errors import InvalidParameterValue

NumpyData = np.ndarray | dict[str, np.ndarray]


def _check_numpy(value: Any, what: str) -> None:
    if isinstance(value, np.ndarray):
        return
    if isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
        return
    raise InvalidParameterValue(
        f"Invalid {what}: received {type(value).__name__}; expected a numpy ndarray or a non-empty dict of "
        "ndarrays.")


def _attr(data: NumpyData, attr: str) -> Any:
    """`shape`, `size` or `nbytes` of an array (shape as a list), or a dict of them."""
    def one(a: np.ndarray) -> Any:
        v = getattr(a, attr)
        return list(v) if attr == "shape" else int(v)

    return {k: one(v) for k, v in data.items()} if isinstance(data, dict) else one(data)


class NumpyDataset(Dataset):
    """Features (and optional targets) held as numpy arrays."""

    def __init__(self, features: NumpyData, source: DatasetSource, targets: NumpyData | None = None,
                 name: str | None = None, digest: str | None = None) -> None:
        _check_numpy(features, "features")
        if targets is not None:
            _check_numpy(targets, "targets")
        self._features = features
        self._targets = targets
        super().__init__(source=source, name=name, digest=digest)

    def _compute_digest(self) -> str:
        return numpy_digest(self._features, self._targets)

    @property
    def features(self) -> NumpyData:
        return self._features

    @property
    def targets(self) -> NumpyData | None:
        return self._targets

    @cached_property
    def schema(self) -> dict[str, Any] | None:
        """`{"mlflow_tensorspec": {"features": "<json>", "targets": "<json>" | None}}`."""
        targets = infer_tensor_specs(self._targets) if self._targets is not None else None
        return tensor_dataset_schema(infer_tensor_specs(self._features), targets)

    @property
    def profile(self) -> dict[str, Any]:
        """Shapes, sizes and byte counts of the features (and targets)."""
        profile = {f"features_{a}": _attr(self._features, a) for a in ("shape", "size", "nbytes")}
        if self._targets is not None:
            profile.update({f"targets_{a}": _attr(self._targets, a) for a in ("shape", "size", "nbytes")})
        return profile


def from_numpy(features: NumpyData, source: str | DatasetSource | None = None, targets: NumpyData | None = None,
               name: str | None = None, digest: str | None = None) -> NumpyDataset:
    """A NumpyDataset for `log_input`.

    Args:
        features: an ndarray or a dict of named ndarrays.
        source: where the data came from (a DatasetSource, a path, an s3:// or http(s):// URI);
            by default the program building it (a "code" source).
        targets: optional targets, an ndarray or a dict of ndarrays.
        name: the dataset's name ("dataset" by default).
        digest: a fingerprint to use instead of the computed one.

    Example:
        >>> import numpy as np, mltrail
        >>> ds = mltrail.data.from_numpy(np.zeros((4, 3)), targets=np.ones(4), name="zeros")
        >>> ds.name, len(ds.digest), ds.profile["features_shape"]
        ('zeros', 8, [4, 3])
    """
    return NumpyDataset(features=features, source=resolve_or_code_source(source), targets=targets, name=name,
                        digest=digest)
