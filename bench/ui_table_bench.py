"""The runs table's long tasks in Chromium: the longest main-thread task of each step a user takes.

usage: python bench/ui_table_bench.py [--runs 10000] [--dir DIR]

10,000 runs (ui_bench.populate_table) on the real tracking server; Chromium records every long task
(a PerformanceObserver of type 'longtask': main-thread work over 50 ms) while the user loads the
experiment page, scrolls until no more runs load, ticks "select all", sorts by a metric column
(a click on its header) and filters. Prints one JSON line: per step, the longest task (ms) and
how many there were. Goal: no task over 200 ms. Timings are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ui_bench import ARGS, CHROMIUM, populate_table, serve  # noqa: E402

RECORD = """window.__longtasks = [];
new PerformanceObserver(list => { for (const e of list.getEntries()) window.__longtasks.push(e.duration); })
  .observe({type: 'longtask', buffered: true});"""


def _take(page: Any) -> list[float]:
    """The long tasks recorded since the last call (the page keeps a list; this empties it)."""
    page.wait_for_timeout(300)  # let the observer deliver the last entries
    return page.evaluate("() => window.__longtasks.splice(0)")


def _summary(tasks: list[float]) -> dict[str, float]:
    return {"max_ms": round(max(tasks), 1) if tasks else 0.0, "count": len(tasks)}


def measure(page: Any, url: str, exp_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    page.goto(f"{url}/experiments/{exp_id}")
    page.wait_for_selector("#runs-body tr.run")
    out["load"] = _summary(_take(page))

    tasks: list[float] = []
    rows, stable = 0, 0
    while stable < 3:  # scroll to the bottom until the row count stops growing
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(250)
        n = page.evaluate("() => document.querySelectorAll('#runs-body tr.run').length")
        stable = stable + 1 if n == rows else 0
        rows = n
        tasks += _take(page)
    out["scroll"] = _summary(tasks) | {"rows": rows}

    page.check("#select-all")
    page.wait_for_function("() => document.getElementById('selected-count').textContent !== ''")
    out["select_all"] = _summary(_take(page)) | {
        "selected": page.evaluate("() => document.querySelectorAll('#runs-body input[name=run_ids]:checked').length")}

    page.locator("#runs-table thead a.sort").nth(1).click()  # the Status column
    page.wait_for_load_state("load")
    page.wait_for_selector("#runs-body tr.run")
    out["sort"] = _summary(_take(page))

    page.fill("#filter", "params.lr = '0.01'")
    page.press("#filter", "Enter")
    page.wait_for_load_state("load")
    page.wait_for_selector("#runs-body tr.run")
    out["filter"] = _summary(_take(page))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--dir", default=None, help="keep the store here (reused when it exists)")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from mltrail.server.app import create_app
    from mltrail.server.settings import ServerSettings

    directory = a.dir or tempfile.mkdtemp(prefix="mltrail-ui-table-bench-")
    os.makedirs(directory, exist_ok=True)
    app = create_app(ServerSettings(backend_store_uri=directory))
    store = app.state.ctx.store
    info_path = os.path.join(directory, "table_bench.json")
    if os.path.exists(info_path):
        with open(info_path) as fh:
            exp_id = json.load(fh)["exp"]
    else:
        t0 = time.perf_counter()
        exp_id = store.create_experiment("ui-table-bench")
        populate_table(store, int(exp_id), a.runs)
        with open(info_path, "w") as fh:
            json.dump({"exp": exp_id}, fh)
        print(f"# populated {a.runs} runs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    url, server = serve(app)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        ctx.add_init_script(RECORD)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        result = measure(page, url, exp_id)
        browser.close()
    server.should_exit = True  # type: ignore[attr-defined]
    worst = max(v["max_ms"] for v in result.values())
    print(json.dumps({"runs": a.runs, "worst_long_task_ms": worst, "steps": result}))


if __name__ == "__main__":
    main()
