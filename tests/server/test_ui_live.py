"""Live updates of running runs: the `/ui/api/live` endpoint over HTTP, and live.js in Chromium.

One real server (uvicorn on 127.0.0.1 over a SQLite store) for the module; each test makes its own
experiment and runs with a Client on the same store, and logs to them from a background thread
while the page is open. Browser tests are skipped without /usr/bin/chromium (test_ui_browser's
rule) and count the page's requests to the endpoint with Playwright's request events.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import requests
from browser_support import TIMEOUT_MS
from test_ui_support import serve_ui

from mltrail.client import Client
from mltrail.entities import Metric
from mltrail.server.ui._live import MAX_RUNS, TOTAL_POINTS, points_per_tail

LIVE = "/ui/api/live"
QUIET_S = 2.5  # longer than two poll periods: no request in this long means polling has stopped


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Client, str]]:
    directory = tmp_path_factory.mktemp("ui-live") / "store"
    directory.mkdir()
    client = Client(str(directory))
    srv = serve_ui(directory)
    yield client, srv.uri
    srv.stop()


def _experiment(client: Client) -> str:
    return client.create_experiment(f"live-{uuid.uuid4().hex[:8]}")


def _run(client: Client, exp: str, name: str, steps: range, key: str = "loss") -> str:
    rid = client.create_run(exp, run_name=name).info.run_id
    now = int(time.time() * 1000)
    points = [Metric(key, 1.0 / (s + 1), now + s, s) for s in steps]
    for i in range(0, len(points), 1000):  # a batch holds at most 1000 metrics
        client.log_batch(rid, metrics=points[i:i + 1000])
    return rid


def _live(uri: str, run_ids: list[str], since: dict[str, Any] | None = None, **params: Any) -> requests.Response:
    q: dict[str, Any] = {"run_ids": ",".join(run_ids), **params}
    if since is not None:
        q["since"] = orjson.dumps(since).decode()
    return requests.get(uri + LIVE, params=q, timeout=30)


def _one(body: dict[str, Any], run_id: str) -> dict[str, Any]:
    return next(r for r in body["runs"] if r["run_id"] == run_id)


# ---------------------------------------------------------------- the endpoint over HTTP

def test_answers_status_times_and_latest_values(site):
    client, uri = site
    exp = _experiment(client)
    running = _run(client, exp, "running", range(5))
    done = _run(client, exp, "done", range(3))
    client.set_terminated(done)
    r = _live(uri, [running, done])
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert abs(body["now"] - time.time() * 1000) < 60_000
    a, b = _one(body, running), _one(body, done)
    assert (a["status"], a["end_time"], a["duration"], a["ended"]) == ("RUNNING", None, "", "")
    assert b["status"] == "FINISHED" and b["end_time"] >= b["start_time"] and b["ended"]
    assert a["latest"]["loss"]["step"] == 4 and a["latest"]["loss"]["value"] == pytest.approx(0.2)
    assert a["latest"]["loss"]["text"] == "0.2"
    assert "series" not in a and "new_keys" not in a  # no since: no charts to feed


def test_tails_are_incremental_and_new_keys_are_named(site):
    client, uri = site
    rid = _run(client, _experiment(client), "inc", range(10))
    client.log_batch(rid, metrics=[Metric("acc", 0.5, int(time.time() * 1000), 0)])
    body = _live(uri, [rid], {rid: {"loss": 6}}).json()
    run = _one(body, rid)
    assert run["new_keys"] == ["acc"]  # charted by the page itself: no points for it here
    [tail] = run["series"]
    assert (tail["key"], tail["since"], tail["sampled"]) == ("loss", 6, False)
    assert tail["steps"] == [7, 8, 9]
    assert tail["values"] == pytest.approx([1 / 8, 1 / 9, 1 / 10])
    assert len(tail["timestamps"]) == 3
    # nothing new after the last step, and a key the page has not loaded (null): no points at all
    run = _one(_live(uri, [rid], {rid: {"loss": 9, "acc": None}}).json(), rid)
    assert run["series"] == [] and run["new_keys"] == []
    client.log_batch(rid, metrics=[Metric("loss", 0.01, int(time.time() * 1000), 10)])
    run = _one(_live(uri, [rid], {rid: {"loss": 9, "acc": 0}}).json(), rid)
    assert [(s["key"], s["steps"]) for s in run["series"]] == [("loss", [10])]


def test_a_long_tail_is_sampled_and_says_so(site):
    client, uri = site
    rid = _run(client, _experiment(client), "long", range(3000))
    [tail] = _one(_live(uri, [rid], {rid: {"loss": 99}}, max_points=100).json(), rid)["series"]
    assert tail["sampled"] is True
    assert len(tail["steps"]) == 100
    assert tail["steps"][0] == 100 and tail["steps"][-1] == 2999  # the first and last points are kept
    assert tail["steps"] == sorted(tail["steps"])
    [tail] = _one(_live(uri, [rid], {rid: {"loss": 2950}}, max_points=100).json(), rid)["series"]
    assert tail["sampled"] is False and tail["steps"] == list(range(2951, 3000))


def test_many_tails_share_one_bound():
    assert points_per_tail(1, 1000) == 1000
    assert points_per_tail(400, 1000) == TOTAL_POINTS // 400
    assert points_per_tail(10_000, 1000) == 50  # never fewer than a chart can show
    assert points_per_tail(10_000, 20) == 20


@pytest.mark.parametrize("params,message", [
    ({"run_ids": ""}, "Missing run_ids"),
    ({"since": "{not json"}, "Invalid since"),
    ({"since": "[1, 2]"}, "expected a JSON object"),
    ({"since": '{"RID": {"loss": "7"}}'}, "Invalid since step for run 'RID', metric 'loss': got '7'"),
    ({"since": '{"other": {}}'}, "run 'other' is not one of run_ids"),
    ({"max_points": "3"}, "Invalid max_points 3: expected 4 to"),
    ({"max_points": "many"}, "Invalid max_points 'many': expected an integer"),
])
def test_bad_requests_say_what_was_wrong(site, params, message):
    client, uri = site
    rid = _run(client, _experiment(client), "bad", range(2))
    q = {"run_ids": rid, **{k: v.replace("RID", rid) for k, v in params.items()}}
    r = requests.get(uri + LIVE, params=q, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message.replace("RID", rid) in r.json()["message"]


def test_too_many_runs_and_unknown_runs_are_refused(site):
    client, uri = site
    r = _live(uri, [uuid.uuid4().hex for _ in range(MAX_RUNS + 1)])
    assert r.status_code == 400 and f"at most {MAX_RUNS}" in r.json()["message"]
    rid = _run(client, _experiment(client), "known", range(2))
    missing = uuid.uuid4().hex
    r = _live(uri, [rid, missing])
    assert r.status_code == 404, r.text
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert r.json()["message"] == f"Run with id={missing} not found"


# ---------------------------------------------------------------- live.js in Chromium


_CHART_STATE = """() => [...document.querySelectorAll('.chart')].map(c => [c.getAttribute('data-key'),
    c.querySelector('.plot')?.getAttribute('data-rendered'), c.querySelector('.plot')?.textContent.slice(0, 80)])"""


class Page:
    """A page in a fresh browser context, with the times of its requests to the live endpoint."""

    def __init__(self, browser: Any, uri: str) -> None:
        self.ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.ctx.set_default_timeout(TIMEOUT_MS)
        self.pg = self.ctx.new_page()
        self.uri = uri
        self.requests: list[float] = []
        self.errors: list[str] = []
        self.pg.on("request", lambda r: self.requests.append(time.monotonic()) if LIVE in r.url else None)
        self.pg.on("pageerror", lambda e: self.errors.append(str(e)))
        self.pg.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def goto(self, path: str) -> None:
        self.pg.goto(self.uri + path)

    def wait(self, js: str, arg: Any = None) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.pg.wait_for_function(js, arg=arg)
        except PlaywrightTimeout:
            raise AssertionError(f"waited in vain for {js} ({arg!r}); page errors {self.errors}; "
                                 f"charts {self.pg.evaluate(_CHART_STATE)}; {len(self.requests)} live requests") from None

    def quiet(self) -> int:
        """How many live requests the page sent during QUIET_S seconds (as Playwright saw them)."""
        before = len(self.requests)
        # Playwright's sync API delivers events while it is called: wait through it, not time.sleep
        self.pg.wait_for_timeout(QUIET_S * 1000)
        self.pg.evaluate("() => 0")
        return len(self.requests) - before

    def close(self) -> None:
        self.ctx.close()


@pytest.fixture
def page(browser, site) -> Iterator[Page]:
    p = Page(browser, site[1])
    yield p
    errors = p.errors
    p.close()
    assert errors == [], errors


@pytest.fixture
def logger() -> Iterator[Callable[[Callable[[], None]], None]]:
    """`logger(fn)` runs fn on a background thread (the training loop); joined when the test ends."""
    threads: list[threading.Thread] = []
    failures: list[BaseException] = []

    def start(fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported by the test
                failures.append(e)
        t = threading.Thread(target=run, daemon=True)
        threads.append(t)
        t.start()

    yield start
    for t in threads:
        t.join(timeout=30)
    assert not failures, failures


def _train(client: Client, rid: str, steps: range, key: str = "loss", pause_s: float = 0.15,
           extra: tuple[int, str] | None = None, finish: bool = True) -> Callable[[], None]:
    def fn() -> None:
        for s in steps:
            time.sleep(pause_s)
            client.log_metric(rid, key, 1.0 / (s + 1), step=s)
            if extra and s == extra[0]:
                client.log_metric(rid, extra[1], 0.5, step=s)
        if finish:
            client.set_terminated(rid)
    return fn


_STATUS = "id => [...document.querySelectorAll(`[data-live-status='${id}'] .status`)].map(s => s.textContent)"
_DRAWN = """([id, key]) => { const c = window.mltrailCharts; if (!c) return -1; return c.lastStep(id, key); }"""
_POINTS = """key => { const c = window.mltrailCharts.charts.find(c => c.key === key);
                     return c && c.plot ? c.plot.data[0].length : 0; }"""


@pytest.mark.browser
def test_run_page_draws_new_points_and_stops_when_the_run_finishes(site, page, logger):
    client, _ = site
    rid = _run(client, _experiment(client), "training", range(5))
    page.goto(f"/runs/{rid}")
    page.wait("() => +(document.querySelector('.plot[data-index=\"0\"]')?.getAttribute('data-rendered') || 0) > 0")
    assert page.pg.evaluate(_STATUS, rid) == ["RUNNING", "RUNNING"]
    assert page.pg.evaluate(_POINTS, "loss") == 5
    page.wait("() => document.querySelector('#live-control')?.getAttribute('data-state') === 'live'")
    rendered = int(page.pg.get_attribute('.plot[data-index="0"]', "data-rendered") or 0)
    logger(_train(client, rid, range(5, 15), extra=(8, "val_acc"), finish=False))
    # points appear without a reload while the run runs, and a new metric gets a chart of its own
    page.wait(f"() => ({_DRAWN})(['{rid}', 'loss']) === 14")
    assert page.pg.evaluate(_STATUS, rid) == ["RUNNING", "RUNNING"]
    page.wait("r => +document.querySelector('.plot[data-index=\"0\"]').getAttribute('data-rendered') > r", rendered)
    page.wait("() => !!document.querySelector('.chart[data-key=\"val_acc\"]')")
    page.pg.locator('.chart[data-key="val_acc"]').scroll_into_view_if_needed()  # charts draw when in view
    page.wait("() => document.querySelector('.chart[data-key=\"val_acc\"] .plot').getAttribute('data-rendered')")
    # the last point and the end together: the answer that says FINISHED draws that point too
    client.log_metric(rid, "loss", 0.01, step=15)
    client.set_terminated(rid)
    page.wait(f"() => ({_STATUS})('{rid}').every(s => s === 'FINISHED')")
    assert page.pg.evaluate(f"() => ({_DRAWN})(['{rid}', 'loss'])") == 15
    page.wait(f"() => ({_POINTS})('loss') === 16")  # every point drawn, each once
    assert page.pg.text_content('tr[data-live-metric="loss"] td:nth-child(3)') == "15"
    assert page.pg.text_content(f'[data-live-ended="{rid}"]')
    assert page.pg.text_content(f'[data-live-duration="{rid}"]')
    assert page.pg.get_attribute("#live-control", "data-state") == "ended"
    # the answer that said FINISHED was the last request
    assert page.quiet() == 0
    assert page.pg.evaluate("() => window.mltrailLive.isActive()") is False


@pytest.mark.browser
def test_a_run_page_opened_before_any_metric_gets_its_first_chart(site, page):
    client, _ = site
    rid = client.create_run(_experiment(client), run_name="fresh").info.run_id
    page.goto(f"/runs/{rid}")
    page.wait("() => document.querySelector('#live-control')?.getAttribute('data-state') === 'live'")
    assert page.pg.query_selector(".chart") is None
    client.log_metric(rid, "epoch_loss", 0.5, step=0)
    client.log_metric(rid, "epoch_loss", 0.4, step=1)
    page.wait("() => +(document.querySelector('.chart[data-key=\"epoch_loss\"] .plot')"
              "?.getAttribute('data-rendered') || 0) > 0")
    client.log_metric(rid, "epoch_loss", 0.3, step=2)
    page.wait(f"() => ({_DRAWN})(['{rid}', 'epoch_loss']) === 2")
    client.set_terminated(rid)
    page.wait(f"() => ({_STATUS})('{rid}').every(s => s === 'FINISHED')")


@pytest.mark.browser
def test_pause_stops_requests_and_resume_catches_up(site, page, logger):
    client, _ = site
    rid = _run(client, _experiment(client), "pausable", range(3))
    page.goto(f"/runs/{rid}")
    page.wait("() => document.querySelector('#live-control')?.getAttribute('data-state') === 'live'")
    page.wait(f"() => ({_DRAWN})(['{rid}', 'loss']) === 2")
    page.pg.click("#live-toggle")
    assert page.pg.text_content("#live-toggle") == "Resume"
    client.log_metric(rid, "loss", 0.1, step=3)
    assert page.quiet() == 0
    assert page.pg.evaluate(f"() => ({_DRAWN})(['{rid}', 'loss'])") == 2
    page.pg.click("#live-toggle")
    page.wait(f"() => ({_DRAWN})(['{rid}', 'loss']) === 3")
    assert page.pg.text_content("#live-toggle") == "Pause"
    # a hidden tab stops polling too, and polls again when shown
    page.pg.evaluate("""() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
                                document.dispatchEvent(new Event('visibilitychange')); }""")
    assert page.quiet() == 0
    assert page.pg.get_attribute("#live-control", "data-state") == "hidden"
    before = len(page.requests)
    page.pg.evaluate("""() => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
                                document.dispatchEvent(new Event('visibilitychange')); }""")
    page.wait("() => document.querySelector('#live-control').getAttribute('data-state') === 'live'")
    page.pg.wait_for_timeout(500)
    assert len(page.requests) > before
    client.set_terminated(rid)
    page.wait(f"() => ({_STATUS})('{rid}').every(s => s === 'FINISHED')")


@pytest.mark.browser
def test_compare_page_updates_a_running_row_and_its_chart(site, page, logger):
    client, _ = site
    exp = _experiment(client)
    done = _run(client, exp, "done", range(4))
    client.set_terminated(done)
    rid = _run(client, exp, "running", range(4))
    page.goto(f"/compare?run_ids={done},{rid}")
    page.wait("() => +(document.querySelector('.plot[data-index=\"0\"]')?.getAttribute('data-rendered') || 0) > 0")
    logger(_train(client, rid, range(4, 10)))
    row = f'#compare-runs tr[data-run-id="{rid}"]'
    page.wait(f"() => document.querySelector('{row} td:nth-child(3) .status').textContent === 'FINISHED'")
    page.wait(f"() => ({_DRAWN})(['{rid}', 'loss']) === 9")
    assert page.pg.evaluate(f"() => ({_DRAWN})(['{done}', 'loss'])") == 3
    assert page.pg.text_content(f"{row} td:nth-child(5)") != ""
    assert page.quiet() == 0


@pytest.mark.browser
def test_runs_table_updates_status_duration_and_metric_cells(site, page, logger):
    client, _ = site
    exp = _experiment(client)
    done = _run(client, exp, "done", range(2))
    client.set_terminated(done)
    rid = _run(client, exp, "running", range(2))
    page.goto(f"/experiments/{exp}?columns=metrics.loss")
    row = f'#runs-table tr[data-run-id="{rid}"]'
    loss_col = page.pg.evaluate("() => [...document.querySelectorAll('#runs-table thead th')]"
                                ".findIndex(th => th.dataset.col === 'metrics.loss') + 1")
    assert loss_col > 0
    # the duration ticks between polls
    page.wait(f"() => document.querySelector('{row} td:nth-child(5)').textContent.endsWith(' s')")
    first = page.pg.text_content(f"{row} td:nth-child(5)")
    page.wait(f"() => document.querySelector('{row} td:nth-child(5)').textContent !== {orjson.dumps(first).decode()}")
    logger(_train(client, rid, range(2, 5), finish=False))
    page.wait(f"() => document.querySelector('{row} td:nth-child({loss_col})').textContent === '0.2'")
    client.set_terminated(rid)
    page.wait(f"() => document.querySelector('{row} td:nth-child(3) .status').textContent === 'FINISHED'")
    assert page.pg.text_content(f'#runs-table tr[data-run-id="{done}"] td:nth-child(3)').strip() == "FINISHED"
    assert page.quiet() == 0


@pytest.mark.browser
def test_no_requests_when_nothing_runs(site, page):
    client, _ = site
    exp = _experiment(client)
    rid = _run(client, exp, "finished", range(3))
    client.set_terminated(rid)
    for path in (f"/runs/{rid}", f"/compare?run_ids={rid}", f"/experiments/{exp}"):
        page.goto(path)
        page.wait("() => document.readyState === 'complete' && !!window.mltrailLive")
        assert page.quiet() == 0, path
        assert page.pg.evaluate("() => window.mltrailLive.isActive()") is False
        assert page.pg.query_selector("#live-control") is None
    assert page.requests == []
