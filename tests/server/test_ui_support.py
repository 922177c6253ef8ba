"""Demo data and a served app for the UI tests (imported by test_ui_pages.py and test_ui_browser.py).

`build_demo(directory)` fills a real store through the public Client (no TensorFlow): an
experiment whose name is a <script>, an Optuna-like parent with three trials, a run with long
curves (one spike), artifacts of every previewable kind, a logged model with an MLmodel file and
a signature, a registered model with an alias, and an experiment of many flat runs for paging.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from mltrail.client import Client
from mltrail.entities import LoggedModelOutput, Metric, Param, RunTag

XSS = "<script>window.__pwned=1</script>"
XSS_IMG = '<img src=x onerror="window.__pwned=2">'
MANY_RUNS = 230
CURVE_STEPS = 3000
SPIKE_STEP = 1234
SPIKE_VALUE = 100.0

MLMODEL = """artifact_path: model
flavors:
  python_function:
    loader_module: mltrail.tensorflow
    python_version: 3.11.7
  tensorflow:
    code: null
    keras_version: 3.15.0
    save_format: keras
model_id: {model_id}
run_id: {run_id}
saved_input_example_info:
  artifact_path: input_example.json
  type: ndarray
signature:
  inputs: '[{{"type": "tensor", "tensor-spec": {{"dtype": "float32", "shape": [-1, 4]}}, "name": "features"}}]'
  outputs: '[{{"type": "tensor", "tensor-spec": {{"dtype": "float32", "shape": [-1, 3]}}}}]'
  params: null
description: "{xss}"
utc_time_created: '2025-01-01 00:00:00.000000'
"""


def _png() -> np.ndarray:
    img = np.zeros((24, 32, 3), dtype=np.uint8)
    img[:, :16] = (220, 40, 40)
    img[:, 16:] = (40, 90, 220)
    return img


def build_demo(directory: Path) -> dict[str, Any]:
    """Fill the store at `directory` (a plain path: SQLite + artifacts/ inside) and return the ids."""
    uri = str(directory)
    client = Client(uri)
    ids: dict[str, Any] = {"uri": uri}
    exp = client.create_experiment(f"UI demo {XSS}", tags={"team": XSS_IMG})
    ids["exp"] = exp
    t0 = 1_700_000_000_000

    # an Optuna-like search: a parent and three trials
    parent = client.create_run(exp, start_time=t0, run_name="search", tags={"evil": XSS})
    pid = parent.info.run_id
    client.log_batch(pid, params=[Param("optimizer", "adam"), Param("n_trials", "3")],
                     metrics=[Metric("best_val_accuracy", 0.9, t0 + 5000, 0)])
    trials = []
    for i, (lr, units) in enumerate(((0.1, 32), (0.01, 64), (0.001, 32))):
        name = f"trial-{i}" if i < 2 else f"trial-{i} {XSS_IMG}"  # a name that is markup, in charts too
        run = client.create_run(exp, start_time=t0 + 100 * (i + 1), run_name=name,
                                tags={"mlflow.parentRunId": pid})
        rid = run.info.run_id
        trials.append(rid)
        pts = [Metric("loss", math.exp(-s / (5 + 5 * i)) + 0.01 * i, t0 + 1000 * s, s) for s in range(40)]
        pts += [Metric("val_accuracy", 0.5 + 0.01 * s * (i + 1) / 4, t0 + 1000 * s, s) for s in range(40)]
        client.log_batch(rid, params=[Param("learning_rate", str(lr)), Param("units", str(units)),
                                      Param("optimizer", "adam")], metrics=pts)
        client.set_terminated(rid, end_time=t0 + 50_000)
    client.set_terminated(pid, end_time=t0 + 60_000)
    ids["parent"], ids["trials"] = pid, trials

    # one run with long curves, artifacts of every kind and a logged model
    run = client.create_run(exp, start_time=t0 + 10_000, run_name="curves",
                            tags={"mlflow.source.name": "/home/me/train.py", "mlflow.source.type": "LOCAL",
                                  "mlflow.note.content": f"Notes {XSS}"})
    rid = run.info.run_id
    ids["curves"] = rid
    for start in range(0, CURVE_STEPS, 500):
        batch = []
        for s in range(start, min(CURVE_STEPS, start + 500)):
            loss = SPIKE_VALUE if s == SPIKE_STEP else 1.0 / (1 + s / 100)
            batch += [Metric("loss", loss, t0 + 10 * s, s), Metric("acc", 1 - loss / 2, t0 + 10 * s, s)]
        client.log_batch(rid, metrics=batch)
    client.log_batch(rid, params=[Param("epochs", "30"), Param("batch_size", "64"), Param("note", XSS)],
                     tags=[RunTag("framework", "keras")])
    client.log_text(rid, f"hello {XSS}\n", "notes/readme.txt")
    client.log_dict(rid, {"layers": [4, 8, 3], "html": XSS}, "config.json")
    client.log_dict(rid, {"lr": 0.01, "html": XSS}, "params.yaml")
    client.log_text(rid, "Model: \"sequential\"\n Layer (type)   Output Shape   Param #\n dense (Dense)  (None, 3)      15\n"
                         "Total params: 15\n", "model_summary.txt")
    client.log_text(rid, f"<html><body>{XSS}</body></html>", "report.html")
    client.log_bytes(rid, bytes(range(256)) * 4, "weights.bin")
    client.log_image(rid, _png(), "images/sample.png")

    model = client.create_logged_model(exp, name="model", source_run_id=rid, params={"units": "8"})
    mdir = directory / "_model_src"
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "MLmodel").write_text(MLMODEL.format(model_id=model.model_id, run_id=rid, xss=XSS.replace('"', "'")))
    (mdir / "input_example.json").write_text(json.dumps([[1.0, 2.0, 3.0, 4.0]]))
    (mdir / "requirements.txt").write_text("mltrail\ntensorflow-cpu==2.21.0\n")
    client.log_model_artifacts(model.model_id, str(mdir))
    client.finalize_logged_model(model.model_id, "READY")
    client.log_outputs(rid, [LoggedModelOutput(model.model_id, 0)])
    client.set_terminated(rid, end_time=t0 + 70_000)
    ids["model"] = model.model_id

    store = client.store
    if hasattr(store, "create_registered_model"):
        store.create_registered_model("demo-model", description=f"desc {XSS}")
        store.create_model_version("demo-model", f"models:/{model.model_id}", run_id=rid, model_id=model.model_id)
        store.set_registered_model_alias("demo-model", "champion", "1")
        ids["registered"] = "demo-model"

    many = client.create_experiment("many runs")
    ids["many"] = many
    for i in range(MANY_RUNS):
        r = client.create_run(many, start_time=t0 + i, run_name=f"run-{i:03d}")
        client.log_batch(r.info.run_id, params=[Param("i", str(i)), Param("parity", "even" if i % 2 == 0 else "odd")],
                         metrics=[Metric("score", float(i), t0 + i, 0)])
    return ids


_UNSAFE_PORTS = {5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080}


def ui_settings(directory: Path) -> Any:
    from mltrail.server.settings import ServerSettings

    return ServerSettings(backend_store_uri=str(directory), artifacts_destination=str(directory / "artifacts"),
                          default_artifact_root=str(directory / "artifacts"))


def serve_ui(directory: Path) -> Any:
    """The real tracking server (UI mounted) on a port Chromium accepts, started."""
    from server_fixture import ServerThread

    from mltrail.server.app import create_app

    app = create_app(ui_settings(directory))
    while True:
        srv = ServerThread(app)
        if srv.port not in _UNSAFE_PORTS:
            return srv.start()
        srv.sock.close()


def test_demo_builds(tmp_path):
    ids = build_demo(tmp_path / "demo")
    client = Client(ids["uri"])
    assert len(client.search_runs([ids["exp"]])) == 5
    assert os.path.isfile(tmp_path / "demo" / "mltrail.db")
    assert len(client.get_metric_history(ids["curves"], "loss")) == CURVE_STEPS
