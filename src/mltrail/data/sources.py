"""Where a dataset came from: code (the default), a local path, an S3 URI or an HTTP(S) URL.

A source serialises to a JSON dict (`to_json`) and a type string (`source_type`), which is how
it is stored with a run; `get_dataset_source_from_json` rebuilds it from those two.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

from mltrail.errors import InvalidParameterValue


class DatasetSource:
    """The source of a dataset: a type string and a JSON-serialisable description."""

    source_type: ClassVar[str] = ""

    @classmethod
    def _get_source_type(cls) -> str:
        return cls.source_type

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _to_dict(self) -> dict[str, Any]:
        return self.to_dict()

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> DatasetSource:
        raise NotImplementedError

    @classmethod
    def from_json(cls, source_json: str) -> DatasetSource:
        return cls.from_dict(json.loads(source_json))

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> DatasetSource:
        raise NotImplementedError

    def load(self, dst_path: str | None = None) -> Any:
        """Fetch what the source names (e.g. download it); return a local path."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash((self.source_type, self.to_json()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


class CodeDatasetSource(DatasetSource):
    """Data built in code: the source records the program that built it (run context tags)."""

    source_type = "code"

    def __init__(self, tags: dict[str, Any] | None = None) -> None:
        self._tags = dict(tags or {})

    @property
    def tags(self) -> dict[str, Any]:
        return self._tags

    def to_dict(self) -> dict[str, Any]:
        return {"tags": self._tags}

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> CodeDatasetSource:
        return cls(tags=source_dict.get("tags") or {})

    def load(self, dst_path: str | None = None) -> Any:
        raise NotImplementedError("A code dataset source has nothing to load: the data was built in code.")


class _UriDatasetSource(DatasetSource):
    """A source named by a URI, loaded through mltrail's artifact repositories."""

    def __init__(self, uri: str) -> None:
        self._uri = str(uri)

    @property
    def uri(self) -> str:
        return self._uri

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri}

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> DatasetSource:
        uri = source_dict.get("uri")
        if not isinstance(uri, str):
            raise InvalidParameterValue(
                f"Cannot read a {cls.__name__} from {source_dict!r}: expected a dict with a string 'uri'.")
        return cls(uri)

    @classmethod
    def _resolve(cls, raw_source: Any) -> DatasetSource:
        return cls(str(raw_source))

    def load(self, dst_path: str | None = None) -> str:
        from mltrail.uris import download_uri

        return download_uri(self._uri, dst_path)


class LocalArtifactDatasetSource(_UriDatasetSource):
    """A dataset stored on the local file system (a plain path or a file:// URI)."""

    source_type = "local"

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        if isinstance(raw_source, Path):
            return True
        if not isinstance(raw_source, str) or not raw_source:
            return False
        scheme = urllib.parse.urlparse(raw_source).scheme
        # A one-letter "scheme" is a Windows drive letter.
        return scheme in ("", "file") or len(scheme) == 1

    def load(self, dst_path: str | None = None) -> str:
        from mltrail.store.artifact.local import local_path_of

        path = local_path_of(self._uri)
        if dst_path is None and os.path.exists(path):
            return os.path.abspath(path)
        return super().load(dst_path)


class S3ArtifactDatasetSource(_UriDatasetSource):
    """A dataset stored in S3-compatible object storage (`s3://bucket/key`)."""

    source_type = "s3"

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and raw_source.startswith("s3://")


class HTTPDatasetSource(DatasetSource):
    """A dataset at an HTTP(S) URL."""

    source_type = "http"

    def __init__(self, url: str) -> None:
        self._url = str(url)

    @property
    def url(self) -> str:
        return self._url

    def to_dict(self) -> dict[str, Any]:
        return {"url": self._url}

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> HTTPDatasetSource:
        url = source_dict.get("url")
        if not isinstance(url, str):
            raise InvalidParameterValue(
                f"Cannot read an HTTPDatasetSource from {source_dict!r}: expected a dict with a string 'url'.")
        return cls(url)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and urllib.parse.urlparse(raw_source).scheme in ("http", "https")

    @classmethod
    def _resolve(cls, raw_source: Any) -> HTTPDatasetSource:
        return cls(str(raw_source))

    def load(self, dst_path: str | None = None) -> str:
        """Download the URL into `dst_path` (a new temp dir by default); return the file's path."""
        import tempfile

        import requests

        from mltrail._paths import safe_relpath

        name = os.path.basename(urllib.parse.urlparse(self._url).path) or "dataset_source"
        name = safe_relpath(name, "file name from the URL") or "dataset_source"
        dst_path = dst_path or tempfile.mkdtemp(prefix="mltrail-dataset-")
        os.makedirs(dst_path, exist_ok=True)
        local = os.path.join(dst_path, name)
        with requests.get(self._url, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            with open(local, "wb") as fh:
                for chunk in resp.iter_content(chunk_size=1 << 20):
                    fh.write(chunk)
        return local


# Tried in order by `resolve_dataset_source`; the local source last, as it accepts any plain path.
_SOURCES: list[type[DatasetSource]] = [HTTPDatasetSource, S3ArtifactDatasetSource, LocalArtifactDatasetSource,
                                       CodeDatasetSource]


def get_registered_sources() -> list[type[DatasetSource]]:
    return list(_SOURCES)


def register_dataset_source(source: type[DatasetSource]) -> None:
    """Add a source type; it is tried before the built-in ones."""
    if source not in _SOURCES:
        _SOURCES.insert(0, source)


def resolve_dataset_source(raw_source: Any) -> DatasetSource:
    """A DatasetSource for a raw source: a DatasetSource, a path, or an s3:// or http(s):// URI."""
    if isinstance(raw_source, DatasetSource):
        return raw_source
    for source in _SOURCES:
        if source._can_resolve(raw_source):
            return source._resolve(raw_source)
    raise InvalidParameterValue(
        f"Cannot resolve a dataset source from {raw_source!r}: expected a DatasetSource, a local path, a "
        "file://, s3:// or http(s):// URI.")


def get_dataset_source_from_json(source_json: str, source_type: str) -> DatasetSource:
    """Rebuild a source from its stored JSON and type (as held by `mltrail.entities.Dataset`)."""
    for source in _SOURCES:
        if source._get_source_type() == source_type:
            return source.from_json(source_json)
    known = ", ".join(sorted({s._get_source_type() for s in _SOURCES}))
    raise InvalidParameterValue(f"Unknown dataset source type {source_type!r}: expected one of {known}.")


def code_source() -> CodeDatasetSource:
    """The default source: the program building the dataset, described by the run context tags."""
    from mltrail._context import system_tags

    return CodeDatasetSource(tags=system_tags())


def resolve_or_code_source(source: Any) -> DatasetSource:
    return code_source() if source is None else resolve_dataset_source(source)


__all__ = ["CodeDatasetSource", "DatasetSource", "HTTPDatasetSource", "LocalArtifactDatasetSource",
           "S3ArtifactDatasetSource", "get_dataset_source_from_json", "get_registered_sources",
           "register_dataset_source", "resolve_dataset_source"]
