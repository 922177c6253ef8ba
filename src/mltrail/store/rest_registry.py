"""The model registry over HTTP: MLflow's `/registered-models/*` and `/model-versions/*` REST API.

`RestRegistryMixin` is mixed into `RestTrackingStore`, which provides `self.http` (an
`HttpClient`: `call(method, path, payload)` sends GET payloads as query parameters and others as
a JSON body, and turns error responses back into mltrail's exceptions). Methods and paths are
MLflow's own, so this also talks to an MLflow tracking server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mltrail.entities import ModelVersion, PagedList, RegisteredModel
from mltrail.store.registry_base import (
    SEARCH_MODEL_VERSIONS_DEFAULT,
    SEARCH_REGISTERED_MODELS_DEFAULT,
    RegistryStore,
)

_RM = "/api/2.0/mlflow/registered-models"
_MV = "/api/2.0/mlflow/model-versions"


def _kv(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in (tags or {}).items()]


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


class RestRegistryMixin(RegistryStore):
    """Registry methods for the REST store (needs `self.http` with `call(method, path, payload)`)."""

    http: Any

    def _rm_call(self, method: str, path: str, payload: dict[str, Any]) -> RegisteredModel:
        return RegisteredModel.from_dict(self.http.call(method, path, _clean(payload))["registered_model"])

    def _mv_call(self, method: str, path: str, payload: dict[str, Any]) -> ModelVersion:
        return ModelVersion.from_dict(self.http.call(method, path, _clean(payload))["model_version"])

    # ---------------------------------------------------------------- registered models
    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str | None = None) -> RegisteredModel:
        return self._rm_call("POST", f"{_RM}/create", {"name": name, "tags": _kv(tags), "description": description})

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._rm_call("GET", f"{_RM}/get", {"name": name})

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self._rm_call("POST", f"{_RM}/rename", {"name": name, "new_name": new_name})

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return self._rm_call("PATCH", f"{_RM}/update", {"name": name, "description": description})

    def delete_registered_model(self, name: str) -> None:
        self.http.call("DELETE", f"{_RM}/delete", {"name": name})

    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int = SEARCH_REGISTERED_MODELS_DEFAULT,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        out = self.http.call("GET", f"{_RM}/search", _clean({
            "filter": filter_string or None, "max_results": max_results, "order_by": list(order_by or []) or None,
            "page_token": page_token or None}))
        return PagedList([RegisteredModel.from_dict(m) for m in out.get("registered_models", [])],
                         out.get("next_page_token") or None)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        out = self.http.call("POST", f"{_RM}/get-latest-versions", {"name": name, "stages": list(stages or [])})
        return [ModelVersion.from_dict(mv) for mv in out.get("model_versions", [])]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.http.call("POST", f"{_RM}/set-tag", {"name": name, "key": key, "value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.http.call("DELETE", f"{_RM}/delete-tag", {"name": name, "key": key})

    # ---------------------------------------------------------------- model versions
    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, run_link: str | None = None,
                             description: str | None = None, model_id: str | None = None) -> ModelVersion:
        return self._mv_call("POST", f"{_MV}/create", {
            "name": name, "source": source, "run_id": run_id, "tags": _kv(tags), "run_link": run_link,
            "description": description, "model_id": model_id})

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return self._mv_call("GET", f"{_MV}/get", {"name": name, "version": str(version)})

    def update_model_version(self, name: str, version: str | int, description: str | None) -> ModelVersion:
        return self._mv_call("PATCH", f"{_MV}/update", {"name": name, "version": str(version),
                                                        "description": description})

    def delete_model_version(self, name: str, version: str | int) -> None:
        self.http.call("DELETE", f"{_MV}/delete", {"name": name, "version": str(version)})

    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:
        return self._mv_call("POST", f"{_MV}/transition-stage", {
            "name": name, "version": str(version), "stage": stage,
            "archive_existing_versions": bool(archive_existing_versions)})

    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int = SEARCH_MODEL_VERSIONS_DEFAULT,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        out = self.http.call("GET", f"{_MV}/search", _clean({
            "filter": filter_string or None, "max_results": max_results, "order_by": list(order_by or []) or None,
            "page_token": page_token or None}))
        return PagedList([ModelVersion.from_dict(mv) for mv in out.get("model_versions", [])],
                         out.get("next_page_token") or None)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        out = self.http.call("GET", f"{_MV}/get-download-uri", {"name": name, "version": str(version)})
        return str(out["artifact_uri"])

    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None:
        self.http.call("POST", f"{_MV}/set-tag", {"name": name, "version": str(version), "key": key, "value": value})

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        self.http.call("DELETE", f"{_MV}/delete-tag", {"name": name, "version": str(version), "key": key})

    # ---------------------------------------------------------------- aliases
    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self.http.call("POST", f"{_RM}/alias", {"name": name, "alias": alias, "version": str(version)})

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.http.call("DELETE", f"{_RM}/alias", {"name": name, "alias": alias})

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._mv_call("GET", f"{_RM}/alias", {"name": name, "alias": alias})
