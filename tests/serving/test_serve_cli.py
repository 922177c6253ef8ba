"""`mltrail models` commands: predict, export and generate-dockerfile in-process (click's runner); serve as
real subprocesses (startup, --enable-mlserver, --workers, SIGTERM/Ctrl-C shutdown with nothing left behind)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytestmark = pytest.mark.tf


def _invoke(*args: str, input: bytes | None = None):
    from click.testing import CliRunner

    from mltrail.serving.cli import models

    return CliRunner().invoke(models, list(args), input=input, catch_exceptions=False)


# ------------------------------------------------------------------ predict
def test_predict_json_file_to_file(saved_models, loaded, sm, tmp_path):
    x = sm.random_rows(3, seed=11)
    (tmp_path / "in.json").write_text(json.dumps({"inputs": x.tolist()}))
    r = _invoke("predict", "-m", saved_models["mlp"], "-i", str(tmp_path / "in.json"), "-o", str(tmp_path / "out.json"))
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "out.json").read_text())["predictions"]
    np.testing.assert_array_equal(np.asarray(got, np.float32), loaded["mlp"].predict(x))


def test_predict_csv_from_stdin_to_stdout(saved_models, loaded, sm):
    x = sm.random_rows(2, seed=12)
    csv = ",".join(f"f{i}" for i in range(20)) + "\n" + "\n".join(",".join(map(repr, r)) for r in x.tolist())
    r = _invoke("predict", "-m", saved_models["mlp"], "--content-type", "csv", input=csv.encode())
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["predictions"]
    rows = [list(row.values()) if isinstance(row, dict) else row for row in got]
    np.testing.assert_array_equal(np.asarray(rows, np.float32), loaded["mlp"].predict(x))


def test_predict_reports_a_bad_input(saved_models, tmp_path):
    (tmp_path / "in.json").write_text('{"inputs": [[1, 2]]}')
    r = _invoke("predict", "-m", saved_models["mlp"], "-i", str(tmp_path / "in.json"))
    assert r.exit_code != 0
    assert "INVALID_PARAMETER_VALUE" in r.output and "(-1, 20)" in r.output


# ------------------------------------------------------------------ export
def test_export_tf_serving_layout_loads_with_tf_saved_model(saved_models, loaded, sm, tmp_path):
    import tensorflow as tf

    r = _invoke("export", "-m", saved_models["mlp"], "--format", "tf-serving", str(tmp_path / "serving"))
    assert r.exit_code == 0, r.output
    version_dir = tmp_path / "serving" / "mlp" / "1"
    assert r.output.strip() == str(version_dir)
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables").is_dir()
    sig = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    x = sm.random_rows(2, seed=13)
    (out,) = sig(tf.constant(x)).values()
    np.testing.assert_allclose(out.numpy(), loaded["mlp"].predict(x), rtol=1e-6, atol=1e-7)
    # the same version again is refused rather than overwritten; another version goes beside it
    assert _invoke("export", "-m", saved_models["mlp"], str(tmp_path / "serving")).exit_code != 0
    r = _invoke("export", "-m", saved_models["mlp"], "--name", "clf", "--version", "2", str(tmp_path / "serving"))
    assert r.exit_code == 0 and (tmp_path / "serving" / "clf" / "2" / "saved_model.pb").is_file()


def test_export_multi_input_model(saved_models, loaded, tmp_path):
    import tensorflow as tf

    assert _invoke("export", "-m", saved_models["multi"], str(tmp_path / "s")).exit_code == 0
    sig = tf.saved_model.load(str(tmp_path / "s" / "multi" / "1")).signatures["serving_default"]
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 4)).astype("float32"), rng.random((2, 3)).astype("float32")
    out = sig(a=tf.constant(a), b=tf.constant(b))
    expected = loaded["multi"].predict({"a": a, "b": b})
    got = sorted((v.shape[-1], v.numpy()) for v in out.values())
    np.testing.assert_allclose(got[0][1], expected["y2"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got[1][1], expected["y1"], rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ serving subprocesses
def _serve(args: list[str], log, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`mltrail models serve ...` in its own session (so every process it starts can be found)."""
    return subprocess.Popen([sys.executable, "-m", "mltrail.cli", "models", "serve", *args], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _wait_ready(proc: subprocess.Popen, url: str, log_path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            if _get(url, 2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"no answer from {url}:\n{log_path.read_text()}")


def _session_pids(sid: int) -> list[int]:
    """Live (not zombie) processes of session `sid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry))
    return out


def _stop(proc: subprocess.Popen, sig: int) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def cleanup():
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def test_serve_logged_model_then_sigint(sm, tmp_path, cleanup):
    import mltrail

    uri = f"sqlite:///{tmp_path}/m.db"
    mltrail.set_tracking_uri(uri)
    x = sm.random_rows(2, seed=21)
    with mltrail.start_run():
        info = mltrail.tensorflow.log_model(sm.mlp(), name="clf", input_example=x)
    port = sm.free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = _serve(["-m", info.model_uri, "-p", str(port), "--enable-mlserver"], log,
                      {"MLTRAIL_TRACKING_URI": uri})
    cleanup.append(proc)
    base = f"http://127.0.0.1:{port}"
    _wait_ready(proc, base + "/ping", log_path)
    preds = _post_json(base + "/invocations", {"inputs": x.tolist()})["predictions"]
    np.testing.assert_array_equal(np.asarray(preds, np.float32), mltrail.pyfunc.load_model(info.model_uri).predict(x))
    # the V2 name comes from the logged model; --enable-mlserver says V2 is built in
    assert _get(base + "/v2/models/clf/ready")[0] == 200
    assert _stop(proc, signal.SIGINT) == 0
    assert "V2 inference protocol is built into" in log_path.read_text()
    assert sm.port_is_free(port) and _session_pids(proc.pid) == []


def test_serve_two_workers_sigterm_leaves_nothing(saved_models, sm, tmp_path, cleanup):
    port = sm.free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = _serve(["-m", saved_models["mlp"], "-p", str(port), "--workers", "2"], log)
    cleanup.append(proc)
    base = f"http://127.0.0.1:{port}"
    _wait_ready(proc, base + "/ping", log_path)
    for _ in range(4):
        assert len(_post_json(base + "/invocations", {"inputs": sm.random_rows(1).tolist()})["predictions"]) == 1
    workers = [p for p in _session_pids(proc.pid) if p != proc.pid]
    assert len(workers) >= 2, workers
    _stop(proc, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _session_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_pids(proc.pid) == [], log_path.read_text()
    assert sm.port_is_free(port)


# ------------------------------------------------------------------ generate-dockerfile
def test_generate_dockerfile_and_run_its_entry_command(saved_models, loaded, sm, tmp_path, cleanup):
    from mltrail.serving._package import entrypoint_of

    out = tmp_path / "ctx"
    r = _invoke("generate-dockerfile", "-m", saved_models["mlp"], str(out))
    assert r.exit_code == 0, r.output
    text = (out / "Dockerfile").read_text()
    assert text.splitlines()[2].startswith("FROM python:3.")
    assert "EXPOSE 8080" in text and "COPY model /opt/ml/model" in text
    entry = entrypoint_of(str(out / "Dockerfile"))
    assert entry == ["mltrail", "models", "serve", "-m", "/opt/ml/model", "--host", "0.0.0.0", "-p", "8080"]
    assert (out / "model" / "MLmodel").is_file() and (out / "model" / "data" / "model.keras").is_file()
    reqs = (out / "requirements.txt").read_text().split()
    assert any(r.startswith("tensorflow") for r in reqs) and not any(r.startswith("mltrail") for r in reqs)
    assert (out / "mltrail-src" / "pyproject.toml").is_file()  # mltrail is installed from source here
    assert (out / "mltrail-src" / "src" / "mltrail" / "serving" / "app.py").is_file()
    assert "RUN pip install -r /opt/ml/requirements.txt /opt/mltrail-src" in text

    # the entry command, run here against the context's model (port and model path mapped)
    port = sm.free_port()
    args = [str(out / "model") if a == "/opt/ml/model" else str(port) if a == "8080" else a for a in entry[3:]]
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = _serve(args, log)
    cleanup.append(proc)
    _wait_ready(proc, f"http://127.0.0.1:{port}/ping", log_path)
    x = sm.random_rows(1, seed=31)
    got = _post_json(f"http://127.0.0.1:{port}/invocations", {"inputs": x.tolist()})["predictions"]
    np.testing.assert_array_equal(np.asarray(got, np.float32), loaded["mlp"].predict(x))
    assert _stop(proc, signal.SIGTERM) == 0


def test_generate_dockerfile_refuses_a_used_directory(saved_models, tmp_path):
    assert _invoke("generate-dockerfile", "-m", saved_models["mlp"], "-d", str(tmp_path / "c")).exit_code == 0
    r = _invoke("generate-dockerfile", "-m", saved_models["mlp"], "-d", str(tmp_path / "c"))
    assert r.exit_code != 0 and "already" in r.output


def test_serve_refuses_conda_and_bad_uri(tmp_path):
    r = _invoke("serve", "-m", str(tmp_path / "missing"), "--env-manager", "conda")
    assert r.exit_code != 0 and "conda" in r.output
    r = _invoke("serve", "-m", str(tmp_path / "missing"))
    assert r.exit_code != 0 and "RESOURCE_DOES_NOT_EXIST" in r.output


def test_python_dash_m_mltrail_serving_runs_the_models_commands():
    r = subprocess.run([sys.executable, "-m", "mltrail.serving", "serve", "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "--batch-wait-ms" in r.stdout and "--env-manager" in r.stdout
