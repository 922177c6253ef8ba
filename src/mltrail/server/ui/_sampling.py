"""Downsampled metric histories of many runs for one chart (the `/ui/api/metrics` endpoint).

The store's `get_metric_history_sampled` keeps the minimum and the maximum of each step bucket,
so spikes survive however far a series is reduced. Series come back as columns (steps, values,
timestamps) because a chart of 100 runs carries that many series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mltrail.errors import InvalidParameterValue

MAX_RUNS_PER_REQUEST = 200
MAX_POINTS = 20_000
TOTAL_POINTS = 40_000  # per chart, across its runs: what a browser draws quickly


def points_per_run(n_runs: int) -> int:
    """How many points each run of a chart of `n_runs` gets by default."""
    return max(200, min(1000, TOTAL_POINTS // max(n_runs, 1)))


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def sample_runs(store: Any, run_ids: Sequence[str], key: str, max_points: int, min_step: int | None = None,
                max_step: int | None = None) -> list[dict[str, Any]]:
    """One series per run: `{"run_id", "steps", "values", "timestamps"}` (NaN and infinities as null)."""
    if not run_ids:
        raise InvalidParameterValue("Missing run_ids: give one or more run IDs (comma-separated).")
    if len(run_ids) > MAX_RUNS_PER_REQUEST:
        raise InvalidParameterValue(f"Too many run_ids ({len(run_ids)}): at most {MAX_RUNS_PER_REQUEST} per request.")
    if not 4 <= max_points <= MAX_POINTS:
        raise InvalidParameterValue(f"Invalid max_points {max_points}: expected 4 to {MAX_POINTS}.")
    out = []
    for run_id in run_ids:
        points = store.get_metric_history_sampled(run_id, key, max_points, min_step, max_step)
        out.append({"run_id": run_id, "steps": [p.step for p in points],
                    "values": [_finite(p.value) for p in points],
                    "timestamps": [p.timestamp for p in points]})
    return out
