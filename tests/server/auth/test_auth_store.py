"""AuthStore on real databases (SQLite in tmp_path, PostgreSQL where the marker runs): users, argon2
hashes, tokens, grants, roles, the audit table, secrets, and the 0004 migration of an old database."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import inspect, select

from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.server.auth import levels
from mltrail.server.auth import store as store_module
from mltrail.server.auth.entities import GrantSet
from mltrail.server.auth.ratelimit import LoginLimiter, TooManyAttempts
from mltrail.server.auth.store import AuthStore, acting_as
from mltrail.store.sql import auth_schema
from mltrail.store.sql import engine as eng

PW = "correct horse battery"
# Cheap argon2 costs keep the suite fast on shared CPUs; the default costs are checked once below.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    uri = f"sqlite:///{tmp_path}/auth.db" if request.param == "sqlite" else request.getfixturevalue("postgres_uri")
    engine = eng.make_engine(uri)
    eng.ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine):
    return AuthStore(engine, password_hasher=FAST)


def actions(store):
    return [e.action for e in store.list_audit()]


def test_users_crud_with_mlflow_errors(store):
    alice = store.create_user("alice", PW)
    assert (alice.username, alice.is_admin, alice.has_password) == ("alice", False, True)
    assert store.get_user("alice") == alice == store.get_user_by_id(alice.id)
    with pytest.raises(ResourceAlreadyExists, match=r"User \(username=alice\) already exists"):
        store.create_user("alice", PW)
    with pytest.raises(ResourceDoesNotExist, match="User with username=bob not found"):
        store.get_user("bob")
    with pytest.raises(InvalidParameterValue, match="Password must be at least 12 characters"):
        store.create_user("bob", "short")
    with pytest.raises(InvalidParameterValue, match="Username cannot be empty"):
        store.create_user("", PW)
    with pytest.raises(InvalidParameterValue, match="must not contain ':'"):
        store.create_user("a:b", PW)
    assert not store.has_admin()
    store.create_user("root", PW, is_admin=True)
    assert store.has_admin()
    proxied = store.create_user("eve@example.com", None)
    assert not proxied.has_password and store.verify_password("eve@example.com", "") is None
    assert [u.username for u in store.list_users()] == ["alice", "eve@example.com", "root"]
    store.update_admin("alice", True)
    assert store.get_user("alice").is_admin
    store.delete_user("alice")
    with pytest.raises(ResourceDoesNotExist):
        store.get_user("alice")
    with pytest.raises(ResourceDoesNotExist, match="User with username=alice not found"):
        store.delete_user("alice")
    assert {"user_create", "user_admin_change", "user_delete"} <= set(actions(store))


def test_passwords_are_argon2_hashes_never_plaintext(store, engine):
    store.create_user("alice", PW)
    with engine.connect() as conn:
        stored = conn.execute(select(auth_schema.auth_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored
    assert PasswordHasher().verify(stored, PW)
    assert store.verify_password("alice", PW).username == "alice"
    assert store.verify_password("alice", PW + "!") is None
    assert store.verify_password("nobody", PW) is None
    store.update_password("alice", "another long password")
    assert store.verify_password("alice", PW) is None  # the remembered check ends with the change
    assert store.verify_password("alice", "another long password") is not None
    assert actions(store).count("login_failed") == 3


def test_default_hasher_is_argon2id_with_memory_hard_costs(engine):
    hasher = AuthStore(engine).hasher
    assert hasher.type.name == "ID" and hasher.memory_cost >= 19 * 1024


class CountingHasher(PasswordHasher):
    """argon2 as it is, counting the verifications it performs."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.calls: list[int] = []

    def verify(self, hash, password):  # noqa: A002  (argon2's parameter name)
        self.calls.append(1)
        return super().verify(hash, password)


def test_a_verified_password_is_not_hashed_again(engine):
    store = AuthStore(engine, password_hasher=CountingHasher())
    store.create_user("alice", PW)
    calls = store.hasher.calls
    for _ in range(5):
        assert store.verify_password("alice", PW) is not None
    assert len(calls) == 1
    assert store.verify_password("alice", "wrong password!!") is None  # a different password is checked
    assert len(calls) == 2


def test_the_memo_follows_a_change_made_by_another_process(engine, monkeypatch):
    one, two = AuthStore(engine, password_hasher=FAST), AuthStore(engine, password_hasher=FAST)
    one.create_user("alice", PW)
    _, secret = one.create_token("alice", "ci")
    assert one.verify_password("alice", PW) is not None and one.verify_token(secret) is not None
    two.update_password("alice", "a brand new password")  # another replica: one's memo is not told...
    two.revoke_token("alice", two.list_tokens("alice")[0].id)
    assert one.remembered_password("alice", PW) is not None  # ...so it holds for up to FRESH_S
    monkeypatch.setattr(store_module, "FRESH_S", 0.0)  # then the database is asked again
    assert one.verify_password("alice", PW) is None
    assert one.verify_token(secret) is None


def test_failed_logins_are_rate_limited_per_user_and_address(engine):
    store = AuthStore(engine, password_hasher=FAST, limiter=LoginLimiter(pair_limit=3, address_limit=5))
    store.create_user("alice", PW)
    for _ in range(3):
        assert store.verify_password("alice", "wrong password!!", address="10.0.0.1") is None
    with pytest.raises(TooManyAttempts) as info:
        store.verify_password("alice", PW, address="10.0.0.1")
    assert info.value.http_status == 429 and info.value.retry_after >= 1
    assert store.verify_password("alice", PW, address="10.0.0.2") is not None  # elsewhere: not locked out
    for name in ("bob", "carol", "dave", "erin", "frank"):
        assert store.verify_password(name, "wrong password!!", address="10.0.0.2") is None
    with pytest.raises(TooManyAttempts):  # five failures from one address, whatever the names
        store.verify_password("alice", PW, address="10.0.0.2")


def test_limiter_window_slides(engine):
    now = [0.0]
    limiter = LoginLimiter(pair_limit=2, address_limit=10, window_s=60, clock=lambda: now[0], engine=engine)
    limiter.failed("a", "x")
    limiter.failed("a", "x")
    with pytest.raises(TooManyAttempts, match="Try again in 60 s"):
        limiter.check("a", "x")
    now[0] = 61.0
    limiter.check("a", "x")


def test_tokens_shown_once_stored_hashed_expire_and_revoke(store, engine):
    store.create_user("alice", PW)
    token, secret = store.create_token("alice", "ci")
    assert secret.startswith("mlt_") and len(secret) > 40
    with engine.connect() as conn:
        stored = conn.execute(select(auth_schema.auth_tokens.c.token_hash)).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).hexdigest() and secret not in stored
    assert store.verify_token(secret).username == "alice"
    assert store.verify_token(secret + "x") is None and store.verify_token("not-a-token") is None
    listed = store.list_tokens("alice")
    assert [t.id for t in listed] == [token.id] and listed[0].last_used_at is not None
    short, short_secret = store.create_token("alice", "short", expires_at=int(time.time() * 1000) + 300)
    assert store.verify_token(short_secret) is not None
    time.sleep(0.35)
    assert store.verify_token(short_secret) is None
    with pytest.raises(InvalidParameterValue, match="expected a time in the future"):
        store.create_token("alice", "past", expires_at=1)
    store.revoke_token("alice", token.id)
    assert store.verify_token(secret) is None
    with pytest.raises(ResourceDoesNotExist):
        store.revoke_token("alice", token.id)
    assert {"token_create", "token_use", "token_revoke"} <= set(actions(store))
    assert actions(store).count("token_use") == 2  # the first use per process, not every request


def test_grants_upsert_list_delete(store):
    store.create_user("alice", PW)
    store.create_user("bob", PW)
    g = store.set_permission("alice", levels.EXPERIMENT, "1", "READ")
    assert (g.username, g.permission) == ("alice", "READ")
    assert store.set_permission("alice", levels.EXPERIMENT, "1", "EDIT").permission == "EDIT"
    store.set_permission("bob", levels.EXPERIMENT, "1", "MANAGE")
    store.set_permission("bob", levels.REGISTERED_MODEL, "m", "READ")
    assert store.get_permission("alice", levels.EXPERIMENT, "1").permission == "EDIT"
    assert [(x.username, x.permission) for x in store.list_permissions(resource_id="1")] == [
        ("alice", "EDIT"), ("bob", "MANAGE")]
    assert len(store.list_permissions("bob")) == 2
    assert len(store.list_permissions(resource_type=levels.REGISTERED_MODEL)) == 1
    with pytest.raises(InvalidParameterValue, match="Invalid permission 'OWNER'"):
        store.set_permission("alice", levels.EXPERIMENT, "1", "OWNER")
    with pytest.raises(InvalidParameterValue, match="Invalid resource type 'run'"):
        store.set_permission("alice", "run", "1", "READ")
    store.delete_permission("alice", levels.EXPERIMENT, "1")
    with pytest.raises(ResourceDoesNotExist,
                       match="Permission for user=alice on resource_type=experiment, resource_id=1 not found"):
        store.get_permission("alice", levels.EXPERIMENT, "1")
    with pytest.raises(ResourceDoesNotExist):
        store.delete_permission("alice", levels.EXPERIMENT, "1")
    store.rename_resource(levels.REGISTERED_MODEL, "m", "m2")
    assert store.get_permission("bob", levels.REGISTERED_MODEL, "m2").permission == "READ"
    store.forget_resource(levels.REGISTERED_MODEL, "m2")
    assert store.list_permissions(resource_type=levels.REGISTERED_MODEL) == []
    store.delete_user("bob")  # takes bob's grants with him
    assert store.list_permissions() == []
    assert {"grant", "revoke", "grants_move", "grants_drop"} <= set(actions(store))


def test_roles_and_grants_for(store):
    alice = store.create_user("alice", PW)
    role = store.create_role("readers", description="read everything of team a")
    assert (role.workspace, role.permissions) == ("default", [])
    with pytest.raises(ResourceAlreadyExists):
        store.create_role("readers")
    rp = store.add_role_permission(role.id, levels.EXPERIMENT, "team-a-*", "READ")
    with pytest.raises(ResourceAlreadyExists):
        store.add_role_permission(role.id, levels.EXPERIMENT, "team-a-*", "EDIT")
    store.add_role_permission(role.id, levels.REGISTERED_MODEL, "*", "READ")
    assert store.update_role_permission(rp.id, "EDIT").permission == "EDIT"
    assert [p.permission for p in store.list_role_permissions(role.id)] == ["EDIT", "READ"]
    assignment = store.assign_role("alice", role.id)
    assert (assignment.user_id, assignment.role_id) == (alice.id, role.id)
    with pytest.raises(ResourceAlreadyExists):
        store.assign_role("alice", role.id)
    store.set_permission("alice", levels.EXPERIMENT, "7", "MANAGE")
    assert store.grants_for(alice.id) == GrantSet(
        direct={("experiment", "7"): "MANAGE"},
        patterns=[("experiment", "team-a-*", "EDIT"), ("registered_model", "*", "READ")])
    assert [r.name for r in store.list_user_roles("alice")] == ["readers"]
    assert [a.user_id for a in store.list_role_users(role.id)] == [alice.id]
    renamed = store.update_role(role.id, name="team-a", description="changed")
    assert (renamed.name, renamed.description) == ("team-a", "changed")
    assert [r.name for r in store.list_roles("default")] == ["team-a"] and store.list_roles("other") == []
    store.remove_role_permission(rp.id)
    assert store.grants_for(alice.id).patterns == [("registered_model", "*", "READ")]  # the memo was dropped
    store.unassign_role("alice", role.id)
    assert store.grants_for(alice.id).patterns == []
    with pytest.raises(ResourceDoesNotExist, match="User role assignment"):
        store.unassign_role("alice", role.id)
    store.delete_role(role.id)
    with pytest.raises(ResourceDoesNotExist, match=f"Role with id={role.id} not found"):
        store.get_role(role.id)
    with pytest.raises(ResourceDoesNotExist, match="Role permission with id=999 not found"):
        store.remove_role_permission(999)
    assert {"role_create", "role_grant", "role_assign", "role_update", "role_revoke", "role_unassign",
            "role_delete"} <= set(actions(store))


def test_audit_names_the_actor_and_pages_newest_first(store):
    with acting_as("root", "10.1.2.3"):
        store.create_user("alice", PW)
        store.set_permission("alice", levels.EXPERIMENT, "3", "READ")
    store.audit("cli", "note", "x", {"why": "test"})
    events = store.list_audit()
    assert [e.action for e in events] == ["note", "grant", "user_create"]
    assert (events[1].actor, events[1].address, events[1].target) == ("root", "10.1.2.3", "alice")
    assert events[1].details == {"resource_type": "experiment", "resource_id": "3", "permission": "READ"}
    assert [e.action for e in store.list_audit(limit=1, before_id=events[0].id)] == ["grant"]
    with pytest.raises(InvalidParameterValue):
        store.list_audit(limit=0)


def test_secrets_are_made_once_even_under_a_race(engine):
    stores = [AuthStore(engine) for _ in range(6)]
    results: list[bytes] = []
    barrier = threading.Barrier(len(stores))

    def take(s):
        barrier.wait()
        results.append(s.secret("session"))

    threads = [threading.Thread(target=take, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and len(set(results)) == 1 and len(results[0]) == 32
    assert AuthStore(engine).secret("session") == results[0] != AuthStore(engine).secret("other")


def test_levels_match_mlflow():
    assert list(levels.LEVELS) == ["READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"]
    assert levels.level("EDIT").can_update and not levels.level("EDIT").can_delete
    assert levels.MANAGE.can_manage and not levels.NO_PERMISSIONS.can_read
    assert levels.strongest("READ", "MANAGE", "EDIT") == "MANAGE" and levels.strongest() == "NO_PERMISSIONS"
    with pytest.raises(InvalidParameterValue, match=r"Invalid permission 'ALL'. Valid permissions are: \('READ'"):
        levels.level("ALL")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_0003_database_upgrades_to_the_auth_tables(backend, tmp_path, request):
    import os

    from alembic import command
    from alembic.config import Config

    from mltrail.store.sql.migrations import HEAD

    uri = f"sqlite:///{tmp_path}/old.db" if backend == "sqlite" else request.getfixturevalue("postgres_uri")
    engine = eng.make_engine(uri)
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(eng.__file__), "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    assert eng.current_revision(engine) == "0003" and not inspect(engine).has_table("auth_users")
    if backend == "postgres":  # a shared database is upgraded on purpose only
        with pytest.raises(Exception, match="mltrail db upgrade"):
            eng.ensure_schema(engine)
        eng.upgrade(engine)
    else:
        eng.ensure_schema(engine)
    assert eng.current_revision(engine) == HEAD
    assert set(auth_schema.TABLES) <= set(inspect(engine).get_table_names())
    store = AuthStore(engine, password_hasher=FAST)
    store.create_user("after-upgrade", PW, is_admin=True)
    assert store.has_admin()
    engine.dispose()
