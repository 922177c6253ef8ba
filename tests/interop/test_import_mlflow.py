"""`mltrail import-mlflow`: stores built by the real MLflow 3.17.2 come over whole, read back field by field.

Each store (SQLite, FileStore; PostgreSQL under the `postgres` marker) is imported once per module
into a fresh mltrail store, then everything is read back through `mltrail.MlflowClient` and compared
with what MLflow's own client read from the source (`expected.json`, see `mlflow_store_maker.py`).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main as cli
from mltrail.entities import ViewType
from mltrail.errors import InvalidParameterValue
from mltrail.interop.mlflow.artifacts_copy import UriRewriter, resolve_source_uri
from mltrail.interop.mlflow.importer import IMPORTED_FROM_TAG, ImportReport, import_store, open_source
from mltrail.interop.mlflow.progress import LineProgress
from mltrail.interop.mlflow.records import MlflowSource, RowBatch
from mltrail.store import clear_cache, get_store

pytestmark = pytest.mark.tf

KINDS = ["sqlite", "file"]


def _source_store(request: pytest.FixtureRequest, kind: str) -> dict[str, Any]:
    if kind in ("sqlite", "postgres"):
        pytest.importorskip("mltrail.interop.mlflow.sql_source", reason="the SQL reader is not there yet")
    return dict(request.getfixturevalue(f"mlflow_{kind}_store"))


def _import(source_uri: str, dest: str, **kw: Any) -> ImportReport:
    reader = open_source(source_uri)
    try:
        return import_store(reader, dest, progress=LineProgress(io.StringIO()), **kw)
    finally:
        reader.close()


@pytest.fixture(scope="module", params=[*KINDS, pytest.param("postgres", marks=pytest.mark.postgres)])
def imported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The source store imported once into a new mltrail store (a folder; a PostgreSQL database for an MLflow
    PostgreSQL store): the store's dict plus `dest`, `artifact_root` and `report`."""
    store = _source_store(request, request.param)
    folder = tmp_path_factory.mktemp(f"imported-{request.param}")
    if request.param == "postgres":
        dest, artifact_root = request.getfixturevalue("pg_server").create_database(), str(folder / "artifacts")
    else:
        dest = str(folder / "mltrail")
        artifact_root = os.path.join(dest, "artifacts")
    report = _import(store["uri"], dest, artifacts_dest=artifact_root)
    return {**store, "kind": request.param, "dest": dest, "artifact_root": artifact_root, "report": report}


@pytest.fixture()
def client(imported: dict[str, Any]) -> mltrail.MlflowClient:
    return mltrail.MlflowClient(imported["dest"])


def _same_float(ours: float, mlflow: float) -> bool:
    """Equal, NaN included. MLflow's SQL store keeps +-inf as +-max float (SQL has no infinity) and reads
    that back; the import gives the infinity that was logged (the issue: "NaN/+-inf kept")."""
    if abs(mlflow) == sys.float_info.max:
        mlflow = math.copysign(math.inf, mlflow)
    return (math.isnan(ours) and math.isnan(mlflow)) or ours == mlflow


def test_import_summary_is_ok(imported: dict[str, Any]) -> None:
    report = imported["report"]
    assert report.ok, report.summary()
    assert report.counts["metrics"][0] >= 6000  # the long history came whole, not just counted
    assert report.written["runs"] == len(imported["expected"]["runs"])
    assert report.artifact_files > 0
    assert "OK" in report.summary()


def test_experiments_match_field_by_field(imported: dict[str, Any], client: mltrail.MlflowClient) -> None:
    ours = {e.name: e for e in client.search_experiments(view_type=ViewType.ALL)}
    artifacts = imported["artifact_root"]
    for exp in imported["expected"]["experiments"]:
        got = ours[exp["name"]]
        assert got.experiment_id == exp["experiment_id"]  # a fresh destination keeps every id
        assert got.lifecycle_stage == exp["lifecycle_stage"]
        assert got.creation_time == exp["creation_time"]
        assert got.last_update_time == exp["last_update_time"]
        tags = dict(got.tags)
        assert tags.pop(IMPORTED_FROM_TAG)
        assert tags == exp["tags"]
        assert got.artifact_location.startswith(artifacts)  # copied: the new location is under our root


def test_runs_match_field_by_field(imported: dict[str, Any], client: mltrail.MlflowClient) -> None:
    exp_ids = [e["experiment_id"] for e in imported["expected"]["experiments"]]
    ours = {r.info.run_id: r for r in client.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=1000)}
    assert len(ours) == len(imported["expected"]["runs"])
    for run in imported["expected"]["runs"]:
        info = run["info"]
        got = ours[info["run_id"]]
        for key in ("run_name", "experiment_id", "user_id", "status", "start_time", "end_time", "lifecycle_stage"):
            assert getattr(got.info, key) == info[key], (info["run_id"], key)
        assert got.info.artifact_uri.startswith(imported["artifact_root"])
        assert dict(got.data.params) == run["params"]
        assert dict(got.data.tags) == run["tags"]  # mlflow.parentRunId included: nested runs keep their parent
        assert set(got.data.metrics) == set(run["metrics"])
        for key, value in run["metrics"].items():
            assert _same_float(got.data.metrics[key], value), (key, got.data.metrics[key], value)
        for key, history in run["metric_history"].items():
            # MLflow's FileStore reads a history in the order it was logged; ours comes by (step, timestamp)
            points = sorted(client.get_metric_history(info["run_id"], key), key=lambda m: (m.step, m.timestamp))
            want = sorted(history, key=lambda m: (m["step"], m["timestamp"]))
            assert [(m.step, m.timestamp) for m in points] == [(m["step"], m["timestamp"]) for m in want]
            assert all(_same_float(m.value, e["value"]) for m, e in zip(points, want, strict=True)), key
        inputs = got.inputs.dataset_inputs if got.inputs else []
        assert [{"name": d.dataset.name, "digest": d.dataset.digest, "source_type": d.dataset.source_type,
                 "source": d.dataset.source, "schema": d.dataset.schema, "profile": d.dataset.profile,
                 "tags": {t.key: t.value for t in d.tags}} for d in inputs] == run["dataset_inputs"]
        outputs = got.outputs.model_outputs if got.outputs else []
        assert [{"model_id": m.model_id, "step": m.step} for m in outputs] == run["model_outputs"]


def test_long_history_keeps_nan_and_infinities(imported: dict[str, Any], client: mltrail.MlflowClient) -> None:
    run = next(r for r in imported["expected"]["runs"] if r["info"]["run_name"] == "long-history")
    loss = client.get_metric_history(run["info"]["run_id"], "loss")
    assert len(loss) == len(run["metric_history"]["loss"]) >= 2000
    at_step = {m.step: m.value for m in loss}
    assert math.isnan(at_step[7])
    assert at_step[11] == math.inf
    val_loss = {m.step: m.value for m in client.get_metric_history(run["info"]["run_id"], "val_loss")}
    assert val_loss[13] == -math.inf


def test_artifacts_are_copied(imported: dict[str, Any], client: mltrail.MlflowClient) -> None:
    parent = next(r for r in imported["expected"]["runs"] if r["info"]["run_name"] == "parent")
    run_id = parent["info"]["run_id"]
    local = client.download_artifacts(run_id, "notes/readme.txt", dst_path=os.path.join(imported["artifact_root"], "..", "dl"))
    assert Path(local).read_text() == "hello from mlflow\n"
    names = sorted(f.path for f in client.list_artifacts(run_id, "plots"))
    assert names == ["plots/a.csv", "plots/b.json"]


def test_logged_models_match(imported: dict[str, Any], client: mltrail.MlflowClient) -> None:
    exp_ids = [e["experiment_id"] for e in imported["expected"]["experiments"]]
    ours = {m.model_id: m for m in client.search_logged_models(exp_ids)}
    assert set(ours) == {m["model_id"] for m in imported["expected"]["logged_models"]}
    for model in imported["expected"]["logged_models"]:
        got = ours[model["model_id"]]
        for key in ("experiment_id", "name", "creation_timestamp", "last_updated_timestamp", "model_type",
                    "source_run_id", "status_message"):
            assert getattr(got, key) == model[key], key
        assert str(got.status).endswith(model["status"].split(".")[-1])
        assert dict(got.tags) == model["tags"]
        assert dict(got.params) == model["params"]
        got_metrics = sorted((m.key, m.step, m.timestamp, m.value) for m in got.metrics or [])
        assert got_metrics == sorted((m["key"], m["step"], m["timestamp"], m["value"]) for m in model["metrics"])
        assert got.artifact_location.startswith(imported["artifact_root"])
        assert os.path.isfile(os.path.join(got.artifact_location, "MLmodel"))


def test_registry_matches(imported: dict[str, Any], client: mltrail.MlflowClient) -> None:
    for rm in imported["expected"]["registered_models"]:
        got = client.get_registered_model(rm["name"])
        assert (got.creation_timestamp, got.last_updated_timestamp, got.description) == (
            rm["creation_timestamp"], rm["last_updated_timestamp"], rm["description"])
        assert dict(got.tags) == rm["tags"]
        assert {k: str(v) for k, v in dict(got.aliases).items()} == {k: str(v) for k, v in rm["aliases"].items()}
    for mv in imported["expected"]["model_versions"]:
        got = client.get_model_version(mv["name"], mv["version"])
        for key in ("creation_timestamp", "last_updated_timestamp", "description", "user_id", "current_stage",
                    "source", "run_id", "status", "status_message", "run_link", "model_id"):
            assert getattr(got, key) == mv[key], key
        assert dict(got.tags) == mv["tags"]
        # MLflow's search_model_versions leaves a version's aliases out on SQL stores: take the model's map
        rm_aliases = next(rm["aliases"] for rm in imported["expected"]["registered_models"] if rm["name"] == mv["name"])
        assert sorted(got.aliases) == sorted(a for a, v in rm_aliases.items() if str(v) == str(mv["version"]))
        location = client.get_model_version_download_uri(mv["name"], mv["version"])
        assert location.replace("file://", "").startswith(imported["artifact_root"])


def test_imported_keras_model_predicts_as_the_source(imported: dict[str, Any]) -> None:
    import keras

    model = imported["expected"]["logged_models"][0]
    source_file = os.path.join(model["artifact_location"].replace("file://", ""), "data", "model.keras")
    x = np.arange(12, dtype="float32").reshape(6, 2)
    want = np.asarray(keras.saving.load_model(source_file, compile=False).predict(x, verbose=0))
    mltrail.set_tracking_uri(imported["dest"])
    try:
        loaded = mltrail.pyfunc.load_model("models:/interop-model@champion")
        got = np.asarray(loaded.predict(x))
    finally:
        mltrail.set_tracking_uri(None)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6)


def test_rerun_adds_nothing_and_reports_ok(imported: dict[str, Any]) -> None:
    again = _import(imported["uri"], imported["dest"], artifacts_dest=imported["artifact_root"])
    assert again.ok, again.summary()
    assert sum(again.written.values()) == 0, again.written
    assert again.redone_runs == 0


class _Interrupted:
    """A real reader that stops (as a killed process would) once it has handed out some metric points."""

    def __init__(self, inner: MlflowSource) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def batches(self, table: str) -> Iterator[RowBatch]:
        for batch in self.inner.batches(table):
            if table == "metrics":
                yield RowBatch(table, batch.rows[:100])
                raise KeyboardInterrupt
            yield batch


@pytest.mark.parametrize("kind", KINDS)
def test_interrupted_import_resumes(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = _source_store(request, kind)
    dest = str(tmp_path / "mltrail")
    reader = open_source(store["uri"])
    with pytest.raises(KeyboardInterrupt):
        import_store(_Interrupted(reader), dest, progress=LineProgress(io.StringIO()))  # type: ignore[arg-type]
    reader.close()
    report = _import(store["uri"], dest)
    assert report.redone_runs == len(store["expected"]["runs"])
    assert report.ok, report.summary()
    client = mltrail.MlflowClient(dest)
    run = next(r for r in store["expected"]["runs"] if r["info"]["run_name"] == "long-history")
    assert len(client.get_metric_history(run["info"]["run_id"], "val_loss")) == len(run["metric_history"]["val_loss"])
    assert "mltrail.importPending" not in client.get_run(run["info"]["run_id"]).data.tags
    # the registry's numbering goes on after the imported versions
    versions = store["expected"]["model_versions"]
    assert client.create_model_version(versions[0]["name"], versions[0]["source"]).version == len(versions) + 1


def test_renumbers_an_experiment_whose_id_is_taken(imported: dict[str, Any], tmp_path: Path) -> None:
    dest = str(tmp_path / "mltrail")
    mine = mltrail.MlflowClient(dest)
    taken = [mine.create_experiment(f"mine-{i}") for i in range(4)]  # ids 1..4: every source id but 0
    report = _import(imported["uri"], dest)
    assert report.ok, report.summary()
    moved = {e["experiment_id"] for e in imported["expected"]["experiments"]} & set(taken)
    assert set(report.experiment_ids) == moved
    assert all(new not in taken for new in report.experiment_ids.values())
    by_name = {e.name: e.experiment_id for e in mine.search_experiments(view_type=ViewType.ALL)}
    for exp in imported["expected"]["experiments"]:
        assert by_name[exp["name"]] == report.experiment_ids.get(exp["experiment_id"], exp["experiment_id"])


def test_keep_artifacts_in_place_references_the_source(imported: dict[str, Any], tmp_path: Path) -> None:
    dest = str(tmp_path / "mltrail")
    report = _import(imported["uri"], dest, keep_artifacts_in_place=True)
    assert report.ok and report.artifact_files == 0
    client = mltrail.MlflowClient(dest)
    parent = next(r for r in imported["expected"]["runs"] if r["info"]["run_name"] == "parent")
    uri = client.get_run(parent["info"]["run_id"]).info.artifact_uri
    assert uri.replace("file://", "").startswith(str(imported["root"]))
    assert not os.path.exists(os.path.join(dest, "artifacts"))


def test_cli_imports_and_exits_zero(imported: dict[str, Any], tmp_path: Path) -> None:
    dest = str(tmp_path / "via-cli")
    result = CliRunner().invoke(cli, ["import-mlflow", imported["uri"], "--to", dest])
    assert result.exit_code == 0, result.output
    assert "OK: the destination holds everything" in result.output
    names = {e.name for e in mltrail.MlflowClient(dest).search_experiments(view_type=ViewType.ALL)}
    assert {e["name"] for e in imported["expected"]["experiments"]} <= names


def test_cli_new_user_one_command(request: pytest.FixtureRequest, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder with MLflow's mlflow.db, MLFLOW_TRACKING_URI still naming it: one command fills ./mltrail."""
    store = _source_store(request, "sqlite")
    project = tmp_path / "project"
    shutil.copytree(store["root"], project)
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLTRAIL_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    result = CliRunner().invoke(cli, ["import-mlflow", "sqlite:///mlflow.db"])
    assert result.exit_code == 0, result.output
    runs = mltrail.MlflowClient(str(project / "mltrail")).search_runs(
        [e["experiment_id"] for e in store["expected"]["experiments"]], run_view_type=ViewType.ALL)
    assert len(runs) == len(store["expected"]["runs"])


def test_artifact_uris_resolve_and_rewrite() -> None:
    assert resolve_source_uri("mlflow-artifacts:/1/abc/artifacts", "s3://bucket/root") == "s3://bucket/root/1/abc/artifacts"
    assert resolve_source_uri("file:///data/mlruns/1", None) == "/data/mlruns/1"
    with pytest.raises(InvalidParameterValue, match="--artifacts PATH_OR_S3"):
        resolve_source_uri("mlflow-artifacts:/1/abc", None)
    rewriter = UriRewriter()
    rewriter.add("file:///data/mlruns/1", "/new/artifacts/1")
    rewriter.add("/data/mlruns/1/models/m-1/artifacts", "/new/artifacts/1/models/m-1/artifacts")
    assert rewriter.rewrite("/data/mlruns/1/r1/artifacts/model") == "/new/artifacts/1/r1/artifacts/model"
    assert rewriter.rewrite("file:///data/mlruns/1/models/m-1/artifacts") == "/new/artifacts/1/models/m-1/artifacts"
    assert rewriter.rewrite("/data/mlruns/10/x") == "/data/mlruns/10/x"  # a prefix only at a path boundary
    assert rewriter.rewrite("models:/m-1") == "models:/m-1"


def test_cli_refuses_an_unknown_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["import-mlflow", "http://localhost:5000", "--to", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "Cannot import from 'http://localhost:5000'" in result.output


# ---------------------------------------------------------------- pointing mltrail at an MLflow store
def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_an_mlflow_database_is_refused_unchanged(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = request.getfixturevalue("mlflow_sqlite_store")
    copy = tmp_path / "copy"
    shutil.copytree(store["root"], copy)
    uri = f"sqlite:///{copy}/mlflow.db"
    before = _tree_hash(copy)
    clear_cache()
    with pytest.raises(InvalidParameterValue, match=r"MLflow tracking database .*mltrail import-mlflow sqlite:///"):
        get_store(uri)
    mltrail.set_tracking_uri(uri)
    try:
        with pytest.raises(InvalidParameterValue, match="mltrail import-mlflow"):
            mltrail.search_experiments()
    finally:
        mltrail.set_tracking_uri(None)
    result = CliRunner().invoke(cli, ["db", "upgrade", uri])
    assert result.exit_code != 0 and "mltrail import-mlflow" in str(result.exception or result.output)
    assert _tree_hash(copy) == before


@pytest.mark.postgres
def test_an_mlflow_postgres_database_is_refused(request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue("mlflow_postgres_store")
    clear_cache()
    with pytest.raises(InvalidParameterValue, match=r"MLflow tracking database .*mltrail import-mlflow postgresql://"):
        get_store(store["uri"])


@pytest.mark.parametrize("as_uri", [False, True])
def test_an_mlruns_folder_is_refused_unchanged(as_uri: bool, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = request.getfixturevalue("mlflow_file_store")
    copy = tmp_path / "copy"
    shutil.copytree(store["root"], copy)
    mlruns = copy / "mlruns"
    before = _tree_hash(copy)
    uri = mlruns.as_uri() if as_uri else str(mlruns)
    clear_cache()
    with pytest.raises(InvalidParameterValue, match=r"MLflow FileStore folder .*mltrail import-mlflow"):
        mltrail.MlflowClient(uri).search_experiments()
    from mltrail.server.app import create_app
    from mltrail.server.settings import ServerSettings

    with pytest.raises(InvalidParameterValue, match="mltrail import-mlflow"):
        app = create_app(ServerSettings(backend_store_uri=uri).resolved())
        with __import__("starlette.testclient").testclient.TestClient(app) as http:
            http.get("/api/2.0/mlflow/experiments/search?max_results=1")
    assert _tree_hash(copy) == before
    assert not (mlruns / "mltrail.db").exists()


def test_an_ordinary_folder_still_becomes_a_store(tmp_path: Path) -> None:
    clear_cache()
    exp = mltrail.MlflowClient(str(tmp_path / "fresh")).create_experiment("x")
    assert exp and (tmp_path / "fresh" / "mltrail.db").exists()


def test_a_newer_mltrail_database_is_refused_unchanged(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "newer.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0099')")
    before = db.read_bytes()
    clear_cache()
    with pytest.raises(InvalidParameterValue, match="written by a newer mltrail"):
        get_store(f"sqlite:///{db}")
    assert db.read_bytes() == before
