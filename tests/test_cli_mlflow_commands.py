"""MLflow's scripted CLI commands (artifacts, experiments, runs, doctor, models prepare-env), run through
click against an embedded SQLite store and, for `artifacts`, through a real tracking server."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mltrail.cli import main
from mltrail.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))

from server_fixture import free_port, start_server  # noqa: E402


def cli(*args: str, uri: str, ok: bool = True, **env: str):
    result = CliRunner().invoke(main, list(args), env={"MLTRAIL_TRACKING_URI": uri, **env})
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
        assert "Traceback" not in result.output
    return result


@pytest.fixture(params=["sqlite", "server"])
def backend(request, tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mltrail.db" if request.param == "sqlite" else start_server(request, tmp_path)


def test_artifacts_log_list_download(backend, tmp_path):
    client = Client(backend)
    run_id = client.create_run("0").info.run_id
    (tmp_path / "one.txt").write_text("one")
    local_dir = tmp_path / "many"
    (local_dir / "sub").mkdir(parents=True)
    (local_dir / "a.txt").write_text("aa")
    (local_dir / "sub" / "b.txt").write_text("bbb")

    logged = cli("artifacts", "log-artifact", "-l", str(tmp_path / "one.txt"), "-r", run_id, "-a", "docs", uri=backend)
    assert "to artifact_path=docs" in logged.output
    cli("artifacts", "log-artifacts", "--local-dir", str(local_dir), "--run-id", run_id, uri=backend)

    root = json.loads(cli("artifacts", "list", "-r", run_id, uri=backend).stdout)
    assert root == [{"path": "a.txt", "is_dir": False, "file_size": 2}, {"path": "docs", "is_dir": True},
                    {"path": "sub", "is_dir": True}]
    listing = cli("artifacts", "list", "-r", run_id, "-a", "sub", uri=backend).stdout
    assert listing == '[{\n  "path": "sub/b.txt",\n  "is_dir": false,\n  "file_size": 3\n}]\n'  # MLflow's layout

    out = cli("artifacts", "download", "-r", run_id, "-a", "sub", "-d", str(tmp_path / "dl"), uri=backend).stdout
    local = out.strip().splitlines()[-1]
    assert Path(local, "b.txt").read_text() == "bbb"
    # the URI wins over --run-id/--artifact-path, as in MLflow
    out = cli("artifacts", "download", "-u", f"runs:/{run_id}/docs/one.txt", "-r", "ignored", "-a", "x",
              "-d", str(tmp_path / "dl2"), uri=backend).stdout
    assert Path(out.strip().splitlines()[-1]).read_text() == "one"

    missing = cli("artifacts", "download", uri=backend, ok=False)
    assert "Either --run-id or --artifact-uri must be provided." in missing.output
    unknown = cli("artifacts", "list", "-r", "0" * 32, uri=backend, ok=False)
    assert "RESOURCE_DOES_NOT_EXIST" in unknown.output
    no_file = cli("artifacts", "log-artifact", "-l", str(tmp_path / "nope.txt"), "-r", run_id, uri=backend, ok=False)
    assert "INVALID_PARAMETER_VALUE" in no_file.output and "nope.txt" in no_file.output


def test_experiments_search_get_rename_csv_delete_restore(sqlite_uri, tmp_path):
    exp_id = cli("experiments", "create", "-n", "exp-a", "-l", str(tmp_path / "arts"), uri=sqlite_uri) \
        .output.strip().rsplit(" ", 1)[1]
    client = Client(sqlite_uri)
    client.set_experiment_tag(exp_id, "team", "vision")
    run = client.create_run(exp_id, run_name="r1")
    client.log_metric(run.info.run_id, "acc", 0.75)
    client.log_param(run.info.run_id, "lr", "0.1")
    client.set_terminated(run.info.run_id)

    table = cli("experiments", "search", uri=sqlite_uri).output.splitlines()
    assert table[0].split() == ["Experiment", "Id", "Name", "Artifact", "Location"]
    assert set(table[1]) == {"-", " "}
    assert [line.split()[:2] for line in table[2:]] == [["0", "Default"], [exp_id, "exp-a"]]
    assert table[3].split()[2] == str(tmp_path / "arts")
    assert len(cli("experiments", "search", "--max-results", "1", uri=sqlite_uri).output.splitlines()) == 3
    assert "non-negative" in cli("experiments", "search", "--max-results", "-1", uri=sqlite_uri, ok=False).output

    shown = cli("experiments", "get", "-x", exp_id, uri=sqlite_uri).output
    assert "Name               : exp-a" in shown and "Tags               : team=vision" in shown
    as_json = json.loads(cli("experiments", "get", "-n", "exp-a", "--output", "json", uri=sqlite_uri).output)
    assert as_json["experiment_id"] == exp_id and as_json["tags"] == {"team": "vision"}
    assert as_json["lifecycle_stage"] == "active" and isinstance(as_json["creation_time"], int)
    both = cli("experiments", "get", "-x", exp_id, "-n", "exp-a", uri=sqlite_uri, ok=False)
    assert "Must specify exactly one of --experiment-id or --experiment-name." in both.output
    nope = cli("experiments", "get", "-n", "nope", uri=sqlite_uri, ok=False)
    assert "Experiment with name 'nope' does not exist." in nope.output

    renamed = cli("experiments", "rename", "-x", exp_id, "--new-name", "exp-b", uri=sqlite_uri).output
    assert renamed.strip() == f"Experiment with id {exp_id} has been renamed to 'exp-b'."
    assert client.get_experiment(exp_id).name == "exp-b"

    frame = pd.read_csv(io.StringIO(cli("experiments", "csv", "-x", exp_id, uri=sqlite_uri).output))
    assert frame["run_id"].tolist() == [run.info.run_id]
    assert frame["metrics.acc"].tolist() == [0.75] and frame["tags.mlflow.runName"].tolist() == ["r1"]
    out = cli("experiments", "csv", "-x", exp_id, "-o", str(tmp_path / "runs.csv"), uri=sqlite_uri).output
    assert f"exported as a CSV to file: {tmp_path / 'runs.csv'}" in out
    assert pd.read_csv(tmp_path / "runs.csv")["params.lr"].tolist() == [0.1]

    deleted = cli("experiments", "delete", "-x", exp_id, uri=sqlite_uri).output
    assert deleted.strip() == f"Experiment with ID {exp_id} has been deleted."
    assert "exp-b" not in cli("experiments", "search", uri=sqlite_uri).output
    assert "exp-b" in cli("experiments", "search", "-v", "deleted_only", uri=sqlite_uri).output
    restored = cli("experiments", "restore", "-x", exp_id, uri=sqlite_uri).output
    assert restored.strip() == f"Experiment with id {exp_id} has been restored."
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_runs_create_list_describe_delete_restore(sqlite_uri):
    made = json.loads(cli("runs", "create", "--experiment-name", "cli-runs", "--run-name", "baseline",
                          "-t", "env=prod", "--tags", "model=cnn", "--description", "first try",
                          "--status", "failed", uri=sqlite_uri).output)
    assert made["status"] == "FAILED" and made["run_name"] == "baseline"
    client = Client(sqlite_uri)
    run = client.get_run(made["run_id"])
    assert run.info.experiment_id == made["experiment_id"] == client.get_experiment_by_name("cli-runs").experiment_id
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.tags["env"] == "prod" and run.data.tags["model"] == "cnn"
    assert run.data.tags["mlflow.note.content"] == "first try"

    child = json.loads(cli("runs", "create", "--experiment-id", made["experiment_id"], "--parent-run-id",
                           made["run_id"], uri=sqlite_uri).output)
    assert client.get_run(child["run_id"]).data.tags["mlflow.parentRunId"] == made["run_id"]
    assert child["status"] == "FINISHED"

    bad_tag = cli("runs", "create", "--experiment-id", "0", "-t", "novalue", uri=sqlite_uri, ok=False)
    assert "Invalid tag format: 'novalue'" in bad_tag.output
    dup = cli("runs", "create", "--experiment-id", "0", "-t", "a=1", "-t", "a=2", uri=sqlite_uri, ok=False)
    assert "Duplicate tag key: 'a'" in dup.output
    assert "exactly one of" in cli("runs", "create", uri=sqlite_uri, ok=False).output
    missing_exp = cli("runs", "create", "--experiment-id", "424242", uri=sqlite_uri, ok=False)
    assert "RESOURCE_DOES_NOT_EXIST" in missing_exp.output

    table = cli("runs", "list", "--experiment-id", made["experiment_id"], uri=sqlite_uri).output.splitlines()
    assert table[0].split() == ["Date", "Name", "ID"]
    assert [line.split()[-1] for line in table[2:]] == [child["run_id"], made["run_id"]]  # newest first
    assert table[3].split()[2:] == ["UTC", "baseline", made["run_id"]]
    env_list = cli("runs", "list", uri=sqlite_uri, MLFLOW_EXPERIMENT_ID=made["experiment_id"]).output
    assert made["run_id"] in env_list

    described = cli("runs", "describe", "--run-id", made["run_id"], uri=sqlite_uri).output
    assert described.startswith('{\n    "info"')  # MLflow's indent of 4
    as_dict = json.loads(described)
    assert as_dict["info"]["run_id"] == made["run_id"] and as_dict["data"]["tags"]["env"] == "prod"

    assert cli("runs", "delete", "--run-id", made["run_id"], uri=sqlite_uri).output.strip() == \
        f"Run with ID {made['run_id']} has been deleted."
    listed = cli("runs", "list", "-x", made["experiment_id"], uri=sqlite_uri).output
    assert made["run_id"] not in listed
    assert made["run_id"] in cli("runs", "list", "-x", made["experiment_id"], "-v", "all", uri=sqlite_uri).output
    assert cli("runs", "restore", "-r", made["run_id"], uri=sqlite_uri).output.strip() == \
        f"Run with id {made['run_id']} has been restored."
    assert client.get_run(made["run_id"]).info.lifecycle_stage == "active"


def test_doctor_reports_versions_and_store_reachability(sqlite_uri, tmp_path):
    Client(sqlite_uri).search_experiments()  # creates the database
    out = cli("doctor", uri=sqlite_uri, MLFLOW_SECRET_THING="hunter2").output
    import platform

    from mltrail.version import __version__

    assert f"Python version: {platform.python_version()}" in out
    assert f"mltrail version: {__version__}" in out
    assert f"Tracking URI: {sqlite_uri}" in out and f"Registry URI: {sqlite_uri}" in out
    assert "Tracking store: OK" in out
    assert "MLFLOW_SECRET_THING: hunter2" in out
    assert "  click: " in out and "  numpy: " in out
    masked = cli("doctor", "--mask-envs", uri=sqlite_uri, MLFLOW_SECRET_THING="hunter2").output
    assert "MLFLOW_SECRET_THING: ***" in masked and "hunter2" not in masked

    not_yet = f"sqlite:///{tmp_path}/later/fresh.db"
    out = cli("doctor", "--tracking-uri", not_yet, uri=sqlite_uri).output
    assert "Tracking store: not created yet" in out and not (tmp_path / "later").exists()

    dead = f"http://127.0.0.1:{free_port()}"
    out = cli("doctor", uri=dead, MLTRAIL_HTTP_REQUEST_MAX_RETRIES="0").output
    assert "Tracking store: ERROR TEMPORARILY_UNAVAILABLE: Could not reach the tracking server" in out


def _model_dir(tmp_path: Path, requirements: list[str]) -> Path:
    from mltrail.models.environment import write_environment

    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    write_environment(str(model), requirements)
    return model


def test_models_prepare_env_local_checks_requirements(tmp_path, sqlite_uri):
    from importlib.metadata import version

    import numpy

    model = _model_dir(tmp_path, [f"click=={version('click')}", "numpy>=1", "numpy<1; python_version < '3'",
                                  "pyyaml"])
    out = cli("models", "prepare-env", "-m", str(model), uri=sqlite_uri).output
    assert "All 4 requirement(s)" in out and "are met by this Python" in out

    other = tmp_path / "other"
    other.mkdir()
    (other / "requirements.txt").write_text(f"numpy=={numpy.__version__}.post999\nno-such-package-xyz==1.0\n-r x.txt\n")
    failed = cli("models", "prepare-env", "-m", str(other), "--env-manager", "local", uri=sqlite_uri, ok=False)
    assert "2 requirement(s)" in failed.output and "no-such-package-xyz==1.0 (not installed)" in failed.output
    assert f"(installed: {numpy.__version__})" in failed.output and "--env-manager virtualenv" in failed.output
    conda = cli("models", "prepare-env", "-m", str(model), "--env-manager", "conda", uri=sqlite_uri, ok=False)
    assert "conda is not supported" in conda.output


def test_models_update_pip_requirements_command(tmp_path, sqlite_uri):
    model = _model_dir(tmp_path, ["numpy==1.26.4", "pandas>=2"])
    out = cli("models", "update-pip-requirements", "-m", str(model), "add", "numpy>=2", "scikit-learn",
              uri=sqlite_uri).output
    assert "Updated the requirements" in out
    assert (model / "requirements.txt").read_text().splitlines() == ["numpy>=2", "pandas>=2", "scikit-learn"]
    cli("models", "update-pip-requirements", "-m", str(model), "remove", "pandas==1", uri=sqlite_uri)
    assert (model / "requirements.txt").read_text().splitlines() == ["numpy>=2", "scikit-learn"]
    refused = cli("models", "update-pip-requirements", "-m", "models:/my-model/1", "add", "x", uri=sqlite_uri, ok=False)
    assert 'Failed to set requirements on "models:/my-model/1"' in refused.output
    invalid = cli("models", "update-pip-requirements", "-m", str(model), "add", "not a req!", uri=sqlite_uri, ok=False)
    assert "Found invalid requirements" in invalid.output
    assert os.path.isfile(model / "conda.yaml")


def test_models_prepare_env_virtualenv_reuses_the_cached_environment(tmp_path, sqlite_uri, monkeypatch):
    from mltrail.serving import _env

    monkeypatch.setenv("MLTRAIL_ENV_ROOT", str(tmp_path / "envs"))
    model = _model_dir(tmp_path, ["numpy"])
    requirements, mltrail_args = _env.install_spec(_env.read_requirements(str(model)))
    env_dir = _env.env_root() / _env.env_key(requirements, mltrail_args)
    # an environment an earlier `prepare-env` finished: its interpreter and its ready marker
    python = _env.env_python(env_dir)
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    (env_dir / _env.READY_MARKER).write_text("{}")
    out = cli("models", "prepare-env", "-m", str(model), "--env-manager", "uv", uri=sqlite_uri).output
    assert out.strip() == f"The model's environment is ready: {python}"
