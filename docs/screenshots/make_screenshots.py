"""Make the UI screenshots in this directory from a small demo store, with Chromium through Playwright.

usage: python docs/screenshots/make_screenshots.py [--out docs/screenshots]

The store is real: a tiny Keras model trained with `mltrail.tensorflow.autolog()` (params,
per-epoch metrics, model summary, model with signature and input example), and a small
hyperparameter search (a parent run with three autologged trials). Needs TensorFlow and
/usr/bin/chromium; takes about a minute.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def build(directory: str) -> dict[str, str]:
    import numpy as np

    import mltrail
    from tensorflow import keras

    mltrail.set_tracking_uri(directory)
    mltrail.set_experiment("mnist-tiny")
    mltrail.tensorflow.autolog(log_input_examples=True, checkpoint=False, silent=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 16)).astype("float32")
    y = (x[:, :4].sum(axis=1) > 0).astype("int64") + (x[:, 4] > 1).astype("int64")

    def model(units: int, lr: float) -> keras.Model:
        m = keras.Sequential([keras.layers.Input(shape=(16,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(3, activation="softmax")])
        m.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        return m

    with mltrail.start_run(run_name="dense-baseline") as run:
        mltrail.set_tag("team", "vision")
        mltrail.log_text("Baseline on the synthetic 16-feature data set.\n", "notes/README.md")
        model(32, 1e-2).fit(x, y, validation_split=0.25, epochs=25, batch_size=32, verbose=0)
    with mltrail.start_run(run_name="hyperparameter-search") as parent:
        mltrail.log_params({"optimization_framework": "optuna-like", "n_trials": 3})
        for units, lr in ((8, 3e-3), (32, 1e-2), (64, 3e-2)):
            with mltrail.start_run(run_name=f"trial-units{units}", nested=True):
                model(units, lr).fit(x, y, validation_split=0.25, epochs=20, batch_size=32, verbose=0)
    mltrail.tensorflow.autolog(disable=True)
    return {"run": run.info.run_id, "parent": parent.info.run_id,
            "exp": run.info.experiment_id}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    import uvicorn
    from playwright.sync_api import sync_playwright

    from mltrail.server.app import create_app
    from mltrail.server.settings import ServerSettings

    directory = tempfile.mkdtemp(prefix="mltrail-screens-")
    ids = build(directory)
    app = create_app(ServerSettings(backend_store_uri=directory, default_artifact_root=os.path.join(directory, "artifacts")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)

        def charts_drawn() -> None:
            page.wait_for_function("() => window.mltrailCharts && window.mltrailCharts.charts.length && "
                                   "[...document.querySelectorAll('.plot')].every(d => d.data)", timeout=60_000)

        # the runs table with the search folded open
        page.goto(f"{base}/experiments/{ids['exp']}")
        page.locator(f'button.fold[data-run-id="{ids["parent"]}"]').click()
        page.screenshot(path=os.path.join(a.out, "runs.png"))
        # the run page: overview, params, metrics, charts, artifacts with a preview, the model
        page.goto(f"{base}/runs/{ids['run']}")
        for i in range(page.locator(".plot").count()):
            page.locator(f'.plot[data-index="{i}"]').scroll_into_view_if_needed()
        charts_drawn()
        page.locator('.artifacts a[data-path="model_summary.txt"]').first.click()
        page.wait_for_selector(".preview pre")
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=os.path.join(a.out, "run.png"), full_page=True)
        # the comparison of the search's trials
        page.goto(f"{base}/compare?parent={ids['parent']}")
        for i in range(page.locator(".plot").count()):
            page.locator(f'.plot[data-index="{i}"]').scroll_into_view_if_needed()
        page.locator("#parcoords").scroll_into_view_if_needed()
        page.wait_for_function("() => document.getElementById('parcoords').data", timeout=60_000)
        charts_drawn()
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=os.path.join(a.out, "compare.png"), full_page=True)
        browser.close()
    server.should_exit = True
    print(f"screenshots in {a.out}; store in {directory}")


if __name__ == "__main__":
    main()
