"""infer_signature for every input kind, and ModelSignature's MLmodel encoding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mltrail.errors import InvalidParameterValue
from mltrail.models import ModelSignature, infer_signature
from mltrail.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec


def test_numpy_array_gets_a_batch_dimension():
    sig = infer_signature(np.random.uniform(size=[2, 28, 28, 3]), np.zeros([2, 2], dtype=np.float32))
    assert sig.inputs == Schema([TensorSpec(np.dtype("float64"), (-1, 28, 28, 3))])
    assert sig.outputs == Schema([TensorSpec(np.dtype("float32"), (-1, 2))])
    assert sig.params is None


def test_dict_of_arrays_gives_named_tensors():
    sig = infer_signature({"a": np.zeros([3, 4], np.float32), "b": [[1, 2], [3, 4]]})
    assert sig.inputs == Schema([TensorSpec(np.dtype("float32"), (-1, 4), "a"),
                                 TensorSpec(np.dtype("int64"), (-1, 2), "b")])
    assert sig.outputs is None


def test_dataframe_gives_columns():
    df = pd.DataFrame({"x": [1.0, 2.0], "n": np.array([1, 2], dtype=np.int64), "s": ["a", "b"],
                       "f": np.array([1, 2], dtype=np.float32), "flag": [True, False], "gap": [1.0, None]})
    sig = infer_signature(df, pd.Series([0.1, 0.2], name="score"))
    assert sig.inputs == Schema([ColSpec("double", "x"), ColSpec("long", "n"), ColSpec("string", "s"),
                                 ColSpec("float", "f"), ColSpec("boolean", "flag"),
                                 ColSpec("double", "gap", required=False)])
    assert sig.outputs == Schema([ColSpec("double", "score")])


def test_lists_and_scalars():
    assert infer_signature([[1.0, 2.0], [3.0, 4.0]]).inputs == Schema([TensorSpec(np.dtype("float64"), (-1, 2))])
    assert infer_signature(["a", "b"]).inputs == Schema([ColSpec(DataType.string)])
    records = infer_signature([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]).inputs
    assert records == Schema([ColSpec("long", "a"), ColSpec("string", "b")])
    assert infer_signature({"k": 1.5, "t": "s"}).inputs == Schema([ColSpec("double", "k"), ColSpec("string", "t")])
    multi = infer_signature(None, [np.zeros([2, 3], np.float32), np.zeros([2, 1], np.float32)]).outputs
    assert [s.shape for s in multi.inputs] == [(-1, 3), (-1, 1)]


def test_params_are_inferred():
    sig = infer_signature(np.zeros([1, 2]), params={"temperature": 0.7, "top_k": 5, "stops": ["a", "b"],
                                                    "greedy": False})
    assert sig.params == ParamSchema([ParamSpec("temperature", "double", 0.7), ParamSpec("top_k", "long", 5),
                                      ParamSpec("stops", "string", ["a", "b"], (-1,)),
                                      ParamSpec("greedy", "boolean", False)])


def test_uninferrable_inputs_are_refused_clearly():
    with pytest.raises(InvalidParameterValue, match="mixes"):
        infer_signature(pd.DataFrame({"m": [1, "a"]}))
    with pytest.raises(InvalidParameterValue, match="ragged or mixed"):
        infer_signature(np.array([[1, 2], [3]], dtype=object))
    with pytest.raises(InvalidParameterValue, match="Cannot infer a schema from object"):
        infer_signature(object())


def test_mlmodel_encoding_round_trip():
    sig = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 28, 28, 3))]),
                         outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2))]),
                         params=ParamSchema([ParamSpec("t", "double", 1.0)]))
    d = sig.to_dict()
    assert d["inputs"] == '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}]'
    assert json.loads(d["outputs"]) == [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]
    assert ModelSignature.from_dict(d) == sig
    only_inputs = ModelSignature(inputs=Schema([ColSpec("double", "x")]))
    assert only_inputs.to_dict() == {"inputs": '[{"type": "double", "name": "x", "required": true}]',
                                     "outputs": None, "params": None}
    assert ModelSignature.from_dict(only_inputs.to_dict()) == only_inputs


def test_signature_needs_schemas():
    with pytest.raises(InvalidParameterValue, match="Schema"):
        ModelSignature(inputs=[TensorSpec(np.float32, (-1,))])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterValue, match="at least one"):
        ModelSignature()


@pytest.mark.tf
def test_tensorflow_tensors_are_inferred_like_arrays():
    import tensorflow as tf

    sig = infer_signature(tf.random.uniform([1, 28, 28, 3]), {"p": tf.zeros([1, 2], dtype=tf.int32)})
    assert sig.inputs == Schema([TensorSpec(np.dtype("float32"), (-1, 28, 28, 3))])
    assert sig.outputs == Schema([TensorSpec(np.dtype("int32"), (-1, 2), "p")])
