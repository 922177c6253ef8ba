"""The UI's chart sampler: on SQLite it samples inside the database, and must keep exactly the
points the store's own `get_metric_history_sampled` keeps; on other stores it uses that method."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from mltrail.entities import Metric
from mltrail.errors import InvalidParameterValue
from mltrail.server.ui._sampling import Sampler, points_per_run
from mltrail.store import get_store


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
    pts = store.get_metric_history_sampled(rid, key, n, lo, hi)
    return [p.step for p in pts], [None if not math.isfinite(p.value) else p.value for p in pts]


@pytest.mark.parametrize("n_points,max_points", [(10, 100), (1000, 100), (2500, 37), (5000, 1000), (700, 4)])
def test_sqlite_sampling_keeps_the_store_s_points(store, n_points, max_points):
    rng = random.Random(n_points)
    rid = _run(store, [(s, rng.gauss(0, 1)) for s in range(n_points)])
    sampler = Sampler(store)
    assert sampler.fast
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


def test_other_stores_use_the_store_s_method(store):
    class Wrapped:  # a store that is not the SQL store: only the public method is there
        def __init__(self, inner):
            self.inner = inner

        def get_metric_history_sampled(self, *args):
            return self.inner.get_metric_history_sampled(*args)

    rid = _run(store, [(s, float(s)) for s in range(300)])
    sampler = Sampler(Wrapped(store))
    assert not sampler.fast
    assert _series(sampler, rid, "m", 50)["steps"] == _expected(store, rid, "m", 50)[0]
