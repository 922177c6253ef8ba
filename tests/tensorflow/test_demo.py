"""`mltrail demo`: trains with autologging into the embedded store and says what was logged."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main

pytestmark = pytest.mark.tf


def test_demo_trains_logs_and_reports(tmp_path):
    import keras

    fit_before = keras.Model.fit
    result = CliRunner().invoke(main, ["demo", "--epochs", "2", "--experiment", "demo-test"])
    assert result.exit_code == 0, result.output
    out = result.output
    run_id = re.search(r"Run ([0-9a-f]{32})", out).group(1)
    for expected in ("batch_size = 8", "epochs = 2", "opt_name = adam", "total_params = 2810", "val_loss  0: ",
                     "model_summary.txt", "tensorboard_logs/", "Total params: 2,810", "Logged model: models:/m-",
                     "signature inputs:", "mltrail ui", f"mltrail runs describe --run-id {run_id}",
                     "mltrail.tensorflow.load_model('models:/m-"):
        assert expected in out, expected
    # the embedded default store, in the working directory
    assert (tmp_path / "mltrail" / "mltrail.db").exists()
    run = mltrail.get_run(run_id)
    assert run.info.status == "FINISHED" and len(mltrail.MlflowClient().get_metric_history(run_id, "loss")) == 2
    assert mltrail.get_experiment(run.info.experiment_id).name == "demo-test"
    assert keras.Model.fit is fit_before  # the demo turns autologging off again


def test_demo_uses_the_tracking_uri_in_force(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/elsewhere.db"
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", uri)
    result = CliRunner().invoke(main, ["demo", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert f"mltrail ui --backend-store-uri {uri}" in result.output
    assert (tmp_path / "elsewhere.db").exists() and not (tmp_path / "mltrail").exists()
