"""The UI in Debian's Chromium through Playwright, against the real server on 127.0.0.1.

One browser and one server (over test_ui_support.build_demo's store) for the module; a fresh
browser context per test. Skipped when /usr/bin/chromium is missing, unless
MLTRAIL_REQUIRE_CHROMIUM=1 (then the missing browser fails the run).
"""

from __future__ import annotations

import pytest
from browser_support import TIMEOUT_MS
from test_ui_support import MANY_RUNS, XSS_IMG, build_demo, serve_ui

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(tmp_path_factory, browser):
    directory = tmp_path_factory.mktemp("ui-browser") / "store"
    ids = build_demo(directory)
    srv = serve_ui(directory)
    yield ids, srv.uri
    srv.stop()


@pytest.fixture
def page(browser, site):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(TIMEOUT_MS)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # "Blocked script execution ... sandboxed": the sandbox of a served HTML artifact doing its job
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "sandboxed" not in m.text else None)
    pg.base = site[1]  # type: ignore[attr-defined]
    yield pg
    pwned = pg.evaluate("() => window.__pwned")
    ctx.close()
    assert pwned is None, "a stored <script> ran"
    assert errors == [], errors


def wait_chart(pg, index: int, n_series: int, after: int = 0) -> None:
    """Until chart `index` has drawn `n_series` lines (its data-series), for a drawing after `after`."""
    pg.wait_for_function(
        """([i, n, after]) => { const d = document.querySelector(`.plot[data-index="${i}"]`);
            return d && +d.getAttribute('data-series') === n && +(d.getAttribute('data-rendered') || 0) > after; }""",
        arg=[index, n_series, after])


def chart_index(pg, key: str) -> int:
    return pg.evaluate("(key) => window.mltrailCharts.charts.findIndex(c => c.key === key)", key)


def series_of(pg, index: int) -> list[dict]:
    """The uPlot series of chart `index` after the x series: label, and whether it is a faint raw line."""
    return pg.evaluate("""(i) => { const u = window.mltrailCharts.charts[i].plot;
        return u.series.slice(1).map((s, j) => ({label: s.label, raw: s.class === 'raw', y: u.data[j + 1]})); }""",
                       index)


def test_experiments_lead_to_the_runs_table(page, site):
    ids, base = site
    page.goto(base + "/")
    assert page.locator("#experiments tbody tr").count() == 3  # Default, the demo, many runs
    page.get_by_role("link", name="UI demo <script>window.__pwned=1</script>").click()
    page.wait_for_url(f"**/experiments/{ids['exp']}")
    assert page.locator("#runs-body tr.run:not([hidden])").count() == 2  # the parent and the curves run
    assert page.locator("h1").inner_text().startswith("UI demo <script>")


def test_fold_select_and_compare_runs(page, site):
    ids, base = site
    page.goto(f"{base}/experiments/{ids['exp']}")
    trials = page.locator(f'#runs-body tr.child[data-parent="{ids["parent"]}"]')
    assert trials.count() == 3 and not trials.first.is_visible()
    page.locator(f'button.fold[data-run-id="{ids["parent"]}"]').click()
    assert trials.nth(2).is_visible()
    assert page.locator("#compare-button").is_disabled()
    for i in (0, 1, 2):
        trials.nth(i).locator("input[name=run_ids]").check()
    assert page.locator("#selected-count").inner_text() == "3 selected"
    page.locator("#compare-button").click()
    page.wait_for_url("**/compare?run_ids=*")
    assert page.locator("#compare-runs tbody tr").count() == 3
    i = chart_index(page, "loss")
    wait_chart(page, i, 3)
    plot = f'.plot[data-index="{i}"]'
    assert [s["label"] for s in series_of(page, i)] == ["trial-0", "trial-1", f"trial-2 {XSS_IMG}"]
    # the legend shows the name as typed: text, not an element
    assert page.locator(f"{plot} .u-legend .u-series .u-label").all_text_contents()[1:] == [
        "trial-0", "trial-1", f"trial-2 {XSS_IMG}"]
    assert page.locator(f"{plot} img").count() == 0
    # each run's line in its legend colour (the swatch in the runs table above)
    colours = page.evaluate(f"""() => {{ const ctx = document.createElement('canvas').getContext('2d');
        const norm = c => {{ ctx.fillStyle = c; return ctx.fillStyle; }};
        const u = window.mltrailCharts.charts[{i}].plot;
        return [u.series.slice(1).map((s, j) => norm(s.stroke(u, j + 1))),
                [...document.querySelectorAll('#compare-runs .swatch')].map(e => norm(getComputedStyle(e).backgroundColor))];
    }}""")
    assert colours[0] == colours[1] and len(set(colours[0])) == 3
    differs = page.locator("#params-diff tr.differs th").all_inner_texts()
    assert differs == ["learning_rate", "units"]
    page.locator("#diff-only").check()
    assert not page.locator("#params-diff tr.same").first.is_visible()


def test_filter_and_sort_the_runs_table(page, site):
    ids, base = site
    page.goto(f"{base}/experiments/{ids['exp']}")
    page.fill("#filter", "params.learning_rate = '0.01'")
    page.press("#filter", "Enter")
    page.wait_for_url("**filter=*")
    assert page.locator("#runs-body tr.run").all_inner_texts()[0].split("\n")[0].strip().startswith("trial-1")
    assert page.locator("#runs-body tr.run").count() == 1
    page.goto(f"{base}/experiments/{ids['many']}?columns=metrics.score")
    page.locator('th a.sort[title="metrics.score"]').click()
    page.wait_for_url("**order_by=metrics.score+DESC*")
    first = page.locator("#runs-body tr.run td.name a").first.inner_text()
    assert first == f"run-{MANY_RUNS - 1:03d}"
    page.locator('th a.sort[title="metrics.score"]').click()
    page.wait_for_url("**order_by=metrics.score+ASC*")
    assert page.locator("#runs-body tr.run td.name a").first.inner_text() == "run-000"


def test_scrolling_loads_every_run(page, site):
    ids, base = site
    page.goto(f"{base}/experiments/{ids['many']}")
    rows = page.locator("#runs-body tr.run")
    assert rows.count() == 100  # the first page is in the HTML
    for _ in range(20):
        if rows.count() == MANY_RUNS:
            break
        page.mouse.wheel(0, 20_000)
        page.wait_for_timeout(200)
    assert rows.count() == MANY_RUNS
    assert page.locator("#next-page").count() == 0
    names = page.locator("#runs-body tr.run td.name a").all_inner_texts()
    assert len(set(names)) == MANY_RUNS


def test_run_page_charts_downsampled_with_the_spike_and_smoothing(page, site):
    ids, base = site
    page.goto(f"{base}/runs/{ids['curves']}")
    i = chart_index(page, "loss")
    page.locator(f"#chart-{i}").scroll_into_view_if_needed()
    wait_chart(page, i, 1)
    xs = page.evaluate(f"() => window.mltrailCharts.charts[{i}].plot.data[0]")
    assert xs[0] == 0 and xs[-1] == 2999 and len(xs) <= 1000
    assert 100 in series_of(page, i)[0]["y"]  # the spike survived
    assert page.evaluate("() => window.Plotly") is None  # metric charts never load Plotly.js
    rendered = int(page.get_attribute(f'.plot[data-index="{i}"]', "data-rendered"))
    page.fill("#smoothing", "0.9")  # a range input: fill sets it and fires input
    wait_chart(page, i, 1, rendered)
    got = series_of(page, i)
    assert [(s["label"], s["raw"]) for s in got] == [("curves (raw)", True), ("curves", False)]  # raw faint, behind
    assert got[0]["y"][-1] == pytest.approx(1 / 30.99) and got[1]["y"][-1] != got[0]["y"][-1]
    assert page.locator(f'.plot[data-index="{i}"] .u-legend tr.raw').is_hidden()


def test_run_page_groups_metrics_and_draws_validation_with_train(page, site):
    from mltrail.client import Client
    from mltrail.entities import Metric

    ids, base = site
    client = Client(ids["uri"])  # a run of its own experiment: the demo's runs stay as they are
    rid = client.create_run(client.create_experiment("grouping in a browser"), run_name="g").info.run_id
    client.log_batch(rid, metrics=[Metric(k, v * (s + 1), 1000 + s, s) for k, v in
                                   (("loss", 1.0), ("val_loss", 2.0), ("system/cpu", 3.0)) for s in range(5)])
    page.goto(f"{base}/runs/{rid}")
    i = chart_index(page, "loss")
    wait_chart(page, i, 2)
    got = [(s["label"], s["y"][4]) for s in series_of(page, i)]
    assert got == [("train", 5.0), ("validation", 10.0)]
    rendered = int(page.get_attribute(f'.plot[data-index="{i}"]', "data-rendered"))
    page.fill("#smoothing", "0.5")  # the controls act on every line: raw + smoothed for each
    wait_chart(page, i, 2, rendered)
    assert [s["raw"] for s in series_of(page, i)] == [True, True, False, False]
    group = page.locator('details.chart-group[data-group="system"]')
    assert group.locator(".chart-title").all_inner_texts() == ["system/cpu"]
    group.locator("summary").click()  # folds
    assert group.get_attribute("open") is None


def wait_for_preview_of(page, path):
    # The pane shows "Loading…" (no name yet) between a click and the server's answer.
    page.wait_for_function("p => document.querySelector('.preview-name')?.textContent === p", arg=path)


def test_artifact_browser_previews_files(page, site):
    ids, base = site
    page.goto(f"{base}/runs/{ids['curves']}#artifacts")
    box = page.locator("#artifacts .artifacts")
    box.locator('a[data-path="config.json"]').click()
    pre = box.locator(".preview pre")
    pre.wait_for()
    assert '"layers": [' in pre.inner_text()
    box.locator('a[data-path="notes"]').click()
    box.locator('a[data-path="notes/readme.txt"]').click()
    wait_for_preview_of(page, "notes/readme.txt")
    assert pre.inner_text() == "hello <script>window.__pwned=1</script>\n"  # shown as text, never run
    box.locator('a[data-path="report.html"]').click()
    wait_for_preview_of(page, "report.html")
    assert pre.inner_text().startswith("<html>")
    box.locator('a[data-path="images"]').click()
    box.locator('a[data-path="images/sample.png"]').click()
    img = box.locator("img.preview-image")
    img.wait_for()
    page.wait_for_function("() => document.querySelector('img.preview-image')?.naturalWidth === 32")
    box.locator('a[data-path="model_summary.txt"]').click()  # shown in the Models section, not twice
    wait_for_preview_of(page, "model_summary.txt")
    assert box.locator(".preview .shown-elsewhere a").get_attribute("href") == "#models"
    assert page.locator("text=Total params: 15").count() == 1
    assert page.locator("#model-summary").inner_text().startswith('Model: "sequential"')


def test_a_slow_preview_never_replaces_the_file_clicked_after_it(page, site):
    ids, base = site
    held = []  # the config.json preview request, answered only after the next file is shown
    page.route("**/ui/api/preview?*config.json*", lambda route: held.append(route))
    # mark when the page has read that answer's JSON: the app's own handler runs right after
    page.add_init_script("""(() => { const json = Response.prototype.json;
        Response.prototype.json = function () {
            const late = this.url.includes('config.json');
            return json.call(this).then(v => { if (late) window.__lateAnswerRead = true; return v; }); }; })()""")
    page.goto(f"{base}/runs/{ids['curves']}#artifacts")
    box = page.locator("#artifacts .artifacts")
    box.locator('a[data-path="config.json"]').click()
    page.wait_for_function("() => document.querySelector('.preview')?.textContent.includes('Loading')")
    box.locator('a[data-path="report.html"]').click()
    wait_for_preview_of(page, "report.html")
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_function("() => window.__lateAnswerRead === true")
    assert page.locator(".preview-name").inner_text() == "report.html"
    assert page.locator(".preview pre").inner_text().startswith("<html>")


def test_parallel_coordinates_of_a_search(page, site):
    ids, base = site
    page.goto(f"{base}/runs/{ids['parent']}")
    page.set_viewport_size({"width": 1400, "height": 400})  # the compare page's view starts out of sight
    page.locator("#compare-children").click()
    page.wait_for_url("**/compare?parent=*")
    wait_chart(page, 0, 3)
    # Plotly.js (parallel coordinates only) loads when that view comes near, not with the page
    assert page.evaluate("() => window.Plotly") is None
    assert not page.evaluate("() => performance.getEntriesByType('resource').some(e => e.name.includes('plotly'))")
    page.locator("#parcoords").scroll_into_view_if_needed()
    page.wait_for_function("() => { const d = document.getElementById('parcoords'); "
                           "return d.data && d.data[0].type === 'parcoords'; }")
    labels = page.evaluate("() => document.getElementById('parcoords').data[0].dimensions.map(d => d.label)")
    assert labels[:2] == ["learning_rate", "units"] and len(labels) == 3


def test_model_pages_show_signature_and_snippets(page, site):
    ids, base = site
    page.goto(f"{base}/models")
    page.locator(f'a[href="/models/{ids["model"]}"]').first.click()
    page.wait_for_url(f"**/models/{ids['model']}")
    assert page.locator("table.signature td").first.inner_text() == "features"
    page.locator(".snippet button.copy").first.click()
    page.wait_for_function("() => ['Copied', 'Select and copy'].includes(document.querySelector('.snippet button.copy').textContent)")
    page.locator("details.mlmodel summary").click()
    assert "tensor-spec" in page.locator("details.mlmodel pre").inner_text()
    if "registered" in ids:
        page.goto(f"{base}/registered-models/demo-model")
        assert "@champion" in page.locator("#aliases").inner_text()
        assert page.locator("#versions tbody tr").count() == 1


def test_no_stored_script_runs_on_any_page(page, site):
    ids, base = site
    for path in ("/", f"/experiments/{ids['exp']}", f"/runs/{ids['curves']}", f"/runs/{ids['parent']}",
                 f"/compare?run_ids={ids['curves']},{ids['parent']}", "/models", f"/models/{ids['model']}",
                 "/registered-models/demo-model", f"/ui/files/run/{ids['curves']}/report.html"):
        page.goto(base + path)
        page.wait_for_load_state("load")
        assert page.evaluate("() => window.__pwned") is None, path


def test_run_page_images_load_the_step_slider_picks_a_step_and_csv_previews_as_a_table(page, site):
    import numpy as np

    from mltrail.client import Client

    ids, base = site
    client = Client(ids["uri"])
    for step in (0, 5):  # step-wise images on the search run (nothing else looks at its artifacts)
        client.log_image(ids["parent"], np.full((12, 18, 3), 40 * step, dtype=np.uint8), key="maps", step=step)
    client.log_text(ids["parent"], f"name,score\nfirst,1\n{XSS_IMG.replace(',', ' ')},2\n", "scores.csv")
    page.goto(f"{base}/runs/{ids['curves']}#images")
    page.wait_for_function("() => { const i = document.querySelector('#image-gallery img');"
                           " return i && i.complete && i.naturalWidth === 32; }")  # images/sample.png
    assert page.locator("#image-gallery figcaption").all_inner_texts() == ["images/sample.png"]
    page.goto(f"{base}/runs/{ids['parent']}#images")
    series = page.locator('.image-series[data-key="maps"]')
    assert series.locator(".step-label").inner_text() == "5"
    slider = series.locator("input.step-slider")
    slider.fill("0")  # a range input takes fill(): its value, then an input event
    assert series.locator(".step-label").inner_text() == "0"
    page.wait_for_function("() => { const i = document.querySelector('.image-series img.step-image');"
                           " return i.complete && i.naturalWidth > 0 && i.src.includes('%2Bstep%2B0%2B')"
                           " && i.src.endsWith('compressed.webp'); }")
    assert series.locator("a.step-full").get_attribute("href").endswith(".png")
    series.locator('.step-list a[data-step="5"]').click()
    page.wait_for_function("() => { const i = document.querySelector('.image-series img.step-image');"
                           " return i.complete && i.naturalWidth > 0 && i.src.includes('%2Bstep%2B5%2B'); }")
    # a CSV file previews as a table whose cells are text
    page.locator('#artifacts a[data-path="scores.csv"]').click()
    cells = page.locator("#artifacts .preview-table td")
    cells.first.wait_for()
    assert cells.all_inner_texts() == ["first", "1", XSS_IMG.replace(",", " "), "2"]
    assert page.locator("#artifacts .preview-table img").count() == 0
