"""64 concurrent logging processes through nginx to 1, 2 and 3 replicas on one PostgreSQL database.

usage: python bench/scale_logging_bench.py [--procs 64] [--replicas 1,2,3] [--batches 50] [--batch-size 1000]
                                           [--server-workers 1]

Per replica count, the shipped stack is started (tests/deploy/stack.py: Debian's nginx running
deploy/nginx/mltrail.conf in front of N `mltrail server` replicas, a throwaway PostgreSQL database
from tests/pg_server.py, an S3-compatible server). Then `--procs` processes, released together,
each create a run and send `--batches` `runs/log-batch` requests of `--batch-size` metric points
(MLflow's own REST call, as its client sends it) through nginx, one after another, timing each.
Measured: aggregate points/s (all points over the wall time from release to the last answer),
the p50/p99 latency of a batch request, the requests that failed, and lost points: the rows in
the `metrics` table afterwards against the points whose batch was answered 200 (0 means none lost).
Prints one JSON line per replica count.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
sys.path[:0] = [TESTS, os.path.join(TESTS, "deploy")]

API = "/api/2.0/mlflow"


def worker(url: str, exp_id: str, index: int, batches: int, batch_size: int, start: Any, out: Any) -> None:
    """One logging process: a run, then `batches` log-batch requests; puts (latencies, points, errors)."""
    import requests

    session = requests.Session()
    run = session.post(url + API + "/runs/create", json={
        "experiment_id": exp_id, "run_name": f"logger-{index}", "start_time": int(time.time() * 1000)}, timeout=120)
    run.raise_for_status()
    run_id = run.json()["run"]["info"]["run_id"]
    keys = [f"m{k}" for k in range(10)]
    per_key = max(batch_size // len(keys), 1)
    start.wait()
    latencies: list[float] = []
    points = errors = 0
    now = int(time.time() * 1000)
    for b in range(batches):
        metrics = [{"key": key, "value": (b * per_key + s) * 0.001, "timestamp": now + b, "step": b * per_key + s}
                   for key in keys for s in range(per_key)]
        t0 = time.perf_counter()
        try:
            answer = session.post(url + API + "/runs/log-batch", json={"run_id": run_id, "metrics": metrics},
                                  timeout=300)
            ok = answer.status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.perf_counter() - t0)
        if ok:
            points += len(metrics)
        else:
            errors += 1
    out.put((latencies, points, errors, time.perf_counter()))


def measure(stack: Any, database_uri: str, procs: int, batches: int, batch_size: int) -> dict[str, Any]:
    import requests
    from sqlalchemy import create_engine, text

    exp = requests.post(stack.url + API + "/experiments/create", json={"name": f"scale-{time.time_ns()}"},
                        timeout=60)
    exp.raise_for_status()
    exp_id = exp.json()["experiment_id"]
    ctx = mp.get_context("fork")
    start = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    workers = [ctx.Process(target=worker, args=(stack.url, exp_id, i, batches, batch_size, start, out))
               for i in range(procs)]
    for w in workers:
        w.start()
    start.wait(timeout=600)
    t0 = time.perf_counter()
    results = [out.get(timeout=3600) for _ in workers]
    for w in workers:
        w.join()
    wall = max(r[3] for r in results) - t0
    latencies = sorted(x for r in results for x in r[0])
    sent = sum(r[1] for r in results)
    errors = sum(r[2] for r in results)
    engine = create_engine(database_uri)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
                                   "WHERE r.experiment_id = :e"), {"e": int(exp_id)}).scalar_one()
    engine.dispose()
    upstreams = stack.upstreams()
    return {"points_per_s": round(sent / wall), "points_answered": sent, "points_stored": stored,
            "lost_points": sent - stored, "failed_requests": errors, "wall_s": round(wall, 2),
            "batch_p50_ms": round(1000 * statistics.median(latencies), 1),
            "batch_p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
            "requests_per_replica": sorted((upstreams.count(u) for u in set(upstreams)), reverse=True)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=64)
    ap.add_argument("--replicas", default="1,2,3", help="comma-separated replica counts")
    ap.add_argument("--batches", type=int, default=50, help="log-batch requests per process")
    ap.add_argument("--batch-size", type=int, default=1000, help="metric points per request (MLflow's limit)")
    ap.add_argument("--server-workers", type=int, default=1, help="uvicorn workers per replica")
    a = ap.parse_args()
    from stack import start_stack

    from pg_server import ThrowawayPostgres

    pg = ThrowawayPostgres()
    pg.start()
    root = Path(tempfile.mkdtemp(prefix="mltrail-scale-bench-"))
    try:
        for n in (int(x) for x in a.replicas.split(",")):
            database_uri = pg.create_database()
            with start_stack(root / f"r{n}", database_uri, replicas=n,
                             server_args=["--workers", str(a.server_workers)]) as stack:
                result = measure(stack, database_uri, a.procs, a.batches, a.batch_size)
            print(json.dumps({"replicas": n, "procs": a.procs, "batches": a.batches, "batch_size": a.batch_size,
                              "server_workers": a.server_workers, "cpus": os.cpu_count(), **result}), flush=True)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
