"""A throwaway PostgreSQL server for the test session, plus the pytest fixtures that use it.

conftest re-exports the fixtures with ``from pg_server import pg_server, postgres_uri``
(or ``from tests.pg_server import ...`` when ``tests`` is a package). Only the standard
library is imported at module level; psycopg and pytest are imported where they are used.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Env var that turns "PostgreSQL is not installed" from a skip into a failure (set by .ci/run).
REQUIRE_ENV = "MLTRAIL_REQUIRE_POSTGRES"

_SUPERUSER = "postgres"
_DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BIN_NAMES = ("initdb", "pg_ctl", "postgres")

# Settings appended to postgresql.conf: loopback only, sockets in our temp dir, and no
# durability (the data is thrown away, so fsync and friends only cost time).
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "max_parallel_workers_per_gather": "0",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}


class PostgresStartError(RuntimeError):
    """The throwaway server could not be initialised or started; the message holds its log."""


def _has_bins(directory: str) -> bool:
    return all(os.access(os.path.join(directory, name), os.X_OK) for name in _BIN_NAMES)


def _version_key(path: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); non-numeric parts sort first.
    version = Path(path).parent.name
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


def find_pg_bin() -> str | None:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None.

    PATH is searched first (symlinks resolved, so that initdb finds its share files),
    then the newest ``/usr/lib/postgresql/*/bin`` (Debian keeps them off PATH).
    """
    found = shutil.which("initdb")
    if found:
        directory = os.path.dirname(os.path.realpath(found))
        if _has_bins(directory):
            return directory
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for directory in candidates:
        if _has_bins(directory):
            return directory
    return None


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the kernel picks it at random)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as_user() -> str | None:
    """Return the system user to run the server as when we are root (initdb refuses root), else None."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresStartError(
        "running as root, but neither a 'postgres' nor a 'nobody' user exists to run initdb"
    )


class ThrowawayPostgres:
    """A PostgreSQL server in a temp dir on a random loopback port, with trust auth.

    Args:
        bin_dir: directory with initdb/pg_ctl/postgres; found with `find_pg_bin` when None.
    """

    def __init__(self, bin_dir: str | None = None) -> None:
        found = bin_dir or find_pg_bin()
        if found is None:
            raise PostgresStartError(
                "PostgreSQL is not installed: no initdb on PATH or in /usr/lib/postgresql/*/bin"
            )
        self.bin_dir = found
        self.user = _run_as_user()
        self.port: int | None = None
        self.root: Path | None = None
        self.uri: str | None = None
        self._db_counter = itertools.count(1)

    # -- paths -------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._root() / "data"

    @property
    def log_file(self) -> Path:
        return self._root() / "server.log"

    def _root(self) -> Path:
        if self.root is None:
            raise PostgresStartError("the server has not been started")
        return self.root

    # -- processes ---------------------------------------------------------------------
    def _cmd(self, *args: str) -> list[str]:
        """Build a command line for a PostgreSQL binary, switching user when we are root."""
        cmd = [os.path.join(self.bin_dir, args[0]), *args[1:]]
        if self.user is None:
            return cmd
        if shutil.which("runuser"):
            return ["runuser", "-u", self.user, "--", *cmd]
        return ["su", self.user, "-s", "/bin/sh", "-c", shlex.join(cmd)]

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # cwd in our temp dir: the switched user may not be able to reach the caller's cwd.
        return subprocess.run(
            self._cmd(*args),
            cwd=self._root(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _read_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-8000:]
        except OSError:
            return "(no server log)"

    def _fail(self, what: str, proc: subprocess.CompletedProcess[str] | None) -> PostgresStartError:
        out = (
            ""
            if proc is None
            else f"\n--- exit {proc.returncode}, stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
        return PostgresStartError(
            f"{what} (bin {self.bin_dir}, dir {self.root}){out}\n--- server log ---\n{self._read_log()}"
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, attempts: int = 3) -> str:
        """Initialise a cluster and start the server; return its SQLAlchemy URI to the ``postgres`` db.

        Args:
            attempts: how many random ports to try, in case another process takes the one picked.

        Returns:
            ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``.
        """
        if self.uri is not None:
            return self.uri
        self._make_root()
        self._initdb()
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            self._write_config(self.port)
            proc = self._run(
                "pg_ctl", "start", "-w", "-t", "30", "-D", str(self.data_dir), "-l", str(self.log_file)
            )
            if proc.returncode == 0:
                break
            if attempt == attempts:
                raise self._fail("pg_ctl start failed", proc)
        self._wait_ready()
        atexit.register(self.stop)
        self.uri = self.uri_for(_SUPERUSER)
        return self.uri

    def _make_root(self) -> None:
        # Under /tmp, mode 0755, owned by the server's user, so that user can reach it.
        self.root = Path(tempfile.mkdtemp(prefix="mltrail-pg-", dir="/tmp"))
        os.chmod(self.root, 0o755)
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        proc = self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            _SUPERUSER,
            "--auth=trust",
            "--no-locale",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        )
        if proc.returncode != 0:
            raise self._fail("initdb failed", proc)

    def _write_config(self, port: int) -> None:
        # Appending keeps the file's owner; later lines override earlier ones on a retry.
        settings = {**_SERVER_SETTINGS, "port": str(port), "unix_socket_directories": f"'{self._root()}'"}
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# mltrail throwaway test server\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _wait_ready(self, timeout: float = 30) -> None:
        """Connect in a loop until the server answers (pg_ctl -w usually means it already does)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self._conninfo(_SUPERUSER), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise self._fail(
                        f"server on port {self.port} did not accept connections: {exc}", None
                    ) from exc
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``: nothing is kept) and remove its temp dir."""
        root = self.root
        if root is None:
            return
        try:
            if (root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-D", str(root / "data"), "-m", "immediate", "-w", timeout=30)
        finally:
            self.root = None
            self.uri = None
            self.port = None
            shutil.rmtree(root, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------
    def _conninfo(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={_SUPERUSER} dbname={dbname}"

    def uri_for(self, dbname: str) -> str:
        """Return the SQLAlchemy URI of database ``dbname`` on this server."""
        if self.port is None:
            raise PostgresStartError("the server has not been started")
        return f"postgresql+psycopg://{_SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its SQLAlchemy URI.

        Args:
            name: lower-case identifier (``[a-z_][a-z0-9_]*``, at most 63 chars); a unique one when None.
        """
        import psycopg
        from psycopg import sql

        if self.uri is None:
            raise PostgresStartError("the server has not been started")
        if name is None:
            name = f"t{next(self._db_counter)}_{uuid.uuid4().hex[:8]}"
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"database name must match {_DB_NAME_RE.pattern}, got {name!r}")
        with psycopg.connect(self._conninfo(_SUPERUSER), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.uri_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, closing any connection still open to it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._conninfo(_SUPERUSER), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayPostgres]:
    """Start one throwaway PostgreSQL server for the session (skip when not installed)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        reason = "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin)"
        if _required():
            pytest.fail(f"{reason}, but {REQUIRE_ENV}=1", pytrace=False)
        pytest.skip(reason)
    server = ThrowawayPostgres(bin_dir)
    try:
        server.start()
    except PostgresStartError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_uri(pg_server: ThrowawayPostgres) -> Iterator[str]:
    """A fresh, empty database for one test, as a SQLAlchemy URI; dropped afterwards."""
    uri = pg_server.create_database()
    yield uri
    # A failed cleanup must not fail the test: the whole server dir is removed at the end anyway.
    with contextlib.suppress(Exception):
        pg_server.drop_database(uri.rsplit("/", 1)[1])
