"""Metric history: MLflow's get-history (paged), get-history-bulk and get-history-bulk-interval, and
mltrail's downsampled history for charts (`/api/2.0/mltrail/metrics/get-history-sampled`, one run or
many)."""

from __future__ import annotations

import heapq
import math
from typing import Any

from mltrail.entities import Metric
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.server._http import Call
from mltrail.store.base import TrackingStore
from mltrail.store.rest_json import json_number, metric_to_json

MAX_SAMPLED_POINTS = 100_000
MAX_BULK_RUNS = 200
# get_metric_history_bulk_handler's limits: at most 100 runs, and max_results defaults to and is
# capped at 25,000 points (for all runs together)
MAX_HISTORY_BULK_RUNS = 100
MAX_HISTORY_BULK_RESULTS = 25_000
_HISTORY_PAGE = 10_000


def get_history(call: Call) -> dict[str, Any]:
    run_id = call.req("run_id", "run_uuid")
    key = call.req("metric_key")
    page = call.store.get_metric_history(run_id, key, call.integer("max_results"), call.text("page_token") or None)
    out: dict[str, Any] = {"metrics": [metric_to_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def _bulk_order(m: Metric) -> tuple[int, int, float]:
    # MLflow's SQL store orders by the stored value, and it stores NaN as 0
    return (m.timestamp, m.step, 0.0 if math.isnan(m.value) else m.value)


def _first_points(store: TrackingStore, run_id: str, key: str, n: int) -> list[Metric]:
    """The first `n` points of one run's history in MLflow's bulk order, reading it page by page
    (memory stays bounded by `n`, however long the history). An unknown run has no points."""
    best: list[Metric] = []
    token = None
    while n > 0:
        try:
            page = store.get_metric_history(run_id, key, _HISTORY_PAGE, token)
        except ResourceDoesNotExist:
            return []
        best = heapq.nsmallest(n, [*best, *page], key=_bulk_order)
        token = page.token
        if not token:
            break
    return best


def get_history_bulk(call: Call) -> dict[str, Any]:
    """MLflow UI's `GET /ajax-api/2.0/mlflow/metrics/get-history-bulk?run_id=a&run_id=b&metric_key=k`.

    As get_metric_history_bulk_handler over MLflow's SQL store: runs in ascending id order (an
    id given twice counts once; unknown runs have no points), each run's points by timestamp,
    step, then value, each point with its `run_id`; `max_results` (default and cap 25,000)
    bounds the total. Unlike MLflow, a `max_results` that is not a non-negative integer is a 400
    (MLflow answers 500 for text, and a garbled list for negatives).
    """
    run_ids = [str(r) for r in call.items("run_id")]
    if not run_ids:
        raise InvalidParameterValue("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_HISTORY_BULK_RUNS:
        raise InvalidParameterValue(
            f"GetMetricHistoryBulk request cannot specify more than {MAX_HISTORY_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids.")
    key = call.text("metric_key")
    if key is None:
        raise InvalidParameterValue("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = call.integer("max_results", MAX_HISTORY_BULK_RESULTS)
    if max_results < 0:
        raise InvalidParameterValue(f"Invalid value {max_results} for 'max_results': expected 0 or more.")
    max_results = min(max_results, MAX_HISTORY_BULK_RESULTS)
    out: list[dict[str, Any]] = []
    for run_id in sorted(set(run_ids)):
        if len(out) >= max_results:
            break
        out.extend({"key": m.key, "value": json_number(m.value), "timestamp": m.timestamp, "step": m.step,
                    "run_id": run_id}
                   for m in _first_points(call.store, run_id, key, max_results - len(out)))
    return {"metrics": out}


def _run_ids(call: Call) -> list[str]:
    ids = [str(r) for r in call.items("run_ids") if r]
    if not ids:
        raise InvalidParameterValue("Missing value for required parameter 'run_ids': give one or more run IDs.")
    if len(ids) > MAX_BULK_RUNS:
        raise InvalidParameterValue(f"Too many run_ids ({len(ids)}): at most {MAX_BULK_RUNS} per request.")
    return ids


def _max_points(call: Call, name: str, default: int) -> int:
    n = call.integer(name, default)
    if n is None:
        return default
    if n <= 0 or n > MAX_SAMPLED_POINTS:
        raise InvalidParameterValue(f"Invalid {name} {n}: expected 1 to {MAX_SAMPLED_POINTS}.")
    return n


def get_history_bulk_interval(call: Call) -> dict[str, Any]:
    """MLflow UI's chart endpoint, as MLflow 3.17 answers it: per run (in the order asked, repeats
    included) up to `max_results` (1 to 2500, default 2500) evenly spaced points of one metric in
    `[start_step, end_step]` (both or neither), first and last kept (see `sample_like_mlflow`);
    `{}` when there are none, as protobuf's JSON leaves out an empty list. MLflow's own limits and
    messages (its handler's `MAX_RUNS_GET_METRIC_HISTORY_BULK`, `MAX_RESULTS_PER_RUN`)."""
    from mltrail.store.rest_json import json_number
    from mltrail.store.sql.sampling import sample_like_mlflow

    max_runs, max_per_run = 100, 2500
    run_ids = [str(r) for r in call.items("run_ids")]
    if not run_ids:
        raise InvalidParameterValue("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > max_runs:
        raise InvalidParameterValue(f"GetMetricHistoryBulkInterval request must specify at most {max_runs} "
                                    f"run_ids. Received {len(run_ids)} run_ids.")
    key = call.req("metric_key")
    start, end = call.integer("start_step"), call.integer("end_step")
    n = call.integer("max_results", max_per_run)
    if not 1 <= n <= max_per_run:
        raise InvalidParameterValue(f"max_results must be between 1 and {max_per_run}.")
    if (start is None) != (end is None):
        raise InvalidParameterValue("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise InvalidParameterValue("end_step must be greater than start_step. "
                                    f"Found start_step={start} and end_step={end}.")
    series = sample_like_mlflow(call.store.engine, run_ids, key, n, start, end)
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
