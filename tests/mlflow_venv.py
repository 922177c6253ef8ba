"""The real mlflow 3.17.2 for the tests, in a virtual environment of its own.

MLflow is never importable from the tests' own process: tests run scripts with this venv's python
(`mlflow_python`, a session fixture in `tests/conftest.py`). The venv is built once, on first use,
and cached under `~/.cache/mltrail-test/mlflow-venv` (`MLTRAIL_MLFLOW_VENV` overrides); a lock keeps
parallel workers from building it twice. Where it cannot be built (no package index), the tests
that need it skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

VENV = Path(os.environ.get("MLTRAIL_MLFLOW_VENV", "~/.cache/mltrail-test/mlflow-venv")).expanduser()
MLFLOW_PYTHON = VENV / "bin" / "python"
# mlflow[auth]: mlflow.server.auth.client (AuthServiceClient) imports Flask-WTF
REQUIREMENTS = ["mlflow[auth]==3.17.2", "tensorflow-cpu==2.21.0", "tensorboard==2.21.0", "optuna"]


def _ready() -> bool:
    if not MLFLOW_PYTHON.exists():
        return False
    check = "import mlflow, optuna, tensorflow, flask_wtf; assert mlflow.__version__ == '3.17.2', mlflow.__version__"
    return subprocess.run([str(MLFLOW_PYTHON), "-c", check], capture_output=True, timeout=600).returncode == 0


def ensure_mlflow_python() -> Path:
    """The venv's python, building the venv first if it is missing or broken; skips the test if it cannot."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".mlflow-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _ready():
            try:
                shutil.rmtree(VENV, ignore_errors=True)
                subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=600)
                subprocess.run([str(MLFLOW_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                *REQUIREMENTS], check=True, timeout=3600)
            except (subprocess.SubprocessError, OSError) as exc:
                pytest.skip(f"the MLflow venv at {VENV} could not be built: {exc}")
            if not _ready():
                pytest.skip(f"the MLflow venv at {VENV} was built but does not import mlflow/optuna/tensorflow")
    return MLFLOW_PYTHON
