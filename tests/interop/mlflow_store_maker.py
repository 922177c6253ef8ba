"""Build an MLflow tracking store with the real mlflow 3.17.2, and write what its client reads back.

Run with the MLflow venv's python (never imported by mltrail's tests, which run it as a script):

    python mlflow_store_maker.py --tracking-uri sqlite:///mlflow.db --registry-uri sqlite:///mlflow.db \
        --artifacts DIR --out expected.json

The store holds: three experiments (one deleted, tagged), nested runs, a run with a long metric
history (3 metrics x 2,000 steps with NaN and +-inf), params, tags, a deleted run, a dataset input,
a model input (the parent run used the logged model), a tiny Keras model logged with
`mlflow.tensorflow.log_model` with params/tags/metrics, a registered model with two versions, an
alias and tags, and a few artifacts. `expected.json` is plain JSON (NaN/Infinity as Python's json writes
them) of what `MlflowClient` reads back, for field-by-field comparisons.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
# MLflow 3.17 refuses a FileStore unless asked: it is in maintenance mode, but still what many teams have.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

HISTORY_STEPS = 2000
HISTORY_KEYS = ("loss", "val_loss", "lr")


def _history_value(key: str, step: int) -> float:
    """A deterministic metric value, with NaN and +-inf at fixed steps."""
    if step == 7:
        return math.nan
    if step == 11 and key == "loss":
        return math.inf
    if step == 13 and key == "val_loss":
        return -math.inf
    return round(1.0 / (step + 1) + HISTORY_KEYS.index(key) * 0.5, 9)


def build(tracking_uri: str, registry_uri: str, artifacts: Path) -> None:
    import mlflow
    import numpy as np
    from mlflow.entities import LoggedModelInput, Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    client = MlflowClient()
    artifacts.mkdir(parents=True, exist_ok=True)

    # Experiments: two live (with tags and explicit artifact locations), one deleted.
    exp_a = client.create_experiment("interop-a", artifact_location=(artifacts / "exp-a").as_uri(),
                                     tags={"team": "vision", "priority": "high"})
    exp_b = client.create_experiment("interop-b", artifact_location=(artifacts / "exp-b").as_uri())
    exp_gone = client.create_experiment("interop-deleted", artifact_location=(artifacts / "exp-gone").as_uri(),
                                        tags={"obsolete": "yes"})

    # Nested runs: a parent with two children.
    with mlflow.start_run(experiment_id=exp_a, run_name="parent") as parent:
        mlflow.log_params({"optimizer": "adam", "batch_size": "32"})
        mlflow.set_tags({"stage": "sweep", "owner": "interop"})
        mlflow.log_metric("best_acc", 0.91, step=0)
        for i in range(2):
            with mlflow.start_run(experiment_id=exp_a, run_name=f"child-{i}", nested=True):
                mlflow.log_param("lr", str(0.1 / (i + 1)))
                mlflow.log_metric("acc", 0.8 + i * 0.05, step=1)
                mlflow.log_metric("acc", 0.85 + i * 0.05, step=2)
        # Artifacts: a text file and a small directory.
        mlflow.log_text("hello from mlflow\n", "notes/readme.txt")
        folder = artifacts / "_staging" / "plots"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "a.csv").write_text("x,y\n1,2\n")
        (folder / "b.json").write_text('{"k": 1}\n')
        mlflow.log_artifacts(str(folder), "plots")

    # The long history, logged in batches (MLflow's limit is 1,000 metrics per batch).
    with mlflow.start_run(experiment_id=exp_b, run_name="long-history") as run:
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param("epochs", str(HISTORY_STEPS))],
                         tags=[RunTag("kind", "history")])
        points = [Metric(key, _history_value(key, step), 1_700_000_000_000 + step, step)
                  for key in HISTORY_KEYS for step in range(HISTORY_STEPS)]
        for start in range(0, len(points), 1000):
            client.log_batch(run_id, metrics=points[start:start + 1000])

        # A dataset input.
        features = np.arange(12, dtype="float32").reshape(6, 2)
        dataset = mlflow.data.from_numpy(features, targets=np.arange(6, dtype="float32"), name="tiny-xy")
        mlflow.log_input(dataset, context="training", tags={"split": "train"})

        # A tiny Keras model, logged with params/tags, then given metrics, then registered twice.
        import keras

        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="relu"),
                                  keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        info = mlflow.tensorflow.log_model(model, name="model", input_example=features[:2],
                                      params={"units": "3", "layers": "2"}, tags={"framework": "keras"})
        mlflow.log_metric("model_mse", 0.125, step=1, model_id=info.model_id)
    # The parent run used the model (a model input: MLflow's RUN_INPUT -> MODEL_INPUT row).
    client.log_inputs(parent.info.run_id, models=[LoggedModelInput(info.model_id)])

    # A deleted run, and a run in the experiment that is then deleted.
    with mlflow.start_run(experiment_id=exp_b, run_name="to-delete") as doomed:
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 2.0)
    client.delete_run(doomed.info.run_id)
    with mlflow.start_run(experiment_id=exp_gone, run_name="in-deleted-exp"):
        mlflow.log_metric("m", 3.0)
    client.delete_experiment(exp_gone)

    # The registry: one model, two versions, an alias, tags on both.
    name = "interop-model"
    client.create_registered_model(name, tags={"domain": "tabular"}, description="two dense layers")
    v1 = client.create_model_version(name, info.model_uri, run_id=run_id, tags={"candidate": "1"})
    v2 = client.create_model_version(name, info.model_uri, run_id=run_id, description="second")
    client.set_model_version_tag(name, v2.version, "validated", "true")
    client.set_registered_model_alias(name, "champion", v2.version)
    client.set_registered_model_tag(name, "owner", "interop")
    del v1


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _metric(m: Any) -> dict[str, Any]:
    out = {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
    if getattr(m, "model_id", None):
        out.update(model_id=m.model_id, dataset_name=m.dataset_name, dataset_digest=m.dataset_digest,
                   run_id=m.run_id)
    return out


def read_back(tracking_uri: str, registry_uri: str) -> dict[str, Any]:
    """What the real client reads: experiments, runs, histories, logged models, the registry."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    exp_ids = [e.experiment_id for e in experiments]
    out: dict[str, Any] = {"experiments": [], "runs": [], "logged_models": [], "registered_models": [],
                           "model_versions": []}
    for e in experiments:
        out["experiments"].append({
            "experiment_id": e.experiment_id, "name": e.name, "artifact_location": e.artifact_location,
            "lifecycle_stage": e.lifecycle_stage, "tags": dict(e.tags),
            "creation_time": e.creation_time, "last_update_time": e.last_update_time,
        })
    for found in client.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=1000):
        # get_run: search leaves a run's model inputs out, get_run has them
        run = client.get_run(found.info.run_id)
        info = run.info
        histories = {key: [_metric(m) for m in client.get_metric_history(info.run_id, key)]
                     for key in run.data.metrics}
        out["runs"].append({
            "info": {k: getattr(info, k) for k in ("run_id", "run_name", "experiment_id", "user_id", "status",
                                                   "start_time", "end_time", "artifact_uri", "lifecycle_stage")},
            "params": dict(run.data.params),
            "tags": dict(run.data.tags),
            "metrics": dict(run.data.metrics),
            "metric_history": histories,
            "dataset_inputs": [{
                "name": d.dataset.name, "digest": d.dataset.digest, "source_type": d.dataset.source_type,
                "source": d.dataset.source, "schema": d.dataset.schema, "profile": d.dataset.profile,
                "tags": {t.key: t.value for t in d.tags},
            } for d in (run.inputs.dataset_inputs if run.inputs else [])],
            "model_inputs": [m.model_id for m in (run.inputs.model_inputs if run.inputs else [])],
            "model_outputs": [{"model_id": m.model_id, "step": m.step}
                              for m in (run.outputs.model_outputs if run.outputs else [])],
        })
    for model in client.search_logged_models(exp_ids):
        out["logged_models"].append({
            "model_id": model.model_id, "experiment_id": model.experiment_id, "name": model.name,
            "artifact_location": model.artifact_location, "creation_timestamp": model.creation_timestamp,
            "last_updated_timestamp": model.last_updated_timestamp, "model_type": model.model_type,
            "source_run_id": model.source_run_id, "status": str(model.status),
            "status_message": model.status_message, "tags": dict(model.tags), "params": dict(model.params),
            "metrics": [_metric(m) for m in (model.metrics or [])],
        })
    for rm in client.search_registered_models():
        out["registered_models"].append({
            "name": rm.name, "creation_timestamp": rm.creation_timestamp,
            "last_updated_timestamp": rm.last_updated_timestamp, "description": rm.description,
            "tags": dict(rm.tags), "aliases": dict(rm.aliases),
        })
        for mv in client.search_model_versions(f"name='{rm.name}'"):
            out["model_versions"].append({
                k: getattr(mv, k) for k in ("name", "version", "creation_timestamp", "last_updated_timestamp",
                                            "description", "user_id", "current_stage", "source", "run_id",
                                            "status", "status_message", "run_link", "model_id")
            } | {"tags": dict(mv.tags), "aliases": list(mv.aliases)})
    out["model_versions"].sort(key=lambda v: (v["name"], int(v["version"])))
    return _jsonable(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--registry-uri", default=None)
    parser.add_argument("--artifacts", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    registry = args.registry_uri or args.tracking_uri
    build(args.tracking_uri, registry, args.artifacts)
    args.out.write_text(json.dumps(read_back(args.tracking_uri, registry), indent=1, sort_keys=True))
    print(f"mlflow_store_maker: ok ({args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
