"""Signature enforcement: what predict accepts, converts and refuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mltrail.errors import InvalidParameterValue, MltrailWarning
from mltrail.models.enforce import enforce_params, enforce_schema
from mltrail.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

IMAGES = Schema([TensorSpec(np.dtype(np.float32), (-1, 28, 28, 3), "input")])
TWO = Schema([TensorSpec(np.dtype(np.float32), (-1, 4), "a"), TensorSpec(np.dtype(np.int32), (-1, 3), "b")])


def test_shape_mismatch_names_expected_and_received():
    with pytest.raises(InvalidParameterValue) as e:
        enforce_schema(np.zeros([1, 10], np.float32), IMAGES)
    assert str(e.value) == ("Shape of input (1, 10) does not match expected shape (-1, 28, 28, 3) "
                            "for input 'input'.")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(InvalidParameterValue, match=r"Shape of input \(2, 28, 28\) .* \(-1, 28, 28, 3\)"):
        enforce_schema(np.zeros([2, 28, 28]), IMAGES)


def test_any_batch_size_passes():
    for n in (1, 7):
        out = enforce_schema(np.zeros([n, 28, 28, 3], np.float32), IMAGES)
        assert out.shape == (n, 28, 28, 3) and out.dtype == np.float32


def test_safe_casts_are_applied():
    assert enforce_schema(np.random.uniform(size=[2, 28, 28, 3]), IMAGES).dtype == np.float32  # float64 -> 32
    ints = enforce_schema(np.ones([1, 28, 28, 3], np.int64), IMAGES)
    assert ints.dtype == np.float32 and ints.sum() == 28 * 28 * 3
    schema64 = Schema([TensorSpec(np.dtype("float64"), (-1, 2))])
    assert enforce_schema(np.ones([1, 2], np.float32), schema64).dtype == np.float64
    int32 = Schema([TensorSpec(np.dtype("int32"), (-1, 2))])
    assert enforce_schema([[1, 2]], int32).dtype == np.int32  # python ints (int64) that fit


def test_unsafe_casts_are_refused():
    int32 = Schema([TensorSpec(np.dtype("int32"), (-1, 2), "ids")])
    with pytest.raises(InvalidParameterValue, match="dtype of input float64 does not match expected dtype int32 "
                                                    "for input 'ids'"):
        enforce_schema(np.array([[1.5, 2.0]]), int32)
    with pytest.raises(InvalidParameterValue, match="unsafe"):
        enforce_schema(np.array([[2**40, 1]]), int32)
    with pytest.raises(InvalidParameterValue, match="expected dtype float32"):
        enforce_schema(np.full([1, 28, 28, 3], "x"), IMAGES)
    f32 = Schema([TensorSpec(np.dtype("float32"), (-1, 1))])
    with pytest.raises(InvalidParameterValue, match="int64 does not match expected dtype float32"):
        enforce_schema(np.array([[2**31 + 1]], dtype=np.int64), f32)  # not exactly representable


def test_dict_inputs_by_name():
    out = enforce_schema({"b": [[1, 2, 3]], "a": np.zeros([1, 4]), "extra": 1}, TWO)
    assert list(out) == ["a", "b"]
    assert out["a"].dtype == np.float32 and out["b"].dtype == np.int32
    with pytest.raises(InvalidParameterValue, match=r"Missing input\(s\) \['b'\]: the model expects inputs "
                                                    r"\['a', 'b'\], received \['a'\]"):
        enforce_schema({"a": np.zeros([1, 4])}, TWO)
    with pytest.raises(InvalidParameterValue, match="expects 2 inputs"):
        enforce_schema(np.zeros([1, 4]), TWO)
    positional = enforce_schema([np.zeros([1, 4]), np.zeros([1, 3], np.int32)], TWO)
    assert list(positional) == ["a", "b"]


def test_dataframe_into_tensor_schema():
    flat = pd.DataFrame(np.random.uniform(size=[2, 28 * 28 * 3]))
    assert enforce_schema(flat, IMAGES).shape == (2, 28, 28, 3)
    df = pd.DataFrame({"a": [np.zeros(4), np.ones(4)], "b": [[1, 2, 3], [4, 5, 6]]})
    out = enforce_schema(df, TWO)
    assert out["a"].shape == (2, 4) and out["b"].tolist() == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(InvalidParameterValue, match="Shape of input"):
        enforce_schema(pd.DataFrame(np.zeros([2, 5])), IMAGES)


def test_column_schema():
    schema = Schema([ColSpec("double", "x"), ColSpec("long", "n"), ColSpec("string", "s", required=False)])
    out = enforce_schema(pd.DataFrame({"n": [1, 2], "x": [1, 2], "other": [0, 0]}), schema)
    assert list(out.columns) == ["x", "n"] and out["x"].dtype == np.float64
    records = enforce_schema([{"x": 1.5, "n": 2, "s": "a"}], schema)
    assert records.iloc[0].tolist() == [1.5, 2, "a"]
    assert enforce_schema({"x": 0.5, "n": 1}, schema).shape == (1, 2)
    with pytest.raises(InvalidParameterValue, match=r"Model is missing inputs \['n'\]"):
        enforce_schema(pd.DataFrame({"x": [1.0]}), schema)
    with pytest.raises(InvalidParameterValue, match="column 'n': received float64, expected long"):
        enforce_schema(pd.DataFrame({"x": [1.0], "n": [1.5]}), schema)
    with pytest.raises(InvalidParameterValue, match="Required column 'x' has missing values"):
        enforce_schema(pd.DataFrame({"x": [None, 1.0], "n": [1, 2]}), schema)
    unnamed = Schema([ColSpec("double"), ColSpec("double")])
    assert enforce_schema(np.array([[1, 2], [3, 4]]), unnamed).shape == (2, 2)


def test_without_schema_inputs_become_arrays():
    assert isinstance(enforce_schema([[1, 2]], None), np.ndarray)
    d = enforce_schema({"a": [1, 2]}, None)
    assert isinstance(d["a"], np.ndarray)
    df = pd.DataFrame({"a": [1]})
    assert enforce_schema(df, None) is df
    with pytest.raises(InvalidParameterValue, match="None"):
        enforce_schema(None, IMAGES)


def test_params():
    schema = ParamSchema([ParamSpec("t", "double", 0.5), ParamSpec("k", "long", 1)])
    assert enforce_params(None, schema) == {"t": 0.5, "k": 1}
    assert enforce_params({"t": 1}, schema) == {"t": 1.0, "k": 1}
    with pytest.raises(InvalidParameterValue, match="parameter 'k': expected long"):
        enforce_params({"k": "many"}, schema)
    with pytest.warns(MltrailWarning, match="ignored"):
        assert enforce_params({"zzz": 1}, schema) == {"t": 0.5, "k": 1}
    with pytest.warns(MltrailWarning, match="declares no parameters"):
        assert enforce_params({"t": 1}, None) is None
