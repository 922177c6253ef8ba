"""The rest of MLflow's fluent and client surface: restore, experiment tags, logged models, the active
model, flushing, streams, and entities' MLflow-typed views; against SQLite and through `mltrail server`."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import mltrail as mlflow
from mltrail._model_fluent import set_last_logged_model_id
from mltrail.entities import LoggedModelOutput, RunStatus, ViewType
from mltrail.errors import InvalidParameterValue, MlflowException

sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))

from server_fixture import start_server  # noqa: E402


@pytest.fixture(params=["sqlite", "server"])
def backend(request, tmp_path) -> str:
    uri = f"sqlite:///{tmp_path}/mltrail.db" if request.param == "sqlite" else start_server(request, tmp_path)
    mlflow.set_tracking_uri(uri)
    set_last_logged_model_id(None)  # per-thread state: a model of an earlier test's store must not leak in
    yield uri
    mlflow.clear_active_model()
    set_last_logged_model_id(None)


def test_restore_run_and_experiment(backend):
    exp_id = mlflow.create_experiment("restorable")
    with mlflow.start_run(experiment_id=exp_id) as run:
        pass
    mlflow.delete_run(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    mlflow.restore_run(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).info.lifecycle_stage == "active"
    mlflow.delete_experiment(exp_id)
    assert mlflow.get_experiment(exp_id).lifecycle_stage == "deleted"
    mlflow.restore_experiment(exp_id)
    assert mlflow.get_experiment(exp_id).lifecycle_stage == "active"


def test_last_logged_model_is_the_model_log_model_made(backend, tmp_path):
    code = tmp_path / "echo_model.py"
    code.write_text("import mltrail\n\n"
                    "class Echo(mltrail.pyfunc.PythonModel):\n"
                    "    def predict(self, context, model_input, params=None):\n"
                    "        return model_input\n\n"
                    "mltrail.models.set_model(Echo())\n")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="echo", python_model=str(code))
    assert mlflow.last_logged_model().model_id == info.model_id


def test_delete_experiment_tag_fluent_and_client(backend):
    exp = mlflow.set_experiment("tagged")
    mlflow.set_experiment_tags({"a": "1", "b": "2"})
    mlflow.delete_experiment_tag("a")
    assert mlflow.get_experiment(exp.experiment_id).tags == {"b": "2"}
    mlflow.MlflowClient().delete_experiment_tag(exp.experiment_id, "b")
    assert mlflow.get_experiment(exp.experiment_id).tags == {}


def test_logged_model_lifecycle(backend):
    mlflow.set_experiment("models")
    assert mlflow.last_logged_model() is None
    with mlflow.start_run() as run:
        model = mlflow.initialize_logged_model(name="net", params={"lr": "0.1"}, model_type="keras", tags={"t": "x"})
    assert model.status == "PENDING" and model.source_run_id == run.info.run_id
    assert model.experiment_id == run.info.experiment_id and model.params == {"lr": "0.1"}
    assert model.tags["t"] == "x" and model.tags["mlflow.user"]  # the context tags MLflow adds
    assert mlflow.last_logged_model().model_id == model.model_id
    mlflow.set_logged_model_tags(model.model_id, {"stage": "dev", "n": 3})
    mlflow.delete_logged_model_tag(model.model_id, "t")
    mlflow.log_model_params({"epochs": "5"}, model_id=model.model_id)
    ready = mlflow.finalize_logged_model(model.model_id, "READY")
    assert ready.status == "READY"
    got = mlflow.get_logged_model(model.model_id)
    assert got.tags["stage"] == "dev" and got.tags["n"] == "3" and "t" not in got.tags
    assert got.params == {"lr": "0.1", "epochs": "5"}
    with pytest.raises(InvalidParameterValue, match="expected 'READY' or 'FAILED'"):
        mlflow.finalize_logged_model(model.model_id, "DONE")


def test_log_outputs_links_a_model_to_the_run(backend):
    model = mlflow.initialize_logged_model(name="out")
    with mlflow.start_run() as run:
        mlflow.log_outputs([LoggedModelOutput(model.model_id, step=4)])
    outputs = mlflow.get_run(run.info.run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(model.model_id, 4)]


def test_active_model_by_name_id_and_environment(backend, monkeypatch):
    assert mlflow.get_active_model_id() is None
    created = mlflow.set_active_model(name="agent-free")  # none of that name: MLflow creates an external model
    assert created.name == "agent-free" and created.status == "READY"
    assert created.tags["mlflow.model.isExternal"] == "true"
    assert mlflow.get_active_model_id() == created.model_id
    again = mlflow.set_active_model(name="agent-free")  # found by name now, not created twice
    assert again.model_id == created.model_id
    other = mlflow.initialize_logged_model(name="other")
    with mlflow.set_active_model(model_id=other.model_id) as active:
        assert mlflow.get_active_model_id() == active.model_id == other.model_id
        mlflow.log_model_params({"k": "v"})  # the active model is the default target
    assert mlflow.get_active_model_id() == created.model_id  # restored on exit
    assert mlflow.get_logged_model(other.model_id).params == {"k": "v"}
    with pytest.raises(InvalidParameterValue, match="does not match the provided name"):
        mlflow.set_active_model(name="wrong", model_id=other.model_id)
    with pytest.raises(InvalidParameterValue, match="Either name or model_id must be provided"):
        mlflow.set_active_model()
    mlflow.clear_active_model()
    assert mlflow.get_active_model_id() is None
    monkeypatch.setenv("MLFLOW_ACTIVE_MODEL_ID", other.model_id)
    assert mlflow.get_active_model_id() == other.model_id
    mlflow.clear_active_model()
    assert mlflow.get_active_model_id() is None


def test_create_external_model_is_ready_and_tagged(backend):
    model = mlflow.create_external_model(name="ext", params={"p": "1"})
    assert model.status == "READY" and model.tags["mlflow.model.isExternal"] == "true"
    assert mlflow.last_logged_model().model_id == model.model_id


def test_log_stream_flush_and_client_model_artifacts(backend, tmp_path):
    with mlflow.start_run() as run:
        mlflow.log_stream(io.BytesIO(b"\x00binary\xff" * 1000), "blobs/data.bin")
        mlflow.log_metric("m", 1.0)
        mlflow.flush_async_logging()
        mlflow.flush_artifact_async_logging()
        assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 1.0}
        with pytest.raises(InvalidParameterValue, match="binary stream"):
            mlflow.log_stream(io.StringIO("text"), "t.txt")
    client = mlflow.MlflowClient()
    local = client.download_artifacts(run.info.run_id, "blobs/data.bin", str(tmp_path / "dl"))
    assert Path(local).read_bytes() == b"\x00binary\xff" * 1000
    model = mlflow.initialize_logged_model(name="files")
    (tmp_path / "weights.txt").write_text("w")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("a")
    client.log_model_artifact(model.model_id, str(tmp_path / "weights.txt"), artifact_path="extra")
    client.log_model_artifacts(model.model_id, str(tmp_path / "dir"), artifact_path="more")
    listed = {f.path for f in client.list_logged_model_artifacts(model.model_id)}
    assert listed == {"extra", "more"}
    with pytest.raises(InvalidParameterValue, match="expected an existing file"):
        client.log_model_artifact(model.model_id, str(tmp_path / "missing.txt"))


def test_client_tracking_uri_is_a_read_only_property(backend):
    client = mlflow.MlflowClient()
    assert client.tracking_uri == mlflow.get_tracking_uri()
    with pytest.raises(AttributeError):
        client.tracking_uri = "elsewhere"  # type: ignore[misc]


def test_end_run_and_set_terminated_take_mlflow_status_numbers(backend):
    run = mlflow.start_run()
    mlflow.end_run(status=RunStatus.to_string(4))
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"
    other = mlflow.MlflowClient().create_run("0")
    mlflow.MlflowClient().set_terminated(other.info.run_id, 5)  # KILLED, by MLflow's number
    assert mlflow.get_run(other.info.run_id).info.status == "KILLED"


def test_run_status_and_view_type_as_mlflow():
    assert [RunStatus.to_string(n) for n in range(1, 6)] == ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
    assert RunStatus.from_string("FINISHED") == RunStatus.FINISHED == "FINISHED"
    assert RunStatus.is_terminated(RunStatus.FAILED) and RunStatus.is_terminated(3)
    assert not RunStatus.is_terminated("RUNNING")
    assert RunStatus.all_status() == ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
    with pytest.raises(Exception, match="Could not get run status corresponding to string bogus"):
        RunStatus.from_string("bogus")
    with pytest.raises(Exception, match="Could not get string corresponding to run status 9"):
        RunStatus.to_string(9)
    assert (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL) == (1, 2, 3)
    assert ViewType.from_string("deleted_only") == 2 and ViewType.to_string(ViewType.ALL) == "all"
    with pytest.raises(Exception, match="Valid view types are \\['active_only', 'deleted_only', 'all'\\]"):
        ViewType.from_string("ACTIVE")


def test_entities_to_dictionary_as_mlflow(backend):
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 2.5, step=3)
        mlflow.log_param("p", 1)
    got = mlflow.get_run(run.info.run_id).to_dictionary()
    assert set(got) == {"info", "data", "inputs", "outputs"}
    assert set(got["info"]) == {"artifact_uri", "end_time", "experiment_id", "lifecycle_stage", "run_id",
                                "run_name", "start_time", "status", "user_id"}
    assert got["info"]["status"] == "FINISHED" and isinstance(got["info"]["end_time"], int)
    assert got["data"]["metrics"] == {"m": 2.5} and got["data"]["params"] == {"p": "1"}
    assert got["inputs"] == {"model_inputs": [], "dataset_inputs": []}
    assert got["outputs"] == {"model_outputs": []}
    metric = mlflow.MlflowClient().get_metric_history(run.info.run_id, "m")[0].to_dictionary()
    assert (metric["key"], metric["value"], metric["step"]) == ("m", 2.5, 3) and "dataset_digest" in metric
    model = mlflow.initialize_logged_model(name="d")
    as_dict = model.to_dictionary()
    assert as_dict["status"] == 1 and as_dict["name"] == "d" and "model_uri" not in as_dict


def test_model_version_is_an_int_and_its_json_a_string(backend):
    client = mlflow.MlflowClient()
    client.create_registered_model("reg")
    model = mlflow.create_external_model(name="versioned")
    mv = client.create_model_version("reg", f"models:/{model.model_id}", model_id=model.model_id)
    assert mv.version == 1 and isinstance(mv.version, int)
    assert client.get_model_version("reg", "1").version == 1
    assert mv.to_dict()["version"] == "1"  # MLflow's REST protocol carries the number as text


def test_mlflow_exception_surface():
    err = MlflowException.invalid_parameter_value("bad value", detail="x")
    assert isinstance(err, InvalidParameterValue)
    assert err.error_code == "INVALID_PARAMETER_VALUE" and err.get_http_status_code() == 400
    assert err.serialize_as_json() == '{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad value", "detail": "x"}'
    plain = MlflowException("boom")
    assert plain.error_code == "INTERNAL_ERROR" and plain.get_http_status_code() == 500


def test_doctor_prints_the_report_at_top_level(backend, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "secret-token")
    mlflow.doctor(mask_envs=True)
    out = capsys.readouterr().out
    assert mlflow.__version__ in out and mlflow.get_tracking_uri() in out
    assert "secret-token" not in out
