"""MLflow's request validation, as one table: what each endpoint refuses, with MLflow's own sentences.

MLflow 3.17.2's tracking server (`mlflow/server/handlers.py`, `_get_request_message`) reads a
request in four steps, and `check_request` does the same, in the same order:

1. GET: the query string becomes the request's JSON, taking only the proto's fields (a repeated
   field as a list of strings, any other as its first value as a string; a bool field must read
   'true' or 'false'). Other methods: the JSON body.
2. A field spelled both ways (`run_id` and `runId`) is refused (`_reject_conflicting_field_aliases`).
3. The JSON is parsed into the request's proto (`google.protobuf.json_format.ParseDict` with
   unknown fields ignored). `_parses` decides, without protobuf, whether that parse succeeds.
4. The handler's `schema={...}` is checked (`_validate_request_json_with_schema` and
   `_validate_param_against_schema`), on the raw JSON values: for each listed parameter that is
   present (or required), its checks in order, the first failure answering 400
   INVALID_PARAMETER_VALUE. The *type* checks (`_assert_string`, `_assert_intlike`,
   `_assert_floatlike`, `_assert_bool`, `_assert_array`, `_assert_item_type_string`) run only
   when step 3 failed somewhere in the request: a JSON value the proto accepts ("5" for an int64,
   "NaN" for a double, an enum's name) is never refused for its type, and one it refuses is.

Messages, exactly as MLflow writes them:

- `Missing value for required parameter 'run_id'. See the API docs for more information about
  request parameters.` (`_assert_required`; nested ones such as `'metrics[0].timestamp'` come
  from `mlflow.utils.validation.missing_value`).
- `Invalid value 123 for parameter 'name' supplied:  Hint: Value was of type 'int'. See the API
  docs for more information about request parameters.` (`mlflow.utils.validation.invalid_value`
  with the hint `_validate_param_against_schema` adds: note the two spaces after the colon; the
  value is written as `json.dumps(value, sort_keys=True, separators=(",", ":"))`).
- A check's own sentence (bulk-interval's limits) followed by the same " See the API docs ..." part.
- `Request specifies both 'run_id' and 'runId'; provide only one of them.` and, for GET,
  `Invalid boolean value: yes, must be 'true' or 'false'.` (no docs part).

Unknown fields are accepted everywhere (MLflow ignores them), so our clients' extra keys (the
journal's `batch_id`) pass. Where MLflow's server fails with an HTTP 500 instead of a 400 (a
check calling `int()` on null, a list item that is not an object in log-batch) we answer 400 with
the invalid-value sentence, or leave the item to the handler, which refuses it with its own message.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mltrail.errors import InvalidParameterValue

SEE_DOCS = " See the API docs for more information about request parameters."


class QueryParams(Protocol):
    def __contains__(self, key: object) -> bool: ...

    def getlist(self, key: Any) -> list[str]: ...


# ------------------------------------------------------------------ the protos (mlflow/protos/*.proto)
STRING, INT32, INT64, DOUBLE, BOOL = "string", "int32", "int64", "double", "bool"
_INT64_LOW, _INT64_HIGH = -(2 ** 63), 2 ** 63 - 1
_INT_RANGE = {INT32: (-(2 ** 31), 2 ** 31 - 1), INT64: (_INT64_LOW, _INT64_HIGH)}


@dataclass(frozen=True, eq=False)
class Enum:
    """A closed (proto2) enum: its value names and numbers."""

    name: str
    numbers: Mapping[str, int]


@dataclass(frozen=True)
class Repeated:
    kind: Kind


@dataclass(frozen=True, eq=False)
class Field:
    name: str
    kind: Kind
    repeated: bool = False
    json_name: str = field(init=False)

    def __post_init__(self) -> None:
        # protoc's default JSON name: lowerCamelCase (`run_id` -> `runId`)
        head, *rest = self.name.split("_")
        object.__setattr__(self, "json_name", head + "".join(p[:1].upper() + p[1:] for p in rest))


@dataclass(frozen=True, eq=False)
class Message:
    name: str
    fields: tuple[Field, ...]
    by_key: dict[str, Field] = field(init=False, repr=False)
    camel: frozenset[str] = field(init=False, repr=False)  # JSON names that differ from the field's name
    nested: bool = field(init=False, repr=False)  # has message-typed fields

    def __post_init__(self) -> None:
        keys = {f.json_name: f for f in self.fields}
        keys.update({f.name: f for f in self.fields if f.name not in keys})
        object.__setattr__(self, "by_key", keys)
        object.__setattr__(self, "camel", frozenset(f.json_name for f in self.fields if f.json_name != f.name))
        object.__setattr__(self, "nested", any(isinstance(f.kind, Message) for f in self.fields))


Kind = str | Enum | Message


def _msg(type_name: str, /, **fields: Kind | Repeated) -> Message:
    return Message(type_name, tuple(Field(n, k.kind, True) if isinstance(k, Repeated) else Field(n, k)
                               for n, k in fields.items()))


def _kv(name: str) -> Message:
    return _msg(name, key=STRING, value=STRING)


RUN_STATUS = Enum("mlflow.RunStatus", {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5})
VIEW_TYPE = Enum("mlflow.ViewType", {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3})
LOGGED_MODEL_STATUS = Enum("mlflow.LoggedModelStatus", {
    "LOGGED_MODEL_STATUS_UNSPECIFIED": 0, "LOGGED_MODEL_PENDING": 1, "LOGGED_MODEL_READY": 2,
    "LOGGED_MODEL_UPLOAD_FAILED": 3})

METRIC = _msg("mlflow.Metric", key=STRING, value=DOUBLE, timestamp=INT64, step=INT64, dataset_name=STRING,
              dataset_digest=STRING, model_id=STRING, run_id=STRING)
PARAM, RUN_TAG, EXPERIMENT_TAG, INPUT_TAG = _kv("mlflow.Param"), _kv("mlflow.RunTag"), _kv("mlflow.ExperimentTag"), \
    _kv("mlflow.InputTag")
LOGGED_MODEL_PARAMETER, LOGGED_MODEL_TAG = _kv("mlflow.LoggedModelParameter"), _kv("mlflow.LoggedModelTag")
REGISTERED_MODEL_TAG, MODEL_VERSION_TAG = _kv("mlflow.RegisteredModelTag"), _kv("mlflow.ModelVersionTag")
DATASET = _msg("mlflow.Dataset", name=STRING, digest=STRING, source_type=STRING, source=STRING, schema=STRING,
               profile=STRING)
DATASET_INPUT = _msg("mlflow.DatasetInput", tags=Repeated(INPUT_TAG), dataset=DATASET)
MODEL_INPUT = _msg("mlflow.ModelInput", model_id=STRING)
MODEL_OUTPUT = _msg("mlflow.ModelOutput", model_id=STRING, step=INT64)
SEARCH_DATASET = _msg("mlflow.SearchLoggedModels.Dataset", dataset_name=STRING, dataset_digest=STRING)
SEARCH_ORDER_BY = _msg("mlflow.SearchLoggedModels.OrderBy", field_name=STRING, ascending=BOOL,
                       dataset_name=STRING, dataset_digest=STRING)

# ------------------------------------------------------------------ the checks (handlers.py `_assert_*`)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def invalid_value(param: str, value: Any) -> str:
    """MLflow's sentence for a value a check refused (before the docs part)."""
    return (f"Invalid value {_json(value)} for parameter '{param}' supplied:  "
            f"Hint: Value was of type '{type(value).__name__}'.")


def missing_value(param: str) -> str:
    return f"Missing value for required parameter '{param}'."


@dataclass(frozen=True)
class Check:
    """One of a schema's checks: `problem(param, value)` is MLflow's sentence when the value fails."""

    name: str
    problem: Callable[[str, Any], str | None]
    type_check: bool = False  # skipped when the proto parse succeeded


def _type_check(name: str, ok: Callable[[Any], bool]) -> Check:
    return Check(name, lambda p, v: None if ok(v) else invalid_value(p, v), type_check=True)


def _is_intlike(v: Any) -> bool:
    """`int(v)` works (an int or bool, a finite float, an integer string), as `_assert_intlike` asks."""
    if isinstance(v, int):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, str):
        try:
            int(v)
        except ValueError:
            return False
        return True
    return False  # MLflow: int() raises TypeError, an HTTP 500


def _is_floatlike(v: Any) -> bool:
    """`float(v)` works, or v is a float, as `_assert_floatlike` asks."""
    if isinstance(v, float):
        return True
    if isinstance(v, int | str):
        try:
            float(v)
        except (ValueError, OverflowError):
            return False
        return True
    return False


def _as_int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):
        return None  # MLflow: an HTTP 500


def at_most(limit: int) -> Check:
    """`lambda x: _assert_less_than_or_equal(int(x), limit)`: the invalid-value sentence."""
    def problem(p: str, v: Any) -> str | None:
        n = _as_int(v)
        return invalid_value(p, v) if n is None or n > limit else None
    return Check(f"at_most({limit})", problem)


def count_at_most(limit: int, sentence: str) -> Check:
    """`_assert_less_than_or_equal(len(x), limit, message=...)`; `sentence` formats `{n}`, the count."""
    def problem(p: str, v: Any) -> str | None:
        n = len(v) if isinstance(v, list) else 0
        return sentence.format(n=n) if n > limit else None
    return Check(f"count_at_most({limit})", problem)


def int_between(low: int, high: int, sentence: str) -> Check:
    """`_assert_intlike_within_range(int(x), low, high, message=...)`."""
    def problem(p: str, v: Any) -> str | None:
        n = _as_int(v)
        if n is None:
            return invalid_value(p, v)
        return None if low <= n <= high else sentence
    return Check(f"int_between({low}, {high})", problem)


def items_have(*keys: str) -> Check:
    """log-batch's `_assert_*_fields_present`: each item's `keys` required, named `param[i].key`.

    An item that is not an object is left to the handler (MLflow fails on it with an HTTP 500).
    """
    def problem(p: str, v: Any) -> str | None:
        if not isinstance(v, list):
            return None
        for i, item in enumerate(v):
            if isinstance(item, dict):
                for k in keys:
                    x = item.get(k)
                    if x is None or x == "":
                        return missing_value(f"{p}[{i}].{k}")
        return None
    return Check(f"items_have{keys}", problem)


REQUIRED = Check("required", lambda p, v: missing_value(p) if v is None or v == "" else None)
STR = _type_check("string", lambda v: isinstance(v, str))
INTLIKE = _type_check("intlike", _is_intlike)
FLOATLIKE = _type_check("floatlike", _is_floatlike)
IS_BOOL = _type_check("bool", lambda v: isinstance(v, bool))
ARRAY = _type_check("array", lambda v: isinstance(v, list))
ITEMS_STR = _type_check("item_type_string", lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v))


# ------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Endpoint:
    """What MLflow parses a request into and the schema it checks; `handler` names the function in
    mlflow/server/handlers.py it comes from. No message: MLflow reads nothing from the request."""

    handler: str
    message: Message | None = None
    schema: Mapping[str, tuple[Check, ...]] = field(default_factory=dict)


_RUN_ID_KEY = {"run_id": (REQUIRED, STR), "key": (REQUIRED, STR)}
_NAME = {"name": (STR, REQUIRED)}
_NAME_VERSION = {"name": (STR, REQUIRED), "version": (STR, REQUIRED)}
_SEARCH_REGISTRY = {"filter": (STR,), "order_by": (ARRAY, ITEMS_STR), "page_token": (STR,)}
# handlers.py MAX_RUNS_GET_METRIC_HISTORY_BULK, MAX_RESULTS_PER_RUN (get-history-bulk-interval)
MAX_BULK_INTERVAL_RUNS, MAX_BULK_INTERVAL_RESULTS = 100, 2500

# "METHOD[|METHOD] /path under /api/2.0/mlflow" -> Endpoint, for every JSON route of server/routes/*.py
# (ROUTES, and AJAX_ROUTES under /ajax-api/2.0/mlflow)
TABLE: dict[str, Endpoint] = {
    # ---------------------------------------------------------------- runs
    "POST /runs/create": Endpoint("_create_run", _msg(
        "CreateRun", experiment_id=STRING, user_id=STRING, run_name=STRING, start_time=INT64,
        tags=Repeated(RUN_TAG)), {
        "experiment_id": (STR,), "start_time": (INTLIKE,), "run_name": (STR,)}),
    "GET /runs/get": Endpoint("_get_run", _msg("GetRun", run_id=STRING, run_uuid=STRING), {
        "run_id": (REQUIRED, STR)}),
    "POST /runs/update": Endpoint("_update_run", _msg(
        "UpdateRun", run_id=STRING, run_uuid=STRING, status=RUN_STATUS, end_time=INT64, run_name=STRING), {
        "run_id": (REQUIRED, STR), "end_time": (INTLIKE,), "status": (STR,), "run_name": (STR,)}),
    "POST /runs/delete": Endpoint("_delete_run", _msg("DeleteRun", run_id=STRING), {"run_id": (REQUIRED, STR)}),
    "POST /runs/restore": Endpoint("_restore_run", _msg("RestoreRun", run_id=STRING), {"run_id": (REQUIRED, STR)}),
    "POST /runs/search": Endpoint("_search_runs", _msg(
        "SearchRuns", experiment_ids=Repeated(STRING), filter=STRING, run_view_type=VIEW_TYPE, max_results=INT32,
        order_by=Repeated(STRING), page_token=STRING), {
        "experiment_ids": (ARRAY,), "filter": (STR,), "max_results": (INTLIKE, at_most(50000)),
        "order_by": (ARRAY, ITEMS_STR)}),
    "POST /runs/log-metric": Endpoint("_log_metric", _msg(
        "LogMetric", run_id=STRING, run_uuid=STRING, key=STRING, value=DOUBLE, timestamp=INT64, step=INT64,
        model_id=STRING, dataset_name=STRING, dataset_digest=STRING), {
        **_RUN_ID_KEY, "value": (REQUIRED, FLOATLIKE), "timestamp": (INTLIKE, REQUIRED), "step": (INTLIKE,),
        "model_id": (STR,), "dataset_name": (STR,), "dataset_digest": (STR,)}),
    "POST /runs/log-parameter": Endpoint("_log_param", _msg(
        "LogParam", run_id=STRING, run_uuid=STRING, key=STRING, value=STRING), {**_RUN_ID_KEY, "value": (STR,)}),
    "POST /runs/set-tag": Endpoint("_set_tag", _msg(
        "SetTag", run_id=STRING, run_uuid=STRING, key=STRING, value=STRING), {**_RUN_ID_KEY, "value": (STR,)}),
    "POST /runs/delete-tag": Endpoint("_delete_tag", _msg("DeleteTag", run_id=STRING, key=STRING), _RUN_ID_KEY),
    "POST /runs/log-batch": Endpoint("_log_batch", _msg(
        "LogBatch", run_id=STRING, metrics=Repeated(METRIC), params=Repeated(PARAM), tags=Repeated(RUN_TAG)), {
        "run_id": (STR, REQUIRED), "metrics": (ARRAY, items_have("key", "value", "timestamp")),
        "params": (ARRAY, items_have("key")), "tags": (ARRAY, items_have("key"))}),
    "POST /runs/log-inputs": Endpoint("_log_inputs", _msg(
        "LogInputs", run_id=STRING, datasets=Repeated(DATASET_INPUT), models=Repeated(MODEL_INPUT)), {
        "run_id": (REQUIRED, STR), "datasets": (ARRAY,), "models": (ARRAY,)}),
    "POST /runs/outputs": Endpoint("_log_outputs", _msg(
        "LogOutputs", run_id=STRING, models=Repeated(MODEL_OUTPUT)), {
        "run_id": (REQUIRED, STR), "models": (REQUIRED, ARRAY)}),
    "POST /runs/log-model": Endpoint("_log_model", _msg("LogModel", run_id=STRING, model_json=STRING), {
        "run_id": (STR, REQUIRED), "model_json": (STR, REQUIRED)}),
    # ---------------------------------------------------------------- metrics
    "GET /metrics/get-history": Endpoint("_get_metric_history", _msg(
        "GetMetricHistory", run_id=STRING, run_uuid=STRING, metric_key=STRING, page_token=STRING,
        max_results=INT32), {
        "run_id": (STR, REQUIRED), "metric_key": (STR, REQUIRED), "page_token": (STR,)}),
    "GET /metrics/get-history-bulk-interval": Endpoint("get_metric_history_bulk_interval_handler", _msg(
        "GetMetricHistoryBulkInterval", run_ids=Repeated(STRING), metric_key=STRING, start_step=INT32,
        end_step=INT32, max_results=INT32), {
        "run_ids": (REQUIRED, ARRAY, ITEMS_STR, count_at_most(
            MAX_BULK_INTERVAL_RUNS, "GetMetricHistoryBulkInterval request must specify at most "
                            f"{MAX_BULK_INTERVAL_RUNS} run_ids. Received {{n}} run_ids.")),
        "metric_key": (REQUIRED, STR), "start_step": (INTLIKE,), "end_step": (INTLIKE,),
        "max_results": (INTLIKE, int_between(1, MAX_BULK_INTERVAL_RESULTS,
                                             f"max_results must be between 1 and {MAX_BULK_INTERVAL_RESULTS}."))}),
    # MLflow UI's (ajax-api only): the handler reads request.args itself, no schema
    "GET /metrics/get-history-bulk": Endpoint("get_metric_history_bulk_handler"),
    # ---------------------------------------------------------------- experiments
    "POST /experiments/create": Endpoint("_create_experiment", _msg(
        "CreateExperiment", name=STRING, artifact_location=STRING, tags=Repeated(EXPERIMENT_TAG)), {
        "name": (REQUIRED, STR), "artifact_location": (STR,), "tags": (ARRAY,)}),
    "GET /experiments/get": Endpoint("_get_experiment", _msg("GetExperiment", experiment_id=STRING), {
        "experiment_id": (REQUIRED, STR)}),
    "GET /experiments/get-by-name": Endpoint("_get_experiment_by_name", _msg(
        "GetExperimentByName", experiment_name=STRING), {"experiment_name": (REQUIRED, STR)}),
    "GET|POST /experiments/search": Endpoint("_search_experiments", _msg(
        "SearchExperiments", max_results=INT64, page_token=STRING, filter=STRING, order_by=Repeated(STRING),
        view_type=VIEW_TYPE), {
        "view_type": (INTLIKE,), "max_results": (INTLIKE,), "order_by": (ARRAY,), "filter": (STR,),
        "page_token": (STR,)}),
    "POST /experiments/update": Endpoint("_update_experiment", _msg(
        "UpdateExperiment", experiment_id=STRING, new_name=STRING), {
        "experiment_id": (REQUIRED, STR), "new_name": (STR, REQUIRED)}),
    "POST /experiments/delete": Endpoint("_delete_experiment", _msg("DeleteExperiment", experiment_id=STRING), {
        "experiment_id": (REQUIRED, STR)}),
    "POST /experiments/restore": Endpoint("_restore_experiment", _msg("RestoreExperiment", experiment_id=STRING), {
        "experiment_id": (REQUIRED, STR)}),
    "POST /experiments/set-experiment-tag": Endpoint("_set_experiment_tag", _msg(
        "SetExperimentTag", experiment_id=STRING, key=STRING, value=STRING), {
        "experiment_id": (REQUIRED, STR), "key": (REQUIRED, STR), "value": (STR,)}),
    "POST /experiments/delete-experiment-tag": Endpoint("_delete_experiment_tag", _msg(
        "DeleteExperimentTag", experiment_id=STRING, key=STRING), {
        "experiment_id": (REQUIRED, STR), "key": (REQUIRED, STR)}),
    # ---------------------------------------------------------------- artifacts
    "GET /artifacts/list": Endpoint("_list_artifacts", _msg(
        "ListArtifacts", run_id=STRING, run_uuid=STRING, path=STRING, page_token=STRING), {
        "run_id": (STR, REQUIRED), "path": (STR,), "page_token": (STR,)}),
    "GET /logged-models/{model_id}/artifacts/directories": Endpoint("_list_logged_model_artifacts", _msg(
        "ListLoggedModelArtifacts", model_id=STRING, artifact_directory_path=STRING, page_token=STRING), {
        "artifact_directory_path": (STR,)}),
    # ---------------------------------------------------------------- logged models
    "POST /logged-models": Endpoint("_create_logged_model", _msg(
        "CreateLoggedModel", experiment_id=STRING, name=STRING, model_type=STRING, source_run_id=STRING,
        params=Repeated(LOGGED_MODEL_PARAMETER), tags=Repeated(LOGGED_MODEL_TAG)), {
        "experiment_id": (STR, REQUIRED), "name": (STR,), "model_type": (STR,), "source_run_id": (STR,),
        "params": (ARRAY,), "tags": (ARRAY,)}),
    "POST /logged-models/search": Endpoint("_search_logged_models", _msg(
        "SearchLoggedModels", experiment_ids=Repeated(STRING), filter=STRING, datasets=Repeated(SEARCH_DATASET),
        max_results=INT32, order_by=Repeated(SEARCH_ORDER_BY), page_token=STRING), {
        "experiment_ids": (ARRAY, ITEMS_STR, REQUIRED), "filter": (STR,), "datasets": (ARRAY,),
        "max_results": (INTLIKE,), "order_by": (ARRAY,), "page_token": (STR,)}),
    "GET /logged-models/{model_id}": Endpoint("_get_logged_model"),
    "PATCH /logged-models/{model_id}": Endpoint("_finalize_logged_model", _msg(
        "FinalizeLoggedModel", model_id=STRING, status=LOGGED_MODEL_STATUS), {
        "model_id": (STR, REQUIRED), "status": (INTLIKE, REQUIRED)}),
    "DELETE /logged-models/{model_id}": Endpoint("_delete_logged_model"),
    "PATCH /logged-models/{model_id}/tags": Endpoint("_set_logged_model_tags", _msg(
        "SetLoggedModelTags", model_id=STRING, tags=Repeated(LOGGED_MODEL_TAG)), {"tags": (ARRAY,)}),
    "DELETE /logged-models/{model_id}/tags/{tag_key:path}": Endpoint("_delete_logged_model_tag"),
    "POST /logged-models/{model_id}/params": Endpoint("_log_logged_model_params", _msg(
        "LogLoggedModelParamsRequest", model_id=STRING, params=Repeated(LOGGED_MODEL_PARAMETER)), {
        "model_id": (STR, REQUIRED), "params": (ARRAY,)}),
    # ---------------------------------------------------------------- registered models
    "POST /registered-models/create": Endpoint("_create_registered_model", _msg(
        "CreateRegisteredModel", name=STRING, tags=Repeated(REGISTERED_MODEL_TAG), description=STRING,
        deployment_job_id=STRING), {**_NAME, "tags": (ARRAY,), "description": (STR,)}),
    "GET /registered-models/get": Endpoint("_get_registered_model", _msg("GetRegisteredModel", name=STRING), _NAME),
    "POST /registered-models/rename": Endpoint("_rename_registered_model", _msg(
        "RenameRegisteredModel", name=STRING, new_name=STRING), {**_NAME, "new_name": (STR, REQUIRED)}),
    "PATCH /registered-models/update": Endpoint("_update_registered_model", _msg(
        "UpdateRegisteredModel", name=STRING, description=STRING, deployment_job_id=STRING), {
        **_NAME, "description": (STR,)}),
    "DELETE /registered-models/delete": Endpoint("_delete_registered_model", _msg(
        "DeleteRegisteredModel", name=STRING), _NAME),
    "GET|POST /registered-models/search": Endpoint("_search_registered_models", _msg(
        "SearchRegisteredModels", filter=STRING, max_results=INT64, order_by=Repeated(STRING), page_token=STRING), {
        "filter": (STR,), "max_results": (INTLIKE, at_most(1000)), **_SEARCH_REGISTRY}),
    "GET|POST /registered-models/get-latest-versions": Endpoint("_get_latest_versions", _msg(
        "GetLatestVersions", name=STRING, stages=Repeated(STRING)), {**_NAME, "stages": (ARRAY, ITEMS_STR)}),
    "POST /registered-models/set-tag": Endpoint("_set_registered_model_tag", _msg(
        "SetRegisteredModelTag", name=STRING, key=STRING, value=STRING), {
        **_NAME, "key": (STR, REQUIRED), "value": (STR,)}),
    "DELETE /registered-models/delete-tag": Endpoint("_delete_registered_model_tag", _msg(
        "DeleteRegisteredModelTag", name=STRING, key=STRING), {**_NAME, "key": (STR, REQUIRED)}),
    "POST /registered-models/alias": Endpoint("_set_registered_model_alias", _msg(
        "SetRegisteredModelAlias", name=STRING, alias=STRING, version=STRING), {
        **_NAME, "alias": (STR, REQUIRED), "version": (STR, REQUIRED)}),
    "DELETE /registered-models/alias": Endpoint("_delete_registered_model_alias", _msg(
        "DeleteRegisteredModelAlias", name=STRING, alias=STRING), {**_NAME, "alias": (STR, REQUIRED)}),
    "GET /registered-models/alias": Endpoint("_get_model_version_by_alias", _msg(
        "GetModelVersionByAlias", name=STRING, alias=STRING), {**_NAME, "alias": (STR, REQUIRED)}),
    # ---------------------------------------------------------------- model versions
    "POST /model-versions/create": Endpoint("_create_model_version", _msg(
        "CreateModelVersion", name=STRING, source=STRING, run_id=STRING, tags=Repeated(MODEL_VERSION_TAG),
        run_link=STRING, description=STRING, model_id=STRING), {
        **_NAME, "source": (STR, REQUIRED), "run_id": (STR,), "tags": (ARRAY,), "run_link": (STR,),
        "description": (STR,), "model_id": (STR,)}),
    "GET /model-versions/get": Endpoint("_get_model_version", _msg(
        "GetModelVersion", name=STRING, version=STRING), _NAME_VERSION),
    "PATCH /model-versions/update": Endpoint("_update_model_version", _msg(
        "UpdateModelVersion", name=STRING, version=STRING, description=STRING), {
        **_NAME_VERSION, "description": (STR,)}),
    "DELETE /model-versions/delete": Endpoint("_delete_model_version", _msg(
        "DeleteModelVersion", name=STRING, version=STRING), _NAME_VERSION),
    "GET|POST /model-versions/search": Endpoint("_search_model_versions", _msg(
        "SearchModelVersions", filter=STRING, max_results=INT64, order_by=Repeated(STRING), page_token=STRING), {
        "filter": (STR,), "max_results": (INTLIKE, at_most(200_000)), **_SEARCH_REGISTRY}),
    "POST /model-versions/transition-stage": Endpoint("_transition_stage", _msg(
        "TransitionModelVersionStage", name=STRING, version=STRING, stage=STRING, archive_existing_versions=BOOL), {
        **_NAME_VERSION, "stage": (STR, REQUIRED), "archive_existing_versions": (IS_BOOL,)}),
    "GET /model-versions/get-download-uri": Endpoint("_get_model_version_download_uri", _msg(
        "GetModelVersionDownloadUri", name=STRING, version=STRING)),  # MLflow gives no schema here
    "POST /model-versions/set-tag": Endpoint("_set_model_version_tag", _msg(
        "SetModelVersionTag", name=STRING, version=STRING, key=STRING, value=STRING), {
        **_NAME_VERSION, "key": (STR, REQUIRED), "value": (STR,)}),
    "DELETE /model-versions/delete-tag": Endpoint("_delete_model_version_tag", _msg(
        "DeleteModelVersionTag", name=STRING, version=STRING, key=STRING), {
        **_NAME_VERSION, "key": (STR, REQUIRED)}),
}


def _index() -> tuple[dict[tuple[str, str], Endpoint], list[tuple[str, re.Pattern[str], Endpoint]]]:
    static: dict[tuple[str, str], Endpoint] = {}
    templated: list[tuple[str, re.Pattern[str], Endpoint]] = []
    for key, ep in TABLE.items():
        methods, path = key.split(" ", 1)
        for method in methods.split("|"):
            if "{" not in path:
                static[(method, path)] = ep
                continue
            parts = re.split(r"\{\w+(:path)?\}", path)  # literal, converter, literal, ...
            pattern = "".join(re.escape(p) if i % 2 == 0 else (".+" if p else "[^/]+")
                              for i, p in enumerate(parts))
            templated.append((method, re.compile(pattern + "$"), ep))
    return static, templated


_STATIC, _TEMPLATED = _index()
_LOG_BATCH = TABLE["POST /runs/log-batch"].message
_API_MARK = "/2.0/mlflow/"


def find_endpoint(method: str, path: str) -> Endpoint | None:
    """The table's entry for a request path (`/api/2.0/mlflow/...` or `/ajax-api/2.0/mlflow/...`)."""
    i = path.find(_API_MARK)
    if i < 0:
        return None
    rel = path[i + len(_API_MARK) - 1:]
    method = "GET" if method == "HEAD" else method
    ep = _STATIC.get((method, rel))
    if ep is not None:
        return ep
    for m, pattern, candidate in _TEMPLATED:
        if m == method and pattern.match(rel):
            return candidate
    return None


# ------------------------------------------------------------------ ParseDict, decided without protobuf
_EXTENSION_NAME = re.compile(r"\[[a-zA-Z0-9._]*\]$")


def _scalar_parses(v: Any, kind: Kind) -> bool:
    """Would `json_format` accept this JSON value (not null) for a scalar field of this kind?"""
    if kind == STRING:
        return isinstance(v, str)  # (a lone surrogate, also refused, cannot come out of orjson or a URL)
    if kind == DOUBLE:
        if isinstance(v, float):
            return math.isfinite(v)  # a bare NaN/Infinity must be quoted
        if v == "nan":  # protobuf insists on "NaN"
            return False
        try:
            float(v)
        except (TypeError, ValueError, OverflowError):
            return False
        return True  # bools too: float(True)
    if kind in (INT64, INT32):
        if isinstance(v, bool):
            return False
        if isinstance(v, float):
            if not v.is_integer():
                return False
            n = int(v)
        elif isinstance(v, int):
            n = v
        elif isinstance(v, str):
            if " " in v:
                return False
            try:
                n = int(v)
            except ValueError:
                try:
                    f = float(v)
                except ValueError:
                    return False
                if not f.is_integer():
                    return False
                n = int(f)
        else:
            return False
        low, high = _INT_RANGE[kind]
        return low <= n <= high
    if kind == BOOL:
        return isinstance(v, bool)
    if isinstance(kind, Enum):
        if isinstance(v, list | dict):
            return False
        if isinstance(v, str) and v in kind.numbers:
            return True
        try:
            n = int(v)
        except ValueError:
            return True  # an unknown name: ignored, as MLflow parses with ignore_unknown_fields
        except (TypeError, OverflowError):
            return False
        return n in kind.numbers.values()
    raise AssertionError(f"not a scalar kind: {kind!r}")


def _parses(js: Any, message: Message) -> bool:
    """Would `ParseDict(js, message, ignore_unknown_fields=True)` succeed?"""
    if isinstance(js, str):
        return True  # protobuf iterates its characters as field names: none is one, all are ignored
    if isinstance(js, list):
        # each item is taken as a field name: an unknown string is ignored, anything else fails
        return all(isinstance(k, str) and k not in message.by_key and not _EXTENSION_NAME.match(k) for k in js)
    if not isinstance(js, dict):
        return False
    by_key = message.by_key
    for key, value in js.items():
        f = by_key.get(key)
        if f is None:
            if _EXTENSION_NAME.match(key):  # "[ext]": these messages have no extensions
                return False
            continue
        if value is None:
            continue
        kind = f.kind
        if f.repeated:
            if not isinstance(value, list):
                return False
            if isinstance(kind, Message):
                if not all(item is not None and _parses(item, kind) for item in value):
                    return False
            elif kind == STRING:
                if not all(type(item) is str for item in value):
                    return False
            elif not all(item is not None and _scalar_parses(item, kind) for item in value):
                return False
        elif isinstance(kind, Message):
            if not _parses(value, kind):
                return False
        elif not _scalar_parses(value, kind):
            return False
    return True


_PLAIN_METRIC_KEYS = frozenset({"key", "value", "timestamp", "step", "model_id"})


def _plain_metrics(items: list[Any]) -> bool:
    """Whether every metric has the usual shape our clients and MLflow's send, in one pass.

    Such a list parses, has no camelCase twin, and has its required fields: log-batch's schema
    checks on it (the hot path of remote logging) have nothing left to find.
    """
    low, high = _INT64_LOW, _INT64_HIGH
    keys = _PLAIN_METRIC_KEYS
    for m in items:
        if type(m) is not dict or not keys.issuperset(m):
            return False
        k, v, ts, step = m.get("key"), m.get("value"), m.get("timestamp"), m.get("step", 0)
        if not (type(k) is str and k and (type(v) is float or type(v) is int) and type(ts) is int
                and type(step) is int and low <= ts <= high and low <= step <= high):
            return False  # (orjson yields no NaN or infinite float; a bool is not an int here)
        if "model_id" in m and type(m["model_id"]) is not str:
            return False
    return True


# ------------------------------------------------------------------ checking one request
def _alias_conflict(js: Any, message: Message) -> None:
    """`_reject_conflicting_field_aliases`: a field spelled both ways, here or in nested objects."""
    if not isinstance(js, dict):
        return
    here = not message.camel.isdisjoint(js)
    if not here and not message.nested:
        return
    for f in message.fields:
        json_name = f.json_name
        if here and f.name != json_name and f.name in js and json_name in js:
            raise InvalidParameterValue(f"Request specifies both '{f.name}' and '{json_name}'; "
                                        "provide only one of them.")
        kind = f.kind
        if isinstance(kind, Message):
            value = js.get(f.name, js.get(json_name))
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and (kind.nested or not kind.camel.isdisjoint(item)):
                    _alias_conflict(item, kind)


def _from_query(query: QueryParams, message: Message, strict_bool: bool) -> dict[str, Any]:
    """The request JSON MLflow makes of a query string: the proto's fields only, as strings."""
    out: dict[str, Any] = {}
    for f in message.fields:
        if f.name not in query:
            continue
        values = query.getlist(f.name)
        if f.repeated:
            out[f.name] = values
            continue
        value: Any = values[0]
        if f.kind == BOOL:
            if value.lower() in ("true", "false"):
                value = value.lower() == "true"
            elif strict_bool:
                raise InvalidParameterValue(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
        out[f.name] = value
    return out


def request_json(endpoint: Endpoint, method: str, query: QueryParams, body: dict[str, Any] | None) -> dict[str, Any]:
    """What MLflow validates: the query's proto fields for GET, the JSON body otherwise.

    Other methods take query parameters too (our handlers read them, MLflow's do not): those the
    body does not set are checked as a GET's would be.
    """
    if endpoint.message is None:
        return body or {}
    if method in ("GET", "HEAD"):
        return _from_query(query, endpoint.message, strict_bool=True)
    data = body or {}
    extra = _from_query(query, endpoint.message, strict_bool=False)
    return {**extra, **data} if extra else data


def check(endpoint: Endpoint, data: dict[str, Any]) -> None:
    """Raise InvalidParameterValue with MLflow's message where MLflow's server refuses `data`."""
    message = endpoint.message
    if message is None:
        return
    metrics = data.get("metrics") if message is _LOG_BATCH else None
    if isinstance(metrics, list) and _plain_metrics(metrics):
        # the hot path: the metrics are proven fine; check the rest of the batch as usual
        data = {k: v for k, v in data.items() if k != "metrics"}
    _alias_conflict(data, message)
    if not endpoint.schema:
        return
    parsed = _parses(data, message)
    for param, checks in endpoint.schema.items():
        if param in data:
            value = data[param]
        elif REQUIRED in checks:
            value = None
        else:
            continue
        if param == "run_id" and value is None and "run_uuid" in data:
            value = data["run_uuid"]
        for c in checks:
            if parsed and c.type_check:
                continue
            problem = c.problem(param, value)
            if problem is not None:
                raise InvalidParameterValue(problem + SEE_DOCS)


def check_request(method: str, path: str, query: QueryParams, body: dict[str, Any] | None) -> None:
    """Validate one request to an MLflow endpoint as MLflow's server would (no-op for other paths)."""
    endpoint = find_endpoint(method, path)
    if endpoint is not None:
        check(endpoint, request_json(endpoint, method, query, body))


__all__ = ["SEE_DOCS", "TABLE", "Endpoint", "Message", "check", "check_request", "find_endpoint",
           "invalid_value", "missing_value", "request_json"]
