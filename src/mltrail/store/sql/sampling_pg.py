"""Downsampled metric series computed inside PostgreSQL: one pass over the series, a few hundred rows out.

`store/downsample.py`'s semantics (per step bucket the minimum and maximum point, NaN never one of
them, the series' first and last points kept whatever their value), without moving the series to
Python: a chart of 1,000,000 points took 13 s reading them into Metric objects, 0.3 s here
(10,000,000 points: 2.5 s). Per bucket, `min(ARRAY[value, step, timestamp, id])` is the minimum
point with the first of equals in (step, timestamp, id) order, as `downsample` picks it, and
`max(ARRAY[value, -step, -timestamp, -id])` the maximum one likewise (float8 holds steps,
timestamps and ids exactly below 2**53). Only the chosen points' ids leave the aggregate; their
rows are then read whole, values exact.
A huge series (10,000,000 points: 0.2 s instead of 3 s) is sampled from its block summaries
instead, the same points (`metric_blocks.py`).

Nothing is cached: every replica of a server answers from the database alone, so a point logged
through one replica is in the next chart drawn by any other (PostgreSQL's ids come from a sequence
and may commit out of order, so SQLite's "no newer id" check could not tell a cached sample stale)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, text

from mltrail.store.sql.metric_blocks import sample_with_blocks

# (step, timestamp, value); value None for NaN, as in sampling.Point
Point = tuple[int, int, float | None]
_BIG = 2**62

_RANGE = "run_uuid = :run AND key = :key AND step BETWEEN :lo AND :hi"
_COUNT_SQL = text(f"SELECT count(*) FROM (SELECT 1 FROM metrics WHERE {_RANGE} LIMIT :cap) AS capped")
_ALL_SQL = text(f'SELECT step, "timestamp", value, is_nan FROM metrics WHERE {_RANGE} ORDER BY step, "timestamp", id')
_ENDS_SQL = (f'SELECT id, step FROM metrics WHERE {_RANGE} '
             'ORDER BY step {d}, "timestamp" {d}, id {d} LIMIT 1')
_FIRST_SQL = text(_ENDS_SQL.format(d="ASC"))
_LAST_SQL = text(_ENDS_SQL.format(d="DESC"))
# bucket i holds the steps s with floor((s - first) * nb / span) = i (the last one also s = last),
# each read by a range scan of the (run_uuid, key, step) index: no sort of the series, and no scan
# of other runs' points (grouping the series by an expression made the planner sort all of it)
_BUCKETS_SQL = text("""
SELECT agg.lo_id, agg.hi_id FROM generate_series(CAST(0 AS bigint), CAST(:nb AS bigint) - 1) AS g(i)
CROSS JOIN LATERAL (
  SELECT (min(ARRAY[value, step, "timestamp", id]::float8[]))[4]::bigint AS lo_id,
         (-(max(ARRAY[value, -step, -"timestamp", -id]::float8[]))[4])::bigint AS hi_id
  FROM metrics WHERE run_uuid = :run AND key = :key AND NOT is_nan AND id <> :first_id AND id <> :last_id
    AND step BETWEEN :first + (g.i * :span + :nb - 1) / :nb
    AND CASE WHEN g.i = :nb - 1 THEN :last ELSE :first + ((g.i + 1) * :span + :nb - 1) / :nb - 1 END
) AS agg WHERE agg.lo_id IS NOT NULL
""")
_BY_IDS_SQL = text('SELECT step, "timestamp", value, is_nan FROM metrics WHERE id = ANY(:ids) '
                   'ORDER BY step, "timestamp", id')


def _point(row: Any) -> Point:
    return int(row[0]), int(row[1]), None if row[3] else float(row[2])


def sample_series(engine: Engine, run_ids: Sequence[str], key: str, max_points: int,
                  min_step: int | None = None, max_step: int | None = None) -> list[list[Point]]:
    """Per run, at most about `max_points` points of `key` in the step range (all when <= 0)."""
    lo = -_BIG if min_step is None else int(min_step)
    hi = _BIG if max_step is None else int(max_step)
    # one snapshot, so the ends, the buckets and the rows read agree while points are logged
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        return [_sample_one(conn, {"run": run_id, "key": key, "lo": lo, "hi": hi}, max_points)
                for run_id in run_ids]


def _sample_one(conn: Connection, args: dict[str, Any], max_points: int) -> list[Point]:
    if max_points > 0:
        max_points = max(max_points, 4)
    if max_points <= 0 or conn.execute(_COUNT_SQL, {**args, "cap": max_points + 1}).scalar_one() <= max_points:
        return [_point(r) for r in conn.execute(_ALL_SQL, args)]
    from_blocks = sample_with_blocks(conn, args["run"], args["key"], args["lo"], args["hi"], max_points)
    if from_blocks is not None:  # a huge series: its block summaries, not its points (metric_blocks.py)
        return from_blocks
    first_id, first_step = conn.execute(_FIRST_SQL, args).one()
    last_id, last_step = conn.execute(_LAST_SQL, args).one()
    chosen = {int(first_id), int(last_id)}
    for lo_id, hi_id in conn.execute(_BUCKETS_SQL, {
            **args, "first_id": first_id, "last_id": last_id, "first": int(first_step), "last": int(last_step),
            "nb": max((max_points - 2) // 2, 1), "span": max(int(last_step) - int(first_step), 1)}):
        chosen.update((int(lo_id), int(hi_id)))
    return [_point(r) for r in conn.execute(_BY_IDS_SQL, {"ids": sorted(chosen)})]
