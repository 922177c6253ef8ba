"""`set_signature`: rewrite the signature in a logged model's MLmodel file, where the model is stored.

As in MLflow, a registered version (`models:/<name>/<version>`, `models:/<name>@<alias>`) is refused:
a version is an immutable copy, so set the signature on the logged model (or run) it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrail._run_models import run_logged_model
from mltrail.client import Client
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model
from mltrail.models.signature import ModelSignature
from mltrail.uris import is_model_id

if TYPE_CHECKING:
    from mltrail.store.artifact.base import ArtifactRepository


def _run_model_location(client: Client, run_id: str, path: str) -> tuple[ArtifactRepository, str]:
    """Where `runs:/<run_id>/<path>` keeps its MLmodel: a model the run logged under that name, else run files."""
    first, _, rest = path.strip("/").partition("/")
    model = run_logged_model(client, run_id, first) if first else None
    if model is not None:
        return client.artifact_repo_for(model.artifact_location), rest
    return client.run_artifact_repo(run_id), path.strip("/")


def _mlmodel_location(client: Client, model_uri: str) -> tuple[ArtifactRepository, str]:
    """(repository, model directory inside it) of the model that `model_uri` names."""
    if model_uri.startswith("models:"):
        head, _, rest = model_uri[len("models:"):].lstrip("/").partition("/")
        if not is_model_id(head):
            raise InvalidParameterValue(
                f"Failed to set signature on {model_uri!r}. Model URIs with the `models:/<name>/<version>` "
                "scheme are not supported.")
        return client.artifact_repo_for(client.get_logged_model(head).artifact_location), rest.strip("/")
    if model_uri.startswith("runs:"):
        run_id, _, path = model_uri[len("runs:"):].lstrip("/").partition("/")
        if not run_id:
            raise InvalidParameterValue(
                f"Invalid model URI {model_uri!r}: expected runs:/<run_id>/<artifact path>.")
        return _run_model_location(client, run_id, path)
    return client.artifact_repo_for(model_uri), ""


def set_signature(model_uri: str, signature: ModelSignature) -> None:
    """Replace the signature of the model at `model_uri` (a logged model, a run's model, a path or artifact URI)."""
    if not isinstance(signature, ModelSignature):
        raise InvalidParameterValue(
            f"The signature argument must be a ModelSignature object; received {type(signature).__name__}.")
    import yaml

    repo, model_dir = _mlmodel_location(Client(), str(model_uri))
    file = f"{model_dir}/{MLMODEL_FILE_NAME}" if model_dir else MLMODEL_FILE_NAME
    try:
        content = repo.read_bytes(file)
    except ResourceDoesNotExist as e:
        raise ResourceDoesNotExist(
            f'Failed to download an "{MLMODEL_FILE_NAME}" model file from "{model_uri}"') from e
    model = Model.from_dict(yaml.safe_load(content) or {})
    model.signature = signature
    repo.write_bytes(file, str(model.to_yaml()).encode("utf-8"))
