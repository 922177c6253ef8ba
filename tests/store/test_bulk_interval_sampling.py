"""MLflow's sampling for `get-history-bulk-interval` (`mlflow_sampled_positions` and the SQL
`sample_like_mlflow`): the points chosen must be the ones an MLflow 3.17 server returns.

Every expectation below was computed once by MLflow 3.17.2 itself -- an MLflow server on a SQLite
backend (`mlflow.server.handlers.get_metric_history_bulk_interval_handler`, which calls
`SqlAlchemyStore.get_metric_history_bulk_interval`) fed the same points -- and hard-coded here, so
the tests need no MLflow. The one difference in values: MLflow's SQL store writes +-inf as
+-1.7976931348623157e308; mltrail keeps inf (the point chosen is the same).
"""

from __future__ import annotations

import contextlib
import math

import pytest
from sqlalchemy import event

from mltrail.entities import Metric
from mltrail.store import clear_cache, get_store
from mltrail.store.downsample import mlflow_sampled_positions
from mltrail.store.sql import sampling
from mltrail.store.sql.sampling import sample_like_mlflow

NAN, INF = math.nan, math.inf


def _dense(n: int) -> list[tuple[int, int, float]]:
    return [(s, 1000 + s, s * 0.5) for s in range(n)]


# label -> points (step, timestamp, value), logged in this order
RUNS: dict[str, list[tuple[int, int, float]]] = {
    "gaps": [(7 * i, 1000 + i, i * 0.5) for i in range(50)],  # every 7th step
    "offgrid": [(7 * i + (3 if i == 20 else 0), 4000 + i, float(i)) for i in range(50)],  # all but one
    "squares": [(i * i, 3000 + i, float(i)) for i in range(40)],  # irregular steps
    # repeated steps: same step with other timestamps, same timestamp with other values, NaN and inf
    "repeats": [(s, 100 + s, float(s)) for s in range(20)]
    + [(5, 99, 7.0), (5, 105, -1.0), (5, 105, -2.0), (13, 113, NAN), (17, 90, INF), (17, 90, 3.0)],
    "step0": [(0, 1000 + (i * 7) % 30, float(i)) for i in range(30)],  # all at step 0 (log_metric's default)
    "a": [(s, 5000 + s, (s % 9) * 0.25) for s in range(100)],
    "b": [(3 * i, 7000 + i, -i * 1.5) for i in range(30)],
    "dense10000": _dense(10_000),
}


def _log(store, labels) -> dict[str, str]:
    """label -> run id, for these runs of RUNS logged (and 'missing': an id no run has)."""
    exp = store.create_experiment("bulk-interval")
    ids = {"missing": "f" * 32}
    for label in labels:
        run_id = store.create_run(exp, "u", 0, [], label).info.run_id
        metrics = [Metric("m", v, ts, s) for s, ts, v in RUNS[label]]
        for i in range(0, len(metrics), 1000):
            store.log_batch(run_id, metrics=metrics[i:i + 1000])
        ids[label] = run_id
    return ids


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request, tmp_path_factory):
    """(store, label -> run id) with every run of RUNS logged, for the tests that only read."""
    root = tmp_path_factory.mktemp("bulk-interval")
    if request.param == "sqlite":
        uri = f"sqlite:///{root}/s.db"
    else:
        pg = request.getfixturevalue("pg_server")
        uri = pg.create_database()
    clear_cache()
    store = get_store(uri, str(root / "artifacts"))
    yield store, _log(store, RUNS)
    clear_cache()
    store.engine.dispose()
    if request.param == "postgres":
        with contextlib.suppress(Exception):
            pg.drop_database(uri.rsplit("/", 1)[1])


@pytest.fixture(params=BACKENDS)
def db_store(request, tmp_path):
    """A fresh store of its own, for a test that writes."""
    clear_cache()
    uri = f"sqlite:///{tmp_path}/s.db" if request.param == "sqlite" else request.getfixturevalue("postgres_uri")
    return get_store(uri, str(tmp_path / "artifacts"))


def _at(label: str, step: int) -> tuple[str, int, int, float]:
    """The point of a run with one point per step."""
    (point,) = [p for p in RUNS[label] if p[0] == step]
    return label, point[0], point[1], point[2]


def _ours(db_store, ids: dict[str, str], labels: list[str], max_results: int, lo: int | None, hi: int | None):
    series = sample_like_mlflow(db_store.engine, [ids[label] for label in labels], "m", max_results, lo, hi)
    return [(label, s, ts, "NaN" if v is None else v)
            for label, points in zip(labels, series, strict=True) for s, ts, v in points]


# (total points, max_results) -> the steps MLflow returns for steps 0..total-1, one point each
POSITIONS = [
    (1, 1, [0]), (1, 5, [0]), (5, 1, [4]), (5, 5, [0, 1, 2, 3, 4]), (6, 5, [0, 2, 3, 4, 5]),
    (7, 3, [0, 3, 6]), (10, 3, [0, 4, 9]), (10, 4, [0, 3, 6, 9]), (12, 5, [0, 3, 6, 8, 11]),
    (9, 2, [0, 8]), (3, 2, [0, 2]), (100, 7, [0, 15, 30, 44, 58, 72, 99]),
    (101, 10, [0, 11, 21, 31, 41, 51, 61, 71, 81, 100]), (10_000, 1, [9999]), (10_000, 2, [0, 9999]),
]
# too long to list: (total, max_results, count, first six, last three, sum)
POSITIONS_SUMMARY = [
    (1000, 320, 320, [0, 4, 8, 12, 16, 20], [991, 994, 999], 165102),
    (2501, 2500, 2500, [0, 2, 3, 4, 5, 6], [2498, 2499, 2500], 3126249),
    (10_000, 2500, 2500, [0, 4, 8, 12, 16, 20], [9988, 9992, 9999], 12495003),
    (10_000, 320, 320, [0, 32, 64, 96, 128, 160], [9907, 9938, 9999], 1604630),
]


@pytest.mark.parametrize("total,max_results,expected", POSITIONS)
def test_positions_are_mlflow_s(total, max_results, expected):
    assert mlflow_sampled_positions(total, max_results) == expected


@pytest.mark.parametrize("total,max_results,count,head,tail,total_sum", POSITIONS_SUMMARY)
def test_positions_of_long_series_are_mlflow_s(total, max_results, count, head, tail, total_sum):
    got = mlflow_sampled_positions(total, max_results)
    assert (len(got), got[:6], got[-3:], sum(got)) == (count, head, tail, total_sum)
    assert got == sorted(set(got))


def test_positions_of_nothing():
    assert mlflow_sampled_positions(0, 10) == []
    assert mlflow_sampled_positions(3, 0) == [2]  # MLflow's store takes max(1, max_results)


# (run labels in request order, max_results, start_step, end_step) -> MLflow's points in order:
# (label, step, timestamp, value), NaN as MLflow's JSON writes it
CASES = [
    ((["gaps"], 8, None, None), [_at("gaps", s) for s in (0, 49, 98, 140, 182, 224, 266, 343)]),
    ((["gaps"], 50, None, None), [_at("gaps", 7 * i) for i in range(50)]),
    ((["gaps"], 3, 14, 100), [_at("gaps", s) for s in (14, 49, 98)]),
    ((["gaps"], 5, 100, 300), [_at("gaps", s) for s in (105, 147, 189, 231, 294)]),
    ((["offgrid"], 8, None, None), [_at("offgrid", s) for s in (0, 49, 98, 143, 182, 224, 266, 343)]),
    ((["offgrid"], 5, 100, 300), [_at("offgrid", s) for s in (105, 147, 189, 231, 294)]),
    ((["squares"], 6, None, None), [_at("squares", s) for s in (0, 49, 196, 441, 784, 1521)]),
    ((["squares"], 7, 10, 1000), [_at("squares", s) for s in (16, 64, 144, 256, 400, 576, 961)]),
    ((["repeats"], 6, None, None), [("repeats", *p) for p in [
        (0, 100, 0.0), (5, 99, 7.0), (7, 107, 7.0), (11, 111, 11.0), (14, 114, 14.0), (19, 119, 19.0)]]),
    ((["repeats"], 10, None, None), [("repeats", *p) for p in [
        (0, 100, 0.0), (3, 103, 3.0), (5, 105, -2.0), (6, 106, 6.0), (9, 109, 9.0), (12, 112, 12.0),
        (14, 114, 14.0), (16, 116, 16.0), (17, 90, INF), (19, 119, 19.0)]]),
    ((["repeats"], 25, None, None), [("repeats", *p) for p in [
        (0, 100, 0.0), (2, 102, 2.0), (3, 103, 3.0), (4, 104, 4.0), (5, 99, 7.0), (5, 105, -2.0),
        (5, 105, -1.0), (5, 105, 5.0), (6, 106, 6.0), (7, 107, 7.0), (8, 108, 8.0), (9, 109, 9.0),
        (10, 110, 10.0), (11, 111, 11.0), (12, 112, 12.0), (13, 113, "NaN"), (13, 113, 13.0), (14, 114, 14.0),
        (15, 115, 15.0), (16, 116, 16.0), (17, 90, 3.0), (17, 90, INF), (17, 117, 17.0), (18, 118, 18.0),
        (19, 119, 19.0)]]),
    ((["repeats"], 26, None, None), [("repeats", *p) for p in [
        (0, 100, 0.0), (1, 101, 1.0), (2, 102, 2.0), (3, 103, 3.0), (4, 104, 4.0), (5, 99, 7.0),
        (5, 105, -2.0), (5, 105, -1.0), (5, 105, 5.0), (6, 106, 6.0), (7, 107, 7.0), (8, 108, 8.0),
        (9, 109, 9.0), (10, 110, 10.0), (11, 111, 11.0), (12, 112, 12.0), (13, 113, "NaN"), (13, 113, 13.0),
        (14, 114, 14.0), (15, 115, 15.0), (16, 116, 16.0), (17, 90, 3.0), (17, 90, INF), (17, 117, 17.0),
        (18, 118, 18.0), (19, 119, 19.0)]]),
    ((["repeats"], 1, None, None), [("repeats", 19, 119, 19.0)]),
    ((["repeats"], 4, 5, 13), [("repeats", *p) for p in [
        (5, 99, 7.0), (6, 106, 6.0), (9, 109, 9.0), (13, 113, 13.0)]]),
    ((["repeats"], 3, 17, 17), [("repeats", *p) for p in [(17, 90, 3.0), (17, 90, INF), (17, 117, 17.0)]]),
    ((["step0"], 7, None, None), [("step0", *p) for p in [
        (0, 1000, 0.0), (0, 1005, 5.0), (0, 1010, 10.0), (0, 1014, 2.0), (0, 1018, 24.0), (0, 1022, 16.0),
        (0, 1029, 17.0)]]),
    ((["step0"], 30, None, None), [("step0", 0, 1000 + i, float(i * 13 % 30)) for i in range(30)]),
    ((["step0"], 2, 0, 0), [("step0", 0, 1000, 0.0), ("step0", 0, 1029, 17.0)]),
    # each run sampled on its own, in the order asked, repeats included; an unknown run adds nothing
    ((["b", "a", "missing", "b"], 10, None, None),
     [_at("b", s) for s in (0, 9, 18, 27, 36, 45, 54, 63, 72, 87)]
     + [_at("a", s) for s in (0, 10, 20, 30, 40, 50, 60, 70, 80, 99)]
     + [_at("b", s) for s in (0, 9, 18, 27, 36, 45, 54, 63, 72, 87)]),
    ((["a", "b"], 5, 20, 50), [_at("a", s) for s in (20, 27, 33, 39, 50)] + [_at("b", s) for s in (21, 27, 33, 39, 48)]),
    ((["a"], 3, 90, 200), [_at("a", s) for s in (90, 94, 99)]),
    ((["a"], 10, -5, -1), []),
    ((["a"], 1, 42, 42), [_at("a", 42)]),
    ((["a"], 100, 0, 99), [_at("a", s) for s in range(100)]),
    ((["a"], 2500, None, None), [_at("a", s) for s in range(100)]),
    ((["dense10000"], 4, None, None), [_at("dense10000", s) for s in (0, 2500, 5000, 9999)]),
    ((["dense10000"], 5, 100, 9000), [_at("dense10000", s) for s in (100, 1881, 3661, 5441, 9000)]),
]


@pytest.mark.parametrize("query,expected", CASES, ids=[f"{'+'.join(q[0])}-{q[1]}-{q[2]}-{q[3]}" for q, _ in CASES])
def test_sql_sampling_picks_mlflow_s_points(shared, query, expected):
    labels, max_results, lo, hi = query
    assert _ours(*shared, labels, max_results, lo, hi) == expected


def test_long_runs_match_the_positions(shared):
    db_store, runs = shared
    for max_results in (320, 2500):
        (series,) = sample_like_mlflow(db_store.engine, [runs["dense10000"]], "m", max_results)
        assert [p[0] for p in series] == mlflow_sampled_positions(10_000, max_results)
    assert sample_like_mlflow(db_store.engine, [runs["a"]], "other", 10) == [[]]


@pytest.fixture
def statements(shared):
    """The SQL statements the shared store runs from here on (on SQLite, those sent straight to
    the driver too, as SQLite's trace shows them)."""
    engine = shared[0].engine
    seen: list[str] = []

    def trace(dbapi_conn, record):
        dbapi_conn.set_trace_callback(seen.append)

    def note(conn, cursor, statement, *args):
        seen.append(statement)

    hook = ("connect", trace) if engine.dialect.name == "sqlite" else ("before_cursor_execute", note)
    engine.dispose()  # new connections, traced
    event.listen(engine, *hook)
    yield seen
    event.remove(engine, *hook)
    engine.dispose()


def _reads_steps(statement: str) -> bool:
    """A statement reading a run's steps alone (in step order)."""
    return " ".join(statement.split()).startswith(("SELECT step FROM metrics", "SELECT metrics.step FROM metrics"))


def test_a_run_s_steps_are_read_only_when_they_are_irregular(shared, statements):
    db_store, runs = shared

    def sample(label):
        statements.clear()
        sample_like_mlflow(db_store.engine, [runs[label]], "m", 8)
        return list(statements)

    # every step, every 7th step: an aggregate over the step index tells where the chosen points
    # are, then only those are read
    for label in ("dense10000", "gaps"):
        assert not any(_reads_steps(st) for st in sample(label))
    # the positions are looked up among the run's steps: an off-grid step, irregular, repeated steps
    for label in ("offgrid", "squares", "repeats"):
        assert sum(_reads_steps(st) for st in sample(label)) == 1
    statements.clear()
    sample_like_mlflow(db_store.engine, [runs["a"], runs["a"]], "m", 5)
    assert sum("min(" in st for st in statements) == 1  # a run asked for twice is sampled once


def test_points_logged_between_the_count_and_the_read_do_not_shift_the_sample(db_store, monkeypatch):
    # the aggregate and the point reads share one read transaction (a snapshot)
    runs = _log(db_store, ["a", "b"])
    real = sampling._mlflow_choice

    def with_a_write_in_between(conn, args, *rest):
        chosen = real(conn, args, *rest)
        if args["run"] == runs["a"]:  # after the transaction's first reads: b gains a first point
            db_store.log_batch(runs["b"], metrics=[Metric("m", 1.0, 1, -1)])
        return chosen

    monkeypatch.setattr(sampling, "_mlflow_choice", with_a_write_in_between)
    got = sample_like_mlflow(db_store.engine, [runs["a"], runs["b"]], "m", 10)
    assert [p[0] for p in got[1]] == [0, 9, 18, 27, 36, 45, 54, 63, 72, 87]
    monkeypatch.setattr(sampling, "_mlflow_choice", real)
    # read again, the new point is there (MLflow gives these steps for b's points plus one at step -1)
    got = sample_like_mlflow(db_store.engine, [runs["b"]], "m", 10)
    assert [p[0] for p in got[0]] == [-1, 9, 18, 27, 36, 45, 54, 63, 72, 87]
