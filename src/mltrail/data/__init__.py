"""Dataset tracking, MLflow's `mlflow.data`: describe the data a run used and log it with `log_input`.

`from_numpy`, `from_pandas` and `from_tensorflow` build a Dataset (name, digest, schema, profile,
source). Importing this package loads neither pandas nor TensorFlow: they load when first used.
"""

from __future__ import annotations

from mltrail.data import sources
from mltrail.data.dataset import Dataset
from mltrail.data.numpy_dataset import NumpyDataset, from_numpy
from mltrail.data.pandas_dataset import PandasDataset, from_pandas
from mltrail.data.sources import (
    CodeDatasetSource,
    DatasetSource,
    HTTPDatasetSource,
    LocalArtifactDatasetSource,
    S3ArtifactDatasetSource,
    get_dataset_source_from_json,
)
from mltrail.data.tensorflow_dataset import TensorFlowDataset, from_tensorflow
from mltrail.entities import Dataset as DatasetEntity
from mltrail.entities import DatasetInput
from mltrail.errors import InvalidParameterValue


def get_source(dataset: Dataset | DatasetEntity | DatasetInput) -> DatasetSource:
    """The source of a dataset, or of one logged with a run (`run.inputs.dataset_inputs[i]`)."""
    if isinstance(dataset, DatasetInput):
        dataset = dataset.dataset
    if isinstance(dataset, DatasetEntity):
        return get_dataset_source_from_json(dataset.source, dataset.source_type)
    if isinstance(dataset, Dataset):
        return dataset.source
    raise InvalidParameterValue(
        f"Cannot get the source of a {type(dataset).__name__}: expected a mltrail.data.Dataset, a "
        "mltrail.entities.Dataset or a mltrail.entities.DatasetInput.")


__all__ = [
    "CodeDatasetSource", "Dataset", "DatasetSource", "HTTPDatasetSource", "LocalArtifactDatasetSource",
    "NumpyDataset", "PandasDataset", "S3ArtifactDatasetSource", "TensorFlowDataset", "from_numpy", "from_pandas",
    "from_tensorflow", "get_source", "sources",
]
