"""What authentication costs a client logging to a server: `mltrail server` with auth off, and with
`--auth` reached by basic auth (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`) and by a token
(`MLFLOW_TRACKING_TOKEN`), through mltrail's own REST client.

Three workloads per mode: synchronous reads (`get_run`), synchronous writes (`create_run`) and
logging (`log_metric` through the journal's batches, then `flush`). Modes are interleaved over
several rounds and the best round of each is kept, so a noisy neighbour hurts all modes alike.
The caller is a non-admin user working in an experiment it created (so the permission check runs
too). Prints one JSON line: calls/s per mode and workload, and auth's overhead in % (goal: within
10%: a verified password is remembered, never re-hashed per request).

    python bench/auth_bench.py                 # 150 calls per workload, 8 rounds
    python bench/auth_bench.py --calls 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

USER, PASSWORD = "bench", "a long bench password"
CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
                   "MLTRAIL_TRACKING_USERNAME", "MLTRAIL_TRACKING_PASSWORD", "MLTRAIL_TRACKING_TOKEN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`mltrail server` in a child process over SQLite in `folder`."""

    def __init__(self, folder: Path, auth: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.db = f"sqlite:///{folder}/mltrail.db"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "mltrail.cli", "server", "--backend-store-uri", self.db,
                     "--artifacts-destination", str(folder / "artifacts"), "--port", str(self.port)]
        if auth:
            self.args.append("--auth")
        self.log = open(folder / "server.log", "ab")  # noqa: SIM115  (closed in stop)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if requests.get(self.uri + "/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise TimeoutError(f"no answer from {self.uri}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


def make_accounts(db: str) -> str:
    """An admin (the server refuses to start without one) and the non-admin bench user; its token's secret."""
    from mltrail.server.auth.store import AuthStore
    from mltrail.store.sql import engine as eng

    engine = eng.make_engine(db)
    eng.ensure_schema(engine)
    store = AuthStore(engine)
    store.create_user("admin", "an admin password only for the bench", is_admin=True)
    store.create_user(USER, PASSWORD)
    _, secret = store.create_token(USER, "bench")
    engine.dispose()
    return secret


def use_credentials(creds: dict[str, str]) -> None:
    for var in CREDENTIAL_VARS:
        os.environ.pop(var, None)
    os.environ.update(creds)


def rate(n: int, fn: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def measure(uri: str, calls: int) -> dict[str, float]:
    """calls/s of each workload against `uri` with the credentials in the environment."""
    from mltrail.client import Client

    client = Client(tracking_uri=uri)
    exp_id = client.create_experiment(f"bench-{time.time_ns()}")
    run_id = client.create_run(exp_id).info.run_id
    client.get_run(run_id)  # warm: connection, verified credentials, grants
    result = {"read": rate(calls, lambda i: client.get_run(run_id)),
              "write": rate(calls, lambda i: client.create_run(exp_id))}
    start = time.perf_counter()
    for i in range(calls * 10):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
    client.flush()
    result["log"] = calls * 10 / (time.perf_counter() - start)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=150, help="synchronous calls per workload and round")
    parser.add_argument("--rounds", type=int, default=8, help="the best round of each mode counts (noise only slows)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mltrail-auth-bench-") as tmp:
        os.environ["MLTRAIL_JOURNAL_DIR"] = str(Path(tmp) / "journal")
        off = Server(Path(tmp) / "off", auth=False)
        on = Server(Path(tmp) / "on", auth=True)
        secret = make_accounts(on.db)
        servers = [off.start(), on.start()]
        modes = {"off": (off.uri, {}),
                 "basic": (on.uri, {"MLFLOW_TRACKING_USERNAME": USER, "MLFLOW_TRACKING_PASSWORD": PASSWORD}),
                 "token": (on.uri, {"MLFLOW_TRACKING_TOKEN": secret})}
        best: dict[str, dict[str, float]] = {m: {} for m in modes}
        try:
            for _ in range(args.rounds):
                for mode, (uri, creds) in modes.items():
                    use_credentials(creds)
                    for workload, value in measure(uri, args.calls).items():
                        best[mode][workload] = max(best[mode].get(workload, 0.0), value)
        finally:
            use_credentials({})
            for s in servers:
                s.stop()
    overhead = {mode: {w: round((best["off"][w] / best[mode][w] - 1) * 100, 1) for w in best["off"]}
                for mode in ("basic", "token")}
    print(json.dumps({"bench": "auth", "calls": args.calls, "rounds": args.rounds,
                      "calls_per_s": {m: {w: round(v, 1) for w, v in r.items()} for m, r in best.items()},
                      "overhead_pct": overhead,
                      "within_10pct": all(v <= 10 for r in overhead.values() for v in r.values())}))


if __name__ == "__main__":
    main()
