"""`SqlSource` over databases the real MLflow 3.17.2 wrote: every row read equals what MLflow's client reads.

The stores come from `mlflow_store_maker.py` (see conftest); older schema revisions are made with
MLflow's own Alembic migrations, stopped at a 2.x and a 1.x revision, and filled with plain SQL.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from mltrail.errors import InvalidParameterValue
from mltrail.interop.mlflow.records import BATCH_ROWS, TABLE_ORDER
from mltrail.interop.mlflow.sql_source import SqlSource, is_mlflow_database
from mltrail.store import clear_cache, get_store

pytestmark = pytest.mark.slow

MAX_DOUBLE = 1.7976931348623157e308


def read_all(source: SqlSource) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in TABLE_ORDER:
        tables[table] = []
        for batch in source.batches(table):
            assert batch.table == table and 0 < len(batch.rows) <= BATCH_ROWS
            tables[table].extend(batch.rows)
    return tables


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def sqlite_read(mlflow_sqlite_store):
    db = Path(mlflow_sqlite_store["root"]) / "mlflow.db"
    before = _files(db.parent)
    source = SqlSource(mlflow_sqlite_store["uri"])
    try:
        tables = read_all(source)
        counts = source.counts()
        roots = list(source.artifact_roots())
        describe = source.describe()
    finally:
        source.close()
    return {"tables": tables, "counts": counts, "roots": roots, "describe": describe, "before": before,
            "after": _files(db.parent), "expected": mlflow_sqlite_store["expected"]}


def _same_value(got: float, want: float) -> bool:
    """MLflow's client reads ±inf back as ±max double (its storage stand-in); we restore ±inf."""
    if isinstance(want, float) and math.isnan(want):
        return math.isnan(got)
    if want in (MAX_DOUBLE, -MAX_DOUBLE):
        return got == math.copysign(math.inf, want)
    return got == want


def _by(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row[key]].append(row)
    return out


def check_experiments(tables, expected):
    rows = {str(r["experiment_id"]): r for r in tables["experiments"]}
    assert set(rows) == {e["experiment_id"] for e in expected["experiments"]}
    tags = _by(tables["experiment_tags"], "experiment_id")
    for exp in expected["experiments"]:
        row = rows[exp["experiment_id"]]
        for field in ("name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time"):
            assert row[field] == exp[field], (exp["name"], field)
        assert {t["key"]: t["value"] for t in tags[row["experiment_id"]]} == exp["tags"]
    assert {e["name"]: e["lifecycle_stage"] for e in expected["experiments"]}["interop-deleted"] == "deleted"


def check_runs(tables, expected):
    runs = {r["run_uuid"]: r for r in tables["runs"]}
    assert set(runs) == {r["info"]["run_id"] for r in expected["runs"]}
    params, tags, points = (_by(tables[t], "run_uuid") for t in ("params", "tags", "metrics"))
    for want in expected["runs"]:
        info = want["info"]
        row = runs[info["run_id"]]
        assert row["name"] == info["run_name"]
        assert str(row["experiment_id"]) == info["experiment_id"]
        for field in ("user_id", "status", "start_time", "end_time", "artifact_uri", "lifecycle_stage"):
            assert row[field] == info[field], (info["run_name"], field)
        assert (row["deleted_time"] is not None) == (info["lifecycle_stage"] == "deleted")
        assert {p["key"]: p["value"] for p in params[row["run_uuid"]]} == want["params"]
        assert {t["key"]: t["value"] for t in tags[row["run_uuid"]]} == want["tags"]
        history = _by(points[row["run_uuid"]], "key")
        assert set(history) == set(want["metric_history"])
        for key, want_points in want["metric_history"].items():
            got = history[key]
            assert len(got) == len(want_points), key
            order = sorted(want_points, key=lambda p: (p["step"], p["timestamp"]))
            for g, w in zip(got, order, strict=True):  # the reader gives each history by step
                assert (g["step"], g["timestamp"]) == (w["step"], w["timestamp"])
                assert _same_value(math.nan if g["is_nan"] else g["value"], w["value"]), (key, w)
                assert g["is_nan"] == math.isnan(w["value"])
                assert not math.isnan(g["value"])  # NaN is 0 plus the flag, as mltrail's store keeps it
                assert g["model_id"] is None
            # the latest value MLflow shows: the point with the highest (step, timestamp)
            latest = max(got, key=lambda p: (p["step"], p["timestamp"]))
            assert _same_value(math.nan if latest["is_nan"] else latest["value"], want["metrics"][key])
    children = [r for r in expected["runs"] if r["info"]["run_name"].startswith("child-")]
    parent = next(r for r in expected["runs"] if r["info"]["run_name"] == "parent")
    assert len(children) == 2
    for child in children:
        assert {t["key"]: t["value"] for t in tags[child["info"]["run_id"]]}["mlflow.parentRunId"] == \
            parent["info"]["run_id"]


def check_history_values(tables, expected):
    """The long history's NaN and ±inf points, read as they were logged."""
    run = next(r for r in expected["runs"] if r["info"]["run_name"] == "long-history")
    points = {(p["key"], p["step"]): p for p in tables["metrics"] if p["run_uuid"] == run["info"]["run_id"]}
    assert len([p for p in points.values() if p["key"] != "model_mse"]) == 3 * 2000
    assert points[("loss", 11)]["value"] == math.inf
    assert points[("val_loss", 13)]["value"] == -math.inf
    assert points[("lr", 7)]["is_nan"] and points[("lr", 7)]["value"] == 0.0
    assert points[("lr", 8)]["value"] == pytest.approx(1 / 9 + 1.0)


def check_inputs_outputs(tables, expected):
    datasets = {d["dataset_uuid"]: d for d in tables["datasets"]}
    input_tags = _by(tables["input_tags"], "input_uuid")
    got: dict[str, list[dict[str, Any]]] = defaultdict(list)
    models_in: dict[str, list[str]] = defaultdict(list)
    for edge in tables["inputs"]:
        assert edge["destination_type"] == "RUN"
        if edge["source_type"] == "MODEL_INPUT":
            models_in[edge["destination_id"]].append(edge["source_id"])
            continue
        assert edge["source_type"] == "DATASET"
        d = datasets[edge["source_id"]]
        got[edge["destination_id"]].append({
            "name": d["name"], "digest": d["digest"], "source_type": d["dataset_source_type"],
            "source": d["dataset_source"], "schema": d["dataset_schema"], "profile": d["dataset_profile"],
            "tags": {t["name"]: t["value"] for t in input_tags[edge["input_uuid"]]}})
    outputs = _by(tables["run_outputs"], "run_uuid")
    for run in expected["runs"]:
        run_id = run["info"]["run_id"]
        assert got.get(run_id, []) == run["dataset_inputs"]
        assert sorted(models_in.get(run_id, [])) == sorted(run["model_inputs"])
        assert [{"model_id": o["model_id"], "step": o["step"]} for o in outputs.get(run_id, [])] == \
            run["model_outputs"]
    assert any(run["dataset_inputs"] for run in expected["runs"])
    assert any(run["model_outputs"] for run in expected["runs"])


def check_logged_models(tables, expected):
    models = {m["model_id"]: m for m in tables["logged_models"]}
    assert set(models) == {m["model_id"] for m in expected["logged_models"]}
    params, tags, metrics = (_by(tables[t], "model_id") for t in
                             ("logged_model_params", "logged_model_tags", "logged_model_metrics"))
    for want in expected["logged_models"]:
        row = models[want["model_id"]]
        assert str(row["experiment_id"]) == want["experiment_id"]
        for ours, theirs in (("name", "name"), ("artifact_location", "artifact_location"),
                             ("creation_timestamp_ms", "creation_timestamp"),
                             ("last_updated_timestamp_ms", "last_updated_timestamp"), ("model_type", "model_type"),
                             ("source_run_id", "source_run_id"), ("status", "status"),
                             ("status_message", "status_message")):
            assert row[ours] == want[theirs], ours
        assert row["lifecycle_stage"] == "active"
        assert {p["param_key"]: p["param_value"] for p in params[row["model_id"]]} == want["params"]
        assert {t["tag_key"]: t["tag_value"] for t in tags[row["model_id"]]} == want["tags"]
        got = sorted((m["metric_name"], m["metric_step"], m["metric_timestamp_ms"], m["metric_value"], m["run_id"],
                      m["dataset_name"], m["dataset_digest"]) for m in metrics[row["model_id"]])
        assert got == sorted((m["key"], m["step"], m["timestamp"], m["value"], m["run_id"], m["dataset_name"],
                              m["dataset_digest"]) for m in want["metrics"])
    assert expected["logged_models"] and expected["logged_models"][0]["params"]["units"] == "3"


def check_registry(tables, expected):
    models = {m["name"]: m for m in tables["registered_models"]}
    by_id = {m["id"]: m for m in tables["registered_models"]}
    assert set(models) == {m["name"] for m in expected["registered_models"]}
    tags = _by(tables["registered_model_tags"], "rm_id")
    aliases = _by(tables["registered_model_aliases"], "rm_id")
    for want in expected["registered_models"]:
        row = models[want["name"]]
        assert (row["creation_time"], row["last_updated_time"], row["description"]) == \
            (want["creation_timestamp"], want["last_updated_timestamp"], want["description"])
        assert {t["key"]: t["value"] for t in tags[row["id"]]} == want["tags"]
        assert {a["alias"]: str(a["version"]) for a in aliases[row["id"]]} == \
            {k: str(v) for k, v in want["aliases"].items()}
        assert row["last_version"] == max(int(v["version"]) for v in expected["model_versions"]
                                          if v["name"] == want["name"])
    version_tags: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
    for t in tables["model_version_tags"]:
        version_tags[(t["rm_id"], t["version"])][t["key"]] = t["value"]
    got = {(by_id[v["rm_id"]]["name"], v["version"]): v for v in tables["model_versions"]}
    assert set(got) == {(v["name"], int(v["version"])) for v in expected["model_versions"]}
    for want in expected["model_versions"]:
        row = got[(want["name"], int(want["version"]))]
        for ours, theirs in (("creation_time", "creation_timestamp"), ("last_updated_time", "last_updated_timestamp"),
                             ("description", "description"), ("user_id", "user_id"),
                             ("current_stage", "current_stage"), ("source", "source"), ("run_id", "run_id"),
                             ("status", "status"), ("status_message", "status_message"), ("run_link", "run_link"),
                             ("model_id", "model_id")):
            assert row[ours] == want[theirs], ours
        assert row["storage_location"].endswith("/artifacts")  # where MLflow resolved the model's files
        assert version_tags[(row["rm_id"], row["version"])] == want["tags"]


CHECKS = [check_experiments, check_runs, check_history_values, check_inputs_outputs, check_logged_models,
          check_registry]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_sqlite_rows_equal_what_mlflow_reads(sqlite_read, check):
    check(sqlite_read["tables"], sqlite_read["expected"])


def test_counts_match_the_rows_read(sqlite_read):
    assert sqlite_read["counts"] == {t: len(rows) for t, rows in sqlite_read["tables"].items()}
    assert sqlite_read["counts"]["metrics"] > 6000


def test_rows_have_every_column_of_our_tables(sqlite_read):
    from mltrail.store.sql import registry_schema, schema

    del registry_schema  # its tables join schema.metadata
    for table, rows in sqlite_read["tables"].items():
        # metrics' `id` is the destination's own counter: the reader leaves it out
        columns = [c.name for c in schema.metadata.tables[table].columns if (table, c.name) != ("metrics", "id")]
        for row in rows:
            assert list(row) == columns, table


def test_artifact_roots_name_every_experiment_run_and_model(sqlite_read):
    expected = sqlite_read["expected"]
    roots = {(r.kind, r.entity_id): r.uri for r in sqlite_read["roots"]}
    for exp in expected["experiments"]:
        assert roots[("experiment", exp["experiment_id"])] == exp["artifact_location"]
    for run in expected["runs"]:
        assert roots[("run", run["info"]["run_id"])] == run["info"]["artifact_uri"]
    for model in expected["logged_models"]:
        assert roots[("logged_model", model["model_id"])] == model["artifact_location"]
    assert len(roots) == len(expected["experiments"]) + len(expected["runs"]) + len(expected["logged_models"])


def test_reading_changes_nothing_in_the_source(sqlite_read):
    # the same files, byte for byte: no journal, WAL or shm file appeared, the database is unchanged
    assert sqlite_read["after"] == sqlite_read["before"]


def test_describe_names_kind_location_and_revision(sqlite_read, mlflow_sqlite_store):
    text = sqlite_read["describe"]
    assert "SQLite" in text and mlflow_sqlite_store["uri"] in text
    assert "revision dc11669786a5" in text  # MLflow 3.17.2's head


def test_is_mlflow_database(mlflow_sqlite_store, tmp_path):
    assert is_mlflow_database(mlflow_sqlite_store["uri"])
    ours = f"sqlite:///{tmp_path}/mltrail.db"
    clear_cache()
    get_store(ours, artifact_root=str(tmp_path / "artifacts"))
    clear_cache()
    assert not is_mlflow_database(ours)
    with pytest.raises(InvalidParameterValue, match="is not an MLflow tracking database"):
        SqlSource(ours)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert not is_mlflow_database(f"sqlite:///{empty}")


def test_a_missing_file_is_refused_and_not_created(tmp_path):
    missing = tmp_path / "nope.db"
    with pytest.raises(InvalidParameterValue, match="No MLflow database at"):
        SqlSource(f"sqlite:///{missing}")
    assert not missing.exists()
    with pytest.raises(InvalidParameterValue, match="expected sqlite:/// or postgresql://"):
        SqlSource("mysql://u@localhost/db")


def test_an_unknown_table_is_refused(mlflow_sqlite_store):
    source = SqlSource(mlflow_sqlite_store["uri"])
    try:
        with pytest.raises(InvalidParameterValue, match="Unknown table 'latest_metrics'"):
            list(source.batches("latest_metrics"))
    finally:
        source.close()


# ---------------------------------------------------------------- older schema revisions
OLD_SCHEMA = """
import sys, sqlalchemy
from alembic import command
from mlflow.store.db.utils import _get_alembic_config
from mlflow.store.tracking.dbmodels.initial_models import Base
url, rev = sys.argv[1], sys.argv[2]
engine = sqlalchemy.create_engine(url)
Base.metadata.create_all(engine)
config = _get_alembic_config(url)
with engine.begin() as conn:
    config.attributes["connection"] = conn
    command.upgrade(config, rev)
"""
REV_2X = "0584bdc529eb"  # MLflow 2.x's last revision before logged models (3.0)
REV_1X = "89d4b8295536"  # MLflow 1.x: no registry, datasets, deleted_time or experiment times


def _old_database(python: Path, path: Path, revision: str) -> sqlite3.Connection:
    script = path.parent / "old_schema.py"
    script.write_text(OLD_SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
    proc = subprocess.run([str(python), str(script), f"sqlite:///{path}", revision], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sqlite3.connect(path)


def _insert(conn: sqlite3.Connection, table: str, **values: Any) -> None:
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    values = {k: v for k, v in values.items() if k in have}
    conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                 list(values.values()))


def _fill_tracking(conn: sqlite3.Connection) -> None:
    _insert(conn, "experiments", experiment_id=1, name="old", artifact_location="/old/1", lifecycle_stage="active",
            creation_time=5, last_update_time=6)
    _insert(conn, "runs", run_uuid="a" * 32, name="r", source_type="LOCAL", source_name="train.py", user_id="u",
            status="FINISHED", start_time=10, end_time=20, lifecycle_stage="deleted", artifact_uri="/old/1/a",
            experiment_id=1, deleted_time=30)
    for step, value, is_nan in ((0, MAX_DOUBLE, 0), (1, -MAX_DOUBLE, 0), (2, 0.0, 1), (3, 0.5, 0)):
        _insert(conn, "metrics", key="loss", value=value, timestamp=100 + step, run_uuid="a" * 32, step=step,
                is_nan=is_nan)
    _insert(conn, "params", key="lr", value="0.1", run_uuid="a" * 32)
    _insert(conn, "tags", key="mlflow.runName", value="r", run_uuid="a" * 32)


def test_a_2x_database_reads_without_logged_models(mlflow_python, tmp_path):
    path = tmp_path / "old2x.db"
    conn = _old_database(mlflow_python, path, REV_2X)
    _fill_tracking(conn)
    _insert(conn, "registered_models", name="m", creation_time=1, last_updated_time=None, description="d")
    for version, stage in ((1, "None"), (2, "Production"), (3, "Deleted_Internal")):
        _insert(conn, "model_versions", name="m", version=version, creation_time=2, last_updated_time=3,
                current_stage=stage, source="/old/1/a/model", run_id="a" * 32, status="READY")
        _insert(conn, "model_version_tags", key="k", value=str(version), name="m", version=version)
    _insert(conn, "registered_model_aliases", alias="prod", version=2, name="m")
    _insert(conn, "datasets", dataset_uuid="d" * 32, experiment_id=1, name="ds", digest="abc",
            dataset_source_type="local", dataset_source="{}")
    _insert(conn, "inputs", input_uuid="i" * 32, source_type="DATASET", source_id="d" * 32,
            destination_type="RUN", destination_id="a" * 32)
    _insert(conn, "input_tags", input_uuid="i" * 32, name="mlflow.data.context", value="train")
    conn.commit()
    conn.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    source = SqlSource(f"sqlite:///{path}")
    try:
        tables, counts = read_all(source), source.counts()
        assert f"revision {REV_2X}" in source.describe()
    finally:
        source.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert counts == {t: len(rows) for t, rows in tables.items()}
    for table in ("logged_models", "logged_model_params", "logged_model_tags", "logged_model_metrics",
                  "run_outputs"):
        assert tables[table] == [], table
    assert [p["value"] for p in tables["metrics"]] == [math.inf, -math.inf, 0.0, 0.5]
    assert [p["is_nan"] for p in tables["metrics"]] == [False, False, True, False]
    assert tables["runs"][0]["deleted_time"] == 30 and tables["runs"][0]["lifecycle_stage"] == "deleted"
    [model] = tables["registered_models"]
    # a model that was never updated has no last_updated_time in MLflow; ours requires one
    assert (model["id"], model["name"], model["last_updated_time"], model["last_version"]) == (1, "m", 1, 3)
    assert [(v["version"], v["current_stage"]) for v in tables["model_versions"]] == [(1, "None"), (2, "Production")]
    # no storage_location recorded (MLflow before 2.x's later releases): the files are where the source says
    assert [v["storage_location"] for v in tables["model_versions"]] == ["/old/1/a/model"] * 2
    assert [(t["version"], t["value"]) for t in tables["model_version_tags"]] == [(1, "1"), (2, "2")]
    assert tables["registered_model_aliases"] == [{"rm_id": 1, "alias": "prod", "version": 2}]
    assert tables["input_tags"] == [{"input_uuid": "i" * 32, "name": "mlflow.data.context", "value": "train"}]


def test_a_1x_database_reads_with_our_defaults(mlflow_python, tmp_path):
    path = tmp_path / "old1x.db"
    conn = _old_database(mlflow_python, path, REV_1X)
    _fill_tracking(conn)
    conn.commit()
    conn.close()
    source = SqlSource(f"sqlite:///{path}")
    try:
        tables, counts = read_all(source), source.counts()
    finally:
        source.close()
    assert counts == {t: len(rows) for t, rows in tables.items()}
    [exp] = tables["experiments"]
    assert (exp["name"], exp["creation_time"], exp["last_update_time"]) == ("old", None, None)
    [run] = tables["runs"]
    assert run["deleted_time"] is None and run["lifecycle_stage"] == "deleted"
    assert [p["value"] for p in tables["metrics"]] == [math.inf, -math.inf, 0.0, 0.5]
    for table in ("datasets", "inputs", "registered_models", "model_versions", "registered_model_aliases"):
        assert tables[table] == [], table


# ---------------------------------------------------------------- PostgreSQL
@pytest.mark.postgres
def test_postgres_rows_equal_what_mlflow_reads(mlflow_postgres_store):
    source = SqlSource(mlflow_postgres_store["uri"])
    try:
        tables, counts = read_all(source), source.counts()
        assert "PostgreSQL" in source.describe()
        assert is_mlflow_database(mlflow_postgres_store["uri"])
    finally:
        source.close()
    assert counts == {t: len(rows) for t, rows in tables.items()}
    for check in CHECKS:
        check(tables, mlflow_postgres_store["expected"])
