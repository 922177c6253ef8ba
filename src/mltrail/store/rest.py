"""The tracking store over HTTP: a tracking server speaking MLflow's REST API (ours or MLflow's).

Reads and most writes are synchronous requests on a keep-alive session per thread. Log calls
(`log_batch`, which log_metric/log_param/set_tag go through) are validated here, written to
the journal (see `mltrail.store.journal`) and sent in merged batches by a background thread:
a call costs microseconds, a killed process loses nothing, and every call lands once.
Connection errors, 429 and 5xx are transient: the journal keeps the calls and retries them with
capped exponential backoff (`mltrail.store.backoff`) for as long as the process lives. Only a
4xx is a refusal (a changed param, a deleted run), reported to the run whose call it was: at that
run's end (`end_run`, `Client.set_terminated`) or at `flush()`. Ending a run is itself journaled:
`end_run` waits up to `MLTRAIL_FLUSH_TIMEOUT` (30 s) for the run's calls, then returns with one
warning, and the run becomes FINISHED when its end arrives (from this process, the next one or
`mltrail sync`). `create_run` and `create_logged_model` carry an idempotency key, so a request
resent after a lost answer creates one run (our server honours it; MLflow's ignores the field).
Reads of run data first wait for queued calls, so a process always reads what it logged.

Credentials: `MLFLOW_TRACKING_TOKEN` (Bearer), `MLFLOW_TRACKING_USERNAME`/`_PASSWORD` (basic),
`MLFLOW_TRACKING_INSECURE_TLS`, `MLFLOW_TRACKING_SERVER_CERT_PATH`, `MLFLOW_TRACKING_CLIENT_CERT_PATH`,
each also as `MLTRAIL_...`.
"""

from __future__ import annotations

import atexit
import math
import os
import sys
import threading
import time
import urllib.parse
import uuid
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import orjson

from mltrail import _validation as v
from mltrail.entities import (
    DatasetInput,
    Experiment,
    LoggedModel,
    LoggedModelOutput,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    json_number,
)
from mltrail.errors import (
    ENDPOINT_NOT_FOUND,
    INTERNAL_ERROR,
    TEMPORARILY_UNAVAILABLE,
    MltrailException,
    MltrailWarning,
    ResourceDoesNotExist,
)
from mltrail.store import rest_json as rj
from mltrail.store.backoff import Backoff, parse_retry_after
from mltrail.store.base import TrackingStore
from mltrail.store.journal import LOG_BATCH, LogQueue, TransientError, journal_files, recover
from mltrail.store.rest_registry import RestRegistryMixin

API = "/api/2.0/mlflow"
MLTRAIL_API = "/api/2.0/mltrail"
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
# the body field carrying a create call's idempotency key (MLflow's server ignores unknown fields)
IDEMPOTENCY_FIELD = "mltrail_idempotency_key"
_TERMINAL_STATUSES = {"FINISHED", "FAILED", "KILLED"}


class JournaledCallsWarning(MltrailWarning):
    """A run ended while some of its calls were still journaled (the server was not answering)."""


def _is_transient_status(status: int) -> bool:
    return status in _TRANSIENT_STATUS or 500 <= status < 600


def _env(name: str) -> str | None:
    return os.environ.get(f"MLTRAIL_{name}") or os.environ.get(f"MLFLOW_{name}")


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def flush_timeout() -> float:
    """How long `end_run`/`flush` wait for a server that does not answer (`MLTRAIL_FLUSH_TIMEOUT`, 30 s).

    At interpreter exit, one such bound covers everything exit waits for, not one per store or run.
    """
    global _exit_deadline
    timeout = _env_float("FLUSH_TIMEOUT", 30.0)
    if _exiting():
        if _exit_deadline is None:
            _exit_deadline = time.monotonic() + timeout
        timeout = max(0.0, min(timeout, _exit_deadline - time.monotonic()))
    return timeout


_exit_deadline: float | None = None  # set by the first wait at interpreter exit


def _exiting() -> bool:
    # CPython stops the main thread (threading._shutdown) before it runs the atexit hooks
    return not threading.main_thread().is_alive()


def error_from_response(resp: Any, url: str) -> MltrailException:
    """The server's `{"error_code", "message"}` as the matching exception class."""
    try:
        body = orjson.loads(resp.content)
        if isinstance(body, dict) and "error_code" in body:
            return MltrailException.from_error_code(str(body.get("message", "")), str(body["error_code"]))
    except orjson.JSONDecodeError:
        pass
    code = ENDPOINT_NOT_FOUND if resp.status_code == 404 else (
        TEMPORARILY_UNAVAILABLE if resp.status_code == 503 else INTERNAL_ERROR)
    if resp.status_code in (400, 413, 415):
        code = "BAD_REQUEST"
    text = resp.text[:300].strip()
    return MltrailException(f"HTTP {resp.status_code} from {url}: {text or resp.reason}", code)


class HttpClient:
    """Requests to one server: a session per thread, credentials from the environment, retries."""

    def __init__(self, base_uri: str) -> None:
        self.base = base_uri.rstrip("/")
        self._local = threading.local()

    def session(self) -> Any:
        s = getattr(self._local, "session", None)
        if s is None or getattr(self._local, "pid", None) != os.getpid():
            import requests

            s = requests.Session()
            self._local.session = s
            self._local.pid = os.getpid()
        return s

    def _auth(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"headers": {}}
        token = _env("TRACKING_TOKEN")
        user, password = _env("TRACKING_USERNAME"), _env("TRACKING_PASSWORD")
        if token:
            kw["headers"]["Authorization"] = f"Bearer {token}"
        elif user and password:
            kw["auth"] = (user, password)
        insecure = (_env("TRACKING_INSECURE_TLS") or "").lower() in ("1", "true", "yes")
        cert_path = _env("TRACKING_SERVER_CERT_PATH")
        if insecure:
            kw["verify"] = False
        elif cert_path:
            kw["verify"] = cert_path
        client_cert = _env("TRACKING_CLIENT_CERT_PATH")
        if client_cert:
            kw["cert"] = client_cert
        return kw

    def request(self, method: str, path: str, *, params: Any = None, body: bytes | None = None,
                data: Any = None, headers: dict[str, str] | None = None, stream: bool = False,
                retries: int | None = None, timeout: float | None = None) -> Any:
        """One request with retries on connection errors and 429/5xx; returns the Response (status 200)."""
        import requests

        url = self.base + path
        kw = self._auth()
        if headers:
            kw["headers"].update(headers)
        if body is not None:
            kw["headers"]["Content-Type"] = "application/json"
            data = body
        attempts = (int(_env_float("HTTP_REQUEST_MAX_RETRIES", 5)) if retries is None else retries) + 1
        timeout = timeout or _env_float("HTTP_REQUEST_TIMEOUT", 120.0)
        backoff = Backoff(first=0.2, cap=10.0)
        for attempt in range(attempts):
            retry_after = None
            try:
                resp = self.session().request(method, url, params=params, data=data, stream=stream,
                                              timeout=timeout, **kw)
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt == attempts - 1 or (data is not None and hasattr(data, "read")):
                    raise MltrailException(f"Could not reach the tracking server at {self.base}: {e}",
                                           TEMPORARILY_UNAVAILABLE) from e
            else:
                if resp.status_code == 200:
                    return resp
                if not _is_transient_status(resp.status_code) or attempt == attempts - 1 \
                        or (data is not None and hasattr(data, "read")):
                    raise error_from_response(resp, url)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            backoff.sleep(retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON endpoint: GET sends `payload` as query parameters, others as the JSON body."""
        if method == "GET":
            params = {k: (v if not isinstance(v, bool) else str(v).lower())
                      for k, v in (payload or {}).items() if v is not None}
            resp = self.request("GET", path, params=params)
        else:
            resp = self.request(method, path, body=orjson.dumps(payload or {}))
        return orjson.loads(resp.content) if resp.content else {}

    def post_batch(self, body: bytes, endpoint: str = LOG_BATCH) -> None:
        """The journal's poster: refusals (4xx but 408/429) raise MltrailException, the rest TransientError."""
        import requests

        url = f"{self.base}{API}/{endpoint}"
        kw = self._auth()
        kw["headers"]["Content-Type"] = "application/json"
        try:
            resp = self.session().post(url, data=body, timeout=_env_float("HTTP_REQUEST_TIMEOUT", 120.0), **kw)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            # a server that died mid-answer breaks the chunked body: the batch's id makes a resend safe
            raise TransientError(f"could not reach {self.base}: {e}") from e
        if resp.status_code == 200:
            return
        if _is_transient_status(resp.status_code):
            raise TransientError(f"HTTP {resp.status_code} from {url}: {resp.text[:200]}", resp.status_code,
                                 parse_retry_after(resp.headers.get("Retry-After")))
        raise error_from_response(resp, url)


def _ended_info(run_id: str, status: str, end_time: int) -> RunInfo:
    """What is known of a run whose end is journaled but not yet read back from the server."""
    return RunInfo(run_id=run_id, experiment_id="", run_name="", user_id="", status=status, start_time=0,
                   end_time=end_time, artifact_uri="")


def _paged(items: list[Any], token: str | None) -> PagedList:
    return PagedList(items, token or None)


class RestTrackingStore(RestRegistryMixin, TrackingStore):
    """A tracking store at `http(s)://host[:port][/prefix]`."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.http = HttpClient(self.uri)
        self._queue = LogQueue(self.uri, self.http.post_batch)
        self._valid_keys: set[str] = set()
        self._valid_runs: set[str] = set()
        self._warned_pending = False
        _live_stores.add(self)
        if (_env("JOURNAL_RECOVERY") or "1").lower() not in ("0", "false", "no"):
            threading.Thread(target=self._recover_others, name="mltrail-journal-recovery", daemon=True).start()

    # ------------------------------------------------------------------ queue control
    def flush(self, timeout: float | None = None, run_id: str | None = None) -> None:
        """Wait until every logged call is stored; raise the first refusal (of `run_id`'s calls, or of
        any run's) or a timeout error."""
        self._queue.flush(flush_timeout() if timeout is None else timeout, run_id)

    def end_run(self, run_id: str, status: str, end_time: int) -> RunInfo:
        """Journal the run's end after its calls; wait for them up to the flush timeout.

        The run always ends: a server that does not answer in time leaves the end journaled (one
        warning says so) and it arrives later. A refusal of one of this run's calls is raised, once
        the end has been sent.
        """
        v.validate_run_id(run_id)
        self._queue.put(run_id, b"", 0, (), (), end=(status, end_time))
        if not self._queue.wait(flush_timeout()):
            pending = self._queue.pending()
            self._warned_pending = _exiting()  # warned at exit: the exit flush need not say it again
            warnings.warn(
                f"mltrail: {self.uri} did not answer in time (MLTRAIL_FLUSH_TIMEOUT="
                f"{_env_float('FLUSH_TIMEOUT', 30.0):g} s); {pending} call(s), including the end of run {run_id} "
                f"({status}), remain journaled. The next process logging to this server, or `mltrail sync`, "
                "sends them.", JournaledCallsWarning, stacklevel=5)
            return _ended_info(run_id, status, end_time)
        if _exiting():  # ended at exit: the journal owes nothing more, remove it
            self._queue.release()
        errors = self._queue.take_errors(run_id)
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.message += f" ({len(errors) - 1} more logging call(s) of this run were also refused.)"
                first.args = (first.message,)
            raise first
        try:
            return self.get_run(run_id).info
        except MltrailException:  # the run has ended; only the read of its final state failed
            return _ended_info(run_id, status, end_time)

    def _drain(self) -> None:
        """Before reading run data or changing a run: let queued calls land first (errors stay for flush)."""
        if self._queue.pending():
            self._queue.wait(flush_timeout())

    def close(self, timeout: float | None = None) -> None:
        """Stop the sender thread after up to `timeout` s of sending (tests; exit does this by itself)."""
        self._queue.close(timeout=flush_timeout() if timeout is None else timeout)
        _live_stores.discard(self)

    def _recover_others(self) -> None:
        """Send what dead processes left in journals for this tracking URI (exactly once)."""
        for path in journal_files(None, self.uri):  # every root: the fallback directory's journals too
            try:
                result = recover(path, lambda uri: self.http.post_batch)
            except Exception as e:  # noqa: BLE001 - recovery is best effort; `mltrail sync` reports
                print(f"mltrail: could not resend journal {path}: {e}", file=sys.stderr)
                continue
            if result is not None and result.failed:
                print(f"mltrail: {len(result.failed)} logged call(s) from an earlier process were refused by "
                      f"{self.uri}: {result.failed[0].message}", file=sys.stderr)

    # ------------------------------------------------------------------ logging (journaled)
    def _check_key(self, kind: str, key: Any) -> None:
        if key not in self._valid_keys:
            v.validate_key(kind, key)
            if len(self._valid_keys) < 100_000:
                self._valid_keys.add(key)

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = (), batch_id: str | None = None) -> None:
        """Validate now (bad input raises here), journal, return; the server gets it in the background.

        Args:
            batch_id: an idempotency id of the caller's own; such a batch is sent at once, alone
                (after the queue), and the server applies it once however often it is sent.
        """
        if run_id not in self._valid_runs:
            v.validate_run_id(run_id)
            if len(self._valid_runs) < 10_000:
                self._valid_runs.add(run_id)
        if len(metrics) + len(params) + len(tags) > 100:  # any limit broken implies this
            v.validate_batch_limits(len(metrics), len(params), len(tags))
        mlist = []
        for m in metrics:
            key, value, ts, step = m.key, m.value, m.timestamp, m.step
            if type(value) is float and type(ts) is int and type(step) is int and key in self._valid_keys:
                pass  # the common case, already checked
            else:
                key, value, ts, step = v.validate_metric(key, value, ts, step)
                self._check_key("metric", key)
            d: dict[str, Any] = {"key": key, "value": value if math.isfinite(value) else json_number(value),
                                 "timestamp": ts, "step": step}
            if m.model_id:  # a logged model's metric, maybe measured on a named dataset
                d["model_id"] = m.model_id
                if m.dataset_name:
                    d["dataset_name"] = m.dataset_name
                if m.dataset_digest:
                    d["dataset_digest"] = m.dataset_digest
            mlist.append(d)
        if not params and not tags and batch_id is None:
            if mlist:
                self._queue.put(run_id, orjson.dumps(mlist)[1:-1], len(mlist), (), ())
            return
        plist = v.validate_batch_params(params)
        tlist = tuple(v.validate_tag(t.key, t.value) for t in tags)
        if batch_id is not None:
            self._drain()
            self.http.call("POST", f"{API}/runs/log-batch", {
                "run_id": run_id, "batch_id": batch_id, "metrics": mlist, "params": rj.kv_list(plist),
                "tags": [{"key": k, "value": val} for k, val in tlist]})
            return
        if not (mlist or plist or tlist):
            return
        self._queue.put(run_id, orjson.dumps(mlist)[1:-1] if mlist else b"", len(mlist), tuple(plist.items()),
                        tlist)

    # ------------------------------------------------------------------ experiments
    def create_experiment(self, name: str, artifact_location: str | None = None,
                          tags: dict[str, str] | None = None) -> str:
        v.validate_experiment_name(name)
        out = self.http.call("POST", f"{API}/experiments/create", rj.drop_none({
            "name": name, "artifact_location": artifact_location, "tags": rj.kv_list(tags or {})}))
        return str(out["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        out = self.http.call("GET", f"{API}/experiments/get", {"experiment_id": str(experiment_id)})
        return rj.experiment_from_json(out["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            out = self.http.call("GET", f"{API}/experiments/get-by-name", {"experiment_name": name})
        except ResourceDoesNotExist:
            return None
        return rj.experiment_from_json(out["experiment"])

    def search_experiments(self, view_type: int = 1, max_results: int = 1000, filter_string: str | None = None,
                           order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList[Experiment]:
        out = self.http.call("POST", f"{API}/experiments/search", rj.drop_none({
            "view_type": int(view_type), "max_results": max_results, "filter": filter_string,
            "order_by": list(order_by or []), "page_token": page_token}))
        return _paged([rj.experiment_from_json(e) for e in out.get("experiments", [])], out.get("next_page_token"))

    def delete_experiment(self, experiment_id: str) -> None:
        self._drain()
        self.http.call("POST", f"{API}/experiments/delete", {"experiment_id": str(experiment_id)})

    def restore_experiment(self, experiment_id: str) -> None:
        self.http.call("POST", f"{API}/experiments/restore", {"experiment_id": str(experiment_id)})

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        v.validate_experiment_name(new_name)
        self.http.call("POST", f"{API}/experiments/update", {"experiment_id": str(experiment_id),
                                                             "new_name": new_name})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        key, value = v.validate_tag(key, value)
        self.http.call("POST", f"{API}/experiments/set-experiment-tag",
                       {"experiment_id": str(experiment_id), "key": key, "value": value})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.http.call("POST", f"{API}/experiments/delete-experiment-tag",
                       {"experiment_id": str(experiment_id), "key": key})

    # ------------------------------------------------------------------ runs
    def create_run(self, experiment_id: str, user_id: str, start_time: int | None,
                   tags: Sequence[RunTag], run_name: str | None) -> Run:
        tag_items = [v.validate_tag(t.key, t.value) for t in tags]
        out = self.http.call("POST", f"{API}/runs/create", rj.drop_none({
            "experiment_id": str(experiment_id), "user_id": user_id, "start_time": start_time,
            "run_name": run_name, "tags": [{"key": k, "value": val} for k, val in tag_items],
            IDEMPOTENCY_FIELD: uuid.uuid4().hex}))  # a resend after a lost answer gets the same run
        return rj.run_from_json(out["run"])

    def get_run(self, run_id: str) -> Run:
        v.validate_run_id(run_id)
        self._drain()
        return rj.run_from_json(self.http.call("GET", f"{API}/runs/get", {"run_id": run_id})["run"])

    def update_run_info(self, run_id: str, run_status: str | None, end_time: int | None,
                        run_name: str | None) -> RunInfo:
        if run_status in _TERMINAL_STATUSES and end_time is not None and run_name is None:
            return self.end_run(run_id, run_status, end_time)  # journaled: a run always ends
        self._drain()
        out = self.http.call("POST", f"{API}/runs/update", rj.drop_none({
            "run_id": run_id, "run_uuid": run_id, "status": run_status, "end_time": end_time,
            "run_name": run_name}))
        return rj.run_info_from_json(out["run_info"])

    def delete_run(self, run_id: str) -> None:
        self._drain()
        self.http.call("POST", f"{API}/runs/delete", {"run_id": run_id})

    def restore_run(self, run_id: str) -> None:
        self.http.call("POST", f"{API}/runs/restore", {"run_id": run_id})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._drain()
        self.http.call("POST", f"{API}/runs/delete-tag", {"run_id": run_id, "key": key})

    def get_metric_history(self, run_id: str, metric_key: str, max_results: int | None = None,
                           page_token: str | None = None) -> PagedList[Metric]:
        self._drain()
        out = self.http.call("GET", f"{API}/metrics/get-history", {
            "run_id": run_id, "metric_key": metric_key, "max_results": max_results, "page_token": page_token})
        return _paged([rj.metric_from_json(m) for m in out.get("metrics", [])], out.get("next_page_token"))

    def get_metric_history_sampled(self, run_id: str, metric_key: str, max_points: int,
                                   min_step: int | None = None, max_step: int | None = None) -> list[Metric]:
        self._drain()
        out = self.http.call("GET", f"{MLTRAIL_API}/metrics/get-history-sampled", {
            "run_id": run_id, "metric_key": metric_key, "max_points": max_points, "min_step": min_step,
            "max_step": max_step})
        return [rj.metric_from_json(m) for m in out.get("metrics", [])]

    def search_runs(self, experiment_ids: Sequence[str], filter_string: str | None = None,
                    run_view_type: int = 1, max_results: int = 1000, order_by: Sequence[str] | None = None,
                    page_token: str | None = None) -> PagedList[Run]:
        self._drain()
        out = self.http.call("POST", f"{API}/runs/search", rj.drop_none({
            "experiment_ids": [str(e) for e in experiment_ids], "filter": filter_string,
            "run_view_type": int(run_view_type), "max_results": max_results, "order_by": list(order_by or []),
            "page_token": page_token}))
        return _paged([rj.run_from_json(r) for r in out.get("runs", [])], out.get("next_page_token"))

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None,
                   models: Sequence[Any] | None = None) -> None:
        self._drain()
        self.http.call("POST", f"{API}/runs/log-inputs", {
            "run_id": run_id, "datasets": [rj.dataset_input_to_json(d) for d in datasets or []],
            "models": [{"model_id": m.model_id} for m in models or []]})

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        self._drain()
        self.http.call("POST", f"{API}/runs/outputs", {
            "run_id": run_id, "models": [{"model_id": m.model_id, "step": m.step} for m in models]})

    def search_datasets(self, experiment_ids: Sequence[str]) -> list[tuple[str, str, str, str | None]]:
        # MLflow serves search-datasets under /ajax-api only, 20 experiments a request (handlers.py)
        ids = list(dict.fromkeys(str(e) for e in experiment_ids))
        self._drain()
        found: set[tuple[str, str, str, str | None]] = set()
        for i in range(0, len(ids), 20):
            out = self.http.call("POST", "/ajax-api/2.0/mlflow/experiments/search-datasets",
                                 {"experiment_ids": ids[i:i + 20]})
            found.update((str(d.get("experiment_id", "")), str(d.get("name", "")), str(d.get("digest", "")),
                          d.get("context") or None) for d in out.get("dataset_summaries", []))
        order = sorted(found, key=lambda s: (int(s[0]) if s[0].isdigit() else -1, s[1], s[2], s[3] is not None,
                                             s[3] or ""))
        return order[:1000]

    # ------------------------------------------------------------------ logged models
    @staticmethod
    def _model_path(model_id: str) -> str:
        return f"{API}/logged-models/{urllib.parse.quote(model_id, safe='')}"

    def create_logged_model(self, experiment_id: str, name: str | None = None, source_run_id: str | None = None,
                            tags: dict[str, str] | None = None, params: dict[str, str] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        out = self.http.call("POST", f"{API}/logged-models", rj.drop_none({
            "experiment_id": str(experiment_id), "name": name, "source_run_id": source_run_id,
            "model_type": model_type, "tags": rj.kv_list(tags or {}), "params": rj.kv_list(params or {}),
            IDEMPOTENCY_FIELD: uuid.uuid4().hex}))  # a resend after a lost answer gets the same model
        return rj.logged_model_from_json(out["model"])

    def get_logged_model(self, model_id: str) -> LoggedModel:
        self._drain()  # its metrics come through the logging queue
        return rj.logged_model_from_json(self.http.call("GET", self._model_path(model_id))["model"])

    def finalize_logged_model(self, model_id: str, status: str) -> LoggedModel:
        out = self.http.call("PATCH", self._model_path(model_id), {
            "model_id": model_id, "status": rj.model_status_to_json(rj.model_status_from_json(str(status)))})
        return rj.logged_model_from_json(out["model"])

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        if tags:
            self.http.call("PATCH", self._model_path(model_id) + "/tags", {"tags": rj.kv_list(tags)})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self.http.call("DELETE", f"{self._model_path(model_id)}/tags/{urllib.parse.quote(key, safe='')}")

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        items = list(params.items())
        for i in range(0, len(items), 100):
            self.http.call("POST", self._model_path(model_id) + "/params",
                           {"model_id": model_id, "params": [{"key": k, "value": val} for k, val in items[i:i + 100]]})

    def delete_logged_model(self, model_id: str) -> None:
        self.http.call("DELETE", self._model_path(model_id))

    def search_logged_models(self, experiment_ids: Sequence[str] | None = None, filter_string: str | None = None,
                             max_results: int = 100, order_by: Sequence[str] | None = None,
                             page_token: str | None = None) -> PagedList[LoggedModel]:
        self._drain()  # a filter or order on metrics sees the queued ones
        order = []
        for o in order_by or []:
            field, _, direction = str(o).strip().partition(" ")
            order.append({"field_name": field, "ascending": direction.strip().upper() != "DESC"})
        out = self.http.call("POST", f"{API}/logged-models/search", rj.drop_none({
            "experiment_ids": [str(e) for e in experiment_ids or []], "filter": filter_string,
            "max_results": max_results, "order_by": order, "page_token": page_token}))
        return _paged([rj.logged_model_from_json(m) for m in out.get("models", [])], out.get("next_page_token"))

    # ------------------------------------------------------------------ maintenance
    def deleted_run_ids(self, older_than_ms: int | None = None) -> list[str]:
        raise MltrailException(
            f"Garbage collection is not available over REST ({self.uri}): run `mltrail gc` with the server's "
            "--backend-store-uri.", "BAD_REQUEST")

    def purge_run(self, run_id: str) -> None:
        self.deleted_run_ids()

    def prune_applied_batches(self, older_than_ms: int) -> int:
        self.deleted_run_ids()
        return 0


# stores of this process, so exit can flush each (weak: a dropped store is not kept alive)
_live_stores: weakref.WeakSet[RestTrackingStore] = weakref.WeakSet()


def _flush_at_exit() -> None:
    """Send what is queued (up to the flush timeout) and report refusals: exit never drops them silently."""
    for store in list(_live_stores):  # one MLTRAIL_FLUSH_TIMEOUT for all of exit (see flush_timeout)
        try:
            if store._warned_pending and not store._queue.wait(flush_timeout()):
                # an end_run warning already said what remains journaled: report only refusals
                refused = store._queue.take_errors()
                if refused:
                    raise refused[0]
            else:
                store.flush()
        except MltrailException as e:
            print(f"mltrail: logging to {store.uri} at exit: {e.message}", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - exit must go on
            print(f"mltrail: logging to {store.uri} at exit failed: {e!r}", file=sys.stderr)
        store._queue.release()


atexit.register(_flush_at_exit)

__all__ = ["HttpClient", "JournaledCallsWarning", "RestTrackingStore", "error_from_response"]
