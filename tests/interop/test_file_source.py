"""`FileSource`: an MLflow FileStore folder made by the real mlflow 3.17.2 read as mltrail's rows, compared
field by field with what MLflow's own client reads back; the folder unchanged; crafted folders refused."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from mltrail.errors import InvalidParameterValue, InvalidState
from mltrail.interop.mlflow.file_source import FileSource, is_mlflow_file_store
from mltrail.interop.mlflow.records import TABLE_ORDER


def _rows(source: FileSource, table: str) -> list[dict[str, Any]]:
    return [row for batch in source.batches(table) for row in batch.rows]


@pytest.fixture(scope="module")
def store(mlflow_file_store: dict[str, Any]) -> dict[str, Any]:
    """The fixture's store with every table read once."""
    source = FileSource(mlflow_file_store["uri"])
    tables = {table: _rows(source, table) for table in TABLE_ORDER}
    return {"source": source, "tables": tables, "expected": mlflow_file_store["expected"],
            "root": Path(mlflow_file_store["root"]) / "mlruns"}


def _by(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row[key]].append(row)
    return out


def _same_value(ours: float, is_nan: bool, theirs: float) -> bool:
    return math.isnan(theirs) if is_nan else ours == theirs


@pytest.mark.slow
def test_experiments_match_mlflow(store: dict[str, Any]) -> None:
    rows = {str(r["experiment_id"]): r for r in store["tables"]["experiments"]}
    tags = _by(store["tables"]["experiment_tags"], "experiment_id")
    expected = store["expected"]["experiments"]
    assert sorted(rows) == sorted(e["experiment_id"] for e in expected)
    assert any(e["lifecycle_stage"] == "deleted" for e in expected)
    for exp in expected:
        row = rows[exp["experiment_id"]]
        for field in ("name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time"):
            assert row[field] == exp[field], (exp["name"], field)
        assert {t["key"]: t["value"] for t in tags[int(exp["experiment_id"])]} == exp["tags"]


@pytest.mark.slow
def test_runs_params_tags_and_full_histories_match_mlflow(store: dict[str, Any]) -> None:
    tables = store["tables"]
    runs = {r["run_uuid"]: r for r in tables["runs"]}
    params, tags, metrics = (_by(tables[t], "run_uuid") for t in ("params", "tags", "metrics"))
    expected = store["expected"]["runs"]
    assert sorted(runs) == sorted(r["info"]["run_id"] for r in expected)
    nan_seen = inf_seen = 0
    for run in expected:
        info = run["info"]
        row = runs[info["run_id"]]
        assert row["name"] == info["run_name"]
        assert str(row["experiment_id"]) == info["experiment_id"]
        for field in ("user_id", "status", "start_time", "end_time", "artifact_uri", "lifecycle_stage"):
            assert row[field] == info[field], (info["run_name"], field)
        assert {p["key"]: p["value"] for p in params[info["run_id"]]} == run["params"]
        assert {t["key"]: t["value"] for t in tags[info["run_id"]]} == run["tags"]
        history = _by(metrics[info["run_id"]], "key")
        assert sorted(history) == sorted(run["metric_history"])
        for key, points in run["metric_history"].items():
            ours = history[key]
            assert len(ours) == len(points), (info["run_name"], key)
            for mine, theirs in zip(ours, points, strict=True):
                assert (mine["step"], mine["timestamp"]) == (theirs["step"], theirs["timestamp"])
                assert _same_value(mine["value"], mine["is_nan"], theirs["value"]), (key, theirs)
                assert mine["model_id"] is None
                nan_seen += mine["is_nan"]
                inf_seen += math.isinf(mine["value"])
    assert nan_seen and inf_seen, "the fixture's history has NaN and +-inf points"
    parents = [r for r in expected if "mlflow.parentRunId" in r["tags"]]
    assert parents and all(r["tags"]["mlflow.parentRunId"] in runs for r in parents)
    assert any(r["info"]["lifecycle_stage"] == "deleted" for r in expected)


@pytest.mark.slow
def test_datasets_inputs_and_outputs_match_mlflow(store: dict[str, Any]) -> None:
    tables = store["tables"]
    datasets = {d["dataset_uuid"]: d for d in tables["datasets"]}
    inputs = _by(tables["inputs"], "destination_id")
    input_tags = _by(tables["input_tags"], "input_uuid")
    outputs = _by(tables["run_outputs"], "run_uuid")
    seen_dataset = seen_output = False
    for run in store["expected"]["runs"]:
        run_id = run["info"]["run_id"]
        ours = []
        for row in inputs[run_id]:
            if row["source_type"] != "DATASET":
                continue
            ds = datasets[row["source_id"]]
            assert str(ds["experiment_id"]) == run["info"]["experiment_id"]
            ours.append({"name": ds["name"], "digest": ds["digest"], "source_type": ds["dataset_source_type"],
                         "source": ds["dataset_source"], "schema": ds["dataset_schema"],
                         "profile": ds["dataset_profile"],
                         "tags": {t["name"]: t["value"] for t in input_tags[row["input_uuid"]]}})
        assert sorted(ours, key=str) == sorted(run["dataset_inputs"], key=str)
        assert sorted(r["source_id"] for r in inputs[run_id] if r["source_type"] == "MODEL_INPUT") == \
            sorted(run["model_inputs"])
        assert sorted(({"model_id": o["model_id"], "step": o["step"]} for o in outputs[run_id]), key=str) == \
            sorted(run["model_outputs"], key=str)
        seen_dataset |= bool(run["dataset_inputs"])
        seen_output |= bool(run["model_outputs"])
    assert seen_dataset and seen_output


@pytest.mark.slow
def test_logged_models_match_mlflow(store: dict[str, Any]) -> None:
    tables = store["tables"]
    models = {m["model_id"]: m for m in tables["logged_models"]}
    params, tags = _by(tables["logged_model_params"], "model_id"), _by(tables["logged_model_tags"], "model_id")
    metrics = _by(tables["logged_model_metrics"], "model_id")
    expected = store["expected"]["logged_models"]
    assert expected
    for model in expected:
        row = models[model["model_id"]]
        assert str(row["experiment_id"]) == model["experiment_id"]
        assert row["creation_timestamp_ms"] == model["creation_timestamp"]
        assert row["last_updated_timestamp_ms"] == model["last_updated_timestamp"]
        for field in ("name", "artifact_location", "model_type", "source_run_id", "status", "status_message"):
            assert row[field] == model[field], field
        assert row["lifecycle_stage"] == "active"
        assert {p["param_key"]: p["param_value"] for p in params[model["model_id"]]} == model["params"]
        assert {t["tag_key"]: t["tag_value"] for t in tags[model["model_id"]]} == model["tags"]
        # MLflow's client shows each metric's newest point; we carry the whole history, which holds it
        points = {(m["metric_name"], m["metric_step"], m["metric_timestamp_ms"], m["run_id"]): m
                  for m in metrics[model["model_id"]]}
        for metric in model["metrics"]:
            mine = points[(metric["key"], metric["step"], metric["timestamp"], metric["run_id"])]
            assert mine["metric_value"] == metric["value"]
            assert (mine["dataset_name"], mine["dataset_digest"]) == (metric["dataset_name"],
                                                                     metric["dataset_digest"])
    assert len(models) == len(expected)  # none deleted in the fixture: nothing more, nothing less


@pytest.mark.slow
def test_registry_matches_mlflow(store: dict[str, Any]) -> None:
    tables = store["tables"]
    rms = {r["name"]: r for r in tables["registered_models"]}
    rm_tags = _by(tables["registered_model_tags"], "rm_id")
    aliases = _by(tables["registered_model_aliases"], "rm_id")
    versions = {(v["rm_id"], v["version"]): v for v in tables["model_versions"]}
    version_tags = _by(tables["model_version_tags"], "rm_id")
    expected = store["expected"]
    assert sorted(rms) == sorted(r["name"] for r in expected["registered_models"])
    for rm in expected["registered_models"]:
        row = rms[rm["name"]]
        assert (row["creation_time"], row["last_updated_time"], row["description"]) == \
            (rm["creation_timestamp"], rm["last_updated_timestamp"], rm["description"])
        assert {t["key"]: t["value"] for t in rm_tags[row["id"]]} == rm["tags"]
        assert {a["alias"]: str(a["version"]) for a in aliases[row["id"]]} == rm["aliases"]
    assert len(versions) == len(expected["model_versions"])
    for mv in expected["model_versions"]:
        rm_id = rms[mv["name"]]["id"]
        row = versions[(rm_id, int(mv["version"]))]
        assert (row["creation_time"], row["last_updated_time"]) == (mv["creation_timestamp"],
                                                                    mv["last_updated_timestamp"])
        for field in ("description", "user_id", "current_stage", "source", "run_id", "status", "status_message",
                      "run_link", "model_id"):
            assert row[field] == mv[field], field
        assert row["storage_location"]  # where the files are: the logged model's artifact folder here
        assert {t["key"]: t["value"] for t in version_tags[rm_id] if t["version"] == row["version"]} == mv["tags"]
        assert rms[mv["name"]]["last_version"] >= row["version"]


@pytest.mark.slow
def test_counts_and_artifact_roots(store: dict[str, Any]) -> None:
    source: FileSource = store["source"]
    assert source.counts() == {table: len(rows) for table, rows in store["tables"].items()}
    assert store["tables"]["metrics"] and len(store["tables"]["metrics"]) > 6000
    roots = {(r.kind, r.entity_id): r.uri for r in source.artifact_roots()}
    for run in store["expected"]["runs"]:
        assert roots[("run", run["info"]["run_id"])] == run["info"]["artifact_uri"]
    for exp in store["expected"]["experiments"]:
        assert roots[("experiment", exp["experiment_id"])] == exp["artifact_location"]
    for model in store["expected"]["logged_models"]:
        assert roots[("logged_model", model["model_id"])] == model["artifact_location"]
    assert source.describe() == f"MLflow FileStore folder {source.root}"


def _tree_digest(root: Path) -> str:
    """Names, sizes, modification times and contents of everything under `root`."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files) + dirs:
            path = Path(folder) / name
            stat = path.lstat()
            digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_mode}".encode())
            if path.is_file() and not path.is_symlink():
                digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_reading_changes_nothing(mlflow_file_store: dict[str, Any]) -> None:
    root = Path(mlflow_file_store["root"])
    before = _tree_digest(root)
    source = FileSource(mlflow_file_store["uri"])
    source.counts()
    for table in TABLE_ORDER:
        _rows(source, table)
    list(source.artifact_roots())
    source.close()
    assert _tree_digest(root) == before
    assert is_mlflow_file_store(mlflow_file_store["uri"])
    assert is_mlflow_file_store(str(root / "mlruns"))


# ---------------------------------------------------------------------- small hand-made stores
def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _tiny_store(root: Path) -> Path:
    """A FileStore the way MLflow lays it out: one experiment, one run, one metric, one registered model."""
    _write(root / "0" / "meta.yaml", "artifact_location: file:///x/0\nexperiment_id: '0'\nlifecycle_stage: active\n"
                                     "name: Default\n")
    run = root / "0" / "r1"
    _write(run / "meta.yaml", "artifact_uri: file:///x/0/r1/artifacts\nexperiment_id: '0'\nrun_uuid: r1\n"
                              "lifecycle_stage: active\nstart_time: 5\nstatus: 3\nuser_id: me\n")
    _write(run / "metrics" / "loss", "10 0.5 1\n11 nan 2\n12 -inf 3\n")
    _write(run / "metrics" / "nested" / "acc", "10 0.25\n")  # MLflow 1.x: no step means step 0
    _write(run / "params" / "lr", "0.1")
    _write(run / "tags" / "mlflow.runName", "legacy-name")
    (run / "artifacts").mkdir()
    (root / ".trash").mkdir()
    return run


def test_legacy_layout_and_value_spelling(tmp_path: Path) -> None:
    run = _tiny_store(tmp_path / "mlruns")
    source = FileSource(str(tmp_path / "mlruns"))
    [row] = _rows(source, "runs")
    assert (row["run_uuid"], row["name"], row["status"], row["experiment_id"]) == ("r1", "legacy-name", "FINISHED", 0)
    points = {(m["key"], m["step"]): m for m in _rows(source, "metrics")}
    assert points[("loss", 2)]["is_nan"] and points[("loss", 2)]["value"] == 0.0
    assert points[("loss", 3)]["value"] == -math.inf
    assert points[("nested/acc", 0)]["value"] == 0.25
    assert source.counts()["metrics"] == 4
    assert _rows(source, "params") == [{"run_uuid": "r1", "key": "lr", "value": "0.1"}]
    assert run.exists()


def test_malformed_meta_yaml_names_the_file(tmp_path: Path) -> None:
    run = _tiny_store(tmp_path / "mlruns")
    (run / "meta.yaml").write_text("run_uuid: [r1\nexperiment_id: '0'\n")
    with pytest.raises(InvalidState, match=r"Malformed MLflow FileStore file .*r1/meta\.yaml.*not valid YAML"):
        _rows(FileSource(str(tmp_path / "mlruns")), "runs")
    (run / "meta.yaml").write_text("- just\n- a list\n")
    with pytest.raises(InvalidState, match=r"r1/meta\.yaml: expected a mapping of fields, received list"):
        _rows(FileSource(str(tmp_path / "mlruns")), "runs")
    (run / "meta.yaml").write_text("run_uuid: r1\nexperiment_id: '0'\nstatus: 42\n")
    with pytest.raises(InvalidState, match=r"r1/meta\.yaml: run status 42"):
        _rows(FileSource(str(tmp_path / "mlruns")), "runs")
    (tmp_path / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
    with pytest.raises(InvalidState, match=r"0/meta\.yaml: it lacks experiment_id"):
        _rows(FileSource(str(tmp_path / "mlruns")), "experiments")


def test_malformed_metric_line_names_file_and_line(tmp_path: Path) -> None:
    run = _tiny_store(tmp_path / "mlruns")
    (run / "metrics" / "loss").write_text("10 0.5 1\n11 oops 2\n")
    with pytest.raises(InvalidState, match=r"metrics/loss, line 2: '11 oops 2'"):
        _rows(FileSource(str(tmp_path / "mlruns")), "metrics")
    (run / "metrics" / "loss").write_text("10 0.5 1 2\n")
    with pytest.raises(InvalidState, match=r"line 1: '10 0.5 1 2' has 4 fields. Expected 2, 3, or 5"):
        _rows(FileSource(str(tmp_path / "mlruns")), "metrics")


def test_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    run = _tiny_store(tmp_path / "mlruns")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    os.symlink(secret, run / "params" / "stolen")
    with pytest.raises(InvalidState, match="cannot be read safely.*outside"):
        _rows(FileSource(str(tmp_path / "mlruns")), "params")
    os.remove(run / "params" / "stolen")
    os.symlink(tmp_path, tmp_path / "mlruns" / "0" / "r1" / "inputs")  # a folder link leading out
    with pytest.raises(InvalidState, match="cannot be read safely"):
        _rows(FileSource(str(tmp_path / "mlruns")), "inputs")


def test_skips_what_mlflow_skips(tmp_path: Path) -> None:
    run = _tiny_store(tmp_path / "mlruns")
    shutil.copytree(run, tmp_path / "mlruns" / "0" / "r2")  # its meta.yaml still says r1: MLflow ignores it
    (tmp_path / "mlruns" / "0" / "not-a-run").mkdir()  # no meta.yaml: an artifact folder, say
    source = FileSource(str(tmp_path / "mlruns"))
    assert [r["run_uuid"] for r in _rows(source, "runs")] == ["r1"]


def test_detection(tmp_path: Path) -> None:
    assert not is_mlflow_file_store(str(tmp_path))
    _tiny_store(tmp_path / "mlruns")
    assert is_mlflow_file_store(str(tmp_path / "mlruns"))
    assert is_mlflow_file_store((tmp_path / "mlruns").as_uri())
    registry_only = tmp_path / "registry"
    _write(registry_only / "models" / "m" / "meta.yaml", "name: m\n")
    assert is_mlflow_file_store(str(registry_only))
    ours = tmp_path / "ours"
    _write(ours / "mltrail.db", "")
    (ours / ".trash").mkdir()
    assert not is_mlflow_file_store(str(ours))
    assert not is_mlflow_file_store(str(tmp_path / "absent"))
    with pytest.raises(InvalidParameterValue, match="is not a folder"):
        FileSource(str(tmp_path / "absent"))


def test_deleted_experiment_artifacts_are_found_in_trash(tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    _tiny_store(root)
    gone = root / ".trash" / "7"
    _write(gone / "meta.yaml", f"artifact_location: {(root / '7').as_uri()}\nexperiment_id: '7'\n"
                               "lifecycle_stage: deleted\nname: gone\n")
    _write(gone / "r7" / "meta.yaml", f"artifact_uri: {(root / '7' / 'r7' / 'artifacts').as_uri()}\n"
                                      "experiment_id: '7'\nrun_id: r7\nlifecycle_stage: deleted\nstatus: 4\n")
    _write(gone / "r7" / "artifacts" / "a.txt", "x")
    source = FileSource(root.as_uri())
    roots = {(r.kind, r.entity_id): r.uri for r in source.artifact_roots()}
    assert roots[("run", "r7")] == (root / ".trash" / "7" / "r7" / "artifacts").as_uri()
    assert roots[("experiment", "7")] == (root / ".trash" / "7").as_uri()
    exp = {r["experiment_id"]: r for r in _rows(source, "experiments")}[7]
    assert exp["lifecycle_stage"] == "deleted" and exp["artifact_location"] == roots[("experiment", "7")]
    run = {r["run_uuid"]: r for r in _rows(source, "runs")}["r7"]
    assert run["artifact_uri"] == roots[("run", "r7")]  # the rows say where the files are, as the roots do


def test_a_copied_store_finds_its_artifacts_where_it_now_is(tmp_path: Path) -> None:
    old = tmp_path / "old-machine" / "mlruns"  # never created: the store was copied from elsewhere
    root = tmp_path / "mlruns"
    _write(root / "5" / "meta.yaml", f"artifact_location: {(old / '5').as_uri()}\nexperiment_id: '5'\nname: e\n")
    _write(root / "5" / "r5" / "meta.yaml", f"artifact_uri: {old / '5' / 'r5' / 'artifacts'}\nexperiment_id: '5'\n"
                                            "run_id: r5\nstatus: 3\n")
    _write(root / "5" / "r5" / "artifacts" / "a.txt", "x")
    elsewhere = "s3://bucket/5/r6/artifacts"  # not local: left as the source has it
    _write(root / "5" / "r6" / "meta.yaml", f"artifact_uri: {elsewhere}\nexperiment_id: '5'\nrun_id: r6\n")
    _write(root / "models" / "m" / "meta.yaml", "name: m\ncreation_timestamp: 1\n")
    _write(root / "models" / "m" / "version-1" / "meta.yaml",
           f"version: 1\nsource: runs:/r5/model\nstorage_location: {old / '5' / 'r5' / 'artifacts' / 'model'}\n")
    _write(root / "models" / "m" / "version-2" / "meta.yaml", "version: 2\nsource: runs:/r5/model\n")
    source = FileSource(str(root))
    roots = {(r.kind, r.entity_id): r.uri for r in source.artifact_roots()}
    assert roots[("experiment", "5")] == (root / "5").as_uri()
    assert roots[("run", "r5")] == str(root / "5" / "r5" / "artifacts")
    assert roots[("run", "r6")] == elsewhere
    assert {r["run_uuid"]: r["artifact_uri"] for r in _rows(source, "runs")} == {
        "r5": roots[("run", "r5")], "r6": elsewhere}
    here = str(root / "5" / "r5" / "artifacts" / "model")
    assert [(v["version"], v["source"], v["storage_location"]) for v in _rows(source, "model_versions")] == [
        (1, "runs:/r5/model", here), (2, "runs:/r5/model", here)]
