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
