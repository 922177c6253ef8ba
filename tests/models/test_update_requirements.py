"""`mltrail.models.update_model_requirements`: the model's requirements.txt, conda.yaml and python_env.yaml
rewritten where the model lives: a local directory, a run's artifacts or a logged model, on the embedded
store and through a real tracking server."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import yaml

import mltrail
from mltrail.client import Client
from mltrail.entities import LoggedModelOutput
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models import update_model_requirements
from mltrail.models.environment import write_environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_fixture import start_server  # noqa: E402


def _save(path: Path, requirements: list[str], model_id: str | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "MLmodel").write_text(yaml.safe_dump({"flavors": {}, **({"model_id": model_id} if model_id else {})}))
    write_environment(str(path), requirements)
    return path


def _pip_of(conda_text: str) -> list[str]:
    deps = yaml.safe_load(conda_text)["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict))


def test_local_model_add_and_remove(tmp_path, caplog):
    model = _save(tmp_path / "m", ["mltrail==0.1.0", "numpy==1.26.4", "Pandas>=2"])
    python_env_before = (model / "python_env.yaml").read_text()

    update_model_requirements(str(model), "add", ["numpy>=2,<3", "scikit-learn==1.5.0", "pandas<3"])
    expected = ["mltrail==0.1.0", "numpy<3,>=2", "pandas<3", "scikit-learn==1.5.0"]
    assert (model / "requirements.txt").read_text().splitlines() == expected
    assert _pip_of((model / "conda.yaml").read_text()) == expected
    assert (model / "python_env.yaml").read_text() == python_env_before  # `-r requirements.txt` follows on its own

    with caplog.at_level(logging.WARNING, logger="mltrail.models"):
        update_model_requirements(f"file://{model}", "remove", ["numpy==9", "torch"])
    assert (model / "requirements.txt").read_text().splitlines() == ["mltrail==0.1.0", "pandas<3",
                                                                      "scikit-learn==1.5.0"]
    assert _pip_of((model / "conda.yaml").read_text())[1:] == ["pandas<3", "scikit-learn==1.5.0"]
    assert '"torch" not found in requirements, ignoring' in caplog.text


def test_inline_python_env_and_comments_are_kept(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "requirements.txt").write_text("# pinned by hand\n--extra-index-url https://example.org\nnumpy==1.0\n")
    (model / "python_env.yaml").write_text(yaml.safe_dump({"python": "3.11", "build_dependencies": ["pip"],
                                                           "dependencies": ["numpy==1.0", "scipy"]}))
    update_model_requirements(str(model), "add", ["numpy==2.0"])
    assert (model / "requirements.txt").read_text().splitlines() == [
        "# pinned by hand", "--extra-index-url https://example.org", "numpy==2.0"]
    env = yaml.safe_load((model / "python_env.yaml").read_text())
    assert env["dependencies"] == ["numpy==2.0", "scipy"] and env["build_dependencies"] == ["pip"]
    assert not (model / "conda.yaml").exists()  # only the files the model has


def test_errors(tmp_path):
    model = _save(tmp_path / "m", ["numpy"])
    with pytest.raises(InvalidParameterValue, match=r"Found invalid requirements: \{'numpy>>1': "):
        update_model_requirements(str(model), "add", ["numpy>>1", "ok"])
    with pytest.raises(InvalidParameterValue, match="Invalid operation 'replace': expected 'add' or 'remove'"):
        update_model_requirements(str(model), "replace", ["numpy"])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterValue, match="must be a list of requirement strings; received str"):
        update_model_requirements(str(model), "add", "numpy")  # type: ignore[arg-type]
    for uri in ("models:/classifier/3", "models:/classifier@champion", "models:/classifier/latest"):
        with pytest.raises(InvalidParameterValue, match="Model URIs with the `models:/` scheme are not supported"):
            update_model_requirements(uri, "add", ["numpy"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ResourceDoesNotExist, match="No requirements.txt or conda.yaml"):
        update_model_requirements(str(empty), "add", ["numpy"])
    assert (model / "requirements.txt").read_text() == "numpy\n"  # nothing written by the failed calls


@pytest.fixture(params=["sqlite", "server"])
def backend(request, tmp_path) -> str:
    uri = f"sqlite:///{tmp_path}/mltrail.db" if request.param == "sqlite" else start_server(request, tmp_path)
    mltrail.set_tracking_uri(uri)
    return uri


def _read(client: Client, repo_root: str, path: str) -> str:
    return client.artifact_repo_for(repo_root).read_bytes(path).decode()


def test_run_artifact_model(backend, tmp_path):
    client = Client(backend)
    run = client.create_run("0")
    client.log_artifacts(run.info.run_id, str(_save(tmp_path / "m", ["numpy==1.0"])), "nested/model")
    update_model_requirements(f"runs:/{run.info.run_id}/nested/model", "add", ["pandas==2.2.2"])
    assert _read(client, run.info.artifact_uri, "nested/model/requirements.txt").splitlines() == \
        ["numpy==1.0", "pandas==2.2.2"]
    assert _pip_of(_read(client, run.info.artifact_uri, "nested/model/conda.yaml")) == ["numpy==1.0", "pandas==2.2.2"]
    with pytest.raises(ResourceDoesNotExist, match="no MLmodel file"):
        update_model_requirements(f"runs:/{run.info.run_id}/nowhere", "add", ["x"])


def test_logged_model_by_run_and_model_uri(backend, tmp_path):
    client = Client(backend)
    run = client.create_run("0")
    logged = client.create_logged_model("0", name="clf", source_run_id=run.info.run_id)
    client.log_model_artifacts(logged.model_id, str(_save(tmp_path / "m", ["numpy==1.0", "keras"],
                                                          model_id=logged.model_id)))
    client.finalize_logged_model(logged.model_id, "READY")
    client.log_outputs(run.info.run_id, [LoggedModelOutput(logged.model_id, 0)])

    update_model_requirements(f"runs:/{run.info.run_id}/clf", "remove", ["keras"])
    location = client.get_logged_model(logged.model_id).artifact_location
    assert _read(client, location, "requirements.txt").splitlines() == ["numpy==1.0"]
    update_model_requirements(f"models:/{logged.model_id}", "add", ["tensorflow-cpu==2.21.0"])
    assert _read(client, location, "requirements.txt").splitlines() == ["numpy==1.0", "tensorflow-cpu==2.21.0"]
    assert _pip_of(_read(client, location, "conda.yaml")) == ["numpy==1.0", "tensorflow-cpu==2.21.0"]
    assert client.list_artifacts(run.info.run_id) == []  # the run's own artifacts were not touched
