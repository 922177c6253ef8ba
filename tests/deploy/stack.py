"""The shipped deployment, started for real on 127.0.0.1: Debian's nginx running deploy/nginx/mltrail.conf in
front of N `mltrail server` replicas on one PostgreSQL database and an S3-compatible server (moto's, as a
child process). Used by tests/deploy and by bench/ scripts.

    from pg_server import ThrowawayPostgres        # tests/ on sys.path
    from stack import start_stack, require_nginx

    require_nginx()                                # pytest: skip (or fail with MLTRAIL_REQUIRE_NGINX=1)
    pg = ThrowawayPostgres(); pg.start()           # or the `pg_server` session fixture
    with start_stack(tmp_dir, pg.create_database(), replicas=3) as stack:
        stack.url                                  # http://127.0.0.1:PORT, nginx: give it to clients
        stack.replica_urls                         # each replica, straight
        stack.client_env()                         # os.environ plus MLFLOW_TRACKING_URI=stack.url
        stack.upstreams()                          # which replica answered each logged request, in order
        stack.kill_replica(2); stack.start_replica(2)  # a replica lost and back

`start_stack` migrates the database once (`mltrail db upgrade`) before the replicas start; `stop()` (or
leaving the `with`) ends every process it started and keeps the logs under `root`. Only the standard
library and requests are imported at module level.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import requests

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "mltrail.conf"
UPSTREAMS_FILE = "mltrail-upstreams.conf"  # the name mltrail.conf includes, beside the main conf
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
REQUIRE_ENV = "MLTRAIL_REQUIRE_NGINX"  # set by .ci/run: a missing nginx fails instead of skipping

# The one line of mltrail.conf the tests change (besides the included upstream file).
_LISTEN_RE = re.compile(r"^(\s*)listen\s+8080;\s*$", re.MULTILINE)
_UPSTREAM_RE = re.compile(r"\bupstream=(.*?) upstream_status=")
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_nginx() -> str | None:
    """The nginx binary (PATH first, then Debian's /usr/sbin), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)


def require_nginx() -> str:
    """nginx's path; skip the test without it, or fail when MLTRAIL_REQUIRE_NGINX=1 (CI)."""
    import pytest

    found = find_nginx()
    if found is not None:
        return found
    reason = "nginx is not installed (apt-get install nginx)"
    if os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


class StackStartError(RuntimeError):
    """A process of the stack did not come up; the message holds the end of its log."""


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0,
               ok: Iterable[int] = (200,)) -> None:
    """Poll `url` until it answers with a status in `ok`; raise with the process's log if it dies first."""
    statuses = set(ok)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackStartError(f"{proc.args!r} exited with {proc.returncode} before {url} answered:\n"
                                  f"{_tail(log)}")
        try:
            if requests.get(url, timeout=2).status_code in statuses:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise StackStartError(f"no answer from {url} after {timeout:.0f} s:\n{_tail(log)}")


def _spawn(args: list[str], log: Path, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    # Own process group: stop() signals the process and anything it forked (uvicorn workers).
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env), cwd=cwd, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass


class S3Server:
    """moto's S3-compatible server as a child process on 127.0.0.1, with one bucket made for the stack."""

    def __init__(self, root: Path, bucket: str = "mltrail") -> None:
        self.root = root
        self.bucket = bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = root / "s3.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> S3Server:
        env = {**os.environ, **S3_CREDENTIALS}
        self.proc = _spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                           self.log, env, self.root)
        # moto answers the root path (ListBuckets) once it listens
        _wait_http(self.endpoint + "/", self.proc, self.log, timeout=60)
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=self.bucket)
        return self

    def env(self, root: Path) -> dict[str, str]:
        """What a process needs to reach this server with boto3 (and nothing from the user's ~/.aws)."""
        return {"MLFLOW_S3_ENDPOINT_URL": self.endpoint, **S3_CREDENTIALS,
                "AWS_CONFIG_FILE": str(root / "no-aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials")}

    def stop(self) -> None:
        _stop(self.proc)


class Nginx:
    """Debian's nginx run as a foreground process with the shipped mltrail.conf, all its files under `root`."""

    def __init__(self, root: Path, upstreams: list[str], binary: str | None = None) -> None:
        found = binary or find_nginx()
        if found is None:
            raise StackStartError("nginx is not installed (apt-get install nginx)")
        self.binary = found
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstreams = upstreams
        self.access_log = root / "access.log"
        self.error_log = root / "error.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        """Write the main conf, mltrail.conf (its listen line changed) and the upstream list; return the main conf."""
        text = NGINX_CONF.read_text()
        text, count = _LISTEN_RE.subn(rf"\1listen 127.0.0.1:{self.port};", text)
        if count != 1:
            raise StackStartError(f"{NGINX_CONF} must hold exactly one 'listen 8080;' line, found {count}")
        (self.root / "mltrail.conf").write_text(text)
        (self.root / UPSTREAMS_FILE).write_text("".join(f"server {u} max_fails=3 fail_timeout=10s;\n"
                                                        for u in self.upstreams))
        temp = self.root / "temp"
        for name in ("client_body", "proxy"):
            (temp / name).mkdir(parents=True, exist_ok=True)
            # workers run as `nobody` when nginx is started by root (CI): they must write there
            os.chmod(temp / name, 0o777)
        os.chmod(temp, 0o755)
        main = self.root / "nginx.conf"
        main.write_text(f"""daemon off;
worker_processes 2;
pid {self.root}/nginx.pid;
error_log {self.error_log} warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    include mltrail.conf;
    access_log {self.access_log} mltrail_upstream;
}}
""")
        return main

    def start(self) -> Nginx:
        main = self.write_config()
        args = [self.binary, "-p", str(self.root), "-e", str(self.error_log), "-c", str(main)]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30, check=False)
        if check.returncode != 0:
            raise StackStartError(f"nginx -t refused {main}:\n{check.stderr}")
        self.proc = _spawn(args, self.root / "nginx.out", os.environ, self.root)
        _wait_http(self.url + "/health", self.proc, self.error_log, timeout=30)
        return self

    def stop(self) -> None:
        _stop(self.proc, signal.SIGQUIT)  # graceful: workers finish what they serve


class Stack:
    """nginx + replicas + S3 server over one PostgreSQL database; see the module docstring."""

    def __init__(self, root: Path, database_uri: str, replicas: int = 3, server_args: Iterable[str] = (),
                 env: Mapping[str, str] | None = None) -> None:
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.database_uri = database_uri
        self.server_args = list(server_args)
        self.extra_env = dict(env or {})
        self.s3 = S3Server(self.root, bucket=f"mltrail-{uuid.uuid4().hex[:8]}")
        self.artifacts_destination = f"s3://{self.s3.bucket}/artifacts"
        self.replica_ports = [free_port() for _ in range(replicas)]
        self.replica_urls = [f"http://127.0.0.1:{p}" for p in self.replica_ports]
        self.replica_procs: list[subprocess.Popen[bytes]] = []
        self.nginx = Nginx(self.root, [f"127.0.0.1:{p}" for p in self.replica_ports])
        self.url = self.nginx.url

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Stack:
        try:
            self.s3.start()
            self._migrate()
            self._start_replicas()
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        return self

    def server_env(self) -> dict[str, str]:
        """The replicas' environment: ours, no tracking URI, the S3 endpoint and credentials."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_TRACKING", "MLFLOW_TRACKING"))}
        env.update(self.s3.env(self.root))
        env.update(self.extra_env)
        return env

    def _migrate(self) -> None:
        log = self.root / "db-upgrade.log"
        with open(log, "ab") as out:
            proc = subprocess.run([sys.executable, "-m", "mltrail.cli", "db", "upgrade", self.database_uri],
                                  stdout=out, stderr=subprocess.STDOUT, env=self.server_env(), cwd=self.root,
                                  timeout=300, check=False)
        if proc.returncode != 0:
            raise StackStartError(f"mltrail db upgrade exited with {proc.returncode}:\n{_tail(log)}")

    def _replica_args(self, number: int) -> list[str]:
        return [sys.executable, "-m", "mltrail.cli", "server", "--backend-store-uri", self.database_uri,
                "--artifacts-destination", self.artifacts_destination, "--host", "127.0.0.1",
                "--port", str(self.replica_ports[number - 1]), *self.server_args]

    def _start_replicas(self) -> None:
        env = self.server_env()
        for i in range(1, len(self.replica_ports) + 1):
            self.replica_procs.append(_spawn(self._replica_args(i), self.replica_log(i), env, self.root))
        for i, (url, proc) in enumerate(zip(self.replica_urls, self.replica_procs, strict=True), start=1):
            _wait_http(url + "/health", proc, self.replica_log(i))

    def kill_replica(self, number: int, sig: int = signal.SIGKILL) -> None:
        """Kill replica `number` (1-based) and wait for it to end: nginx has to do without it."""
        _stop(self.replica_procs[number - 1], sig)

    def start_replica(self, number: int) -> None:
        """Start replica `number` (1-based) again on its port after `kill_replica`, and wait for its /health."""
        proc = self.replica_procs[number - 1]
        if proc.poll() is None:
            raise StackStartError(f"replica {number} is still running (pid {proc.pid})")
        proc = _spawn(self._replica_args(number), self.replica_log(number), self.server_env(), self.root)
        self.replica_procs[number - 1] = proc
        _wait_http(self.replica_urls[number - 1] + "/health", proc, self.replica_log(number))

    def replica_log(self, number: int) -> Path:
        """The log file of replica `number` (1-based)."""
        return self.root / f"replica{number}.log"

    def stop(self) -> None:
        """End nginx, the replicas and the S3 server (logs stay under `root`)."""
        self.nginx.stop()
        for proc in self.replica_procs:
            _stop(proc)
        self.s3.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- for clients and checks ----------------------------------------------------------
    def client_env(self, **extra: str) -> dict[str, str]:
        """An environment for a client process: no tracking settings of ours, MLFLOW_TRACKING_URI = nginx."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))}
        env.update(MLFLOW_TRACKING_URI=self.url, **extra)
        return env

    def upstreams(self) -> list[str]:
        """The replica address (`127.0.0.1:PORT`) that answered each request in nginx's access log, in order.

        A request nginx retried on another replica lists every address it tried (`a, b`)."""
        return _UPSTREAM_RE.findall(self.nginx.access_log.read_text()) if self.nginx.access_log.exists() else []


def start_stack(root: Path, database_uri: str, replicas: int = 3, server_args: Iterable[str] = (),
                env: Mapping[str, str] | None = None) -> Stack:
    """Start S3, migrate `database_uri`, start `replicas` servers and nginx; return the running Stack.

    Args:
        root: a directory for the configs and logs (created).
        database_uri: an empty or migrated PostgreSQL database, e.g. `ThrowawayPostgres.create_database()`.
        replicas: how many `mltrail server` processes nginx balances.
        server_args: extra `mltrail server` options for every replica (e.g. `["--auth"]`).
        env: extra environment for the replicas (e.g. `MLTRAIL_ADMIN_PASSWORD`).
    """
    return Stack(root, database_uri, replicas, server_args, env).start()
