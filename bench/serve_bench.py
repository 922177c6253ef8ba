"""The scoring server under closed-loop load: single-row and 64-row requests, 1, 2 and 4 workers.

usage: python bench/serve_bench.py [--workers 1 2 4] [--clients 1 8] [--rows 1 64] [--seconds 8]
Saves the same tiny MLP as the shared bench (20 -> 64 -> 64 -> 3), serves it with
`mltrail models serve --workers W` (its own process group), and for each (rows, clients) runs C
threads that each POST one `{"inputs": ...}` body over a keep-alive connection for D seconds.
Prints one JSON line per case, then a table. Timings are only meaningful as ratios on one machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def save_model(path: str) -> None:
    import keras
    import numpy as np

    import mltrail.tensorflow

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(64, activation="relu"), keras.layers.Dense(3, activation="softmax")])
    x = np.random.rand(64, 20).astype("float32")
    mltrail.tensorflow.save_model(m, path, input_example=x[:2])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str, workers: int, port: int, log_path: str) -> subprocess.Popen:
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mltrail.cli", "models", "serve", "-m", model_dir, "-p",
                                 str(port), "--workers", str(workers)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/ping"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path) as fh:
                raise SystemExit(f"the server exited:\n{fh.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            time.sleep(0.3)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def load(port: int, body: bytes, clients: int, seconds: float) -> dict[str, float | int]:
    """Closed loop: `clients` threads, each with one keep-alive connection, POST `body` for `seconds`."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    mine.append(time.perf_counter() - t)
                else:
                    errors[0] += 1
            except OSError:
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat.sort()
    n = len(lat)

    def q(p: float) -> float | None:
        return round(1000 * lat[min(n - 1, int(p * n))], 2) if n else None

    return {"rps": round(n / elapsed, 1), "p50_ms": q(0.5), "p99_ms": q(0.99), "ok": n, "errors": errors[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--seconds", type=float, default=8.0)
    a = ap.parse_args()
    import random

    tmp = tempfile.mkdtemp(prefix="serve-bench-")
    try:
        model_dir = os.path.join(tmp, "model")
        save_model(model_dir)
        random.seed(0)
        bodies = {r: json.dumps({"inputs": [[random.random() for _ in range(20)] for _ in range(r)]}).encode()
                  for r in a.rows}
        results = []
        for w in a.workers:
            port = free_port()
            proc = start_server(model_dir, w, port, os.path.join(tmp, f"serve-{w}.log"))
            try:
                load(port, bodies[a.rows[0]], max(a.clients), 2.0)  # warm every worker up
                for r in a.rows:
                    for c in a.clients:
                        res = {"workers": w, "rows": r, "clients": c, **load(port, bodies[r], c, a.seconds)}
                        res["rows_per_s"] = round(res["rps"] * r, 1)
                        print(json.dumps(res), flush=True)
                        results.append(res)
            finally:
                stop_server(proc)
        print(f"\n{'workers':>7} {'rows':>5} {'clients':>7} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for res in results:
            print(f"{res['workers']:>7} {res['rows']:>5} {res['clients']:>7} {res['rps']:>9} {res['rows_per_s']:>10} "
                  f"{res['p50_ms']!s:>8} {res['p99_ms']!s:>8}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
