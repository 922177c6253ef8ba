"""Real processes for fault tests: a `mltrail server` child on any store URI, a PostgreSQL server of
the test's own that can be stopped and started, an SQLite file locked by another process, and a
logging child that reports how long each call blocked.

    pg = OwnPostgres.start()                            # stop()/start_again() it freely, close() at the end
    srv = ServerChild(pg.create_database(), tmp_path).start()
    srv.kill(); srv.start()                             # SIGKILL, then the same port again
    with pg.down(seconds=4): ...                        # the database stops, then comes back
    with lock_sqlite(db_path, seconds=3): ...           # BEGIN EXCLUSIVE held by another process
    child = LoggingChild(srv.uri, run_id, n=5000, out=tmp_path / "child.json").start()
    report = child.wait()                               # {"acked": ..., "max_block_s": ..., ...}

Import it from a test in tests/faults with `from faults_support import ...` (pytest puts the test's
directory on sys.path). Only the standard library, pytest and `pg_server` at module level.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent.parent)
if _TESTS_DIR not in sys.path:  # pg_server.py lives in tests/
    sys.path.insert(0, _TESTS_DIR)

from pg_server import PostgresStartError, ThrowawayPostgres, find_pg_bin  # noqa: E402


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[Any] | None = None) -> None:
    """Poll `url` until it answers 200; fail early when `proc` exits."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback http
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no answer from {url} after {timeout} s")


# -- the tracking server as a child process ------------------------------------------------------
class ServerChild:
    """`mltrail server` on `store_uri` in its own process group (SIGKILL-able), on a fixed port so a
    restart answers at the same URI. Its log is `root/server-<port>.log`."""

    def __init__(self, store_uri: str, tmp_path: Path, port: int | None = None,
                 extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.root = Path(tmp_path) / "server"
        self.root.mkdir(parents=True, exist_ok=True)
        self.store_uri = store_uri
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "mltrail.cli", "server", "--backend-store-uri", store_uri,
                     "--artifacts-destination", str(self.root / "artifacts"),
                     "--host", "127.0.0.1", "--port", str(self.port), *(extra_args or [])]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.root / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> ServerChild:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        wait_http(self.uri + "/health", timeout, self.proc)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the server's whole process group; wait for it to die on SIGKILL/SIGTERM."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s (and SIGCONT first, in case a test froze it)."""
        if not self.alive():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


# -- a PostgreSQL server the test may stop -------------------------------------------------------
class OwnPostgres(ThrowawayPostgres):
    """A throwaway PostgreSQL server of this test module alone (the session's shared one must never
    stop under other tests). Commits are durable (`synchronous_commit = on`), so stopping it,
    even with `-m immediate`, loses nothing it acknowledged."""

    @classmethod
    def start_or_skip(cls) -> OwnPostgres:
        """Start one, or skip the test when PostgreSQL is not installed (fail when it is required)."""
        bin_dir = find_pg_bin()
        if bin_dir is None:
            reason = "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin)"
            if os.environ.get("MLTRAIL_REQUIRE_POSTGRES", "").strip().lower() in {"1", "true", "yes"}:
                pytest.fail(f"{reason}, but MLTRAIL_REQUIRE_POSTGRES=1", pytrace=False)
            pytest.skip(reason)
        server = cls(bin_dir)
        try:
            server.start()
        except PostgresStartError as exc:
            server.stop()
            pytest.fail(str(exc), pytrace=False)
        with open(server.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("synchronous_commit = on\n")  # read on the next start; reload now
        server.pg_ctl("reload")
        return server

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `pg_ctl <args> -D <data dir>` as the server's user; raise with its log on failure."""
        bin_path = os.path.join(self.bin_dir, "pg_ctl")
        cmd = [bin_path, *args, "-D", str(self.data_dir)]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, cwd=str(self.data_dir.parent), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise PostgresStartError(f"pg_ctl {' '.join(args)} failed ({proc.returncode}): {proc.stdout}"
                                     f"{proc.stderr}\n--- server log ---\n{self._tail_log()}")
        return proc

    def _tail_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no server log)"

    def halt(self, mode: str = "fast") -> None:
        """Stop the database (`fast`: clients are cut off at once; `immediate`: a crash)."""
        self.pg_ctl("stop", "-m", mode, "-w", "-t", "30")

    def resume(self) -> None:
        """Start the stopped database again on the same port and wait until it answers."""
        self.pg_ctl("start", "-w", "-t", "30", "-l", str(self.log_file))
        self._wait_ready()

    @contextlib.contextmanager
    def down(self, seconds: float, mode: str = "fast") -> Iterator[dict[str, float]]:
        """Stop the database for `seconds`, then start it again. Yields a dict that gets
        `stopped_at`/`resumed_at` (perf_counter) filled in."""
        times: dict[str, float] = {}
        self.halt(mode)
        times["stopped_at"] = time.perf_counter()
        try:
            yield times
            left = seconds - (time.perf_counter() - times["stopped_at"])
            if left > 0:
                time.sleep(left)
        finally:
            self.resume()
            times["resumed_at"] = time.perf_counter()

    def close(self) -> None:
        self.stop()


# -- SQLite locked by another process ------------------------------------------------------------
_LOCKER = textwrap.dedent("""
    import sqlite3, sys, time
    path, seconds = sys.argv[1], float(sys.argv[2])
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()
    print("released", flush=True)
""")


@contextlib.contextmanager
def lock_sqlite(db_path: str | Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """Hold `BEGIN EXCLUSIVE` on `db_path` from another process for `seconds`; yields once the lock is
    held, and returns after it is released (the block's body runs while it is held)."""
    proc = subprocess.Popen([sys.executable, "-c", _LOCKER, str(db_path), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "locked":
            proc.wait(timeout=30)
            raise RuntimeError(f"the locking process did not lock {db_path}: {line!r} {proc.stderr.read()}")
        yield proc
        proc.wait(timeout=seconds + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


# -- a client process that logs and measures ------------------------------------------------------
_LOGGER = textwrap.dedent("""
    import json, os, sys, time
    import mltrail
    uri, run_id, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pause_every = float(os.environ.get("FAULTS_PAUSE_S", "0"))
    mltrail.set_tracking_uri(uri)
    report = {"acked": 0, "max_block_s": 0.0, "errors": [], "end_run_s": None, "blocks_over_50ms": 0}
    progress = out + ".progress"
    t_all = time.perf_counter()
    with mltrail.start_run(run_id=run_id):
        for i in range(n):
            t0 = time.perf_counter()
            try:
                mltrail.log_metric("m", i * 0.5, step=i)
            except Exception as exc:  # the promise: never one; recorded, not raised
                report["errors"].append(f"step {i}: {type(exc).__name__}: {exc}"[:300])
                continue
            block = time.perf_counter() - t0
            report["acked"] = i + 1
            report["max_block_s"] = max(report["max_block_s"], block)
            report["blocks_over_50ms"] += block > 0.05
            if i % 100 == 0:
                with open(progress, "w") as fh:
                    fh.write(str(i))
            if pause_every:
                time.sleep(pause_every)
        t_end = time.perf_counter()
    report["end_run_s"] = time.perf_counter() - t_end
    report["total_s"] = time.perf_counter() - t_all
    with open(out, "w") as fh:
        json.dump(report, fh)
""")


class LoggingChild:
    """A process that logs `n` points of metric `m` (step i, value i * 0.5) to `run_id` through the
    fluent API on `uri`, timing every call, then ends the run. `wait()` returns its JSON report:
    acked (calls that returned), max_block_s, blocks_over_50ms, errors, end_run_s, total_s."""

    def __init__(self, uri: str, run_id: str, n: int, out: Path, env: dict[str, str] | None = None,
                 pause_s: float = 0.0) -> None:
        self.out = Path(out)
        self.args = [sys.executable, "-c", _LOGGER, uri, run_id, str(n), str(self.out)]
        self.env = {**os.environ, "FAULTS_PAUSE_S": str(pause_s), **(env or {})}
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> LoggingChild:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
                                     text=True)
        return self

    def progress(self) -> int:
        """The last step (a multiple of 100) the child has logged, -1 before the first."""
        try:
            return int(Path(str(self.out) + ".progress").read_text() or -1)
        except (OSError, ValueError):
            return -1

    def wait_for_step(self, step: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.progress() < step:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the logging child exited early: {self.proc.stdout.read() if self.proc.stdout else ''}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the logging child did not reach step {step} in {timeout} s")
            time.sleep(0.02)

    def wait(self, timeout: float = 300) -> dict[str, Any]:
        assert self.proc is not None
        output, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0 or not self.out.exists():
            raise RuntimeError(f"the logging child failed with {self.proc.returncode}:\n{output[-4000:]}")
        report: dict[str, Any] = json.loads(self.out.read_text())
        report["output"] = output[-4000:]
        return report

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
