"""search_runs over many runs (default 100,000) in one experiment of the embedded SQLite store.

usage: python bench/search_bench.py [--runs 100000] [--db PATH | --uri TRACKING_URI]
(`--uri postgresql+psycopg://...` measures PostgreSQL; the database must exist.)
Runs are bulk-inserted through the store's own tables (creating 100k runs call by call would
measure logging, not search); the search goes through the public API. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid

import mltrail
from mltrail.store import get_store
from mltrail.store.sql import schema as t


def populate(store, exp_id: int, n: int) -> None:
    rng = random.Random(0)
    now = int(time.time() * 1000)
    chunk = 5000
    for start in range(0, n, chunk):
        runs, params, metrics, tags = [], [], [], []
        for i in range(start, min(n, start + chunk)):
            rid = uuid.uuid4().hex
            runs.append({"run_uuid": rid, "name": f"run-{i}", "experiment_id": exp_id, "user_id": "bench",
                         "status": "FINISHED", "start_time": now - i, "end_time": now, "lifecycle_stage": "active",
                         "artifact_uri": f"/tmp/{rid}"})
            params += [{"run_uuid": rid, "key": f"p{j}", "value": rng.choice("abc")} for j in range(10)]
            params.append({"run_uuid": rid, "key": "lr", "value": rng.choice(["0.1", "0.01", "0.001"])})
            metrics += [{"run_uuid": rid, "key": f"m{j}", "step": 0, "timestamp": now, "value": rng.random(),
                         "is_nan": False} for j in range(10)]
            metrics.append({"run_uuid": rid, "key": "acc", "step": 0, "timestamp": now, "value": rng.random(),
                            "is_nan": False})
            tags += [{"run_uuid": rid, "key": f"t{j}", "value": str(j)} for j in range(5)]
        with store.engine.begin() as conn:
            conn.execute(t.runs.insert(), runs)
            conn.execute(t.params.insert(), params)
            conn.execute(t.latest_metrics.insert(), metrics)
            conn.execute(t.tags.insert(), tags)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--db", default=None, help="SQLite file (reused when populated)")
    ap.add_argument("--uri", default=None, help="any SQL tracking URI, e.g. PostgreSQL's")
    a = ap.parse_args()
    uri = a.uri or f"sqlite:///{a.db or os.path.join(tempfile.mkdtemp(), 'search.db')}"
    mltrail.set_tracking_uri(uri)
    exp = mltrail.set_experiment("search-bench")
    store = get_store(uri)
    if not mltrail.search_runs(max_results=1, output_format="list"):
        t0 = time.perf_counter()
        populate(store, int(exp.experiment_id), a.runs)
        if store.engine.dialect.name == "postgresql":  # what autovacuum does soon after a bulk load
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        print(f"# populated {a.runs} runs in {time.perf_counter() - t0:.1f} s")
    queries = {
        "filter_order_1000": dict(filter_string="metrics.acc > 0.5 and params.lr = '0.01'",
                                  order_by=["metrics.acc DESC"], max_results=1000),
        "filter_100": dict(filter_string="metrics.acc > 0.99", max_results=100),
        "order_by_metric_100": dict(order_by=["metrics.m3 ASC"], max_results=100),
        "newest_100": dict(max_results=100),
    }
    out = {"runs": a.runs}
    for name, kw in queries.items():
        mltrail.search_runs(output_format="list", **kw)  # warm the page cache
        reps = 5
        t0 = time.perf_counter()
        for _ in range(reps):
            hits = mltrail.search_runs(output_format="list", **kw)
        out[f"{name}_ms"] = round(1000 * (time.perf_counter() - t0) / reps, 1)
        out[f"{name}_hits"] = len(hits)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
