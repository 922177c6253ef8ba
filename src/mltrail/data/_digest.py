"""Dataset digests: a short, stable hash over a sample of the data plus its full dimensions.

A digest reads at most `MAX_ROWS` values of each array, so it stays cheap on large data and is
the same in every process (no Python `hash()`, which is salted per process). Values are hashed
with pandas' `hash_array`, as MLflow does, so the same data gets the same digest in both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from mltrail.errors import InvalidParameterValue

# How many leading values of each array (flattened) go into a digest.
MAX_ROWS = 10000


def md5_digest(elements: Iterable[Any]) -> str:
    """The first 8 hex characters of the md5 of `elements` (bytes or buffer-like objects)."""
    md5 = hashlib.md5(usedforsecurity=False)
    count = 0
    for element in elements:
        md5.update(element)
        count += 1
    if count == 0:
        raise InvalidParameterValue("Cannot compute a dataset digest from no data: expected at least one element.")
    return md5.hexdigest()[:8]


def hash_values(values: np.ndarray) -> Any:
    """A buffer that fingerprints a 1-d array's values (its size alone where values can't be hashed)."""
    import pandas as pd

    try:
        return pd.util.hash_array(values)
    except TypeError:
        # Unhashable objects (lists, dicts): fall back to the count, as MLflow does.
        return np.int64(values.size)


def array_elements(array: np.ndarray, max_values: int = MAX_ROWS) -> list[Any]:
    """Digest elements of one array: its first `max_values` values and its full shape."""
    flat = np.asarray(array).reshape(-1)[:max_values]
    return [hash_values(flat)] + [np.int64(d) for d in np.shape(array)]


def numpy_digest(features: Any, targets: Any = None) -> str:
    """Digest of numpy features (an array or a dict of arrays) and optional targets."""
    elements: list[Any] = []
    for item in (features, targets):
        if item is None:
            continue
        if isinstance(item, dict):
            for key in sorted(item):
                elements.extend(array_elements(item[key]))
        else:
            elements.extend(array_elements(item))
    return md5_digest(elements)
