"""Bulk writes into an mltrail SQL store for the importer: Core executemany, COPY/executemany for metric points.

Everything here works on the destination store's engine (migrations already run by opening the
store). Metric points skip SQLAlchemy: on SQLite they go to the driver's `executemany` (one
prepared statement), on PostgreSQL through `COPY ... FROM STDIN`, which is several times faster
than any INSERT form. Runs and logged models an import has started but not finished carry a
marker tag, so an interrupted import can find them and do them again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from mltrail.store.sql import registry_schema as r
from mltrail.store.sql import schema as t
from mltrail.store.sql.metric_blocks import BlockWriter

# Tag on a run (and on a logged model) written by an import that has not finished yet.
PENDING_TAG = "mltrail.importPending"
_IN_CHUNK = 500  # ids per IN (...) list
_SQLITE_ROWS = 256  # points per multi-row INSERT (7 values each: well under SQLite's 32,766 variables)
_SQLITE_INSERT_ONE = ('INSERT INTO metrics (run_uuid, "key", step, "timestamp", "value", is_nan, model_id) '
                      'VALUES (?, ?, ?, ?, ?, ?, ?)')
_SQLITE_INSERT_MANY = _SQLITE_INSERT_ONE + ", (?, ?, ?, ?, ?, ?, ?)" * (_SQLITE_ROWS - 1)
_COPY_METRICS = 'COPY metrics (run_uuid, "key", step, "timestamp", "value", is_nan, model_id) FROM STDIN'
_COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
TABLES: dict[str, Table] = {name: tbl for name, tbl in t.metadata.tables.items()}


def chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def normalise_rows(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with exactly the keys the table has and that some row gives (executemany needs one key set)."""
    names = {c.name for c in table.columns}
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k in names]
    return [{k: row.get(k) for k in keys} for row in rows]


def _add_to_blocks(cur: Any, paramstyle: str, rows: list[dict[str, Any]]) -> None:
    """Count the points into their runs' chart summaries (store/sql/metric_blocks.py), in their transaction."""
    by_run: dict[str, list[tuple[str, int, int, float, bool]]] = {}
    for row in rows:
        by_run.setdefault(row["run_uuid"], []).append(
            (row["key"], row["step"], row["timestamp"], row["value"], bool(row.get("is_nan", False))))
    writer = BlockWriter(paramstyle)
    for run_id, points in by_run.items():
        writer.add(cur, run_id, points)


class DestWriter:
    """The importer's writes and counts over one destination engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._may_skip_checks: bool | None = None  # PostgreSQL: may COPY skip the foreign-key trigger?

    def write(self) -> Connection:
        """A connection in one write transaction (use as `with dest.write() as conn:`)."""
        return self.engine.connect().execution_options(mltrail_write=True)

    def insert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(insert(table), normalise_rows(table, rows))

    def existing(self, conn: Connection, table: Table, columns: Sequence[str],
                 keys: Iterable[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        """Which of `keys` (values of `columns`) the table already holds."""
        wanted = list(dict.fromkeys(keys))
        found: set[tuple[Any, ...]] = set()
        cols = [table.c[name] for name in columns]
        for part in chunks(wanted):
            cond: ColumnElement[bool]
            if len(cols) == 1:
                cond = cols[0].in_([k[0] for k in part])
            else:
                cond = or_(*[and_(*[c == v for c, v in zip(cols, k, strict=True)]) for k in part])
            found.update(tuple(row) for row in conn.execute(select(*cols).where(cond)))
        return found

    # ------------------------------------------------------------ metric points
    def insert_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Write metric points in one transaction, straight to the driver."""
        if not rows:
            return
        raw = self.engine.raw_connection()
        try:
            if self.postgres:
                driver: Any = raw.driver_connection
                data = copy_text(rows)
                with driver.cursor() as cur:
                    self._skip_row_checks(cur)
                    with cur.copy(_COPY_METRICS) as copy:
                        copy.write(data)
                    _add_to_blocks(cur, "format", rows)
            else:
                cur = raw.cursor()
                cur.execute("BEGIN IMMEDIATE")  # wait for the write lock up front (see store/sql/engine.py)
                self._insert_sqlite(cur, rows)
                _add_to_blocks(cur, "qmark", rows)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()

    def _skip_row_checks(self, cur: Any) -> None:
        """Let COPY skip the per-row foreign-key check of `metrics.run_uuid` where the role may do so.

        Every point's run was written (and committed) before its points, so the check can only pass;
        it costs PostgreSQL a trigger call per row (about 40% of the load time). Only a superuser (or,
        from PostgreSQL 15, a role granted the setting) may change `session_replication_role`; for any
        other role the check stays and the load is slower, nothing else.
        """
        if self._may_skip_checks is False:
            return
        cur.execute("SAVEPOINT mltrail_import")
        try:
            cur.execute("SET LOCAL session_replication_role = replica")
            self._may_skip_checks = True
        except Exception:
            cur.execute("ROLLBACK TO SAVEPOINT mltrail_import")
            self._may_skip_checks = False

    @staticmethod
    def _insert_sqlite(cur: Any, rows: list[dict[str, Any]]) -> None:
        """Multi-row INSERTs of `_SQLITE_ROWS` points (one statement per chunk, not per point), then the rest."""
        flat: list[Any] = []
        for row in rows:
            flat += (row["run_uuid"], row["key"], row["step"], row["timestamp"], row["value"],
                     bool(row.get("is_nan", False)), row.get("model_id"))
        per_chunk = _SQLITE_ROWS * 7
        whole = len(flat) - len(flat) % per_chunk
        for start in range(0, whole, per_chunk):
            cur.execute(_SQLITE_INSERT_MANY, flat[start:start + per_chunk])
        rest = flat[whole:]
        if rest:
            cur.executemany(_SQLITE_INSERT_ONE, [rest[i:i + 7] for i in range(0, len(rest), 7)])

    def derive_latest_metrics(self, conn: Connection) -> None:
        """Fill `latest_metrics` for the pending runs from their history: MLflow's rule, the point with the
        highest step, then the latest timestamp, then the largest value."""
        m, lm = t.metrics, t.latest_metrics
        pending = select(t.tags.c.run_uuid).where(t.tags.c.key == PENDING_TAG)
        conn.execute(delete(lm).where(lm.c.run_uuid.in_(pending)))
        top = (select(m.c.run_uuid, m.c.key, func.max(m.c.step).label("step"))
               .where(m.c.run_uuid.in_(pending)).group_by(m.c.run_uuid, m.c.key).subquery())
        ranked = (select(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value, m.c.is_nan,
                         func.row_number().over(partition_by=(m.c.run_uuid, m.c.key),
                                                order_by=(m.c.timestamp.desc(), m.c.value.desc())).label("rn"))
                  .join_from(m, top, and_(m.c.run_uuid == top.c.run_uuid, m.c.key == top.c.key,
                                          m.c.step == top.c.step))
                  .subquery())
        columns = ["run_uuid", "key", "step", "timestamp", "value", "is_nan"]
        conn.execute(insert(lm).from_select(columns, select(*[ranked.c[c] for c in columns])
                                            .where(ranked.c.rn == 1)))

    # ------------------------------------------------------------ an interrupted import
    def pending_runs(self, conn: Connection) -> list[str]:
        return list(conn.execute(select(t.tags.c.run_uuid).where(t.tags.c.key == PENDING_TAG)).scalars())

    def pending_models(self, conn: Connection) -> list[str]:
        lmt = t.logged_model_tags
        return list(conn.execute(select(lmt.c.model_id).where(lmt.c.tag_key == PENDING_TAG)).scalars())

    def drop_pending(self, conn: Connection) -> tuple[int, int]:
        """Delete what an interrupted import left half-written (runs and logged models with their rows)."""
        run_ids, model_ids = self.pending_runs(conn), self.pending_models(conn)
        for part in chunks(run_ids):
            inputs = select(t.inputs.c.input_uuid).where(t.inputs.c.destination_id.in_(part))
            conn.execute(delete(t.input_tags).where(t.input_tags.c.input_uuid.in_(inputs)))
            conn.execute(delete(t.inputs).where(t.inputs.c.destination_id.in_(part)))
            for table in (t.params, t.tags, t.metrics, t.latest_metrics, t.run_outputs):  # no cascade needed
                conn.execute(delete(table).where(table.c.run_uuid.in_(part)))
            conn.execute(delete(t.runs).where(t.runs.c.run_uuid.in_(part)))
        for part in chunks(model_ids):
            for table in (t.logged_model_params, t.logged_model_tags, t.logged_model_metrics):
                conn.execute(delete(table).where(table.c.model_id.in_(part)))
            conn.execute(delete(t.logged_models).where(t.logged_models.c.model_id.in_(part)))
        return len(run_ids), len(model_ids)

    def clear_pending(self, conn: Connection) -> None:
        conn.execute(delete(t.tags).where(t.tags.c.key == PENDING_TAG))
        conn.execute(delete(t.logged_model_tags).where(t.logged_model_tags.c.tag_key == PENDING_TAG))

    # ------------------------------------------------------------ ids
    def next_experiment_id(self, conn: Connection) -> int:
        return int(conn.execute(select(func.coalesce(func.max(t.experiments.c.experiment_id), 0))).scalar_one()) + 1

    def sync_sequences(self, conn: Connection) -> None:
        """After explicit ids, PostgreSQL's serial sequences must start above them."""
        if self.postgres:
            for table, column in (("experiments", "experiment_id"), ("registered_models", "id")):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                                  f"GREATEST((SELECT MAX({column}) FROM {table}), 1))"))

    def bump_last_versions(self, conn: Connection, rm_ids: Iterable[int]) -> None:
        """Keep each registered model's version counter at or above its highest version."""
        mv, rms = r.model_versions, r.registered_models
        for rm_id in rm_ids:
            top = conn.execute(select(func.max(mv.c.version)).where(mv.c.rm_id == rm_id)).scalar()
            if top is not None:
                conn.execute(update(rms).where(and_(rms.c.id == rm_id, rms.c.last_version < top))
                             .values(last_version=top))

    # ------------------------------------------------------------ counts for the summary
    def count_in(self, conn: Connection, table: Table, column: str, values: Iterable[Any],
                 extra: Any = None) -> int:
        """Rows of `table` whose `column` is one of `values` (and that meet `extra`, when given)."""
        total = 0
        for part in chunks(list(values)):
            cond: ColumnElement[bool] = table.c[column].in_(part)
            if extra is not None:
                cond = and_(cond, extra)
            total += int(conn.execute(select(func.count()).select_from(table).where(cond)).scalar_one())
        return total

    def count_keys(self, conn: Connection, table: Table, columns: Sequence[str],
                   keys: Iterable[tuple[Any, ...]]) -> int:
        return len(self.existing(conn, table, columns, keys))


def _copy_str(value: str) -> str:
    return value.translate(_COPY_ESCAPES) if ("\\" in value or "\t" in value or "\n" in value or "\r" in value) \
        else value


def _copy_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def copy_text(rows: list[dict[str, Any]]) -> str:
    """Metric points in PostgreSQL's COPY text format (tab-separated, `\\N` for NULL, escaped strings)."""
    lines = []
    for row in rows:
        model_id = row.get("model_id")
        lines.append(f"{_copy_str(row['run_uuid'])}\t{_copy_str(row['key'])}\t{int(row['step'])}\t"
                     f"{int(row['timestamp'])}\t{_copy_float(float(row['value']))}\t"
                     f"{'t' if row.get('is_nan') else 'f'}\t{_COPY_NULL if model_id is None else _copy_str(model_id)}\n")
    return "".join(lines)
