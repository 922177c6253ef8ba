"""The acceptance scripts against our server, through the real `mlflow` 3.17.2 client and through ours.

MLflow lives in its own virtual environment (`mlflow_venv.py`, the `mlflow_python` fixture). Each
script runs as its own process with the tracking URI pointing at one server on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from server_fixture import ServerThread, close_stores, server_settings

from mltrail.server.app import create_app
from seed_scripts import seed_script

pytestmark = [pytest.mark.slow, pytest.mark.tf]

SEEDS = ["seed_autolog", "seed_callback", "seed_log_model", "seed_nested", "seed_optuna", "seed_savedmodel"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow-client-server")
    srv = ServerThread(create_app(server_settings(tmp))).start()
    yield srv.uri
    close_stores(srv.uri)
    srv.stop()


def _run(python: str, script: Path, env: dict[str, str]) -> None:
    proc = subprocess.run([python, str(script)], cwd=script.parent, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, (f"{script.name} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    assert f"{script.stem}: ok" in proc.stdout


@pytest.mark.parametrize("name", SEEDS)
def test_seed_with_mlflow_client(name, mlflow_python, server, tmp_path):
    script = seed_script(name, tmp_path / "mlflow", for_mlflow=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI=server, TF_CPP_MIN_LOG_LEVEL="2")
    _run(str(mlflow_python), script, env)


@pytest.mark.parametrize("name", SEEDS)
def test_seed_with_our_client(name, server, tmp_path):
    script = seed_script(name, tmp_path / "ours", for_mlflow=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_TRACKING", "MLFLOW_"))}
    env.update(MLTRAIL_TRACKING_URI=server, MLTRAIL_JOURNAL_DIR=str(tmp_path / "journal"), TF_CPP_MIN_LOG_LEVEL="2")
    _run(sys.executable, script, env)
