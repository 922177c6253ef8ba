"""Live updates of running runs for the UI's pages (the `/ui/api/live` endpoint that live.js polls).

`GET /ui/api/live?run_ids=a,b&since={...}&max_points=` answers
`{"now": ms, "runs": [{"run_id", "status", "start_time", "end_time", "duration", "ended",
"latest": {key: {"value", "text", "step", "timestamp"}}, "new_keys": [...], "series": [{"key",
"since", "sampled", "steps", "timestamps", "values"}], "placement": {new key: {"group", "validates",
"validated_by"}}}]}` (`new_keys`, `placement` and `series` only for the runs named in `since`).

One request answers for every run a page shows: its status, times and latest metric values, the
metric keys the page does not know yet, and per metric the points logged after the last point the
page has drawn. Only keys whose latest point (from `latest_metrics`, read with the runs) is past
the page's last point are read at all, so a poll of a run that logged nothing costs one run search.

`since` is JSON: `{run_id: {metric_key: the last point drawn as [step, timestamp], or a step alone
(every point up to and at it drawn), or null for a key the page shows but has not loaded yet}}`.
Points come after that mark in (step, timestamp) order, so a run that logs every point at the
same step (MLflow's step 0 when none is given) grows its chart too; a point logged later with the
very step and millisecond of the mark is not told apart from it. A key missing from a listed run's
object is new to the page: it is named in `new_keys`, with where `group_metrics` would put it in
`placement` (the page adds a chart or a validation line, which loads its own data), but sends no
points. A tail of more than `max_points` points (a long pause, a hidden tab) comes evenly sampled,
the first and last points kept, and says so with `"sampled": true`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mltrail.entities import Run
from mltrail.errors import InvalidParameterValue
from mltrail.server.ui._format import fmt_duration, fmt_number, fmt_time
from mltrail.server.ui._metric_groups import placement
from mltrail.server.ui._pages import load_runs
from mltrail.server.ui._ui import UI
from mltrail.store.downsample import mlflow_sampled_positions
from mltrail.store.sql.store import SqlTrackingStore

MAX_RUNS = 200
DEFAULT_TAIL_POINTS = 1000
MAX_TAIL_POINTS = 20_000
TOTAL_POINTS = 40_000  # per answer, across its series: what one poll may carry at most
MIN_SERIES_POINTS = 50  # when many series share TOTAL_POINTS, none gets fewer than this
# the points of the mark's own step are read whole and filtered by timestamp (the store reads by
# step): past this many at one step they come sampled
SAME_STEP_POINTS = 100_000
SINCE_HELP = ("expected a JSON object {run_id: {metric key: the last point drawn as [step, timestamp], "
              "a step (an integer), or null}}")

Mark = tuple[int, int | None]
"""The last point a page drew of one run's metric: (step, timestamp), the timestamp None for "all of the step"."""


@dataclass(frozen=True)
class Tail:
    """Points of one run's metric after a mark: what the page appends to its chart."""

    run_id: str
    key: str
    step: int
    timestamp: int | None

    def since(self) -> int | list[int]:
        return self.step if self.timestamp is None else [self.step, self.timestamp]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _mark(run_id: str, key: str, value: Any) -> Mark | None:
    if value is None:
        return None
    if _is_int(value):
        return value, None
    if isinstance(value, list) and len(value) == 2 and _is_int(value[0]) and _is_int(value[1]):
        return value[0], value[1]
    raise InvalidParameterValue(
        f"Invalid since step for run {run_id!r}, metric {key!r}: got {value!r}; {SINCE_HELP}.")


def after(step: int, timestamp: int, mark: Mark) -> bool:
    """Whether a point (step, timestamp) comes after the page's mark."""
    return step > mark[0] or (mark[1] is not None and step == mark[0] and timestamp > mark[1])


def parse_since(raw: str | None) -> dict[str, dict[str, Mark | None]]:
    """The `since` parameter as `{run_id: {key: (step, timestamp or None) or None}}` (empty when not given)."""
    if raw is None or not raw.strip():
        return {}
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidParameterValue(f"Invalid since {raw[:200]!r}: not JSON; {SINCE_HELP}.") from None
    if not isinstance(doc, dict):
        raise InvalidParameterValue(f"Invalid since {raw[:200]!r}: {SINCE_HELP}.")
    out: dict[str, dict[str, Mark | None]] = {}
    for run_id, keys in doc.items():
        if not isinstance(keys, dict):
            raise InvalidParameterValue(f"Invalid since for run {run_id!r}: got {keys!r}; {SINCE_HELP}.")
        out[run_id] = {key: _mark(run_id, key, value) for key, value in keys.items()}
    return out


def check_request(run_ids: Sequence[str], since: dict[str, dict[str, Mark | None]], max_points: int) -> None:
    """Refuse what the endpoint does not answer, naming what was received and what was expected."""
    if not run_ids:
        raise InvalidParameterValue("Missing run_ids: give one or more run IDs (comma-separated).")
    if len(run_ids) > MAX_RUNS:
        raise InvalidParameterValue(f"Too many run_ids ({len(run_ids)}): at most {MAX_RUNS} per request.")
    stray = sorted(set(since) - set(run_ids))
    if stray:
        raise InvalidParameterValue(f"Invalid since: run {stray[0]!r} is not one of run_ids.")
    if not 4 <= max_points <= MAX_TAIL_POINTS:
        raise InvalidParameterValue(f"Invalid max_points {max_points}: expected 4 to {MAX_TAIL_POINTS}.")


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _latest(run: Run) -> dict[str, Any]:
    # RunData keeps each metric's latest point (value, step, timestamp) beside the plain values
    return {m.key: {"value": _finite(m.value), "text": fmt_number(m.value), "step": m.step,
                    "timestamp": m.timestamp} for m in run.data._metric_objs}


def _tails(run: Run, known: dict[str, Mark | None]) -> list[Tail]:
    """This run's metrics with points past the page's mark (by the latest point `latest_metrics` holds:
    the one of the highest step, the latest of that step)."""
    out = []
    for m in run.data._metric_objs:
        mark = known.get(m.key)
        if mark is not None and after(m.step, m.timestamp, mark):
            out.append(Tail(run.info.run_id, m.key, *mark))
    return out


def points_per_tail(n_tails: int, max_points: int) -> int:
    """Points each tail of an answer of `n_tails` may carry: `max_points`, less when many share TOTAL_POINTS."""
    return max(min(max_points, TOTAL_POINTS // max(n_tails, 1)), min(max_points, MIN_SERIES_POINTS))


def _series(store: SqlTrackingStore, tail: Tail, n: int) -> dict[str, Any]:
    # MLflow's evenly spaced sampling keeps every point when there are fewer than n, and returns
    # exactly n otherwise: n points back means the tail was at least that long (maybe longer)
    points = store.get_metric_history_bulk_interval([tail.run_id], tail.key, n, tail.step + 1, None)[0]
    sampled = len(points) >= n
    if tail.timestamp is not None:  # points logged at the mark's step after it come first
        ts = tail.timestamp
        same = store.get_metric_history_bulk_interval([tail.run_id], tail.key, SAME_STEP_POINTS,
                                                      tail.step, tail.step)[0]
        points = [p for p in same if p[1] > ts] + points
        if len(points) > n:
            points = [points[i] for i in mlflow_sampled_positions(len(points), n)]
            sampled = True
    return {"key": tail.key, "since": tail.since(), "sampled": sampled,
            "steps": [p[0] for p in points], "timestamps": [p[1] for p in points],
            "values": [_finite(p[2]) for p in points]}


def live_answer(store: SqlTrackingStore, runs: Sequence[Run], since: dict[str, dict[str, Mark | None]],
                max_points: int) -> dict[str, Any]:
    """The endpoint's answer for these runs (already read, in the page's order)."""
    tails = {r.info.run_id: _tails(r, since[r.info.run_id]) for r in runs if r.info.run_id in since}
    n = points_per_tail(sum(len(t) for t in tails.values()), max_points)
    out = []
    for run in runs:
        info = run.info
        item: dict[str, Any] = {
            "run_id": info.run_id, "status": info.status, "start_time": info.start_time,
            "end_time": info.end_time, "duration": fmt_duration(info.start_time, info.end_time),
            "ended": fmt_time(info.end_time), "latest": _latest(run)}
        known = since.get(info.run_id)
        if known is not None:
            item["new_keys"] = sorted(k for k in item["latest"] if k not in known)
            item["placement"] = {k: placement(k, known) for k in item["new_keys"]}
            item["series"] = [_series(store, t, n) for t in tails[info.run_id]]
        out.append(item)
    return {"now": int(time.time() * 1000), "runs": out}


def _int(raw: str | None, name: str, default: int) -> int:
    if raw is None or not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameterValue(f"Invalid {name} {raw!r}: expected an integer.") from None


def live(ui: UI, request: Request) -> Response:
    """`GET /ui/api/live`: the handler (read the request, read the runs, answer)."""
    p = request.query_params
    ids: list[str] = []
    for value in p.getlist("run_ids"):
        ids += [x.strip() for x in value.split(",") if x.strip()]
    ids = list(dict.fromkeys(ids))
    since = parse_since(p.get("since"))
    max_points = _int(p.get("max_points"), "max_points", DEFAULT_TAIL_POINTS)
    check_request(ids, since, max_points)
    body = orjson.dumps(live_answer(ui.store, load_runs(ui.store, ids), since, max_points))
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
