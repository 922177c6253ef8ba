"""The REST store against a real server (uvicorn on a thread, SQLite): journaled logging, errors at
the call or at flush, read-your-writes, retries while the server is away, credentials, artifacts."""

from __future__ import annotations

import base64
import math
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_fixture import ServerThread, close_stores, server_settings, start_server  # noqa: E402

import mltrail  # noqa: E402
from mltrail.client import Client  # noqa: E402
from mltrail.entities import Metric, Param, RunTag  # noqa: E402
from mltrail.errors import (  # noqa: E402
    InvalidParameterValue,
    MltrailException,
    ResourceDoesNotExist,
)
from mltrail.server.app import create_app  # noqa: E402
from mltrail.store import get_store  # noqa: E402


@pytest.fixture
def uri(request, tmp_path):
    return start_server(request, tmp_path)


@pytest.fixture
def client(uri):
    return Client(uri)


def new_run(client, **kw):
    return client.create_run("0", **kw).info.run_id


def test_fluent_api_over_http(uri):
    mltrail.set_tracking_uri(uri)
    mltrail.set_experiment("remote")
    with mltrail.start_run(run_name="r") as run:
        mltrail.log_param("lr", 0.1)
        mltrail.log_params({"units": 8, "act": "relu"})
        for i in range(300):
            mltrail.log_metric("loss", 1 / (i + 1), step=i)
        mltrail.log_metrics({"acc": 0.5, "nan": float("nan"), "inf": float("inf")}, step=3)
        mltrail.set_tags({"team": "vision"})
    got = Client(uri).get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "r"
    assert got.data.params == {"lr": "0.1", "units": "8", "act": "relu"}
    assert got.data.metrics["loss"] == pytest.approx(1 / 300) and got.data.tags["team"] == "vision"
    assert math.isnan(got.data.metrics["nan"]) and got.data.metrics["inf"] == math.inf
    hist = Client(uri).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in hist] == list(range(300))
    found = mltrail.search_runs(filter_string="params.act = 'relu'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_bad_input_raises_at_the_call(client):
    run_id = new_run(client)
    with pytest.raises(InvalidParameterValue, match="metric"):
        client.log_metric(run_id, "loss", "not a number")
    with pytest.raises(InvalidParameterValue, match="Invalid metric name"):
        client.log_metric(run_id, "bad|key", 1.0)
    with pytest.raises(InvalidParameterValue, match="6000"):
        client.log_param(run_id, "p", "x" * 6001)
    with pytest.raises(InvalidParameterValue, match="1000 metrics"):
        client.log_batch(run_id, metrics=[Metric("m", 1.0, 0, i) for i in range(1001)])
    with pytest.raises(InvalidParameterValue, match="Duplicate parameter"):
        client.log_batch(run_id, params=[Param("a", "1"), Param("a", "2")])
    with pytest.raises(InvalidParameterValue, match="run ID"):
        client.log_metric("../etc", "m", 1.0)
    client.flush()
    assert client.get_run(run_id).data.metrics == {}


def test_param_conflict_surfaces_at_flush_and_spoils_only_itself(client):
    run_id = new_run(client)
    client.log_param(run_id, "p", 1)
    client.flush()
    for i in range(200):
        client.log_metric(run_id, "m", float(i), step=i)
    client.log_param(run_id, "p", 2)  # accepted here: only the server knows the old value
    client.log_param(run_id, "q", "ok")
    for i in range(200, 400):
        client.log_metric(run_id, "m", float(i), step=i)
    with pytest.raises(InvalidParameterValue, match="Changing param values is not allowed"):
        client.flush()
    client.flush()  # the error was reported once
    run = client.get_run(run_id)
    assert run.data.params == {"p": "1", "q": "ok"}
    assert len(client.get_metric_history(run_id, "m")) == 400


def test_unknown_run_surfaces_at_flush(client):
    client.log_metric("0123456789abcdef0123456789abcdef", "m", 1.0)
    with pytest.raises(ResourceDoesNotExist):
        client.flush()


def test_reads_see_queued_calls(client):
    run_id = new_run(client)
    for i in range(1000):
        client.log_metric(run_id, "m", float(i), step=i)
    client.set_tag(run_id, "t", "v")
    assert len(client.get_metric_history(run_id, "m")) == 1000  # no flush: the read waits for the queue
    client.delete_tag(run_id, "t")  # ordered after the queued set_tag
    assert "t" not in client.get_run(run_id).data.tags


def test_end_run_flushes(uri):
    mltrail.set_tracking_uri(uri)
    run = mltrail.start_run()
    for i in range(500):
        mltrail.log_metric("m", i, step=i)
    mltrail.end_run()
    store = get_store(uri)
    assert store._queue.pending() == 0
    assert len(Client(uri).get_metric_history(run.info.run_id, "m")) == 500


def test_logging_waits_out_a_server_restart(request, tmp_path, monkeypatch):
    settings = server_settings(tmp_path)
    first = ServerThread(create_app(settings)).start()
    port = first.port
    client = Client(first.uri)
    run_id = new_run(client)
    first.stop()
    for i in range(100):  # the server is down: calls still return at once
        client.log_metric(run_id, "m", float(i), step=i)
    monkeypatch.setenv("MLTRAIL_FLUSH_TIMEOUT", "1")
    with pytest.raises(MltrailException, match="Nothing is lost") as err:
        client.flush()
    assert err.value.error_code == "TEMPORARILY_UNAVAILABLE"
    monkeypatch.setenv("MLTRAIL_FLUSH_TIMEOUT", "600")
    with pytest.raises(MltrailException, match=r"Timed out after 0\.5 s .* Nothing is lost"):
        client.flush(timeout=0.5)  # the caller's timeout, not the environment's
    second = ServerThread(create_app(settings), port=port).start()
    request.addfinalizer(second.stop)
    request.addfinalizer(lambda: close_stores(first.uri))
    get_store(first.uri).flush(timeout=60)
    assert [m.step for m in client.get_metric_history(run_id, "m")] == list(range(100))


def test_credentials_from_the_environment(request, tmp_path, monkeypatch):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen = []

    async def get_experiment(req):
        seen.append(req.headers.get("authorization"))
        return JSONResponse({"experiment": {"experiment_id": "0", "name": "Default", "artifact_location": "x",
                                            "lifecycle_stage": "active"}})

    srv = ServerThread(Starlette(routes=[Route("/api/2.0/mlflow/experiments/get", get_experiment)])).start()
    request.addfinalizer(srv.stop)
    request.addfinalizer(lambda: close_stores(srv.uri))
    store = get_store(srv.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
    store.get_experiment("0")
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ann")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")
    store.get_experiment("0")
    monkeypatch.setenv("MLTRAIL_TRACKING_TOKEN", "ours")
    store.get_experiment("0")
    assert seen == ["Bearer tok", "Basic " + base64.b64encode(b"ann:pw").decode(), "Bearer ours"]


def test_experiments_and_logged_models(client):
    exp_id = client.create_experiment("e", tags={"a": 1})
    assert client.get_experiment(exp_id).tags == {"a": "1"}
    assert client.get_experiment_by_name("missing") is None
    client.rename_experiment(exp_id, "e2")
    assert client.get_experiment_by_name("e2").experiment_id == exp_id
    assert [e.name for e in client.search_experiments(filter_string="name = 'e2'")] == ["e2"]
    run_id = client.create_run(exp_id).info.run_id
    model = client.create_logged_model(exp_id, name="net", source_run_id=run_id, params={"units": 4},
                                       tags={"k": "v"}, model_type="keras")
    assert model.status == "PENDING" and model.params == {"units": "4"}
    client.set_logged_model_tags(model.model_id, {"k2": "v2"})
    client.delete_logged_model_tag(model.model_id, "k")
    client.log_model_params(model.model_id, {"lr": 0.1})
    done = client.finalize_logged_model(model.model_id, "READY")
    assert done.status == "READY" and done.tags == {"k2": "v2"} and done.params == {"units": "4", "lr": "0.1"}
    found = client.search_logged_models([exp_id], order_by=[{"field_name": "name", "ascending": True}])
    assert [m.model_id for m in found] == [model.model_id]
    assert client.finalize_logged_model(model.model_id, "FAILED").status == "FAILED"


def test_artifacts_through_the_proxy(client, tmp_path):
    run_id = new_run(client)
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    (src / "empty.bin").write_bytes(b"")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    client.log_artifact(run_id, str(big))
    client.log_artifacts(run_id, str(src), "dir")
    client.log_artifact(run_id, str(src), "again")  # a directory keeps its name
    client.log_text(run_id, "hello", "notes/n.txt")
    names = [f.path for f in client.list_artifacts(run_id)]
    assert names == ["again", "big.bin", "dir", "notes"]
    assert [f.path for f in client.list_artifacts(run_id, "dir")] == ["dir/a.txt", "dir/empty.bin", "dir/sub"]
    assert [f.path for f in client.list_artifacts(run_id, "again/src/sub")] == ["again/src/sub/b.txt"]
    local = client.download_artifacts(run_id, "dir", str(tmp_path / "dl"))
    assert open(os.path.join(local, "sub", "b.txt")).read() == "b"
    assert os.path.getsize(os.path.join(local, "empty.bin")) == 0
    one = client.download_artifacts(run_id, "big.bin", str(tmp_path / "dl2"))
    assert open(one, "rb").read() == big.read_bytes()
    repo = client.run_artifact_repo(run_id)
    assert repo.read_bytes("notes/n.txt") == b"hello"
    repo.delete_artifacts("dir")
    assert [f.path for f in client.list_artifacts(run_id)] == ["again", "big.bin", "notes"]
    with pytest.raises(ResourceDoesNotExist):
        repo.read_bytes("dir/a.txt")
    with pytest.raises(InvalidParameterValue):
        client.log_text(run_id, "x", "../escape.txt")


def test_mlflow_artifacts_uri_resolves_against_the_tracking_uri(uri, tmp_path):
    from mltrail.store.artifact import get_artifact_repository

    mltrail.set_tracking_uri(uri)
    repo = get_artifact_repository("mlflow-artifacts:/0/shared")
    repo.write_bytes("x.txt", b"x")
    assert [f.path for f in repo.list_artifacts()] == ["x.txt"]
    same = get_artifact_repository(f"{uri}/api/2.0/mlflow-artifacts/artifacts/0/shared")
    assert same.read_bytes("x.txt") == b"x"
    mltrail.set_tracking_uri(f"sqlite:///{tmp_path}/local.db")
    with pytest.raises(InvalidParameterValue, match="tracking URI"):
        get_artifact_repository("mlflow-artifacts:/0/shared")


def test_forked_child_keeps_its_own_journal(client):
    run_id = new_run(client)
    client.log_metric(run_id, "parent", 1.0)
    pid = os.fork()
    if pid == 0:  # the child: log, flush, leave without running the parent's exit handlers
        code = 0
        try:
            for i in range(10):
                client.log_metric(run_id, "child", float(i), step=i)
            client.flush()
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    client.log_metric(run_id, "parent", 2.0, step=1)
    client.flush()
    assert len(client.get_metric_history(run_id, "child")) == 10
    assert len(client.get_metric_history(run_id, "parent")) == 2


def test_journal_is_removed_once_everything_is_sent(client, tmp_path):
    run_id = new_run(client)
    client.log_metric(run_id, "m", 1.0)
    client.flush()
    store = client.store
    journal = store._queue._journal
    assert journal is not None and os.path.exists(journal.path)
    store._queue.release()
    assert not os.path.exists(journal.path)
    client.log_batch(run_id, tags=[RunTag("after", "release")])  # a new journal opens on demand
    client.flush()
    assert client.get_run(run_id).data.tags["after"] == "release"


def test_log_batch_rate_is_not_bounded_by_round_trips(client):
    """Not a timing assertion: 20,000 calls must go out in far fewer requests than calls."""
    run_id = new_run(client)
    store = client.store
    sent = []
    post = store._queue._post

    def counting(body):
        sent.append(body.count(b'"key"'))
        post(body)

    store._queue._post = counting
    for i in range(20000):
        client.log_metric(run_id, "m", float(i), step=i)
    client.flush()
    assert sum(sent) == 20000 and len(sent) < 2000 and max(sent) <= 1000
    assert len(client.get_metric_history(run_id, "m")) == 20000


# ---------------------------------------------------------------------- outages: backoff, 5xx, 429, the run's end
def test_backoff_doubles_to_its_cap_with_jitter_and_honours_retry_after():
    from mltrail.store.backoff import Backoff, parse_retry_after

    b = Backoff(first=0.1, cap=5.0)
    delays = [b.delay() for _ in range(12)]
    bases = [min(0.1 * 2 ** i, 5.0) for i in range(12)]
    assert all(base / 2 <= d <= base for d, base in zip(delays, bases, strict=True))
    assert max(delays) <= 5.0 and delays[-1] >= 2.5  # capped, still jittered
    b.reset()
    assert b.delay(retry_after=3.0) >= 3.0  # the server's Retry-After wins over a short delay
    assert b.delay(retry_after=60.0) <= 5.0  # within the cap
    assert parse_retry_after("2") == 2.0 and parse_retry_after("0.5") == 0.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None and parse_retry_after(None) is None
    assert Backoff().sleep(stop=lambda: True) is False  # a stop ends the wait at once


def test_5xx_and_429_are_waited_out_not_refused(request):
    """Answers 503 (Retry-After), 500, 502 and 429 before accepting: every call lands, nothing is raised
    (a 500 that repeats is not taken for a refusal), and Retry-After spaces the retries."""
    import time

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    answers = [(503, {"Retry-After": "0.3"}), (500, {}), (500, {}), (500, {}), (502, {}), (429, {})]
    seen: list[tuple[float, bytes]] = []

    async def log_batch(req: Request) -> JSONResponse:
        seen.append((time.monotonic(), await req.body()))
        if len(seen) <= len(answers):
            status, headers = answers[len(seen) - 1]
            return JSONResponse({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}, status, headers)
        return JSONResponse({})

    srv = ServerThread(Starlette(routes=[Route("/api/2.0/mlflow/runs/log-batch", log_batch,
                                               methods=["POST"])])).start()
    request.addfinalizer(srv.stop)
    request.addfinalizer(lambda: close_stores(srv.uri))
    client = Client(srv.uri)
    for i in range(5):
        client.log_metric("a" * 32, "m", float(i), step=i)
    client.flush(timeout=60)
    assert len(seen) >= len(answers) + 1
    assert seen[1][0] - seen[0][0] >= 0.3
    assert b'"step":4' in b"".join(body for _, body in seen[len(answers):])


def test_a_runs_end_is_journaled_after_its_calls():
    from collections import deque

    import orjson

    from mltrail.store.journal import RUN_UPDATE, Entry, entry_line, parse, request_for, take_batch

    calls = [Entry(1, "r1", b'{"key":"m","value":1.0,"timestamp":1,"step":0}', 1, (), ()),
             Entry(2, "r1", b"", 0, (), (), end=("FINISHED", 123)),
             Entry(3, "r1", b'{"key":"m","value":2.0,"timestamp":2,"step":1}', 1, (), ())]
    state = parse(b'{"mltrail_journal":1,"uri":"http://x"}\n' + b"".join(entry_line(e) for e in calls))
    queue = deque(state.unplanned)
    first, end, last = take_batch(queue), take_batch(queue), take_batch(queue)
    assert [e.seq for e in first] == [1] and [e.seq for e in end] == [2] and [e.seq for e in last] == [3]
    endpoint, body = request_for("b1", end)
    assert endpoint == RUN_UPDATE
    assert orjson.loads(body) == {"run_id": "r1", "run_uuid": "r1", "status": "FINISHED", "end_time": 123}
