"""The plots and tables `evaluate` logs show on the run's page in the UI (the real app, TestClient)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from starlette.testclient import TestClient

import mltrail as mlflow
from mltrail.server.app import create_app
from mltrail.server.settings import ServerSettings


def test_evaluation_artifacts_are_listed_previewed_and_served(tmp_path):
    store = tmp_path / "store"
    mlflow.set_tracking_uri(str(store))  # a plain path: SQLite and artifacts/ inside, as the server reads it
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 2))
    y = np.digitize(x[:, 0], [-0.3, 0.3])
    proba = np.stack([(x[:, 0] < -0.3), abs(x[:, 0]) <= 0.3, (x[:, 0] > 0.3)], axis=1) * 0.8 + 0.2 / 3
    result = mlflow.evaluate(lambda inp: proba, pd.DataFrame(x, columns=["u", "v"]).assign(y=y), targets="y",
                             model_type="classifier")
    run_id = result.run_id

    settings = ServerSettings(backend_store_uri=str(store), artifacts_destination=str(store / "artifacts"),
                              default_artifact_root=str(store / "artifacts"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as c:
        page = c.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "accuracy_score" in page.text
        files = c.get("/ui/api/artifacts", params={"run_id": run_id}).json()["files"]
        assert {f["name"] for f in files} == {"calibration_curve_plot.png", "confusion_matrix.png",
                                              "per_class_metrics.csv", "precision_recall_curve_plot.png",
                                              "roc_curve_plot.png"}
        preview = c.get("/ui/api/preview", params={"run_id": run_id, "path": "confusion_matrix.png"}).json()
        assert preview["kind"] == "image"
        png = c.get(preview["url"])
        assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        table = c.get("/ui/api/preview", params={"run_id": run_id, "path": "per_class_metrics.csv"}).json()
        assert table["kind"] == "table"  # the per-class metrics show as a table
        assert table["table"]["columns"][:2] == ["positive_class", "true_negatives"] and table["table"]["rows"]
