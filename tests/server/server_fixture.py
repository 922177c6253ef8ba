"""Real tracking servers for tests: the app on uvicorn in a thread (fast), or `mltrail server` in a
subprocess (for tests that kill it). Both listen on 127.0.0.1 on a free port over SQLite.

    uri = start_server(request, tmp_path)          # in-process; stopped when the test ends
    srv = ServerThread(create_app(settings)).start()
    proc = ServerProcess(tmp_path).start()         # a child process (SIGKILL-able)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
import uvicorn

from mltrail.server.app import create_app
from mltrail.server.settings import ServerSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no answer from {url} after {timeout} s")


class ServerThread:
    """An ASGI app served by uvicorn on a daemon thread, on a socket bound before it starts."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **uvicorn_kw: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.uri = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30,
                                **uvicorn_kw)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def server_settings(tmp_path: Path, **overrides: Any) -> ServerSettings:
    root = Path(tmp_path) / "server"
    root.mkdir(parents=True, exist_ok=True)
    kw: dict[str, Any] = {"backend_store_uri": f"sqlite:///{root}/mltrail.db",
                          "artifacts_destination": str(root / "artifacts"), "ui": False}
    kw.update(overrides)
    return ServerSettings(**kw)


def close_stores(uri: str) -> None:
    """Stop the sender threads of cached REST stores for `uri` (they would outlive the server)."""
    from mltrail import store as store_mod

    for key, st in list(store_mod._cache.items()):
        if key[0].rstrip("/") == uri.rstrip("/"):
            close = getattr(st, "close", None)
            if close is not None:
                close(timeout=5)
            store_mod._cache.pop(key, None)


def start_server(request: Any, tmp_path: Path, **overrides: Any) -> str:
    """The URI of a real server (uvicorn thread, SQLite in tmp_path), stopped when the test ends."""
    srv = ServerThread(create_app(server_settings(tmp_path, **overrides))).start()

    def stop() -> None:
        close_stores(srv.uri)
        srv.stop()

    request.addfinalizer(stop)
    return srv.uri


class ServerProcess:
    """`mltrail server` as a child process in its own process group, for tests that kill it."""

    def __init__(self, tmp_path: Path, port: int | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.root = Path(tmp_path) / "server"
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "mltrail.cli", "server", "--backend-store-uri",
                     f"sqlite:///{self.root}/mltrail.db", "--artifacts-destination", str(self.root / "artifacts"),
                     "--host", "127.0.0.1", "--port", str(self.port), *(extra_args or [])]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = self.root / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)
        wait_http(self.uri + "/health", timeout, self.proc)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
