"""Downsampled metric histories of many runs for one chart (the `/ui/api/metrics` endpoint).

The store samples (`get_metric_series_sampled`: per step bucket the minimum and maximum point,
plus the first and last, so spikes survive; SQLite does it inside the database and caches
recent samples, each checked against the database on every request, PostgreSQL caches nothing).
So any replica of the server draws a point logged through another in its next chart. This module
sets the limits of a request and writes the JSON: series as columns (steps, values, timestamps),
non-finite values as null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import orjson

from mltrail.errors import InvalidParameterValue
from mltrail.store.sql.store import SqlTrackingStore

MAX_RUNS_PER_REQUEST = 200
MAX_POINTS = 20_000
TOTAL_POINTS = 40_000  # per chart, across its runs: what a browser draws quickly


def points_per_run(n_runs: int) -> int:
    """How many points each run of a chart of `n_runs` gets by default."""
    return max(200, min(1000, TOTAL_POINTS // max(n_runs, 1)))


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _series_json(run_id: str, points: Sequence[tuple[int, int, float | None]]) -> bytes:
    return orjson.dumps({"run_id": run_id, "steps": [p[0] for p in points],
                         "values": [_finite(p[2]) for p in points], "timestamps": [p[1] for p in points]})


class Sampler:
    """The chart data of one store."""

    def __init__(self, store: SqlTrackingStore) -> None:
        self.store = store

    def clear(self) -> None:
        """Forget the store's cached samples (benchmarks start cold with this)."""
        self.store.clear_sampled_series_cache()

    def response(self, run_ids: Sequence[str], key: str, max_points: int, min_step: int | None = None,
                 max_step: int | None = None) -> bytes:
        """The endpoint's JSON body: `{"key": ..., "runs": [{"run_id", "steps", "values", "timestamps"}]}`."""
        if not run_ids:
            raise InvalidParameterValue("Missing run_ids: give one or more run IDs (comma-separated).")
        if len(run_ids) > MAX_RUNS_PER_REQUEST:
            raise InvalidParameterValue(
                f"Too many run_ids ({len(run_ids)}): at most {MAX_RUNS_PER_REQUEST} per request.")
        if not 4 <= max_points <= MAX_POINTS:
            raise InvalidParameterValue(f"Invalid max_points {max_points}: expected 4 to {MAX_POINTS}.")
        series = self.store.get_metric_series_sampled(list(run_ids), key, max_points, min_step, max_step)
        parts = [_series_json(run_id, points) for run_id, points in zip(run_ids, series, strict=True)]
        return b'{"key":' + orjson.dumps(key) + b',"runs":[' + b",".join(parts) + b"]}"
