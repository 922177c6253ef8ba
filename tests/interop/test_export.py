"""`export_store` / `mltrail export-mlflow`: an mltrail store written out as an MLflow 3.17 SQLite store that
the real MLflow (in its own venv) opens and reads the same as our client reads the source, field by field."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mltrail
from mltrail import MlflowClient
from mltrail.cli import main as cli
from mltrail.entities import LoggedModelOutput
from mltrail.errors import InvalidParameterValue, MltrailException, ResourceAlreadyExists
from mltrail.interop.mlflow.exporter import export_store, mlflow_schema

pytestmark = pytest.mark.slow

MODEL_CODE = """
    try:
        import mlflow
    except ImportError:  # our side: the same file, saved by mltrail
        import mltrail as mlflow


    class Double(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * 2


    mlflow.models.set_model(Double())
"""

# Reads a store through `mlflow` (the real one in its venv, or ours as `import mltrail as mlflow`) as JSON.
DUMP = """
    import json, sys
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    uri, out, predict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    c = MlflowClient(uri, uri)

    def num(v):
        return None if v is None else repr(float(v))

    def files(run_id, path=None):
        out = []
        for f in c.list_artifacts(run_id, path):
            out += files(run_id, f.path) if f.is_dir else [[f.path, f.file_size]]
        return out

    exps = sorted(c.search_experiments(view_type=ViewType.ALL), key=lambda e: int(e.experiment_id))
    ids = [e.experiment_id for e in exps]
    data = {"experiments": [dict(id=e.experiment_id, name=e.name, stage=e.lifecycle_stage, tags=dict(e.tags),
                                 location=e.artifact_location, created=e.creation_time, updated=e.last_update_time)
                            for e in exps], "runs": {}, "models": {}, "registry": {}}
    for r in c.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000):
        i, d = r.info, r.data
        data["runs"][i.run_id] = dict(
            name=i.run_name, experiment=i.experiment_id, user=i.user_id, status=i.status, start=i.start_time,
            end=i.end_time, stage=i.lifecycle_stage, artifact_uri=i.artifact_uri, params=dict(d.params),
            tags=dict(d.tags), metrics={k: num(v) for k, v in d.metrics.items()},
            history={k: sorted([m.step, m.timestamp, num(m.value)] for m in c.get_metric_history(i.run_id, k))
                     for k in d.metrics},
            datasets=sorted([di.dataset.name, di.dataset.digest, di.dataset.source_type, di.dataset.source,
                             di.dataset.schema, di.dataset.profile, sorted([t.key, t.value] for t in di.tags)]
                            for di in r.inputs.dataset_inputs),
            model_inputs=sorted(m.model_id for m in (r.inputs.model_inputs or [])),
            model_outputs=sorted([m.model_id, m.step] for m in (r.outputs.model_outputs if r.outputs else [])),
            files=sorted(files(i.run_id)))
    for m in c.search_logged_models(ids):
        data["models"][m.model_id] = dict(
            name=m.name, experiment=m.experiment_id, status=str(m.status), run=m.source_run_id,
            location=m.artifact_location, type=m.model_type, created=m.creation_timestamp,
            updated=m.last_updated_timestamp, params=dict(m.params), tags=dict(m.tags),
            metrics=sorted([x.key, num(x.value), x.step, x.timestamp, x.run_id, x.dataset_name, x.dataset_digest]
                           for x in (m.metrics or [])))
    for rm in c.search_registered_models():
        versions = {}
        for found in c.search_model_versions(f"name='{rm.name}'"):
            v = c.get_model_version(rm.name, found.version)  # MLflow's search leaves a version's aliases out
            versions[v.version] = dict(source=v.source, run=v.run_id, status=v.status, stage=v.current_stage,
                                       tags=dict(v.tags), aliases=sorted(v.aliases), description=v.description,
                                       created=v.creation_timestamp, user=v.user_id,
                                       download=c.get_model_version_download_uri(rm.name, v.version))
        data["registry"][rm.name] = dict(description=rm.description, tags=dict(rm.tags),
                                         aliases=dict(rm.aliases), created=rm.creation_timestamp,
                                         versions={k: versions[k] for k in sorted(versions)})
    if predict:
        import pandas as pd
        model = mlflow.pyfunc.load_model("models:/reg@champion")
        data["prediction"] = model.predict(pd.DataFrame({"x": [1.0, 2.5]})).to_dict("list")
    with open(out, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
"""

NAN_INF = [(0, 0.5), (1, math.nan), (2, math.inf), (3, -math.inf), (4, 0.25)]


def _build_source(root: Path) -> dict[str, Any]:
    """An mltrail store holding one of every entity the exporter writes."""
    uri = f"sqlite:///{root}/mltrail.db"
    mltrail.set_tracking_uri(uri)
    mltrail.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    code = root / "model_code" / "model.py"
    code.parent.mkdir(parents=True)
    code.write_text(textwrap.dedent(MODEL_CODE))
    exp = mltrail.create_experiment("exp-a", tags={"team": "vision", "note": "kept"})
    gone = mltrail.create_experiment("exp-gone", tags={"why": "old"})
    with mltrail.start_run(experiment_id=exp, run_name="parent") as parent:
        mltrail.log_params({"lr": "0.01", "layers": "2"})
        mltrail.set_tags({"stage": "dev", "owner": "me"})
        for step in range(300):
            mltrail.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 300}, step=step)
        for step, value in NAN_INF:
            mltrail.log_metric("odd", value, step=step)
        mltrail.log_input(mltrail.data.from_numpy(np.arange(6.0).reshape(3, 2), source="train.npy", name="train"),
                          context="training")
        mltrail.log_text("hello", "notes/hello.txt")
        (root / "dir").mkdir()
        (root / "dir" / "a.csv").write_text("a,b\n1,2\n")
        (root / "dir" / "b.json").write_text("{}")
        mltrail.log_artifacts(str(root / "dir"), "tables")
        info = mltrail.pyfunc.log_model(name="model", python_model=str(code),
                                        input_example=pd.DataFrame({"x": [1.0, 2.0]}))
        mltrail.log_model_params({"depth": "3"}, model_id=info.model_id)
        mltrail.set_logged_model_tags(info.model_id, {"kind": "double"})
        mltrail.log_metric("val_loss", 0.125, step=2, model_id=info.model_id)
        mltrail.log_metric("val_odd", math.nan, step=3, model_id=info.model_id)
        with mltrail.start_run(run_name="child", nested=True):
            mltrail.log_param("fold", "1")
            mltrail.log_metric("loss", 0.5, step=0)
            mltrail.log_outputs([LoggedModelOutput(model_id=info.model_id, step=7)])
    with mltrail.start_run(experiment_id=exp, run_name="doomed") as doomed:
        mltrail.log_metric("loss", 2.0)
    client.delete_run(doomed.info.run_id)
    with mltrail.start_run(experiment_id=gone, run_name="in-gone"):
        mltrail.log_param("p", "q")
    client.delete_experiment(gone)
    model_uri = f"models:/{info.model_id}"
    client.create_registered_model("reg", tags={"domain": "demo"}, description="a doubling model")
    v1 = mltrail.register_model(model_uri, "reg")
    v2 = mltrail.register_model(model_uri, "reg", tags={"candidate": "yes"})
    client.set_model_version_tag("reg", v1.version, "validated", "false")
    client.set_registered_model_alias("reg", "champion", v2.version)
    client.set_registered_model_alias("reg", "old", v1.version)
    mltrail.set_tracking_uri(None)
    mltrail.set_registry_uri(None)
    return {"uri": uri, "parent": parent.info.run_id, "model_id": info.model_id}


def _dump(python: str | Path, uri: str, out: Path, rewrite_import: bool, predict: bool) -> dict[str, Any]:
    script = textwrap.dedent(DUMP)
    if rewrite_import:
        script = (script.replace("import mlflow\n", "import mltrail as mlflow\n")
                  .replace("from mlflow", "from mltrail"))
    path = out.with_suffix(".py")
    path.write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", MLFLOW_ALLOW_FILE_STORE="true")
    proc = subprocess.run([str(python), str(path), uri, str(out), "1" if predict else "0"], cwd=out.parent,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"reading {uri} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-5000:]}"
    return dict(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("export")
    (root / "src").mkdir()
    source = _build_source(root / "src")
    dest = root / "out" / "mlflow.db"
    report = export_store(source["uri"], f"sqlite:///{dest}")
    return {**source, "root": root, "dest": dest, "report": report}


@pytest.fixture(scope="module")
def both_reads(exported: dict[str, Any], mlflow_python: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what our client reads from the source, what the real MLflow reads from the export)."""
    root = exported["root"]
    ours = _dump(sys.executable, exported["uri"], root / "ours.json", rewrite_import=True, predict=False)
    theirs = _dump(mlflow_python, f"sqlite:///{exported['dest']}", root / "theirs.json", rewrite_import=False,
                   predict=True)
    return ours, theirs


def _normalized(data: dict[str, Any], artifact_root: str) -> dict[str, Any]:
    """Artifact locations relative to their root; MLflow's stand-ins for ±inf read back as infinities."""
    # a deleted experiment's artifacts sit in a FileStore's .trash with it, and its location says so
    text = json.dumps(data).replace(artifact_root.rstrip("/") + "/.trash/", artifact_root.rstrip("/") + "/")
    text = text.replace(artifact_root.rstrip("/"), "<ARTIFACTS>")
    text = text.replace('"1.7976931348623157e+308"', '"inf"').replace('"-1.7976931348623157e+308"', '"-inf"')
    return dict(json.loads(text))


def test_real_mlflow_reads_what_our_client_reads(exported, both_reads):
    _assert_reads_the_same(exported, *both_reads, exported["report"].artifact_root)


def _assert_reads_the_same(exported: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any],
                           artifact_root: str) -> None:
    prediction = theirs["prediction"]
    src_root = os.path.join(os.path.dirname(exported["uri"][len("sqlite:///"):]), "artifacts")
    ours, theirs = _normalized(ours, src_root), _normalized(theirs, artifact_root)
    del theirs["prediction"]
    # field by field, so a failure names the entity that differs
    assert [e["name"] for e in theirs["experiments"]] == ["Default", "exp-a", "exp-gone"]
    assert theirs["experiments"] == ours["experiments"]
    assert sorted(theirs["runs"]) == sorted(ours["runs"]) and len(ours["runs"]) == 4
    for run_id, run in ours["runs"].items():
        for field, value in run.items():
            assert theirs["runs"][run_id][field] == value, (run_id, field)
    # SQLite keeps no NaN in a REAL column: MLflow reads a NaN logged-model metric it wrote there as None too
    for model in theirs["models"].values():
        model["metrics"] = [[m[0], "nan" if m[1] is None else m[1], *m[2:]] for m in model["metrics"]]
    assert theirs["models"] == ours["models"] and len(ours["models"]) == 1
    # MLflow's SQL store gives alias versions as ints (its REST API as strings); ours gives strings
    for registry in (ours["registry"], theirs["registry"]):
        for rm in registry.values():
            rm["aliases"] = {k: str(v) for k, v in rm["aliases"].items()}
    assert theirs["registry"] == ours["registry"] and len(ours["registry"]["reg"]["versions"]) == 2
    assert prediction == {"x": [2.0, 5.0]}


def test_the_export_keeps_what_matters(exported, both_reads):
    _, theirs = both_reads
    parent = theirs["runs"][exported["parent"]]
    assert [p[2] for p in parent["history"]["odd"]] == ["0.5", "nan", "1.7976931348623157e+308",
                                                        "-1.7976931348623157e+308", "0.25"]  # MLflow's encoding
    assert len(parent["history"]["loss"]) == 300
    assert parent["datasets"][0][0] == "train" and parent["datasets"][0][-1] == [["mlflow.data.context", "training"]]
    assert sorted(f[0] for f in parent["files"]) == ["notes/hello.txt", "tables/a.csv", "tables/b.json"]
    child = next(r for r in theirs["runs"].values() if r["name"] == "child")
    assert child["tags"]["mlflow.parentRunId"] == exported["parent"]
    assert child["model_outputs"] == [[exported["model_id"], 7]]
    stages = {r["name"]: r["stage"] for r in theirs["runs"].values()}
    assert stages["doomed"] == "deleted" and stages["parent"] == "active"
    reg = theirs["registry"]["reg"]
    assert reg["aliases"] == {"champion": 2, "old": 1}
    assert reg["versions"]["2"]["tags"] == {"candidate": "yes"}
    assert reg["versions"]["1"]["download"].startswith(exported["report"].artifact_root)


def test_the_database_is_stamped_at_mlflows_revision(exported):
    _, revision = mlflow_schema()
    conn = sqlite3.connect(exported["dest"])
    try:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(revision,)]
        raw = dict(conn.execute("SELECT step, value FROM metrics WHERE key = 'odd'").fetchall())
        nan_flag = conn.execute("SELECT is_nan FROM latest_metrics WHERE key = 'odd'").fetchone()
        statuses = conn.execute("SELECT status FROM logged_models").fetchall()
    finally:
        conn.close()
    assert raw == {0: 0.5, 1: 0.0, 2: 1.7976931348623157e308, 3: -1.7976931348623157e308, 4: 0.25}
    assert nan_flag == (0,) and statuses == [(2,)]  # READY is 2 in MLflow's table
    # parent: loss+acc, odd, and the two logged-model metrics (logged to the run too); child and doomed: one each
    assert exported["report"].rows["metrics"] == 300 * 2 + len(NAN_INF) + 2 + 2
    assert exported["report"].artifact_files >= 3


def test_refuses_a_destination_with_tables(exported, tmp_path):
    before = exported["dest"].read_bytes()
    with pytest.raises(ResourceAlreadyExists, match="already has tables"):
        export_store(exported["uri"], f"sqlite:///{exported['dest']}", str(tmp_path / "arts"))
    assert exported["dest"].read_bytes() == before
    assert not (tmp_path / "arts").exists()


def test_refuses_a_non_empty_artifact_folder_and_other_destinations(exported, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ResourceAlreadyExists, match="not empty"):
        export_store(exported["uri"], f"sqlite:///{tmp_path}/new.db", str(tmp_path / "full"))
    assert not (tmp_path / "new.db").exists()
    with pytest.raises(ResourceAlreadyExists, match="not empty"):
        export_store(exported["uri"], str(tmp_path / "full"))
    with pytest.raises(InvalidParameterValue, match="expected an MLflow store"):
        export_store(exported["uri"], "s3://bucket/mlruns")
    with pytest.raises(InvalidParameterValue, match="postgresql is not supported"):
        export_store(exported["uri"], "postgresql://u@localhost/db")


def test_refuses_a_source_that_is_not_an_mltrail_store(exported, tmp_path):
    with pytest.raises(MltrailException, match="not an mltrail store"):
        export_store(f"sqlite:///{exported['dest']}", f"sqlite:///{tmp_path}/again.db")
    assert not (tmp_path / "again.db").exists()
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        export_store(f"sqlite:///{tmp_path}/missing.db", f"sqlite:///{tmp_path}/again.db")


def test_cli_exports_and_reports(exported, tmp_path):
    dest = tmp_path / "cli" / "mlflow.db"
    result = CliRunner().invoke(cli, ["export-mlflow", "--from", exported["uri"], "--to", f"sqlite:///{dest}",
                                      "--artifacts", str(tmp_path / "arts")])
    assert result.exit_code == 0, result.output
    assert f"Exported to sqlite:///{dest}" in result.output and "metrics: " in result.output
    assert (tmp_path / "arts" / "1").is_dir()
    again = CliRunner().invoke(cli, ["export-mlflow", "--from", exported["uri"], "--to", f"sqlite:///{dest}"])
    assert again.exit_code == 1 and "RESOURCE_ALREADY_EXISTS" in again.output


@pytest.mark.postgres
def test_exports_from_postgresql(postgres_uri, tmp_path, mlflow_python):
    client = MlflowClient(postgres_uri)
    exp = client.create_experiment("pg-exp", tags={"db": "postgres"})
    run = client.create_run(exp, run_name="pg-run", tags={"t": "1"}).info.run_id
    client.log_param(run, "alpha", "0.5")
    for step, value in NAN_INF:
        client.log_metric(run, "odd", value, step=step)
    client.log_text(run, "hi", "hello.txt")
    client.set_terminated(run)
    report = export_store(postgres_uri, f"sqlite:///{tmp_path}/pg-out/mlflow.db")
    assert report.rows["metrics"] == len(NAN_INF) and report.artifact_files == 1
    from mltrail.tracking_uri import default_artifact_root_for

    ours = _normalized(_dump(sys.executable, postgres_uri, tmp_path / "ours.json", rewrite_import=True,
                             predict=False), default_artifact_root_for(postgres_uri))
    theirs = _normalized(_dump(mlflow_python, f"sqlite:///{tmp_path}/pg-out/mlflow.db", tmp_path / "theirs.json",
                               rewrite_import=False, predict=False), report.artifact_root)
    assert theirs == ours and ours["runs"][run]["files"] == [["hello.txt", 2]]


def test_real_mlflow_reads_an_exported_file_store_the_same(exported, both_reads, mlflow_python, tmp_path):
    folder = tmp_path / "mlruns"
    report = export_store(exported["uri"], folder.as_uri())
    assert report.artifact_root == str(folder) and (folder / ".trash").is_dir()
    parent = folder / "1" / exported["parent"]
    assert (parent / "artifacts" / "notes" / "hello.txt").read_text() == "hello"
    lines = (parent / "metrics" / "odd").read_text().splitlines()  # "timestamp value step", as MLflow writes
    assert [line.split()[1:] for line in lines] == [["0.5", "0"], ["nan", "1"], ["inf", "2"], ["-inf", "3"],
                                                    ["0.25", "4"]]
    theirs = _dump(mlflow_python, folder.as_uri(), tmp_path / "theirs.json", rewrite_import=False, predict=True)
    _assert_reads_the_same(exported, both_reads[0], theirs, folder.as_uri())
