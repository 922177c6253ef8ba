"""The web UI in Chromium, on the path a user clicks: the runs table, "Compare selected", a run's charts.

usage: python bench/ui_bench.py [--runs 10000] [--chart-runs 100] [--steps 10000] [--run-metrics 20]
                                [--dir DIR] [--reps 3] [--live-samples 15]

The store is populated by bulk inserts into the store's own tables (as search_bench.py does);
the server is the real tracking server (`create_app`) on uvicorn in this process; Chromium
(/usr/bin/chromium) is driven by Playwright. Every try starts a fresh browser context (an empty
profile: no cached script) with the server's sample cache emptied ("cold"), then repeats the same
clicks in that context ("warm": the browser's and the server's caches filled). Measured:
- table: first and largest contentful paint of /experiments/<id> of 10,000 runs, from the start
  of the navigation, and the long tasks (PerformanceObserver 'longtask') over 200 ms on it;
- compare: on the experiment of 100 runs x 10,000 steps, tick "select all", press "Compare
  selected": from the click to the first chart having drawn all 100 lines (the click's time is
  kept in sessionStorage, the drawing's in the compare page's clock, both as epoch ms);
- run: on an experiment holding one run of 20 metrics, click the run's name in the table: from
  the click to its first chart drawn;
- live: a RUNNING run's point logged until drawn on its open run page (`ui_live_bench.live_delay`).
The cold compare figure's phases (page HTML received, first chart's data received, chart library
ready, drawn) show where the time goes. Goals: table < 0.5 s with no long task over 200 ms,
cold < 1 s, warm < 0.3 s, live < 2 s. Prints one JSON line.
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


def populate_run(store, exp_id: int, n_metrics: int, steps: int) -> str:
    """One run logging `n_metrics` metrics (`group/name` keys, some with `val_` twins) for `steps` steps."""
    from mltrail.store.sql import schema as t

    rng = random.Random(2)
    now = int(time.time() * 1000)
    rid = uuid.uuid4().hex
    keys = [f"{g}/m{j}" for g in ("train", "system") for j in range(n_metrics // 4)]
    keys += [k for j in range(n_metrics // 4) for k in (f"loss{j}", f"val_loss{j}")]
    keys = keys[:n_metrics]
    with store.engine.begin() as conn:
        conn.execute(t.runs.insert(), [{
            "run_uuid": rid, "name": "many-metrics", "experiment_id": exp_id, "user_id": "bench",
            "status": "FINISHED", "start_time": now, "end_time": now + steps * 50, "lifecycle_stage": "active",
            "artifact_uri": f"/tmp/{rid}"}])
        conn.execute(t.tags.insert(), [{"run_uuid": rid, "key": "mlflow.runName", "value": "many-metrics"}])
        for k in keys:
            rate = rng.uniform(500, 5000)
            rows = [{"run_uuid": rid, "key": k, "step": s, "timestamp": now + s * 50,
                     "value": math.exp(-s / rate) + rng.random() * 0.05, "is_nan": False} for s in range(steps)]
            conn.execute(t.metrics.insert(), rows)
            conn.execute(t.latest_metrics.insert(), [dict(rows[-1])])
    return rid


# Every page of a context: long tasks over 200 ms, kept in sessionStorage per page path.
LONG_TASKS = """(() => { try {
    new PerformanceObserver(list => {
        const key = 'mltrail:longtasks:' + location.pathname;
        const seen = JSON.parse(sessionStorage.getItem(key) || '[]');
        list.getEntries().forEach(e => { if (e.duration > 200) seen.push(Math.round(e.duration)); });
        sessionStorage.setItem(key, JSON.stringify(seen));
    }).observe({type: 'longtask', buffered: true});
} catch (e) {} })()"""

# Set just before a click: the epoch time the user clicked (sessionStorage survives the navigation).
MARK_CLICK = "() => sessionStorage.setItem('mltrail:click', String(performance.timeOrigin + performance.now()))"


def wait_chart(page, n: int | None) -> None:
    """Until the first chart has drawn `n` lines, or any when None (uPlot charts say how many in
    data-series, Plotly's in .data)."""
    page.wait_for_function("""(want) => { const d = document.querySelector('.plot[data-index="0"]');
        if (!d || !d.getAttribute('data-rendered')) return false;
        const n = d.data ? d.data.length : +d.getAttribute('data-series');
        return want === null ? n > 0 : n === want; }""", arg=n, timeout=120_000)


def since_click(page) -> float:
    """Milliseconds from the recorded click to the first chart's drawing."""
    return page.evaluate("""() => performance.timeOrigin + window.mltrailCharts.renderedAt[0]
        - +sessionStorage.getItem('mltrail:click')""")


def phases(page) -> dict[str, float | None]:
    """Where a cold compare went, in ms from the click: HTML received, data received, library ready, drawn."""
    return page.evaluate("""() => {
        const click = +sessionStorage.getItem('mltrail:click') - performance.timeOrigin;
        const at = name => { const m = performance.getEntriesByName(name)[0]; return m ? Math.round(m.startTime - click) : null; };
        return {html: Math.round(performance.getEntriesByType('navigation')[0].responseEnd - click),
                data: at('mltrail:data:0'), library: at('mltrail:lib-ready') ?? at('mltrail:plotly-ready'),
                drawn: Math.round(window.mltrailCharts.renderedAt[0] - click)}; }""")


def long_tasks(page, path: str) -> list[int]:
    return page.evaluate("(p) => JSON.parse(sessionStorage.getItem('mltrail:longtasks:' + p) || '[]')", path)


def compare_by_clicks(page, url: str, exp_id: str, n: int, cold_phases: list | None = None) -> float:
    """The experiment's table, "select all", "Compare selected": ms from the click to all n lines drawn."""
    page.goto(f"{url}/experiments/{exp_id}")
    page.wait_for_selector("#runs-body tr.run")
    page.locator("#select-all").check()
    page.wait_for_function(f"() => document.getElementById('selected-count').textContent === '{n} selected'")
    page.evaluate(MARK_CLICK)
    page.locator("#compare-button").click()
    page.wait_for_url("**/compare?*")
    wait_chart(page, n)
    if cold_phases is not None:
        cold_phases.append(phases(page))
    return since_click(page)


def run_by_clicks(page, url: str, exp_id: str) -> float:
    """The experiment's table, click the run's name: ms from the click to its first chart drawn."""
    page.goto(f"{url}/experiments/{exp_id}")
    link = page.locator("#runs-body tr.run td.name a").first
    link.wait_for()
    page.evaluate(MARK_CLICK)
    link.click()
    page.wait_for_url("**/runs/*")
    wait_chart(page, None)  # its first metric's chart: one line, or two with the validation metric
    return since_click(page)


def median(xs: list[float]) -> int:
    return round(statistics.median(xs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--chart-runs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--run-metrics", type=int, default=20)
    ap.add_argument("--dir", default=None, help="keep the store here (reused when it exists)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--live-samples", type=int, default=15, help="points timed for the live update delay")
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
        run_exp = store.create_experiment("ui-bench-run")
        run_id = populate_run(store, int(run_exp), a.run_metrics, a.steps)
        info = {"table_exp": table_exp, "chart_exp": chart_exp, "chart_ids": ids, "run_exp": run_exp,
                "run_id": run_id}
        with open(info_path, "w") as fh:
            json.dump(info, fh)
        print(f"# populated {a.runs} runs, {a.chart_runs} x {a.steps} and {a.run_metrics} x {a.steps} metric "
              f"points in {time.perf_counter() - t0:.1f} s")
    ui = next(r.app for r in app.routes if isinstance(r, Mount)).state.ui
    url, server = serve(app)
    n = len(info["chart_ids"])
    out: dict[str, object] = {"runs": a.runs, "chart_runs": n, "steps": a.steps, "run_metrics": a.run_metrics}
    table, table_lcp, table_long, table_rows = [], [], [], 0
    cold, warm, run_cold, run_warm = [], [], [], []
    cold_phases: list[dict[str, float | None]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for _ in range(a.reps):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            ctx.add_init_script(LONG_TASKS)
            page = ctx.new_page()
            page.goto(f"{url}/")  # the user comes from the experiments list (a started browser, ui.css cached)
            table_path = f"/experiments/{info['table_exp']}"
            page.goto(url + table_path, wait_until="commit")
            first, largest = paints(page)
            table.append(first)
            table_lcp.append(largest)
            page.wait_for_selector("#runs-body tr.run")
            table_rows = page.evaluate("() => document.querySelectorAll('#runs-body tr.run').length")
            page.locator("#select-all").check()  # ticking 100 rows' boxes is part of the table's work
            page.wait_for_timeout(300)  # let a long task that began finish and be reported
            table_long.append(long_tasks(page, table_path))
            ui.sampler.clear()  # cold: nothing sampled on the server, no chart script in this context's cache
            cold.append(compare_by_clicks(page, url, info["chart_exp"], n, cold_phases))
            warm.append(compare_by_clicks(page, url, info["chart_exp"], n))
            ctx.close()
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.goto(f"{url}/")
            ui.sampler.clear()
            run_cold.append(run_by_clicks(page, url, info["run_exp"]))
            run_warm.append(run_by_clicks(page, url, info["run_exp"]))
            ctx.close()
        # the live update delay: a RUNNING run's logged point until it is drawn on its open page
        from ui_live_bench import live_delay

        live = live_delay(browser, url, store, info["run_exp"], samples=a.live_samples)
        browser.close()
    server.should_exit = True  # type: ignore[attr-defined]
    out |= {"table_first_paint_ms": median(table), "table_rows_in_first_paint": table_rows,
            "table_largest_paint_ms": median(table_lcp),
            "table_long_tasks_over_200ms": table_long,
            "compare_cold_ms": median(cold), "compare_warm_ms": median(warm),
            "run_cold_ms": median(run_cold), "run_warm_ms": median(run_warm),
            "compare_cold_all_ms": [round(x) for x in cold], "compare_warm_all_ms": [round(x) for x in warm],
            "run_cold_all_ms": [round(x) for x in run_cold], "run_warm_all_ms": [round(x) for x in run_warm],
            "compare_cold_phases_ms": cold_phases,
            **live}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
