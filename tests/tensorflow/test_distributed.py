"""Distributed Keras training logs once: the chief found from TF_CONFIG or a launcher's rank, MirroredStrategy
logging as a plain fit, and real multi-process jobs (TF_CONFIG workers, RANK/WORLD_SIZE processes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from autolog_models import artifact_paths, data, dense_model, models_of, steps

import mltrail
from mltrail.tensorflow import _distributed
from mltrail.tensorflow._async_writer import AutologWarning
from mltrail.tensorflow.autolog import autolog
from mltrail.tensorflow.callback import MlflowCallback, MlflowModelCheckpointCallback

pytestmark = pytest.mark.tf

SCRIPT = Path(__file__).with_name("distributed_script.py")
RANK_VARIABLES = ("TF_CONFIG", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                  "OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "HOROVOD_RANK",
                  "HOROVOD_SIZE", _distributed.MLTRAIL_DISTRIBUTED_LOG_ALL.name)


@pytest.fixture(autouse=True)
def _single_process(monkeypatch, tracking):
    """No rank leaking in from the environment the tests run in; autologging off afterwards."""
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    autolog(disable=True)


def tf_config(task_type: str, index: int, cluster: dict[str, int]) -> str:
    return json.dumps({"cluster": {t: [f"127.0.0.1:{2000 + i}" for i in range(n)] for t, n in cluster.items()},
                       "task": {"type": task_type, "index": index}})


# ---------------------------------------------------------------------- the rank detector
@pytest.mark.parametrize(("env", "chief", "source"), [
    ({}, True, ""),
    ({"TF_CONFIG": tf_config("worker", 0, {"worker": 2})}, True, "TF_CONFIG"),
    ({"TF_CONFIG": tf_config("worker", 1, {"worker": 2})}, False, "TF_CONFIG"),
    ({"TF_CONFIG": tf_config("chief", 0, {"chief": 1, "worker": 2})}, True, "TF_CONFIG"),
    ({"TF_CONFIG": tf_config("worker", 0, {"chief": 1, "worker": 2})}, False, "TF_CONFIG"),
    ({"TF_CONFIG": tf_config("evaluator", 0, {"worker": 2, "evaluator": 1})}, False, "TF_CONFIG"),
    ({"TF_CONFIG": tf_config("ps", 0, {"chief": 1, "worker": 1, "ps": 1})}, False, "TF_CONFIG"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}})}, True, ""),  # no task: local
    ({"TF_CONFIG": tf_config("worker", 1, {"worker": 2}), "RANK": "0"}, False, "TF_CONFIG"),
    ({"RANK": "0", "WORLD_SIZE": "4"}, True, "RANK"),
    ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}, False, "RANK"),
    ({"RANK": "0", "LOCAL_RANK": "1"}, True, "RANK"),
    ({"LOCAL_RANK": "1"}, False, "LOCAL_RANK"),
    ({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4"}, False, "OMPI_COMM_WORLD_RANK"),
    ({"PMI_RANK": "1"}, False, "PMI_RANK"),
    ({"HOROVOD_RANK": "0", "HOROVOD_SIZE": "2"}, True, "HOROVOD_RANK"),
    ({"HOROVOD_RANK": "1", "HOROVOD_SIZE": "2"}, False, "HOROVOD_RANK"),
    ({"SLURM_PROCID": "1", "SLURM_NTASKS": "4"}, False, "SLURM_PROCID"),
    ({"SLURM_PROCID": "1", "SLURM_NTASKS": "1"}, True, ""),  # one Slurm task is one process
    ({"SLURM_PROCID": "1"}, True, ""),
])
def test_the_chief_is_found_from_tf_config_or_a_launchers_rank(env, chief, source):
    role = _distributed.process_role(env)
    assert (role.is_chief, role.source) == (chief, source)
    assert _distributed.logs_here(env) is chief
    assert _distributed.logs_here({**env, "MLTRAIL_DISTRIBUTED_LOG_ALL": "true"}) is True
    assert _distributed.logs_here({**env, "MLTRAIL_DISTRIBUTED_LOG_ALL": "0"}) is chief


def test_the_role_says_what_the_variables_said():
    assert _distributed.process_role({"RANK": "3", "WORLD_SIZE": "4"}).description == "rank 3 of 4"
    role = _distributed.process_role({"TF_CONFIG": tf_config("worker", 1, {"chief": 1, "worker": 2})})
    assert role.description == "worker 1 of 3 training tasks"


@pytest.mark.parametrize(("env", "words"), [
    ({"TF_CONFIG": "{not json"}, ["TF_CONFIG", "not JSON", "{not json", '"task"']),
    ({"TF_CONFIG": "[1, 2]"}, ["TF_CONFIG", "[1, 2]"]),
    ({"TF_CONFIG": json.dumps({"cluster": {}, "task": {"type": "worker", "index": "x"}})},
     ["TF_CONFIG task index", "'x'"]),
    ({"RANK": "one"}, ["RANK", "'one'", "whole number"]),
    ({"RANK": "-1"}, ["RANK", "'-1'"]),
    ({"RANK": "1", "WORLD_SIZE": "two"}, ["WORLD_SIZE", "'two'"]),
    ({"MLTRAIL_DISTRIBUTED_LOG_ALL": "maybe"}, ["MLTRAIL_DISTRIBUTED_LOG_ALL", "'maybe'", "'true'"]),
])
def test_malformed_variables_are_named_with_their_value(env, words):
    with pytest.raises(ValueError) as info:
        _distributed.logs_here(env)
    for word in words:
        assert word in str(info.value)


# ---------------------------------------------------------------------- one process, as a non-chief
@pytest.fixture
def second_rank(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")


def test_a_non_chief_autologged_fit_creates_no_run(second_rank, tmp_path):
    x, y = data()
    autolog()
    history = dense_model().fit(x, y, epochs=2, validation_split=0.25, verbose=0)
    assert len(history.epoch) == 2 and mltrail.active_run() is None
    assert not (tmp_path / "mltrail.db").exists()  # the tracking store was never opened
    assert mltrail.search_runs(output_format="list") == []


def test_inside_the_users_own_run_a_non_chief_still_autologs_nothing(second_rank):
    x, y = data()
    autolog()
    with mltrail.start_run() as run:  # the user's choice: the run is theirs, autolog stays out of it
        dense_model().fit(x, y, epochs=2, verbose=0)
    logged = mltrail.get_run(run.info.run_id)
    assert logged.data.params == {} and logged.data.metrics == {}
    assert artifact_paths(run.info.run_id) == [] and models_of(run.info.run_id) == []


def test_non_chief_callbacks_log_nothing_and_start_no_run(second_rank):
    x, y = data()
    dense_model().fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                      callbacks=[MlflowCallback(log_every_n_steps=1), MlflowModelCheckpointCallback()])
    assert mltrail.active_run() is None and mltrail.search_runs(output_format="list") == []
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=2, validation_split=0.25, verbose=0,
                          callbacks=[MlflowCallback(run), MlflowModelCheckpointCallback(run_id=run.info.run_id)])
    logged = mltrail.get_run(run.info.run_id)
    assert logged.data.params == {} and logged.data.metrics == {} and artifact_paths(run.info.run_id) == []


def test_log_all_brings_back_logging_from_every_process(second_rank, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DISTRIBUTED_LOG_ALL", "true")
    x, y = data()
    autolog()
    dense_model().fit(x, y, epochs=2, verbose=0)
    autolog(disable=True)
    with mltrail.start_run() as run:
        dense_model().fit(x, y, epochs=2, verbose=0, callbacks=[MlflowCallback()])
    runs = mltrail.search_runs(output_format="list")
    assert len(runs) == 2
    assert all(steps(r.info.run_id, "loss") == [0, 1] for r in runs)
    assert run.info.run_id in {r.info.run_id for r in runs}


def test_a_malformed_rank_warns_once_and_logs_as_every_process_would(monkeypatch):
    monkeypatch.setenv("RANK", "first")
    x, y = data()
    autolog()
    with pytest.warns(AutologWarning, match="RANK.*'first'"):
        dense_model().fit(x, y, epochs=1, verbose=0)
    (run,) = mltrail.search_runs(output_format="list")
    assert steps(run.info.run_id, "loss") == [0]


# ---------------------------------------------------------------------- real strategies, real processes
def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if k not in RANK_VARIABLES}
    full_env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(SCRIPT.parent), **(env or {})})
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(processes: list[subprocess.Popen], timeout: float = 300) -> list[str]:
    outputs = []
    try:
        for p in processes:
            out, _ = p.communicate(timeout=timeout)
            assert p.returncode == 0, out[-4000:]
            outputs.append(out)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    return outputs


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def summaries(db: Path) -> list[dict]:
    from distributed_script import summary

    mltrail.set_tracking_uri(f"sqlite:///{db}")
    runs = mltrail.search_runs(output_format="list", order_by=["attributes.start_time ASC"])
    return [{**summary(r.info.run_id), "autologging": r.data.tags.get("mlflow.autologging")} for r in runs]


@pytest.mark.slow
def test_mirrored_strategy_logs_as_a_plain_fit(tmp_path):
    out = tmp_path / "out.json"
    finish([run_script("mirrored", str(tmp_path / "m.db"), str(out))])
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    for logger in ("autolog", "callback"):
        plain, mirrored = result[f"plain/{logger}"], result[f"mirrored/{logger}"]
        assert mirrored == plain  # the same params (nothing about the strategy), metrics, steps, artifacts
    autologged = result["mirrored/autolog"]
    assert autologged["models"] == 1 and autologged["same_predictions"] and autologged["prediction_shape"] == [3, 2]
    assert autologged["metric_steps"]["loss"] == [0, 1] and autologged["metric_steps"]["batch/loss"] == [1, 2, 3, 4, 5, 6]
    assert "checkpoints/latest_checkpoint.keras" in autologged["artifacts"]
    assert autologged["params"]["opt_name"] == "adam" and autologged["params"]["batch_size"] == "8"


@pytest.mark.slow
def test_tf_config_workers_log_once_from_the_chief(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    dbs = [tmp_path / f"worker{i}" / "mltrail.db" for i in range(2)]
    for db in dbs:
        db.parent.mkdir()
    workers = [run_script("worker", str(db), "mwms",
                          env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
               for i, db in enumerate(dbs)]
    chief_out, worker_out = finish(workers)
    assert "worker done" in chief_out and "worker done" in worker_out
    assert "worker 1 of 2 training tasks (TF_CONFIG): only the chief logs" in worker_out
    # the other worker never reached its tracking store: not even the database file was made
    assert list(dbs[1].parent.iterdir()) == []
    autologged, by_callback = summaries(dbs[0])
    assert autologged["autologging"] == "tensorflow" and autologged["models"] == 1
    assert autologged["metric_steps"] == {"loss": [0, 1], "val_loss": [0, 1], "validation_loss": [0, 1]}
    assert autologged["params"]["epochs"] == "2" and autologged["params"]["opt_name"].startswith("adam")
    assert "checkpoints/latest_checkpoint.keras" in autologged["artifacts"]
    assert by_callback["autologging"] is None and by_callback["metric_steps"]["loss"] == [0]


@pytest.mark.slow
def test_launcher_ranks_log_once_from_rank_zero(tmp_path):
    db = tmp_path / "shared.db"
    mltrail.set_tracking_uri(f"sqlite:///{db}")
    mltrail.search_runs()  # create the schema before two processes race to
    processes = [run_script("worker", str(db), env={"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)})
                 for rank in range(2)]
    rank0_out, rank1_out = finish(processes)
    assert "rank 1 of 2 (RANK): only the chief logs" in rank1_out
    autologged, by_callback = summaries(db)  # two fits in each of two processes: two runs, both rank 0's
    assert autologged["autologging"] == "tensorflow" and autologged["models"] == 1
    assert autologged["metric_steps"]["loss"] == [0, 1] and autologged["params"]["train_samples"] == "24"
    assert by_callback["autologging"] is None and by_callback["metric_steps"]["loss"] == [0]
