"""Per-block summaries of metric series (revision 0006), so a chart of a huge series reads summaries, not points.

A block is a fixed range of `BLOCK_STEPS` steps of one run's metric (block b holds the steps
b * BLOCK_STEPS .. b * BLOCK_STEPS + BLOCK_STEPS - 1). Its row in `metric_blocks` keeps how many points
it has and its minimum and maximum point (NaN never one; the first of equal values in (step,
timestamp) order, as `store/downsample.py` picks them). Every writer of `metrics` keeps the blocks in
the same transaction as the points (`BlockWriter`: the points of a batch are summarised in Python, then
one upsert per block touched); data written before revision 0006 is summarised by the migration
(`rebuild`), and a run's blocks go with the run (a foreign key with ON DELETE CASCADE).

`sample_with_blocks` samples a series as `sampling.py`/`sampling_pg.py` do, exactly the same points:
a block that lies wholly inside one step bucket gives its minimum and maximum as summarised; only the
blocks cut by a bucket edge, and the blocks holding the series' first and last points (which are not
a bucket's minimum or maximum), are read point by point. At 10,000,000 points and 1,000 chart points
that is ~78,000 block rows and ~64,000 points instead of every point. It declines (returns None) where
reading the blocks would not save most of the reading: small or sparse series, narrow buckets.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Float, PrimaryKeyConstraint, String, Table, text

from mltrail.store.sql.schema import belongs_to, metadata, runs

# Steps per block. Reading costs about (points / BLOCK_STEPS) block rows plus BLOCK_STEPS points per
# bucket edge; 128 is near the best for 10,000,000 points and 500 buckets (the sqrt of their ratio).
BLOCK_STEPS = 128
# Blocks are used only when they cut the rows read at least this many times (a series of 100,000
# points is sampled as fast point by point).
MIN_GAIN = 2.0

metric_blocks = Table(
    "metric_blocks", metadata,
    belongs_to(runs.c.run_uuid),
    Column("key", String(250), nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),  # points, NaN ones included
    # the block's minimum and maximum point; NULL when all its points are NaN
    Column("min_value", Float(precision=53)),
    Column("min_step", BigInteger),
    Column("min_timestamp", BigInteger),
    Column("max_value", Float(precision=53)),
    Column("max_step", BigInteger),
    Column("max_timestamp", BigInteger),
    PrimaryKeyConstraint("run_uuid", "key", "block"),
    sqlite_with_rowid=False,
)

# (step, timestamp, value); value None for NaN, as in sampling.Point
Point = tuple[int, int, float | None]
# n, min (value, step, timestamp), max (value, step, timestamp)
Summary = list[Any]

_NEW_MIN = ("excluded.min_value IS NOT NULL AND (metric_blocks.min_value IS NULL OR "
            "(excluded.min_value, excluded.min_step, excluded.min_timestamp) < "
            "(metric_blocks.min_value, metric_blocks.min_step, metric_blocks.min_timestamp))")
_NEW_MAX = ("excluded.max_value IS NOT NULL AND (metric_blocks.max_value IS NULL OR "
            "excluded.max_value > metric_blocks.max_value OR (excluded.max_value = metric_blocks.max_value AND "
            "(excluded.max_step, excluded.max_timestamp) < (metric_blocks.max_step, metric_blocks.max_timestamp)))")
# valid SQL for SQLite (>= 3.24) and PostgreSQL alike; the SET expressions all see the row as it was
_UPSERT = ('INSERT INTO metric_blocks (run_uuid, "key", block, n, min_value, min_step, min_timestamp, '
           'max_value, max_step, max_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) '
           'ON CONFLICT (run_uuid, "key", block) DO UPDATE SET n = metric_blocks.n + excluded.n, '
           + ", ".join(f"{side}_{col} = CASE WHEN {cond} THEN excluded.{side}_{col} ELSE metric_blocks.{side}_{col} END"
                       for side, cond in (("min", _NEW_MIN), ("max", _NEW_MAX))
                       for col in ("value", "step", "timestamp")))


def summarize(points: Iterable[tuple[str, int, int, float, Any]]) -> dict[tuple[str, int], Summary]:
    """Per (key, block), the summary of `points` given as (key, step, timestamp, value, is_nan)."""
    out: dict[tuple[str, int], Summary] = {}
    for key, step, ts, value, is_nan in points:
        at = (key, step // BLOCK_STEPS)
        s = out.get(at)
        if s is None:
            s = out[at] = [0, None, None, None, None, None, None]
        s[0] += 1
        if is_nan:
            continue
        if s[1] is None or (value, step, ts) < (s[1], s[2], s[3]):
            s[1], s[2], s[3] = value, step, ts
        if s[4] is None or value > s[4] or (value == s[4] and (step, ts) < (s[5], s[6])):
            s[4], s[5], s[6] = value, step, ts
    return out


class BlockWriter:
    """Adds points to the blocks on a DBAPI cursor, inside the transaction that inserts them."""

    def __init__(self, paramstyle: str) -> None:
        self.sql = _UPSERT if paramstyle == "qmark" else _UPSERT.replace("?", "%s")

    def add(self, cur: Any, run_id: str, points: Iterable[tuple[str, int, int, float, Any]]) -> None:
        """Count `points` ((key, step, timestamp, value, is_nan) of run `run_id`) into their blocks."""
        rows = _rows(run_id, summarize(points))
        if len(rows) == 1:
            cur.execute(self.sql, rows[0])
        elif rows:
            cur.executemany(self.sql, rows)


def _rows(run_id: str, summaries: dict[tuple[str, int], Summary]) -> list[tuple[Any, ...]]:
    # in key order: two PostgreSQL transactions upserting the same blocks lock them in one order (no deadlock)
    return [(run_id, key, block, *summaries[(key, block)]) for key, block in sorted(summaries)]


def rebuild(conn: Connection, run_ids: Iterable[str] | None = None) -> int:
    """Summarise the points of these runs (all runs: None) again from `metrics`; returns the blocks written.

    Each run's points are streamed (a server-side cursor on PostgreSQL), so memory holds its blocks only.
    """
    if run_ids is None:
        run_ids = [r[0] for r in conn.execute(text("SELECT DISTINCT run_uuid FROM metrics"))]
    postgres = conn.dialect.name == "postgresql"
    writer = BlockWriter("format" if postgres else "qmark")
    select_sql = 'SELECT "key", step, "timestamp", "value", is_nan FROM metrics WHERE run_uuid = ' + (
        "%s" if postgres else "?")
    written = 0
    for run_id in run_ids:
        conn.execute(text("DELETE FROM metric_blocks WHERE run_uuid = :run"), {"run": run_id})
        driver: Any = conn.connection.driver_connection
        reading = driver.cursor(name="mltrail_rebuild_blocks") if postgres else driver.cursor()
        try:
            reading.execute(select_sql, (run_id,))
            summaries = summarize(_streamed(reading))
        finally:
            reading.close()
        rows = _rows(run_id, summaries)
        cur = driver.cursor()
        try:
            for i in range(0, len(rows), 10_000):
                cur.executemany(writer.sql, rows[i:i + 10_000])
        finally:
            cur.close()
        written += len(rows)
    return written


def _streamed(cur: Any) -> Iterable[tuple[str, int, int, float, Any]]:
    while rows := cur.fetchmany(50_000):
        yield from rows


# ---------------------------------------------------------------- reading

_BLOCK_STATS = 'SELECT count(*), sum(n) FROM metric_blocks WHERE run_uuid = ? AND "key" = ? AND block BETWEEN ? AND ?'
# the maximum's value also negated, so one ascending key orders both picks (greater value, then first step)
_BLOCKS = ('SELECT block, min_value, min_step, min_timestamp, -max_value, max_step, max_timestamp, max_value '
           'FROM metric_blocks WHERE run_uuid = ? AND "key" = ? AND block BETWEEN ? AND ? '
           'AND min_value IS NOT NULL ORDER BY block')
_POINTS = ('SELECT "value", step, "timestamp", id, -"value" FROM metrics WHERE run_uuid = ? AND "key" = ? '
           'AND step BETWEEN ? AND ? AND NOT is_nan AND id <> ? AND id <> ? ORDER BY step')
_ENDS = ('SELECT id, step, "timestamp", "value", is_nan FROM metrics WHERE run_uuid = ? AND "key" = ? '
         'AND step BETWEEN ? AND ? ORDER BY step {d}, "timestamp" {d}, id {d} LIMIT 1')
_ID_OF = ('SELECT id FROM metrics WHERE run_uuid = ? AND "key" = ? AND step = ? AND "timestamp" = ? '
          'AND "value" = ? AND is_nan = ? ORDER BY id LIMIT 1')
# orders of a block row and of a point row: by the minimum, by the maximum
_BLOCK_MIN, _BLOCK_MAX = itemgetter(1, 2, 3), itemgetter(4, 5, 6)
_POINT_MIN, _POINT_MAX = itemgetter(0, 1, 2, 3), itemgetter(4, 1, 2, 3)


class _Reader:
    """Plain SQL on the connection's DBAPI cursor (SQLAlchemy's per-row cost is most of 100,000 rows)."""

    def __init__(self, conn: Connection) -> None:
        self.qmark = conn.dialect.paramstyle == "qmark"
        self.cur = conn.connection.cursor()

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        self.cur.execute(sql if self.qmark else sql.replace("?", "%s"), params)
        return list(self.cur.fetchall())

    def close(self) -> None:
        self.cur.close()


def sample_with_blocks(conn: Connection, run_id: str, key: str, lo: int, hi: int, max_points: int) -> list[Point] | None:
    """The points `sampling.py` samples from `key` of `run_id` in steps lo..hi (`max_points` >= 4, fewer
    than the series has), computed from the blocks; None when the blocks would not save much reading."""
    reader = _Reader(conn)
    try:
        return _sample(reader, run_id, key, lo, hi, max_points)
    finally:
        reader.close()


def _sample(reader: _Reader, run_id: str, key: str, lo: int, hi: int, max_points: int) -> list[Point] | None:
    first = reader.rows(_ENDS.format(d="ASC"), (run_id, key, lo, hi))
    last = reader.rows(_ENDS.format(d="DESC"), (run_id, key, lo, hi))
    if not first or not last:
        return None
    first_id, first_step = int(first[0][0]), int(first[0][1])
    last_id, last_step = int(last[0][0]), int(last[0][1])
    b0, b1 = first_step // BLOCK_STEPS, last_step // BLOCK_STEPS
    nb = max((max_points - 2) // 2, 1)
    span = max(last_step - first_step, 1)
    blocks, points = (int(x or 0) for x in reader.rows(_BLOCK_STATS, (run_id, key, b0, b1))[0])
    if not blocks or not points:
        return None  # not summarised
    # bucket i holds the steps starts[i] .. starts[i + 1] - 1 (sampling.py's buckets)
    starts = [first_step + (i * span + nb - 1) // nb for i in range(nb)] + [last_step + 1]
    # read point by point: the blocks holding a bucket's first step (but not as their own first) and the ends
    raw = sorted({b0, b1} | {s // BLOCK_STEPS for s in starts[1:-1] if s % BLOCK_STEPS})
    if MIN_GAIN * (blocks + min(len(raw), blocks) * points / blocks) > points:
        return None
    summaries = reader.rows(_BLOCKS, (run_id, key, b0 + 1, b1 - 1))
    block_numbers = [int(r[0]) for r in summaries]
    singles: list[Any] = []  # NaN and the two ends left out, in step order
    for step_lo, step_hi in _ranges(raw):
        singles += reader.rows(_POINTS, (run_id, key, max(step_lo, first_step), min(step_hi, last_step),
                                         first_id, last_id))
    single_steps = [int(r[1]) for r in singles]
    chosen: dict[Any, tuple[int, int, float | None, int]] = {}
    for row in (first[0], last[0]):
        chosen[int(row[0])] = (int(row[1]), int(row[2]), None if row[4] else float(row[3]), int(row[0]))
    for i in range(nb):
        lo_step, hi_step = starts[i], starts[i + 1] - 1
        if lo_step > hi_step:
            continue
        # the blocks wholly inside the bucket (a raw block never is), and its points read one by one
        whole = summaries[bisect_left(block_numbers, -(-lo_step // BLOCK_STEPS)):
                          bisect_right(block_numbers, (hi_step + 1) // BLOCK_STEPS - 1)]
        some = singles[bisect_left(single_steps, lo_step):bisect_right(single_steps, hi_step)]
        lows, highs = [], []
        if whole:
            b = min(whole, key=_BLOCK_MIN)
            lows.append((b[1], b[2], b[3], -1))  # a block's pick: no id (it is alone at its step)
            b = min(whole, key=_BLOCK_MAX)
            highs.append((b[4], b[5], b[6], -1, b[7]))
        if some:
            p = min(some, key=_POINT_MIN)
            lows.append((p[0], p[1], p[2], p[3]))
            p = min(some, key=_POINT_MAX)
            highs.append((p[4], p[1], p[2], p[3], p[0]))
        if lows:
            value, step, ts, ident = min(lows)
            _choose(chosen, float(value), int(step), int(ts), int(ident))
            _, step, ts, ident, value = min(highs)
            _choose(chosen, float(value), int(step), int(ts), int(ident))
    return _in_order(reader, run_id, key, list(chosen.values()))


def _choose(chosen: dict[Any, tuple[int, int, float | None, int]], value: float, step: int, ts: int,
            ident: int) -> None:
    chosen[ident if ident >= 0 else (step, ts, value)] = (step, ts, value, ident)


def _ranges(blocks: list[int]) -> list[tuple[int, int]]:
    """The step ranges of these (sorted) blocks, neighbours joined."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        if out and out[-1][1] == b * BLOCK_STEPS - 1:
            out[-1] = (out[-1][0], b * BLOCK_STEPS + BLOCK_STEPS - 1)
        else:
            out.append((b * BLOCK_STEPS, b * BLOCK_STEPS + BLOCK_STEPS - 1))
    return out


def _in_order(reader: _Reader, run_id: str, key: str, points: list[tuple[int, int, float | None, int]]) -> list[Point]:
    """`points` in (step, timestamp, id) order; a block's pick sharing its step and timestamp with another
    point learns its id (the first row with its values) from the database."""
    at: dict[tuple[int, int], int] = {}
    for p in points:
        at[(p[0], p[1])] = at.get((p[0], p[1]), 0) + 1
    resolved = []
    for step, ts, value, ident in points:
        if ident < 0 and at[(step, ts)] > 1:
            ident = int(reader.rows(_ID_OF, (run_id, key, step, ts, value, False))[0][0])
        resolved.append((step, ts, ident, value))
    resolved.sort(key=lambda p: (p[0], p[1], p[2]))
    return [(step, ts, value) for step, ts, _, value in resolved]
