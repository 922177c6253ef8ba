"""The web UI in Chromium: first paint of a 10,000-run table, and a chart of 100 runs x 10,000 steps.

usage: python bench/ui_bench.py [--runs 10000] [--chart-runs 100] [--steps 10000] [--dir DIR] [--reps 3]

The store is populated by bulk inserts into the store's own tables (as search_bench.py does);
the server is the real tracking server (`create_app`) on uvicorn in this process; Chromium
(/usr/bin/chromium) is driven by Playwright. Times are measured by the browser from the start of
the navigation:
- table: first contentful paint of /experiments/<id> (the first 100 rows are in the HTML that
  paint comes from; the largest contentful paint is reported too),
- chart: the moment the first chart of /compare?run_ids=<100 ids> has drawn all 100 series:
  "cold" in a fresh browser context straight after the table (which may have begun prefetching
  Plotly.js, but has not evaluated it) with the server's sample cache empty (every series
  downsampled from its 10,000 points), "warm" on a second visit (both cached). The cold
  figure's phases show where its time goes: Chromium evaluating the 4.8 MB plotly.min.js of
  the plotly package takes most of it on a 2-core machine.
Goals: table < 0.5 s, chart < 1 s. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import statistics
import tempfile
import threading
import time
import uuid

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
_UNSAFE_PORTS = {5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080}


def populate_table(store, exp_id: int, n: int) -> None:
    from mltrail.store.sql import schema as t

    rng = random.Random(0)
    now = int(time.time() * 1000)
    for start in range(0, n, 5000):
        runs, params, metrics, tags = [], [], [], []
        for i in range(start, min(n, start + 5000)):
            rid = uuid.uuid4().hex
            runs.append({"run_uuid": rid, "name": f"run-{i}", "experiment_id": exp_id, "user_id": "bench",
                         "status": "FINISHED", "start_time": now - i * 1000, "end_time": now - i * 1000 + 60_000,
                         "lifecycle_stage": "active", "artifact_uri": f"/tmp/{rid}"})
            params += [{"run_uuid": rid, "key": f"p{j}", "value": rng.choice("abc")} for j in range(8)]
            params.append({"run_uuid": rid, "key": "lr", "value": rng.choice(["0.1", "0.01", "0.001"])})
            metrics += [{"run_uuid": rid, "key": f"m{j}", "step": 0, "timestamp": now, "value": rng.random(),
                         "is_nan": False} for j in range(8)]
            metrics.append({"run_uuid": rid, "key": "acc", "step": 0, "timestamp": now, "value": rng.random(),
                            "is_nan": False})
            tags += [{"run_uuid": rid, "key": f"t{j}", "value": str(j)} for j in range(3)]
            tags.append({"run_uuid": rid, "key": "mlflow.runName", "value": f"run-{i}"})
        with store.engine.begin() as conn:
            conn.execute(t.runs.insert(), runs)
            conn.execute(t.params.insert(), params)
            conn.execute(t.latest_metrics.insert(), metrics)
            conn.execute(t.tags.insert(), tags)


def populate_chart(store, exp_id: int, n_runs: int, steps: int) -> list[str]:
    from mltrail.store.sql import schema as t

    rng = random.Random(1)
    now = int(time.time() * 1000)
    ids = []
    for r in range(n_runs):
        rid = uuid.uuid4().hex
        ids.append(rid)
        rate = rng.uniform(500, 5000)
        rows = [{"run_uuid": rid, "key": "loss", "step": s, "timestamp": now + s * 50,
                 "value": math.exp(-s / rate) + rng.random() * 0.05 + (1.0 if rng.random() < 0.0005 else 0.0),
                 "is_nan": False} for s in range(steps)]
        last = rows[-1]
        with store.engine.begin() as conn:
            conn.execute(t.runs.insert(), [{
                "run_uuid": rid, "name": f"curve-{r}", "experiment_id": exp_id, "user_id": "bench",
                "status": "FINISHED", "start_time": now, "end_time": now + steps * 50, "lifecycle_stage": "active",
                "artifact_uri": f"/tmp/{rid}"}])
            conn.execute(t.params.insert(), [{"run_uuid": rid, "key": "rate", "value": f"{rate:.0f}"}])
            conn.execute(t.tags.insert(), [{"run_uuid": rid, "key": "mlflow.runName", "value": f"curve-{r}"}])
            conn.execute(t.metrics.insert(), rows)
            conn.execute(t.latest_metrics.insert(), [dict(last)])
    return ids


def serve(app) -> tuple[str, object]:
    import uvicorn

    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _UNSAFE_PORTS:
            break
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server


def paints(page) -> tuple[float, float]:
    """(first contentful paint, largest contentful paint) in ms from the start of the navigation."""
    fcp = page.evaluate("""() => new Promise(resolve => {
        const get = () => performance.getEntriesByName('first-contentful-paint')[0];
        if (get()) return resolve(get().startTime);
        new PerformanceObserver(() => { if (get()) resolve(get().startTime); }).observe({type: 'paint', buffered: true});
    })""")
    page.wait_for_load_state("load")
    lcp = page.evaluate("""() => new Promise(resolve => {
        new PerformanceObserver(list => { const e = list.getEntries(); resolve(e[e.length - 1].startTime); })
            .observe({type: 'largest-contentful-paint', buffered: true});
    })""")
    return fcp, lcp


def chart_time(page, n: int, phases: list[dict[str, float]] | None = None) -> float:
    page.wait_for_function(f"""() => {{ const d = document.querySelector('.plot[data-index="0"]');
        return d && d.data && d.data.length === {n} && window.mltrailCharts && window.mltrailCharts.renderedAt[0]; }}""",
                           timeout=60_000)
    if phases is not None:  # where the time went: the page's HTML, the series' data, Plotly.js parsed
        phases.append(page.evaluate("""() => {
            const at = name => { const m = performance.getEntriesByName(name)[0]; return m ? Math.round(m.startTime) : null; };
            return {html: Math.round(performance.getEntriesByType('navigation')[0].responseEnd),
                    data: at('mltrail:data:0'), plotly: at('mltrail:plotly-ready')}; }"""))
    return page.evaluate("() => window.mltrailCharts.renderedAt[0]")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--chart-runs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--dir", default=None, help="keep the store here (reused when it exists)")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    from starlette.routing import Mount

    from mltrail.server.app import create_app
    from mltrail.server.settings import ServerSettings

    directory = a.dir or tempfile.mkdtemp(prefix="mltrail-ui-bench-")
    os.makedirs(directory, exist_ok=True)
    settings = ServerSettings(backend_store_uri=directory)
    app = create_app(settings)
    store = app.state.ctx.store
    info_path = os.path.join(directory, "bench.json")
    if os.path.exists(info_path):
        with open(info_path) as fh:
            info = json.load(fh)
    else:
        t0 = time.perf_counter()
        table_exp = store.create_experiment("ui-bench-table")
        populate_table(store, int(table_exp), a.runs)
        chart_exp = store.create_experiment("ui-bench-chart")
        ids = populate_chart(store, int(chart_exp), a.chart_runs, a.steps)
        info = {"table_exp": table_exp, "chart_ids": ids}
        with open(info_path, "w") as fh:
            json.dump(info, fh)
        print(f"# populated {a.runs} runs and {a.chart_runs} x {a.steps} metric points in "
              f"{time.perf_counter() - t0:.1f} s")
    ui = next(r.app for r in app.routes if isinstance(r, Mount)).state.ui
    url, server = serve(app)
    out: dict[str, object] = {"runs": a.runs, "chart_runs": len(info["chart_ids"]), "steps": a.steps}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        table, table_lcp, table_html, cold, warm, table_rows = [], [], [], [], [], 0
        cold_phases: list[dict[str, float]] = []
        compare = f"{url}/compare?run_ids={','.join(info['chart_ids'])}"
        for _ in range(a.reps):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.goto(f"{url}/")  # the user comes from the experiments list (a started browser, ui.css cached)
            page.goto(f"{url}/experiments/{info['table_exp']}", wait_until="commit")
            first, largest = paints(page)
            table.append(first)
            table_lcp.append(largest)
            table_html.append(page.evaluate("() => performance.getEntriesByType('navigation')[0].responseEnd"))
            page.wait_for_selector("#runs-body tr.run")
            table_rows = page.evaluate("() => document.querySelectorAll('#runs-body tr.run').length")
            ui.sampler.clear()  # cold: nothing sampled yet on the server, Plotly.js not in this context's cache
            page.goto(compare, wait_until="commit")
            cold.append(chart_time(page, len(info["chart_ids"]), cold_phases))
            page.goto(f"{url}/experiments/{info['table_exp']}")  # back to the table, then the chart again
            page.goto(compare, wait_until="commit")
            warm.append(chart_time(page, len(info["chart_ids"])))
            ctx.close()
        browser.close()
    server.should_exit = True  # type: ignore[attr-defined]
    out |= {"table_first_paint_ms": round(statistics.median(table)), "table_rows_in_first_paint": table_rows,
            "table_largest_paint_ms": round(statistics.median(table_lcp)),
            "table_html_received_ms": round(statistics.median(table_html)),
            "chart_cold_ms": round(statistics.median(cold)), "chart_warm_ms": round(statistics.median(warm)),
            "table_all_ms": [round(x) for x in table], "chart_cold_all_ms": [round(x) for x in cold],
            "chart_warm_all_ms": [round(x) for x in warm], "chart_cold_phases_ms": cold_phases}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
