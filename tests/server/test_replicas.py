"""Several replicas of the server on one database behave as one server (#15).

Each replica is a real app (`create_app`, its own engine, pools and caches) served by uvicorn on
its own port; consecutive requests go to different replicas, as a load balancer sends them. The
database is PostgreSQL (a fresh one per test); the read-after-write test runs on one SQLite file
too, where the chart sampler keeps a cache per replica.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from server_fixture import ServerThread, close_stores, server_settings
from sqlalchemy import func, select, text

from mltrail.server.app import create_app
from mltrail.server.auth import store as auth_store_module
from mltrail.server.idempotency import IdempotencyRecords
from mltrail.store.sql import engine as eng
from mltrail.store.sql.replica_schema import auth_login_failures, idempotency_keys

API = "/api/2.0/mlflow"
ADMIN = ("admin", "admin-password-0123")
PASSWORD = "user-password-0123"
SETTLE_S = auth_store_module.FRESH_S + 5.0  # the documented bound, plus room for a loaded machine

postgres = pytest.mark.postgres


class Replica:
    """One replica: the app's server thread and a `requests` session to it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.srv = ServerThread(app).start()
        self.uri = self.srv.uri
        self.s = requests.Session()

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.s.request(method, self.uri + path, timeout=60, **kw)

    def post(self, path: str, body: dict[str, Any], **kw: Any) -> Any:
        r = self.call("POST", API + path, json=body, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def get(self, path: str, **params: Any) -> Any:
        r = self.call("GET", API + path, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def stop(self) -> None:
        self.s.close()
        close_stores(self.uri)
        self.srv.stop()
        self.app.state.ctx.store.engine.dispose()


def start_replicas(request: Any, tmp_path: Any, uri: str, n: int = 2, **settings: Any) -> list[Replica]:
    """`n` replicas on database `uri` sharing one artifact root, stopped when the test ends."""
    out = []
    with pytest.MonkeyPatch.context() as mp:  # the first start makes the admin (auth on)
        mp.setenv("MLTRAIL_ADMIN_USERNAME", ADMIN[0])
        mp.setenv("MLTRAIL_ADMIN_PASSWORD", ADMIN[1])
        for _ in range(n):
            replica = Replica(create_app(server_settings(tmp_path, backend_store_uri=uri, **settings)))
            request.addfinalizer(replica.stop)
            out.append(replica)
    return out


def _metrics(steps: range, scale: float = 1.0) -> list[dict[str, Any]]:
    return [{"key": "m", "value": scale * s, "timestamp": 1000 + s, "step": s} for s in steps]


def _chart(replica: Replica, run_id: str, max_points: int = 50) -> dict[str, Any]:
    r = replica.call("GET", "/ui/api/metrics", params={"run_ids": run_id, "key": "m", "max_points": max_points})
    assert r.status_code == 200, r.text
    series: dict[str, Any] = r.json()["runs"][0]
    return series


# ---------------------------------------------------------------------- read after write
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=postgres)])
def test_a_write_through_one_replica_is_read_at_once_through_another(backend, request, tmp_path):
    uri = f"sqlite:///{tmp_path}/shared.db" if backend == "sqlite" else request.getfixturevalue("postgres_uri")
    a, b = start_replicas(request, tmp_path, uri, ui=True)
    exp = a.post("/experiments/create", {"name": "replicas"})["experiment_id"]
    assert b.get("/experiments/get", experiment_id=exp)["experiment"]["name"] == "replicas"
    run_id = b.post("/runs/create", {"experiment_id": exp})["run"]["info"]["run_id"]
    a.post("/runs/log-batch", {"run_id": run_id, "metrics": _metrics(range(200)),
                               "params": [{"key": "lr", "value": "0.1"}]})
    got = b.get("/runs/get", run_id=run_id)["run"]["data"]
    assert got["params"] == [{"key": "lr", "value": "0.1"}] and got["metrics"][0]["step"] == 199
    assert len(b.get("/metrics/get-history", run_id=run_id, metric_key="m")["metrics"]) == 200

    # the charts' sampled series: read (and cached) at B, extended at A, read again at B
    for replica in (a, b):
        first = _chart(replica, run_id)
        assert first["steps"][0] == 0 and first["steps"][-1] == 199
    a.post("/runs/log-batch", {"run_id": run_id, "metrics": _metrics(range(200, 260))})
    assert _chart(b, run_id)["steps"][-1] == 259
    # a point inside the range (an out-of-order step, a new minimum) shows too, though the last point stays
    a.post("/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "m", "value": -1e6, "timestamp": 5,
                                                              "step": 100}]})
    assert min(v for v in _chart(b, run_id)["values"] if v is not None) == -1e6
    assert min(v for v in _chart(a, run_id)["values"] if v is not None) == -1e6
    a.post("/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 5000})
    assert b.get("/runs/get", run_id=run_id)["run"]["info"]["status"] == "FINISHED"

    # registered models and their versions, aliases, tags
    a.post("/registered-models/create", {"name": "clf"})
    version = b.post("/model-versions/create", {"name": "clf", "source": f"runs:/{run_id}/model",
                                                "run_id": run_id})["model_version"]["version"]
    a.post("/registered-models/alias", {"name": "clf", "alias": "champion", "version": version})
    assert b.get("/registered-models/alias", name="clf", alias="champion")["model_version"]["version"] == version
    a.post("/model-versions/set-tag", {"name": "clf", "version": version, "key": "k", "value": "v"})
    mv = b.get("/model-versions/get", name="clf", version=version)["model_version"]
    assert mv["tags"] == [{"key": "k", "value": "v"}]

    # logged models
    model = a.post("/logged-models", {"experiment_id": exp, "name": "net", "source_run_id": run_id})["model"]
    model_id = model["info"]["model_id"]
    assert b.get(f"/logged-models/{model_id}")["model"]["info"]["name"] == "net"
    b.call("PATCH", f"{API}/logged-models/{model_id}", json={"model_id": model_id, "status": "READY"})
    assert a.get(f"/logged-models/{model_id}")["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    a.call("DELETE", f"{API}/logged-models/{model_id}")
    assert b.call("GET", f"{API}/logged-models/{model_id}").status_code == 404


def test_sqlite_sampler_cache_notices_a_point_logged_after_gc_by_another_process(tmp_path):
    """SQLite reuses the ids of deleted rows: after `mltrail gc` purged the newest run, a point
    logged by another process may get an id below the one a cached sample was checked against."""
    from mltrail.entities import Metric
    from mltrail.store.sql.store import SqlTrackingStore

    uri = f"sqlite:///{tmp_path}/gc.db"
    reader, writer = SqlTrackingStore(uri, str(tmp_path)), SqlTrackingStore(uri, str(tmp_path))
    kept = writer.create_run("0", "u", 0, [], "kept").info.run_id
    writer.log_batch(kept, metrics=[Metric("m", float(s), 1000 + s, s) for s in range(300)])
    purged = writer.create_run("0", "u", 0, [], "purged").info.run_id
    writer.log_batch(purged, metrics=[Metric("m", float(s), 1000 + s, s) for s in range(300)])
    assert min(p[2] for p in reader.get_metric_series_sampled([kept], "m", 50)[0]) == 0.0  # cached
    writer.delete_run(purged)
    writer.purge_run(purged)
    writer.log_batch(kept, metrics=[Metric("m", -5.0, 7, 150)])  # inside the range: the last point stays
    assert min(p[2] for p in reader.get_metric_series_sampled([kept], "m", 50)[0]) == -5.0
    reader.engine.dispose()
    writer.engine.dispose()


# ---------------------------------------------------------------------- idempotency
@postgres
def test_a_resent_create_through_the_other_replica_gets_the_first_answer(request, tmp_path, postgres_uri):
    a, b = start_replicas(request, tmp_path, postgres_uri)
    exp = a.post("/experiments/create", {"name": "keys"})["experiment_id"]
    first = a.post("/runs/create", {"experiment_id": exp, "mltrail_idempotency_key": "run-key-1"})
    again = b.post("/runs/create", {"experiment_id": exp, "mltrail_idempotency_key": "run-key-1"})
    assert again == first
    other = b.post("/runs/create", {"experiment_id": exp, "mltrail_idempotency_key": "run-key-2"})
    assert other["run"]["info"]["run_id"] != first["run"]["info"]["run_id"]
    assert len(a.post("/runs/search", {"experiment_ids": [exp]})["runs"]) == 2

    body = {"experiment_id": exp, "name": "m", "mltrail_idempotency_key": "model-key-1"}
    model = b.post("/logged-models", body)
    assert a.post("/logged-models", body) == model
    assert b.post("/logged-models", {**body, "mltrail_idempotency_key": "run-key-1"}) != model  # per scope
    found = a.post("/logged-models/search", {"experiment_ids": [exp]})["models"]
    assert sorted(m["info"]["name"] for m in found) == ["m", "m"]


@pytest.fixture
def pg_engine(postgres_uri):
    engine = eng.make_engine(postgres_uri)
    eng.ensure_schema(engine)
    yield engine
    engine.dispose()


def _create_counting(calls: list[int], gate: threading.Event | None = None) -> Any:
    def create() -> dict[str, Any]:
        calls.append(1)
        if gate is not None:
            gate.wait(60)
        return {"made": len(calls)}

    return create


@postgres
def test_a_resend_while_the_first_create_runs_waits_for_its_answer(pg_engine, postgres_uri):
    other = eng.make_engine(postgres_uri)  # another replica's engine
    try:
        one, two = IdempotencyRecords(pg_engine), IdempotencyRecords(other)
        calls: list[int] = []
        gate = threading.Event()
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(one.once, "runs/create", "k", _create_counting(calls, gate))
            while not calls:
                time.sleep(0.01)
            resent = pool.submit(two.once, "runs/create", "k", _create_counting(calls))
            time.sleep(0.3)
            assert not resent.done()  # waiting for the first request's answer, not creating
            gate.set()
            assert first.result(30) == resent.result(30) == {"made": 1}
        assert len(calls) == 1

        # ten copies of one request at the same instant, through both replicas: one create, one answer
        burst: list[int] = []
        barrier = threading.Barrier(10)

        def send(i: int) -> dict[str, Any]:
            barrier.wait(30)
            return (one, two)[i % 2].once("runs/create", "burst", _create_counting(burst))

        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(send, range(10)))
        assert answers == [{"made": 1}] * 10 and len(burst) == 1
    finally:
        other.dispose()


@postgres
def test_failed_abandoned_and_expired_keys_create_anew(pg_engine):
    records = IdempotencyRecords(pg_engine)
    calls: list[int] = []

    def failing() -> dict[str, Any]:
        raise RuntimeError("the store refused")

    with pytest.raises(RuntimeError, match="the store refused"):
        records.once("runs/create", "k", failing)
    assert records.once("runs/create", "k", _create_counting(calls)) == {"made": 1}  # a failure keeps nothing

    # a claim whose replica never answers is taken over after the claim timeout
    stuck = IdempotencyRecords(pg_engine, claim_timeout=0.5)
    gate = threading.Event()
    worker = threading.Thread(target=stuck.once, args=("runs/create", "dead", _create_counting([], gate)))
    worker.start()
    try:
        time.sleep(0.2)
        assert stuck.once("runs/create", "dead", _create_counting(calls)) == {"made": 2}
    finally:
        gate.set()
        worker.join(30)

    # keys older than the TTL answer no more, and a later claim prunes them
    short = IdempotencyRecords(pg_engine, ttl=0.3)
    assert short.once("runs/create", "old", _create_counting(calls)) == {"made": 3}
    time.sleep(0.5)
    assert short.once("runs/create", "old", _create_counting(calls)) == {"made": 4}
    time.sleep(0.5)
    IdempotencyRecords(pg_engine, ttl=0.3).once("runs/create", "new", _create_counting(calls))
    with pg_engine.connect() as conn:
        keys = conn.execute(select(idempotency_keys.c.key)).scalars().all()
    assert keys == ["new"]


# ---------------------------------------------------------------------- registry
@postgres
def test_concurrent_registrations_through_three_replicas_get_versions_one_to_twenty(request, tmp_path,
                                                                                     postgres_uri):
    replicas = start_replicas(request, tmp_path, postgres_uri, n=3)
    run_id = replicas[0].post("/runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
    replicas[1].post("/registered-models/create", {"name": "raced"})

    def register(i: int) -> int:
        body = {"name": "raced", "source": f"runs:/{run_id}/model", "run_id": run_id}
        r = requests.post(replicas[i % 3].uri + API + "/model-versions/create", json=body, timeout=120)
        assert r.status_code == 200, r.text
        return int(r.json()["model_version"]["version"])

    with ThreadPoolExecutor(20) as pool:
        versions = list(pool.map(register, range(20)))
    assert sorted(versions) == list(range(1, 21))
    listed = replicas[2].get("/model-versions/search", filter="name='raced'", max_results=100)["model_versions"]
    assert sorted(int(v["version"]) for v in listed) == list(range(1, 21))
    latest = replicas[0].post("/registered-models/get-latest-versions", {"name": "raced"})["model_versions"]
    assert [v["version"] for v in latest] == ["20"]


# ---------------------------------------------------------------------- migrations
_START = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
from mltrail.server.app import create_app
from mltrail.server.settings import ServerSettings
settings = ServerSettings(backend_store_uri=sys.argv[1], artifacts_destination=sys.argv[2], ui=False, auth=True)
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # every process starts here at the same moment
create_app(settings)
print("STARTED")
"""


@postgres
def test_three_replicas_starting_on_a_new_database_migrate_it_once(tmp_path, postgres_uri):
    from mltrail.store.sql.migrations import HEAD

    env = {**os.environ, "MLTRAIL_ADMIN_USERNAME": ADMIN[0], "MLTRAIL_ADMIN_PASSWORD": ADMIN[1]}
    at = time.time() + 8.0  # after the three have imported everything
    procs = [subprocess.Popen([sys.executable, "-c", _START, postgres_uri, str(tmp_path / "artifacts"), str(at)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for _ in range(3)]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and "STARTED" in out, out
    runs = [line for out in outputs for line in out.splitlines() if "Running upgrade" in line]
    assert sum(" -> 0001" in line for line in runs) == 1, runs  # one process created the schema
    assert sum(f" -> {HEAD}" in line for line in runs) == 1, runs
    engine = eng.make_engine(postgres_uri)
    try:
        assert eng.current_revision(engine) == HEAD
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM experiments")).scalar() == 1  # the default one
            assert conn.execute(text("SELECT count(*) FROM auth_users")).scalar() == 1  # the admin
    finally:
        engine.dispose()


@postgres
def test_replicas_starting_at_the_same_moment_all_start(pg_engine, postgres_uri, tmp_path):
    from mltrail.store.sql.store import SqlTrackingStore

    for _ in range(3):  # each round races to create the default experiment afresh
        with pg_engine.begin() as conn:
            conn.execute(text("DELETE FROM experiments"))
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def start(barrier: threading.Barrier = barrier) -> None:
            barrier.wait(30)
            store = SqlTrackingStore(postgres_uri, str(tmp_path / "artifacts"))
            store.engine.dispose()

        threads = [threading.Thread(target=_catch, args=(errors, start)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[0]
        with pg_engine.connect() as conn:
            assert conn.execute(text("SELECT experiment_id FROM experiments")).scalars().all() == [0]


@postgres
def test_a_replica_starting_during_a_migration_waits_for_it(postgres_uri):
    from alembic import command
    from alembic.config import Config

    from mltrail.store.sql.migrations import HEAD

    engine = eng.make_engine(postgres_uri)
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(eng.__file__), "migrations"))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004")
        errors: list[BaseException] = []
        with engine.connect() as migrating:  # `mltrail db upgrade` holding the lock while it works
            migrating.execute(text("SELECT pg_advisory_lock(:k)"), {"k": eng.MIGRATION_LOCK_KEY})
            replica = threading.Thread(target=lambda: _catch(errors, eng.ensure_schema, engine))
            replica.start()
            time.sleep(0.5)
            assert replica.is_alive()  # waiting for the migration, not refusing the old revision
            cfg.attributes["connection"] = migrating
            command.upgrade(cfg, "head")
            migrating.commit()
            migrating.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": eng.MIGRATION_LOCK_KEY})
            migrating.commit()
            replica.join(60)
        assert not errors and eng.current_revision(engine) == HEAD
        with engine.begin() as conn:  # an old revision nobody migrates is still refused, as before
            conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
        with pytest.raises(Exception, match="mltrail db upgrade"):
            eng.ensure_schema(engine)
    finally:
        engine.dispose()


def _catch(errors: list[BaseException], fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


# ---------------------------------------------------------------------- accounts
@pytest.fixture
def auth_replicas(request, tmp_path, postgres_uri) -> list[Replica]:
    replicas = start_replicas(request, tmp_path, postgres_uri, auth=True, ui=True)
    replicas[0].app.state.ctx.auth.create_user("bob", PASSWORD)
    return replicas


def _basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def _current(replica: Replica, **kw: Any) -> int:
    return replica.call("GET", API + "/users/current", **kw).status_code


def _within_bound(check: Any) -> float:
    """Seconds until `check()` holds (fails after the memos' documented bound)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < SETTLE_S, f"not taken into account within {SETTLE_S} s"
        time.sleep(0.2)
    return time.monotonic() - start


@postgres
def test_logout_through_one_replica_refuses_the_cookie_at_the_other(auth_replicas):
    a, b = auth_replicas
    login = a.call("POST", "/login", data={"username": "bob", "password": PASSWORD, "next": "/"},
                   allow_redirects=False)
    assert login.status_code == 303
    cookie = {"mltrail_session": a.s.cookies["mltrail_session"]}
    assert _current(b, cookies=cookie) == 200
    payload = cookie["mltrail_session"].split(".")[0]
    nonce = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["c"]
    out = a.call("POST", "/logout", headers={"X-CSRF-Token": nonce, "Sec-Fetch-Site": "same-origin"},
                 allow_redirects=False)
    assert out.status_code == 303
    b.s.cookies.clear()
    assert _current(b, cookies=cookie) == 401  # at once: no memo to wait for
    assert _current(a, cookies=cookie) == 401


@postgres
def test_failed_logins_through_both_replicas_add_up_to_the_limit(auth_replicas):
    from mltrail.server.auth.ratelimit import PAIR_LIMIT

    a, b = auth_replicas
    for i in range(PAIR_LIMIT):
        assert _current((a, b)[i % 2], headers=_basic("bob", "a wrong password")) == 401
    for replica in (a, b):
        refused = replica.call("GET", API + "/users/current", headers=_basic("bob", PASSWORD))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    engine = a.app.state.ctx.store.engine
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(auth_login_failures)).scalar() == PAIR_LIMIT


@postgres
def test_a_successful_login_writes_no_failure_row_and_clears_the_pair(auth_replicas):
    a, b = auth_replicas
    assert _current(a, headers=_basic("bob", "a wrong password")) == 401
    assert _current(b, headers=_basic("bob", PASSWORD)) == 200
    failures = auth_login_failures
    with a.app.state.ctx.store.engine.connect() as conn:
        rows = conn.execute(select(failures.c.who, failures.c.address)).all()
    assert [(r.who, r.address) for r in rows] == [(None, "127.0.0.1")]  # counts for the address alone


@postgres
def test_revoking_a_token_password_or_grant_at_one_replica_holds_at_the_other_within_the_bound(auth_replicas):
    a, b = auth_replicas
    admin = _basic(*ADMIN)
    made = a.call("POST", "/api/2.0/mltrail/tokens/create", json={"username": "bob", "name": "ci"}, headers=admin)
    assert made.status_code == 200, made.text
    secret, token_id = made.json()["secret"], made.json()["token"]["id"]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert _current(b, headers=bearer) == 200  # B remembers it now
    r = a.call("POST", "/api/2.0/mltrail/tokens/revoke", json={"username": "bob", "token_id": token_id}, headers=admin)
    assert r.status_code == 200, r.text
    assert _current(a, headers=bearer) == 401
    _within_bound(lambda: _current(b, headers=bearer) == 401)

    assert _current(b, headers=_basic("bob", PASSWORD)) == 200
    new_password = "another-password-0123"
    r = a.call("PATCH", API + "/users/update-password", json={"username": "bob", "password": new_password},
               headers=admin)
    assert r.status_code == 200, r.text
    _within_bound(lambda: _current(b, headers=_basic("bob", PASSWORD)) == 401)
    assert _current(b, headers=_basic("bob", new_password)) == 200

    exp = a.post("/experiments/create", {"name": "private"}, headers=admin)["experiment_id"]
    bob = _basic("bob", new_password)

    def bob_reads(replica: Replica) -> int:
        return replica.call("GET", API + "/experiments/get", params={"experiment_id": exp}, headers=bob).status_code

    assert bob_reads(b) == 403  # nothing granted (the default permission is NO_PERMISSIONS)
    grant = {"username": "bob", "resource_type": "experiment", "resource_id": exp}
    r = a.call("POST", "/api/3.0/mlflow/users/permissions/grant", json={**grant, "permission": "READ"}, headers=admin)
    assert r.status_code == 200, r.text
    _within_bound(lambda: bob_reads(b) == 200)
    r = a.call("POST", "/api/3.0/mlflow/users/permissions/revoke", json=grant, headers=admin)
    assert r.status_code == 200, r.text
    assert bob_reads(a) == 403
    _within_bound(lambda: bob_reads(b) == 403)
