"""TensorBoard event files previewed as scalar charts: `/ui/api/tensorboard`, the artifact pane, the run page.

Event files are written by real `tf.summary` calls and by a real Keras `fit` with the TensorBoard
callback, logged as a run's artifacts through the public Client; the endpoint is called over the
real server app (Starlette's TestClient), and the charts are checked in Chromium.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient
from test_ui_support import serve_ui, ui_settings

from mltrail.client import Client
from mltrail.server.app import create_app
from mltrail.server.context import ServerContext
from mltrail.server.ui._artifacts import ArtifactView
from mltrail.server.ui._tensorboard import tensorboard_scalars

pytestmark = pytest.mark.tf

STEPS = 5
LONG = 300
EPOCHS = 3


def _write_logs(root: Path) -> dict[str, Any]:
    import keras

    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(root / "summaries"))
    with writer.as_default():
        for s in range(STEPS):
            tf.summary.scalar("loss", 1.0 / (s + 1), step=s)
            tf.summary.scalar("acc", s / 10, step=s)
        tf.summary.text("note", "not a scalar", step=0)
        tf.summary.histogram("weights", np.arange(5.0), step=0)
        for s in range(LONG):
            tf.summary.scalar("long", 100.0 if s == 123 else float(s % 7), step=s)
    writer.close()

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.random.rand(32, 3), np.random.rand(32, 1)
    history = model.fit(x, y, epochs=EPOCHS, validation_split=0.25, verbose=0,
                        callbacks=[keras.callbacks.TensorBoard(str(root / "tensorboard_logs"))])
    return history.history


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tb") / "store"
    logs = tmp_path_factory.mktemp("tb-logs")
    history = _write_logs(logs)
    client = Client(str(directory))
    exp = client.create_experiment("tensorboard")
    run = client.create_run(exp, run_name="tb")
    rid = run.info.run_id
    client.log_artifacts(rid, str(logs / "summaries"), "summaries")
    client.log_artifacts(rid, str(logs / "tensorboard_logs"), "tensorboard_logs")
    client.log_text(rid, "hello\n", "notes.txt")
    client.log_text(rid, "hello\n", "plain/readme.txt")
    empty = client.create_run(exp, run_name="no logs")
    client.log_text(empty.info.run_id, "hello\n", "notes.txt")
    app = create_app(ui_settings(directory))
    with TestClient(app, base_url="http://127.0.0.1") as http:
        yield {"http": http, "run": rid, "empty": empty.info.run_id, "history": history, "dir": directory,
               "client": client}


def _get(site: dict[str, Any], path: str, run: str | None = None, status: int = 200, **params: Any) -> Any:
    r = site["http"].get("/ui/api/tensorboard" + ("/dirs" if path is None else ""),
                         params={"run_id": run or site["run"], **({} if path is None else {"path": path}), **params})
    assert r.status_code == status, r.text
    return r.json()


def _event_file(site: dict[str, Any], under: str) -> str:
    files = site["http"].get("/ui/api/artifacts", params={"run_id": site["run"], "path": under}).json()["files"]
    return next(f["path"] for f in files if "tfevents" in f["name"])


def _charts(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["tag"]: {s["run"]: s for s in c["series"]} for c in body["charts"]}


def test_tf_summary_scalars_match_what_was_written(site):
    body = _get(site, "summaries")
    assert body["available"] is True and body["truncated"] is False and body["note"] is None
    charts = _charts(body)
    assert sorted(charts) == ["acc", "long", "loss"]  # text and histogram summaries are not scalars
    loss = charts["loss"]["."]
    assert loss["steps"] == list(range(STEPS))
    assert loss["values"] == pytest.approx([1.0 / (s + 1) for s in range(STEPS)], rel=1e-6)
    assert charts["acc"]["."]["values"] == pytest.approx([s / 10 for s in range(STEPS)], rel=1e-6)
    assert all(t > 1_600_000_000_000 for t in loss["wall_times"])  # milliseconds, like metric timestamps


def test_one_event_file_is_previewed_alone(site):
    path = _event_file(site, "summaries")
    body = _get(site, path)
    assert body["files"] == [path]
    assert _charts(body)["loss"]["summaries"]["steps"] == list(range(STEPS))  # named after its directory
    preview = site["http"].get("/ui/api/preview", params={"run_id": site["run"], "path": path}).json()
    assert preview["kind"] == "tensorboard"


def test_keras_fit_logs_group_train_and_validation_by_tag(site):
    body = _get(site, "tensorboard_logs")
    charts = _charts(body)
    assert sorted(charts["epoch_loss"]) == ["train", "validation"]
    history = site["history"]
    train, val = charts["epoch_loss"]["train"], charts["epoch_loss"]["validation"]
    assert train["steps"] == list(range(EPOCHS)) and val["steps"] == list(range(EPOCHS))
    assert train["values"] == pytest.approx(history["loss"], rel=1e-6)
    assert val["values"] == pytest.approx(history["val_loss"], rel=1e-6)
    assert len(body["files"]) == 2 and all("tfevents" in f for f in body["files"])


def test_long_series_are_downsampled_with_their_spike(site):
    body = _get(site, "summaries", max_points=20)
    long = _charts(body)["long"]["."]
    assert long["points"] == LONG and len(long["steps"]) <= 20
    assert long["steps"][0] == 0 and long["steps"][-1] == LONG - 1
    assert 100.0 in long["values"]


def test_reading_stops_at_the_event_cap_and_says_so(site):
    ctx = ServerContext(ui_settings(site["dir"]))
    view = ArtifactView.for_run(ctx, ctx.store.get_run(site["run"]))
    body = tensorboard_scalars(view, "summaries", max_events=8)
    assert body["truncated"] is True and body["events"] == 8
    assert body["note"].startswith("Only the first 8 events are shown")
    full = tensorboard_scalars(view, "summaries")
    assert full["truncated"] is False and full["events"] > 8


def test_reading_stops_at_the_byte_cap(site):
    ctx = ServerContext(ui_settings(site["dir"]))
    view = ArtifactView.for_run(ctx, ctx.store.get_run(site["run"]))
    body = tensorboard_scalars(view, "summaries", max_bytes=2000)
    assert body["truncated"] is True
    shown = sum(len(s["steps"]) for c in body["charts"] for s in c["series"])
    assert 0 < shown < 2 * STEPS + LONG


def test_a_file_that_is_not_an_event_file_is_refused(site):
    body = _get(site, "notes.txt", status=400)
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'notes.txt' is not a TensorBoard event file" in body["message"]
    body = _get(site, "plain", status=400)
    assert body["message"].startswith("No TensorBoard event files under 'plain'")
    assert _get(site, "missing/dir", status=404)["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("path", ["../other-run", "summaries/../../x", "/etc/passwd", "%2e%2e/x"])
def test_paths_outside_the_run_are_refused(site, path):
    body = _get(site, path, status=400)
    assert body["message"].startswith("Invalid path")


def test_dirs_lists_the_runs_log_directories(site):
    body = _get(site, None)
    assert body["available"] is True
    dirs = {d["path"]: d for d in body["dirs"]}
    assert sorted(dirs) == ["summaries", "tensorboard_logs"]
    assert dirs["tensorboard_logs"]["runs"] == ["train", "validation"]
    assert _get(site, None, run=site["empty"])["dirs"] == []


def test_without_tensorboard_the_answer_is_a_note(site, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    body = _get(site, "tensorboard_logs")
    assert body["available"] is False and body["charts"] == []
    assert body["note"].startswith("Install tensorboard to preview TensorBoard event files")


@pytest.mark.browser
def test_chromium_draws_a_chart_per_tag(site):
    from browser_support import launched_browser

    srv = serve_ui(site["dir"])
    errors: list[str] = []
    try:
        with launched_browser() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{srv.uri}/runs/{site['run']}")
            # the run page's section: found by the discovery request, one button per log directory
            section = page.locator("#tensorboard")
            section.locator("button.tb-open[data-path='tensorboard_logs']").click()
            page.wait_for_selector("#tensorboard .tb-chart[data-drawn='1']")
            tags = section.locator(".tb-chart").evaluate_all("els => els.map(e => [e.dataset.tag, +e.dataset.series])")
            assert sorted(tags) == [["epoch_learning_rate", 1], ["epoch_loss", 2],
                                    ["evaluation_loss_vs_iterations", 1]]
            assert section.locator(".tb-chart canvas").count() == 3
            # the artifact browser: one event file selected in the tree
            page.locator(".artifacts .tree a[data-path='summaries']").click()
            page.locator(".artifacts .tree a[data-path*='tfevents']").first.click()
            page.wait_for_selector(".artifacts .preview .tb-chart[data-drawn='1']")
            tags = page.locator(".artifacts .preview .tb-chart").evaluate_all("els => els.map(e => e.dataset.tag)")
            assert sorted(tags) == ["acc", "long", "loss"]
            # the log directory in the tree has its button too (added once the section found it)
            page.locator(".artifacts .tree button.tb-open[data-path='tensorboard_logs']").click()
            page.wait_for_function("""() => [...document.querySelectorAll('.artifacts .preview .tb-chart')]
                .some(e => e.dataset.tag === 'epoch_loss' && e.dataset.drawn === '1')""")
    finally:
        srv.stop()
    assert errors == []
