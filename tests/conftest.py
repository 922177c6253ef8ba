"""Shared fixtures: every test runs in its own directory with no tracking URI or active run
leaking in from the environment or from another test."""

from __future__ import annotations

import pytest

import mltrail
from mlflow_venv import ensure_mlflow_python
from mltrail import fluent, tracking_uri
from pg_server import pg_server, postgres_uri  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def mlflow_python():
    """The python of the real mlflow 3.17.2's venv (built on first use; see `mlflow_venv.py`)."""
    return ensure_mlflow_python()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for var in ("MLTRAIL_TRACKING_URI", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME",
                "MLFLOW_RUN_ID", "MLTRAIL_EXPERIMENT_ID", "MLTRAIL_EXPERIMENT_NAME",
                # a distributed job's rank: tests run as a single process (autolog logs only from a chief)
                "TF_CONFIG", "RANK", "LOCAL_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", "HOROVOD_RANK",
                "MLTRAIL_DISTRIBUTED_LOG_ALL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLTRAIL_JOURNAL_DIR", str(tmp_path / "journal"))
    monkeypatch.chdir(tmp_path)
    yield
    while mltrail.active_run() is not None:
        try:
            mltrail.end_run()
        except Exception:  # the store may be gone already; the stack must still empty
            fluent._stack().pop()
    tracking_uri.set_tracking_uri(None)
    mltrail.set_registry_uri(None)
    fluent._active_experiment_id = None
    fluent._last_active_run_id = None


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mltrail.db"


@pytest.fixture
def tracking(sqlite_uri) -> str:
    """The fluent API pointed at a fresh SQLite store."""
    mltrail.set_tracking_uri(sqlite_uri)
    return sqlite_uri

