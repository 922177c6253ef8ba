"""Packaging a served model: a TensorFlow Serving export and a Dockerfile build context."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from typing import Any

from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists

DOCKER_MODEL_DIR = "/opt/ml/model"
DOCKER_PORT = 8080
ENTRYPOINT = ["mltrail", "models", "serve", "-m", DOCKER_MODEL_DIR, "--host", "0.0.0.0", "-p", str(DOCKER_PORT)]
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def clean_name(name: str | None) -> str:
    """A model name usable in URLs and directory names ('model' when nothing usable is left)."""
    cleaned = _NAME_OK.sub("-", name or "").strip("-.")
    return cleaned or "model"


def default_model_name(model_uri: str, local_dir: str | None = None) -> str:
    """The name a model is served (and exported) under: from its URI, else its logged model's name."""
    from mltrail.uri_forms import is_models_uri, is_runs_uri, parse_model_uri

    uri = model_uri.strip()
    if is_runs_uri(uri) or is_models_uri(uri):
        parsed = parse_model_uri(uri)
        if parsed.is_registered:
            return clean_name(parsed.name)
        if parsed.kind == "run":
            return clean_name(parsed.subpath.rpartition("/")[2] or None)
        try:
            from mltrail.client import Client

            return clean_name(Client().get_logged_model(str(parsed.model_id)).name)
        except Exception:  # the name is a nicety: never fail serving over it
            return "model"
    base = os.path.basename(os.path.normpath(local_dir or uri))
    return clean_name(base)


def export_tf_serving(model_uri: str, out_dir: str, name: str | None = None, version: int = 1) -> str:
    """Write the model as a TensorFlow Serving layout: `out_dir/<name>/<version>/` (a SavedModel).

    The SavedModel has a `serving_default` signature (Keras models go through `Model.export`).

    Returns:
        The version directory written.

    Raises:
        InvalidParameterValue: the model is not a TensorFlow model.
        ResourceAlreadyExists: the version directory exists and is not empty.
    """
    from mltrail.models.mlmodel import Model
    from mltrail.uris import resolve_model_uri

    local = resolve_model_uri(model_uri)
    meta = Model.load(local)
    if "tensorflow" not in meta.flavors and "keras" not in meta.flavors:
        raise InvalidParameterValue(
            f"Cannot export {model_uri!r} for TensorFlow Serving: it has no tensorflow flavor (its flavors: "
            f"{sorted(meta.flavors)}).")
    if version < 1:
        raise InvalidParameterValue(f"The version must be a positive integer; received {version}.")
    target = os.path.join(os.path.abspath(out_dir), clean_name(name or default_model_name(model_uri, local)),
                          str(version))
    if os.path.isdir(target) and os.listdir(target):
        raise ResourceAlreadyExists(f"{target!r} already exists and is not empty; choose another --version or "
                                    "directory.")
    import keras

    import tensorflow as tf
    from mltrail.tensorflow import load_model

    loaded = load_model(local)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if isinstance(loaded, keras.Model):
        loaded.export(target, format="tf_saved_model", verbose=False)
    else:
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        if "serving_default" not in signatures:
            serve = getattr(loaded, "serve", None)
            if serve is None:
                raise InvalidParameterValue(
                    f"The SavedModel in {model_uri!r} has neither a serving_default signature nor a serve endpoint.")
            concrete = list(getattr(serve, "concrete_functions", None) or [])
            signatures["serving_default"] = concrete[0] if concrete else serve
        tf.saved_model.save(loaded, target, signatures=signatures)
    if "serving_default" not in tf.saved_model.load(target).signatures:
        raise InvalidParameterValue(f"The export at {target!r} has no serving_default signature.")
    return target


def _copy_source(project: str, dst: str) -> None:
    """The mltrail project (pyproject, README, src/) into the Docker context, without caches."""
    os.makedirs(dst)
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        if os.path.isfile(os.path.join(project, f)):
            shutil.copy2(os.path.join(project, f), os.path.join(dst, f))
    shutil.copytree(os.path.join(project, "src"), os.path.join(dst, "src"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))


def dockerfile_text(base_image: str, with_source: bool, enable_mlserver: bool = False, with_model: bool = True) -> str:
    """The Dockerfile; without a model the image serves one mounted at /opt/ml/model, built into a venv on start."""
    # a mounted model's requirements are unknown at build time: the container builds its environment on start
    env = [] if with_model else ["--env-manager", "virtualenv"]
    entry = [*ENTRYPOINT, *env, *(["--enable-mlserver"] if enable_mlserver else [])]
    mltrail_install = "/opt/mltrail-src" if with_source else ""
    served = "./model" if with_model else f"the model mounted at {DOCKER_MODEL_DIR}"
    lines = [
        f"# Generated by `mltrail models generate-dockerfile`: serves {served} on port 8080",
        "# (MLflow's /invocations and the V2 inference protocol). Build: docker build -t my-model .",
        f"FROM {base_image}",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
        "WORKDIR /opt/ml",
    ]
    if with_source:
        lines.append("COPY mltrail-src /opt/mltrail-src")
    lines += [
        "COPY requirements.txt /opt/ml/requirements.txt",
        f"RUN pip install -r /opt/ml/requirements.txt {mltrail_install}".rstrip(),
        *([f"COPY model {DOCKER_MODEL_DIR}"] if with_model else []),
        f"EXPOSE {DOCKER_PORT}",
        f"ENTRYPOINT {json.dumps(entry)}",
    ]
    return "\n".join(lines) + "\n"


def generate_dockerfile(model_uri: str | None, out_dir: str, base_image: str | None = None,
                        enable_mlserver: bool = False, mltrail_home: str | None = None) -> str:
    """Write a Docker build context that serves the model: Dockerfile, model/, requirements.txt, mltrail.

    mltrail is copied in as source when it is installed from a local project (it is then not
    on the package index) or `mltrail_home` names one; otherwise the model's `mltrail==<version>`
    requirement installs it. Without a model URI the image serves a model mounted at /opt/ml/model.

    Returns:
        The Dockerfile's path.
    """
    from mltrail.serving._env import install_spec, local_mltrail_source, read_requirements
    from mltrail.uris import resolve_model_uri

    local = resolve_model_uri(model_uri) if model_uri is not None else None
    out = os.path.abspath(out_dir)
    if os.path.exists(os.path.join(out, "Dockerfile")) or os.path.exists(os.path.join(out, "model")):
        raise ResourceAlreadyExists(f"{out!r} already holds a Dockerfile or model/; choose an empty directory.")
    source = (_checked_home(mltrail_home), False) if mltrail_home is not None else local_mltrail_source()
    if local is not None and not os.path.isdir(local):
        raise InvalidParameterValue(f"{model_uri!r} resolves to {local!r}, which is not a model directory.")
    os.makedirs(out, exist_ok=True)
    if local is not None:
        shutil.copytree(local, os.path.join(out, "model"))
    requirements, mltrail_args = install_spec(read_requirements(local) if local is not None else [])
    if source is not None:
        _copy_source(source[0], os.path.join(out, "mltrail-src"))
    else:
        requirements = [*requirements, *mltrail_args]
    with open(os.path.join(out, "requirements.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(requirements) + "\n")
    image = base_image or f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    path = os.path.join(out, "Dockerfile")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(dockerfile_text(image, source is not None, enable_mlserver, with_model=local is not None))
    return path


def _checked_home(path: str) -> str:
    """An mltrail project directory (pyproject.toml and src/mltrail), absolute."""
    home = os.path.abspath(os.path.expanduser(path))
    if not (os.path.isfile(os.path.join(home, "pyproject.toml")) and os.path.isdir(os.path.join(home, "src", "mltrail"))):
        raise InvalidParameterValue(
            f"The mltrail home {path!r} is not an mltrail project: expected a directory holding pyproject.toml and "
            "src/mltrail (a local clone of mltrail).")
    return home


def entrypoint_of(dockerfile: str) -> list[str]:
    """The ENTRYPOINT (exec form) of a Dockerfile."""
    with open(dockerfile, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("ENTRYPOINT "):
                value: Any = json.loads(line[len("ENTRYPOINT "):])
                return [str(v) for v in value]
    raise InvalidParameterValue(f"{dockerfile!r} has no ENTRYPOINT line.")
