"""Downsampling a metric's history for charts: spikes survive, the ends are kept.

Two ways to choose points, one per kind of client:

- `downsample` (mltrail's UI and its `get-history-sampled` route): the steps are cut into equal
  buckets; each bucket keeps its minimum and its maximum point (in step order), so a chart of the
  result shows the same envelope as the full series, spikes included.
- `mlflow_sampled_positions` (MLflow's `get-history-bulk-interval`, which MLflow's own UI charts):
  evenly spaced points, exactly the ones an MLflow 3.17 server returns, so a chart fed by either
  server shows the same points.

NaN points are handled alike in every path: they are points like any other when chosen by
position (MLflow returns them; its JSON writes them "NaN"), and never a bucket's minimum or
maximum when chosen by value (a NaN has no place in an envelope), though a series' first and last
points are kept whatever their value. The SQL versions in `store/sql/sampling.py` keep the same
points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mltrail.entities import Metric


def downsample(points: Sequence[Metric], max_points: int) -> list[Metric]:
    """At most `max_points` (>= 4) points of `points` (sorted by step): first, last, min/max per bucket."""
    n = len(points)
    if max_points <= 0 or n <= max_points:
        return list(points)
    max_points = max(max_points, 4)
    buckets = (max_points - 2) // 2
    first_step, last_step = points[0].step, points[-1].step
    span = max(last_step - first_step, 1)
    chosen: set[int] = {0, n - 1}
    best: dict[int, tuple[int, int]] = {}  # bucket -> (index of min, index of max)

    for i in range(1, n - 1):
        x = points[i].value
        if math.isnan(x):
            continue  # never a bucket's min or max (as in SQL, where min()/max() skip them)
        b = min(int((points[i].step - first_step) * buckets / span), buckets - 1)
        cur = best.get(b)
        if cur is None:
            best[b] = (i, i)
        else:
            lo, hi = cur
            best[b] = (i if x < points[lo].value else lo, i if x > points[hi].value else hi)
    for lo, hi in best.values():
        chosen.add(lo)
        chosen.add(hi)
    return [points[i] for i in sorted(chosen)]


def mlflow_sampled_positions(total: int, max_results: int) -> list[int]:
    """The positions (ascending, 0-based) of the points MLflow 3.17 returns from `total` points.

    Mirrors MLflow 3.17's choice for `GET /api/2.0/mlflow/metrics/get-history-bulk-interval`
    (`SqlAlchemyStore.get_metric_history_bulk_interval`, the store behind an MLflow server on a
    database, its default): per run, the points of the metric in the step range are sorted by
    (step, timestamp, value, is_nan) -- a NaN is stored as the value 0 with its flag set, so it sorts just after a real 0 -- and cut
    into `max_results` buckets as SQL's NTILE cuts them (sizes differ by at most one, larger ones
    first); the first point of each bucket is kept, and the last point of all replaces the last
    bucket's first, so the first and last points are always there. With `total` <= `max_results`
    every point is kept; with `max_results` = 1 only the last.

    Points, not steps, are sampled, each run on its own (runs may differ in their steps): a step
    holding several values can give several points, or none of its values may be picked.
    """
    if total <= 0:
        return []
    k = max(1, max_results)
    if total <= k:
        return list(range(total))
    q, r = divmod(total, k)  # r buckets of q + 1 points, then k - r of q
    out = [b * q + min(b, r) for b in range(k)]
    out[-1] = total - 1
    return out
