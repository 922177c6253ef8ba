"""The logging hot path: one `log_batch` as one transaction of plain SQL on the DBAPI connection.

Everything else in the SQL store uses SQLAlchemy Core; here its per-statement overhead (about
0.2 ms per execute) would be most of the cost of a `log_metric` call, so this module sends
fixed SQL text (valid for SQLite and PostgreSQL alike) straight to the driver. The statements
are the same as Core would emit; the schema they touch is `schema.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine

from mltrail.errors import InvalidParameterValue, InvalidState, ResourceDoesNotExist
from mltrail.store.sql.db_errors import WriteRetry, is_disconnect
from mltrail.store.sql.metric_blocks import BlockWriter

T = TypeVar("T")

_METRIC_ROW = "(?, ?, ?, ?, ?, ?, ?)"
# A batch's metric rows go in as multi-row INSERTs of power-of-two sizes (1000 rows: 512 + 256 +
# ... + 8): one statement per chunk instead of one per row is a quarter faster on SQLite and much
# faster on PostgreSQL, and the drivers' statement caches see at most 10 different texts.
_LARGEST_CHUNK = 512

_SQL = {
    "run_stage": 'SELECT lifecycle_stage FROM runs WHERE run_uuid = ?',
    "batch_seen": 'SELECT batch_id FROM applied_batches WHERE batch_id = ?',
    "batch_mark": 'INSERT INTO applied_batches (batch_id, applied_time) VALUES (?, ?)',
    "insert_metrics": 'INSERT INTO metrics (run_uuid, "key", step, "timestamp", "value", is_nan, model_id) VALUES ',
    "upsert_latest": 'INSERT INTO latest_metrics (run_uuid, "key", step, "timestamp", "value", is_nan) '
                     'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_uuid, "key") DO UPDATE SET '
                     'step = excluded.step, "timestamp" = excluded."timestamp", "value" = excluded."value", '
                     'is_nan = excluded.is_nan WHERE excluded.step > latest_metrics.step OR '
                     '(excluded.step = latest_metrics.step AND excluded."timestamp" >= latest_metrics."timestamp")',
    "param_get": 'SELECT "value" FROM params WHERE run_uuid = ? AND "key" = ?',
    "param_insert": 'INSERT INTO params (run_uuid, "key", "value") VALUES (?, ?, ?)',
    "tag_delete": 'DELETE FROM tags WHERE run_uuid = ? AND "key" = ?',
    "tag_insert": 'INSERT INTO tags (run_uuid, "key", "value") VALUES (?, ?, ?)',
    "run_rename": 'UPDATE runs SET name = ? WHERE run_uuid = ?',
    "models_known": 'SELECT model_id FROM logged_models WHERE model_id = ?',
    # a point logged twice (a resent batch, MLflow's client echoing a run metric) is linked once
    "model_metric_link": 'INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms, '
                         'metric_step, metric_value, run_id, dataset_name, dataset_digest) '
                         'VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
}


def _discard(conn: Any, exc: BaseException) -> None:
    """Roll back after a failure and give the connection back; a dead one is invalidated instead."""
    if is_disconnect(exc):
        conn.invalidate(exc)  # the pool opens a new one for the next transaction
        return
    try:
        conn.rollback()
    except Exception as rollback_exc:  # noqa: BLE001 - the original error is the one to report
        conn.invalidate(rollback_exc)
        return
    conn.close()


class BatchWriter:
    """Writes validated batches for one engine; SQL text is adapted once to the driver's paramstyle."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        style = engine.dialect.paramstyle
        self._qmark = style == "qmark"
        self.sql = {k: self._adapt(s) for k, s in _SQL.items()}
        self._insert_metrics: dict[int, str] = {}
        self._blocks = BlockWriter(style)

    def _adapt(self, sql: str) -> str:
        return sql if self._qmark else sql.replace("?", "%s")

    def _insert_metrics_sql(self, n_rows: int) -> str:
        sql = self._insert_metrics.get(n_rows)
        if sql is None:
            sql = self._insert_metrics[n_rows] = self.sql["insert_metrics"] + ", ".join(
                [self._adapt(_METRIC_ROW)] * n_rows)
        return sql

    def _insert_metric_rows(self, cur: Any, run_id: str, metric_rows: list[tuple]) -> None:
        start, size = 0, _LARGEST_CHUNK
        while start < len(metric_rows):
            while size > len(metric_rows) - start:
                size //= 2
            values: list[Any] = []
            for row in metric_rows[start:start + size]:
                values.append(run_id)
                values.extend(row)
            cur.execute(self._insert_metrics_sql(size), values)
            start += size

    def _transaction(self, fn: Callable[[Any], T], idempotent: bool = False) -> T:
        """`fn(cursor)` in one transaction on a pooled DBAPI connection: committed whole or not at all.

        Contention and a lost connection are retried as `db_errors.WriteRetry` says; a COMMIT cut off
        by a disconnect is retried only when `idempotent` (a batch with an id: the server skips one it
        has applied). A connection lost to a disconnect is invalidated, so the pool never hands it out again.
        """
        retry = WriteRetry()
        while True:
            committing = False
            conn = None
            try:
                conn = self.engine.raw_connection()  # pool_pre_ping: a dead pooled connection is replaced
                cur = conn.cursor()
                if self.sqlite:  # wait for the write lock up front (see engine.py)
                    cur.execute("BEGIN IMMEDIATE")
                result = fn(cur)
                committing = True
                conn.commit()
                return result
            except Exception as exc:
                if conn is not None:
                    _discard(conn, exc)
                    conn = None
                if not retry.again(exc, committing=committing, idempotent=idempotent):
                    raise
            finally:
                if conn is not None:
                    conn.close()

    def _link_model_metrics(self, cur: Any, run_id: str, links: list[tuple]) -> None:
        """Record points that carry a model_id on those logged models too, as MLflow's SQL store does.

        A point naming a model that does not exist still belongs to the run; it is just not linked.
        """
        known = set()
        for model_id in {link[0] for link in links}:
            cur.execute(self.sql["models_known"], (model_id,))
            if cur.fetchone():
                known.add(model_id)
        rows = [(model_id, key, ts, step, value, run_id, dataset_name, dataset_digest)
                for model_id, key, ts, step, value, dataset_name, dataset_digest in links if model_id in known]
        if rows:
            cur.executemany(self.sql["model_metric_link"], rows)

    def write(self, run_id: str, metric_rows: list[tuple], param_map: dict[str, str], tag_map: dict[str, str],
              batch_id: str | None, now_ms: int, model_links: list[tuple] | None = None) -> None:
        """Apply one batch. `metric_rows` are (key, step, timestamp, value, is_nan, model_id);
        `model_links` are (model_id, key, timestamp, step, value or None, dataset_name, dataset_digest)."""
        sql = self.sql

        def apply(cur: Any) -> None:
            if batch_id is not None:
                cur.execute(sql["batch_seen"], (batch_id,))
                if cur.fetchone():
                    return
                cur.execute(sql["batch_mark"], (batch_id, now_ms))
            cur.execute(sql["run_stage"], (run_id,))
            row = cur.fetchone()
            if row is None:
                raise ResourceDoesNotExist(f"Run with id={run_id} not found")
            if row[0] != "active":
                raise InvalidState(f"The run {run_id} must be in the 'active' state. Current state is {row[0]}.")
            for key, value in param_map.items():
                cur.execute(sql["param_get"], (run_id, key))
                old = cur.fetchone()
                if old is None:
                    cur.execute(sql["param_insert"], (run_id, key, value))
                elif old[0] != value:
                    raise InvalidParameterValue(
                        f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                        f"value='{old[0]}' for run ID='{run_id}'. Attempted logging new value '{value}'.")
            for key, value in tag_map.items():
                cur.execute(sql["tag_delete"], (run_id, key))
                cur.execute(sql["tag_insert"], (run_id, key, value))
            if "mlflow.runName" in tag_map:  # the name lives in both places, as in MLflow
                cur.execute(sql["run_rename"], (tag_map["mlflow.runName"], run_id))
            if metric_rows:
                self._insert_metric_rows(cur, run_id, metric_rows)
                self._blocks.add(cur, run_id, (r[:5] for r in metric_rows))  # the charts' summaries
                newest: dict[str, tuple] = {}
                for r in metric_rows:  # per key, the point with the highest (step, timestamp)
                    cur_best = newest.get(r[0])
                    if cur_best is None or (r[1], r[2]) >= (cur_best[1], cur_best[2]):
                        newest[r[0]] = r
                latest = [(run_id, *r[:5]) for r in newest.values()]
                if len(latest) == 1:
                    cur.execute(sql["upsert_latest"], latest[0])
                else:
                    cur.executemany(sql["upsert_latest"], latest)
            if model_links:
                self._link_model_metrics(cur, run_id, model_links)

        self._transaction(apply, idempotent=batch_id is not None)
