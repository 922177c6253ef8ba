"""The scoring formats parsed into model inputs, and the errors for malformed bodies (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from mltrail.errors import BadRequest, InvalidParameterValue
from mltrail.serving._inputs import (
    UnsupportedMediaType,
    media_type,
    parse_csv,
    parse_request,
    validate,
)
from mltrail.types import ColSpec, DataType, Schema, TensorSpec


def parse(body: bytes | str, content_type: str | None = "application/json"):
    return parse_request(body.encode() if isinstance(body, str) else body, content_type)


def test_inputs_list_is_one_tensor():
    data, params = parse('{"inputs": [[1, 2], [3, 4]]}')
    assert params is None
    np.testing.assert_array_equal(data, np.array([[1, 2], [3, 4]]))


def test_inputs_dict_is_named_tensors():
    data, _ = parse('{"inputs": {"a": [[1.5, 2]], "b": [["x"]]}}')
    assert set(data) == {"a", "b"}
    assert data["a"].dtype == np.float64 and data["a"].shape == (1, 2)
    assert data["b"].dtype.kind == "U"


def test_instances_rows_and_row_objects():
    data, _ = parse('{"instances": [[1, 2], [3, 4], [5, 6]]}')
    assert data.shape == (3, 2)
    data, _ = parse('{"instances": [{"a": [1, 2], "b": 3}, {"a": [4, 5], "b": 6}]}')
    np.testing.assert_array_equal(data["a"], [[1, 2], [4, 5]])
    np.testing.assert_array_equal(data["b"], [3, 6])


def test_instances_rows_with_different_keys_are_refused():
    with pytest.raises(BadRequest, match="same keys"):
        parse('{"instances": [{"a": 1}, {"b": 2}]}')


def test_dataframe_split_and_records():
    df, _ = parse('{"dataframe_split": {"columns": ["x", "y"], "data": [[1, "a"], [2, "b"]]}}')
    assert list(df.columns) == ["x", "y"] and df["x"].tolist() == [1, 2]
    df2, _ = parse('{"dataframe_records": [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]}')
    assert df2.equals(df)


def test_dataframe_split_with_index():
    df, _ = parse('{"dataframe_split": {"columns": ["x"], "index": [7, 8], "data": [[1], [2]]}}')
    assert df.index.tolist() == [7, 8]


def test_csv_body():
    df, params = parse("x,y\n1,2.5\n3,4.5\n", "text/csv")
    assert params is None and df["y"].tolist() == [2.5, 4.5]


def test_csv_reads_columns_with_the_schema_types():
    schema = Schema([ColSpec(DataType.double, "x"), ColSpec(DataType.string, "z")])
    df = parse_csv("x,z\n1,007\n", schema)
    assert df["x"].dtype == np.float64 and df["z"].tolist() == ["007"]


def test_params_are_returned():
    data, params = parse('{"inputs": [1, 2], "params": {"k": 3}}')
    assert params == {"k": 3}


@pytest.mark.parametrize("body, match", [
    ("{not json", "Invalid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"data": [1]}', "exactly one of"),
    ('{"inputs": [1], "instances": [1]}', "exactly one of"),
    ('{"inputs": [[1, 2], [3]]}', "regular"),
    ('{"inputs": [[1, 2], [3, [4]]]}', "regular"),
    ('{"inputs": null}', "null"),
    ('{"instances": 5}', "list of rows"),
    ('{"dataframe_split": [1, 2]}', "dataframe_split"),
    ('{"dataframe_records": {"a": 1}}', "dataframe_records"),
    ('{"inputs": [1], "params": [1]}', "params"),
])
def test_malformed_bodies_are_bad_requests(body, match):
    with pytest.raises(BadRequest, match=match):
        parse(body)


def test_nan_literals_are_accepted():
    data, _ = parse('{"inputs": [NaN, 1.0]}')
    assert np.isnan(data[0])


def test_empty_csv_is_a_bad_request():
    with pytest.raises(BadRequest, match="empty"):
        parse("  ", "text/csv")


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "application/json; charset=latin-1",
                                          "application/json; format=pandas-split"])
def test_unsupported_content_types(content_type):
    with pytest.raises(UnsupportedMediaType):
        parse('{"inputs": [1]}', content_type)


def test_media_type_defaults_to_json_and_ignores_utf8_charset():
    assert media_type(None) == "application/json"
    assert media_type("Application/JSON; charset=UTF-8") == "application/json"


def test_validate_names_expected_and_received_shape():
    schema = Schema([TensorSpec(np.dtype("float32"), (-1, 3))])
    with pytest.raises(InvalidParameterValue, match=r"\(1, 2\).*\(-1, 3\)"):
        validate(np.zeros((1, 2)), schema)
    out = validate(np.zeros((2, 3)), schema)
    assert out.dtype == np.float32


def test_validate_names_expected_and_received_dtype():
    schema = Schema([TensorSpec(np.dtype("int32"), (-1, 2))])
    with pytest.raises(InvalidParameterValue, match="float64.*int32"):
        validate(np.array([[1.5, 2.0]]), schema)
