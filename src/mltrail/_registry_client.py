"""`Client`'s model registry methods (MLflow's names and signatures), over the registry store.

The registry store is the store of `registry_uri` (by default the tracking URI): a SQL database or
a tracking server. Stages are deprecated in MLflow; the stage methods still work and warn with
MLflow's FutureWarning when user code calls them.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mltrail.entities import ModelVersion, ModelVersionStage, PagedList, RegisteredModel
from mltrail.errors import (
    InvalidParameterValue,
    MltrailException,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from mltrail.uri_forms import ModelUri, parse_model_uri

if TYPE_CHECKING:
    from mltrail.store.registry_base import RegistryStore

_STAGES_DEPRECATION = (
    "Model registry stages will be removed in a future major release. To learn more about the deprecation of "
    "model registry stages, see the migration guide: https://mlflow.org/docs/latest/model-registry.html"
    "#migrating-from-stages")


def _warn_stages(method: str) -> None:
    """MLflow's deprecation warning, unless mltrail itself is the caller (models:/name/latest resolves so)."""
    caller = sys._getframe(2).f_globals.get("__name__", "")
    if caller == "mltrail" or caller.startswith("mltrail."):
        return
    warnings.warn(f"``mltrail.client.Client.{method}`` is deprecated since MLflow 2.9.0. {_STAGES_DEPRECATION}",
                  FutureWarning, stacklevel=3)


def _str_tags(tags: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


class RegistryClientMixin:
    """Registered models, versions, aliases and tags; mixed into `Client`."""

    registry_uri: str

    @property
    def _registry_store(self) -> RegistryStore:
        from mltrail.store import get_registry_store  # loaded on first use: `import mltrail` stays ~30 ms

        return get_registry_store(self.registry_uri)

    # ------------------------------------------------------------------ registered models
    def create_registered_model(self, name: str, tags: dict[str, Any] | None = None,
                                description: str | None = None, deployment_job_id: str | None = None
                                ) -> RegisteredModel:
        """Create a registered model (names are normalised: `my%20model` is `my model`)."""
        return self._registry_store.create_registered_model(name, _str_tags(tags), description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._registry_store.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self._registry_store.rename_registered_model(name, new_name)

    def update_registered_model(self, name: str, description: str | None = None,
                                deployment_job_id: str | None = None) -> RegisteredModel:
        return self._registry_store.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        self._registry_store.delete_registered_model(name)

    def search_registered_models(self, filter_string: str | None = None, max_results: int = 100,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        """Registered models matching `filter_string` (`name LIKE 'x%'`, `tags.k = 'v'`), one page."""
        return self._registry_store.search_registered_models(filter_string or None, max_results,
                                                             list(order_by or []), page_token)

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """The newest version in each stage (deprecated with stages, as in MLflow)."""
        _warn_stages("get_latest_versions")
        return self._registry_store.get_latest_versions(name, list(stages) if stages else None)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._registry_store.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._registry_store.delete_registered_model_tag(name, key)

    # ------------------------------------------------------------------ model versions
    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, Any] | None = None, run_link: str | None = None,
                             description: str | None = None, await_creation_for: int = 300,
                             model_id: str | None = None) -> ModelVersion:
        """A new version of `name` from `source`.

        Args:
            source: `models:/<model_id>`, `runs:/<run_id>/<path>`, or a location inside the artifacts of
                `run_id` (or of logged model `model_id`); anything else is refused.
            await_creation_for: accepted for MLflow compatibility; versions are READY at once.
        """
        return self._registry_store.create_model_version(name, source, run_id or None, _str_tags(tags),
                                                         run_link, description, model_id or None)

    def copy_model_version(self, src_model_uri: str, dst_name: str) -> ModelVersion:
        """Copy a model version to `dst_name` (created if missing) as a new version, as MLflow's does.

        Args:
            src_model_uri: `models:/<name>/<version>`, `models:/<name>@<alias>`, `models:/<name>/latest`
                or `models:/<name>/<stage>`.
            dst_name: the registered model that gets the copy.

        Returns:
            The new version: its source is `models:/<name>/<version>` of the copied version, with that
            version's files, run, logged model, tags, run link and description.
        """
        if not str(src_model_uri).startswith("models:"):  # MLflow's words (MlflowClient.copy_model_version)
            raise InvalidParameterValue(
                f"Unsupported source model URI: '{src_model_uri}'. The `copy_model_version` API only copies models "
                "stored in the 'models:/' scheme.")
        try:
            src = self._version_from_uri(src_model_uri)
        except MltrailException as e:
            raise type(e)(f"Failed to fetch model version from source model URI: '{src_model_uri}'. Error: "
                          f"{e.message}", e.error_code) from e
        try:
            self.create_registered_model(dst_name)
        except ResourceAlreadyExists:
            pass
        # MLflow's AbstractStore.copy_model_version: the source is the registered version itself
        return self.create_model_version(dst_name, f"models:/{src.name}/{src.version}", run_id=src.run_id,
                                         tags=dict(src.tags), run_link=src.run_link, description=src.description,
                                         model_id=src.model_id)

    def _version_from_uri(self, uri: str | ModelUri) -> ModelVersion:
        """The version `models:/<name>/<version|latest|stage>` or `models:/<name>@<alias>` names."""
        parsed = uri if isinstance(uri, ModelUri) else parse_model_uri(uri)
        name = str(parsed.name)
        if parsed.kind == "registered_alias":
            return self.get_model_version_by_alias(name, str(parsed.alias))
        if parsed.kind == "registered_version":
            return self.get_model_version(name, str(parsed.version))
        if parsed.kind == "registered_latest":
            return self.get_model_version_by_alias(name, "latest")
        if parsed.kind == "registered_stage":
            latest = self._registry_store.get_latest_versions(name, [str(parsed.stage)])
            if latest:
                return max(latest, key=lambda mv: int(mv.version))
            # MLflow's words (store/artifact/utils/models.py _get_latest_model_version)
            raise ResourceDoesNotExist(f"No versions of model with name '{name}' and stage '{parsed.stage}' found")
        raise InvalidParameterValue(
            f"Invalid model version URI '{uri}': expected models:/<name>/<version>, models:/<name>/latest, "
            "models:/<name>/<stage> or models:/<name>@<alias>.")

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return self._registry_store.get_model_version(name, version)

    def update_model_version(self, name: str, version: str | int, description: str | None = None) -> ModelVersion:
        return self._registry_store.update_model_version(name, version, description)

    def delete_model_version(self, name: str, version: str | int) -> None:
        self._registry_store.delete_model_version(name, version)

    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:
        """Move a version to None, Staging, Production or Archived (deprecated, as in MLflow)."""
        _warn_stages("transition_model_version_stage")
        return self._registry_store.transition_model_version_stage(name, version, stage,
                                                                   bool(archive_existing_versions))

    def get_model_version_stages(self, name: str, version: str | int) -> list[str]:
        _warn_stages("get_model_version_stages")
        return list(ModelVersionStage.ALL)

    def search_model_versions(self, filter_string: str | None = None, max_results: int = 10_000,
                              order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList[ModelVersion]:
        """Model versions matching `filter_string` (`name = 'x'`, `run_id = '...'`, `tags.k = 'v'`), one page."""
        return self._registry_store.search_model_versions(filter_string or None, max_results,
                                                          list(order_by or []) or None, page_token)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """Where the version's files are: its logged model's or run's artifact location."""
        return self._registry_store.get_model_version_download_uri(name, version)

    def _stage_version(self, name: str, version: str | int | None, stage: str | None) -> str | int:
        if (version is None) == (stage is None):
            raise InvalidParameterValue("Exactly one of `version` and `stage` must be given.")
        if version is not None:
            return version
        warnings.warn(f"The `stage` parameter is deprecated. {_STAGES_DEPRECATION}", FutureWarning, stacklevel=3)
        latest = self._registry_store.get_latest_versions(name, [str(stage)])
        if not latest:
            raise InvalidParameterValue(f"Could not find any model version of {name!r} in stage {stage!r}.")
        return latest[0].version

    def set_model_version_tag(self, name: str, version: str | int | None = None, key: str | None = None,
                              value: Any = None, stage: str | None = None) -> None:
        if key is None:
            raise InvalidParameterValue("set_model_version_tag needs `key`.")
        self._registry_store.set_model_version_tag(name, self._stage_version(name, version, stage), key, str(value))

    def delete_model_version_tag(self, name: str, version: str | int | None = None, key: str | None = None,
                                 stage: str | None = None) -> None:
        if key is None:
            raise InvalidParameterValue("delete_model_version_tag needs `key`.")
        self._registry_store.delete_model_version_tag(name, self._stage_version(name, version, stage), key)

    # ------------------------------------------------------------------ aliases
    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self._registry_store.set_registered_model_alias(name, alias, version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._registry_store.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._registry_store.get_model_version_by_alias(name, alias)
