"""A large artifact through the tracking server's proxy (#15): a 2 GB file up and down through a
`mltrail server` subprocess, with mltrail's own client: one streamed PUT, then MLflow's multipart
upload (parts through the server), then a streamed download. Reports throughput (MB/s) of each and
the server's peak resident memory (VmHWM), which must stay far below the file's size: the proxy
streams, it never holds a body.

    python bench/artifact_bench.py                  # 2048 MB, local destination
    python bench/artifact_bench.py --size-mb 1024   # when /tmp is short of disk (needs ~3x the size)
    python bench/artifact_bench.py --s3             # to an S3 destination (moto's server, in memory)

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_file(path: Path, size: int) -> str:
    """`size` bytes of 1 MiB blocks stamped with their index; returns the sha256."""
    block = bytearray(os.urandom(MiB))
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(0, size, MiB):
            block[:8] = i.to_bytes(8, "big")
            data = bytes(block[:min(MiB, size - i)])
            fh.write(data)
            digest.update(data)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(folder: Path, destination: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [sys.executable, "-m", "mltrail.cli", "server", "--backend-store-uri", f"sqlite:///{folder}/mltrail.db",
            "--artifacts-destination", destination, "--host", "127.0.0.1", "--port", str(port),
            "--max-artifact-size", "64GiB"]
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - the server's whole life
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env},
                            start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(uri + "/health", timeout=2).status_code == 200:
                return proc, uri
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start; see {folder / 'server.log'}")


def s3_destination() -> tuple[str, dict[str, str], object]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on the bench's output
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket="bench")
    return "s3://bench/artifacts", env, moto


def timed(label: str, results: dict[str, float], size: int, fn: object) -> None:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    results[f"{label}_MBps"] = round(size / MiB / seconds, 1)
    results[f"{label}_s"] = round(seconds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--s3", action="store_true", help="an S3 destination (moto's server) instead of a directory")
    opts = parser.parse_args()
    size = opts.size_mb * MiB
    folder = Path(tempfile.mkdtemp(prefix="mltrail-artifact-bench-"))
    moto = None
    try:
        destination, env = str(folder / "artifacts"), {}
        if opts.s3:
            destination, env, moto = s3_destination()
            os.environ.update(env)
        big = folder / "big.bin"
        digest = write_file(big, size)
        proc, uri = start_server(folder, destination, env)
        try:
            from mltrail.store.artifact.http import HttpArtifactRepository

            os.environ["MLTRAIL_PROGRESS"] = "false"
            repo = HttpArtifactRepository(f"{uri}/api/2.0/mlflow-artifacts/artifacts/0/bench/artifacts")
            results: dict[str, float] = {}
            os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "false"
            timed("upload_put", results, size, lambda: repo.log_artifact(str(big), "put"))
            os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "true"
            timed("upload_multipart", results, size, lambda: repo.log_artifact(str(big), "mpu"))
            out = folder / "back.bin"
            timed("download", results, size, lambda: repo.download_file("mpu/big.bin", str(out)))
            if sha256(out) != digest:
                raise SystemExit("the downloaded file differs from the uploaded one")
            out.unlink()
            results["server_peak_rss_MB"] = round(peak_rss_mb(proc.pid), 1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(json.dumps({"bench": "artifact_bench", "size_MB": opts.size_mb,
                          "destination": "s3 (moto)" if opts.s3 else "local", **results}))
    finally:
        if moto is not None:
            moto.stop()  # type: ignore[attr-defined]
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
