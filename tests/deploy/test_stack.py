"""The shipped deployment, run for real: Debian's nginx with deploy/nginx/mltrail.conf in front of three
`mltrail server` replicas on one PostgreSQL database and an S3-compatible server (moto's). Through nginx:
the seed scripts, the real `mlflow` 3.17.2 client logging and reading back params, metrics, artifacts and
a model, our own client, and the UI in Chromium. nginx's access log (`upstream=`) shows that consecutive
requests landed on different replicas.

One stack for the module (tests/deploy/stack.py). Skipped without nginx (failed with MLTRAIL_REQUIRE_NGINX=1)
and without PostgreSQL (failed with MLTRAIL_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from stack import Stack, require_nginx, start_stack

from seed_scripts import seed_script

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.tf]



@pytest.fixture(scope="module")
def stack(pg_server, tmp_path_factory):
    require_nginx()
    root = tmp_path_factory.mktemp("stack")
    database = pg_server.create_database()
    st = start_stack(root, database, replicas=3)
    yield st
    st.stop()
    pg_server.drop_database(database.rsplit("/", 1)[1])


def _get(stack: Stack, path: str, **params) -> requests.Response:
    r = requests.get(stack.url + path, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r


def test_health_of_nginx_and_of_each_replica(stack):
    assert requests.get(stack.url + "/health", timeout=10).text.strip() == "OK"
    for url in stack.replica_urls:
        assert requests.get(url + "/health", timeout=10).text.strip() == "OK"


def test_consecutive_requests_land_on_every_replica(stack):
    before = len(stack.upstreams())
    for _ in range(9):
        _get(stack, "/api/2.0/mlflow/experiments/search", max_results=1)
    hits = stack.upstreams()[before:]
    assert len(hits) == 9
    assert set(hits) == {u.removeprefix("http://") for u in stack.replica_urls}


def test_a_write_through_nginx_is_read_from_every_replica(stack):
    r = requests.post(stack.url + "/api/2.0/mlflow/experiments/create", json={"name": "through-nginx"}, timeout=30)
    assert r.status_code == 200, r.text
    exp_id = r.json()["experiment_id"]
    for url in stack.replica_urls:
        got = requests.get(url + "/api/2.0/mlflow/experiments/get-by-name",
                           params={"experiment_name": "through-nginx"}, timeout=30)
        assert got.status_code == 200, got.text
        assert got.json()["experiment"]["experiment_id"] == exp_id


MLFLOW_SCRIPT = r'''
import json, os, sys, tempfile
import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient

class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input * 2

mlflow.set_experiment("stack-mlflow")
with mlflow.start_run() as run:
    mlflow.log_params({"lr": 0.01, "layers": 3})
    for step in range(20):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("logged through nginx\n" * 1000)
    mlflow.log_artifact(os.path.join(d, "notes.txt"), artifact_path="docs")
    info = mlflow.pyfunc.log_model(name="model", python_model=Doubler())
c = MlflowClient()
r = c.get_run(run.info.run_id)
hist = c.get_metric_history(run.info.run_id, "loss")
local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="docs/notes.txt")
model = mlflow.pyfunc.load_model(info.model_uri)
import pandas as pd
pred = model.predict(pd.DataFrame({"x": [1.0, 2.5]}))
print(json.dumps({"run_id": run.info.run_id, "params": r.data.params, "loss_points": len(hist),
                  "last_loss": r.data.metrics["loss"], "artifact": open(local).read().count("nginx"),
                  "artifact_uri": r.info.artifact_uri, "pred": pred["x"].tolist(),
                  "listing": sorted(f.path for f in c.list_artifacts(run.info.run_id))}))
'''


def _run(python: str, script: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([python, str(script)], cwd=script.parent, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, f"{script.name} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def _s3_keys(stack: Stack, prefix: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=stack.s3.endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.s3.bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_mlflow_client_logs_and_reads_back_through_nginx(stack, mlflow_python, tmp_path):
    script = tmp_path / "log_and_read.py"
    script.write_text(MLFLOW_SCRIPT)
    before = len(stack.upstreams())
    out = json.loads(_run(str(mlflow_python), script, stack.client_env()).splitlines()[-1])
    assert out["params"] == {"lr": "0.01", "layers": "3"}
    assert out["loss_points"] == 20 and out["last_loss"] == pytest.approx(1 / 20)
    assert out["artifact"] == 1000
    assert out["pred"] == [2.0, 5.0]
    assert out["artifact_uri"].startswith("mlflow-artifacts:/")  # clients upload through the proxy
    assert out["listing"] == ["docs"]
    # the one script's requests were served by all three replicas
    assert len(set(stack.upstreams()[before:])) == 3
    # and the artifact is in the S3 bucket, under the run
    keys = _s3_keys(stack, "artifacts/")
    assert any(k.endswith(f"{out['run_id']}/artifacts/docs/notes.txt") for k in keys), keys


def test_our_client_through_nginx(stack, tmp_path):
    from mltrail.entities import Metric, Param
    from mltrail.tracking import MlflowClient

    c = MlflowClient(tracking_uri=stack.url)
    exp = c.create_experiment("stack-ours")
    run = c.create_run(exp)
    rid = run.info.run_id
    c.log_batch(rid, metrics=[Metric("acc", i / 10, 1000 + i, i) for i in range(10)], params=[Param("opt", "adam")])
    (tmp_path / "weights.bin").write_bytes(os.urandom(300_000))
    c.log_artifact(rid, str(tmp_path / "weights.bin"))
    c.set_terminated(rid)
    import mltrail

    mltrail.flush()
    got = c.get_run(rid)
    assert got.data.params == {"opt": "adam"} and got.data.metrics["acc"] == pytest.approx(0.9)
    assert [m.step for m in c.get_metric_history(rid, "acc")] == list(range(10))
    dst = c.download_artifacts(rid, "weights.bin", str(tmp_path / "dl"))
    assert Path(dst).read_bytes() == (tmp_path / "weights.bin").read_bytes()
    # every replica sees the run the client wrote through nginx
    for url in stack.replica_urls:
        r = requests.get(url + "/api/2.0/mlflow/runs/get", params={"run_id": rid}, timeout=30)
        assert r.json()["run"]["info"]["status"] == "FINISHED"


# Every seed once, shared between the two clients to keep the module to a few minutes.
@pytest.mark.parametrize(("name", "client"), [
    ("seed_autolog", "mlflow"), ("seed_nested", "mlflow"), ("seed_savedmodel", "mlflow"),
    ("seed_callback", "mltrail"), ("seed_log_model", "mltrail"), ("seed_optuna", "mltrail"),
])
def test_seed_through_nginx(name, client, stack, mlflow_python, tmp_path):
    script = seed_script(name, tmp_path / client, for_mlflow=client == "mlflow")
    if client == "mlflow":
        python, env = str(mlflow_python), stack.client_env(TF_CPP_MIN_LOG_LEVEL="2")
    else:
        python = sys.executable
        env = stack.client_env(TF_CPP_MIN_LOG_LEVEL="2", MLTRAIL_JOURNAL_DIR=str(tmp_path / "journal"))
    assert f"{name}: ok" in _run(python, script, env)


@pytest.mark.browser
def test_ui_run_page_draws_its_chart_through_nginx(stack):
    from browser_support import TIMEOUT_MS, launched_browser

    from mltrail.entities import Metric
    from mltrail.tracking import MlflowClient

    c = MlflowClient(tracking_uri=stack.url)
    run = c.create_run(c.create_experiment("stack-ui"), run_name="charted")
    c.log_batch(run.info.run_id, metrics=[Metric("loss", 1 / (i + 1), 1000 + i, i) for i in range(50)])
    with launched_browser() as browser:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        ctx.set_default_timeout(TIMEOUT_MS)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{stack.url}/runs/{run.info.run_id}")
        assert "charted" in page.content()
        i = page.evaluate("() => window.mltrailCharts.charts.findIndex(c => c.key === 'loss')")
        assert i >= 0
        page.locator(f"#chart-{i}").scroll_into_view_if_needed()
        page.wait_for_function("""(i) => { const d = document.querySelector(`.plot[data-index="${i}"]`);
            return d && +d.getAttribute('data-series') === 1 && +(d.getAttribute('data-rendered') || 0) > 0; }""",
                               arg=i)
        xs = page.evaluate(f"() => window.mltrailCharts.charts[{i}].plot.data[0]")
        ctx.close()
    assert list(xs) == list(range(50))
    assert errors == [], errors


def test_a_killed_replica_is_passed_over_and_rejoins(stack):
    """Last in the module: it takes a replica away (and brings it back)."""
    stack.kill_replica(2)
    dead = stack.replica_urls[1].removeprefix("http://")
    try:
        before = len(stack.upstreams())
        for _ in range(9):  # every GET answered, by the two live replicas (nginx tries the next one)
            _get(stack, "/api/2.0/mlflow/experiments/search", max_results=1)
        r = requests.post(stack.url + "/api/2.0/mlflow/experiments/create", json={"name": "one-down"}, timeout=30)
        assert r.status_code == 200, r.text  # a refused connection never reached a replica: POSTs go on too
        hits = stack.upstreams()[before:]
        answered = [h.split(", ")[-1] for h in hits]
        assert dead not in answered and len(set(answered)) == 2
    finally:
        stack.start_replica(2)
    before = len(stack.upstreams())
    for _ in range(12):
        _get(stack, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="one-down")
    # nginx puts the replica back once its fail_timeout (10 s) has passed
    deadline = time.monotonic() + 30
    while dead not in stack.upstreams()[before:]:
        assert time.monotonic() < deadline, stack.upstreams()[before:]
        _get(stack, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="one-down")
