"""MLflow stores built by the real mlflow 3.17.2 (in its own venv), for the import/export tests.

`mlflow_sqlite_store`, `mlflow_file_store` and `mlflow_postgres_store` each give a dict:
`uri` (the tracking URI as MLflow names it; the registry lives in the same store), `artifacts`
(the folder the experiments' artifact locations point into), `root` (the folder holding it all) and
`expected` (what MLflow's own client reads back: see `mlflow_store_maker.py`).

The SQLite and FileStore stores are built once per test run and shared by all its xdist workers:
treat them as READ-ONLY (copy the folder first if a test must write). The PostgreSQL store lives in
this worker's throwaway server, in a database of its own.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlflow_venv import VENV

MAKER = Path(__file__).with_name("mlflow_store_maker.py")


def _make(python: Path, root: Path, tracking_uri: str) -> dict[str, Any]:
    """Run the maker into `root` and return the fixture's dict."""
    root.mkdir(parents=True, exist_ok=True)
    artifacts, out = root / "artifacts", root / "expected.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", MLFLOW_ALLOW_FILE_STORE="true")
    # cwd = root: the Default experiment's artifact location is relative to where MLflow starts.
    proc = subprocess.run([str(python), str(MAKER), "--tracking-uri", tracking_uri, "--artifacts", str(artifacts),
                           "--out", str(out)], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"the MLflow store maker failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return {"uri": tracking_uri, "artifacts": artifacts, "root": root, "expected": json.loads(out.read_text())}


def _shared_folder(factory: pytest.TempPathFactory) -> Path:
    """This test run's own folder, which all its xdist workers share (pytest removes it with the run's)."""
    if os.environ.get("PYTEST_XDIST_TESTRUNUID"):
        return factory.getbasetemp().parent  # a worker's basetemp is <the run's basetemp>/popen-gwN
    return factory.getbasetemp()


def _shared_store(python: Path, factory: pytest.TempPathFactory, kind: str, uri_for: Any) -> dict[str, Any]:
    """Build one store per test run, shared by all its xdist workers: the first builds it under a lock."""
    shared = _shared_folder(factory)
    root = shared / f"mlflow-{kind}"
    with open(shared / f"mlflow-{kind}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "expected.json"  # written last: its presence means the store is whole
        if done.exists():
            return {"uri": uri_for(root), "artifacts": root / "artifacts", "root": root,
                    "expected": json.loads(done.read_text())}
        shutil.rmtree(root, ignore_errors=True)
        return _make(python, root, uri_for(root))


@pytest.fixture(scope="session")
def mlflow_sqlite_store(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An MLflow SQLite store (`sqlite:///.../mlflow.db`, tracking and registry), READ-ONLY."""
    return _shared_store(mlflow_python, tmp_path_factory, "sqlite", lambda root: f"sqlite:///{root}/mlflow.db")


@pytest.fixture(scope="session")
def mlflow_file_store(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An MLflow FileStore (`file:///.../mlruns`, tracking and registry), READ-ONLY."""
    return _shared_store(mlflow_python, tmp_path_factory, "file", lambda root: (root / "mlruns").as_uri())


def _ensure_psycopg(python: Path) -> None:
    """The venv's SQLAlchemy 2.1 reaches `postgresql://` through psycopg 3, which it may lack: install it."""
    if subprocess.run([str(python), "-c", "import psycopg"], capture_output=True).returncode == 0:
        return
    with open(VENV.parent / ".mlflow-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "psycopg[binary]"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"psycopg could not be installed in the MLflow venv: {proc.stderr[-500:]}")


@pytest.fixture(scope="session")
def mlflow_postgres_store(mlflow_python: Path, pg_server: Any, tmp_path_factory: pytest.TempPathFactory
                          ) -> dict[str, Any]:
    """An MLflow store in a fresh PostgreSQL database (`postgresql://...`, as MLflow names it).

    Use with `@pytest.mark.postgres`. The database belongs to this worker; tests still must not write.
    """
    _ensure_psycopg(mlflow_python)
    sqlalchemy_uri = pg_server.create_database()
    uri = sqlalchemy_uri.replace("postgresql+psycopg://", "postgresql://", 1)
    return _make(mlflow_python, tmp_path_factory.mktemp("mlflow-postgres"), uri)
