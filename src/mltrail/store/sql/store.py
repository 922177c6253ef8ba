"""The SQL tracking store (SQLite by default, PostgreSQL at scale) over SQLAlchemy Core.

Writes are one transaction per call or batch (a failed batch writes no part of itself);
metric points go to `metrics`, and `latest_metrics` is upserted in the same transaction.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail import _validation as v
from mltrail._names import random_run_name
from mltrail.entities import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    LoggedModelOutput,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
)
from mltrail.errors import InvalidParameterValue, InvalidState, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.store._paging import check_max_results, decode_token, encode_token
from mltrail.store.base import TrackingStore
from mltrail.store.sql import engine as eng
from mltrail.store.sql import schema as t
from mltrail.store.sql.batch_writer import BatchWriter
from mltrail.store.sql.datasets import DatasetsMixin
from mltrail.store.sql.fields import join_uri, now_ms, parse_experiment_id
from mltrail.store.sql.logged_models import LoggedModelsMixin
from mltrail.store.sql.registry import RegistryMixin
from mltrail.store.sql.sampling import Point, SeriesSampler, sample_like_mlflow
from mltrail.store.sql.sampling_pg import sample_series
from mltrail.store.sql.search import SearchMixin

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
MODEL_HISTORY_TAG = "mlflow.log-model.history"  # MLflow's mlflow_tags.MLFLOW_LOGGED_MODELS
MODEL_INPUT = "MODEL_INPUT"  # inputs.source_type of a logged model a run used
_RUN_EXPERIMENTS_KEPT = 200_000  # remembered run -> experiment answers before the memo starts over


def _model_input_id(model: Any) -> str:
    """The model_id of a LoggedModelInput (inputs.source_id holds at most 36 characters)."""
    model_id = getattr(model, "model_id", model)
    if not isinstance(model_id, str) or not model_id or len(model_id) > 36:
        raise InvalidParameterValue(
            f"Invalid model input {model!r}: expected a logged model id (a non-empty string of at most 36 "
            "characters).")
    return model_id


class SqlTrackingStore(SearchMixin, LoggedModelsMixin, DatasetsMixin, RegistryMixin, TrackingStore):
    """Tracking store over one SQL database; artifacts default under `default_artifact_root`."""

    def __init__(self, db_uri: str, default_artifact_root: str) -> None:
        self.db_uri = db_uri
        self.default_artifact_root = default_artifact_root.rstrip("/")
        self.engine = eng.make_engine(db_uri)
        eng.ensure_schema(self.engine)
        self._batches = BatchWriter(self.engine)
        # SQLite samples metric series inside the database (see sampling.py); others in Python
        self._sampler = SeriesSampler() if self.engine.dialect.name == "sqlite" else None
        self._run_experiments: dict[str, str] = {}  # run id -> experiment id (permission checks)
        self._ensure_default_experiment()

    def _write(self, fn: Any) -> Any:
        return eng.run_write(self.engine, fn)

    def _read(self) -> Any:
        return eng.read(self.engine)

    # ---------------------------------------------------------------- experiments
    def _ensure_default_experiment(self) -> None:
        with self._read() as conn:
            found = conn.execute(select(t.experiments.c.experiment_id).where(
                t.experiments.c.experiment_id == 0)).first()
        if found:
            return

        def create(conn: Connection) -> None:
            if conn.execute(select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)).first():
                return
            if conn.execute(select(t.experiments.c.experiment_id).where(
                    t.experiments.c.name == DEFAULT_EXPERIMENT_NAME)).first():
                return
            ts = now_ms()
            conn.execute(insert(t.experiments).values(
                experiment_id=0, name=DEFAULT_EXPERIMENT_NAME, lifecycle_stage=LifecycleStage.ACTIVE,
                artifact_location=join_uri(self.default_artifact_root, "0"), creation_time=ts, last_update_time=ts))
            if self.engine.dialect.name == "postgresql":  # explicit id 0 must not confuse the sequence
                from sqlalchemy import text

                conn.execute(text("SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), "
                                  "GREATEST((SELECT MAX(experiment_id) FROM experiments), 1))"))

        try:
            self._write(create)
        except IntegrityError:  # a replica starting at the same moment made it first (PostgreSQL)
            pass

    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        v.validate_experiment_name(name)
        tag_items = [v.validate_tag(k, val) for k, val in (tags or {}).items()]
        if artifact_location is not None:
            artifact_location = self._check_artifact_location(artifact_location)

        def create(conn: Connection) -> str:
            if conn.execute(select(t.experiments.c.experiment_id).where(t.experiments.c.name == name)).first():
                raise ResourceAlreadyExists(f"Experiment '{name}' already exists.")
            ts = now_ms()
            exp_id = conn.execute(insert(t.experiments).values(
                name=name, lifecycle_stage=LifecycleStage.ACTIVE, creation_time=ts, last_update_time=ts,
            ).returning(t.experiments.c.experiment_id)).scalar_one()
            location = artifact_location or join_uri(self.default_artifact_root, str(exp_id))
            conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == exp_id)
                         .values(artifact_location=location))
            if tag_items:
                conn.execute(insert(t.experiment_tags), [
                    {"experiment_id": exp_id, "key": k, "value": val} for k, val in tag_items])
            return str(exp_id)

        return self._write(create)

    @staticmethod
    def _check_artifact_location(location: str) -> str:
        """A user-given location must be a URI or an absolute path without '..' tricks."""
        from mltrail._paths import safe_relpath

        scheme, sep, rest = location.partition(":")
        if sep and len(scheme) > 1:  # a URI (s3://, file://, mlflow-artifacts:/): check its path part
            path = rest.lstrip("/")
        else:
            if not os.path.isabs(location):
                location = os.path.abspath(location)
            path = location.lstrip("/")
        safe_relpath(path, "artifact location")
        return location

    def _experiment_rows(self, conn: Connection, where: Any) -> list[Experiment]:
        rows = conn.execute(select(t.experiments).where(where)).all()
        if not rows:
            return []
        ids = [r.experiment_id for r in rows]
        tag_rows = conn.execute(select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(ids))).all()
        tags: dict[int, dict[str, str]] = {}
        for tr in tag_rows:
            tags.setdefault(tr.experiment_id, {})[tr.key] = tr.value
        return [Experiment(
            experiment_id=str(r.experiment_id), name=r.name, artifact_location=r.artifact_location,
            lifecycle_stage=r.lifecycle_stage, tags=tags.get(r.experiment_id, {}), creation_time=r.creation_time,
            last_update_time=r.last_update_time) for r in rows]

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._read() as conn:
            found = self._experiment_rows(conn, t.experiments.c.experiment_id == parse_experiment_id(experiment_id))
        if not found:
            raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists.")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._read() as conn:
            found = self._experiment_rows(conn, t.experiments.c.name == name)
        return found[0] if found else None

    def _set_experiment_stage(self, experiment_id: str, stage: str) -> None:
        exp_id = parse_experiment_id(experiment_id)

        def change(conn: Connection) -> None:
            n = conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == exp_id)
                             .values(lifecycle_stage=stage, last_update_time=now_ms())).rowcount
            if not n:
                raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists.")
            conn.execute(update(t.runs).where(t.runs.c.experiment_id == exp_id).values(
                lifecycle_stage=stage, deleted_time=now_ms() if stage == LifecycleStage.DELETED else None))

        self._write(change)

    def delete_experiment(self, experiment_id: str) -> None:
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise InvalidParameterValue("Cannot delete the default experiment '0'. It is a reserved experiment.")
        self._set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        v.validate_experiment_name(new_name)
        exp_id = parse_experiment_id(experiment_id)

        def rename(conn: Connection) -> None:
            row = conn.execute(select(t.experiments.c.lifecycle_stage).where(
                t.experiments.c.experiment_id == exp_id)).first()
            if row is None:
                raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists.")
            if row.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState("Cannot rename a non-active experiment.")
            if conn.execute(select(t.experiments.c.experiment_id).where(
                    and_(t.experiments.c.name == new_name, t.experiments.c.experiment_id != exp_id))).first():
                raise ResourceAlreadyExists(f"Experiment '{new_name}' already exists.")
            conn.execute(update(t.experiments).where(t.experiments.c.experiment_id == exp_id)
                         .values(name=new_name, last_update_time=now_ms()))

        self._write(rename)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        key, value = v.validate_tag(key, value)
        exp_id = parse_experiment_id(experiment_id)

        def set_tag(conn: Connection) -> None:
            self._check_experiment_active(conn, exp_id)
            conn.execute(delete(t.experiment_tags).where(and_(
                t.experiment_tags.c.experiment_id == exp_id, t.experiment_tags.c.key == key)))
            conn.execute(insert(t.experiment_tags).values(experiment_id=exp_id, key=key, value=value))

        self._write(set_tag)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        exp_id = parse_experiment_id(experiment_id)

        def delete_tag(conn: Connection) -> None:
            self._check_experiment_active(conn, exp_id)
            n = conn.execute(delete(t.experiment_tags).where(and_(
                t.experiment_tags.c.experiment_id == exp_id, t.experiment_tags.c.key == key))).rowcount
            if not n:
                raise ResourceDoesNotExist(f"No tag with name: {key} in experiment with id {experiment_id}")

        self._write(delete_tag)

    @staticmethod
    def _check_experiment_active(conn: Connection, exp_id: int) -> Any:
        row = conn.execute(select(t.experiments.c.lifecycle_stage, t.experiments.c.artifact_location)
                           .where(t.experiments.c.experiment_id == exp_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"No Experiment with id={exp_id} exists.")
        if row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState(
                f"The experiment {exp_id} must be in the 'active' state. Current state is {row.lifecycle_stage}.")
        return row

    # ---------------------------------------------------------------- runs
    def create_run(self, experiment_id: str, user_id: str, start_time: int | None,
                   tags: Sequence[RunTag], run_name: str | None) -> Run:
        exp_id = parse_experiment_id(experiment_id)
        tag_map = {tag.key: v.validate_tag(tag.key, tag.value)[1] for tag in tags}
        name_tag = tag_map.get("mlflow.runName")
        if run_name and name_tag and run_name != name_tag:
            raise InvalidParameterValue(
                f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                f"(run_name='{run_name}', mlflow.runName='{name_tag}').")
        run_name = run_name or name_tag or random_run_name()
        tag_map["mlflow.runName"] = run_name
        run_id = uuid.uuid4().hex
        start = start_time if start_time is not None else now_ms()

        def create(conn: Connection) -> str:
            exp = self._check_experiment_active(conn, exp_id)
            artifact_uri = join_uri(exp.artifact_location, run_id, "artifacts")
            conn.execute(insert(t.runs).values(
                run_uuid=run_id, name=run_name, experiment_id=exp_id, user_id=user_id, status=RunStatus.RUNNING,
                start_time=start, end_time=None, lifecycle_stage=LifecycleStage.ACTIVE, artifact_uri=artifact_uri))
            conn.execute(insert(t.tags), [{"run_uuid": run_id, "key": k, "value": val} for k, val in tag_map.items()])
            return artifact_uri

        artifact_uri = self._write(create)
        info = RunInfo(run_id=run_id, experiment_id=str(exp_id), run_name=run_name, user_id=user_id,
                       status=RunStatus.RUNNING, start_time=start, end_time=None, artifact_uri=artifact_uri)
        return Run(info=info, data=RunData(tags=dict(tag_map)))

    def _run_row(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(select(t.runs).where(t.runs.c.run_uuid == run_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        return row

    @staticmethod
    def _info(row: Any) -> RunInfo:
        return RunInfo(run_id=row.run_uuid, experiment_id=str(row.experiment_id), run_name=row.name or "",
                       user_id=row.user_id or "", status=row.status, start_time=row.start_time,
                       end_time=row.end_time, artifact_uri=row.artifact_uri or "",
                       lifecycle_stage=row.lifecycle_stage)

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            row = self._run_row(conn, run_id)
            return self._load_runs(conn, [row])[0]

    def _check_run_active(self, conn: Connection, run_id: str) -> None:
        row = conn.execute(select(t.runs.c.lifecycle_stage).where(t.runs.c.run_uuid == run_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        if row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState(
                f"The run {run_id} must be in the 'active' state. Current state is {row.lifecycle_stage}.")

    def update_run_info(self, run_id: str, run_status: str | None, end_time: int | None,
                        run_name: str | None) -> RunInfo:
        if run_status is not None and run_status not in RunStatus.ALL:
            raise InvalidParameterValue(f"Invalid run status {run_status!r}: expected one of {', '.join(RunStatus.ALL)}.")

        def change(conn: Connection) -> RunInfo:
            self._check_run_active(conn, run_id)
            values: dict[str, Any] = {}
            if run_status is not None:
                values["status"] = run_status
            if end_time is not None:
                values["end_time"] = end_time
            if run_name:
                values["name"] = run_name
                conn.execute(delete(t.tags).where(and_(t.tags.c.run_uuid == run_id, t.tags.c.key == "mlflow.runName")))
                conn.execute(insert(t.tags).values(run_uuid=run_id, key="mlflow.runName", value=run_name))
            if values:
                conn.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(**values))
            return self._info(self._run_row(conn, run_id))

        return self._write(change)

    def _set_run_stage(self, run_id: str, stage: str) -> None:
        def change(conn: Connection) -> None:
            self._run_row(conn, run_id)
            conn.execute(update(t.runs).where(t.runs.c.run_uuid == run_id).values(
                lifecycle_stage=stage, deleted_time=now_ms() if stage == LifecycleStage.DELETED else None))

        self._write(change)

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    # ---------------------------------------------------------------- logging
    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = (), batch_id: str | None = None) -> None:
        """Log metrics, params and tags in one transaction; any invalid item rejects the whole batch.

        Args:
            batch_id: when given, a batch with this id that was already applied is skipped (the
                journaling REST client resends batches after a crash; each must land once).
        """
        v.validate_batch_limits(len(metrics), len(params), len(tags))
        metric_rows = []
        model_links = []  # points of a logged model's metrics (MLflow 3 logs them with a model_id)
        for m in metrics:
            key, value, ts, step = v.validate_metric(m.key, m.value, m.timestamp, m.step)
            nan = math.isnan(value)  # stored as 0 plus a flag: not every database keeps NaN
            metric_rows.append((key, step, ts, 0.0 if nan else value, nan, m.model_id))
            if m.model_id:
                model_links.append((m.model_id, key, ts, step, None if nan else value, m.dataset_name,
                                    m.dataset_digest))
        param_map = v.validate_batch_params(params)
        tag_map = dict(v.validate_tag(tg.key, tg.value) for tg in tags)
        self._batches.write(run_id, metric_rows, param_map, tag_map, batch_id, now_ms(), model_links)

    def delete_tag(self, run_id: str, key: str) -> None:
        def remove(conn: Connection) -> None:
            self._check_run_active(conn, run_id)
            n = conn.execute(delete(t.tags).where(and_(t.tags.c.run_uuid == run_id, t.tags.c.key == key))).rowcount
            if not n:
                raise ResourceDoesNotExist(f"No tag with name: {key} in run with id {run_id}")

        self._write(remove)

    @staticmethod
    def _metric(row: Any, key: str | None = None) -> Metric:
        value = math.nan if row.is_nan else row.value
        return Metric(key=key or row.key, value=value, timestamp=row.timestamp, step=row.step)

    def get_metric_history(self, run_id: str, metric_key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList[Metric]:
        offset = decode_token(page_token)
        m = t.metrics
        q = (select(m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
             .where(and_(m.c.run_uuid == run_id, m.c.key == metric_key)).order_by(m.c.step, m.c.timestamp, m.c.id))
        if max_results is not None:
            q = q.limit(check_max_results(max_results, limit=1_000_000) + 1).offset(offset)
        with self._read() as conn:
            self._run_row(conn, run_id)
            rows = conn.execute(q).all()
        token = None
        if max_results is not None and len(rows) > max_results:
            rows = rows[:max_results]
            token = encode_token(offset + max_results)
        return PagedList([self._metric(r, metric_key) for r in rows], token)

    def get_metric_history_bulk(self, run_ids: Sequence[str], metric_key: str, max_results: int) -> list[Metric]:
        """The first `max_results` points of several runs' `metric_key` histories, in MLflow's bulk order.

        As MLflow's SQL store: runs by id, each run's points by timestamp, step, then the stored value
        (a NaN is stored as 0), one query. Unknown runs have no points. Each point carries its run_id.
        """
        m = t.metrics
        q = (select(m.c.run_uuid, m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
             .where(and_(m.c.run_uuid.in_(sorted(set(run_ids))), m.c.key == metric_key))
             .order_by(m.c.run_uuid, m.c.timestamp, m.c.step, m.c.value, m.c.id).limit(max_results))
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [self._metric(r, metric_key)._replace(run_id=r.run_uuid) for r in rows]

    def get_metric_history_bulk_interval(self, run_ids: Sequence[str], metric_key: str, max_results: int,
                                         start_step: int | None = None,
                                         end_step: int | None = None) -> list[list[Point]]:
        """Per run (in the order given), the points an MLflow 3.17 server picks for its chart endpoint."""
        return sample_like_mlflow(self.engine, run_ids, metric_key, max_results, start_step, end_step)

    def get_metric_history_sampled(self, run_id: str, metric_key: str, max_points: int,
                                   min_step: int | None = None, max_step: int | None = None) -> list[Metric]:
        if self._sampler is not None:
            points = self._sampler.sample(self.engine, [run_id], metric_key, max_points, min_step, max_step)[0]
            return [Metric(metric_key, math.nan if v is None else v, ts, step) for step, ts, v in points]
        if self.engine.dialect.name == "postgresql":  # sampled inside the database (sampling_pg.py)
            points = sample_series(self.engine, [run_id], metric_key, max_points, min_step, max_step)[0]
            return [Metric(metric_key, math.nan if v is None else v, ts, step) for step, ts, v in points]
        from mltrail.store.downsample import downsample

        m = t.metrics
        cond = [m.c.run_uuid == run_id, m.c.key == metric_key]
        if min_step is not None:
            cond.append(m.c.step >= min_step)
        if max_step is not None:
            cond.append(m.c.step <= max_step)
        with self._read() as conn:
            rows = conn.execute(select(m.c.step, m.c.timestamp, m.c.value, m.c.is_nan).where(and_(*cond))
                                .order_by(m.c.step, m.c.timestamp, m.c.id)).all()
        return downsample([self._metric(r, metric_key) for r in rows], max_points)

    def get_metric_series_sampled(self, run_ids: Sequence[str], metric_key: str, max_points: int,
                                  min_step: int | None = None,
                                  max_step: int | None = None) -> list[list[tuple[int, int, float | None]]]:
        """Per run, `get_metric_history_sampled`'s points as (step, timestamp, value or None for NaN):
        the UI's charts, without a Metric object per point (and cached, on SQLite)."""
        if self._sampler is not None:
            return self._sampler.sample(self.engine, run_ids, metric_key, max_points, min_step, max_step)
        if self.engine.dialect.name == "postgresql":
            return sample_series(self.engine, run_ids, metric_key, max_points, min_step, max_step)
        return super().get_metric_series_sampled(run_ids, metric_key, max_points, min_step, max_step)

    def clear_sampled_series_cache(self) -> None:
        """Forget cached samples (benchmarks measure a cold start with this)."""
        if self._sampler is not None:
            self._sampler.clear()

    # ---------------------------------------------------------------- loading runs
    def _load_runs(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        """Build Run entities for rows of `runs`, fetching params/metrics/tags/inputs in bulk."""
        ids = [r.run_uuid for r in rows]
        by_id: dict[str, Run] = {r.run_uuid: Run(info=self._info(r), data=RunData(), inputs=RunInputs(),
                                                 outputs=RunOutputs()) for r in rows}
        data = {run_id: run.data for run_id, run in by_id.items()}
        nan = math.nan
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start:chunk_start + 500]
            # plain SQL: these three reads move most of the rows a search returns
            for run_id, key, value in self._driver_rows(conn, "params", ("run_uuid", "key", "value"), chunk):
                data[run_id].params[key] = value
            for run_id, key, value in self._driver_rows(conn, "tags", ("run_uuid", "key", "value"), chunk):
                data[run_id].tags[key] = value
            for run_id, key, step, ts, value, is_nan in self._driver_rows(
                    conn, "latest_metrics", ("run_uuid", "key", "step", "timestamp", "value", "is_nan"), chunk):
                d = data[run_id]
                value = nan if is_nan else value
                d.metrics[key] = value
                d._metric_objs.append(Metric(key, value, ts, step))
            for o in conn.execute(select(t.run_outputs).where(t.run_outputs.c.run_uuid.in_(chunk))):
                by_id[o.run_uuid].outputs.model_outputs.append(LoggedModelOutput(model_id=o.model_id, step=o.step))
            self._load_inputs(conn, chunk, by_id)
        return [by_id[i] for i in ids]

    def _driver_rows(self, conn: Connection, table: str, columns: tuple[str, ...], run_ids: list[str]) -> Any:
        placeholder = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        cols = ", ".join(f'"{c}"' for c in columns)
        sql = f'SELECT {cols} FROM {table} WHERE run_uuid IN ({", ".join([placeholder] * len(run_ids))})'
        cursor = conn.connection.cursor()  # the driver's own cursor: no per-row wrapping
        try:
            cursor.execute(sql, tuple(run_ids))
            return cursor.fetchall()
        finally:
            cursor.close()

    def _load_inputs(self, conn: Connection, run_ids: list[str], by_id: dict[str, Run]) -> None:
        from mltrail.entities import Dataset, InputTag, LoggedModelInput

        i, d = t.inputs, t.datasets
        # model inputs (MLflow's RunInputs.model_inputs): MODEL_INPUT -> RUN rows, on the inputs index
        for mi in conn.execute(select(i.c.destination_id, i.c.source_id).where(and_(
                i.c.destination_type == "RUN", i.c.destination_id.in_(run_ids), i.c.source_type == MODEL_INPUT))
                .order_by(i.c.destination_id, i.c.source_id)):
            by_id[mi.destination_id].inputs.model_inputs.append(LoggedModelInput(model_id=mi.source_id))
        rows = conn.execute(select(i.c.input_uuid, i.c.destination_id, d).join(d, d.c.dataset_uuid == i.c.source_id)
                            .where(and_(i.c.destination_type == "RUN", i.c.source_type == "DATASET",
                                        i.c.destination_id.in_(run_ids)))).all()
        if not rows:
            return
        tags: dict[str, list[InputTag]] = {}
        for tr in conn.execute(select(t.input_tags).where(t.input_tags.c.input_uuid.in_([r.input_uuid for r in rows]))):
            tags.setdefault(tr.input_uuid, []).append(InputTag(key=tr.name, value=tr.value))
        for r in rows:
            ds = Dataset(name=r.name, digest=r.digest, source_type=r.dataset_source_type, source=r.dataset_source,
                         schema=r.dataset_schema, profile=r.dataset_profile)
            by_id[r.destination_id].inputs.dataset_inputs.append(DatasetInput(dataset=ds, tags=tags.get(r.input_uuid, [])))

    # ---------------------------------------------------------------- inputs and outputs
    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None,
                   models: Sequence[Any] | None = None) -> None:
        """Datasets and logged models the run used (MLflow's `log_inputs`); each is recorded once."""
        model_ids = list(dict.fromkeys(_model_input_id(m) for m in models or ()))

        def write(conn: Connection) -> None:
            self._check_run_active(conn, run_id)
            self._log_model_inputs(conn, run_id, model_ids)
            exp_id = conn.execute(select(t.runs.c.experiment_id).where(t.runs.c.run_uuid == run_id)).scalar_one()
            for di in datasets or ():
                ds = di.dataset
                d = t.datasets
                found = conn.execute(select(d.c.dataset_uuid).where(and_(
                    d.c.experiment_id == exp_id, d.c.name == ds.name, d.c.digest == ds.digest))).first()
                if found:
                    ds_id = found.dataset_uuid
                else:
                    ds_id = uuid.uuid4().hex
                    conn.execute(insert(d).values(
                        dataset_uuid=ds_id, experiment_id=exp_id, name=ds.name, digest=ds.digest,
                        dataset_source_type=ds.source_type, dataset_source=ds.source, dataset_schema=ds.schema,
                        dataset_profile=ds.profile))
                i = t.inputs
                existing = conn.execute(select(i.c.input_uuid).where(and_(
                    i.c.destination_type == "RUN", i.c.destination_id == run_id, i.c.source_type == "DATASET",
                    i.c.source_id == ds_id))).first()
                if existing:
                    input_id = existing.input_uuid
                    conn.execute(delete(t.input_tags).where(t.input_tags.c.input_uuid == input_id))
                else:
                    input_id = uuid.uuid4().hex
                    conn.execute(insert(i).values(input_uuid=input_id, source_type="DATASET", source_id=ds_id,
                                                  destination_type="RUN", destination_id=run_id))
                if di.tags:
                    conn.execute(insert(t.input_tags), [
                        {"input_uuid": input_id, "name": tg.key, "value": tg.value} for tg in di.tags])

        self._write(write)

    @staticmethod
    def _log_model_inputs(conn: Connection, run_id: str, model_ids: list[str]) -> None:
        """MLflow stores a model input as a RUN_INPUT -> MODEL_INPUT edge; here it is MODEL_INPUT -> RUN,
        the way datasets are stored, so a run's inputs load through one index and purge with the run."""
        if not model_ids:
            return
        i = t.inputs
        have = {r.source_id for r in conn.execute(select(i.c.source_id).where(and_(
            i.c.destination_type == "RUN", i.c.destination_id == run_id, i.c.source_type == MODEL_INPUT,
            i.c.source_id.in_(model_ids))))}
        new = [m for m in model_ids if m not in have]
        if new:
            conn.execute(insert(i), [{"input_uuid": uuid.uuid4().hex, "source_type": MODEL_INPUT, "source_id": m,
                                      "destination_type": "RUN", "destination_id": run_id} for m in new])

    def record_logged_model(self, run_id: str, model: dict[str, Any]) -> None:
        """Append `model` (the MLmodel summary MLflow's `Model.get_tags_dict()` makes) to the run's
        `mlflow.log-model.history` tag, in one transaction (MLflow's `record_logged_model`)."""
        import json

        def write(conn: Connection) -> None:
            self._check_run_active(conn, run_id)
            # concurrent appends: PostgreSQL locks the run row (SQLite's write transaction is exclusive)
            conn.execute(select(t.runs.c.run_uuid).where(t.runs.c.run_uuid == run_id).with_for_update())
            cond = and_(t.tags.c.run_uuid == run_id, t.tags.c.key == MODEL_HISTORY_TAG)
            current = conn.execute(select(t.tags.c.value).where(cond)).scalar()
            try:
                entries = json.loads(current) if current else []
            except ValueError:
                entries = None
            if not isinstance(entries, list):
                raise InvalidParameterValue(
                    f"Cannot record the model: run {run_id}'s tag {MODEL_HISTORY_TAG!r} is not a JSON list "
                    f"({str(current)[:80]!r}).")
            key, value = v.validate_tag(MODEL_HISTORY_TAG, json.dumps([*entries, model]))
            conn.execute(delete(t.tags).where(cond))
            conn.execute(insert(t.tags).values(run_uuid=run_id, key=key, value=value))

        self._write(write)

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        def write(conn: Connection) -> None:
            self._check_run_active(conn, run_id)
            for mo in models:
                conn.execute(delete(t.run_outputs).where(and_(
                    t.run_outputs.c.run_uuid == run_id, t.run_outputs.c.model_id == mo.model_id)))
                conn.execute(insert(t.run_outputs).values(run_uuid=run_id, model_id=mo.model_id, step=mo.step))

        self._write(write)

    # ---------------------------------------------------------------- maintenance
    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]:
        cond = [t.runs.c.lifecycle_stage == LifecycleStage.DELETED]
        if older_than_ms is not None:
            cond.append(t.runs.c.deleted_time <= now_ms() - older_than_ms)
        with self._read() as conn:
            return [r.run_uuid for r in conn.execute(select(t.runs.c.run_uuid).where(and_(*cond)))]

    def purge_run(self, run_id: str) -> None:
        def purge(conn: Connection) -> None:
            for table in (t.metrics, t.latest_metrics, t.params, t.tags, t.run_outputs):
                conn.execute(delete(table).where(table.c.run_uuid == run_id))
            input_ids = [r.input_uuid for r in conn.execute(select(t.inputs.c.input_uuid).where(
                t.inputs.c.destination_id == run_id))]
            if input_ids:
                conn.execute(delete(t.input_tags).where(t.input_tags.c.input_uuid.in_(input_ids)))
                conn.execute(delete(t.inputs).where(t.inputs.c.input_uuid.in_(input_ids)))
            conn.execute(delete(t.runs).where(t.runs.c.run_uuid == run_id))

        self._write(purge)

    def prune_applied_batches(self, older_than_ms: int) -> int:
        """Forget idempotency ids of batches applied longer ago than any client would resend them."""
        cutoff = now_ms() - older_than_ms
        return self._write(lambda conn: conn.execute(delete(t.applied_batches).where(
            t.applied_batches.c.applied_time < cutoff)).rowcount)

    def experiment_ids_of_runs(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The experiment of each of these runs that exists ({run_id: experiment_id}), deleted ones
        included: what a permission check needs of a run, in one indexed read."""
        # a run never moves to another experiment: remembered answers stay right on every replica
        known = self._run_experiments
        out = {r: known[r] for r in run_ids if r in known}
        ids = sorted(set(run_ids) - out.keys())
        if not ids:
            return out
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(select(t.runs.c.run_uuid, t.runs.c.experiment_id)
                                    .where(t.runs.c.run_uuid.in_(ids[start:start + 500]))).all()
                out.update((r, str(e)) for r, e in rows)
        if len(known) > _RUN_EXPERIMENTS_KEPT:
            known.clear()
        known.update((r, out[r]) for r in ids if r in out)
        return out

    def count_runs(self, experiment_ids: Sequence[str]) -> dict[str, int]:
        """Active runs per experiment (the UI's experiment list)."""
        ids = [parse_experiment_id(e) for e in experiment_ids]
        with self._read() as conn:
            rows = conn.execute(select(t.runs.c.experiment_id, func.count()).where(and_(
                t.runs.c.experiment_id.in_(ids), t.runs.c.lifecycle_stage == LifecycleStage.ACTIVE))
                .group_by(t.runs.c.experiment_id)).all()
        return {str(e): int(n) for e, n in rows}
