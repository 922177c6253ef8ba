"""mltrail has each in-scope public name of MLflow 3.17.2, or missing.json says why not; the list stays true.

`tests/api_coverage/mlflow_names.json` is written by `scripts/api_coverage.py` with MLflow installed; this
test needs only mltrail. A name MLflow has must be present in mltrail or listed in missing.json with a
reason; a name listed there must really be missing (so the list shrinks as names arrive).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent / "api_coverage"
NAMES = json.loads((HERE / "mlflow_names.json").read_text())
MISSING: dict[str, dict[str, str]] = json.loads((HERE / "missing.json").read_text())
# looking a name up on the flavors loads the Keras callback, hence TensorFlow
TF_MODULES = {"mlflow.tensorflow", "mlflow.keras"}


def target(module_name: str) -> Any:
    """The mltrail object standing for one of MLflow's modules (or `mlflow.MlflowClient`, the class)."""
    if module_name == "mlflow.MlflowClient":
        return importlib.import_module("mltrail").MlflowClient
    return importlib.import_module("mltrail" + module_name[len("mlflow"):])


def test_names_were_listed_from_mlflow_3_17_2():
    assert NAMES["mlflow_version"] == "3.17.2"
    assert set(NAMES["modules"]) == {"mlflow", "mlflow.MlflowClient", "mlflow.pyfunc", "mlflow.models",
                                     "mlflow.artifacts", "mlflow.tensorflow", "mlflow.keras"}
    assert "start_run" in NAMES["modules"]["mlflow"] and "trace" not in NAMES["modules"]["mlflow"]
    assert set(MISSING) <= set(NAMES["modules"])


@pytest.mark.parametrize("module_name", [
    pytest.param(m, marks=pytest.mark.tf) if m in TF_MODULES else m for m in sorted(NAMES["modules"])])
def test_every_name_is_present_or_explained(module_name):
    obj = target(module_name)
    listed = MISSING.get(module_name, {})
    lacking = [n for n in NAMES["modules"][module_name] if not hasattr(obj, n) and n not in listed]
    assert not lacking, f"mltrail lacks {module_name} names {lacking}: add them, or a reason to missing.json"
    arrived = [n for n in listed if hasattr(obj, n)]
    assert not arrived, f"{arrived} ({module_name}) exist now: remove them from tests/api_coverage/missing.json"
    unknown = [n for n in listed if n not in NAMES["modules"][module_name]]
    assert not unknown, f"missing.json lists {unknown} that MLflow's {module_name} does not have"
    vague = [n for n, reason in listed.items() if len(reason) < 15 or reason.startswith("TODO")]
    assert not vague, f"missing.json gives no real reason for {vague}"
