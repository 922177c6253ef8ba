"""`AuthStore`: the account store of a server with `--auth`, in the tracking database (the tables of
`store/sql/auth_schema.py`). This module holds users, passwords and API tokens; grants and roles are
`grant_store.GrantStore`'s, audit rows and secrets `store_base.StoreBase`'s, both inherited here.

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
import secrets as pysecrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.server.auth.entities import Token, User
from mltrail.server.auth.grant_store import GrantStore
from mltrail.server.auth.ratelimit import LoginLimiter
from mltrail.server.auth.store_base import acting_as, current_actor, new_id, now_ms
from mltrail.store.sql import auth_schema as a
from mltrail.store.sql import engine as eng

TOKEN_PREFIX = "mlt_"
MIN_PASSWORD_LENGTH = 12  # MLflow's rule
PASSWORD_MEMO_S = 15 * 60.0  # a verified password is trusted this long while the user's stamp holds
# A remembered credential is trusted without a database read this long after the database last
# confirmed it; a change made in this process ends it at once, one made by another replica in this time.
FRESH_S = 5.0
_TOKEN_TOUCH_S = 60.0  # last_used_at is written at most this often per token (not once per request)

__all__ = ["FRESH_S", "MIN_PASSWORD_LENGTH", "TOKEN_PREFIX", "AuthStore", "acting_as", "check_password",
           "check_username", "current_actor", "now_ms", "token_hash"]


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



def _user(row: Any) -> User:
    return User(id=row.id, username=row.username, is_admin=bool(row.is_admin), created_at=row.created_at,
                has_password=row.password_hash is not None)


def _token(row: Any) -> Token:
    return Token(id=row.id, user_id=row.user_id, name=row.name, created_at=row.created_at,
                 expires_at=row.expires_at, last_used_at=row.last_used_at)



class AuthStore(GrantStore):
    """Accounts and permissions over the tracking store's SQLAlchemy engine."""

    def __init__(self, engine: Engine, password_hasher: PasswordHasher | None = None,
                 limiter: LoginLimiter | None = None) -> None:
        super().__init__(engine)
        self.hasher = password_hasher or PasswordHasher()  # argon2id, the library's recommended costs
        self.limiter = (limiter or LoginLimiter()).using(engine)  # failures counted in this database
        self._memo_key = pysecrets.token_bytes(32)  # digests in the memo mean nothing outside this process
        self._passwords: dict[str, _Remembered] = {}  # username -> the password last verified
        self._tokens: dict[str, _Remembered] = {}  # token hash -> its user
        self._token_touched: dict[int, float] = {}  # token id -> when last_used_at was last written here
        self._dummy_hash: str | None = None

    def _forget_user(self, username: str, user_id: int | None = None) -> None:
        """Drop what this process remembers of a user's credentials (they changed or the user went)."""
        with self._lock:
            self._passwords.pop(username, None)
            for key in [k for k, m in self._tokens.items() if m.user.username == username]:
                del self._tokens[key]
            if user_id is not None:
                self._grants.pop(user_id, None)


    # ------------------------------------------------------------------ users
    def create_user(self, username: str, password: str | None, is_admin: bool = False) -> User:
        """A new user; `password` None makes one that only a trusted proxy header can sign in."""
        check_username(username)
        pw_hash = self.hasher.hash(check_password(password)) if password is not None else None

        def create(conn: Connection) -> User:
            if conn.execute(select(a.auth_users.c.id).where(a.auth_users.c.username == username)).first():
                raise ResourceAlreadyExists(f"User (username={username}) already exists.")
            at = now_ms()
            uid = new_id(conn.execute(insert(a.auth_users).values(
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
            tid = new_id(conn.execute(insert(a.auth_tokens).values(
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
