"""One run with 10,000,000 points of one metric: its chart drawn in the UI (goal < 1 s, cold).

usage: python bench/chart_10m_bench.py [--points 10000000] [--backend sqlite|postgresql|both]
                                       [--dir DIR] [--uri postgresql+psycopg://...] [--reps 3]

The series (a noisy decay with rare spikes) is bulk-inserted into the store's `metrics` table:
by executemany straight to the driver on SQLite (the embedded default), generated inside the
database (generate_series) on PostgreSQL, which without `--uri` is a throwaway server
(tests/pg_server.py). That bypasses the store's writer, so the run's block summaries (which
`log_batch` keeps as it writes, see store/sql/metric_blocks.py) are then built from the points,
as migration 0006 builds them for points stored before it (the time it takes on stderr).
The server is the real tracking server (`create_app`) on uvicorn in this
process; Chromium (/usr/bin/chromium) is driven by Playwright as in ui_bench.py. Each try opens
the run's page in a fresh browser context with the server's sample cache emptied ("cold"), then
opens it again ("warm"); the figure is the time from the start of the navigation to the metric's
chart drawn (the page's own clock), and `sample_ms` the server's sampling call alone, cold.
Prints one JSON line per backend.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

KEY = "loss"
CHUNK = 200_000


def series(run_id: str, n: int, now: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(0)
    rate = n / 5
    for s in range(n):
        value = math.exp(-s / rate) + rng.random() * 0.05 + (1.0 if rng.random() < 0.00005 else 0.0)
        yield run_id, KEY, value, now + s, s, False


def populate(store: Any, exp_id: str, n: int) -> str:
    """One FINISHED run of `exp_id` holding n points of KEY; returns its id."""
    from mltrail.store.sql import schema as t

    run = store.create_run(exp_id, "bench", int(time.time() * 1000), [], "ten-million")
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) "
                f"SELECT '{run_id}', '{KEY}', exp(-s / {n / 5}) + random() * 0.05 "
                f"+ CASE WHEN random() < 0.00005 THEN 1 ELSE 0 END, {now} + s, s, false "
                f"FROM generate_series(0, {n - 1}) s")
        else:
            rows = series(run_id, n, now)
            sql = "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)"
            while True:
                chunk = [r for _, r in zip(range(CHUNK), rows, strict=False)]
                if not chunk:
                    break
                conn.exec_driver_sql(sql, chunk)
        conn.execute(t.latest_metrics.insert(), [{"run_uuid": run_id, "key": KEY, "value": 0.0, "timestamp": now + n,
                                                 "step": n - 1, "is_nan": False}])
    store.update_run_info(run_id, "FINISHED", now + n, None)
    from mltrail.store.sql import metric_blocks

    t0 = time.perf_counter()
    with store.engine.begin() as conn:
        metric_blocks.rebuild(conn, [run_id])
    print(f"# blocks built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE metrics")
            conn.exec_driver_sql("VACUUM ANALYZE metric_blocks")
    return run_id


def drawn_ms(page: Any, url: str) -> float:
    """Open `url`; ms from the start of its navigation to the first chart drawn."""
    from ui_bench import wait_chart

    page.goto(url)
    wait_chart(page, None)
    return float(page.evaluate("() => window.mltrailCharts.renderedAt[0]"))


def measure(backend: str, store_uri: str, directory: str, n: int, reps: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    from starlette.routing import Mount
    from ui_bench import ARGS, CHROMIUM, serve

    from mltrail.server.app import create_app
    from mltrail.server.settings import ServerSettings

    app = create_app(ServerSettings(backend_store_uri=store_uri, default_artifact_root=os.path.join(directory, "a")))
    store = app.state.ctx.store
    ui = next(r.app for r in app.routes if isinstance(r, Mount)).state.ui
    exp = store.get_experiment_by_name("chart-10m-bench")
    if exp is None:
        exp_id = store.create_experiment("chart-10m-bench")
        t0 = time.perf_counter()
        run_id = populate(store, exp_id, n)
        print(f"# {backend}: populated {n} points in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    else:
        run_id = store.search_runs([exp.experiment_id], max_results=1)[0].info.run_id
    ui.sampler.clear()
    t0 = time.perf_counter()
    sampled = store.get_metric_series_sampled([run_id], KEY, 1000)[0]
    sample_ms = 1000 * (time.perf_counter() - t0)
    url, server = serve(app)
    cold, warm = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for _ in range(reps):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.goto(f"{url}/")  # a started browser: the experiments list seen first
            ui.sampler.clear()
            cold.append(drawn_ms(page, f"{url}/runs/{run_id}"))
            warm.append(drawn_ms(page, f"{url}/runs/{run_id}"))
            ctx.close()
        browser.close()
    server.should_exit = True  # type: ignore[attr-defined]
    return {"backend": backend, "points": n, "sampled_points": len(sampled), "sample_cold_ms": round(sample_ms),
            "chart_cold_ms": round(statistics.median(cold)), "chart_warm_ms": round(statistics.median(warm)),
            "chart_cold_all_ms": [round(x) for x in cold], "chart_warm_all_ms": [round(x) for x in warm],
            "goal_ms": 1000, "goal_met": statistics.median(cold) < 1000}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--dir", default=None, help="keep the SQLite store here (reused when populated)")
    ap.add_argument("--uri", default=None, help="a PostgreSQL tracking URI (reused when populated)")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    directory = a.dir or tempfile.mkdtemp(prefix="mltrail-chart-bench-")
    os.makedirs(directory, exist_ok=True)
    if a.backend in ("sqlite", "both"):
        print(json.dumps(measure("sqlite", directory, directory, a.points, a.reps)), flush=True)
    if a.backend in ("postgresql", "both"):
        server = None
        uri = a.uri
        if uri is None:
            from pg_server import ThrowawayPostgres

            server = ThrowawayPostgres()
            server.start()
            uri = server.create_database("chart10m")
        try:
            print(json.dumps(measure("postgresql", uri, directory, a.points, a.reps)), flush=True)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
