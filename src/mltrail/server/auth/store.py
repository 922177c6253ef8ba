"""`AuthStore`: users, API tokens, grants, roles, the audit table and server secrets, in the tracking
database (the tables of `store/sql/auth_schema.py`).

Passwords are hashed with argon2id. A password the store has just verified is remembered in
memory (as a keyed digest, never the text) together with the user's credentials stamp, so a
client sending basic auth on every request costs one indexed read, not one argon2 hash; a
password change, in any process, moves the stamp and ends the memo. Tokens are 32 random bytes
stored as their sha256, so checking one is a hash and an indexed read: a revoked token stops
working at once, in every replica.

Every change (users, tokens, grants, roles) writes its audit row in the same transaction. The
actor is whoever the current request authenticated as (`acting_as`, set by the middleware), or
"system" outside a request (start-up, the CLI names itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets as pysecrets
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.server.auth.entities import (
    AuditEvent,
    Grant,
    GrantSet,
    Role,
    RolePermission,
    Token,
    User,
    UserRoleAssignment,
)
from mltrail.server.auth.levels import check_resource_type, level
from mltrail.server.auth.ratelimit import LoginLimiter
from mltrail.store.sql import auth_schema as a
from mltrail.store.sql import engine as eng

T = TypeVar("T")
TOKEN_PREFIX = "mlt_"
MIN_PASSWORD_LENGTH = 12  # MLflow's rule
PASSWORD_MEMO_S = 15 * 60.0  # a verified password is trusted this long while the user's stamp holds
GRANTS_MEMO_S = 5.0  # another replica's grant change reaches this process within this long
# A remembered credential is trusted without a database read this long after the database last
# confirmed it; a change made in this process ends it at once, one made by another replica in this time.
FRESH_S = 5.0
_TOKEN_TOUCH_S = 60.0  # last_used_at is written at most this often per token (not once per request)

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


def token_hash(secret: str) -> str:
    """What the database keeps of a token: the sha256 of its secret, in hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_username(username: Any) -> str:
    if not isinstance(username, str) or not username:
        raise InvalidParameterValue("Username cannot be empty.")
    if len(username) > a.MAX_USERNAME_LENGTH:
        raise InvalidParameterValue(
            f"Username {username[:40]!r}... is {len(username)} characters long; expected at most "
            f"{a.MAX_USERNAME_LENGTH}.")
    if ":" in username or any(ord(c) < 32 or ord(c) == 127 for c in username):
        # HTTP basic auth splits "user:password" at the first colon: such a user could never log in
        raise InvalidParameterValue(
            f"Invalid username {username!r}: it must not contain ':' or control characters.")
    return username


def check_password(password: Any) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidParameterValue(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    return password


@dataclass
class _Remembered:
    """A credential verified recently: whose it is, and what proves a later request sends the same one."""

    user: User
    proof: bytes  # a password's keyed digest (b"" for a token: the memo's key is the token's hash)
    stamp: int  # the user's credentials_changed_at (password), the token's id (token)
    expires_at: float  # monotonic end of the memo (password), ms since the epoch or inf (token)
    checked: float  # monotonic time the database last confirmed it


def _new_id(result: Any) -> int:
    """The id the database gave the row an INSERT just made."""
    return int(result.inserted_primary_key[0])


def _user(row: Any) -> User:
    return User(id=row.id, username=row.username, is_admin=bool(row.is_admin), created_at=row.created_at,
                has_password=row.password_hash is not None)


def _token(row: Any) -> Token:
    return Token(id=row.id, user_id=row.user_id, name=row.name, created_at=row.created_at,
                 expires_at=row.expires_at, last_used_at=row.last_used_at)


def _role_permission(row: Any) -> RolePermission:
    return RolePermission(id=row.id, role_id=row.role_id, resource_type=row.resource_type,
                          resource_pattern=row.resource_pattern, permission=row.permission)


class AuthStore:
    """Accounts and permissions over the tracking store's SQLAlchemy engine."""

    def __init__(self, engine: Engine, password_hasher: PasswordHasher | None = None,
                 limiter: LoginLimiter | None = None) -> None:
        self.engine = engine
        self.hasher = password_hasher or PasswordHasher()  # argon2id, the library's recommended costs
        self.limiter = (limiter or LoginLimiter()).using(engine)  # failures counted in this database
        self._lock = threading.Lock()
        self._memo_key = pysecrets.token_bytes(32)  # digests in the memo mean nothing outside this process
        self._passwords: dict[str, _Remembered] = {}  # username -> the password last verified
        self._tokens: dict[str, _Remembered] = {}  # token hash -> its user
        self._grants: dict[int, tuple[GrantSet, float]] = {}
        self._token_touched: dict[int, float] = {}  # token id -> when last_used_at was last written here
        self._secrets: dict[str, bytes] = {}
        self._dummy_hash: str | None = None

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

    def _forget_user(self, username: str, user_id: int | None = None) -> None:
        """Drop what this process remembers of a user's credentials (they changed or the user went)."""
        with self._lock:
            self._passwords.pop(username, None)
            for key in [k for k, m in self._tokens.items() if m.user.username == username]:
                del self._tokens[key]
            if user_id is not None:
                self._grants.pop(user_id, None)

    def _forget_grants(self) -> None:
        with self._lock:
            self._grants.clear()

    # ------------------------------------------------------------------ users
    def create_user(self, username: str, password: str | None, is_admin: bool = False) -> User:
        """A new user; `password` None makes one that only a trusted proxy header can sign in."""
        check_username(username)
        pw_hash = self.hasher.hash(check_password(password)) if password is not None else None

        def create(conn: Connection) -> User:
            if conn.execute(select(a.auth_users.c.id).where(a.auth_users.c.username == username)).first():
                raise ResourceAlreadyExists(f"User (username={username}) already exists.")
            at = now_ms()
            uid = _new_id(conn.execute(insert(a.auth_users).values(
                username=username, password_hash=pw_hash, is_admin=bool(is_admin), created_at=at,
                credentials_changed_at=at)))
            self._audit_row(conn, "user_create", username, {"is_admin": bool(is_admin),
                                                            "has_password": pw_hash is not None})
            return User(id=int(uid), username=username, is_admin=bool(is_admin), created_at=at,
                        has_password=pw_hash is not None)

        try:
            return self._write(create)
        except IntegrityError as e:  # a concurrent create of the same name (PostgreSQL)
            raise ResourceAlreadyExists(f"User (username={username}) already exists.") from e

    def get_user(self, username: str) -> User:
        with eng.read(self.engine) as conn:
            return _user(self._user_row(conn, username))

    def get_user_by_id(self, user_id: int) -> User:
        with eng.read(self.engine) as conn:
            row = conn.execute(select(a.auth_users).where(a.auth_users.c.id == user_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"User with id={user_id} not found")
        return _user(row)

    def credentials_stamp(self, user_id: int) -> tuple[User, str] | None:
        """The user and a value that changes whenever their credentials do (sessions sign it in, so a
        password change ends them); None if the user is gone. Keep it server-side: it holds the hash."""
        with eng.read(self.engine) as conn:
            row = conn.execute(select(a.auth_users).where(a.auth_users.c.id == user_id)).first()
        return None if row is None else (_user(row), f"{row.credentials_changed_at}|{row.password_hash or ''}")

    def list_users(self) -> list[User]:
        with eng.read(self.engine) as conn:
            rows = conn.execute(select(a.auth_users).order_by(a.auth_users.c.username)).all()
        return [_user(r) for r in rows]

    def has_admin(self) -> bool:
        with eng.read(self.engine) as conn:
            return conn.execute(select(a.auth_users.c.id).where(a.auth_users.c.is_admin.is_(True)).limit(1)
                                ).first() is not None

    def update_password(self, username: str, password: str) -> None:
        """Set a new password; sessions and remembered verifications of the old one end."""
        pw_hash = self.hasher.hash(check_password(password))

        def change(conn: Connection) -> None:
            row = self._user_row(conn, username)
            stamp = max(now_ms(), int(row.credentials_changed_at) + 1)  # strictly later, even within 1 ms
            conn.execute(update(a.auth_users).where(a.auth_users.c.id == row.id)
                         .values(password_hash=pw_hash, credentials_changed_at=stamp))
            self._audit_row(conn, "user_password_change", username)

        self._write(change)
        self._forget_user(username)

    def update_admin(self, username: str, is_admin: bool) -> None:
        def change(conn: Connection) -> None:
            row = self._user_row(conn, username)
            conn.execute(update(a.auth_users).where(a.auth_users.c.id == row.id).values(is_admin=bool(is_admin)))
            self._audit_row(conn, "user_admin_change", username, {"is_admin": bool(is_admin)})

        self._write(change)
        self._forget_user(username)

    def delete_user(self, username: str) -> None:
        """Delete a user with their tokens, grants and role assignments (sessions end with them)."""
        def remove(conn: Connection) -> int:
            row = self._user_row(conn, username)
            for table in (a.auth_tokens, a.auth_permissions, a.auth_user_roles):  # also without FK cascades
                conn.execute(delete(table).where(table.c.user_id == row.id))
            conn.execute(delete(a.auth_users).where(a.auth_users.c.id == row.id))
            self._audit_row(conn, "user_delete", username)
            return int(row.id)

        self._forget_user(username, self._write(remove))

    def _dummy_verify(self, password: str) -> None:
        """Spend an argon2 check on an unknown user too, so timing does not tell which names exist."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(pysecrets.token_urlsafe(16))
        with contextlib.suppress(VerificationError, InvalidHashError):
            self.hasher.verify(self._dummy_hash, password)

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._memo_key, password.encode("utf-8"), hashlib.sha256).digest()

    def remembered_password(self, username: str, password: str) -> User | None:
        """The user if this process verified this very password within `FRESH_S`; None means "ask
        `verify_password`" (no database, no hashing here: safe to call on the event loop)."""
        memo = self._passwords.get(username)
        clock = time.monotonic()
        if (memo is None or clock - memo.checked >= FRESH_S or memo.expires_at <= clock
                or not hmac.compare_digest(memo.proof, self._digest(password))):
            return None
        return memo.user

    def verify_password(self, username: str, password: str, address: str | None = None) -> User | None:
        """The user if `password` is theirs, else None (audited). Too many failures from one place
        raise `ratelimit.TooManyAttempts` (429); `address` defaults to the current request's."""
        address = address if address is not None else current_actor()[1]
        pair_failures = self.limiter.check(username, address)
        try:
            check_username(username)  # a name no user can have (too long, NUL...) never reaches the database
        except InvalidParameterValue:
            self.limiter.failed(username, address)
            return None
        remembered = self.remembered_password(username, password)
        if remembered is not None:
            return remembered
        digest = self._digest(password)
        with eng.read(self.engine) as conn:
            row = conn.execute(select(a.auth_users).where(a.auth_users.c.username == username)).first()
        if row is not None:
            memo = self._passwords.get(username)
            if (memo is not None and memo.stamp == row.credentials_changed_at and memo.expires_at > time.monotonic()
                    and hmac.compare_digest(memo.proof, digest)):
                user = _user(row)
                with self._lock:
                    self._passwords[username] = _Remembered(user, digest, memo.stamp, memo.expires_at,
                                                            time.monotonic())
                return user
        ok = False
        if row is None or row.password_hash is None:
            self._dummy_verify(password)
        else:
            with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
                ok = self.hasher.verify(row.password_hash, password)
        if not ok or row is None:
            self.limiter.failed(username, address)
            self.audit(username, "login_failed", username, address=address)
            return None
        if pair_failures:  # nothing to clear otherwise: a good login writes nothing
            self.limiter.succeeded(username, address)
        user = _user(row)
        with self._lock:
            clock = time.monotonic()
            self._passwords[username] = _Remembered(user, digest, int(row.credentials_changed_at),
                                                    clock + PASSWORD_MEMO_S, clock)
        if self.hasher.check_needs_rehash(row.password_hash):  # costs raised since it was hashed
            new_hash = self.hasher.hash(password)
            self._write(lambda conn: conn.execute(update(a.auth_users).where(a.auth_users.c.id == row.id)
                                                  .values(password_hash=new_hash)))
        self.audit(username, "login", username, address=address)
        return user

    # ------------------------------------------------------------------ tokens
    def create_token(self, username: str, name: str, expires_at: int | None = None) -> tuple[Token, str]:
        """A new API token and its secret (`mlt_...`): the secret is returned here once and never stored."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameterValue("Token name cannot be empty.")
        if expires_at is not None and expires_at <= now_ms():
            raise InvalidParameterValue(f"Invalid expires_at {expires_at}: expected a time in the future "
                                        "(milliseconds since the epoch), or none for a token that does not expire.")
        secret = TOKEN_PREFIX + pysecrets.token_urlsafe(32)

        def create(conn: Connection) -> Token:
            user = self._user_row(conn, username)
            at = now_ms()
            tid = _new_id(conn.execute(insert(a.auth_tokens).values(
                user_id=user.id, name=name, token_hash=token_hash(secret), created_at=at,
                expires_at=expires_at)))
            self._audit_row(conn, "token_create", username, {"token_id": int(tid), "name": name,
                                                             "expires_at": expires_at})
            return Token(id=int(tid), user_id=int(user.id), name=name, created_at=at, expires_at=expires_at,
                         last_used_at=None)

        return self._write(create), secret

    def list_tokens(self, username: str) -> list[Token]:
        with eng.read(self.engine) as conn:
            user = self._user_row(conn, username)
            rows = conn.execute(select(a.auth_tokens).where(a.auth_tokens.c.user_id == user.id)
                                .order_by(a.auth_tokens.c.id)).all()
        return [_token(r) for r in rows]

    def revoke_token(self, username: str, token_id: int) -> None:
        def revoke(conn: Connection) -> None:
            user = self._user_row(conn, username)
            gone = conn.execute(delete(a.auth_tokens).where(
                and_(a.auth_tokens.c.id == token_id, a.auth_tokens.c.user_id == user.id))).rowcount
            if not gone:
                raise ResourceDoesNotExist(f"Token with id={token_id} of user {username} not found")
            self._audit_row(conn, "token_revoke", username, {"token_id": int(token_id)})

        self._write(revoke)
        with self._lock:
            for key in [k for k, m in self._tokens.items() if m.stamp == token_id]:
                del self._tokens[key]

    def remembered_token(self, secret: str) -> User | None:
        """The token's user if this process confirmed it within `FRESH_S` and it has not expired; None
        means "ask `verify_token`" (no database here: safe to call on the event loop)."""
        memo = self._tokens.get(token_hash(secret))
        if memo is None or time.monotonic() - memo.checked >= FRESH_S or memo.expires_at <= now_ms():
            return None
        return memo.user

    def verify_token(self, secret: str) -> User | None:
        """The token's user, or None for an unknown, revoked or expired token."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        remembered = self.remembered_token(secret)
        if remembered is not None:
            return remembered
        query = (select(a.auth_tokens.c.id.label("token_id"), a.auth_tokens.c.expires_at, a.auth_tokens.c.name,
                        a.auth_users)
                 .join(a.auth_users, a.auth_users.c.id == a.auth_tokens.c.user_id)
                 .where(a.auth_tokens.c.token_hash == token_hash(secret)))
        with eng.read(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None or (row.expires_at is not None and row.expires_at <= now_ms()):
            return None
        self._touch_token(row.token_id, row.username, row.name)
        user = _user(row)
        with self._lock:
            self._tokens[token_hash(secret)] = _Remembered(
                user, b"", int(row.token_id), float("inf") if row.expires_at is None else float(row.expires_at),
                time.monotonic())
        return user

    def _touch_token(self, token_id: int, username: str, name: str) -> None:
        """Record use: last_used_at at most once a minute, and one audit row per token per process."""
        clock = time.monotonic()
        with self._lock:
            last = self._token_touched.get(token_id)
            if last is not None and clock - last < _TOKEN_TOUCH_S:
                return
            self._token_touched[token_id] = clock

        def touch(conn: Connection) -> None:
            conn.execute(update(a.auth_tokens).where(a.auth_tokens.c.id == token_id).values(last_used_at=now_ms()))
            if last is None:
                self._audit_row(conn, "token_use", username, {"token_id": int(token_id), "name": name},
                                actor=username)

        self._write(touch)

    # ------------------------------------------------------------------ direct grants
    def set_permission(self, username: str, resource_type: str, resource_id: str, permission: str) -> Grant:
        """Give `username` `permission` on one resource, replacing what they had there."""
        check_resource_type(resource_type)
        level(permission)
        resource_id = str(resource_id)

        def upsert(conn: Connection) -> Grant:
            user = self._user_row(conn, username)
            where = and_(a.auth_permissions.c.user_id == user.id, a.auth_permissions.c.resource_type == resource_type,
                         a.auth_permissions.c.resource_id == resource_id)
            if not conn.execute(update(a.auth_permissions).where(where).values(permission=permission)).rowcount:
                conn.execute(insert(a.auth_permissions).values(user_id=user.id, resource_type=resource_type,
                                                               resource_id=resource_id, permission=permission))
            self._audit_row(conn, "grant", username, {"resource_type": resource_type, "resource_id": resource_id,
                                                      "permission": permission})
            return Grant(user_id=int(user.id), username=username, resource_type=resource_type,
                         resource_id=resource_id, permission=permission)

        try:
            grant = self._write(upsert)
        except IntegrityError:  # a concurrent first grant on PostgreSQL: the row exists now, update it
            grant = self._write(upsert)
        self._forget_grants()
        return grant

    def delete_permission(self, username: str, resource_type: str, resource_id: str) -> None:
        resource_id = str(resource_id)

        def remove(conn: Connection) -> None:
            user = self._user_row(conn, username)
            gone = conn.execute(delete(a.auth_permissions).where(and_(
                a.auth_permissions.c.user_id == user.id, a.auth_permissions.c.resource_type == resource_type,
                a.auth_permissions.c.resource_id == resource_id))).rowcount
            if not gone:
                raise ResourceDoesNotExist(self._no_grant(username, resource_type, resource_id))
            self._audit_row(conn, "revoke", username, {"resource_type": resource_type, "resource_id": resource_id})

        self._write(remove)
        self._forget_grants()

    @staticmethod
    def _no_grant(username: str, resource_type: str, resource_id: str) -> str:
        return (f"Permission for user={username} on resource_type={resource_type}, "
                f"resource_id={resource_id} not found.")

    def get_permission(self, username: str, resource_type: str, resource_id: str) -> Grant:
        grants = self.list_permissions(username, resource_type, str(resource_id))
        if not grants:
            with eng.read(self.engine) as conn:
                self._user_row(conn, username)  # an unknown user is named as such
            raise ResourceDoesNotExist(self._no_grant(username, resource_type, str(resource_id)))
        return grants[0]

    def list_permissions(self, username: str | None = None, resource_type: str | None = None,
                         resource_id: str | None = None) -> list[Grant]:
        p, u = a.auth_permissions, a.auth_users
        query = select(p, u.c.username).join(u, u.c.id == p.c.user_id)
        if username is not None:
            query = query.where(u.c.username == username)
        if resource_type is not None:
            query = query.where(p.c.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(p.c.resource_id == str(resource_id))
        with eng.read(self.engine) as conn:
            rows = conn.execute(query.order_by(u.c.username, p.c.resource_type, p.c.resource_id)).all()
        return [Grant(user_id=r.user_id, username=r.username, resource_type=r.resource_type,
                      resource_id=r.resource_id, permission=r.permission) for r in rows]

    def rename_resource(self, resource_type: str, old_id: str, new_id: str) -> None:
        """Move the grants on `old_id` to `new_id` (a renamed registered model keeps who may use it)."""
        p = a.auth_permissions

        def move(conn: Connection) -> None:
            # grants left on the new name by a deleted resource of that name must not apply to this one
            conn.execute(delete(p).where(and_(p.c.resource_type == resource_type, p.c.resource_id == str(new_id))))
            moved = conn.execute(update(p).where(and_(p.c.resource_type == resource_type,
                                                      p.c.resource_id == str(old_id))).values(resource_id=str(new_id)))
            if moved.rowcount:
                self._audit_row(conn, "grants_move", f"{resource_type}:{old_id}",
                                {"resource_type": resource_type, "from": str(old_id), "to": str(new_id)})

        self._write(move)
        self._forget_grants()

    def forget_resource(self, resource_type: str, resource_id: str) -> None:
        """Drop every direct grant on a deleted resource, so a new one with the same id starts clean."""
        p = a.auth_permissions

        def remove(conn: Connection) -> None:
            gone = conn.execute(delete(p).where(and_(p.c.resource_type == resource_type,
                                                     p.c.resource_id == str(resource_id)))).rowcount
            if gone:
                self._audit_row(conn, "grants_drop", f"{resource_type}:{resource_id}", {"grants": gone})

        self._write(remove)
        self._forget_grants()

    # ------------------------------------------------------------------ roles
    def _role_row(self, conn: Connection, role_id: int) -> Any:
        row = conn.execute(select(a.auth_roles).where(a.auth_roles.c.id == role_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"Role with id={role_id} not found")
        return row

    def _roles(self, conn: Connection, rows: list[Any]) -> list[Role]:
        ids = [r.id for r in rows]
        perms: dict[int, list[RolePermission]] = {i: [] for i in ids}
        if ids:
            for p in conn.execute(select(a.auth_role_permissions).where(a.auth_role_permissions.c.role_id.in_(ids))
                                  .order_by(a.auth_role_permissions.c.id)):
                perms[p.role_id].append(_role_permission(p))
        return [Role(id=r.id, name=r.name, workspace=r.workspace, description=r.description,
                     permissions=perms[r.id]) for r in rows]

    def create_role(self, name: str, workspace: str = "default", description: str | None = None) -> Role:
        if not isinstance(name, str) or not name.strip():
            raise InvalidParameterValue("Role name cannot be empty.")

        def create(conn: Connection) -> Role:
            if conn.execute(select(a.auth_roles.c.id).where(and_(a.auth_roles.c.workspace == workspace,
                                                                 a.auth_roles.c.name == name))).first():
                raise ResourceAlreadyExists(f"Role (name={name}, workspace={workspace}) already exists.")
            rid = _new_id(conn.execute(insert(a.auth_roles).values(name=name, workspace=workspace,
                                                                    description=description)))
            self._audit_row(conn, "role_create", f"role:{rid}", {"name": name, "workspace": workspace})
            return Role(id=int(rid), name=name, workspace=workspace, description=description, permissions=[])

        try:
            return self._write(create)
        except IntegrityError as e:
            raise ResourceAlreadyExists(f"Role (name={name}, workspace={workspace}) already exists.") from e

    def get_role(self, role_id: int) -> Role:
        with eng.read(self.engine) as conn:
            return self._roles(conn, [self._role_row(conn, role_id)])[0]

    def list_roles(self, workspace: str | None = None) -> list[Role]:
        query = select(a.auth_roles).order_by(a.auth_roles.c.workspace, a.auth_roles.c.name)
        if workspace is not None:
            query = query.where(a.auth_roles.c.workspace == workspace)
        with eng.read(self.engine) as conn:
            return self._roles(conn, list(conn.execute(query).all()))

    def update_role(self, role_id: int, name: str | None = None, description: str | None = None) -> Role:
        def change(conn: Connection) -> None:
            row = self._role_row(conn, role_id)
            values: dict[str, Any] = {}
            if name is not None and name != row.name:
                if not name.strip():
                    raise InvalidParameterValue("Role name cannot be empty.")
                if conn.execute(select(a.auth_roles.c.id).where(and_(a.auth_roles.c.workspace == row.workspace,
                                                                     a.auth_roles.c.name == name))).first():
                    raise ResourceAlreadyExists(f"Role with name={name} already exists in workspace={row.workspace}")
                values["name"] = name
            if description is not None:
                values["description"] = description
            if values:
                conn.execute(update(a.auth_roles).where(a.auth_roles.c.id == role_id).values(**values))
                self._audit_row(conn, "role_update", f"role:{role_id}", values)

        self._write(change)
        return self.get_role(role_id)

    def delete_role(self, role_id: int) -> None:
        def remove(conn: Connection) -> None:
            row = self._role_row(conn, role_id)
            for table in (a.auth_role_permissions, a.auth_user_roles):
                conn.execute(delete(table).where(table.c.role_id == role_id))
            conn.execute(delete(a.auth_roles).where(a.auth_roles.c.id == role_id))
            self._audit_row(conn, "role_delete", f"role:{role_id}", {"name": row.name})

        self._write(remove)
        self._forget_grants()

    def add_role_permission(self, role_id: int, resource_type: str, resource_pattern: str,
                            permission: str) -> RolePermission:
        """Add to a role `permission` on the resources whose id matches `resource_pattern` (fnmatch, `*` = all)."""
        check_resource_type(resource_type)
        level(permission)
        if not isinstance(resource_pattern, str) or not resource_pattern:
            raise InvalidParameterValue("resource_pattern cannot be empty: give an id, a pattern such as "
                                        "'team-*', or '*' for every resource of the type.")
        rp = a.auth_role_permissions

        def add(conn: Connection) -> RolePermission:
            self._role_row(conn, role_id)
            if conn.execute(select(rp.c.id).where(and_(rp.c.role_id == role_id, rp.c.resource_type == resource_type,
                                                       rp.c.resource_pattern == resource_pattern))).first():
                raise ResourceAlreadyExists(
                    f"Role permission (role_id={role_id}, resource_type={resource_type}, "
                    f"resource_pattern={resource_pattern}) already exists.")
            pid = _new_id(conn.execute(insert(rp).values(role_id=role_id, resource_type=resource_type,
                                                 resource_pattern=resource_pattern, permission=permission)))
            self._audit_row(conn, "role_grant", f"role:{role_id}", {
                "resource_type": resource_type, "resource_pattern": resource_pattern, "permission": permission})
            return RolePermission(id=int(pid), role_id=role_id, resource_type=resource_type,
                                  resource_pattern=resource_pattern, permission=permission)

        created = self._write(add)
        self._forget_grants()
        return created

    def _role_permission_row(self, conn: Connection, role_permission_id: int) -> Any:
        row = conn.execute(select(a.auth_role_permissions)
                           .where(a.auth_role_permissions.c.id == role_permission_id)).first()
        if row is None:
            raise ResourceDoesNotExist(f"Role permission with id={role_permission_id} not found")
        return row

    def remove_role_permission(self, role_permission_id: int) -> None:
        def remove(conn: Connection) -> None:
            row = self._role_permission_row(conn, role_permission_id)
            conn.execute(delete(a.auth_role_permissions).where(a.auth_role_permissions.c.id == role_permission_id))
            self._audit_row(conn, "role_revoke", f"role:{row.role_id}", {
                "resource_type": row.resource_type, "resource_pattern": row.resource_pattern})

        self._write(remove)
        self._forget_grants()

    def update_role_permission(self, role_permission_id: int, permission: str) -> RolePermission:
        level(permission)

        def change(conn: Connection) -> RolePermission:
            row = self._role_permission_row(conn, role_permission_id)
            conn.execute(update(a.auth_role_permissions).where(a.auth_role_permissions.c.id == role_permission_id)
                         .values(permission=permission))
            self._audit_row(conn, "role_grant", f"role:{row.role_id}", {
                "resource_type": row.resource_type, "resource_pattern": row.resource_pattern,
                "permission": permission})
            return RolePermission(id=row.id, role_id=row.role_id, resource_type=row.resource_type,
                                  resource_pattern=row.resource_pattern, permission=permission)

        changed = self._write(change)
        self._forget_grants()
        return changed

    def list_role_permissions(self, role_id: int) -> list[RolePermission]:
        return self.get_role(role_id).permissions

    def assign_role(self, username: str, role_id: int) -> UserRoleAssignment:
        ur = a.auth_user_roles

        def assign(conn: Connection) -> UserRoleAssignment:
            user = self._user_row(conn, username)
            self._role_row(conn, role_id)
            if conn.execute(select(ur.c.id).where(and_(ur.c.user_id == user.id, ur.c.role_id == role_id))).first():
                raise ResourceAlreadyExists(
                    f"User role assignment (user_id={user.id}, role_id={role_id}) already exists")
            aid = _new_id(conn.execute(insert(ur).values(user_id=user.id, role_id=role_id)))
            self._audit_row(conn, "role_assign", username, {"role_id": role_id})
            return UserRoleAssignment(id=int(aid), user_id=int(user.id), role_id=role_id)

        try:
            assignment = self._write(assign)
        except IntegrityError as e:
            raise ResourceAlreadyExists(f"User role assignment (username={username}, role_id={role_id}) "
                                        "already exists") from e
        self._forget_grants()
        return assignment

    def unassign_role(self, username: str, role_id: int) -> None:
        ur = a.auth_user_roles

        def unassign(conn: Connection) -> None:
            user = self._user_row(conn, username)
            if not conn.execute(delete(ur).where(and_(ur.c.user_id == user.id, ur.c.role_id == role_id))).rowcount:
                raise ResourceDoesNotExist(f"User role assignment (user_id={user.id}, role_id={role_id}) not found")
            self._audit_row(conn, "role_unassign", username, {"role_id": role_id})

        self._write(unassign)
        self._forget_grants()

    def list_user_roles(self, username: str) -> list[Role]:
        with eng.read(self.engine) as conn:
            user = self._user_row(conn, username)
            rows = conn.execute(select(a.auth_roles).join(a.auth_user_roles, a.auth_user_roles.c.role_id ==
                                                          a.auth_roles.c.id)
                                .where(a.auth_user_roles.c.user_id == user.id).order_by(a.auth_roles.c.id)).all()
            return self._roles(conn, list(rows))

    def list_role_users(self, role_id: int) -> list[UserRoleAssignment]:
        with eng.read(self.engine) as conn:
            self._role_row(conn, role_id)
            rows = conn.execute(select(a.auth_user_roles).where(a.auth_user_roles.c.role_id == role_id)
                                .order_by(a.auth_user_roles.c.id)).all()
        return [UserRoleAssignment(id=r.id, user_id=r.user_id, role_id=r.role_id) for r in rows]

    # ------------------------------------------------------------------ effective grants
    def grants_for(self, user_id: int) -> GrantSet:
        """One user's direct grants and role patterns (remembered briefly; changes here drop the memo)."""
        clock = time.monotonic()
        memo = self._grants.get(user_id)
        if memo is not None and memo[1] > clock:
            return memo[0]
        p, rp, ur = a.auth_permissions, a.auth_role_permissions, a.auth_user_roles
        with eng.read(self.engine) as conn:
            direct = {(r.resource_type, r.resource_id): r.permission
                      for r in conn.execute(select(p).where(p.c.user_id == user_id))}
            patterns = [(r.resource_type, r.resource_pattern, r.permission) for r in conn.execute(
                select(rp).join(ur, ur.c.role_id == rp.c.role_id).where(ur.c.user_id == user_id).order_by(rp.c.id))]
        grants = GrantSet(direct=direct, patterns=patterns)
        with self._lock:
            self._grants[user_id] = (grants, clock + GRANTS_MEMO_S)
        return grants

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
