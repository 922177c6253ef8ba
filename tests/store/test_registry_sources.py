"""Model version sources (normalised, then checked for containment), copies of registered versions, and the
side effects MLflow's server has: the logged model's `mlflow.modelVersions` tag, run model inputs, generated
logged model names, the run's `mlflow.log-model.history` tag. On every store: SQLite, PostgreSQL and our REST
client talking to a real server (`store` fixture)."""

from __future__ import annotations

import inspect
import json
import os
import re
import time

import pytest

import mltrail
from mltrail.entities import LoggedModelInput, LoggedModelOutput, RunTag
from mltrail.errors import InvalidParameterValue, InvalidState, MltrailException, ResourceDoesNotExist

# MLflow's words (mlflow/server/handlers.py), the first sentence of each refusal after the source
RELATIVE = ("If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, "
            "an absolute path must be provided without relative path references present. Please provide an "
            "absolute path.")  # _validate_non_local_source_contains_relative_paths


def must_identify(id_name: str) -> str:  # handlers.py _raise_invalid_model_version_source
    return f"The {id_name} request parameter must identify the resource that contains the source."


def local_path(id_name: str) -> str:  # handlers.py _validate_source_run / _validate_source_model
    return (f"To use a local path as a model version source, the {id_name} request parameter has to be specified "
            f"and the local path has to be contained within the artifact directory of the run specified by the "
            f"{id_name}.")


def now() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def local_exp(store, tmp_path):
    """An experiment whose artifacts are a local folder (under the test server's artifact root too)."""
    location = tmp_path / "server" / "artifacts" / "local"
    location.mkdir(parents=True)
    return store.create_experiment("local", str(location))


def new_run(store, exp_id="0"):
    return store.create_run(exp_id, "tester", now(), [], None)


def refused(store, source, **kw) -> str:
    with pytest.raises(InvalidParameterValue) as e:
        store.create_model_version("m", source, **kw)
    return e.value.message


# ---------------------------------------------------------------- local sources: normalise, then check containment
def test_a_local_source_resolving_inside_the_run_is_accepted(store, local_exp):
    # MLflow: handlers.py _validate_source_run resolves a local source, then checks it is inside the run's artifacts
    store.create_registered_model("m")
    run = new_run(store, local_exp)
    rid, root = run.info.run_id, run.info.artifact_uri
    assert store.create_model_version("m", f"{root}/model/..", run_id=rid).source == root  # stored normalised
    assert store.create_model_version("m", f"{root}/a/./../model", run_id=rid).source == f"{root}/model"
    assert store.create_model_version("m", f"file://{root}/model/../model2", run_id=rid).source == f"{root}/model2"
    assert store.get_model_version_download_uri("m", 1) == root
    # the same with a logged model's artifacts (handlers.py _validate_source_model)
    lm = store.create_logged_model(local_exp, "net", rid)
    mv = store.create_model_version("m", f"{lm.artifact_location}/sub/..", model_id=lm.model_id)
    assert (mv.source, mv.model_id, mv.run_id) == (lm.artifact_location, lm.model_id, rid)


def test_a_local_source_resolving_outside_is_refused(store, local_exp, tmp_path):
    store.create_registered_model("m")
    run, other = new_run(store, local_exp), new_run(store, local_exp)
    rid, root = run.info.run_id, run.info.artifact_uri
    for source in (f"{root}/..", f"{root}/model/../..", f"{root}/../../{other.info.run_id}/artifacts",
                   f"{root}/../artifacts-not-mine/model", f"file://{root}/model/../../../../etc",
                   f"{root}/{'../' * 40}etc/passwd"):
        message = refused(store, source, run_id=rid)
        assert message.startswith(f"Invalid model version source: '{source}'. {local_path('run_id')}"), message
    lm = store.create_logged_model(local_exp, "net", rid)
    message = refused(store, f"{lm.artifact_location}/../../x", model_id=lm.model_id)
    assert local_path("model_id") in message
    # without the run or model that holds it, a path with '..' is not resolved at all
    assert "'..'" in refused(store, f"{root}/model/..")
    assert store.search_model_versions("name = 'm'") == []


def test_a_symlink_out_of_the_run_artifacts_is_refused(store, local_exp, tmp_path):
    # MLflow resolves local sources with Path.resolve(), which follows symlinks
    store.create_registered_model("m")
    run = new_run(store, local_exp)
    root = run.info.artifact_uri
    os.makedirs(root)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", os.path.join(root, "link"))
    assert local_path("run_id") in refused(store, f"{root}/link/model", run_id=run.info.run_id)
    os.makedirs(os.path.join(root, "real"))
    os.symlink(os.path.join(root, "real"), os.path.join(root, "inner"))  # staying inside is fine
    assert store.create_model_version("m", f"{root}/inner/model", run_id=run.info.run_id).version == 1


def test_relative_references_in_other_sources_are_refused_with_mlflows_words(store):
    store.create_registered_model("m")
    run = new_run(store)
    rid = run.info.run_id
    for source, kw in [("s3://bucket/0/x/../y", {"run_id": rid}), (f"runs:/{rid}/model/../x", {}),
                       (f"runs:/{rid}/../other", {}), ("mlflow-artifacts:/0/a/../b", {"run_id": rid}),
                       ("http://host/api/2.0/mlflow-artifacts/artifacts/0/../../x", {"run_id": rid})]:
        assert refused(store, source, **kw) == f"Invalid model version source: '{source}'. {RELATIVE}"


# ---------------------------------------------------------------- models:/<name>/<version>: copies of versions
def test_a_registered_version_is_a_source(store):
    # MLflow: handlers.py _resolve_registered_model_source_lineage, AbstractStore.copy_model_version
    store.create_registered_model("src")
    run = new_run(store)
    rid = run.info.run_id
    src = store.create_model_version("src", f"runs:/{rid}/model", run_id=rid, tags={"t": "1"}, description="d")
    store.create_model_version("src", f"runs:/{rid}/model2", run_id=rid)
    store.set_registered_model_alias("src", "champion", 1)
    store.create_registered_model("dst")
    copy = store.create_model_version("dst", "models:/src/1", run_id=rid, tags={"t": "1"}, description="d")
    assert (copy.version, copy.source, copy.run_id, copy.tags, copy.model_id) == (1, "models:/src/1", rid,
                                                                                 {"t": "1"}, None)
    assert store.get_model_version_download_uri("dst", 1) == store.get_model_version_download_uri("src", 1)
    assert store.create_model_version("dst", "models:/src@champion").source == "models:/src/1"
    by_latest = store.create_model_version("dst", "models:/src/latest")
    assert (by_latest.source, by_latest.run_id) == ("models:/src/2", rid)  # the run comes with the version
    store.transition_model_version_stage("src", 1, "Staging")
    assert store.create_model_version("dst", "models:/src/staging").source == "models:/src/1"
    assert src.version == 1


def test_a_registered_source_must_exist_and_match_the_ids_given(store):
    store.create_registered_model("src")
    store.create_registered_model("m")
    run, other = new_run(store), new_run(store)
    store.create_model_version("src", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    cases = {
        ("models:/src/1", other.info.run_id, None):
            "The run_id and model_id request parameters must match the referenced model version.",
        ("models:/src/1", None, "m-0123456789abcdef0123456789abcdef"):
            "The run_id and model_id request parameters must match the referenced model version.",
        ("models:/src/9", None, None): "Model Version (name=src, version=9) not found.",
        ("models:/nope/1", None, None): "Registered Model with name=nope not found.",
        ("models:/src@gone", None, None): "Registered model alias gone not found.",
        ("models:/src/Production", None, None): "No versions of model with name 'src' and stage 'Production' found.",
        ("models://other-registry/src/1", None, None): "Registered model sources must use the active model registry.",
        ("models:/src/1/extra", None, None): "A models: source must be",
    }
    for (source, run_id, model_id), words in cases.items():
        message = refused(store, source, run_id=run_id, model_id=model_id)
        assert message.startswith(f"Invalid model version source: '{source}'. {words}"), message


def test_client_copy_model_version(store_uri):
    # MLflow: MlflowClient.copy_model_version(src_model_uri, dst_name)
    params = list(inspect.signature(mltrail.MlflowClient.copy_model_version).parameters)
    assert params == ["self", "src_model_uri", "dst_name"]
    client = mltrail.MlflowClient(store_uri)
    exp_id = client.create_experiment("copies")
    run = client.create_run(exp_id)
    lm = client.create_logged_model(exp_id, "net", run.info.run_id)
    client.create_registered_model("src")
    src = client.create_model_version("src", f"models:/{lm.model_id}", run_id=run.info.run_id, tags={"k": "v"},
                                      run_link="http://x", description="first", model_id=lm.model_id)
    copy = client.copy_model_version("models:/src/1", "dst")  # "dst" is created
    assert (copy.name, copy.version, copy.source) == ("dst", 1, "models:/src/1")
    assert (copy.run_id, copy.model_id, copy.tags, copy.run_link, copy.description) == (
        src.run_id, lm.model_id, {"k": "v"}, "http://x", "first")
    assert client.copy_model_version("models:/src/latest", "dst").version == 2
    assert client.get_model_version_download_uri("dst", 2) == lm.artifact_location
    recorded = json.loads(client.get_logged_model(lm.model_id).tags["mlflow.modelVersions"])
    assert recorded == [{"name": "src", "version": "1"}, {"name": "dst", "version": "1"},
                        {"name": "dst", "version": "2"}]
    with pytest.raises(InvalidParameterValue, match=r"^Unsupported source model URI: 'runs:/x/y'\. The "):
        client.copy_model_version("runs:/x/y", "dst")
    with pytest.raises(MltrailException, match=r"^Failed to fetch model version from source model URI: "
                                               r"'models:/src/7'\. Error: "):
        client.copy_model_version("models:/src/7", "dst")


# ---------------------------------------------------------------- the logged model's mlflow.modelVersions tag
def test_a_version_with_a_logged_model_is_recorded_on_it_once(store):
    # MLflow: handlers.py _create_model_version -> AbstractStore.set_model_versions_tags
    run = new_run(store)
    lm = store.create_logged_model("0", "net", run.info.run_id)
    store.create_registered_model("m")
    store.create_registered_model("n")

    def recorded():
        return json.loads(store.get_logged_model(lm.model_id).tags["mlflow.modelVersions"])

    store.create_model_version("m", f"models:/{lm.model_id}", model_id=lm.model_id)
    assert recorded() == [{"name": "m", "version": "1"}]
    raw = store.get_logged_model(lm.model_id).tags["mlflow.modelVersions"]
    assert raw == '[{"name": "m", "version": "1"}]'  # json.dumps, as MLflow writes it
    store.create_model_version("m", f"runs:/{run.info.run_id}/other", run_id=run.info.run_id)  # no model: no entry
    store.create_model_version("n", f"models:/{lm.model_id}")  # the model_id comes from the source
    assert recorded() == [{"name": "m", "version": "1"}, {"name": "n", "version": "1"}]
    # a client appending the version it just registered (MLflow's register_model does) does not list it twice
    store.set_logged_model_tags(lm.model_id, {"mlflow.modelVersions": json.dumps(
        [*recorded(), {"name": "n", "version": "1"}])})
    assert recorded() == [{"name": "m", "version": "1"}, {"name": "n", "version": "1"}]
    # an entry MLflow's server wrote (the version as a number) counts as the same version
    store.set_logged_model_tags(lm.model_id, {"mlflow.modelVersions": '[{"name": "o", "version": 1}]'})
    store.create_registered_model("o")
    store.create_model_version("o", f"models:/{lm.model_id}")
    store.create_model_version("o", f"models:/{lm.model_id}")
    assert recorded() == [{"name": "o", "version": 1}, {"name": "o", "version": "2"}]
    # a deleted logged model is left alone; copying a version that names it still works
    store.delete_logged_model(lm.model_id)
    assert store.create_model_version("m", "models:/m/1").model_id == lm.model_id
    with pytest.raises(ResourceDoesNotExist):
        store.get_logged_model(lm.model_id)


# ---------------------------------------------------------------- run inputs: logged models
def test_model_inputs_are_stored_and_returned(store):
    # MLflow: SqlAlchemyStore._log_inputs_impl (models) and _get_model_inputs -> RunInputs.model_inputs
    run = new_run(store)
    rid = run.info.run_id
    first = store.create_logged_model("0", "a")
    second = store.create_logged_model("0", "b")
    store.log_inputs(rid, models=[LoggedModelInput(first.model_id)])
    store.log_inputs(rid, models=[LoggedModelInput(second.model_id), LoggedModelInput(first.model_id)])
    store.log_inputs(rid, models=[LoggedModelInput(first.model_id)])  # logged again: listed once
    got = store.get_run(rid).inputs
    assert sorted(m.model_id for m in got.model_inputs) == sorted([first.model_id, second.model_id])
    assert got.dataset_inputs == []
    assert store.get_run(new_run(store).info.run_id).inputs.model_inputs == []
    found = {r.info.run_id: r for r in store.search_runs(["0"])}
    assert len(found[rid].inputs.model_inputs) == 2
    # a model that is not (or no longer) a logged model is kept, as MLflow keeps it
    store.log_outputs(rid, [LoggedModelOutput(first.model_id, 0)])
    assert len(store.get_run(rid).inputs.model_inputs) == 2 and len(store.get_run(rid).outputs.model_outputs) == 1
    with pytest.raises(InvalidParameterValue):
        store.log_inputs(rid, models=[LoggedModelInput("")])


def test_purging_a_run_removes_its_model_inputs(local_store):
    run = new_run(local_store)
    lm = local_store.create_logged_model("0", "a")
    local_store.log_inputs(run.info.run_id, models=[LoggedModelInput(lm.model_id)])
    local_store.delete_run(run.info.run_id)
    local_store.purge_run(run.info.run_id)
    from sqlalchemy import select

    from mltrail.store.sql import schema as t

    with local_store._read() as conn:
        assert conn.execute(select(t.inputs).where(t.inputs.c.destination_id == run.info.run_id)).all() == []


# ---------------------------------------------------------------- logged model names
def test_a_logged_model_without_a_name_gets_a_generated_one(store):
    # MLflow: SqlAlchemyStore.create_logged_model: name = name or _generate_random_name()
    names = [store.create_logged_model("0").name for _ in range(15)]
    names.append(store.create_logged_model("0", "").name)
    assert all(re.fullmatch(r"[a-z]+-[a-z]+-\d+", n) for n in names), names
    assert len(set(names)) == len(names)
    assert store.create_logged_model("0", "given").name == "given"


# ---------------------------------------------------------------- the run's mlflow.log-model.history tag
def test_record_logged_model_appends_in_one_transaction(local_store):
    # MLflow: SqlAlchemyStore.record_logged_model
    run = new_run(local_store)
    rid = run.info.run_id
    first = {"run_id": rid, "artifact_path": "a", "utc_time_created": "t1", "model_uuid": None, "flavors": {}}
    second = {**first, "artifact_path": "b"}
    local_store.record_logged_model(rid, first)
    local_store.record_logged_model(rid, second)
    history = local_store.get_run(rid).data.tags["mlflow.log-model.history"]
    assert history == json.dumps([first, second])
    local_store.log_batch(rid, tags=[RunTag("mlflow.log-model.history", "not json")])
    with pytest.raises(InvalidParameterValue, match="not a JSON list"):
        local_store.record_logged_model(rid, first)
    local_store.delete_run(rid)
    with pytest.raises(InvalidState, match="must be in the 'active' state"):
        local_store.record_logged_model(rid, first)
