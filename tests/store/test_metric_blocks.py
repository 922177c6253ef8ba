"""Metric blocks: charts sampled from block summaries pick exactly the points sampled from every point."""

from __future__ import annotations

import math
import random

import pytest
from sqlalchemy import text

from mltrail.entities import Metric
from mltrail.store import clear_cache, get_store
from mltrail.store.sql import metric_blocks
from mltrail.store.sql.engine import make_engine

VALUES = [0.25, 0.5, 0.75, -2.0, 1e300, math.nan, math.inf, -math.inf]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    uri = f"sqlite:///{tmp_path}/s.db" if request.param == "sqlite" else request.getfixturevalue("postgres_uri")
    return get_store(uri, str(tmp_path / "artifacts"))


def _blocks(store, run_id=None):
    where = "" if run_id is None else f" WHERE run_uuid = '{run_id}'"
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT run_uuid, key, block, n, min_value, min_step, min_timestamp, max_value, max_step, max_timestamp "
            f"FROM metric_blocks{where}")).all()
    return sorted(tuple(r) for r in rows)


def _rebuilt(store, run_ids):
    with store.engine.begin() as conn:
        metric_blocks.rebuild(conn, run_ids)
    return _blocks(store)


def _sampled(store, run_id, max_points, lo, hi, gain, monkeypatch):
    monkeypatch.setattr(metric_blocks, "MIN_GAIN", gain)
    store.clear_sampled_series_cache()
    return store.get_metric_series_sampled([run_id], "m", max_points, lo, hi)[0]


def _random_series(rng, n, steps):
    """n points over `steps` distinct steps (some repeated, some with equal timestamps), shuffled."""
    points = []
    for _ in range(n):
        step = rng.randrange(-steps // 10, steps)
        value = rng.choice(VALUES) if rng.random() < 0.3 else round(rng.gauss(0, 1), rng.choice([1, 17]))
        points.append(Metric("m", value, 1000 + rng.randrange(3), step))
    return points


@pytest.mark.parametrize("block_steps", [4, 16, 128])
def test_samples_from_blocks_equal_samples_from_points(store, block_steps, monkeypatch):
    monkeypatch.setattr(metric_blocks, "BLOCK_STEPS", block_steps)
    rng = random.Random(block_steps)
    exp = store.create_experiment("blocks")
    for trial in range(4):
        run_id = store.create_run(exp, "u", 0, [], f"r{trial}").info.run_id
        points = _random_series(rng, rng.choice([1500, 3000]), rng.choice([400, 2000, 6000]))
        for start in range(0, len(points), 700):  # many batches, out of step order
            store.log_batch(run_id, metrics=points[start:start + 700])
        steps = sorted(p.step for p in points)
        for max_points, lo, hi in [(4, None, None), (10, None, None), (40, None, None), (101, None, None),
                                   (24, steps[100], steps[-200]), (16, steps[5], None), (30, None, steps[900])]:
            expected = _sampled(store, run_id, max_points, lo, hi, math.inf, monkeypatch)
            got = _sampled(store, run_id, max_points, lo, hi, 0.0, monkeypatch)
            assert got == expected, (trial, max_points, lo, hi)
            with store.engine.connect() as conn:  # the blocks were used, not declined
                direct = metric_blocks.sample_with_blocks(conn, run_id, "m", -2**62 if lo is None else lo,
                                                          2**62 if hi is None else hi, max_points)
            assert direct == expected, (trial, max_points, lo, hi)
            assert len(expected) <= max_points


def test_blocks_kept_by_many_batches_equal_blocks_built_from_the_points(store, monkeypatch):
    monkeypatch.setattr(metric_blocks, "BLOCK_STEPS", 8)
    rng = random.Random(3)
    exp = store.create_experiment("batches")
    runs = [store.create_run(exp, "u", 0, [], f"r{i}").info.run_id for i in range(3)]
    for _ in range(60):  # small batches of several keys: ties, repeated steps, NaN-only blocks
        run_id = rng.choice(runs)
        store.log_batch(run_id, metrics=[
            Metric(rng.choice(["a", "b"]), rng.choice(VALUES + [1.0, 1.0]), rng.randrange(3), rng.randrange(-20, 200))
            for _ in range(rng.randrange(1, 30))])
    kept = _blocks(store)
    assert kept and sum(r[3] for r in kept) == sum(
        len(store.get_metric_history(run_id, key)) for run_id in runs for key in ("a", "b"))
    assert _rebuilt(store, runs) == kept


def test_a_purged_run_takes_its_blocks_along(store):
    exp = store.create_experiment("purge")
    keep, drop = (store.create_run(exp, "u", 0, [], name).info.run_id for name in ("keep", "drop"))
    for run_id in (keep, drop):
        store.log_batch(run_id, metrics=[Metric("m", float(s), 0, s) for s in range(1000)])
    assert _blocks(store, drop)
    store.delete_run(drop)
    assert _blocks(store, drop)  # a deleted run can be restored: its blocks stay
    store.purge_run(drop)
    assert _blocks(store, drop) == [] and len(_blocks(store, keep)) == math.ceil(1000 / metric_blocks.BLOCK_STEPS)


def test_imported_points_are_summarised_too(store):
    from mltrail.interop.mlflow.dest_writer import DestWriter

    run_id = store.create_run(store.create_experiment("import"), "u", 0, [], "r").info.run_id
    rng = random.Random(5)
    rows = []
    for s in range(2000):
        value = rng.choice(VALUES)
        rows.append({"run_uuid": run_id, "key": "m", "step": rng.randrange(1000), "timestamp": s,
                     "value": 0.0 if math.isnan(value) else value, "is_nan": math.isnan(value), "model_id": None})
    writer = DestWriter(store.engine)
    writer.insert_metrics(rows[:1200])
    writer.insert_metrics(rows[1200:])
    imported = _blocks(store)
    assert sum(r[3] for r in imported) == 2000
    assert _rebuilt(store, [run_id]) == imported


def test_the_migration_summarises_points_stored_before_it(tmp_path):
    uri = f"sqlite:///{tmp_path}/old.db"
    store = get_store(uri, str(tmp_path / "artifacts"))
    run_id = store.create_run(store.create_experiment("old"), "u", 0, [], "r").info.run_id
    for start in range(0, 3000, 1000):
        store.log_batch(run_id, metrics=[Metric("m", math.sin(s), 5, s) for s in range(start, start + 1000)])
    store.log_batch(run_id, metrics=[Metric("n", math.nan, 5, 7)])
    expected = _blocks(store)
    store.engine.dispose()
    engine = make_engine(uri)
    with engine.begin() as conn:  # the database as revision 0005 left it
        conn.execute(text("DROP TABLE metric_blocks"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    engine.dispose()
    clear_cache()  # open it afresh: the migration runs
    reopened = get_store(uri, str(tmp_path / "artifacts"))
    assert _blocks(reopened) == expected and len(expected) == math.ceil(3000 / metric_blocks.BLOCK_STEPS) + 1
