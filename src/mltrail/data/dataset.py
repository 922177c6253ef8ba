"""The Dataset base class: name, digest, source, schema and profile, logged with `log_input`."""

from __future__ import annotations

import json
from typing import Any

from mltrail.data.sources import DatasetSource
from mltrail.entities import Dataset as DatasetEntity
from mltrail.errors import InvalidParameterValue


class Dataset:
    """A dataset used by a run: what it is (name, digest, schema, profile) and where it came from.

    Subclasses set their data, then call `super().__init__`, which computes the digest when none
    is given.
    """

    def __init__(self, source: DatasetSource, name: str | None = None, digest: str | None = None) -> None:
        if not isinstance(source, DatasetSource):
            raise InvalidParameterValue(
                f"Invalid dataset source {source!r}: expected a mltrail.data.DatasetSource.")
        if name is not None and not isinstance(name, str):
            raise InvalidParameterValue(f"Invalid dataset name {name!r}: expected a string.")
        if digest is not None and not isinstance(digest, str):
            raise InvalidParameterValue(f"Invalid dataset digest {digest!r}: expected a string.")
        self._name = name
        self._source = source
        self._digest = digest or self._compute_digest()

    def _compute_digest(self) -> str:
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The dataset's name ("dataset" when none was given, as in MLflow)."""
        return self._name if self._name is not None else "dataset"

    @property
    def digest(self) -> str:
        """A short fingerprint of the data, e.g. "498c7496"."""
        return self._digest

    @property
    def source(self) -> DatasetSource:
        return self._source

    @property
    def schema(self) -> dict[str, Any] | None:
        """The schema in MLflow's JSON form, or None when it cannot be inferred."""
        return None

    @property
    def profile(self) -> dict[str, Any] | None:
        """Summary figures (shapes, row counts), or None."""
        return None

    def to_dict(self) -> dict[str, str]:
        """name, digest, source (JSON), source_type, and schema/profile (JSON) where known."""
        d = {"name": self.name, "digest": self.digest, "source": self.source.to_json(),
             "source_type": self.source._get_source_type()}
        schema, profile = self.schema, self.profile
        if schema is not None:
            d["schema"] = json.dumps(schema)
        if profile is not None:
            d["profile"] = json.dumps(profile)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def _to_entity(self) -> DatasetEntity:
        """The `mltrail.entities.Dataset` stored with a run."""
        d = self.to_dict()
        return DatasetEntity(name=d["name"], digest=d["digest"], source_type=d["source_type"], source=d["source"],
                             schema=d.get("schema"), profile=d.get("profile"))

    # MLflow's name for the same conversion.
    _to_mlflow_entity = _to_entity

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, digest={self.digest!r}, source_type=" \
               f"{self.source._get_source_type()!r})"
