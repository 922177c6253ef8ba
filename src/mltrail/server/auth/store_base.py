"""What the parts of the account store share: the tracking database's engine, audit rows (each
change writes its own in the same transaction, naming the actor `acting_as` set), the memo of
effective grants the grant store keeps, and the server secrets every replica reads alike.
"""

from __future__ import annotations

import contextlib
import json
import secrets as pysecrets
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.server.auth.entities import AuditEvent, GrantSet
from mltrail.store.sql import auth_schema as a
from mltrail.store.sql import engine as eng

T = TypeVar("T")

_ACTOR: ContextVar[tuple[str, str | None]] = ContextVar("mltrail_auth_actor", default=("system", None))


@contextlib.contextmanager
def acting_as(actor: str, address: str | None = None) -> Iterator[None]:
    """Audit rows written inside name `actor` (and the caller's `address`)."""
    token = _ACTOR.set((actor, address))
    try:
        yield
    finally:
        _ACTOR.reset(token)


def current_actor() -> tuple[str, str | None]:
    """(actor, address) that audit rows written now would carry."""
    return _ACTOR.get()


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(result: Any) -> int:
    """The id the database gave the row an INSERT just made."""
    return int(result.inserted_primary_key[0])


class StoreBase:
    """The engine, the lock and memos, audit rows and secrets of one account store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._grants: dict[int, tuple[GrantSet, float]] = {}  # user id -> (effective grants, memo end)
        self._secrets: dict[str, bytes] = {}

    # ------------------------------------------------------------------ plumbing
    def _write(self, fn: Callable[[Connection], T]) -> T:
        return eng.run_write(self.engine, fn)

    @staticmethod
    def _audit_row(conn: Connection, action: str, target: str, details: dict[str, Any] | None = None,
                   actor: str | None = None, address: str | None = None) -> None:
        who, where = current_actor()
        where = address if address is not None else where
        conn.execute(insert(a.auth_audit).values(
            at=now_ms(), actor=(actor if actor is not None else who)[:a.MAX_USERNAME_LENGTH], action=action,
            target=target, details=json.dumps(details or {}, sort_keys=True), address=where[:64] if where else None))

    @staticmethod
    def _user_row(conn: Connection, username: str) -> Any:
        row = conn.execute(select(a.auth_users).where(a.auth_users.c.username == username)).first()
        if row is None:
            raise ResourceDoesNotExist(f"User with username={username} not found")
        return row

    def _forget_grants(self) -> None:
        with self._lock:
            self._grants.clear()

    # ------------------------------------------------------------------ audit
    def audit(self, actor: str, action: str, target: str, details: dict[str, Any] | None = None,
              address: str | None = None) -> None:
        """Write one audit row (changes made through this store write theirs by themselves)."""
        self._write(lambda conn: self._audit_row(conn, action, target, details, actor=actor,
                                                 address=address if address is not None else current_actor()[1]))

    def list_audit(self, limit: int = 100, before_id: int | None = None) -> list[AuditEvent]:
        """The newest `limit` audit rows (older than `before_id` when given), newest first."""
        if not isinstance(limit, int) or limit < 1:
            raise InvalidParameterValue(f"Invalid limit {limit!r}: expected a positive integer.")
        query = select(a.auth_audit).order_by(a.auth_audit.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(a.auth_audit.c.id < before_id)
        with eng.read(self.engine) as conn:
            rows = conn.execute(query).all()
        return [AuditEvent(id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target,
                           details=json.loads(r.details or "{}"), address=r.address) for r in rows]

    def count_audit(self) -> int:
        with eng.read(self.engine) as conn:
            return int(conn.execute(select(func.count()).select_from(a.auth_audit)).scalar_one())

    # ------------------------------------------------------------------ secrets
    def secret(self, name: str) -> bytes:
        """A random 32-byte value made once per database (every replica reads the same one)."""
        known = self._secrets.get(name)
        if known is not None:
            return known
        fresh = pysecrets.token_bytes(32)

        def ensure(conn: Connection) -> bytes:
            row = conn.execute(select(a.auth_secrets.c.value).where(a.auth_secrets.c.name == name)).first()
            if row is not None:
                return bytes(row.value)
            conn.execute(insert(a.auth_secrets).values(name=name, value=fresh))
            return fresh

        try:
            value = self._write(ensure)
        except IntegrityError:  # another process made it first (PostgreSQL): theirs is the one
            value = self._write(ensure)
        with self._lock:
            return self._secrets.setdefault(name, value)
