"""`--env-manager virtualenv`: the environment spec, and (slow) a real build from a model's requirements
then serving from inside it. The build is cached under ~/.cache/mltrail/envs, so only the first run
pays for installing TensorFlow (about three minutes from the local package index)."""

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

from mltrail.serving import _env


def test_install_spec_swaps_mltrail_for_the_local_project():
    others, mltrail_args = _env.install_spec(["mltrail==0.1.0", "tensorflow-cpu==2.21.0", "numpy==2.0"])
    assert others == ["tensorflow-cpu==2.21.0", "numpy==2.0"]
    source = _env.local_mltrail_source()
    assert source is not None  # this checkout is what the tests run
    assert mltrail_args[-1] == source[0] and os.path.isfile(os.path.join(source[0], "pyproject.toml"))


def test_env_key_follows_the_requirements():
    a = _env.env_key(["numpy==2.0", "keras==3.0"], ["-e", "/src"])
    assert a == _env.env_key(["keras==3.0", "numpy==2.0"], ["-e", "/src"])  # order does not matter
    assert a != _env.env_key(["numpy==2.1", "keras==3.0"], ["-e", "/src"])
    assert a != _env.env_key(["numpy==2.0", "keras==3.0"], ["/src"])


def test_read_requirements_skips_comments(tmp_path):
    (tmp_path / "requirements.txt").write_text("# pinned\nnumpy==2.0\n\nkeras\n")
    assert _env.read_requirements(str(tmp_path)) == ["numpy==2.0", "keras"]
    assert _env.read_requirements(str(tmp_path / "none")) == []


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return [a.decode() for a in fh.read().split(b"\0") if a]


@pytest.mark.tf
@pytest.mark.slow
def test_serve_from_a_virtualenv_built_from_requirements(saved_models, loaded, sm, tmp_path):
    port = sm.free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mltrail.cli", "models", "serve", "-m", saved_models["mlp"],
                                 "-p", str(port), "--env-manager", "virtualenv"], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 540
        while True:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        # the server is the environment's Python running `python -m mltrail.serving serve ...`
        argv = _cmdline(proc.pid)
        assert argv[0].startswith(str(_env.env_root())) and argv[1:3] == ["-m", "mltrail.serving"], argv
        env_dir = os.path.dirname(os.path.dirname(argv[0]))
        assert os.path.isfile(os.path.join(env_dir, _env.READY_MARKER))
        x = sm.random_rows(2, seed=41)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                     data=json.dumps({"inputs": x.tolist()}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            got = json.loads(r.read())["predictions"]
        np.testing.assert_allclose(np.asarray(got, np.float32), loaded["mlp"].predict(x), rtol=1e-6, atol=1e-7)
        # built once: asking again returns the cached environment at once
        assert str(_env.prepare_env(saved_models["mlp"], echo=False)) == argv[0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
