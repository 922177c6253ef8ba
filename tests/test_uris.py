"""Model URIs resolve to local directories: paths, file://, models:/, runs:/ and registry forms."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mltrail
from mltrail import Client
from mltrail.entities import LoggedModelOutput
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models import Model
from mltrail.uris import is_model_id, resolve_model_uri


def _model_dir(path, marker: str):
    path.mkdir(parents=True, exist_ok=True)
    Model(run_id=marker).save(str(path / "MLmodel"))
    (path / "data").mkdir(exist_ok=True)
    (path / "data" / "weights.bin").write_bytes(b"w")
    return path


def _logged(client, run_id, name, marker):
    exp = client.get_run(run_id).info.experiment_id
    lm = client.create_logged_model(exp, name=name, source_run_id=run_id)
    src = _model_dir(Path(f"src-{marker}"), marker)  # the tests run in their own tmp_path
    client.log_model_artifacts(lm.model_id, str(src))
    client.log_outputs(run_id, [LoggedModelOutput(lm.model_id, 0)])
    client.finalize_logged_model(lm.model_id, "READY")
    return lm


def test_local_paths_are_used_in_place(tmp_path):
    d = _model_dir(tmp_path / "m", "local")
    assert resolve_model_uri(str(d)) == str(d)
    assert resolve_model_uri(f"file://{d}") == str(d)
    copy = resolve_model_uri(str(d), dst_path=str(tmp_path / "dst"))
    assert copy == str(tmp_path / "dst" / "m") and os.path.isfile(os.path.join(copy, "data", "weights.bin"))
    with pytest.raises(ResourceDoesNotExist, match="does not exist"):
        resolve_model_uri(str(tmp_path / "missing"))


def test_models_uri_resolves_the_logged_model(tracking):
    client = Client()
    with mltrail.start_run() as run:
        lm = _logged(client, run.info.run_id, "model", "one")
    assert is_model_id(lm.model_id)
    local = resolve_model_uri(f"models:/{lm.model_id}")
    assert Model.load(local).run_id == "one"
    assert Model.load(f"models:/{lm.model_id}").run_id == "one"
    assert resolve_model_uri(f"models:/{lm.model_id}/data/weights.bin").endswith("weights.bin")
    with pytest.raises(ResourceDoesNotExist):
        resolve_model_uri("models:/m-00000000000000000000000000000000")


def test_runs_uri_finds_the_runs_logged_model_by_name(tracking):
    client = Client()
    with mltrail.start_run() as run:
        _logged(client, run.info.run_id, "model", "first")
        _logged(client, run.info.run_id, "model", "second")  # the newest of a name wins
        _logged(client, run.info.run_id, "other", "other")
        # a model directory logged the old way, as run artifacts
        mltrail.log_artifacts(str(_model_dir(Path("legacy"), "legacy")), "legacy_model")
    rid = run.info.run_id
    assert Model.load(resolve_model_uri(f"runs:/{rid}/model")).run_id == "second"
    assert Model.load(resolve_model_uri(f"runs:/{rid}/other")).run_id == "other"
    assert resolve_model_uri(f"runs:/{rid}/other/data/weights.bin").endswith("weights.bin")
    assert Model.load(resolve_model_uri(f"runs:/{rid}/legacy_model")).run_id == "legacy"


def test_unknown_registered_models_do_not_exist(tracking):
    for uri in ("models:/my-model/1", "models:/my-model@champion", "models:/my-model/latest"):
        with pytest.raises(ResourceDoesNotExist) as e:
            resolve_model_uri(uri)
        assert "my-model" in str(e.value)


def test_malformed_and_unsupported_uris():
    with pytest.raises(InvalidParameterValue, match="expected models:/<model_id>"):
        resolve_model_uri("models:/")
    with pytest.raises(InvalidParameterValue, match="models:/<name>@<alias>"):
        resolve_model_uri("models:/@alias")
    with pytest.raises(InvalidParameterValue, match="runs:/<run_id>"):
        resolve_model_uri("runs:/")
    with pytest.raises(InvalidParameterValue, match="Unsupported model URI"):
        resolve_model_uri("ftp://host/model")


def test_a_copy_of_a_copy_resolves_to_the_first_version_s_files(tracking):
    client = Client()
    with mltrail.start_run() as run:
        mltrail.log_artifacts(str(_model_dir(Path("plain"), "plain")), "model")
    client.create_registered_model("m0")
    client.create_model_version("m0", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    for i in range(1, 8):  # each copy's source is the version before it: models:/m<i-1>/1
        client.copy_model_version(f"models:/m{i - 1}/1", f"m{i}")
    assert Model.load(resolve_model_uri("models:/m7/1")).run_id == "plain"
    assert resolve_model_uri("models:/m7@latest/data/weights.bin").endswith("weights.bin")
    client.create_registered_model("from-latest")
    assert client.create_model_version("from-latest", "models:/m0@latest").source == "models:/m0/1"
