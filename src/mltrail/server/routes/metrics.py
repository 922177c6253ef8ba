"""Metric history: MLflow's get-history (paged), get-history-bulk and get-history-bulk-interval, and
mltrail's downsampled history for charts (`/api/2.0/mltrail/metrics/get-history-sampled`, one run or
many)."""

from __future__ import annotations

from typing import Any

from mltrail.entities import json_number
from mltrail.errors import InvalidParameterValue
from mltrail.server._http import Call
from mltrail.server.validation import MAX_BULK_INTERVAL_RESULTS
from mltrail.store.rest_json import metric_to_json

MAX_SAMPLED_POINTS = 100_000
MAX_BULK_RUNS = 200
# get_metric_history_bulk_handler's limits: at most 100 runs, and max_results defaults to and is
# capped at 25,000 points (for all runs together)
MAX_HISTORY_BULK_RUNS = 100
MAX_HISTORY_BULK_RESULTS = 25_000


def get_history(call: Call) -> dict[str, Any]:
    run_id = call.req("run_id", "run_uuid")
    key = call.req("metric_key")
    page = call.store.get_metric_history(run_id, key, call.integer("max_results"), call.text("page_token") or None)
    out: dict[str, Any] = {"metrics": [metric_to_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def get_history_bulk(call: Call) -> dict[str, Any]:
    """MLflow UI's `GET /ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=a&run_id=b&metric_key=k`.

    As get_metric_history_bulk_handler over MLflow's SQL store: runs in ascending id order (an
    id given twice counts once; unknown runs have no points), each run's points by timestamp,
    step, then value, each point with its `run_id`; `max_results` (default and cap 25,000)
    bounds the total. Unlike MLflow, a `max_results` that is not a non-negative integer is a 400
    (MLflow answers 500 for text, and a garbled list for negatives).
    """
    run_ids = call.bounded_ids("run_id", "run_id", "GetMetricHistoryBulk", MAX_HISTORY_BULK_RUNS)
    key = call.text("metric_key")
    if key is None:
        raise InvalidParameterValue("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = call.integer("max_results", MAX_HISTORY_BULK_RESULTS)
    if max_results < 0:
        raise InvalidParameterValue(f"Invalid value {max_results} for 'max_results': expected 0 or more.")
    points = call.store.get_metric_history_bulk(run_ids, key, min(max_results, MAX_HISTORY_BULK_RESULTS))
    return {"metrics": [metric_to_json(m) for m in points]}


def _run_ids(call: Call) -> list[str]:
    ids = [str(r) for r in call.items("run_ids") if r]
    if not ids:
        raise InvalidParameterValue("Missing value for required parameter 'run_ids': give one or more run IDs.")
    if len(ids) > MAX_BULK_RUNS:
        raise InvalidParameterValue(f"Too many run_ids ({len(ids)}): at most {MAX_BULK_RUNS} per request.")
    return ids


def _max_points(call: Call, name: str, default: int) -> int:
    n = call.integer(name, default)
    if n <= 0 or n > MAX_SAMPLED_POINTS:
        raise InvalidParameterValue(f"Invalid {name} {n}: expected 1 to {MAX_SAMPLED_POINTS}.")
    return n


def get_history_bulk_interval(call: Call) -> dict[str, Any]:
    """MLflow UI's chart endpoint, as MLflow 3.17 answers it: per run (in the order asked, repeats
    included) up to `max_results` (1 to 2500, default 2500) evenly spaced points of one metric in
    `[start_step, end_step]` (both or neither), first and last kept (see `sample_like_mlflow`);
    `{}` when there are none, as protobuf's JSON leaves out an empty list. The run count, the
    metric key and `max_results` are checked before this runs, by MLflow's schema
    (`server/validation.py`); the step range here, with its handler's sentences."""
    run_ids = [str(r) for r in call.items("run_ids")]
    key = call.req("metric_key")
    start, end = call.integer("start_step"), call.integer("end_step")
    n = call.integer("max_results", MAX_BULK_INTERVAL_RESULTS)
    if (start is None) != (end is None):
        raise InvalidParameterValue("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise InvalidParameterValue("end_step must be greater than start_step. "
                                    f"Found start_step={start} and end_step={end}.")
    series = call.store.get_metric_history_bulk_interval(run_ids, key, n, start, end)
    out = [{"key": key, "value": "NaN" if v is None else json_number(v), "timestamp": ts, "step": step,
            "run_id": run_id} for run_id, points in zip(run_ids, series, strict=True) for step, ts, v in points]
    return {"metrics": out} if out else {}


def get_history_sampled(call: Call) -> dict[str, Any]:
    """At most about `max_points` points per run (min/max per bucket, first and last kept).

    One run: `?run_id=..` answers `{"metrics": [...]}`; several: `?run_ids=a&run_ids=b` answers
    `{"runs": [{"run_id": a, "metrics": [...]}, ...]}`.
    """
    key = call.req("metric_key")
    n = _max_points(call, "max_points", 1000)
    lo, hi = call.integer("min_step"), call.integer("max_step")
    if call.data.get("run_ids") is not None or call.items("run_ids"):
        return {"runs": [{"run_id": r, "metrics": [metric_to_json(m) for m in
                                                    call.store.get_metric_history_sampled(r, key, n, lo, hi)]}
                         for r in _run_ids(call)]}
    run_id = call.req("run_id")
    return {"metrics": [metric_to_json(m) for m in call.store.get_metric_history_sampled(run_id, key, n, lo, hi)]}


ROUTES = [
    (["GET"], "/metrics/get-history", get_history),
    (["GET"], "/metrics/get-history-bulk-interval", get_history_bulk_interval),
]

# MLflow serves these under /ajax-api/2.0/mlflow only (mlflow/server/__init__.py)
AJAX_ROUTES = [
    (["GET"], "/metrics/get-history-bulk", get_history_bulk),
]

MLTRAIL_ROUTES = [
    (["GET", "POST"], "/metrics/get-history-sampled", get_history_sampled),
]
