"""`set_signature`: rewrite the signature in a logged model's MLmodel file, where the model is stored.

As in MLflow, a registered version (`models:/<name>/<version>`, `models:/<name>@<alias>`) is refused:
a version is an immutable copy, so set the signature on the logged model (or run) it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrail.client import Client
from mltrail.errors import InvalidParameterValue, ResourceDoesNotExist
from mltrail.models.mlmodel import MLMODEL_FILE_NAME, Model
from mltrail.models.signature import ModelSignature
from mltrail.uri_forms import is_models_uri, is_runs_uri, parse_model_uri
from mltrail.uris import stored_model_location

if TYPE_CHECKING:
    from mltrail.store.artifact.base import ArtifactRepository


def _mlmodel_location(client: Client, model_uri: str) -> tuple[ArtifactRepository, str]:
    """(repository, model directory inside it) of the model that `model_uri` names."""
    if not (is_runs_uri(model_uri) or is_models_uri(model_uri)):
        return client.artifact_repo_for(model_uri), ""
    parsed = parse_model_uri(model_uri)
    if parsed.is_registered:  # MLflow's words (mlflow.models.model.set_signature)
        raise InvalidParameterValue(
            f"Failed to set signature on {model_uri!r}. Model URIs with the `models:/<name>/<version>` "
            "scheme are not supported.")
    root, path = stored_model_location(client, parsed)
    return client.artifact_repo_for(root), path


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
