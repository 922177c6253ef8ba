"""Logged models (MLflow 3's `m-<hex>` models) in the SQL tracking store.

A model created without a name gets a generated one ("brave-owl-417"), as MLflow's
`create_logged_model` does, unique among the experiment's models. The `mlflow.modelVersions` tag
lists the registry versions of a model (`[{"name": ..., "version": "1"}, ...]`), each once.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from mltrail import _validation as v
from mltrail._names import random_run_name
from mltrail.entities import LifecycleStage, LoggedModel, LoggedModelStatus, Metric, PagedList
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.store._paging import check_max_results, decode_token, encode_token
from mltrail.store.readable import Readable
from mltrail.store.sql import schema as t
from mltrail.store.sql.comparisons import compare, sort_key
from mltrail.store.sql.fields import join_uri, now_ms, parse_experiment_id
from mltrail.store.sql.readable_sql import readable_condition

MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # MLflow's mlflow_tags.MLFLOW_MODEL_VERSIONS


def _version_key(entry: Any) -> Any:
    if isinstance(entry, dict) and "name" in entry and "version" in entry:
        return ("version", str(entry["name"]), str(entry["version"]))
    return ("other", json.dumps(entry, sort_keys=True))


def dedupe_model_versions(value: str) -> str:
    """`value` of an `mlflow.modelVersions` tag with each version listed once (first kept).

    MLflow's `set_model_versions_tags` adds a version only if it is not listed; a client that
    appends the version the server already recorded (MLflow's and mltrail's `register_model`
    do) must not list it twice. Anything but a JSON list is kept as given."""
    try:
        entries = json.loads(value)
    except ValueError:
        return value
    if not isinstance(entries, list):
        return value
    seen = set()
    kept = []
    for entry in entries:
        key = _version_key(entry)
        if key not in seen:
            seen.add(key)
            kept.append(entry)
    return value if len(kept) == len(entries) else json.dumps(kept)


class LoggedModelsMixin:
    engine: Any

    def _write(self, fn: Any) -> Any:
        raise NotImplementedError

    def _read(self) -> Any:
        raise NotImplementedError

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        exp_id = parse_experiment_id(experiment_id)
        model_id = f"m-{uuid.uuid4().hex}"
        tag_items = dict(v.validate_tag(k, val) for k, val in (tags or {}).items())
        param_items = dict(v.validate_param(k, val) for k, val in (params or {}).items())

        def create(conn: Connection) -> LoggedModel:
            exp = self._check_experiment_active(conn, exp_id)  # type: ignore[attr-defined]
            if source_run_id is not None:
                self._run_row(conn, source_run_id)  # type: ignore[attr-defined]
            model_name = name or self._generated_name(conn, exp_id)
            ts = now_ms()
            location = join_uri(exp.artifact_location, "models", model_id, "artifacts")
            conn.execute(insert(t.logged_models).values(
                model_id=model_id, experiment_id=exp_id, name=model_name, artifact_location=location,
                creation_timestamp_ms=ts, last_updated_timestamp_ms=ts, status=LoggedModelStatus.PENDING,
                lifecycle_stage=LifecycleStage.ACTIVE, model_type=model_type, source_run_id=source_run_id))
            if tag_items:
                conn.execute(insert(t.logged_model_tags), [
                    {"model_id": model_id, "tag_key": k, "tag_value": val} for k, val in tag_items.items()])
            if param_items:
                conn.execute(insert(t.logged_model_params), [
                    {"model_id": model_id, "param_key": k, "param_value": val} for k, val in param_items.items()])
            return LoggedModel(model_id=model_id, experiment_id=str(exp_id), name=model_name,
                               artifact_location=location,
                               creation_timestamp=ts, last_updated_timestamp=ts, source_run_id=source_run_id,
                               model_type=model_type, tags=tag_items, params=param_items)

        return self._write(create)

    @staticmethod
    def _generated_name(conn: Connection, exp_id: int) -> str:
        """A random readable name (MLflow: `_generate_random_name()`), not yet used in the experiment."""
        lm = t.logged_models
        for _ in range(10):
            name = random_run_name()
            if conn.execute(select(lm.c.model_id).where(and_(lm.c.experiment_id == exp_id, lm.c.name == name))
                            .limit(1)).first() is None:
                return name
        return f"{random_run_name()}-{uuid.uuid4().hex[:8]}"  # ~1.7M names taken: widen

    def _record_model_version(self, conn: Connection, model_id: str, name: str, version: str) -> None:
        """Add {name, version} to the model's `mlflow.modelVersions` tag (MLflow's
        `AbstractStore.set_model_versions_tags`: appended unless listed); a deleted or missing
        model is left alone (the version keeps its files either way)."""
        lm, lt = t.logged_models, t.logged_model_tags
        # the model row locked: concurrent registrations of one model append in turn (PostgreSQL;
        # SQLite's write transaction is exclusive already)
        found = conn.execute(select(lm.c.model_id).where(and_(
            lm.c.model_id == model_id, lm.c.lifecycle_stage == LifecycleStage.ACTIVE)).with_for_update()).first()
        if found is None:
            return
        current = conn.execute(select(lt.c.tag_value).where(and_(
            lt.c.model_id == model_id, lt.c.tag_key == MODEL_VERSIONS_TAG))).scalar()
        entry = {"name": name, "version": version}
        try:
            entries = json.loads(current) if current else []
        except ValueError:
            entries = []
        if not isinstance(entries, list):
            entries = []
        if any(_version_key(e) == _version_key(entry) for e in entries):
            return
        conn.execute(delete(lt).where(and_(lt.c.model_id == model_id, lt.c.tag_key == MODEL_VERSIONS_TAG)))
        conn.execute(insert(lt).values(model_id=model_id, tag_key=MODEL_VERSIONS_TAG,
                                       tag_value=json.dumps([*entries, entry])))
        self._touch_model(conn, model_id)

    def _load_models(self, conn: Connection, rows: Sequence[Any]) -> list[LoggedModel]:
        ids = [r.model_id for r in rows]
        models = {r.model_id: LoggedModel(
            model_id=r.model_id, experiment_id=str(r.experiment_id), name=r.name,
            artifact_location=r.artifact_location, creation_timestamp=r.creation_timestamp_ms,
            last_updated_timestamp=r.last_updated_timestamp_ms, status=r.status, source_run_id=r.source_run_id,
            model_type=r.model_type, status_message=r.status_message) for r in rows}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for tg in conn.execute(select(t.logged_model_tags).where(t.logged_model_tags.c.model_id.in_(chunk))):
                models[tg.model_id].tags[tg.tag_key] = tg.tag_value
            for p in conn.execute(select(t.logged_model_params).where(t.logged_model_params.c.model_id.in_(chunk))):
                models[p.model_id].params[p.param_key] = p.param_value
            for m in conn.execute(select(t.logged_model_metrics).where(t.logged_model_metrics.c.model_id.in_(chunk))):
                value = m.metric_value if m.metric_value is not None else math.nan
                models[m.model_id].metrics.append(Metric(
                    key=m.metric_name, value=value, timestamp=m.metric_timestamp_ms, step=m.metric_step,
                    model_id=m.model_id, dataset_name=m.dataset_name, dataset_digest=m.dataset_digest,
                    run_id=m.run_id))
        return [models[i] for i in ids]

    def get_logged_model(self, model_id: str) -> LoggedModel:
        with self._read() as conn:
            rows = conn.execute(select(t.logged_models).where(and_(
                t.logged_models.c.model_id == model_id,
                t.logged_models.c.lifecycle_stage == LifecycleStage.ACTIVE))).all()
            if not rows:
                raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
            return self._load_models(conn, rows)[0]

    def experiment_ids_of_logged_models(self, model_ids: Sequence[str]) -> dict[str, str]:
        """The experiment of each of these logged models that exists ({model_id: experiment_id}):
        what a permission check needs of a model, in one indexed read."""
        ids = sorted(set(model_ids))
        lm = t.logged_models
        out: dict[str, str] = {}
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                rows = conn.execute(select(lm.c.model_id, lm.c.experiment_id)
                                    .where(lm.c.model_id.in_(ids[start:start + 500]))).all()
                out.update((m, str(e)) for m, e in rows)
        return out

    def _touch_model(self, conn: Connection, model_id: str, **values: Any) -> None:
        n = conn.execute(update(t.logged_models).where(t.logged_models.c.model_id == model_id)
                         .values(last_updated_timestamp_ms=now_ms(), **values)).rowcount
        if not n:
            raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        status = status.removeprefix("LOGGED_MODEL_")
        if status not in LoggedModelStatus.ALL:
            raise InvalidParameterValue(
                f"Invalid logged model status {status!r}: expected one of {', '.join(LoggedModelStatus.ALL)}.")
        self._write(lambda conn: self._touch_model(conn, model_id, status=status))
        return self.get_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        items = dict(v.validate_tag(k, val) for k, val in tags.items())
        if MODEL_VERSIONS_TAG in items:
            items[MODEL_VERSIONS_TAG] = dedupe_model_versions(items[MODEL_VERSIONS_TAG])

        def write(conn: Connection) -> None:
            self._touch_model(conn, model_id)
            lt = t.logged_model_tags
            conn.execute(delete(lt).where(and_(lt.c.model_id == model_id, lt.c.tag_key.in_(list(items)))))
            conn.execute(insert(lt), [{"model_id": model_id, "tag_key": k, "tag_value": val} for k, val in items.items()])

        if items:
            self._write(write)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        def write(conn: Connection) -> None:
            self._touch_model(conn, model_id)
            lt = t.logged_model_tags
            if not conn.execute(delete(lt).where(and_(lt.c.model_id == model_id, lt.c.tag_key == key))).rowcount:
                raise ResourceDoesNotExist(f"No tag with key '{key}' on logged model '{model_id}'.")

        self._write(write)

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        items = dict(v.validate_param(k, val) for k, val in params.items())

        def write(conn: Connection) -> None:
            self._touch_model(conn, model_id)
            lp = t.logged_model_params
            conn.execute(delete(lp).where(and_(lp.c.model_id == model_id, lp.c.param_key.in_(list(items)))))
            conn.execute(insert(lp), [{"model_id": model_id, "param_key": k, "param_value": val}
                                      for k, val in items.items()])

        if items:
            self._write(write)

    def log_logged_model_metrics(self, model_id: str, run_id: str, metrics: Sequence[Metric]) -> None:
        rows = []
        for m in metrics:
            key, value, ts, step = v.validate_metric(m.key, m.value, m.timestamp, m.step)
            rows.append({"model_id": model_id, "metric_name": key, "metric_timestamp_ms": ts, "metric_step": step,
                         "metric_value": None if math.isnan(value) else value, "run_id": run_id,
                         "dataset_name": m.dataset_name, "dataset_digest": m.dataset_digest})

        def write(conn: Connection) -> None:
            self._touch_model(conn, model_id)
            # a point already linked (a resent batch, an echo of a linked point) is linked once
            lmm = t.logged_model_metrics
            linked = {(r.metric_name, r.metric_timestamp_ms, r.metric_step) for r in conn.execute(
                select(lmm.c.metric_name, lmm.c.metric_timestamp_ms, lmm.c.metric_step).where(and_(
                    lmm.c.model_id == model_id, lmm.c.run_id == run_id,
                    lmm.c.metric_name.in_(sorted({r["metric_name"] for r in rows})))))}
            fresh = []
            for r in rows:
                point = (r["metric_name"], r["metric_timestamp_ms"], r["metric_step"])
                if point not in linked:
                    linked.add(point)
                    fresh.append(r)
            if fresh:
                conn.execute(insert(lmm), fresh)

        if rows:
            self._write(write)

    def delete_logged_model(self, model_id: str) -> None:
        self._write(lambda conn: self._touch_model(conn, model_id, lifecycle_stage=LifecycleStage.DELETED))

    def search_logged_models(self, experiment_ids: Sequence[str] | None = None, filter_string: str | None = None,
                             max_results: int = 100, order_by: Sequence[str] | None = None,
                             page_token: str | None = None, readable: Readable | None = None) -> PagedList[LoggedModel]:
        """Logged models; with `readable`, only those of experiments it allows (before paging)."""
        from mltrail.store.search_grammar import parse_filter, parse_order_by

        comparisons = parse_filter(filter_string, entity="logged_model")
        order = parse_order_by(list(order_by or []), entity="logged_model")
        max_results = check_max_results(max_results)
        offset = decode_token(page_token)
        lm = t.logged_models
        cond = [lm.c.lifecycle_stage == LifecycleStage.ACTIVE]
        if experiment_ids:
            cond.append(lm.c.experiment_id.in_([parse_experiment_id(e) for e in experiment_ids]))
        with self._read() as conn:
            if readable is not None:
                cond.append(readable_condition(conn, readable, lm.c.experiment_id, numeric=True))
            rows = conn.execute(select(lm).where(and_(*cond)).order_by(
                lm.c.creation_timestamp_ms.desc(), lm.c.model_id)).all()
            models = self._load_models(conn, rows)
        models = [m for m in models if all(compare(_model_value(m, c.kind, c.key), c.op, c.value)
                                           for c in comparisons)]
        for key in reversed(order):
            present = [m for m in models if _model_value(m, key.kind, key.key) is not None]
            missing = [m for m in models if _model_value(m, key.kind, key.key) is None]
            present.sort(key=lambda m, k=key: sort_key(_model_value(m, k.kind, k.key)),  # type: ignore[misc]
                         reverse=not key.ascending)
            models = present + missing
        page = models[offset:offset + max_results]
        token = encode_token(offset + max_results) if len(models) > offset + max_results else None
        return PagedList(page, token)


def _model_value(m: LoggedModel, kind: str, key: str) -> Any:
    if kind == "tag":
        return m.tags.get(key)
    if kind == "param":
        return m.params.get(key)
    if kind == "metric":
        latest = [x for x in m.metrics if x.key == key]
        return max(latest, key=lambda x: (x.step, x.timestamp)).value if latest else None
    aliases = {"creation_timestamp": "creation_timestamp", "creation_time": "creation_timestamp",
               "last_updated_timestamp": "last_updated_timestamp", "name": "name", "model_id": "model_id",
               "model_type": "model_type", "status": "status", "source_run_id": "source_run_id",
               "experiment_id": "experiment_id"}
    attr = aliases.get(key, key)
    return getattr(m, attr, None)
