"""`mltrail users` and `mltrail tokens` on a real SQLite database, and a server started on that database."""

from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner
from server_fixture import ServerThread, server_settings

from mltrail.cli import main
from mltrail.server.app import create_app
from mltrail.server.auth import store as store_module
from mltrail.server.auth.store import AuthStore
from mltrail.store.sql import engine as eng

PW = "correct horse battery"


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/server/mltrail.db"


def cli(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def store_of(db: str) -> AuthStore:
    return AuthStore(eng.make_engine(db))


def test_users_create_list_set_and_delete(db):
    r = cli("users", "create", "root", "--admin", "--password-stdin", "--backend-store-uri", db, input=PW + "\n")
    assert r.exit_code == 0, r.output
    assert "Created admin user 'root'" in r.output
    r = cli("users", "create", "alice", "--backend-store-uri", db, input=f"{PW}\n{PW}\n")  # prompted twice
    assert r.exit_code == 0, r.output
    store = store_of(db)
    assert store.verify_password("alice", PW) is not None and not store.get_user("alice").is_admin
    lines = cli("users", "list", "--backend-store-uri", db).output.splitlines()
    assert lines[0].split() == ["USERNAME", "ADMIN", "PASSWORD", "CREATED"]
    assert [ln.split()[:3] for ln in lines[1:]] == [["alice", "no", "yes"], ["root", "yes", "yes"]]
    r = cli("users", "create", "alice", "--password-stdin", "--backend-store-uri", db, input=PW + "\n")
    assert r.exit_code == 1 and "RESOURCE_ALREADY_EXISTS: User (username=alice) already exists" in r.output
    r = cli("users", "create", "bob", "--password-stdin", "--backend-store-uri", db, input="short\n")
    assert r.exit_code == 1 and "Password must be at least 12 characters" in r.output
    assert cli("users", "set-admin", "alice", "--on", "--backend-store-uri", db).exit_code == 0
    assert store.get_user("alice").is_admin
    r = cli("users", "set-password", "alice", "--password-stdin", "--backend-store-uri", db,
            input="a new long password\n")
    assert r.exit_code == 0 and store.verify_password("alice", "a new long password") is not None
    assert cli("users", "set-admin", "alice", "--backend-store-uri", db).exit_code == 2  # --on/--off required
    assert cli("users", "delete", "alice", "--backend-store-uri", db).exit_code == 0
    r = cli("users", "delete", "alice", "--backend-store-uri", db)
    assert r.exit_code == 1 and "User with username=alice not found" in r.output
    audit = store.list_audit()
    assert {e.actor.split(":")[0] for e in audit if e.action.startswith("user_")} == {"cli"}


def test_tokens_create_prints_the_secret_once_and_the_server_accepts_it(db, tmp_path, request, monkeypatch):
    monkeypatch.setattr(store_module, "FRESH_S", 0.0)  # the server rechecks the revoked token at once
    assert cli("users", "create", "root", "--admin", "--password-stdin", "--backend-store-uri", db,
               input=PW + "\n").exit_code == 0
    r = CliRunner().invoke(main, ["tokens", "create", "--user", "root", "--name", "ci", "--expires-in-days", "7",
                                  "--backend-store-uri", db])
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip()
    assert secret.startswith("mlt_") and "shown only now" in r.stderr
    listed = cli("tokens", "list", "--user", "root", "--backend-store-uri", db).output
    assert " ci " in listed and secret not in listed
    assert listed.splitlines()[1].split()[-1] == "-"  # never used so far

    app = create_app(server_settings(tmp_path, auth=True))  # the same database: tmp_path/server/mltrail.db
    srv = ServerThread(app, proxy_headers=False).start()
    request.addfinalizer(srv.stop)
    url = srv.uri + "/api/2.0/mlflow/experiments/search?max_results=5"
    assert requests.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=10).status_code == 200
    used = cli("tokens", "list", "--user", "root", "--backend-store-uri", db).output.splitlines()[1]
    assert used.endswith("UTC")  # last used: now
    token_id = store_of(db).list_tokens("root")[0].id
    assert cli("tokens", "revoke", "--user", "root", "--id", str(token_id), "--backend-store-uri", db).exit_code == 0
    assert requests.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=10).status_code == 401


def test_cli_names_the_database_error(tmp_path):
    r = cli("users", "list", "--backend-store-uri", "http://localhost:5000")
    assert r.exit_code == 1 and "needs a database" in r.output
