"""Metric history: MLflow's get-history (paged) and get-history-bulk-interval, and mltrail's
downsampled history for charts (`/api/2.0/mltrail/metrics/get-history-sampled`, one run or many)."""

from __future__ import annotations

from typing import Any

from mltrail.errors import InvalidParameterValue
from mltrail.server._http import Call
from mltrail.store.rest_json import metric_to_json

MAX_SAMPLED_POINTS = 100_000
MAX_BULK_RUNS = 200


def get_history(call: Call) -> dict[str, Any]:
    run_id = call.req("run_id", "run_uuid")
    key = call.req("metric_key")
    page = call.store.get_metric_history(run_id, key, call.integer("max_results"), call.text("page_token") or None)
    out: dict[str, Any] = {"metrics": [metric_to_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


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
    """MLflow UI's chart endpoint: sampled points of one metric for several runs."""
    key = call.req("metric_key")
    n = _max_points(call, "max_results", 320)
    out: list[dict[str, Any]] = []
    for run_id in _run_ids(call):
        points = call.store.get_metric_history_sampled(run_id, key, n, call.integer("start_step"),
                                                       call.integer("end_step"))
        out.extend(metric_to_json(m, run_id) for m in points)
    return {"metrics": out}


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

MLTRAIL_ROUTES = [
    (["GET", "POST"], "/metrics/get-history-sampled", get_history_sampled),
]
