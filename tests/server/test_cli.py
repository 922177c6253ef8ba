"""`mltrail server` and `mltrail ui` as real processes, and their option parsing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click
import pytest
import requests
from server_fixture import free_port, wait_http

from mltrail.server.cli import _size

A = "/api/2.0/mlflow"


def _start(args, tmp_path, env=None):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mltrail.cli", *args, "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 90, proc)
    except Exception:
        _stop(proc)
        raise
    return proc, f"http://127.0.0.1:{port}"


def _stop(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_server_with_several_workers(tmp_path):
    proc, uri = _start(["server", "--backend-store-uri", f"sqlite:///{tmp_path}/db/m.db", "--workers", "2"],
                       tmp_path)
    try:
        ids = {requests.post(f"{uri}{A}/experiments/create", json={"name": f"e{i}"}, timeout=30).json()[
            "experiment_id"] for i in range(20)}
        assert len(ids) == 20
        exp = requests.get(f"{uri}{A}/experiments/get", params={"experiment_id": "0"}, timeout=30).json()
        assert exp["experiment"]["artifact_location"] == "mlflow-artifacts:/0"
        assert requests.put(f"{uri}/api/2.0/mlflow-artifacts/artifacts/0/x.txt", data=b"x", timeout=30).ok
        assert (tmp_path / "db" / "artifacts" / "0" / "x.txt").read_bytes() == b"x"  # beside the database
    finally:
        _stop(proc)


@pytest.mark.slow
def test_ui_serves_the_local_store_with_local_artifact_paths(tmp_path):
    db = tmp_path / "store" / "mltrail.db"
    proc, uri = _start(["ui"], tmp_path, env={"MLTRAIL_TRACKING_URI": f"sqlite:///{db}"})
    try:
        exp_id = requests.post(f"{uri}{A}/experiments/create", json={"name": "e"}, timeout=30).json()[
            "experiment_id"]
        exp = requests.get(f"{uri}{A}/experiments/get", params={"experiment_id": exp_id}, timeout=30).json()
        assert exp["experiment"]["artifact_location"] == str(tmp_path / "store" / "artifacts" / exp_id)
    finally:
        _stop(proc)


def test_server_refuses_a_server_as_backend(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mltrail.cli", "server", "--backend-store-uri", "http://x:1",
                          "--port", str(free_port())], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "needs a database" in out.stderr


def test_size_option():
    assert _size(None, None, "16MiB") == 16 * 1024 * 1024
    assert _size(None, None, "1g") == 1024 ** 3
    assert _size(None, None, "4096") == 4096
    with pytest.raises(click.BadParameter):
        _size(None, None, "lots")


def test_help_names_mlflow_options():
    from click.testing import CliRunner

    from mltrail.server.cli import server

    out = CliRunner().invoke(server, ["--help"]).output
    for opt in ("--backend-store-uri", "--default-artifact-root", "--artifacts-destination", "--serve-artifacts",
                "--no-serve-artifacts", "--host", "--port", "--workers", "--allowed-hosts"):
        assert opt in out
