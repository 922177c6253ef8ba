"""Every module path MLflow documents for the features mltrail has imports under `mltrail`, with MLflow's names."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

# module path (after "mlflow"/"mltrail") -> names MLflow code imports from it
PATHS: dict[str, list[str]] = {
    "": ["MlflowClient", "MlflowException", "ActiveRun", "ActiveModel", "start_run", "set_tracking_uri"],
    ".exceptions": ["MlflowException", "RestException", "MlflowNotImplementedException", "ExecutionException",
                    "MissingConfigException", "InvalidUrlException", "get_error_code"],
    ".tracking": ["MlflowClient", "set_tracking_uri", "get_tracking_uri", "is_tracking_uri_set",
                  "set_registry_uri", "get_registry_uri"],
    ".tracking.client": ["MlflowClient"],
    ".tracking.fluent": ["ActiveRun", "ActiveModel", "start_run", "end_run", "active_run", "log_metric",
                         "search_runs", "get_experiment_id", "initialize_logged_model", "set_active_model",
                         "get_active_model_id", "restore_run", "log_stream", "flush_async_logging"],
    ".entities": ["Experiment", "ExperimentTag", "FileInfo", "Metric", "Param", "Run", "RunData", "RunInfo",
                  "RunStatus", "RunTag", "SourceType", "ViewType", "LifecycleStage", "Dataset", "InputTag",
                  "DatasetInput", "RunInputs", "RunOutputs", "LoggedModel", "LoggedModelInput",
                  "LoggedModelOutput", "LoggedModelStatus", "LoggedModelTag", "LoggedModelParameter"],
    ".entities.model_registry": ["ModelVersion", "RegisteredModel"],
    ".types": ["Schema", "ColSpec", "TensorSpec", "DataType", "ParamSchema", "ParamSpec"],
    ".types.schema": ["Schema", "ColSpec", "TensorSpec", "DataType", "ParamSchema", "ParamSpec"],
    ".models": ["Model", "ModelSignature", "infer_signature", "get_model_info", "set_signature"],
    ".models.model": ["Model", "ModelInfo", "get_model_info", "MLMODEL_FILE_NAME"],
    ".models.signature": ["ModelSignature", "infer_signature"],
    ".environment_variables": ["MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID",
                               "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_TOKEN",
                               "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_S3_ENDPOINT_URL",
                               "MLFLOW_ACTIVE_MODEL_ID", "MLTRAIL_TRACKING_URI"],
    ".config": ["get_tracking_uri", "set_tracking_uri", "is_tracking_uri_set", "get_registry_uri",
                "set_registry_uri", "enable_async_logging", "enable_system_metrics_logging",
                "disable_system_metrics_logging", "set_system_metrics_sampling_interval",
                "set_system_metrics_samples_before_logging", "set_system_metrics_node_id"],
}


@pytest.mark.parametrize("suffix", sorted(PATHS))
def test_module_path_has_mlflows_names(suffix):
    module = importlib.import_module("mltrail" + suffix)
    missing = [n for n in PATHS[suffix] if not hasattr(module, n)]
    assert not missing, f"mltrail{suffix} lacks {missing}"
    for name in getattr(module, "__all__", []):
        assert hasattr(module, name), f"mltrail{suffix}.__all__ lists {name!r}, which it does not define"


def test_from_imports_as_mlflow_code_writes_them():
    import mltrail
    from mltrail.exceptions import MlflowException
    from mltrail.tracking import MlflowClient
    from mltrail.tracking.fluent import start_run

    assert MlflowClient is mltrail.MlflowClient and start_run is mltrail.start_run
    assert MlflowException is mltrail.MlflowException
    assert mltrail.tracking.MlflowClient is MlflowClient and mltrail.exceptions.MlflowException is MlflowException


def test_the_new_paths_keep_import_light():
    code = ("import sys, mltrail.exceptions, mltrail.tracking, mltrail.tracking.fluent, mltrail.config, "
            "mltrail.environment_variables, mltrail.models.model\n"
            "heavy = [m for m in ('tensorflow', 'pandas', 'sqlalchemy', 'keras', 'starlette') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "[]"


def test_environment_variables_behave_like_mlflows(monkeypatch):
    from mltrail import environment_variables as ev

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    var = ev.MLFLOW_TRACKING_URI
    assert var.name == "MLFLOW_TRACKING_URI" and not var.is_set() and var.get() is None
    var.set("sqlite:///x.db")
    assert var.is_set() and var.get() == "sqlite:///x.db" and f"{var}" == "MLFLOW_TRACKING_URI"
    var.unset()
    assert not var.is_set()
    assert ev.MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 120  # the default, typed
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    assert ev.MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 30
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="Failed to convert 'soon' for MLFLOW_HTTP_REQUEST_TIMEOUT"):
        ev.MLFLOW_HTTP_REQUEST_TIMEOUT.get()
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "TRUE")
    assert ev.MLFLOW_S3_IGNORE_TLS.get() is True
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "yes")
    with pytest.raises(ValueError, match="must be one of \\['true', 'false', '1', '0'\\]"):
        ev.MLFLOW_S3_IGNORE_TLS.get()
    with pytest.raises(ValueError, match="Use BooleanEnvironmentVariable"):
        ev.EnvironmentVariable("X", bool, False)


def test_environment_variables_are_the_ones_mltrail_reads(monkeypatch, tmp_path):
    """The tracking URI variable this module describes is the one `get_tracking_uri` honours."""
    import mltrail
    from mltrail import environment_variables as ev

    ev.MLFLOW_TRACKING_URI.set(f"sqlite:///{tmp_path}/env.db")
    try:
        assert mltrail.get_tracking_uri() == f"sqlite:///{tmp_path}/env.db"
        ev.MLTRAIL_TRACKING_URI.set(f"sqlite:///{tmp_path}/ours.db")
        assert mltrail.get_tracking_uri() == f"sqlite:///{tmp_path}/ours.db"
    finally:
        ev.MLFLOW_TRACKING_URI.unset()
        ev.MLTRAIL_TRACKING_URI.unset()


def test_config_module(monkeypatch, tmp_path):
    from mltrail import config
    from mltrail import environment_variables as ev

    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")  # restored (unset) after the test
    config.set_tracking_uri(f"sqlite:///{tmp_path}/c.db")
    assert config.get_tracking_uri() == f"sqlite:///{tmp_path}/c.db" and config.is_tracking_uri_set()
    config.set_registry_uri(f"sqlite:///{tmp_path}/r.db")
    assert config.get_registry_uri() == f"sqlite:///{tmp_path}/r.db"
    config.enable_async_logging()
    assert os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] == "True"
    assert config.MLFLOW_ENABLE_ASYNC_LOGGING.get() is True
    config.enable_async_logging(False)
    assert config.MLFLOW_ENABLE_ASYNC_LOGGING.get() is False
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")  # restored (unset) after the test
    config.enable_system_metrics_logging()  # the switch is the variable environment_variables describes
    assert ev.MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get() is True
    config.disable_system_metrics_logging()
    assert ev.MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get() is False


def test_rest_exception_from_a_servers_json():
    from mltrail.exceptions import RestException, get_error_code

    err = RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'x' not found"})
    assert err.error_code == "RESOURCE_DOES_NOT_EXIST" and err.get_http_status_code() == 404
    assert str(err) == "RESOURCE_DOES_NOT_EXIST: Run 'x' not found" and err.json["message"] == "Run 'x' not found"
    assert RestException({"error_code": "404"}).error_code == "ENDPOINT_NOT_FOUND"
    assert get_error_code(404) == "ENDPOINT_NOT_FOUND" and get_error_code(418) == "INTERNAL_ERROR"
