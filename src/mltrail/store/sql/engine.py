"""Engines for the SQL stores: SQLite tuned for many writers, PostgreSQL through psycopg 3.

SQLite runs in WAL mode with `synchronous=NORMAL` and a long busy timeout, and every write
transaction starts with `BEGIN IMMEDIATE`: a deferred transaction that later wants to write can
fail at once with "database is locked" (SQLite cannot wait there without risking a deadlock),
an immediate one waits its turn. Reads stay deferred and never block writers in WAL mode.

PostgreSQL connections are checked before use (`pool_pre_ping`), so a pool whose connections died
with a database restart reconnects by itself, and a connect attempt gives up after
`_PG_CONNECT_TIMEOUT_S` (an unreachable host must not hold a request for the kernel's TCP timeout).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

from mltrail.errors import MltrailException
from mltrail.store.mlflow_detect import check_not_file_store, check_revision, check_sqlite_file
from mltrail.store.sql.db_errors import WriteRetry

T = TypeVar("T")
_BUSY_TIMEOUT_MS = 60_000
_PG_CONNECT_TIMEOUT_S = 10


def normalize_db_uri(uri: str) -> str:
    """Pick our drivers: `postgresql://` means psycopg 3 (MLflow users write it that way)."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix):]
    return uri


def make_engine(uri: str) -> Engine:
    uri = normalize_db_uri(uri)
    if uri.startswith("sqlite"):
        return _sqlite_engine(uri)
    connect_args: dict[str, Any] = {}
    if uri.startswith("postgresql") and "connect_timeout" not in uri:  # one given in the URI wins
        connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT_S
    return create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args)


def _sqlite_engine(uri: str) -> Engine:
    path = uri.split(":///", 1)[1] if ":///" in uri else ""
    if path and path != ":memory:":
        # before the first connection, which would switch the file to WAL: an MLflow database is refused as it is
        if os.path.exists(path):
            check_sqlite_file(path, uri)
        else:
            directory = os.path.dirname(os.path.abspath(path))
            check_not_file_store(directory, directory)
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    engine = create_engine(uri, connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see on_begin)
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       f"busy_timeout={_BUSY_TIMEOUT_MS}", "temp_store=MEMORY", "cache_size=-20000",
                       "case_sensitive_like=ON"):  # LIKE is case-sensitive, as on PostgreSQL
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("mltrail_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def run_write(engine: Engine, fn: Callable[[Connection], T], idempotent: bool = False) -> T:
    """Run `fn(conn)` in one write transaction; retry lock contention and a lost connection (bounded,
    see `db_errors.WriteRetry`), so no caller sees a blip. `idempotent`: running `fn` twice is harmless,
    so a COMMIT cut off by a disconnect may be retried too."""
    retry = WriteRetry()
    while True:
        committing = False
        try:
            with engine.connect().execution_options(mltrail_write=True) as conn, conn.begin():
                result = fn(conn)
                committing = True  # what fails from here on is the COMMIT
            return result
        except Exception as exc:
            if not retry.again(exc, committing=committing, idempotent=idempotent):
                raise


@contextlib.contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


# The key of PostgreSQL's advisory lock that serialises schema changes (any 64-bit number agreed on
# by every mltrail process: the first 8 bytes of sha256(b"mltrail schema migration")).
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"mltrail schema migration").digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the schema-change lock: other processes wait here until it ends.

    SQLite: a file lock beside the database. PostgreSQL: a transaction-level advisory lock
    (`pg_advisory_xact_lock`), taken on the very connection that migrates, so it is released by
    the COMMIT (or by the server when the process dies), never left behind. Replicas starting
    together on a new database queue here; the first migrates, the others then find the head.
    """
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        if not db or db == ":memory:":
            with engine.begin() as conn:
                yield conn
            return
        with open(os.path.abspath(db) + ".migrate-lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                with engine.begin() as conn:
                    yield conn
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield conn


def _revision_on(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _revision_on(conn)


def refuse_foreign_schema(engine: Engine) -> None:
    """Refuse, before any write, a database whose Alembic revision is not ours (an MLflow one above all)."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar() \
            if "alembic_version" in names else None
    shown = engine.url.set(drivername=engine.url.get_backend_name()).render_as_string(hide_password=True)
    check_revision(shown, revision, names)


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema with Alembic (imported only when needed)."""
    refuse_foreign_schema(engine)
    from alembic import command
    from alembic.config import Config

    here = os.path.join(os.path.dirname(__file__), "migrations")
    cfg = Config()
    cfg.set_main_option("script_location", here)
    with _migration_lock(engine) as conn:  # a process that waited here finds the head: Alembic does nothing
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def ensure_schema(engine: Engine) -> None:
    """Create or upgrade the schema: automatic for SQLite and for an empty database.

    An existing PostgreSQL database on an older revision is left for `mltrail db upgrade`, as
    MLflow does, so that a schema change on a shared database is always a deliberate act.
    """
    from mltrail.store.sql.migrations import HEAD

    rev = current_revision(engine)
    if rev == HEAD:
        return
    refuse_foreign_schema(engine)
    if engine.dialect.name == "sqlite" or rev is None:
        upgrade(engine)
        return
    # An older revision: `mltrail db upgrade` (or another replica's first start) may be migrating it
    # right now. Wait for that migration to end, then look again.
    with _migration_lock(engine) as conn:
        rev = _revision_on(conn)
    if rev == HEAD:
        return
    raise MltrailException(
        f"The database schema is at revision {rev!r}, this mltrail expects {HEAD!r}. "
        "Run `mltrail db upgrade <database uri>` (back the database up first)."
    )
