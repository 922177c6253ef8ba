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


def test_points_logged_at_the_same_step_come_after_the_last_one_drawn(site):
    # MLflow's log_metric logs at step 0 when no step is given: the chart grows by timestamp
    client, uri = site
    rid = client.create_run(_experiment(client), run_name="same-step").info.run_id
    t0 = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric("loss", 1.0 / (i + 1), t0 + i, 0) for i in range(5)])
    [tail] = _one(_live(uri, [rid], {rid: {"loss": [0, t0 + 2]}}).json(), rid)["series"]
    assert (tail["since"], tail["steps"], tail["timestamps"]) == ([0, t0 + 2], [0, 0], [t0 + 3, t0 + 4])
    assert tail["values"] == pytest.approx([1 / 4, 1 / 5]) and tail["sampled"] is False
    # the last point drawn: nothing; a step alone still means "all of that step drawn"
    assert _one(_live(uri, [rid], {rid: {"loss": [0, t0 + 4]}}).json(), rid)["series"] == []
    assert _one(_live(uri, [rid], {rid: {"loss": 0}}).json(), rid)["series"] == []
    # later points at the mark's step, then those of later steps, in (step, timestamp) order
    client.log_batch(rid, metrics=[Metric("loss", 0.1, t0 + 9, 0), Metric("loss", 0.05, t0 + 6, 1)])
    [tail] = _one(_live(uri, [rid], {rid: {"loss": [0, t0 + 4]}}).json(), rid)["series"]
    assert list(zip(tail["steps"], tail["timestamps"], strict=True)) == [(0, t0 + 9), (1, t0 + 6)]


def test_a_long_same_step_tail_is_sampled_too(site):
    client, uri = site
    rid = client.create_run(_experiment(client), run_name="same-step-long").info.run_id
    t0 = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric("loss", float(i), t0 + i, 0) for i in range(400)])
    [tail] = _one(_live(uri, [rid], {rid: {"loss": [0, t0]}}, max_points=100).json(), rid)["series"]
    assert tail["sampled"] is True and len(tail["steps"]) == 100 and set(tail["steps"]) == {0}
    assert tail["timestamps"][0] == t0 + 1 and tail["timestamps"][-1] == t0 + 399  # first and last kept
    assert tail["timestamps"] == sorted(tail["timestamps"])


def test_new_keys_say_where_the_run_page_puts_them(site):
    client, uri = site
    rid = _run(client, _experiment(client), "placed", range(3))
    now = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric(k, 0.5, now, 0) for k in ("val_loss", "acc", "batch/acc", "system/cpu")])
    run = _one(_live(uri, [rid], {rid: {"loss": 2, "val_acc": 0, "batch/val_acc": None}}).json(), rid)
    assert run["new_keys"] == ["acc", "batch/acc", "system/cpu", "val_loss"]
    assert run["placement"] == {
        "val_loss": {"group": "", "validates": "loss", "validated_by": []},
        "acc": {"group": "", "validates": None, "validated_by": ["val_acc"]},
        "batch/acc": {"group": "batch", "validates": None, "validated_by": ["batch/val_acc"]},
        "system/cpu": {"group": "system", "validates": None, "validated_by": []},
    }
    assert "placement" not in _one(_live(uri, [rid]).json(), rid)


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
    ({"since": '{"RID": {"loss": [7]}}'}, "metric 'loss': got [7]; expected a JSON object"),
    ({"since": '{"RID": {"loss": [7, true]}}'}, "metric 'loss': got [7, True]"),
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


_LINES = """key => { const c = window.mltrailCharts.charts.find(c => c.key === key);
                    return c ? c.lines.map(l => l.key).join(',') : ''; }"""
_KEYS = "() => window.mltrailCharts.charts.map(c => c.key).sort().join(',')"


@pytest.mark.browser
def test_new_metrics_join_their_train_chart_or_their_group_as_the_page_would(site, page):
    client, _ = site
    rid = _run(client, _experiment(client), "grouping", range(3))
    page.goto(f"/runs/{rid}")
    page.wait("() => document.querySelector('#live-control')?.getAttribute('data-state') === 'live'")
    page.wait(f"() => ({_DRAWN})(['{rid}', 'loss']) === 2")
    # a validation metric of a charted metric: a second line on that chart, not a chart of its own
    now = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric("val_loss", 0.9, now, 0), Metric("val_loss", 0.8, now + 1, 1)])
    page.wait(f"() => ({_LINES})('loss') === 'loss,val_loss'")
    page.wait(f"() => ({_DRAWN})(['{rid}', 'val_loss']) === 1")
    page.wait("() => document.querySelector('.chart[data-key=\"loss\"] .plot').getAttribute('data-series') === '2'")
    assert page.pg.query_selector('.chart[data-key="val_loss"]') is None
    assert page.pg.text_content('.chart[data-key="loss"] .chart-title') == "loss · val_loss"
    labels = "() => window.mltrailCharts.charts.find(c => c.key === 'loss').plot.series.map(s => s.label)"
    assert page.pg.evaluate(labels)[1:] == ["train", "validation"]
    client.log_metric(rid, "val_loss", 0.7, step=2)  # and it is polled like the others
    page.wait(f"() => ({_DRAWN})(['{rid}', 'val_loss']) === 2")
    # a validation metric first, then its train metric: the chart becomes the train metric's
    client.log_metric(rid, "val_acc", 0.5, step=0)
    page.wait("() => !!document.querySelector('.chart[data-key=\"val_acc\"]')")
    client.log_metric(rid, "acc", 0.6, step=0)
    page.wait(f"() => ({_LINES})('acc') === 'acc,val_acc'")
    assert page.pg.evaluate(_KEYS) == "acc,loss"
    page.pg.locator('.chart[data-key="acc"]').scroll_into_view_if_needed()
    page.wait("() => document.querySelector('.chart[data-key=\"acc\"] .plot').getAttribute('data-series') === '2'")
    assert page.pg.evaluate(f"() => [({_DRAWN})(['{rid}', 'acc']), ({_DRAWN})(['{rid}', 'val_acc'])]") == [0, 0]
    assert page.pg.text_content('.chart[data-key="acc"] .chart-title') == "acc · val_acc"
    # a prefixed metric: a chart in its group's section, made in alphabetical place
    client.log_metric(rid, "system/cpu", 10.0, step=0)
    page.wait("() => !!document.querySelector('details.chart-group[data-group=\"system\"] .chart[data-key=\"system/cpu\"]')")
    # new in the same answer (the validation metric sorting first): one chart for both
    client.log_batch(rid, metrics=[Metric(k, 0.3, int(time.time() * 1000), 0) for k in ("batch/xent", "batch/val_xent")])
    page.wait("() => !!document.querySelector('details.chart-group[data-group=\"batch\"] .chart[data-key=\"batch/xent\"]')")
    page.wait(f"() => ({_LINES})('batch/xent') === 'batch/xent,batch/val_xent'")
    groups = page.pg.evaluate("() => [...document.querySelectorAll('#charts > details.chart-group')].map(d => "
                              "[d.dataset.group, d.querySelector('summary .muted').textContent])")
    assert groups == [["batch", "2"], ["system", "1"]]
    assert page.pg.evaluate("() => !!document.querySelector('#charts > .charts .chart[data-key=\"acc\"]')")
    client.set_terminated(rid)
    page.wait(f"() => ({_STATUS})('{rid}').every(s => s === 'FINISHED')")


@pytest.mark.browser
def test_compare_page_without_metrics_charts_a_running_runs_first_metrics(site, page):
    client, _ = site
    exp = _experiment(client)
    done = client.create_run(exp, run_name="done-empty").info.run_id
    client.set_terminated(done)
    page.goto(f"/compare?run_ids={done}")  # nothing runs: no chart scripts at all
    page.wait("() => document.readyState === 'complete'")
    assert page.pg.evaluate("() => !!document.querySelector('script[src*=\"charts.js\"]')") is False
    rid = client.create_run(exp, run_name="starting").info.run_id
    page.goto(f"/compare?run_ids={rid}")  # one run: no parallel coordinates to load the scripts either
    page.wait("() => document.querySelector('#live-control')?.getAttribute('data-state') === 'live'")
    assert page.pg.query_selector("#charts .chart") is None
    client.log_metric(rid, "loss", 0.5, step=0)
    client.log_metric(rid, "loss", 0.4, step=1)
    page.wait("() => +(document.querySelector('#charts .chart[data-key=\"loss\"] .plot')"
              "?.getAttribute('data-rendered') || 0) > 0")
    client.log_metric(rid, "loss", 0.3, step=2)
    page.wait(f"() => ({_DRAWN})(['{rid}', 'loss']) === 2")
    client.log_metric(rid, "val_loss", 0.6, step=0)  # the compare page charts every metric on its own
    page.wait("() => !!document.querySelector('#charts .chart[data-key=\"val_loss\"]')")
    assert page.pg.evaluate(f"() => ({_LINES})('loss')") == "loss"
    client.set_terminated(rid)
    row = f'#compare-runs tr[data-run-id="{rid}"]'
    page.wait(f"() => document.querySelector('{row} td:nth-child(3) .status').textContent === 'FINISHED'")


_PLOT = """key => { const c = window.mltrailCharts.charts.find(c => c.key === key); if (!c || !c.plot) return null;
    const show = c.plot.series[1].points.show;
    return {x: c.plot.data[0], drawn: c.plot.data[1].filter(v => v !== undefined && v !== null).length,
            points: typeof show === 'function' ? show(c.plot, 1) : show}; }"""


@pytest.mark.browser
def test_a_run_logging_at_one_step_grows_its_chart_as_points_at_that_step(site, page):
    client, _ = site
    rid = client.create_run(_experiment(client), run_name="one-step").info.run_id
    t0 = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric("loss", 1.0 / (i + 1), t0 + i, 0) for i in range(3)])
    page.goto(f"/runs/{rid}")
    page.wait("() => document.querySelector('#live-control')?.getAttribute('data-state') === 'live'")
    page.wait(f"() => ({_PLOT})('loss')?.drawn === 3")
    for i in range(3, 6):
        client.log_metric(rid, "loss", 1.0 / (i + 1), timestamp=t0 + i, step=0)
    page.wait(f"() => ({_PLOT})('loss')?.drawn === 6")
    plot = page.pg.evaluate(_PLOT, "loss")
    assert plot["x"] == [0] * 6 and plot["points"] is True  # MLflow: every point at its step, as points
    assert page.pg.evaluate(f"() => window.mltrailCharts.lastPoint('{rid}', 'loss')") == [0, t0 + 5]
    # the x axis by time spreads them out, each drawn once
    page.pg.select_option("#x-axis", "relative")
    page.wait(f"() => ({_PLOT})('loss')?.x.join(',') === '0,0.001,0.002,0.003,0.004,0.005'")
    client.set_terminated(rid)
    page.wait(f"() => ({_STATUS})('{rid}').every(s => s === 'FINISHED')")
    assert page.pg.evaluate(_PLOT, "loss")["drawn"] == 6
