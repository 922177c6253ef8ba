"""The live update delay: from `log_batch` of a running run's point to that point drawn on its open run page.

usage: python bench/ui_live_bench.py [--samples 20] [--metrics 5]

`live_delay(browser, url, store, experiment_id)` is the measurement (ui_bench.py may call it with
its own browser, server and store): a RUNNING run with `metrics` metrics is opened in a fresh
browser context; then, `samples` times, one point of every metric is logged straight into the
store and the page notes (as epoch ms, the same clock on one machine) when its first chart has
drawn that point. Logging happens at a random phase of live.js's 1 s poll, so the median is about
half a poll period plus the request and the drawing. Goal: < 2 s. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from typing import Any

from ui_bench import ARGS, CHROMIUM, serve

# sets window.__drawnAt to the epoch time at which chart 0 has drawn `step` of `key` for the run
WATCH_DRAWN = """([runId, key, step]) => {
  window.__drawnAt = null;
  const plot = document.querySelector('.plot[data-index="0"]');
  const done = () => window.mltrailCharts.lastStep(runId, key) >= step;
  const mo = new MutationObserver(() => {
    if (done()) { mo.disconnect(); window.__drawnAt = performance.timeOrigin + performance.now(); }
  });
  mo.observe(plot, {attributes: true, attributeFilter: ['data-rendered']});
}"""
READY = """runId => document.querySelector('#live-control')?.getAttribute('data-state') === 'live'
  && window.mltrailCharts.lastStep(runId, 'loss') >= 0"""


def live_delay(browser: Any, url: str, store: Any, experiment_id: str, samples: int = 20,
               metrics: int = 5) -> dict[str, Any]:
    """Delays (ms) from logging a point to it drawn on the run page, with their median and maximum."""
    from mltrail.entities import Metric

    keys = ["loss"] + [f"metric_{i}" for i in range(1, metrics)]
    now = int(time.time() * 1000)
    run_id = store.create_run(experiment_id, "bench", now, [], "live-bench").info.run_id
    store.log_batch(run_id, metrics=[Metric(k, 1.0, now, 0) for k in keys])
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    delays: list[float] = []
    try:
        page.goto(f"{url}/runs/{run_id}")
        page.wait_for_function(READY, arg=run_id)
        rng = random.Random(0)
        for step in range(1, samples + 1):
            time.sleep(rng.random())  # a random phase of the poll
            page.evaluate(WATCH_DRAWN, [run_id, "loss", step])
            logged = time.time() * 1000
            store.log_batch(run_id, metrics=[Metric(k, 1.0 / (step + 1), int(logged), step) for k in keys])
            page.wait_for_function("() => window.__drawnAt !== null", timeout=30_000)
            delays.append(page.evaluate("() => window.__drawnAt") - logged)
    finally:
        ctx.close()
        store.update_run_info(run_id, "FINISHED", int(time.time() * 1000), None)
    return {"live_delay_ms_median": round(statistics.median(delays)), "live_delay_ms_max": round(max(delays)),
            "live_samples": len(delays), "live_metrics": metrics}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=5)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from mltrail.server.app import create_app
    from mltrail.server.settings import ServerSettings

    directory = tempfile.mkdtemp(prefix="mltrail-live-bench-")
    app = create_app(ServerSettings(backend_store_uri=directory))
    store = app.state.ctx.store
    url, server = serve(app)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            out = live_delay(browser, url, store, store.create_experiment("ui-live-bench"), a.samples, a.metrics)
            browser.close()
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
