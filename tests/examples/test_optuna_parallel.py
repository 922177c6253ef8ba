"""examples/optuna_parallel.py: 3 worker processes share one Optuna study in PostgreSQL and log every trial as
a nested run under one parent run through a real tracking server on the same PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.tf, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "server"))

from server_fixture import ServerThread, close_stores, server_settings  # noqa: E402

WORKERS = 3
TRIALS = 12


@pytest.fixture
def tracking_server(pg_server, tmp_path):
    """A tracking server (uvicorn thread) on a PostgreSQL database of its own."""
    from mltrail.server.app import create_app

    db = pg_server.create_database()
    srv = ServerThread(create_app(server_settings(tmp_path, backend_store_uri=db))).start()
    yield srv.uri
    close_stores(srv.uri)
    srv.stop()


def test_parallel_study_logs_each_trial_once_under_one_parent(pg_server, tracking_server, tmp_path):
    import optuna

    from mltrail.client import Client

    optuna_db = pg_server.create_database()  # Optuna's tables beside, not inside, the tracking database
    study_name = "keras-parallel-test"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("MLFLOW_RUN_ID", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "optuna_parallel.py"), "--workers", str(WORKERS), "--trials",
         str(TRIALS), "--storage", optuna_db, "--tracking-uri", tracking_server, "--experiment-name", "tuning",
         "--study-name", study_name, "--samples", "64", "--epochs", "1", "--final-epochs", "1", "--no-log-models"],
        capture_output=True, text=True, timeout=540, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-6000:]
    assert f"study {study_name}: {TRIALS} trials" in done.stdout

    study = optuna.load_study(study_name=study_name, storage=optuna_db)
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(TRIALS))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)

    client = Client(tracking_server)
    experiment = client.get_experiment_by_name("tuning")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1 == TRIALS  # nothing outside the parent, nothing lost

    by_trial: dict[int, list] = {}
    for run in children:
        by_trial.setdefault(int(run.data.tags["optuna.trial_number"]), []).append(run)
    assert sorted(by_trial) == list(range(TRIALS)) and all(len(v) == 1 for v in by_trial.values())
    for trial in trials:
        (run,) = by_trial[trial.number]
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.info.status == "FINISHED" and run.info.run_name == f"trial-{trial.number}"
        assert run.data.params == {k: str(v) for k, v in trial.params.items()}
        assert run.data.metrics["val_accuracy"] == pytest.approx(trial.value)
        assert run.data.tags["optuna.study_name"] == study_name

    # the parent: the study's settings, then its best parameters and value, and the final model
    assert parent.info.status == "FINISHED" and parent.info.run_name == "hyperparameter_optimization"
    best = study.best_trial
    assert parent.data.params["n_trials"] == str(TRIALS) and parent.data.params["n_workers"] == str(WORKERS)
    assert {k: v for k, v in parent.data.params.items() if k.startswith("best_")} == {
        f"best_{k}": str(v) for k, v in best.params.items()}
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(best.value)
    assert parent.data.tags["best_trial_run_id"] == best.user_attrs["mlflow_run_id"]
    logged = client.search_logged_models([experiment.experiment_id])
    assert [(m.name, m.source_run_id) for m in logged] == [("best_model", parent.info.run_id)]
