"""Database errors read right: real errors from sqlite3, psycopg and SQLAlchemy (a refused connection,
a held lock, a broken constraint, a bad statement), and the server's answer for each."""

from __future__ import annotations

import socket
import sqlite3

import orjson
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from mltrail.server._http import internal_error
from mltrail.store.sql.db_errors import (
    WriteRetry,
    describe,
    is_constraint_violation,
    is_contention,
    is_disconnect,
    is_transient,
)
from mltrail.store.sql.engine import make_engine, run_write


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


def _refused_psycopg() -> Exception:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(f"host=127.0.0.1 port={_closed_port()} user=x dbname=x", connect_timeout=2)
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("a connection to a closed port succeeded")


def _refused_sqlalchemy() -> Exception:
    pytest.importorskip("psycopg")
    engine = make_engine(f"postgresql://x@127.0.0.1:{_closed_port()}/x")
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("a connection to a closed port succeeded")


def _locked_sqlite(tmp_path) -> Exception:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        sqlite3.connect(path, timeout=0).execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        holder.execute("ROLLBACK")
    raise AssertionError("wrote through an exclusive lock")


def _unique_violation_sqlalchemy(tmp_path) -> Exception:
    engine = create_engine(f"sqlite:///{tmp_path}/u.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
    except IntegrityError as exc:
        return exc
    raise AssertionError("a duplicate key was accepted")


def _bad_statement_sqlalchemy(tmp_path) -> Exception:
    engine = create_engine(f"sqlite:///{tmp_path}/b.db")
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT nope FROM nowhere"))
    except OperationalError as exc:
        return exc
    raise AssertionError("a query on a missing table ran")


def test_refused_connection_is_a_disconnect_raw_and_wrapped():
    for exc in (_refused_psycopg(), _refused_sqlalchemy()):
        assert is_disconnect(exc) and is_transient(exc), exc
        assert not is_contention(exc) and not is_constraint_violation(exc)
        assert "Connection refused" in describe(exc) or "connection" in describe(exc).lower()


def test_sqlite_lock_is_contention_not_disconnect(tmp_path):
    exc = _locked_sqlite(tmp_path)
    assert is_contention(exc) and is_transient(exc)
    assert not is_disconnect(exc)


def test_constraint_and_bug_are_not_transient(tmp_path):
    unique = _unique_violation_sqlalchemy(tmp_path)
    assert is_constraint_violation(unique) and not is_transient(unique)
    bug = _bad_statement_sqlalchemy(tmp_path)  # an OperationalError too, but retrying cannot help
    assert not is_transient(bug) and not is_constraint_violation(bug)
    assert not is_transient(ValueError("connection refused"))  # not a database error at all


def test_server_answers_503_with_retry_after_for_a_lost_database(tmp_path):
    resp = internal_error(_refused_sqlalchemy())
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    body = orjson.loads(resp.body)
    assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert body["message"].startswith("The tracking database is temporarily unavailable")
    locked = internal_error(_locked_sqlite(tmp_path))
    assert locked.status_code == 503 and "locked" in orjson.loads(locked.body)["message"]


def test_server_answers_400_for_a_constraint_and_500_for_a_bug(tmp_path):
    resp = internal_error(_unique_violation_sqlalchemy(tmp_path))
    assert resp.status_code == 400 and orjson.loads(resp.body)["error_code"] == "BAD_REQUEST"
    assert "Retry-After" not in resp.headers
    bug = internal_error(_bad_statement_sqlalchemy(tmp_path))
    assert bug.status_code == 500 and orjson.loads(bug.body)["error_code"] == "INTERNAL_ERROR"


def test_write_retry_gives_up_on_a_disconnect_within_its_budget():
    exc = _refused_sqlalchemy()
    retry = WriteRetry(disconnect_s=0.3)
    tries = 0
    while retry.again(exc):
        tries += 1
        assert tries < 50
    assert tries >= 2  # a blip is retried
    assert not WriteRetry().again(exc, committing=True)  # a cut-off COMMIT may have applied
    assert WriteRetry().again(exc, committing=True, idempotent=True)


def test_run_write_waits_out_a_lock_held_by_another_connection(tmp_path):
    import threading

    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    calls = []

    def write(conn):
        calls.append(1)
        conn.execute(text("INSERT INTO t VALUES (1)"))

    threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
    run_write(engine, write)  # waits (busy handler, then retries), then writes once
    assert len(calls) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 1
    holder.close()
    engine.dispose()


def test_run_write_does_not_retry_a_bad_statement(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    calls = []

    def write(conn):
        calls.append(1)
        conn.execute(text("INSERT INTO nowhere VALUES (1)"))

    with pytest.raises(OperationalError):
        run_write(engine, write)
    assert len(calls) == 1
    engine.dispose()
