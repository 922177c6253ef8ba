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


def test_nan_is_never_a_bucket_s_min_or_max_in_either_path(store):
    # a NaN inside a series: both downsampling paths (SQL on SQLite, downsample() elsewhere) leave it
    # out of the buckets' min/max (it has no place in an envelope) and keep it only as a first or last point
    values = [(s, 1.0 + (s % 7) / 10) for s in range(400)]
    values[137] = (137, math.nan)
    values[0] = (0, math.nan)
    rid = _run(store, values)
    got = _series(Sampler(store), rid, "m", 40)
    steps, expected_values = _expected(store, rid, "m", 40)
    assert got["steps"] == steps and 137 not in steps
    assert got["values"][0] is None and expected_values[0] is None  # the first point, NaN, is kept
    assert [p.step for p in downsample(store.get_metric_history(rid, "m"), 40)] == steps


# --------------------------------------------------------- MLflow's get-history-bulk-interval over HTTP

BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"


def _ok(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()


def _logged_run(api, points: list[tuple[int, int, float | str]]) -> str:
    run_id = _ok(api("POST", "/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}))["run"]["info"]["run_id"]
    for i in range(0, len(points), 1000):
        _ok(api("POST", "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": [
            {"key": "loss", "value": v, "timestamp": ts, "step": s} for s, ts, v in points[i:i + 1000]]}))
    return run_id


def test_bulk_interval_answers_as_mlflow_does(api):
    # every expected body below is what an MLflow 3.17.2 server (SQLite backend) answered for the
    # same points (mlflow.server.handlers.get_metric_history_bulk_interval_handler)
    one = _logged_run(api, [(s, 100 + s, s / 4) for s in range(10)]
                      + [(4, 104, "NaN"), (4, 104, -1.0), (7, 90, 2.5)])
    two = _logged_run(api, [(2 * s, 200 + s, 1.0 - s / 8) for s in range(8)])
    big = _logged_run(api, [(s, s, float(s)) for s in range(3000)])

    def get(run_ids, path=BULK, **params):
        return api("GET", path, params={"run_ids": run_ids, "metric_key": "loss", **params})

    def point(run_id, step, ts, value):
        return {"key": "loss", "value": value, "timestamp": ts, "step": step, "run_id": run_id}

    r = get([two, one], max_results=4)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"metrics": [
        point(two, 0, 200, 1.0), point(two, 4, 202, 0.75), point(two, 8, 204, 0.5), point(two, 14, 207, 0.125),
        point(one, 0, 100, 0.0), point(one, 4, 104, -1.0), point(one, 5, 105, 1.25), point(one, 9, 109, 2.25)]}
    assert [list(m) for m in r.json()["metrics"]] == [["key", "value", "timestamp", "step", "run_id"]] * 8
    assert _ok(get([one], start_step=4, end_step=7, max_results=3)) == {"metrics": [
        point(one, 4, 104, -1.0), point(one, 5, 105, 1.25), point(one, 7, 107, 1.75)]}
    # points, not steps: a step's values are sorted by timestamp, then value (NaN counts as 0)
    assert _ok(get([one], start_step=4, end_step=4, max_results=3)) == {"metrics": [
        point(one, 4, 104, -1.0), point(one, 4, 104, "NaN"), point(one, 4, 104, 1.0)]}
    assert _ok(get([one], start_step=4, end_step=4, max_results=2)) == {"metrics": [
        point(one, 4, 104, -1.0), point(one, 4, 104, 1.0)]}
    assert _ok(get([one], start_step=5, end_step=5)) == {"metrics": [point(one, 5, 105, 1.25)]}
    assert _ok(get([one, one], max_results=1)) == {"metrics": [point(one, 9, 109, 2.25)] * 2}
    assert _ok(get([two], path="/api/2.0/mlflow/metrics/get-history-bulk-interval", max_results=2)) == {
        "metrics": [point(two, 0, 200, 1.0), point(two, 14, 207, 0.125)]}
    # max_results defaults to 2,500 per run; the first and last points are always there
    default = _ok(get([big]))["metrics"]
    steps = [m["step"] for m in default]
    assert (len(steps), steps[:5], steps[-3:], sum(steps)) == (2500, [0, 2, 4, 6, 8], [2997, 2998, 2999], 4248500)
    both = _ok(get([big, one], max_results=2500))["metrics"]
    assert len(both) == 2513 and [m["step"] for m in both[-3:]] == [7, 8, 9]
    # nothing to answer: protobuf's JSON leaves the empty list out
    assert _ok(get([one], metric_key="nope")) == {}
    assert _ok(get(["0" * 32])) == {}
    assert _ok(get([one], start_step=-5, end_step=-1)) == {}


@pytest.mark.parametrize("params,message", [
    ({"max_results": 0}, "max_results must be between 1 and 2500."),
    ({"max_results": 2501}, "max_results must be between 1 and 2500."),
    ({"start_step": 3}, "If either start step or end step are specified, both must be specified."),
    ({"end_step": 3}, "If either start step or end step are specified, both must be specified."),
    ({"start_step": 5, "end_step": 4}, "end_step must be greater than start_step. Found start_step=5 and end_step=4."),
    ({"run_ids": ["r"] * 101},
     "GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids."),
    ({"run_ids": []}, "Missing value for required parameter 'run_ids'."),
    ({"metric_key": None}, "Missing value for required parameter 'metric_key'."),
    ({"max_results": "many"}, "max_results"),
])
def test_bulk_interval_refuses_what_mlflow_refuses(api, params, message):
    # MLflow's messages, less the " See the API docs ..." it appends
    query = {"run_ids": ["r"], "metric_key": "loss", **params}
    r = api("GET", BULK, params={k: v for k, v in query.items() if v is not None})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in r.json()["message"]
