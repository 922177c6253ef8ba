"""`RegistryStore`: the model registry interface every backend implements (SQL, REST), so Client stays backend-free.

A `typing.Protocol` with abstract methods, declared by subclassing, as `TrackingStore` is.

Names are normalised by the store (percent-decoded, NFC, stripped); versions are ints or digit
strings on the way in and strings on the way out (`ModelVersion.version`); tags are dicts.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from mltrail.entities import ModelVersion, PagedList, RegisteredModel

SEARCH_REGISTERED_MODELS_DEFAULT = 100
SEARCH_REGISTERED_MODELS_MAX = 1000
SEARCH_MODEL_VERSIONS_DEFAULT = 10_000
SEARCH_MODEL_VERSIONS_MAX = 200_000


@runtime_checkable
class RegistryStore(Protocol):
    """Registered models, their versions, tags and aliases."""

    # registered models
    @abstractmethod
    def create_registered_model(self, name: str, tags: dict[str, str] | None = None,
                                description: str | None = None) -> RegisteredModel: ...

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...

    @abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...

    @abstractmethod
    def delete_registered_model(self, name: str) -> None: ...

    @abstractmethod
    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int = SEARCH_REGISTERED_MODELS_DEFAULT,
                                 order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]: ...

    @abstractmethod
    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """The newest version in each of `stages` (all stages when None or empty)."""

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    # model versions
    @abstractmethod
    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: dict[str, str] | None = None, run_link: str | None = None,
                             description: str | None = None, model_id: str | None = None) -> ModelVersion:
        """A new version numbered one past the model's last (never reused, even after a delete).

        The source must lie inside the artifacts of its run or logged model (see registry docs).
        """

    @abstractmethod
    def get_model_version(self, name: str, version: str | int) -> ModelVersion: ...

    @abstractmethod
    def update_model_version(self, name: str, version: str | int, description: str | None) -> ModelVersion: ...

    @abstractmethod
    def delete_model_version(self, name: str, version: str | int) -> None: ...

    @abstractmethod
    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion: ...

    @abstractmethod
    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int = SEARCH_MODEL_VERSIONS_DEFAULT,
                              order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList[ModelVersion]: ...

    @abstractmethod
    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """Where the version's files really are (the logged model's or run's artifact location)."""

    @abstractmethod
    def set_model_version_tag(self, name: str, version: str | int, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None: ...

    # aliases
    @abstractmethod
    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None: ...

    @abstractmethod
    def delete_registered_model_alias(self, name: str, alias: str) -> None: ...

    @abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...
