"""MLflow's request validation (`mltrail.server.validation`), through a real server over HTTP.

Each refusal below is what MLflow 3.17.2's server answers for the same request: the schema and
the sentences come from mlflow/server/handlers.py (`_get_request_message`,
`_validate_param_against_schema`, the `_assert_*` checks and each handler's `schema={...}`) and
mlflow/utils/validation.py (`invalid_value`, `missing_value`); which values pass the proto parse
(so skip the type checks) is google.protobuf.json_format's `ParseDict`. The comment on each group
names the MLflow handler whose schema the cases exercise.
"""

from __future__ import annotations

import time

import pytest

from mltrail.server import validation as V
from mltrail.server.routes import artifacts, experiments, metrics, models, registry, runs
from mltrail.store.journal import Entry, batch_body

A = "/api/2.0/mlflow"
DOCS = " See the API docs for more information about request parameters."


def invalid(value_json: str, param: str, type_name: str) -> str:
    # mlflow.utils.validation.invalid_value + the hint and docs part _validate_param_against_schema adds
    return (f"Invalid value {value_json} for parameter '{param}' supplied:  Hint: Value was of type "
            f"'{type_name}'.{DOCS}")


def missing(param: str) -> str:
    # handlers._assert_required / mlflow.utils.validation.missing_value, with the docs part
    return f"Missing value for required parameter '{param}'.{DOCS}"


METRIC = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}

# (method, path, JSON body or query params, expected message): each answered 400 INVALID_PARAMETER_VALUE
REFUSED = [
    # handlers._log_batch: run_id [_assert_string, _assert_required]; metrics/params/tags [_assert_array,
    # _assert_*_fields_present] (nested paths from missing_value(f"metrics[{idx}].key"), ...)
    ("POST", "/runs/log-batch", {"run_id": 123}, invalid("123", "run_id", "int")),
    ("POST", "/runs/log-batch", {"metrics": []}, missing("run_id")),
    ("POST", "/runs/log-batch", {"run_id": "r", "metrics": [{"key": "m", "value": 1}]},
     missing("metrics[0].timestamp")),
    ("POST", "/runs/log-batch", {"run_id": "r", "metrics": [METRIC, {"value": 1, "timestamp": 1}]},
     missing("metrics[1].key")),
    ("POST", "/runs/log-batch", {"run_id": "r", "metrics": [{**METRIC, "value": None}]}, missing("metrics[0].value")),
    ("POST", "/runs/log-batch", {"run_id": "r", "params": [{"value": "v"}]}, missing("params[0].key")),
    ("POST", "/runs/log-batch", {"run_id": "r", "tags": [{"key": "", "value": "v"}]}, missing("tags[0].key")),
    ("POST", "/runs/log-batch", {"run_id": "r", "metrics": {"key": "m"}}, invalid('{"key":"m"}', "metrics", "dict")),
    ("POST", "/runs/log-batch", {"run_id": "r", "tags": [{"key": 5, "value": "v"}], "params": "p"},
     invalid('"p"', "params", "str")),
    # handlers._log_metric: value [_assert_required, _assert_floatlike], timestamp [_assert_intlike,
    # _assert_required], step [_assert_intlike], key [_assert_required, _assert_string]
    ("POST", "/runs/log-metric", {"run_id": "r", "key": "m", "value": 1, "timestamp": 1, "step": "abc"},
     invalid('"abc"', "step", "str")),
    ("POST", "/runs/log-metric", {"run_id": "r", "key": "m", "value": "abc", "timestamp": 1},
     invalid('"abc"', "value", "str")),
    ("POST", "/runs/log-metric", {"run_id": "r", "key": "m", "value": 1}, missing("timestamp")),
    ("POST", "/runs/log-metric", {"run_id": "r", "key": 5, "value": 1, "timestamp": 1}, invalid("5", "key", "int")),
    ("POST", "/runs/log-metric", {"run_id": "r", "key": "m", "value": 1, "timestamp": 1.5, "model_id": 7},
     invalid("7", "model_id", "int")),
    # handlers._log_param / _set_tag: value [_assert_string]; run_id falls back on run_uuid
    # (_validate_request_json_with_schema)
    ("POST", "/runs/log-parameter", {"run_id": "r", "key": "p", "value": 1.5}, invalid("1.5", "value", "float")),
    ("POST", "/runs/set-tag", {"run_id": "r", "key": "t", "value": 5}, invalid("5", "value", "int")),
    ("POST", "/runs/set-tag", {"run_uuid": 5, "key": "t", "value": "v"}, invalid("5", "run_id", "int")),
    ("POST", "/runs/delete-tag", {"run_id": "r"}, missing("key")),
    # handlers._create_run: start_time [_assert_intlike]
    ("POST", "/runs/create", {"experiment_id": "0", "start_time": "soon"}, invalid('"soon"', "start_time", "str")),
    ("POST", "/runs/create", {"experiment_id": 0}, invalid("0", "experiment_id", "int")),
    # handlers._update_run: status [_assert_string] only bites when the proto parse failed elsewhere
    # (here run_name): the enum's number 3 parses, so alone it passes (see VALID)
    ("POST", "/runs/update", {"run_id": "r", "status": 3, "run_name": 5}, invalid("3", "status", "int")),
    ("POST", "/runs/update", {"run_id": "r", "end_time": "later"}, invalid('"later"', "end_time", "str")),
    # handlers._search_runs: max_results [_assert_intlike, <= 50000 (checked even when the type is fine)]
    ("POST", "/runs/search", {"experiment_ids": "0"}, invalid('"0"', "experiment_ids", "str")),
    ("POST", "/runs/search", {"experiment_ids": ["0"], "max_results": 50001}, invalid("50001", "max_results", "int")),
    ("POST", "/runs/search", {"experiment_ids": ["0"], "order_by": ["a", 1]}, invalid('["a",1]', "order_by", "list")),
    ("POST", "/runs/delete", {}, missing("run_id")),
    ("POST", "/runs/restore", {"run_id": ["r"]}, invalid('["r"]', "run_id", "list")),
    # handlers._log_inputs, _log_outputs (models [_assert_required, _assert_array]), _log_model
    ("POST", "/runs/log-inputs", {"run_id": "r", "datasets": {}}, invalid("{}", "datasets", "dict")),
    ("POST", "/runs/outputs", {"run_id": "r"}, missing("models")),
    ("POST", "/runs/log-model", {"run_id": "r", "model_json": {"a": 1}}, invalid('{"a":1}', "model_json", "dict")),
    # GET: the query string, only the proto's fields, as strings (_get_request_message)
    ("GET", "/runs/get", {}, missing("run_id")),
    ("GET", "/runs/get", {"unknown": "x"}, missing("run_id")),
    ("GET", "/metrics/get-history", {"run_id": "r"}, missing("metric_key")),
    ("GET", "/artifacts/list", {"path": "x"}, missing("run_id")),
    # handlers.get_metric_history_bulk_interval_handler: run_ids (<= 100, its own sentence),
    # max_results (_assert_intlike_within_range 1..2500, its own sentence), start_step [_assert_intlike]
    ("GET", "/metrics/get-history-bulk-interval", {"metric_key": "m"}, missing("run_ids")),
    ("GET", "/metrics/get-history-bulk-interval", {"run_ids": [f"r{i}" for i in range(101)], "metric_key": "m"},
     "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids." + DOCS),
    ("GET", "/metrics/get-history-bulk-interval", {"run_ids": "r", "metric_key": "m", "max_results": 5000},
     "max_results must be between 1 and 2500." + DOCS),
    ("GET", "/metrics/get-history-bulk-interval", {"run_ids": "r", "metric_key": "m", "start_step": "x"},
     invalid('"x"', "start_step", "str")),
    # handlers._create_experiment: name [_assert_required, _assert_string], tags [_assert_array]
    ("POST", "/experiments/create", {"name": 123}, invalid("123", "name", "int")),
    ("POST", "/experiments/create", {"name": "e", "tags": {"k": "v"}}, invalid('{"k":"v"}', "tags", "dict")),
    ("POST", "/experiments/create", {"name": ""}, missing("name")),
    # handlers._update_experiment: new_name [_assert_string, _assert_required]
    ("POST", "/experiments/update", {"experiment_id": "0"}, missing("new_name")),
    ("POST", "/experiments/set-experiment-tag", {"experiment_id": "0", "key": "k", "value": 5},
     invalid("5", "value", "int")),
    ("POST", "/experiments/delete-experiment-tag", {"experiment_id": "0"}, missing("key")),
    ("POST", "/experiments/delete", {"experiment_id": 0}, invalid("0", "experiment_id", "int")),
    ("GET", "/experiments/get", {}, missing("experiment_id")),
    ("GET", "/experiments/get-by-name", {}, missing("experiment_name")),
    # handlers._search_experiments: a value the proto refuses ("ten") makes every type check run, so
    # view_type's enum name, listed first in the schema, is refused for not being intlike
    ("GET", "/experiments/search", {"max_results": "ten"}, invalid('"ten"', "max_results", "str")),
    ("GET", "/experiments/search", {"view_type": "ACTIVE_ONLY", "max_results": "ten"},
     invalid('"ACTIVE_ONLY"', "view_type", "str")),
    ("POST", "/experiments/search", {"order_by": "name"}, invalid('"name"', "order_by", "str")),
    # handlers._create_registered_model, _rename_registered_model, _search_registered_models (<= 1000;
    # a GET value is a string, so the hint says 'str'), _get_latest_versions, _set_registered_model_alias
    ("POST", "/registered-models/create", {"name": 5}, invalid("5", "name", "int")),
    ("POST", "/registered-models/create", {"name": "m", "tags": "t"}, invalid('"t"', "tags", "str")),
    ("POST", "/registered-models/rename", {"name": "m"}, missing("new_name")),
    ("PATCH", "/registered-models/update", {"name": "m", "description": 5}, invalid("5", "description", "int")),
    ("DELETE", "/registered-models/delete", {}, missing("name")),
    ("GET", "/registered-models/get", {}, missing("name")),
    ("GET", "/registered-models/search", {"max_results": 1001}, invalid('"1001"', "max_results", "str")),
    ("POST", "/registered-models/get-latest-versions", {"name": "m", "stages": "Production"},
     invalid('"Production"', "stages", "str")),
    ("POST", "/registered-models/set-tag", {"name": "m", "key": "k", "value": False}, invalid("false", "value", "bool")),
    ("DELETE", "/registered-models/delete-tag", {"name": "m"}, missing("key")),
    ("POST", "/registered-models/alias", {"name": "m", "alias": "a", "version": 1}, invalid("1", "version", "int")),
    ("DELETE", "/registered-models/alias", {"name": "m"}, missing("alias")),
    ("GET", "/registered-models/alias", {"name": "m"}, missing("alias")),
    # handlers._create_model_version, _transition_stage (archive_existing_versions [_assert_bool]),
    # _search_model_versions (<= 200000), _delete_model_version, _update_model_version
    ("POST", "/model-versions/create", {"name": "m"}, missing("source")),
    ("POST", "/model-versions/create", {"name": "m", "source": "s", "run_id": 5}, invalid("5", "run_id", "int")),
    ("POST", "/model-versions/transition-stage",
     {"name": "m", "version": "1", "stage": "Production", "archive_existing_versions": "true"},
     invalid('"true"', "archive_existing_versions", "str")),
    ("GET", "/model-versions/search", {"max_results": 200_001}, invalid('"200001"', "max_results", "str")),
    ("DELETE", "/model-versions/delete", {"name": "m", "version": 1}, invalid("1", "version", "int")),
    ("PATCH", "/model-versions/update", {"name": "m", "version": "1", "description": 5},
     invalid("5", "description", "int")),
    ("GET", "/model-versions/get", {"name": "m"}, missing("version")),
    ("POST", "/model-versions/set-tag", {"name": "m", "version": "1", "key": 1}, invalid("1", "key", "int")),
    ("DELETE", "/model-versions/delete-tag", {"name": "m", "version": "1"}, missing("key")),
    # handlers._create_logged_model, _search_logged_models (experiment_ids [_assert_array,
    # _assert_item_type_string, _assert_required]), _finalize_logged_model and _log_logged_model_params
    # (model_id [_assert_string, _assert_required] in the body, whatever the URL says), _set_logged_model_tags
    ("POST", "/logged-models", {"name": "n"}, missing("experiment_id")),
    ("POST", "/logged-models", {"experiment_id": "0", "name": 5}, invalid("5", "name", "int")),
    ("POST", "/logged-models/search", {}, missing("experiment_ids")),
    ("POST", "/logged-models/search", {"experiment_ids": [1]}, invalid("[1]", "experiment_ids", "list")),
    ("PATCH", "/logged-models/m-1", {"status": "LOGGED_MODEL_READY"}, missing("model_id")),
    ("PATCH", "/logged-models/m-1", {"model_id": "m-1"}, missing("status")),
    ("PATCH", "/logged-models/m-1", {"model_id": 1, "status": 2}, invalid("1", "model_id", "int")),
    ("PATCH", "/logged-models/m-1/tags", {"tags": {}}, invalid("{}", "tags", "dict")),
    ("POST", "/logged-models/m-1/params", {"params": [{"key": "k", "value": "v"}]}, missing("model_id")),
    # handlers._reject_conflicting_field_aliases: one field in both spellings, here or nested (no docs part)
    ("POST", "/runs/log-metric", {"run_id": "r", "runId": "r", "key": "m", "value": 1, "timestamp": 1},
     "Request specifies both 'run_id' and 'runId'; provide only one of them."),
    ("POST", "/runs/log-batch", {"run_id": "r", "metrics": [{**METRIC, "model_id": "a", "modelId": "b"}]},
     "Request specifies both 'model_id' and 'modelId'; provide only one of them."),
]


def _send(api, method, path, data, prefix=A):
    if method == "GET":
        return api(method, prefix + path, params=data)
    return api(method, prefix + path, json=data)


@pytest.mark.parametrize(("method", "path", "data", "message"), REFUSED,
                         ids=[f"{m} {p} {i}" for i, (m, p, _, _) in enumerate(REFUSED)])
def test_mlflow_refuses_it_and_so_do_we(api, method, path, data, message):
    r = _send(api, method, path, data)
    assert r.status_code == 400, r.text
    assert r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": message}


def test_the_ajax_prefix_is_checked_alike(api):
    r = _send(api, "POST", "/experiments/create", {"name": 123}, prefix="/ajax-api/2.0/mlflow")
    assert r.status_code == 400 and r.json()["message"] == invalid("123", "name", "int")


@pytest.mark.parametrize(("method", "path", "data", "message"), [
    # _assert_intlike calls int({}): a TypeError, which MLflow's server lets out as an HTTP 500
    ("PATCH", "/logged-models/m-1", {"model_id": "m-1", "status": {}}, invalid("{}", "status", "dict")),
    # `lambda x: _assert_less_than_or_equal(int(x), 1000)` on "1e3", a value the proto parse accepts
    ("GET", "/registered-models/search", {"max_results": "1e3"}, invalid('"1e3"', "max_results", "str")),
])
def test_where_mlflow_fails_with_a_500_we_refuse_with_its_sentence(api, method, path, data, message):
    r = _send(api, method, path, data)
    assert r.status_code == 400 and r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": message}


def test_checks_come_before_the_handler(api):
    """A refused field is answered with MLflow's sentence even where the handler would fail otherwise."""
    r = api("POST", f"{A}/runs/log-batch", json={"run_id": "no-such-run", "metrics": [{"key": "x", "value": 1}]})
    assert r.status_code == 400 and r.json()["message"] == missing("metrics[0].timestamp")


# ------------------------------------------------------------------ what passes
def _ok(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()


@pytest.fixture
def run_id(api):
    body = {"experiment_id": "0", "start_time": str(int(time.time() * 1000)), "user_id": "u"}  # int64 as a string
    return _ok(api("POST", f"{A}/runs/create", json=body))["run"]["info"]["run_id"]


def test_values_the_proto_accepts_pass(api, run_id):
    """int64 as numeric strings, doubles as "NaN"/"Infinity"/"1.5", enums by name or number, unknown keys."""
    for body in [
        {"timestamp": "5", "step": "3", "value": "1.5"},
        {"timestamp": 6, "step": "-2", "value": "NaN"},
        {"timestamp": 7.0, "step": -1, "value": "Infinity"},
        {"timestamp": 8, "value": "-Infinity", "no_such_field": {"x": [1]}},  # unknown fields are ignored
        {"timestamp": "9", "step": "1e3", "value": 2},  # a whole number in exponent form is an int64 too
    ]:
        _ok(api("POST", f"{A}/runs/log-metric", json={"run_id": run_id, "key": "m", **body}))
    _ok(api("POST", f"{A}/runs/log-metric", json={"run_uuid": run_id, "key": "m2", "value": 0, "timestamp": 0}))
    history = _ok(api("GET", f"{A}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}))["metrics"]
    assert sorted(m["timestamp"] for m in history) == [5, 6, 7, 8, 9]
    assert {m["step"] for m in history if m["timestamp"] == 9} == {1000}
    _ok(api("POST", f"{A}/runs/update", json={"run_id": run_id, "status": 3}))  # the enum's number
    _ok(api("POST", f"{A}/runs/update", json={"run_id": run_id, "status": "FINISHED", "end_time": "10"}))
    _ok(api("POST", f"{A}/runs/set-tag", json={"run_id": run_id, "key": "t", "value": ""}))
    _ok(api("GET", f"{A}/experiments/search", params={"view_type": "ACTIVE_ONLY", "max_results": "5"}))
    _ok(api("POST", f"{A}/experiments/search", json={"view_type": 2, "max_results": "5"}))
    _ok(api("POST", f"{A}/runs/search", json={"experiment_ids": ["0"], "max_results": 50000,
                                              "run_view_type": "ALL"}))
    _ok(api("GET", f"{A}/registered-models/search", params={"max_results": 1000}))
    _ok(api("GET", f"{A}/model-versions/search", params={"max_results": "200000"}))
    _ok(api("GET", f"{A}/metrics/get-history-bulk-interval",
            params={"run_ids": [run_id], "metric_key": "m", "max_results": 2500}))


def test_our_clients_batches_pass(api, run_id):
    """The journal's log-batch body (with its batch_id, unknown to MLflow) and our REST client's shapes."""
    metrics = b'{"key":"a","value":1.5,"timestamp":1,"step":0},{"key":"a","value":"NaN","timestamp":2,"step":1}'
    body = batch_body("0123456789abcdef", [Entry(1, run_id, metrics, 2, (("p", "1"),), (("t", "v"),))])
    _ok(api("POST", f"{A}/runs/log-batch", data=body, headers={"Content-Type": "application/json"}))
    _ok(api("POST", f"{A}/runs/log-batch", json={
        "run_id": run_id, "metrics": [{"key": "b", "value": 2, "timestamp": 3, "step": 4, "model_id": "m-x"}],
        "params": [], "tags": []}))
    got = _ok(api("GET", f"{A}/runs/get", params={"run_id": run_id}))["run"]["data"]
    assert {p["key"] for p in got["params"]} == {"p"} and {m["key"] for m in got["metrics"]} == {"a", "b"}


def test_logged_model_and_registry_bodies_pass(api, run_id):
    model = _ok(api("POST", f"{A}/logged-models", json={"experiment_id": "0", "source_run_id": run_id}))["model"]
    mid = model["info"]["model_id"]
    _ok(api("POST", f"{A}/logged-models/{mid}/params", json={"model_id": mid, "params": [{"key": "k", "value": "v"}]}))
    _ok(api("PATCH", f"{A}/logged-models/{mid}", json={"model_id": mid, "status": "LOGGED_MODEL_READY"}))
    _ok(api("PATCH", f"{A}/logged-models/{mid}", json={"model_id": mid, "status": 2}))  # the enum's number
    _ok(api("POST", f"{A}/logged-models/search", json={"experiment_ids": [], "order_by": [
        {"field_name": "creation_timestamp", "ascending": False}]}))
    _ok(api("POST", f"{A}/registered-models/create", json={"name": "rm", "tags": [{"key": "a", "value": "b"}]}))
    _ok(api("POST", f"{A}/registered-models/get-latest-versions", json={"name": "rm", "stages": []}))
    _ok(api("DELETE", f"{A}/registered-models/delete", params={"name": "rm"}))  # ours: the query string works too


def test_unknown_mltrail_routes_are_not_checked(api, run_id):
    """mltrail's own endpoints (not MLflow's) keep their own rules."""
    r = api("GET", "/api/2.0/mltrail/metrics/get-history-sampled", params={"run_id": run_id, "metric_key": "m"})
    assert r.status_code == 200


# ------------------------------------------------------------------ the table itself
def _served() -> list[tuple[str, str]]:
    out = []
    for module in (runs, metrics, experiments, artifacts, models, registry):
        for methods, path, _ in [*module.ROUTES, *getattr(module, "AJAX_ROUTES", [])]:
            out += [(m, path) for m in methods]
    return out


@pytest.mark.parametrize(("method", "path"), _served())
def test_every_served_mlflow_route_has_an_entry(method, path):
    concrete = path.replace("{model_id}", "m-1").replace("{tag_key:path}", "a/b")
    assert V.find_endpoint(method, A + concrete) is not None, f"{method} {path} is not in validation.TABLE"


def test_table_lookup():
    assert V.find_endpoint("POST", "/api/2.0/mlflow/logged-models/search") is V.TABLE["POST /logged-models/search"]
    assert V.find_endpoint("DELETE", "/api/2.0/mlflow/logged-models/m-1/tags/a/b") is \
        V.TABLE["DELETE /logged-models/{model_id}/tags/{tag_key:path}"]
    assert V.find_endpoint("GET", "/api/2.0/mlflow/registered-models/search") is \
        V.find_endpoint("POST", "/ajax-api/2.0/mlflow/registered-models/search")
    assert V.find_endpoint("GET", "/api/2.0/mltrail/metrics/get-history-sampled") is None
    assert V.find_endpoint("POST", "/api/2.0/mlflow/no/such/thing") is None


# ------------------------------------------------------------------ the proto parse, without protobuf
LOG_METRIC = V.TABLE["POST /runs/log-metric"].message
SEARCH_RUNS = V.TABLE["POST /runs/search"].message
UPDATE_RUN = V.TABLE["POST /runs/update"].message
TRANSITION = V.TABLE["POST /model-versions/transition-stage"].message


# Each outcome is what google.protobuf.json_format.ParseDict(..., ignore_unknown_fields=True) does on
# MLflow's own protos (checked with the protobuf MLflow 3.17.2 installs): _ConvertInteger,
# _ConvertFloat, _ConvertBool, the enum branch of _ConvertScalarFieldValue, _ConvertFieldValuePair.
@pytest.mark.parametrize(("message", "js", "parses"), [
    (LOG_METRIC, {"timestamp": "5"}, True), (LOG_METRIC, {"timestamp": "1e3"}, True),
    (LOG_METRIC, {"timestamp": 5.0}, True), (LOG_METRIC, {"timestamp": 5.5}, False),
    (LOG_METRIC, {"timestamp": " 5"}, False), (LOG_METRIC, {"timestamp": True}, False),
    (LOG_METRIC, {"timestamp": 2 ** 63}, False), (LOG_METRIC, {"timestamp": "NaN"}, False),
    (SEARCH_RUNS, {"max_results": 2 ** 31}, False), (SEARCH_RUNS, {"max_results": 2 ** 31 - 1}, True),
    (LOG_METRIC, {"value": "NaN"}, True), (LOG_METRIC, {"value": "nan"}, False),
    (LOG_METRIC, {"value": "-Infinity"}, True), (LOG_METRIC, {"value": "inf"}, True),
    (LOG_METRIC, {"value": " 1.5 "}, True), (LOG_METRIC, {"value": True}, True),
    (LOG_METRIC, {"value": "0x10"}, False), (LOG_METRIC, {"value": [1]}, False),
    (LOG_METRIC, {"run_id": 5}, False), (LOG_METRIC, {"run_id": None, "key": None}, True),
    (LOG_METRIC, {"runId": 5}, False), (LOG_METRIC, {"no_such": [{}]}, True), (LOG_METRIC, {"[ext]": 1}, False),
    (UPDATE_RUN, {"status": "FINISHED"}, True), (UPDATE_RUN, {"status": "no such status"}, True),
    (UPDATE_RUN, {"status": 3}, True), (UPDATE_RUN, {"status": "3"}, True), (UPDATE_RUN, {"status": 99}, False),
    (UPDATE_RUN, {"status": []}, False),
    (TRANSITION, {"archive_existing_versions": "true"}, False), (TRANSITION, {"archive_existing_versions": 1}, False),
    (SEARCH_RUNS, {"order_by": "a"}, False), (SEARCH_RUNS, {"order_by": ["a", None]}, False),
    (SEARCH_RUNS, {"order_by": None}, True),
    (V.TABLE["POST /runs/create"].message, {"tags": ["a"]}, True),  # a string's characters: no field names
    (V.TABLE["POST /runs/create"].message, {"tags": [["key"]]}, False),
    (V.TABLE["POST /runs/create"].message, {"tags": [5]}, False),
    (V.TABLE["POST /runs/create"].message, {"tags": [None]}, False),
])
def test_proto_parse_rules(message, js, parses):
    assert V._parses(js, message) is parses


def test_a_get_bool_must_read_true_or_false():
    """_get_request_message: a GET's bool field (none of the GET endpoints has one; the rule is kept)."""
    from starlette.datastructures import QueryParams

    assert V._from_query(QueryParams("archive_existing_versions=TRUE&x=1"), TRANSITION, True) == {
        "archive_existing_versions": True}
    with pytest.raises(V.InvalidParameterValue, match=r"^Invalid boolean value: yes, must be 'true' or 'false'\.$"):
        V._from_query(QueryParams("archive_existing_versions=yes"), TRANSITION, True)
