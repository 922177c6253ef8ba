"""MLflow's tracking database (SQLite or PostgreSQL) read as rows of mltrail's tables, without `mlflow`.

MLflow's tables are found by SQLAlchemy reflection, so every schema revision MLflow 3.17 can upgrade
reads the same way: a table or column an older revision lacks is simply absent (no `logged_models`
before 3.0, no `datasets` before 2.4, no `deleted_time` before 2.0), and the rows come out with
mltrail's defaults there. The differences of layout that matter (see `mlflow/store/.../dbmodels`):

- metrics: NaN is 0 with `is_nan` set, as here; ±inf was written as ±1.7976931348623157e308
  (MLflow's `sanitize_metric_value`) and is read back as ±inf, the value that was logged;
- a run's model inputs are RUN_INPUT -> MODEL_INPUT rows of `inputs` (mltrail's: MODEL_INPUT -> RUN),
  its model outputs RUN_OUTPUT -> MODEL_OUTPUT rows there (mltrail's: the `run_outputs` table);
- a logged model's status is an integer (LoggedModelStatus.to_int);
- the registry is keyed by model name (mltrail's by a surrogate id, given here in name order), and a
  deleted model version stays as a `Deleted_Internal` row: it is not read, but its number still
  counts in `last_version`, so it is never handed out again.

Columns mltrail has no place for are dropped: runs' `source_type`, `source_name`, `source_version`,
`entry_point_name` (MLflow keeps them in `mlflow.source.*` tags too); the `workspace` columns; the
`experiment_id` and `dataset_uuid` copies on logged-model rows; `inputs.step` of inputs.

Reading never writes: SQLite is opened with `mode=ro`, PostgreSQL sessions are read-only, and no
Alembic runs.
"""

from __future__ import annotations

import math
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    Engine,
    MetaData,
    Table,
    and_,
    create_engine,
    func,
    inspect,
    literal,
    literal_column,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Select

from mltrail.errors import InvalidParameterValue
from mltrail.interop.mlflow.records import BATCH_ROWS, TABLE_ORDER, ArtifactRoot, RowBatch
from mltrail.store.mlflow_detect import our_revisions
from mltrail.store.sql import registry_schema as reg
from mltrail.store.sql import schema as ours
from mltrail.store.sql.engine import normalize_db_uri

_MAX_DOUBLE = 1.7976931348623157e308  # MLflow's stand-in for ±inf in its metric tables
# LoggedModelStatus.to_int(); mltrail has no UNSPECIFIED: a model that never finished is PENDING.
_MODEL_STATUS = {0: "PENDING", 1: "PENDING", 2: "READY", 3: "FAILED"}
_DELETED_VERSION = "Deleted_Internal"
_MODEL_INPUT = "MODEL_INPUT"  # the `inputs.source_type` mltrail's SQL store gives a logged-model input
_CORE_TABLES = frozenset({"experiments", "runs", "metrics", "params", "tags"})
# The MLflow tables this reader uses (reflection is limited to them: MLflow 3.17 has some sixty).
_MLFLOW_TABLES = (
    "alembic_version", "experiments", "experiment_tags", "runs", "params", "tags", "metrics", "datasets", "inputs",
    "input_tags", "logged_models", "logged_model_params", "logged_model_tags", "logged_model_metrics",
    "registered_models", "registered_model_tags", "model_versions", "model_version_tags",
    "registered_model_aliases",
)
# (importing registry_schema puts the registry's tables on the tracking schema's MetaData)
_OUR_TABLES: dict[str, Table] = {name: ours.metadata.tables[name] for name in TABLE_ORDER}
_REGISTRY_TABLES = frozenset(reg.TABLES)

Row = dict[str, Any]


def _restore_inf(value: float | None) -> float | None:
    if value is not None and abs(value) == _MAX_DOUBLE:
        return math.copysign(math.inf, value)
    return value


def _sqlite_path(uri: str) -> str:
    path = uri.split(":///", 1)[1] if ":///" in uri else ""
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        raise InvalidParameterValue(f"Invalid MLflow SQLite URI {uri!r}: expected sqlite:///path/to/mlflow.db.")
    return os.path.abspath(path)


def open_read_only(uri: str) -> Engine:
    """An engine on MLflow's database that cannot write: SQLite `mode=ro`, PostgreSQL read-only sessions.

    Args:
        uri: the database URI as MLflow names it (`sqlite:///mlflow.db`, `postgresql://...`).
    """
    if uri.startswith("sqlite"):
        path = _sqlite_path(uri)
        if not os.path.isfile(path):
            raise InvalidParameterValue(f"No MLflow database at {uri}: the file {path} does not exist.")
        target = f"file:{urllib.parse.quote(path)}?mode=ro"
        # a creator, not a URL: SQLAlchemy's pysqlite URL would create a missing file and open it read-write
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(target, uri=True,
                                                                           check_same_thread=False),
                             poolclass=NullPool)
    url = make_url(normalize_db_uri(uri))
    if url.get_backend_name() != "postgresql":
        raise InvalidParameterValue(
            f"Unsupported MLflow database {url.render_as_string(hide_password=True)}: expected sqlite:/// or "
            "postgresql://.")
    return create_engine(url, poolclass=NullPool,
                         connect_args={"options": "-c default_transaction_read_only=on"})


def is_mlflow_database(engine_or_url: Engine | str) -> bool:
    """Whether a database holds MLflow's tracking schema (not mltrail's). Reads only.

    MLflow's `runs` table has had `source_type` since its first revision and mltrail's never has;
    an Alembic revision that is not one of mltrail's, beside MLflow's core tables, also tells.
    """
    engine = open_read_only(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        inspector = inspect(engine)
        names = set(inspector.get_table_names())
        if not names >= _CORE_TABLES:
            return False
        if "source_type" in {c["name"] for c in inspector.get_columns("runs")}:
            return True
        revision = _revision(engine, names)
        return revision is not None and revision not in our_revisions()
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def _revision(engine: Engine, names: set[str]) -> str | None:
    if "alembic_version" not in names:
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    return str(row[0]) if row else None


class SqlSource:
    """An MLflow tracking database opened for reading (`MlflowSource`): tracking tables and registry.

    Args:
        uri: the database URI as MLflow names it (`sqlite:///mlflow.db`, `postgresql://user@host/db`).
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.engine = open_read_only(uri)
        try:
            names = set(inspect(self.engine).get_table_names())
            if not names >= _CORE_TABLES:
                raise InvalidParameterValue(
                    f"{self._safe_uri()} is not an MLflow tracking database: it lacks the tables "
                    f"{', '.join(sorted(_CORE_TABLES - names))}.")
            if not is_mlflow_database(self.engine):
                raise InvalidParameterValue(
                    f"{self._safe_uri()} is not an MLflow tracking database: its tables are mltrail's own "
                    "(there is nothing to import).")
            self.meta = MetaData()
            self.meta.reflect(bind=self.engine, only=[n for n in _MLFLOW_TABLES if n in names])
            self.revision = _revision(self.engine, names)
        except BaseException:
            self.engine.dispose()
            raise
        self._rm_ids: dict[tuple[str, str], int] | None = None

    # ------------------------------------------------------------------ MlflowSource
    def describe(self) -> str:
        kind = "SQLite" if self.engine.dialect.name == "sqlite" else "PostgreSQL"
        revision = self.revision or "none"
        return f"MLflow {kind} database {self._safe_uri()} (schema revision {revision})"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for table in TABLE_ORDER:
                query = self._query(table)
                if query is None:
                    out[table] = 0
                    continue
                if table == "registered_models":
                    out[table] = len(self._registered_model_ids())
                    continue
                sub = query.order_by(None).subquery()
                out[table] = int(conn.execute(select(func.count()).select_from(sub)).scalar_one())
        return out

    def batches(self, table: str) -> Iterator[RowBatch]:
        if table not in _OUR_TABLES:
            raise InvalidParameterValue(f"Unknown table {table!r}: expected one of {', '.join(TABLE_ORDER)}.")
        query = self._query(table)
        if query is None:
            return
        if table == "metrics":
            yield from (RowBatch(table, _metric_rows(part)) for part in self._driver_partitions(query))
            return
        convert = self._converter(table)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=BATCH_ROWS).execute(query)
            for part in result.partitions(BATCH_ROWS):
                rows = convert(part)
                if rows:
                    yield RowBatch(table, rows)

    def _driver_partitions(self, query: Select[Any]) -> Iterator[list[tuple[Any, ...]]]:
        """The query's rows straight from the database driver, `BATCH_ROWS` at a time.

        The metric history is most of a store; SQLAlchemy's result rows cost more than twice the
        driver's tuples there. PostgreSQL streams through a server-side (named) cursor.
        """
        sql = str(query.compile(self.engine, compile_kwargs={"literal_binds": True}))
        raw = self.engine.raw_connection()
        try:
            if self.engine.dialect.name == "postgresql":
                cursor = raw.driver_connection.cursor(name="mltrail_import_metrics")  # type: ignore[union-attr]
                cursor.itersize = BATCH_ROWS
            else:
                cursor = raw.cursor()
            cursor.execute(sql)
            while part := cursor.fetchmany(BATCH_ROWS):
                yield part
            cursor.close()
        finally:
            raw.close()

    def artifact_roots(self) -> Iterator[ArtifactRoot]:
        specs = (("experiment", "experiments", "experiment_id", "artifact_location"),
                 ("run", "runs", "run_uuid", "artifact_uri"),
                 ("logged_model", "logged_models", "model_id", "artifact_location"))
        with self.engine.connect() as conn:
            for kind, name, key, location in specs:
                table = self.meta.tables.get(name)
                if table is None or location not in table.c:
                    continue
                query = select(table.c[key], table.c[location]).where(table.c[location].isnot(None))
                for entity_id, uri in conn.execute(query.order_by(table.c[key])):
                    if uri:
                        yield ArtifactRoot(kind, str(entity_id), str(uri))

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ queries
    def _safe_uri(self) -> str:
        if self.uri.startswith("sqlite"):
            return self.uri
        return make_url(self.uri).render_as_string(hide_password=True)

    def _t(self, name: str) -> Table | None:
        return self.meta.tables.get(name)

    def _query(self, table: str) -> Select[Any] | None:
        """The SELECT over MLflow's tables whose rows become `table`'s rows (None: the source has none)."""
        build = getattr(self, f"_q_{table}")
        query: Select[Any] | None = build()
        return query

    def _plain(self, name: str, columns: dict[str, str], order: tuple[str, ...]) -> Select[Any] | None:
        """Our columns taken from MLflow's same-named table (ours -> theirs); columns it lacks read as None."""
        src = self._t(name)
        if src is None:
            return None
        picked = [src.c[theirs].label(mine) for mine, theirs in columns.items() if theirs in src.c]
        return select(*picked).order_by(*(src.c[o] for o in order if o in src.c))

    def _q_experiments(self) -> Select[Any] | None:
        cols = ("experiment_id", "name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time")
        return self._plain("experiments", {c: c for c in cols}, ("experiment_id",))

    def _q_experiment_tags(self) -> Select[Any] | None:
        return self._plain("experiment_tags", {c: c for c in ("experiment_id", "key", "value")},
                           ("experiment_id", "key"))

    def _q_runs(self) -> Select[Any] | None:
        cols = ("run_uuid", "name", "experiment_id", "user_id", "status", "start_time", "end_time", "deleted_time",
                "lifecycle_stage", "artifact_uri")
        return self._plain("runs", {c: c for c in cols}, ("experiment_id", "start_time", "run_uuid"))

    def _q_params(self) -> Select[Any] | None:
        return self._plain("params", {c: c for c in ("run_uuid", "key", "value")}, ("run_uuid", "key"))

    def _q_tags(self) -> Select[Any] | None:
        return self._plain("tags", {c: c for c in ("run_uuid", "key", "value")}, ("run_uuid", "key"))

    def _q_metrics(self) -> Select[Any] | None:
        src = self._t("metrics")
        if src is None:
            return None
        # `_metric_rows` reads these positionally; a revision without `step` (MLflow < 1.0) logged step 0.
        # Ordered by run (the contract), then as MLflow's (run_uuid, key, step) index has it: no sort step.
        step = src.c.step if "step" in src.c else literal_column("0")
        is_nan = src.c.is_nan if "is_nan" in src.c else literal_column("0")
        return (select(src.c.run_uuid, src.c.key, step, src.c.timestamp, src.c.value, is_nan)
                .order_by(src.c.run_uuid, src.c.key, step))

    def _q_datasets(self) -> Select[Any] | None:
        cols = ("dataset_uuid", "experiment_id", "name", "digest", "dataset_source_type", "dataset_source",
                "dataset_schema", "dataset_profile")
        return self._plain("datasets", {c: c for c in cols}, ("experiment_id", "name", "digest"))

    def _q_inputs(self) -> Select[Any] | None:
        src = self._t("inputs")
        if src is None:
            return None
        cols = [src.c[c] for c in ("input_uuid", "source_type", "source_id", "destination_type", "destination_id")]
        return select(*cols).where(src.c.source_type != "RUN_OUTPUT").order_by(src.c.input_uuid)

    def _q_input_tags(self) -> Select[Any] | None:
        tags, inputs = self._t("input_tags"), self._t("inputs")
        if tags is None or inputs is None:
            return None
        # tags of the inputs that are read (a RUN_OUTPUT row becomes `run_outputs`, which has no tags)
        return (select(tags.c.input_uuid, tags.c.name, tags.c.value)
                .join(inputs, inputs.c.input_uuid == tags.c.input_uuid)
                .where(inputs.c.source_type != "RUN_OUTPUT").order_by(tags.c.input_uuid, tags.c.name))

    def _q_logged_models(self) -> Select[Any] | None:
        cols = ("model_id", "experiment_id", "name", "artifact_location", "creation_timestamp_ms",
                "last_updated_timestamp_ms", "status", "lifecycle_stage", "model_type", "source_run_id",
                "status_message")
        return self._plain("logged_models", {c: c for c in cols}, ("experiment_id", "creation_timestamp_ms",
                                                                    "model_id"))

    def _q_logged_model_params(self) -> Select[Any] | None:
        return self._plain("logged_model_params", {c: c for c in ("model_id", "param_key", "param_value")},
                           ("model_id", "param_key"))

    def _q_logged_model_tags(self) -> Select[Any] | None:
        return self._plain("logged_model_tags", {c: c for c in ("model_id", "tag_key", "tag_value")},
                           ("model_id", "tag_key"))

    def _q_logged_model_metrics(self) -> Select[Any] | None:
        cols = ("model_id", "metric_name", "metric_timestamp_ms", "metric_step", "metric_value", "run_id",
                "dataset_name", "dataset_digest")
        return self._plain("logged_model_metrics", {c: c for c in cols},
                           ("model_id", "metric_name", "metric_step", "metric_timestamp_ms", "run_id"))

    def _q_run_outputs(self) -> Select[Any] | None:
        src = self._t("inputs")
        if src is None:
            return None
        step = func.min(src.c.step) if "step" in src.c else func.min(0)
        # one row per (run, model), as mltrail's primary key has it: the earliest step it was logged at
        return (select(src.c.source_id.label("run_uuid"), src.c.destination_id.label("model_id"),
                       step.label("step"))
                .where(and_(src.c.source_type == "RUN_OUTPUT", src.c.destination_type == "MODEL_OUTPUT"))
                .group_by(src.c.source_id, src.c.destination_id).order_by(src.c.source_id, src.c.destination_id))

    def _workspace_name(self, table: Table) -> list[Any]:
        """The columns that name a registered model: (workspace, name) where MLflow has workspaces."""
        return [table.c.workspace if "workspace" in table.c else literal(""), table.c.name]

    def _q_registered_models(self) -> Select[Any] | None:
        src = self._t("registered_models")
        if src is None:
            return None
        cols = [src.c[c] for c in ("name", "creation_time", "last_updated_time", "description") if c in src.c]
        ws, name = self._workspace_name(src)
        return select(ws.label("workspace"), *cols).order_by(ws, name)

    def _q_registered_model_tags(self) -> Select[Any] | None:
        src = self._t("registered_model_tags")
        if src is None:
            return None
        ws, name = self._workspace_name(src)
        return select(ws.label("workspace"), name.label("rm_name"), src.c.key, src.c.value).order_by(ws, name,
                                                                                                       src.c.key)

    def _live_versions(self, src: Table) -> Any:
        return src.c.current_stage.is_(None) | (src.c.current_stage != _DELETED_VERSION)

    def _q_model_versions(self) -> Select[Any] | None:
        src = self._t("model_versions")
        if src is None:
            return None
        ws, name = self._workspace_name(src)
        cols = [src.c[c] for c in ("version", "creation_time", "last_updated_time", "description", "user_id",
                                   "current_stage", "source", "storage_location", "run_id", "run_link",
                                   "model_id", "status", "status_message") if c in src.c]
        query = select(ws.label("workspace"), name.label("rm_name"), *cols).order_by(ws, name, src.c.version)
        return query.where(self._live_versions(src)) if "current_stage" in src.c else query

    def _q_model_version_tags(self) -> Select[Any] | None:
        src, versions = self._t("model_version_tags"), self._t("model_versions")
        if src is None or versions is None:
            return None
        ws, name = self._workspace_name(src)
        vws, vname = self._workspace_name(versions)
        query = (select(ws.label("workspace"), name.label("rm_name"), src.c.version, src.c.key, src.c.value)
                 .join(versions, and_(vws == ws, vname == name, versions.c.version == src.c.version))
                 .order_by(ws, name, src.c.version, src.c.key))
        return query.where(self._live_versions(versions)) if "current_stage" in versions.c else query

    def _q_registered_model_aliases(self) -> Select[Any] | None:
        src = self._t("registered_model_aliases")
        if src is None:
            return None
        ws, name = self._workspace_name(src)
        return select(ws.label("workspace"), name.label("rm_name"), src.c.alias, src.c.version).order_by(
            ws, name, src.c.alias)

    # ------------------------------------------------------------------ rows
    def _registered_model_ids(self) -> dict[tuple[str, str], int]:
        """mltrail's surrogate id per MLflow (workspace, name): 1, 2, ... in that order."""
        if self._rm_ids is None:
            query = self._q_registered_models()
            self._rm_ids = {}
            if query is not None:
                with self.engine.connect() as conn:
                    for row in conn.execute(query):
                        self._rm_ids[(row.workspace, row.name)] = len(self._rm_ids) + 1
        return self._rm_ids

    def _last_versions(self) -> dict[tuple[str, str], int]:
        """The highest version number each model has used, deleted versions included."""
        src = self._t("model_versions")
        if src is None:
            return {}
        ws, name = self._workspace_name(src)
        with self.engine.connect() as conn:
            rows = conn.execute(select(ws, name, func.max(src.c.version)).group_by(ws, name)).all()
        return {(w, n): int(v or 0) for w, n, v in rows}

    def _converter(self, table: str) -> Callable[[Any], list[Row]]:
        """A function from a partition of source rows to our rows (every column of `table`, in order)."""
        defaults = {c.name: _default(c) for c in _OUR_TABLES[table].columns}
        if table == "logged_model_metrics":
            return lambda part: [_full(defaults, r, metric_value=_restore_inf(r.metric_value)) for r in part]
        if table == "logged_models":
            return lambda part: [_full(defaults, r, status=_model_status(r.status)) for r in part]
        if table == "inputs":
            return lambda part: [_full(defaults, _flip_model_input(r._mapping)) for r in part]
        if table in _REGISTRY_TABLES:
            return self._registry_converter(table, defaults)
        return lambda part: [_full(defaults, r) for r in part]

    def _registry_converter(self, table: str, defaults: Row) -> Callable[[Any], list[Row]]:
        ids = self._registered_model_ids()
        if table == "registered_models":
            last = self._last_versions()

            def models(part: Any) -> list[Row]:
                out = []
                for r in part:
                    key = (r.workspace, r.name)
                    created = r.creation_time if r.creation_time is not None else 0
                    updated = getattr(r, "last_updated_time", None)
                    out.append(_full(defaults, r, id=ids[key], creation_time=created,
                                     last_updated_time=updated if updated is not None else created,
                                     last_version=last.get(key, 0)))
                return out

            return models
        if table == "model_versions":

            def versions(part: Any) -> list[Row]:
                out = []
                for r in part:
                    mapping = r._mapping
                    created = r.creation_time if r.creation_time is not None else 0
                    updated = mapping.get("last_updated_time")
                    source = r.source or ""
                    location = mapping.get("storage_location") or source
                    out.append(_full(defaults, r, rm_id=ids[(r.workspace, r.rm_name)], creation_time=created,
                                     last_updated_time=updated if updated is not None else created,
                                     source=source, storage_location=location,
                                     current_stage=mapping.get("current_stage") or "None",
                                     status=mapping.get("status") or "READY"))
                return out

            return versions
        return lambda part: [_full(defaults, r, rm_id=ids[(r.workspace, r.rm_name)]) for r in part]


def _default(column: Any) -> Any:
    """The value a column takes when the source lacks it: its server default (as text) or None."""
    default = column.server_default
    if default is None:
        return None
    text = str(getattr(default, "arg", ""))
    if column.name == "is_nan":
        return False
    return int(text) if text.isdigit() else text


def _full(defaults: Row, row: Any, **overrides: Any) -> Row:
    mapping = row if isinstance(row, dict) else row._mapping
    out = {name: mapping.get(name, default) for name, default in defaults.items()}
    out.update(overrides)
    return out


def _metric_rows(part: list[tuple[Any, ...]]) -> list[Row]:
    # the hot path (one row per point): driver tuples, in `_q_metrics`'s column order
    out = []
    for run_uuid, key, step, timestamp, value, is_nan in part:
        if is_nan:
            value = 0.0
        elif value == _MAX_DOUBLE or value == -_MAX_DOUBLE:
            value = math.copysign(math.inf, value)
        out.append({"run_uuid": run_uuid, "key": key, "step": step if step is not None else 0,
                    "timestamp": timestamp, "value": value, "is_nan": bool(is_nan), "model_id": None})
    return out


def _model_status(value: Any) -> str:
    if isinstance(value, str) and not value.isdigit():
        return value.removeprefix("LOGGED_MODEL_")
    return _MODEL_STATUS.get(int(value), "PENDING")


def _flip_model_input(row: Any) -> Row:
    """MLflow's RUN_INPUT -> MODEL_INPUT edge as mltrail's MODEL_INPUT -> RUN one; other rows as they are."""
    out = dict(row)
    if out["source_type"] == "RUN_INPUT" and out["destination_type"] == "MODEL_INPUT":
        out.update(source_type=_MODEL_INPUT, source_id=row["destination_id"], destination_type="RUN",
                   destination_id=row["source_id"])
    return out
