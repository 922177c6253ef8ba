"""The UI's pages and JSON endpoints through Starlette's TestClient (no browser): the real server
app over a real SQLite store filled by test_ui_support.build_demo."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient
from test_ui_support import CURVE_STEPS, MANY_RUNS, SPIKE_STEP, SPIKE_VALUE, XSS, build_demo, ui_settings

from mltrail.client import Client
from mltrail.entities import Metric
from mltrail.server.app import create_app


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ui-pages") / "store"
    ids = build_demo(directory)
    app = create_app(ui_settings(directory))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield ids, client, app


def _page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert m, "the page carries its chart data as JSON"
    return json.loads(m.group(1))


def _run_rows(html: str) -> list[str]:
    return re.findall(r'<tr class="run[^"]*" data-run-id="([0-9a-f]{32})"', html)


def test_experiments_page_lists_run_counts_and_escapes_names(demo):
    ids, c, _ = demo
    r = c.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<script>window.__pwned" not in r.text and "onerror=" not in r.text.replace("onerror=&#34;", "")
    assert "UI demo &lt;script&gt;window.__pwned=1&lt;/script&gt;" in r.text
    counts = dict(re.findall(r'data-experiment-id="(\d+)">.*?<td class="num run-count">(\d+)</td>', r.text, re.S))
    assert counts[ids["exp"]] == "5" and counts[ids["many"]] == str(MANY_RUNS)
    assert "many runs" in c.get("/?q=MANY").text and "UI demo" not in c.get("/?q=many").text


def test_pages_send_a_csp_that_allows_no_inline_script(demo):
    _, c, _ = demo
    for path in ("/", "/models", f"/runs/{demo[0]['curves']}"):
        csp = c.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp


def test_runs_table_folds_children_under_their_parent(demo):
    ids, c, _ = demo
    html = c.get(f"/experiments/{ids['exp']}").text
    rows = _run_rows(html)
    assert rows[0] == ids["curves"] and ids["parent"] in rows  # newest first
    for trial in ids["trials"]:
        m = re.search(rf'<tr class="run child" data-run-id="{trial}" data-parent="{ids["parent"]}" hidden>', html)
        assert m, "each trial is a hidden row under its parent"
    assert f'class="fold" aria-expanded="false" data-run-id="{ids["parent"]}"' in html
    headers = re.findall(r'title="((?:metrics|params|tags)\.[^"]+)"', html)
    assert {"metrics.loss", "metrics.val_accuracy", "params.learning_rate", "params.units"} <= set(headers)
    assert "evil" not in headers  # tags are only shown when chosen
    assert "&lt;script&gt;" in html and "<script>window" not in html


def test_a_filter_lists_matching_runs_flat_with_their_parent(demo):
    ids, c, _ = demo
    html = c.get(f"/experiments/{ids['exp']}", params={"filter": "params.learning_rate = '0.01'"}).text
    assert _run_rows(html) == [ids["trials"][1]]
    assert f'class="parent-link muted" href="/runs/{ids["parent"]}"' in html
    html = c.get(f"/experiments/{ids['exp']}", params={"filter": "metrics.loss < 0.5"}).text
    assert set(_run_rows(html)) == {ids["curves"], *ids["trials"]}


def test_a_bad_filter_is_explained_on_the_page(demo):
    ids, c, _ = demo
    r = c.get(f"/experiments/{ids['exp']}", params={"filter": "params.lr ~ 3"})
    assert r.status_code == 200
    assert 'id="search-error"' in r.text and _run_rows(r.text) == []


def test_runs_table_sorts_by_any_column(demo):
    ids, c, _ = demo
    url = f"/experiments/{ids['many']}"
    desc = c.get(url, params={"order_by": "metrics.score DESC", "columns": "metrics.score"}).text
    asc = c.get(url, params={"order_by": "metrics.score ASC", "columns": "metrics.score"}).text
    assert re.findall(r'>(run-\d+)</a>', desc)[:3] == ["run-229", "run-228", "run-227"]
    assert re.findall(r'>(run-\d+)</a>', asc)[:3] == ["run-000", "run-001", "run-002"]
    assert 'class="sort desc" href="/experiments/' in desc  # the sorted column says so, and flips on click
    assert "order_by=metrics.score+ASC" in desc
    by_name = c.get(url, params={"order_by": "attributes.run_name ASC"}).text
    assert re.findall(r'>(run-\d+)</a>', by_name)[:2] == ["run-000", "run-001"]


def test_runs_table_pages_through_all_runs(demo):
    ids, c, _ = demo
    url, seen = f"/experiments/{ids['many']}", []
    html = c.get(url).text
    while True:
        rows = _run_rows(html)
        assert len(rows) <= 100
        seen += rows
        m = re.search(r'id="next-page" href="([^"]+)" data-api="([^"]+)"', html)
        if not m:
            break
        href, api = (x.replace("&amp;", "&") for x in m.groups())
        page = c.get(api).json()  # the JSON the page's script appends on scroll: the same rows
        assert [r["run_id"] for r in page["rows"]] == _run_rows(c.get(href).text)
        html = c.get(href).text
    assert len(seen) == MANY_RUNS == len(set(seen))


def test_chosen_columns_and_page_size(demo):
    ids, c, _ = demo
    r = c.get(f"/experiments/{ids['many']}", params={"columns": "params.parity,tags.mlflow.runName",
                                                       "page_size": "10"})
    assert re.findall(r'title="((?:metrics|params|tags)\.[^"]+)"', r.text) == ["params.parity", "tags.mlflow.runName"]
    assert len(_run_rows(r.text)) == 10
    assert '<td class="cell">odd</td><td class="cell">run-229</td>' in r.text
    assert c.get(f"/experiments/{ids['many']}", params={"columns": "bogus"}).status_code == 200
    api = c.get("/ui/api/runs", params={"experiment_id": ids["many"], "columns": "bogus"})
    assert api.status_code == 400 and api.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_run_page_shows_everything_about_a_run(demo):
    ids, c, _ = demo
    r = c.get(f"/runs/{ids['curves']}")
    assert r.status_code == 200
    html = r.text
    assert "<script>window.__pwned" not in html
    assert '<div class="kv-row"><span class="k">epochs</span><span class="v">30</span></div>' in html
    assert "Notes &lt;script&gt;" in html  # the description, escaped
    assert "train.py" in html and "1 min 00 s" in html  # source and duration
    assert re.search(r'<a href="#chart-\d+">loss</a></th><td class="num">0\.03226\d*</td>', html)
    for name in ("notes", "config.json", "images", "model_summary.txt", "report.html"):
        assert f'data-path="{name}"' in html
    assert 'id="model-summary">Model: &#34;sequential&#34;' in html
    assert html.count("Total params: 15") == 1  # the summary shows once, in the Models section
    assert 'data-shown-elsewhere="{&#34;model_summary.txt&#34;:&#34;model-summary&#34;}"' in html
    # the logged model: flavors, signature table, snippets that load and serve it
    assert f'data-model-id="{ids["model"]}"' in html
    assert "<td>features</td><td>float32</td><td>(-1, 4)</td>" in html
    assert f'mlflow.pyfunc.load_model(&#34;models:/{ids["model"]}&#34;)' in html
    assert f'mltrail models serve -m &#34;models:/{ids["model"]}&#34; --port 5001' in html
    assert "mlflow.set_tracking_uri(&#34;http://127.0.0.1&#34;)" in html
    assert "[[1.0, 2.0, 3.0, 4.0]]" in html  # the input example in the curl snippet
    assert "description: &#34;&lt;script&gt;" in html  # MLmodel shown as text
    data = _page_data(html)
    assert [ch["key"] for ch in data["charts"]] == ["acc", "loss"]
    assert data["runs"][0]["id"] == ids["curves"]
    first_url = data["charts"][0]["urls"][0]
    assert f'<link rel="preload" as="fetch" href="{first_url.replace("&", "&amp;")}"' in html


def test_parent_run_page_lists_children_and_links_to_compare_them(demo):
    ids, c, _ = demo
    html = c.get(f"/runs/{ids['parent']}").text
    assert all(f'href="/runs/{t}"' in html for t in ids["trials"])
    assert f'href="/compare?parent={ids["parent"]}" id="compare-children"' in html
    child = c.get(f"/runs/{ids['trials'][0]}").text
    assert f'<a href="/runs/{ids["parent"]}">search</a>' in child


def test_compare_highlights_differences_and_feeds_parallel_coordinates(demo):
    ids, c, _ = demo
    html = c.get("/compare", params={"run_ids": ",".join(ids["trials"])}).text
    table = html[html.index('id="params-diff"'):]
    assert '<tr class="differs"><th scope="row">learning_rate</th><td>0.1</td><td>0.01</td><td>0.001</td></tr>' in table
    assert '<tr class="same"><th scope="row">optimizer</th>' in table
    data = _page_data(html)
    assert set(data["parcoords"]["params"]) == {"learning_rate", "units"}
    assert data["parcoords"]["metrics"]["val_accuracy"] is not None
    assert [r["id"] for r in data["runs"]] == ids["trials"]
    assert len({r["color"] for r in data["runs"]}) == 3
    by_parent = c.get("/compare", params={"parent": ids["parent"]}).text
    assert _page_data(by_parent)["runs"] == data["runs"]
    repeated = c.get("/compare?" + "&".join(f"run_ids={t}" for t in ids["trials"])).text
    assert [r["id"] for r in _page_data(repeated)["runs"]] == ids["trials"]
    # runs of different experiments side by side
    mixed = c.get("/compare", params={"run_ids": f"{ids['curves']},{ids['trials'][0]}"}).text
    assert len(_page_data(mixed)["runs"]) == 2


def test_compare_refuses_unknown_runs_with_a_page(demo):
    _, c, _ = demo
    r = c.get("/compare", params={"run_ids": "0" * 32})
    assert r.status_code == 404 and 'id="error-message"' in r.text
    empty = c.get("/compare")
    assert empty.status_code == 200 and "Select runs" in empty.text


def test_models_pages(demo):
    ids, c, _ = demo
    html = c.get("/models").text
    assert f'href="/models/{ids["model"]}">model</a>' in html
    if "registered" in ids:
        assert 'href="/registered-models/demo-model">demo-model</a>' in html and "@champion" in html
        reg = c.get("/registered-models/demo-model").text
        assert "desc &lt;script&gt;" in reg
        assert f'href="/models/{ids["model"]}">models:/{ids["model"]}</a>' in reg
        assert "models:/demo-model@champion" in reg
        assert c.get("/registered-models/nope").status_code == 404
    page = c.get(f"/models/{ids['model']}").text
    assert "<td>features</td><td>float32</td><td>(-1, 4)</td>" in page
    assert 'data-path="MLmodel"' in page and 'data-path="requirements.txt"' in page
    assert f'href="/runs/{ids["curves"]}"' in page
    assert c.get("/models/m-doesnotexist").status_code == 404


def test_metrics_api_downsamples_and_keeps_the_spike(demo):
    ids, c, app = demo
    r = c.get("/ui/api/metrics", params={"run_ids": ids["curves"], "key": "loss", "max_points": 200})
    assert r.status_code == 200
    s = r.json()["runs"][0]
    assert s["run_id"] == ids["curves"] and len(s["steps"]) <= 200
    assert s["steps"][0] == 0 and s["steps"][-1] == CURVE_STEPS - 1 and s["steps"] == sorted(s["steps"])
    assert s["values"][s["steps"].index(SPIKE_STEP)] == SPIKE_VALUE
    assert len(s["timestamps"]) == len(s["steps"])
    # the same points the store's own downsampling keeps
    store_points = app.state.ctx.store.get_metric_history_sampled(ids["curves"], "loss", 200)
    assert s["steps"] == [p.step for p in store_points]
    assert s["values"] == pytest.approx([p.value for p in store_points], rel=1e-12)


def test_metrics_api_zoom_returns_the_range_at_full_resolution(demo):
    ids, c, _ = demo
    s = c.get("/ui/api/metrics", params={"run_ids": ids["curves"], "key": "acc", "max_points": 400,
                                         "min_step": 1200, "max_step": 1300}).json()["runs"][0]
    assert s["steps"] == list(range(1200, 1301))


def test_metrics_api_for_many_runs_and_bad_requests(demo):
    ids, c, _ = demo
    body = c.get("/ui/api/metrics", params={"run_ids": ",".join(ids["trials"]), "key": "loss"}).json()
    assert [s["run_id"] for s in body["runs"]] == ids["trials"] and all(len(s["steps"]) == 40 for s in body["runs"])
    assert c.get("/ui/api/metrics", params={"run_ids": ids["parent"], "key": "loss"}).json()["runs"][0]["steps"] == []
    for params in ({"key": "loss"}, {"run_ids": ids["curves"]},
                   {"run_ids": ids["curves"], "key": "loss", "max_points": 2},
                   {"run_ids": ",".join(["a" * 32] * 201), "key": "loss"},
                   {"run_ids": ids["curves"], "key": "loss", "min_step": "x"}):
        r = c.get("/ui/api/metrics", params=params)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", params


def test_sampled_series_follow_new_points(demo):
    ids, c, _ = demo
    client = Client(ids["uri"])
    run = client.create_run(ids["exp"], run_name="live")
    rid = run.info.run_id
    client.log_batch(rid, metrics=[Metric("m", float(s), 1, s) for s in range(500)])

    def fetch() -> dict:
        return c.get("/ui/api/metrics", params={"run_ids": rid, "key": "m", "max_points": 50}).json()["runs"][0]

    assert fetch()["steps"][-1] == 499
    client.log_batch(rid, metrics=[Metric("m", 7.0, 2, 500)])  # appended
    assert fetch()["steps"][-1] == 500
    client.log_batch(rid, metrics=[Metric("m", 1e6, 3, 250)])  # logged later at an earlier step
    s = fetch()
    assert 1e6 in s["values"]
    client.delete_run(rid)


def test_artifact_listing_and_previews(demo):
    ids, c, _ = demo
    run = ids["curves"]
    root = c.get("/ui/api/artifacts", params={"run_id": run}).json()["files"]
    assert [f["name"] for f in root][:2] == ["images", "notes"]  # directories first
    notes = c.get("/ui/api/artifacts", params={"run_id": run, "path": "notes"}).json()["files"]
    assert notes == [{"path": "notes/readme.txt", "name": "readme.txt", "is_dir": False, "size": len(f"hello {XSS}\n")}]

    def preview(path: str, **kw: str) -> dict:
        r = c.get("/ui/api/preview", params={"run_id": run, "path": path, **kw})
        assert r.status_code == 200, r.text
        return r.json()

    assert preview("notes/readme.txt") | {"text": ""} == {
        "path": "notes/readme.txt", "name": "readme.txt", "url": f"/ui/files/run/{run}/notes/readme.txt",
        "size": len(f"hello {XSS}\n"), "truncated": False, "kind": "text", "text": ""}
    cfg = preview("config.json")
    assert cfg["kind"] == "json" and json.loads(cfg["text"]) == {"layers": [4, 8, 3], "html": XSS}
    assert preview("params.yaml")["kind"] == "yaml"
    assert preview("report.html")["kind"] == "text"  # shown as source, never rendered
    assert preview("weights.bin")["kind"] == "binary"
    img = preview("images/sample.png")
    assert img["kind"] == "image" and img["url"].endswith("/images/sample.png")
    model = c.get("/ui/api/preview", params={"model_id": ids["model"], "path": "MLmodel"}).json()
    assert model["kind"] == "yaml" and "tensor-spec" in model["text"]
    assert c.get("/ui/api/preview", params={"run_id": run, "path": "nope.txt"}).status_code == 404


def test_raw_artifact_files_are_sandboxed(demo):
    ids, c, _ = demo
    r = c.get(f"/ui/files/run/{ids['curves']}/report.html")
    assert r.status_code == 200 and r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"
    png = c.get(f"/ui/files/run/{ids['curves']}/images/sample.png")
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    model_file = c.get(f"/ui/files/model/{ids['model']}/requirements.txt")
    assert model_file.status_code == 200 and b"tensorflow-cpu" in model_file.content


@pytest.mark.parametrize("path", ["../../mltrail.db", "notes/../../../mltrail.db", "%2e%2e/mltrail.db",
                                  "/etc/passwd", "notes\\..\\..\\x", "..%252f..%252fmltrail.db"])
def test_artifact_paths_cannot_leave_the_run(demo, path):
    ids, c, _ = demo
    for url in ("/ui/api/preview", "/ui/api/artifacts"):
        r = c.get(url, params={"run_id": ids["curves"], "path": path})
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (url, path)
    raw = c.get(f"/ui/files/run/{ids['curves']}/{quote(path, safe='/%')}")
    assert raw.status_code in (400, 404)
    assert b"SQLite" not in raw.content


def test_static_files_are_versioned_cached_and_compressed(demo):
    _, c, app = demo
    html = c.get("/").text
    ui_js = re.search(r'src="(/ui/static/ui\.js\?v=[0-9a-f]{12})"', html).group(1)
    r = c.get(ui_js)
    assert r.status_code == 200 and r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-type"].startswith("text/javascript")
    assert c.get(ui_js, headers={"if-none-match": r.headers["etag"]}).status_code == 304
    plotly = c.get("/ui/static/plotly.min.js", headers={"accept-encoding": "identity"})
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000 and b"plotly.js" in plotly.content[:200]
    deadline = time.monotonic() + 30
    while True:  # gzip is built on a background thread after the first request that accepts it
        gz = c.get("/ui/static/plotly.min.js", headers={"accept-encoding": "gzip"})
        if gz.headers.get("content-encoding") == "gzip" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert gz.headers["content-encoding"] == "gzip" and gz.content == plotly.content  # httpx decodes it
    assert c.get("/ui/static/nope.js").status_code == 404
    assert c.get("/ui/static/..%2f_app.py").status_code == 404


def test_unknown_pages_and_resources_answer_404_pages(demo):
    _, c, _ = demo
    r = c.get("/no/such/page")
    assert r.status_code == 404 and "Not found" in r.text
    r = c.get("/runs/" + "f" * 32)
    assert r.status_code == 404 and 'id="error-message"' in r.text
    r = c.get("/experiments/999999")
    assert r.status_code == 404
    r = c.get("/runs/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert r.status_code in (400, 404) and "<script>alert(1)" not in r.text
    assert c.get("/health").text == "OK"  # the server's own routes still win over the UI's catch-all


def test_snippets_carry_a_short_input_example():
    from mltrail.server.ui._models import _first_rows, snippets, spec_rows

    assert _first_rows({"inputs": [[1], [2], [3]]}) == {"inputs": [[1], [2]]}
    assert _first_rows({"dataframe_split": {"columns": ["a"], "data": [[1], [2], [3]], "index": [0, 1, 2]}}) == {
        "dataframe_split": {"columns": ["a"], "data": [[1], [2]], "index": [0, 1]}}
    code = dict(snippets("models:/m-1", "http://h:5000", ["tensorflow"], '{"inputs": [["it\'s"]]}'))
    assert "mlflow.tensorflow.load_model" in code["Load the Keras model"]
    assert "-d '{\"inputs\": [[\"it'\\''s\"]]}'" in code["Query the scoring server"]  # shell-quoted
    assert "Load the Keras model" not in dict(snippets("models:/m-1", "http://h", ["sklearn"], None))
    assert spec_rows('[{"type": "double", "name": "x", "required": false}]') == [
        {"name": "x", "type": "double", "shape": "", "note": "optional"}]
    assert spec_rows("not json")[0]["note"] == "unreadable" and spec_rows(None) == []


def test_run_page_groups_metrics_by_prefix_and_draws_validation_with_train(tmp_path):
    directory = tmp_path / "store"
    client = Client(str(directory))
    exp = client.create_experiment("grouping")
    rid = client.create_run(exp, run_name="groups").info.run_id
    keys = ["zeta", "loss", "val_loss", "val_acc", "batch/loss", "batch/val_loss", "system/cpu",
            "system/gpu_0/util", "a_group/x", "validation_f1", "f1"]
    client.log_batch(rid, metrics=[Metric(k, 1.0, 1000 + s, s) for k in keys for s in range(3)])
    with TestClient(create_app(ui_settings(directory)), base_url="http://127.0.0.1") as c:
        html = c.get(f"/runs/{rid}").text
    data = _page_data(html)
    charts = [ch["key"] for ch in data["charts"]]
    # ungrouped first (val_acc has no acc: a chart of its own), then groups alphabetically
    assert charts == ["f1", "loss", "val_acc", "zeta", "a_group/x", "batch/loss", "system/cpu", "system/gpu_0/util"]
    assert re.findall(r'<details class="chart-group" open data-group="([^"]+)"><summary>'
                      r'<span class="group-name">[^<]+</span> <span class="muted small">(\d+)</span>', html) == [
        ("a_group", "1"), ("batch", "2"), ("system", "2")]
    assert html.index('data-key="zeta"') < html.index('data-group="a_group"')
    loss = data["charts"][charts.index("loss")]
    assert loss["label"] == "train" and [(e["key"], e["label"]) for e in loss["extra"]] == [("val_loss", "validation")]
    assert "key=val_loss" in loss["extra"][0]["urls"][0] and "key=loss" in loss["urls"][0]
    assert [e["key"] for e in data["charts"][charts.index("f1")]["extra"]] == ["validation_f1"]
    assert [e["key"] for e in data["charts"][charts.index("batch/loss")]["extra"]] == ["batch/val_loss"]
    assert "extra" not in data["charts"][charts.index("val_acc")]
    # the metrics table links val_loss to the chart it is drawn on; one request per metric, as before
    i = charts.index("loss")
    assert f'<a href="#chart-{i}">val_loss</a>' in html and f'<a href="#chart-{i}">loss</a>' in html
    assert sum(len(ch["urls"]) + sum(len(e["urls"]) for e in ch.get("extra", [])) for ch in data["charts"]) == len(keys)
    assert html.count('class="plot"') == len(charts)
    assert "model-summary" not in html and "data-shown-elsewhere" not in html  # no summary logged
