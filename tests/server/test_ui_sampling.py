"""The UI's chart data: on SQLite the store samples inside the database (store/sql/sampling.py) and
must keep exactly the points the generic algorithm (store/downsample.py) keeps; other stores
sample with that algorithm."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from mltrail.entities import Metric
from mltrail.errors import InvalidParameterValue
from mltrail.server.ui._sampling import Sampler, points_per_run
from mltrail.store import get_store
from mltrail.store.base import TrackingStore
from mltrail.store.downsample import downsample


@pytest.fixture
def store(tmp_path):
    return get_store(f"sqlite:///{tmp_path}/s.db", str(tmp_path / "artifacts"))


def _run(store, points: list[tuple[int, float]], key: str = "m") -> str:
    exp = store.create_experiment("sampling")
    rid = store.create_run(exp, "u", 0, [], "r").info.run_id
    metrics = [Metric(key, v, 1000 + i, s) for i, (s, v) in enumerate(points)]
    for i in range(0, len(metrics), 1000):
        store.log_batch(rid, metrics=metrics[i:i + 1000])
    return rid


def _series(sampler: Sampler, rid: str, key: str, n: int, lo: int | None = None, hi: int | None = None) -> dict:
    return orjson.loads(sampler.response([rid], key, n, lo, hi))["runs"][0]


def _expected(store, rid: str, key: str, n: int, lo: int | None = None, hi: int | None = None):
    """What the generic algorithm keeps of the full history."""
    full = [p for p in store.get_metric_history(rid, key) if (lo is None or p.step >= lo) and (hi is None or p.step <= hi)]
    pts = downsample(full, n)
    return [p.step for p in pts], [None if not math.isfinite(p.value) else p.value for p in pts]


@pytest.mark.parametrize("n_points,max_points", [(10, 100), (1000, 100), (2500, 37), (5000, 1000), (700, 4)])
def test_sqlite_sampling_keeps_the_store_s_points(store, n_points, max_points):
    rng = random.Random(n_points)
    rid = _run(store, [(s, rng.gauss(0, 1)) for s in range(n_points)])
    sampler = Sampler(store)
    got = _series(sampler, rid, "m", max_points)
    steps, values = _expected(store, rid, "m", max_points)
    assert got["steps"] == steps
    assert got["values"] == pytest.approx(values, rel=1e-12)
    assert len(got["timestamps"]) == len(steps)


def test_sampling_with_gaps_repeated_steps_and_nan(store):
    rng = random.Random(3)
    points = [(s * 7, rng.random()) for s in range(600)] + [(70, 50.0), (70, -50.0), (4000, float("nan")),
                                                            (1200, float("inf"))]
    rid = _run(store, points)
    got = _series(Sampler(store), rid, "m", 60)
    assert 50.0 in got["values"] and -50.0 in got["values"]  # both extremes at one step survive
    assert got["steps"][0] == 0 and got["steps"][-1] == 4193
    assert None in got["values"]  # non-finite values travel as null


def test_a_step_range_is_sampled_on_its_own(store):
    rid = _run(store, [(s, float(s % 97)) for s in range(10_000)])
    got = _series(Sampler(store), rid, "m", 100, 5000, 5999)
    steps, _ = _expected(store, rid, "m", 100, 5000, 5999)
    assert got["steps"] == steps and got["steps"][0] == 5000 and got["steps"][-1] == 5999
    assert max(got["values"]) == 96.0 and min(got["values"]) == 0.0


def test_missing_series_and_limits(store):
    rid = _run(store, [(0, 1.0)])
    sampler = Sampler(store)
    assert _series(sampler, rid, "other", 100) == {"run_id": rid, "steps": [], "values": [], "timestamps": []}
    assert _series(sampler, "0" * 32, "m", 100)["steps"] == []
    with pytest.raises(InvalidParameterValue, match="max_points"):
        sampler.response([rid], "m", 3)
    with pytest.raises(InvalidParameterValue, match="run_ids"):
        sampler.response([], "m", 100)
    assert points_per_run(1) == 1000 and points_per_run(100) == 400 and points_per_run(10_000) == 200


def test_the_interface_s_default_sampling_matches_the_sql_store_s(store):
    # TrackingStore's default get_metric_series_sampled (for backends without in-database sampling)
    # builds on get_metric_history_sampled and must pick the same points as the SQL store's own
    rid = _run(store, [(s, float(s)) for s in range(300)])
    by_default = TrackingStore.get_metric_series_sampled(store, [rid], "m", 50)
    assert by_default == store.get_metric_series_sampled([rid], "m", 50)
    assert [p[0] for p in by_default[0]] == _expected(store, rid, "m", 50)[0]


def test_a_cached_sample_is_redone_once_its_series_grows(store):
    rid = _run(store, [(s, 1.0) for s in range(500)])
    sampler = Sampler(store)
    assert _series(sampler, rid, "m", 100)["steps"][-1] == 499
    assert _series(sampler, rid, "m", 100)["steps"][-1] == 499  # from the cache
    store.log_batch(rid, metrics=[Metric("m", 9.0, 5000, 250)])  # a point in the middle, not at the end
    assert 9.0 in _series(sampler, rid, "m", 100)["values"]
    store.log_batch(rid, metrics=[Metric("m", 2.0, 6000, 900)])  # a new last point
    got = _series(sampler, rid, "m", 100)
    assert got["steps"][-1] == 900 and 9.0 in got["values"]
    other = store.create_run(store.create_experiment("other"), "u", 0, [], "o").info.run_id
    store.log_batch(other, metrics=[Metric("m", 3.0, 7000, 1)])  # another series' point: this sample stays
    assert _series(sampler, rid, "m", 100) == got


def test_the_store_s_own_sampled_history_is_the_same_sample(store):
    rid = _run(store, [(s, float((s * 37) % 101)) for s in range(3000)])
    via_store = store.get_metric_history_sampled(rid, "m", 80)
    assert [p.step for p in via_store] == _expected(store, rid, "m", 80)[0]
    assert [p.step for p in store.get_metric_history_sampled(rid, "m", 0, 10, 19)] == list(range(10, 20))
