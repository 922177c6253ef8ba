"""Model URIs resolve to local directories: paths, file://, models:/, runs:/ and registry forms."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

import mltrail
from mltrail import Client
from mltrail.entities import LoggedModelOutput
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models import Model
from mltrail.uris import is_model_id, resolve_model_uri

sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))

from server_fixture import start_server  # noqa: E402


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


def test_of_several_models_of_a_name_ready_then_largest_step_wins(tracking):
    client = Client()
    with mltrail.start_run() as run:
        rid = run.info.run_id
        late = _logged(client, rid, "model", "late-step")
        _logged(client, rid, "model", "newest")
        client.log_outputs(rid, [LoggedModelOutput(late.model_id, 5)])
        pending = client.create_logged_model(run.info.experiment_id, name="model", source_run_id=rid)
        client.log_outputs(rid, [LoggedModelOutput(pending.model_id, 9)])  # not READY: never chosen over READY
    assert Model.load(resolve_model_uri(f"runs:/{rid}/model")).run_id == "late-step"
    client.create_registered_model("r")
    assert client.create_model_version("r", f"runs:/{rid}/model", run_id=rid).model_id == late.model_id


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
    with pytest.raises(InvalidParameterValue, match="^Not a proper models:/ URI: models:/. .*nothing after"):
        resolve_model_uri("models:/")
    with pytest.raises(InvalidParameterValue, match="^Not a proper models:/ URI: models:/@alias. .*name '' is empty"):
        resolve_model_uri("models:/@alias")
    with pytest.raises(InvalidParameterValue, match="^Not a proper runs:/ URI: runs:/. Runs URIs must be"):
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


MODEL_CODE = """
    import mltrail as mlflow


    class Times(mlflow.pyfunc.PythonModel):
        def predict(self, model_input, params=None):
            return model_input * {factor}


    mlflow.models.set_model(Times())
"""


def _code_model(tmp_path: Path, factor: int) -> str:
    path = tmp_path / "code" / f"times{factor}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(MODEL_CODE.format(factor=factor)))
    return str(path)


@pytest.fixture(params=["sqlite", "server"])
def both_uri(request, tmp_path, monkeypatch):
    """A server-less SQLite store, or a real server: the same URI must mean the same model on either."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mltrail.db" if request.param == "sqlite" else start_server(request, tmp_path)
    mltrail.set_tracking_uri(uri)
    return uri


def test_runs_uri_means_one_model_to_register_load_download_and_list(both_uri, tmp_path):
    """A run holding both a logged model `model` and a folder `model` of its own files (with an MLmodel):
    register_model, pyfunc.load_model, download_artifacts, list_artifacts and resolve_model_uri all take
    the logged model (MLflow 3's reading of `runs:/<run_id>/<name>`)."""
    import mltrail.pyfunc as pyfunc

    legacy = tmp_path / "legacy"
    pyfunc.save_model(str(legacy), python_model=_code_model(tmp_path, 3))
    with mltrail.start_run() as run:
        mltrail.log_artifacts(str(legacy), "model")  # the run's own files, under the same name
        info = pyfunc.log_model(name="model", python_model=_code_model(tmp_path, 2))
    uri = f"runs:/{run.info.run_id}/model"
    frame = pd.DataFrame({"x": [1.0, 2.0]})

    mv = mltrail.register_model(uri, "agree")
    assert (mv.model_id, mv.source, mv.run_id) == (info.model_id, f"models:/{info.model_id}", run.info.run_id)
    # the store reads a runs:/ source by the same rule (its own query, since stores sit below uris.py)
    direct = Client().create_model_version("agree", uri, run_id=run.info.run_id)
    assert (direct.model_id, direct.source) == (info.model_id, uri)
    assert pyfunc.load_model(uri).predict(frame)["x"].tolist() == [2.0, 4.0]
    assert pyfunc.load_model("models:/agree/2").predict(frame)["x"].tolist() == [2.0, 4.0]
    assert pyfunc.load_model("models:/agree/1").predict(frame)["x"].tolist() == [2.0, 4.0]

    downloaded = mltrail.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "dl"))
    assert downloaded == str(tmp_path / "dl" / "model")
    assert yaml.safe_load(Path(downloaded, "MLmodel").read_text())["model_id"] == info.model_id
    resolved = resolve_model_uri(uri, dst_path=str(tmp_path / "resolved"))
    assert resolved == str(tmp_path / "resolved" / "model")
    assert yaml.safe_load(Path(resolved, "MLmodel").read_text())["model_id"] == info.model_id
    listed = {f.path for f in mltrail.artifacts.list_artifacts(uri)}
    assert "model/MLmodel" in listed and "model/times2.py" in listed and "model/times3.py" not in listed

    # a path the logged model does not have is not looked for in the run's files
    with pytest.raises(mltrail.MlflowException):
        mltrail.artifacts.download_artifacts(f"{uri}/times3.py", dst_path=str(tmp_path / "none"))
    # with no logged model of that name, the run's own files are the model
    with mltrail.start_run() as plain:
        mltrail.log_artifacts(str(legacy), "model")
    plain_uri = f"runs:/{plain.info.run_id}/model"
    assert pyfunc.load_model(plain_uri).predict(frame)["x"].tolist() == [3.0, 6.0]
    assert mltrail.register_model(plain_uri, "plain").model_id is None
    assert pyfunc.load_model("models:/plain/1").predict(frame)["x"].tolist() == [3.0, 6.0]
