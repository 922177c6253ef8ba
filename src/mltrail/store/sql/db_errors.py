"""Reading database errors: which mean "try again soon" (a lost connection, a lock held too long),
which mean the request broke a constraint, and the bounded retry of a write transaction.

The same questions are asked of SQLAlchemy's wrapped errors (`OperationalError` and friends,
with `.orig` and `.connection_invalidated`) and of the raw driver errors that the logging hot path
(`batch_writer.py`) sees from psycopg and sqlite3, so the answers look at the SQLSTATE where the
driver gives one and at the message otherwise. Nothing here imports a driver.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

# SQLSTATE classes and codes (PostgreSQL appendix A): 08 connection exception, 57P01-57P03 the
# server shutting down or starting up, 53300 too many connections.
_DISCONNECT_STATES = ("08", "57P01", "57P02", "57P03", "53300")
_CONTENTION_STATES = ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available
_CONSTRAINT_STATE_CLASS = "23"

_DISCONNECT_WORDS = (
    "connection refused", "could not connect", "connection failed", "server closed the connection",
    "terminating connection", "connection reset", "connection timed out", "connection is closed",
    "connection already closed", "connection was closed", "connection is lost", "no connection to the server",
    "consuming input failed", "lost synchronization with server", "ssl connection has been closed",
    "broken pipe", "the database system is shutting down", "the database system is starting up",
    "the database system is in recovery mode", "the database system is not yet accepting connections",
    "server conn crashed", "cannot connect now", "too many clients",
)
_CONTENTION_WORDS = ("database is locked", "database is busy", "database table is locked", "deadlock detected",
                     "could not serialize", "could not obtain lock")
_CONSTRAINT_WORDS = ("constraint failed", "violates", "duplicate key", "unique constraint")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error SQLAlchemy wrapped (`.orig`), and their causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        orig = getattr(e, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, e.__cause__]


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)  # psycopg 3, psycopg2
    return state if isinstance(state, str) else ""


def _is_db_error(exc: BaseException) -> bool:
    """A SQLAlchemy or DBAPI error (PEP 249 names its classes; sqlite3 and psycopg follow it)."""
    module = type(exc).__module__ or ""
    return module.startswith(("sqlalchemy", "sqlite3", "psycopg", "psycopg2")) or \
        any(c.__name__ == "DatabaseError" for c in type(exc).__mro__)


def _words(exc: BaseException) -> str:
    return str(exc).lower()


def is_disconnect(exc: BaseException) -> bool:
    """The database connection was lost, refused or is being shut down (PostgreSQL down, reset)."""
    for e in _chain(exc):
        if getattr(e, "connection_invalidated", False):  # SQLAlchemy saw the dialect's disconnect flag
            return True
        if not _is_db_error(e):
            continue
        name = type(e).__name__
        if name == "InterfaceError" and not (type(e).__module__ or "").startswith("sqlite3"):
            return True  # psycopg: "the connection is closed"; sqlite3's InterfaceError is API misuse
        if _sqlstate(e).startswith(_DISCONNECT_STATES):
            return True
        if name in ("OperationalError", "InterfaceError", "DBAPIError") and \
                any(w in _words(e) for w in _DISCONNECT_WORDS):
            return True
    return False


def is_contention(exc: BaseException) -> bool:
    """Another writer holds what this one needs (SQLite's lock, a deadlock, a serialization failure)."""
    for e in _chain(exc):
        if not _is_db_error(e):
            continue
        if _sqlstate(e) in _CONTENTION_STATES:
            return True
        if type(e).__name__ in ("OperationalError", "DBAPIError") and \
                any(w in _words(e) for w in _CONTENTION_WORDS):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """Worth another try after a short wait: a disconnect or contention, never a bug or a bad request."""
    return is_disconnect(exc) or is_contention(exc)


def is_constraint_violation(exc: BaseException) -> bool:
    """The write broke a unique, foreign-key, not-null or check constraint (MLflow answers 400)."""
    for e in _chain(exc):
        if not _is_db_error(e):
            continue
        if type(e).__name__ == "IntegrityError" or _sqlstate(e).startswith(_CONSTRAINT_STATE_CLASS):
            return True
    return False


def describe(exc: BaseException) -> str:
    """The driver's first line for `exc` (the SQL statement and its parameters left out)."""
    for e in _chain(exc):
        orig = getattr(e, "orig", None)
        if orig is None:
            first = str(e).strip().splitlines()
            return f"{type(e).__name__}: {first[0] if first else ''}"
    return type(exc).__name__  # pragma: no cover - a chain always ends in an error without .orig


class WriteRetry:
    """When to try a failed write transaction again, and how long to wait first.

    Contention is retried until `contention_s` after the write began (SQLite's busy timeout waits
    inside the driver before the first error, so a lock held past it is not waited out twice); a
    lost connection until `disconnect_s` after the first one, long enough for the pool to reconnect
    after a blip, short enough that an outage comes back to the caller (HTTP 503) instead of holding
    the request. A transaction whose COMMIT failed on a disconnect may have been applied, so it is
    retried only when `idempotent`.
    """

    def __init__(self, contention_s: float = 10.0, disconnect_s: float = 2.0) -> None:
        self.started = time.monotonic()
        self.first_disconnect: float | None = None
        self.contention_s = contention_s
        self.disconnect_s = disconnect_s
        self.delay = 0.005
        self.attempts = 0

    def again(self, exc: BaseException, *, committing: bool = False, idempotent: bool = False) -> bool:
        """True (after sleeping a jittered, growing delay) when the transaction should run again."""
        self.attempts += 1
        now = time.monotonic()
        if is_disconnect(exc):
            if self.first_disconnect is None:
                self.first_disconnect = now
            if (committing and not idempotent) or now - self.first_disconnect >= self.disconnect_s:
                return False
            self.delay = max(self.delay, 0.05)  # a reconnect needs more than a lock's few ms
        elif not is_contention(exc) or now - self.started >= self.contention_s:
            return False
        time.sleep(self.delay * (1 + random.random()))
        self.delay = min(self.delay * 2, 0.5)
        return True
