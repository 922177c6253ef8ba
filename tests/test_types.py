"""Schemas and specs: construction rules and MLflow's JSON encoding."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mltrail.errors import InvalidParameterValue
from mltrail.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec


def test_import_is_light():
    code = "import sys, mltrail.types; print(sorted(m for m in ('numpy', 'pandas', 'tensorflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_datatype_names_and_conversions():
    assert [t.name for t in DataType] == ["boolean", "integer", "long", "float", "double", "string", "binary",
                                          "datetime"]
    assert DataType.double.to_numpy() == np.dtype("float64")
    assert DataType.integer.to_numpy() == np.dtype("int32")
    assert DataType.string.to_python() is str
    assert str(DataType.long) == "long"
    assert DataType.from_name("float") is DataType.float
    with pytest.raises(InvalidParameterValue, match="expected one of boolean"):
        DataType.from_name("decimal")


def test_tensor_spec_json_is_mlflows():
    spec = TensorSpec(np.dtype(np.float32), (-1, 28, 28, 3), "input")
    assert spec.to_dict() == {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]},
                              "name": "input"}
    unnamed = TensorSpec(np.dtype("int64"), [-1, 4])
    assert "name" not in unnamed.to_dict()
    assert unnamed.shape == (-1, 4)
    assert TensorSpec("float64", (-1,)).type == np.dtype("float64")
    assert TensorSpec(np.dtype("<U5"), (-1,)).to_dict()["tensor-spec"]["dtype"] == "str"


def test_tensor_spec_refuses_bad_input():
    with pytest.raises(InvalidParameterValue, match="shape"):
        TensorSpec(np.float32, "28x28")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterValue, match="dtype"):
        TensorSpec("not-a-dtype", (-1,))


def test_colspec_json():
    assert ColSpec("double", "x").to_dict() == {"type": "double", "name": "x", "required": True}
    assert ColSpec(DataType.string, required=False).to_dict() == {"type": "string", "required": False}
    assert ColSpec.from_json_dict(type="long", name="n", optional=True).required is False


def test_schema_round_trip_through_json():
    tensors = Schema([TensorSpec(np.dtype(np.float32), (-1, 28, 28, 3), "input")])
    assert json.loads(tensors.to_json()) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}, "name": "input"}]
    assert Schema.from_json(tensors.to_json()) == tensors
    cols = Schema([ColSpec("double", "a"), ColSpec("string", "b", required=False)])
    again = Schema.from_json(cols.to_json())
    assert again == cols
    assert again.input_names() == ["a", "b"]
    assert again.required_input_names() == ["a"]
    assert not again.is_tensor_spec() and tensors.is_tensor_spec()
    assert again.numpy_types() == [np.dtype("float64"), np.dtype("object")]


def test_schema_rules():
    with pytest.raises(InvalidParameterValue, match="only ColSpecs or only TensorSpecs"):
        Schema([ColSpec("double", "a"), TensorSpec(np.float32, (-1,), "b")])
    with pytest.raises(InvalidParameterValue, match="all named or all unnamed"):
        Schema([ColSpec("double", "a"), ColSpec("double")])
    with pytest.raises(InvalidParameterValue, match="unique"):
        Schema([ColSpec("double", "a"), ColSpec("long", "a")])
    with pytest.raises(InvalidParameterValue, match="at least one"):
        Schema([])
    assert Schema([ColSpec("double"), ColSpec("long")]).input_names() == [0, 1]


def test_param_schema_round_trip_and_validation():
    schema = ParamSchema([ParamSpec("temperature", "double", 0.5), ParamSpec("stop", DataType.string, ["a"], (-1,)),
                          ParamSpec("n", "long", 3)])
    encoded = schema.to_json()
    assert json.loads(encoded)[0] == {"name": "temperature", "type": "double", "default": 0.5, "shape": None}
    assert ParamSchema.from_json(encoded) == schema
    spec = schema.params[0]
    assert spec.validate_value(1) == 1.0
    with pytest.raises(InvalidParameterValue, match="expected double"):
        spec.validate_value("hot")
    with pytest.raises(InvalidParameterValue, match="expected a list"):
        schema.params[1].validate_value("x")
    with pytest.raises(InvalidParameterValue, match="expected long"):
        ParamSpec("n", "long", 1.5)
    with pytest.raises(InvalidParameterValue, match="unique"):
        ParamSchema([ParamSpec("a", "long", 1), ParamSpec("a", "long", 2)])
