"""`mltrail models build-docker`: the build context and command line it hands to docker (or podman), the
errors when neither can build, MLflow's options, and the image's entry command serving /invocations and V2.

A stand-in `docker` (and `podman`) executable, placed first on PATH, records its arguments and copies the
build context it was run in: it replaces the external tool, not our code. A real image is built only when
a Docker daemon answers here (skipped otherwise: no test needs Docker).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The stand-in: `info` answers per FAKE_<NAME>_INFO; `build` streams three lines, records argv, the
# working directory and a copy of the context under FAKE_RECORD, and exits with FAKE_BUILD_STATUS.
_FAKE_TOOL = '''#!{python}
import json, os, shutil, sys
name = os.path.basename(sys.argv[0]).upper()
if sys.argv[1:2] == ["info"]:
    if os.environ.get(f"FAKE_{{name}}_INFO", "ok") != "ok":
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.", file=sys.stderr)
        sys.exit(1)
    print("Server Version: 99.0")
    sys.exit(0)
if sys.argv[1:2] == ["build"]:
    record = os.environ["FAKE_RECORD"]
    shutil.copytree(os.getcwd(), os.path.join(record, "context"))
    with open(os.path.join(record, "call.json"), "w") as fh:
        json.dump({{"argv": sys.argv, "cwd": os.getcwd(), "tool": name}}, fh)
    for step in ("#1 [internal] load build definition from Dockerfile", "#2 FROM python", "#3 DONE"):
        print(step, flush=True)
    sys.exit(int(os.environ.get("FAKE_BUILD_STATUS", "0")))
sys.exit(2)
'''


def _install_tool(bin_dir: Path, name: str) -> Path:
    path = bin_dir / name
    path.write_text(_FAKE_TOOL.format(python=sys.executable))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    """A models-from-code pyfunc model (no pickle, no TensorFlow): it doubles every input value."""
    import mltrail.pyfunc

    root = tmp_path_factory.mktemp("build-docker-model")
    code = root / "doubler.py"
    code.write_text(textwrap.dedent('''
        import mltrail
        from mltrail.pyfunc import PythonModel


        class Doubler(PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input * 2.0


        mltrail.models.set_model(Doubler())
    '''))
    path = str(root / "doubler")
    mltrail.pyfunc.save_model(path, python_model=str(code), pip_requirements=["numpy"])
    return path


@pytest.fixture
def tools(tmp_path, monkeypatch) -> Path:
    """An empty bin directory alone on PATH (the test installs stand-ins there); records go to tmp_path/record."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "record").mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_RECORD", str(tmp_path / "record"))
    return bin_dir


def _invoke(*args: str):
    from click.testing import CliRunner

    from mltrail.serving.cli import models

    return CliRunner().invoke(models, ["build-docker", *args], catch_exceptions=False)


def _recorded(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "record" / "call.json").read_text())


def test_builds_the_generated_context_with_docker(model_dir, tools, tmp_path):
    docker = _install_tool(tools, "docker")
    r = _invoke("-m", model_dir, "-n", "doubler:1")
    assert r.exit_code == 0, r.output
    call = _recorded(tmp_path)
    # MLflow's command line, run in the context directory
    assert call["argv"] == [str(docker), "build", "-t", "doubler:1", "-f", "Dockerfile", "."]
    assert not os.path.exists(call["cwd"]), "the temporary build context is removed after the build"
    # the tool's output streamed through, then where to run the image
    assert "#2 FROM python" in r.stderr and "with `" + str(docker) + " build -t doubler:1" in r.stderr
    assert "docker run -p 5001:8080 doubler:1" in r.stdout

    ctx = tmp_path / "record" / "context"
    assert sorted(p.name for p in ctx.iterdir()) == ["Dockerfile", "mltrail-src", "model", "requirements.txt"]
    assert (ctx / "model" / "MLmodel").is_file() and (ctx / "model" / "doubler.py").is_file()
    assert (ctx / "mltrail-src" / "src" / "mltrail" / "serving" / "app.py").is_file()
    assert (ctx / "requirements.txt").read_text().split() == ["numpy"]
    lines = (ctx / "Dockerfile").read_text().splitlines()
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in lines
    assert "COPY model /opt/ml/model" in lines and "EXPOSE 8080" in lines
    assert "RUN pip install -r /opt/ml/requirements.txt /opt/mltrail-src" in lines
    assert lines[-1] == ('ENTRYPOINT ["mltrail", "models", "serve", "-m", "/opt/ml/model", "--host", "0.0.0.0", '
                         '"-p", "8080"]')


def test_mlflow_default_name_base_image_and_enable_mlserver(model_dir, tools, tmp_path):
    _install_tool(tools, "docker")
    r = _invoke("--model-uri", model_dir, "--base-image", "python:3.11-bookworm", "--enable-mlserver",
                "--install-mlflow", "--env-manager", "local", "--install-java", "false")
    assert r.exit_code == 0, r.output
    assert _recorded(tmp_path)["argv"][2:4] == ["-t", "mlflow-pyfunc-servable"]
    text = (tmp_path / "record" / "context" / "Dockerfile").read_text()
    assert "FROM python:3.11-bookworm" in text
    assert text.rstrip().endswith('"-p", "8080", "--enable-mlserver"]')


def test_without_a_model_uri_the_image_serves_a_mounted_model(tools, tmp_path):
    _install_tool(tools, "docker")
    r = _invoke("-n", "generic")
    assert r.exit_code == 0, r.output
    assert "-v /path/to/model:/opt/ml/model" in r.stdout
    ctx = tmp_path / "record" / "context"
    assert not (ctx / "model").exists()
    text = (ctx / "Dockerfile").read_text()
    assert "COPY model" not in text
    # the mounted model's requirements are unknown when building: the container builds them on start
    assert text.rstrip().endswith('"-p", "8080", "--env-manager", "virtualenv"]')


def test_mlflow_home_installs_that_mltrail_and_a_wrong_one_is_named(model_dir, tools, tmp_path):
    _install_tool(tools, "docker")
    assert _invoke("-m", model_dir, "--mlflow-home", str(ROOT)).exit_code == 0
    assert (tmp_path / "record" / "context" / "mltrail-src" / "pyproject.toml").is_file()
    r = _invoke("-m", model_dir, "--mlflow-home", str(tmp_path))
    assert r.exit_code != 0
    assert f"The mltrail home {str(tmp_path)!r} is not an mltrail project" in r.output


def test_falls_back_to_podman_when_the_docker_daemon_does_not_answer(model_dir, tools, tmp_path, monkeypatch):
    _install_tool(tools, "docker")
    podman = _install_tool(tools, "podman")
    monkeypatch.setenv("FAKE_DOCKER_INFO", "down")
    r = _invoke("-m", model_dir, "-n", "doubler")
    assert r.exit_code == 0, r.output
    assert _recorded(tmp_path)["argv"][:2] == [str(podman), "build"]


def test_no_docker_daemon_and_no_podman_is_one_clear_error(model_dir, tools, tmp_path, monkeypatch):
    docker = _install_tool(tools, "docker")
    monkeypatch.setenv("FAKE_DOCKER_INFO", "down")
    r = _invoke("-m", model_dir)
    assert r.exit_code == 1
    assert "Cannot build a Docker image: neither docker nor podman can build here." in r.output
    assert f"docker: installed at {docker}, but `docker info` failed: Cannot connect to the Docker daemon" in r.output
    assert "podman: not installed (not on PATH)" in r.output
    assert "mltrail models generate-dockerfile" in r.output
    assert not (tmp_path / "record" / "call.json").exists()


def test_neither_installed_names_both(model_dir, tools):
    r = _invoke("-m", model_dir)
    assert r.exit_code == 1
    assert "docker: not installed (not on PATH)" in r.output and "podman: not installed" in r.output


def test_a_failed_build_fails_the_command(model_dir, tools, monkeypatch):
    _install_tool(tools, "docker")
    monkeypatch.setenv("FAKE_BUILD_STATUS", "3")
    r = _invoke("-m", model_dir, "-n", "doubler")
    assert r.exit_code == 1
    assert "Docker build failed: " in r.output and "exited with status 3" in r.output


def test_refused_options_say_why(model_dir, tools, tmp_path):
    _install_tool(tools, "docker")
    r = _invoke("-m", model_dir, "--install-java")
    assert r.exit_code == 2 and "--install-java is not supported by mltrail" in r.output
    r = _invoke("-m", model_dir, "--env-manager", "conda")
    assert r.exit_code == 2 and "--env-manager conda is not supported" in r.output
    r = _invoke("-m", str(tmp_path / "missing"))
    assert r.exit_code == 1 and "RESOURCE_DOES_NOT_EXIST" in r.output
    assert not (tmp_path / "record" / "call.json").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"no answer from {url}:\n{log.read_text()}")


def test_the_image_entry_command_serves_invocations_and_v2(model_dir, tools, tmp_path, monkeypatch):
    """The ENTRYPOINT of the context docker received, run here on the context's model (path and port mapped)."""
    from mltrail.serving._package import entrypoint_of

    _install_tool(tools, "docker")
    assert _invoke("-m", model_dir, "-n", "doubler").exit_code == 0
    ctx = tmp_path / "record" / "context"
    entry = entrypoint_of(str(ctx / "Dockerfile"))
    assert entry[:3] == ["mltrail", "models", "serve"]
    port = _free_port()
    args = [str(ctx / "model") if a == "/opt/ml/model" else str(port) if a == "8080" else a for a in entry[3:]]
    monkeypatch.undo()  # the server runs with the real PATH
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "mltrail.cli", "models", "serve", *args], stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(proc, f"{base}/ping", log)
        got = _post(f"{base}/invocations", {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.5]]}})
        assert got == {"predictions": [{"a": 2.0, "b": 5.0}]}
        v2 = _post(f"{base}/v2/models/model/infer", {"inputs": [
            {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [3.0, 0.5, 1.0, -1.0]}]})
        assert v2["model_name"] == "model"
        assert [(o["shape"], o["data"]) for o in v2["outputs"]] == [([2, 2], [6.0, 1.0, 2.0, -2.0])], v2
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _docker_daemon_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
def test_a_real_image_builds_and_answers_ping(model_dir, tmp_path):
    """Only where a Docker daemon answers (not on this project's CI machine): build, run, /ping, /invocations."""
    if not _docker_daemon_answers():
        pytest.skip("no Docker daemon answers here (`docker info` fails or docker is not installed)")
    name = f"mltrail-test-{os.getpid()}"
    r = _invoke("-m", model_dir, "-n", name)
    assert r.exit_code == 0, r.output
    port = _free_port()
    container = subprocess.run(["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:8080", name],
                               capture_output=True, text=True, check=True).stdout.strip()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        got = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_split": {"columns": ["a"], "data": [[2.0]]}})
        assert got == {"predictions": [{"a": 4.0}]}
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)


def test_python_api_builds_like_the_command(model_dir, tools, tmp_path, monkeypatch, capfd):
    import mltrail

    docker = _install_tool(tools, "docker")
    mltrail.models.build_docker(model_uri=model_dir, name="py-api", base_image="python:3.11-slim")
    assert _recorded(tmp_path)["argv"] == [str(docker), "build", "-t", "py-api", "-f", "Dockerfile", "."]
    assert "#2 FROM python" in capfd.readouterr().err
    assert "FROM python:3.11-slim" in (tmp_path / "record" / "context" / "Dockerfile").read_text()

    monkeypatch.setenv("FAKE_BUILD_STATUS", "1")
    with pytest.raises(mltrail.MlflowException, match="Docker build failed: .* exited with status 1"):
        mltrail.models.build_docker(model_uri=model_dir)
    with pytest.raises(mltrail.MlflowException, match="install_java=True is not supported"):
        mltrail.models.build_docker(model_uri=model_dir, install_java=True)
    with pytest.raises(mltrail.MlflowException, match="env_manager 'conda' is not supported"):
        mltrail.models.build_docker(model_uri=model_dir, env_manager="conda")
