"""pandas datasets: `from_pandas(df, targets="label")`. pandas is imported only when used."""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mltrail.data._digest import MAX_ROWS, md5_digest
from mltrail.data._schema import infer_colspec_schema
from mltrail.data.dataset import Dataset
from mltrail.data.sources import DatasetSource, resolve_or_code_source
from mltrail.errors import InvalidParameterValue, MltrailException

if TYPE_CHECKING:
    import pandas as pd

_logger = logging.getLogger(__name__)


def pandas_digest(df: pd.DataFrame) -> str:
    """Digest of a DataFrame: its first MAX_ROWS rows (numeric, bool and string columns), length and columns."""
    import numpy as np
    import pandas as pd

    head = df.head(MAX_ROWS)
    keep = [c for c in head.columns
            if pd.api.types.is_numeric_dtype(head[c]) or pd.api.types.is_bool_dtype(head[c])
            or pd.api.types.infer_dtype(head[c], skipna=True) == "string"]
    elements: list[Any] = [pd.util.hash_pandas_object(head[keep]).values, np.int64(len(df))]
    elements += [str(c).encode() for c in df.columns]
    return md5_digest(elements)


class PandasDataset(Dataset):
    """A pandas DataFrame, with optional target and prediction column names."""

    def __init__(self, df: pd.DataFrame, source: DatasetSource, targets: str | None = None, name: str | None = None,
                 digest: str | None = None, predictions: str | None = None) -> None:
        import pandas as pd

        if not isinstance(df, pd.DataFrame):
            raise InvalidParameterValue(f"Invalid df: received {type(df).__name__}; expected a pandas DataFrame.")
        for what, col in (("targets", targets), ("predictions", predictions)):
            if col is not None and col not in df.columns:
                raise InvalidParameterValue(
                    f"The DataFrame has no {what} column {col!r}: its columns are {list(map(str, df.columns))}.")
        self._df = df
        self._targets = targets
        self._predictions = predictions
        super().__init__(source=source, name=name, digest=digest)

    def _compute_digest(self) -> str:
        return pandas_digest(self._df)

    @property
    def df(self) -> pd.DataFrame:
        return self._df

    @property
    def targets(self) -> str | None:
        """The name of the target column, if any."""
        return self._targets

    @property
    def predictions(self) -> str | None:
        """The name of the predictions column, if any."""
        return self._predictions

    @property
    def profile(self) -> dict[str, Any]:
        return {"num_rows": len(self._df), "num_elements": int(self._df.size)}

    @cached_property
    def schema(self) -> dict[str, Any] | None:
        """`{"mlflow_colspec": [{"type": "double", "name": "a", "required": true}, ...]}`, or None."""
        try:
            return infer_colspec_schema(self._df)
        except MltrailException as e:
            # A schema is a nicety: an odd column must not stop the dataset from being logged.
            _logger.warning("No schema for pandas dataset %r: %s", self.name, e.message)
            return None


def from_pandas(df: pd.DataFrame, source: str | DatasetSource | None = None, targets: str | None = None,
                name: str | None = None, digest: str | None = None, predictions: str | None = None) -> PandasDataset:
    """A PandasDataset for `log_input`.

    Args:
        df: the DataFrame.
        source: where the data came from (a DatasetSource, a path, an s3:// or http(s):// URI);
            by default the program building it (a "code" source).
        targets: the name of the target column, if any (it must exist).
        name: the dataset's name ("dataset" by default).
        digest: a fingerprint to use instead of the computed one.
        predictions: the name of a column holding model predictions, if any (it must exist).
    """
    return PandasDataset(df=df, source=resolve_or_code_source(source), targets=targets, name=name, digest=digest,
                         predictions=predictions)
