"""mltrail.data: from_numpy / from_pandas / from_tensorflow, their digests, schemas, profiles and sources,
and logging them to a run with log_input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import mltrail
import mltrail.data
from mltrail.data import (
    CodeDatasetSource,
    HTTPDatasetSource,
    LocalArtifactDatasetSource,
    NumpyDataset,
    PandasDataset,
    S3ArtifactDatasetSource,
)
from mltrail.data.sources import get_dataset_source_from_json, resolve_dataset_source
from mltrail.entities import Dataset as DatasetEntity
from mltrail.errors import InvalidParameterValue


def _images(seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).uniform(size=[20, 28, 28, 3])


def _specs(schema_side: str | None) -> list[dict]:
    return json.loads(schema_side) if schema_side is not None else []


def _digest_in_subprocess(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


# -- imports ----------------------------------------------------------------------------------------------


def test_import_loads_neither_pandas_nor_tensorflow():
    code = ("import sys, mltrail, mltrail.data; "
            "print(sorted(m for m in ('pandas', 'tensorflow', 'sqlalchemy') if m in sys.modules))")
    assert _digest_in_subprocess(code) == "[]"


def test_mltrail_data_is_reachable_as_an_attribute():
    assert mltrail.data.from_numpy is mltrail.data.numpy_dataset.from_numpy


# -- numpy ------------------------------------------------------------------------------------------------


def test_from_numpy_name_digest_schema_profile():
    x, y = _images(), np.arange(20)
    ds = mltrail.data.from_numpy(x, targets=y)
    assert isinstance(ds, NumpyDataset)
    assert ds.name == "dataset"
    assert mltrail.data.from_numpy(x, name="mnist_like").name == "mnist_like"
    assert len(ds.digest) == 8 and int(ds.digest, 16) >= 0
    assert ds.features is x and ds.targets is y

    tensorspec = ds.schema["mlflow_tensorspec"]
    assert _specs(tensorspec["features"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 28, 28, 3]}}]
    assert _specs(tensorspec["targets"]) == [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]

    assert ds.profile == {
        "features_shape": [20, 28, 28, 3], "features_size": 20 * 28 * 28 * 3, "features_nbytes": x.nbytes,
        "targets_shape": [20], "targets_size": 20, "targets_nbytes": y.nbytes,
    }


def test_from_numpy_without_targets_has_null_targets_schema():
    ds = mltrail.data.from_numpy(np.zeros((3, 2), dtype="float32"))
    assert ds.schema["mlflow_tensorspec"]["targets"] is None
    assert set(ds.profile) == {"features_shape", "features_size", "features_nbytes"}


def test_numpy_digest_is_stable_and_tracks_content_and_shape():
    x = _images()
    assert mltrail.data.from_numpy(x).digest == mltrail.data.from_numpy(x.copy()).digest
    assert mltrail.data.from_numpy(x).digest != mltrail.data.from_numpy(_images(seed=1)).digest
    assert mltrail.data.from_numpy(x).digest != mltrail.data.from_numpy(x, targets=np.arange(20)).digest
    flat = np.arange(12.0)
    assert mltrail.data.from_numpy(flat.reshape(3, 4)).digest != mltrail.data.from_numpy(flat.reshape(4, 3)).digest
    assert mltrail.data.from_numpy(x, digest="abc").digest == "abc"


def test_numpy_digest_reads_a_sample_but_counts_every_row():
    big = np.zeros((30000,))
    longer = np.zeros((30001,))
    assert mltrail.data.from_numpy(big).digest != mltrail.data.from_numpy(longer).digest
    tail_changed = big.copy()
    tail_changed[-1] = 1.0  # past the sampled values: same digest by design
    assert mltrail.data.from_numpy(big).digest == mltrail.data.from_numpy(tail_changed).digest


def test_numpy_digest_is_the_same_in_another_process():
    code = ("import numpy as np, mltrail.data as d; "
            "x = np.random.RandomState(0).uniform(size=[20, 28, 28, 3]); "
            "print(d.from_numpy(x, targets=np.arange(20)).digest)")
    assert _digest_in_subprocess(code) == mltrail.data.from_numpy(_images(), targets=np.arange(20)).digest


def test_from_numpy_dict_features():
    feats = {"image": np.zeros((5, 4, 4), dtype="float32"), "id": np.arange(5, dtype="int32")}
    ds = mltrail.data.from_numpy(feats, targets=np.ones(5))
    assert _specs(ds.schema["mlflow_tensorspec"]["features"]) == [
        {"name": "image", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4, 4]}},
        {"name": "id", "type": "tensor", "tensor-spec": {"dtype": "int32", "shape": [-1]}},
    ]
    assert ds.profile["features_shape"] == {"image": [5, 4, 4], "id": [5]}
    # dict order does not change the digest
    reordered = {"id": feats["id"], "image": feats["image"]}
    assert mltrail.data.from_numpy(reordered, targets=np.ones(5)).digest == ds.digest


def test_from_numpy_string_arrays_name_the_kind_only():
    ds = mltrail.data.from_numpy(np.array(["a", "bcd"]))
    assert _specs(ds.schema["mlflow_tensorspec"]["features"])[0]["tensor-spec"]["dtype"] == "str"


@pytest.mark.parametrize("bad", [[1, 2, 3], {"a": [1, 2]}, {}, "x"])
def test_from_numpy_refuses_non_arrays(bad):
    with pytest.raises(InvalidParameterValue, match="expected a numpy ndarray"):
        mltrail.data.from_numpy(bad)
    with pytest.raises(InvalidParameterValue, match="Invalid targets"):
        mltrail.data.from_numpy(np.zeros(2), targets=bad)


def test_to_dict_and_entity_carry_json_strings():
    ds = mltrail.data.from_numpy(np.zeros((2, 3)), source="data/train.npy", name="train")
    d = ds.to_dict()
    assert d["name"] == "train" and d["source_type"] == "local"
    assert json.loads(d["source"]) == {"uri": "data/train.npy"}
    assert json.loads(d["schema"]) == ds.schema and json.loads(d["profile"]) == ds.profile
    entity = ds._to_entity()
    assert isinstance(entity, DatasetEntity)
    assert (entity.name, entity.digest, entity.source_type, entity.source, entity.schema, entity.profile) == (
        d["name"], d["digest"], d["source_type"], d["source"], d["schema"], d["profile"])
    assert json.loads(ds.to_json()) == d


# -- sources ----------------------------------------------------------------------------------------------


def test_default_source_is_the_code_building_the_dataset():
    ds = mltrail.data.from_numpy(np.zeros(3))
    assert isinstance(ds.source, CodeDatasetSource)
    assert ds.to_dict()["source_type"] == "code"
    tags = json.loads(ds.to_dict()["source"])["tags"]
    assert tags["mlflow.source.type"] == "LOCAL" and "mlflow.source.name" in tags


@pytest.mark.parametrize(("raw", "cls", "stored"), [
    ("/data/train.csv", LocalArtifactDatasetSource, {"uri": "/data/train.csv"}),
    ("file:///data/train.csv", LocalArtifactDatasetSource, {"uri": "file:///data/train.csv"}),
    ("s3://bucket/train.parquet", S3ArtifactDatasetSource, {"uri": "s3://bucket/train.parquet"}),
    ("https://example.com/wine.csv", HTTPDatasetSource, {"url": "https://example.com/wine.csv"}),
])
def test_sources_resolve_and_round_trip(raw, cls, stored):
    source = resolve_dataset_source(raw)
    assert isinstance(source, cls)
    assert source.to_dict() == stored
    assert get_dataset_source_from_json(source.to_json(), cls.source_type) == source


def test_unknown_sources_are_refused():
    with pytest.raises(InvalidParameterValue, match="Cannot resolve a dataset source"):
        resolve_dataset_source("gs://bucket/x")
    with pytest.raises(InvalidParameterValue, match="Unknown dataset source type 'delta_table'"):
        get_dataset_source_from_json("{}", "delta_table")
    with pytest.raises(InvalidParameterValue, match="expected a dict with a string 'uri'"):
        get_dataset_source_from_json("{}", "local")


def test_local_source_load_returns_the_path(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text("a,b\n1,2\n")
    source = resolve_dataset_source(str(f))
    assert source.load() == str(f)
    copied = source.load(dst_path=str(tmp_path / "copy"))
    assert open(copied).read() == "a,b\n1,2\n"


# -- pandas -----------------------------------------------------------------------------------------------


def _frame(offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "a": [1.0 + offset, 2.0, None], "b": [1, 2, 3], "s": ["x", "y", "z"],
        "f": np.array([1, 2, 3], dtype="float32"), "i": np.array([1, 2, 3], dtype="int32"),
        "bo": [True, False, True], "t": pd.to_datetime(["2024-01-01"] * 3),
    })


def test_from_pandas_schema_profile_and_targets():
    df = _frame()
    ds = mltrail.data.from_pandas(df, targets="b", name="table")
    assert isinstance(ds, PandasDataset)
    assert ds.df is df and ds.targets == "b" and ds.name == "table"
    assert ds.schema == {"mlflow_colspec": [
        {"type": "double", "name": "a", "required": False},
        {"type": "long", "name": "b", "required": True},
        {"type": "string", "name": "s", "required": True},
        {"type": "float", "name": "f", "required": True},
        {"type": "integer", "name": "i", "required": True},
        {"type": "boolean", "name": "bo", "required": True},
        {"type": "datetime", "name": "t", "required": True},
    ]}
    assert ds.profile == {"num_rows": 3, "num_elements": 21}
    assert json.loads(ds._to_entity().schema) == ds.schema


def test_pandas_digest_is_stable_and_tracks_content_and_columns():
    assert mltrail.data.from_pandas(_frame()).digest == mltrail.data.from_pandas(_frame()).digest
    assert mltrail.data.from_pandas(_frame()).digest != mltrail.data.from_pandas(_frame(offset=5)).digest
    renamed = _frame().rename(columns={"a": "z"})
    assert mltrail.data.from_pandas(_frame()).digest != mltrail.data.from_pandas(renamed).digest
    code = ("import numpy as np, pandas as pd, mltrail.data as d; "
            "print(d.from_pandas(pd.DataFrame({'a': [1.5, 2.5], 's': ['x', 'y']})).digest)")
    here = mltrail.data.from_pandas(pd.DataFrame({"a": [1.5, 2.5], "s": ["x", "y"]})).digest
    assert _digest_in_subprocess(code) == here


def test_from_pandas_refuses_missing_target_column_and_non_frames():
    with pytest.raises(InvalidParameterValue, match="no targets column 'label'"):
        mltrail.data.from_pandas(_frame(), targets="label")
    with pytest.raises(InvalidParameterValue, match="expected a pandas DataFrame"):
        mltrail.data.from_pandas(np.zeros((2, 2)))


def test_pandas_schema_is_none_for_uninferable_columns(caplog):
    ds = mltrail.data.from_pandas(pd.DataFrame({"obj": [{"a": 1}, [1, 2]]}))
    assert ds.schema is None
    assert "schema" not in ds.to_dict()
    assert "No schema" in caplog.text


# -- logging to a run -------------------------------------------------------------------------------------


def test_log_input_stores_the_dataset_with_its_context(tracking):
    ds = mltrail.data.from_numpy(_images(), targets=np.arange(20), name="train_images")
    with mltrail.start_run() as run:
        mltrail.log_input(ds, context="training")
    stored = mltrail.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(stored) == 1
    entity = stored[0].dataset
    assert entity == ds._to_entity()
    assert {(t.key, t.value) for t in stored[0].tags} == {("mlflow.data.context", "training")}
    assert json.loads(entity.schema) == ds.schema
    assert json.loads(entity.profile)["features_shape"] == [20, 28, 28, 3]
    assert isinstance(mltrail.data.get_source(stored[0]), CodeDatasetSource)


def test_search_runs_by_dataset_name_and_digest(tracking):
    train = mltrail.data.from_pandas(_frame(), name="x", source="/data/x.csv")
    other = mltrail.data.from_numpy(np.zeros(3), name="y")
    with mltrail.start_run() as run_x:
        mltrail.log_input(train, context="training")
    with mltrail.start_run():
        mltrail.log_input(other, context="eval")
    found = mltrail.search_runs(filter_string="datasets.name = 'x'", output_format="list")
    assert [r.info.run_id for r in found] == [run_x.info.run_id]
    by_digest = mltrail.search_runs(filter_string=f"datasets.digest = '{train.digest}'", output_format="list")
    assert [r.info.run_id for r in by_digest] == [run_x.info.run_id]
    source = mltrail.data.get_source(mltrail.get_run(run_x.info.run_id).inputs.dataset_inputs[0])
    assert source == LocalArtifactDatasetSource("/data/x.csv")


# -- tensorflow -------------------------------------------------------------------------------------------


@pytest.mark.tf
def test_from_tensorflow_dataset_schema_profile_digest(tracking):
    import tensorflow as tf

    rng = np.random.RandomState(0)
    x, y = rng.uniform(size=(50, 4)).astype("float32"), np.arange(50)
    ds = mltrail.data.from_tensorflow(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), name="tf_train")
    assert isinstance(ds, mltrail.data.TensorFlowDataset) and ds.name == "tf_train"
    assert _specs(ds.schema["mlflow_tensorspec"]["features"]) == [
        {"name": "0", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}},
        {"name": "1", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}},
    ]
    assert ds.profile == {"num_rows": 7, "features_cardinality": 7}

    again = mltrail.data.from_tensorflow(tf.data.Dataset.from_tensor_slices((x, y)).batch(8))
    changed = mltrail.data.from_tensorflow(tf.data.Dataset.from_tensor_slices((x + 1, y)).batch(8))
    rebatched = mltrail.data.from_tensorflow(tf.data.Dataset.from_tensor_slices((x, y)).batch(10))
    assert again.digest == ds.digest
    assert len({ds.digest, changed.digest, rebatched.digest}) == 3

    with mltrail.start_run() as run:
        mltrail.log_input(ds, context="training")
    stored = mltrail.get_run(run.info.run_id).inputs.dataset_inputs[0]
    assert stored.dataset.name == "tf_train" and stored.dataset.digest == ds.digest


@pytest.mark.tf
def test_from_tensorflow_infinite_dataset_reads_only_a_sample():
    import tensorflow as tf

    infinite = tf.data.Dataset.from_tensor_slices({"a": np.zeros((4, 3), dtype="float32")}).repeat()
    ds = mltrail.data.from_tensorflow(infinite)
    assert ds.profile == {"num_rows": None, "features_cardinality": -1}
    assert _specs(ds.schema["mlflow_tensorspec"]["features"]) == [
        {"name": "a", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [3]}}]
    assert len(ds.digest) == 8


@pytest.mark.tf
def test_from_tensorflow_tensors_match_numpy_digest():
    import tensorflow as tf

    x = np.arange(12, dtype="float32").reshape(6, 2)
    ds = mltrail.data.from_tensorflow(tf.constant(x), targets=tf.constant(np.arange(6)))
    assert ds.digest == mltrail.data.from_numpy(x, targets=np.arange(6)).digest
    assert ds.profile == {"num_rows": 6, "features_cardinality": 12, "features_shape": [6, 2],
                          "targets_cardinality": 6, "targets_shape": [6]}
    assert _specs(ds.schema["mlflow_tensorspec"]["features"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]


@pytest.mark.tf
def test_from_tensorflow_refuses_mismatched_kinds():
    import tensorflow as tf

    with pytest.raises(InvalidParameterValue, match="expected a tf.data.Dataset or a tf.Tensor"):
        mltrail.data.from_tensorflow(np.zeros(3))
    with pytest.raises(InvalidParameterValue, match="targets must be a tf.data.Dataset"):
        mltrail.data.from_tensorflow(tf.data.Dataset.range(3), targets=tf.constant([1, 2, 3]))
    with pytest.raises(InvalidParameterValue, match="targets must be a tf.Tensor"):
        mltrail.data.from_tensorflow(tf.constant([1, 2, 3]), targets=np.zeros(3))


@pytest.mark.tf
def test_from_tensorflow_ragged_elements_have_no_schema(caplog):
    import tensorflow as tf

    ragged = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1, 2], [3]]))
    ds = mltrail.data.from_tensorflow(ragged)
    assert ds.schema is None and "schema" not in ds.to_dict()
    assert len(ds.digest) == 8
