"""The module-level API, as MLflow code uses it (`import mltrail as mlflow`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import mltrail as mlflow
from mltrail.errors import InvalidParameterValue, MltrailException


def test_embedded_default_needs_no_setup(tmp_path):
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path}/mltrail/mltrail.db"
    assert (tmp_path / "mltrail" / "mltrail.db").exists()
    assert run.info.artifact_uri.startswith(str(tmp_path / "mltrail" / "artifacts"))


def test_tracking_uri_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/from-env.db")
    assert mlflow.get_tracking_uri().endswith("from-env.db")
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{tmp_path}/ours.db")
    assert mlflow.get_tracking_uri().endswith("ours.db")
    mlflow.set_tracking_uri(str(tmp_path / "dir-store"))
    with mlflow.start_run():
        mlflow.log_param("a", 1)
    assert (tmp_path / "dir-store" / "mltrail.db").exists()


def test_run_lifecycle_and_logging(tracking):
    mlflow.set_experiment("exp")
    with mlflow.start_run(run_name="train", tags={"team": "a"}, description="first try") as run:
        assert mlflow.active_run().info.run_id == run.info.run_id
        assert mlflow.log_param("lr", 0.01) == 0.01
        mlflow.log_params({"epochs": 3, "flag": False})
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"loss": 0.25, "acc": 0.9}, step=2)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"x": 1})
        mlflow.delete_tag("x")
    assert mlflow.active_run() is None
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time >= got.info.start_time
    assert got.data.params == {"lr": "0.01", "epochs": "3", "flag": "False"}
    assert got.data.metrics == {"loss": 0.25, "acc": 0.9}
    assert got.data.tags["stage"] == "dev" and "x" not in got.data.tags
    assert got.data.tags["team"] == "a" and got.data.tags["mlflow.note.content"] == "first try"
    assert got.info.experiment_id == mlflow.get_experiment_by_name("exp").experiment_id
    assert mlflow.last_active_run().info.run_id == run.info.run_id


def test_system_tags(tracking):
    with mlflow.start_run() as run:
        pass
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["mlflow.user"] and tags["mlflow.source.type"] == "LOCAL"
    assert "mlflow.source.name" in tags and tags["mlflow.runName"] == run.info.run_name


def test_git_commit_tag_inside_a_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    script = repo / "train.py"
    script.write_text("import mltrail\nwith mltrail.start_run() as r:\n    print(r.info.run_id)\n")
    subprocess.run(["git", "add", "."], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    uri = f"sqlite:///{tmp_path}/git.db"
    out = subprocess.run([sys.executable, str(script)], cwd=repo, capture_output=True, text=True, check=True,
                         env={**env, "MLTRAIL_TRACKING_URI": uri}).stdout.strip()
    tags = mlflow.MlflowClient(uri).get_run(out).data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.name"] == str(script)


def test_exception_inside_run_ends_it_failed(tracking):
    with pytest.raises(RuntimeError), mlflow.start_run() as run:
        raise RuntimeError("boom")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None


def test_nested_runs(tracking):
    with mlflow.start_run(run_name="parent") as parent:
        with pytest.raises(MltrailException, match="nested=True"):
            mlflow.start_run()
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    tags = mlflow.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert mlflow.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id
    kids = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list")
    assert [k.info.run_name for k in kids] == ["child"]


def test_resume_run(tracking):
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1, step=0)
    with mlflow.start_run(run_id=run.info.run_id):
        assert mlflow.get_run(run.info.run_id).info.status == "RUNNING"
        mlflow.log_metric("m", 2, step=1)
    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics["m"] == 2


def test_end_run_status(tracking):
    run = mlflow.start_run()
    mlflow.end_run("KILLED")
    assert mlflow.get_run(run.info.run_id).info.status == "KILLED"


def test_log_without_active_run_starts_one(tracking):
    mlflow.log_metric("m", 1.0)
    run = mlflow.active_run()
    assert run is not None
    mlflow.end_run()
    assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_active_run_stack_is_per_thread(tracking):
    seen = {}

    def worker():
        seen["before"] = mlflow.active_run()
        with mlflow.start_run() as r:
            seen["inner"] = r.info.run_id

    with mlflow.start_run() as main_run:
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert mlflow.active_run().info.run_id == main_run.info.run_id
    assert seen["before"] is None and seen["inner"] != main_run.info.run_id
    assert mlflow.get_run(seen["inner"]).info.status == "FINISHED"


def test_artifacts(tracking, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    d = tmp_path / "outdir"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("a")
    (d / "sub" / "b.txt").write_text("b")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(f))
        mlflow.log_artifact(str(f), artifact_path="docs")
        mlflow.log_artifacts(str(d), artifact_path="out")
        mlflow.log_artifact(str(d), artifact_path="copy")  # a directory keeps its name
        mlflow.log_text("text!", "t/hello.txt")
        mlflow.log_dict({"a": [1, 2]}, "conf.json")
        mlflow.log_dict({"a": [1, 2]}, "conf.yaml")
        mlflow.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "img.png")
        mlflow.log_image(np.ones((4, 5)), "float.png")
        uri = mlflow.get_artifact_uri("conf.json")
    client = mlflow.MlflowClient()
    top = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert top == {"notes.txt", "docs", "out", "copy", "t", "conf.json", "conf.yaml", "img.png", "float.png"}
    assert {f.path for f in client.list_artifacts(run.info.run_id, "out")} == {"out/a.txt", "out/sub"}
    assert {f.path for f in client.list_artifacts(run.info.run_id, "copy/outdir")} == {
        "copy/outdir/a.txt", "copy/outdir/sub"}
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="out")
    assert open(os.path.join(local, "sub", "b.txt")).read() == "b"
    assert json.load(open(uri)) == {"a": [1, 2]}
    import yaml

    assert yaml.safe_load(open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                                   artifact_path="conf.yaml"))) == {"a": [1, 2]}
    from PIL import Image

    img = Image.open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="img.png"))
    assert img.size == (5, 4)


def test_log_figure(tracking):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with mlflow.start_run() as run:
        mlflow.log_figure(fig, "plot.png")
        mlflow.log_figure(go.Figure(go.Scatter(y=[1, 3, 2])), "plot.html")
        with pytest.raises(InvalidParameterValue, match="matplotlib or plotly"):
            mlflow.log_figure(object(), "x.png")
    plt.close(fig)
    paths = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert paths == {"plot.png", "plot.html"}


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../b", "%2e%2e/x", "%252e%252e/x",
                                 "a\\..\\b", "C:/x"])
def test_artifact_paths_cannot_escape(tracking, tmp_path, bad):
    with mlflow.start_run(), pytest.raises(InvalidParameterValue):
        mlflow.log_text("x", bad)
    assert not (tmp_path / "escape.txt").exists()


def test_search_runs_dataframe(tracking):
    mlflow.set_experiment("s")
    for i in range(3):
        with mlflow.start_run(run_name=f"r{i}"):
            mlflow.log_param("i", i)
            mlflow.log_metric("acc", i / 10)
    df = mlflow.search_runs(filter_string="metrics.acc > 0", order_by=["metrics.acc DESC"])
    assert list(df["tags.mlflow.runName"]) == ["r2", "r1"]
    for col in ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time", "metrics.acc",
                "params.i"):
        assert col in df.columns
    assert str(df["start_time"].dtype).startswith("datetime64")
    assert list(mlflow.search_runs(max_results=1, output_format="list")[0].data.params) == ["i"]
    empty = mlflow.search_runs(filter_string="metrics.acc > 5")
    assert len(empty) == 0 and "run_id" in empty.columns
    assert len(mlflow.search_runs(experiment_names=["s"], output_format="list")) == 3
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == 3


def test_experiments_api(tracking):
    exp_id = mlflow.create_experiment("made", tags={"a": "b"})
    assert mlflow.get_experiment(exp_id).tags == {"a": "b"}
    exp = mlflow.set_experiment(experiment_id=exp_id)
    assert exp.name == "made"
    mlflow.set_experiment_tag("k", "v")
    assert mlflow.get_experiment(exp_id).tags["k"] == "v"
    assert {e.name for e in mlflow.search_experiments()} == {"Default", "made"}
    mlflow.delete_experiment(exp_id)
    with pytest.raises(MltrailException, match="deleted"):
        mlflow.set_experiment("made")


def test_client_explicit_calls(tracking):
    from mltrail.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient()
    exp_id = client.create_experiment("c")
    run = client.create_run(exp_id, run_name="explicit")
    client.log_batch(run.info.run_id, metrics=[Metric("m", 1.0, 0, 0)], params=[Param("p", 1)],  # type: ignore[arg-type]
                     tags=[RunTag("t", "v")])
    client.log_metric(run.info.run_id, "m", 2.0, step=1)
    client.set_terminated(run.info.run_id, "FINISHED")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.params == {"p": "1"}
    assert [m.value for m in client.get_metric_history(run.info.run_id, "m")] == [1.0, 2.0]
    page = client.search_runs([exp_id], max_results=1)
    assert len(page) == 1 and page.token is None
    with pytest.raises(MltrailException) as e:
        client.get_run("nope-not-a-run")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_datasets_fluent(tracking):
    pytest.importorskip("mltrail.data")
    ds = mlflow.data.from_numpy(np.arange(12.0).reshape(4, 3), name="toy")
    with mlflow.start_run() as run:
        mlflow.log_input(ds, context="training")
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert inputs[0].dataset.name == "toy"
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"
