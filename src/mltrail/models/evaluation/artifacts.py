"""Evaluation artifacts: a logged file's URI and its content (an image, a CSV table, JSON, an array, text)."""

from __future__ import annotations

import json
import os
import tempfile
from abc import ABC, abstractmethod
from typing import Any


class EvaluationArtifact(ABC):
    """An artifact `evaluate` logged: `.uri` says where, `.content` loads it (downloading when needed)."""

    def __init__(self, uri: str, content: Any = None) -> None:
        self._uri = uri
        self._content = content

    @abstractmethod
    def _load_content_from_file(self, local_artifact_path: str) -> Any:
        """Read the content from a local file."""

    @abstractmethod
    def _save(self, output_artifact_path: str) -> None:
        """Write the content to a local file."""

    def _load(self, local_artifact_path: str | None = None) -> Any:
        """Load the content from `local_artifact_path`, or download it from the URI when None."""
        if local_artifact_path is not None:
            self._content = self._load_content_from_file(local_artifact_path)
            return self._content
        from mltrail.uris import download_uri

        with tempfile.TemporaryDirectory(prefix="mltrail-eval-") as tmp:
            local = download_uri(self._uri, dst_path=tmp)
            self._content = self._load_content_from_file(local)
        return self._content

    @property
    def content(self) -> Any:
        """The artifact's content (its type depends on the artifact class)."""
        if self._content is None:
            self._load()
        return self._content

    @property
    def uri(self) -> str:
        """The URI of the logged file."""
        return self._uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri='{self.uri}')"


class ImageEvaluationArtifact(EvaluationArtifact):
    """A PNG or JPEG image; its content is a `PIL.Image.Image`."""

    def _save(self, output_artifact_path: str) -> None:
        self._content.save(output_artifact_path)

    def _load_content_from_file(self, local_artifact_path: str) -> Any:
        from PIL import Image

        image = Image.open(local_artifact_path)
        image.load()  # read it all now, so the file is closed
        return image


class CsvEvaluationArtifact(EvaluationArtifact):
    """A CSV table; its content is a pandas DataFrame."""

    def _save(self, output_artifact_path: str) -> None:
        self._content.to_csv(output_artifact_path, index=False)

    def _load_content_from_file(self, local_artifact_path: str) -> Any:
        import pandas as pd

        return pd.read_csv(local_artifact_path)


class JsonEvaluationArtifact(EvaluationArtifact):
    """A JSON document; its content is what `json.load` returns."""

    def _save(self, output_artifact_path: str) -> None:
        with open(output_artifact_path, "w", encoding="utf-8") as f:
            json.dump(self._content, f)

    def _load_content_from_file(self, local_artifact_path: str) -> Any:
        with open(local_artifact_path, encoding="utf-8") as f:
            return json.load(f)


class NumpyEvaluationArtifact(EvaluationArtifact):
    """A `.npy` array (never unpickled: object arrays are refused)."""

    def _save(self, output_artifact_path: str) -> None:
        import numpy as np

        np.save(output_artifact_path, self._content, allow_pickle=False)

    def _load_content_from_file(self, local_artifact_path: str) -> Any:
        import numpy as np

        return np.load(local_artifact_path, allow_pickle=False)


class TextEvaluationArtifact(EvaluationArtifact):
    """A text file; its content is a str."""

    def _save(self, output_artifact_path: str) -> None:
        with open(output_artifact_path, "w", encoding="utf-8") as f:
            f.write(self._content)

    def _load_content_from_file(self, local_artifact_path: str) -> Any:
        with open(local_artifact_path, encoding="utf-8") as f:
            return f.read()


# What a custom artifact's file extension says it is.
ARTIFACT_BY_EXTENSION: dict[str, type[EvaluationArtifact]] = {
    ".png": ImageEvaluationArtifact, ".jpg": ImageEvaluationArtifact, ".jpeg": ImageEvaluationArtifact,
    ".json": JsonEvaluationArtifact, ".npy": NumpyEvaluationArtifact, ".csv": CsvEvaluationArtifact,
    ".txt": TextEvaluationArtifact,
}


def artifact_file_name(uri: str) -> str:
    """The last path segment of an artifact URI."""
    return os.path.basename(uri.rstrip("/"))
