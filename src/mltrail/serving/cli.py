"""`mltrail models`: serve, predict, prepare-env, update-pip-requirements, export, generate-dockerfile and
build-docker, with MLflow's option names.

`serve` runs the scoring server on uvicorn (httptools + uvloop, no access log): in this process
for one worker, else as N worker processes that each load the model once (settings through
`MLTRAIL_SERVE_*`). SIGTERM or Ctrl-C stops the server and every worker it started.
`--env-manager virtualenv` re-runs the same command inside a cached environment built from the
model's requirements (see `mltrail.serving._env`).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from typing import Any

import click

from mltrail._cli_errors import cli_errors
from mltrail.errors import MltrailException

_ENV_MANAGERS = ["local", "virtualenv", "uv", "conda"]


def _resolve(model_uri: str) -> str:
    from mltrail.uris import resolve_model_uri

    with cli_errors():
        return resolve_model_uri(model_uri)


def _check_env_manager(env_manager: str) -> str:
    if env_manager in ("uv",):
        return "virtualenv"  # the same thing here: a venv built with pip
    if env_manager == "conda":
        raise click.UsageError("--env-manager conda is not supported by mltrail; use local or virtualenv.")
    return env_manager


def _reexec_in_env(local_model: str, command: str, args: list[str]) -> None:
    from mltrail.serving._env import exec_in_env, prepare_env

    with cli_errors():
        python = prepare_env(local_model)
    exec_in_env(python, [command, *args, "--env-manager", "local"])


@click.group()
def models() -> None:
    """Serve models over HTTP, score files, prepare environments, edit requirements, export, write Dockerfiles."""


def _server_kwargs() -> dict[str, Any]:
    """uvicorn's fastest settings available here."""
    has = importlib.util.find_spec
    return {
        "loop": "uvloop" if has("uvloop") else "asyncio",
        "http": "httptools" if has("httptools") else "h11",
        "access_log": False,
        "log_level": "info",
        "lifespan": "on",
    }


@models.command("serve", context_settings={"help_option_names": ["--help"]})
@click.option("--model-uri", "-m", required=True, help="models:/<id>, models:/<name>/<version>, runs:/..., a path.")
@click.option("--port", "-p", type=int, default=5000, show_default=True)
@click.option("--host", "-h", default="127.0.0.1", show_default=True)
@click.option("--workers", "-w", type=click.IntRange(min=1), default=1, show_default=True,
              envvar="MLFLOW_MODELS_WORKERS", help="Worker processes, each with its own copy of the model.")
@click.option("--timeout", "-t", type=int, default=60, show_default=True,
              help="Seconds to let in-flight requests finish when stopping.")
@click.option("--env-manager", type=click.Choice(_ENV_MANAGERS), default="local", show_default=True,
              help="local: this Python; virtualenv: a cached venv built from the model's requirements.txt.")
@click.option("--no-conda", is_flag=True, hidden=True, help="Deprecated MLflow flag: same as --env-manager local.")
@click.option("--install-mlflow", is_flag=True, hidden=True, help="Accepted for MLflow compatibility (no effect).")
@click.option("--enable-mlserver", is_flag=True, help="Accepted for MLflow compatibility: V2 is always served.")
@click.option("--batch-wait-ms", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="The longest a batch keeps gathering while requests keep arriving.")
@click.option("--max-batch-rows", type=click.IntRange(min=1), default=256, show_default=True,
              help="Rows per merged model call.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Larger request bodies get 413.")
@click.option("--model-name", default=None, help="The V2 model name (default: from the URI or the logged model).")
@click.option("--model-version", default="1", show_default=True, help="The V2 model version.")
def serve(model_uri: str, port: int, host: str, workers: int, timeout: int, env_manager: str, no_conda: bool,
          install_mlflow: bool, enable_mlserver: bool, batch_wait_ms: float, max_batch_rows: int, max_body_mb: float,
          model_name: str | None, model_version: str) -> None:
    """Serve a model: MLflow's /invocations (+ /ping, /health, /version) and the V2 inference protocol."""
    from mltrail.serving._package import clean_name, default_model_name
    from mltrail.serving._settings import ServingSettings

    env_manager = "local" if no_conda else _check_env_manager(env_manager)
    local = _resolve(model_uri)
    name = clean_name(model_name) if model_name else default_model_name(model_uri, local)
    if env_manager == "virtualenv":
        args = ["serve", "-m", local, "-p", str(port), "-h", host, "-w", str(workers), "-t", str(timeout),
                "--batch-wait-ms", str(batch_wait_ms), "--max-batch-rows", str(max_batch_rows),
                "--max-body-mb", str(max_body_mb), "--model-name", name, "--model-version", model_version,
                *(["--enable-mlserver"] if enable_mlserver else [])]
        _reexec_in_env(local, args[0], args[1:])
        return
    with cli_errors():
        settings = ServingSettings(model_uri=local, model_name=name, model_version=model_version,
                                   batch_wait_ms=batch_wait_ms, max_batch_rows=max_batch_rows,
                                   max_body_mb=max_body_mb, enable_mlserver=enable_mlserver)
    if enable_mlserver:
        click.echo("mltrail: --enable-mlserver: the V2 inference protocol is built into mltrail's scoring server "
                   f"(no MLServer needed); serving it at /v2/models/{name}.", err=True)
    click.echo(f"mltrail: serving {model_uri} ({local}) on http://{host}:{port} with {workers} worker(s); "
               f"/invocations and /v2/models/{name}/infer", err=True)
    run_server(settings, host, port, workers, timeout)


def _exit_quietly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def run_server(settings: Any, host: str, port: int, workers: int = 1, timeout: int = 60) -> None:
    """Run the scoring server until SIGTERM/SIGINT: in-process for one worker, else N uvicorn workers."""
    import uvicorn

    from mltrail.serving.app import configure_logging

    configure_logging()
    kwargs = _server_kwargs()
    if workers == 1:
        from mltrail.serving.app import create_scoring_app, load_served_model

        with cli_errors():
            model = load_served_model(settings.model_uri)
        app = create_scoring_app(model, settings)
        config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=timeout, **kwargs)
        # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again under the handlers it found:
        # make that a clean exit (status 0), as a server stopped on purpose should report
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_quietly)
        uvicorn.Server(config).run()
        return
    os.environ.update(settings.to_env())  # the workers (spawned) read their settings from here
    uvicorn.run("mltrail.serving.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                timeout_graceful_shutdown=timeout, **kwargs)


def _content_type(content_type: str) -> str:
    return {"json": "application/json", "csv": "text/csv"}.get(content_type, content_type)


@models.command("predict")
@click.option("--model-uri", "-m", required=True)
@click.option("--input-path", "-i", default=None, help="Input file (default: standard input).")
@click.option("--output-path", "-o", default=None, help="Output file (default: standard output).")
@click.option("--content-type", "-t", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--env-manager", type=click.Choice(_ENV_MANAGERS), default="local", show_default=True)
@click.option("--install-mlflow", is_flag=True, hidden=True)
def predict(model_uri: str, input_path: str | None, output_path: str | None, content_type: str, env_manager: str,
            install_mlflow: bool) -> None:
    """Score a JSON (MLflow's request formats) or CSV file; write {"predictions": ...}."""
    env_manager = _check_env_manager(env_manager)
    local = _resolve(model_uri)
    if env_manager == "virtualenv":
        args = ["-m", local, "-t", content_type]
        if input_path:
            args += ["-i", os.path.abspath(input_path)]
        if output_path:
            args += ["-o", os.path.abspath(output_path)]
        _reexec_in_env(local, "predict", args)
        return
    from mltrail.serving._outputs import predictions_body
    from mltrail.serving._scorer import as_model_failure, input_schema_of, parse_body
    from mltrail.serving.app import load_served_model

    if input_path:
        with open(input_path, "rb") as fh:
            body = fh.read()
    else:
        body = sys.stdin.buffer.read()
    with cli_errors():
        model = load_served_model(local)
        data, params = parse_body(body, _content_type(content_type), input_schema_of(model))
        try:
            out = model.predict(data, params=params) if params else model.predict(data)
        except MltrailException:
            raise
        except Exception as e:
            raise as_model_failure(e) from None
    result = predictions_body(out)
    if output_path:
        with open(output_path, "wb") as fh:
            fh.write(result)
    else:
        sys.stdout.buffer.write(result + b"\n")
        sys.stdout.flush()


@models.command("prepare-env")
@click.option("--model-uri", "-m", required=True, help="models:/<id>, models:/<name>/<version>, runs:/..., a path.")
@click.option("--env-manager", type=click.Choice(_ENV_MANAGERS), default="local", show_default=True,
              help="local: check that this Python meets the model's requirements; virtualenv: build the "
                   "cached environment `serve` and `predict` would use.")
@click.option("--install-mlflow", is_flag=True, hidden=True, help="Accepted for MLflow compatibility (no effect).")
def prepare_env(model_uri: str, env_manager: str, install_mlflow: bool) -> None:
    """Prepare what serving or predicting the model needs, so that `serve` and `predict` start fast."""
    from mltrail.serving._env import prepare_env as build_env
    from mltrail.serving._env import read_requirements, unsatisfied_requirements

    env_manager = _check_env_manager(env_manager)
    local = _resolve(model_uri)
    if env_manager == "virtualenv":
        with cli_errors():
            python = build_env(local)
        click.echo(f"The model's environment is ready: {python}")
        return
    missing = unsatisfied_requirements(local)
    if missing:
        raise click.ClickException(
            f"{len(missing)} requirement(s) of {model_uri} are not met by this Python ({sys.executable}):\n  "
            + "\n  ".join(missing)
            + "\nInstall them, or use --env-manager virtualenv to build an environment for the model.")
    click.echo(f"All {len(read_requirements(local))} requirement(s) of {model_uri} are met by this Python "
               f"({sys.executable}).")


@models.command("update-pip-requirements")
@click.option("--model-uri", "-m", required=True,
              help="A local model, runs:/<run_id>/<path>, models:/<model_id> or an artifact URI (not the registry).")
@click.option("--tracking-uri", envvar=["MLTRAIL_TRACKING_URI", "MLFLOW_TRACKING_URI"], default=None,
              help="Tracking URI for runs:/ and models:/ URIs (default: the one in force).")
@click.argument("operation", type=click.Choice(["add", "remove"]))
@click.argument("requirement_strings", nargs=-1)
def update_pip_requirements(model_uri: str, tracking_uri: str | None, operation: str,
                            requirement_strings: tuple[str, ...]) -> None:
    """Add or remove pip requirements in a model's requirements.txt, conda.yaml and python_env.yaml.

    REQUIREMENT_STRINGS are pip specifiers, e.g. `add "pandas==2.2.2" scikit-learn`; adding replaces a
    requirement of the same package, removing ignores version specifiers. Registered-model URIs
    (models:/<name>/<version>) are refused: the registry's copies are read-only.
    """
    from mltrail.models.requirements_update import update_model_requirements
    from mltrail.tracking_uri import set_tracking_uri

    if tracking_uri:
        set_tracking_uri(tracking_uri)
    with cli_errors():
        update_model_requirements(model_uri, "add" if operation == "add" else "remove", list(requirement_strings))
    click.echo(f"Updated the requirements of {model_uri}: {operation} {' '.join(requirement_strings)}")


@models.command("export")
@click.option("--model-uri", "-m", required=True)
@click.option("--format", "fmt", type=click.Choice(["tf-serving"]), default="tf-serving", show_default=True)
@click.option("--name", default=None, help="The model directory's name (default: from the URI).")
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True)
@click.argument("output_dir", type=click.Path(file_okay=False))
def export(model_uri: str, fmt: str, name: str | None, version: int, output_dir: str) -> None:
    """Export for TensorFlow Serving: OUTPUT_DIR/<name>/<version>/ (a SavedModel with serving_default)."""
    from mltrail.serving._package import export_tf_serving

    with cli_errors():
        target = export_tf_serving(model_uri, output_dir, name, version)
    click.echo(target)


_MODEL_URI_OPTIONAL = click.option(
    "--model-uri", "-m", metavar="URI", default=None,
    help="[Optional] The model to copy into the image; without it the image serves a model mounted at /opt/ml/model.")
_MLFLOW_HOME = click.option("--mlflow-home", metavar="PATH", default=None,
                            help="A local clone of mltrail to install in the image (default: this mltrail).")
_INSTALL_JAVA = click.option("--install-java", is_flag=False, flag_value=True, default=None, type=bool,
                             help="Refused when true: mltrail's images serve Python and Keras models and need no Java.")


def _refuse_java(install_java: bool | None) -> None:
    if install_java:
        raise click.UsageError("--install-java is not supported by mltrail: its images serve Python and Keras "
                               "models (no Spark, H2O or John Snow Labs flavors) and need no Java.")


@models.command("generate-dockerfile")
@_MODEL_URI_OPTIONAL
@click.option("--output-directory", "-d", default=None, help="Where to write (default: mltrail-dockerfile).")
@click.option("--env-manager", type=click.Choice(_ENV_MANAGERS), default="local", hidden=True)
@_MLFLOW_HOME
@_INSTALL_JAVA
@click.option("--install-mlflow", is_flag=True, hidden=True)
@click.option("--enable-mlserver", is_flag=True, help="Add --enable-mlserver to the entry command.")
@click.option("--base-image", default=None, help="Default: python:<this Python's major.minor>-slim.")
@click.argument("output_dir", required=False, type=click.Path(file_okay=False))
def generate_dockerfile(model_uri: str | None, output_directory: str | None, env_manager: str,
                        mlflow_home: str | None, install_java: bool | None, install_mlflow: bool,
                        enable_mlserver: bool, base_image: str | None, output_dir: str | None) -> None:
    """Write a Docker build context (Dockerfile, model/, requirements) serving the model on port 8080."""
    from mltrail.serving._package import generate_dockerfile as generate

    _check_env_manager(env_manager)
    _refuse_java(install_java)
    if output_dir and output_directory and os.path.abspath(output_dir) != os.path.abspath(output_directory):
        raise click.UsageError("Give the output directory once: as OUTPUT_DIR or as --output-directory.")
    target = output_dir or output_directory or "mltrail-dockerfile"
    with cli_errors():
        path = generate(model_uri, target, base_image, enable_mlserver, mlflow_home)
    click.echo(path)


@models.command("build-docker")
@_MODEL_URI_OPTIONAL
# MLflow's default image name, so scripts that `docker run mlflow-pyfunc-servable` keep working
@click.option("--name", "-n", default="mlflow-pyfunc-servable", show_default=True,
              help="Name (and optional :tag) of the image to build (MLflow's default name).")
@click.option("--env-manager", type=click.Choice(_ENV_MANAGERS), default="virtualenv", show_default=True,
              help="Accepted for MLflow compatibility: the image pip-installs the model's requirements either way "
                   "(conda is refused).")
@_MLFLOW_HOME
@_INSTALL_JAVA
@click.option("--install-mlflow", is_flag=True, help="Accepted for MLflow compatibility: mltrail is always installed.")
@click.option("--enable-mlserver", is_flag=True, help="Add --enable-mlserver to the image's entry command.")
@click.option("--base-image", default=None, help="Default: python:<this Python's major.minor>-slim.")
def build_docker(model_uri: str | None, name: str, env_manager: str, mlflow_home: str | None,
                 install_java: bool | None, install_mlflow: bool, enable_mlserver: bool,
                 base_image: str | None) -> None:
    """Build a Docker image serving the model on port 8080 with `docker build` (or `podman build`).

    Run it with `docker run -p 5001:8080 NAME`; /invocations and the V2 endpoints answer there. Without
    --model-uri, mount a model: `docker run -p 5001:8080 -v /path/to/model:/opt/ml/model NAME`.
    """
    from mltrail.serving._image_build import build_image

    _check_env_manager(env_manager)
    _refuse_java(install_java)
    with cli_errors():
        build_image(model_uri, name, lambda line: click.echo(line, err=True), base_image, enable_mlserver,
                    mlflow_home)
    click.echo(f"Built image {name!r}: run it with `docker run -p 5001:8080 {name}`"
               + ("" if model_uri else " -v /path/to/model:/opt/ml/model"))
