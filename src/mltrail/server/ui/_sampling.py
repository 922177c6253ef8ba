"""Downsampled metric histories of many runs for one chart (the `/ui/api/metrics` endpoint).

Each series keeps, per step bucket, its minimum and its maximum point (and the first and last
points), so spikes survive however far it is reduced: the store's `get_metric_history_sampled`
semantics. Series come back as columns (steps, values, timestamps).

On SQLite the buckets are computed inside the database: one correlated subquery per bucket walks
the `(run_uuid, key, step)` index and returns only the two chosen points, so a 10,000-point
series costs two index range scans and ~400 Python objects instead of 10,000 (the store's
generic path builds a Metric per point: ~15x slower on a 100-run chart). Other databases use
the store's method. Sampled series are cached per app: an entry is reused only while its series
has no point newer (by row id, which only grows) than when it was sampled.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from mltrail.errors import InvalidParameterValue

MAX_RUNS_PER_REQUEST = 200
MAX_POINTS = 20_000
TOTAL_POINTS = 40_000  # per chart, across its runs: what a browser draws quickly
CACHE_ENTRIES = 2000

_BUCKETS_SQL = """
WITH RECURSIVE bk(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM bk WHERE i < :nb - 1),
r(lo, hi) AS (
  SELECT :first + (i * :span + :nb - 1) / :nb,
         CASE WHEN i = :nb - 1 THEN :last ELSE :first + ((i + 1) * :span + :nb - 1) / :nb - 1 END FROM bk)
SELECT
  (SELECT step || ' ' || timestamp || ' ' || min(value) FROM metrics
    WHERE run_uuid = :run AND key = :key AND step BETWEEN r.lo AND r.hi AND is_nan = 0
      AND id <> :first_id AND id <> :last_id),
  (SELECT step || ' ' || timestamp || ' ' || max(value) FROM metrics
    WHERE run_uuid = :run AND key = :key AND step BETWEEN r.lo AND r.hi AND is_nan = 0
      AND id <> :first_id AND id <> :last_id)
FROM r
"""
_ENDS_SQL = ("SELECT step, timestamp, value, is_nan, id FROM metrics WHERE run_uuid = :run AND key = :key "
             "AND step BETWEEN :lo AND :hi ORDER BY step {d}, timestamp {d}, id {d} LIMIT 1")
_ALL_SQL = ("SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = :run AND key = :key "
            "AND step BETWEEN :lo AND :hi ORDER BY step, timestamp, id")
_COUNT_SQL = ("SELECT count(*) FROM (SELECT 1 FROM metrics WHERE run_uuid = :run AND key = :key "
              "AND step BETWEEN :lo AND :hi LIMIT :cap)")
# any point of the series logged after a cached sample was taken (ids only grow)
_NEWER_SQL = "SELECT 1 FROM metrics WHERE id > :id AND run_uuid = :run AND key = :key LIMIT 1"
_BIG = 2**62


@dataclass
class _Entry:
    data: bytes
    last: tuple[Any, ...]  # the series' last point when sampled
    max_id: int  # the newest metric row id then


def points_per_run(n_runs: int) -> int:
    """How many points each run of a chart of `n_runs` gets by default."""
    return max(200, min(1000, TOTAL_POINTS // max(n_runs, 1)))


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _series_json(run_id: str, points: Sequence[tuple[int, int, float | None]]) -> bytes:
    return orjson.dumps({"run_id": run_id, "steps": [p[0] for p in points],
                         "values": [_finite(p[2]) for p in points], "timestamps": [p[1] for p in points]})


class Sampler:
    """Sampled series of one store, with a small cache of recent ones."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._cache: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.fast = self._is_sqlite(store)

    @staticmethod
    def _is_sqlite(store: Any) -> bool:
        try:
            from mltrail.store.sql.store import SqlTrackingStore
        except ImportError:  # pragma: no cover
            return False
        return isinstance(store, SqlTrackingStore) and store.engine.dialect.name == "sqlite"

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def _cached(self, key: tuple[Any, ...]) -> _Entry | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _remember(self, key: tuple[Any, ...], entry: _Entry) -> None:
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)

    def response(self, run_ids: Sequence[str], key: str, max_points: int, min_step: int | None = None,
                 max_step: int | None = None) -> bytes:
        """The endpoint's JSON body: `{"key": ..., "runs": [{"run_id", "steps", "values", "timestamps"}]}`."""
        if not run_ids:
            raise InvalidParameterValue("Missing run_ids: give one or more run IDs (comma-separated).")
        if len(run_ids) > MAX_RUNS_PER_REQUEST:
            raise InvalidParameterValue(
                f"Too many run_ids ({len(run_ids)}): at most {MAX_RUNS_PER_REQUEST} per request.")
        if not 4 <= max_points <= MAX_POINTS:
            raise InvalidParameterValue(f"Invalid max_points {max_points}: expected 4 to {MAX_POINTS}.")
        if self.fast:
            parts = self._sqlite(list(run_ids), key, max_points, min_step, max_step)
        else:
            parts = []
            for run_id in run_ids:
                pts = self.store.get_metric_history_sampled(run_id, key, max_points, min_step, max_step)
                parts.append(_series_json(run_id, [(p.step, p.timestamp, p.value) for p in pts]))
        return b'{"key":' + orjson.dumps(key) + b',"runs":[' + b",".join(parts) + b"]}"

    # ------------------------------------------------------------------ SQLite
    def _sqlite(self, run_ids: list[str], key: str, max_points: int, min_step: int | None,
                max_step: int | None) -> list[bytes]:
        from sqlalchemy import text

        lo = -_BIG if min_step is None else int(min_step)
        hi = _BIG if max_step is None else int(max_step)
        out = []
        with self.store.engine.connect() as conn:
            max_id = conn.execute(text("SELECT max(id) FROM metrics")).scalar() or 0
            for run_id in run_ids:
                args = {"run": run_id, "key": key, "lo": lo, "hi": hi}
                last = conn.execute(text(_ENDS_SQL.format(d="DESC")), args).first()
                if last is None:
                    out.append(_series_json(run_id, []))
                    continue
                cache_key = (run_id, key, max_points, lo, hi)
                hit = self._cached(cache_key)
                if hit is not None and hit.last == tuple(last) and (hit.max_id == max_id or conn.execute(
                        text(_NEWER_SQL), {"run": run_id, "key": key, "id": hit.max_id}).first() is None):
                    hit.max_id = max_id  # no point of this series was logged since: still valid
                    out.append(hit.data)
                    continue
                data = _series_json(run_id, self._sample_one(conn, args, max_points, last))
                self._remember(cache_key, _Entry(data, tuple(last), max_id))
                out.append(data)
        return out

    @staticmethod
    def _sample_one(conn: Any, args: dict[str, Any], max_points: int,
                    last: Any) -> list[tuple[int, int, float | None]]:
        from sqlalchemy import text

        def point(row: Any) -> tuple[int, int, float | None]:
            return int(row[0]), int(row[1]), None if row[3] else float(row[2])

        n = conn.execute(text(_COUNT_SQL), {**args, "cap": max_points + 1}).scalar()
        if n <= max_points:
            return [point(r) for r in conn.execute(text(_ALL_SQL), args)]
        first = conn.execute(text(_ENDS_SQL.format(d="ASC")), args).one()
        chosen = {point(first), point(last)}
        nb = max((max_points - 2) // 2, 1)
        span = max(int(last[0]) - int(first[0]), 1)
        for lo_text, hi_text in conn.execute(text(_BUCKETS_SQL), {
                **args, "nb": nb, "first": int(first[0]), "last": int(last[0]), "span": span,
                "first_id": first[4], "last_id": last[4]}):
            for cell in (lo_text, hi_text):
                if cell:
                    step, ts, value = cell.split(" ")
                    chosen.add((int(step), int(ts), float(value)))
        return sorted(chosen, key=lambda p: (p[0], p[1]))
