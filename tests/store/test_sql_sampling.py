"""The SQLite series sampler's cache: bounded by the points it holds, least recently used first out."""

from __future__ import annotations

from mltrail.entities import Metric
from mltrail.store import get_store
from mltrail.store.sql import sampling


def test_the_cache_holds_a_bounded_number_of_points(tmp_path, monkeypatch):
    monkeypatch.setattr(sampling, "CACHE_POINTS", 1000)
    store = get_store(f"sqlite:///{tmp_path}/s.db", str(tmp_path / "artifacts"))
    exp = store.create_experiment("cache")
    runs = []
    for r in range(15):
        run_id = store.create_run(exp, "u", 0, [], f"r{r}").info.run_id
        store.log_batch(run_id, metrics=[Metric("m", float(s), 1000 + s, s) for s in range(100)])
        runs.append(run_id)
    sampler = sampling.SeriesSampler()
    series = sampler.sample(store.engine, runs, "m", 0)
    assert [len(s) for s in series] == [100] * 15
    assert sampler._points == 1000 and len(sampler._cache) == 10  # the five oldest went
    assert [key[0] for key in sampler._cache] == runs[5:]
    big = store.create_run(exp, "u", 0, [], "big").info.run_id
    store.log_batch(big, metrics=[Metric("m", float(s), 1000 + s, s) for s in range(101)])
    assert len(sampler.sample(store.engine, [big], "m", 0)[0]) == 101
    assert sampler._points == 1000  # a sample over a tenth of the bound is not kept


# ---------------------------------------------------------------- exact values, NaN alike in every path
import math  # noqa: E402

import orjson  # noqa: E402
import pytest  # noqa: E402

from mltrail.store.downsample import downsample  # noqa: E402

N_POINTS = 240
# values a chart must show exactly as logged: 17 significant digits, tiny, beyond 2**53, infinite;
# each is the minimum or maximum of its step bucket at 40 points (the others lie in (0.5, 0.9))
SPECIAL = {0: math.nan, 7: 0.1 + 0.2, 30: 1e-300, 61: float(2**53 + 1), 90: math.inf, 91: -math.inf,
           120: math.nan, 121: math.nan, 150: -1e-300, 175: 2.0**53 + 2, 200: 1 / 3, N_POINTS - 1: math.nan}


def _value(step):
    return SPECIAL.get(step, 0.5 + (step % 37 + 1) / 97)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def series_store(request, tmp_path):
    uri = f"sqlite:///{tmp_path}/s.db" if request.param == "sqlite" else request.getfixturevalue("postgres_uri")
    store = get_store(uri, str(tmp_path / "artifacts"))
    run_id = store.create_run(store.create_experiment("exact"), "u", 0, [], "r").info.run_id
    store.log_batch(run_id, metrics=[Metric("m", _value(s), 1000 + s, s) for s in range(N_POINTS)])
    return store, run_id


def _same_value(got, logged):
    if math.isnan(logged):
        return got is None or (isinstance(got, float) and math.isnan(got))
    return got == logged and repr(got) == repr(logged)


def _as_points(metrics):
    return [(m.step, m.timestamp, None if math.isnan(m.value) else m.value) for m in metrics]


def test_every_sampling_path_returns_the_logged_doubles_exactly(series_store):
    store, run_id = series_store
    full = store.get_metric_history(run_id, "m")
    assert all(_same_value(m.value, _value(m.step)) for m in full)
    paths = {
        "history sampled": _as_points(store.get_metric_history_sampled(run_id, "m", 40)),
        "series sampled": store.get_metric_series_sampled([run_id], "m", 40)[0],
        "bulk interval (MLflow's)": store.get_metric_history_bulk_interval([run_id], "m", 25)[0],
    }
    for name, points in paths.items():
        assert len(points) < N_POINTS, name
        wrong = [(step, value, _value(step)) for step, _, value in points if not _same_value(value, _value(step))]
        assert wrong == [], name
    chosen = {p[0] for p in paths["history sampled"]}
    # the extremes are chosen and exact: a 15-digit text round trip would have changed them
    assert {7, 30, 61, 90, 91, 150, 175, 200} <= chosen and {0, N_POINTS - 1} <= chosen


def test_nan_is_handled_alike_in_the_database_and_in_python(series_store):
    store, run_id = series_store
    full = store.get_metric_history(run_id, "m")
    for max_points in (4, 10, 40, 100):
        expected = _as_points(downsample(full, max_points))
        assert store.get_metric_series_sampled([run_id], "m", max_points)[0] == expected, max_points
        assert _as_points(store.get_metric_history_sampled(run_id, "m", max_points)) == expected
        middle = [p for p in expected[1:-1] if p[2] is None]
        assert middle == []  # a NaN is never a bucket's min or max, whatever the path
        assert expected[0][2] is None and expected[-1][2] is None  # the ends are kept, NaN or not


def test_the_chart_json_keeps_17_digits_and_writes_non_finite_values_as_null(series_store):
    from mltrail.server.ui._sampling import Sampler

    store, run_id = series_store
    body = orjson.loads(Sampler(store).response([run_id], "m", 40))
    series = body["runs"][0]
    assert series["run_id"] == run_id and len(series["steps"]) == len(series["values"]) < N_POINTS
    for step, value in zip(series["steps"], series["values"], strict=True):
        logged = _value(step)
        if math.isfinite(logged):
            assert value == logged and repr(value) == repr(logged), step
        else:
            assert value is None, step
    assert 61 in series["steps"] and series["values"][series["steps"].index(61)] == float(2**53 + 1)
