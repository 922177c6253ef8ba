"""Module-level model registry API (`mltrail.register_model`, `mltrail.search_registered_models`, ...).

`register_model` works out a version's source by the one rule for `runs:/` (`mltrail.uris`): the
run's logged model of that name when it has one, otherwise the run's artifacts there (which must
hold an MLmodel file); a
`models:/<model_id>` URI registers the logged model (and records the new version in its
`mlflow.modelVersions` tag).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from mltrail.client import Client
from mltrail.entities import ModelVersion, RegisteredModel
from mltrail.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from mltrail.tracking_uri import get_registry_uri, get_tracking_uri, set_registry_uri

_logger = logging.getLogger("mltrail.registry")
__all__ = ["get_registry_uri", "set_registry_uri"]  # re-exported: where MLflow code finds them


def _client() -> Client:
    return Client(get_tracking_uri(), registry_uri=get_registry_uri())


def _source_of(client: Client, model_uri: str) -> tuple[str, str | None, str | None]:
    """(source, run_id, model_id) to register for `model_uri`."""
    # loaded on first use: `import mltrail` stays ~30 ms
    from mltrail.uri_forms import is_models_uri, is_runs_uri, parse_model_uri
    from mltrail.uris import run_artifact_target

    if not (is_runs_uri(model_uri) or is_models_uri(model_uri)):
        return model_uri, None, None
    parsed = parse_model_uri(model_uri)
    if parsed.kind == "run":
        if not parsed.subpath:
            raise InvalidParameterValue(f"Invalid model URI {model_uri!r}: expected runs:/<run_id>/<artifact path>.")
        root, path, model = run_artifact_target(client, parsed)
        if model is not None:
            if path:  # a folder inside the logged model: register those files
                return f"{root.rstrip('/')}/{path}", parsed.run_id, model.model_id
            return f"models:/{model.model_id}", parsed.run_id, model.model_id
        files = {os.path.basename(f.path.rstrip("/")) for f in client.list_artifacts(str(parsed.run_id), path)}
        if "MLmodel" not in files:  # MLflow's words (tracking/_model_registry/fluent.py), then ours
            raise ResourceDoesNotExist(
                f"Unable to find a logged_model with artifact_path {path} under run {parsed.run_id}: the run "
                f"has no MLmodel at {path!r} and no logged model named {parsed.head!r}.")
        return f"{root.rstrip('/')}/{path}", parsed.run_id, None
    if parsed.kind == "logged_model":
        return parsed.base, None, parsed.model_id
    # an existing registered version: register the same files again
    src = client._version_from_uri(parsed)
    return (f"models:/{src.model_id}" if src.model_id else str(src.source)), src.run_id, src.model_id


def register_model(model_uri: str, name: str, await_registration_for: int = 300, *,
                   tags: dict[str, Any] | None = None, **_ignored: Any) -> ModelVersion:
    """Register the model at `model_uri` as a new version of `name` (created if it does not exist).

    Args:
        model_uri: `runs:/<run_id>/<path>`, `models:/<model_id>`, `models:/<name>/<version>`,
            `models:/<name>@<alias>`, or a location inside a logged model's artifacts.
        await_registration_for: accepted for MLflow compatibility; versions are READY at once.

    Returns:
        The new ModelVersion (`int(mv.version)` is its number).
    """
    client = _client()
    try:
        client.create_registered_model(name)
        _logger.info("Registered model %r.", name)
    except ResourceAlreadyExists:
        _logger.info("Registered model %r already exists; creating a new version.", name)
    source, run_id, model_id = _source_of(client, str(model_uri))
    # the store records the version in the logged model's `mlflow.modelVersions` tag, in the same
    # transaction (MLflow's server does it too), so the client has nothing more to write
    return client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)


def _all_pages(fetch: Any, max_results: int | None, page_size: int) -> list[Any]:
    out: list[Any] = []
    token = None
    while True:
        want = page_size if max_results is None else min(page_size, max_results - len(out))
        page = fetch(want, token)
        out.extend(page)
        token = page.token
        if not token or (max_results is not None and len(out) >= max_results):
            return out


def search_registered_models(max_results: int | None = None, filter_string: str | None = None,
                             order_by: Sequence[str] | None = None) -> list[RegisteredModel]:
    """Every registered model matching `filter_string` (at most `max_results`), all pages fetched."""
    client = _client()
    return _all_pages(lambda n, tok: client.search_registered_models(filter_string, n, order_by, tok),
                      max_results, 1000)


def search_model_versions(max_results: int | None = None, filter_string: str | None = None,
                          order_by: Sequence[str] | None = None) -> list[ModelVersion]:
    """Every model version matching `filter_string` (at most `max_results`), all pages fetched."""
    client = _client()
    return _all_pages(lambda n, tok: client.search_model_versions(filter_string, n, order_by, tok),
                      max_results, 10_000)


def set_model_version_tag(name: str, version: str | int | None = None, key: str | None = None,
                          value: Any = None) -> None:
    _client().set_model_version_tag(name, version, key, value)
