"""Downsampling a metric's history for charts: spikes survive, the ends are kept.

The steps are cut into equal buckets; each bucket keeps its minimum and its maximum point (in
step order), so a chart of the result shows the same envelope as the full series.
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

    def val(i: int) -> float:
        x = points[i].value
        return x if not math.isnan(x) else 0.0

    for i in range(1, n - 1):
        b = min(int((points[i].step - first_step) * buckets / span), buckets - 1)
        cur = best.get(b)
        if cur is None:
            best[b] = (i, i)
        else:
            lo, hi = cur
            best[b] = (i if val(i) < val(lo) else lo, i if val(i) > val(hi) else hi)
    for lo, hi in best.values():
        chosen.add(lo)
        chosen.add(hi)
    return [points[i] for i in sorted(chosen)]
