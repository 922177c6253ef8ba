"""PostgreSQL samples series inside the database and picks exactly the points `downsample` picks."""

from __future__ import annotations

import math
import random

import pytest

from mltrail.entities import Metric
from mltrail.store import get_store
from mltrail.store.downsample import downsample
from mltrail.store.sql.sampling_pg import sample_series

pytestmark = pytest.mark.postgres


def _as_points(metrics):
    return [(m.step, m.timestamp, None if math.isnan(m.value) else m.value) for m in metrics]


@pytest.fixture
def store(postgres_uri, tmp_path):
    return get_store(postgres_uri, str(tmp_path / "artifacts"))


def test_ties_repeated_steps_nan_and_step_ranges_match_python(store):
    rng = random.Random(7)
    run_id = store.create_run(store.create_experiment("ties"), "u", 0, [], "r").info.run_id
    # few distinct values (many ties), steps logged twice, NaN and infinities among them, unordered ids
    points = [Metric("m", rng.choice([0.25, 0.5, 0.75, math.nan, math.inf, -math.inf, -2.0]), 1000 + rng.randrange(5), s)
              for s in range(700) for _ in range(1 + (s % 3 == 0))]
    rng.shuffle(points)
    store.log_batch(run_id, metrics=points)
    full = store.get_metric_history(run_id, "m")
    for max_points, lo, hi in [(4, None, None), (9, None, None), (50, None, None), (200, 100, 450), (30, 699, 699)]:
        in_range = [m for m in full if (lo is None or m.step >= lo) and (hi is None or m.step <= hi)]
        in_range.sort(key=lambda m: m.step)  # get_metric_history keeps logging order within a step
        expected = _as_points(downsample(in_range, max_points))
        got = sample_series(store.engine, [run_id], "m", max_points, lo, hi)[0]
        assert [p[0] for p in got] == [p[0] for p in expected], (max_points, lo, hi)
        assert got == expected, (max_points, lo, hi)
        assert _as_points(store.get_metric_history_sampled(run_id, "m", max_points, lo, hi)) == expected


def test_several_runs_in_order_and_an_unknown_one_empty(store):
    exp = store.create_experiment("runs")
    ids = []
    for r in range(3):
        run_id = store.create_run(exp, "u", 0, [], f"r{r}").info.run_id
        store.log_batch(run_id, metrics=[Metric("m", math.sin(s / (r + 1)), 1000 + s, s) for s in range(300)])
        ids.append(run_id)
    series = store.get_metric_series_sampled([ids[2], "0" * 32, ids[0]], "m", 40)
    assert series[1] == []
    for run_id, got in zip([ids[2], ids[0]], [series[0], series[2]], strict=True):
        assert got == _as_points(downsample(store.get_metric_history(run_id, "m"), 40))
        assert 4 < len(got) <= 40
    assert len(store.get_metric_series_sampled([ids[1]], "m", 0)[0]) == 300  # 0: every point
