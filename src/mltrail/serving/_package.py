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
    from mltrail.uris import is_model_id

    uri = model_uri.strip()
    if uri.startswith("models:"):
        parts = [p for p in uri[len("models:"):].split("/") if p]
        if parts:
            head = parts[0]
            if "@" in head:
                return clean_name(head.partition("@")[0])
            if not is_model_id(head) and len(parts) >= 2:
                return clean_name(head)
            try:
                from mltrail.client import Client

                return clean_name(Client().get_logged_model(head).name)
            except Exception:  # the name is a nicety: never fail serving over it
                return "model"
    if uri.startswith("runs:"):
        parts = [p for p in uri[len("runs:"):].split("/") if p]
        return clean_name(parts[-1] if len(parts) >= 2 else None)
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


def dockerfile_text(base_image: str, with_source: bool, enable_mlserver: bool = False) -> str:
    entry = [*ENTRYPOINT, *(["--enable-mlserver"] if enable_mlserver else [])]
    mltrail_install = "/opt/mltrail-src" if with_source else ""
    lines = [
        "# Generated by `mltrail models generate-dockerfile`: serves ./model on port 8080",
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
        f"COPY model {DOCKER_MODEL_DIR}",
        f"EXPOSE {DOCKER_PORT}",
        f"ENTRYPOINT {json.dumps(entry)}",
    ]
    return "\n".join(lines) + "\n"


def generate_dockerfile(model_uri: str, out_dir: str, base_image: str | None = None,
                        enable_mlserver: bool = False) -> str:
    """Write a Docker build context that serves the model: Dockerfile, model/, requirements.txt, mltrail.

    mltrail is copied in as source when it is installed from a local project (it is then not
    on the package index); otherwise the model's `mltrail==<version>` requirement installs it.

    Returns:
        The Dockerfile's path.
    """
    from mltrail.serving._env import install_spec, local_mltrail_source, read_requirements
    from mltrail.uris import resolve_model_uri

    local = resolve_model_uri(model_uri)
    out = os.path.abspath(out_dir)
    if os.path.exists(os.path.join(out, "Dockerfile")) or os.path.exists(os.path.join(out, "model")):
        raise ResourceAlreadyExists(f"{out!r} already holds a Dockerfile or model/; choose an empty directory.")
    os.makedirs(out, exist_ok=True)
    if os.path.isdir(local):
        shutil.copytree(local, os.path.join(out, "model"))
    else:
        raise InvalidParameterValue(f"{model_uri!r} resolves to {local!r}, which is not a model directory.")
    requirements, mltrail_args = install_spec(read_requirements(local))
    source = local_mltrail_source()
    if source is not None:
        _copy_source(source[0], os.path.join(out, "mltrail-src"))
    else:
        requirements = [*requirements, *mltrail_args]
    with open(os.path.join(out, "requirements.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(requirements) + "\n")
    image = base_image or f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
    path = os.path.join(out, "Dockerfile")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(dockerfile_text(image, source is not None, enable_mlserver))
    return path


def entrypoint_of(dockerfile: str) -> list[str]:
    """The ENTRYPOINT (exec form) of a Dockerfile."""
    with open(dockerfile, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("ENTRYPOINT "):
                value: Any = json.loads(line[len("ENTRYPOINT "):])
                return [str(v) for v in value]
    raise InvalidParameterValue(f"{dockerfile!r} has no ENTRYPOINT line.")
