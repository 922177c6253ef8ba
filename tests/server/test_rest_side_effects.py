"""What MLflow's server does beyond storing a request, over HTTP: a version with a logged model is recorded in the
model's `mlflow.modelVersions` tag, log-inputs keeps model inputs, a logged model without a name gets one,
log-model keeps MLflow's summary in `mlflow.log-model.history`; version sources (copies of versions, local paths
with `..`) and the artifact locations the server refuses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import time

import pytest

A = "/api/2.0/mlflow"


def ok(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()


def refused(resp, code="INVALID_PARAMETER_VALUE", status=400) -> str:
    assert (resp.status_code, resp.json()["error_code"]) == (status, code), resp.text
    return resp.json()["message"]


def new_run(api, exp_id="0"):
    return ok(api("POST", f"{A}/runs/create", json={"experiment_id": exp_id, "start_time": int(time.time() * 1000)}))[
        "run"]["info"]


def new_model(api, run_id=None, **kw):
    body = {"experiment_id": "0", **({"source_run_id": run_id} if run_id else {}), **kw}
    return ok(api("POST", f"{A}/logged-models", json=body))["model"]["info"]


def model_tags(api, model_id):
    info = ok(api("GET", f"{A}/logged-models/{model_id}"))["model"]["info"]
    return {t["key"]: t["value"] for t in info.get("tags", [])}


def run_tags(api, run_id):
    run = ok(api("GET", f"{A}/runs/get", params={"run_id": run_id}))["run"]
    return {t["key"]: t["value"] for t in run["data"]["tags"]}


def create_version(api, name, source, **kw):
    return api("POST", f"{A}/model-versions/create", json={"name": name, "source": source, **kw})


# ---------------------------------------------------------------- model-versions/create with a logged model
def test_a_version_with_a_model_id_is_recorded_on_the_logged_model(api):
    # MLflow: handlers.py _create_model_version -> tracking_store.set_model_versions_tags
    run = new_run(api)
    model = new_model(api, run["run_id"], name="net")
    ok(api("POST", f"{A}/registered-models/create", json={"name": "clf"}))
    mv = ok(create_version(api, "clf", f"models:/{model['model_id']}", model_id=model["model_id"],
                           run_id=run["run_id"]))["model_version"]
    assert mv["version"] == "1" and mv["model_id"] == model["model_id"]
    assert model_tags(api, model["model_id"])["mlflow.modelVersions"] == '[{"name": "clf", "version": "1"}]'
    ok(create_version(api, "clf", f"models:/{model['model_id']}", model_id=model["model_id"]))
    expected = [{"name": "clf", "version": "1"}, {"name": "clf", "version": "2"}]
    assert json.loads(model_tags(api, model["model_id"])["mlflow.modelVersions"]) == expected
    # MLflow's register_model then appends the version itself (tracking/_model_registry/fluent.py): still once
    doubled = json.dumps([*expected, {"name": "clf", "version": "2"}])
    ok(api("PATCH", f"{A}/logged-models/{model['model_id']}/tags",
           json={"tags": [{"key": "mlflow.modelVersions", "value": doubled}]}))
    assert json.loads(model_tags(api, model["model_id"])["mlflow.modelVersions"]) == expected
    # a version from run artifacts names no logged model: nothing recorded
    ok(create_version(api, "clf", f"runs:/{run['run_id']}/legacy", run_id=run["run_id"]))
    assert json.loads(model_tags(api, model["model_id"])["mlflow.modelVersions"]) == expected


# ---------------------------------------------------------------- runs/log-inputs with models
def test_log_inputs_keeps_model_inputs(api):
    # MLflow: handlers.py _log_inputs (models: [{model_id}]), store _get_model_inputs -> run.inputs.model_inputs
    run_id = new_run(api)["run_id"]
    a, b = new_model(api)["model_id"], new_model(api)["model_id"]
    ds = {"name": "d", "digest": "abc", "source_type": "local", "source": "{}"}
    ok(api("POST", f"{A}/runs/log-inputs", json={"run_id": run_id, "models": [{"model_id": a}],
                                                 "datasets": [{"tags": [], "dataset": ds}]}))
    ok(api("POST", f"{A}/runs/log-inputs", json={"run_id": run_id, "models": [{"model_id": b}, {"model_id": a}]}))
    inputs = ok(api("GET", f"{A}/runs/get", params={"run_id": run_id}))["run"]["inputs"]
    assert sorted(m["model_id"] for m in inputs["model_inputs"]) == sorted([a, b])
    assert [d["dataset"]["digest"] for d in inputs["dataset_inputs"]] == ["abc"]
    searched = ok(api("POST", f"{A}/runs/search", json={"experiment_ids": ["0"]}))["runs"]
    assert len(next(r for r in searched if r["info"]["run_id"] == run_id)["inputs"]["model_inputs"]) == 2
    for bad in ([{"model_id": ""}], [{}], ["m-1"]):
        refused(api("POST", f"{A}/runs/log-inputs", json={"run_id": run_id, "models": bad}))


# ---------------------------------------------------------------- logged-models without a name
def test_a_logged_model_without_a_name_gets_a_generated_one(api):
    # MLflow: handlers.py _create_logged_model (name or None) -> store: name or _generate_random_name()
    names = {new_model(api)["name"], new_model(api, name="")["name"], new_model(api)["name"]}
    assert len(names) == 3 and all(re.fullmatch(r"[a-z]+-[a-z]+-\d+", n) for n in names), names
    assert new_model(api, name="given")["name"] == "given"


# ---------------------------------------------------------------- runs/log-model
def test_log_model_keeps_mlflows_summary_in_the_history_tag(api):
    # MLflow: handlers.py _log_model -> store.record_logged_model(run_id, Model.from_dict(model)), which keeps
    # Model.get_tags_dict(): run_id, artifact_path, utc_time_created, model_uuid, flavors without "config"
    run_id = new_run(api)["run_id"]
    model = {"run_id": run_id, "artifact_path": "model", "utc_time_created": "2024-05-01 10:00:00.000000",
             "flavors": {"python_function": {"loader_module": "x", "config": {"a": 1}}, "keras": {"v": "3"}},
             "model_uuid": "abc", "signature": {"inputs": "[]"}, "mlflow_version": "3.1", "model_id": "m-1"}
    ok(api("POST", f"{A}/runs/log-model", json={"run_id": run_id, "model_json": json.dumps(model)}))
    bare = {"run_id": None, "artifact_path": None, "utc_time_created": 12345, "flavors": None}
    ok(api("POST", f"{A}/runs/log-model", json={"run_id": run_id, "model_json": json.dumps(bare)}))
    # byte for byte what MLflow 3.17.2 stores for these two (json.dumps of the list)
    assert run_tags(api, run_id)["mlflow.log-model.history"] == (
        f'[{{"run_id": "{run_id}", "artifact_path": "model", "utc_time_created": "2024-05-01 10:00:00.000000", '
        '"model_uuid": "abc", "flavors": {"python_function": {"loader_module": "x"}, "keras": {"v": "3"}}}, '
        '{"utc_time_created": "12345", "model_uuid": null, "flavors": {}}]')
    missing = refused(api("POST", f"{A}/runs/log-model", json={"run_id": run_id,
                                                               "model_json": '{"artifact_path": "m"}'}))
    assert missing == "Model json is missing mandatory fields: {'flavors', 'run_id', 'utc_time_created'}"
    assert refused(api("POST", f"{A}/runs/log-model", json={"run_id": run_id, "model_json": "{nope"})).startswith(
        "Malformed model info. \n {nope \n is not a valid JSON.")
    ok(api("POST", f"{A}/runs/delete", json={"run_id": run_id}))
    message = refused(api("POST", f"{A}/runs/log-model", json={"run_id": run_id, "model_json": json.dumps(model)}),
                      "INVALID_STATE")
    assert message == f"The run {run_id} must be in the 'active' state. Current state is deleted."


# ---------------------------------------------------------------- sources
def test_a_registered_version_is_a_source_copy_model_version(api):
    # MLflow: handlers.py _resolve_registered_model_source_lineage; AbstractStore.copy_model_version sends
    # source=models:/<name>/<version> with the version's run_id, tags, run_link, description and model_id
    run = new_run(api)
    model = new_model(api, run["run_id"], name="net")
    ok(api("POST", f"{A}/registered-models/create", json={"name": "src"}))
    src = ok(create_version(api, "src", f"models:/{model['model_id']}", model_id=model["model_id"],
                            run_id=run["run_id"]))["model_version"]
    ok(api("POST", f"{A}/registered-models/create", json={"name": "dst"}))
    copy = ok(create_version(api, "dst", "models:/src/1", run_id=src["run_id"], model_id=src["model_id"],
                             tags=[{"key": "k", "value": "v"}], description="copied"))["model_version"]
    assert (copy["source"], copy["run_id"], copy["model_id"]) == ("models:/src/1", run["run_id"], model["model_id"])
    uri = ok(api("GET", f"{A}/model-versions/get-download-uri", params={"name": "dst", "version": "1"}))
    assert uri["artifact_uri"] == model["artifact_uri"]
    assert json.loads(model_tags(api, model["model_id"])["mlflow.modelVersions"]) == [
        {"name": "src", "version": "1"}, {"name": "dst", "version": "1"}]
    ok(api("POST", f"{A}/registered-models/alias", json={"name": "src", "alias": "champion", "version": "1"}))
    by_alias = ok(create_version(api, "dst", "models:/src@champion"))["model_version"]
    assert (by_alias["source"], by_alias["model_id"]) == ("models:/src/1", model["model_id"])
    other = new_run(api)["run_id"]
    message = refused(create_version(api, "dst", "models:/src/1", run_id=other))
    assert message.startswith("Invalid model version source: 'models:/src/1'. The run_id and model_id request "
                              "parameters must match the referenced model version.")
    assert refused(create_version(api, "dst", "models:/src/5")).startswith(
        "Invalid model version source: 'models:/src/5'. Model Version (name=src, version=5) not found")


def test_a_local_source_with_dotdot_inside_the_run_is_accepted(api, tmp_path):
    # MLflow: handlers.py _validate_source_run resolves a local path, then checks containment
    location = tmp_path / "server" / "artifacts" / "local"
    exp_id = ok(api("POST", f"{A}/experiments/create", json={"name": "local", "artifact_location": str(location)}))[
        "experiment_id"]
    run = new_run(api, exp_id)
    root = run["artifact_uri"]
    ok(api("POST", f"{A}/registered-models/create", json={"name": "m"}))
    mv = ok(create_version(api, "m", f"{root}/model/..", run_id=run["run_id"]))["model_version"]
    assert mv["source"] == root
    message = refused(create_version(api, "m", f"{root}/model/../../x", run_id=run["run_id"]))
    assert message.startswith(f"Invalid model version source: '{root}/model/../../x'. To use a local path as a "
                              "model version source, the run_id request parameter has to be specified")
    # the proxy's URIs are not local paths: '..' there is refused, as MLflow refuses it
    proxied = new_run(api)
    source = f"{proxied['artifact_uri']}/model/.."
    assert refused(create_version(api, "m", source, run_id=proxied["run_id"])) == (
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, local file path, ftp, "
        "objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references "
        "present. Please provide an absolute path.")


def test_refused_experiment_locations_say_why_and_how(api, tmp_path):
    # MLflow accepts these (a relative path resolves against the server's working directory); we refuse them
    for location in ("relative/dir", str(tmp_path / "not-a-root")):
        message = refused(api("POST", f"{A}/experiments/create", json={"name": f"e-{len(location)}",
                                                                        "artifact_location": location}))
        assert "--default-artifact-root" in message, message


# ---------------------------------------------------------------- MLflow's own client against our server

MLFLOW_CLIENT = textwrap.dedent("""
    import json, sys
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelInput

    mlflow.set_tracking_uri(sys.argv[1])
    client = MlflowClient()
    run = client.create_run("0")
    model = client.create_logged_model("0", source_run_id=run.info.run_id)
    mv = mlflow.register_model(f"models:/{model.model_id}", "clf")
    copy = client.copy_model_version(f"models:/clf/{mv.version}", "clf-prod")
    client.log_inputs(run.info.run_id, models=[LoggedModelInput(model.model_id)])
    print(json.dumps({
        "name": model.name, "versions": client.get_logged_model(model.model_id).tags["mlflow.modelVersions"],
        "copy": [copy.name, copy.version, copy.source, copy.model_id],
        "model_inputs": [m.model_id for m in client.get_run(run.info.run_id).inputs.model_inputs],
        "model_id": model.model_id,
    }))
""")


@pytest.mark.slow
def test_mlflows_client_sees_mlflows_side_effects(server_uri, api, tmp_path, mlflow_python):
    python = str(mlflow_python)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    for var in ("MLTRAIL_TRACKING_URI", "PYTHONPATH", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    proc = subprocess.run([python, "-c", MLFLOW_CLIENT, server_uri], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", out["name"])
    # the server recorded each version once, though MLflow's register_model appends it again
    assert json.loads(out["versions"]) == [{"name": "clf", "version": "1"}, {"name": "clf-prod", "version": "1"}]
    assert out["copy"][:3] == ["clf-prod", "1", "models:/clf/1"]  # MLflow's client does not read model_id back
    copied = ok(api("GET", f"{A}/model-versions/get", params={"name": "clf-prod", "version": "1"}))["model_version"]
    assert copied["model_id"] == out["model_id"]
    assert out["model_inputs"] == [out["model_id"]]
