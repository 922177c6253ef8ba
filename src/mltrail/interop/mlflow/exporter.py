"""`export_store`: write an mltrail SQL store out as an MLflow 3.17 store (SQLite or FileStore) that MLflow opens.

MLflow's schema comes from `mlflow_schema_sqlite.sql`, dumped from MLflow itself by
`scripts/make_mlflow_schema.py` at MLflow's newest Alembic revision; we create those tables,
stamp that revision (so MLflow does not try to migrate) and insert our rows in MLflow's columns.
The differences of layout that matter:

- metric values: MLflow keeps NaN as 0 with `is_nan` set and ±inf as ±1.7976931348623157e308,
  and its metrics' primary key makes an identical (key, timestamp, step, value) point one row;
- registry rows are keyed by model name (ours by a surrogate id); logged-model params, tags and
  metrics carry their experiment id; a logged model's status is an integer;
- a run's model inputs are RUN_INPUT -> MODEL_INPUT rows of `inputs` (ours MODEL_INPUT -> RUN),
  and its model outputs RUN_OUTPUT -> MODEL_OUTPUT rows there (ours a `run_outputs` table).

Artifacts are copied beside the new database (`<db dir>/mlartifacts/<experiment id>/...`, or
`artifacts_dest`), and every artifact location and model version source pointing into the old
trees is rewritten to the new one. The source store is only read. A FileStore folder (`./mlruns`)
is written by `file_export.py` from the same source rows and the same artifact copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, Table, case, select

from mltrail.errors import InvalidParameterValue, MltrailException, ResourceAlreadyExists
from mltrail.interop.mlflow.file_export import LOGGED_MODEL_STATUS, FileStoreWriter, experiment_dir
from mltrail.interop.mlflow.records import BATCH_ROWS
from mltrail.store.sql import registry_schema as rt
from mltrail.store.sql import schema as t

SCHEMA_FILE = "mlflow_schema_sqlite.sql"
_REVISION_MARK = "-- alembic_version:"
# MLflow's stand-ins for infinities (sqlalchemy_store.log_metric)
_MLFLOW_INF = 1.7976931348623157e308
_DEFAULT_WORKSPACE = ("default", "Default workspace for legacy resources")


@dataclass
class ExportReport:
    """What `export_store` wrote: MLflow rows per table, the artifact root, what could not be copied."""

    destination: str
    revision: str
    artifact_root: str
    rows: dict[str, int] = field(default_factory=dict)
    artifact_files: int = 0
    left_in_place: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"Exported to {self.destination} (MLflow schema revision {self.revision}).",
               f"Artifacts: {self.artifact_files} files copied under {self.artifact_root}."]
        out += [f"  {table}: {n}" for table, n in self.rows.items()]
        out += [f"Artifacts left in place (could not be copied, still referenced): {uri}"
                for uri in self.left_in_place]
        return out


def mlflow_schema() -> tuple[str, str]:
    """MLflow's SQLite DDL and the Alembic revision it is at."""
    ddl = resources.files("mltrail.interop.mlflow").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    first = ddl.split("\n", 1)[0]
    if not first.startswith(_REVISION_MARK):
        raise MltrailException(f"{SCHEMA_FILE} does not start with {_REVISION_MARK!r}: regenerate it with "
                               "scripts/make_mlflow_schema.py.")
    return ddl, first[len(_REVISION_MARK):].strip()


def export_store(source_uri: str, to: str, artifacts_dest: str | None = None) -> ExportReport:
    """Write the mltrail store at `source_uri` as a new MLflow store at `to`.

    Args:
        source_uri: an mltrail SQL store (`sqlite:///...` or `postgresql://...`), at the current schema.
        to: the MLflow store to create: `sqlite:///path/mlflow.db` (it must not hold tables yet), or a
            FileStore folder (`./mlruns`, `file:///...`; it must be new or empty). Nothing is merged.
        artifacts_dest: where to copy the artifacts (default: `mlartifacts/` beside the new database; for a
            FileStore, inside its experiment folders as MLflow lays them out).
    """
    folder = _file_store_folder(to)
    if folder is not None:
        return _export_file_store(source_uri, folder, artifacts_dest)
    db_path = _destination_path(to)
    artifact_root = os.path.abspath(artifacts_dest or os.path.join(os.path.dirname(db_path), "mlartifacts"))
    _check_empty_folder(artifact_root, "copy artifacts to", "with --artifacts")
    engine = _open_source(source_uri)
    ddl, revision = mlflow_schema()
    report = ExportReport(destination=f"sqlite:///{db_path}", revision=revision, artifact_root=artifact_root)
    created = not os.path.exists(db_path) or os.path.getsize(db_path) == 0
    root_created = not os.path.exists(artifact_root)
    dest = sqlite3.connect(db_path, isolation_level=None)
    try:
        with engine.connect() as conn, conn.begin():
            relocator = _copy_artifacts(conn, artifact_root, report, lambda exp_id, _stage: os.path.join(
                artifact_root, str(exp_id)))
            # a new file, removed if we fail half-way: no need for a journal or for syncing while we fill it
            for pragma in ("synchronous=OFF", "cache_size=-200000", *(("journal_mode=OFF",) if created else ())):
                dest.execute(f"PRAGMA {pragma}")
            dest.executescript(ddl)
            dest.execute("BEGIN")
            dest.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))
            dest.execute("INSERT INTO workspaces (name, description) VALUES (?, ?)", _DEFAULT_WORKSPACE)
            _Writer(conn, dest, relocator, report).write_all()
            dest.execute("COMMIT")
    except BaseException:
        dest.close()
        if created:
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(db_path + suffix)
        if root_created:
            shutil.rmtree(artifact_root, ignore_errors=True)
        raise
    finally:
        engine.dispose()
    dest.close()
    return report


def _export_file_store(source_uri: str, folder: str, artifacts_dest: str | None) -> ExportReport:
    """The FileStore flavour of `export_store`: folders and YAML instead of tables."""
    _check_empty_folder(folder, "export to", "for the FileStore")
    artifact_root = os.path.abspath(artifacts_dest) if artifacts_dest else folder
    if artifact_root != folder:
        _check_empty_folder(artifact_root, "copy artifacts to", "with --artifacts")
    engine = _open_source(source_uri)
    report = ExportReport(destination=Path(folder).as_uri(), revision="FileStore", artifact_root=artifact_root)
    created = [p for p in {folder, artifact_root} if not os.path.exists(p)]
    try:
        with engine.connect() as conn, conn.begin():
            def exp_dir(exp_id: int, stage: str) -> str:  # beside the meta.yaml, as MLflow keeps them
                return experiment_dir(folder, exp_id, stage) if artifact_root == folder \
                    else os.path.join(artifact_root, str(exp_id))

            relocator = _copy_artifacts(conn, artifact_root, report, exp_dir, as_uri=True)
            writer = FileStoreWriter(conn, folder, relocator)
            writer.write_all()
            report.rows = writer.rows
    except BaseException:
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        engine.dispose()
    return report


def _file_store_folder(to: str) -> str | None:
    """The folder `to` names when it is a FileStore destination (`file:` or a plain path), else None."""
    from mltrail.tracking_uri import local_dir_of, scheme_of

    if scheme_of(to) not in ("", "file"):
        return None
    folder = local_dir_of(to)
    return None if folder is None else os.path.abspath(folder)


def _destination_path(to: str) -> str:
    if to.startswith("sqlite:///"):
        path = os.path.abspath(to[len("sqlite:///"):])
        if path.endswith(":memory:"):
            raise InvalidParameterValue(f"Cannot export to {to!r}: expected a database file, sqlite:///path/mlflow.db.")
        _check_no_tables(path, to)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path
    if to.startswith(("postgresql", "postgres:", "mysql", "mssql")):
        raise InvalidParameterValue(
            f"Exporting to {to.split(':', 1)[0]} is not supported: expected sqlite:///path/mlflow.db "
            "or a FileStore folder (MLflow can move a SQLite store to another database itself).")
    raise InvalidParameterValue(
        f"Cannot export to {to!r}: expected an MLflow store, sqlite:///path/mlflow.db or a FileStore folder "
        "(./mlruns, file:///path/mlruns).")


def _check_no_tables(path: str, uri: str) -> None:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    except sqlite3.DatabaseError as e:
        raise InvalidParameterValue(f"Cannot export to {uri!r}: the file exists and is not a SQLite database "
                                    f"({e}).") from None
    finally:
        conn.close()
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise ResourceAlreadyExists(
            f"Cannot export to {uri!r}: the database already has tables ({shown}). export-mlflow writes a new "
            "MLflow store and never merges into one; choose a new file.")


def _check_empty_folder(path: str, what: str, hint: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise InvalidParameterValue(f"Cannot {what} {path!r}: it exists and is not a directory.")
    if os.path.isdir(path) and os.listdir(path):
        raise ResourceAlreadyExists(
            f"Cannot {what} {path!r}: the directory is not empty. export-mlflow never merges; choose a new or "
            f"empty directory {hint}.")


def _open_source(source_uri: str) -> Any:
    from mltrail.store.sql.engine import current_revision, make_engine
    from mltrail.store.sql.migrations import HEAD

    if not source_uri.startswith(("sqlite:", "postgresql", "postgres:")):
        raise InvalidParameterValue(
            f"Cannot export from {source_uri!r}: expected an mltrail database URI (sqlite:///... or "
            "postgresql://...); a tracking server's store is exported on the server's machine.")
    if source_uri.startswith("sqlite:///") and not os.path.exists(source_uri[len("sqlite:///"):]):
        raise InvalidParameterValue(f"Cannot export from {source_uri!r}: the database file does not exist.")
    engine = make_engine(source_uri)
    revision = current_revision(engine)
    if revision != HEAD:
        engine.dispose()
        what = "is not an mltrail store (no schema revision)" if revision is None else \
            f"is at mltrail schema revision {revision!r}, expected {HEAD!r}: run `mltrail db upgrade` first"
        raise InvalidParameterValue(f"Cannot export from {source_uri!r}: it {what}.")
    return engine


# ---------------------------------------------------------------------------------------------- artifacts

class _Relocator:
    """Rewrites URIs under an old artifact tree to the same place under its copy (longest prefix wins)."""

    def __init__(self, as_uri: bool = False) -> None:
        self._moves: dict[str, str] = {}
        self._as_uri = as_uri

    def add(self, old: str, new: str) -> None:
        self._moves[old.rstrip("/")] = Path(new).as_uri() if self._as_uri else new

    def __call__(self, uri: str | None) -> str | None:
        if uri is None:
            return None
        for old in sorted(self._moves, key=len, reverse=True):
            if uri == old or uri.startswith(old + "/"):
                return self._moves[old] + uri[len(old):]
        return None

    def or_same(self, uri: str | None) -> str | None:
        moved = self(uri)
        return uri if moved is None else moved


def _copy_artifacts(conn: Connection, root: str, report: ExportReport, exp_dir: Callable[[int, str], str],
                    as_uri: bool = False) -> _Relocator:
    """Copy each experiment's artifact tree to `exp_dir(id, lifecycle stage)` under `root` (and any run's or
    model's tree that lives outside its experiment's); the relocator gives the new places (`file://` URIs
    when `as_uri`, as a FileStore writes them; plain paths as MLflow's SQL store does)."""
    relocator = _Relocator(as_uri)
    exp_dirs: dict[int, str] = {}
    e = t.experiments
    for exp_id, location, stage in conn.execute(select(e.c.experiment_id, e.c.artifact_location, e.c.lifecycle_stage)):
        exp_dirs[exp_id] = exp_dir(exp_id, stage)
        if location and _copy_tree(location, exp_dirs[exp_id], report):
            relocator.add(location, exp_dirs[exp_id])
    os.makedirs(root, exist_ok=True)
    outside = [(r.experiment_id, r.artifact_uri, os.path.join(str(r.run_uuid), "artifacts"))
               for r in conn.execute(select(t.runs.c.experiment_id, t.runs.c.artifact_uri, t.runs.c.run_uuid))]
    lm = t.logged_models
    outside += [(r.experiment_id, r.artifact_location, os.path.join("models", str(r.model_id), "artifacts"))
                for r in conn.execute(select(lm.c.experiment_id, lm.c.artifact_location, lm.c.model_id))]
    for exp_id, uri, rel in outside:
        if uri and relocator(uri) is None:
            new = os.path.join(exp_dirs.get(exp_id, os.path.join(root, str(exp_id))), rel)
            if _copy_tree(uri, new, report):
                relocator.add(uri, new)
    return relocator


def _copy_tree(uri: str, dest: str, report: ExportReport) -> bool:
    """Copy the tree at `uri` to `dest`; False (and noted in the report) when it cannot be read."""
    from mltrail.tracking_uri import local_dir_of

    local = local_dir_of(uri)
    if local is not None:
        if not os.path.isdir(local):
            return True  # nothing logged there yet: the new location is as empty as the old one
        copied = 0

        def count(src: str, dst: str) -> object:
            nonlocal copied
            copied += 1
            return shutil.copy2(src, dst)

        shutil.copytree(local, dest, copy_function=count, dirs_exist_ok=True)
        report.artifact_files += copied
        return True
    from mltrail.store.artifact import get_artifact_repository

    try:
        get_artifact_repository(uri).download_artifacts(dst_path=dest)
    except (MltrailException, OSError):
        report.left_in_place.append(uri)
        return False
    report.artifact_files += sum(len(files) for _, _, files in os.walk(dest))
    return True


# ---------------------------------------------------------------------------------------------- rows

def _mlflow_points(table: Table) -> Select[Any]:
    """A metric table's rows in MLflow's encoding, computed by the database (millions of rows: no Python per row).

    NaN is 0 with `is_nan` set (ours already is), ±inf the largest finite double of that sign.
    """
    value = table.c.value
    encoded = case((table.c.is_nan, 0.0), (value > _MLFLOW_INF, _MLFLOW_INF), (value < -_MLFLOW_INF, -_MLFLOW_INF),
                   else_=value)
    return select(table.c.run_uuid, table.c.key, table.c.step, table.c.timestamp, encoded,
                  case((table.c.is_nan, 1), else_=0))


class _Writer:
    """Streams each of our tables into MLflow's, batch by batch, inside the caller's transactions."""

    def __init__(self, conn: Connection, dest: sqlite3.Connection, relocate: _Relocator,
                 report: ExportReport) -> None:
        self.conn, self.dest, self.relocate, self.report = conn, dest, relocate, report
        self.model_experiment: dict[str, int] = {}
        self.model_names: dict[int, str] = {}

    def _rows(self, query: Table | Select[Any]) -> Iterator[list[Any]]:
        result = self.conn.execution_options(yield_per=BATCH_ROWS).execute(
            select(query) if isinstance(query, Table) else query)
        for part in result.partitions():
            yield list(part)

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], verb: str = "INSERT") -> None:
        if not rows:
            return
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        cur = self.dest.executemany(f'{verb} INTO "{table}" ({cols}) VALUES ({marks})', rows)
        self.report.rows[table] = self.report.rows.get(table, 0) + max(cur.rowcount, 0)

    def _copy(self, source: Table, table: str, columns: tuple[str, ...], shape: Any, verb: str = "INSERT") -> None:
        for part in self._rows(source):
            self._insert(table, columns, [shape(r) for r in part], verb)

    def write_all(self) -> None:
        sys_exp = ("experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time",
                   "last_update_time")
        self._copy(t.experiments, "experiments", sys_exp, lambda r: (
            r.experiment_id, r.name, self.relocate.or_same(r.artifact_location), r.lifecycle_stage,
            r.creation_time, r.last_update_time))
        self._copy(t.experiment_tags, "experiment_tags", ("experiment_id", "key", "value"), tuple)
        self._copy(t.runs, "runs", (
            "run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id", "status", "start_time",
            "end_time", "source_version", "lifecycle_stage", "artifact_uri", "experiment_id", "deleted_time"),
            lambda r: (r.run_uuid, r.name, "UNKNOWN", "", "", r.user_id, r.status, r.start_time, r.end_time, "",
                       r.lifecycle_stage, self.relocate.or_same(r.artifact_uri), r.experiment_id, r.deleted_time))
        self._copy(t.params, "params", ("run_uuid", "key", "value"), tuple)
        self._copy(t.tags, "tags", ("run_uuid", "key", "value"), tuple)
        # MLflow's metrics key is the whole point: a repeated identical point is one row there
        points = ("run_uuid", "key", "step", "timestamp", "value", "is_nan")
        for part in self._rows(_mlflow_points(t.metrics)):
            self._insert("metrics", points, part, verb="INSERT OR IGNORE")
        for part in self._rows(_mlflow_points(t.latest_metrics)):
            self._insert("latest_metrics", points, part)
        self._copy(t.datasets, "datasets", tuple(c.name for c in t.datasets.columns), tuple)
        self._copy(t.inputs, "inputs", ("input_uuid", "source_type", "source_id", "destination_type",
                                        "destination_id"), self._input)
        self._copy(t.input_tags, "input_tags", ("input_uuid", "name", "value"), tuple)
        self._write_logged_models()
        self._copy(t.run_outputs, "inputs", ("input_uuid", "source_type", "source_id", "destination_type",
                                             "destination_id", "step"), lambda r: (
            uuid.uuid4().hex, "RUN_OUTPUT", r.run_uuid, "MODEL_OUTPUT", r.model_id, r.step))
        self._write_registry()

    @staticmethod
    def _input(r: Any) -> tuple[Any, ...]:
        if r.source_type == "MODEL_INPUT" and r.destination_type == "RUN":  # ours model -> run, MLflow's run -> model
            return r.input_uuid, "RUN_INPUT", r.destination_id, "MODEL_INPUT", r.source_id
        return r.input_uuid, r.source_type, r.source_id, r.destination_type, r.destination_id

    def _write_logged_models(self) -> None:
        def model(r: Any) -> tuple[Any, ...]:
            self.model_experiment[r.model_id] = r.experiment_id
            return (r.model_id, r.experiment_id, r.name, self.relocate.or_same(r.artifact_location),
                    r.creation_timestamp_ms, r.last_updated_timestamp_ms, LOGGED_MODEL_STATUS.get(r.status, 0),
                    r.lifecycle_stage, r.model_type, r.source_run_id, r.status_message)

        self._copy(t.logged_models, "logged_models", (
            "model_id", "experiment_id", "name", "artifact_location", "creation_timestamp_ms",
            "last_updated_timestamp_ms", "status", "lifecycle_stage", "model_type", "source_run_id",
            "status_message"), model)
        exp = self.model_experiment
        self._copy(t.logged_model_params, "logged_model_params", ("model_id", "experiment_id", "param_key",
                                                                  "param_value"),
                   lambda r: (r.model_id, exp[r.model_id], r.param_key, r.param_value))
        self._copy(t.logged_model_tags, "logged_model_tags", ("model_id", "experiment_id", "tag_key", "tag_value"),
                   lambda r: (r.model_id, exp[r.model_id], r.tag_key, r.tag_value))
        self._copy(t.logged_model_metrics, "logged_model_metrics", (
            "model_id", "metric_name", "metric_timestamp_ms", "metric_step", "metric_value", "experiment_id",
            "run_id", "dataset_name", "dataset_digest"), lambda r: (
            r.model_id, r.metric_name, r.metric_timestamp_ms, r.metric_step, r.metric_value, exp[r.model_id],
            r.run_id, r.dataset_name, r.dataset_digest))

    def _write_registry(self) -> None:
        names = self.model_names

        def registered(r: Any) -> tuple[Any, ...]:
            names[r.id] = r.name
            return r.name, r.creation_time, r.last_updated_time, r.description

        self._copy(rt.registered_models, "registered_models", ("name", "creation_time", "last_updated_time",
                                                               "description"), registered)
        self._copy(rt.registered_model_tags, "registered_model_tags", ("name", "key", "value"),
                   lambda r: (names[r.rm_id], r.key, r.value))
        self._copy(rt.model_versions, "model_versions", (
            "name", "version", "creation_time", "last_updated_time", "description", "user_id", "current_stage",
            "source", "run_id", "status", "status_message", "run_link", "storage_location"), lambda r: (
            names[r.rm_id], r.version, r.creation_time, r.last_updated_time, r.description, r.user_id,
            r.current_stage, self.relocate.or_same(r.source), r.run_id, r.status, r.status_message, r.run_link,
            self.relocate.or_same(r.storage_location)))
        self._copy(rt.model_version_tags, "model_version_tags", ("name", "version", "key", "value"),
                   lambda r: (names[r.rm_id], r.version, r.key, r.value))
        self._copy(rt.registered_model_aliases, "registered_model_aliases", ("name", "alias", "version"),
                   lambda r: (names[r.rm_id], r.alias, r.version))


__all__ = ["ExportReport", "export_store", "mlflow_schema"]
