"""The metric charts (uPlot) in Chromium: hover values of every series, log scale, the x axis modes,
zoom fetching finer data, the live-update API (extend, lastStep, addChart); and the vendored
uPlot files (unmodified, served versioned and gzipped, no eval in the pages that use them).

One browser and one server over a small store of our own (three runs whose values are known at
every step) for the module; a fresh browser context per test.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from browser_support import TIMEOUT_MS
from test_ui_browser import chart_index, series_of, wait_chart
from test_ui_support import serve_ui, ui_settings

from mltrail.client import Client
from mltrail.entities import Metric, Param

VENDOR = Path(__file__).parents[2] / "src" / "mltrail" / "server" / "ui" / "static" / "vendor" / "uplot"
T0 = 1_700_000_000_000
STEPS = 300  # under the points each run gets: the charts show every logged point
LONG_STEPS = 3000  # more than a chart's points: a zoom fetches finer data


def value(run: int, step: int) -> float:
    return (run + 1) * (step + 1) / 10


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser):
    """Runs r0, r1 log `hits` at every step, r2 at every third; `long` logs `loss` for 3,000 steps
    (0 at step 10, for the log scale) and `acc`, one point every 10 ms of wall time."""
    directory = tmp_path_factory.mktemp("ui-charts") / "store"
    client = Client(str(directory))
    exp = client.create_experiment("charts")
    runs = []
    for r in range(3):
        rid = client.create_run(exp, start_time=T0, run_name=f"r{r}").info.run_id
        every = 3 if r == 2 else 1
        client.log_batch(rid, metrics=[Metric("hits", value(r, s), T0 + 1000 * s, s) for s in range(0, STEPS, every)])
        client.set_terminated(rid, end_time=T0 + 1000 * STEPS)
        runs.append(rid)
    long_run = client.create_run(exp, start_time=T0, run_name="long").info.run_id
    for start in range(0, LONG_STEPS, 500):
        client.log_batch(long_run, metrics=[
            Metric(k, 0.0 if (k == "loss" and s == 10) else 1.0 / (1 + s / 100), T0 + 10 * s, s)
            for s in range(start, start + 500) for k in ("loss", "acc")])
    srv = serve_ui(directory)
    yield {"runs": runs, "long": long_run, "base": srv.uri}
    srv.stop()


@pytest.fixture
def page(browser, site):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(TIMEOUT_MS)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    ctx.close()
    assert errors == [], errors


def _legend(page, index: int) -> list[str]:
    """The legend's value cells of chart `index`: the x value first, then one per series."""
    return page.locator(f'.plot[data-index="{index}"] .u-legend .u-series .u-value').all_text_contents()


def _hover(page, index: int, fraction: float) -> None:
    box = page.locator(f'.plot[data-index="{index}"] .u-over').bounding_box()
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)


def _hover_until(page, index: int, fraction: float, predicate: str, arg: object = None) -> None:
    """Hover at `fraction` of the plot's width until `predicate(arg)` holds in the page: the chart may
    still be settling to its container's width (a scrollbar appearing), which moves it under the mouse."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(10):
        _hover(page, index, fraction + attempt * 0.001)
        try:
            page.wait_for_function(predicate, arg=arg, timeout=2000)
            return
        except PlaywrightTimeout:
            continue
    page.wait_for_function(predicate, arg=arg)


def _rendered(page, index: int) -> int:
    return int(page.get_attribute(f'.plot[data-index="{index}"]', "data-rendered") or 0)


@pytest.mark.browser
def test_hover_shows_the_value_of_every_series(page, site):
    page.goto(f"{site['base']}/compare?run_ids={','.join(site['runs'])}")
    wait_chart(page, 0, 3)
    assert [s["label"] for s in series_of(page, 0)] == ["r0", "r1", "r2"]
    shown = "--"
    for fraction in (0.23, 0.5, 0.77):
        _hover_until(page, 0, fraction, """(before) => { const v = [...document.querySelectorAll(
                '.plot[data-index="0"] .u-legend .u-series .u-value')].map(e => e.textContent);
            return /^[0-9]+$/.test(v[0]) && v[0] !== before && v.length === 4 && v.every(t => t && t !== '—'); }""",
                     shown)
        step, *values = _legend(page, 0)
        shown = step
        s = int(step)
        assert float(values[0]) == pytest.approx(value(0, s)) and float(values[1]) == pytest.approx(value(1, s))
        # r2 has no point at most steps: its nearest logged one (a multiple of 3) is shown, never a blank
        nearest = {value(2, m) for m in (s - s % 3, s - s % 3 + 3)}
        assert any(float(values[2]) == pytest.approx(v) for v in nearest), (s, values)


@pytest.mark.browser
def test_a_chart_waits_for_a_slow_chart_library(page, site):
    """uPlot is a deferred script after charts.js: when the chart's data arrives first, the chart waits
    for the library (readyState is already "interactive" while deferred scripts run)."""
    def slow(route):
        page.wait_for_timeout(1500)
        route.continue_()

    page.route("**/uPlot.iife.min.js*", slow)
    page.goto(f"{site['base']}/compare?run_ids={','.join(site['runs'])}", wait_until="commit")
    wait_chart(page, 0, 3)
    assert "did not load" not in page.locator('.plot[data-index="0"]').inner_text()


@pytest.mark.browser
def test_log_scale(page, site):
    page.goto(f"{site['base']}/runs/{site['long']}")
    i = chart_index(page, "loss")
    wait_chart(page, i, 1)
    before = _rendered(page, i)
    assert 0 in series_of(page, i)[0]["y"]  # step 10's 0, kept by the sampling (a bucket's minimum)
    page.check("#log-y")
    wait_chart(page, i, 1, before)
    got = page.evaluate(f"""() => {{ const u = window.mltrailCharts.charts[{i}].plot;
        return {{distr: u.scales.y.distr, min: u.scales.y.min, ticks: u.axes[1]._values}}; }}""")
    assert got["distr"] == 3 and got["min"] > 0  # a log axis; 0 cannot sit on it
    y = series_of(page, i)[0]["y"]
    assert 0 not in y and None in y  # the 0 is left out (a gap), not drawn at -infinity
    assert any(re.fullmatch(r"(1e-?\d+|0\.0*1|1|10)", str(t)) for t in got["ticks"]), got["ticks"]
    page.uncheck("#log-y")
    wait_chart(page, i, 1, before + 1)
    assert page.evaluate(f"() => window.mltrailCharts.charts[{i}].plot.scales.y.distr") == 1


@pytest.mark.browser
def test_x_axis_by_step_relative_time_and_wall_time(page, site):
    page.goto(f"{site['base']}/runs/{site['long']}")
    i = chart_index(page, "loss")
    wait_chart(page, i, 1)

    def x_axis():
        return page.evaluate(f"""() => {{ const u = window.mltrailCharts.charts[{i}].plot;
            return {{first: u.data[0][0], last: u.data[0][u.data[0].length - 1], time: u.scales.x.time,
                     label: u.axes[0].label}}; }}""")

    assert x_axis() == {"first": 0, "last": LONG_STEPS - 1, "time": False, "label": "step"}
    before = _rendered(page, i)
    page.select_option("#x-axis", "relative")
    wait_chart(page, i, 1, before)
    got = x_axis()
    assert got["first"] == 0 and got["last"] == pytest.approx((LONG_STEPS - 1) * 10 / 1000)
    assert got["label"] == "relative time (s)" and got["time"] is False
    page.select_option("#x-axis", "wall")
    wait_chart(page, i, 1, before + 1)
    got = x_axis()
    assert got == {"first": T0, "last": T0 + 10 * (LONG_STEPS - 1), "time": True, "label": "wall time"}
    _hover_until(page, i, 0.5, "(i) => /^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d$/.test(document.querySelector("
                 "`.plot[data-index=\"${i}\"] .u-legend .u-series .u-value`).textContent)", i)


@pytest.mark.browser
def test_a_drag_zooms_and_fetches_finer_data_a_double_click_resets(page, site):
    page.goto(f"{site['base']}/runs/{site['long']}")
    i = chart_index(page, "loss")
    wait_chart(page, i, 1)
    coarse = page.evaluate(f"() => window.mltrailCharts.charts[{i}].plot.data[0]")
    assert len(coarse) <= 1000 and coarse[-1] == LONG_STEPS - 1
    ranged: list[str] = []
    page.on("request", lambda r: ranged.append(r.url) if "min_step=" in r.url else None)
    before = _rendered(page, i)
    box = page.locator(f'.plot[data-index="{i}"] .u-over').bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.40, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.47, y, steps=5)
    page.mouse.up()
    wait_chart(page, i, 1, before)
    got = page.evaluate(f"""() => {{ const u = window.mltrailCharts.charts[{i}].plot;
        return {{x: u.data[0], min: u.scales.x.min, max: u.scales.x.max}}; }}""")
    assert len(ranged) == 1 and "max_step=" in ranged[0]
    lo, hi = int(re.search(r"min_step=(\d+)", ranged[0])[1]), int(re.search(r"max_step=(\d+)", ranged[0])[1])
    assert 1000 < lo < hi < 1500
    assert got["x"] == list(range(lo, hi + 1))  # every step of the range: finer than the coarse data
    assert lo <= got["min"] and got["max"] <= hi
    before = _rendered(page, i)
    page.locator(f'.plot[data-index="{i}"] .u-over').dblclick()
    wait_chart(page, i, 1, before)
    assert page.evaluate(f"() => window.mltrailCharts.charts[{i}].plot.data[0]") == coarse


@pytest.mark.browser
def test_extend_last_step_and_add_chart_for_live_updates(page, site):
    rid = site["long"]
    page.goto(f"{site['base']}/runs/{rid}")
    i = chart_index(page, "loss")
    wait_chart(page, i, 1)
    api = "window.mltrailCharts"
    assert page.evaluate(f"() => {api}.lastStep('{rid}', 'loss')") == LONG_STEPS - 1
    assert page.evaluate(f"() => {api}.lastStep('{rid}', 'nope')") == -1
    before = _rendered(page, i)
    page.evaluate(f"""() => {api}.extend([{{run_id: '{rid}', key: 'loss', steps: [2998, 2999, 3000, 3001],
        timestamps: [1, 2, 3, 4], values: [9, 9, 0.5, 0.25]}}, {{run_id: 'other', key: 'loss', steps: [5000],
        timestamps: [5], values: [1]}}])""")
    wait_chart(page, i, 1, before)
    assert page.evaluate(f"() => {api}.lastStep('{rid}', 'loss')") == 3001
    y = series_of(page, i)[0]["y"]
    assert y[-2:] == [0.5, 0.25] and 9 not in y  # steps already drawn are not appended twice
    assert page.evaluate(f"() => {api}.charts[{i}].plot.data[0].slice(-3)") == [2999, 3000, 3001]
    n = page.evaluate(f"() => {api}.charts.length")
    url = f"/ui/api/metrics?key=acc&max_points=1000&run_ids={rid}"
    # a key that has its chart already gets that chart back, not a second one
    page.evaluate(f"() => {api}.addChart({{key: 'loss', label: 'loss again', urls: ['{url}']}})")
    assert page.evaluate(f"() => {api}.charts.length") == n
    page.evaluate(f"() => {api}.addChart({{key: 'acc-live', label: 'acc (added)', urls: ['{url}']}})")
    assert page.locator(f'#chart-{n} .chart-title').inner_text() == "acc (added)"
    page.locator(f"#chart-{n}").scroll_into_view_if_needed()
    wait_chart(page, n, 1)


@pytest.mark.browser
def test_charts_follow_the_size_of_their_container(page, site):
    page.goto(f"{site['base']}/runs/{site['long']}")
    wait_chart(page, 0, 1)
    wide = page.evaluate("() => window.mltrailCharts.charts[0].plot.width")
    page.set_viewport_size({"width": 700, "height": 1000})
    page.wait_for_function(f"() => window.mltrailCharts.charts[0].plot.width < {wide}")
    width = page.evaluate("() => [window.mltrailCharts.charts[0].plot.width, "
                          "document.querySelector('.plot[data-index=\"0\"]').clientWidth]")
    assert abs(width[0] - width[1]) <= 2


def test_vendored_uplot_is_unmodified_and_its_version_recorded():
    notes = (VENDOR / "VERSION").read_text()
    assert re.search(r"uPlot 1\.6\.\d+", notes) and "registry.npmjs.org/uplot/-/uplot-1.6." in notes
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert f"sha256 {digest}  {name}" in notes, f"{name} differs from the copy VERSION records"
    assert "MIT License" in (VENDOR / "LICENSE").read_text()


def test_uplot_is_served_versioned_gzipped_and_pages_need_no_eval(tmp_path):
    from starlette.testclient import TestClient

    from mltrail.server.app import create_app

    client = Client(str(tmp_path))
    exp = client.create_experiment("e")
    ids = [client.create_run(exp, run_name=f"r{p}").info.run_id for p in (1, 2)]
    for p, rid in enumerate(ids):
        client.log_batch(rid, metrics=[Metric("loss", 1.0, T0, 0)], params=[Param("p", str(p))])
    with TestClient(create_app(ui_settings(tmp_path)), base_url="http://127.0.0.1") as c:
        run_page = c.get(f"/runs/{rid}")
        src = re.search(r'src="(/ui/static/uPlot\.iife\.min\.js\?v=[0-9a-f]{12})"', run_page.text).group(1)
        assert re.search(r'href="/ui/static/uPlot\.min\.css\?v=[0-9a-f]{12}"', run_page.text)
        assert "plotly" not in run_page.text
        r = c.get(src, headers={"accept-encoding": "gzip"})
        assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-encoding"] == "gzip"  # from the first request: small files are compressed at once
        assert r.content == (VENDOR / "uPlot.iife.min.js").read_bytes()  # httpx decoded it
        assert r.headers["content-type"].startswith("text/javascript")
        assert "'unsafe-eval'" not in run_page.headers["content-security-policy"]
        assert "'unsafe-eval'" not in c.get("/").headers["content-security-policy"]
        compare = c.get(f"/compare?run_ids={','.join(ids)}")  # Plotly (parallel coordinates) may load there: it evals
        assert "'unsafe-eval'" in compare.headers["content-security-policy"]
        assert 'data-plotly-src="/ui/static/plotly.min.js?v=' in compare.text
        assert "<script src=\"/ui/static/plotly.min.js" not in compare.text  # loaded when the view opens
        exp_page = c.get(f"/experiments/{client.get_run(rid).info.experiment_id}").text
        assert re.search(r'rel="prefetch" href="/ui/static/uPlot\.iife\.min\.js\?v=', exp_page)
        assert "plotly" not in exp_page
