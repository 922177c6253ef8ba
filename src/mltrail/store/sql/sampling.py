"""Downsampled metric series computed inside SQLite, with a cache of recent samples.

Each series keeps, per step bucket, its minimum and its maximum point (and the first and last
points), so spikes survive however far it is reduced: `store/downsample.py`'s semantics, with
NaN points kept only as a series' first or last point (a bucket's min/max are of its numbers).
One correlated subquery per bucket walks the `(run_uuid, key, step)` index and returns only the
ids of the two chosen points, whose rows are then read whole (values keep all 17 significant
digits), so a 10,000-point series costs two index range scans and a few hundred Python objects
instead of 10,000 Metric objects (the generic path: ~15x slower on a 100-run chart).
A huge series (10,000,000 points: 0.2 s instead of 3 s) is sampled from its block summaries
instead, the same points (`metric_blocks.py`).

Samples are cached per store: an entry is reused only while its series has no point newer (by
row id, which only grows) than when it was sampled, and still ends with the same point. The check
reads the database on every request, so several server processes on one SQLite file (replicas)
never serve each other stale samples: a point logged through one is in the next chart of any.

`sample_like_mlflow` is the other sampling, MLflow's evenly spaced points for its
`get-history-bulk-interval` endpoint (`store/downsample.py`'s `mlflow_sampled_positions` chooses
them). It runs on every SQL dialect, uncached: per run one aggregate over the step index, then
only the chosen points' rows. When a run has one point per step on a regular grid (every step, or
every Nth) the aggregate tells which steps the chosen positions are; other series also read their
steps, one integer per point, to find them.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Engine, and_, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from mltrail.store.downsample import mlflow_sampled_positions
from mltrail.store.sql import schema as t
from mltrail.store.sql.metric_blocks import sample_with_blocks

# (step, timestamp, value); value None for NaN
Point = tuple[int, int, float | None]

# The cache holds at most this many points in all (~150 MB at worst; a 100-run chart is 40,000),
# and no single sample larger than a tenth of that.
CACHE_POINTS = 1_000_000
_BIG = 2**62

# Per bucket, the ids of its minimum and maximum points (NaN excluded; the first of equals in
# (step, timestamp, id) order, as `downsample` picks them). Ids, not values: SQLite turns a REAL
# into text with 15 significant digits, and a chart's values must round-trip exactly.
_BUCKET_PICK = ("(SELECT id FROM metrics WHERE run_uuid = :run AND key = :key AND step BETWEEN r.lo AND r.hi "
                "AND is_nan = 0 AND id <> :first_id AND id <> :last_id ORDER BY value {d}, step, timestamp, id "
                "LIMIT 1)")
_BUCKETS_SQL = text(f"""
WITH RECURSIVE bk(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM bk WHERE i < :nb - 1),
r(lo, hi) AS (
  SELECT :first + (i * :span + :nb - 1) / :nb,
         CASE WHEN i = :nb - 1 THEN :last ELSE :first + ((i + 1) * :span + :nb - 1) / :nb - 1 END FROM bk)
SELECT {_BUCKET_PICK.format(d="ASC")}, {_BUCKET_PICK.format(d="DESC")} FROM r
""")
_BY_IDS_SQL = text("SELECT step, timestamp, value, is_nan FROM metrics WHERE id IN (SELECT value FROM json_each(:ids)) "
                   "ORDER BY step, timestamp, id")
_ENDS_SQL = ("SELECT step, timestamp, value, is_nan, id FROM metrics WHERE run_uuid = :run AND key = :key "
             "AND step BETWEEN :lo AND :hi ORDER BY step {d}, timestamp {d}, id {d} LIMIT 1")
_FIRST_SQL = text(_ENDS_SQL.format(d="ASC"))
_LAST_SQL = text(_ENDS_SQL.format(d="DESC"))
_ALL_SQL = text("SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = :run AND key = :key "
                "AND step BETWEEN :lo AND :hi ORDER BY step, timestamp, id")
_COUNT_SQL = text("SELECT count(*) FROM (SELECT 1 FROM metrics WHERE run_uuid = :run AND key = :key "
                  "AND step BETWEEN :lo AND :hi LIMIT :cap)")
_NEWEST_ID_SQL = text("SELECT max(id) FROM metrics")
# any point of the series logged after a cached sample was taken (ids only grow)
_NEWER_SQL = text("SELECT 1 FROM metrics WHERE id > :id AND run_uuid = :run AND key = :key LIMIT 1")


@dataclass
class _Entry:
    points: list[Point]
    last: tuple[Any, ...]  # the series' last point when sampled
    max_id: int  # the newest metric row id then


def _point(row: Any) -> Point:
    return int(row[0]), int(row[1]), None if row[3] else float(row[2])


class SeriesSampler:
    """Samples series of one SQLite store's `metrics` table, keeping the recent ones."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._points = 0  # in the cache, in all
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._points = 0

    def _cached(self, key: tuple[Any, ...]) -> _Entry | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _remember(self, key: tuple[Any, ...], entry: _Entry) -> None:
        if len(entry.points) > CACHE_POINTS // 10:
            return
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._points -= len(old.points)
            self._cache[key] = entry
            self._points += len(entry.points)
            while self._points > CACHE_POINTS:
                _, evicted = self._cache.popitem(last=False)
                self._points -= len(evicted.points)

    def sample(self, engine: Engine, run_ids: Sequence[str], key: str, max_points: int,
               min_step: int | None = None, max_step: int | None = None) -> list[list[Point]]:
        """Per run, at most about `max_points` points of `key` in the step range (all when <= 0)."""
        lo = -_BIG if min_step is None else int(min_step)
        hi = _BIG if max_step is None else int(max_step)
        out: list[list[Point]] = []
        with engine.connect() as conn:
            max_id = conn.execute(_NEWEST_ID_SQL).scalar() or 0
            for run_id in run_ids:
                args = {"run": run_id, "key": key, "lo": lo, "hi": hi}
                last = conn.execute(_LAST_SQL, args).first()
                if last is None:
                    out.append([])
                    continue
                cache_key = (run_id, key, max_points, lo, hi)
                hit = self._cached(cache_key)
                # valid while the series ends with the same point and has no row newer than the sample; a
                # newest row older than then means rows were deleted (a run's), whose ids SQLite may reuse
                if hit is not None and hit.last == tuple(last) and (hit.max_id == max_id or (
                        max_id > hit.max_id and conn.execute(_NEWER_SQL, {**args, "id": hit.max_id}).first() is None)):
                    hit.max_id = max_id  # no point of this series was logged since: still valid
                    out.append(hit.points)
                    continue
                points = _sample_one(conn, args, max_points, last)
                self._remember(cache_key, _Entry(points, tuple(last), max_id))
                out.append(points)
        return out


def _sample_one(conn: Any, args: dict[str, Any], max_points: int, last: Any) -> list[Point]:
    if max_points <= 0:
        return [_point(r) for r in conn.execute(_ALL_SQL, args)]
    max_points = max(max_points, 4)
    n = conn.execute(_COUNT_SQL, {**args, "cap": max_points + 1}).scalar()
    if n <= max_points:
        return [_point(r) for r in conn.execute(_ALL_SQL, args)]
    from_blocks = sample_with_blocks(conn, args["run"], args["key"], args["lo"], args["hi"], max_points)
    if from_blocks is not None:  # a huge series: its block summaries, not its points (metric_blocks.py)
        return from_blocks
    first = conn.execute(_FIRST_SQL, args).one()
    chosen = {int(first[4]), int(last[4])}
    nb = max((max_points - 2) // 2, 1)
    span = max(int(last[0]) - int(first[0]), 1)
    for lo_id, hi_id in conn.execute(_BUCKETS_SQL, {
            **args, "nb": nb, "first": int(first[0]), "last": int(last[0]), "span": span,
            "first_id": first[4], "last_id": last[4]}):
        chosen.update(i for i in (lo_id, hi_id) if i is not None)
    return [_point(r) for r in conn.execute(_BY_IDS_SQL, {"ids": json.dumps(sorted(chosen))})]


# ---------------------------------------------------------------- MLflow's get-history-bulk-interval

_m = t.metrics
_SERIES = and_(_m.c.run_uuid == bindparam("run"), _m.c.key == bindparam("key"))
_IN_RANGE = and_(_SERIES, _m.c.step >= bindparam("lo"), _m.c.step <= bindparam("hi"))
_DISTINCT_STEPS = select(func.count()).select_from(select(_m.c.step).where(_IN_RANGE).distinct().subquery())
# points, first and last step, distinct steps: two passes over the (run_uuid, key, step) index
_STATS = select(func.count(), func.min(_m.c.step), func.max(_m.c.step),
                _DISTINCT_STEPS.scalar_subquery()).where(_IN_RANGE)
_STEPS = select(_m.c.step).where(_IN_RANGE).order_by(_m.c.step)
_OFF_GRID = select(func.count()).where(_IN_RANGE, (_m.c.step - bindparam("first")) % bindparam("stride") != 0)
_MLFLOW_ORDER = (_m.c.step, _m.c.timestamp, _m.c.value, _m.c.is_nan)
_POINTS = select(*_MLFLOW_ORDER).where(_IN_RANGE).order_by(*_MLFLOW_ORDER)
# the points at some steps: one index seek per step (a range bound here would make SQLite scan the
# range instead); the steps travel as one JSON text or array where the database reads one
_POINTS_AT = {
    "postgresql": _m.c.step == any_(bindparam("steps", type_=ARRAY(BigInteger))),
}
_POINTS_AT_ELSEWHERE = _m.c.step.in_(bindparam("steps", expanding=True))
# SQLite's, straight to the driver: plain tuples (the points already are Points: NULL for NaN)
_SQLITE_POINTS_AT = ('SELECT step, "timestamp", CASE WHEN is_nan THEN NULL ELSE "value" END FROM metrics '
                     'WHERE run_uuid = ? AND "key" = ? AND step IN (SELECT value FROM json_each(?)) '
                     'ORDER BY step, "timestamp", "value", is_nan')
_SQLITE_STEPS = 'SELECT step FROM metrics WHERE run_uuid = ? AND "key" = ? AND step BETWEEN ? AND ? ORDER BY step'
_STEPS_PER_QUERY = 5000


def sample_like_mlflow(engine: Engine, run_ids: Sequence[str], key: str, max_results: int,
                       start_step: int | None = None, end_step: int | None = None) -> list[list[Point]]:
    """Per run of `run_ids` (in their order, repeats included), the points of `key` an MLflow 3.17
    server returns from `get-history-bulk-interval` with this `max_results` and step range
    (inclusive; a bound left out is open): `mlflow_sampled_positions`' choice of the run's points in
    the range sorted by (step, timestamp, value, is_nan), listed in that order. An unknown run or
    key has no points. Values are None for NaN, as in every `Point`.
    """
    lo = -_BIG if start_step is None else int(start_step)
    hi = _BIG if end_step is None else int(end_step)
    dialect = engine.dialect.name
    points_at = select(*_MLFLOW_ORDER).where(_SERIES, _POINTS_AT.get(dialect, _POINTS_AT_ELSEWHERE)) \
        .order_by(*_MLFLOW_ORDER)

    def at_steps(conn: Any, args: dict[str, Any], steps: list[int]) -> list[Any]:
        if dialect != "sqlite":
            return [_point(r) for r in conn.execute(points_at, {**args, "steps": steps})]
        return _driver_rows(conn, _SQLITE_POINTS_AT, (args["run"], args["key"], json.dumps(steps)))

    by_run: dict[str, list[Point]] = {}
    # one snapshot, so counts and points agree (SQLite's deferred BEGIN in WAL mode gives one)
    snapshot = {} if dialect == "sqlite" else {"isolation_level": "REPEATABLE READ"}
    with engine.connect().execution_options(**snapshot) as conn, conn.begin():
        for run_id in dict.fromkeys(run_ids):
            args = {"run": run_id, "key": key, "lo": lo, "hi": hi}
            steps, repeated = _mlflow_choice(conn, args, max_results, dialect == "sqlite")
            if steps is None:
                by_run[run_id] = [_point(r) for r in conn.execute(_POINTS, args)]  # all of them
                continue
            points: list[Point] = []
            for i in range(0, len(steps), _STEPS_PER_QUERY):
                points.extend(at_steps(conn, args, steps[i:i + _STEPS_PER_QUERY]))
            by_run[run_id] = _keep_offsets(points, repeated) if repeated else points
    return [by_run[r] for r in run_ids]


def _driver_rows(conn: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """Rows as the driver gives them, without SQLAlchemy's per-row wrapping (most of the time when
    a run's sample is 2,500 points)."""
    cursor = conn.connection.cursor()
    try:
        return cursor.execute(sql, params).fetchall()
    finally:
        cursor.close()


def _mlflow_choice(conn: Any, args: dict[str, Any], max_results: int,
                   sqlite: bool = False) -> tuple[list[int] | None, dict[int, set[int]]]:
    """The steps of one series' chosen points (None: all its points), and for those steps that
    hold several points, which of them (offsets among the step's points in MLflow's order)."""
    total, first, last, distinct = conn.execute(_STATS, args).one()
    if not total:
        return [], {}
    if total <= max_results:
        return None, {}
    positions = mlflow_sampled_positions(total, max_results)
    # one point per step, on the grid first, first + stride, ..., last (every step, or every Nth):
    # position p is step first + p * stride, without reading the steps
    stride, rest = divmod(last - first, total - 1)
    if distinct == total and not rest and (stride == 1 or conn.execute(
            _OFF_GRID, {**args, "first": first, "stride": stride}).scalar() == 0):
        return [first + p * stride for p in positions], {}
    if sqlite:
        steps = [r[0] for r in _driver_rows(conn, _SQLITE_STEPS, (args["run"], args["key"], args["lo"], args["hi"]))]
    else:
        steps = conn.execute(_STEPS, args).scalars().all()
    chosen: dict[int, None] = {}
    repeated: dict[int, set[int]] = {}
    for p in positions:
        step = steps[p]
        chosen[step] = None
        if (p > 0 and steps[p - 1] == step) or (p + 1 < total and steps[p + 1] == step):
            repeated.setdefault(step, set()).add(p - bisect_left(steps, step))
    return list(chosen), repeated


def _keep_offsets(points: list[Point], repeated: dict[int, set[int]]) -> list[Point]:
    """Of `points` (sorted in MLflow's order), those at the wanted offsets of the repeated steps."""
    out = []
    current: Any = None
    offset = 0
    for point in points:
        if point[0] != current:
            current, offset = point[0], 0
        else:
            offset += 1
        wanted = repeated.get(current)
        if wanted is None or offset in wanted:
            out.append(point)
    return out
