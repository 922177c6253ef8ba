"""`--expose-prometheus DIR`: request counts and latencies per route, the DB pool, journal batches, at /metrics.

Metric names follow MLflow's exporter (prometheus_flask_exporter with the `mlflow` prefix):
`mlflow_http_request_total` and `mlflow_http_request_duration_seconds`, labelled by method and
status and, here, by the route TEMPLATE (`/api/2.0/mlflow/runs/get`, `/runs/{run_id}`), never the
raw path, so ids in URLs cannot blow up the number of series. `/health` and `/version` are not
counted, as in MLflow. mltrail adds `mltrail_db_pool_size`, `mltrail_db_pool_checked_out` and
`mltrail_journal_batches_applied_total` (log-batch requests that carried a journal's `batch_id`
and were stored).

With several workers the numbers must add up across processes: `mltrail server` points
prometheus_client's multiprocess mode at DIR (`PROMETHEUS_MULTIPROC_DIR`, as MLflow does with
the same option) before any worker imports it, and /metrics then reads every worker's files.
Without that variable (an app built in-process), the numbers are this process's own.
"""

from __future__ import annotations

import glob
import os
import re
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXCLUDED_PATHS = frozenset({"/health", "/version"})
UNMATCHED = "<unmatched>"
# a journal's batch id in a log-batch body: a JSON key can only appear unescaped outside strings
_BATCH_ID = re.compile(rb'"batch_id"\s*:\s*"[^"]')
_TAIL = 64  # bytes kept from one body chunk to the next, so a key split across chunks is still seen


def prepare_multiprocess_dir(directory: str) -> None:
    """Make DIR, drop the files a previous server left, and point prometheus_client at it.

    Call before prometheus_client is imported anywhere in this process and before workers start.
    """
    os.makedirs(directory, exist_ok=True)
    for kind in ("counter", "gauge_*", "histogram", "summary"):
        for path in glob.glob(os.path.join(directory, f"{kind}_*.db")):
            os.remove(path)
    os.environ[MULTIPROC_ENV] = directory


def multiprocess_dir() -> str | None:
    """The directory prometheus_client writes to, when it runs in multiprocess mode in this process."""
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        return None
    return os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())


def _pool_counts(engine: Any) -> tuple[int, int] | None:
    """(configured size, checked out) of a queue pool; None for pools without a fixed size."""
    from sqlalchemy.pool import QueuePool

    pool = engine.pool
    if isinstance(pool, QueuePool):
        return pool.size(), pool.checkedout()
    return None


class ServerMetrics:
    """The metrics of one app, and the text /metrics answers."""

    def __init__(self, engine: Any | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.engine = engine
        self.directory = multiprocess_dir()
        # one registry per app: two apps in one process (tests) never collide on names
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.directory else self.registry  # multiprocess values live in files instead
        labels = ("method", "path", "status")
        self.requests = Counter("mlflow_http_request", "Requests answered, by route template and status.",
                                labels, registry=reg)
        self.latency = Histogram("mlflow_http_request_duration_seconds",
                                 "Time to answer, by route template and status.", labels, registry=reg)
        self.batches = Counter("mltrail_journal_batches_applied",
                               "log-batch requests with a journal batch_id that were stored.", registry=reg)
        self.pool_size = Gauge("mltrail_db_pool_size", "Connections the database pool keeps.",
                               registry=reg, multiprocess_mode="livesum")
        self.pool_checked_out = Gauge("mltrail_db_pool_checked_out", "Database connections in use.",
                                      registry=reg, multiprocess_mode="livesum")

    def observe(self, method: str, path: str, status: int, seconds: float, journal_batch: bool) -> None:
        self.requests.labels(method, path, str(status)).inc()
        self.latency.labels(method, path, str(status)).observe(seconds)
        if journal_batch and status == 200:
            self.batches.inc()
        self.update_pool()

    def update_pool(self) -> None:
        counts = _pool_counts(self.engine) if self.engine is not None else None
        if counts is not None:
            self.pool_size.set(counts[0])
            self.pool_checked_out.set(counts[1])

    def exposition(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        self.update_pool()
        if self.directory is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.directory)
        return generate_latest(merged)

    def route(self) -> Route:
        """`GET /metrics`, in Prometheus's text format."""
        from prometheus_client import CONTENT_TYPE_LATEST

        async def metrics(request: Request) -> Response:
            return Response(await run_in_threadpool(self.exposition), media_type=CONTENT_TYPE_LATEST)

        return Route("/metrics", metrics, methods=["GET"])


def route_template(scope: dict[str, Any], entry_root_path: str) -> str:
    """The matched route's path pattern, mounts included (the router leaves `route` in the scope)."""
    route = scope.get("route")
    if not isinstance(route, (Route, Mount)):
        return UNMATCHED
    pattern = route.path
    root: str = scope.get("root_path", "")
    mounted = root[len(entry_root_path):] if root.startswith(entry_root_path) else ""
    return mounted + pattern


class PrometheusMiddleware:
    """Time every request and count it under its route template."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry_root = scope.get("root_path", "")
        start = time.perf_counter()
        status = 500
        found = False
        tail = b""

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def receive_scanning() -> dict[str, Any]:
            nonlocal found, tail
            message: dict[str, Any] = await receive()
            if not found and message["type"] == "http.request":
                chunk = tail + message.get("body", b"")
                found = _BATCH_ID.search(chunk) is not None
                tail = chunk[-_TAIL:]
            return message

        log_batch = scope["method"] == "POST" and scope["path"].endswith("/runs/log-batch")
        try:
            await self.app(scope, receive_scanning if log_batch else receive, send_status)
        finally:
            template = route_template(scope, entry_root)
            if template not in EXCLUDED_PATHS:
                self.metrics.observe(scope["method"], template, status, time.perf_counter() - start, found)
