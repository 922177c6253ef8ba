"""Which of MLflow 3.17.2's public names mltrail has, for the modules a Keras user's MLflow code touches.

Two modes:

* run with the MLflow venv's python (no flag): list MLflow's public names for each module below, drop
  the families out of scope (the rules in EXCLUDED_SUBSTRINGS / EXCLUDED_NAMES, one reason each), and
  write `tests/api_coverage/mlflow_names.json` as `{module: [names...]}`;
* run with our python (`--check`): read that JSON and report, per module, which names mltrail has
  (an attribute of `mltrail`, `mltrail.MlflowClient`, `mltrail.pyfunc`, ...). `--write-missing` also
  rewrites `tests/api_coverage/missing.json`, keeping the reasons already written there.

`tests/test_api_coverage.py` checks the committed JSON against mltrail without MLflow installed.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NAMES_JSON = ROOT / "tests" / "api_coverage" / "mlflow_names.json"
MISSING_JSON = ROOT / "tests" / "api_coverage" / "missing.json"

# The modules compared; "mlflow.MlflowClient" means the public methods of that class.
MODULES = ["mlflow", "mlflow.MlflowClient", "mlflow.pyfunc", "mlflow.models", "mlflow.artifacts",
           "mlflow.tensorflow", "mlflow.keras"]

# A name is out of scope when it contains one of these (case-insensitive): the GenAI, tracing, prompt,
# Databricks, Spark, deployment and workspace families mltrail does not cover.
EXCLUDED_SUBSTRINGS = (
    "trace", "span", "prompt", "genai", "judge", "scorer", "agent", "chat", "databricks", "dbconnect",
    "spark", "gateway", "deployment", "webhook", "assessment", "feedback", "expectation", "llm", "openai",
    "langchain", "mcp", "workspace", "session", "issue", "retriever", "responses", "nfs",
)

# Names out of scope that the substrings do not catch, each with its reason.
EXCLUDED_NAMES: dict[str, str] = {
    "mlflow.context": "a tracing context manager (mlflow.tracing.context)",
    "mlflow.login": "Databricks workspace login (mlflow.utils.credentials)",
    "mlflow.import_checkpoints": "imports checkpoints from Databricks Unity Catalog volumes only",
    "mlflow.MlflowClient.create_dataset": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.MlflowClient.get_dataset": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.MlflowClient.delete_dataset": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.MlflowClient.delete_dataset_tag": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.MlflowClient.set_dataset_tags": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.MlflowClient.search_datasets": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.MlflowClient.add_dataset_to_experiments": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.MlflowClient.remove_dataset_from_experiments": "GenAI evaluation datasets (mlflow.genai.datasets)",
    "mlflow.pyfunc.PyFuncLLMOutputChunk": "GenAI streaming output type",
    "mlflow.pyfunc.PyFuncLLMSingleInput": "GenAI input type",
    "mlflow.pyfunc.ChatCompletionResponse": "GenAI chat types",
    "mlflow.models.ModelConfig": "GenAI development config for models from code with YAML configs",
    "mlflow.models.Resource": "Databricks resources a GenAI model depends on",
    "mlflow.models.ResourceType": "Databricks resources a GenAI model depends on",
    "mlflow.tensorflow.download_checkpoint_artifact": "MLflow's internal checkpoint helper",
}


def is_excluded(module: str, name: str) -> bool:
    lowered = name.lower()
    return any(s in lowered for s in EXCLUDED_SUBSTRINGS) or f"{module}.{name}" in EXCLUDED_NAMES


def _defined_in_source(module: types.ModuleType) -> set[str]:
    """Top-level names a module's own source defines (functions, classes, assignments)."""
    path = getattr(module, "__file__", None)
    if not path:
        return set()
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def public_names(module_name: str) -> list[str]:
    """MLflow's public names for one entry of MODULES (needs MLflow importable)."""
    if module_name == "mlflow.MlflowClient":
        from mlflow import MlflowClient

        names = {n for n, _ in inspect.getmembers(MlflowClient) if not n.startswith("_")}
    else:
        module = importlib.import_module(module_name)
        declared = getattr(module, "__all__", None)
        if declared:
            names = set(declared)
        else:
            # no __all__: what the module defines, or imports from its own package (mlflow.pyfunc.model)
            own = _defined_in_source(module)
            names = set()
            for n in dir(module):
                obj = getattr(module, n)
                if n.startswith("_") or isinstance(obj, types.ModuleType):
                    continue
                origin = getattr(obj, "__module__", None) if callable(obj) else None
                if n in own or (isinstance(origin, str) and origin.startswith(module_name + ".")):
                    names.add(n)
    return sorted(n for n in names if not n.startswith("_") and not is_excluded(module_name, n))


def write_names() -> None:
    import mlflow

    out = {m: public_names(m) for m in MODULES}
    NAMES_JSON.parent.mkdir(parents=True, exist_ok=True)
    NAMES_JSON.write_text(json.dumps({"mlflow_version": mlflow.__version__, "modules": out}, indent=1) + "\n")
    total = sum(len(v) for v in out.values())
    print(f"wrote {NAMES_JSON.relative_to(ROOT)}: {total} names from MLflow {mlflow.__version__}")


def mltrail_target(module_name: str) -> Any:
    """The mltrail object that stands for an MLflow module of MODULES."""
    sys.path.insert(0, str(ROOT / "src"))
    if module_name == "mlflow.MlflowClient":
        return importlib.import_module("mltrail").MlflowClient
    return importlib.import_module("mltrail" + module_name[len("mlflow"):])


def coverage() -> dict[str, dict[str, list[str]]]:
    """Per module: the names mltrail has ("present") and lacks ("missing")."""
    listed = json.loads(NAMES_JSON.read_text())["modules"]
    result: dict[str, dict[str, list[str]]] = {}
    for module_name, names in listed.items():
        target = mltrail_target(module_name)
        present = [n for n in names if hasattr(target, n)]
        result[module_name] = {"present": present, "missing": [n for n in names if n not in present]}
    return result


def check(write_missing: bool) -> int:
    result = coverage()
    for module_name, r in result.items():
        total = len(r["present"]) + len(r["missing"])
        print(f"{module_name:22} {len(r['present']):3}/{total:<3} missing: {', '.join(r['missing']) or '-'}")
    if write_missing:
        old = json.loads(MISSING_JSON.read_text()) if MISSING_JSON.exists() else {}
        new = {m: {n: old.get(m, {}).get(n, "TODO: reason") for n in r["missing"]} for m, r in result.items()}
        MISSING_JSON.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
        print(f"wrote {MISSING_JSON.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report mltrail's coverage (our python)")
    parser.add_argument("--write-missing", action="store_true", help="with --check: rewrite missing.json")
    args = parser.parse_args()
    if args.check:
        return check(args.write_missing)
    write_names()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
